//! What the admin listener's `/metrics` exports (docs/metrics.md).
//!
//! Every handle the server touches per frame or per message is resolved
//! once, when the server starts, and is an atomic: counting never takes a
//! lock shared by sessions (prometheus-client's `Family::get_or_create`
//! takes a read lock and hashes the labels, so it is only used here, or for
//! rare events such as errors). A delivery is not counted one by one: a
//! message adds its number of recipients once. Values that describe the
//! present (sessions by state, the fullest queue, the process) are read at
//! scrape time instead of being kept up to date on the hot path.

mod histogram;
mod process;

use std::borrow::Cow;
use std::collections::HashMap;

use chat_api::{ErrorCode, Transport};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::AtomicHistogram;

use crate::hub::Hub;

type Labels = [(&'static str, Cow<'static, str>); 1];
type HistogramFamily = Family<Labels, AtomicHistogram, fn() -> AtomicHistogram>;

fn label(key: &'static str, value: impl Into<Cow<'static, str>>) -> Labels {
    [(key, value.into())]
}

/// Frame types a client may send that get their own label; any other
/// `type` is counted as `other` (clients choose the string, so it must not
/// become a label) and unparsable lines as `invalid`.
const FRAME_TYPES: &[&str] = &[
    // core
    "hello",
    "nick",
    "join",
    "part",
    "say",
    "msg",
    "broadcast",
    "history",
    "read",
    "unread",
    "users",
    "rooms",
    "ping",
    "quit",
    // auth
    "register",
    "login",
    "logout",
    "passwd",
    "resume",
    "whoami",
    // rooms
    "room_create",
    "room_info",
    "room_invite",
    "room_revoke",
    "room_accept",
    "room_decline",
    "room_invitations",
    "room_topic",
    "room_kick",
    "room_ban",
    "room_unban",
    "room_promote",
    "room_demote",
    "room_transfer",
    "room_delete",
    "room_leave",
    // files
    "file_offer",
    "file_chunk",
    "file_resume",
    "file_cancel",
    "file_get",
    "file_received",
    "file_decline",
    "file_list",
];

/// How a chat message was addressed.
#[derive(Debug, Clone, Copy)]
pub enum Routed {
    Room = 0,
    Direct = 1,
    Broadcast = 2,
}

/// A chat listener, for what happens before a connection has a session.
#[derive(Debug, Clone, Copy)]
pub enum Listener {
    Tcp = 0,
    Tls = 1,
    Web = 2,
}

/// How a session came to be logged in.
#[derive(Debug, Clone, Copy)]
pub enum LoginKind {
    Login = 0,
    Register = 1,
    Resume = 2,
}

impl LoginKind {
    pub fn of(frame_type: &str) -> Option<LoginKind> {
        match frame_type {
            "login" => Some(LoginKind::Login),
            "register" => Some(LoginKind::Register),
            "resume" => Some(LoginKind::Resume),
            _ => None,
        }
    }
}

/// One plugin's call counter and latency, by its place in the pipeline.
#[derive(Debug, Clone)]
pub struct PluginCalls {
    pub calls: Counter,
    pub latency: AtomicHistogram,
}

/// The server's metrics: pre-resolved handles, shared through an `Arc`.
pub struct Metrics {
    registry: Registry,
    accepted: [Counter; 3],
    open: [Gauge; 3],
    refused: [Counter; 3],
    /// For the TLS and the web listener.
    tls_failures: [Counter; 2],
    sessions: [Gauge; 3],
    frames: HashMap<&'static str, Counter>,
    frames_other: Counter,
    frames_invalid: Counter,
    messages: [Counter; 3],
    deliveries: [Counter; 3],
    errors: Family<Labels, Counter>,
    disconnects: Family<Labels, Counter>,
    queue_peak: AtomicHistogram,
    queue_fullest: Gauge,
    plugin_calls: Family<Labels, Counter>,
    plugin_latency: HistogramFamily,
    logins: [Counter; 3],
    login_failures: [Counter; 3],
    upload_bytes: Counter,
    db_latency: HistogramFamily,
}

fn transport_index(transport: Transport) -> usize {
    match transport {
        Transport::Tcp => 0,
        Transport::Tls => 1,
        // WebSocket. `Transport` may grow (it is non-exhaustive for
        // plugins), but chatd creates every session's transport itself.
        _ => 2,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered with its name and help text. One long list
    /// on purpose: it is the exposition's table of contents, read (and
    /// checked against docs/metrics.md) top to bottom.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let r = &mut registry;
        let transports = ["tcp", "tls", "websocket"];
        let accepted = Family::<Labels, Counter>::default();
        let open = Family::<Labels, Gauge>::default();
        r.register(
            "chatd_connections_accepted",
            "Connections accepted (after the TLS handshake or WebSocket upgrade), by transport",
            accepted.clone(),
        );
        r.register(
            "chatd_connections_open",
            "Connections open now, by transport",
            open.clone(),
        );
        let refused = Family::<Labels, Counter>::default();
        r.register("chatd_connections_refused", "Connections refused because the server held limits.max_connections (`bye server_full`, or 503 on the web listener), by listener", refused.clone());
        let tls_failures = Family::<Labels, Counter>::default();
        r.register(
            "chatd_tls_handshake_failures",
            "TLS handshakes that failed or timed out, by listener (tls, or web with web.tls)",
            tls_failures.clone(),
        );
        let sessions = Family::<Labels, Gauge>::default();
        r.register("chatd_sessions", "Sessions past `hello` now, by state: greeted (no nickname yet), named (a nickname, no account), logged_in (an account)", sessions.clone());
        let frames = Family::<Labels, Counter>::default();
        r.register("chatd_frames_received", "Frames received from clients, by type (`other` for a type chatd does not know, `invalid` for a line that is not a frame)", frames.clone());
        let messages = Family::<Labels, Counter>::default();
        let deliveries = Family::<Labels, Counter>::default();
        r.register(
            "chatd_messages_routed",
            "Chat messages accepted for routing, by kind (room, direct, broadcast)",
            messages.clone(),
        );
        r.register(
            "chatd_deliveries",
            "Copies of chat messages queued for recipients, by message kind",
            deliveries.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        r.register(
            "chatd_errors_sent",
            "`error` frames sent by the core and the pipeline, by code",
            errors.clone(),
        );
        let disconnects = Family::<Labels, Counter>::default();
        r.register(
            "chatd_disconnects",
            "Sessions ended, by the code of their `bye` (slow_consumer, quit, kicked, ...)",
            disconnects.clone(),
        );
        let queue_peak = AtomicHistogram::counts();
        r.register(
            "chatd_outbound_queue_peak_frames",
            "The most frames each ended session had waiting in its outbound queue at once",
            queue_peak.clone(),
        );
        let queue_fullest = Gauge::default();
        r.register(
            "chatd_outbound_queue_fullest_frames",
            "Frames waiting in the fullest outbound queue now",
            queue_fullest.clone(),
        );
        let plugin_calls = Family::<Labels, Counter>::default();
        let plugin_latency = HistogramFamily::new_with_constructor(
            AtomicHistogram::latency as fn() -> AtomicHistogram,
        );
        r.register(
            "chatd_plugin_calls",
            "Frames passed to each plugin",
            plugin_calls.clone(),
        );
        r.register(
            "chatd_plugin_call_seconds",
            "Time each plugin took over a frame, in seconds",
            plugin_latency.clone(),
        );
        let logins = Family::<Labels, Counter>::default();
        let login_failures = Family::<Labels, Counter>::default();
        r.register(
            "chatd_logins",
            "Sessions that logged in, by frame (login, register, resume)",
            logins.clone(),
        );
        r.register("chatd_login_failures", "login, register and resume frames that did not log the session in (wrong password, throttled, taken name, ...)", login_failures.clone());
        let upload_bytes = Counter::default();
        r.register(
            "chatd_file_upload_bytes",
            "File bytes accepted by the files plugin (decoded file_chunk data)",
            upload_bytes.clone(),
        );
        let db_latency = HistogramFamily::new_with_constructor(
            AtomicHistogram::latency as fn() -> AtomicHistogram,
        );
        r.register("chatd_database_query_seconds", "Time of the message log's database operations, by operation (append is the log writer's batch commit), in seconds", db_latency.clone());
        r.register_collector(Box::new(process::ProcessCollector));

        let by = |family: &Family<Labels, Counter>, key, values: [&'static str; 3]| {
            values.map(|v| family.get_or_create_owned(&label(key, v)))
        };
        let listeners = ["tcp", "tls", "web"];
        let kinds = ["room", "direct", "broadcast"];
        let login_kinds = ["login", "register", "resume"];
        let mut frame_counters: HashMap<&'static str, Counter> = FRAME_TYPES
            .iter()
            .map(|&t| (t, frames.get_or_create_owned(&label("type", t))))
            .collect();
        frame_counters.shrink_to_fit();
        Metrics {
            accepted: by(&accepted, "transport", transports),
            open: transports.map(|t| open.get_or_create_owned(&label("transport", t))),
            refused: by(&refused, "listener", listeners),
            tls_failures: ["tls", "web"]
                .map(|l| tls_failures.get_or_create_owned(&label("listener", l))),
            sessions: ["greeted", "named", "logged_in"]
                .map(|s| sessions.get_or_create_owned(&label("state", s))),
            frames: frame_counters,
            frames_other: frames.get_or_create_owned(&label("type", "other")),
            frames_invalid: frames.get_or_create_owned(&label("type", "invalid")),
            messages: by(&messages, "kind", kinds),
            deliveries: by(&deliveries, "kind", kinds),
            errors,
            disconnects,
            queue_peak,
            queue_fullest,
            plugin_calls,
            plugin_latency,
            logins: by(&logins, "frame", login_kinds),
            login_failures: by(&login_failures, "frame", login_kinds),
            upload_bytes,
            db_latency,
            registry,
        }
    }

    /// A connection passed its transport's handshake.
    pub fn connection_opened(&self, transport: Transport) {
        self.accepted[transport_index(transport)].inc();
        self.open[transport_index(transport)].inc();
    }

    /// A connection was refused at `limits.max_connections`.
    pub fn connection_refused(&self, listener: Listener) {
        self.refused[listener as usize].inc();
    }

    pub fn tls_handshake_failed(&self, listener: Listener) {
        let index = match listener {
            Listener::Tcp => return,
            Listener::Tls => 0,
            Listener::Web => 1,
        };
        self.tls_failures[index].inc();
    }

    pub fn connection_closed(&self, transport: Transport, code: &ErrorCode, queue_peak: usize) {
        self.open[transport_index(transport)].dec();
        self.disconnects
            .get_or_create(&label("code", code.0.clone()))
            .inc();
        self.queue_peak.observe(queue_peak as u64);
    }

    /// A frame arrived; `frame_type` is `None` for a line that is not one.
    pub fn frame_received(&self, frame_type: Option<&str>) {
        match frame_type {
            None => self.frames_invalid.inc(),
            Some(t) => self.frames.get(t).unwrap_or(&self.frames_other).inc(),
        };
    }

    pub fn routed(&self, kind: Routed, recipients: usize) {
        self.messages[kind as usize].inc();
        self.deliveries[kind as usize].inc_by(recipients as u64);
    }

    pub fn error_sent(&self, code: &ErrorCode) {
        self.errors
            .get_or_create(&label("code", code.0.clone()))
            .inc();
    }

    pub fn login(&self, kind: LoginKind, succeeded: bool) {
        match succeeded {
            true => self.logins[kind as usize].inc(),
            false => self.login_failures[kind as usize].inc(),
        };
    }

    pub fn file_bytes_uploaded(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    /// The handles of the plugin called `name`, to keep in its stage.
    pub fn plugin(&self, name: &str) -> PluginCalls {
        let labels = label("plugin", name.to_string());
        PluginCalls {
            calls: self.plugin_calls.get_or_create_owned(&labels),
            latency: self.plugin_latency.get_or_create_owned(&labels),
        }
    }

    /// The latency histogram of one database operation.
    pub fn database_operation(&self, operation: &'static str) -> AtomicHistogram {
        self.db_latency
            .get_or_create_owned(&label("operation", operation))
    }

    /// The Prometheus text exposition of everything, as of now.
    pub fn render(&self, hub: &Hub) -> String {
        let mut states = [0i64; 3];
        let mut fullest = 0;
        hub.for_each_session(|peer| {
            let state = match peer.identity() {
                None => 0,
                Some(i) if i.account.is_none() => 1,
                Some(_) => 2,
            };
            states[state] += 1;
            fullest = fullest.max(peer.queued_frames());
        });
        for (gauge, n) in self.sessions.iter().zip(states) {
            gauge.set(n);
        }
        self.queue_fullest.set(fullest as i64);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
