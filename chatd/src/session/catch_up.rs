//! The session's side of history: sending through the message log, the
//! `history`, `read` and `unread` frames, remembering an account's rooms,
//! and the catch-up after a login or a resume.

use std::sync::Arc;

use chat_api::names::{fold, validate_nick};
use chat_api::{
    ApiError, ClientFrame, ErrorCode, Inbound, Payload, Request, RequestId, ServerFrame,
};

use super::SessionTask;
use crate::history::{
    direct_conv, Ack, Cursor, Gap, History, LogCommand, LogEntry, UnreadQuery, BROADCAST_CONV,
};
use crate::hub::Accepted;
use crate::metrics::Routed;
use crate::pipeline::Outcome;

/// Messages per `missed` frame.
const MISSED_PER_FRAME: usize = 100;
/// Messages per `history` page when the client does not say.
const DEFAULT_PAGE: u32 = 50;

/// A frame that may log the session in, seen before the pipeline.
pub(super) struct LoginRequest {
    id: Option<RequestId>,
    /// A `resume` (replays what was missed) rather than `login`/`register`.
    resume: bool,
    /// The newest message the client has.
    last_msg_id: Option<u64>,
    /// The last id handed out before the login: direct messages and
    /// broadcasts after it reach the new session live.
    upper: u64,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "history storage failed");
    ApiError::new(
        ErrorCode::INTERNAL,
        "the message history could not be read or written; try again (the server's log says why)",
    )
}

fn disabled() -> ApiError {
    ApiError::new(
        ErrorCode::FEATURE_DISABLED,
        "this server keeps no history ([history] enabled = false)",
    )
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::INVALID_FRAME, message)
}

impl SessionTask {
    fn history(&self) -> Result<&Arc<History>, ApiError> {
        self.shared.history.as_ref().ok_or_else(disabled)
    }

    fn account_key(&self) -> Result<String, ApiError> {
        self.peer()
            .identity()
            .and_then(|i| i.account.as_deref().map(fold))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ACCOUNT_REQUIRED,
                    "read markers and unread counts belong to accounts; log in first",
                )
            })
    }

    /// `say` through the log: delivered at once, `sent` once stored.
    pub(super) async fn say_logged(
        &self,
        history: &History,
        id: Option<RequestId>,
        room: &str,
        text: &str,
        changed: Option<String>,
    ) -> Result<(Accepted, Option<String>), ApiError> {
        let permit = history.reserve().await?;
        let peer = self.peer().clone();
        let mut target = None;
        let accepted = self
            .shared
            .hub
            .say(&peer, room, text, |message, room, accepted| {
                target = message.room.clone();
                permit.send(LogCommand::Store(
                    LogEntry::new(message, room.key.clone()),
                    Some(ack(&peer, id, accepted.recipients, changed, false)),
                ));
            })?;
        Ok((self.routed(Routed::Room, accepted), target))
    }

    /// `msg` through the log; to an offline account it is kept for later.
    /// Returns the recipient's nickname (or account name) as delivered.
    pub(super) async fn direct_logged(
        &self,
        history: &History,
        id: Option<RequestId>,
        to: &str,
        text: &str,
        changed: Option<String>,
    ) -> Result<(Accepted, Option<String>), ApiError> {
        let peer = self.peer().clone();
        let me = peer
            .identity()
            .ok_or_else(|| ApiError::new(ErrorCode::NICK_REQUIRED, "choose a nickname first"))?;
        let my_key = history.party_key(peer.id, &me);
        let permit = history.reserve().await?;
        let mut delivered_to = None;
        let online = self
            .shared
            .hub
            .direct(&peer, to, text, |message, target, accepted| {
                delivered_to = message.to.clone();
                let their_key = target
                    .identity()
                    .map(|t| history.party_key(target.id, &t))
                    .unwrap_or_else(|| fold(to));
                let mut parties = Vec::new();
                if me.account.is_some() {
                    parties.push((my_key.clone(), message.to.clone().unwrap_or_default()));
                }
                if target.identity().is_some_and(|t| t.account.is_some()) {
                    parties.push((their_key.clone(), message.from.clone()));
                }
                let entry = LogEntry {
                    message,
                    conv: direct_conv(&my_key, &their_key),
                    pending_for: None,
                    parties,
                };
                permit.send(LogCommand::Store(
                    entry,
                    Some(ack(&peer, id, accepted.recipients, changed.clone(), false)),
                ));
            });
        let error = match online {
            Ok(accepted) => return Ok((self.routed(Routed::Direct, accepted), delivered_to)),
            Err(e) if e.code == ErrorCode::NO_SUCH_USER && validate_nick(to).is_ok() => e,
            Err(e) => return Err(e),
        };
        // Not connected: an account gets it at its next login.
        let their_key = fold(to);
        let Some(name) = history
            .store
            .account_name(&their_key)
            .await
            .map_err(internal)?
        else {
            return Err(error);
        };
        let permit = history.reserve().await?;
        let accepted = self
            .shared
            .hub
            .direct_to_absent(&peer, &name, text, |message, _| {
                let mut parties = vec![(their_key.clone(), message.from.clone())];
                if me.account.is_some() {
                    parties.push((my_key.clone(), name.clone()));
                }
                let entry = LogEntry {
                    message,
                    conv: direct_conv(&my_key, &their_key),
                    pending_for: Some(their_key.clone()),
                    parties,
                };
                permit.send(LogCommand::Store(
                    entry,
                    Some(ack(&peer, id, 0, changed, true)),
                ));
            })?;
        Ok((self.routed(Routed::Direct, accepted), Some(name)))
    }

    /// `broadcast` through the log.
    pub(super) async fn broadcast_logged(
        &self,
        history: &History,
        id: Option<RequestId>,
        text: &str,
        changed: Option<String>,
    ) -> Result<Accepted, ApiError> {
        let permit = history.reserve().await?;
        let peer = self.peer().clone();
        let accepted = self
            .shared
            .hub
            .broadcast(&peer, text, |message, accepted| {
                permit.send(LogCommand::Store(
                    LogEntry::new(message, BROADCAST_CONV.to_string()),
                    Some(ack(&peer, id, accepted.recipients, changed, false)),
                ));
            })?;
        Ok(self.routed(Routed::Broadcast, accepted))
    }

    /// The key of this session's direct conversation with `with`.
    async fn direct_conv_with(&self, history: &History, with: &str) -> Result<String, ApiError> {
        let me = self
            .peer()
            .identity()
            .ok_or_else(|| ApiError::new(ErrorCode::NICK_REQUIRED, "choose a nickname first"))?;
        let my_key = history.party_key(self.peer().id, &me);
        let no_such_user = || {
            ApiError::new(
                ErrorCode::NO_SUCH_USER,
                format!("nobody called '{with}' is connected or has an account"),
            )
        };
        let their_key = match self.shared.hub.by_nick(with) {
            Some(target) => {
                let identity = target.identity().ok_or_else(no_such_user)?;
                history.party_key(target.id, &identity)
            }
            None => {
                let key = fold(with);
                if validate_nick(with).is_err()
                    || history
                        .store
                        .account_name(&key)
                        .await
                        .map_err(internal)?
                        .is_none()
                {
                    return Err(no_such_user());
                }
                key
            }
        };
        Ok(direct_conv(&my_key, &their_key))
    }

    /// The conversation a frame names with `room` or `with`, checking that
    /// this session may read it.
    async fn conversation(
        &self,
        history: &History,
        room: &Option<String>,
        with: &Option<String>,
    ) -> Result<String, ApiError> {
        match (room, with) {
            (Some(room), None) => {
                if !self.shared.hub.is_member(self.peer(), room) {
                    return Err(ApiError::new(
                        ErrorCode::NOT_IN_ROOM,
                        format!("you are not in {room}; join it to read its history"),
                    ));
                }
                Ok(fold(room))
            }
            (None, Some(with)) => self.direct_conv_with(history, with).await,
            _ => Err(invalid(
                "give exactly one of \"room\" (a room) or \"with\" (a direct conversation)",
            )),
        }
    }

    /// `history`: one page of a conversation.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn history_page(
        &self,
        id: Option<RequestId>,
        room: Option<String>,
        with: Option<String>,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u32>,
        floor: Option<u64>,
    ) -> Result<ServerFrame, ApiError> {
        let history = self.history()?;
        let cursor = match (before, after) {
            (None, None) => Cursor::Latest,
            (Some(id), None) => Cursor::Before(id),
            (None, Some(id)) => Cursor::After(id),
            (Some(_), Some(_)) => {
                return Err(invalid("give at most one of \"before\" and \"after\""))
            }
        };
        let max = history.config.max_page;
        let limit = limit.unwrap_or(DEFAULT_PAGE.min(max));
        if limit == 0 || limit > max {
            return Err(invalid(&format!("\"limit\" must be between 1 and {max}")));
        }
        let conv = self.conversation(history, &room, &with).await?;
        let page = history
            .store
            .page(&conv, cursor, limit, floor.unwrap_or(0))
            .await
            .map_err(internal)?;
        Ok(ServerFrame::History {
            id,
            room,
            with,
            messages: page.messages,
            more: page.more,
        })
    }

    /// `read`: moves the account's marker forward.
    pub(super) async fn mark_read(
        &self,
        room: Option<String>,
        with: Option<String>,
        msg_id: u64,
    ) -> Result<(), ApiError> {
        let history = self.history()?;
        let account = self.account_key()?;
        let conv = match (&room, &with) {
            (Some(room), None) => fold(room),
            _ => self.conversation(history, &room, &with).await?,
        };
        history
            .store
            .mark_read(&account, &conv, msg_id)
            .await
            .map_err(internal)
    }

    /// `unread`: the account's conversations and what is unread in each.
    pub(super) async fn unread(&self, id: Option<RequestId>) -> Result<ServerFrame, ApiError> {
        let history = self.history()?;
        let account = self.account_key()?;
        let mut queries: Vec<UnreadQuery> = Vec::new();
        let mut rooms = self.shared.hub.rooms_of(self.peer());
        for room in history
            .store
            .remembered_rooms(&account)
            .await
            .map_err(internal)?
        {
            if !rooms.iter().any(|r| r.eq_ignore_ascii_case(&room)) {
                rooms.push(room);
            }
        }
        for room in rooms {
            let floor = history
                .store
                .member_floor(&fold(&room), &account)
                .await
                .map_err(internal)?;
            if floor == u64::MAX {
                continue;
            }
            queries.push(UnreadQuery {
                conv: fold(&room),
                room: Some(room),
                with: None,
                floor,
            });
        }
        for (conv, peer) in history
            .store
            .direct_conversations(&account)
            .await
            .map_err(internal)?
        {
            queries.push(UnreadQuery {
                conv,
                room: None,
                with: Some(peer),
                floor: 0,
            });
        }
        let conversations = history
            .store
            .unread(&account, &queries)
            .await
            .map_err(internal)?;
        Ok(ServerFrame::Unread { id, conversations })
    }

    /// Notes a frame that may log in, before the pipeline sees it.
    pub(super) fn login_request(&self, frame: &Inbound) -> Option<LoginRequest> {
        self.shared.history.as_ref()?;
        let resume = match frame.kind.as_str() {
            "login" | "register" => false,
            "resume" => true,
            _ => return None,
        };
        let last_msg_id = match &frame.request {
            Request::Custom(fields) => fields.get("last_msg_id").and_then(|v| v.as_u64()),
            Request::Core(_) => None,
        };
        Some(LoginRequest {
            id: frame.id,
            resume,
            last_msg_id,
            upper: self.shared.hub.last_message_id(),
        })
    }

    /// The rooms a logged-in session is in before a frame that may change
    /// them, so that the change can be remembered for its account.
    pub(super) fn room_snapshot(&self, kind: &str) -> Option<Vec<String>> {
        self.shared.history.as_ref()?;
        let tracked = kind == "join" || kind == "part" || kind.starts_with("room_");
        let account = self.peer().identity().is_some_and(|i| i.account.is_some());
        (tracked && account).then(|| self.shared.hub.rooms_of(self.peer()))
    }

    /// Remembers the rooms the account joined and forgets those it left.
    pub(super) async fn remember_rooms(&self, before: Vec<String>) {
        let (Some(history), Ok(account)) = (&self.shared.history, self.account_key()) else {
            return;
        };
        let after = self.shared.hub.memberships_of(self.peer());
        for (room, since) in &after {
            if !before.contains(room) {
                match history.store.is_private_room(&fold(room)).await {
                    Ok(false) => {}
                    Ok(true) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, %room, "cannot tell whether a room is private; not remembered");
                        continue;
                    }
                }
                if let Err(e) = history
                    .store
                    .remember_room(&account, &fold(room), room, *since)
                    .await
                {
                    tracing::warn!(error = %e, %account, %room, "cannot remember a room");
                }
            }
        }
        for room in before {
            if !after.iter().any(|(r, _)| *r == room) {
                if let Err(e) = history.store.forget_room(&account, &fold(&room)).await {
                    tracing::warn!(error = %e, %account, %room, "cannot forget a room");
                }
            }
        }
    }

    /// After a login or resume: rejoin the account's rooms, deliver what
    /// it missed and what was kept for it, then its unread state; all of it
    /// before anything live that arrived meanwhile (the queue is held).
    pub(super) async fn catch_up(&mut self, login: LoginRequest, account: &str) {
        let front = match self.catch_up_frames(&login, account).await {
            Ok(front) => front,
            Err(e) => vec![Payload::encode(&ServerFrame::error(login.id, &e))],
        };
        self.peer().release_deliveries(front);
    }

    async fn catch_up_frames(
        &mut self,
        login: &LoginRequest,
        account: &str,
    ) -> Result<Vec<Payload>, ApiError> {
        let history = self.history()?.clone();
        let key = fold(account);
        let remembered = history
            .store
            .remembered_rooms(&key)
            .await
            .map_err(internal)?;
        for room in remembered {
            if !self.shared.hub.is_member(self.peer(), &room) {
                self.rejoin(&history, &key, room).await;
            }
        }
        // Everything accepted before this point is in the store after this.
        history.flush().await;
        let pending = history.store.claim_pending(&key).await.map_err(internal)?;
        let mut front = Vec::new();
        if login.resume {
            let (mut missed, more) = match login.last_msg_id {
                Some(last) => {
                    let gaps = self.gaps(&history, &key, last, login.upper).await?;
                    history
                        .store
                        .missed(&gaps, history.config.resume_max as usize)
                        .await
                        .map_err(internal)?
                }
                None => (Vec::new(), false),
            };
            // With `more`, everything up to the cut is sent and nothing
            // after it: a direct message kept for the account past the cut
            // is read with the rest, by `history` after `last_msg_id`.
            let cut = more.then(|| missed.last().map(|m| m.msg_id)).flatten();
            missed.extend(
                pending
                    .into_iter()
                    .filter(|m| cut.is_none_or(|cut| m.msg_id <= cut)),
            );
            missed.sort_by_key(|m| m.msg_id);
            missed.dedup_by_key(|m| m.msg_id);
            let newest = missed.last().map(|m| m.msg_id);
            let count = missed.len();
            for chunk in missed.chunks(MISSED_PER_FRAME) {
                front.push(Payload::encode(&ServerFrame::Missed {
                    messages: chunk.to_vec(),
                }));
            }
            front.push(Payload::encode(&ServerFrame::Resumed {
                id: login.id,
                missed: count,
                more,
                last_msg_id: newest
                    .or(login.last_msg_id)
                    .unwrap_or(0)
                    .max(login.last_msg_id.unwrap_or(0)),
            }));
        } else {
            for message in pending {
                front.push(Payload::encode(&ServerFrame::Message(message)));
            }
        }
        front.push(Payload::encode(&self.unread(None).await?));
        Ok(front)
    }

    /// What a resume replays: each room from the client's last id up to
    /// where the session's live messages start, and the account's direct
    /// conversations and broadcasts up to the login.
    async fn gaps(
        &self,
        history: &History,
        key: &str,
        last: u64,
        upper: u64,
    ) -> Result<Vec<Gap>, ApiError> {
        let mut gaps: Vec<Gap> = Vec::new();
        for (room, since) in self.shared.hub.memberships_of(self.peer()) {
            let conv = fold(&room);
            // A private room's member missed only what was said since
            // joining it.
            let floor = history
                .store
                .member_floor(&conv, key)
                .await
                .map_err(internal)?;
            gaps.push(Gap {
                conv,
                after: last.max(floor),
                through: since,
            });
        }
        for (conv, _) in history
            .store
            .direct_conversations(key)
            .await
            .map_err(internal)?
        {
            gaps.push(Gap {
                conv,
                after: last,
                through: upper,
            });
        }
        gaps.push(Gap {
            conv: BROADCAST_CONV.to_string(),
            after: last,
            through: upper,
        });
        Ok(gaps)
    }

    /// Joins a remembered room again, through the pipeline (so a private
    /// room checks membership); a room the account may no longer enter is
    /// forgotten.
    async fn rejoin(&mut self, history: &History, account: &str, room: String) {
        let mut frame = Inbound {
            id: None,
            kind: "join".to_string(),
            request: Request::Core(ClientFrame::Join { room: room.clone() }),
        };
        let joined = match self.shared.pipeline.process(&self.view, &mut frame).await {
            Outcome::Continue => match self.shared.hub.join(self.peer(), &room) {
                Ok((name, members)) => {
                    self.reply(&ServerFrame::Joined {
                        id: None,
                        room: name,
                        members,
                        topic: None,
                    });
                    true
                }
                Err(_) => false,
            },
            Outcome::Done => self.shared.hub.is_member(self.peer(), &room),
            Outcome::Reject(_) => false,
        };
        if !joined {
            tracing::debug!(%account, %room, "a remembered room cannot be joined again; forgotten");
            if let Err(e) = history.store.forget_room(account, &fold(&room)).await {
                tracing::warn!(error = %e, "cannot forget a room");
            }
        }
    }
}

fn ack(
    peer: &Arc<crate::hub::Peer>,
    id: Option<RequestId>,
    recipients: usize,
    text: Option<String>,
    stored: bool,
) -> Ack {
    Ack {
        peer: peer.clone(),
        id,
        recipients,
        text,
        stored,
    }
}
