//! `logins`: a storm of concurrent logins (accounts plugin) while a room is
//! chatting. Reports login throughput and latency, and the room's latency
//! before and during the storm.

use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{ConnectOptions, Connection, Reader, Writer};
use serde_json::json;

use crate::background::Chat;
use crate::report;
use crate::server::{Server, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Concurrent logins in the storm.
    #[arg(long, default_value_t = 100)]
    pub logins: usize,
    /// Members of the background room.
    #[arg(long, default_value_t = 20)]
    pub chatters: usize,
    /// Background room messages per second.
    #[arg(long, default_value_t = 100.0)]
    pub chat_rate: f64,
    /// Spawned server: password hashes computed at once.
    #[arg(long, default_value_t = 1)]
    pub hash_slots: usize,
}

const PASSWORD: &str = "bench password 123";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let auth = format!(
        "[[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\nallow_guests = true\n\
         [plugin.config.argon2]\nmax_concurrent = {}\nmax_waiting = 100000\n\
         [plugin.config.throttle]\naccount_failures = 1000\naddress_failures = 100000\n",
        args.hash_slots
    );
    let server = Server::start_with(&args.target, &auth)?;
    let addr = server.addr.clone();

    // Accounts first (registration hashes too; not part of the measurement).
    let mut setup = Vec::new();
    for i in 0..args.logins {
        let addr = addr.clone();
        setup.push(tokio::spawn(async move {
            let (mut r, mut w) = connect(&addr).await?;
            auth_frame(&mut r, &mut w, "register", i).await?;
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in setup {
        t.await??;
    }

    let chat = Chat::start(&addr, args.chatters, args.chat_rate).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    chat.set_phase(1);
    let storm_start = Instant::now();
    let mut storm = Vec::new();
    for i in 0..args.logins {
        let addr = addr.clone();
        storm.push(tokio::spawn(async move {
            let (mut r, mut w) = connect(&addr).await?;
            let t0 = Instant::now();
            auth_frame(&mut r, &mut w, "login", i).await?;
            Ok::<_, anyhow::Error>((t0.elapsed(), r, w))
        }));
    }
    let mut login_latency = report::histogram();
    let mut sessions = Vec::new();
    for t in storm {
        let (took, r, w) = t.await??;
        login_latency.record(took.as_micros().max(1) as u64).ok();
        sessions.push((r, w));
    }
    let storm_secs = storm_start.elapsed().as_secs_f64();
    chat.set_phase(2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let [before, during, _after] = chat.stop().await?;
    drop(sessions);
    let logins_per_sec = args.logins as f64 / storm_secs;
    println!(
        "logins: {} concurrent logins in {:.2}s ({:.0}/s, {} hash slot(s)); login {}\n  room chat before: {}\n  room chat during: {}",
        args.logins,
        storm_secs,
        logins_per_sec,
        args.hash_slots,
        report::describe(&login_latency),
        report::describe(&before),
        report::describe(&during),
    );
    report::emit(json!({
        "workload": "logins",
        "transport": crate::server::transport_name(),
        "logins": args.logins,
        "storm_s": storm_secs,
        "logins_per_s": logins_per_sec.round(),
        "hash_slots": args.hash_slots,
        "login_latency": report::percentiles(&login_latency),
        "chat_before": report::percentiles(&before),
        "chat_during": report::percentiles(&during),
        "server": {"flavor": args.target.server_flavor, "threads": args.target.server_threads},
    }));
    Ok(())
}

async fn connect(addr: &str) -> anyhow::Result<(Reader, Writer)> {
    let options = ConnectOptions {
        timeout: Duration::from_secs(60),
        ..crate::server::transport()
    };
    let (r, w, _) = Connection::connect(addr, &options).await?;
    Ok((r, w))
}

async fn auth_frame(r: &mut Reader, w: &mut Writer, kind: &str, i: usize) -> anyhow::Result<()> {
    w.send_json(
        Some(1),
        &json!({"type": kind, "user": format!("user{i}"), "password": PASSWORD}),
    )
    .await?;
    loop {
        let line = r.next_line().await?.context("closed during login")?;
        if line.starts_with(b"{\"type\":\"logged_in\"") {
            return Ok(());
        }
        if line.starts_with(b"{\"type\":\"error\"") {
            anyhow::bail!("{kind} user{i}: {}", String::from_utf8_lossy(&line));
        }
    }
}
