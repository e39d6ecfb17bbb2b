//! Frames of the file transfer plugin (`files`), shared by the plugin and
//! clients so that they cannot drift apart. `docs/protocol.md`, section
//! "File transfer frames", is the normative description.
//!
//! File bytes travel base64-encoded inside the JSON frames (`data` fields):
//! no second framing, at the price of 4/3 of the raw size on the wire.
//!
//! Every struct serialises with its `type` field; client requests may carry
//! an `id` (added by the client library), replies echo it.

use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorCode, RequestId};

/// Error codes of the file transfer frames.
pub mod codes {
    use super::ErrorCode;

    /// The name is empty, too long, or could act as a path or hide itself.
    pub const INVALID_FILE_NAME: ErrorCode = ErrorCode::custom("invalid_file_name");
    /// The offer is larger than the server's `max_file_size`.
    pub const FILE_TOO_LARGE: ErrorCode = ErrorCode::custom("file_too_large");
    /// The offer would exceed the sender's or the server's quota.
    pub const QUOTA_EXCEEDED: ErrorCode = ErrorCode::custom("quota_exceeded");
    /// The sender already has `max_concurrent_uploads_per_user` uploads open.
    pub const TOO_MANY_UPLOADS: ErrorCode = ErrorCode::custom("too_many_uploads");
    /// No transfer with that id exists for this user (unknown, someone
    /// else's, expired, cancelled or declined: the server does not say which).
    pub const NO_SUCH_TRANSFER: ErrorCode = ErrorCode::custom("no_such_transfer");
    /// A chunk's offset is not the next byte the server expects (out of
    /// order or duplicate); the message names the expected offset.
    pub const BAD_OFFSET: ErrorCode = ErrorCode::custom("bad_offset");
    /// A chunk is larger than `chunk_size`, empty, not base64, or runs past
    /// the offered size.
    pub const BAD_CHUNK: ErrorCode = ErrorCode::custom("bad_chunk");
    /// The uploaded bytes do not have the offered SHA-256; the transfer was
    /// deleted.
    pub const HASH_MISMATCH: ErrorCode = ErrorCode::custom("hash_mismatch");
    /// Another connection is writing a chunk of this transfer right now.
    pub const TRANSFER_BUSY: ErrorCode = ErrorCode::custom("transfer_busy");
    /// The request does not fit the transfer's state (e.g. `file_get` before
    /// the upload completed, `file_chunk` after it).
    pub const WRONG_STATE: ErrorCode = ErrorCode::custom("wrong_state");
    /// The server's disk is full; the transfer was cancelled.
    pub const STORAGE_FULL: ErrorCode = ErrorCode::custom("storage_full");
}

/// Who a file is for: exactly one of a user or a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// Client → server: announce a file before sending any byte of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_offer")]
pub struct FileOffer {
    #[serde(flatten)]
    pub target: FileTarget,
    /// The file's name as recipients will see it (no directories).
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// SHA-256 of the whole file, 64 hex digits.
    pub sha256: String,
}

/// Server → client: the offer was accepted; upload with `file_chunk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_offered")]
pub struct FileOffered {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The server-chosen transfer id (32 hex digits).
    pub transfer: String,
    /// Largest number of raw bytes in one chunk.
    pub chunk_size: u32,
    /// How many chunks a client may send before waiting for an ack.
    pub window: u32,
}

/// Client → server: bytes `offset..offset+len(data)` of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_chunk")]
pub struct FileChunk {
    pub transfer: String,
    pub offset: u64,
    /// The bytes, base64 (standard alphabet, padded).
    pub data: String,
}

/// Server → client: a chunk is on disk; `received` bytes are confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_ack")]
pub struct FileAck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub transfer: String,
    pub received: u64,
}

/// Server → sender: the last chunk arrived and size and SHA-256 match; the
/// recipients have been told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_complete")]
pub struct FileComplete {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub transfer: String,
    pub size: u64,
    pub sha256: String,
    /// Who may download it (nicknames or accounts).
    pub recipients: Vec<String>,
}

/// Server → recipient: a file is ready to download (also listed by
/// `file_list` until it expires).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_available")]
pub struct FileAvailable {
    #[serde(flatten)]
    pub file: FileInfo,
}

/// A file offered to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub transfer: String,
    /// The sender.
    pub from: String,
    /// The room it was sent to, when it was sent to a room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// When the server deletes it, milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// Client → server: the next piece of a download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_get")]
pub struct FileGet {
    pub transfer: String,
    pub offset: u64,
}

/// Server → client: up to `chunk_size` bytes of a file starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_data")]
pub struct FileData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub transfer: String,
    pub offset: u64,
    /// The bytes, base64.
    pub data: String,
    /// Whether these bytes end the file.
    pub eof: bool,
}

/// Client → server: the recipient does not want the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_decline")]
pub struct FileDecline {
    pub transfer: String,
}

/// Client → server: the recipient has the whole file and verified it; the
/// server may delete it once every recipient is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_received")]
pub struct FileReceived {
    pub transfer: String,
}

/// Server → sender: a recipient confirmed it has the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_delivered")]
pub struct FileDelivered {
    pub transfer: String,
    pub to: String,
}

/// Client → server: the sender withdraws the file (during or after upload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_cancel")]
pub struct FileCancel {
    pub transfer: String,
}

/// Client → server: where should an interrupted upload continue?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_resume")]
pub struct FileResume {
    pub transfer: String,
}

/// Server → client: reply to `file_resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_resumed")]
pub struct FileResumed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub transfer: String,
    /// Bytes confirmed so far: the offset of the next chunk.
    pub received: u64,
    pub size: u64,
    pub chunk_size: u32,
    pub window: u32,
    /// The upload is already complete and verified (the sender missed the
    /// `file_complete`): nothing is left to send.
    #[serde(default)]
    pub complete: bool,
}

/// Client → server: list my pending incoming and outgoing files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_list")]
pub struct FileList {}

/// Server → client: reply to `file_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_list")]
pub struct FileListing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Files offered to this user that they have not declined.
    pub incoming: Vec<FileInfo>,
    /// This user's own uploads, finished or not.
    pub outgoing: Vec<OutgoingFile>,
}

/// One of the user's own transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingFile {
    pub transfer: String,
    #[serde(flatten)]
    pub target: FileTarget,
    pub name: String,
    pub size: u64,
    /// Bytes uploaded so far.
    pub received: u64,
    /// `"uploading"` or `"complete"`.
    pub state: String,
    pub expires_at: u64,
}

/// Server → client: a file is gone (cancelled by its sender, expired, or
/// failed); sent to the sender and to recipients who had not declined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_removed")]
pub struct FileRemoved {
    pub transfer: String,
    /// `"cancelled"`, `"expired"` or `"failed"`.
    pub reason: String,
}

/// Server → sender: a recipient declined the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "file_declined")]
pub struct FileDeclined {
    pub transfer: String,
    pub by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Inbound, Received};
    use crate::Payload;

    #[test]
    fn offer_decodes_with_id_and_target() {
        let f = Inbound::parse(
            br#"{"type":"file_offer","id":3,"to":"bob","name":"a.txt","size":5,"sha256":"ab"}"#,
        )
        .unwrap();
        let offer: FileOffer = f.decode_custom().unwrap();
        assert_eq!(offer.target.to.as_deref(), Some("bob"));
        assert_eq!(offer.target.room, None);
        assert_eq!(f.id, Some(3));
    }

    #[test]
    fn replies_carry_type_and_id() {
        let line = Payload::encode(&FileAck {
            id: Some(9),
            transfer: "t".into(),
            received: 10,
        });
        let received = Received::parse(line.json()).unwrap();
        assert_eq!(received.kind(), "file_ack");
        assert_eq!(received.reply_to(), Some(9));
        let ack: FileAck = received.decode_custom().unwrap();
        assert_eq!(ack.received, 10);
    }

    #[test]
    fn wrong_type_is_refused() {
        let f = Inbound::parse(br#"{"type":"file_get","transfer":"t","offset":0}"#).unwrap();
        assert!(f.decode_custom::<FileChunk>().is_err());
    }
}
