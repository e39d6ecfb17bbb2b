//! The connection task: connects, reports frames as [`NetEvent`]s, writes
//! what the front end asks for, measures lag with pings, and reconnects with
//! exponential back-off when the link drops.
//!
//! It keeps no chat state: after each connection it reports
//! [`NetEvent::Connected`] and waits for a [`NetCommand::Setup`] with the
//! frames that restore the session (nickname or login, rooms to rejoin),
//! which `update` builds from its state. Requests that arrive before that are
//! held (bounded) and sent after the setup frames, so they cannot overtake it.
//!
//! File transfers run as workers of the connection ([`crate::transfer`]):
//! their request lines are written between chat frames, and replies whose
//! id falls in a transfer's range go back to that worker, never to the
//! front end. When the connection ends, the workers end with it and report
//! themselves interrupted; the front end restarts them on the next one.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chat_client::{ConnectOptions, Connection, Reader, Received, Welcome, Writer};
use chat_protocol::{ClientFrame, RequestId, ServerFrame};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::transfer::{slot_of, TransferEvent, TransferEventKind, TransferJob, Worker};

/// A frame to send: a core frame, or a plugin frame as JSON (accounts,
/// rooms, files), built from its type in `chat_protocol`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Core(ClientFrame),
    Json(Value),
}

impl Outgoing {
    /// A plugin frame from its protocol type.
    fn plugin(frame: &impl serde::Serialize) -> Outgoing {
        // These types serialise to a JSON object by construction.
        Outgoing::Json(serde_json::to_value(frame).expect("a protocol frame is JSON"))
    }
}

impl From<chat_protocol::rooms::RoomRequest> for Outgoing {
    fn from(frame: chat_protocol::rooms::RoomRequest) -> Outgoing {
        Outgoing::plugin(&frame)
    }
}

impl From<chat_protocol::accounts::AccountRequest> for Outgoing {
    fn from(frame: chat_protocol::accounts::AccountRequest) -> Outgoing {
        Outgoing::plugin(&frame)
    }
}

/// What the front end asks of the connection task.
#[derive(Debug, Clone, PartialEq)]
pub enum NetCommand {
    /// Frames restoring the session after [`NetEvent::Connected`].
    Setup(Vec<(RequestId, Outgoing)>),
    /// One request.
    Send(RequestId, Outgoing),
    /// Run a file transfer on this connection (see [`crate::transfer`]).
    Transfer(crate::transfer::TransferJob),
    /// Stop the transfer with this slot (cancelled by the user); a partial
    /// download stays on disk.
    StopTransfer(u32),
    /// Say goodbye and stop (no reconnecting).
    Quit(Option<String>),
}

/// What the connection task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// Attempt `attempt` (from 1) is under way.
    Connecting { attempt: u32 },
    /// Handshake done; send [`NetCommand::Setup`].
    Connected(Welcome),
    /// A frame from the server.
    Frame(Received),
    /// Round trip of the last ping.
    Lag(Duration),
    /// A request could not be written (not connected).
    Undelivered(RequestId),
    /// The link is down; the next attempt is in `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
    /// We quit; the task has ended.
    Closed,
}

/// Where and how to connect, and the timing of pings and retries.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT`.
    pub addr: String,
    pub options: ConnectOptions,
    /// How often to ping; a ping unanswered for twice this drops the link.
    pub ping_every: Duration,
    /// First retry delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Target {
    pub fn new(addr: &str, options: ConnectOptions) -> Target {
        Target {
            addr: addr.to_string(),
            options,
            ping_every: Duration::from_secs(15),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Events buffered between the connection task and the front end; when full
/// the task stops reading the socket (the server's queue absorbs bursts).
const EVENT_QUEUE: usize = 1024;
/// Commands buffered from the front end.
const COMMAND_QUEUE: usize = 256;
/// Requests held while waiting for the setup frames.
const HELD_LIMIT: usize = 256;

/// Transfer reports buffered for the front end (progress is sent at most
/// every 100 ms per transfer; a full queue makes the workers wait).
const TRANSFER_REPORTS: usize = 256;

/// The front end's handle on the connection task.
pub struct Net {
    pub commands: mpsc::Sender<NetCommand>,
    pub events: mpsc::Receiver<NetEvent>,
    /// The transfer workers' reports (progress, end), on a queue of their
    /// own: the workers know nothing of the connection's events.
    pub transfers: mpsc::Receiver<TransferEvent>,
    pub task: JoinHandle<()>,
}

/// Starts the connection task.
pub fn spawn(target: Target) -> Net {
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let (report_tx, report_rx) = mpsc::channel(TRANSFER_REPORTS);
    let task = tokio::spawn(run(target, command_rx, event_tx, report_tx));
    Net {
        commands: command_tx,
        events: event_rx,
        transfers: report_rx,
        task,
    }
}

/// How a connection ended.
enum End {
    /// Lost, with the reason in words.
    Lost(String),
    /// We quit, or the front end is gone.
    Stop,
}

async fn run(
    target: Target,
    mut commands: mpsc::Receiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
    reports: mpsc::Sender<TransferEvent>,
) {
    let mut delay = target.min_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if events.send(NetEvent::Connecting { attempt }).await.is_err() {
            return;
        }
        let connect = Connection::connect(&target.addr, &target.options);
        tokio::pin!(connect);
        let outcome = loop {
            tokio::select! {
                result = &mut connect => break Some(result),
                command = commands.recv() => match command {
                    None | Some(NetCommand::Quit(_)) => break None,
                    Some(NetCommand::Send(id, _)) => {
                        let _ = events.send(NetEvent::Undelivered(id)).await;
                    }
                    Some(NetCommand::Transfer(job)) => {
                        let _ = reports.send(interrupted(job.slot())).await;
                    }
                    Some(NetCommand::Setup(_) | NetCommand::StopTransfer(_)) => {}
                },
            }
        };
        let reason = match outcome {
            None => break,
            Some(Ok((reader, writer, welcome))) => {
                delay = target.min_backoff;
                attempt = 0;
                if events.send(NetEvent::Connected(welcome)).await.is_err() {
                    return;
                }
                let channels = (&mut commands, &events, &reports);
                match session(&target, reader, writer, channels).await {
                    End::Stop => break,
                    End::Lost(reason) => reason,
                }
            }
            Some(Err(e)) => e.to_string(),
        };
        let retry_in = jittered(delay);
        tracing::info!(%reason, ?retry_in, "disconnected");
        if events
            .send(NetEvent::Disconnected { reason, retry_in })
            .await
            .is_err()
        {
            return;
        }
        let sleep = tokio::time::sleep(retry_in);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                command = commands.recv() => match command {
                    None | Some(NetCommand::Quit(_)) => {
                        let _ = events.send(NetEvent::Closed).await;
                        return;
                    }
                    Some(NetCommand::Send(id, _)) => {
                        let _ = events.send(NetEvent::Undelivered(id)).await;
                    }
                    Some(NetCommand::Transfer(job)) => {
                        let _ = reports.send(interrupted(job.slot())).await;
                    }
                    Some(NetCommand::Setup(_) | NetCommand::StopTransfer(_)) => {}
                },
            }
        }
        delay = (delay * 2).min(target.max_backoff);
    }
    let _ = events.send(NetEvent::Closed).await;
}

/// A transfer that could not start or go on for want of a connection.
fn interrupted(slot: u32) -> TransferEvent {
    TransferEvent {
        slot,
        kind: TransferEventKind::Interrupted,
    }
}

/// The transfer workers of one connection. Dropping it (the connection
/// ended) closes their reply queues, so each worker reports itself
/// interrupted rather than being aborted silently.
struct Transfers {
    /// Each running worker's reply queue and task, by slot.
    workers: HashMap<u32, (mpsc::Sender<Received>, JoinHandle<()>)>,
    /// The workers' request lines, written between chat frames.
    lines_tx: mpsc::Sender<Vec<u8>>,
    lines_rx: mpsc::Receiver<Vec<u8>>,
}

/// Request lines buffered from all transfer workers together.
const TRANSFER_LINES: usize = 16;

impl Transfers {
    fn new() -> Transfers {
        let (lines_tx, lines_rx) = mpsc::channel(TRANSFER_LINES);
        Transfers {
            workers: HashMap::new(),
            lines_tx,
            lines_rx,
        }
    }

    fn start(&mut self, job: TransferJob, reports: &mpsc::Sender<TransferEvent>) {
        let slot = job.slot();
        let (reply_tx, reply_rx) = mpsc::channel(crate::transfer::REPLY_QUEUE);
        let worker = Worker::new(slot, self.lines_tx.clone(), reply_rx, reports.clone());
        let task = tokio::spawn(worker.run(job));
        if let Some((_, old)) = self.workers.insert(slot, (reply_tx, task)) {
            old.abort();
        }
    }

    fn stop(&mut self, slot: u32) {
        if let Some((_, task)) = self.workers.remove(&slot) {
            task.abort();
        }
    }

    /// Hands a reply to its worker; a reply for a worker that has ended is
    /// dropped.
    fn route(&mut self, slot: u32, frame: Received) {
        if let Some((replies, _)) = self.workers.get(&slot) {
            if replies.try_send(frame).is_err() {
                tracing::debug!(slot, "reply for a finished transfer dropped");
                self.workers.remove(&slot);
            }
        }
    }
}

/// Up to a quarter more than `delay`, so that clients dropped together do
/// not all come back at the same instant.
fn jittered(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    delay + delay.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

async fn write(writer: &mut Writer, id: Option<RequestId>, frame: &Outgoing) -> Result<(), String> {
    let result = match frame {
        Outgoing::Core(frame) => writer.send(id, frame).await,
        Outgoing::Json(value) => writer.send_json(id, value).await,
    };
    result.map_err(|e| e.to_string())
}

/// Runs one connection until it ends.
async fn session(
    target: &Target,
    mut reader: Reader,
    mut writer: Writer,
    (commands, events, reports): (
        &mut mpsc::Receiver<NetCommand>,
        &mpsc::Sender<NetEvent>,
        &mpsc::Sender<TransferEvent>,
    ),
) -> End {
    let mut ready = false;
    let mut held: VecDeque<(RequestId, Outgoing)> = VecDeque::new();
    let mut quit_after_setup: Option<Option<String>> = None;
    let mut quitting = false;
    let mut pings = tokio::time::interval(target.ping_every);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping_seq: u64 = 0;
    let mut awaiting_pong: Option<(u64, Instant)> = None;
    let mut transfers = Transfers::new();
    let mut held_jobs: Vec<TransferJob> = Vec::new();
    loop {
        tokio::select! {
            Some(line) = transfers.lines_rx.recv() => {
                if let Err(e) = writer.send_raw(&line).await {
                    return End::Lost(e.to_string());
                }
            }
            frame = reader.next() => match frame {
                Ok(Some(frame)) if frame.reply_to().and_then(slot_of).is_some() => {
                    let slot = frame.reply_to().and_then(slot_of).expect("checked");
                    transfers.route(slot, frame);
                }
                Ok(Some(Received::Core(ServerFrame::Pong { token: Some(token), .. })))
                    if token.get("lag").and_then(Value::as_u64).is_some() =>
                {
                    if let Some((seq, sent)) = awaiting_pong {
                        if token.get("lag").and_then(Value::as_u64) == Some(seq) {
                            awaiting_pong = None;
                            if events.send(NetEvent::Lag(sent.elapsed())).await.is_err() {
                                return End::Stop;
                            }
                        }
                    }
                }
                Ok(Some(frame)) => {
                    if events.send(NetEvent::Frame(frame)).await.is_err() {
                        return End::Stop;
                    }
                }
                Ok(None) if quitting => return End::Stop,
                Ok(None) => return End::Lost("the server closed the connection".into()),
                Err(e) if quitting => {
                    tracing::debug!(error = %e, "after quit");
                    return End::Stop;
                }
                Err(e) => return End::Lost(e.to_string()),
            },
            command = commands.recv(), if !quitting => match command {
                None => return End::Stop,
                Some(NetCommand::Setup(frames)) => {
                    for (id, frame) in frames.iter().chain(held.iter()) {
                        if let Err(e) = write(&mut writer, Some(*id), frame).await {
                            return End::Lost(e);
                        }
                    }
                    held.clear();
                    ready = true;
                    for job in held_jobs.drain(..) {
                        transfers.start(job, reports);
                    }
                    if let Some(reason) = quit_after_setup.take() {
                        if write(&mut writer, None, &Outgoing::Core(ClientFrame::Quit { reason })).await.is_err() {
                            return End::Stop;
                        }
                        quitting = true;
                    }
                }
                Some(NetCommand::Send(id, frame)) if ready => {
                    if let Err(e) = write(&mut writer, Some(id), &frame).await {
                        let _ = events.send(NetEvent::Undelivered(id)).await;
                        return End::Lost(e);
                    }
                }
                Some(NetCommand::Send(id, frame)) => {
                    if held.len() < HELD_LIMIT {
                        held.push_back((id, frame));
                    } else if events.send(NetEvent::Undelivered(id)).await.is_err() {
                        return End::Stop;
                    }
                }
                Some(NetCommand::Transfer(job)) if ready => transfers.start(job, reports),
                Some(NetCommand::Transfer(job)) => {
                    if held_jobs.len() < HELD_LIMIT {
                        held_jobs.push(job);
                    } else if reports.send(interrupted(job.slot())).await.is_err() {
                        return End::Stop;
                    }
                }
                Some(NetCommand::StopTransfer(slot)) => {
                    held_jobs.retain(|job| job.slot() != slot);
                    transfers.stop(slot);
                }
                Some(NetCommand::Quit(reason)) if ready => {
                    if write(&mut writer, None, &Outgoing::Core(ClientFrame::Quit { reason })).await.is_err() {
                        return End::Stop;
                    }
                    quitting = true;
                }
                Some(NetCommand::Quit(reason)) => quit_after_setup = Some(reason),
            },
            _ = pings.tick(), if ready && !quitting => {
                if let Some((_, sent)) = awaiting_pong {
                    if sent.elapsed() >= target.ping_every * 2 {
                        return End::Lost(format!(
                            "no answer to a ping for {} s",
                            sent.elapsed().as_secs()
                        ));
                    }
                    continue;
                }
                ping_seq += 1;
                awaiting_pong = Some((ping_seq, Instant::now()));
                let ping = Outgoing::Core(ClientFrame::Ping { token: Some(json!({ "lag": ping_seq })) });
                if let Err(e) = write(&mut writer, None, &ping).await {
                    return End::Lost(e);
                }
            }
        }
    }
}
