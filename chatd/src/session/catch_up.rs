//! The session's side of logging in with history on: remembering an
//! account's rooms, and the catch-up (missed messages, rejoined rooms)
//! after a login or a resume, which must reach the client before anything
//! live.

use chat_api::names::fold;
use chat_api::{ApiError, ClientFrame, Inbound, Payload, Request, RequestId, ServerFrame};

use super::SessionTask;
use crate::commands::history::internal;
use crate::history::{Gap, History, BROADCAST_CONV};
use chat_api::Verdict;

/// Messages per `missed` frame.
const MISSED_PER_FRAME: usize = 100;

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

impl SessionTask {
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
        let (Some(history), Ok(account)) = (&self.shared.history, self.context().account_key())
        else {
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
        let history = self.context().history()?.clone();
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
        // Everything accepted before this point is in the store after this
        // (on every node, when clustered).
        history.flush().await;
        if let Some(cluster) = &self.shared.cluster {
            cluster.flush_others().await;
        }
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
        front.push(Payload::encode(&self.context().unread(None).await?));
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
            Verdict::Continue => match self.shared.hub.join(self.peer(), &room) {
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
            Verdict::Done => self.shared.hub.is_member(self.peer(), &room),
            Verdict::Reject(_) => false,
        };
        if !joined {
            tracing::debug!(%account, %room, "a remembered room cannot be joined again; forgotten");
            if let Err(e) = history.store.forget_room(account, &fold(&room)).await {
                tracing::warn!(error = %e, "cannot forget a room");
            }
        }
    }
}
