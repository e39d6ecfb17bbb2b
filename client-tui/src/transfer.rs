//! File transfer workers, interleaved on the chat connection.
//!
//! Why the chat connection and not one of their own: the server keys files
//! by identity, which for a guest is the nickname, and a second connection
//! cannot hold the same nickname. So each transfer runs in its own task
//! (the UI never waits on it) and hands its request lines to the connection
//! task, which writes them between chat frames. Replies come back by request
//! id: every transfer owns an id range above [`TRANSFER_ID_BASE`], so the
//! connection task routes them without decoding, and every other frame
//! (chat, presence, `file_available`) goes to the front end as before.
//!
//! A worker keeps at most the server's window of requests unanswered, so
//! neither side ever queues more than a few chunks.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chat_client::files::{download_over, hash_file, DownloadLink, FileError, DOWNLOAD_WINDOW};
use chat_client::Received;
use chat_protocol::files::{
    FileAck, FileComplete, FileInfo, FileOffer, FileOffered, FileResume, FileResumed, FileTarget,
};
use chat_protocol::{RequestId, ServerFrame};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Request ids from here up belong to transfers; the front end's own ids
/// count up from 1 and never get near it.
pub const TRANSFER_ID_BASE: RequestId = 1 << 48;
/// Bits of a transfer id that number the requests within one transfer.
const SEQ_BITS: u32 = 24;
/// Most upload chunks kept unanswered, whatever window the server allows:
/// the worker's reply queue must hold every answer.
const MAX_UPLOAD_WINDOW: u32 = 32;
/// Least time between two progress reports (the last one always goes).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Replies buffered for one worker; it never has more requests in flight.
pub const REPLY_QUEUE: usize = 64;

/// The transfer that request `id` belongs to, if any.
pub fn slot_of(id: RequestId) -> Option<u32> {
    (id >= TRANSFER_ID_BASE).then(|| ((id - TRANSFER_ID_BASE) >> SEQ_BITS) as u32)
}

/// A transfer for the connection task to run. `slot` is the client's own
/// number for the transfer (see [`crate::transfers`]).
#[derive(Debug, Clone, PartialEq)]
pub enum TransferJob {
    /// Offer `path` as `name` to `to`, then upload it.
    Upload {
        slot: u32,
        path: PathBuf,
        name: String,
        to: FileTarget,
    },
    /// Continue the upload `transfer` of `path` where the server stopped.
    ResumeUpload {
        slot: u32,
        transfer: String,
        path: PathBuf,
    },
    /// Fetch `file` into `dest` (resuming from `dest.part`), verify it,
    /// and confirm it to the server.
    Download {
        slot: u32,
        file: FileInfo,
        dest: PathBuf,
    },
}

impl TransferJob {
    pub fn slot(&self) -> u32 {
        match self {
            TransferJob::Upload { slot, .. }
            | TransferJob::ResumeUpload { slot, .. }
            | TransferJob::Download { slot, .. } => *slot,
        }
    }
}

/// What a worker reports, through the connection task's event queue.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferEvent {
    pub slot: u32,
    pub kind: TransferEventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransferEventKind {
    /// The server knows the transfer by `transfer`; `done` of `total` bytes
    /// are already there (non-zero when resuming).
    Started {
        transfer: String,
        done: u64,
        total: u64,
    },
    /// `done` bytes are confirmed by the server (upload) or on disk
    /// (download).
    Progress { done: u64 },
    /// Finished and verified; for uploads, who was told.
    Finished { recipients: Vec<String> },
    /// The connection dropped; the transfer can resume after reconnecting.
    Interrupted,
    /// It failed for good; `code` is the server's error code if it refused.
    Failed {
        code: Option<String>,
        message: String,
    },
}

/// Why a worker stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the connection was lost")]
    Lost,
    #[error("{message}")]
    Refused { code: String, message: String },
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A failure reported by the client library's file helpers.
impl From<FileError> for WorkerError {
    fn from(e: FileError) -> WorkerError {
        match e {
            FileError::Refused { code, message } => WorkerError::Refused {
                code: code.to_string(),
                message,
            },
            FileError::Io {
                action,
                path,
                error: source,
            } => WorkerError::Io {
                action,
                path,
                error: source,
            },
            FileError::HashMismatch { found, expected } => WorkerError::Other(format!(
                "the downloaded bytes have SHA-256 {found}, the sender offered {expected}; the partial file was deleted, /accept again"
            )),
            other => WorkerError::Other(other.to_string()),
        }
    }
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> WorkerError + 'a {
    move |source| WorkerError::Io {
        action,
        path: path.to_path_buf(),
        error: source,
    }
}

/// What a worker holds: its way out to the socket, its replies, and the
/// report queue.
pub struct Worker {
    slot: u32,
    next_seq: u64,
    /// Encoded request lines for the connection task to write.
    lines: mpsc::Sender<Vec<u8>>,
    /// Replies to this worker's requests, routed by id.
    replies: mpsc::Receiver<Received>,
    /// Replies that came before their turn.
    early: VecDeque<Received>,
    /// The transfers' own report queue, read by the front end.
    reports: mpsc::Sender<TransferEvent>,
    last_report: Option<Instant>,
    /// Size of the file, and the tenth of it last reported: every tenth is
    /// reported even when faster than [`PROGRESS_EVERY`], for the line mode.
    total: u64,
    last_tenth: u64,
}

impl Worker {
    pub fn new(
        slot: u32,
        lines: mpsc::Sender<Vec<u8>>,
        replies: mpsc::Receiver<Received>,
        reports: mpsc::Sender<TransferEvent>,
    ) -> Worker {
        Worker {
            slot,
            next_seq: 0,
            lines,
            replies,
            early: VecDeque::new(),
            reports,
            last_report: None,
            total: 0,
            last_tenth: 0,
        }
    }

    /// Runs `job` to its end and reports how it went.
    pub async fn run(mut self, job: TransferJob) {
        let result = match job {
            TransferJob::Upload { path, name, to, .. } => self.upload(&path, &name, to).await,
            TransferJob::ResumeUpload { transfer, path, .. } => {
                self.resume_upload(&transfer, &path).await
            }
            TransferJob::Download { file, dest, .. } => {
                self.download(&file, &dest).await.map(|()| Vec::new())
            }
        };
        let kind = match result {
            Ok(recipients) => TransferEventKind::Finished { recipients },
            Err(WorkerError::Lost) => TransferEventKind::Interrupted,
            Err(WorkerError::Refused { code, message }) => TransferEventKind::Failed {
                code: Some(code),
                message,
            },
            Err(e) => TransferEventKind::Failed {
                code: None,
                message: e.to_string(),
            },
        };
        self.report(kind).await;
    }

    async fn report(&mut self, kind: TransferEventKind) {
        if let TransferEventKind::Started { done, total, .. } = &kind {
            self.total = *total;
            self.last_tenth = (done * 10).checked_div(*total).unwrap_or(0);
        }
        let event = TransferEvent {
            slot: self.slot,
            kind,
        };
        let _ = self.reports.send(event).await;
    }

    /// Reports progress, at most every [`PROGRESS_EVERY`] unless `last` or
    /// a new tenth of the file is reached.
    async fn progress(&mut self, done: u64, last: bool) {
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
        if due || last || tenth > self.last_tenth {
            self.last_tenth = tenth;
            self.last_report = Some(Instant::now());
            self.report(TransferEventKind::Progress { done }).await;
        }
    }

    fn next_id(&mut self) -> RequestId {
        let id = TRANSFER_ID_BASE + (u64::from(self.slot) << SEQ_BITS) + self.next_seq;
        self.next_seq = (self.next_seq + 1) % (1 << SEQ_BITS);
        id
    }

    /// Sends `frame` with a fresh id; returns the id.
    async fn send(&mut self, frame: &impl Serialize) -> Result<RequestId, WorkerError> {
        let id = self.next_id();
        let mut value = serde_json::to_value(frame)
            .map_err(|e| WorkerError::Other(format!("cannot encode a request: {e}")))?;
        if let Some(map) = value.as_object_mut() {
            map.insert("id".into(), id.into());
        }
        let mut line = serde_json::to_vec(&value)
            .map_err(|e| WorkerError::Other(format!("cannot encode a request: {e}")))?;
        line.push(b'\n');
        self.lines.send(line).await.map_err(|_| WorkerError::Lost)?;
        Ok(id)
    }

    /// The reply to request `id`; replies to later requests wait their turn.
    async fn reply(&mut self, id: RequestId) -> Result<Received, WorkerError> {
        if let Some(pos) = self.early.iter().position(|f| f.reply_to() == Some(id)) {
            return Ok(self.early.remove(pos).expect("position is valid"));
        }
        loop {
            let frame = self.replies.recv().await.ok_or(WorkerError::Lost)?;
            if frame.reply_to() == Some(id) {
                return Ok(frame);
            }
            if self.early.len() >= REPLY_QUEUE {
                return Err(WorkerError::Other(
                    "the server answered requests that were never sent".into(),
                ));
            }
            self.early.push_back(frame);
        }
    }

    /// Sends `frame` and decodes its reply, which must be of type `kind`.
    async fn request<T: DeserializeOwned>(
        &mut self,
        frame: &impl Serialize,
        kind: &str,
    ) -> Result<T, WorkerError> {
        let id = self.send(frame).await?;
        let reply = self.reply(id).await?;
        expect_kind(reply, kind)
    }

    async fn upload(
        &mut self,
        path: &Path,
        name: &str,
        to: FileTarget,
    ) -> Result<Vec<String>, WorkerError> {
        let (size, sha256) = hash_file(path)
            .await
            .map_err(|e| WorkerError::Other(e.to_string()))?;
        let offer = FileOffer {
            target: to,
            name: name.to_string(),
            size,
            sha256,
        };
        let offered: FileOffered = self.request(&offer, "file_offered").await?;
        self.report(TransferEventKind::Started {
            transfer: offered.transfer.clone(),
            done: 0,
            total: size,
        })
        .await;
        self.send_chunks(
            path,
            &offered.transfer,
            0,
            size,
            offered.chunk_size,
            offered.window,
        )
        .await
    }

    async fn resume_upload(
        &mut self,
        transfer: &str,
        path: &Path,
    ) -> Result<Vec<String>, WorkerError> {
        let resume = FileResume {
            transfer: transfer.to_string(),
        };
        let resumed: FileResumed = self.request(&resume, "file_resumed").await?;
        self.report(TransferEventKind::Started {
            transfer: transfer.to_string(),
            done: resumed.received,
            total: resumed.size,
        })
        .await;
        if resumed.complete {
            self.progress(resumed.size, true).await;
            return Ok(Vec::new());
        }
        self.send_chunks(
            path,
            transfer,
            resumed.received,
            resumed.size,
            resumed.chunk_size,
            resumed.window,
        )
        .await
    }

    /// Sends `path[start..size]`, keeping `window` chunks unanswered.
    async fn send_chunks(
        &mut self,
        path: &Path,
        transfer: &str,
        start: u64,
        size: u64,
        chunk_size: u32,
        window: u32,
    ) -> Result<Vec<String>, WorkerError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(io_error("open", path))?;
        let current = file
            .metadata()
            .await
            .map_err(io_error("inspect", path))?
            .len();
        if current != size {
            return Err(WorkerError::Other(format!(
                "{} changed size since it was offered ({current} bytes now, {size} offered); send it again",
                path.display()
            )));
        }
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io_error("seek in", path))?;
        let chunk_size = u64::from(chunk_size.max(1));
        let mut buf = vec![0u8; chunk_size as usize];
        let mut next = start;
        // An empty file goes as one empty chunk.
        let mut empty_sent = size != 0;
        let mut in_flight: VecDeque<RequestId> = VecDeque::new();
        loop {
            while in_flight.len() < window.clamp(1, MAX_UPLOAD_WINDOW) as usize
                && (next < size || !empty_sent)
            {
                let len = (size - next).min(chunk_size) as usize;
                file.read_exact(&mut buf[..len])
                    .await
                    .map_err(io_error("read", path))?;
                let id = self.next_id();
                let data = base64::engine::general_purpose::STANDARD.encode(&buf[..len]);
                let transfer_json = serde_json::to_string(transfer).expect("strings serialise");
                let line = format!(
                    "{{\"id\":{id},\"type\":\"file_chunk\",\"transfer\":{transfer_json},\"offset\":{next},\"data\":\"{data}\"}}\n"
                );
                self.lines
                    .send(line.into_bytes())
                    .await
                    .map_err(|_| WorkerError::Lost)?;
                next += len as u64;
                empty_sent = true;
                in_flight.push_back(id);
            }
            let Some(id) = in_flight.pop_front() else {
                return Err(WorkerError::Other(
                    "the upload ended without file_complete".into(),
                ));
            };
            let reply = self.reply(id).await?;
            match reply.kind() {
                "file_ack" => {
                    let ack: FileAck = decode(&reply)?;
                    self.progress(ack.received, false).await;
                }
                "file_complete" => {
                    let complete: FileComplete = decode(&reply)?;
                    self.progress(size, true).await;
                    return Ok(complete.recipients);
                }
                _ => return Err(refused(reply)),
            }
        }
    }

    /// Downloads `file` to `dest` with chat-client's download loop, over
    /// this worker's share of the connection.
    async fn download(&mut self, file: &FileInfo, dest: &Path) -> Result<(), WorkerError> {
        download_over(self, file, dest, DOWNLOAD_WINDOW).await
    }
}

/// A download runs over the worker: requests go out between chat frames,
/// replies come routed by id.
impl DownloadLink for Worker {
    type Error = WorkerError;

    async fn send(&mut self, request: &impl Serialize) -> Result<RequestId, WorkerError> {
        Worker::send(self, request).await
    }

    async fn reply(&mut self, id: RequestId) -> Result<Received, WorkerError> {
        Worker::reply(self, id).await
    }

    async fn started(&mut self, file: &FileInfo, have: u64) {
        self.report(TransferEventKind::Started {
            transfer: file.transfer.clone(),
            done: have,
            total: file.size,
        })
        .await;
    }

    async fn progress(&mut self, done: u64) {
        let last = done >= self.total;
        Worker::progress(self, done, last).await;
    }
}

fn expect_kind<T: DeserializeOwned>(reply: Received, kind: &str) -> Result<T, WorkerError> {
    if reply.kind() == kind {
        decode(&reply)
    } else {
        Err(refused(reply))
    }
}

fn decode<T: DeserializeOwned>(frame: &Received) -> Result<T, WorkerError> {
    frame
        .decode_custom()
        .map_err(|e| WorkerError::Other(format!("unexpected reply from the server: {}", e.message)))
}

fn refused(frame: Received) -> WorkerError {
    match frame {
        Received::Core(ServerFrame::Error { code, message, .. }) => WorkerError::Refused {
            code: code.to_string(),
            message,
        },
        other => WorkerError::Other(format!(
            "unexpected '{}' frame from the server",
            other.kind()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_route_back_to_their_transfer() {
        let (lines, _) = mpsc::channel(1);
        let (_, replies) = mpsc::channel(1);
        let (reports, _) = mpsc::channel(1);
        let mut worker = Worker::new(7, lines, replies, reports);
        let first = worker.next_id();
        let second = worker.next_id();
        assert_eq!(slot_of(first), Some(7));
        assert_eq!(slot_of(second), Some(7));
        assert_ne!(first, second);
        assert_eq!(slot_of(1), None);
        assert_eq!(slot_of(TRANSFER_ID_BASE - 1), None);
    }
}
