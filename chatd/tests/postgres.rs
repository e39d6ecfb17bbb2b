//! chatd on PostgreSQL (`[database] url`), end to end: a real PostgreSQL
//! server (the Debian package's binaries, started by the test kit in a
//! temporary directory, one database per test), real chatd servers on
//! 127.0.0.1:0, real clients, and the real `chatd` binary for the CLI.
//!
//! Without PostgreSQL installed these tests say so and return, except under
//! `CI=true`, where they fail.

use std::path::PathBuf;
use std::time::Duration;

use chat_api::{ClientFrame, Message, ServerFrame};
use chat_client::{Client, ConnectOptions, Received};
use chatd::{Config, RunningServer};
use chatd_testkit::postgres;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

const AUTH: &str = "[[plugin]]\nname = \"auth\"\n[plugin.config]\nwatch_interval_ms = 50\n[plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";
const ROOMS: &str = "[[plugin]]\nname = \"rooms\"\n";

/// A configuration file whose database is a fresh PostgreSQL database;
/// `None` when PostgreSQL is not installed (the test is skipped).
struct Setup {
    dir: tempfile::TempDir,
    config_path: PathBuf,
    url: String,
}

impl Setup {
    async fn new(plugins: &str) -> Option<Setup> {
        let pg = postgres::shared().await?;
        let url = pg.create_database().await;
        Some(Setup::with_url(&url, plugins))
    }

    fn with_url(url: &str, plugins: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("chatd.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[limits]\nframes_per_second = 0\n\
             [database]\nurl = {url:?}\n{plugins}"
        );
        std::fs::write(&config_path, text).unwrap();
        Setup {
            dir,
            config_path,
            url: url.to_string(),
        }
    }

    fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }

    async fn start(&self) -> Server {
        let server = chatd::start(self.config()).await.expect("server starts");
        let addr = server.tcp_addr.unwrap().to_string();
        Server { server, addr }
    }

    /// Runs `chatd ARGS` on this setup's config; success and all output.
    fn cli(&self, args: &[&str], stdin: &str) -> (bool, String) {
        chatd_testkit::process::chatd_cli(&self.config_path, args, stdin)
    }
}

struct Server {
    server: RunningServer,
    addr: String,
}

impl Server {
    async fn client(&self) -> Client {
        Client::connect(&self.addr, &ConnectOptions::default())
            .await
            .unwrap()
    }

    async fn account(&self, kind: &str, name: &str, password: &str) -> (Client, Received) {
        let mut c = self.client().await;
        let reply = c
            .request_json(&json!({"type": kind, "user": name, "password": password}))
            .await
            .unwrap();
        (c, reply)
    }

    /// Registers `name`: the client and its resume token.
    async fn register(&self, name: &str) -> (Client, String) {
        let (c, reply) = self.account("register", name, "a password").await;
        (c, chatd_testkit::resume_token(&reply))
    }

    async fn login(&self, name: &str) -> (Client, String) {
        let (c, reply) = self.account("login", name, "a password").await;
        (c, chatd_testkit::resume_token(&reply))
    }

    /// Waits until `nick` has no session here any more.
    async fn gone(&self, nick: &str) {
        let hub = self.server.hub().clone();
        tokio::time::timeout(WAIT, async {
            while hub.by_nick(nick).is_some() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{nick}'s session did not end"));
    }

    async fn stop(self) {
        self.server.hub().check_invariants().unwrap();
        self.server.stop().await;
    }
}

fn code(r: &Received) -> Option<&str> {
    match r {
        Received::Core(ServerFrame::Error { code, .. }) => Some(code.as_str()),
        _ => None,
    }
}

async fn say(c: &mut Client, room: &str, text: &str) -> u64 {
    let frame = ClientFrame::Say {
        room: room.to_string(),
        text: text.to_string(),
    };
    match c.request(&frame).await.unwrap() {
        Received::Core(ServerFrame::Sent { msg_id, .. }) => msg_id,
        other => panic!("expected sent, got {other:?}"),
    }
}

async fn request(c: &mut Client, frame: Value) -> Received {
    c.request_json(&frame).await.unwrap()
}

async fn history(c: &mut Client, mut frame: Value) -> Result<(Vec<Message>, bool), String> {
    frame["type"] = json!("history");
    match c.request_json(&frame).await.unwrap() {
        Received::Core(ServerFrame::History { messages, more, .. }) => Ok((messages, more)),
        Received::Core(ServerFrame::Error { code, .. }) => Err(code.to_string()),
        other => panic!("expected history, got {other:?}"),
    }
}

/// The direct messages among the frames that arrived so far.
async fn direct_messages(c: &mut Client) -> Vec<Message> {
    c.sync()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Message(m)) if m.to.is_some() => Some(m),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn accounts_on_postgres_log_in_refuse_wrong_passwords_and_survive_a_restart() {
    let Some(setup) = Setup::new(AUTH).await else {
        return;
    };
    let server = setup.start().await;
    let (_alice, _) = server.register("Alice").await;
    let (_, duplicate) = server
        .account("register", "alice", "another password")
        .await;
    assert_eq!(code(&duplicate), Some("account_exists"), "{duplicate:?}");
    let (_, wrong) = server.account("login", "alice", "wrong password").await;
    assert_eq!(code(&wrong), Some("auth_failed"), "{wrong:?}");
    server.stop().await;

    // Nothing is in a local file: a server with another data directory on
    // the same database knows the account.
    let elsewhere = Setup::with_url(&setup.url, AUTH);
    let server = elsewhere.start().await;
    let (_, reply) = server.account("login", "ALICE", "a password").await;
    assert!(
        matches!(&reply, Received::Custom { kind, fields } if kind == "logged_in" && fields["nick"] == json!("Alice")),
        "{reply:?}"
    );
    let (_, wrong) = server.account("login", "alice", "wrong password").await;
    assert_eq!(code(&wrong), Some("auth_failed"), "{wrong:?}");
    server.stop().await;
    assert!(
        !elsewhere.dir.path().join("data/chatd.db").exists(),
        "no SQLite file is created when database.url is set"
    );
}

#[tokio::test]
async fn takeover_and_resume_tokens_on_postgres() {
    let Some(setup) = Setup::new(AUTH).await else {
        return;
    };
    let server = setup.start().await;
    let (mut first, _) = server.register("bob").await;
    let (_second, token) = server.login("bob").await;
    let bye = first
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Bye { .. }))
        })
        .await
        .unwrap();
    assert!(
        matches!(&bye, Received::Core(ServerFrame::Bye { code, .. }) if code.as_str() == "kicked"),
        "the older session ends: {bye:?}"
    );
    drop(_second);
    server.gone("bob").await;

    // The token of the second login resumes on a new connection.
    let mut resumed = server.client().await;
    let reply = request(&mut resumed, json!({"type": "resume", "token": token})).await;
    assert!(
        matches!(&reply, Received::Custom { kind, fields } if kind == "logged_in" && fields["resumed"] == json!(true)),
        "{reply:?}"
    );
    // A made-up token is refused.
    let mut stranger = server.client().await;
    let forged = "A".repeat(43);
    let refused = request(&mut stranger, json!({"type": "resume", "token": forged})).await;
    assert!(code(&refused).is_some(), "{refused:?}");
    server.stop().await;
}

#[tokio::test]
async fn private_rooms_history_and_offline_messages_on_postgres() {
    let Some(setup) = Setup::new(&format!("{AUTH}{ROOMS}")).await else {
        return;
    };
    let server = setup.start().await;
    let (mut alice, _) = server.register("alice").await;
    let (mut carol, _) = server.register("carol").await;
    let (bob, _) = server.register("bob").await;
    drop(bob);
    server.gone("bob").await;

    let created = request(
        &mut alice,
        json!({"type": "room_create", "room": "#secret"}),
    )
    .await;
    assert!(code(&created).is_none(), "{created:?}");
    let refused = carol
        .request(&ClientFrame::Join {
            room: "#secret".into(),
        })
        .await
        .unwrap();
    assert_eq!(code(&refused), Some("not_invited"), "{refused:?}");
    let mut said = Vec::new();
    for i in 0..120 {
        said.push(say(&mut alice, "#secret", &format!("note {i}")).await);
    }
    // Paged back from the newest: every message once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let mut frame = json!({"room": "#secret", "limit": 50});
        if let Some(before) = cursor {
            frame["before"] = json!(before);
        }
        let (page, more) = history(&mut alice, frame).await.unwrap();
        cursor = page.first().map(|m| m.msg_id);
        seen.splice(0..0, page.iter().map(|m| m.msg_id));
        if !more {
            break;
        }
    }
    assert_eq!(seen, said);
    assert_eq!(
        history(&mut carol, json!({"room": "#secret"})).await,
        Err("no_such_room".into()),
        "outsiders read nothing"
    );

    // A direct message to bob, who is offline, waits for his next login.
    let sent = request(
        &mut alice,
        json!({"type": "msg", "to": "bob", "text": "see you at 10"}),
    )
    .await;
    assert!(
        matches!(
            sent,
            Received::Core(ServerFrame::Sent {
                stored: true,
                recipients: 0,
                ..
            })
        ),
        "{sent:?}"
    );
    let (mut bob, _) = server.login("bob").await;
    let got = direct_messages(&mut bob).await;
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["see you at 10"]
    );
    server.stop().await;
}

#[tokio::test]
async fn two_servers_on_one_database_share_accounts_and_deliver_an_offline_message_once() {
    let Some(a_setup) = Setup::new(AUTH).await else {
        return;
    };
    let b_setup = Setup::with_url(&a_setup.url, AUTH);
    let a = a_setup.start().await;
    let b = b_setup.start().await;

    // Registered on A, logs in on B.
    let (_alice, _) = a.register("alice").await;
    let (bob, _) = b.register("bob").await;
    drop(bob);
    b.gone("bob").await;
    let (mut alice_on_b, _) = b.login("alice").await;
    let sent = request(
        &mut alice_on_b,
        json!({"type": "msg", "to": "bob", "text": "hello"}),
    )
    .await;
    assert!(
        matches!(sent, Received::Core(ServerFrame::Sent { stored: true, .. })),
        "{sent:?}"
    );

    // Bob logs in on both at once: the message reaches exactly one of his
    // sessions.
    let (on_a, on_b) = tokio::join!(a.login("bob"), b.login("bob"));
    let (mut on_a, mut on_b) = (on_a.0, on_b.0);
    let got_a = direct_messages(&mut on_a).await;
    let got_b = direct_messages(&mut on_b).await;
    let texts: Vec<&str> = got_a
        .iter()
        .chain(&got_b)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["hello"], "on A: {got_a:?}, on B: {got_b:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn deleting_an_account_on_postgres_deletes_its_rooms_and_direct_messages() {
    use chatd_storage::{sqlx, Database, DatabaseOptions};

    let Some(setup) = Setup::new(&format!("{AUTH}{ROOMS}")).await else {
        return;
    };
    let server = setup.start().await;
    let (mut alice, _) = server.register("alice").await;
    let (mut bob, _) = server.register("bob").await;
    let (_carol, _) = server.register("carol").await;
    let created = request(
        &mut alice,
        json!({"type": "room_create", "room": "#secret"}),
    )
    .await;
    assert!(code(&created).is_none(), "{created:?}");
    say(&mut alice, "#secret", "only for members").await;
    for (from, to, text) in [
        (&mut alice, "bob", "to bob"),
        (&mut bob, "carol", "bob to carol"),
    ] {
        let sent = request(from, json!({"type": "msg", "to": to, "text": text})).await;
        assert!(code(&sent).is_none(), "{sent:?}");
    }
    drop(alice);
    let (ok, out) = setup.cli(&["user", "delete", "alice"], "");
    assert!(ok, "{out}");
    server.stop().await;

    // What the database triggers did (the PostgreSQL twins of SQLite's).
    let db = Database::open(&DatabaseOptions::postgres(&setup.url))
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(db.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM private_rooms").await,
        0,
        "the owner's room went"
    );
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE conv = '#secret'").await,
        0,
        "and its history"
    );
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE conv = 'alice bob'").await,
        0,
        "the account's direct messages went"
    );
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE conv = 'bob carol'").await,
        1,
        "others' stay"
    );
    db.close().await;
}

#[tokio::test]
async fn servers_sharing_a_database_claim_disjoint_message_ids() {
    use chatd::history::sql::SqlStore;
    use chatd::history::MessageStore;
    use chatd::message_ids::BLOCK;
    use chatd_storage::{Database, DatabaseOptions};

    let Some(pg) = postgres::shared().await else {
        return;
    };
    let url = pg.create_database().await;
    let open = || async {
        SqlStore::new(
            Database::open(&DatabaseOptions::postgres(&url))
                .await
                .unwrap(),
        )
    };
    let (a, b) = (open().await, open().await);
    // Two servers start at once: both read the same reservation, both
    // claim a block after it.
    let after = a.reserved_ids().await.unwrap();
    assert_eq!(after, b.reserved_ids().await.unwrap());
    let (a1, b1) = tokio::join!(a.reserve_ids(BLOCK, after), b.reserve_ids(BLOCK, after));
    let (a1, b1) = (a1.unwrap(), b1.unwrap());
    assert_ne!(a1, b1, "each got its own block");
    assert_eq!(
        a1.abs_diff(b1),
        BLOCK,
        "blocks side by side, not overlapping"
    );
    // A continues after its own block; B's lies in between, so A's next
    // block starts after B's.
    let a2 = a.reserve_ids(BLOCK, a1).await.unwrap();
    assert!(a2 - BLOCK >= a1.max(b1), "{a1} {b1} {a2}");
    // Restarted, a server starts after every reservation.
    let c = open().await;
    assert_eq!(c.reserved_ids().await.unwrap(), a2);
}

#[tokio::test]
async fn the_cli_works_on_postgres_and_backup_points_to_pg_dump() {
    let Some(setup) = Setup::new(AUTH).await else {
        return;
    };
    let (ok, out) = setup.cli(&["user", "add", "dora"], "a long password\n");
    assert!(ok, "{out}");
    let server = setup.start().await;
    let (_, reply) = server.account("login", "dora", "a long password").await;
    assert!(
        matches!(&reply, Received::Custom { kind, .. } if kind == "logged_in"),
        "{reply:?}"
    );
    server.stop().await;
    let (ok, out) = setup.cli(&["user", "list"], "");
    assert!(ok && out.contains("dora"), "{out}");
    let (ok, out) = setup.cli(&["history", "purge", "--room", "#lobby"], "");
    assert!(ok, "{out}");

    let (ok, out) = setup.cli(&["backup", "--out", "copy.db"], "");
    assert!(!ok, "{out}");
    assert!(
        out.contains("pg_dump") && out.contains("database.url"),
        "{out}"
    );
    assert!(
        !out.contains(postgres::PASSWORD),
        "the password is never printed: {out}"
    );
}

#[tokio::test]
async fn a_bad_url_or_an_unreachable_server_is_refused_clearly() {
    let text = "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"mysql://u:secret@127.0.0.1/chatd\"\n";
    let error = Config::parse(text, "chatd.toml", None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("database.url") && error.contains("postgres://"),
        "{error}"
    );
    assert!(
        !error.contains("secret"),
        "no password in messages: {error}"
    );

    // A port nobody listens on, held (bound, never listening) for the
    // test: a port merely found free could be taken by another test's
    // listener before the server tries it.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    let setup = Setup::with_url(
        &format!("postgres://chatd:secret@127.0.0.1:{port}/chatd"),
        AUTH,
    );
    let started = chatd::start(setup.config()).await;
    let error = match started {
        Ok(server) => {
            server.stop().await;
            panic!("started without a database");
        }
        Err(e) => anyhow_like(&e),
    };
    assert!(
        error.contains("cannot reach the PostgreSQL server") && error.contains("database.url"),
        "{error}"
    );
    assert_eq!(
        error.matches("refused").count(),
        1,
        "the OS cause once: {error}"
    );
    assert!(!error.contains("secret"), "{error}");

    // A wrong password says so.
    let Some(pg) = postgres::shared().await else {
        return;
    };
    let url = pg.create_database().await;
    let wrong = url.replace(postgres::PASSWORD, "not-the-password");
    let setup = Setup::with_url(&wrong, AUTH);
    let error = match chatd::start(setup.config()).await {
        Ok(server) => {
            server.stop().await;
            panic!("started with a wrong password");
        }
        Err(e) => anyhow_like(&e),
    };
    assert!(
        error.contains("refused the login") && error.contains("password"),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
}

/// The error and its sources, as `main` prints a start error.
fn anyhow_like(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
