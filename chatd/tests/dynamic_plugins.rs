//! Shared-library plugins, end to end: the plugin crates in `plugins/` are
//! built as real `cdylib`s, a real server loads them with libloading, and
//! real clients talk to it over TCP.
//!
//! The libraries are built once per test binary by a nested `cargo build`
//! into a target directory of their own (under `CARGO_TARGET_TMPDIR`): the
//! outer `cargo test` holds the lock on the main one. (A plugin built by
//! another compiler against an older chat-api is `plugin_abi_compat.rs`.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chat_api::{ClientFrame, ErrorCode, ServerFrame};
use chat_client::{Client, Received};
use chatd::{Config, RunningServer, StartError};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the plugin libraries (once) and returns the directory holding them.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("chatd lives in the workspace");
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-build");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--lib"])
            .args(["-p", "chatd-plugin-dice"])
            .args(["-p", "chatd-test-plugin-panicky"])
            .args(["-p", "chatd-test-plugin-bad-abi"])
            .args(["-p", "chatd-test-plugin-newer-minor"])
            .args(["-p", "chatd-test-plugin-no-entry"])
            .args(["-p", "chatd-test-plugin-observer"])
            .output()
            .expect("cargo can be run");
        assert!(
            output.status.success(),
            "building the plugin libraries failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target_dir.join("debug")
    })
}

/// The library a plugin crate builds to.
fn library(crate_name: &str) -> PathBuf {
    plugin_dir().join(chatd::dynamic::library_file_name(crate_name))
}

/// A `[[plugin]]` entry loading `path` under `name`, with a config table.
fn plugin_entry(name: &str, path: &Path, config: &str) -> String {
    let path = toml::Value::String(path.display().to_string());
    format!("[[plugin]]\nname = \"{name}\"\npath = {path}\n[plugin.config]\n{config}\n")
}

/// A configuration listening on a free loopback port with these plugins.
fn config(data_dir: &Path, plugins: &str) -> Config {
    let data_dir = toml::Value::String(data_dir.display().to_string());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data_dir}\n[limits]\nframes_per_second = 0\n{plugins}"
    );
    Config::parse(&text, "test.toml", None).expect("test configuration is valid")
}

async fn start(data_dir: &Path, plugins: &str) -> RunningServer {
    match chatd::start(config(data_dir, plugins)).await {
        Ok(server) => server,
        Err(error) => panic!("server did not start: {error}"),
    }
}

async fn start_error(data_dir: &Path, plugins: &str) -> String {
    match chatd::start(config(data_dir, plugins)).await {
        Ok(server) => {
            server.stop().await;
            panic!("the server started, but should have refused its plugins")
        }
        Err(error @ StartError::Pipeline(_)) => error.to_string(),
        Err(other) => panic!("failed for another reason than its plugins: {other}"),
    }
}

async fn connect(server: &RunningServer, nick: &str) -> Client {
    let addr = server.tcp_addr.expect("plaintext listener").to_string();
    Client::connect_as(&addr, nick).await.expect("connects")
}

async fn join(client: &mut Client, room: &str) {
    client
        .request_ok(&ClientFrame::Join { room: room.into() })
        .await
        .expect("joins");
}

fn error_code(frame: &Received) -> Option<&ErrorCode> {
    match frame {
        Received::Core(ServerFrame::Error { code, .. }) => Some(code),
        _ => None,
    }
}

fn error_message(frame: &Received) -> &str {
    match frame {
        Received::Core(ServerFrame::Error { message, .. }) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A message in `room` whose text satisfies `pred`.
fn room_message(frame: &Received, room: &str, pred: impl Fn(&str) -> bool) -> bool {
    matches!(frame, Received::Core(ServerFrame::Message(m))
        if m.room.as_deref() == Some(room) && pred(&m.text))
}

#[tokio::test]
async fn dice_plugin_rolls_for_the_whole_room() {
    let data = tempfile::tempdir().unwrap();
    let dice = plugin_entry("dice", &library("chatd-plugin-dice"), "max_dice = 5");
    let server = start(data.path(), &dice).await;

    let mut alice = connect(&server, "alice").await;
    let mut bob = connect(&server, "bob").await;
    assert!(alice.welcome.plugins.contains(&"dice".to_string()));
    assert!(alice.welcome.features.contains(&"dice".to_string()));
    join(&mut alice, "#games").await;
    join(&mut bob, "#games").await;

    // One-sided dice make the result known: 3 × 1 + 2.
    let reply = alice
        .request(&ClientFrame::Say {
            room: "#games".into(),
            text: "/roll 3d1+2 for initiative".into(),
        })
        .await
        .unwrap();
    let expected = "🎲 3d1+2 for initiative: 1 + 1 + 1 + 2 = 5";
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Sent { text: Some(t), .. }) if t == expected),
        "alice is told what was delivered: {reply:?}"
    );
    bob.expect(TIMEOUT, |f| room_message(f, "#games", |t| t == expected))
        .await
        .expect("bob sees alice's roll");

    // Ordinary chat passes through untouched.
    alice
        .request_ok(&ClientFrame::Say {
            room: "#games".into(),
            text: "/rolling is not a command".into(),
        })
        .await
        .unwrap();
    bob.expect(TIMEOUT, |f| {
        room_message(f, "#games", |t| t == "/rolling is not a command")
    })
    .await
    .unwrap();

    // Too many dice: refused with the plugin's own code, nothing delivered.
    let reply = alice
        .request(&ClientFrame::Say {
            room: "#games".into(),
            text: "/roll 9d6".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        error_code(&reply),
        Some(&ErrorCode::custom("invalid_dice")),
        "{reply:?}"
    );
    assert!(error_message(&reply).contains("1 to 5 dice"), "{reply:?}");
    let reply = alice
        .request(&ClientFrame::Say {
            room: "#games".into(),
            text: "/roll banana".into(),
        })
        .await
        .unwrap();
    assert!(error_message(&reply).contains("NdS+M"), "{reply:?}");

    // A private roll: a plugin frame answered to the sender only.
    let reply = alice
        .request_json(&json!({"type": "roll", "dice": "2d6"}))
        .await
        .unwrap();
    let Received::Custom { kind, fields } = &reply else {
        panic!("expected `rolled`, got {reply:?}")
    };
    assert_eq!(kind, "rolled");
    let rolls: Vec<i64> = fields["rolls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_i64().unwrap())
        .collect();
    assert_eq!(rolls.len(), 2);
    assert!(rolls.iter().all(|r| (1..=6).contains(r)), "{rolls:?}");
    assert_eq!(fields["total"], Value::from(rolls.iter().sum::<i64>()));

    let seen_by_bob = bob.sync().await.unwrap();
    assert!(
        seen_by_bob
            .iter()
            .all(|f| !matches!(f, Received::Core(ServerFrame::Message(_)))
                && !matches!(f, Received::Custom { .. })),
        "bob saw a refused or private roll: {seen_by_bob:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_plugin_config_stops_start_naming_the_plugin() {
    let data = tempfile::tempdir().unwrap();
    let path = library("chatd-plugin-dice");
    let error = start_error(data.path(), &plugin_entry("dice", &path, "max_dise = 3")).await;
    assert!(
        error.contains("'dice'") && error.contains("max_dise"),
        "{error}"
    );
    let error = start_error(data.path(), &plugin_entry("dice", &path, "max_dice = 0")).await;
    assert!(
        error.contains("'dice'") && error.contains("max_dice must be"),
        "{error}"
    );
}

#[tokio::test]
async fn library_of_a_newer_abi_major_is_refused_before_it_runs() {
    let data = tempfile::tempdir().unwrap();
    let path = library("chatd-test-plugin-bad-abi");
    // The fixture's constructor panics if called; the refusal comes first.
    let error = start_error(data.path(), &plugin_entry("bad-abi", &path, "")).await;
    let ours = chat_api::plugin_abi::ABI_VERSION;
    for part in [
        "plugin 'bad-abi'",
        &path.display().to_string(),
        "speaks plugin ABI 2.0",
        &format!("this chatd {} speaks plugin ABI {ours}", env!("CARGO_PKG_VERSION")),
        &format!("(loads 1.0 to {ours})"),
        "upgrade chatd to a release that speaks plugin ABI 2.x, or rebuild the plugin against chat-api 1.x",
    ] {
        assert!(error.contains(part), "missing {part:?} in: {error}");
    }
}

#[tokio::test]
async fn library_of_a_newer_abi_minor_is_refused_before_it_runs() {
    let data = tempfile::tempdir().unwrap();
    let path = library("chatd-test-plugin-newer-minor");
    let error = start_error(data.path(), &plugin_entry("newer-minor", &path, "")).await;
    let ours = chat_api::plugin_abi::ABI_VERSION;
    let theirs = format!("{}.{}", ours.major, ours.minor + 1);
    for part in [
        "plugin 'newer-minor'",
        &format!("speaks plugin ABI {theirs}; this chatd"),
        &format!("speaks plugin ABI {ours}"),
        &format!("upgrade chatd to a release that speaks plugin ABI {theirs} or later, or rebuild the plugin against a chat-api of ABI {ours} or older"),
    ] {
        assert!(error.contains(part), "missing {part:?} in: {error}");
    }
}

#[tokio::test]
async fn missing_library_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let path = data
        .path()
        .join(chatd::dynamic::library_file_name("chatd-plugin-nowhere"));
    let error = start_error(data.path(), &plugin_entry("nowhere", &path, "")).await;
    assert!(error.contains("plugin 'nowhere'"), "{error}");
    assert!(
        error.contains("does not exist") && error.contains(&path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn library_without_the_entry_symbol_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let path = library("chatd-test-plugin-no-entry");
    let error = start_error(data.path(), &plugin_entry("no-entry", &path, "")).await;
    assert!(error.contains("plugin 'no-entry'"), "{error}");
    assert!(
        error.contains("is not a chatd plugin") && error.contains("chatd_plugin_declaration"),
        "{error}"
    );
}

#[tokio::test]
async fn library_under_another_name_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let path = library("chatd-plugin-dice");
    let error = start_error(data.path(), &plugin_entry("dicey", &path, "")).await;
    assert!(
        error.contains("is the plugin 'dice', not 'dicey'"),
        "{error}"
    );
}

#[tokio::test]
async fn plugin_panicking_while_starting_stops_start_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let path = library("chatd-test-plugin-panicky");
    let error = start_error(
        data.path(),
        &plugin_entry("panicky", &path, "panic_on_start = true"),
    )
    .await;
    assert!(error.contains("'panicky'"), "{error}");
    assert!(
        error.contains("panicked while starting: asked to panic on start"),
        "{error}"
    );
}

#[tokio::test]
async fn panicking_plugin_leaves_the_server_serving_everyone() {
    let logs = LogCapture::install();
    let data = tempfile::tempdir().unwrap();
    let plugins = format!(
        "{}{}",
        plugin_entry(
            "panicky",
            &library("chatd-test-plugin-panicky"),
            "session_end_panic = \"boom-session-end-7f3a\""
        ),
        plugin_entry("dice", &library("chatd-plugin-dice"), "")
    );
    let server = start(data.path(), &plugins).await;
    let mut alice = connect(&server, "alice").await;
    let mut bob = connect(&server, "bob").await;
    join(&mut alice, "#lobby").await;
    join(&mut bob, "#lobby").await;

    // The library's panic reports go to chatd's log, with the location.
    let reply = alice
        .request_json(&json!({"type": "boom", "when": "poll", "marker": "boom-report-7f3a"}))
        .await
        .unwrap();
    assert_eq!(error_code(&reply), Some(&ErrorCode::INTERNAL), "{reply:?}");
    logs.wait_for(|event| {
        event.contains("panicked at plugins/testing/panicky/src/lib.rs")
            && event.contains("boom-report-7f3a")
            && event.contains("plugin=\"panicky\"")
    })
    .await
    .expect("the panic was reported in chatd's log with its location");

    for (when, marker) in [
        ("call", "boom-call-7f3a"),
        ("poll", "boom-poll-7f3a"),
        ("later", "boom-later-7f3a"),
        ("error", "boom-error-7f3a"),
    ] {
        let reply = alice
            .request_json(&json!({"type": "boom", "when": when, "marker": marker}))
            .await
            .unwrap_or_else(|e| panic!("no reply after a `{when}` failure: {e}"));
        assert_eq!(
            error_code(&reply),
            Some(&ErrorCode::INTERNAL),
            "{when}: {reply:?}"
        );
        assert!(
            error_message(&reply).contains("'panicky' plugin failed"),
            "{reply:?}"
        );
        logs.wait_for(|event| event.contains("panicky") && event.contains(marker))
            .await
            .unwrap_or_else(|| {
                panic!("the `{when}` failure was not logged with the plugin's name")
            });

        // The same session goes on, through the plugins after it too.
        alice
            .request_ok(&ClientFrame::Say {
                room: "#lobby".into(),
                text: format!("still here after {when}"),
            })
            .await
            .unwrap();
        bob.expect(TIMEOUT, |f| {
            room_message(f, "#lobby", |t| t == format!("still here after {when}"))
        })
        .await
        .unwrap();
    }

    // Tasks the plugin hands to chatd's runtime are contained too.
    for (when, marker) in [
        ("spawn", "boom-spawn-7f3a"),
        ("blocking", "boom-blocking-7f3a"),
    ] {
        let reply = alice
            .request_json(&json!({"type": "boom", "when": when, "marker": marker}))
            .await
            .unwrap();
        assert!(
            matches!(reply, Received::Core(ServerFrame::Ok { .. })),
            "{when}: {reply:?}"
        );
        logs.wait_for(|event| event.contains("panicky") && event.contains(marker))
            .await
            .unwrap_or_else(|| {
                panic!("the panic in `{when}` was not logged with the plugin's name")
            });
    }

    // Everyone is still served, and newcomers are welcome.
    let mut carol = connect(&server, "carol").await;
    join(&mut carol, "#lobby").await;
    bob.request_ok(&ClientFrame::Say {
        room: "#lobby".into(),
        text: "/roll 1d1".into(),
    })
    .await
    .unwrap();
    carol
        .expect(TIMEOUT, |f| room_message(f, "#lobby", |t| t == "🎲 1d1: 1"))
        .await
        .unwrap();
    alice
        .expect(TIMEOUT, |f| room_message(f, "#lobby", |t| t == "🎲 1d1: 1"))
        .await
        .unwrap();
    assert_eq!(server.connection_count(), 3);

    // A panic when a session ends (nothing to reply to) is logged too.
    carol
        .writer
        .send(None, &ClientFrame::Quit { reason: None })
        .await
        .unwrap();
    logs.wait_for(|event| {
        event.contains("panicky")
            && event.contains("panicked in on_session_end: boom-session-end-7f3a")
    })
    .await
    .expect("the panic at session end was logged with the plugin's name");
    alice
        .request_ok(&ClientFrame::Say {
            room: "#lobby".into(),
            text: "carol left, we stay".into(),
        })
        .await
        .unwrap();
    bob.expect(TIMEOUT, |f| {
        room_message(f, "#lobby", |t| t == "carol left, we stay")
    })
    .await
    .unwrap();
    server.stop().await;
}

/// The server's log events, captured from `tracing`, so a test can wait for
/// an event instead of sleeping.
struct LogCapture {
    /// One entry per event (the formatter writes each event at once); an
    /// event may span lines (a backtrace).
    events: Mutex<Vec<String>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl LogCapture {
    /// Installs the capture as this test binary's subscriber (once).
    fn install() -> Arc<LogCapture> {
        static CAPTURE: OnceLock<Arc<LogCapture>> = OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = Arc::new(LogCapture {
                    events: Mutex::new(Vec::new()),
                    changed: tokio::sync::watch::Sender::new(0),
                });
                let writer = capture.clone();
                tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_writer(move || LogWriter(writer.clone()))
                    .try_init()
                    .expect("no other subscriber in this test binary");
                capture
            })
            .clone()
    }

    /// Waits (up to the test timeout) for an event satisfying `pred`.
    async fn wait_for(&self, pred: impl Fn(&str) -> bool) -> Option<()> {
        let mut changed = self.changed.subscribe();
        let found = async {
            loop {
                let seen = self.events.lock().unwrap().iter().any(|e| pred(e));
                if seen {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(TIMEOUT, found).await.ok()
    }
}

struct LogWriter(Arc<LogCapture>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .events
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(bytes).into_owned());
        self.0.changed.send_modify(|n| *n += 1);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plugin frame with this `type`, as a JSON object.
fn custom<'a>(frame: &'a Received, kind: &str) -> Option<&'a serde_json::Map<String, Value>> {
    match frame {
        Received::Custom { kind: k, fields } if k == kind => Some(fields),
        _ => None,
    }
}

#[tokio::test]
async fn library_plugin_sees_delivered_messages_and_who_left() {
    // Both routes of a chat message: through the history log and without.
    for history in ["", "[history]\nenabled = false\n"] {
        let data = tempfile::tempdir().unwrap();
        let plugins = format!(
            "{}{history}",
            plugin_entry("observer", &library("chatd-test-plugin-observer"), "")
        );
        let server = start(data.path(), &plugins).await;
        let mut alice = connect(&server, "alice").await;
        let mut bob = connect(&server, "bob").await;
        join(&mut alice, "#Lobby").await;
        join(&mut bob, "#lobby").await;

        let say = ClientFrame::Say {
            room: "#lobby".into(),
            text: "hello bob".into(),
        };
        let reply = alice.request(&say).await.unwrap();
        let Received::Core(ServerFrame::Sent { msg_id, ts, .. }) = reply else {
            panic!("[{history}] expected sent, got {reply:?}");
        };
        let observed = alice
            .expect(TIMEOUT, |f| custom(f, "observed_delivery").is_some())
            .await
            .expect("on_delivered reported the message");
        let observed = custom(&observed, "observed_delivery").unwrap();
        assert_eq!(
            observed["msg_id"],
            json!(msg_id),
            "[{history}] {observed:?}"
        );
        assert_eq!(observed["ts"], json!(ts), "{observed:?}");
        assert_eq!(observed["from"], json!("alice"), "{observed:?}");
        assert_eq!(observed["kind"], json!("room"), "{observed:?}");
        // The room as the server spells it (its creator's spelling).
        assert_eq!(observed["target"], json!("#Lobby"), "{observed:?}");
        assert_eq!(observed["recipients"], json!(1), "{observed:?}");
        assert_eq!(observed["text"], json!("hello bob"), "{observed:?}");

        // A say the core refuses is not a delivery.
        let refused = ClientFrame::Say {
            room: "#elsewhere".into(),
            text: "anyone?".into(),
        };
        let reply = alice.request(&refused).await.unwrap();
        assert_eq!(
            error_code(&reply),
            Some(&ErrorCode::NOT_IN_ROOM),
            "{reply:?}"
        );
        let before_pong = alice.sync().await.unwrap();
        assert!(
            !before_pong
                .iter()
                .any(|f| custom(f, "observed_delivery").is_some()),
            "[{history}] a refused say reached on_delivered: {before_pong:?}"
        );

        // A direct message names its recipient.
        let reply = alice
            .request(&ClientFrame::Msg {
                to: "BOB".into(),
                text: "psst".into(),
            })
            .await
            .unwrap();
        let Received::Core(ServerFrame::Sent { msg_id, .. }) = reply else {
            panic!("expected sent, got {reply:?}");
        };
        let observed = alice
            .expect(TIMEOUT, |f| custom(f, "observed_delivery").is_some())
            .await
            .expect("on_delivered reported the direct message");
        let observed = custom(&observed, "observed_delivery").unwrap();
        assert_eq!(observed["msg_id"], json!(msg_id), "{observed:?}");
        assert_eq!(observed["kind"], json!("direct"), "{observed:?}");
        assert_eq!(observed["target"], json!("bob"), "{observed:?}");

        // on_session_end still knows who left.
        drop(bob);
        let ended = alice
            .expect(TIMEOUT, |f| custom(f, "observed_session_end").is_some())
            .await
            .expect("on_session_end reported the session");
        let ended = custom(&ended, "observed_session_end").unwrap();
        assert_eq!(ended["nick"], json!("bob"), "[{history}] {ended:?}");
        assert_eq!(ended["account"], Value::Null, "{ended:?}");
        server.stop().await;
    }
}

/// The guide's layout: the library copied into `plugins/` next to
/// `chatd.toml`, named by a path relative to that file, not to the working
/// directory.
#[tokio::test]
async fn library_in_plugins_next_to_the_config_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let file_name = chatd::dynamic::library_file_name("chatd-plugin-dice");
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        library("chatd-plugin-dice"),
        dir.path().join("plugins").join(&file_name),
    )
    .unwrap();
    let config_file = dir.path().join("chatd.toml");
    std::fs::write(
        &config_file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             [[plugin]]\nname = \"dice\"\npath = \"plugins/{file_name}\"\n"
        ),
    )
    .unwrap();
    assert_ne!(std::env::current_dir().unwrap(), dir.path());
    let config = Config::load(&config_file).expect("the configuration is valid");
    let server = match chatd::start(config).await {
        Ok(server) => server,
        Err(error) => panic!("server did not start: {error}"),
    };
    let alice = connect(&server, "alice").await;
    assert!(
        alice.welcome.plugins.contains(&"dice".to_string()),
        "{:?}",
        alice.welcome.plugins
    );
    server.stop().await;
}

/// A `kv` request to the observer fixture: its result, or the error.
async fn kv(
    client: &mut Client,
    op: &str,
    key: &str,
    value: &str,
) -> Result<Value, (ErrorCode, String)> {
    let reply = client
        .request_json(&json!({"type": "kv", "op": op, "key": key, "value": value}))
        .await
        .unwrap();
    match &reply {
        Received::Core(ServerFrame::Error { code, message, .. }) => {
            Err((code.clone(), message.clone()))
        }
        _ => Ok(custom(&reply, "kv").unwrap_or_else(|| panic!("{reply:?}"))["result"].clone()),
    }
}

/// Plugin ABI 1.1: a library plugin's key-value store, in chatd's database,
/// keeps what was acknowledged across a restart, within documented limits.
#[tokio::test]
async fn library_plugin_storage_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    // Frames up to 256 KiB (this line lands in `[limits]`), so that a value
    // over the store's limit reaches it.
    let observer = format!(
        "max_frame_bytes = 262144\n{}",
        plugin_entry("observer", &library("chatd-test-plugin-observer"), "")
    );
    let server = start(data.path(), &observer).await;
    let mut alice = connect(&server, "alice").await;
    assert_eq!(
        kv(&mut alice, "put", "seen/bob", "2026-12-06").await,
        Ok(json!(true))
    );
    assert_eq!(
        kv(&mut alice, "put", "seen/carol", "yesterday").await,
        Ok(json!(true))
    );
    assert_eq!(
        kv(&mut alice, "put", "seen/carol", "today").await,
        Ok(json!(true))
    );
    assert_eq!(kv(&mut alice, "put", "other", "x").await, Ok(json!(true)));
    server.stop().await;

    let server = start(data.path(), &observer).await;
    let mut alice = connect(&server, "alice").await;
    assert_eq!(
        kv(&mut alice, "get", "seen/bob", "").await,
        Ok(json!("2026-12-06"))
    );
    assert_eq!(
        kv(&mut alice, "get", "seen/carol", "").await,
        Ok(json!("today"))
    );
    assert_eq!(
        kv(&mut alice, "list", "seen/", "").await,
        Ok(json!(["seen/bob", "seen/carol"]))
    );
    assert_eq!(
        kv(&mut alice, "delete", "seen/bob", "").await,
        Ok(json!(true))
    );
    assert_eq!(
        kv(&mut alice, "delete", "seen/bob", "").await,
        Ok(json!(false))
    );
    assert_eq!(kv(&mut alice, "get", "seen/bob", "").await, Ok(Value::Null));

    // Limits are errors that say which, never truncation.
    let (code, message) = kv(&mut alice, "put", "big", &"x".repeat(64 * 1024 + 1))
        .await
        .unwrap_err();
    assert_eq!(code, ErrorCode::custom("value_too_large"), "{message}");
    assert!(
        message.contains("at most 65536 bytes, this one has 65537"),
        "{message}"
    );
    let (code, message) = kv(&mut alice, "put", "", "x").await.unwrap_err();
    assert_eq!(code, ErrorCode::custom("invalid_key"), "{message}");
    assert!(message.contains("1 to 256 bytes"), "{message}");
    assert_eq!(kv(&mut alice, "get", "big", "").await, Ok(Value::Null));
    server.stop().await;
}

/// The same store on PostgreSQL (`[database] url`): what a library plugin
/// put is there for the next server on the database.
#[tokio::test]
async fn library_plugin_storage_on_postgres_survives_a_restart() {
    let Some(pg) = chatd_testkit::postgres::shared().await else {
        return;
    };
    let url = toml::Value::String(pg.create_database().await);
    let observer = format!(
        "[database]\nurl = {url}\n{}",
        plugin_entry("observer", &library("chatd-test-plugin-observer"), "")
    );
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &observer).await;
    let mut alice = connect(&server, "alice").await;
    for (key, value) in [
        ("seen/bob", "monday"),
        ("seen/carol", "today"),
        ("other", "x"),
    ] {
        assert_eq!(kv(&mut alice, "put", key, value).await, Ok(json!(true)));
    }
    assert_eq!(
        kv(&mut alice, "put", "seen/bob", "tuesday").await,
        Ok(json!(true))
    );
    server.stop().await;

    // Another data directory: nothing local carries the values over.
    let elsewhere = tempfile::tempdir().unwrap();
    let server = start(elsewhere.path(), &observer).await;
    let mut alice = connect(&server, "alice").await;
    assert_eq!(
        kv(&mut alice, "get", "seen/bob", "").await,
        Ok(json!("tuesday"))
    );
    assert_eq!(
        kv(&mut alice, "list", "seen/", "").await,
        Ok(json!(["seen/bob", "seen/carol"]))
    );
    assert_eq!(kv(&mut alice, "delete", "other", "").await, Ok(json!(true)));
    assert_eq!(kv(&mut alice, "get", "other", "").await, Ok(Value::Null));
    server.stop().await;
}
