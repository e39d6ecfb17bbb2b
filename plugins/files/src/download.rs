//! The recipient's side: pull chunks, confirm, decline, list.

use std::sync::Arc;

use base64::Engine;
use chat_api::files::{
    codes, FileData, FileDecline, FileDeclined, FileDelivered, FileGet, FileListing, FileReceived,
};
use chat_api::{ApiError, ErrorCode, Payload, RequestId, Session};

use crate::transfer::{Outcome, Phase};
use crate::{blocking, no_such_transfer, reply, Files};

impl Files {
    /// `file_get`: reads one chunk from `offset` and sends it. The read and
    /// the base64 encoding run on the blocking pool.
    pub(crate) async fn get(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        get: FileGet,
    ) -> Result<(), ApiError> {
        let user = self.user(session)?;
        let (offset, len, size) = {
            let registry = self.registry();
            let entry = registry
                .get(&get.transfer)
                .filter(|e| e.meta.is_recipient(&user.key))
                .ok_or_else(|| no_such_transfer(&get.transfer))?;
            let size = entry.meta.size;
            if get.offset > size {
                return Err(ApiError::new(
                    codes::BAD_OFFSET,
                    format!(
                        "offset {} is past the end of the file ({size} bytes)",
                        get.offset
                    ),
                ));
            }
            let len = (size - get.offset).min(u64::from(self.settings.chunk_size)) as usize;
            (get.offset, len, size)
        };
        let store = self.store.clone();
        let transfer = get.transfer;
        let for_read = transfer.clone();
        let read = blocking::run(&*self.host, move || {
            let bytes = store.read_chunk(&for_read, offset, len)?;
            let eof = offset + bytes.len() as u64 == size;
            Ok::<_, crate::store::StoreError>((
                bytes.len(),
                Payload::encode(&FileData {
                    id,
                    transfer: for_read,
                    offset,
                    data: base64::engine::general_purpose::STANDARD.encode(&bytes),
                    eof,
                }),
            ))
        })
        .await;
        match read {
            Ok(Ok((got, payload))) if got == len => {
                session.send(payload);
                Ok(())
            }
            Ok(Ok(_)) | Ok(Err(_)) if !self.registry().contains_key(&transfer) => {
                // Deleted while being read.
                Err(no_such_transfer(&transfer))
            }
            Ok(Ok((got, _))) => {
                tracing::error!(%transfer, offset, expected = len, got, "stored file is shorter than recorded");
                Err(ApiError::new(
                    ErrorCode::INTERNAL,
                    "the stored file is damaged; ask the sender to send it again",
                ))
            }
            Ok(Err(error)) => Err(self.disk_error(&error, "reading the file")),
            Err(panicked) => {
                tracing::error!(%panicked, "reading a file");
                Err(ApiError::new(
                    ErrorCode::INTERNAL,
                    "the server failed reading the file; try again",
                ))
            }
        }
    }

    /// `file_decline`: the recipient does not want the file.
    pub(crate) async fn decline(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        decline: FileDecline,
    ) -> Result<(), ApiError> {
        let by = self.user(session)?;
        let (owner, sender) = self
            .settle(&by.key, &decline.transfer, Outcome::Declined)
            .await?;
        self.notify(
            &owner,
            &sender,
            Payload::encode(&FileDeclined {
                transfer: decline.transfer,
                by: by.nick,
            }),
        );
        session.reply_ok(id);
        Ok(())
    }

    /// `file_received`: the recipient has the file, verified.
    pub(crate) async fn received(
        self: &Arc<Self>,
        session: &dyn Session,
        id: Option<RequestId>,
        received: FileReceived,
    ) -> Result<(), ApiError> {
        let by = self.user(session)?;
        let (owner, sender) = self
            .settle(&by.key, &received.transfer, Outcome::Received)
            .await?;
        self.notify(
            &owner,
            &sender,
            Payload::encode(&FileDelivered {
                transfer: received.transfer,
                to: by.nick,
            }),
        );
        session.reply_ok(id);
        Ok(())
    }

    /// Records a recipient's outcome; deletes the file once nobody waits
    /// for it. Returns the sender's identity key and nickname.
    async fn settle(
        self: &Arc<Self>,
        key: &str,
        transfer: &str,
        outcome: Outcome,
    ) -> Result<(String, String), ApiError> {
        let (sender, settled) = {
            let mut registry = self.registry();
            let entry = registry
                .get_mut(transfer)
                .filter(|e| e.meta.is_recipient(key))
                .ok_or_else(|| no_such_transfer(transfer))?;
            for recipient in entry.meta.recipients.iter_mut().filter(|r| r.key == key) {
                recipient.outcome = outcome;
            }
            (
                (entry.meta.owner.clone(), entry.meta.from.clone()),
                entry.meta.all_settled(),
            )
        };
        if settled {
            self.remove(transfer, "delivered", false).await;
        } else if let Err(error) = self.persist(transfer).await {
            // The outcome holds in memory; only a restart would forget it.
            tracing::error!(%transfer, %error, "cannot record a recipient's outcome");
        }
        Ok(sender)
    }

    /// `file_list`: files waiting for this user, and this user's uploads.
    pub(crate) fn list(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
    ) -> Result<(), ApiError> {
        let user = self.user(session)?;
        let registry = self.registry();
        let mut incoming: Vec<_> = registry
            .values()
            .filter(|e| {
                e.meta.phase == Phase::Complete
                    && e.meta
                        .recipients
                        .iter()
                        .any(|r| r.key == user.key && r.outcome == Outcome::Pending)
            })
            .map(|e| (e.meta.created_at, e.meta.info()))
            .collect();
        let mut outgoing: Vec<_> = registry
            .values()
            .filter(|e| e.meta.owner == user.key)
            .map(|e| (e.meta.created_at, e.outgoing()))
            .collect();
        drop(registry);
        incoming.sort_by_key(|(created, _)| *created);
        outgoing.sort_by_key(|(created, _)| *created);
        reply(
            session,
            &FileListing {
                id,
                incoming: incoming.into_iter().map(|(_, f)| f).collect(),
                outgoing: outgoing.into_iter().map(|(_, f)| f).collect(),
            },
        );
        Ok(())
    }
}
