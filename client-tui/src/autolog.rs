//! The conversation log, opt-in like irssi's autolog (`--log-dir DIR`, or
//! `log_dir` in the config file): every event of every conversation is
//! appended to `DIR/SERVER/CONVERSATION.log`, one line each, the local time
//! first and then the event as line mode prints it. Pages read back from
//! the server's history are not logged again.
//!
//! A thread of its own writes the files, so that a slow disk never stalls
//! the screen or the connection; the queue to it is bounded, and lines that
//! do not fit are dropped and counted in the log instead.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

use chat_protocol::names::fold;

use crate::state::{Body, Entry, Origin, SERVER_CONV};

/// Batches (one per update) waiting for the writer.
const QUEUE: usize = 256;
/// Log files kept open at once.
const OPEN_FILES: usize = 64;

/// Lines for the log files: (file name, line).
type Batch = Vec<(String, String)>;

/// Why logging cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {path} for conversation logs: {error}")]
pub struct AutologError {
    path: PathBuf,
    error: std::io::Error,
}

/// The log for `settings`, when it asks for one.
pub fn start(
    settings: &crate::settings::Settings,
    utc_offset_secs: i32,
) -> Result<Option<Autolog>, AutologError> {
    settings
        .log_dir
        .as_deref()
        .map(|dir| Autolog::start(dir, &settings.server, utc_offset_secs))
        .transpose()
}

/// The sending side of the log writer.
pub struct Autolog {
    /// `None` once dropped (the writer then finishes and ends).
    queue: Option<SyncSender<Batch>>,
    writer: Option<std::thread::JoinHandle<()>>,
    utc_offset_secs: i32,
    /// Lines dropped since the last batch that got through.
    dropped: usize,
}

impl Autolog {
    /// Starts the writer for logs of `server` under `dir` (created if
    /// needed).
    pub fn start(dir: &Path, server: &str, utc_offset_secs: i32) -> Result<Autolog, AutologError> {
        let dir = dir.join(file_name(server));
        std::fs::create_dir_all(&dir).map_err(|source| AutologError {
            path: dir.clone(),
            error: source,
        })?;
        let (queue, batches) = sync_channel::<Batch>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("autolog".into())
            .spawn(move || write_batches(&dir, batches))
            .map_err(|source| AutologError {
                path: PathBuf::from("(thread)"),
                error: source,
            })?;
        Ok(Autolog {
            queue: Some(queue),
            writer: Some(writer),
            utc_offset_secs,
            dropped: 0,
        })
    }

    /// Queues the journal's entries (conversation name, entry).
    pub fn record(&mut self, journal: &[(String, Entry)]) {
        let mut batch: Batch = journal
            .iter()
            .filter(|(_, entry)| !from_history(entry))
            .map(|(conv, entry)| {
                let line = format!(
                    "{} {}",
                    timestamp(entry.ts, self.utc_offset_secs),
                    crate::lines::format(conv, entry)
                );
                (log_name(conv), line)
            })
            .collect();
        if batch.is_empty() {
            return;
        }
        if self.dropped > 0 {
            let note = format!(
                "-- {} lines were not logged: the disk was too slow",
                self.dropped
            );
            batch.push((log_name(SERVER_CONV), note));
        }
        let lines = batch.len();
        let Some(queue) = &self.queue else { return };
        match queue.try_send(batch) {
            Ok(()) => self.dropped = 0,
            Err(TrySendError::Full(_)) => self.dropped += lines,
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Autolog {
    /// Lets the writer finish what is queued (at exit: nothing is lost).
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn from_history(entry: &Entry) -> bool {
    matches!(
        entry.body,
        Body::Chat {
            origin: Origin::History,
            ..
        }
    )
}

/// `2026-12-06 09:14:05` in local time.
fn timestamp(ts_ms: u64, utc_offset_secs: i32) -> String {
    let offset =
        time::UtcOffset::from_whole_seconds(utc_offset_secs).unwrap_or(time::UtcOffset::UTC);
    let at = time::OffsetDateTime::from_unix_timestamp((ts_ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The log file of a conversation: `#rust.log`, `bob.log`, `server.log`.
pub fn log_name(conv: &str) -> String {
    if conv == SERVER_CONV {
        return "server.log".into();
    }
    format!("{}.log", file_name(&fold(conv)))
}

/// A name safe as one path component (names are already restricted by the
/// server; this also keeps `/`, `..` and the like out).
fn file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '#' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

fn write_batches(dir: &Path, batches: std::sync::mpsc::Receiver<Batch>) {
    let mut files: HashMap<String, BufWriter<File>> = HashMap::new();
    let mut warned = false;
    for batch in batches {
        for (name, line) in batch {
            if !files.contains_key(&name) {
                if files.len() >= OPEN_FILES {
                    files.clear();
                }
                match OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(&name))
                {
                    Ok(file) => {
                        files.insert(name.clone(), BufWriter::new(file));
                    }
                    Err(e) => {
                        if !warned {
                            tracing::warn!(error = %e, file = %name, "cannot write the conversation log");
                            warned = true;
                        }
                        continue;
                    }
                }
            }
            if let Some(file) = files.get_mut(&name) {
                let _ = writeln!(file, "{line}");
            }
        }
        for file in files.values_mut() {
            let _ = file.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_one_safe_component() {
        assert_eq!(log_name("#Rust"), "#rust.log");
        assert_eq!(log_name("*"), "server.log");
        assert_eq!(log_name("Bob"), "bob.log");
        assert_eq!(file_name("127.0.0.1:7878"), "127.0.0.1_7878");
        assert_eq!(file_name("../x"), "_.._x");
        assert_eq!(
            timestamp(86_400_000 + 3_661_000, 3600),
            "1970-01-02 02:01:01"
        );
    }
}
