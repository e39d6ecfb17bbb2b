//! `history`: the message log under load. Fills one room with many
//! messages from pipelined senders (the rate the log sustains: `sent` means
//! stored), then reads random pages of it (the latency of `history`), and
//! reports the bytes the database spends per message beyond its text.

use std::time::Instant;

use anyhow::{bail, Context};
use chat_client::{Client, Received};
use chat_protocol::{ClientFrame, ServerFrame};
use serde_json::json;

use crate::report;
use crate::server::{Server, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Messages to store in the room before reading.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Concurrent senders filling the room.
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Messages a sender has in flight (pipelined) before its `sent` replies.
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 40)]
    pub text_bytes: usize,
    /// Pages to read (random positions, 100 messages each).
    #[arg(long, default_value_t = 2000)]
    pub pages: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.target.history == "off" {
        bail!("the history workload needs --history on");
    }
    let server = Server::start(&args.target)?;
    let room = "#history-bench";
    let options = crate::server::transport();

    // Fill: each sender pipelines `window` messages and tops up as `sent`
    // replies (= stored) come back.
    let started = Instant::now();
    let per_sender = args.messages / args.senders as u64;
    let mut tasks = Vec::new();
    for s in 0..args.senders {
        let addr = server.addr.clone();
        let options = options.clone();
        let window = args.window;
        let text = "x".repeat(args.text_bytes);
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr, &options).await?;
            c.request_ok(&ClientFrame::Nick {
                nick: format!("writer{s}"),
            })
            .await?;
            c.request_ok(&ClientFrame::Join { room: room.into() })
                .await?;
            let (mut sent, mut stored) = (0u64, 0u64);
            while stored < per_sender {
                while sent < per_sender && sent - stored < window {
                    c.writer
                        .send(
                            None,
                            &ClientFrame::Say {
                                room: room.into(),
                                text: text.clone(),
                            },
                        )
                        .await?;
                    sent += 1;
                }
                match c.reader.next().await?.context("server closed")? {
                    Received::Core(ServerFrame::Sent { .. }) => stored += 1,
                    Received::Core(ServerFrame::Error { code, message, .. }) => {
                        bail!("send refused: {code}: {message}")
                    }
                    _ => {}
                }
            }
            Ok::<u64, anyhow::Error>(stored)
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await??;
    }
    let fill_secs = started.elapsed().as_secs_f64();
    let write_rate = stored as f64 / fill_secs;
    println!("history: stored {stored} messages in {fill_secs:.1} s: {write_rate:.0} messages/s (each acknowledged as stored)");

    // Read: random full pages of 100 going back from random points.
    let mut reader = Client::connect(&server.addr, &options).await?;
    reader
        .request_ok(&ClientFrame::Nick {
            nick: "reader".into(),
        })
        .await?;
    reader
        .request_ok(&ClientFrame::Join { room: room.into() })
        .await?;
    let newest = match reader
        .request_json(&json!({"type": "history", "room": room, "limit": 1}))
        .await?
    {
        Received::Core(ServerFrame::History { messages, .. }) => messages
            .last()
            .map(|m| m.msg_id)
            .context("the room is empty")?,
        other => bail!("unexpected reply to history: {other:?}"),
    };
    let oldest = newest.saturating_sub(stored * 2);
    let mut latency = report::histogram();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..args.pages {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let before = oldest + 100 + seed % (newest - oldest).max(1);
        let t0 = Instant::now();
        let reply = reader
            .request_json(&json!({"type": "history", "room": room, "before": before, "limit": 100}))
            .await?;
        latency.record(t0.elapsed().as_micros().max(1) as u64).ok();
        if !matches!(reply, Received::Core(ServerFrame::History { .. })) {
            bail!("unexpected reply to history: {reply:?}");
        }
    }
    println!(
        "history: pages of 100 from a room of {stored}: {}",
        report::describe(&latency)
    );

    // Bytes on disk per message beyond its text (the database and its WAL).
    let data = server
        .data_dir()
        .context("--spawn to measure the database size")?;
    let mut bytes = 0u64;
    for entry in std::fs::read_dir(&data)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("chatd.db") {
            bytes += entry.metadata()?.len();
        }
    }
    let per_message = bytes as f64 / stored as f64 - args.text_bytes as f64;
    println!(
        "history: database {:.1} MB, {per_message:.0} bytes per message besides its {}-byte text",
        bytes as f64 / 1e6,
        args.text_bytes
    );
    report::emit(json!({
        "workload": "history",
        "transport": crate::server::transport_name(),
        "stored": stored,
        "write_rate_per_s": write_rate.round(),
        "page_latency": report::percentiles(&latency),
        "bytes_per_message_besides_text": per_message.round(),
    }));
    Ok(())
}
