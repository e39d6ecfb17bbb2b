//! # auth: accounts for chatd
//!
//! A built-in plugin that gives users accounts that only they can use.
//! While it is enabled a session can do nothing but `register` or `login`
//! (and `ping`, `quit`) until it is authenticated; its nickname is then its
//! account name, which nobody else can take. Admins (a flag per account)
//! may broadcast when `server.broadcast = "admins"`, and other plugins see
//! the flag through [`Session::is_admin`].
//!
//! * Passwords are stored as argon2id PHC strings ([`password`]); hashing
//!   runs on the blocking pool, a bounded number at a time ([`hash_pool`]).
//! * Failed logins back off per account and per address ([`throttle`]).
//! * Accounts live in the server's SQLite database ([`accounts`]), which the
//!   admin CLI (`chatd user ...`) edits too, even while the server runs; the
//!   plugin watches for accounts the CLI disabled or deleted and ends their
//!   sessions.
//!
//! ```toml
//! [[plugin]]
//! name = "auth"              # first in the pipeline
//! [plugin.config]
//! registration = "open"      # or "closed": only `chatd user add`
//! allow_plaintext = true     # false: passwords only over TLS
//! ```
//!
//! The frames are documented in `docs/protocol.md` ("Accounts frames").

pub mod accounts;
pub mod config;
pub mod hash_pool;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chat_api::accounts::{AccountRequest, LoggedIn, WhoAmI};
use chat_api::names::{fold, validate_nick};
use chat_api::{
    async_trait, ApiError, ClientFrame, ConfigError, ErrorCode, HandlerError, HandlerResult, Host,
    Identity, Inbound, MessageHandler, PluginContext, Request, RequestId, Session, SessionId,
    Verdict,
};
use chatd_storage::Database;
use tokio::sync::watch;

pub use accounts::{Account, AccountError, Accounts};
pub use config::{AuthConfig, Registration};
pub use password::{check_new, PasswordError, Passwords};

use hash_pool::{HashPool, PoolError};
use throttle::{Subject, Throttle};

/// Error codes of the accounts frames, from the protocol crate.
pub use chat_api::accounts::codes;

/// A name and password from `register` or `login`.
struct Credentials {
    user: String,
    password: String,
}

fn logged_in(
    session: &dyn Session,
    id: Option<u64>,
    account: &str,
    admin: bool,
    token: Option<(&str, i64)>,
    resumed: bool,
) {
    session.send_frame(&LoggedIn {
        id,
        user: account.to_string(),
        nick: account.to_string(),
        admin,
        resume_token: token.map(|t| t.0.to_string()),
        token_expires: token.map(|t| u64::try_from(t.1).unwrap_or(0)),
        resumed,
    });
}

/// Events older than this are deleted when the server starts.
const EVENT_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
/// Events read per poll.
const EVENTS_PER_POLL: i64 = 500;

/// The plugin.
pub struct AuthPlugin {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    accounts: Accounts,
    passwords: Passwords,
    hashes: HashPool,
    throttle: Throttle,
    /// Registrations per client address (`throttle.registrations_per_address`).
    registrations: Throttle,
    host: Arc<dyn Host>,
    /// Logged-in sessions and the (folded) account of each, to end them when
    /// the account is disabled or deleted from the CLI. Also holds a session
    /// while it registers, so the watcher does not take it for a guest.
    logged_in: Mutex<HashMap<SessionId, String>>,
    /// The resume token (its hash) each logged-in session was given or
    /// resumed with, so `logout` revokes that one.
    session_tokens: Mutex<HashMap<SessionId, Vec<u8>>>,
    tokens: tokens::Tokens,
    /// The hash of a random password, checked when a login names no account
    /// so that unknown names cost as much time as wrong passwords.
    decoy: Arc<OnceLock<String>>,
    /// Tells the account watcher to stop (at shutdown).
    stop: watch::Sender<bool>,
}

fn reject(code: ErrorCode, message: impl Into<String>) -> HandlerResult {
    Ok(Verdict::Reject(ApiError::new(code, message)))
}

fn auth_required() -> ApiError {
    ApiError::new(
        codes::AUTH_REQUIRED,
        "log in first: {\"type\":\"login\",\"user\":\"NAME\",\"password\":\"...\"} (or register)",
    )
}

fn busy() -> HandlerResult {
    reject(
        codes::SERVER_BUSY,
        "the server is checking too many passwords right now; try again in a few seconds",
    )
}

fn storage_failure(e: AccountError) -> HandlerError {
    HandlerError::from(e)
}

impl AuthPlugin {
    /// Builds the plugin on the server's database and starts the account
    /// watcher.
    pub fn new(ctx: &PluginContext, db: Database) -> Result<AuthPlugin, ConfigError> {
        let config = AuthConfig::from_plugin_config(&ctx.config)?;
        let passwords = Passwords::new(&config.argon2)
            .map_err(|e| ConfigError::invalid(&ctx.config, format!("argon2: {e}")))?;
        let (stop, stopped) = watch::channel(false);
        let inner = Arc::new(Inner {
            hashes: HashPool::new(
                ctx.host.clone(),
                config.argon2.max_concurrent,
                config.argon2.max_waiting,
            ),
            throttle: Throttle::new(config.throttle.clone()),
            registrations: Throttle::new(config::ThrottleConfig {
                address_failures: config.throttle.registrations_per_address.max(1),
                ..config.throttle.clone()
            }),
            tokens: tokens::Tokens::new(db.clone(), config.resume_token_days),
            session_tokens: Mutex::new(HashMap::new()),
            accounts: Accounts::new(db),
            passwords,
            host: ctx.host.clone(),
            logged_in: Mutex::new(HashMap::new()),
            decoy: Arc::new(OnceLock::new()),
            stop,
            config,
        });
        // Compute the decoy hash now, off the reactor, so the first unknown
        // name does not pay for it.
        let (decoy, passwords) = (inner.decoy.clone(), inner.passwords.clone());
        ctx.host.spawn_blocking(Box::new(move || {
            decoy.get_or_init(|| make_decoy(&passwords));
        }));
        ctx.host
            .spawn(Box::pin(watch_accounts(Arc::downgrade(&inner), stopped)));
        tracing::info!(
            registration = ?inner.config.registration,
            allow_plaintext = inner.config.allow_plaintext,
            allow_guests = inner.config.allow_guests,
            database = %inner.accounts.database().path().display(),
            "accounts enabled"
        );
        Ok(AuthPlugin { inner })
    }
}

fn make_decoy(passwords: &Passwords) -> String {
    let seed = format!("{:?}{:?}", Instant::now(), std::thread::current().id());
    passwords.hash(&seed).unwrap_or_default()
}

#[async_trait]
impl MessageHandler for AuthPlugin {
    fn name(&self) -> &str {
        "auth"
    }

    fn features(&self) -> Vec<String> {
        let mut features = vec!["accounts".to_string(), "resume".to_string()];
        if self.inner.config.registration == Registration::Open {
            features.push("registration".to_string());
        }
        features
    }

    fn requires_login(&self) -> bool {
        !self.inner.config.allow_guests
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        let inner = &self.inner;
        if AccountRequest::KINDS.contains(&frame.kind.as_str()) {
            return match frame.decode_custom::<AccountRequest>() {
                Ok(request) => inner.answer(session, frame.id, request).await,
                Err(e) => Ok(Verdict::Reject(e)),
            };
        }
        let authenticated = session.account().is_some();
        match &frame.request {
            Request::Core(
                ClientFrame::Ping { .. } | ClientFrame::Quit { .. } | ClientFrame::Hello { .. },
            ) => Ok(Verdict::Continue),
            Request::Core(ClientFrame::Nick { nick }) => {
                if let Some(account) = session.account() {
                    return reject(
                        ErrorCode::FORBIDDEN,
                        format!(
                            "your nickname is your account name ({account}) and cannot be changed"
                        ),
                    );
                }
                if !inner.config.allow_guests {
                    return Ok(Verdict::Reject(auth_required()));
                }
                if inner.accounts.exists(nick).await.map_err(storage_failure)? {
                    return reject(
                        ErrorCode::NICK_TAKEN,
                        format!("'{nick}' is a registered account; log in to use it, or choose another nickname"),
                    );
                }
                Ok(Verdict::Continue)
            }
            _ if authenticated => Ok(Verdict::Continue),
            _ if inner.config.allow_guests && session.nick().is_some() => Ok(Verdict::Continue),
            _ => Ok(Verdict::Reject(auth_required())),
        }
    }

    async fn on_session_end(&self, session: &dyn Session) {
        self.inner.logged_in.lock().unwrap().remove(&session.id());
        self.inner
            .session_tokens
            .lock()
            .unwrap()
            .remove(&session.id());
    }

    async fn on_shutdown(&self) {
        let _ = self.inner.stop.send(true);
    }
}

impl Inner {
    /// Refuses passwords over plaintext when the configuration says so.
    fn check_transport(&self, session: &dyn Session) -> Option<ApiError> {
        // `is_encrypted` also knows WebSockets upgraded over HTTPS.
        (!self.config.allow_plaintext && !session.is_encrypted()).then(|| {
            ApiError::new(
                codes::TLS_REQUIRED,
                "this server accepts passwords only over TLS; connect to its TLS port",
            )
        })
    }

    fn already_logged_in(session: &dyn Session) -> Option<ApiError> {
        session.account().map(|account| {
            ApiError::new(
                codes::ALREADY_LOGGED_IN,
                format!("you are already logged in as {account}; send logout first"),
            )
        })
    }

    /// What a failed login from this session counts against.
    fn subjects(session: &dyn Session, key: &str) -> Vec<Subject> {
        login_subjects(session.peer_addr(), key)
    }

    fn log_in(
        &self,
        session: &dyn Session,
        account: &Account,
        replace: bool,
    ) -> Result<(), ApiError> {
        session.set_identity(
            Identity {
                nick: account.name.clone(),
                account: Some(account.name.clone()),
                admin: account.admin,
            },
            replace,
        )?;
        self.logged_in
            .lock()
            .unwrap()
            .insert(session.id(), fold(&account.name));
        Ok(())
    }

    /// One of the accounts frames.
    async fn answer(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        request: AccountRequest,
    ) -> HandlerResult {
        match request {
            AccountRequest::Register { user, password } => {
                self.register(session, id, Credentials { user, password })
                    .await
            }
            AccountRequest::Login { user, password } => {
                self.login(session, id, Credentials { user, password })
                    .await
            }
            AccountRequest::Resume { token, .. } => self.resume(session, id, token).await,
            AccountRequest::Passwd {
                old_password,
                new_password,
            } => self.passwd(session, id, old_password, new_password).await,
            AccountRequest::Logout { everywhere } => self.logout(session, id, everywhere).await,
            AccountRequest::Whoami {} => self.whoami(session, id),
            // A request chat-protocol knows and this plugin does not yet.
            other => reject(
                ErrorCode::UNKNOWN_TYPE,
                format!("this server does not handle '{}' frames", other.kind()),
            ),
        }
    }

    async fn register(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        creds: Credentials,
    ) -> HandlerResult {
        if let Some(e) = self.check_transport(session) {
            return Ok(Verdict::Reject(e));
        }
        if self.config.registration == Registration::Closed {
            return reject(
                codes::REGISTRATION_CLOSED,
                "registration is closed on this server; ask an operator for an account",
            );
        }
        if let Some(e) = Self::already_logged_in(session) {
            return Ok(Verdict::Reject(e));
        }
        if let Err(e) = validate_nick(&creds.user) {
            return reject(ErrorCode::INVALID_NICK, e.to_string());
        }
        if let Err(e) = check_new(&creds.password, self.config.min_password_length) {
            return reject(codes::INVALID_PASSWORD, e.to_string());
        }
        let address: Vec<Subject> = session
            .peer_addr()
            .map(|a| Subject::address(a.ip()))
            .into_iter()
            .collect();
        if let Some(lockout) = self.registrations.check(&address, Instant::now()) {
            tracing::info!(addr = ?session.peer_addr(), "registration refused: throttled");
            return reject(
                codes::THROTTLED,
                format!(
                    "too many new accounts from your address; try again in {} s",
                    lockout.seconds()
                ),
            );
        }
        if self
            .accounts
            .exists(&creds.user)
            .await
            .map_err(storage_failure)?
        {
            return reject(
                codes::ACCOUNT_EXISTS,
                format!(
                    "the name '{}' is already registered; choose another, or log in",
                    creds.user
                ),
            );
        }
        if self
            .host
            .session_of(&creds.user)
            .is_some_and(|holder| holder != session.id())
        {
            return reject(
                ErrorCode::NICK_TAKEN,
                format!(
                    "someone connected is using the name '{}'; choose another",
                    creds.user
                ),
            );
        }
        let passwords = self.passwords.clone();
        let password = creds.password;
        let hash = match self.hashes.run(move || passwords.hash(&password)).await {
            Ok(hash) => hash?,
            Err(PoolError::Busy) => return busy(),
            Err(PoolError::Failed) => {
                return Err(HandlerError::msg("password hashing task failed"))
            }
        };
        // Claimed before the account exists, so that the watcher, seeing it
        // created, does not end this session as a guest holding the name.
        let key = fold(&creds.user);
        self.logged_in
            .lock()
            .unwrap()
            .insert(session.id(), key.clone());
        let created = self.accounts.create(&creds.user, &hash, false).await;
        let account = match created {
            Ok(account) => account,
            Err(e) => {
                self.logged_in.lock().unwrap().remove(&session.id());
                return match e {
                    AccountError::Exists(name) => reject(
                        codes::ACCOUNT_EXISTS,
                        format!(
                            "the name '{name}' is already registered; choose another, or log in"
                        ),
                    ),
                    AccountError::InvalidName(e) => reject(ErrorCode::INVALID_NICK, e.to_string()),
                    other => Err(storage_failure(other)),
                };
            }
        };
        tracing::info!(account = %account.name, addr = ?session.peer_addr(), "account registered");
        self.registrations.record_failure(&address, Instant::now());
        if let Err(e) = self.log_in(session, &account, false) {
            self.logged_in.lock().unwrap().remove(&session.id());
            return reject(
                e.code,
                format!(
                    "your account was created but you could not be logged in: {}; log in again",
                    e.message
                ),
            );
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
        Ok(Verdict::Done)
    }

    async fn login(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        creds: Credentials,
    ) -> HandlerResult {
        if let Some(e) = self.check_transport(session) {
            return Ok(Verdict::Reject(e));
        }
        if let Some(e) = Self::already_logged_in(session) {
            return Ok(Verdict::Reject(e));
        }
        if creds.password.len() > password::MAX_PASSWORD_BYTES {
            return reject(codes::INVALID_PASSWORD, PasswordError::TooLong.to_string());
        }
        let key = fold(&creds.user);
        let subjects = Self::subjects(session, &key);
        if let Some(lockout) = self.throttle.check(&subjects, Instant::now()) {
            tracing::info!(account = %key, addr = ?session.peer_addr(), "login refused: throttled");
            return reject(codes::THROTTLED, lockout.message());
        }
        let stored = if creds.user.len() <= chat_api::names::MAX_NICK_LEN {
            self.accounts
                .find_for_login(&creds.user)
                .await
                .map_err(storage_failure)?
        } else {
            None
        };
        let phc = stored.as_ref().map(|s| s.password_hash.clone());
        let (passwords, decoy, password) =
            (self.passwords.clone(), self.decoy.clone(), creds.password);
        // Verified, and a new hash when the stored one has an outdated cost.
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
        let (verified, renewed) = match verified {
            Ok(v) => v,
            Err(PoolError::Busy) => return busy(),
            Err(PoolError::Failed) => {
                return Err(HandlerError::msg("password verification task failed"))
            }
        };
        let stored = match stored {
            Some(stored) if verified => stored,
            _ => {
                self.throttle.record_failure(&subjects, Instant::now());
                tracing::info!(account = %key, addr = ?session.peer_addr(), "failed login");
                return reject(codes::AUTH_FAILED, "unknown account or wrong password");
            }
        };
        if stored.account.disabled {
            return reject(
                codes::ACCOUNT_DISABLED,
                "this account has been disabled by an operator",
            );
        }
        self.throttle.record_success(&Subject::Account(key.clone()));
        if let Err(e) = self.log_in(session, &stored.account, true) {
            return Ok(Verdict::Reject(e));
        }
        // An operator may have disabled or deleted the account while the
        // password was being verified; the watcher could not end a session
        // that was not logged in yet, so look again now that it is.
        match self.accounts.get(&stored.account.name).await {
            Ok(Some(now)) if !now.disabled => {}
            gone_or_disabled => {
                session.clear_identity();
                self.logged_in.lock().unwrap().remove(&session.id());
                if let Err(e) = gone_or_disabled {
                    return Err(e.into());
                }
                return reject(
                    codes::ACCOUNT_DISABLED,
                    "this account was disabled or deleted by an operator while you logged in",
                );
            }
        }
        if let Some(hash) = renewed {
            let renewal = self
                .accounts
                .renew_hash(stored.account.id, &stored.password_hash, &hash)
                .await;
            match renewal {
                Ok(true) => {
                    tracing::info!(account = %stored.account.name, "password hash renewed at the configured cost")
                }
                Ok(false) => {
                    tracing::info!(account = %stored.account.name, "password changed during the login; hash not renewed")
                }
                Err(e) => {
                    tracing::warn!(account = %stored.account.name, error = %e, "cannot renew the password hash")
                }
            }
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
        Ok(Verdict::Done)
    }

    /// A resume token for a session that just logged in. Logging in works
    /// without one (the client then cannot resume): a failure is logged.
    async fn issue_token(&self, session: &dyn Session, account: &str) -> Option<tokens::Issued> {
        match self.tokens.issue(&fold(account)).await {
            Ok(issued) => {
                self.session_tokens
                    .lock()
                    .unwrap()
                    .insert(session.id(), issued.hash.clone());
                Some(issued)
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "cannot issue a resume token");
                None
            }
        }
    }

    /// `resume`: logs in with a token instead of the password.
    async fn resume(
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

    async fn passwd(
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
            Err(PoolError::Busy) => return busy(),
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

    async fn logout(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        everywhere: bool,
    ) -> HandlerResult {
        let Some(account) = session.account() else {
            return reject(codes::AUTH_REQUIRED, "you are not logged in");
        };
        let token = self.session_tokens.lock().unwrap().remove(&session.id());
        if everywhere {
            self.tokens
                .revoke_all(&fold(&account))
                .await
                .map_err(HandlerError::from)?;
        } else if let Some(token) = token {
            self.tokens
                .revoke(&token)
                .await
                .map_err(HandlerError::from)?;
        }
        session.clear_identity();
        self.logged_in.lock().unwrap().remove(&session.id());
        tracing::info!(account = %account, "logged out");
        session.reply_ok(id);
        Ok(Verdict::Done)
    }

    fn whoami(&self, session: &dyn Session, id: Option<RequestId>) -> HandlerResult {
        let account = session.account();
        session.send_frame(&WhoAmI {
            id,
            account: account.clone(),
            admin: account.is_some() && session.is_admin(),
        });
        Ok(Verdict::Done)
    }

    /// Acts on a change made to the accounts, possibly by another process.
    fn apply(&self, event: &accounts::AccountEvent) {
        use accounts::EventKind;
        let reason = match event.kind {
            EventKind::Disabled => "your account was disabled by an operator",
            EventKind::Deleted => "your account was deleted by an operator",
            EventKind::Created => {
                // A guest holding a name that has just been registered
                // must give it up.
                if let Some(holder) = self.host.session_of(&event.name_key) {
                    let is_account = self.logged_in.lock().unwrap().contains_key(&holder);
                    if !is_account {
                        self.host.disconnect(
                            holder,
                            ErrorCode::KICKED,
                            "your nickname has been registered as an account; reconnect and choose another",
                        );
                    }
                }
                return;
            }
            EventKind::Enabled | EventKind::PasswordChanged => return,
        };
        let sessions: Vec<SessionId> = self
            .logged_in
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, key)| **key == event.name_key)
            .map(|(id, _)| *id)
            .collect();
        for id in sessions {
            tracing::info!(account = %event.name_key, session = id, "{reason}; ending the session");
            self.host.disconnect(id, ErrorCode::KICKED, reason);
        }
    }
}

/// What a failed login for the folded name `key` from `addr` counts against:
/// the account and the address. A name longer than any account name can be
/// is no account: counting it would let a client fill the throttle's table
/// with frame-sized keys (100,000 entries of up to 64 KiB each), so only the
/// address counts.
fn login_subjects(addr: Option<std::net::SocketAddr>, key: &str) -> Vec<Subject> {
    let mut subjects = Vec::with_capacity(2);
    if key.len() <= chat_api::names::MAX_NICK_LEN {
        subjects.push(Subject::Account(key.to_string()));
    }
    if let Some(addr) = addr {
        subjects.push(Subject::address(addr.ip()));
    }
    subjects
}

/// How often the running server deletes account events older than
/// [`EVENT_RETENTION_MS`].
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// `stopping`: failures once the plugin is shutting down (its database
/// may be closing under it, e.g. after `chatd check-config` or a reload
/// built a throwaway instance) are not worth a warning.
async fn prune(accounts: &Accounts, stopping: &watch::Receiver<bool>) {
    let quiet = || *stopping.borrow();
    match accounts.prune_events(EVENT_RETENTION_MS).await {
        Ok(n) if n > 0 => tracing::debug!(pruned = n, "old account events deleted"),
        Ok(_) => {}
        Err(e) if quiet() => tracing::debug!(error = %e, "account events not pruned: stopping"),
        Err(e) => tracing::warn!(error = %e, "cannot prune old account events"),
    }
    if quiet() {
        return;
    }
    let tokens = tokens::Tokens::new(accounts.database().clone(), 0);
    match tokens.prune().await {
        Ok(n) if n > 0 => tracing::debug!(pruned = n, "expired resume tokens deleted"),
        Ok(_) => {}
        Err(e) if quiet() => tracing::debug!(error = %e, "resume tokens not pruned: stopping"),
        Err(e) => tracing::warn!(error = %e, "cannot prune expired resume tokens"),
    }
}

/// Polls `account_events` for changes (by the CLI or this server) and ends
/// the sessions of disabled and deleted accounts. Holds the plugin only
/// weakly, and stops at shutdown.
async fn watch_accounts(inner: Weak<Inner>, mut stop: watch::Receiver<bool>) {
    let (accounts, host, interval) = match inner.upgrade() {
        Some(i) => (
            i.accounts.clone(),
            i.host.clone(),
            Duration::from_millis(i.config.watch_interval_ms),
        ),
        None => return,
    };
    // A server stopped (or refused) right after start stops this before
    // its first queries, instead of running them against a closed pool.
    let stopping = stop.clone();
    let first = async {
        prune(&accounts, &stopping).await;
        accounts.last_event_seq().await
    };
    let mut seen = tokio::select! {
        first = first => match first {
            Ok(seq) => seq,
            Err(_) if *stop.borrow() => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read account events; accounts disabled with the CLI will keep their sessions until they reconnect");
                return;
            }
        },
        _ = stop.changed() => return,
    };
    let mut last_prune = std::time::Instant::now();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = host.sleep(interval) => {}
            _ = stop.changed() => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        // The event log only needs to outlive the poll interval; keep it
        // from growing for as long as the server runs.
        if last_prune.elapsed() >= PRUNE_EVERY {
            prune(&accounts, &stop).await;
            last_prune = std::time::Instant::now();
        }
        match accounts.events_after(seen, EVENTS_PER_POLL).await {
            Ok(events) => {
                failing = false;
                for event in &events {
                    seen = event.seq;
                    inner.apply(event);
                }
            }
            Err(e) => {
                // Log once per outage, not once per poll.
                if !failing {
                    tracing::warn!(error = %e, "cannot read account events; will retry");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_account_names_are_throttled_as_accounts() {
        let addr: std::net::SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let ip = Subject::address(addr.ip());
        assert_eq!(
            login_subjects(Some(addr), "bob"),
            [Subject::Account("bob".into()), ip.clone()]
        );
        let huge = "x".repeat(60_000);
        let subjects = login_subjects(Some(addr), &huge);
        assert!(
            subjects == [ip],
            "a {}-byte name is throttled as an account",
            huge.len()
        );
    }
}
