//! `fanout`: N clients in one room, S of them sending. Measures deliveries
//! per second, end-to-end latency (timestamps carried in the text), and
//! checks that every member got every message exactly once, in order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{ConnectOptions, Connection, Reader, Writer};
use chat_protocol::ClientFrame;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::report;
use crate::server::{proc_stats, Server, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Clients in the room.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// How many of them send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Sending time in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Total messages per second across all senders (default: as fast as
    /// the window allows).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Messages a sender may have in flight before its `sent` replies return.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Extra bytes of text per message.
    #[arg(long, default_value_t = 32)]
    pub padding: usize,
    /// Loopback source addresses to spread client sockets over (127.0.0.2..).
    #[arg(long, default_value_t = 4)]
    pub sources: usize,
    /// Measure the floor instead of chatd: one thread of this process writes
    /// each message to every client socket in turn (a server with no work
    /// but the writes), and the same receivers measure it.
    #[arg(long)]
    pub floor: bool,
}

/// What one member saw.
struct Seen {
    latency: Histogram<u64>,
    received: u64,
    lost: u64,
    duplicated: u64,
}

const ROOM: &str = "#bench";

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.senders >= 1 && args.senders <= args.clients,
        "need 1 <= senders <= clients"
    );
    if args.floor {
        return floor(args).await;
    }
    let server = Server::start(&args.target)?;
    let base = Instant::now();

    // Connect and join, a bounded number at a time.
    let connect_start = Instant::now();
    let gate = Arc::new(Semaphore::new(100));
    let mut joins = Vec::new();
    for i in 0..args.clients {
        let addr = server.addr_of(i).to_string();
        let gate = gate.clone();
        let bind = (args.sources > 0).then(|| {
            format!("127.0.0.{}:0", 2 + i % args.sources)
                .parse()
                .unwrap()
        });
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            connect_member(&addr, i, bind).await
        }));
    }
    let mut members = Vec::new();
    for j in joins {
        members.push(j.await??);
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    // CPU is counted from here: sending and delivering only.
    let before = server_cpu_seconds(&server)?;
    let own_before = proc_stats(std::process::id())?;

    let stop = Arc::new(AtomicBool::new(false));
    let sent_counts: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.senders).map(|_| AtomicU64::new(0)).collect());
    let last_delivery = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    // Members that only listen keep their sending half open for the run.
    let mut idle_writers = Vec::new();
    let start_ns = base.elapsed().as_nanos() as u64;
    for (i, (reader, writer)) in members.into_iter().enumerate() {
        let window = (i < args.senders).then(|| Arc::new(Semaphore::new(args.window)));
        receivers.push(tokio::spawn(receive(
            reader,
            i,
            args.senders,
            base,
            window.clone(),
            last_delivery.clone(),
            sent_counts.clone(),
            stop.clone(),
        )));
        if let Some(window) = window {
            let per_sender_rate = args.rate.map(|r| r / args.senders as f64);
            senders.push(tokio::spawn(send(
                writer,
                i,
                base,
                window,
                per_sender_rate,
                args.padding,
                args.duration,
                sent_counts.clone(),
            )));
        } else {
            idle_writers.push(writer);
        }
    }
    for s in senders {
        idle_writers.push(s.await??);
    }
    let sent: Vec<u64> = sent_counts
        .iter()
        .map(|c| c.load(Ordering::Acquire))
        .collect();
    stop.store(true, Ordering::Release);
    let mut latency = report::histogram();
    let (mut received, mut lost, mut duplicated) = (0u64, 0u64, 0u64);
    let mut readers = Vec::new();
    for r in receivers {
        let (seen, reader) = r.await??;
        readers.push(reader);
        latency.add(&seen.latency).ok();
        received += seen.received;
        lost += seen.lost;
        duplicated += seen.duplicated;
    }
    let total_sent: u64 = sent.iter().sum();
    let expected: u64 = total_sent * (args.clients as u64 - 1);
    drop((readers, idle_writers));
    let delivered = received - duplicated;
    let lost = expected.saturating_sub(delivered).max(lost);
    let received = delivered;
    let elapsed = (last_delivery
        .load(Ordering::Acquire)
        .saturating_sub(start_ns)) as f64
        / 1e9;
    let after = server_cpu_seconds(&server)?;
    let client_cpu = proc_stats(std::process::id())?.cpu_seconds - own_before.cpu_seconds;
    let server_cpu = match (before, after) {
        (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
        _ => None,
    };
    let deliveries_per_sec = received as f64 / elapsed.max(1e-9);
    let sends_per_sec = total_sent as f64 / args.duration;
    println!(
        "fanout ({}{}): {} clients, {} senders, {:.1}s{}: {:.0} deliveries/s, {:.0} sends/s, lost {}, duplicated {}\n  latency {}\n  connect+join {:.2}s{}",
        crate::server::transport_name(),
        match server.node_count() {
            1 => String::new(),
            n => format!(", {n} nodes"),
        },
        args.clients,
        args.senders,
        args.duration,
        args.rate.map(|r| format!(" at {r} msg/s")).unwrap_or_default(),
        deliveries_per_sec,
        sends_per_sec,
        lost,
        duplicated,
        report::describe(&latency),
        connect_secs,
        server_cpu.map(|c| format!(", server CPU {c:.2}s")).unwrap_or_default()
            + &format!(", load generator CPU {client_cpu:.2}s"),
    );
    report::emit(json!({
        "workload": "fanout",
        "transport": crate::server::transport_name(),
        "nodes": server.node_count(),
        "clients": args.clients,
        "senders": args.senders,
        "duration_s": args.duration,
        "rate": args.rate,
        "window": args.window,
        "sent": total_sent,
        "delivered": received,
        "expected": expected,
        "lost": lost,
        "duplicated": duplicated,
        "deliveries_per_s": deliveries_per_sec.round(),
        "sends_per_s": sends_per_sec.round(),
        "latency": report::percentiles(&latency),
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "server_cpu_us_per_delivery": server_cpu.map(|c| (c * 1e6 / received.max(1) as f64 * 1000.0).round() / 1000.0),
        "server": {"flavor": args.target.server_flavor, "threads": args.target.server_threads},
    }));
    anyhow::ensure!(
        lost == 0 && duplicated == 0,
        "{lost} messages lost, {duplicated} duplicated"
    );
    Ok(())
}

async fn connect_member(
    addr: &str,
    i: usize,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<(Reader, Writer)> {
    let options = ConnectOptions {
        bind,
        timeout: Duration::from_secs(30),
        ..crate::server::transport()
    };
    let (mut reader, mut writer, _) = Connection::connect(addr, &options)
        .await
        .with_context(|| format!("client {i} cannot connect"))?;
    writer
        .send(
            Some(1),
            &ClientFrame::Nick {
                nick: format!("b{i}"),
            },
        )
        .await?;
    writer
        .send(Some(2), &ClientFrame::Join { room: ROOM.into() })
        .await?;
    loop {
        let line = reader.next_line().await?.context("closed during join")?;
        if line.starts_with(b"{\"type\":\"error\"") {
            anyhow::bail!("client {i}: {}", String::from_utf8_lossy(&line));
        }
        if line.starts_with(b"{\"type\":\"joined\"") {
            return Ok((reader, writer));
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    mut writer: Writer,
    me: usize,
    base: Instant,
    window: Arc<Semaphore>,
    rate: Option<f64>,
    padding: usize,
    duration: f64,
    sent: Arc<Vec<AtomicU64>>,
) -> anyhow::Result<Writer> {
    let pad = "x".repeat(padding);
    let end = Instant::now() + Duration::from_secs_f64(duration);
    let interval = rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut next = tokio::time::Instant::now();
    let mut seq = 0u64;
    while Instant::now() < end {
        if let Some(interval) = interval {
            next += interval;
            tokio::time::sleep_until(next).await;
        }
        // Closed when this member's receiver failed: it reports why.
        let Ok(permit) = window.acquire().await else {
            break;
        };
        permit.forget();
        seq += 1;
        let ts = base.elapsed().as_nanos() as u64;
        let frame = ClientFrame::Say {
            room: ROOM.into(),
            text: format!("b|{me}|{seq}|{ts}|{pad}"),
        };
        writer.send(None, &frame).await?;
        sent[me].store(seq, Ordering::Release);
    }
    Ok(writer)
}

/// Receives for one member (see [`receive_all`]); if that fails, closes its
/// sending window so that its sender stops instead of waiting forever.
#[allow(clippy::too_many_arguments)]
async fn receive(
    reader: Reader,
    me: usize,
    senders: usize,
    base: Instant,
    window: Option<Arc<Semaphore>>,
    last_delivery: Arc<AtomicU64>,
    sent: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Seen, Reader)> {
    let result = receive_all(
        reader,
        me,
        senders,
        base,
        window.clone(),
        last_delivery,
        sent,
        stop,
    )
    .await;
    if let (Err(_), Some(window)) = (&result, window) {
        window.close();
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn receive_all(
    mut reader: Reader,
    me: usize,
    senders: usize,
    base: Instant,
    window: Option<Arc<Semaphore>>,
    last_delivery: Arc<AtomicU64>,
    sent: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Seen, Reader)> {
    let finder = memchr::memmem::Finder::new(b"\"text\":\"b|");
    let mut last_seq = vec![0u64; senders];
    let mut seen = Seen {
        latency: report::histogram(),
        received: 0,
        lost: 0,
        duplicated: 0,
    };
    loop {
        // Once sending has stopped, finish when everything expected is in.
        if stop.load(Ordering::Acquire)
            && (0..senders).all(|s| s == me || last_seq[s] >= sent[s].load(Ordering::Acquire))
        {
            break;
        }
        // While sending, wake up now and then to notice the stop; after it,
        // allow a generous silence before declaring the rest lost.
        let patience = if stop.load(Ordering::Acquire) {
            Duration::from_secs(3)
        } else {
            Duration::from_millis(200)
        };
        let line = match tokio::time::timeout(patience, reader.next_line()).await {
            Ok(line) => line?.context("server closed the connection")?,
            Err(_) if stop.load(Ordering::Acquire) => {
                // Nothing more is coming: whatever is missing was lost.
                for s in 0..senders {
                    if s != me {
                        seen.lost += sent[s].load(Ordering::Acquire).saturating_sub(last_seq[s]);
                    }
                }
                break;
            }
            Err(_) => continue,
        };
        if line.starts_with(b"{\"type\":\"sent\"") {
            if let Some(w) = &window {
                w.add_permits(1);
            }
            continue;
        }
        if line.starts_with(b"{\"type\":\"bye\"") {
            anyhow::bail!(
                "client {me} disconnected: {}",
                String::from_utf8_lossy(&line)
            );
        }
        if line.starts_with(b"{\"type\":\"error\"") {
            // A refused `say` never gets its `sent`: the sender's window
            // would stay closed and the run hang.
            anyhow::bail!("{}", refusal(me, &line));
        }
        let Some(pos) = finder.find(&line) else {
            continue;
        };
        let mut fields = line[pos + 10..].split(|&b| b == b'|');
        let (Some(sender), Some(seq), Some(ts)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (sender, seq, ts) = (parse(sender), parse(seq), parse(ts));
        let now = base.elapsed().as_nanos() as u64;
        seen.latency
            .record(((now.saturating_sub(ts)) / 1000).max(1))
            .ok();
        seen.received += 1;
        let last = &mut last_seq[sender as usize];
        if seq <= *last {
            seen.duplicated += 1;
        } else {
            seen.lost += seq - *last - 1;
            *last = seq;
        }
        last_delivery.fetch_max(now, Ordering::AcqRel);
    }
    Ok((seen, reader))
}

/// What to tell the operator when the server refuses a sender's message.
fn refusal(me: usize, line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    if text.contains("\"rate_limited\"") {
        format!(
            "the server rate-limits the senders (client {me} got {text}). This benchmark \
             sends as fast as the window allows: run it against a chatd whose [limits] \
             frames_per_second = 0 (as --spawn does), or give --rate below the server's \
             frames_per_second times --senders"
        )
    } else {
        format!("the server refused a message of client {me}: {text}")
    }
}

fn parse(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0, |n, &d| n * 10 + u64::from(d.wrapping_sub(b'0')))
}

/// The same receivers fed by the simplest possible server: one blocking
/// thread that writes each message to every socket in turn.
async fn floor(args: Args) -> anyhow::Result<()> {
    let rate = args.rate.unwrap_or(100.0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let base = Instant::now();
    let mut readers = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..args.clients {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        readers.push(Reader::from_stream(stream, 1 << 16));
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        servers.push(s);
    }
    let messages = (rate * args.duration) as u64;
    let writer = std::thread::spawn(move || -> std::io::Result<Vec<std::net::TcpStream>> {
        use std::io::Write;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now();
        for seq in 1..=messages {
            let due = start + interval * (seq as u32);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let ts = base.elapsed().as_nanos() as u64;
            let line = format!(
                "{{\"type\":\"message\",\"msg_id\":{seq},\"ts\":0,\"kind\":\"room\",\"from\":\"b0\",\"room\":\"#bench\",\"text\":\"b|0|{seq}|{ts}|\"}}\n"
            );
            for s in servers.iter_mut() {
                s.write_all(line.as_bytes())?;
            }
        }
        // Handed back so the sockets stay open until the receivers finish.
        Ok(servers)
    });
    let sent = Arc::new(vec![AtomicU64::new(0)]);
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, reader) in readers.into_iter().enumerate() {
        // `me` = i + 1 so that every receiver expects sender 0's messages.
        tasks.push(tokio::spawn(receive(
            reader,
            i + 1,
            1,
            base,
            None,
            last.clone(),
            sent.clone(),
            stop.clone(),
        )));
    }
    let servers = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    sent[0].store(messages, Ordering::Release);
    stop.store(true, Ordering::Release);
    let mut latency = report::histogram();
    let mut received = 0;
    for t in tasks {
        let (seen, _reader) = t.await??;
        latency.add(&seen.latency).ok();
        received += seen.received;
    }
    drop(servers);
    println!(
        "fanout floor: {} sockets, {} msg/s written by one plain thread: {} deliveries\n  latency {}",
        args.clients, rate, received, report::describe(&latency)
    );
    report::emit(json!({
        "workload": "fanout-floor",
        "clients": args.clients,
        "rate": rate,
        "delivered": received,
        "latency": report::percentiles(&latency),
    }));
    Ok(())
}

/// CPU time of every server process of the run (all nodes and NATS with
/// `--nodes`); `None` when the server's pid is unknown.
fn server_cpu_seconds(server: &Server) -> anyhow::Result<Option<crate::server::ProcStats>> {
    let pids = server.pids();
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = crate::server::ProcStats::default();
    for pid in pids {
        let stats = proc_stats(pid)?;
        total.cpu_seconds += stats.cpu_seconds;
        total.rss_bytes += stats.rss_bytes;
    }
    Ok(Some(total))
}
