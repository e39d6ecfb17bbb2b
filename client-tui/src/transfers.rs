//! What the client knows about file transfers: files offered to us, and
//! our uploads and downloads with their progress. Plain data, changed by
//! `update`, drawn by the transfers view and printed by the line mode.

use std::path::{Path, PathBuf};

use chat_protocol::files::FileInfo;

/// Files offered to us kept at once; the oldest is forgotten first (the
/// server still lists it with `/files`).
pub const OFFER_LIMIT: usize = 200;
/// Transfers kept in the list; finished ones are dropped first.
pub const TRANSFER_LIMIT: usize = 200;
/// Hex digits of a transfer id shown to the user; any unique prefix works
/// in commands.
pub const SHORT_ID: usize = 8;

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl Direction {
    /// `up` / `down`, as printed in line mode.
    pub fn word(self) -> &'static str {
        match self {
            Direction::Upload => "up",
            Direction::Download => "down",
        }
    }
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    /// Hashing and offering (uploads), or waiting to start.
    Preparing,
    Active,
    /// The connection dropped; it resumes after reconnecting.
    Interrupted,
    Done,
    Failed(String),
    Cancelled,
}

impl TransferStatus {
    /// Whether the transfer still has work to do.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            TransferStatus::Preparing | TransferStatus::Active | TransferStatus::Interrupted
        )
    }
}

/// One of our uploads or downloads.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// The client's own number, which routes the worker's replies.
    pub slot: u32,
    /// The server's id, once the offer was accepted (always, for downloads).
    pub transfer: Option<String>,
    pub direction: Direction,
    /// The file's name as the server knows it.
    pub name: String,
    /// The local file: the source of an upload, the destination of a download.
    pub path: PathBuf,
    /// The conversation it belongs to: the recipient (`#room` or nickname)
    /// of an upload, the room or sender of a download.
    pub conv: String,
    /// For downloads: the offer, to start again after a reconnect.
    pub file: Option<FileInfo>,
    pub done: u64,
    pub total: u64,
    /// When the current run started (ms since the epoch), and `done` then:
    /// the rate counts only bytes moved in this run.
    pub run_started_ms: u64,
    pub run_start_done: u64,
    pub bytes_per_sec: f64,
    pub status: TransferStatus,
    /// The last tenth of the way reported in line mode (0..=10).
    pub reported_tenth: u64,
}

impl Transfer {
    /// A short description of where a file goes, for the transfers view.
    pub fn label(&self) -> String {
        let t = self;
        match t.direction {
            Direction::Upload => format!("↑ {} → {}", t.name, t.conv),
            Direction::Download => format!("↓ {} ← {}", t.name, t.conv),
        }
    }

    /// The short id shown to the user, or `-` before the server gave one.
    pub fn short_id(&self) -> &str {
        self.transfer.as_deref().map_or("-", short_id)
    }

    /// Records `done` bytes at `now_ms`, updating the rate.
    pub fn progress(&mut self, done: u64, now_ms: u64) {
        self.done = done.min(self.total.max(done));
        let elapsed_ms = now_ms.saturating_sub(self.run_started_ms);
        if elapsed_ms > 0 {
            let moved = self.done.saturating_sub(self.run_start_done);
            self.bytes_per_sec = moved as f64 * 1000.0 / elapsed_ms as f64;
        }
    }

    /// Starts a new run (first start or resume) with `done` of `total`.
    pub fn start_run(&mut self, done: u64, total: u64, now_ms: u64) {
        self.total = total;
        self.done = done;
        self.run_started_ms = now_ms;
        self.run_start_done = done;
        self.bytes_per_sec = 0.0;
        self.status = TransferStatus::Active;
    }

    /// Whole percent done.
    pub fn percent(&self) -> u64 {
        (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100)
    }
}

/// All transfers and offers.
#[derive(Debug, Clone, Default)]
pub struct Transfers {
    /// Oldest first.
    pub list: Vec<Transfer>,
    /// Files offered to us that we have not accepted or declined, oldest
    /// first.
    pub offers: Vec<FileInfo>,
    /// Our uploads as the last `/files` listed them (also those started by
    /// an earlier run of the client), so that `/cancel` can name them.
    pub remote_outgoing: Vec<chat_protocol::files::OutgoingFile>,
    next_slot: u32,
    /// Whether the transfers view is shown (F2 or `/transfers`).
    pub shown: bool,
    /// Input ended (line mode): quit once no transfer is running.
    pub quit_when_idle: bool,
}

/// Why a typed id does not name exactly one transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no file or transfer with an id starting with '{0}'; /files lists them")]
    None(String),
    #[error("'{0}' is the start of several ids; type more of it")]
    Ambiguous(String),
    #[error("no file is waiting for you; /files asks the server")]
    NoOffer,
}

impl Transfers {
    /// A new transfer, with a fresh slot.
    pub fn add(
        &mut self,
        direction: Direction,
        name: &str,
        path: &Path,
        conv: &str,
        file: Option<FileInfo>,
    ) -> &mut Transfer {
        if self.list.len() >= TRANSFER_LIMIT {
            if let Some(pos) = self.list.iter().position(|t| !t.status.is_open()) {
                self.list.remove(pos);
            }
        }
        self.next_slot += 1;
        let total = file.as_ref().map_or(0, |f| f.size);
        self.list.push(Transfer {
            slot: self.next_slot,
            transfer: file.as_ref().map(|f| f.transfer.clone()),
            direction,
            name: name.to_string(),
            path: path.to_path_buf(),
            conv: conv.to_string(),
            file,
            done: 0,
            total,
            run_started_ms: 0,
            run_start_done: 0,
            bytes_per_sec: 0.0,
            status: TransferStatus::Preparing,
            reported_tenth: 0,
        });
        self.list.last_mut().expect("just pushed")
    }

    /// Transfers preparing or moving bytes right now.
    pub fn running(&self) -> usize {
        self.list
            .iter()
            .filter(|t| matches!(t.status, TransferStatus::Preparing | TransferStatus::Active))
            .count()
    }

    pub fn by_slot(&mut self, slot: u32) -> Option<&mut Transfer> {
        self.list.iter_mut().find(|t| t.slot == slot)
    }

    /// Remembers an offer (a `file_available`, or a `file_list` entry);
    /// returns whether it is new.
    pub fn offer(&mut self, file: FileInfo) -> bool {
        if self.offers.iter().any(|f| f.transfer == file.transfer)
            || self.list.iter().any(|t| {
                // Being fetched or fetched already; a stopped one may be
                // offered again.
                t.transfer.as_deref() == Some(&file.transfer)
                    && (t.status.is_open() || t.status == TransferStatus::Done)
            })
        {
            return false;
        }
        if self.offers.len() >= OFFER_LIMIT {
            self.offers.remove(0);
        }
        self.offers.push(file);
        true
    }

    /// Forgets an offer (accepted, declined or removed).
    pub fn forget_offer(&mut self, transfer: &str) -> Option<FileInfo> {
        let pos = self.offers.iter().position(|f| f.transfer == transfer)?;
        Some(self.offers.remove(pos))
    }

    /// The offer `id` names (a unique prefix), or the latest one.
    pub fn find_offer(&self, id: Option<&str>) -> Result<&FileInfo, LookupError> {
        match id {
            None => self.offers.last().ok_or(LookupError::NoOffer),
            Some(id) => {
                let id = id.to_ascii_lowercase();
                let mut found = self.offers.iter().filter(|f| f.transfer.starts_with(&id));
                match (found.next(), found.next()) {
                    (Some(one), None) => Ok(one),
                    (None, _) => Err(LookupError::None(id)),
                    _ => Err(LookupError::Ambiguous(id)),
                }
            }
        }
    }

    /// The server id a typed prefix names, among our transfers and offers.
    pub fn find_id(&self, id: &str) -> Result<String, LookupError> {
        let id = id.to_ascii_lowercase();
        let mut ids: Vec<&str> = self
            .list
            .iter()
            .filter_map(|t| t.transfer.as_deref())
            .chain(self.offers.iter().map(|f| f.transfer.as_str()))
            .chain(self.remote_outgoing.iter().map(|o| o.transfer.as_str()))
            .filter(|t| t.starts_with(&id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        match ids.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(LookupError::None(id)),
            _ => Err(LookupError::Ambiguous(id)),
        }
    }
}

/// The first [`SHORT_ID`] characters of a transfer id (ids come from the
/// server: never sliced inside a character).
pub fn short_id(transfer: &str) -> &str {
    let end = transfer
        .char_indices()
        .nth(SHORT_ID)
        .map_or(transfer.len(), |(i, _)| i);
    &transfer[..end]
}

/// A file name from the server that is safe to create in a directory: no
/// separators, no `.`/`..`, not hidden. The server checks names too; this
/// is the client's own guard.
pub fn safe_file_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', ':', '\0'])
        && Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name);
    ok.then_some(name)
}

/// Where to save `name` in `dir`: `dir/name`, or `dir/name.1`, `.2`, ...
/// when that is taken. A path whose `.part` exists is reused, so that an
/// interrupted download resumes.
pub fn destination(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    let free = |p: &Path| !p.exists() || chat_client::files::part_path(p).exists();
    if free(&plain) {
        return plain;
    }
    (1..1000)
        .map(|n| dir.join(format!("{name}.{n}")))
        .find(|p| free(p))
        .unwrap_or(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(transfer: &str, name: &str) -> FileInfo {
        FileInfo {
            transfer: transfer.into(),
            from: "alice".into(),
            room: None,
            name: name.into(),
            size: 10,
            sha256: "00".into(),
            expires_at: 0,
        }
    }

    #[test]
    fn offers_are_found_by_prefix_or_latest() {
        let mut t = Transfers::default();
        assert_eq!(t.find_offer(None), Err(LookupError::NoOffer));
        assert!(t.offer(info("abc123", "a.txt")));
        assert!(t.offer(info("abd456", "b.txt")));
        assert!(!t.offer(info("abc123", "a.txt")), "duplicates are ignored");
        assert_eq!(t.find_offer(None).unwrap().name, "b.txt");
        assert_eq!(t.find_offer(Some("ABC")).unwrap().name, "a.txt");
        assert_eq!(
            t.find_offer(Some("ab")),
            Err(LookupError::Ambiguous("ab".into()))
        );
        assert_eq!(
            t.find_offer(Some("ff")),
            Err(LookupError::None("ff".into()))
        );
        assert_eq!(t.forget_offer("abc123").unwrap().name, "a.txt");
        assert_eq!(t.find_id("ab").unwrap(), "abd456");
        assert_eq!(short_id("0123456789abcdef"), "01234567");
        assert_eq!(short_id("ééééééééé"), "éééééééé");
        assert_eq!(short_id("ab"), "ab");
    }

    #[test]
    fn rate_counts_only_this_run() {
        let mut t = Transfers::default();
        let tr = t.add(Direction::Download, "f", Path::new("f"), "alice", None);
        tr.start_run(1000, 11_000, 5_000);
        tr.progress(6000, 7_000);
        assert_eq!(tr.percent(), 54);
        assert!((tr.bytes_per_sec - 2500.0).abs() < 0.01);
    }

    #[test]
    fn names_and_destinations() {
        assert_eq!(safe_file_name("report.pdf"), Some("report.pdf"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "c:x"] {
            assert_eq!(safe_file_name(bad), None, "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(destination(dir.path(), "a"), dir.path().join("a"));
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        assert_eq!(destination(dir.path(), "a"), dir.path().join("a.1"));
        std::fs::write(dir.path().join("a.1.part"), b"x").unwrap();
        assert_eq!(
            destination(dir.path(), "a"),
            dir.path().join("a.1"),
            "a partial download is resumed"
        );
    }
}
