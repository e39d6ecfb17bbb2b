//! The admin listener (`[admin] listen`): plain HTTP for operators, never
//! the public web listener. `/metrics` (Prometheus text format), `/healthz`
//! (the process answers) and `/readyz` (it can serve: listeners accepting,
//! database reachable, plugins loaded). See docs/metrics.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::shared::Shared;

/// How long `/readyz` waits for the database before calling it unreachable.
pub const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin endpoints look at.
pub struct Admin {
    pub shared: Arc<Shared>,
    pub metrics: Arc<Metrics>,
    pub database: Option<chatd_storage::Database>,
    /// The chat listeners, by kind, as bound at start.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// The plugins the configuration enables, in order.
    pub plugins_enabled: Vec<String>,
}

/// Serves the admin endpoints until `stop` (the end of shutdown, so that
/// `/readyz` says 503 while the sessions are told and flushed).
pub async fn serve(admin: Arc<Admin>, listener: TcpListener, stop: CancellationToken) {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(admin);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the admin listener failed; /metrics and the health checks are unavailable");
    }
}

async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    // Reading /proc and walking every session is quick but synchronous.
    let rendered =
        tokio::task::spawn_blocking(move || admin.metrics.render(&admin.shared.hub)).await;
    match rendered {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the metrics: {e}\n"),
        ),
    }
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n".to_string())
}

async fn readyz(State(admin): State<Arc<Admin>>) -> Response {
    let checks = [
        ("listeners", listeners(&admin)),
        ("database", database(&admin).await),
        ("plugins", plugins(&admin)),
        ("cluster", cluster(&admin)),
    ];
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let mut body = String::from(if ready { "ready\n" } else { "not ready\n" });
    for (name, result) in &checks {
        match result {
            Ok(detail) => body.push_str(&format!("{name}: ok ({detail})\n")),
            Err(reason) => body.push_str(&format!("{name}: FAILED: {reason}\n")),
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    plain(status, body)
}

/// Clustered: whether NATS is reachable (this node serves only its own
/// users while it is not).
fn cluster(admin: &Admin) -> Result<String, String> {
    match &admin.shared.cluster {
        Some(cluster) => cluster.health(),
        None => Ok("single node".into()),
    }
}

/// Bound at start, they accept until shutdown begins.
fn listeners(admin: &Admin) -> Result<String, String> {
    if admin.shared.shutdown.is_cancelled() {
        return Err("shutting down: new connections are no longer accepted".into());
    }
    Ok(admin
        .listeners
        .iter()
        .map(|(kind, addr)| format!("{kind} {addr}"))
        .collect::<Vec<_>>()
        .join(", "))
}

async fn database(admin: &Admin) -> Result<String, String> {
    let Some(db) = &admin.database else {
        return Ok("none configured".into());
    };
    match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, db.probe()).await {
        Ok(Ok(())) => Ok(db.name().to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "database {}: no answer within {} ms",
            db.name(),
            DATABASE_PROBE_TIMEOUT.as_millis()
        )),
    }
}

fn plugins(admin: &Admin) -> Result<String, String> {
    let loaded = admin.shared.pipeline.names();
    if loaded != admin.plugins_enabled {
        return Err(format!(
            "loaded [{}], configured [{}]",
            loaded.join(", "),
            admin.plugins_enabled.join(", ")
        ));
    }
    Ok(format!("{} loaded: [{}]", loaded.len(), loaded.join(", ")))
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
