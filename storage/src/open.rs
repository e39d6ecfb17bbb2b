//! Opening each backend: its connection options, its pool, and the checks
//! that turn a database chatd cannot use into a clear error at start.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

use crate::{advice, Backend, DatabaseOptions, StorageError};

type Opened = (AnyPool, AnyConnectOptions, Backend);

/// The SQLite file at `path`, created if missing, with the connection
/// settings chatd has always used (see the crate documentation).
pub(crate) async fn sqlite(
    path: &Path,
    options: &DatabaseOptions,
    name: &str,
) -> Result<Opened, StorageError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            dir: dir.to_path_buf(),
            error: source,
        })?;
    }
    let open_error = |reason: String| StorageError::Open {
        database: name.to_string(),
        reason,
    };
    // The Any driver takes a URL, which carries the file and `mode=rwc`
    // (create if missing) but no PRAGMAs: those are set on each new
    // connection (`set_pragmas`).
    let absolute = std::path::absolute(path).map_err(|e| open_error(e.to_string()))?;
    let url = SqliteConnectOptions::new()
        .filename(&absolute)
        .create_if_missing(true)
        .to_url_lossy();
    let connect = AnyConnectOptions::from_url(&url).map_err(|e| open_error(e.to_string()))?;
    let busy_ms = options.busy_timeout.as_millis();
    // One connection first: a pool would retry a file it cannot use until
    // its timeout and report only that.
    let checked = async {
        let mut first = AnyConnection::connect_with(&connect).await?;
        let checked = async {
            set_pragmas(&mut first, busy_ms).await?;
            // SQLite silently opens an unwritable file read-only; find out
            // now rather than at the first login.
            check_writable(&mut first).await
        }
        .await;
        let _ = first.close().await;
        checked
    };
    checked
        .await
        .map_err(|e| open_error(advice::describe(Backend::Sqlite, &e)))?;
    let pool = AnyPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                set_pragmas(conn, busy_ms).await?;
                // The connection's thread exists now.
                crate::threads::lower_sqlite_threads();
                Ok(())
            })
        })
        .connect_with(connect.clone())
        .await
        .map_err(|e| open_error(advice::describe(Backend::Sqlite, &e)))?;
    Ok((pool, connect, Backend::Sqlite))
}

/// The settings of every SQLite connection, in the order sqlx's SQLite
/// options would apply them.
async fn set_pragmas(conn: &mut AnyConnection, busy_ms: u128) -> Result<(), sqlx::Error> {
    for pragma in [
        format!("PRAGMA busy_timeout = {busy_ms}"),
        "PRAGMA journal_mode = WAL".to_string(),
        "PRAGMA foreign_keys = ON".to_string(),
        // NORMAL is durable across application crashes in WAL mode; only a
        // power loss can lose the last transactions.
        "PRAGMA synchronous = NORMAL".to_string(),
    ] {
        // Integers and constants only: nothing to inject.
        conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
    }
    Ok(())
}

/// Writes the database header (rewriting `user_version` unchanged), which
/// fails with SQLITE_READONLY if the file cannot be written.
async fn check_writable(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    // An integer we just read: nothing to inject.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {version}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The PostgreSQL database at `url`. One connection is made first, within
/// `connect_timeout`, so that a wrong password or an unreachable server is
/// reported as such (a pool would retry until its own timeout and report
/// only that).
pub(crate) async fn postgres(
    url: &str,
    options: &DatabaseOptions,
    name: &str,
) -> Result<Opened, StorageError> {
    let open_error = |reason: String| StorageError::Open {
        database: name.to_string(),
        reason,
    };
    let connect = AnyConnectOptions::from_str(url).map_err(|e| {
        open_error(format!(
            "database.url is not a valid URL ({e}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ))
    })?;
    let first = connect_once(&connect, options.connect_timeout)
        .await
        .map_err(open_error)?;
    let _ = first.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect.clone())
        .await
        .map_err(|e| open_error(advice::describe(Backend::Postgres, &e)))?;
    Ok((pool, connect, Backend::Postgres))
}

/// One connection within `timeout`, or the reason there is none.
async fn connect_once(
    connect: &AnyConnectOptions,
    timeout: Duration,
) -> Result<AnyConnection, String> {
    match tokio::time::timeout(timeout, AnyConnection::connect_with(connect)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(advice::describe(Backend::Postgres, &e)),
        Err(_) => Err(format!(
            "the PostgreSQL server did not answer within {} s; check that it runs and that database.url names its host and port",
            timeout.as_secs()
        )),
    }
}

/// A fresh connection to the file at its configured path (never creating
/// it), reading the schema from the file itself (a bare `SELECT 1` would
/// not touch it).
pub(crate) async fn probe_sqlite(path: &Path, name: &str) -> Result<(), StorageError> {
    let failed = |e: sqlx::Error| StorageError::Query {
        database: name.to_string(),
        reason: advice::describe(Backend::Sqlite, &e),
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_millis(500));
    let mut connection = options.connect().await.map_err(|e| StorageError::Open {
        database: name.to_string(),
        reason: advice::describe(Backend::Sqlite, &e),
    })?;
    let read = sqlx::query("SELECT count(*) FROM sqlite_master")
        .execute(&mut connection)
        .await
        .map_err(failed);
    let _ = connection.close().await;
    read.map(|_| ())
}

/// A fresh connection to the PostgreSQL server (the caller bounds the time).
pub(crate) async fn probe_postgres(
    connect: &AnyConnectOptions,
    name: &str,
) -> Result<(), StorageError> {
    let mut connection =
        AnyConnection::connect_with(connect)
            .await
            .map_err(|e| StorageError::Open {
                database: name.to_string(),
                reason: advice::describe(Backend::Postgres, &e),
            })?;
    let read = connection.ping().await.map_err(|e| StorageError::Query {
        database: name.to_string(),
        reason: advice::describe(Backend::Postgres, &e),
    });
    let _ = connection.close().await;
    read
}
