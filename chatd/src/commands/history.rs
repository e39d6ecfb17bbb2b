//! `history`, `read` and `unread`: paging back through a conversation, read
//! markers, and what is unread.

use std::sync::Arc;

use chat_api::names::{fold, validate_nick};
use chat_api::{ApiError, ErrorCode, RequestId, ServerFrame};

use super::Context;
use crate::history::{direct_conv, Cursor, History, UnreadQuery};

/// Messages per `history` page when the client does not say.
const DEFAULT_PAGE: u32 = 50;

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
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

impl Context<'_> {
    pub(crate) fn history(&self) -> Result<&Arc<History>, ApiError> {
        self.shared.history.as_ref().ok_or_else(disabled)
    }

    pub(crate) fn account_key(&self) -> Result<String, ApiError> {
        self.peer
            .identity()
            .and_then(|i| i.account.as_deref().map(fold))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ACCOUNT_REQUIRED,
                    "read markers and unread counts belong to accounts; log in first",
                )
            })
    }

    /// The key of this session's direct conversation with `with`.
    async fn direct_conv_with(&self, history: &History, with: &str) -> Result<String, ApiError> {
        let me = self
            .peer
            .identity()
            .ok_or_else(|| ApiError::new(ErrorCode::NICK_REQUIRED, "choose a nickname first"))?;
        let my_key = history.party_key(self.peer.id, &me);
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
                if !self.shared.hub.is_member(self.peer, room) {
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
    pub(crate) async fn history_page(
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
    pub(crate) async fn mark_read(
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
    pub(crate) async fn unread(&self, id: Option<RequestId>) -> Result<ServerFrame, ApiError> {
        let history = self.history()?;
        let account = self.account_key()?;
        let mut queries: Vec<UnreadQuery> = Vec::new();
        let mut rooms = self.shared.hub.rooms_of(self.peer);
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
}
