//! Test fixture: a plugin that fails on request, to check that chatd (and
//! the code `export_plugin!` generates) contains every kind of failure.
//!
//! `{"type":"boom","when":W,"marker":M}` fails with the text `M`, where `W` is
//! `call` (panic while creating the handler's future), `poll` (panic on its
//! first poll), `later` (panic on a poll after it was pending once), `error`
//! (return an error), `spawn` (panic in a task given to `Host::spawn`, after
//! replying `ok`) or `blocking` (panic in `Host::spawn_blocking` work, after
//! replying `ok`). With `panic_on_start = true` the constructor panics; with
//! `session_end_panic = "M"` every session's end panics with the text `M`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chat_api::serde::Deserialize;
use chat_api::{
    async_trait, ConfigError, HandlerError, HandlerResult, Host, Inbound, MessageHandler,
    PluginContext, RequestId, Session, Verdict,
};

chat_api::export_plugin!("panicky", Panicky::from_context);

#[derive(Deserialize, Default)]
#[serde(crate = "chat_api::serde", deny_unknown_fields, default)]
struct PanickyConfig {
    panic_on_start: bool,
    session_end_panic: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(crate = "chat_api::serde", rename_all = "snake_case")]
enum When {
    Call,
    Poll,
    Later,
    Error,
    Spawn,
    Blocking,
}

#[derive(Deserialize)]
#[serde(crate = "chat_api::serde")]
struct Boom {
    when: When,
    marker: String,
}

pub struct Panicky {
    host: Arc<dyn Host>,
    session_end_panic: Option<String>,
}

impl Panicky {
    fn from_context(context: PluginContext) -> Result<Panicky, ConfigError> {
        let config: PanickyConfig = context.config.parse()?;
        if config.panic_on_start {
            panic!("asked to panic on start");
        }
        Ok(Panicky {
            host: context.host,
            session_end_panic: config.session_end_panic,
        })
    }

    async fn fail(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        boom: Boom,
    ) -> HandlerResult {
        let marker = boom.marker;
        match boom.when {
            When::Call => unreachable!("handled before the future exists"),
            When::Poll => panic!("{marker}"),
            When::Later => {
                YieldOnce(false).await;
                panic!("{marker}")
            }
            When::Error => Err(HandlerError::msg(marker)),
            When::Spawn => {
                self.host.spawn(Box::pin(async move {
                    YieldOnce(false).await;
                    panic!("{marker}")
                }));
                session.reply_ok(id);
                Ok(Verdict::Done)
            }
            When::Blocking => {
                self.host
                    .spawn_blocking(Box::new(move || panic!("{marker}")));
                session.reply_ok(id);
                Ok(Verdict::Done)
            }
        }
    }
}

#[async_trait]
impl MessageHandler for Panicky {
    fn name(&self) -> &str {
        "panicky"
    }

    async fn on_session_end(&self, _session: &dyn Session) {
        if let Some(marker) = &self.session_end_panic {
            panic!("{marker}");
        }
    }

    // Written out (not `async fn`) so that it can panic before returning
    // its future, as a hand-written handler might.
    fn on_frame<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 dyn Session,
        frame: &'life2 mut Inbound,
    ) -> Pin<Box<dyn Future<Output = HandlerResult> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        if frame.kind != "boom" {
            return Box::pin(async { Ok(Verdict::Continue) });
        }
        let boom: Boom = match frame.decode_custom() {
            Ok(boom) => boom,
            Err(error) => return Box::pin(async move { Ok(Verdict::Reject(error)) }),
        };
        if boom.when == When::Call {
            panic!("{}", boom.marker);
        }
        let id = frame.id;
        Box::pin(async move { self.fail(session, id, boom).await })
    }
}

/// Pending once (waking itself at once), then ready: makes the next panic
/// happen on a later poll than the first.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
