//! File transfer with the server's `files` plugin: upload and download with
//! progress callbacks, resumable after a dropped connection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chat_client::files::FileError> {
//! use chat_client::files::{self, Recipient};
//! use chat_client::Client;
//! let mut alice = Client::connect_as("127.0.0.1:7878", "alice").await?;
//! let sent = files::upload(&mut alice, "report.pdf".as_ref(), &Recipient::User("bob".into()),
//!     |p| println!("{}/{} bytes", p.done, p.total)).await?;
//! // After a dropped connection, on a new one:
//! // files::resume_upload(&mut alice, &sent.transfer, "report.pdf".as_ref(), |_| {}).await?;
//!
//! let mut bob = Client::connect_as("127.0.0.1:7878", "bob").await?;
//! for file in files::list(&mut bob).await?.incoming {
//!     // Resumes by itself from `<dest>.part` if an earlier attempt was cut.
//!     files::download(&mut bob, &file, format!("inbox/{}", file.name).as_ref(), |_| {}).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! Both directions keep a window of requests in flight (the server's
//! `window`, 8 by default) so the connection stays busy without the server
//! ever holding more than one chunk of ours. Frames that are not replies to
//! the transfer (chat messages, presence) are kept, in order, for
//! [`Client::recv`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use base64::Engine;
use chat_protocol::files::{
    FileAck, FileCancel, FileComplete, FileData, FileDecline, FileGet, FileInfo, FileList,
    FileListing, FileOffer, FileOffered, FileReceived, FileResume, FileResumed, FileTarget,
};
use chat_protocol::{ErrorCode, RequestId, ServerFrame};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{Client, ClientError, Received};

/// How far a transfer has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub transfer: String,
    /// Bytes confirmed by the server (upload) or written to disk (download).
    pub done: u64,
    pub total: u64,
}

/// Watches a transfer: its progress, and every other frame that arrives on
/// the connection meanwhile (chat keeps flowing during a transfer).
///
/// The plain functions ([`upload`], [`download`], ...) take a progress
/// closure and keep the other frames, in order, for [`Client::recv`]; an
/// application that must show chat during a long transfer implements
/// [`other_frame`](Self::other_frame) and uses the `_observed` variants.
pub trait Observer {
    fn progress(&mut self, progress: Progress);

    /// A frame that is not part of the transfer arrived. Return it to keep
    /// it for [`Client::recv`], or `None` once handled.
    fn other_frame(&mut self, frame: Received) -> Option<Received> {
        Some(frame)
    }
}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn progress(&mut self, progress: Progress) {
        (**self).progress(progress)
    }

    fn other_frame(&mut self, frame: Received) -> Option<Received> {
        (**self).other_frame(frame)
    }
}

/// A progress closure as an observer.
struct OnProgress<F>(F);

impl<F: FnMut(Progress)> Observer for OnProgress<F> {
    fn progress(&mut self, progress: Progress) {
        (self.0)(progress)
    }
}

/// Who a file goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A user, by nickname.
    User(String),
    /// Every member of a room (when the upload completes) but the sender.
    Room(String),
}

/// A finished, verified upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub transfer: String,
    pub size: u64,
    pub sha256: String,
    /// Who was told it is available (empty when resuming an upload whose
    /// completion the client missed).
    pub recipients: Vec<String>,
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The server answered with an `error` frame.
    #[error("the server refused: {code}: {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("unexpected reply from the server: {0}")]
    Protocol(String),
    /// The downloaded bytes are not what the sender offered; the partial
    /// file was deleted.
    #[error("the downloaded file has SHA-256 {found}, expected {expected}; it was deleted")]
    HashMismatch { found: String, expected: String },
}

impl FileError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            FileError::Refused { code, .. } => Some(code.as_str()),
            _ => None,
        }
    }
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        action,
        path: path.to_path_buf(),
        error: source,
    }
}

/// Uploads a file under its own file name.
pub async fn upload(
    client: &mut Client,
    path: &Path,
    to: &Recipient,
    progress: impl FnMut(Progress),
) -> Result<Uploaded, FileError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| FileError::Protocol(format!("{} has no usable file name", path.display())))?
        .to_string();
    upload_as_observed(client, path, &name, to, OnProgress(progress)).await
}

/// Uploads a file under the given name: hashes it, offers it, sends it.
pub async fn upload_as(
    client: &mut Client,
    path: &Path,
    name: &str,
    to: &Recipient,
    progress: impl FnMut(Progress),
) -> Result<Uploaded, FileError> {
    upload_as_observed(client, path, name, to, OnProgress(progress)).await
}

/// [`upload_as`] with an [`Observer`].
pub async fn upload_as_observed(
    client: &mut Client,
    path: &Path,
    name: &str,
    to: &Recipient,
    observer: impl Observer,
) -> Result<Uploaded, FileError> {
    let (size, sha256) = hash_file(path).await?;
    let target = match to {
        Recipient::User(nick) => FileTarget {
            to: Some(nick.clone()),
            room: None,
        },
        Recipient::Room(room) => FileTarget {
            to: None,
            room: Some(room.clone()),
        },
    };
    let offer = FileOffer {
        target,
        name: name.to_string(),
        size,
        sha256,
    };
    let offered: FileOffered = request(client, &offer, "file_offered").await?;
    send_chunks(
        client,
        path,
        &offered.transfer,
        0,
        size,
        offered.chunk_size,
        offered.window,
        observer,
    )
    .await
}

/// Continues an interrupted upload of `path` from the last offset the
/// server confirmed (after reconnecting, or a server restart).
pub async fn resume_upload(
    client: &mut Client,
    transfer: &str,
    path: &Path,
    progress: impl FnMut(Progress),
) -> Result<Uploaded, FileError> {
    resume_upload_observed(client, transfer, path, OnProgress(progress)).await
}

/// [`resume_upload`] with an [`Observer`].
pub async fn resume_upload_observed(
    client: &mut Client,
    transfer: &str,
    path: &Path,
    mut observer: impl Observer,
) -> Result<Uploaded, FileError> {
    let resumed: FileResumed = request(
        client,
        &FileResume {
            transfer: transfer.to_string(),
        },
        "file_resumed",
    )
    .await?;
    if resumed.complete {
        observer.progress(Progress {
            transfer: transfer.to_string(),
            done: resumed.size,
            total: resumed.size,
        });
        let (_, sha256) = hash_file(path).await?;
        return Ok(Uploaded {
            transfer: transfer.to_string(),
            size: resumed.size,
            sha256,
            recipients: Vec::new(),
        });
    }
    send_chunks(
        client,
        path,
        transfer,
        resumed.received,
        resumed.size,
        resumed.chunk_size,
        resumed.window,
        observer,
    )
    .await
}

/// Sends `path[start..size]` in chunks, keeping `window` unacknowledged.
#[allow(clippy::too_many_arguments)]
async fn send_chunks(
    client: &mut Client,
    path: &Path,
    transfer: &str,
    start: u64,
    size: u64,
    chunk_size: u32,
    window: u32,
    mut observer: impl Observer,
) -> Result<Uploaded, FileError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(io_error("open", path))?;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(io_error("seek in", path))?;
    // Tells the caller the transfer id before anything can fail.
    observer.progress(Progress {
        transfer: transfer.to_string(),
        done: start,
        total: size,
    });
    let transfer_json = serde_json::to_string(transfer).expect("strings serialise");
    let mut buf = vec![0u8; chunk_size.max(1) as usize];
    let mut next = start;
    // An empty file is sent as one empty chunk.
    let mut empty_sent = size != 0;
    let mut in_flight: VecDeque<u64> = VecDeque::new();
    let first_id = client.next_id;
    loop {
        while in_flight.len() < window.max(1) as usize && (next < size || !empty_sent) {
            let len = (size - next).min(u64::from(chunk_size)) as usize;
            file.read_exact(&mut buf[..len])
                .await
                .map_err(io_error("read", path))?;
            let id = client.next_id();
            let mut line = format!(
                "{{\"id\":{id},\"type\":\"file_chunk\",\"transfer\":{transfer_json},\"offset\":{next},\"data\":\""
            )
            .into_bytes();
            let data_start = line.len();
            line.resize(data_start + base64::encoded_len(len, true).unwrap_or(0), 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(&buf[..len], &mut line[data_start..])
                .expect("buffer sized by encoded_len");
            line.truncate(data_start + written);
            line.extend_from_slice(b"\"}\n");
            client.writer.send_raw(&line).await?;
            next += len as u64;
            empty_sent = true;
            in_flight.push_back(id);
        }
        let Some(id) = in_flight.pop_front() else {
            return Err(FileError::Protocol(
                "the upload ended without file_complete".into(),
            ));
        };
        let reply = reply_to(client, id, first_id, &mut observer).await?;
        match reply.kind() {
            "file_ack" => {
                let ack: FileAck = decode(&reply)?;
                observer.progress(Progress {
                    transfer: transfer.to_string(),
                    done: ack.received,
                    total: size,
                });
            }
            "file_complete" => {
                let complete: FileComplete = decode(&reply)?;
                observer.progress(Progress {
                    transfer: transfer.to_string(),
                    done: size,
                    total: size,
                });
                return Ok(Uploaded {
                    transfer: complete.transfer,
                    size: complete.size,
                    sha256: complete.sha256,
                    recipients: complete.recipients,
                });
            }
            _ => return Err(refused(reply)),
        }
    }
}

/// Downloads a file to `dest`, resuming from `<dest>.part` if an earlier
/// attempt was cut. The bytes are verified against the offered SHA-256
/// before `dest` appears; then the server is told the file was received.
pub async fn download(
    client: &mut Client,
    file: &FileInfo,
    dest: &Path,
    progress: impl FnMut(Progress),
) -> Result<(), FileError> {
    download_observed(client, file, dest, OnProgress(progress)).await
}

/// [`download`] with an [`Observer`].
pub async fn download_observed(
    client: &mut Client,
    file: &FileInfo,
    dest: &Path,
    mut observer: impl Observer,
) -> Result<(), FileError> {
    let first_id = client.next_id;
    let mut link = ClientLink {
        client,
        first_id,
        observer: &mut observer,
        transfer: file.transfer.clone(),
        total: file.size,
    };
    download_over(&mut link, file, dest, DOWNLOAD_WINDOW).await
}

/// `file_get` requests a download keeps in flight.
pub const DOWNLOAD_WINDOW: usize = 8;

/// What a download needs of its connection: send a request, wait for the
/// reply to one, hear of progress. [`download`] runs over a [`Client`]; a
/// program that shares one connection between chat and transfers (the
/// terminal client runs each transfer in a task of its own, its requests
/// written between chat frames) implements it to run the same
/// [`download_over`].
pub trait DownloadLink {
    /// The link's own error; failures of the download itself (a refusal,
    /// a bad reply, the disk, a wrong checksum) arrive as a [`FileError`].
    type Error: From<FileError>;
    /// Sends `request`; returns its id.
    fn send(
        &mut self,
        request: &impl serde::Serialize,
    ) -> impl std::future::Future<Output = Result<RequestId, Self::Error>>;
    /// The reply to request `id` (replies to later ones wait their turn).
    fn reply(
        &mut self,
        id: RequestId,
    ) -> impl std::future::Future<Output = Result<Received, Self::Error>>;
    /// The download begins, `have` bytes of `file` already on disk (from
    /// an earlier attempt).
    fn started(&mut self, file: &FileInfo, have: u64) -> impl std::future::Future<Output = ()>;
    /// `done` bytes of the file are on disk.
    fn progress(&mut self, done: u64) -> impl std::future::Future<Output = ()>;
}

/// Downloads `file` to `dest` over `link`, resuming from `<dest>.part`,
/// keeping `window` `file_get` requests in flight. The bytes are verified
/// against the offered SHA-256 before `dest` appears; then the server is
/// told the file was received.
pub async fn download_over<L: DownloadLink>(
    link: &mut L,
    file: &FileInfo,
    dest: &Path,
    window: usize,
) -> Result<(), L::Error> {
    let part = part_path(dest);
    let (mut out, have) = open_part(&part, file.size).await?;
    link.started(file, have).await;
    let received = receive(link, file, &part, &mut out, have, window).await;
    // Whatever happened, what was received is on disk for a resume.
    out.flush().await.map_err(io_error("write", &part))?;
    received?;
    out.sync_all().await.map_err(io_error("write", &part))?;
    drop(out);
    let (_, found) = hash_file(&part).await?;
    if found != file.sha256 {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(FileError::HashMismatch {
            found,
            expected: file.sha256.clone(),
        }
        .into());
    }
    tokio::fs::rename(&part, dest)
        .await
        .map_err(io_error("rename", &part))?;
    let done = FileReceived {
        transfer: file.transfer.clone(),
    };
    let id = link.send(&done).await?;
    match link.reply(id).await? {
        Received::Core(ServerFrame::Ok { .. }) => Ok(()),
        other => Err(refused(other).into()),
    }
}

/// Pulls the file from `have` to its end into `out`, keeping a window of
/// `file_get` requests in flight.
async fn receive<L: DownloadLink>(
    link: &mut L,
    file: &FileInfo,
    part: &Path,
    out: &mut tokio::fs::File,
    mut have: u64,
    window: usize,
) -> Result<(), L::Error> {
    let total = file.size;
    // The first reply tells the server's chunk size; then keep a window.
    let mut chunk: Option<u64> = None;
    let mut next = have;
    let mut in_flight: VecDeque<(RequestId, u64)> = VecDeque::new();
    while have < total {
        let limit = if chunk.is_some() { window } else { 1 };
        while in_flight.len() < limit && next < total {
            let get = FileGet {
                transfer: file.transfer.clone(),
                offset: next,
            };
            let id = link.send(&get).await?;
            in_flight.push_back((id, next));
            next = chunk.map_or(total, |c| (next + c).min(total));
        }
        let (id, offset) = in_flight.pop_front().expect("a request is in flight");
        let reply = link.reply(id).await?;
        let (bytes, eof) = chunk_from_reply(reply, offset)?;
        if chunk.is_none() {
            chunk = Some(bytes.len().max(1) as u64);
            next = offset + bytes.len() as u64;
        }
        out.write_all(&bytes)
            .await
            .map_err(io_error("write", part))?;
        have += bytes.len() as u64;
        link.progress(have).await;
        if eof {
            break;
        }
    }
    Ok(())
}

/// A download over a plain [`Client`]: other frames go to the observer.
struct ClientLink<'a, O> {
    client: &'a mut Client,
    /// The id of the download's first request: replies from it on belong
    /// to the download.
    first_id: u64,
    observer: &'a mut O,
    transfer: String,
    total: u64,
}

impl<O: Observer> DownloadLink for ClientLink<'_, O> {
    type Error = FileError;

    async fn send(&mut self, request: &impl serde::Serialize) -> Result<RequestId, FileError> {
        let id = self.client.next_id();
        self.client.writer.send_json(Some(id), request).await?;
        Ok(id)
    }

    async fn reply(&mut self, id: RequestId) -> Result<Received, FileError> {
        reply_to(self.client, id, self.first_id, self.observer).await
    }

    async fn started(&mut self, _file: &FileInfo, have: u64) {
        self.progress(have).await;
    }

    async fn progress(&mut self, done: u64) {
        self.observer.progress(Progress {
            transfer: self.transfer.clone(),
            done,
            total: self.total,
        });
    }
}

/// Files waiting for this user, and this user's own uploads.
pub async fn list(client: &mut Client) -> Result<FileListing, FileError> {
    request(client, &FileList {}, "file_list").await
}

/// Refuses a file offered to this user.
pub async fn decline(client: &mut Client, transfer: &str) -> Result<(), FileError> {
    expect_ok(
        client,
        &FileDecline {
            transfer: transfer.to_string(),
        },
    )
    .await
}

/// Withdraws one of this user's files (during or after its upload).
pub async fn cancel(client: &mut Client, transfer: &str) -> Result<(), FileError> {
    expect_ok(
        client,
        &FileCancel {
            transfer: transfer.to_string(),
        },
    )
    .await
}

/// The file announced by a `file_available` frame.
pub fn available(frame: &Received) -> Option<FileInfo> {
    (frame.kind() == "file_available")
        .then(|| {
            frame
                .decode_custom::<chat_protocol::files::FileAvailable>()
                .ok()
        })
        .flatten()
        .map(|a| a.file)
}

/// Where [`download`] keeps a partial file.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Size and SHA-256 (hex) of a file, hashed off the async threads.
pub async fn hash_file(path: &Path) -> Result<(u64, String), FileError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        use std::io::Read;
        let mut file = std::fs::File::open(&owned)?;
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut block = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut block)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            context.update(&block[..n]);
        }
        let hex = context
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok((size, hex))
    })
    .await
    .map_err(|e| FileError::Protocol(format!("hashing task failed: {e}")))?
    .map_err(io_error("read", path))
}

/// Sends a request and decodes its reply, which must be of type `kind`.
async fn request<T: DeserializeOwned>(
    client: &mut Client,
    frame: &impl serde::Serialize,
    kind: &str,
) -> Result<T, FileError> {
    let reply = client.request_json(frame).await?;
    if reply.kind() == kind {
        decode(&reply)
    } else {
        Err(refused(reply))
    }
}

async fn expect_ok(client: &mut Client, frame: &impl serde::Serialize) -> Result<(), FileError> {
    match client.request_json(frame).await? {
        Received::Core(ServerFrame::Ok { .. }) => Ok(()),
        other => Err(refused(other)),
    }
}

/// The reply to request `id`. Replies to this transfer's other requests
/// (ids from `first_id` on) are kept for their turn; anything else goes to
/// the observer as it arrives.
async fn reply_to(
    client: &mut Client,
    id: u64,
    first_id: u64,
    observer: &mut impl Observer,
) -> Result<Received, FileError> {
    if let Some(pos) = client.backlog.iter().position(|f| f.reply_to() == Some(id)) {
        return Ok(client.backlog.remove(pos).expect("position is valid"));
    }
    loop {
        let frame = client.reader.next().await?.ok_or(ClientError::Closed)?;
        match frame.reply_to() {
            Some(reply) if reply == id => return Ok(frame),
            Some(reply) if reply >= first_id => client.backlog.push_back(frame),
            _ => {
                if let Some(kept) = observer.other_frame(frame) {
                    client.backlog.push_back(kept);
                }
            }
        }
    }
}

/// Opens (or creates) the `.part` file of a download for appending and
/// returns it with the offset to resume from (0 if it is longer than the
/// file, which means it belongs to something else).
pub async fn open_part(part: &Path, size: u64) -> Result<(tokio::fs::File, u64), FileError> {
    let out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .await
        .map_err(io_error("create", part))?;
    let mut have = out
        .metadata()
        .await
        .map_err(io_error("inspect", part))?
        .len();
    if have > size {
        out.set_len(0).await.map_err(io_error("truncate", part))?;
        have = 0;
    }
    Ok((out, have))
}

/// Checks the reply to a `file_get` for `offset` and decodes its bytes;
/// returns them and whether they end the file.
pub fn chunk_from_reply(reply: Received, offset: u64) -> Result<(Vec<u8>, bool), FileError> {
    if reply.kind() != "file_data" {
        return Err(refused(reply));
    }
    let data: FileData = decode(&reply)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.data.as_bytes())
        .map_err(|e| FileError::Protocol(format!("file_data is not base64: {e}")))?;
    if data.offset != offset || (bytes.is_empty() && !data.eof) {
        return Err(FileError::Protocol(format!(
            "asked for offset {offset}, got {} bytes at {}",
            bytes.len(),
            data.offset
        )));
    }
    Ok((bytes, data.eof))
}

fn decode<T: DeserializeOwned>(frame: &Received) -> Result<T, FileError> {
    frame
        .decode_custom()
        .map_err(|e| FileError::Protocol(e.message))
}

fn refused(frame: Received) -> FileError {
    match frame {
        Received::Core(ServerFrame::Error { code, message, .. }) => {
            FileError::Refused { code, message }
        }
        other => FileError::Protocol(format!("unexpected '{}' frame", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_file_sits_beside_the_destination() {
        assert_eq!(
            part_path(Path::new("/in/a.tar.gz")),
            PathBuf::from("/in/a.tar.gz.part")
        );
    }

    #[tokio::test]
    async fn hashes_like_sha256sum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello");
        std::fs::write(&path, b"hello").unwrap();
        let (size, sha) = hash_file(&path).await.unwrap();
        assert_eq!(size, 5);
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
