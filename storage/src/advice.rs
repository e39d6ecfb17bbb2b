//! Database errors as advice for the operator: what went wrong and what to
//! do, in words, each cause said once.

use sqlx::migrate::MigrateError;

use crate::Backend;

/// SQLite's primary result codes that call for specific advice.
const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_FULL: i32 = 13;
const SQLITE_BUSY: i32 = 5;

/// A database error as advice for the operator.
pub(crate) fn describe(backend: Backend, error: &sqlx::Error) -> String {
    match backend {
        Backend::Sqlite => describe_sqlite(error),
        Backend::Postgres => describe_postgres(error),
    }
}

fn describe_sqlite(error: &sqlx::Error) -> String {
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

/// SQLSTATE codes (PostgreSQL's error codes) that call for specific advice.
fn postgres_advice(code: &str) -> Option<&'static str> {
    Some(match code {
        "28P01" | "28000" => {
            "PostgreSQL refused the login; check the user name and password in database.url (and pg_hba.conf on the server)"
        }
        "3D000" => {
            "the database named in database.url does not exist; create it (e.g. `createdb -O USER chatd`), chatd creates its tables"
        }
        "42501" => {
            "the user in database.url lacks a privilege chatd needs; make it the database's owner or grant it CREATE and table rights"
        }
        "53300" => {
            "PostgreSQL has no connection slot left; raise its max_connections or lower database.max_connections of the chatd nodes"
        }
        "53100" => "the PostgreSQL server's disk is full; free some space",
        "57P01" | "57P02" | "57P03" => {
            "the PostgreSQL server is shutting down or starting up; try again once it runs"
        }
        _ => return None,
    })
}

fn describe_postgres(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match postgres_advice(&code) {
                Some(advice) => format!("{advice} (PostgreSQL: {})", db.message()),
                None => format!("{} (PostgreSQL error {code})", db.message()),
            }
        }
        sqlx::Error::Io(e) => format!(
            "cannot reach the PostgreSQL server ({e}); check that it runs and that database.url names its host and port"
        ),
        sqlx::Error::Tls(e) => format!(
            "the TLS handshake with the PostgreSQL server failed ({e}); check sslmode in database.url"
        ),
        sqlx::Error::Configuration(e) => format!(
            "database.url cannot be used ({e}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ),
        sqlx::Error::PoolTimedOut => {
            "no connection to the PostgreSQL server became free in time; the server is overloaded or unreachable, or database.max_connections is too small".to_string()
        }
        other => other.to_string(),
    }
}

pub(crate) fn migration(backend: Backend, error: &MigrateError) -> String {
    match error {
        MigrateError::Execute(e) => describe(backend, e),
        MigrateError::ExecuteMigration(e, version) => {
            format!("migration {version}: {}", describe(backend, e))
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
