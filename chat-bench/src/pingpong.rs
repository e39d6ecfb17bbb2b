//! `pingpong`: two clients bounce a direct message back and forth; the
//! round-trip time distribution, beside the floor for the same path.

use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{ConnectOptions, Connection, Reader, Writer};
use chat_protocol::ClientFrame;
use serde_json::json;

use crate::report;
use crate::server::{Server, Target};
use chat_protocol::ServerFrame;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Round trips to measure (after 200 warm-up ones).
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Also measure the floor for the same path, in the same run: a minimal
    /// relay (`relay-floor`: parse, route, encode once, write to the
    /// recipient, ack the sender) on chatd's runtime setup and CPUs; and
    /// plain loopback TCP between two blocking threads (the kernel alone).
    #[arg(long)]
    pub floor: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(args.floor && (args.target.tls || args.target.websocket)),
        "--floor measures plaintext TCP only; run it without --tls and --websocket"
    );
    if args.target.nodes > 1 {
        anyhow::ensure!(
            !args.floor,
            "--floor measures a single node; run it without --nodes"
        );
        return cross_node(args).await;
    }
    let server = Server::start(&args.target)?;
    let rtt = round_trips(&server.addr, &server.addr, args.count).await?;
    println!(
        "pingpong ({}): {} round trips: {}",
        crate::server::transport_name(),
        args.count,
        report::describe(&rtt)
    );
    report::emit(json!({
        "workload": "pingpong",
        "transport": crate::server::transport_name(),
        "round_trips": args.count,
        "rtt": report::percentiles(&rtt),
        "server": {"flavor": args.target.server_flavor, "threads": args.target.server_threads},
    }));
    if args.floor {
        // The relay runs as chatd does: same runtime, same CPUs.
        let relay = Relay::start(&args.target, server.pid)?;
        let floor = round_trips(&relay.addr, &relay.addr, args.count).await?;
        let ratio =
            |q: f64| rtt.value_at_quantile(q) as f64 / floor.value_at_quantile(q).max(1) as f64;
        println!(
            "  relay floor (same path, same runtime and CPUs{}): {}\n  chatd / floor: p50 {:.2}x, p99 {:.2}x",
            relay.cpus.as_deref().map(|c| format!(", CPUs {c}")).unwrap_or_default(),
            report::describe(&floor),
            ratio(0.5),
            ratio(0.99)
        );
        report::emit(json!({
            "workload": "pingpong-floor",
            "round_trips": args.count,
            "rtt": report::percentiles(&floor),
            "chatd_over_floor": {"p50": ratio(0.5), "p99": ratio(0.99)},
        }));
        drop(relay);
        let loopback = tokio::task::spawn_blocking(move || tcp_floor(args.count)).await??;
        println!(
            "  plain loopback TCP echo between two threads (2 crossings): {}",
            report::describe(&loopback)
        );
        report::emit(json!({
            "workload": "pingpong-loopback",
            "round_trips": args.count,
            "rtt": report::percentiles(&loopback),
        }));
    }
    Ok(())
}

/// With `--nodes`: the same round trips on one standalone node (no
/// cluster), between two clients of one clustered node, and between
/// clients of two nodes, in one run; what the cross-node hop adds.
async fn cross_node(args: Args) -> anyhow::Result<()> {
    let single = Target {
        nodes: 1,
        history: "off".into(),
        ..args.target.clone()
    };
    let standalone = {
        let server = Server::start(&single)?;
        round_trips(&server.addr, &server.addr, args.count).await?
    };
    let cluster = Server::start(&args.target)?;
    let same = round_trips(cluster.addr_of(0), cluster.addr_of(0), args.count).await?;
    let across = round_trips(cluster.addr_of(0), cluster.addr_of(1), args.count).await?;
    let added =
        |q: f64| across.value_at_quantile(q) as i64 - standalone.value_at_quantile(q) as i64;
    println!(
        "pingpong, {} nodes over NATS: {} round trips each\n  one standalone node (no cluster): {}\n  two clients of one clustered node: {}\n  clients of two nodes: {}\n  added by the cross-node hop (vs standalone): p50 {} µs, p99 {} µs",
        cluster.node_count(),
        args.count,
        report::describe(&standalone),
        report::describe(&same),
        report::describe(&across),
        added(0.5),
        added(0.99),
    );
    report::emit(json!({
        "workload": "pingpong-cluster",
        "nodes": cluster.node_count(),
        "round_trips": args.count,
        "standalone": report::percentiles(&standalone),
        "same_node": report::percentiles(&same),
        "cross_node": report::percentiles(&across),
        "added_us": {"p50": added(0.5), "p99": added(0.99)},
    }));
    Ok(())
}

/// `count` direct-message round trips (after 200 warm-up ones) between a
/// client of the server at `ping_addr` and one at `pong_addr`.
async fn round_trips(
    ping_addr: &str,
    pong_addr: &str,
    count: usize,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let (mut a_read, mut a_write) = connect(ping_addr, "ping").await?;
    let (mut b_read, mut b_write) = connect(pong_addr, "pong").await?;
    if ping_addr != pong_addr {
        await_user(&mut a_read, &mut a_write, "pong").await?;
        await_user(&mut b_read, &mut b_write, "ping").await?;
    }
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
    for i in 0..count + 200 {
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
    echo.abort();
    Ok(rtt)
}

/// The relay floor's process, stopped on drop.
struct Relay {
    addr: String,
    /// The CPUs it was pinned to, when chatd was pinned.
    cpus: Option<String>,
    child: std::process::Child,
}

impl Relay {
    fn start(target: &crate::server::Target, server_pid: Option<u32>) -> anyhow::Result<Relay> {
        use std::io::BufRead;
        let cpus = server_pid
            .and_then(|pid| cpus_allowed(&pid.to_string()))
            .filter(|theirs| cpus_allowed("self").as_ref() != Some(theirs));
        let exe = std::env::current_exe()?;
        let mut command = match &cpus {
            Some(list) => {
                let mut c = std::process::Command::new("taskset");
                c.args(["-c", list]).arg(exe);
                c
            }
            None => std::process::Command::new(exe),
        };
        let mut child = command
            .args([
                "relay-floor",
                "--flavor",
                &target.server_flavor,
                "--threads",
            ])
            .arg(target.server_threads.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start the relay floor (is `taskset` installed?)")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("relay listening on ")
            .with_context(|| format!("the relay floor said {line:?}"))?
            .to_string();
        Ok(Relay { addr, cpus, child })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's CPU list (`Cpus_allowed_list` in /proc/PID/status).
fn cpus_allowed(pid: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
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

/// Waits (bounded) until the client's node lists `nick`: another node's
/// user is known a moment after it took its name.
async fn await_user(reader: &mut Reader, writer: &mut Writer, nick: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        writer
            .send(Some(2), &ClientFrame::Users { room: None })
            .await?;
        let line = reader.next_line().await?.context("closed")?;
        if let Ok(ServerFrame::Users { users, .. }) = serde_json::from_slice(&line) {
            if users.iter().any(|u| u == nick) {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{nick} never appeared on the other node"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
