//! Background room chat whose latency is measured while another workload
//! (a login storm, a file transfer) runs: a few members, two of them sending
//! at a fixed rate with the send time in the text.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{Connection, Reader, Writer};
use chat_protocol::ClientFrame;
use hdrhistogram::Histogram;

use crate::report;

const ROOM: &str = "#background";

/// Latency histograms per phase (0 = before, 1 = during, 2 = after).
pub struct Chat {
    pub phase: Arc<AtomicUsize>,
    pub latency: Arc<Mutex<[Histogram<u64>; 3]>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Chat {
    /// Starts `members` clients in one room; two send `rate` messages per
    /// second in total.
    pub async fn start(addr: &str, members: usize, rate: f64) -> anyhow::Result<Chat> {
        let base = Instant::now();
        let phase = Arc::new(AtomicUsize::new(0));
        let latency = Arc::new(Mutex::new([
            report::histogram(),
            report::histogram(),
            report::histogram(),
        ]));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let members = members.max(3);
        for i in 0..members {
            let (reader, writer) = join(addr, i).await?;
            let (phase2, latency2, stop2) = (phase.clone(), latency.clone(), stop.clone());
            tasks.push(tokio::spawn(listen(
                reader,
                base,
                phase2,
                latency2,
                stop2.clone(),
            )));
            if i < 2 {
                tasks.push(tokio::spawn(talk(writer, base, rate / 2.0, stop2)));
            } else {
                tasks.push(tokio::spawn(async move {
                    let _keep = writer;
                    while !stop2.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(())
                }));
            }
        }
        Ok(Chat {
            phase,
            latency,
            stop,
            tasks,
        })
    }

    pub fn set_phase(&self, phase: usize) {
        self.phase.store(phase, Ordering::Release);
    }

    /// Stops the chat; returns the histograms of the three phases.
    pub async fn stop(self) -> anyhow::Result<[Histogram<u64>; 3]> {
        self.stop.store(true, Ordering::Release);
        for t in self.tasks {
            t.await??;
        }
        let latency = self.latency.lock().unwrap().clone();
        Ok(latency)
    }
}

async fn join(addr: &str, i: usize) -> anyhow::Result<(Reader, Writer)> {
    let (mut reader, mut writer, _) =
        Connection::connect(addr, &crate::server::transport()).await?;
    writer
        .send(
            Some(1),
            &ClientFrame::Nick {
                nick: format!("bg{i}"),
            },
        )
        .await?;
    writer
        .send(Some(2), &ClientFrame::Join { room: ROOM.into() })
        .await?;
    loop {
        let line = reader.next_line().await?.context("closed while joining")?;
        if line.starts_with(b"{\"type\":\"error\"") {
            anyhow::bail!("background chat: {}", String::from_utf8_lossy(&line));
        }
        if line.starts_with(b"{\"type\":\"joined\"") {
            return Ok((reader, writer));
        }
    }
}

async fn talk(
    mut writer: Writer,
    base: Instant,
    rate: f64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        next += interval;
        tokio::time::sleep_until(next).await;
        let ts = base.elapsed().as_nanos() as u64;
        writer
            .send(
                None,
                &ClientFrame::Say {
                    room: ROOM.into(),
                    text: format!("t|{ts}|"),
                },
            )
            .await?;
    }
    Ok(())
}

async fn listen(
    mut reader: Reader,
    base: Instant,
    phase: Arc<AtomicUsize>,
    latency: Arc<Mutex<[Histogram<u64>; 3]>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let finder = memchr::memmem::Finder::new(b"\"text\":\"t|");
    while !stop.load(Ordering::Acquire) {
        let line = match tokio::time::timeout(Duration::from_millis(100), reader.next_line()).await
        {
            Err(_) => continue,
            Ok(line) => line?.context("background chat connection closed")?,
        };
        let Some(pos) = finder.find(&line) else {
            continue;
        };
        let digits = line[pos + 10..].split(|&b| b == b'|').next().unwrap_or(b"");
        let ts = digits
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d.wrapping_sub(b'0')));
        let now = base.elapsed().as_nanos() as u64;
        let micros = (now.saturating_sub(ts) / 1000).max(1);
        latency.lock().unwrap()[phase.load(Ordering::Acquire)]
            .record(micros)
            .ok();
    }
    Ok(())
}
