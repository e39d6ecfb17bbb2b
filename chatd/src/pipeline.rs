//! The handler pipeline: the ordered plugins every inbound frame passes
//! through before the core router, and the registry that builds them from
//! `chatd.toml`.
//!
//! Handler failures are contained here: an error or a panic (also one raised
//! while its future is polled) becomes an `internal` error for that one
//! frame, logged with the plugin's name; the session and the server go on.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use chat_api::plugin_abi::panic_message;
use chat_api::{
    ApiError, Delivery, ErrorCode, Inbound, MessageHandler, PluginConfig, PluginContext, Session,
    Verdict,
};

use chatd_storage::Database;

use crate::config::Config;

/// Builds a handler from its configuration (built-ins and test handlers).
pub type PluginFactory = Arc<
    dyn Fn(PluginContext) -> Result<Arc<dyn MessageHandler>, chat_api::ConfigError> + Send + Sync,
>;

/// Loads a shared-library plugin (`path = ...` in `[[plugin]]`).
/// It gets the database for the plugin's key-value store.
pub type DynamicLoader = dyn FnMut(
    &crate::config::PluginEntry,
    PluginContext,
    Option<&Database>,
) -> Result<Arc<dyn MessageHandler>, PipelineError>;
/// Builds a built-in handler that keeps data in the server's database.
pub type DatabasePluginFactory = Arc<
    dyn Fn(PluginContext, Database) -> Result<Arc<dyn MessageHandler>, chat_api::ConfigError>
        + Send
        + Sync,
>;

/// How a registered plugin is built.
#[derive(Clone)]
enum Factory {
    Plain(PluginFactory),
    /// Needs the database: the server opens it (and applies the migrations)
    /// only when such a plugin is enabled.
    WithDatabase(DatabasePluginFactory),
}

/// Plugins chatd can build by name.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    factories: HashMap<String, Factory>,
}

impl PluginRegistry {
    /// The built-in plugins.
    pub fn builtin() -> PluginRegistry {
        let mut registry = PluginRegistry::default();
        registry.register("wordfilter", |ctx| {
            Ok(Arc::new(chatd_plugin_wordfilter::WordFilter::from_config(
                &ctx.config,
            )?))
        });
        registry.register_with_database("auth", |ctx, db| {
            Ok(Arc::new(chatd_plugin_auth::AuthPlugin::new(&ctx, db)?))
        });
        registry.register("files", |ctx| {
            Ok(Arc::new(chatd_plugin_files::FilesPlugin::from_context(
                &ctx,
            )?))
        });
        registry.register_with_database("rooms", |ctx, db| {
            Ok(Arc::new(chatd_plugin_rooms::RoomsPlugin::new(&ctx, db)?))
        });
        registry
    }

    /// Adds (or replaces) a plugin that stores data in the server's
    /// database; its factory gets the open database.
    pub fn register_with_database(
        &mut self,
        name: &str,
        factory: impl Fn(PluginContext, Database) -> Result<Arc<dyn MessageHandler>, chat_api::ConfigError>
            + Send
            + Sync
            + 'static,
    ) {
        self.factories
            .insert(name.to_string(), Factory::WithDatabase(Arc::new(factory)));
    }

    /// Whether an enabled plugin of `config` needs the database: a
    /// built-in that stores data, or any shared-library plugin (its
    /// key-value store).
    pub fn needs_database(&self, config: &Config) -> bool {
        config.enabled_plugins().any(|entry| {
            entry.path.is_some() || matches!(self.get(&entry.name), Some(Factory::WithDatabase(_)))
        })
    }

    /// Adds (or replaces) a plugin under `name`.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(PluginContext) -> Result<Arc<dyn MessageHandler>, chat_api::ConfigError>
            + Send
            + Sync
            + 'static,
    ) {
        self.factories
            .insert(name.to_string(), Factory::Plain(Arc::new(factory)));
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.factories.keys().cloned().collect();
        names.sort();
        names
    }

    fn get(&self, name: &str) -> Option<&Factory> {
        self.factories.get(name)
    }
}

/// Why the pipeline could not be built; names the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{source_name}: unknown plugin '{name}' (built-in plugins: {known}); a third-party plugin needs `path = \"...\"`")]
    Unknown {
        source_name: String,
        name: String,
        known: String,
    },
    #[error(transparent)]
    Config(#[from] chat_api::ConfigError),
    #[error("{source_name}: plugin '{name}': {message}")]
    Load {
        source_name: String,
        name: String,
        message: String,
    },
}

/// One stage of the pipeline.
pub struct Stage {
    pub name: String,
    pub handler: Arc<dyn MessageHandler>,
    /// Its call counter and latency, when metrics are on.
    calls: Option<crate::metrics::PluginCalls>,
}

/// The ordered handlers.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Stage>,
    /// A single poll of a plugin call that takes this many milliseconds
    /// blocked its worker thread: logged as a warning naming the plugin
    /// (0 = off; changed by a reload).
    slow_poll_ms: AtomicU64,
}

impl Pipeline {
    /// Builds the pipeline from the enabled `[[plugin]]` entries.
    /// `database` must be open if [`PluginRegistry::needs_database`] says so.
    pub fn build(
        config: &Config,
        registry: &PluginRegistry,
        host: Arc<dyn chat_api::Host>,
        database: Option<&Database>,
        loader: &mut DynamicLoader,
    ) -> Result<Pipeline, PipelineError> {
        let mut stages = Vec::new();
        for entry in config.enabled_plugins() {
            stages.push(Self::build_stage(
                config,
                entry,
                registry,
                host.clone(),
                database,
                loader,
            )?);
        }
        Ok(Pipeline {
            stages,
            slow_poll_ms: AtomicU64::new(config.limits.slow_plugin_poll_ms),
        })
    }

    /// Builds every enabled plugin and reports all that fail, not only the
    /// first (`chatd check-config`); the ones built are shut down again.
    pub async fn check_all(
        config: &Config,
        registry: &PluginRegistry,
        host: Arc<dyn chat_api::Host>,
        database: Option<&Database>,
        loader: &mut DynamicLoader,
    ) -> Vec<PipelineError> {
        let mut errors = Vec::new();
        for entry in config.enabled_plugins() {
            match Self::build_stage(config, entry, registry, host.clone(), database, loader) {
                Ok(stage) => stage.handler.on_shutdown().await,
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Builds the stage of one `[[plugin]]` entry.
    fn build_stage(
        config: &Config,
        entry: &crate::config::PluginEntry,
        registry: &PluginRegistry,
        host: Arc<dyn chat_api::Host>,
        database: Option<&Database>,
        loader: &mut DynamicLoader,
    ) -> Result<Stage, PipelineError> {
        let plugin_config = PluginConfig {
            plugin: entry.name.clone(),
            source: config.source_name.clone(),
            toml: entry
                .config
                .as_ref()
                .map(|t| toml::to_string(t).unwrap_or_default())
                .unwrap_or_default(),
        };
        let ctx = PluginContext {
            config: plugin_config,
            host,
        };
        let handler = if entry.path.is_some() {
            loader(entry, ctx, database)?
        } else {
            let factory = registry
                .get(&entry.name)
                .ok_or_else(|| PipelineError::Unknown {
                    source_name: config.source_name.clone(),
                    name: entry.name.clone(),
                    known: registry.names().join(", "),
                })?;
            match (factory, database) {
                (Factory::Plain(factory), _) => factory(ctx)?,
                (Factory::WithDatabase(factory), Some(db)) => factory(ctx, db.clone())?,
                (Factory::WithDatabase(_), None) => {
                    return Err(PipelineError::Load {
                        source_name: config.source_name.clone(),
                        name: entry.name.clone(),
                        message: "needs the database, which was not opened".to_string(),
                    })
                }
            }
        };
        Ok(Stage {
            name: entry.name.clone(),
            handler,
            calls: None,
        })
    }

    /// A new `limits.slow_plugin_poll_ms` (a reload).
    pub fn set_slow_poll_ms(&self, ms: u64) {
        self.slow_poll_ms.store(ms, Ordering::Relaxed);
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Plugin names in order.
    pub fn names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name.clone()).collect()
    }

    /// Features announced in `welcome`.
    pub fn features(&self) -> Vec<String> {
        self.stages
            .iter()
            .flat_map(|s| s.handler.features())
            .collect()
    }

    /// Frame types some handler paces itself: exempt from flood control.
    pub fn self_paced_frames(&self) -> std::collections::HashSet<String> {
        self.stages
            .iter()
            .flat_map(|s| s.handler.self_paced_frames())
            .collect()
    }

    pub fn requires_login(&self) -> bool {
        self.stages.iter().any(|s| s.handler.requires_login())
    }

    /// Counts every stage's frames and their latency from now on.
    pub fn instrument(&mut self, metrics: &crate::metrics::Metrics) {
        for stage in &mut self.stages {
            stage.calls = Some(metrics.plugin(&stage.name));
        }
    }

    /// Passes a frame through every handler in order.
    pub async fn process(&self, session: &dyn Session, frame: &mut Inbound) -> Verdict {
        for stage in &self.stages {
            let started = stage.calls.as_ref().map(|_| std::time::Instant::now());
            let result = self
                .guard(stage, stage.handler.on_frame(session, frame))
                .await;
            if let (Some(calls), Some(started)) = (&stage.calls, started) {
                calls.calls.inc();
                calls.latency.observe_duration(started.elapsed());
            }
            match result {
                Ok(Ok(Verdict::Continue)) => continue,
                Ok(Ok(verdict)) => return verdict,
                Ok(Err(error)) => {
                    tracing::error!(plugin = %stage.name, session = session.id(), frame = %frame.kind, %error, "plugin failed");
                    return Verdict::Reject(internal(&stage.name));
                }
                Err(panic) => {
                    tracing::error!(plugin = %stage.name, session = session.id(), frame = %frame.kind, panic = %panic_message(&*panic), "plugin panicked");
                    return Verdict::Reject(internal(&stage.name));
                }
            }
        }
        Verdict::Continue
    }

    /// Runs every handler's session-start hook; the first failure ends the
    /// session with that error.
    pub async fn session_start(&self, session: &dyn Session) -> Result<(), ApiError> {
        for stage in &self.stages {
            match self
                .guard(stage, stage.handler.on_session_start(session))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(plugin = %stage.name, session = session.id(), %error, "plugin failed at session start");
                    return Err(internal(&stage.name));
                }
                Err(panic) => {
                    tracing::error!(plugin = %stage.name, session = session.id(), panic = %panic_message(&*panic), "plugin panicked at session start");
                    return Err(internal(&stage.name));
                }
            }
        }
        Ok(())
    }

    /// Runs every handler's session-end hook (all of them, whatever fails).
    pub async fn session_end(&self, session: &dyn Session) {
        for stage in &self.stages {
            if let Err(panic) = self
                .guard(stage, stage.handler.on_session_end(session))
                .await
            {
                tracing::error!(plugin = %stage.name, session = session.id(), panic = %panic_message(&*panic), "plugin panicked at session end");
            }
        }
    }

    /// Runs every handler's identity-change hook (all of them, whatever
    /// fails), after a frame changed who the session is.
    pub async fn identity_changed(&self, session: &dyn Session) {
        for stage in &self.stages {
            if let Err(panic) = self
                .guard(stage, stage.handler.on_identity_change(session))
                .await
            {
                tracing::error!(plugin = %stage.name, session = session.id(), panic = %panic_message(&*panic), "plugin panicked on an identity change");
            }
        }
    }

    /// Runs every handler's after-delivery hook (all of them, whatever
    /// fails), once the core delivered a chat message `session` sent.
    pub async fn delivered(&self, session: &dyn Session, delivery: &Delivery<'_>) {
        for stage in &self.stages {
            if let Err(panic) = self
                .guard(stage, stage.handler.on_delivered(session, delivery))
                .await
            {
                tracing::error!(plugin = %stage.name, session = session.id(), msg_id = delivery.msg_id, panic = %panic_message(&*panic), "plugin panicked after a delivery");
            }
        }
    }

    /// Runs every handler's shutdown hook.
    pub async fn shutdown(&self) {
        for stage in &self.stages {
            if let Err(panic) = self.guard(stage, stage.handler.on_shutdown()).await {
                tracing::error!(plugin = %stage.name, panic = %panic_message(&*panic), "plugin panicked at shutdown");
            }
        }
    }
}

fn internal(plugin: &str) -> ApiError {
    ApiError::new(
        ErrorCode::INTERNAL,
        format!("the server's '{plugin}' plugin failed on this request; it has been logged, try again later"),
    )
}

impl Pipeline {
    /// A plugin call under watch: panics contained, blocking polls logged.
    fn guard<'a, F>(&self, stage: &'a Stage, future: F) -> CatchUnwind<'a, F> {
        CatchUnwind {
            future,
            plugin: &stage.name,
            slow_poll: std::time::Duration::from_millis(self.slow_poll_ms.load(Ordering::Relaxed)),
        }
    }
}

/// Polls a plugin's future, turning a panic during any poll into an `Err`,
/// and warning when one poll held the thread for `slow_poll` or longer. A
/// plugin that blocks (a synchronous sleep, file or network call) holds a
/// worker thread; [`crate::stall_watch`] sees the thread busy and wakes
/// another worker so that other sessions go on.
struct CatchUnwind<'a, F> {
    future: F,
    plugin: &'a str,
    slow_poll: std::time::Duration,
}

impl<F: Future + Unpin> Future for CatchUnwind<'_, F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = (!self.slow_poll.is_zero()).then(std::time::Instant::now);
        let inner = &mut self.future;
        let busy = crate::stall_watch::busy();
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx)));
        drop(busy);
        if let Some(took) = started
            .map(|s| s.elapsed())
            .filter(|t| *t >= self.slow_poll)
        {
            tracing::warn!(
                plugin = %self.plugin,
                blocked_ms = took.as_millis() as u64,
                "a plugin call blocked its worker thread. Plugins must not block: use Host::spawn_blocking (limits.slow_plugin_poll_ms sets this warning)"
            );
        }
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
