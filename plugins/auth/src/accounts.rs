//! The `accounts` table: what the plugin and the admin CLI (`chatd user`)
//! read and write. Every change that a running server must act on (disable,
//! delete, ...) also appends to `account_events` in the same transaction.
//!
//! Queries are checked at run time (no database needed to build); all take
//! their values as bound parameters, never spliced into SQL.

use chat_api::names::{fold, validate_nick, NameError};
use chatd_storage::{is_unique_violation, now_ms, Backend, Database, StorageError};
use sqlx::Row;

/// An account as listed (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    /// The name as registered; the login name and the nickname.
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// An account with its stored password hash, for verifying a login.
#[derive(Clone)]
pub struct StoredAccount {
    pub account: Account,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A change recorded for running servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Disabled,
    Enabled,
    Deleted,
    PasswordChanged,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Disabled => "disabled",
            EventKind::Enabled => "enabled",
            EventKind::Deleted => "deleted",
            EventKind::PasswordChanged => "password_changed",
        }
    }

    fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "created" => EventKind::Created,
            "disabled" => EventKind::Disabled,
            "enabled" => EventKind::Enabled,
            "deleted" => EventKind::Deleted,
            "password_changed" => EventKind::PasswordChanged,
            _ => return None,
        })
    }
}

/// One row of `account_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub seq: i64,
    /// The folded account name.
    pub name_key: String,
    pub kind: EventKind,
}

/// What can go wrong with an account operation.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    InvalidName(#[from] NameError),
    #[error("an account named '{0}' already exists")]
    Exists(String),
    #[error("there is no account named '{0}'")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The accounts in a database.
#[derive(Clone, Debug)]
pub struct Accounts {
    db: Database,
}

/// The columns [`account_from_row`] reads (a macro, so that queries stay
/// `&'static str` literals as sqlx requires).
macro_rules! account_columns {
    () => {
        "id, name, admin, disabled, created_at, last_login_at"
    };
}

fn account_from_row(row: &sqlx::any::AnyRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        admin: row.try_get::<i64, _>("admin")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

impl Accounts {
    pub fn new(db: Database) -> Accounts {
        Accounts { db }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn err(&self, e: sqlx::Error) -> AccountError {
        AccountError::Storage(self.db.query_error(e))
    }

    /// Creates an account. `password_hash` is a PHC string (see
    /// [`Passwords::hash`](crate::password::Passwords::hash)).
    pub async fn create(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
    ) -> Result<Account, AccountError> {
        validate_nick(name)?;
        let key = fold(name);
        let now = now_ms();
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        let inserted: Result<i64, _> = sqlx::query_scalar(
            "INSERT INTO accounts (name, name_key, password_hash, admin, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(name)
        .bind(&key)
        .bind(password_hash)
        .bind(i64::from(admin))
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(AccountError::Exists(name.to_string()))
            }
            Err(e) => return Err(self.err(e)),
        };
        self.log(&mut tx, &key, EventKind::Created, now)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Account {
            id,
            name: name.to_string(),
            admin,
            disabled: false,
            created_at: now,
            last_login_at: None,
        })
    }

    /// Appends an event in the caller's transaction.
    async fn log(
        &self,
        tx: &mut sqlx::AnyConnection,
        key: &str,
        kind: EventKind,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        if self.db.backend() == Backend::Postgres {
            // Watchers read events by increasing `seq`. PostgreSQL hands out
            // sequence numbers at insert time, so concurrent transactions
            // could commit 6 before 5 and a watcher that saw 6 would skip 5;
            // one event writer at a time (until commit) keeps both orders
            // the same. (SQLite has a single writer anyway.)
            sqlx::query("LOCK TABLE account_events IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO account_events (name_key, event, at) VALUES ($1, $2, $3)")
            .bind(key)
            .bind(kind.as_str())
            .bind(at)
            .execute(tx)
            .await
            .map(|_| ())
    }

    /// The account and its password hash, for a login. Names that are not
    /// valid nicknames cannot exist and are looked up all the same (they find
    /// nothing), so that callers need no special case.
    pub async fn find_for_login(&self, name: &str) -> Result<Option<StoredAccount>, AccountError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", password_hash FROM accounts WHERE name_key = $1"
        ))
        .bind(fold(name))
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        row.map(|row| {
            Ok(StoredAccount {
                account: account_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
        .map_err(|e| self.err(e))
    }

    /// One account.
    pub async fn get(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.find_for_login(name).await?.map(|s| s.account))
    }

    /// Whether an account holds this name.
    pub async fn exists(&self, name: &str) -> Result<bool, AccountError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name_key = $1")
            .bind(fold(name))
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }

    /// Every account, by name.
    pub async fn list(&self) -> Result<Vec<Account>, AccountError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts ORDER BY name_key"
        ))
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(account_from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Runs one UPDATE or DELETE on an account and logs `kind`. In `sql`,
    /// `?1` is the time, `?2` the folded name and `?3` the optional value.
    async fn change(
        &self,
        name: &str,
        sql: &'static str,
        value: Option<&str>,
        kind: EventKind,
    ) -> Result<(), AccountError> {
        let key = fold(name);
        let now = now_ms();
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        let mut query = sqlx::query(sql).bind(now).bind(&key);
        if let Some(value) = value {
            query = query.bind(value);
        }
        let done = query.execute(&mut *tx).await.map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(AccountError::NotFound(name.to_string()));
        }
        self.log(&mut tx, &key, kind, now)
            .await
            .map_err(|e| self.err(e))?;
        // A new password or a disabled account ends every "stay logged in":
        // resume tokens are revoked with the change (deletion cascades).
        if matches!(kind, EventKind::PasswordChanged | EventKind::Disabled) {
            sqlx::query("DELETE FROM resume_tokens WHERE account_key = $1")
                .bind(&key)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    pub async fn set_password_hash(&self, name: &str, hash: &str) -> Result<(), AccountError> {
        self.change(
            name,
            "UPDATE accounts SET password_hash = $3, updated_at = $1 WHERE name_key = $2",
            Some(hash),
            EventKind::PasswordChanged,
        )
        .await
    }

    /// Disables or re-enables an account. A disabled account cannot log in
    /// and a running server ends its sessions.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), AccountError> {
        let (sql, kind) = if disabled {
            (
                "UPDATE accounts SET disabled = 1, updated_at = $1 WHERE name_key = $2",
                EventKind::Disabled,
            )
        } else {
            (
                "UPDATE accounts SET disabled = 0, updated_at = $1 WHERE name_key = $2",
                EventKind::Enabled,
            )
        };
        self.change(name, sql, None, kind).await
    }

    /// Deletes an account; its name becomes free.
    pub async fn delete(&self, name: &str) -> Result<(), AccountError> {
        self.change(
            name,
            "DELETE FROM accounts WHERE name_key = $2 AND $1 IS NOT NULL",
            None,
            EventKind::Deleted,
        )
        .await
    }

    /// Replaces a password hash by one of the same password at the current
    /// cost (no event: nothing changes for the user), but only while `old`
    /// is still the stored hash: a login that verified the old password must
    /// not undo a password change (by the user, or an operator's reset) made
    /// while it ran. Returns whether the hash was replaced.
    pub async fn renew_hash(&self, id: i64, old: &str, new: &str) -> Result<bool, AccountError> {
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))
            .map(|done| done.rows_affected() == 1)
    }

    /// Notes a successful login.
    pub async fn record_login(&self, id: i64) -> Result<(), AccountError> {
        sqlx::query("UPDATE accounts SET last_login_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))
            .map(|_| ())
    }

    /// The newest event's sequence number (0 if none).
    pub async fn last_event_seq(&self) -> Result<i64, AccountError> {
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM account_events")
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Events after `seq`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let rows = sqlx::query(
            "SELECT seq, name_key, event FROM account_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let event: String = row.try_get("event").map_err(|e| self.err(e))?;
            let Some(kind) = EventKind::parse(&event) else {
                continue;
            };
            events.push(AccountEvent {
                seq: row.try_get("seq").map_err(|e| self.err(e))?,
                name_key: row.try_get("name_key").map_err(|e| self.err(e))?,
                kind,
            });
        }
        Ok(events)
    }

    /// Deletes events older than `age_ms` (they have been acted upon).
    pub async fn prune_events(&self, age_ms: i64) -> Result<u64, AccountError> {
        sqlx::query("DELETE FROM account_events WHERE at < $1")
            .bind(now_ms() - age_ms)
            .execute(self.db.pool())
            .await
            .map(|d| d.rows_affected())
            .map_err(|e| self.err(e))
    }
}
