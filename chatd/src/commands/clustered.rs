//! `say`, `msg` and `broadcast` on a clustered node: the cluster gives the
//! message its id and delivers it on every node (`crate::cluster::chat`);
//! with history on, the sender's node then stores it like any other, and
//! `sent` follows once it is stored.

use chat_api::names::{fold, validate_nick};
use chat_api::{ApiError, ErrorCode, RequestId, ServerFrame};
use tokio::sync::mpsc;

use super::chat::{ack, sent};
use super::history::internal;
use super::Context;
use crate::cluster::{Cluster, Fallback, Sent};
use crate::history::{direct_conv, LogCommand, LogEntry, BROADCAST_CONV};
use crate::hub::Accepted;

/// What a clustered send produced: the accepted message, its target as
/// spelt, and the reply to send now (`None`: `sent` comes once stored).
pub struct Outcome {
    pub accepted: Accepted,
    pub target: Option<String>,
    pub reply: Option<ServerFrame>,
}

impl Context<'_> {
    fn fallback(&self) -> Fallback {
        match self.shared.history {
            Some(_) => Fallback::Refuse,
            None => Fallback::Local,
        }
    }

    /// `say` on a clustered node.
    pub(crate) async fn say_clustered(
        &self,
        cluster: &Cluster,
        id: Option<RequestId>,
        room: &str,
        text: &str,
        changed: Option<String>,
    ) -> Result<Outcome, ApiError> {
        let permit = self.log_slot().await?;
        let _flight = cluster.in_flight.begin();
        let sent = cluster.say(self.peer, room, text, self.fallback()).await?;
        let target = sent.message.room.clone();
        let conv = fold(target.as_deref().unwrap_or(room));
        Ok(self.answer(permit, id, sent, changed, conv, target))
    }

    /// `broadcast` on a clustered node.
    pub(crate) async fn broadcast_clustered(
        &self,
        cluster: &Cluster,
        id: Option<RequestId>,
        text: &str,
        changed: Option<String>,
    ) -> Result<Outcome, ApiError> {
        let permit = self.log_slot().await?;
        let _flight = cluster.in_flight.begin();
        let sent = cluster.broadcast(self.peer, text, self.fallback()).await?;
        let conv = BROADCAST_CONV.to_string();
        Ok(self.answer(permit, id, sent, changed, conv, None))
    }

    /// A slot in the log writer's queue, when history is on (taken before
    /// the message goes out, so a full queue slows only this sender).
    async fn log_slot(&self) -> Result<Option<mpsc::Permit<'_, LogCommand>>, ApiError> {
        match &self.shared.history {
            Some(history) => Ok(Some(history.reserve().await?)),
            None => Ok(None),
        }
    }

    /// `sent` now without history; with it, the message goes to the log
    /// under `conv` and `sent` follows once it is stored.
    fn answer(
        &self,
        permit: Option<mpsc::Permit<'_, LogCommand>>,
        id: Option<RequestId>,
        Sent { accepted, message }: Sent,
        changed: Option<String>,
        conv: String,
        target: Option<String>,
    ) -> Outcome {
        let reply = match permit {
            None => sent(id, &accepted, changed),
            Some(permit) => {
                let ack = ack(self.peer, id, accepted.recipients, changed, false);
                permit.send(LogCommand::Store(LogEntry::new(message, conv), Some(ack)));
                None
            }
        };
        Outcome {
            accepted,
            target,
            reply,
        }
    }

    /// `msg` on a clustered node: to whoever holds the name on any node;
    /// with history, to an account connected nowhere for its next login.
    pub(crate) async fn direct_clustered(
        &self,
        cluster: &Cluster,
        id: Option<RequestId>,
        to: &str,
        text: &str,
        changed: Option<String>,
    ) -> Result<Outcome, ApiError> {
        let Some(history) = &self.shared.history else {
            let sent_now = cluster.direct(self.peer, to, text, Fallback::Local).await?;
            let Some(Sent { accepted, message }) = sent_now else {
                return Err(no_such_user(to));
            };
            let reply = sent(id, &accepted, changed);
            return Ok(Outcome {
                accepted,
                target: message.to,
                reply,
            });
        };
        let me = self
            .peer
            .identity()
            .ok_or_else(|| ApiError::new(ErrorCode::NICK_REQUIRED, "choose a nickname first"))?;
        let my_key = history.party_key(self.peer.id, &me);
        let their_key = fold(to);
        // Whether the other party is an account (its conversations are kept).
        let account = history
            .store
            .account_name(&their_key)
            .await
            .map_err(internal)?;
        let permit = history.reserve().await?;
        let _flight = cluster.in_flight.begin();
        let online = cluster
            .direct(self.peer, to, text, Fallback::Refuse)
            .await?;
        let (sent_now, pending_for) = match online {
            Some(sent_now) => (sent_now, None),
            None => {
                let Some(name) = account.clone().filter(|_| validate_nick(to).is_ok()) else {
                    return Err(no_such_user(to));
                };
                // Connected nowhere: kept for the account's next login,
                // under an id from the stream like every message.
                let from = me.nick.to_string();
                let offline = cluster
                    .publish_direct(&from, &cluster.node, &name, text)
                    .await?;
                (offline, Some(their_key.clone()))
            }
        };
        let Sent { accepted, message } = sent_now;
        let target = message.to.clone();
        let stored_for_later = pending_for.is_some();
        let recipients = if stored_for_later {
            0
        } else {
            accepted.recipients
        };
        let sender_is_account = me.account.is_some();
        let entry = direct_entry(
            message,
            &my_key,
            sender_is_account,
            &their_key,
            account.is_some(),
        );
        let entry = LogEntry {
            pending_for,
            ..entry
        };
        let ack = ack(self.peer, id, recipients, changed, stored_for_later);
        permit.send(LogCommand::Store(entry, Some(ack)));
        Ok(Outcome {
            accepted,
            target,
            reply: None,
        })
    }
}

/// A direct message's log entry: its conversation, and each party that is
/// an account (whose list of conversations it joins).
fn direct_entry(
    message: chat_api::Message,
    my_key: &str,
    sender_is_account: bool,
    their_key: &str,
    recipient_is_account: bool,
) -> LogEntry {
    let their_party = match recipient_is_account {
        true => their_key.to_string(),
        // A guest elsewhere: a key no account can have.
        false => format!("~{their_key}"),
    };
    let mut parties = Vec::new();
    if sender_is_account {
        parties.push((my_key.to_string(), message.to.clone().unwrap_or_default()));
    }
    if recipient_is_account {
        parties.push((their_party.clone(), message.from.clone()));
    }
    LogEntry {
        conv: direct_conv(my_key, &their_party),
        message,
        pending_for: None,
        parties,
    }
}

fn no_such_user(to: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NO_SUCH_USER,
        format!("nobody called '{to}' is connected"),
    )
}
