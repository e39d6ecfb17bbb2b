//! chat-bench: load generator for chatd.
//!
//! Workloads (each prints a human summary and one JSON line):
//! * `fanout`   N clients in one room, S of them sending; deliveries/s,
//!   latency percentiles, lost and duplicated messages.
//! * `conns`    C idle logged-in connections; connect time and the server's
//!   memory and CPU per connection.
//! * `pingpong` direct-message round trips between two clients.
//! * `logins`   a storm of concurrent logins while a room chats.
//! * `transfer` file throughput through the server and chat latency meanwhile.
//! * `thread-cost` the memory a thread-per-connection design would need.
//!
//! Point it at a running server (`--server ADDR`, and `--server-pid PID` for
//! memory figures), or let it start one (`--spawn`, using the `chatd` binary
//! next to this one or `--chatd PATH`).

mod background;
mod conns;
mod fanout;
mod history;
mod logins;
mod nats;
mod pingpong;
mod relay;
mod report;
mod server;
mod threads;
mod transfer;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "chat-bench", version, about = "Load generator for chatd")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// N clients in one room, S senders; throughput, latency, loss.
    Fanout(fanout::Args),
    /// Many idle connections; memory and CPU per connection.
    Conns(conns::Args),
    /// Direct-message round trips between two clients.
    Pingpong(pingpong::Args),
    /// Concurrent logins while a room chats (accounts plugin).
    Logins(logins::Args),
    /// File throughput and chat latency meanwhile (files plugin).
    Transfer(transfer::Args),
    /// Memory per OS thread blocked on a connection (thread-per-connection model).
    ThreadCost(threads::Args),
    /// The message log: write rate, page latency, bytes per message.
    History(history::Args),
    /// The relay floor `pingpong --floor` starts (prints its address).
    #[command(hide = true)]
    RelayFloor(relay::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cli = match cli.workload {
        // Runs on a runtime built as chatd builds its own.
        Workload::RelayFloor(args) => return relay::run(args),
        workload => Cli { workload },
    };
    let threads = match &cli.workload {
        Workload::Fanout(a) => a.target.client_threads,
        Workload::Conns(a) => a.target.client_threads,
        Workload::Pingpong(a) => a.target.client_threads,
        Workload::Logins(a) => a.target.client_threads,
        Workload::Transfer(a) => a.target.client_threads,
        Workload::ThreadCost(_) => 1,
        Workload::History(a) => a.target.client_threads,
        Workload::RelayFloor(_) => unreachable!("handled above"),
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b
    };
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        match cli.workload {
            Workload::Fanout(args) => fanout::run(args).await,
            Workload::History(args) => history::run(args).await,
            Workload::Conns(args) => conns::run(args).await,
            Workload::Pingpong(args) => pingpong::run(args).await,
            Workload::Logins(args) => logins::run(args).await,
            Workload::Transfer(args) => transfer::run(args).await,
            Workload::ThreadCost(args) => threads::run(args).await,
            Workload::RelayFloor(_) => unreachable!("handled above"),
        }
    })
}
