//! # files: chunked, resumable, verified file transfer for chatd
//!
//! A sender offers a file to a user or a room (`file_offer` with name, size
//! and SHA-256); the server checks names, limits and quotas before accepting
//! a single byte, then takes the file in acknowledged chunks (`file_chunk`,
//! base64 inside the JSON frames), spooling each straight to disk. When the
//! last chunk is in, it verifies size and SHA-256 and only then tells the
//! recipients (`file_available`), who pull the file at their own pace
//! (`file_get`). Uploads and downloads resume from the last confirmed offset
//! after a dropped connection or a server restart; files are deleted when
//! every recipient has them or declined them, when cancelled, or on expiry.
//! The frames are documented in `docs/protocol.md` ("File transfer frames")
//! and typed in [`chat_api::files`].
//!
//! Memory stays bounded: one chunk per transfer is in memory at a time
//! (a transfer is `busy` while its chunk is written), disk I/O and hashing
//! run on the host's blocking pool, and one sweep task expires everything.
//!
//! ```toml
//! [[plugin]]
//! name = "files"
//! [plugin.config]
//! max_file_size = 1073741824     # bytes
//! per_user_quota = 2147483648
//! total_quota = 21474836480
//! chunk_size = 32768             # raw bytes per chunk (must fit max_frame_bytes)
//! expiry_secs = 604800
//! ```
//!
//! Identity: a user is their account when logged in (accounts plugin), else
//! their nickname; recipients are named by nickname, which the accounts
//! plugin sets to the account name.

mod blocking;
pub mod config;
mod download;
mod expiry;
pub mod file_name;
pub mod store;
pub mod transfer;
mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chat_api::names::fold;
use chat_api::{
    async_trait, ApiError, ConfigError, ErrorCode, HandlerResult, Host, Inbound, MessageHandler,
    Payload, PluginContext, Request, Session, SessionId, Verdict,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Settings;
use crate::store::{Store, StoreError};
use crate::transfer::{Entry, Registry};

/// The plugin, as registered in chatd's pipeline.
pub struct FilesPlugin {
    files: Arc<Files>,
}

/// The plugin's state, shared with its sweep task.
pub(crate) struct Files {
    settings: Settings,
    store: Store,
    host: Arc<dyn Host>,
    /// Every live transfer. Locked briefly, never across `.await` or I/O.
    registry: Mutex<Registry>,
    /// Set at shutdown; the sweep task stops at its next tick.
    stopping: AtomicBool,
    /// When this process started the plugin (ms): part of guests' keys, so
    /// that a session id reused after a restart never matches.
    boot: u64,
    /// Connected guests: folded nickname to session. A guest is its
    /// session, not its name: a file for guest `bob` is not for the next
    /// session that takes the name.
    guests: Mutex<HashMap<String, SessionId>>,
    /// The spool's owner lock while this instance holds it: only the owner
    /// deletes files on its own (tidying at start, expiry).
    spool_lock: Mutex<Option<std::fs::File>>,
}

impl FilesPlugin {
    /// Reads the configuration, opens (and tidies) the spool directory and
    /// starts the expiry sweep. Reads the directory synchronously: this runs
    /// once at start, before any client is accepted.
    pub fn from_context(ctx: &PluginContext) -> Result<FilesPlugin, ConfigError> {
        let settings =
            Settings::from_config(&ctx.config, ctx.host.data_dir(), ctx.host.max_frame_bytes())?;
        let store = Store::new(settings.dir.clone());
        let invalid = |e: StoreError| ConfigError::invalid(&ctx.config, e.to_string());
        let owner = store.claim().map_err(invalid)?;
        if owner.is_none() {
            tracing::info!(dir = %settings.dir.display(), "another instance owns the file spool (the running server); this one neither tidies nor expires it until that one is gone");
        }
        let loaded = store.open(owner.is_some()).map_err(invalid)?;
        let now = now_ms();
        let mut registry = Registry::new();
        for found in loaded {
            let mut meta = found.meta;
            if meta.phase == transfer::Phase::Uploading {
                // The sender gets a full expiry period after a restart.
                meta.expires_at = now + settings.expiry.as_millis() as u64;
            }
            registry.insert(meta.transfer.clone(), Entry::new(meta, found.received));
        }
        tracing::info!(dir = %settings.dir.display(), transfers = registry.len(), "file transfer storage ready");
        let files = Arc::new(Files {
            settings,
            store,
            host: ctx.host.clone(),
            registry: Mutex::new(registry),
            stopping: AtomicBool::new(false),
            boot: now,
            guests: Mutex::new(HashMap::new()),
            spool_lock: Mutex::new(owner),
        });
        expiry::start_sweep(&files);
        Ok(FilesPlugin { files })
    }
}

#[async_trait]
impl MessageHandler for FilesPlugin {
    fn name(&self) -> &str {
        "files"
    }

    fn features(&self) -> Vec<String> {
        vec!["files".to_string()]
    }

    /// Each chunk is acknowledged and each `file_get` answered before the
    /// next is read, and clients keep at most `window` unanswered: the
    /// handler paces these, so the frame-count flood limit does not apply.
    fn self_paced_frames(&self) -> Vec<String> {
        vec!["file_chunk".to_string(), "file_get".to_string()]
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        Ok(match self.files.dispatch(session, frame).await {
            Ok(true) => Verdict::Done,
            Ok(false) => Verdict::Continue,
            Err(error) => Verdict::Reject(error),
        })
    }

    async fn on_identity_change(&self, session: &dyn Session) {
        let mut guests = self.files.guests();
        guests.retain(|_, id| *id != session.id());
        if let (None, Some(nick)) = (session.account(), session.nick()) {
            guests.insert(fold(&nick), session.id());
        }
    }

    async fn on_session_end(&self, session: &dyn Session) {
        self.files.guests().retain(|_, id| *id != session.id());
    }

    async fn on_shutdown(&self) {
        self.files.stopping.store(true, Ordering::Release);
    }
}

/// Who is asking: identity key and nickname.
pub(crate) struct User {
    /// The account when logged in, else the folded nickname.
    pub key: String,
    pub nick: String,
}

impl Files {
    /// Handles a file frame; `Ok(false)` for frames that are not ours.
    async fn dispatch(
        self: &Arc<Self>,
        session: &dyn Session,
        frame: &mut Inbound,
    ) -> Result<bool, ApiError> {
        let id = frame.id;
        match frame.kind.as_str() {
            "file_offer" => self.offer(session, id, take(frame)?).await?,
            "file_chunk" => self.chunk(session, id, take(frame)?).await?,
            "file_resume" => self.resume(session, id, take(frame)?)?,
            "file_cancel" => self.cancel(session, id, take(frame)?).await?,
            "file_get" => self.get(session, id, take(frame)?).await?,
            "file_decline" => self.decline(session, id, take(frame)?).await?,
            "file_received" => self.received(session, id, take(frame)?).await?,
            "file_list" => self.list(session, id)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expiry_ms(&self) -> u64 {
        self.settings.expiry.as_millis() as u64
    }

    /// Writes a transfer's current record to disk (latest state wins).
    async fn persist(self: &Arc<Self>, transfer: &str) -> Result<(), StoreError> {
        let files = self.clone();
        let id = transfer.to_string();
        let transfer = id.clone();
        blocking::run(&*self.host, move || {
            let Some(disk) = files.registry().get(&transfer).map(|e| e.disk.clone()) else {
                return Ok(());
            };
            let _serial = disk.lock().unwrap_or_else(|e| e.into_inner());
            // Snapshot under the disk lock, so a later write has later state.
            let meta = files.registry().get(&transfer).map(|e| e.meta.clone());
            match meta {
                Some(meta) => files.store.save_meta(&meta),
                None => Ok(()),
            }
        })
        .await
        .unwrap_or_else(|panicked| {
            Err(StoreError {
                action: "save the record of",
                path: self.store.dir().join(id),
                error: std::io::Error::other(panicked),
            })
        })
    }

    /// Deletes a transfer (already taken out of the registry) from disk.
    async fn discard(self: &Arc<Self>, entry: Entry) {
        let store = self.store.clone();
        let id = entry.meta.transfer.clone();
        let removed = blocking::run(&*self.host, move || {
            let _serial = entry.disk.lock().unwrap_or_else(|e| e.into_inner());
            store.remove(&entry.meta.transfer)
        })
        .await;
        match removed {
            Ok(Ok(())) => tracing::debug!(transfer = %id, "transfer deleted"),
            Ok(Err(error)) => tracing::error!(transfer = %id, %error, "cannot delete transfer"),
            Err(error) => tracing::error!(transfer = %id, %error, "cannot delete transfer"),
        }
    }

    /// Takes a transfer out of the registry and deletes it; tells the sender
    /// and the recipients still waiting for it why.
    async fn remove(self: &Arc<Self>, transfer: &str, reason: &str, tell_sender: bool) {
        let Some(entry) = self.registry().remove(transfer) else {
            return;
        };
        let (owner, sender) = (entry.meta.owner.clone(), entry.meta.from.clone());
        let waiting = entry.meta.pending();
        self.discard(entry).await;
        let notice = Payload::encode(&chat_api::files::FileRemoved {
            transfer: transfer.to_string(),
            reason: reason.to_string(),
        });
        if tell_sender {
            self.notify(&owner, &sender, notice.clone());
        }
        for (key, nick) in waiting {
            self.notify(&key, &nick, notice.clone());
        }
    }

    /// Turns a disk failure into the client's error, logging the cause.
    fn disk_error(&self, error: &StoreError, doing: &str) -> ApiError {
        if error.is_disk_full() {
            tracing::warn!(%error, "file storage is full");
            ApiError::new(
                chat_api::files::codes::STORAGE_FULL,
                format!("the server's disk is full while {doing}; the transfer was cancelled, try again later"),
            )
        } else {
            tracing::error!(%error, "file storage failed");
            ApiError::new(
                ErrorCode::INTERNAL,
                format!("the server failed while {doing}; it has been logged, try again later"),
            )
        }
    }
}

impl Files {
    /// The identity files are keyed by; refuses sessions without one.
    pub(crate) fn user(&self, session: &dyn Session) -> Result<User, ApiError> {
        match (session.account(), session.nick()) {
            (Some(account), nick) => Ok(User {
                key: fold(&account),
                nick: nick.unwrap_or(account),
            }),
            (None, Some(nick)) => Ok(User {
                key: self.guest_key(session.id()),
                nick,
            }),
            (None, None) => Err(ApiError::new(
                ErrorCode::NICK_REQUIRED,
                "choose a nickname or log in before transferring files",
            )),
        }
    }

    /// A guest's identity key: its session in this process. `~` never
    /// starts an account name, so it cannot match one.
    fn guest_key(&self, session: SessionId) -> String {
        format!("~{}.{session}", self.boot)
    }

    /// The identity key of whoever holds `nick` now: the guest's session,
    /// else the account of that name.
    pub(crate) fn recipient_key(&self, nick: &str) -> String {
        let guest = self.guests().get(&fold(nick)).copied();
        guest.map_or_else(|| fold(nick), |id| self.guest_key(id))
    }

    /// Sends a notice to the user with this key: a guest only on its own
    /// session (gone means not told), an account wherever it is connected.
    pub(crate) fn notify(&self, key: &str, nick: &str, notice: Payload) {
        if !key.starts_with('~') {
            let _ = self.host.send_to_user(nick, notice);
        } else if let Some(session) = self.guest_session(key) {
            self.host.send_to_session(session, notice);
        }
    }

    /// The session of a key made by [`Files::guest_key`] in this process.
    fn guest_session(&self, key: &str) -> Option<SessionId> {
        let (boot, session) = key.strip_prefix('~')?.split_once('.')?;
        (boot.parse::<u64>().ok()? == self.boot).then(|| session.parse().ok())?
    }

    /// Whether this instance owns the spool, taking it over once the
    /// previous owner (e.g. the instance a reload replaced) has let go.
    pub(crate) fn owns_spool(&self) -> bool {
        let mut lock = self.spool_lock.lock().unwrap_or_else(|e| e.into_inner());
        if lock.is_none() {
            *lock = self.store.claim().ok().flatten();
        }
        lock.is_some()
    }

    fn guests(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionId>> {
        self.guests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Moves a plugin frame's fields out of the inbound frame (no copy of the
/// possibly large `data` string) and decodes them.
fn take<T: DeserializeOwned>(frame: &mut Inbound) -> Result<T, ApiError> {
    let Request::Custom(map) = &mut frame.request else {
        return frame.decode_custom();
    };
    let map = std::mem::take(map);
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
        ApiError::new(
            ErrorCode::INVALID_FRAME,
            format!(
                "bad '{}' frame: {e}; see docs/protocol.md for its fields",
                frame.kind
            ),
        )
    })
}

/// The `no_such_transfer` error; deliberately the same whether the id is
/// unknown or belongs to someone else.
pub(crate) fn no_such_transfer(transfer: &str) -> ApiError {
    ApiError::new(
        chat_api::files::codes::NO_SUCH_TRANSFER,
        format!("you have no transfer '{transfer}' (it may have expired, been cancelled or declined); see file_list"),
    )
}

/// Queues a reply frame.
pub(crate) fn reply<T: Serialize>(session: &dyn Session, frame: &T) {
    session.send(Payload::encode(frame));
}

pub(crate) use chat_api::now_ms;
