//! `transfer`: file throughput through the server (files plugin), the chat
//! latency meanwhile, and a plain TCP copy of the same bytes on the same
//! machine for comparison.

use std::path::Path;
use std::time::{Duration, Instant};

use chat_client::files::{self, Recipient};
use chat_client::Client;
use chat_protocol::ClientFrame;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::background::Chat;
use crate::report;
use crate::server::{Server, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// File size in MiB.
    #[arg(long, default_value_t = 100)]
    pub size_mib: u64,
    /// Members of the background room.
    #[arg(long, default_value_t = 10)]
    pub chatters: usize,
    /// Background room messages per second.
    #[arg(long, default_value_t = 100.0)]
    pub chat_rate: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let size = args.size_mib * 1024 * 1024;
    let files_config = format!(
        "[[plugin]]\nname = \"files\"\n[plugin.config]\nmax_file_size = {0}\nper_user_quota = {0}\ntotal_quota = {0}\n",
        size.max(1 << 20) * 2
    );
    let server = Server::start_with(&args.target, &files_config)?;
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("payload.bin");
    write_random(&source, size)?;

    let plain = plain_tcp_copy(&source).await?;

    let chat = Chat::start(&server.addr, args.chatters, args.chat_rate).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connect = |nick: &'static str| {
        let addr = server.addr.clone();
        async move {
            let mut c = Client::connect(&addr, &crate::server::transport()).await?;
            c.request_ok(&ClientFrame::Nick { nick: nick.into() })
                .await?;
            Ok::<_, anyhow::Error>(c)
        }
    };
    let mut sender = connect("uploader").await?;
    let mut receiver = connect("downloader").await?;
    chat.set_phase(1);
    let t0 = Instant::now();
    files::upload(
        &mut sender,
        &source,
        &Recipient::User("downloader".into()),
        |_| {},
    )
    .await?;
    let upload_secs = t0.elapsed().as_secs_f64();
    let offered = receiver
        .expect(Duration::from_secs(30), |f| files::available(f).is_some())
        .await?;
    let info = files::available(&offered).expect("matched above");
    let dest = dir.path().join("received.bin");
    let t1 = Instant::now();
    files::download(&mut receiver, &info, &dest, |_| {}).await?;
    let download_secs = t1.elapsed().as_secs_f64();
    let total_secs = t0.elapsed().as_secs_f64();
    chat.set_phase(2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let [before, during, _] = chat.stop().await?;
    anyhow::ensure!(
        std::fs::read(&source)? == std::fs::read(&dest)?,
        "the received file differs from the sent one"
    );
    let mb = size as f64 / 1e6;
    println!(
        "transfer: {} MiB through chatd: upload {:.1} MB/s, download {:.1} MB/s, end to end {:.1} MB/s; plain TCP copy {:.0} MB/s\n  chat before: {}\n  chat during: {}",
        args.size_mib,
        mb / upload_secs,
        mb / download_secs,
        mb / total_secs,
        mb / plain,
        report::describe(&before),
        report::describe(&during),
    );
    report::emit(json!({
        "workload": "transfer",
        "transport": crate::server::transport_name(),
        "size_mib": args.size_mib,
        "upload_mb_s": (mb / upload_secs * 10.0).round() / 10.0,
        "download_mb_s": (mb / download_secs * 10.0).round() / 10.0,
        "end_to_end_mb_s": (mb / total_secs * 10.0).round() / 10.0,
        "plain_tcp_mb_s": (mb / plain).round(),
        "chat_before": report::percentiles(&before),
        "chat_during": report::percentiles(&during),
    }));
    Ok(())
}

/// Writes `size` pseudo-random bytes (xorshift; incompressible enough).
fn write_random(path: &Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// Seconds to copy the file through a plain loopback TCP connection.
async fn plain_tcp_copy(path: &Path) -> anyhow::Result<f64> {
    let data = tokio::fs::read(path).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(total);
            }
            total += n as u64;
        }
    });
    let t0 = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(&data).await?;
    s.shutdown().await?;
    let received = reader.await??;
    anyhow::ensure!(received == data.len() as u64, "plain copy lost bytes");
    Ok(t0.elapsed().as_secs_f64())
}
