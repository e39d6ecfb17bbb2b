//! `register`: create an account and log in to it, in steps.

use std::time::Instant;

use chat_api::names::{fold, validate_nick};
use chat_api::{ApiError, ErrorCode, HandlerError, HandlerResult, RequestId, Session};

use super::{done, logged_in, Credentials, Step, Stop};
use crate::accounts::{Account, AccountError};
use crate::config::Registration;
use crate::hash_pool::PoolError;
use crate::password::check_new;
use crate::throttle::Subject;
use crate::{busy, codes, Inner};

impl Inner {
    pub(crate) async fn register(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        creds: Credentials,
    ) -> HandlerResult {
        done(self.try_register(session, id, creds).await)
    }

    async fn try_register(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        creds: Credentials,
    ) -> Step<()> {
        let address = self.may_register(session, &creds)?;
        self.name_is_free(session, &creds.user).await?;
        let hash = self.hash_new_password(creds.password).await?;
        let account = self.create_account(session, &creds.user, &hash).await?;
        tracing::info!(account = %account.name, addr = ?session.peer_addr(), "account registered");
        self.registrations.record_failure(&address, Instant::now());
        if let Err(e) = self.log_in(session, &account, false) {
            self.logged_in.lock().unwrap().remove(&session.id());
            return Err(Stop::Refused(ApiError::new(
                e.code,
                format!(
                    "your account was created but you could not be logged in: {}; log in again",
                    e.message
                ),
            )));
        }
        let token = self.issue_token(session, &account.name).await;
        logged_in(
            session,
            id,
            &account.name,
            account.admin,
            token.as_ref().map(|t| (t.token.as_str(), t.expires_at)),
            false,
        );
        Ok(())
    }

    /// What needs no database: the transport, whether registration is
    /// open, the session not logged in yet, the name and password rules and
    /// the address's registration throttle. Returns what the registration
    /// counts against.
    fn may_register(&self, session: &dyn Session, creds: &Credentials) -> Step<Vec<Subject>> {
        if let Some(e) = self.check_transport(session) {
            return Err(e.into());
        }
        if self.config.registration == Registration::Closed {
            return Err(ApiError::new(
                codes::REGISTRATION_CLOSED,
                "registration is closed on this server; ask an operator for an account",
            )
            .into());
        }
        if let Some(e) = Self::already_logged_in(session) {
            return Err(e.into());
        }
        validate_nick(&creds.user)
            .map_err(|e| ApiError::new(ErrorCode::INVALID_NICK, e.to_string()))?;
        check_new(&creds.password, self.config.min_password_length)
            .map_err(|e| ApiError::new(codes::INVALID_PASSWORD, e.to_string()))?;
        let address: Vec<Subject> = session
            .peer_addr()
            .map(|a| Subject::address(a.ip()))
            .into_iter()
            .collect();
        if let Some(lockout) = self.registrations.check(&address, Instant::now()) {
            tracing::info!(addr = ?session.peer_addr(), "registration refused: throttled");
            return Err(ApiError::new(
                codes::THROTTLED,
                format!(
                    "too many new accounts from your address; try again in {} s",
                    lockout.seconds()
                ),
            )
            .into());
        }
        Ok(address)
    }

    /// Nobody has registered the name, and no other session uses it.
    async fn name_is_free(&self, session: &dyn Session, user: &str) -> Step<()> {
        if self.accounts.exists(user).await? {
            return Err(taken(user).into());
        }
        if self
            .host
            .session_of(user)
            .is_some_and(|holder| holder != session.id())
        {
            return Err(ApiError::new(
                ErrorCode::NICK_TAKEN,
                format!("someone connected is using the name '{user}'; choose another"),
            )
            .into());
        }
        Ok(())
    }

    /// Hashes a new password on the hashing pool.
    async fn hash_new_password(&self, password: String) -> Step<String> {
        let passwords = self.passwords.clone();
        match self.hashes.run(move || passwords.hash(&password)).await {
            Ok(hash) => Ok(hash.map_err(HandlerError::from)?),
            Err(PoolError::Busy) => Err(busy().into()),
            Err(PoolError::Failed) => Err(HandlerError::msg("password hashing task failed").into()),
        }
    }

    /// Stores the account, with this session's claim on its name.
    async fn create_account(&self, session: &dyn Session, user: &str, hash: &str) -> Step<Account> {
        // Claimed before the account exists, so that the watcher, seeing it
        // created, does not end this session as a guest holding the name.
        self.logged_in
            .lock()
            .unwrap()
            .insert(session.id(), fold(user));
        match self.accounts.create(user, hash, false).await {
            Ok(account) => Ok(account),
            Err(e) => {
                self.logged_in.lock().unwrap().remove(&session.id());
                Err(match e {
                    AccountError::Exists(name) => taken(&name).into(),
                    AccountError::InvalidName(e) => {
                        ApiError::new(ErrorCode::INVALID_NICK, e.to_string()).into()
                    }
                    other => other.into(),
                })
            }
        }
    }
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        codes::ACCOUNT_EXISTS,
        format!("the name '{name}' is already registered; choose another, or log in"),
    )
}
