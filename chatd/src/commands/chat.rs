//! `say`, `msg` and `broadcast`: a chat message to a room, a user or
//! everyone; through the message log when history is on.

use chat_api::names::{fold, validate_nick};
use chat_api::{ApiError, ErrorCode, MessageKind, RequestId, ServerFrame};

use std::sync::Arc;

use super::history::internal;
use super::{Context, Delivered};
use crate::config::BroadcastPolicy;
use crate::history::{direct_conv, Ack, History, LogCommand, LogEntry, BROADCAST_CONV};
use crate::hub::Accepted;
use crate::metrics::Routed;

/// `say`: a message to the members of a room.
pub async fn say(
    ctx: Context<'_>,
    id: Option<RequestId>,
    room: &str,
    text: String,
    changed: Option<String>,
    delivered: &mut Option<Delivered>,
) -> Result<Option<ServerFrame>, ApiError> {
    check_text(&text)?;
    if let Some(cluster) = &ctx.shared.cluster {
        let out = ctx.say_clustered(cluster, id, room, &text, changed).await?;
        let accepted = ctx.routed(Routed::Room, out.accepted);
        *delivered = Some(Delivered::new(
            MessageKind::Room,
            out.target,
            accepted,
            text,
        ));
        return Ok(out.reply);
    }
    let (accepted, target, reply) = match &ctx.shared.history {
        None => {
            let mut target = None;
            let accepted = ctx.routed(
                Routed::Room,
                ctx.shared
                    .hub
                    .say(ctx.peer, room, &text, |m, _, _| target = m.room)?,
            );
            let reply = sent(id, &accepted, changed);
            (accepted, target, reply)
        }
        Some(history) => {
            let (accepted, target) = ctx.say_logged(history, id, room, &text, changed).await?;
            (accepted, target, None)
        }
    };
    *delivered = Some(Delivered::new(MessageKind::Room, target, accepted, text));
    Ok(reply)
}

/// `msg`: a direct message to one user (kept for an offline account).
pub async fn msg(
    ctx: Context<'_>,
    id: Option<RequestId>,
    to: &str,
    text: String,
    changed: Option<String>,
    delivered: &mut Option<Delivered>,
) -> Result<Option<ServerFrame>, ApiError> {
    check_text(&text)?;
    if let Some(cluster) = &ctx.shared.cluster {
        let out = ctx
            .direct_clustered(cluster, id, to, &text, changed)
            .await?;
        let accepted = ctx.routed(Routed::Direct, out.accepted);
        *delivered = Some(Delivered::new(
            MessageKind::Direct,
            out.target,
            accepted,
            text,
        ));
        return Ok(out.reply);
    }
    let (accepted, target, reply) = match &ctx.shared.history {
        None => {
            let mut target = None;
            let accepted = ctx.routed(
                Routed::Direct,
                ctx.shared
                    .hub
                    .direct(ctx.peer, to, &text, |m, _, _| target = m.to)?,
            );
            let reply = sent(id, &accepted, changed);
            (accepted, target, reply)
        }
        Some(history) => {
            let (accepted, target) = ctx.direct_logged(history, id, to, &text, changed).await?;
            (accepted, target, None)
        }
    };
    *delivered = Some(Delivered::new(MessageKind::Direct, target, accepted, text));
    Ok(reply)
}

/// `broadcast`: a message to everyone connected, if the policy allows.
pub async fn broadcast(
    ctx: Context<'_>,
    id: Option<RequestId>,
    text: String,
    changed: Option<String>,
    delivered: &mut Option<Delivered>,
) -> Result<Option<ServerFrame>, ApiError> {
    ctx.check_broadcast()?;
    check_text(&text)?;
    if let Some(cluster) = &ctx.shared.cluster {
        let out = ctx.broadcast_clustered(cluster, id, &text, changed).await?;
        let accepted = ctx.routed(Routed::Broadcast, out.accepted);
        *delivered = Some(Delivered::new(MessageKind::Broadcast, None, accepted, text));
        return Ok(out.reply);
    }
    let (accepted, reply) = match &ctx.shared.history {
        None => {
            let accepted = ctx.routed(
                Routed::Broadcast,
                ctx.shared.hub.broadcast(ctx.peer, &text, |_, _| {})?,
            );
            let reply = sent(id, &accepted, changed);
            (accepted, reply)
        }
        Some(history) => (
            ctx.broadcast_logged(history, id, &text, changed).await?,
            None,
        ),
    };
    *delivered = Some(Delivered::new(MessageKind::Broadcast, None, accepted, text));
    Ok(reply)
}

/// The `sent` reply when no log stands between acceptance and the reply.
pub(super) fn sent(
    id: Option<RequestId>,
    accepted: &Accepted,
    changed: Option<String>,
) -> Option<ServerFrame> {
    Some(ServerFrame::Sent {
        id,
        msg_id: accepted.msg_id,
        ts: accepted.ts,
        recipients: accepted.recipients,
        text: changed,
        stored: false,
    })
}

impl Context<'_> {
    /// `say` through the log: delivered at once, `sent` once stored.
    pub(crate) async fn say_logged(
        &self,
        history: &History,
        id: Option<RequestId>,
        room: &str,
        text: &str,
        changed: Option<String>,
    ) -> Result<(Accepted, Option<String>), ApiError> {
        let permit = history.reserve().await?;
        let peer = self.peer.clone();
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
    pub(crate) async fn direct_logged(
        &self,
        history: &History,
        id: Option<RequestId>,
        to: &str,
        text: &str,
        changed: Option<String>,
    ) -> Result<(Accepted, Option<String>), ApiError> {
        let peer = self.peer.clone();
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
    pub(crate) async fn broadcast_logged(
        &self,
        history: &History,
        id: Option<RequestId>,
        text: &str,
        changed: Option<String>,
    ) -> Result<Accepted, ApiError> {
        let permit = history.reserve().await?;
        let peer = self.peer.clone();
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

    /// Counts a message the hub accepted, with its deliveries.
    pub(super) fn routed(&self, kind: Routed, accepted: Accepted) -> Accepted {
        if let Some(metrics) = &self.shared.metrics {
            metrics.routed(kind, accepted.recipients);
        }
        accepted
    }

    /// Whether this session may broadcast, by `server.broadcast`.
    fn check_broadcast(&self) -> Result<(), ApiError> {
        let policy = self.shared.broadcast();
        let allowed = match policy {
            BroadcastPolicy::Everyone => true,
            BroadcastPolicy::Admins => self.peer.identity().is_some_and(|i| i.admin),
            BroadcastPolicy::Nobody => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::FORBIDDEN,
                match policy {
                    BroadcastPolicy::Admins => "only administrators may broadcast on this server",
                    _ => "broadcasting is disabled on this server",
                },
            ))
        }
    }
}

/// Chat text must say something and hold no control characters but
/// newline and tab (which would let one user garble another's terminal).
fn check_text(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::INVALID_TEXT,
            "the message is empty",
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::new(
            ErrorCode::INVALID_TEXT,
            "the message contains control characters",
        ));
    }
    Ok(())
}

pub(super) fn ack(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(check_text("hello\nworld\t!").is_ok());
        assert!(check_text("  ").is_err());
        assert!(check_text("bell\u{7}").is_err());
        assert!(check_text("esc\u{1b}[2J").is_err());
    }
}
