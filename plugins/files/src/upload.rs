//! The sender's side: offer, chunks, verification, resume, cancel.

use std::sync::Arc;

use base64::Engine;
use chat_api::files::{
    codes, FileAck, FileAvailable, FileCancel, FileChunk, FileComplete, FileOffer, FileOffered,
    FileResume, FileResumed, FileTarget,
};
use chat_api::names::{fold, validate_nick, validate_room};
use chat_api::{ApiError, ErrorCode, Payload, RequestId, Session};

use crate::file_name::check_file_name;
use crate::transfer::{
    is_transfer_id, new_transfer_id_with, usage, Entry, Meta, Outcome, Phase, Recipient, Usage,
};
use crate::{blocking, no_such_transfer, now_ms, reply, Files, User};

impl Files {
    /// `file_offer`: checks everything that can be checked before any data,
    /// reserves the size against the quotas and creates the transfer.
    pub(crate) async fn offer(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        offer: FileOffer,
    ) -> Result<(), ApiError> {
        let user = self.user(session)?;
        check_file_name(&offer.name).map_err(|m| ApiError::new(codes::INVALID_FILE_NAME, m))?;
        let sha256 = offer.sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::new(
                ErrorCode::INVALID_FRAME,
                "sha256 must be the file's SHA-256 as 64 hex digits",
            ));
        }
        let target = self.check_target(&user, &offer.target)?;
        let limits = &self.settings;
        if offer.size > limits.max_file_size {
            return Err(ApiError::new(
                codes::FILE_TOO_LARGE,
                format!(
                    "the file has {} bytes; this server accepts files of at most {} bytes",
                    offer.size, limits.max_file_size
                ),
            ));
        }
        let now = now_ms();
        let transfer = new_transfer_id_with(&self.settings.id_prefix);
        let meta = Meta {
            transfer: transfer.clone(),
            owner: user.key.clone(),
            from: user.nick.clone(),
            target,
            name: offer.name,
            size: offer.size,
            sha256,
            phase: Phase::Uploading,
            recipients: Vec::new(),
            created_at: now,
            expires_at: now + self.expiry_ms(),
        };
        {
            let mut registry = self.registry();
            let used = usage(&registry, &user.key);
            self.check_quotas(&used, registry.len(), offer.size)?;
            let mut entry = Entry::new(meta.clone(), 0);
            // Nobody may use it before its files exist.
            entry.busy = true;
            registry.insert(transfer.clone(), entry);
        }
        self.create_files(&transfer, meta).await?;
        if let Some(entry) = self.registry().get_mut(&transfer) {
            entry.busy = false;
        }
        tracing::info!(%transfer, from = %user.nick, size = offer.size, "file offered");
        reply(
            session,
            &FileOffered {
                id,
                transfer,
                chunk_size: self.settings.chunk_size,
                window: self.settings.window,
            },
        );
        Ok(())
    }

    /// Whether an upload of `size` bytes fits the owner's and the server's
    /// limits (`used`: what the owner has; `transfers`: how many exist).
    fn check_quotas(&self, used: &Usage, transfers: usize, size: u64) -> Result<(), ApiError> {
        let limits = &self.settings;
        if used.user_uploads >= limits.max_concurrent_uploads_per_user {
            return Err(ApiError::new(
                codes::TOO_MANY_UPLOADS,
                format!(
                    "you already have {} unfinished uploads (the limit); finish or cancel one first",
                    used.user_uploads
                ),
            ));
        }
        if used.user_files >= limits.max_files_per_user {
            return Err(ApiError::new(
                codes::QUOTA_EXCEEDED,
                format!(
                    "you already have {} files waiting on the server (the limit); cancel some or wait until they are fetched",
                    used.user_files
                ),
            ));
        }
        if used.user_bytes + size > limits.per_user_quota {
            return Err(ApiError::new(
                codes::QUOTA_EXCEEDED,
                format!(
                    "this file ({} bytes) would take your stored files to {} bytes, over your quota of {} bytes; cancel some or wait until they are fetched",
                    size,
                    used.user_bytes + size,
                    limits.per_user_quota
                ),
            ));
        }
        if transfers >= limits.max_transfers as usize {
            return Err(ApiError::new(
                codes::QUOTA_EXCEEDED,
                format!(
                    "the server holds its maximum of {} transfers right now; try again later",
                    limits.max_transfers
                ),
            ));
        }
        if used.total_bytes + size > limits.total_quota {
            return Err(ApiError::new(
                codes::QUOTA_EXCEEDED,
                format!(
                    "the server has no room for {} more bytes right now (total quota {} bytes); try again later",
                    size, limits.total_quota
                ),
            ));
        }
        Ok(())
    }

    /// Creates the transfer's files; on failure the reserved entry goes.
    async fn create_files(self: &Arc<Self>, transfer: &str, meta: Meta) -> Result<(), ApiError> {
        let store = self.store.clone();
        let created = blocking::run(&*self.host, move || store.create(&meta)).await;
        let failure = match created {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => self.disk_error(&error, "creating the transfer"),
            Err(panicked) => {
                tracing::error!(%panicked, "creating a transfer");
                ApiError::new(
                    ErrorCode::INTERNAL,
                    "the server failed creating the transfer; try again later",
                )
            }
        };
        let removed = self.registry().remove(transfer);
        if let Some(entry) = removed {
            self.discard(entry).await;
        }
        Err(failure)
    }

    /// Checks the recipient of an offer; returns it in canonical form.
    fn check_target(&self, user: &User, target: &FileTarget) -> Result<FileTarget, ApiError> {
        match (&target.to, &target.room) {
            (Some(to), None) => {
                validate_nick(to)
                    .map_err(|e| ApiError::new(ErrorCode::INVALID_NICK, e.to_string()))?;
                if fold(to) == user.key || fold(to) == fold(&user.nick) {
                    return Err(ApiError::new(
                        ErrorCode::REJECTED,
                        "you cannot send a file to yourself",
                    ));
                }
                if self.host.session_of(to).is_none() {
                    return Err(ApiError::new(
                        ErrorCode::NO_SUCH_USER,
                        format!("nobody called '{to}' is connected; offer the file when they are (they can fetch it later)"),
                    ));
                }
                Ok(FileTarget {
                    to: Some(to.clone()),
                    room: None,
                })
            }
            (None, Some(room)) => {
                validate_room(room)
                    .map_err(|e| ApiError::new(ErrorCode::INVALID_ROOM, e.to_string()))?;
                let members = self.host.room_members(room).ok_or_else(|| {
                    ApiError::new(ErrorCode::NO_SUCH_ROOM, format!("there is no room {room}"))
                })?;
                if !members.iter().any(|m| fold(m) == fold(&user.nick)) {
                    return Err(ApiError::new(
                        ErrorCode::NOT_IN_ROOM,
                        format!("join {room} before sending files to it"),
                    ));
                }
                Ok(FileTarget {
                    to: None,
                    room: Some(fold(room)),
                })
            }
            _ => Err(ApiError::new(
                ErrorCode::INVALID_FRAME,
                "a file_offer needs exactly one of \"to\" (a nickname) or \"room\"",
            )),
        }
    }

    /// `file_chunk`: checks the chunk against the transfer, writes it at its
    /// offset, acknowledges it; the last one triggers verification.
    pub(crate) async fn chunk(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        chunk: FileChunk,
    ) -> Result<(), ApiError> {
        let user = self.user(session)?;
        let transfer = chunk.transfer;
        let offset = chunk.offset;
        let bytes = self.decode_chunk(chunk.data)?;
        self.claim_for_chunk(&user, &transfer, offset, bytes.len() as u64)?;
        let store = self.store.clone();
        let len = bytes.len() as u64;
        let id_for_write = transfer.clone();
        let written = blocking::run(&*self.host, move || {
            store.write_chunk(&id_for_write, offset, &bytes)
        })
        .await;
        let complete = {
            let mut registry = self.registry();
            let Some(entry) = registry.get_mut(&transfer) else {
                // Cancelled or expired while the chunk was being written.
                return Err(no_such_transfer(&transfer));
            };
            match written {
                Ok(Ok(())) => {
                    entry.received += len;
                    entry.meta.expires_at = now_ms() + self.expiry_ms();
                    let complete = entry.received == entry.meta.size;
                    // Stays busy through verification.
                    entry.busy = complete;
                    Ok(complete)
                }
                Ok(Err(error)) => {
                    entry.busy = false;
                    Err(error)
                }
                Err(panicked) => {
                    entry.busy = false;
                    tracing::error!(%panicked, "writing a chunk");
                    return Err(ApiError::new(
                        ErrorCode::INTERNAL,
                        "the server failed writing the chunk; resume the upload",
                    ));
                }
            }
        };
        let complete = match complete {
            Ok(complete) => complete,
            Err(error) => {
                let api = self.disk_error(&error, "writing a chunk");
                if error.is_disk_full() {
                    self.remove(&transfer, "failed", false).await;
                }
                return Err(api);
            }
        };
        if complete {
            self.complete(session, id, &transfer).await
        } else {
            reply(
                session,
                &FileAck {
                    id,
                    transfer,
                    received: offset + len,
                },
            );
            Ok(())
        }
    }

    /// The bytes of a chunk's base64 `data`, at most `chunk_size` of them.
    fn decode_chunk(&self, data: String) -> Result<Vec<u8>, ApiError> {
        let chunk_size = self.settings.chunk_size as usize;
        if data.len() > base64::encoded_len(chunk_size, true).unwrap_or(usize::MAX) {
            return Err(bad_chunk(format!(
                "the chunk is larger than the transfer's chunk_size of {chunk_size} bytes"
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| bad_chunk(format!("the chunk's data is not base64: {e}")))?;
        // The length check above only bounds the decoding work (base64 pads
        // to whole groups); the limit is on the bytes themselves.
        if bytes.len() > chunk_size {
            return Err(bad_chunk(format!(
                "the chunk holds {} bytes, more than the transfer's chunk_size of {chunk_size} bytes",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Checks that `len` bytes at `offset` are the next of `user`'s upload
    /// and marks the transfer busy while they are written.
    fn claim_for_chunk(
        &self,
        user: &User,
        transfer: &str,
        offset: u64,
        len: u64,
    ) -> Result<(), ApiError> {
        let mut registry = self.registry();
        let entry = registry
            .get_mut(transfer)
            .filter(|e| e.meta.owner == user.key)
            .ok_or_else(|| no_such_transfer(transfer))?;
        if entry.meta.phase != Phase::Uploading {
            return Err(ApiError::new(
                codes::WRONG_STATE,
                "the upload is already complete",
            ));
        }
        if entry.busy {
            return Err(busy());
        }
        if offset != entry.received {
            return Err(ApiError::new(
                codes::BAD_OFFSET,
                format!(
                    "expected the chunk at offset {}, got offset {offset} (chunks must arrive in order, once each)",
                    entry.received
                ),
            ));
        }
        let end = offset + len;
        if end > entry.meta.size {
            return Err(bad_chunk(format!(
                "the chunk ends at byte {end}, past the offered size of {} bytes",
                entry.meta.size
            )));
        }
        if len == 0 && entry.meta.size != 0 {
            return Err(bad_chunk("the chunk is empty".to_string()));
        }
        entry.busy = true;
        Ok(())
    }

    /// The last chunk is in: verify, publish, tell the recipients.
    async fn complete(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        transfer: &str,
    ) -> Result<(), ApiError> {
        let Some(expected) = self.registry().get(transfer).map(|e| e.meta.sha256.clone()) else {
            return Err(no_such_transfer(transfer));
        };
        self.verify_upload(transfer, expected).await?;
        let (info, recipients) = {
            let mut registry = self.registry();
            let Some(entry) = registry.get_mut(transfer) else {
                return Err(no_such_transfer(transfer));
            };
            let meta = &mut entry.meta;
            meta.recipients = self.recipients_of(meta);
            meta.phase = Phase::Complete;
            meta.expires_at = now_ms() + self.expiry_ms();
            entry.busy = false;
            (meta.info(), meta.pending())
        };
        let saved = self.persist(transfer).await;
        if let Err(error) = saved {
            let api = self.disk_error(&error, "recording the finished upload");
            self.remove(transfer, "failed", false).await;
            return Err(api);
        }
        tracing::info!(%transfer, recipients = recipients.len(), "file complete");
        reply(
            session,
            &FileComplete {
                id,
                transfer: transfer.to_string(),
                size: info.size,
                sha256: info.sha256.clone(),
                recipients: recipients.iter().map(|(_, nick)| nick.clone()).collect(),
            },
        );
        if recipients.is_empty() {
            self.remove(transfer, "delivered", false).await;
            return Ok(());
        }
        let notice = Payload::encode(&FileAvailable { file: info });
        for (key, nick) in &recipients {
            // Offline recipients find it with file_list.
            self.notify(key, nick, notice.clone());
        }
        Ok(())
    }

    /// Hashes the uploaded bytes and publishes them if they are what was
    /// offered; otherwise the transfer is deleted.
    async fn verify_upload(
        self: &Arc<Self>,
        transfer: &str,
        expected: String,
    ) -> Result<(), ApiError> {
        let store = self.store.clone();
        let id_for_hash = transfer.to_string();
        let wanted = expected.clone();
        let verified = blocking::run(&*self.host, move || {
            store.verify_and_publish(&id_for_hash, &wanted)
        })
        .await;
        let found = match verified {
            Ok(Ok(found)) => found,
            Ok(Err(_)) if !self.registry().contains_key(transfer) => {
                // Cancelled or expired while being verified.
                return Err(no_such_transfer(transfer));
            }
            Ok(Err(error)) => {
                let api = self.disk_error(&error, "verifying the upload");
                self.remove(transfer, "failed", false).await;
                return Err(api);
            }
            Err(panicked) => {
                tracing::error!(%panicked, "verifying an upload");
                self.remove(transfer, "failed", false).await;
                return Err(ApiError::new(
                    ErrorCode::INTERNAL,
                    "the server failed verifying the upload; offer the file again",
                ));
            }
        };
        if found != expected {
            self.remove(transfer, "failed", false).await;
            tracing::info!(%transfer, "upload failed verification");
            return Err(ApiError::new(
                codes::HASH_MISMATCH,
                format!("the uploaded bytes have SHA-256 {found}, not the offered {expected}; the transfer was deleted, offer the file again"),
            ));
        }
        Ok(())
    }

    /// Who a finished upload goes to: the user it names, or the room's
    /// members other than the sender.
    fn recipients_of(&self, meta: &Meta) -> Vec<Recipient> {
        match (&meta.target.to, &meta.target.room) {
            (Some(to), _) => vec![Recipient {
                key: self.recipient_key(to),
                nick: to.clone(),
                outcome: Outcome::Pending,
            }],
            (None, Some(room)) => self
                .host
                .room_members(room)
                .unwrap_or_default()
                .into_iter()
                .filter(|m| fold(m) != fold(&meta.from) && fold(m) != meta.owner)
                .map(|m| Recipient {
                    key: self.recipient_key(&m),
                    nick: m,
                    outcome: Outcome::Pending,
                })
                .collect(),
            (None, None) => Vec::new(),
        }
    }

    /// `file_resume`: where an interrupted upload continues.
    pub(crate) fn resume(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        resume: FileResume,
    ) -> Result<(), ApiError> {
        let user = self.user(session)?;
        let registry = self.registry();
        let entry = registry
            .get(&resume.transfer)
            .filter(|e| e.meta.owner == user.key)
            .ok_or_else(|| no_such_transfer(&resume.transfer))?;
        if entry.busy {
            return Err(busy());
        }
        reply(
            session,
            &FileResumed {
                id,
                transfer: resume.transfer.clone(),
                received: entry.received,
                size: entry.meta.size,
                chunk_size: self.settings.chunk_size,
                window: self.settings.window,
                complete: entry.meta.phase == Phase::Complete,
            },
        );
        Ok(())
    }

    /// `file_cancel`: the sender withdraws the file, finished or not.
    pub(crate) async fn cancel(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        cancel: FileCancel,
    ) -> Result<(), ApiError> {
        let user = self.user(session)?;
        let owned = is_transfer_id(&cancel.transfer)
            && self
                .registry()
                .get(&cancel.transfer)
                .is_some_and(|e| e.meta.owner == user.key);
        if !owned {
            return Err(no_such_transfer(&cancel.transfer));
        }
        self.remove(&cancel.transfer, "cancelled", false).await;
        tracing::info!(transfer = %cancel.transfer, "transfer cancelled by its sender");
        session.reply_ok(id);
        Ok(())
    }
}

fn bad_chunk(message: String) -> ApiError {
    ApiError::new(codes::BAD_CHUNK, message)
}

fn busy() -> ApiError {
    ApiError::new(
        codes::TRANSFER_BUSY,
        "another request is writing or verifying this transfer; retry with file_resume when it is done",
    )
}
