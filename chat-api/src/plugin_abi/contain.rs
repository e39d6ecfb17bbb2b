//! Panic containment inside the plugin library: a panic raised by the
//! plugin's copy of `std` must never unwind into chatd (across an
//! `extern "C"` function it would abort the process). Every hook call and
//! every poll runs under `catch_unwind` here, and a panic becomes an error
//! or a log line naming the plugin.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::plugin::{
    ConfigError, Delivery, HandlerError, HandlerResult, Host, LogLevel, MessageHandler,
    PluginConfig, Reconfigured, Session,
};
use crate::protocol::Inbound;

/// Sends the library's panic reports (message and location) to chatd's log
/// instead of standard error. The hook belongs to the library's own copy of
/// `std`, so it sees this plugin's panics only. It holds the host weakly:
/// once that server is gone, panics are printed as usual.
pub(crate) fn log_panics_through(plugin: &str, host: &Arc<dyn Host>) {
    let plugin = plugin.to_string();
    let host = Arc::downgrade(host);
    let printer = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match host.upgrade() {
        Some(host) => {
            let location = info
                .location()
                .map_or_else(|| "an unknown location".to_string(), ToString::to_string);
            let mut message = format!("panicked at {location}: {}", panic_message(info.payload()));
            // Only when asked for with RUST_BACKTRACE, as the default hook does.
            let backtrace = std::backtrace::Backtrace::capture();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                message.push_str(&format!("\nstack backtrace:\n{backtrace}"));
            }
            host.log(&plugin, LogLevel::Error, &message);
        }
        None => printer(info),
    }));
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn panicked(what: &str, panic: Box<dyn std::any::Any + Send>) -> HandlerError {
    HandlerError::msg(format!("panicked in {what}: {}", panic_message(&*panic)))
}

/// A plugin's handler behind the library boundary: every call and every
/// poll runs under `catch_unwind` in the plugin's own `std`, so a panic
/// becomes a [`HandlerError`] instead of unwinding into chatd.
pub struct Contained<H> {
    /// Dropped under `catch_unwind` too (see `Drop`).
    inner: ManuallyDrop<H>,
    /// The plugin's name in chatd.toml, for log lines.
    plugin: String,
    /// Where panics that cannot be returned as errors (in `features`,
    /// `on_session_end`, ...) are logged.
    host: Option<Arc<dyn Host>>,
}

impl<H: MessageHandler> Contained<H> {
    /// Wraps `inner`; panics that cannot become errors are logged through
    /// `host` (or only printed by the panic hook without one).
    pub fn new(inner: H, plugin: &str, host: Option<Arc<dyn Host>>) -> Contained<H> {
        Contained {
            inner: ManuallyDrop::new(inner),
            plugin: plugin.to_string(),
            host,
        }
    }

    fn report(&self, what: &str, panic: Box<dyn std::any::Any + Send>) {
        if let Some(host) = &self.host {
            let message = format!("panicked in {what}: {}", panic_message(&*panic));
            host.log(&self.plugin, LogLevel::Error, &message);
        }
    }

    /// Runs a plain call under `catch_unwind`; a panic is reported and
    /// replaced by `fallback`.
    fn call<T>(&self, what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            self.report(what, panic);
            fallback
        })
    }
}

impl<H> Drop for Contained<H> {
    fn drop(&mut self) {
        let inner = &mut self.inner;
        // SAFETY: `inner` is dropped exactly once, here, and never used after.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(inner) }));
    }
}

/// Calls `start` and polls the future it returns, both under `catch_unwind`.
async fn contain<'a, T>(
    start: impl FnOnce() -> Pin<Box<dyn Future<Output = T> + Send + 'a>>,
) -> Result<T, Box<dyn std::any::Any + Send>> {
    let future = catch_unwind(AssertUnwindSafe(start))?;
    CatchPanics::new(future).await
}

// Every method of `MessageHandler` must be forwarded here, including ones
// added later with default bodies: otherwise a plugin's override is ignored.
#[async_trait::async_trait]
impl<H: MessageHandler> MessageHandler for Contained<H> {
    fn name(&self) -> &str {
        self.call("name", self.plugin.as_str(), || self.inner.name())
    }

    fn features(&self) -> Vec<String> {
        self.call("features", Vec::new(), || self.inner.features())
    }

    fn requires_login(&self) -> bool {
        self.call("requires_login", false, || self.inner.requires_login())
    }

    fn self_paced_frames(&self) -> Vec<String> {
        self.call("self_paced_frames", Vec::new(), || {
            self.inner.self_paced_frames()
        })
    }

    async fn on_session_start(&self, session: &dyn Session) -> Result<(), HandlerError> {
        contain(move || self.inner.on_session_start(session))
            .await
            .unwrap_or_else(|panic| Err(panicked("on_session_start", panic)))
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        contain(move || self.inner.on_frame(session, frame))
            .await
            .unwrap_or_else(|panic| Err(panicked("on_frame", panic)))
    }

    async fn on_session_end(&self, session: &dyn Session) {
        if let Err(panic) = contain(move || self.inner.on_session_end(session)).await {
            self.report("on_session_end", panic);
        }
    }

    async fn on_identity_change(&self, session: &dyn Session) {
        if let Err(panic) = contain(move || self.inner.on_identity_change(session)).await {
            self.report("on_identity_change", panic);
        }
    }

    async fn on_delivered(&self, session: &dyn Session, delivery: &Delivery<'_>) {
        if let Err(panic) = contain(move || self.inner.on_delivered(session, delivery)).await {
            self.report("on_delivered", panic);
        }
    }

    async fn on_shutdown(&self) {
        if let Err(panic) = contain(move || self.inner.on_shutdown()).await {
            self.report("on_shutdown", panic);
        }
    }

    fn reconfigure(&self, config: &PluginConfig) -> Result<Reconfigured, ConfigError> {
        let panicked = Err(ConfigError::invalid(
            config,
            "the plugin panicked while applying it",
        ));
        self.call("reconfigure", panicked, || self.inner.reconfigure(config))
    }
}

/// Polls a future under `catch_unwind`; drops it under `catch_unwind` too.
pub struct CatchPanics<F> {
    future: Option<F>,
}

impl<F> CatchPanics<F> {
    pub fn new(future: F) -> CatchPanics<F> {
        CatchPanics {
            future: Some(future),
        }
    }
}

impl<F: Future + Unpin> Future for CatchPanics<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(future) = self.future.as_mut() else {
            return Poll::Ready(Err(Box::new("polled after completion")));
        };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                self.drop_future();
                Poll::Ready(Ok(value))
            }
            Err(panic) => {
                self.drop_future();
                Poll::Ready(Err(panic))
            }
        }
    }
}

impl<F> CatchPanics<F> {
    fn drop_future(&mut self) {
        if let Some(future) = self.future.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
        }
    }
}

impl<F> Drop for CatchPanics<F> {
    fn drop(&mut self) {
        self.drop_future();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Panicky;

    #[async_trait::async_trait]
    impl MessageHandler for Panicky {
        fn name(&self) -> &str {
            panic!("no name today")
        }
        async fn on_frame(&self, _session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
            panic!("cannot handle {}", frame.kind)
        }
    }

    #[test]
    fn panics_in_plain_calls_fall_back() {
        let handler = Contained::new(Panicky, "panicky", None);
        assert_eq!(handler.name(), "panicky");
        assert!(handler.features().is_empty());
    }
}
