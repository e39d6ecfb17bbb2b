//! Nicknames across the cluster: one key per folded nickname in a
//! JetStream key-value bucket. `create` succeeds for exactly one claimant;
//! a claim whose holder is gone is taken over with a compare-and-set on its
//! revision; a login takes the name from whoever holds it and has their
//! node end that session.

use std::sync::Arc;

use async_nats::jetstream;
use chat_api::names::fold;
use chat_api::{ApiError, ErrorCode, SessionId};

use super::wire::{self, Claim};
use super::{nick_taken, unavailable, Cluster};

impl Cluster {
    /// Claims `nick` for `session` across the cluster; exactly one of
    /// several nodes racing for it wins. Returns the claim's revision, to
    /// hand to [`Cluster::claimed`] or [`Cluster::unclaim`].
    pub async fn claim_nick(&self, session: SessionId, nick: &str) -> Result<u64, ApiError> {
        if !self.is_connected() {
            return Err(unavailable("the nickname cannot be checked"));
        }
        let key = fold(nick);
        if self
            .claims
            .lock()
            .unwrap()
            .get(&session)
            .is_some_and(|(held, _)| *held == key)
        {
            return Ok(0);
        }
        let claim = self.claim_value(session);
        use jetstream::kv::CreateErrorKind;
        match self.nicks.create(&key, claim.clone()).await {
            Ok(revision) => return Ok(revision),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::warn!(error = %e, nick, "cannot claim a nickname");
                return Err(unavailable("the nickname cannot be checked"));
            }
        }
        // Taken: over it only if its holder is gone.
        let entry = match self.nicks.entry(&key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err(nick_taken(nick)),
            Err(e) => {
                tracing::warn!(error = %e, nick, "cannot read a nickname claim");
                return Err(unavailable("the nickname cannot be checked"));
            }
        };
        let holder: Option<Claim> = chat_api::serde_json::from_slice(&entry.value).ok();
        let age_ms = (chat_api::now_ms() as i128)
            .saturating_sub(entry.created.unix_timestamp_nanos() / 1_000_000)
            .max(0) as u64;
        if !holder.is_some_and(|h| self.is_stale(&h, &key, age_ms)) {
            return Err(nick_taken(nick));
        }
        self.nicks
            .update(&key, claim, entry.revision)
            .await
            .map_err(|_| nick_taken(nick))
    }

    /// Whether a claim's holder has gone: a session of this node that no
    /// longer holds the name, an earlier run of this node or of another, or
    /// a node silent for longer than `node_timeout_ms`. A node this one has
    /// not heard from yet is alive while its claim is younger than that
    /// (it may have started a moment ago), and while this node itself is
    /// younger than that (it may not have heard everyone's heartbeat yet).
    fn is_stale(&self, holder: &Claim, key: &str, age_ms: u64) -> bool {
        if holder.node == self.node {
            return holder.boot != self.boot
                || self
                    .hub
                    .by_nick(key)
                    .is_none_or(|peer| peer.id != holder.session);
        }
        match self.directory.boot_of(&holder.node) {
            Some(boot) if boot == holder.boot => false,
            Some(0) => false,
            Some(_) => true,
            None => {
                let timeout = self.config.node_timeout_ms;
                let uptime = chat_api::now_ms().saturating_sub(self.boot);
                age_ms > timeout && uptime > timeout
            }
        }
    }

    /// A login (or a plugin) set `session`'s name: claims it across the
    /// cluster in the background. With `replace` (a login to an account)
    /// the claim is taken from whoever holds it, whose node then ends that
    /// session, as a second login ends the first on one node.
    pub fn claim_for_login(self: &Arc<Self>, session: SessionId, nick: &str, replace: bool) {
        let cluster = self.clone();
        let nick = nick.to_string();
        tokio::spawn(async move {
            match cluster.take_claim(session, &nick, replace).await {
                Ok(revision) => cluster.claimed(session, &nick, revision),
                Err(e) => {
                    tracing::warn!(nick, error = %e.message, "a login's name could not be claimed across the cluster")
                }
            }
        });
    }

    async fn take_claim(
        &self,
        session: SessionId,
        nick: &str,
        replace: bool,
    ) -> Result<u64, ApiError> {
        if !replace {
            return self.claim_nick(session, nick).await;
        }
        let key = fold(nick);
        let claim = self.claim_value(session);
        // A few rounds: each lost compare-and-set means another claimant
        // moved first; the last login wins, as on one node.
        for _ in 0..8 {
            let holder = match self.nicks.entry(&key).await {
                Ok(Some(entry)) if entry.operation == jetstream::kv::Operation::Put => Some(entry),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, nick, "cannot read a nickname claim");
                    return Err(unavailable("the name cannot be claimed"));
                }
            };
            let Some(entry) = holder else {
                match self.nicks.create(&key, claim.clone()).await {
                    Ok(revision) => return Ok(revision),
                    Err(_) => continue,
                }
            };
            let Ok(revision) = self.nicks.update(&key, claim.clone(), entry.revision).await else {
                continue;
            };
            let previous: Option<Claim> = chat_api::serde_json::from_slice(&entry.value).ok();
            if let Some(previous) = previous.filter(|p| p.node != self.node) {
                self.relay(
                    Some(&previous.node),
                    wire::Relay::Disconnect {
                        session: previous.session,
                        code: ErrorCode::KICKED.as_str().to_string(),
                        reason: "you logged in from another connection; this one is closed".into(),
                    },
                );
            }
            return Ok(revision);
        }
        Err(unavailable("the name cannot be claimed"))
    }

    fn claim_value(&self, session: SessionId) -> bytes::Bytes {
        chat_api::serde_json::to_vec(&Claim {
            node: self.node.clone(),
            boot: self.boot,
            session,
        })
        .expect("a claim serialises")
        .into()
    }

    /// Records that `session` now holds the nickname claimed at
    /// `revision`; a name it held before is released.
    pub fn claimed(&self, session: SessionId, nick: &str, revision: u64) {
        if revision == 0 {
            return;
        }
        let previous = self
            .claims
            .lock()
            .unwrap()
            .insert(session, (fold(nick), revision));
        if let Some((key, revision)) = previous {
            self.release(key, revision);
        }
    }

    /// Gives up a claim the hub did not take (the nickname was refused).
    pub fn unclaim(&self, nick: &str, revision: u64) {
        if revision != 0 {
            self.release(fold(nick), revision);
        }
    }

    /// The session has ended or logged out: its name is free again.
    pub(crate) fn session_gone(&self, session: SessionId) {
        let claim = self.claims.lock().unwrap().remove(&session);
        if let Some((key, revision)) = claim {
            self.release(key, revision);
        }
    }

    /// Deletes a claim if it is still the one made (its revision).
    fn release(&self, key: String, revision: u64) {
        let nicks = self.nicks.clone();
        tokio::spawn(async move {
            if let Err(e) = nicks.delete_expect_revision(&key, Some(revision)).await {
                tracing::debug!(error = %e, key, "a nickname claim was not released (taken over, or NATS away)");
            }
        });
    }
}
