//! # chatd-storage: the one database of a chatd server
//!
//! Every plugin that stores data shares one SQLite file (bundled SQLite, no
//! system library needed). This crate opens it the same way for the server
//! and for the admin CLI (`chatd user ...`), which may run at the same time:
//!
//! * WAL journal, so readers never wait for the writer and a second process
//!   can work on the file safely; a busy timeout instead of instant
//!   "database is locked" errors when both write at once.
//! * The schema lives in versioned SQL files in the workspace's top-level
//!   `migrations/` folder, embedded at compile time and applied on open. A
//!   plugin that needs tables adds a file there (named
//!   `<UTC timestamp>_<what>.sql`, so that branches never pick the same
//!   version); nothing needs a database to build.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chatd_storage::StorageError> {
//! use chatd_storage::{Database, DatabaseOptions};
//! let db = Database::open(&DatabaseOptions::new("data/chatd.db")).await?;
//! let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
//!     .fetch_one(db.pool())
//!     .await
//!     .map_err(|e| db.query_error(e))?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use sqlx;

/// The schema: every file of `migrations/`, in version order.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How to open the database.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// The SQLite file; created (with its directory) if missing.
    pub path: PathBuf,
    /// Connections in the pool. SQLite has one writer at a time; a few
    /// connections let reads proceed beside it.
    pub max_connections: u32,
    /// How long a statement waits for another connection or process that
    /// holds the write lock before failing with "database is locked".
    pub busy_timeout: Duration,
}

impl DatabaseOptions {
    /// Defaults for a file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> DatabaseOptions {
        DatabaseOptions {
            path: path.into(),
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// An open database: a connection pool on one SQLite file whose schema is
/// up to date. Cheap to clone; clones share the pool.
#[derive(Clone, Debug)]
pub struct Database {
    pool: SqlitePool,
    /// For error messages: which file failed.
    path: Arc<PathBuf>,
}

/// What went wrong with the database; every message names the file and
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the directory {dir} for the database: {error}")]
    CreateDir { dir: PathBuf, error: std::io::Error },
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("cannot bring the database {path} up to date (migration failed): {reason}; chatd does not run on a schema it does not understand: restore a backup, or use the chatd version that last wrote this file")]
    Migrate { path: PathBuf, reason: String },
    #[error("database {path}: {reason}")]
    Query { path: PathBuf, reason: String },
}

impl Database {
    /// Opens (creating if needed) the database file and applies every
    /// migration it has not seen yet.
    pub async fn open(options: &DatabaseOptions) -> Result<Database, StorageError> {
        let path = options.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                dir: dir.to_path_buf(),
                error: source,
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only
            // a power loss can lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| StorageError::Open {
                path: path.clone(),
                reason: describe(&e),
            })?;
        // SQLite silently opens an unwritable file read-only; find out now
        // rather than at the first login.
        if let Err(e) = check_writable(&pool).await {
            pool.close().await;
            return Err(StorageError::Open {
                path,
                reason: describe(&e),
            });
        }
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(StorageError::Migrate {
                path,
                reason: describe_migration(&e),
            });
        }
        tracing::debug!(path = %path.display(), "database open");
        Ok(Database {
            pool,
            path: Arc::new(path),
        })
    }

    /// The connection pool, for queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a failed query into an error that names the file and the cause.
    pub fn query_error(&self, error: sqlx::Error) -> StorageError {
        StorageError::Query {
            path: self.path.to_path_buf(),
            reason: describe(&error),
        }
    }

    /// Whether the database answers: a query on the pool, and a fresh
    /// connection to the file at its configured path (never creating it).
    /// The pool's connections keep a file open even after it was deleted,
    /// moved or its volume unmounted; only a new connection notices, as a
    /// restarted server would. The caller bounds the time.
    pub async fn probe(&self) -> Result<(), StorageError> {
        use sqlx::{ConnectOptions as _, Connection as _};
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        let options = SqliteConnectOptions::new()
            .filename(self.path.as_path())
            .create_if_missing(false)
            .busy_timeout(Duration::from_millis(500));
        let mut connection = options.connect().await.map_err(|e| StorageError::Open {
            path: self.path.to_path_buf(),
            reason: describe(&e),
        })?;
        // Reads the schema from the file itself (a bare `SELECT 1` would not
        // touch it).
        let read = sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&mut connection)
            .await
            .map_err(|e| self.query_error(e));
        let _ = connection.close().await;
        read.map(|_| ())
    }

    /// Closes every connection (waits for queries in progress).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Writes the database header (rewriting `user_version` unchanged), which
/// fails with SQLITE_READONLY if the file cannot be written.
async fn check_writable(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await?;
    // An integer we just read: nothing to inject.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {version}"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a failed statement broke a UNIQUE constraint (e.g. a name that
/// is already registered).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Milliseconds since the Unix epoch, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// SQLite's primary result codes that call for specific advice.
const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_FULL: i32 = 13;
const SQLITE_BUSY: i32 = 5;

/// A database error as advice for the operator.
fn describe(error: &sqlx::Error) -> String {
    let sqlx::Error::Database(db) = error else {
        return error.to_string();
    };
    let primary = db
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff);
    let advice = match primary {
        Some(SQLITE_NOTADB) | Some(SQLITE_CORRUPT) => {
            "the file is not a usable SQLite database (corrupt, or some other kind of file); move it aside or restore it from a backup"
        }
        Some(SQLITE_READONLY) => {
            "the database is read-only; chatd needs write access to the file and to its directory (for the -wal and -shm files beside it)"
        }
        Some(SQLITE_CANTOPEN) => {
            "the file cannot be opened; check that its directory exists and is writable and that the path is not a directory"
        }
        Some(SQLITE_FULL) => "the disk is full; free some space",
        Some(SQLITE_BUSY) => {
            "another process holds the database lock for too long; try again, or look for a stuck chatd process"
        }
        _ => return db.message().to_string(),
    };
    format!("{advice} (SQLite: {})", db.message())
}

fn describe_migration(error: &MigrateError) -> String {
    match error {
        MigrateError::Execute(e) => describe(e),
        MigrateError::ExecuteMigration(e, version) => {
            format!("migration {version}: {}", describe(e))
        }
        MigrateError::VersionMissing(version) => format!(
            "the database has migration {version}, which this chatd does not know; it was written by a newer chatd"
        ),
        MigrateError::VersionMismatch(version) => format!(
            "migration {version} was changed after it had been applied to this database"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn tables(db: &Database) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let options = DatabaseOptions::new(dir.path().join("sub/chatd.db"));
        let db = Database::open(&options).await.unwrap();
        let first = tables(&db).await;
        for table in ["_sqlx_migrations", "account_events", "accounts"] {
            assert!(
                first.iter().any(|t| t == table),
                "{table} missing: {first:?}"
            );
        }
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        sqlx::query("INSERT INTO account_events (name_key, event, at) VALUES ('a', 'created', 1)")
            .execute(db.pool())
            .await
            .unwrap();
        db.close().await;

        // Opening again applies nothing twice and keeps the data.
        let db = Database::open(&options).await.unwrap();
        assert_eq!(tables(&db).await, first);
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(applied, MIGRATOR.iter().count() as i64);
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM account_events")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(events, 1);
        db.close().await;
    }

    #[tokio::test]
    async fn a_corrupt_file_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chatd.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = Database::open(&DatabaseOptions::new(&path))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("chatd.db"), "{text}");
        assert!(text.contains("not a usable SQLite database"), "{text}");
        // The file was not touched.
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);
    }

    #[tokio::test]
    async fn an_unknown_newer_migration_stops_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let options = DatabaseOptions::new(dir.path().join("chatd.db"));
        let db = Database::open(&options).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99991231000000, 'future', 1, x'00', 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
        let text = Database::open(&options).await.unwrap_err().to_string();
        assert!(
            text.contains("migration failed") && text.contains("newer chatd"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_path_through_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let err = Database::open(&DatabaseOptions::new(file.join("chatd.db")))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains("plain"), "{err}");
    }
}

#[cfg(all(test, unix))]
mod read_only_tests {
    use super::*;

    /// Makes `path` unwritable even for root (immutable attribute), or with
    /// permissions when not root. Returns false if neither is possible here.
    fn make_read_only(path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        if std::fs::OpenOptions::new().write(true).open(path).is_err() {
            return true;
        }
        std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn undo_read_only(path: &Path) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(path)
            .status();
    }

    #[tokio::test]
    async fn a_read_only_database_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chatd.db");
        let options = DatabaseOptions::new(&path);
        Database::open(&options).await.unwrap().close().await;
        assert!(
            make_read_only(&path),
            "cannot make a file read-only here (root without chattr)"
        );
        let result = Database::open(&options).await;
        undo_read_only(&path);
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("chatd.db") && text.contains("read-only"),
            "{text}"
        );
    }
}
