//! `pingpong`: two clients bounce a direct message back and forth; the
//! round-trip time distribution is the server's latency floor.

use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{ConnectOptions, Connection, Reader, Writer};
use chat_protocol::ClientFrame;
use serde_json::json;

use crate::report;
use crate::server::{Server, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Round trips to measure (after 200 warm-up ones).
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Also measure the floor: the same message bounced over plain loopback
    /// TCP between two blocking threads, without chatd. chatd's round trip
    /// crosses loopback four times, the floor's twice.
    #[arg(long)]
    pub floor: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = Server::start(&args.target)?;
    let (mut a_read, mut a_write) = connect(&server.addr, "ping").await?;
    let (mut b_read, mut b_write) = connect(&server.addr, "pong").await?;
    // The echo side: every direct message goes straight back.
    let echo = tokio::spawn(async move {
        while let Some(line) = b_read.next_line().await? {
            if line.starts_with(b"{\"type\":\"message\"") {
                b_write
                    .send(
                        None,
                        &ClientFrame::Msg {
                            to: "ping".into(),
                            text: "pong".into(),
                        },
                    )
                    .await?;
            }
        }
        Ok::<_, anyhow::Error>(())
    });
    let mut rtt = report::histogram();
    let started = Instant::now();
    for i in 0..args.count + 200 {
        let t0 = Instant::now();
        a_write
            .send(
                None,
                &ClientFrame::Msg {
                    to: "pong".into(),
                    text: "ping".into(),
                },
            )
            .await?;
        loop {
            let line = a_read.next_line().await?.context("closed")?;
            if line.starts_with(b"{\"type\":\"message\"") {
                break;
            }
        }
        if i >= 200 {
            rtt.record(t0.elapsed().as_micros().max(1) as u64).ok();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "pingpong ({}): {} round trips in {:.2}s: {}",
        crate::server::transport_name(),
        args.count,
        secs,
        report::describe(&rtt)
    );
    report::emit(json!({
        "workload": "pingpong",
        "transport": crate::server::transport_name(),
        "round_trips": args.count,
        "rtt": report::percentiles(&rtt),
        "server": {"flavor": args.target.server_flavor, "threads": args.target.server_threads},
    }));
    echo.abort();
    if args.floor {
        let floor = tokio::task::spawn_blocking(move || tcp_floor(args.count)).await??;
        println!(
            "  plain loopback TCP echo between two threads (2 crossings): {}",
            report::describe(&floor)
        );
        report::emit(
            json!({"workload": "pingpong-floor", "round_trips": args.count, "rtt": report::percentiles(&floor)}),
        );
    }
    Ok(())
}

/// Round trips of a small message between two blocking threads over
/// loopback TCP (TCP_NODELAY): what the kernel and machine cost alone.
fn tcp_floor(count: usize) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 128];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        }
    });
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let msg = [b'x'; 100];
    let mut buf = [0u8; 128];
    let mut rtt = report::histogram();
    for i in 0..count + 200 {
        let t0 = Instant::now();
        s.write_all(&msg)?;
        let mut got = 0;
        while got < msg.len() {
            got += s.read(&mut buf[got..])?;
        }
        if i >= 200 {
            rtt.record(t0.elapsed().as_micros().max(1) as u64).ok();
        }
    }
    drop(s);
    let _ = echo.join();
    Ok(rtt)
}

async fn connect(addr: &str, nick: &str) -> anyhow::Result<(Reader, Writer)> {
    let options = ConnectOptions {
        timeout: Duration::from_secs(10),
        ..crate::server::transport()
    };
    let (mut reader, mut writer, _) = Connection::connect(addr, &options).await?;
    writer
        .send(Some(1), &ClientFrame::Nick { nick: nick.into() })
        .await?;
    let line = reader.next_line().await?.context("closed")?;
    anyhow::ensure!(
        line.starts_with(b"{\"type\":\"ok\""),
        "{}",
        String::from_utf8_lossy(&line)
    );
    Ok((reader, writer))
}
