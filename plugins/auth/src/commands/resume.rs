//! `resume`: log in with a resume token instead of the password.

use std::time::Instant;

use chat_api::{HandlerError, HandlerResult, RequestId, Session, Verdict};

use super::logged_in;
use crate::throttle::Subject;
use crate::{codes, reject, storage_failure, tokens, Inner};

impl Inner {
    /// `resume`: logs in with a token instead of the password.
    pub(crate) async fn resume(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        token: Option<String>,
    ) -> HandlerResult {
        if let Some(e) = Self::already_logged_in(session) {
            return Ok(Verdict::Reject(e));
        }
        let invalid = || {
            reject(
                codes::INVALID_TOKEN,
                "the resume token is unknown, expired or revoked; log in with your password",
            )
        };
        let Some(token) = token.or_else(|| session.transport_token()) else {
            return invalid();
        };
        // Guessing tokens is throttled like guessing passwords, per address.
        let subjects: Vec<Subject> = session
            .peer_addr()
            .map(|a| Subject::address(a.ip()))
            .into_iter()
            .collect();
        if let Some(lockout) = self.throttle.check(&subjects, Instant::now()) {
            return reject(codes::THROTTLED, lockout.message());
        }
        let Some((key, expires_at)) = self
            .tokens
            .redeem(&token)
            .await
            .map_err(HandlerError::from)?
        else {
            self.throttle.record_failure(&subjects, Instant::now());
            tracing::info!(addr = ?session.peer_addr(), "resume with an invalid token");
            return invalid();
        };
        let account = match self.accounts.get(&key).await.map_err(storage_failure)? {
            Some(account) if !account.disabled => account,
            Some(_) => {
                return reject(
                    codes::ACCOUNT_DISABLED,
                    "this account has been disabled by an operator",
                )
            }
            None => return invalid(),
        };
        if let Err(e) = self.log_in(session, &account, true) {
            return Ok(Verdict::Reject(e));
        }
        let hash = tokens::hash(&token);
        self.session_tokens
            .lock()
            .unwrap()
            .insert(session.id(), hash);
        tracing::info!(account = %account.name, addr = ?session.peer_addr(), "resumed");
        logged_in(
            session,
            id,
            &account.name,
            account.admin,
            Some((token.as_str(), expires_at)),
            true,
        );
        Ok(Verdict::Done)
    }
}
