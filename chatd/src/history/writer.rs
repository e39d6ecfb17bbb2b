//! The log writer: one task that stores accepted messages in group commits
//! and then tells each sender (`sent`). Delivery to recipients never waits
//! for it; a sender waits only for a free slot in its bounded queue.

use std::sync::Arc;

use chat_api::{ApiError, ErrorCode, Payload, RequestId, ServerFrame};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::store::{LogEntry, MessageStore};
use crate::hub::Peer;

/// What the writer is asked to do, in queue order.
// Stored inline: boxing would cost an allocation per message to save the
// space of the rare `Flush` in queue slots.
#[allow(clippy::large_enum_variant)]
pub enum LogCommand {
    /// Store a message; then acknowledge it to its sender, if any.
    Store(LogEntry, Option<Ack>),
    /// Answer once everything queued before has been committed.
    Flush(oneshot::Sender<()>),
}

/// The `sent` reply owed to a sender once its message is stored.
pub struct Ack {
    pub peer: Arc<Peer>,
    pub id: Option<RequestId>,
    pub recipients: usize,
    /// The text as delivered, when a plugin changed it.
    pub text: Option<String>,
    /// A direct message kept for an offline account.
    pub stored: bool,
}

/// Runs until every sender of the queue is gone.
pub async fn run(
    store: Arc<dyn MessageStore>,
    mut queue: mpsc::Receiver<LogCommand>,
    batch: usize,
) {
    let mut commands = Vec::with_capacity(batch);
    let mut entries: Vec<LogEntry> = Vec::with_capacity(batch);
    let mut acks = Vec::with_capacity(batch);
    let mut flushes = Vec::new();
    loop {
        // Waits for the first command, then takes what else is queued: the
        // busier the server, the larger (and cheaper per message) the commit.
        if queue.recv_many(&mut commands, batch).await == 0 {
            return;
        }
        // Let the tasks that deliver this message to its recipients (woken
        // by the same send) run first: storing must never delay delivery.
        // This also lets a burst gather into one commit. No timer involved.
        tokio::task::yield_now().await;
        let room = batch.saturating_sub(commands.len());
        if room > 0 {
            queue.recv_many(&mut commands, room).now_or_never();
        }
        for command in commands.drain(..) {
            match command {
                LogCommand::Store(entry, ack) => {
                    if let Some(ack) = ack {
                        acks.push((ack, entry.message.msg_id, entry.message.ts));
                    }
                    entries.push(entry);
                }
                LogCommand::Flush(done) => flushes.push(done),
            }
        }
        let stored = store.append(&entries).await;
        if let Err(e) = &stored {
            tracing::error!(error = %e, messages = entries.len(), "cannot store messages; their senders get not_stored");
        }
        for (ack, msg_id, ts) in acks.drain(..) {
            let frame = match &stored {
                Ok(()) => ServerFrame::Sent {
                    id: ack.id,
                    msg_id,
                    ts,
                    recipients: ack.recipients,
                    text: ack.text,
                    stored: ack.stored,
                },
                Err(_) => ServerFrame::error(
                    ack.id,
                    &ApiError::new(
                        ErrorCode::NOT_STORED,
                        format!("message {msg_id} reached its online recipients but could not be stored; it is not in the history (the server's log says why)"),
                    ),
                ),
            };
            ack.peer.deliver(Payload::encode(&frame));
        }
        entries.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
