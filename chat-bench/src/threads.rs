//! `thread-cost`: what the thread-per-connection model would cost. Opens C
//! loopback connections and parks one OS thread on each (blocked in `read`,
//! as a thread-per-connection server would), then reports this process's
//! memory per thread and how long spawning took. chatd itself is not
//! involved; the figure is compared with `conns` in docs/performance.md.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use serde_json::json;

use crate::report;
use crate::server::proc_stats;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Connections, each with its own blocked thread.
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    /// Stack size per thread in KiB (Rust's default is 2048).
    #[arg(long, default_value_t = 2048)]
    pub stack_kib: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pid = std::process::id();
    tokio::task::spawn_blocking(move || measure(args, pid)).await?
}

fn measure(args: Args, pid: u32) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut clients = Vec::with_capacity(args.count);
    let mut servers = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        clients.push(TcpStream::connect(addr)?);
        servers.push(listener.accept()?.0);
    }
    let before = proc_stats(pid)?;
    let started = Instant::now();
    let mut threads = Vec::with_capacity(args.count);
    for mut socket in servers {
        threads.push(
            std::thread::Builder::new()
                .stack_size(args.stack_kib * 1024)
                .spawn(move || {
                    // A connection handler's typical buffer, on the stack.
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf);
                })?,
        );
    }
    let spawn_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = proc_stats(pid)?;
    let per_thread = (after.rss_bytes as f64 - before.rss_bytes as f64) / args.count as f64;
    // Wake and end every thread.
    drop(clients);
    for t in threads {
        let _ = t.join();
    }
    println!(
        "thread-cost: {} blocked threads: {:.0} bytes RSS per thread (stack reserve {} KiB each), spawned in {:.3}s",
        args.count, per_thread, args.stack_kib, spawn_secs
    );
    report::emit(json!({
        "workload": "thread-cost",
        "threads": args.count,
        "rss_bytes_per_thread": per_thread.round(),
        "stack_kib": args.stack_kib,
        "spawn_s": spawn_secs,
    }));
    Ok(())
}
