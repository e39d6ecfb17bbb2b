//! `conns`: many idle, logged-in connections. Reports how long connecting
//! took and what each connection costs the server (RSS and CPU, from /proc).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{ConnectOptions, Connection, Reader, Writer};
use chat_protocol::ClientFrame;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::report;
use crate::server::{proc_stats, Server, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Loopback source addresses to spread client sockets over (127.0.0.2..),
    /// so that ephemeral ports do not run out.
    #[arg(long, default_value_t = 16)]
    pub sources: usize,
    /// Seconds to hold the connections idle before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub hold: f64,
    /// Send `hello` and `nick` but read nothing until after measuring: what
    /// a connection costs while its client has not read its first replies
    /// (plaintext only).
    #[arg(long)]
    pub no_read: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.no_read || !(args.target.tls || args.target.websocket),
        "--no-read measures plaintext connections; leave out --tls and --websocket"
    );
    let server = Server::start(&args.target)?;
    let pid = server.pid;
    let before = pid.map(proc_stats).transpose()?;
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let addr = server.addr.clone();
        let gate = gate.clone();
        let sources = args.sources.max(1);
        let no_read = args.no_read;
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let t0 = Instant::now();
            let bind = format!("127.0.0.{}:0", 2 + i % sources).parse().unwrap();
            let conn = if no_read {
                open_unread(&addr, i, bind).await?
            } else {
                open(&addr, i, bind).await?
            };
            Ok::<_, anyhow::Error>((conn, t0.elapsed()))
        }));
    }
    let mut held: Vec<(Reader, Writer)> = Vec::with_capacity(args.count);
    let mut connect = report::histogram();
    for t in tasks {
        let (conn, took) = t.await??;
        connect.record(took.as_micros().max(1) as u64).ok();
        held.push(conn);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let after = pid.map(proc_stats).transpose()?;

    if args.no_read {
        // Read the replies left waiting: each got its nickname.
        for (i, (reader, _)) in held.iter_mut().enumerate() {
            expect_nick_ok(reader, i).await?;
        }
    }
    // The connections are alive: a sample answers a ping.
    for (reader, writer) in held.iter_mut().step_by((args.count / 20).max(1)) {
        writer
            .send(Some(7), &ClientFrame::Ping { token: None })
            .await?;
        loop {
            let line = reader
                .next_line()
                .await?
                .context("connection closed while idle")?;
            if line.starts_with(b"{\"type\":\"pong\"") {
                break;
            }
        }
    }
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => Some((
            (a.rss_bytes as f64 - b.rss_bytes as f64) / args.count as f64,
            (a.cpu_seconds - b.cpu_seconds) / args.count as f64 * 1e6,
            a.rss_bytes,
        )),
        _ => None,
    };
    println!(
        "conns ({}): {} idle connections in {:.2}s ({:.0}/s); connect+hello+nick {}{}",
        crate::server::transport_name(),
        args.count,
        connect_secs,
        args.count as f64 / connect_secs,
        report::describe(&connect),
        per_conn
            .map(|(m, c, rss)| format!("\n  server: {:.0} bytes RSS per connection ({:.1} MiB total), {:.0} µs CPU per connection setup", m, rss as f64 / 1048576.0, c))
            .unwrap_or_else(|| "\n  (give --server-pid or --spawn for server memory)".into()),
    );
    report::emit(json!({
        "workload": "conns",
        "transport": crate::server::transport_name(),
        "count": args.count,
        "connect_s": connect_secs,
        "connect_latency": report::percentiles(&connect),
        "server_rss_bytes_per_conn": per_conn.map(|p| p.0.round()),
        "server_cpu_us_per_conn": per_conn.map(|p| p.1.round()),
        "server_rss_bytes": per_conn.map(|p| p.2),
        "server": {"flavor": args.target.server_flavor, "threads": args.target.server_threads},
    }));
    drop(held);
    Ok(())
}

async fn open(
    addr: &str,
    i: usize,
    bind: std::net::SocketAddr,
) -> anyhow::Result<(Reader, Writer)> {
    let options = ConnectOptions {
        bind: Some(bind),
        max_line: 64 * 1024,
        timeout: Duration::from_secs(60),
        ..crate::server::transport()
    };
    let (mut reader, mut writer, _) = Connection::connect(addr, &options)
        .await
        .with_context(|| format!("connection {i}"))?;
    writer
        .send(
            Some(1),
            &ClientFrame::Nick {
                nick: format!("idle{i}"),
            },
        )
        .await?;
    expect_nick_ok(&mut reader, i).await?;
    Ok((reader, writer))
}

/// Reads up to the `ok` of connection `i`'s `nick`.
async fn expect_nick_ok(reader: &mut Reader, i: usize) -> anyhow::Result<()> {
    loop {
        let line = reader.next_line().await?.context("closed")?;
        if line.starts_with(b"{\"type\":\"welcome\"") {
            continue;
        }
        anyhow::ensure!(
            line.starts_with(b"{\"type\":\"ok\""),
            "connection {i}: {}",
            String::from_utf8_lossy(&line)
        );
        return Ok(());
    }
}

/// Connects and sends `hello` and `nick` in one write, reading nothing.
async fn open_unread(
    addr: &str,
    i: usize,
    bind: std::net::SocketAddr,
) -> anyhow::Result<(Reader, Writer)> {
    let target: std::net::SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .context("address resolves to nothing")?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(bind)?;
    let stream = socket
        .connect(target)
        .await
        .with_context(|| format!("connection {i}"))?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut writer = Writer::from_stream(write);
    let mut greeting = chat_client::encode_request(
        None,
        &ClientFrame::Hello {
            protocol: chat_protocol::PROTOCOL_VERSION,
            client: Some("chat-bench".into()),
        },
    );
    greeting.extend(chat_client::encode_request(
        Some(1),
        &ClientFrame::Nick {
            nick: format!("idle{i}"),
        },
    ));
    writer.send_raw(&greeting).await?;
    Ok((Reader::from_stream(read, 64 * 1024), writer))
}
