//! `login`: check the password (on the hashing pool, as slowly for an
//! unknown name as for a wrong password), then log the session in.

use std::time::Instant;

use chat_api::names::{fold, MAX_NICK_LEN};
use chat_api::{ApiError, HandlerError, HandlerResult, RequestId, Session};

use super::{done, logged_in, Credentials, Step};
use crate::accounts::StoredAccount;
use crate::hash_pool::PoolError;
use crate::password::{self, PasswordError};
use crate::throttle::Subject;
use crate::{busy, codes, make_decoy, Inner};

impl Inner {
    pub(crate) async fn login(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        creds: Credentials,
    ) -> HandlerResult {
        done(self.try_login(session, id, creds).await)
    }

    async fn try_login(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        creds: Credentials,
    ) -> Step<()> {
        if let Some(e) = self.check_transport(session) {
            return Err(e.into());
        }
        if let Some(e) = Self::already_logged_in(session) {
            return Err(e.into());
        }
        if creds.password.len() > password::MAX_PASSWORD_BYTES {
            let e = PasswordError::TooLong.to_string();
            return Err(ApiError::new(codes::INVALID_PASSWORD, e).into());
        }
        let key = fold(&creds.user);
        let subjects = Self::subjects(session, &key);
        if let Some(lockout) = self.throttle.check(&subjects, Instant::now()) {
            tracing::info!(account = %key, addr = ?session.peer_addr(), "login refused: throttled");
            return Err(ApiError::new(codes::THROTTLED, lockout.message()).into());
        }
        let stored = if creds.user.len() <= MAX_NICK_LEN {
            self.accounts.find_for_login(&creds.user).await?
        } else {
            None
        };
        let phc = stored.as_ref().map(|s| s.password_hash.clone());
        let (verified, renewed) = self.verify_password(phc, creds.password).await?;
        let stored = match stored {
            Some(stored) if verified => stored,
            _ => {
                self.throttle.record_failure(&subjects, Instant::now());
                tracing::info!(account = %key, addr = ?session.peer_addr(), "failed login");
                let e = ApiError::new(codes::AUTH_FAILED, "unknown account or wrong password");
                return Err(e.into());
            }
        };
        if stored.account.disabled {
            let e = "this account has been disabled by an operator";
            return Err(ApiError::new(codes::ACCOUNT_DISABLED, e).into());
        }
        self.throttle.record_success(&Subject::Account(key));
        self.log_in(session, &stored.account, true)?;
        self.recheck_after_login(session, &stored.account.name)
            .await?;
        if let Some(hash) = renewed {
            self.renew_hash(&stored, &hash).await;
        }
        if let Err(e) = self.accounts.record_login(stored.account.id).await {
            tracing::warn!(account = %stored.account.name, error = %e, "cannot record the login time");
        }
        tracing::info!(account = %stored.account.name, addr = ?session.peer_addr(), "logged in");
        let token = self.issue_token(session, &stored.account.name).await;
        logged_in(
            session,
            id,
            &stored.account.name,
            stored.account.admin,
            token.as_ref().map(|t| (t.token.as_str(), t.expires_at)),
            false,
        );
        Ok(())
    }

    /// Whether `password` matches the stored hash `phc` (`None`: an unknown
    /// name), and a new hash when the stored one has an outdated cost.
    async fn verify_password(
        &self,
        phc: Option<String>,
        password: String,
    ) -> Step<(bool, Option<String>)> {
        let (passwords, decoy) = (self.passwords.clone(), self.decoy.clone());
        let verified = self
            .hashes
            .run(move || match &phc {
                Some(phc) => {
                    let matched = passwords.verify(&password, phc);
                    let renewed = (matched && passwords.needs_rehash(phc))
                        .then(|| passwords.hash(&password).ok())
                        .flatten();
                    (matched, renewed)
                }
                None => {
                    // Unknown names are checked against the decoy, which
                    // never matches, so that they take as long as a wrong
                    // password.
                    passwords.verify(&password, decoy.get_or_init(|| make_decoy(&passwords)));
                    (false, None)
                }
            })
            .await;
        match verified {
            Ok(v) => Ok(v),
            Err(PoolError::Busy) => Err(busy().into()),
            Err(PoolError::Failed) => {
                Err(HandlerError::msg("password verification task failed").into())
            }
        }
    }

    /// An operator may have disabled or deleted the account while the
    /// password was being verified; the watcher could not end a session
    /// that was not logged in yet, so look again now that it is.
    async fn recheck_after_login(&self, session: &dyn Session, name: &str) -> Step<()> {
        match self.accounts.get(name).await {
            Ok(Some(now)) if !now.disabled => Ok(()),
            gone_or_disabled => {
                session.clear_identity();
                self.logged_in.lock().unwrap().remove(&session.id());
                gone_or_disabled?;
                Err(ApiError::new(
                    codes::ACCOUNT_DISABLED,
                    "this account was disabled or deleted by an operator while you logged in",
                )
                .into())
            }
        }
    }

    /// Stores the hash at the configured cost, unless the password changed
    /// meanwhile; a failure only costs the renewal.
    async fn renew_hash(&self, stored: &StoredAccount, hash: &str) {
        let account = &stored.account.name;
        match self
            .accounts
            .renew_hash(stored.account.id, &stored.password_hash, hash)
            .await
        {
            Ok(true) => tracing::info!(%account, "password hash renewed at the configured cost"),
            Ok(false) => {
                tracing::info!(%account, "password changed during the login; hash not renewed")
            }
            Err(e) => tracing::warn!(%account, error = %e, "cannot renew the password hash"),
        }
    }
}
