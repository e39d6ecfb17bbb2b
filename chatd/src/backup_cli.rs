//! `chatd backup` and `chatd restore`: a consistent copy of the database
//! taken while the server runs (SQLite's `VACUUM INTO`, a snapshot in one
//! read transaction), and putting such a copy back while it is stopped.
//! The file spool (`data_dir/files`) is plain files: docs/operations.md
//! says how to copy it. A PostgreSQL database (`database.url`) is backed up
//! with PostgreSQL's own tools (`pg_dump`, `pg_restore`); both commands
//! refuse it and say so.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chatd::config::Config;
use chatd::data_dir::DataDirError;
use chatd_storage::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use chatd_storage::sqlx::{self, Connection};

/// Suffix of the copy being written; renamed into place once complete, so
/// that the named file is never half a database.
const PARTIAL: &str = "partial";
/// Suffix the replaced database (and its WAL files) are kept under.
const BEFORE_RESTORE: &str = "before-restore";
/// How far message ids jump after a restore when no replaced database says
/// how far the lost one got: past anything a server hands out in years.
const UNKNOWN_IDS_JUMP: i64 = 1 << 40;

/// The SQLite file of `config`, or an error that points a PostgreSQL
/// deployment at PostgreSQL's tools.
fn sqlite_file(config: &Config, command: &str) -> anyhow::Result<PathBuf> {
    let options = config.database_options();
    match options.sqlite_path() {
        Some(path) => Ok(path.to_path_buf()),
        None => bail!(
            "chatd {command} copies the SQLite file, but {} sets database.url: the data is in PostgreSQL ({}); use `pg_dump --format=custom` to back it up and `pg_restore` to restore it (docs/operations.md)",
            config.source_name,
            options.display_name()
        ),
    }
}

/// Copies the database of `config` to `out`.
pub fn backup(config: &Config, out: &Path, force: bool) -> anyhow::Result<()> {
    let db = sqlite_file(config, "backup")?;
    if !db.exists() {
        bail!(
            "no database at {}: nothing to back up (is server.data_dir right in {}?)",
            db.display(),
            config.source_name
        );
    }
    if out.exists() && !force {
        bail!(
            "{} already exists; choose another name, or pass --force to replace it",
            out.display()
        );
    }
    let partial = with_suffix(out, PARTIAL);
    remove_if_present(&partial)?;
    runtime()?.block_on(async {
        let mut conn = open_read_only(&db, config.database.busy_timeout_ms).await?;
        let target = partial
            .to_str()
            .with_context(|| format!("{} is not valid UTF-8", partial.display()))?;
        let copied = sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot copy {} to {}", db.display(), partial.display()));
        conn.close().await.ok();
        copied.map(|_| ())
    })?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({size} bytes)",
        db.display(),
        out.display()
    );
    Ok(())
}

/// Puts the backup `from` in place of the database of `config`; refused
/// while a server holds the data directory.
pub fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    let db = sqlite_file(config, "restore")?;
    let dir = &config.server.data_dir;
    let _lock = match chatd::data_dir::lock(dir) {
        Ok(lock) => lock,
        Err(DataDirError::InUse { holder, .. }) => bail!(
            "chatd ({holder}) is running on {}; stop it first (e.g. systemctl stop chatd), then restore",
            dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    runtime()?.block_on(check_backup(from, config.database.busy_timeout_ms))?;

    // Read before any file is listed to move: opening it may leave WAL
    // files, which must move with it.
    let busy_ms = config.database.busy_timeout_ms;
    let replaced = match db.exists() {
        true => runtime()?.block_on(reserved_ids(&db, busy_ms)),
        false => None,
    };
    let mut kept = Vec::new();
    for file in [
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
    ] {
        if !file.exists() {
            continue;
        }
        let aside = with_suffix(&file, BEFORE_RESTORE);
        if aside.exists() {
            bail!(
                "{} exists from an earlier restore; move it away first (it is the database as it was before that restore)",
                aside.display()
            );
        }
        kept.push((file, aside));
    }
    // Copied beside the database first: the final rename is atomic.
    let partial = with_suffix(&db, PARTIAL);
    std::fs::copy(from, &partial)
        .with_context(|| format!("cannot copy {} to {}", from.display(), partial.display()))?;
    let ids_from = runtime()?.block_on(continue_ids(&partial, replaced, busy_ms))?;
    // The WAL files move too: a WAL left beside the restored file would be
    // replayed into it.
    for (file, aside) in &kept {
        std::fs::rename(file, aside)
            .with_context(|| format!("cannot move {} to {}", file.display(), aside.display()))?;
    }
    std::fs::rename(&partial, &db)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), db.display()))?;
    println!("restored {} from {}", db.display(), from.display());
    println!("message ids continue after {ids_from}, past any the replaced database handed out");
    if let Some((_, aside)) = kept.first() {
        println!("the previous database is kept as {}", aside.display());
    }
    Ok(())
}

/// How far the database at `path` has reserved message ids; `None` if it
/// cannot say (unreadable, or older than the message log).
async fn reserved_ids(path: &Path, busy_timeout_ms: u64) -> Option<i64> {
    // Read-write: a stopped server's WAL holds its latest reservations.
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(std::time::Duration::from_millis(busy_timeout_ms));
    let mut conn = SqliteConnection::connect_with(&options).await.ok()?;
    let reserved = sqlx::query_scalar("SELECT reserved_through FROM message_ids WHERE id = 1")
        .fetch_optional(&mut conn)
        .await;
    conn.close().await.ok();
    reserved.ok().flatten()
}

/// Message ids handed out after the backup was taken must never be handed
/// out again (clients and read markers know them): the restored copy
/// reserves past the replaced database's reservation, or, with none to
/// read, jumps [`UNKNOWN_IDS_JUMP`] ahead. Returns the new reservation.
async fn continue_ids(
    copy: &Path,
    replaced: Option<i64>,
    busy_timeout_ms: u64,
) -> anyhow::Result<i64> {
    let options = SqliteConnectOptions::new()
        .filename(copy)
        .journal_mode(chatd_storage::sqlx::sqlite::SqliteJournalMode::Delete)
        .busy_timeout(std::time::Duration::from_millis(busy_timeout_ms));
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", copy.display()))?;
    let result = async {
        let restored: i64 =
            sqlx::query_scalar("SELECT reserved_through FROM message_ids WHERE id = 1")
                .fetch_one(&mut conn)
                .await?;
        let through = match replaced {
            Some(replaced) => restored.max(replaced),
            None => restored.saturating_add(UNKNOWN_IDS_JUMP),
        };
        sqlx::query("UPDATE message_ids SET reserved_through = ? WHERE id = 1")
            .bind(through)
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(through)
    }
    .await;
    conn.close().await.ok();
    result.with_context(|| format!("cannot move the message ids of {} forward", copy.display()))
}

/// A backup must be a sound SQLite file with chatd's schema, and no newer
/// than this chatd (its migrations all known here).
async fn check_backup(from: &Path, busy_timeout_ms: u64) -> anyhow::Result<()> {
    if !from.is_file() {
        bail!("{}: no such file", from.display());
    }
    let not_chatd =
        |why: String| anyhow::anyhow!("{} is not a chatd database backup: {why}", from.display());
    let mut conn = open_read_only(from, busy_timeout_ms)
        .await
        .map_err(|e| not_chatd(format!("{e:#}")))?;
    let checked: Result<(Vec<String>, Vec<i64>), sqlx::Error> = async {
        let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await?;
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&mut conn)
                .await?;
        Ok((integrity, versions))
    }
    .await;
    conn.close().await.ok();
    let (integrity, versions) = checked.map_err(|e| not_chatd(e.to_string()))?;
    if integrity != ["ok"] {
        bail!(
            "{} is damaged (integrity check: {}); use another backup",
            from.display(),
            integrity.join("; ")
        );
    }
    let known: Vec<i64> = chatd_storage::SQLITE_MIGRATOR
        .iter()
        .map(|m| m.version)
        .collect();
    if versions.is_empty() {
        return Err(not_chatd("it has no applied migrations".to_string()));
    }
    if let Some(newer) = versions.iter().find(|v| !known.contains(v)) {
        bail!(
            "{} was written by a newer chatd (migration {newer} is unknown to this one); restore it with that version",
            from.display()
        );
    }
    Ok(())
}

async fn open_read_only(path: &Path, busy_timeout_ms: u64) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_millis(busy_timeout_ms));
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `chatd.db` + `-wal` → `chatd.db-wal`; `out.db` + `partial` → `out.db.partial`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    if !suffix.starts_with('-') {
        name.push(".");
    }
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}
