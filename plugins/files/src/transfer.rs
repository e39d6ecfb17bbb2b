//! What the server knows about each transfer: the record persisted beside
//! the file, and the in-memory registry with the quota arithmetic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chat_api::files::{FileInfo, FileTarget, OutgoingFile};
use serde::{Deserialize, Serialize};

/// Where a transfer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Chunks are arriving.
    Uploading,
    /// Verified and waiting for its recipients.
    Complete,
}

/// What a recipient did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not yet fetched or declined.
    Pending,
    /// The recipient confirmed a verified download (`file_received`).
    Received,
    Declined,
}

/// One recipient of a finished upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Identity key: the folded account, or for a guest its session
    /// (see `Files::guest_key`).
    pub key: String,
    /// Nickname to deliver notifications to.
    pub nick: String,
    pub outcome: Outcome,
}

/// The persisted description of a transfer (the JSON sidecar on disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Server-chosen id: 32 lowercase hex digits, also the file's stem.
    pub transfer: String,
    /// Identity key of the sender (folded account, or a guest's session).
    pub owner: String,
    /// The sender's nickname when offering, shown to recipients.
    pub from: String,
    pub target: FileTarget,
    /// Checked by [`crate::file_name::check_file_name`].
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub phase: Phase,
    /// Empty while uploading; fixed when the upload completes.
    pub recipients: Vec<Recipient>,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    /// When the sweep deletes it (ms since the epoch). For uploads it moves
    /// forward with every chunk; only the value at the offer is persisted.
    pub expires_at: u64,
}

impl Meta {
    pub fn info(&self) -> FileInfo {
        FileInfo {
            transfer: self.transfer.clone(),
            from: self.from.clone(),
            room: self.target.room.clone(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            expires_at: self.expires_at,
        }
    }

    /// Whether `key` may download the file.
    pub fn is_recipient(&self, key: &str) -> bool {
        self.phase == Phase::Complete
            && self
                .recipients
                .iter()
                .any(|r| r.key == key && r.outcome != Outcome::Declined)
    }

    /// Whether every recipient has received or declined it.
    pub fn all_settled(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| r.outcome != Outcome::Pending)
    }

    /// Nicknames of the recipients who still wait for the file.
    /// The recipients still waiting: (identity key, nickname).
    pub fn pending(&self) -> Vec<(String, String)> {
        self.recipients
            .iter()
            .filter(|r| r.outcome == Outcome::Pending)
            .map(|r| (r.key.clone(), r.nick.clone()))
            .collect()
    }
}

/// A transfer as held in memory.
#[derive(Debug)]
pub struct Entry {
    pub meta: Meta,
    /// Bytes confirmed on disk: the offset the next chunk must have.
    pub received: u64,
    /// A chunk write or the final verification is in progress; no other
    /// request may touch the upload until it is done. This keeps the server
    /// at one chunk in memory per transfer even when a reconnected sender
    /// races its old connection.
    pub busy: bool,
    /// Serialises this transfer's sidecar writes, publication and deletion
    /// on the blocking pool, so an older snapshot never overwrites a newer
    /// one and nothing is recreated after deletion. Only ever locked on
    /// blocking-pool threads.
    pub disk: Arc<Mutex<()>>,
}

impl Entry {
    pub fn new(meta: Meta, received: u64) -> Entry {
        Entry {
            meta,
            received,
            busy: false,
            disk: Arc::new(Mutex::new(())),
        }
    }

    pub fn outgoing(&self) -> OutgoingFile {
        OutgoingFile {
            transfer: self.meta.transfer.clone(),
            target: self.meta.target.clone(),
            name: self.meta.name.clone(),
            size: self.meta.size,
            received: self.received,
            state: match self.meta.phase {
                Phase::Uploading => "uploading",
                Phase::Complete => "complete",
            }
            .to_string(),
            expires_at: self.meta.expires_at,
        }
    }
}

/// All transfers by id. Locked briefly, never across `.await` or I/O.
pub type Registry = HashMap<String, Entry>;

/// What a user currently holds, for the quota checks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub user_bytes: u64,
    pub user_files: u32,
    pub user_uploads: u32,
    pub total_bytes: u64,
}

/// Sums what `owner` and everyone hold (declared sizes: an offer reserves
/// its whole size before any byte arrives).
pub fn usage(registry: &Registry, owner: &str) -> Usage {
    let mut usage = Usage::default();
    for entry in registry.values() {
        usage.total_bytes += entry.meta.size;
        if entry.meta.owner == owner {
            usage.user_bytes += entry.meta.size;
            usage.user_files += 1;
            if entry.meta.phase == Phase::Uploading {
                usage.user_uploads += 1;
            }
        }
    }
    usage
}

/// Whether `id` has the shape of a server-chosen transfer id (so that it is
/// safe inside a file name).
pub fn is_transfer_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh, unguessable transfer id.
pub fn new_transfer_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source works");
    to_hex(&bytes)
}

/// A fresh transfer id starting with `prefix` (a node's, on a cluster);
/// the rest stays random.
pub fn new_transfer_id_with(prefix: &str) -> String {
    let random = new_transfer_id();
    format!("{prefix}{}", &random[prefix.len()..])
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_ids_start_with_its_prefix_and_stay_ids() {
        let id = new_transfer_id_with("0badcafe");
        assert!(id.starts_with("0badcafe") && is_transfer_id(&id), "{id}");
        assert_ne!(id, new_transfer_id_with("0badcafe"));
    }

    #[test]
    fn ids_are_hex_and_distinct() {
        let a = new_transfer_id();
        assert!(is_transfer_id(&a), "{a}");
        assert_ne!(a, new_transfer_id());
        assert!(!is_transfer_id("../../etc/passwd"));
        assert!(!is_transfer_id(&a.to_uppercase()));
    }
}
