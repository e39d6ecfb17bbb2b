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
    /// Deletes every transfer past its expiry (except one busy writing a
    /// chunk: the next sweep gets it) and tells those concerned.
    async fn sweep(self: &Arc<Self>) {
        let now = now_ms();
        let expired: Vec<String> = self
            .registry()
            .values()
            .filter(|e| e.meta.expires_at <= now && !e.busy)
            .map(|e| e.meta.transfer.clone())
            .collect();
        for transfer in expired {
            tracing::info!(%transfer, "transfer expired");
            self.remove(&transfer, "expired", true).await;
        }
    }
}
