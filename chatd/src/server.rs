//! Starting and stopping the server: binds the listeners, builds the
//! pipeline, and on shutdown stops accepting, tells every client, flushes
//! what is queued and waits (bounded) for the sessions to end.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::history::timed::TimedStore;
use crate::host::ServerHost;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PipelineError, PluginRegistry};
use crate::shared::Shared;
use crate::transport::tcp::{accept_loop, Security};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {error}; is another chatd running? Use another address or port 0")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        error: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::transport::tls::TlsError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    #[error(transparent)]
    Database(#[from] chatd_storage::StorageError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("cannot start the message history: {0}")]
    History(#[from] crate::history::store::HistoryError),
}

/// A running server.
pub struct RunningServer {
    /// Bound plaintext address, if enabled.
    pub tcp_addr: Option<SocketAddr>,
    /// Bound TLS address, if enabled.
    pub tls_addr: Option<SocketAddr>,
    /// Bound web (HTTP or HTTPS, see `web_tls`) address, if enabled.
    pub web_addr: Option<SocketAddr>,
    /// Whether the web listener speaks HTTPS/WSS.
    pub web_tls: bool,
    /// Bound admin (metrics and health) address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) reload: crate::reload::ReloadState,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Starts shutting down (idempotent).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Waits until the server has shut down.
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Shuts down and waits.
    pub async fn stop(self) {
        self.shutdown();
        self.wait().await;
    }

    /// Checks `new` and applies what can change while running; see
    /// [`crate::reload`]. On error nothing changed.
    pub async fn reload(
        &self,
        new: Config,
    ) -> Result<crate::reload::ReloadReport, crate::reload::ReloadError> {
        self.reload.apply(&self.shared, new).await
    }

    /// The hub, for tests that check its invariants.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// Connections currently held.
    pub fn connection_count(&self) -> usize {
        self.shared.connection_count()
    }
}

/// Starts a server with the built-in plugins.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    start_with(config, PluginRegistry::builtin()).await
}

/// Starts a server with the given plugin registry.
pub async fn start_with(
    mut config: Config,
    registry: PluginRegistry,
) -> Result<RunningServer, StartError> {
    name_transfers_after_the_node(&mut config);
    // Held until the server has shut down (it lives in the shutdown task).
    let data_lock = crate::data_dir::lock(&config.server.data_dir)?;
    // Certificates and addresses first: a refused start opens nothing that
    // would then have to be shut down. One certificate store serves the TLS
    // and HTTPS listeners, so that a reload renews both.
    let certs = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) if config.tls.listen.is_some() || config.web.tls => {
            Some(crate::transport::tls::CertStore::load(cert, key)?)
        }
        _ => None,
    };
    let mut listeners = Listeners::bind(&config, certs.as_ref()).await?;
    let admin_listener = listeners.admin.take();
    let shutdown = tokio_util::sync::CancellationToken::new();
    // Stops the history tasks again if a later step refuses to start.
    let stop_on_error = shutdown.clone().drop_guard();
    // Only counted when someone can read them (`[admin] listen`).
    let metrics = config.admin.listen.map(|_| Arc::new(Metrics::new()));
    let storage = Storage::open(&config, &registry, metrics.as_ref(), &shutdown).await?;
    let hub = Arc::new(Hub::with_ids(
        config.limits.max_rooms_per_session,
        config.limits.max_rooms,
        storage.ids.clone(),
    ));
    let host = Arc::new(ServerHost::new(
        hub.clone(),
        config.server.data_dir.clone(),
        tokio::runtime::Handle::current(),
        config.limits.max_frame_bytes,
    ));
    let mut loader = crate::dynamic::load;
    let built = Pipeline::build(
        &config,
        &registry,
        host.clone(),
        storage.database.as_ref(),
        &mut loader,
    );
    let mut pipeline = match built {
        Ok(pipeline) => pipeline,
        Err(e) => {
            // In order: the tasks that use the database stop, then it closes.
            shutdown.cancel();
            if let Some(db) = &storage.database {
                db.close().await;
            }
            return Err(e.into());
        }
    };
    if let Some(metrics) = &metrics {
        pipeline.instrument(metrics);
    }
    let cluster = match &config.cluster {
        Some(cluster) => match Cluster::start(
            cluster,
            hub.clone(),
            storage.history.clone(),
            shutdown.clone(),
        )
        .await
        {
            Ok(cluster) => {
                host.attach_cluster(cluster.clone());
                Some(cluster)
            }
            Err(e) => {
                shutdown.cancel();
                pipeline.shutdown().await;
                if let Some(db) = &storage.database {
                    db.close().await;
                }
                return Err(e.into());
            }
        },
        None => None,
    };
    stop_on_error.disarm();
    let mut shared = Shared::new(
        hub,
        pipeline,
        config.limits.clone(),
        config.server.broadcast,
        storage.history,
        shutdown,
        metrics.clone(),
    );
    shared.cluster = cluster;
    let shared = Arc::new(shared);
    if let Some(cluster) = &shared.cluster {
        let forwarded = crate::session::forwarded::Forwarded::new(&shared);
        cluster.set_forwarded_frames(Arc::new(forwarded));
    }
    let (loops, bound) = listeners.serve(&shared, &config);
    let admin_stop = tokio_util::sync::CancellationToken::new();
    let admin_addr = match (admin_listener, metrics) {
        (Some(listener), Some(metrics)) => {
            let admin = AdminParts {
                listener,
                metrics,
                database: storage.database.clone(),
                stop: admin_stop.clone(),
            };
            Some(serve_admin(&shared, &config, &bound, admin))
        }
        _ => None,
    };
    tracing::info!(plugins = ?shared.pipeline.names(), "pipeline ready");

    let task = tokio::spawn(run_until_shutdown(
        shared.clone(),
        loops,
        storage.database,
        storage.log_writer,
        data_lock,
        admin_stop,
    ));
    Ok(RunningServer {
        tcp_addr: bound.tcp,
        tls_addr: bound.tls,
        web_addr: bound.web,
        web_tls: bound.web_tls,
        admin_addr,
        shared,
        reload: crate::reload::ReloadState::new(config, registry, certs),
        task,
    })
}

/// The listening sockets, bound before anything else is opened.
struct Listeners {
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, crate::transport::tls::TlsAcceptor)>,
    web: Option<(TcpListener, Option<crate::transport::tls::TlsAcceptor>)>,
    admin: Option<TcpListener>,
}

/// The addresses the listeners got (port 0 becomes a real port).
struct BoundAddrs {
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    web: Option<SocketAddr>,
    web_tls: bool,
}

impl Listeners {
    async fn bind(
        config: &Config,
        certs: Option<&Arc<crate::transport::tls::CertStore>>,
    ) -> Result<Listeners, StartError> {
        let plain = match config.server.listen {
            Some(addr) => Some(bind(addr, "plaintext").await?),
            None => None,
        };
        let tls = match (config.tls.listen, certs) {
            (Some(addr), Some(certs)) => Some((bind(addr, "TLS").await?, certs.acceptor())),
            _ => None,
        };
        let web_acceptor = certs.filter(|_| config.web.tls).map(|c| c.acceptor());
        let web = match config.web.listen {
            Some(addr) => Some((bind(addr, "web").await?, web_acceptor)),
            None => None,
        };
        let admin = match config.admin.listen {
            Some(addr) => Some(bind(addr, "admin").await?),
            None => None,
        };
        Ok(Listeners {
            plain,
            tls,
            web,
            admin,
        })
    }

    /// Spawns an accept loop per chat listener (plaintext, TLS, web).
    fn serve(self, shared: &Arc<Shared>, config: &Config) -> (Vec<JoinHandle<()>>, BoundAddrs) {
        let mut loops = Vec::new();
        let tcp = self.plain.as_ref().and_then(|l| l.local_addr().ok());
        let tls = self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
        let web = self.web.as_ref().and_then(|(l, _)| l.local_addr().ok());
        let web_tls = self.web.as_ref().is_some_and(|(_, a)| a.is_some());
        if let (Some(listener), Some(addr)) = (self.plain, tcp) {
            tracing::info!(%addr, "listening (plaintext)");
            let accept = accept_loop(shared.clone(), listener, Security::Plain);
            loops.push(tokio::spawn(accept));
        }
        if let (Some((listener, acceptor)), Some(addr)) = (self.tls, tls) {
            tracing::info!(%addr, "listening (TLS)");
            let accept = accept_loop(shared.clone(), listener, Security::Tls(acceptor));
            loops.push(tokio::spawn(accept));
        }
        if let (Some((listener, acceptor)), Some(addr)) = (self.web, web) {
            let scheme = if web_tls { "https" } else { "http" };
            tracing::info!(%addr, "listening (web): open {scheme}://{addr}/ in a browser");
            let origins = config.web.allowed_origins.clone();
            let server_names = config.web.server_names.clone();
            let shared = shared.clone();
            loops.push(tokio::spawn(async move {
                crate::transport::web::accept_loop(
                    shared,
                    listener,
                    acceptor,
                    &origins,
                    &server_names,
                )
                .await
            }));
        }
        let bound = BoundAddrs {
            tcp,
            tls,
            web,
            web_tls,
        };
        (loops, bound)
    }
}

/// The database and what runs on it: the message store, the id allocator
/// and the log writer.
struct Storage {
    database: Option<chatd_storage::Database>,
    ids: Arc<crate::message_ids::MessageIds>,
    history: Option<Arc<crate::history::History>>,
    log_writer: Option<JoinHandle<()>>,
}

impl Storage {
    /// One database for the history and every plugin that stores data;
    /// opened (and migrated) only when something needs it, so a guest-mode
    /// server without history needs no file.
    async fn open(
        config: &Config,
        registry: &PluginRegistry,
        metrics: Option<&Arc<Metrics>>,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Storage, StartError> {
        let database = if config.history.enabled || registry.needs_database(config) {
            let options = config.database_options();
            let db = chatd_storage::Database::open(&options).await?;
            tracing::info!(database = %db.name(), "database ready");
            Some(db)
        } else {
            None
        };
        let store = database.as_ref().map(|db| {
            let store: Arc<dyn crate::history::MessageStore> =
                Arc::new(crate::history::sql::SqlStore::new(db.clone()));
            match metrics {
                Some(metrics) => Arc::new(TimedStore::new(store, metrics)) as _,
                None => store,
            }
        });
        let ids = match &store {
            Some(store) => crate::history::message_ids(store.clone(), shutdown.clone()).await?,
            None => Arc::new(crate::message_ids::MessageIds::unpersisted(0)),
        };
        let (history, log_writer) = match (store, config.history.enabled) {
            (Some(store), true) => {
                let (history, writer) =
                    crate::history::History::start(store, config.history.clone(), shutdown.clone());
                (Some(history), Some(writer))
            }
            _ => (None, None),
        };
        Ok(Storage {
            database,
            ids,
            history,
            log_writer,
        })
    }
}

/// What the admin listener serves from.
struct AdminParts {
    listener: TcpListener,
    metrics: Arc<Metrics>,
    database: Option<chatd_storage::Database>,
    stop: tokio_util::sync::CancellationToken,
}

/// Serves `/metrics`, `/healthz` and `/readyz`; returns its address.
fn serve_admin(
    shared: &Arc<Shared>,
    config: &Config,
    bound: &BoundAddrs,
    parts: AdminParts,
) -> SocketAddr {
    let addr = parts
        .listener
        .local_addr()
        .expect("a bound listener has an address");
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the admin listener is not on loopback: anyone who reaches it reads the metrics; firewall it");
    }
    tracing::info!(%addr, "listening (admin): http://{addr}/metrics, /healthz, /readyz");
    let listeners = [("tcp", bound.tcp), ("tls", bound.tls), ("web", bound.web)]
        .into_iter()
        .filter_map(|(kind, addr)| Some((kind, addr?)))
        .collect();
    let admin = Arc::new(crate::admin::Admin {
        shared: shared.clone(),
        metrics: parts.metrics,
        database: parts.database,
        listeners,
        plugins_enabled: config.enabled_plugins().map(|p| p.name.clone()).collect(),
    });
    // Not among the accept loops: it answers (`/readyz` 503) while shutdown
    // waits for the sessions, and stops once everything else has.
    tokio::spawn(crate::admin::serve(admin, parts.listener, parts.stop));
    addr
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, StartError> {
    // Bound through socket2 for a deep accept backlog under connection storms.
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .and_then(|s| {
        s.set_reuseaddr(true)?;
        s.bind(addr)?;
        Ok(s)
    })
    .map_err(|error| StartError::Bind { addr, what, error })?;
    socket
        .listen(4096)
        .map_err(|error| StartError::Bind { addr, what, error })
}

async fn run_until_shutdown(
    shared: Arc<Shared>,
    loops: Vec<JoinHandle<()>>,
    database: Option<chatd_storage::Database>,
    log_writer: Option<JoinHandle<()>>,
    data_lock: crate::data_dir::DataDirLock,
    admin_stop: tokio_util::sync::CancellationToken,
) {
    shared.shutdown.cancelled().await;
    tracing::info!(
        sessions = shared.connection_count(),
        "shutting down: no new connections, telling clients, flushing queues"
    );
    for l in loops {
        let _ = l.await;
    }
    shared.tracker.close();
    // Sessions see the cancelled token, say `bye`, and flush within LINGER;
    // the timeout bounds the whole.
    if tokio::time::timeout(shared.limits().shutdown_timeout(), shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = shared.tracker.len(),
            "shutdown timeout: some connections did not finish flushing"
        );
    }
    if let Some(cluster) = &shared.cluster {
        cluster.leave().await;
    }
    shared.pipeline.shutdown().await;
    // Every session has ended: store what is still queued before closing.
    if let Some(history) = &shared.history {
        history.flush().await;
        history.store.close().await;
    }
    drop(log_writer);
    if let Some(db) = database {
        db.close().await;
    }
    drop(data_lock);
    admin_stop.cancel();
    tracing::info!("shut down");
}

/// Clustered: the files plugin starts its transfer ids with this node's
/// digits, so that another node knows where a transfer's bytes are
/// (`cluster::relay::transfer_prefix`).
fn name_transfers_after_the_node(config: &mut Config) {
    let Some(cluster) = &config.cluster else {
        return;
    };
    let prefix = crate::cluster::relay::transfer_prefix(&cluster.node);
    for entry in config.plugins.iter_mut().filter(|p| p.name == "files") {
        entry
            .config
            .get_or_insert_with(Default::default)
            .insert("id_prefix".into(), toml::Value::String(prefix.clone()));
    }
}
