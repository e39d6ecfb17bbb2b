//! chatd's side of [`PluginRef`]: a library plugin's table of C functions
//! as a [`MessageHandler`], so the pipeline calls it like a built-in.
//!
//! Each hook lends the session (see `session_table`) and awaits the
//! plugin's [`FfiFuture`]; the session, frame and delivery it borrows live
//! in this future until the plugin's future is done or dropped.

use std::sync::RwLock;

use chat_api::plugin_abi::{
    encode_frame, AbiDelivery, AbiOutcome, AbiStr, AbiVersion, PluginDescription, PluginRef,
    PluginVTable,
};
use chat_api::{
    async_trait, ConfigError, Delivery, HandlerError, HandlerResult, Inbound, MessageHandler,
    MessageKind, PluginConfig, Reconfigured, Session, Verdict,
};

use super::session_table;

/// A plugin loaded from a shared library.
pub struct LoadedPlugin {
    plugin: PluginRef,
    /// The ABI version the plugin declared; calls stay within its tables.
    pub abi: AbiVersion,
    /// Its name (fixed), features and flags, read at load and after an
    /// applied reconfiguration.
    name: String,
    description: RwLock<PluginDescription>,
}

impl LoadedPlugin {
    /// Wraps an instance the library's constructor returned.
    ///
    /// # Safety
    /// `plugin` must be a live instance with a non-null table of at least
    /// ABI 1.0's size; this value ends it (`drop`) once.
    pub unsafe fn new(plugin: PluginRef, abi: AbiVersion, configured_name: &str) -> LoadedPlugin {
        let mut loaded = LoadedPlugin {
            plugin,
            abi,
            name: configured_name.to_string(),
            description: RwLock::new(PluginDescription {
                name: configured_name.to_string(),
                features: Vec::new(),
                requires_login: false,
                self_paced_frames: Vec::new(),
            }),
        };
        let description = loaded.describe();
        loaded.name = description.name.clone();
        *loaded
            .description
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = description;
        loaded
    }

    fn table(&self) -> &PluginVTable {
        // SAFETY: the library's static table; libraries are never unloaded.
        unsafe { &*self.plugin.vtable }
    }

    fn describe(&self) -> PluginDescription {
        // SAFETY: the plugin's function for its live instance.
        let buffer = unsafe { (self.table().describe)(self.plugin.ctx) };
        buffer.parse().unwrap_or_else(|| PluginDescription {
            name: self.name.clone(),
            features: Vec::new(),
            requires_login: false,
            self_paced_frames: Vec::new(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, PluginDescription> {
        self.description.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for LoadedPlugin {
    fn drop(&mut self) {
        // SAFETY: the instance is ended once, here; no call is running (the
        // pipeline holds the handler while it calls).
        unsafe { (self.table().drop)(self.plugin.ctx) }
    }
}

/// A hook that returns nothing: a failure is the plugin's to log (its
/// panics are logged through the host by the library's own code).
fn ignore(_: AbiOutcome) {}

#[async_trait]
impl MessageHandler for LoadedPlugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn features(&self) -> Vec<String> {
        self.read().features.clone()
    }

    fn requires_login(&self) -> bool {
        self.read().requires_login
    }

    fn self_paced_frames(&self) -> Vec<String> {
        self.read().self_paced_frames.clone()
    }

    async fn on_session_start(&self, session: &dyn Session) -> Result<(), HandlerError> {
        let holder = session;
        // SAFETY: `holder` stays in this future until the plugin's is done.
        let outcome = unsafe {
            (self.table().on_session_start)(self.plugin.ctx, session_table::lend(&holder))
        }
        .await;
        match outcome.status {
            AbiOutcome::OK => Ok(()),
            _ => Err(HandlerError::msg(outcome.body.to_string_lossy())),
        }
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        let holder = session;
        let encoded = encode_frame(frame);
        // SAFETY: `holder` and `encoded` stay in this future until the
        // plugin's is done.
        let outcome = unsafe {
            (self.table().on_frame)(
                self.plugin.ctx,
                session_table::lend(&holder),
                AbiStr::bytes(&encoded),
            )
        }
        .await;
        match outcome.status {
            AbiOutcome::OK if outcome.body.as_bytes().is_empty() => Ok(Verdict::Continue),
            AbiOutcome::OK => {
                *frame = Inbound::parse(outcome.body.as_bytes()).map_err(|e| {
                    HandlerError::msg(format!(
                        "the plugin changed the frame into one that does not parse: {}",
                        e.error
                    ))
                })?;
                Ok(Verdict::Continue)
            }
            AbiOutcome::DONE => Ok(Verdict::Done),
            AbiOutcome::REJECTED => Ok(Verdict::Reject(outcome.api_error())),
            _ => Err(HandlerError::msg(outcome.body.to_string_lossy())),
        }
    }

    async fn on_delivered(&self, session: &dyn Session, delivery: &Delivery<'_>) {
        let holder = session;
        let abi = AbiDelivery {
            kind: match delivery.kind {
                MessageKind::Room => 0,
                MessageKind::Direct => 1,
                _ => 2,
            },
            target: AbiStr::option(delivery.target),
            msg_id: delivery.msg_id,
            ts: delivery.ts,
            recipients: delivery.recipients as u64,
            text: AbiStr::new(delivery.text),
        };
        let abi = SendDelivery(abi);
        // SAFETY: `holder`, `abi` and the strings it points to stay alive
        // until the plugin's future is done.
        let future = unsafe {
            (self.table().on_delivered)(self.plugin.ctx, session_table::lend(&holder), &abi.0)
        };
        ignore(future.await);
    }

    async fn on_session_end(&self, session: &dyn Session) {
        let holder = session;
        // SAFETY: as in `on_session_start`.
        let future =
            unsafe { (self.table().on_session_end)(self.plugin.ctx, session_table::lend(&holder)) };
        ignore(future.await);
    }

    async fn on_identity_change(&self, session: &dyn Session) {
        let holder = session;
        // SAFETY: as in `on_session_start`.
        let future = unsafe {
            (self.table().on_identity_change)(self.plugin.ctx, session_table::lend(&holder))
        };
        ignore(future.await);
    }

    async fn on_shutdown(&self) {
        // SAFETY: the plugin's function for its live instance.
        ignore(unsafe { (self.table().on_shutdown)(self.plugin.ctx) }.await);
    }

    fn reconfigure(&self, config: &PluginConfig) -> Result<Reconfigured, ConfigError> {
        // SAFETY: the plugin's function; the text lives through the call.
        let outcome =
            unsafe { (self.table().reconfigure)(self.plugin.ctx, AbiStr::new(&config.toml)) };
        match outcome.status {
            AbiOutcome::OK => {
                let description = self.describe();
                *self.description.write().unwrap_or_else(|e| e.into_inner()) = description;
                Ok(Reconfigured::Applied)
            }
            AbiOutcome::DONE => Ok(Reconfigured::RestartNeeded),
            _ => Err(ConfigError::invalid(config, outcome.body.to_string_lossy())),
        }
    }
}

/// An [`AbiDelivery`] held across an await: its pointers refer to the
/// `Delivery` the caller keeps alive meanwhile.
struct SendDelivery(AbiDelivery);

// SAFETY: see the type's documentation; the strings are `Sync`.
unsafe impl Send for SendDelivery {}
// SAFETY: as above.
unsafe impl Sync for SendDelivery {}
