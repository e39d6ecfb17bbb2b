//! `chatd history ...`: the operator's hand on the message log. Safe while
//! the server runs (SQLite in WAL mode with a busy timeout, or PostgreSQL;
//! deletions go in chunks so the server's writes never wait long).

use std::sync::Arc;

use anyhow::{bail, Context};
use chat_api::names::{fold, validate_room};
use chatd::config::Config;
use chatd::history::sql::SqlStore;
use chatd::history::MessageStore;
use chatd_storage::Database;
use clap::Subcommand;

#[derive(Clone, Subcommand)]
pub enum HistoryCommand {
    /// Delete stored messages: those of one room, or all older than a date.
    Purge {
        /// Delete every stored message of this room (e.g. '#lobby').
        #[arg(long, conflicts_with = "before", required_unless_present = "before")]
        room: Option<String>,
        /// Delete every message sent before this day (YYYY-MM-DD, UTC).
        #[arg(long)]
        before: Option<String>,
    },
}

/// Runs one history command against the database of `config`.
pub fn run(config: &Config, command: HistoryCommand) -> anyhow::Result<()> {
    let HistoryCommand::Purge { room, before } = command;
    let before_ms = before.as_deref().map(parse_day).transpose()?;
    if let Some(room) = &room {
        if validate_room(room).is_err() {
            bail!("'{room}' is not a room name (rooms start with '#', e.g. '#lobby')");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let db = Database::open(&config.database_options()).await?;
        let store: Arc<dyn MessageStore> = Arc::new(SqlStore::new(db.clone()));
        let result = match (&room, before_ms) {
            (Some(room), _) => store.purge_room(&fold(room)).await,
            (None, Some(ts)) => store.purge_before(ts).await,
            (None, None) => unreachable!("clap requires one of them"),
        };
        db.close().await;
        let deleted = result?;
        match (&room, &before) {
            (Some(room), _) => println!("deleted {deleted} messages of {room}"),
            (_, Some(day)) => println!("deleted {deleted} messages sent before {day}"),
            _ => {}
        }
        Ok(())
    })
}

/// Milliseconds since the epoch at the start of a UTC day `YYYY-MM-DD`.
fn parse_day(day: &str) -> anyhow::Result<u64> {
    let bad =
        || anyhow::anyhow!("'{day}' is not a date; write it as YYYY-MM-DD (UTC), e.g. 2026-01-31");
    let parts: Vec<&str> = day.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((days * 86_400_000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(parse_day("1970-01-01").unwrap(), 0);
        assert_eq!(parse_day("2026-12-06").unwrap(), 1_796_515_200_000);
        assert!(parse_day("2026-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
    }
}
