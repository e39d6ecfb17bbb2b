//! The private-rooms plugin's commands, one by one, without a server: the
//! plugin runs on chat-api's fake host (`testkit`) and a real SQLite file.

use std::sync::Arc;

use chat_api::rooms::{RoomDetails, RoomEventKind, RoomRequest};
use chat_api::testkit::{FakeHost, FakeSession, Recipient};
use chat_api::{ClientFrame, HandlerResult, MessageHandler, Verdict};
use chatd_plugin_rooms::RoomsPlugin;
use chatd_storage::{Database, DatabaseOptions};
use serde_json::{json, Value};

/// A plugin on a fresh database with the accounts `names` registered.
struct Server {
    host: Arc<FakeHost>,
    plugin: RoomsPlugin,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(names: &[&str], config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&DatabaseOptions::new(dir.path().join("chatd.db")))
            .await
            .unwrap();
        for name in names {
            sqlx::query(
                "INSERT INTO accounts (name, name_key, password_hash, created_at, updated_at) VALUES (?, ?, 'x', 0, 0)",
            )
            .bind(name)
            .bind(name.to_ascii_lowercase())
            .execute(db.pool())
            .await
            .unwrap();
        }
        let host = FakeHost::new();
        let plugin = RoomsPlugin::new(&host.context("rooms", config), db).unwrap();
        Server {
            host,
            plugin,
            _dir: dir,
        }
    }

    async fn send(&self, session: &FakeSession, id: u64, request: &RoomRequest) -> HandlerResult {
        let mut frame = FakeSession::inbound(Some(id), request);
        self.plugin.on_frame(session, &mut frame).await
    }

    async fn core(&self, session: &FakeSession, id: u64, request: &ClientFrame) -> HandlerResult {
        let mut frame = FakeSession::inbound(Some(id), request);
        self.plugin.on_frame(session, &mut frame).await
    }

    /// Sends a request that must succeed and returns the session's replies.
    async fn ok(&self, session: &FakeSession, request: RoomRequest) -> Vec<Value> {
        match self.send(session, 1, &request).await {
            Ok(Verdict::Done) => session.take_received(),
            other => panic!("{request:?} was answered with {other:?}"),
        }
    }

    /// Sends a request that must be refused; returns the code and message.
    async fn refused(&self, session: &FakeSession, request: RoomRequest) -> (String, String) {
        match self.send(session, 1, &request).await {
            Ok(Verdict::Reject(e)) => (e.code.to_string(), e.message),
            other => panic!("{request:?} was answered with {other:?}, not refused"),
        }
    }

    fn members(&self, room: &str) -> Vec<String> {
        chat_api::Host::room_members(self.host.as_ref(), room).unwrap_or_default()
    }
}

fn create(room: &str) -> RoomRequest {
    RoomRequest::Create {
        room: room.into(),
        topic: None,
    }
}

fn invite(room: &str, user: &str) -> RoomRequest {
    RoomRequest::Invite {
        room: room.into(),
        user: user.into(),
    }
}

fn accept(room: &str) -> RoomRequest {
    RoomRequest::Accept { room: room.into() }
}

fn kick(room: &str, user: &str, reason: Option<&str>) -> RoomRequest {
    RoomRequest::Kick {
        room: room.into(),
        user: user.into(),
        reason: reason.map(str::to_string),
    }
}

fn ban(room: &str, user: &str) -> RoomRequest {
    RoomRequest::Ban {
        room: room.into(),
        user: user.into(),
        reason: None,
    }
}

/// alice owns #secret, bob is a member.
async fn room_with_member() -> (Server, FakeSession, FakeSession) {
    let server = Server::start(&["alice", "bob", "carol"], "").await;
    let alice = FakeSession::logged_in(&server.host, "alice", false);
    let bob = FakeSession::logged_in(&server.host, "bob", false);
    server.ok(&alice, create("#secret")).await;
    server.ok(&alice, invite("#secret", "bob")).await;
    server.ok(&bob, accept("#secret")).await;
    (server, alice, bob)
}

#[tokio::test]
async fn create_puts_the_owner_in_the_room() {
    let server = Server::start(&["alice"], "").await;
    let alice = FakeSession::logged_in(&server.host, "alice", false);
    let replies = server
        .ok(
            &alice,
            RoomRequest::Create {
                room: "#Secret".into(),
                topic: Some("plans".into()),
            },
        )
        .await;
    assert_eq!(
        replies,
        vec![json!({"type":"joined","id":1,"room":"#Secret","members":["alice"],"topic":"plans"})]
    );
    assert_eq!(server.members("#secret"), vec!["alice"]);
    // The name is taken, in any letter case.
    let (code, _) = server.refused(&alice, create("#SECRET")).await;
    assert_eq!(code, "room_exists");
}

#[tokio::test]
async fn guests_and_bad_names_are_refused() {
    let server = Server::start(&["alice"], "").await;
    let guest = FakeSession::guest(&server.host, "visitor");
    let (code, message) = server.refused(&guest, create("#mine")).await;
    assert_eq!(code, "account_required");
    assert!(message.contains("log in"), "{message}");
    let alice = FakeSession::logged_in(&server.host, "alice", false);
    let (code, _) = server.refused(&alice, create("no-hash")).await;
    assert_eq!(code, "invalid_room");
}

#[tokio::test]
async fn the_owner_limit_holds() {
    let server = Server::start(&["alice"], "max_rooms_per_owner = 1").await;
    let alice = FakeSession::logged_in(&server.host, "alice", false);
    server.ok(&alice, create("#one")).await;
    let (code, message) = server.refused(&alice, create("#two")).await;
    assert_eq!(code, "too_many_rooms");
    assert!(message.contains("you own 1 private rooms"), "{message}");
}

#[tokio::test]
async fn an_invitation_reaches_the_invitee_and_lets_them_in() {
    let server = Server::start(&["alice", "bob"], "").await;
    let alice = FakeSession::logged_in(&server.host, "alice", false);
    let bob = FakeSession::logged_in(&server.host, "bob", false);
    server.ok(&alice, create("#secret")).await;
    assert_eq!(
        server.ok(&alice, invite("#secret", "BOB")).await,
        vec![json!({"type":"ok","id":1})]
    );
    assert_eq!(
        bob.take_received(),
        vec![json!({"type":"room_invitation","room":"#secret","from":"alice"})]
    );
    let invitations = server.ok(&bob, RoomRequest::Invitations {}).await;
    assert_eq!(invitations[0]["invitations"][0]["room"], "#secret");
    // `join` with an invitation accepts it.
    let joined = server
        .core(
            &bob,
            2,
            &ClientFrame::Join {
                room: "#secret".into(),
            },
        )
        .await;
    assert!(matches!(joined, Ok(Verdict::Done)), "{joined:?}");
    assert_eq!(bob.take_received()[0]["type"], "joined");
    assert_eq!(server.members("#secret"), vec!["alice", "bob"]);
}

#[tokio::test]
async fn outsiders_learn_nothing_about_a_private_room() {
    let (server, _alice, _bob) = room_with_member().await;
    let carol = FakeSession::logged_in(&server.host, "carol", false);
    let join = server
        .core(
            &carol,
            3,
            &ClientFrame::Join {
                room: "#secret".into(),
            },
        )
        .await;
    match join {
        Ok(Verdict::Reject(e)) => assert_eq!(e.code.as_str(), "not_invited"),
        other => panic!("an outsider's join was answered with {other:?}"),
    }
    // The same answer for a room that exists and one that does not.
    let existing = server
        .refused(
            &carol,
            RoomRequest::Info {
                room: "#secret".into(),
            },
        )
        .await;
    let missing = server
        .refused(
            &carol,
            RoomRequest::Info {
                room: "#nothing".into(),
            },
        )
        .await;
    assert_eq!(existing.0, "no_such_room");
    assert_eq!(
        existing.1.replace("#secret", "#x"),
        missing.1.replace("#nothing", "#x")
    );
    // `rooms` leaves the private room out for carol, not for bob.
    let listed = |s: &FakeSession| s.take_received()[0]["rooms"].clone();
    server
        .core(&carol, 4, &ClientFrame::Rooms {})
        .await
        .unwrap();
    assert_eq!(listed(&carol), json!([]));
}

#[tokio::test]
async fn members_see_the_room_as_private_with_its_topic() {
    let (server, alice, bob) = room_with_member().await;
    server
        .ok(
            &alice,
            RoomRequest::Topic {
                room: "#secret".into(),
                topic: "launch".into(),
            },
        )
        .await;
    bob.take_received();
    server.core(&bob, 4, &ClientFrame::Rooms {}).await.unwrap();
    assert_eq!(
        bob.take_received(),
        vec![json!({"type":"rooms","id":4,"rooms":[
            {"name":"#secret","members":2,"kind":"private","topic":"launch"}
        ]})]
    );
}

#[tokio::test]
async fn kick_removes_the_member_and_tells_room_and_target() {
    let (server, alice, bob) = room_with_member().await;
    bob.take_received();
    server.host.take_sent();
    server
        .ok(&alice, kick("#secret", "bob", Some("spam")))
        .await;
    assert_eq!(server.members("#secret"), vec!["alice"]);
    let events: Vec<_> = server
        .host
        .take_sent()
        .into_iter()
        .filter(|s| s.frame["type"] == "room_event")
        .collect();
    assert_eq!(events[0].to, Recipient::Room("#secret".into()));
    assert_eq!(events[0].frame["event"], "kick");
    assert_eq!(events[0].frame["reason"], "spam");
    // bob is out of the room, so gets his own copy.
    let received = bob.take_received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["user"], "bob");
    assert_eq!(received[0]["by"], "alice");
    // Kicked, not banned: he may be invited again.
    server.ok(&alice, invite("#secret", "bob")).await;
}

#[tokio::test]
async fn a_ban_keeps_the_account_out_until_unbanned() {
    let (server, alice, bob) = room_with_member().await;
    server.ok(&alice, ban("#secret", "bob")).await;
    let (code, _) = server.refused(&alice, invite("#secret", "bob")).await;
    assert_eq!(code, "banned");
    match server
        .core(
            &bob,
            5,
            &ClientFrame::Join {
                room: "#secret".into(),
            },
        )
        .await
    {
        Ok(Verdict::Reject(e)) => assert_eq!(e.code.as_str(), "not_invited"),
        other => panic!("a banned account's join was answered with {other:?}"),
    }
    let unban = RoomRequest::Unban {
        room: "#secret".into(),
        user: "bob".into(),
    };
    server.ok(&alice, unban.clone()).await;
    let (code, _) = server.refused(&alice, unban).await;
    assert_eq!(code, "not_banned");
    server.ok(&alice, invite("#secret", "bob")).await;
}

#[tokio::test]
async fn only_the_owner_and_moderators_moderate() {
    let (server, alice, bob) = room_with_member().await;
    // A member may not kick.
    let (code, message) = server.refused(&bob, kick("#secret", "alice", None)).await;
    assert_eq!(code, "forbidden");
    assert!(
        message.contains("only the owner or a moderator"),
        "{message}"
    );
    // The owner cannot be kicked, even by a moderator.
    server
        .ok(
            &alice,
            RoomRequest::Promote {
                room: "#secret".into(),
                user: "bob".into(),
            },
        )
        .await;
    let (code, message) = server.refused(&bob, kick("#secret", "alice", None)).await;
    assert_eq!(code, "forbidden");
    assert!(message.contains("cannot be kicked"), "{message}");
    // A moderator may not appoint moderators.
    let (code, _) = server
        .refused(
            &bob,
            RoomRequest::Demote {
                room: "#secret".into(),
                user: "bob".into(),
            },
        )
        .await;
    assert_eq!(code, "forbidden");
    // Nobody kicks themselves.
    let (code, message) = server.refused(&alice, kick("#secret", "alice", None)).await;
    assert_eq!(code, "forbidden");
    assert!(message.contains("room_leave"), "{message}");
    // Kicking someone who is not a member.
    let (code, _) = server.refused(&alice, kick("#secret", "carol", None)).await;
    assert_eq!(code, "not_a_member");
    let (code, _) = server
        .refused(&alice, kick("#secret", "nobody", None))
        .await;
    assert_eq!(code, "no_such_user");
}

#[tokio::test]
async fn an_admin_moderates_without_being_a_member() {
    let (server, _alice, _bob) = room_with_member().await;
    let admin = FakeSession::logged_in(&server.host, "carol", true);
    server.ok(&admin, kick("#secret", "bob", None)).await;
    assert_eq!(server.members("#secret"), vec!["alice"]);
    let info = server
        .ok(
            &admin,
            RoomRequest::Info {
                room: "#secret".into(),
            },
        )
        .await;
    let details: RoomDetails = serde_json::from_value(info[0].clone()).unwrap();
    assert_eq!(details.owner.as_deref(), Some("alice"));
    assert_eq!(details.banned, Some(vec![]));
}

#[tokio::test]
async fn leaving_ends_membership_but_the_owner_must_hand_over_first() {
    let (server, alice, bob) = room_with_member().await;
    let (code, message) = server
        .refused(
            &alice,
            RoomRequest::Leave {
                room: "#secret".into(),
            },
        )
        .await;
    assert_eq!(code, "forbidden");
    assert!(message.contains("room_transfer"), "{message}");
    server
        .ok(
            &bob,
            RoomRequest::Leave {
                room: "#secret".into(),
            },
        )
        .await;
    assert_eq!(server.members("#secret"), vec!["alice"]);
    // No longer a member: the room is hidden from bob again.
    let (code, _) = server
        .refused(
            &bob,
            RoomRequest::Info {
                room: "#secret".into(),
            },
        )
        .await;
    assert_eq!(code, "no_such_room");
}

#[tokio::test]
async fn transfer_makes_a_new_owner_who_may_delete() {
    let (server, alice, bob) = room_with_member().await;
    server
        .ok(
            &alice,
            RoomRequest::Transfer {
                room: "#secret".into(),
                user: "bob".into(),
            },
        )
        .await;
    let events = bob.take_received();
    let transfer = events.iter().find(|f| f["type"] == "room_event").unwrap();
    assert_eq!(
        serde_json::from_value::<RoomEventKind>(transfer["event"].clone()).unwrap(),
        RoomEventKind::Transfer
    );
    let (code, _) = server
        .refused(
            &alice,
            RoomRequest::Delete {
                room: "#secret".into(),
            },
        )
        .await;
    assert_eq!(code, "forbidden");
    server
        .ok(
            &bob,
            RoomRequest::Delete {
                room: "#secret".into(),
            },
        )
        .await;
    assert_eq!(server.members("#secret"), Vec::<String>::new());
    // Deleted: every member was told, and the name is free again.
    let told = alice.take_received();
    assert!(
        told.iter().any(|f| f["event"] == "delete"),
        "alice was not told: {told:?}"
    );
    server.ok(&alice, create("#secret")).await;
}

#[tokio::test]
async fn a_malformed_request_names_the_missing_field() {
    let server = Server::start(&["alice"], "").await;
    let alice = FakeSession::logged_in(&server.host, "alice", false);
    let mut frame = FakeSession::inbound(Some(1), &json!({"type":"room_invite","room":"#a"}));
    match server.plugin.on_frame(&alice, &mut frame).await {
        Ok(Verdict::Reject(e)) => {
            assert_eq!(e.code.as_str(), "invalid_frame");
            assert!(e.message.contains("user"), "{}", e.message);
        }
        other => panic!("answered with {other:?}"),
    }
    let mut frame = FakeSession::inbound(Some(2), &json!({"type":"room_frobnicate"}));
    match server.plugin.on_frame(&alice, &mut frame).await {
        Ok(Verdict::Reject(e)) => assert_eq!(e.code.as_str(), "unknown_type"),
        other => panic!("answered with {other:?}"),
    }
}
