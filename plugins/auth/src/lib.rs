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
//! * Accounts live in the server's database (SQLite or PostgreSQL) ([`accounts`]), which the
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
//! The frames are documented in `docs/protocol.md` ("Accounts frames");
//! their types are `chat_api::accounts`. Each has its file under
//! `commands/` (`register.rs`, `login.rs`, ...); [`MessageHandler::on_frame`]
//! here sends them there and keeps everything else out until login.

pub mod accounts;
mod commands;
pub mod config;
pub mod hash_pool;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chat_api::accounts::AccountRequest;
use chat_api::names::fold;
use chat_api::{
    async_trait, ApiError, ClientFrame, ConfigError, ErrorCode, HandlerError, HandlerResult, Host,
    Identity, Inbound, MessageHandler, PluginContext, Request, Session, SessionId, Verdict,
};
use chatd_storage::Database;
use tokio::sync::watch;

pub use accounts::{Account, AccountError, Accounts};
pub use config::{AuthConfig, Registration};
pub use password::{check_new, PasswordError, Passwords};

use hash_pool::HashPool;
use throttle::{Subject, Throttle};

/// Error codes of the accounts frames, from the protocol crate.
pub use chat_api::accounts::codes;

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

/// Too many password hashes are waiting.
fn busy() -> ApiError {
    ApiError::new(
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
            database = %inner.accounts.database().name(),
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

    /// Acts on a change made to the accounts, possibly by another process.
    fn apply(&self, event: &accounts::AccountEvent) {
        use accounts::EventKind;
        let reason = match event.kind {
            EventKind::Disabled => "your account was disabled by an operator",
            EventKind::Deleted => "your account was deleted by an operator",
            EventKind::Created => {
                // A guest holding a name that has just been registered
                // must give it up. A session on another node is that
                // node's to judge (its instance sees the same event).
                let holder = self
                    .host
                    .session_of(&event.name_key)
                    .filter(|holder| !chat_api::is_remote_session(*holder));
                if let Some(holder) = holder {
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
