//! The one sweep task that deletes expired transfers: unclaimed files, and
//! uploads whose sender stopped sending.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::{now_ms, Files};

/// Starts the sweep on the host's runtime. It holds the plugin weakly and
/// ends at shutdown or when the plugin is dropped.
pub(crate) fn start_sweep(files: &Arc<Files>) {
    let weak = Arc::downgrade(files);
    let host = files.host.clone();
    let interval = files.settings.sweep_interval();
    files.host.spawn(Box::pin(async move {
        loop {
            {
                let Some(files) = weak.upgrade() else { return };
                if files.stopping.load(Ordering::Acquire) {
                    return;
                }
                files.sweep().await;
            }
            host.sleep(interval).await;
        }
    }));
}

impl Files {
    /// Deletes every transfer past its expiry and tells those concerned.
    /// A transfer busy with a chunk is deleted too: the late write finds its
    /// file gone (or writes to an unlinked one), so nothing is left behind,
    /// and a handler that failed mid-chunk cannot pin a transfer forever.
    async fn sweep(self: &Arc<Self>) {
        // Another instance's registry may list what this one does not.
        if !self.owns_spool() {
            return;
        }
        let now = now_ms();
        let expired: Vec<String> = self
            .registry()
            .values()
            .filter(|e| e.meta.expires_at <= now)
            .map(|e| e.meta.transfer.clone())
            .collect();
        for transfer in expired {
            tracing::info!(%transfer, "transfer expired");
            self.remove(&transfer, "expired", true).await;
        }
    }
}
