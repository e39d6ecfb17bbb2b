//! Running disk I/O and hashing on the host's blocking pool and awaiting the
//! result, without a tokio runtime of the plugin's own.

use chat_api::Host;

/// The blocking work panicked (its result channel was dropped).
#[derive(Debug, thiserror::Error)]
#[error("a background disk task of the files plugin panicked")]
pub struct WorkPanicked;

/// Runs `work` on the host's blocking pool and waits for its result.
pub async fn run<T: Send + 'static>(
    host: &dyn Host,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkPanicked> {
    let (done, result) = tokio::sync::oneshot::channel();
    host.spawn_blocking(Box::new(move || {
        let _ = done.send(work());
    }));
    result.await.map_err(|_| WorkPanicked)
}
