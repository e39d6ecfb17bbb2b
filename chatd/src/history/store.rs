//! The storage interface of the message log. The hub never sees it; the
//! session and the log writer use it through [`MessageStore`], so a second
//! backend (PostgreSQL, for several nodes) plugs in beside the SQLite one.

use chat_api::{Message, UnreadEntry};

/// What went wrong in the store; the message names the database.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HistoryError(#[from] pub chatd_storage::StorageError);

pub type Result<T> = std::result::Result<T, HistoryError>;

/// One accepted message, as the log writer stores it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub message: Message,
    /// The conversation key (see [`crate::history::Conversation`]).
    pub conv: String,
    /// An account that was offline and gets the message at its next login.
    pub pending_for: Option<String>,
    /// For direct messages: each party that is an account, with the other
    /// party's nickname (their list of direct conversations).
    pub parties: Vec<(String, String)>,
}

impl LogEntry {
    /// A room message or broadcast: nobody to keep it for, no parties.
    pub fn new(message: Message, conv: String) -> LogEntry {
        LogEntry {
            message,
            conv,
            pending_for: None,
            parties: Vec::new(),
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest messages.
    Latest,
    /// Messages older than this id.
    Before(u64),
    /// Messages newer than this id.
    After(u64),
}

/// A page of one conversation, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub messages: Vec<Message>,
    /// More messages exist in the direction asked.
    pub more: bool,
}

/// Range of one conversation a resume must replay: ids in `(after, through]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub conv: String,
    pub after: u64,
    pub through: u64,
}

/// A conversation whose unread state is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadQuery {
    pub conv: String,
    /// How the client names it: `room` or `with`.
    pub room: Option<String>,
    pub with: Option<String>,
    /// Messages at or below this id do not count (what was said in a
    /// private room before the account joined).
    pub floor: u64,
}

/// Retention limits (from `[history]`); 0 means no limit.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age_ms: u64,
    pub max_per_room: u64,
    pub max_per_direct: u64,
}

/// The message log and what hangs off it.
#[chat_api::async_trait]
pub trait MessageStore: Send + Sync {
    /// The highest id that may already have been handed out: ids are only
    /// used inside reservations, so the next run starts after it.
    async fn reserved_ids(&self) -> Result<u64>;
    /// Claims the next `count` ids for this server, atomically (several
    /// servers may share the database): the block continues after `after`
    /// (this server's current reservation) unless another server claimed
    /// past it meanwhile. Returns the last id of the block, whose first is
    /// `end - count + 1`.
    async fn reserve_ids(&self, count: u64, after: u64) -> Result<u64>;
    /// Stores a batch in one transaction (the group commit).
    async fn append(&self, entries: &[LogEntry]) -> Result<()>;
    /// Lets go of what the store keeps between batches (the log writer's
    /// connection), before the database is closed; a later batch takes
    /// what it needs for itself only.
    async fn close(&self) {}
    /// A page of one conversation; nothing at or below `floor`.
    async fn page(&self, conv: &str, cursor: Cursor, limit: u32, floor: u64) -> Result<Page>;
    /// Messages in the gaps, oldest first, at most `limit`; and whether
    /// more than that exist.
    async fn missed(&self, gaps: &[Gap], limit: usize) -> Result<(Vec<Message>, bool)>;
    /// Takes the direct messages stored for `account` while it was offline
    /// (each is handed out once, even to concurrent logins).
    async fn claim_pending(&self, account: &str) -> Result<Vec<Message>>;
    /// The registered spelling of the account `name_key`, if it exists.
    async fn account_name(&self, name_key: &str) -> Result<Option<String>>;
    /// Remembers that `account` is in a room; a first join starts read up
    /// to `read_through`.
    async fn remember_room(
        &self,
        account: &str,
        room_key: &str,
        room: &str,
        read_through: u64,
    ) -> Result<()>;
    async fn forget_room(&self, account: &str, room_key: &str) -> Result<()>;
    /// Whether a room is private (the `rooms` plugin's): such rooms are
    /// rejoined by that plugin, which knows who may enter, and never
    /// remembered here (a deleted private room must not come back public).
    async fn is_private_room(&self, room_key: &str) -> Result<bool>;
    /// The newest message id `account` may not see in a room: 0 for a
    /// public room, the id stored when it joined a private room, and
    /// `u64::MAX` for a private room it is not a member of.
    async fn member_floor(&self, room_key: &str, account: &str) -> Result<u64>;
    /// The rooms remembered for `account` (names as spelled at join).
    async fn remembered_rooms(&self, account: &str) -> Result<Vec<String>>;
    /// `account`'s direct conversations: (key, the other party's nickname).
    async fn direct_conversations(&self, account: &str) -> Result<Vec<(String, String)>>;
    /// Moves `account`'s read marker in `conv` forward to `msg_id`.
    async fn mark_read(&self, account: &str, conv: &str, msg_id: u64) -> Result<()>;
    /// Unread state of each conversation for `account` (whose messages do
    /// not count as unread).
    async fn unread(&self, account: &str, convs: &[UnreadQuery]) -> Result<Vec<UnreadEntry>>;
    /// Applies the retention limits; returns how many messages went.
    async fn prune(&self, retention: Retention, now_ms: u64) -> Result<u64>;
    /// Deletes a room's messages.
    async fn purge_room(&self, room_key: &str) -> Result<u64>;
    /// Deletes every message older than `ts` (ms since the epoch).
    async fn purge_before(&self, ts: u64) -> Result<u64>;
}
