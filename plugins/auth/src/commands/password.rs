//! `passwd`: change one's own password.

use std::time::Instant;

use chat_api::names::fold;
use chat_api::{HandlerError, HandlerResult, RequestId, Session, Verdict};

use crate::hash_pool::PoolError;
use crate::password::check_new;
use crate::{auth_required, busy, codes, reject, storage_failure, Inner};

impl Inner {
    pub(crate) async fn passwd(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        old_password: String,
        new_password: String,
    ) -> HandlerResult {
        if let Some(e) = self.check_transport(session) {
            return Ok(Verdict::Reject(e));
        }
        let Some(account) = session.account() else {
            return Ok(Verdict::Reject(auth_required()));
        };
        if let Err(e) = check_new(&new_password, self.config.min_password_length) {
            return reject(codes::INVALID_PASSWORD, e.to_string());
        }
        let key = fold(&account);
        let subjects = Self::subjects(session, &key);
        if let Some(lockout) = self.throttle.check(&subjects, Instant::now()) {
            return reject(codes::THROTTLED, lockout.message());
        }
        let Some(stored) = self
            .accounts
            .find_for_login(&account)
            .await
            .map_err(storage_failure)?
        else {
            return reject(codes::AUTH_FAILED, "your account no longer exists");
        };
        let passwords = self.passwords.clone();
        let phc = stored.password_hash;
        let outcome = self
            .hashes
            .run(move || {
                passwords
                    .verify(&old_password, &phc)
                    .then(|| passwords.hash(&new_password))
            })
            .await;
        let new_hash = match outcome {
            Ok(Some(hash)) => hash?,
            Ok(None) => {
                self.throttle.record_failure(&subjects, Instant::now());
                tracing::info!(account = %key, addr = ?session.peer_addr(), "password change: wrong current password");
                return reject(codes::AUTH_FAILED, "the current password is wrong");
            }
            Err(PoolError::Busy) => return Ok(Verdict::Reject(busy())),
            Err(PoolError::Failed) => {
                return Err(HandlerError::msg("password hashing task failed"))
            }
        };
        self.accounts
            .set_password_hash(&account, &new_hash)
            .await
            .map_err(storage_failure)?;
        tracing::info!(account = %account, "password changed");
        session.reply_ok(id);
        Ok(Verdict::Done)
    }
}
