//! A [`MessageStore`] that times every operation of the one it wraps into
//! `chatd_database_query_seconds{operation}` (see docs/metrics.md). The
//! histograms are resolved once, here, so timing a query takes no lock.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chat_api::{Message, UnreadEntry};

use super::store::{Cursor, Gap, LogEntry, MessageStore, Page, Result, Retention, UnreadQuery};
use crate::metrics::{AtomicHistogram, Metrics};

/// Operations of the store, in the order of [`MessageStore`]'s methods.
const OPERATIONS: [&str; 18] = [
    "reserved_ids",
    "reserve_ids",
    "append",
    "page",
    "missed",
    "claim_pending",
    "account_name",
    "remember_room",
    "forget_room",
    "is_private_room",
    "member_floor",
    "remembered_rooms",
    "direct_conversations",
    "mark_read",
    "unread",
    "prune",
    "purge_room",
    "purge_before",
];

pub struct TimedStore {
    inner: Arc<dyn MessageStore>,
    latency: [AtomicHistogram; 18],
}

impl TimedStore {
    pub fn new(inner: Arc<dyn MessageStore>, metrics: &Metrics) -> TimedStore {
        TimedStore {
            inner,
            latency: OPERATIONS.map(|op| metrics.database_operation(op)),
        }
    }

    async fn timed<T>(&self, op: usize, f: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = f.await;
        self.latency[op].observe_duration(started.elapsed());
        result
    }
}

#[chat_api::async_trait]
impl MessageStore for TimedStore {
    async fn reserved_ids(&self) -> Result<u64> {
        self.timed(0, self.inner.reserved_ids()).await
    }
    async fn reserve_ids(&self, count: u64, after: u64) -> Result<u64> {
        self.timed(1, self.inner.reserve_ids(count, after)).await
    }
    async fn append(&self, entries: &[LogEntry]) -> Result<()> {
        self.timed(2, self.inner.append(entries)).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn page(&self, conv: &str, cursor: Cursor, limit: u32, floor: u64) -> Result<Page> {
        self.timed(3, self.inner.page(conv, cursor, limit, floor))
            .await
    }
    async fn missed(&self, gaps: &[Gap], limit: usize) -> Result<(Vec<Message>, bool)> {
        self.timed(4, self.inner.missed(gaps, limit)).await
    }
    async fn claim_pending(&self, account: &str) -> Result<Vec<Message>> {
        self.timed(5, self.inner.claim_pending(account)).await
    }
    async fn account_name(&self, name_key: &str) -> Result<Option<String>> {
        self.timed(6, self.inner.account_name(name_key)).await
    }
    async fn remember_room(
        &self,
        account: &str,
        room_key: &str,
        room: &str,
        read_through: u64,
    ) -> Result<()> {
        let f = self
            .inner
            .remember_room(account, room_key, room, read_through);
        self.timed(7, f).await
    }
    async fn forget_room(&self, account: &str, room_key: &str) -> Result<()> {
        self.timed(8, self.inner.forget_room(account, room_key))
            .await
    }
    async fn is_private_room(&self, room_key: &str) -> Result<bool> {
        self.timed(9, self.inner.is_private_room(room_key)).await
    }
    async fn member_floor(&self, room_key: &str, account: &str) -> Result<u64> {
        self.timed(10, self.inner.member_floor(room_key, account))
            .await
    }
    async fn remembered_rooms(&self, account: &str) -> Result<Vec<String>> {
        self.timed(11, self.inner.remembered_rooms(account)).await
    }
    async fn direct_conversations(&self, account: &str) -> Result<Vec<(String, String)>> {
        self.timed(12, self.inner.direct_conversations(account))
            .await
    }
    async fn mark_read(&self, account: &str, conv: &str, msg_id: u64) -> Result<()> {
        self.timed(13, self.inner.mark_read(account, conv, msg_id))
            .await
    }
    async fn unread(&self, account: &str, convs: &[UnreadQuery]) -> Result<Vec<UnreadEntry>> {
        self.timed(14, self.inner.unread(account, convs)).await
    }
    async fn prune(&self, retention: Retention, now_ms: u64) -> Result<u64> {
        self.timed(15, self.inner.prune(retention, now_ms)).await
    }
    async fn purge_room(&self, room_key: &str) -> Result<u64> {
        self.timed(16, self.inner.purge_room(room_key)).await
    }
    async fn purge_before(&self, ts: u64) -> Result<u64> {
        self.timed(17, self.inner.purge_before(ts)).await
    }
}
