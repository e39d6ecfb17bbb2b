//! The message log in the server's database: the embedded SQLite file or
//! PostgreSQL, through one set of queries (see the `chatd-storage` crate).
//! Schema: `migrations/{sqlite,postgres}/20261206010000_history.sql`.

use std::sync::{Arc, Mutex};

use chat_api::{Message, MessageKind, UnreadEntry};
use chatd_storage::sqlx::any::{AnyArguments, AnyRow};
use chatd_storage::sqlx::pool::PoolConnection;
use chatd_storage::sqlx::{self, Any, Arguments as _, Connection as _, Row};
use chatd_storage::{Backend, Database};

use super::store::{
    Cursor, Gap, HistoryError, LogEntry, MessageStore, Page, Result, Retention, UnreadQuery,
};

/// Unread counts stop here ("1000 or more").
const UNREAD_CAP: i64 = 1000;
/// Rows deleted per statement while pruning, so the write lock is never
/// held long while messages are being stored.
const PRUNE_CHUNK: i64 = 5000;

/// [`MessageStore`] on the server's database (SQLite or PostgreSQL).
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Database,
    /// The connection the log writer keeps between batches: taken out for
    /// a batch and put back after it (never locked across a query), so
    /// that each commit skips the pool's checkout and, on SQLite, finds its
    /// page cache still valid (a connection that another one wrote behind
    /// must reload it).
    writer: Arc<Mutex<KeptConnection>>,
}

#[derive(Debug, Default)]
struct KeptConnection {
    conn: Option<PoolConnection<Any>>,
    /// The store is closed: a connection goes back to the pool after its
    /// batch (the pool's close waits for every connection it lent).
    closed: bool,
}

impl SqlStore {
    pub fn new(db: Database) -> SqlStore {
        SqlStore {
            db,
            writer: Arc::default(),
        }
    }

    /// The log writer's connection, from the pool the first time (and
    /// after an error, which lets the one in use go).
    async fn writer_connection(&self) -> Result<PoolConnection<Any>> {
        let kept = self.writer.lock().expect("never poisoned").conn.take();
        match kept {
            Some(conn) => Ok(conn),
            None => self.db.pool().acquire().await.map_err(|e| self.err(e)),
        }
    }

    /// Stores a batch on `conn` (see [`MessageStore::append`]).
    async fn append_on(&self, conn: &mut PoolConnection<Any>, entries: &[LogEntry]) -> Result<()> {
        // One multi-row INSERT per batch: a round trip per message to the
        // database would cost more than the write itself.
        let insert = || {
            sqlx::query_with(
                sqlx::AssertSqlSafe(insert_messages_sql(entries.len(), self.db.backend())),
                message_arguments(entries),
            )
        };
        let simple = entries
            .iter()
            .all(|e| e.pending_for.is_none() && e.parties.is_empty());
        if simple {
            // Room messages and broadcasts only: one statement is its own
            // transaction, and saves the BEGIN and COMMIT round trips.
            let done = insert()
                .execute(&mut **conn)
                .await
                .map_err(|e| self.err(e))?;
            report_skipped(entries, done.rows_affected());
            return Ok(());
        }
        let mut tx = conn.begin().await.map_err(|e| self.err(e))?;
        let done = insert().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        report_skipped(entries, done.rows_affected());
        for entry in entries {
            let id = to_i64(entry.message.msg_id);
            if let Some(account) = &entry.pending_for {
                sqlx::query(
                    "INSERT INTO pending_direct (account_key, msg_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(account)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            for (account, peer) in &entry.parties {
                sqlx::query(
                    "INSERT INTO direct_conversations (account_key, conv, peer, last_msg_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account_key, conv) DO UPDATE SET peer = excluded.peer,
                       last_msg_id = CASE WHEN direct_conversations.last_msg_id > excluded.last_msg_id
                                     THEN direct_conversations.last_msg_id ELSE excluded.last_msg_id END",
                )
                .bind(account)
                .bind(&entry.conv)
                .bind(peer)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    fn err(&self, e: sqlx::Error) -> HistoryError {
        HistoryError(self.db.query_error(e))
    }
}

fn kind_code(kind: MessageKind) -> i64 {
    match kind {
        MessageKind::Room => 0,
        MessageKind::Direct => 1,
        MessageKind::Broadcast => 2,
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn message_from_row(row: &AnyRow) -> Message {
    let kind = match row.get::<i64, _>("kind") {
        0 => MessageKind::Room,
        1 => MessageKind::Direct,
        _ => MessageKind::Broadcast,
    };
    let target: Option<String> = row.get("target");
    let msg_id = row.get::<i64, _>("msg_id") as u64;
    let ts = row.get::<i64, _>("ts") as u64;
    let sender: String = row.get("sender");
    let text: String = row.get("text");
    let mut message = Message::new(msg_id, ts, kind, sender, text);
    match kind {
        MessageKind::Room => message.room = target,
        MessageKind::Direct => message.to = target,
        _ => {}
    }
    message
}

/// `INSERT ... VALUES (..7 values..), (..) ...` for `rows` messages. An id
/// already stored is skipped (and reported: it never should be).
///
/// PostgreSQL takes numbered placeholders `$1, $2 ...`; SQLite gets `?`
/// here: it looks a named parameter (which `$1` is to it) up with a linear
/// scan, once per parameter, which made a batch of a few hundred rows cost
/// O(n²) and cut the write rate fourfold.
fn insert_messages_sql(rows: usize, backend: Backend) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(70 + rows * 40);
    sql.push_str("INSERT INTO messages (msg_id, ts, kind, conv, sender, target, text) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        match backend {
            Backend::Sqlite => sql.push_str("(?, ?, ?, ?, ?, ?, ?)"),
            Backend::Postgres => {
                let n = row * 7;
                let _ = write!(
                    sql,
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                );
            }
        }
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

/// Says loudly when messages were not stored because their id already was
/// (never expected: ids are claimed in blocks no other server gets).
fn report_skipped(entries: &[LogEntry], stored: u64) {
    let skipped = (entries.len() as u64).saturating_sub(stored);
    if skipped > 0 {
        tracing::error!(
            skipped,
            first_id = entries.first().map(|e| e.message.msg_id),
            "messages were not stored: their ids were already in the log (two servers handing out the same ids?); report this as a bug"
        );
    }
}

/// The values of [`insert_messages_sql`], row after row.
fn message_arguments(entries: &[LogEntry]) -> AnyArguments {
    let mut args = AnyArguments::default();
    for entry in entries {
        let m = &entry.message;
        // Encoding an integer or a string into AnyArguments cannot fail.
        let _ = args.add(to_i64(m.msg_id));
        let _ = args.add(to_i64(m.ts));
        let _ = args.add(kind_code(m.kind));
        let _ = args.add(entry.conv.as_str());
        let _ = args.add(m.from.as_str());
        let _ = args.add(m.room.as_deref().or(m.to.as_deref()));
        let _ = args.add(m.text.as_str());
    }
    args
}

#[chat_api::async_trait]
impl MessageStore for SqlStore {
    async fn reserved_ids(&self) -> Result<u64> {
        let (reserved, max): (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT reserved_through FROM message_ids WHERE id = 1), (SELECT max(msg_id) FROM messages)",
        )
        .fetch_one(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(reserved.max(max.unwrap_or(0)).max(0) as u64)
    }

    async fn reserve_ids(&self, count: u64, after: u64) -> Result<u64> {
        // One statement: concurrent claims (another server on the same
        // database) are serialised by the row's lock and never overlap.
        let end: i64 = sqlx::query_scalar(
            "UPDATE message_ids SET reserved_through =
                 CASE WHEN reserved_through > $2 THEN reserved_through ELSE $2 END + $1
             WHERE id = 1 RETURNING reserved_through",
        )
        .bind(to_i64(count))
        .bind(to_i64(after))
        .fetch_one(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(end.max(0) as u64)
    }

    async fn append(&self, entries: &[LogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer_connection().await?;
        let appended = self.append_on(&mut conn, entries).await;
        let mut kept = self.writer.lock().expect("never poisoned");
        if appended.is_ok() && !kept.closed {
            kept.conn = Some(conn);
        }
        appended
    }

    async fn close(&self) {
        let mut kept = self.writer.lock().expect("never poisoned");
        kept.closed = true;
        kept.conn = None;
    }

    async fn page(&self, conv: &str, cursor: Cursor, limit: u32, floor: u64) -> Result<Page> {
        let limit = i64::from(limit);
        let floor = to_i64(floor);
        // One more than asked tells whether more exist.
        let (sql, bound, floor) = match cursor {
            Cursor::Latest => (
                "SELECT msg_id, ts, kind, sender, target, text FROM messages WHERE conv = $1 AND msg_id > $2 AND msg_id <= $3 ORDER BY msg_id DESC LIMIT $4",
                i64::MAX,
                floor,
            ),
            Cursor::Before(id) => (
                "SELECT msg_id, ts, kind, sender, target, text FROM messages WHERE conv = $1 AND msg_id > $2 AND msg_id < $3 ORDER BY msg_id DESC LIMIT $4",
                to_i64(id),
                floor,
            ),
            Cursor::After(id) => (
                // The newer of the floor and the cursor bounds the page.
                "SELECT msg_id, ts, kind, sender, target, text FROM messages WHERE conv = $1 AND msg_id > $2 AND msg_id <= $3 ORDER BY msg_id ASC LIMIT $4",
                i64::MAX,
                floor.max(to_i64(id)),
            ),
        };
        let rows = sqlx::query(sql)
            .bind(conv)
            .bind(floor)
            .bind(bound)
            .bind(limit + 1)
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        let more = rows.len() as i64 > limit;
        let mut messages: Vec<Message> = rows
            .iter()
            .take(limit as usize)
            .map(message_from_row)
            .collect();
        if !matches!(cursor, Cursor::After(_)) {
            messages.reverse();
        }
        Ok(Page { messages, more })
    }

    async fn missed(&self, gaps: &[Gap], limit: usize) -> Result<(Vec<Message>, bool)> {
        let mut all = Vec::new();
        for gap in gaps.iter().filter(|g| g.through > g.after) {
            let rows = sqlx::query(
                "SELECT msg_id, ts, kind, sender, target, text FROM messages WHERE conv = $1 AND msg_id > $2 AND msg_id <= $3 ORDER BY msg_id ASC LIMIT $4",
            )
            .bind(&gap.conv)
            .bind(to_i64(gap.after))
            .bind(to_i64(gap.through))
            .bind(to_i64(limit as u64 + 1))
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
            all.extend(rows.iter().map(message_from_row));
        }
        all.sort_by_key(|m| m.msg_id);
        all.dedup_by_key(|m| m.msg_id);
        let more = all.len() > limit;
        all.truncate(limit);
        Ok((all, more))
    }

    async fn claim_pending(&self, account: &str) -> Result<Vec<Message>> {
        // The DELETE takes the write lock first: a concurrent login of the
        // same account waits and then finds nothing left to claim.
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM pending_direct WHERE account_key = $1 RETURNING msg_id",
        )
        .bind(account)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let mut messages = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT msg_id, ts, kind, sender, target, text FROM messages WHERE msg_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            messages.extend(row.as_ref().map(message_from_row));
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        messages.sort_by_key(|m| m.msg_id);
        Ok(messages)
    }

    async fn account_name(&self, name_key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT name FROM accounts WHERE name_key = $1")
            .bind(name_key)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.err(e))
    }

    async fn remember_room(
        &self,
        account: &str,
        room_key: &str,
        room: &str,
        read_through: u64,
    ) -> Result<()> {
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO account_rooms (account_key, room_key, room) VALUES ($1, $2, $3)
             ON CONFLICT (account_key, room_key) DO UPDATE SET room = excluded.room",
        )
        .bind(account)
        .bind(room_key)
        .bind(room)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO read_markers (account_key, conv, msg_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(account)
        .bind(room_key)
        .bind(to_i64(read_through))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn forget_room(&self, account: &str, room_key: &str) -> Result<()> {
        sqlx::query("DELETE FROM account_rooms WHERE account_key = $1 AND room_key = $2")
            .bind(account)
            .bind(room_key)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn is_private_room(&self, room_key: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM private_rooms WHERE name_key = $1")
                .bind(room_key)
                .fetch_optional(self.db.pool())
                .await
                .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }

    async fn member_floor(&self, room_key: &str, account: &str) -> Result<u64> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT (SELECT m.since_msg_id FROM private_room_members m WHERE m.room_id = r.id AND m.account_key = $1)
             FROM private_rooms r WHERE r.name_key = $2",
        )
        .bind(account)
        .bind(room_key)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(match row {
            None => 0,
            Some((Some(since),)) => since.max(0) as u64,
            Some((None,)) => u64::MAX,
        })
    }

    async fn remembered_rooms(&self, account: &str) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT room FROM account_rooms WHERE account_key = $1 ORDER BY room_key",
        )
        .bind(account)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))
    }

    async fn direct_conversations(&self, account: &str) -> Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT conv, peer FROM direct_conversations WHERE account_key = $1 ORDER BY last_msg_id DESC",
        )
        .bind(account)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))
    }

    async fn mark_read(&self, account: &str, conv: &str, msg_id: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO read_markers (account_key, conv, msg_id) VALUES ($1, $2, $3)
             ON CONFLICT (account_key, conv) DO UPDATE SET msg_id = CASE WHEN read_markers.msg_id > excluded.msg_id
                                                               THEN read_markers.msg_id ELSE excluded.msg_id END",
        )
        .bind(account)
        .bind(conv)
        .bind(to_i64(msg_id))
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn unread(&self, account: &str, convs: &[UnreadQuery]) -> Result<Vec<UnreadEntry>> {
        let mut out = Vec::with_capacity(convs.len());
        for q in convs {
            let row = sqlx::query(
                "SELECT
                   coalesce((SELECT max(msg_id) FROM messages WHERE conv = $1), 0) AS last,
                   coalesce((SELECT msg_id FROM read_markers WHERE account_key = $2 AND conv = $1), 0) AS marker",
            )
            .bind(&q.conv)
            .bind(account)
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
            let last: i64 = row.get("last");
            let marker: i64 = row.get::<i64, _>("marker").max(to_i64(q.floor));
            let unread: i64 = if last > marker {
                sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM messages WHERE conv = $1 AND msg_id > $2 AND lower(sender) <> $3 LIMIT $4) AS capped",
                )
                .bind(&q.conv)
                .bind(marker)
                .bind(account)
                .bind(UNREAD_CAP)
                .fetch_one(self.db.pool())
                .await
                .map_err(|e| self.err(e))?
            } else {
                0
            };
            out.push(UnreadEntry::new(
                q.room.clone(),
                q.with.clone(),
                last.max(0) as u64,
                marker.max(0) as u64,
                unread.max(0) as u64,
            ));
        }
        Ok(out)
    }

    async fn prune(&self, retention: Retention, now_ms: u64) -> Result<u64> {
        let mut deleted = 0;
        if retention.max_age_ms > 0 {
            deleted += self
                .purge_before(now_ms.saturating_sub(retention.max_age_ms))
                .await?;
        }
        for (kind, max) in [
            (0i64, retention.max_per_room),
            (1, retention.max_per_direct),
        ] {
            if max == 0 {
                continue;
            }
            let over: Vec<(String, i64)> = sqlx::query_as(
                "SELECT conv, count(*) AS n FROM messages WHERE kind = $1 GROUP BY conv HAVING count(*) > $2",
            )
            .bind(kind)
            .bind(to_i64(max))
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
            for (conv, n) in over {
                let mut excess = n - to_i64(max);
                while excess > 0 {
                    let chunk = excess.min(PRUNE_CHUNK);
                    let done = sqlx::query(
                        "DELETE FROM messages WHERE msg_id IN (SELECT msg_id FROM messages WHERE conv = $1 ORDER BY msg_id ASC LIMIT $2)",
                    )
                    .bind(&conv)
                    .bind(chunk)
                    .execute(self.db.pool())
                    .await
                    .map_err(|e| self.err(e))?
                    .rows_affected();
                    deleted += done;
                    if done == 0 {
                        break;
                    }
                    excess -= chunk;
                }
            }
        }
        Ok(deleted)
    }

    async fn purge_room(&self, room_key: &str) -> Result<u64> {
        self.delete_chunked(
            "DELETE FROM messages WHERE msg_id IN (SELECT msg_id FROM messages WHERE conv = $1 AND kind = 0 LIMIT $2)",
            room_key.to_string(),
        )
        .await
    }

    async fn purge_before(&self, ts: u64) -> Result<u64> {
        self.delete_chunked(
            "DELETE FROM messages WHERE msg_id IN (SELECT msg_id FROM messages WHERE ts < $1 LIMIT $2)",
            to_i64(ts),
        )
        .await
    }
}

impl SqlStore {
    /// Runs a `DELETE ... LIMIT ?` (first parameter `key`) until it deletes
    /// nothing: small transactions, so the log writer never waits long.
    async fn delete_chunked<T>(&self, sql: &'static str, key: T) -> Result<u64>
    where
        T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send + Sync,
    {
        let mut deleted = 0;
        loop {
            let done = sqlx::query(sql)
                .bind(key.clone())
                .bind(PRUNE_CHUNK)
                .execute(self.db.pool())
                .await
                .map_err(|e| self.err(e))?
                .rows_affected();
            deleted += done;
            if done == 0 {
                return Ok(deleted);
            }
        }
    }
}
