//! The plugin across the boundary: the constructor
//! [`export_plugin!`](crate::export_plugin) generates builds the author's
//! handler and hands chatd a [`PluginRef`] (the handler behind a context
//! pointer, and a table with one C function per hook). Every function here
//! runs under `catch_unwind`, and so does every poll of the futures it
//! returns.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use async_ffi::{FfiFuture, FutureExt};
use serde::Serialize;

use super::contain::{log_panics_through, panic_message};
use super::{
    encode_frame, AbiBuffer, AbiContext, AbiDelivery, AbiOutcome, AbiStr, Contained, CreateArgs,
    CreateResult, RemoteHost, RemoteSession, SessionRef,
};
use crate::plugin::{
    ConfigError, Delivery, Host, MessageHandler, PluginConfig, PluginContext, Reconfigured,
    Verdict,
};
use crate::protocol::{Inbound, MessageKind};

/// A plugin instance, for as long as chatd holds it (until
/// [`PluginVTable::drop`]).
#[repr(C)]
pub struct PluginRef {
    pub ctx: AbiContext,
    /// Null when the constructor failed.
    pub vtable: *const PluginVTable,
}

// SAFETY: the handler is `Send + Sync`; the table is a static.
unsafe impl Send for PluginRef {}
// SAFETY: as above.
unsafe impl Sync for PluginRef {}

/// The plugin's functions: one per `MessageHandler` hook. Append-only (see
/// [`HostVTable`](super::HostVTable)); chatd calls only those of the minor
/// version the plugin declared.
///
/// The futures borrow the session (and frame, delivery) they were given:
/// chatd keeps those alive until the future completed or was dropped.
#[repr(C)]
pub struct PluginVTable {
    /// `size_of::<PluginVTable>()` of the plugin.
    pub size: usize,
    /// Ends the instance (after `on_shutdown`, or when chatd discards it).
    pub drop: unsafe extern "C" fn(ctx: AbiContext),
    /// `{"name","features","requires_login","self_paced_frames"}`: read at
    /// load and after each applied reconfiguration.
    pub describe: unsafe extern "C" fn(ctx: AbiContext) -> AbiBuffer,
    /// OK or FAILED (message).
    pub on_session_start:
        unsafe extern "C" fn(ctx: AbiContext, session: SessionRef) -> FfiFuture<AbiOutcome>,
    /// OK (body: the changed frame, empty if unchanged), DONE, REJECTED or
    /// FAILED.
    pub on_frame: unsafe extern "C" fn(
        ctx: AbiContext,
        session: SessionRef,
        frame: AbiStr,
    ) -> FfiFuture<AbiOutcome>,
    pub on_delivered: unsafe extern "C" fn(
        ctx: AbiContext,
        session: SessionRef,
        delivery: *const AbiDelivery,
    ) -> FfiFuture<AbiOutcome>,
    pub on_session_end:
        unsafe extern "C" fn(ctx: AbiContext, session: SessionRef) -> FfiFuture<AbiOutcome>,
    pub on_identity_change:
        unsafe extern "C" fn(ctx: AbiContext, session: SessionRef) -> FfiFuture<AbiOutcome>,
    pub on_shutdown: unsafe extern "C" fn(ctx: AbiContext) -> FfiFuture<AbiOutcome>,
    /// `config`: TOML text. OK (applied), DONE (restart needed) or FAILED.
    pub reconfigure: unsafe extern "C" fn(ctx: AbiContext, config: AbiStr) -> AbiOutcome,
}

/// What [`PluginVTable::describe`] returns.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PluginDescription {
    pub name: String,
    pub features: Vec<String>,
    pub requires_login: bool,
    pub self_paced_frames: Vec<String>,
}

/// The instance behind [`PluginRef::ctx`].
struct Instance {
    /// The author's handler, in [`Contained`].
    handler: Box<dyn MessageHandler>,
    /// For configuration errors of `reconfigure`.
    plugin: String,
    source: String,
}

impl Instance {
    /// # Safety
    /// `ctx` must be a live instance's context: chatd calls only between
    /// the constructor and `drop`, and awaits or drops every future first.
    unsafe fn get(ctx: AbiContext) -> &'static Instance {
        // SAFETY: the caller's guarantee; the `'static` is a promise kept by
        // chatd, not by the compiler.
        unsafe { &*ctx.0.cast::<Instance>() }
    }
}

/// The body of the generated constructor: builds the author's handler with
/// chatd's host, all under `catch_unwind`.
///
/// # Safety
/// `args` must be valid for the call, as chatd passes them.
#[doc(hidden)]
pub unsafe fn create_plugin<H, C>(args: *const CreateArgs, constructor: C) -> CreateResult
where
    H: MessageHandler,
    C: FnOnce(PluginContext) -> Result<H, ConfigError>,
{
    let failed = |message: String| CreateResult {
        plugin: PluginRef {
            ctx: AbiContext(std::ptr::null()),
            vtable: std::ptr::null(),
        },
        error: AbiBuffer::from_vec(message.into_bytes()),
    };
    let created = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's guarantee.
        let args = unsafe { &*args };
        // SAFETY: valid for this call.
        let (plugin, source, toml) = unsafe {
            (
                args.plugin.to_str().into_owned(),
                args.source.to_str().into_owned(),
                args.config.to_str().into_owned(),
            )
        };
        // SAFETY: chatd's host, released when the last clone is dropped.
        let host: Arc<dyn Host> = Arc::new(unsafe { RemoteHost::new(args.host, &plugin) });
        log_panics_through(&plugin, &host);
        let config = PluginConfig {
            plugin: plugin.clone(),
            source: source.clone(),
            toml,
        };
        let context = PluginContext {
            config,
            host: host.clone(),
        };
        let handler = match catch_unwind(AssertUnwindSafe(|| constructor(context))) {
            Ok(Ok(handler)) => handler,
            Ok(Err(error)) => return Err(error.message),
            Err(panic) => {
                return Err(format!(
                    "the plugin panicked while starting: {}",
                    panic_message(&*panic)
                ))
            }
        };
        Ok(Instance {
            handler: Box::new(Contained::new(handler, &plugin, Some(host))),
            plugin,
            source,
        })
    }));
    match created {
        Ok(Ok(instance)) => CreateResult {
            plugin: PluginRef {
                ctx: AbiContext(Box::into_raw(Box::new(instance)).cast::<c_void>()),
                vtable: &VTABLE,
            },
            error: AbiBuffer::EMPTY,
        },
        Ok(Err(message)) => failed(message),
        Err(panic) => failed(format!(
            "the plugin panicked while starting: {}",
            panic_message(&*panic)
        )),
    }
}

static VTABLE: PluginVTable = PluginVTable {
    size: std::mem::size_of::<PluginVTable>(),
    drop: drop_instance,
    describe,
    on_session_start,
    on_frame,
    on_delivered,
    on_session_end,
    on_identity_change,
    on_shutdown,
    reconfigure,
};

/// Runs the synchronous part of a hook under `catch_unwind`: a panic there
/// (while the handler's future is made) becomes a FAILED outcome.
fn hook<F>(what: &str, start: impl FnOnce() -> F) -> FfiFuture<AbiOutcome>
where
    F: std::future::Future<Output = AbiOutcome> + Send + 'static,
{
    match catch_unwind(AssertUnwindSafe(|| start().into_ffi())) {
        Ok(future) => future,
        Err(panic) => {
            let message = format!("panicked in {what}: {}", panic_message(&*panic));
            async move { AbiOutcome::failed(&message) }.into_ffi()
        }
    }
}

unsafe extern "C" fn drop_instance(ctx: AbiContext) {
    // SAFETY: the instance made by `create_plugin`, dropped once by chatd.
    let instance = unsafe { Box::from_raw(ctx.0.cast::<Instance>().cast_mut()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(instance)));
}

unsafe extern "C" fn describe(ctx: AbiContext) -> AbiBuffer {
    // SAFETY: chatd's guarantee (see `Instance::get`).
    let instance = unsafe { Instance::get(ctx) };
    // `Contained` catches panics in these calls already.
    let handler = &instance.handler;
    catch_unwind(AssertUnwindSafe(|| {
        AbiBuffer::json(&PluginDescription {
            name: handler.name().to_string(),
            features: handler.features(),
            requires_login: handler.requires_login(),
            self_paced_frames: handler.self_paced_frames(),
        })
    }))
    .unwrap_or(AbiBuffer::EMPTY)
}

unsafe extern "C" fn on_session_start(ctx: AbiContext, session: SessionRef) -> FfiFuture<AbiOutcome> {
    hook("on_session_start", || {
        // SAFETY: chatd's guarantee (see `PluginVTable`).
        let (instance, session) = unsafe { (Instance::get(ctx), RemoteSession::new(session)) };
        async move {
            match instance.handler.on_session_start(&session).await {
                Ok(()) => AbiOutcome::status(AbiOutcome::OK),
                Err(error) => AbiOutcome::failed(&error.to_string()),
            }
        }
    })
}

unsafe extern "C" fn on_frame(
    ctx: AbiContext,
    session: SessionRef,
    frame: AbiStr,
) -> FfiFuture<AbiOutcome> {
    hook("on_frame", || {
        // SAFETY: chatd's guarantee (see `PluginVTable`); the frame bytes
        // are read here, before the future exists.
        let (instance, session, bytes) =
            unsafe { (Instance::get(ctx), RemoteSession::new(session), frame.as_bytes()) };
        let parsed = Inbound::parse(bytes);
        let original = bytes.to_vec();
        async move {
            let mut frame = match parsed {
                Ok(frame) => frame,
                Err(error) => return AbiOutcome::rejected(&error.error),
            };
            match instance.handler.on_frame(&session, &mut frame).await {
                Ok(Verdict::Continue) => {
                    let encoded = encode_frame(&frame);
                    if encoded == original {
                        AbiOutcome::ok(AbiBuffer::EMPTY)
                    } else {
                        AbiOutcome::ok(AbiBuffer::from_vec(encoded))
                    }
                }
                Ok(Verdict::Done) => AbiOutcome::status(AbiOutcome::DONE),
                Ok(Verdict::Reject(error)) => AbiOutcome::rejected(&error),
                Err(error) => AbiOutcome::failed(&error.to_string()),
            }
        }
    })
}

unsafe extern "C" fn on_delivered(
    ctx: AbiContext,
    session: SessionRef,
    delivery: *const AbiDelivery,
) -> FfiFuture<AbiOutcome> {
    hook("on_delivered", || {
        // SAFETY: chatd's guarantee (see `PluginVTable`).
        let (instance, session, delivery) =
            unsafe { (Instance::get(ctx), RemoteSession::new(session), &*delivery) };
        let kind = match delivery.kind {
            0 => MessageKind::Room,
            1 => MessageKind::Direct,
            _ => MessageKind::Broadcast,
        };
        // SAFETY: the strings live as long as the call's future.
        let (target, text) = unsafe { (delivery.target.to_option(), delivery.text.to_str()) };
        let text = text.into_owned();
        let (msg_id, ts, recipients) = (delivery.msg_id, delivery.ts, delivery.recipients);
        async move {
            let delivery = Delivery::new(
                kind,
                target.as_deref(),
                msg_id,
                ts,
                recipients as usize,
                &text,
            );
            instance.handler.on_delivered(&session, &delivery).await;
            AbiOutcome::status(AbiOutcome::OK)
        }
    })
}

unsafe extern "C" fn on_session_end(ctx: AbiContext, session: SessionRef) -> FfiFuture<AbiOutcome> {
    hook("on_session_end", || {
        // SAFETY: chatd's guarantee (see `PluginVTable`).
        let (instance, session) = unsafe { (Instance::get(ctx), RemoteSession::new(session)) };
        async move {
            instance.handler.on_session_end(&session).await;
            AbiOutcome::status(AbiOutcome::OK)
        }
    })
}

unsafe extern "C" fn on_identity_change(
    ctx: AbiContext,
    session: SessionRef,
) -> FfiFuture<AbiOutcome> {
    hook("on_identity_change", || {
        // SAFETY: chatd's guarantee (see `PluginVTable`).
        let (instance, session) = unsafe { (Instance::get(ctx), RemoteSession::new(session)) };
        async move {
            instance.handler.on_identity_change(&session).await;
            AbiOutcome::status(AbiOutcome::OK)
        }
    })
}

unsafe extern "C" fn on_shutdown(ctx: AbiContext) -> FfiFuture<AbiOutcome> {
    hook("on_shutdown", || {
        // SAFETY: chatd's guarantee (see `PluginVTable`).
        let instance = unsafe { Instance::get(ctx) };
        async move {
            instance.handler.on_shutdown().await;
            AbiOutcome::status(AbiOutcome::OK)
        }
    })
}

unsafe extern "C" fn reconfigure(ctx: AbiContext, config: AbiStr) -> AbiOutcome {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: chatd's guarantee; the text lives through the call.
        let (instance, toml) = unsafe { (Instance::get(ctx), config.to_str().into_owned()) };
        let config = PluginConfig {
            plugin: instance.plugin.clone(),
            source: instance.source.clone(),
            toml,
        };
        match instance.handler.reconfigure(&config) {
            Ok(Reconfigured::Applied) => AbiOutcome::status(AbiOutcome::OK),
            Ok(Reconfigured::RestartNeeded) => AbiOutcome::status(AbiOutcome::DONE),
            Err(error) => AbiOutcome::failed(&error.message),
        }
    }));
    outcome.unwrap_or_else(|panic| {
        AbiOutcome::failed(&format!(
            "the plugin panicked while applying it: {}",
            panic_message(&*panic)
        ))
    })
}
