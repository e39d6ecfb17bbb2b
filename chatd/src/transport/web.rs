//! The web listener: serves the browser app embedded in the binary,
//! upgrades `/ws` to a WebSocket session (see [`super::websocket`]), and
//! keeps the app's resume token in an `HttpOnly` cookie (`/session`).
//!
//! HTTP comes from hyper (routes from axum), WebSocket framing from
//! tungstenite, which [`super::websocket`] drives on the socket itself once
//! `/ws` has answered `101`; this module only checks the upgrade request,
//! decides who may connect and what each path answers. The
//! accept loop mirrors [`super::tcp`]: one task per connection, the TLS
//! handshake inside that task, bounded by the handshake timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::shared::{ConnectionSlot, Shared};
use crate::transport::tcp::{accept_each, configure_socket};
use crate::transport::tls::TlsAcceptor;
use crate::transport::tls_stream::TlsStream;
use crate::transport::websocket::{run_session, WsSetup};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The page may run only its own scripts and styles, talk only to its own
/// origin, and be framed by nobody: injected markup can do nothing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob:; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The cookie holding the browser app's resume token.
pub const RESUME_COOKIE: &str = "chatd_resume";

/// How long the browser keeps the cookie: the server's default token
/// lifetime (`resume_token_days`, 30 days). The app sets it again after
/// every login and resume, and an expired token is refused by the server.
const RESUME_COOKIE_MAX_AGE: cookie::time::Duration = cookie::time::Duration::days(30);

/// Whether `text` has the form of a resume token: 256 bits in unpadded
/// base64url, 43 characters.
pub fn is_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One file of the app, embedded at build time.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: concat!("/", $path),
            content_type: $type,
            body: include_str!(concat!("../../web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the app consists of (no bundler: the browser loads the
/// modules as they are).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/main.js", JS),
    asset!("js/settings.js", JS),
    asset!("js/state.js", JS),
    asset!("js/state/model.js", JS),
    asset!("js/state/session.js", JS),
    asset!("js/state/conversations.js", JS),
    asset!("js/state/messages.js", JS),
    asset!("js/protocol.js", JS),
    asset!("js/connection.js", JS),
    asset!("js/commands.js", JS),
    asset!("js/features.js", JS),
    asset!("js/features/dice.js", JS),
    asset!("js/features/files.js", JS),
    asset!("js/features/rooms.js", JS),
    asset!("js/sha256.js", JS),
    asset!("js/view/dom.js", JS),
    asset!("js/view/connect.js", JS),
    asset!("js/view/sidebar.js", JS),
    asset!("js/view/messages.js", JS),
    asset!("js/view/members.js", JS),
    asset!("js/view/status.js", JS),
];

/// What the web handlers share.
struct WebState {
    shared: Arc<Shared>,
    /// Origins allowed besides the listener's own, lower-cased, no slash.
    allowed_origins: Vec<String>,
    /// `http` or `https`: the scheme of the listener's own origin.
    scheme: &'static str,
}

/// Serves the app and `/ws` on `listener` until shutdown.
pub async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    allowed_origins: &[String],
    server_names: &[String],
) {
    let server_names: Arc<[String]> = server_names
        .iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let state = Arc::new(WebState {
        shared: shared.clone(),
        allowed_origins: allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect(),
        scheme: if tls.is_some() { "https" } else { "http" },
    });
    let router = Router::new()
        .route("/ws", get(upgrade))
        .route("/session", post(session_create).delete(session_delete))
        .fallback(asset)
        .with_state(state);
    let serve_shared = shared.clone();
    accept_each(shared, listener, "web", move |stream, addr| {
        serve_connection(
            serve_shared.clone(),
            router.clone(),
            stream,
            addr,
            tls.clone(),
            server_names.clone(),
        )
    })
    .await
}

/// Whether a request's `Host` names this server: an IP address (what a
/// rebinding attack cannot use), `localhost`, or a configured name. A
/// request without `Host` (HTTP/1.0, not a browser) is let through.
fn host_allowed(server_names: &[String], headers: &HeaderMap) -> Result<(), String> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or("").trim();
    let name = match host.strip_prefix('[') {
        // An IPv6 literal, `[::1]:8080`.
        Some(rest) => {
            return if rest.contains(']') {
                Ok(())
            } else {
                Err(host.to_string())
            }
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let allowed = name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || server_names.contains(&name);
    if allowed {
        Ok(())
    } else {
        Err(name)
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    router: Router,
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    server_names: Arc<[String]>,
) {
    configure_socket(&stream, shared.limits().tcp_keepalive_secs);
    // Every web connection holds a slot, passed on to its WebSocket session
    // when it upgrades, so that `limits.max_connections` bounds both.
    let slot = shared
        .admit()
        .map(|slot| HeldSlot(Arc::new(Mutex::new(Some(slot)))));
    if slot.is_none() {
        if let Some(metrics) = &shared.metrics {
            metrics.connection_refused(crate::metrics::Listener::Web);
        }
        tracing::warn!(%addr, max = shared.limits().max_connections, "web connection over limits.max_connections: answering 503");
    }
    let timeout = shared.limits().handshake_timeout();
    match tls {
        None => serve_http(&shared, router, stream, addr, slot, server_names).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
            };
            match handshake {
                Ok(Ok(tls)) => serve_http(&shared, router, tls, addr, slot, server_names).await,
                Ok(Err(e)) => {
                    tls_failed(&shared);
                    tracing::info!(%addr, error = %e, "web TLS handshake failed")
                }
                Err(_) => {
                    tls_failed(&shared);
                    tracing::info!(%addr, "web TLS handshake timed out")
                }
            }
        }
    }
}

fn tls_failed(shared: &Shared) {
    if let Some(metrics) = &shared.metrics {
        metrics.tls_handshake_failed(crate::metrics::Listener::Web);
    }
}

/// A web connection's share of `limits.max_connections`; taken by the
/// WebSocket session if the connection upgrades, released when both are gone.
#[derive(Clone)]
struct HeldSlot(Arc<Mutex<Option<ConnectionSlot>>>);

impl HeldSlot {
    fn take(&self) -> Option<ConnectionSlot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Serves HTTP/1.1 on one connection until it closes, it is upgraded to a
/// WebSocket (the session then runs in its own task), or the server stops.
/// Without a slot (the server is full) every request gets 503, once.
async fn serve_http<IO>(
    shared: &Shared,
    router: Router,
    io: IO,
    addr: SocketAddr,
    slot: Option<HeldSlot>,
    server_names: Arc<[String]>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let full = slot.is_none();
    let max_connections = shared.limits().max_connections;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        if let Some(slot) = &slot {
            request.extensions_mut().insert(slot.clone());
        }
        let mut router = router.clone();
        let misdirected = host_allowed(&server_names, request.headers()).err();
        async move {
            if full {
                return Ok(server_full(max_connections));
            }
            if let Some(name) = misdirected {
                tracing::info!(%addr, host = %name, "web request for a host this server does not serve: 421");
                return Ok(plain_text(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "this chat server does not answer to the name {name:?}; \
                         the operator lists its names in [web] server_names in chatd.toml\n"
                    ),
                ));
            }
            tower::Service::call(&mut router, request).await
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(!full)
        .timer(TokioTimer::new())
        // A client that opens a connection and sends nothing is dropped.
        .header_read_timeout(shared.limits().handshake_timeout())
        .max_buf_size(shared.limits().max_frame_bytes.max(16 * 1024))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        _ = shared.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%addr, error = %e, "web connection ended with an error");
    }
}

/// `GET /ws`: checks the upgrade request, the origin and admission, answers
/// `101`, then hands the socket to a session.
async fn upgrade(
    State(state): State<Arc<WebState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(held): Extension<HeldSlot>,
    mut request: axum::extract::Request,
) -> Response {
    let headers = request.headers();
    let key = match websocket_key(headers) {
        Ok(key) => derive_accept_key(key.as_bytes()),
        Err(problem) => return plain_text(StatusCode::BAD_REQUEST, format!("{problem}\n")),
    };
    if let Err(refusal) = check_origin(&state, headers) {
        tracing::info!(%addr, origin = ?headers.get(header::ORIGIN), "WebSocket refused: origin not allowed");
        return plain_text(
            StatusCode::FORBIDDEN,
            format!(
                "WebSocket refused: pages from origin {:?} may not connect to this chat server. \
                 Open the chat at {}/ or ask the operator to add the origin to [web] allowed_origins in chatd.toml.\n",
                refusal.origin, refusal.own
            ),
        );
    }
    let Some(slot) = held.take() else {
        // An upgrade was already answered on this connection.
        return plain_text(
            StatusCode::BAD_REQUEST,
            "this connection has already been upgraded\n".into(),
        );
    };
    let setup = WsSetup {
        addr,
        encrypted: state.scheme == "https",
        // The app's resume token, for a `resume` frame without `token`.
        token: resume_cookie(headers),
        read_ahead: Bytes::new(),
    };
    if request
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_none()
    {
        return plain_text(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket (HTTP/1.1 is needed)\n".into(),
        );
    }
    let upgraded = hyper::upgrade::on(&mut request);
    let shared = state.shared.clone();
    // Tracked, so that shutdown waits for the session's goodbye; it ends
    // once the session has a task of its own.
    state.shared.tracker.spawn(async move {
        match upgraded.await {
            Ok(upgraded) => start_websocket(shared, slot, upgraded, setup),
            Err(e) => tracing::info!(%addr, error = %e, "WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, key)
        .body(Body::empty())
        .expect("a valid response")
}

/// The checks RFC 6455 (§4.2.1) asks of an upgrade request; its key, or
/// what is wrong.
fn websocket_key(headers: &HeaderMap) -> Result<&HeaderValue, &'static str> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has(header::CONNECTION, "upgrade") {
        return Err("this is the WebSocket endpoint: the request's Connection header must include 'upgrade'");
    }
    if !has(header::UPGRADE, "websocket") {
        return Err(
            "this is the WebSocket endpoint: the request's Upgrade header must be 'websocket'",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err("this server speaks WebSocket version 13: send Sec-WebSocket-Version: 13");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("the WebSocket upgrade request has no Sec-WebSocket-Key header")
}

/// Runs the session on the socket under the upgraded connection (TCP or
/// TLS), in a task of its own: the session holds the socket itself, not
/// the HTTP server's boxed wrapper of it.
fn start_websocket(
    shared: Arc<Shared>,
    slot: ConnectionSlot,
    upgraded: hyper::upgrade::Upgraded,
    mut setup: WsSetup,
) {
    let tracker = shared.tracker.clone();
    let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            setup.read_ahead = parts.read_buf;
            tracker.spawn(run_session(shared, slot, parts.io.into_inner(), setup));
            return;
        }
        Err(upgraded) => upgraded,
    };
    match upgraded.downcast::<TokioIo<TlsStream>>() {
        Ok(parts) => {
            setup.read_ahead = parts.read_buf;
            tracker.spawn(run_session(shared, slot, parts.io.into_inner(), setup));
        }
        Err(_) => {
            tracing::error!(addr = %setup.addr, "WebSocket upgrade of an unknown connection type; closing")
        }
    }
}

/// An origin [`check_origin`] refused, and the listener's own.
struct ForeignOrigin {
    origin: String,
    own: String,
}

/// Allows requests without `Origin` (not a browser, so no page can have
/// forged them), the listener's own origin, and the configured ones.
fn check_origin(state: &WebState, headers: &HeaderMap) -> Result<(), ForeignOrigin> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let own = format!("{}://{host}", state.scheme);
    if (!host.is_empty() && origin == own) || state.allowed_origins.contains(&origin) {
        return Ok(());
    }
    Err(ForeignOrigin { origin, own })
}

/// The resume token in the request's `chatd_resume` cookie, if it holds one.
fn resume_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == RESUME_COOKIE && is_token(c.value()))
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that stores `token` (or, with `None`, removes the
/// cookie): out of reach of page scripts and of other sites.
fn resume_set_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let max_age = match token {
        Some(_) => RESUME_COOKIE_MAX_AGE,
        None => cookie::time::Duration::ZERO,
    };
    let cookie = cookie::Cookie::build((RESUME_COOKIE, token.unwrap_or("")))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(max_age)
        .secure(secure)
        .build();
    // A token is base64url: the value is always a valid header.
    HeaderValue::from_str(&cookie.to_string()).expect("a cookie of token characters")
}

/// The refusal of a `/session` request from a foreign page, as `/ws` does.
fn session_refusal(state: &WebState, headers: &HeaderMap, addr: SocketAddr) -> Option<Response> {
    let refusal = check_origin(state, headers).err()?;
    tracing::info!(%addr, origin = ?headers.get(header::ORIGIN), "/session refused: origin not allowed");
    Some(plain_text(
        StatusCode::FORBIDDEN,
        format!(
            "refused: pages from origin {:?} may not keep a login on this chat server. \
             Open the chat at {}/ or ask the operator to add the origin to [web] allowed_origins in chatd.toml.\n",
            refusal.origin, refusal.own
        ),
    ))
}

/// `POST /session`: the body is the app's resume token (from `logged_in`),
/// kept in an `HttpOnly` cookie so that page scripts never hold it.
async fn session_create(
    State(state): State<Arc<WebState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = session_refusal(&state, &headers, addr) {
        return refusal;
    }
    let token = std::str::from_utf8(&body).unwrap_or("").trim();
    if !is_token(token) {
        return plain_text(
            StatusCode::BAD_REQUEST,
            "the body must be a resume token (43 base64url characters, from logged_in.resume_token)\n"
                .into(),
        );
    }
    session_reply(resume_set_cookie(Some(token), state.scheme == "https"))
}

/// `DELETE /session`: forgets the cookie (the app logged out).
async fn session_delete(
    State(state): State<Arc<WebState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = session_refusal(&state, &headers, addr) {
        return refusal;
    }
    session_reply(resume_set_cookie(None, state.scheme == "https"))
}

fn session_reply(cookie: HeaderValue) -> Response {
    let mut response = with_security_headers(StatusCode::NO_CONTENT.into_response());
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Any other path: a file of the app, or 404.
async fn asset(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain_text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served here\n".into(),
        );
    }
    let path = match uri.path() {
        "/" => "/index.html",
        path => path,
    };
    match ASSETS.iter().find(|a| a.path == path) {
        Some(asset) => with_security_headers(
            (
                [(header::CONTENT_TYPE, asset.content_type)],
                Body::from(asset.body),
            )
                .into_response(),
        ),
        None => plain_text(
            StatusCode::NOT_FOUND,
            format!("no such page: {path}; the chat app is at /\n"),
        ),
    }
}

fn server_full(max_connections: usize) -> Response {
    plain_text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the server holds its maximum of {max_connections} connections; try again later\n"),
    )
}

fn plain_text(status: StatusCode, body: String) -> Response {
    with_security_headers(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The app is embedded in the binary: a new chatd may bring a new app.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_cookies() {
        let token = "4nM0abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0";
        assert_eq!(token.len(), 43);
        assert!(is_token(token));
        assert!(!is_token(&token[1..]));
        assert!(!is_token(&format!("{token}A")));
        assert!(!is_token(&token.replace('_', "/")));
        assert!(!is_token(&token.replace('-', "=")));

        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=b; chatd_resume=short"),
        );
        assert_eq!(resume_cookie(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; chatd_resume={token}; y=2")).unwrap(),
        );
        assert_eq!(resume_cookie(&headers).as_deref(), Some(token));

        let set = resume_set_cookie(Some(token), false);
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("chatd_resume={token};")), "{set}");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
            assert!(
                set.split("; ").any(|a| a == attribute),
                "{attribute}: {set}"
            );
        }
        assert!(!set.contains("Secure"), "{set}");
        let set = resume_set_cookie(None, true);
        let set = set.to_str().unwrap();
        assert!(set.starts_with("chatd_resume=;"), "{set}");
        assert!(set.split("; ").any(|a| a == "Max-Age=0"), "{set}");
        assert!(set.split("; ").any(|a| a == "Secure"), "{set}");
    }

    #[test]
    fn origins() {
        use crate::config::is_valid_origin;
        assert!(is_valid_origin("http://127.0.0.1:8080"));
        assert!(is_valid_origin("https://chat.example.org"));
        assert!(!is_valid_origin("chat.example.org"));
        assert!(!is_valid_origin("https://chat.example.org/app"));
        assert!(!is_valid_origin("ftp://x"));
    }

    /// A module the browser cannot load stops the whole app: every relative
    /// import must name an embedded file.
    #[test]
    fn every_import_is_embedded() {
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let dir = &asset.path[..asset.path.rfind('/').unwrap()];
            for part in asset.body.split("from \"").skip(1) {
                let target = &part[..part.find('"').unwrap()];
                let mut path: Vec<&str> = dir.split('/').collect();
                for step in target.split('/') {
                    match step {
                        "." => {}
                        ".." => {
                            path.pop();
                        }
                        name => path.push(name),
                    }
                }
                let resolved = path.join("/");
                assert!(
                    ASSETS.iter().any(|a| a.path == resolved),
                    "{} imports {target} ({resolved}), which is not in ASSETS",
                    asset.path
                );
            }
        }
        let index = ASSETS.iter().find(|a| a.path == "/index.html").unwrap();
        let loads = index.body.split("src=\"").skip(1);
        for part in loads.chain(index.body.split("href=\"").skip(1)) {
            let target = &part[..part.find('"').unwrap()];
            if target.starts_with('/') {
                assert!(
                    ASSETS.iter().any(|a| a.path == target),
                    "index.html loads {target}, which is not in ASSETS"
                );
            }
        }
    }

    #[test]
    fn every_asset_is_referenced_once() {
        let mut paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
    }
}
