//! The accounts plugin end to end: a real server on 127.0.0.1:0 with a real
//! SQLite file in a temporary directory, real clients, and the real `chatd`
//! binary for the admin CLI.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, ConnectOptions, Received};
use chatd::Config;
use chatd_testkit::{Server, Setup, WAIT};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// Cheap hashing so that tests do not wait on argon2; one test uses the
/// OWASP defaults.
const CHEAP_ARGON2: &str = "[plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";

/// A data directory and configuration with the accounts plugin;
/// `server_config` goes in the `[server]` table, `auth_config` is appended
/// to the plugin's `[plugin.config]` table (it may open sub-tables such as
/// `[plugin.config.throttle]`).
fn auth_setup(server_config: &str, auth_config: &str) -> Setup {
    Setup::new(&format!(
        "{server_config}\n[[plugin]]\nname = \"auth\"\n[plugin.config]\nwatch_interval_ms = 50\n{auth_config}\n"
    ))
}

/// The `chatd user` command line beside a setup's server.
trait UserCli {
    /// Runs `chatd user ARGS` on this setup's config, with `stdin` piped in.
    async fn cli(&self, args: &[&str], stdin: &str) -> (bool, String, String);
}

impl UserCli for Setup {
    async fn cli(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatd"))
            .arg("--config")
            .arg(&self.config_path)
            .arg("user")
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chatd binary runs");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("chatd user finishes")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Connections to a server with accounts.
trait Accounts {
    async fn client(&self) -> Client;
    async fn logged_in(&self, name: &str, password: &str) -> Client;
}

impl Accounts for Server {
    async fn client(&self) -> Client {
        self.connect().await
    }

    async fn logged_in(&self, name: &str, password: &str) -> Client {
        let mut c = self.client().await;
        let reply = login(&mut c, name, password).await;
        assert_eq!(ok_nick(&reply), Some(name), "{reply:?}");
        c
    }
}

async fn register(c: &mut Client, name: &str, password: &str) -> Received {
    c.request_json(&json!({"type": "register", "user": name, "password": password}))
        .await
        .unwrap()
}

async fn login(c: &mut Client, name: &str, password: &str) -> Received {
    c.request_json(&json!({"type": "login", "user": name, "password": password}))
        .await
        .unwrap()
}

/// The error code of a reply, if it is an error.
fn code(r: &Received) -> Option<&str> {
    match r {
        Received::Core(ServerFrame::Error { code, .. }) => Some(code.as_str()),
        _ => None,
    }
}

fn message(r: &Received) -> &str {
    match r {
        Received::Core(ServerFrame::Error { message, .. }) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The nickname in a `logged_in` reply.
fn ok_nick(r: &Received) -> Option<&str> {
    match r {
        Received::Custom { kind, fields } if kind == "logged_in" => fields["nick"].as_str(),
        _ => None,
    }
}

/// An `ok` or `logged_in` reply.
fn is_ok(r: &Received) -> bool {
    matches!(r, Received::Core(ServerFrame::Ok { .. }))
        || matches!(r, Received::Custom { kind, .. } if kind == "logged_in")
}

/// Waits for the server to end the connection; returns the `bye` code.
async fn expect_bye(c: &mut Client) -> String {
    match c
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Bye { .. }))
        })
        .await
        .unwrap()
    {
        Received::Core(ServerFrame::Bye { code, .. }) => code.as_str().to_string(),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn register_login_wrong_password_unknown_user_and_duplicates() {
    let setup = auth_setup("", CHEAP_ARGON2);
    let server = setup.start().await;

    let mut alice = server.client().await;
    assert!(alice.welcome.auth_required);
    assert!(alice.welcome.features.contains(&"accounts".to_string()));
    let reply = register(&mut alice, "Alice", "correct horse").await;
    assert_eq!(ok_nick(&reply), Some("Alice"), "{reply:?}");
    // Registered sessions are logged in and can chat.
    alice
        .request_ok(&ClientFrame::Join {
            room: "#lobby".into(),
        })
        .await
        .unwrap();

    let mut other = server.client().await;
    let dup = register(&mut other, "alice", "another password").await;
    assert_eq!(code(&dup), Some("account_exists"), "{dup:?}");

    let wrong = login(&mut other, "alice", "wrong horse!").await;
    let unknown = login(&mut other, "nobody", "correct horse").await;
    assert_eq!(code(&wrong), Some("auth_failed"));
    assert_eq!(code(&unknown), Some("auth_failed"));
    assert_eq!(
        message(&wrong),
        message(&unknown),
        "no hint which one was wrong"
    );

    // Logging in again on another connection replaces the older session.
    let reply = login(&mut other, "ALICE", "correct horse").await;
    assert_eq!(
        ok_nick(&reply),
        Some("Alice"),
        "the registered spelling: {reply:?}"
    );
    assert_eq!(expect_bye(&mut alice).await, "kicked");
    let twice = login(&mut other, "alice", "correct horse").await;
    assert_eq!(code(&twice), Some("already_logged_in"));
    let who = other
        .request_json(&json!({"type": "whoami"}))
        .await
        .unwrap();
    let Received::Custom { kind, fields } = &who else {
        panic!("{who:?}")
    };
    assert_eq!(kind, "whoami");
    assert_eq!(fields["account"], json!("Alice"));
    assert_eq!(fields["admin"], json!(false));
    server.stop().await;
}

#[tokio::test]
async fn unauthenticated_sessions_can_only_log_in() {
    let setup = auth_setup("", CHEAP_ARGON2);
    let server = setup.start().await;
    let mut guest = server.client().await;
    for frame in [
        json!({"type": "nick", "nick": "mallory"}),
        json!({"type": "join", "room": "#lobby"}),
        json!({"type": "say", "room": "#lobby", "text": "hi"}),
        json!({"type": "msg", "to": "bob", "text": "hi"}),
        json!({"type": "users"}),
        json!({"type": "rooms"}),
        json!({"type": "broadcast", "text": "hi"}),
        json!({"type": "passwd", "old_password": "x", "new_password": "yyyyyyyyyy"}),
        json!({"type": "logout"}),
        json!({"type": "room_create", "room": "#x"}),
    ] {
        let reply = guest.request_json(&frame).await.unwrap();
        assert_eq!(code(&reply), Some("auth_required"), "{frame}: {reply:?}");
    }
    // Liveness still works.
    let pong = guest
        .request(&ClientFrame::Ping { token: None })
        .await
        .unwrap();
    assert!(matches!(pong, Received::Core(ServerFrame::Pong { .. })));

    // After logging in the nickname is the account name and stays so.
    register(&mut guest, "bob", "bobs password").await;
    let nick = guest
        .request(&ClientFrame::Nick {
            nick: "robert".into(),
        })
        .await
        .unwrap();
    assert_eq!(code(&nick), Some("forbidden"), "{nick:?}");
    let users = guest
        .request(&ClientFrame::Users { room: None })
        .await
        .unwrap();
    assert!(
        matches!(&users, Received::Core(ServerFrame::Users { users, .. }) if users == &["bob"])
    );

    // Logging out returns to the unauthenticated state.
    assert!(is_ok(
        &guest
            .request_json(&json!({"type": "logout"}))
            .await
            .unwrap()
    ));
    let join = guest
        .request(&ClientFrame::Join { room: "#a".into() })
        .await
        .unwrap();
    assert_eq!(code(&join), Some("auth_required"));
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_leaves_the_database_intact() {
    let setup = auth_setup("", CHEAP_ARGON2);
    let server = setup.start().await;
    let mut c = server.client().await;
    let long_name = "n".repeat(33);
    let long_password = "p".repeat(1025);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"type": "register", "user": "x'; DROP TABLE accounts; --", "password": "long enough"}),
            "invalid_nick",
        ),
        (
            json!({"type": "register", "user": "", "password": "long enough"}),
            "invalid_nick",
        ),
        (
            json!({"type": "register", "user": long_name, "password": "long enough"}),
            "invalid_nick",
        ),
        (
            json!({"type": "register", "user": "bell\u{7}", "password": "long enough"}),
            "invalid_nick",
        ),
        (
            json!({"type": "register", "user": "carol", "password": ""}),
            "invalid_password",
        ),
        (
            json!({"type": "register", "user": "carol", "password": "short"}),
            "invalid_password",
        ),
        (
            json!({"type": "register", "user": "carol", "password": long_password}),
            "invalid_password",
        ),
        (
            json!({"type": "register", "user": "carol", "password": "esc\u{1b}[2J seq"}),
            "invalid_password",
        ),
        (
            json!({"type": "register", "user": "carol"}),
            "invalid_frame",
        ),
        (
            json!({"type": "register", "user": 5, "password": "long enough"}),
            "invalid_frame",
        ),
        (
            json!({"type": "login", "user": "x' OR '1'='1", "password": "' OR '1'='1"}),
            "auth_failed",
        ),
        (
            json!({"type": "login", "user": long_name, "password": "whatever1"}),
            "auth_failed",
        ),
        (
            json!({"type": "login", "user": "carol", "password": long_password}),
            "invalid_password",
        ),
        (json!({"type": "login", "password": "x"}), "invalid_frame"),
    ];
    for (frame, expected) in cases {
        let reply = c.request_json(&frame).await.unwrap();
        assert_eq!(code(&reply), Some(expected), "{frame}: {reply:?}");
        assert!(
            !message(&reply).contains("long enough"),
            "passwords are never echoed"
        );
    }
    // The one valid registration after all that works, and it is the only
    // account.
    assert_eq!(
        ok_nick(&register(&mut c, "carol", "long enough").await),
        Some("carol")
    );
    server.stop().await;
    let (ok, out, err) = setup.cli(&["list"], "").await;
    assert!(ok, "{err}");
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["carol"], "{out}");
}

#[tokio::test]
async fn accounts_and_admin_flags_survive_a_restart() {
    let setup = auth_setup("broadcast = \"admins\"", CHEAP_ARGON2);
    let (ok, out, err) = setup
        .cli(&["add", "root", "--admin"], "admin password\n")
        .await;
    assert!(
        ok && out.contains("created account root (admin)"),
        "{out}{err}"
    );

    let server = setup.start().await;
    let mut user = server.client().await;
    register(&mut user, "dave", "daves password").await;
    server.stop().await;

    let server = setup.start().await;
    let mut admin = server.logged_in("root", "admin password").await;
    let mut dave = server.logged_in("dave", "daves password").await;
    let who = admin
        .request_json(&json!({"type": "whoami"}))
        .await
        .unwrap();
    assert!(
        matches!(&who, Received::Custom { fields, .. } if fields["admin"] == json!(true)),
        "{who:?}"
    );

    // broadcast = "admins": the admin flag from the database decides.
    let refused = dave
        .request(&ClientFrame::Broadcast {
            text: "hello all".into(),
        })
        .await
        .unwrap();
    assert_eq!(code(&refused), Some("forbidden"), "{refused:?}");
    admin
        .request_ok(&ClientFrame::Broadcast {
            text: "maintenance at noon".into(),
        })
        .await
        .unwrap();
    dave.expect(WAIT, |f| {
        matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "maintenance at noon" && m.from == "root")
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account_and_per_address() {
    let setup = auth_setup("", &format!(
        "{CHEAP_ARGON2}[plugin.config.throttle]\naccount_failures = 3\naddress_failures = 6\nlockout_ms = 60000\nmax_lockout_ms = 600000\n"
    ));
    let server = setup.start().await;
    let mut c = server.client().await;
    register(&mut c, "erin", "erins password").await;
    register(&mut server.client().await, "frank", "franks password").await;

    let mut attacker = server.client().await;
    for _ in 0..3 {
        let r = login(&mut attacker, "erin", "guess guess").await;
        assert_eq!(code(&r), Some("auth_failed"));
    }
    // Locked: even the right password is refused, and the message says so.
    let r = login(&mut attacker, "erin", "erins password").await;
    assert_eq!(code(&r), Some("throttled"), "{r:?}");
    assert!(
        message(&r).contains("this account") && message(&r).contains("try again in"),
        "{r:?}"
    );
    // An unknown name is throttled the same way (no hint which names exist).
    for _ in 0..2 {
        login(&mut attacker, "ghost", "guess guess").await;
    }
    // Other accounts from the same address still work until the address's
    // own threshold is reached...
    let frank = login(&mut server.client().await, "frank", "franks password").await;
    assert_eq!(ok_nick(&frank), Some("frank"));
    // ...which the sixth failure from this address reaches.
    let r = login(&mut attacker, "ghost2", "guess").await;
    assert_eq!(code(&r), Some("auth_failed"));
    let r = login(&mut server.client().await, "frank", "franks password").await;
    assert_eq!(code(&r), Some("throttled"), "{r:?}");
    assert!(message(&r).contains("your address"), "{r:?}");
    server.stop().await;
}

/// Several connections log in to one account at once: each is answered
/// `logged_in` (each did log in) before any of them is replaced with
/// `bye kicked`, and the room hears the documented reason for the
/// takeovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_of_one_account_each_get_their_reply() {
    let setup = auth_setup("", &format!("allow_guests = true\n{CHEAP_ARGON2}"));
    let server = setup.start().await;
    register(&mut server.client().await, "alice", "a password").await;
    let mut watcher = Client::connect_as(&server.addr, "watcher").await.unwrap();
    watcher
        .request_ok(&ClientFrame::Join { room: "#r".into() })
        .await
        .unwrap();
    // Kept open to the end: a connection that closes is a real quit.
    let mut keep = Vec::new();
    for round in 0..5 {
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(server.client().await);
        }
        let mut tasks = Vec::new();
        for mut c in clients {
            tasks.push(tokio::spawn(async move {
                c.writer
                    .send_raw(b"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"a password\"}\n{\"type\":\"join\",\"id\":2,\"room\":\"#r\"}\n")
                    .await
                    .unwrap();
                // Everything this connection receives, up to `bye` or the
                // reply to its `join`.
                let mut seen = Vec::new();
                loop {
                    let Ok(frame) = c.recv_timeout(WAIT).await else { break };
                    let end = matches!(frame, Received::Core(ServerFrame::Bye { .. }));
                    seen.push(frame);
                    if end {
                        break;
                    }
                    if seen.iter().any(|f| f.reply_to() == Some(2)) {
                        break;
                    }
                }
                (c, seen)
            }));
        }
        for t in tasks {
            let (c, seen) = t.await.unwrap();
            keep.push(c);
            let logged_in = seen
                .iter()
                .position(|f| matches!(f, Received::Custom { kind, .. } if kind == "logged_in"));
            let bye = seen
                .iter()
                .position(|f| matches!(f, Received::Core(ServerFrame::Bye { .. })));
            assert!(logged_in.is_some(), "round {round}: no logged_in: {seen:?}");
            if let Some(bye) = bye {
                assert!(logged_in < Some(bye), "round {round}: {seen:?}");
            }
        }
    }
    let frames = watcher.sync().await.unwrap();
    drop(keep);
    for f in &frames {
        if let Received::Core(ServerFrame::Presence(p)) = f {
            if p.event == chat_api::PresenceEvent::Quit {
                assert_eq!(
                    p.reason.as_deref(),
                    Some("logged in from another connection"),
                    "{f:?}"
                );
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let setup = auth_setup("", &format!(
        "{CHEAP_ARGON2}[plugin.config.throttle]\nregistrations_per_address = 2\nlockout_ms = 60000\n"
    ));
    let server = setup.start().await;
    for name in ["first", "second"] {
        let r = register(&mut server.client().await, name, "a password").await;
        assert_eq!(ok_nick(&r), Some(name), "{r:?}");
    }
    let r = register(&mut server.client().await, "third", "a password").await;
    assert_eq!(code(&r), Some("throttled"), "{r:?}");
    assert!(
        message(&r).contains("new accounts from your address"),
        "{r:?}"
    );
    // Logging in is not affected.
    server.logged_in("first", "a password").await;
    server.stop().await;
}

#[tokio::test]
async fn the_cli_manages_accounts_of_a_running_server() {
    let setup = auth_setup("", &format!("registration = \"closed\"\n{CHEAP_ARGON2}"));
    let server = setup.start().await;

    let closed = register(&mut server.client().await, "gina", "ginas password").await;
    assert_eq!(code(&closed), Some("registration_closed"));

    let (ok, out, err) = setup.cli(&["add", "gina"], "ginas password\n").await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = setup.cli(&["add", "GINA"], "other password\n").await;
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = setup.cli(&["add", "bad name"], "ginas password\n").await;
    assert!(!ok && err.contains("nickname"), "{err}");
    let (ok, _, err) = setup.cli(&["add", "hank"], "short\n").await;
    assert!(!ok && err.contains("too short"), "{err}");
    let (ok, _, err) = setup.cli(&["add", "hank"], "").await;
    assert!(!ok && err.contains("no password"), "{err}");

    let mut gina = server.logged_in("gina", "ginas password").await;
    gina.request_ok(&ClientFrame::Join {
        room: "#ops".into(),
    })
    .await
    .unwrap();

    let (ok, out, _) = setup.cli(&["list"], "").await;
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.starts_with("gina"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("user") && line.contains("active") && !line.ends_with("never"),
        "{out}"
    );

    // passwd: the old password stops working, the new one works.
    let (ok, _, err) = setup.cli(&["passwd", "gina"], "new password!\n").await;
    assert!(ok, "{err}");
    let mut c = server.client().await;
    assert_eq!(
        code(&login(&mut c, "gina", "ginas password").await),
        Some("auth_failed")
    );
    let (ok, _, err) = setup.cli(&["passwd", "nobody"], "new password!\n").await;
    assert!(!ok && err.contains("no account named 'nobody'"), "{err}");

    // disable: the live session is ended and logins are refused.
    let (ok, _, err) = setup.cli(&["disable", "gina"], "").await;
    assert!(ok, "{err}");
    assert_eq!(expect_bye(&mut gina).await, "kicked");
    let r = login(&mut c, "gina", "new password!").await;
    assert_eq!(code(&r), Some("account_disabled"), "{r:?}");
    let (_, out, _) = setup.cli(&["list"], "").await;
    assert!(out.contains("disabled"), "{out}");

    // enable: logins work again.
    assert!(setup.cli(&["enable", "gina"], "").await.0);
    let mut gina = server.logged_in("gina", "new password!").await;

    // delete: the session is ended, the account is gone.
    assert!(setup.cli(&["delete", "gina"], "").await.0);
    assert_eq!(expect_bye(&mut gina).await, "kicked");
    let mut c = server.client().await;
    assert_eq!(
        code(&login(&mut c, "gina", "new password!").await),
        Some("auth_failed")
    );
    let (ok, out, _) = setup.cli(&["list"], "").await;
    assert!(ok && out.contains("no accounts"), "{out}");
    let (ok, _, err) = setup.cli(&["delete", "gina"], "").await;
    assert!(!ok && err.contains("no account named"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn passwd_changes_ones_own_password() {
    let setup = auth_setup("", CHEAP_ARGON2);
    let server = setup.start().await;
    let mut c = server.client().await;
    register(&mut c, "ivy", "first password").await;
    let wrong = c
        .request_json(&json!({"type": "passwd", "old_password": "not it at all", "new_password": "second password"}))
        .await
        .unwrap();
    assert_eq!(code(&wrong), Some("auth_failed"));
    let weak = c
        .request_json(
            &json!({"type": "passwd", "old_password": "first password", "new_password": "2short"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&weak), Some("invalid_password"));
    let done = c
        .request_json(&json!({"type": "passwd", "old_password": "first password", "new_password": "second password"}))
        .await
        .unwrap();
    assert!(is_ok(&done), "{done:?}");
    let mut d = server.client().await;
    assert_eq!(
        code(&login(&mut d, "ivy", "first password").await),
        Some("auth_failed")
    );
    server.logged_in("ivy", "second password").await;
    server.stop().await;
}

/// Dozens of logins at the OWASP cost at once: all succeed, and meanwhile a
/// room keeps delivering between two other users without stalling, because
/// hashing runs on the blocking pool, two at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_does_not_stall_chat() {
    const LOGINS: usize = 30;
    let setup = auth_setup("", "[plugin.config.argon2]\nmax_concurrent = 2\n");
    {
        // Accounts made directly in the database (one hash, reused: hashing
        // thirty times here would only slow the test).
        let db = chatd_storage::Database::open(&setup.config().database_options())
            .await
            .unwrap();
        let accounts = chatd_plugin_auth::Accounts::new(db.clone());
        let passwords =
            chatd_plugin_auth::Passwords::new(&chatd_plugin_auth::config::Argon2Config::default())
                .unwrap();
        let hash = tokio::task::spawn_blocking(move || passwords.hash("storm password").unwrap())
            .await
            .unwrap();
        for name in (0..LOGINS)
            .map(|i| format!("user{i}"))
            .chain(["amy".into(), "ben".into()])
        {
            accounts.create(&name, &hash, false).await.unwrap();
        }
        db.close().await;
    }
    let server = setup.start().await;
    let mut amy = server.logged_in("amy", "storm password").await;
    let mut ben = server.logged_in("ben", "storm password").await;
    amy.request_ok(&ClientFrame::Join {
        room: "#calm".into(),
    })
    .await
    .unwrap();
    ben.request_ok(&ClientFrame::Join {
        room: "#calm".into(),
    })
    .await
    .unwrap();

    let mut clients = Vec::new();
    for _ in 0..LOGINS {
        clients.push(server.client().await);
    }
    let started = Instant::now();
    let storm: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                let reply = login(&mut c, &format!("user{i}"), "storm password").await;
                (
                    ok_nick(&reply) == Some(format!("user{i}").as_str()),
                    Instant::now(),
                    c,
                )
            })
        })
        .collect();

    // Chat while the storm runs: each message must arrive promptly.
    let mut worst = Duration::ZERO;
    let mut delivered = 0;
    while !storm.iter().all(|t| t.is_finished()) && delivered < 200 {
        let text = format!("tick {delivered}");
        let sent = Instant::now();
        amy.request_ok(&ClientFrame::Say {
            room: "#calm".into(),
            text: text.clone(),
        })
        .await
        .unwrap();
        ben.expect(
            WAIT,
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == text),
        )
        .await
        .unwrap();
        worst = worst.max(sent.elapsed());
        delivered += 1;
    }
    let mut last_login = started;
    let mut sessions = Vec::new();
    for task in storm {
        let (ok, at, c) = task.await.unwrap();
        assert!(ok, "every login of the storm succeeds");
        last_login = last_login.max(at);
        sessions.push(c);
    }
    let storm_time = last_login - started;
    eprintln!("storm: {LOGINS} logins in {storm_time:?}; {delivered} room messages meanwhile, slowest {worst:?}");
    assert!(
        delivered >= 3,
        "the room kept delivering during the storm ({delivered} messages in {storm_time:?})"
    );
    assert!(
        worst < Duration::from_secs(1),
        "a room message took {worst:?} during a {storm_time:?} login storm"
    );
    server.stop().await;
}

#[tokio::test]
async fn plaintext_can_be_refused_while_tls_works() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(&dir.path().join("certs"), &["localhost".to_string()])
            .unwrap();
    let setup = auth_setup(
        &format!(
            "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
        &format!("allow_plaintext = false\n{CHEAP_ARGON2}"),
    );
    let server = setup.start().await;
    let mut plain = server.client().await;
    let r = register(&mut plain, "jack", "jacks password").await;
    assert_eq!(code(&r), Some("tls_required"), "{r:?}");
    let r = login(&mut plain, "jack", "jacks password").await;
    assert_eq!(code(&r), Some("tls_required"), "{r:?}");

    let options = ConnectOptions {
        tls: true,
        ca: Some(cert.clone()),
        server_name: Some("localhost".into()),
        ..ConnectOptions::default()
    };
    let tls_addr = server.server.tls_addr.unwrap().to_string();
    let mut secure = Client::connect(&tls_addr, &options).await.unwrap();
    assert_eq!(
        ok_nick(&register(&mut secure, "jack", "jacks password").await),
        Some("jack")
    );
    server.stop().await;
}

#[tokio::test]
async fn guests_may_chat_but_never_under_a_registered_name() {
    let setup = auth_setup("", &format!("allow_guests = true\n{CHEAP_ARGON2}"));
    let server = setup.start().await;
    let mut kim = server.client().await;
    assert!(!kim.welcome.auth_required);
    register(&mut kim, "kim", "kims password").await;

    let mut guest = server.client().await;
    let join = guest
        .request(&ClientFrame::Join { room: "#a".into() })
        .await
        .unwrap();
    assert_eq!(
        code(&join),
        Some("auth_required"),
        "no nickname yet: {join:?}"
    );
    let taken = guest
        .request(&ClientFrame::Nick { nick: "KIM".into() })
        .await
        .unwrap();
    assert_eq!(code(&taken), Some("nick_taken"), "{taken:?}");
    guest
        .request_ok(&ClientFrame::Nick {
            nick: "visitor".into(),
        })
        .await
        .unwrap();
    guest
        .request_ok(&ClientFrame::Join { room: "#a".into() })
        .await
        .unwrap();

    // A name a guest holds cannot be registered by someone else...
    let r = register(&mut server.client().await, "visitor", "a password").await;
    assert_eq!(code(&r), Some("nick_taken"), "{r:?}");
    // ...and when the operator registers it, the guest must give it up.
    let (ok, _, err) = setup.cli(&["add", "visitor"], "operator chose\n").await;
    assert!(ok, "{err}");
    assert_eq!(expect_bye(&mut guest).await, "kicked");
    server.logged_in("visitor", "operator chose").await;
    server.stop().await;
}

#[tokio::test]
async fn without_the_plugin_the_server_runs_in_guest_mode_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    // History would need the database too.
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[history]\nenabled = false\n[[plugin]]\nname = \"auth\"\nenabled = false\n",
        dir.path().join("data").display()
    );
    let server = chatd::start(Config::parse(&text, "test.toml", None).unwrap())
        .await
        .unwrap();
    let addr = server.tcp_addr.unwrap().to_string();
    let mut c = Client::connect_as(&addr, "guest").await.unwrap();
    assert!(!c.welcome.auth_required);
    let r = login(&mut c, "guest", "whatever1").await;
    assert_eq!(code(&r), Some("feature_disabled"), "{r:?}");
    assert!(!dir.path().join("data/chatd.db").exists());
    server.stop().await;
}

#[tokio::test]
async fn a_corrupt_database_stops_the_server_with_a_clear_message() {
    let setup = auth_setup("", CHEAP_ARGON2);
    std::fs::create_dir_all(setup.db_path().parent().unwrap()).unwrap();
    std::fs::write(setup.db_path(), vec![0x42; 4096]).unwrap();
    let err = match chatd::start(setup.config()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the server started on a corrupt database"),
    };
    assert!(
        err.contains("chatd.db") && err.contains("not a usable SQLite database"),
        "{err}"
    );
    // The binary says the same and exits non-zero.
    let (ok, _, err) = setup.cli(&["list"], "").await;
    assert!(!ok && err.contains("not a usable SQLite database"), "{err}");
    assert_eq!(
        std::fs::read(setup.db_path()).unwrap(),
        vec![0x42; 4096],
        "left untouched"
    );
}

#[tokio::test]
async fn raising_the_cost_renews_stored_hashes_at_the_next_login() {
    let setup = auth_setup(
        "",
        "[plugin.config.argon2]\nmemory_kib = 2048\niterations = 1\n",
    );
    let db = chatd_storage::Database::open(&setup.config().database_options())
        .await
        .unwrap();
    let accounts = chatd_plugin_auth::Accounts::new(db.clone());
    let old_cost = chatd_plugin_auth::Passwords::new(&chatd_plugin_auth::config::Argon2Config {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    })
    .unwrap();
    let hash = old_cost.hash("lena's password").unwrap();
    accounts.create("lena", &hash, false).await.unwrap();
    let stored = || async {
        chatd_storage::sqlx::query_scalar::<_, String>(
            "SELECT password_hash FROM accounts WHERE name_key = 'lena'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap()
    };
    assert!(stored().await.contains("m=1024,"));

    let server = setup.start().await;
    server.logged_in("lena", "lena's password").await;
    let renewed = stored().await;
    assert!(
        renewed.starts_with("$argon2id$v=19$m=2048,t=1,p=1$"),
        "{renewed}"
    );
    // The same password still works with the new hash.
    server.logged_in("lena", "lena's password").await;
    server.stop().await;
    db.close().await;
}

/// A login that verified the old password and renews its hash (the cost
/// was raised) must not write that old password back over a change made
/// while it was verifying, such as an operator's reset of a stolen password.
#[tokio::test]
async fn renewing_a_hash_never_undoes_a_password_change() {
    let setup = auth_setup("", CHEAP_ARGON2);
    let db = chatd_storage::Database::open(&setup.config().database_options())
        .await
        .unwrap();
    let accounts = chatd_plugin_auth::Accounts::new(db.clone());
    let old = "$argon2id$v=19$m=1024,t=1,p=1$old";
    accounts.create("mia", old, false).await.unwrap();
    let read = accounts.find_for_login("mia").await.unwrap().unwrap();

    // The reset lands while the login is still verifying `old`.
    accounts
        .set_password_hash("mia", "$argon2id$v=19$m=2048,t=1,p=1$reset")
        .await
        .unwrap();
    let renewed = accounts
        .renew_hash(
            read.account.id,
            &read.password_hash,
            "$argon2id$v=19$m=2048,t=1,p=1$old-renewed",
        )
        .await
        .unwrap();
    assert!(!renewed);
    let stored = accounts.find_for_login("mia").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$argon2id$v=19$m=2048,t=1,p=1$reset");

    // Without a change in between, the renewal happens.
    assert!(accounts
        .renew_hash(
            stored.account.id,
            &stored.password_hash,
            "$argon2id$v=19$m=2048,t=1,p=1$new"
        )
        .await
        .unwrap());
    db.close().await;
}
