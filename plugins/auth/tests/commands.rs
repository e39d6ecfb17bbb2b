//! The accounts frames on chat-api's fake host and a real SQLite file:
//! what a client gets back, and what happens to the sessions.

use std::sync::Arc;

use chat_api::accounts::{AccountRequest, LoggedIn, WhoAmI};
use chat_api::testkit::{FakeHost, FakeSession};
use chat_api::{ClientFrame, MessageHandler, Session, Transport, Verdict};
use chatd_plugin_auth::AuthPlugin;
use chatd_storage::{Database, DatabaseOptions};
use serde_json::Value;

/// Cheap hashes: these tests are about the frames, not the cost.
const CHEAP_HASHES: &str = "[argon2]\nmemory_kib = 64\niterations = 1\n";

struct Server {
    host: Arc<FakeHost>,
    plugin: AuthPlugin,
    _dir: tempfile::TempDir,
}

impl Server {
    /// The plugin with `settings` (top-level keys) and cheap hashes.
    async fn start(settings: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&DatabaseOptions::new(dir.path().join("chatd.db")))
            .await
            .unwrap();
        let host = FakeHost::new();
        let config = format!("{settings}\n{CHEAP_HASHES}");
        let plugin = AuthPlugin::new(&host.context("auth", &config), db).unwrap();
        Server {
            host,
            plugin,
            _dir: dir,
        }
    }

    /// Sends a request: the error code if it was refused, and what the
    /// session received.
    async fn send(
        &self,
        session: &FakeSession,
        request: &AccountRequest,
    ) -> (Option<String>, Vec<Value>) {
        let mut frame = FakeSession::inbound(Some(1), request);
        match self.plugin.on_frame(session, &mut frame).await {
            Ok(Verdict::Done) => (None, session.take_received()),
            Ok(Verdict::Reject(e)) => (Some(e.code.to_string()), session.take_received()),
            other => panic!("{request:?} was answered with {other:?}"),
        }
    }
}

fn register(user: &str, password: &str) -> AccountRequest {
    AccountRequest::Register {
        user: user.into(),
        password: password.into(),
    }
}

fn login(user: &str, password: &str) -> AccountRequest {
    AccountRequest::Login {
        user: user.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn register_logs_in_and_whoami_says_so() {
    let server = Server::start("").await;
    let alice = FakeSession::new(&server.host);
    let (refused, replies) = server
        .send(&alice, &register("Alice", "correct horse"))
        .await;
    assert_eq!(refused, None);
    let reply: LoggedIn = serde_json::from_value(replies[0].clone()).unwrap();
    assert_eq!(
        (reply.id, reply.user.as_str(), reply.admin),
        (Some(1), "Alice", false)
    );
    assert_eq!(reply.resume_token.map(|t| t.len()), Some(43));
    assert_eq!(alice.account().as_deref(), Some("Alice"));
    let (_, replies) = server.send(&alice, &AccountRequest::Whoami {}).await;
    let whoami: WhoAmI = serde_json::from_value(replies[0].clone()).unwrap();
    assert_eq!(whoami.account.as_deref(), Some("Alice"));
    // The name is taken now, in any letter case.
    let bob = FakeSession::new(&server.host);
    let (refused, _) = server.send(&bob, &register("alice", "another one")).await;
    assert_eq!(refused.as_deref(), Some("account_exists"));
}

#[tokio::test]
async fn wrong_passwords_and_unknown_names_get_the_same_answer() {
    let server = Server::start("").await;
    let alice = FakeSession::new(&server.host);
    server
        .send(&alice, &register("alice", "correct horse"))
        .await;
    let other = FakeSession::new(&server.host);
    let (wrong, _) = server.send(&other, &login("alice", "wrong horse")).await;
    let (unknown, _) = server.send(&other, &login("nobody", "wrong horse")).await;
    assert_eq!(wrong.as_deref(), Some("auth_failed"));
    assert_eq!(wrong, unknown);
    assert_eq!(other.account(), None);
}

#[tokio::test]
async fn logging_in_again_replaces_the_older_session() {
    let server = Server::start("").await;
    let first = FakeSession::new(&server.host);
    server
        .send(&first, &register("alice", "correct horse"))
        .await;
    let second = FakeSession::new(&server.host);
    let (refused, _) = server.send(&second, &login("ALICE", "correct horse")).await;
    assert_eq!(refused, None);
    let (code, _) = first.closed().expect("the older session is closed");
    assert_eq!(code.as_str(), "kicked");
    assert_eq!(second.account().as_deref(), Some("alice"));
}

#[tokio::test]
async fn nothing_but_accounts_frames_before_login() {
    let server = Server::start("").await;
    let session = FakeSession::new(&server.host);
    let mut join = FakeSession::inbound(Some(2), &ClientFrame::Join { room: "#a".into() });
    match server.plugin.on_frame(&session, &mut join).await {
        Ok(Verdict::Reject(e)) => assert_eq!(e.code.as_str(), "auth_required"),
        other => panic!("a join before login was answered with {other:?}"),
    }
    let logout = AccountRequest::Logout { everywhere: false };
    let (refused, _) = server.send(&session, &logout).await;
    assert_eq!(refused.as_deref(), Some("auth_required"));
}

#[tokio::test]
async fn passwords_only_over_tls_when_configured() {
    let server = Server::start("allow_plaintext = false").await;
    let plain = FakeSession::new(&server.host);
    let (refused, _) = server
        .send(&plain, &register("alice", "correct horse"))
        .await;
    assert_eq!(refused.as_deref(), Some("tls_required"));
    let tls = FakeSession::new(&server.host).over(Transport::Tls);
    let (refused, _) = server.send(&tls, &register("alice", "correct horse")).await;
    assert_eq!(refused, None);
}
