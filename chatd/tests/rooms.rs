//! The private rooms plugin end to end: a real server on 127.0.0.1:0 with
//! the accounts and rooms plugins, a real SQLite file in a temporary
//! directory, and real clients. Nothing waits on sleeps: replies are awaited
//! with timeouts, and `Client::sync` proves what was not delivered.

use std::collections::BTreeSet;

use chat_api::ServerFrame;
use chat_client::{Client, Received};
use chatd_storage::{sqlx, Database, DatabaseOptions};
use chatd_testkit::{account_request, request_json, Server, Setup, AUTH_PLUGIN, WAIT};
use serde_json::{json, Value};

const PASSWORD: &str = "room password";

/// A data directory and its configuration: auth with cheap hashing, then
/// the rooms plugin with `rooms_config` as its table.
fn rooms_setup(rooms_config: &str) -> Setup {
    with_plugins(&format!(
        "{AUTH_PLUGIN}[[plugin]]\nname = \"rooms\"\n[plugin.config]\n{rooms_config}\n"
    ))
}

/// A data directory and its configuration with these `plugins`, flood
/// control off.
fn with_plugins(plugins: &str) -> Setup {
    Setup::new(&format!("[limits]\nframes_per_second = 0\n{plugins}"))
}

/// The server's database, opened beside it (WAL allows that).
async fn database(setup: &Setup) -> Database {
    Database::open(&DatabaseOptions::new(setup.db_path()))
        .await
        .unwrap()
}

/// Accounts on a test server, all with the password [`PASSWORD`].
trait Accounts {
    /// A new account, logged in.
    async fn user(&self, name: &str) -> User;
    async fn register(&self, name: &str) -> Client;
    /// A new connection logged in to an existing account.
    async fn login(&self, name: &str) -> User;
    async fn login_client(&self, name: &str) -> Client;
}

impl Accounts for Server {
    async fn user(&self, name: &str) -> User {
        User {
            name: name.to_string(),
            c: self.register(name).await,
        }
    }

    async fn register(&self, name: &str) -> Client {
        let mut c = self.connect().await;
        let reply = account_request(&mut c, "register", name, PASSWORD).await;
        assert_eq!(code(&reply), None, "register {name}: {reply:?}");
        c
    }

    async fn login(&self, name: &str) -> User {
        User {
            name: name.to_string(),
            c: self.login_client(name).await,
        }
    }

    async fn login_client(&self, name: &str) -> Client {
        let mut c = self.connect().await;
        let reply = account_request(&mut c, "login", name, PASSWORD).await;
        assert_eq!(code(&reply), None, "login {name}: {reply:?}");
        c
    }
}

async fn request(c: &mut Client, frame: Value) -> Received {
    request_json(c, frame).await
}

/// Sends a frame that must succeed; returns the reply.
async fn ok(c: &mut Client, frame: Value) -> Received {
    let reply = request(c, frame.clone()).await;
    assert_eq!(code(&reply), None, "{frame} was refused: {reply:?}");
    reply
}

/// Sends a frame that must fail with `expected`; returns the message.
async fn refused(c: &mut Client, frame: Value, expected: &str) -> String {
    let reply = request(c, frame.clone()).await;
    assert_eq!(code(&reply), Some(expected), "{frame}: {reply:?}");
    message(&reply).to_string()
}

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

fn say(room: &str, text: &str) -> Value {
    json!({"type": "say", "room": room, "text": text})
}

/// Whether a frame mentions `room` in any way (message, presence, event,
/// listing).
fn mentions(frame: &Received, room: &str) -> bool {
    let line = match frame {
        Received::Core(f) => serde_json::to_string(f).unwrap(),
        Received::Custom { fields, .. } => serde_json::to_string(fields).unwrap(),
    };
    line.to_ascii_lowercase()
        .contains(&room.to_ascii_lowercase())
}

/// Asserts that nothing about `room` reached the client so far.
async fn heard_nothing_of(c: &mut Client, room: &str) {
    let frames = c.sync().await.unwrap();
    let leaked: Vec<_> = frames.iter().filter(|f| mentions(f, room)).collect();
    assert!(leaked.is_empty(), "leaked {room}: {leaked:?}");
}

/// Asserts that the last frame about `room` the client has received is a
/// `room_event` of this kind (nothing of the room followed it); returns it.
async fn last_of(c: &mut Client, room: &str, event: &str) -> serde_json::Map<String, Value> {
    let frames = c.sync().await.unwrap();
    let last = frames
        .iter()
        .rposition(|f| mentions(f, room))
        .unwrap_or_else(|| panic!("nothing about {room} arrived"));
    match &frames[last] {
        Received::Custom { kind, fields } if kind == "room_event" && fields["event"] == event => {
            fields.clone()
        }
        other => panic!("expected {event} to be the last of {room}, got {other:?}"),
    }
}

/// Waits for a `room_event` of this kind.
async fn expect_event(c: &mut Client, room: &str, event: &str) -> serde_json::Map<String, Value> {
    let frame = c
        .expect(WAIT, |f| {
            matches!(f, Received::Custom { kind, fields }
                if kind == "room_event" && fields["event"] == event && fields["room"] == room)
        })
        .await
        .unwrap_or_else(|e| panic!("no room_event {event} in {room}: {e}"));
    match frame {
        Received::Custom { fields, .. } => fields,
        _ => unreachable!(),
    }
}

/// Waits for the `joined` of a room (a reply or a login's rejoin).
async fn expect_joined(c: &mut Client, room: &str) -> (Vec<String>, Option<String>) {
    let frame = c
        .expect(
            WAIT,
            |f| matches!(f, Received::Core(ServerFrame::Joined { room: r, .. }) if r == room),
        )
        .await
        .unwrap_or_else(|e| panic!("not put into {room}: {e}"));
    match frame {
        Received::Core(ServerFrame::Joined { members, topic, .. }) => (members, topic),
        _ => unreachable!(),
    }
}

/// The text of every room message for `room` among `frames`.
fn texts_in(frames: &[Received], room: &str) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Message(m)) if m.room.as_deref() == Some(room) => {
                Some(m.text.clone())
            }
            _ => None,
        })
        .collect()
}

fn room_names(reply: &Received) -> Vec<(String, Option<String>, Option<String>)> {
    match reply {
        Received::Core(ServerFrame::Rooms { rooms, .. }) => rooms
            .iter()
            .map(|r| (r.name.clone(), r.kind.clone(), r.topic.clone()))
            .collect(),
        other => panic!("expected rooms, got {other:?}"),
    }
}

/// A logged-in account and its connection.
struct User {
    name: String,
    c: Client,
}

impl User {
    async fn ok(&mut self, frame: Value) -> Received {
        ok(&mut self.c, frame).await
    }

    async fn refused(&mut self, frame: Value, expected: &str) -> String {
        refused(&mut self.c, frame, expected).await
    }
}

/// Creates `room` owned by `owner` and makes each of `members` a member.
async fn room_with(owner: &mut User, room: &str, members: &mut [&mut User]) {
    owner.ok(json!({"type": "room_create", "room": room})).await;
    for member in members.iter_mut() {
        owner
            .ok(json!({"type": "room_invite", "room": room, "user": member.name}))
            .await;
        member
            .ok(json!({"type": "room_accept", "room": room}))
            .await;
    }
}

/// Makes an account an admin (as `chatd user add --admin` would) and logs
/// it in on a new connection.
async fn admin(setup: &Setup, server: &Server, name: &str) -> User {
    drop(server.user(name).await);
    let db = database(setup).await;
    sqlx::query("UPDATE accounts SET admin = 1 WHERE name_key = ?")
        .bind(name)
        .execute(db.pool())
        .await
        .unwrap();
    db.close().await;
    server.login(name).await
}

/// Members of a private room according to the database (folded names).
async fn db_members(db: &Database, room: &str) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT m.account_key FROM private_room_members m \
         JOIN private_rooms r ON r.id = m.room_id WHERE r.name_key = ?",
    )
    .bind(room.to_ascii_lowercase())
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Checks the database's own invariants: one owner per room, no rows
/// outside a room, no member who is also invited or banned.
async fn check_db_invariants(db: &Database) {
    for (what, sql) in [
        (
            "rooms without exactly one owner",
            "SELECT count(*) FROM private_rooms r WHERE (SELECT count(*) FROM private_room_members m \
             WHERE m.room_id = r.id AND m.role = 'owner') <> 1",
        ),
        (
            "members also invited",
            "SELECT count(*) FROM private_room_members m JOIN private_room_invitations i \
             USING (room_id, account_key)",
        ),
        (
            "members also banned",
            "SELECT count(*) FROM private_room_members m JOIN private_room_bans b \
             USING (room_id, account_key)",
        ),
        (
            "rows of deleted rooms",
            "SELECT (SELECT count(*) FROM private_room_members WHERE room_id NOT IN (SELECT id FROM private_rooms)) \
                  + (SELECT count(*) FROM private_room_invitations WHERE room_id NOT IN (SELECT id FROM private_rooms))",
        ),
    ] {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap();
        assert_eq!(n, 0, "{what}");
    }
}

/// Members present in a hub room (folded), empty if the room is gone.
fn hub_members(server: &Server, room: &str) -> BTreeSet<String> {
    server
        .server
        .hub()
        .room_members(room)
        .map(|(_, members)| members.iter().map(|m| m.to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

/// An error message with the room name taken out, to compare answers
/// about two names.
fn generic(message: &str, room: &str) -> String {
    message.replace(room, "#ROOM")
}

#[tokio::test]
async fn outsiders_cannot_join_send_read_list_or_probe_private_rooms() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    room_with(&mut alice, "#secret", &mut [&mut bob]).await;
    alice
        .ok(json!({"type": "room_topic", "room": "#secret", "topic": "launch plans"}))
        .await;
    // A public room eve shares with the members, where a leak could show.
    for u in [&mut alice, &mut bob, &mut eve] {
        u.ok(json!({"type": "join", "room": "#lobby"})).await;
    }

    // Joining: refused, in any letter case, and the room stays closed.
    eve.refused(json!({"type": "join", "room": "#secret"}), "not_invited")
        .await;
    eve.refused(json!({"type": "join", "room": "#SeCrEt"}), "not_invited")
        .await;
    assert_eq!(
        hub_members(&server, "#secret"),
        BTreeSet::from(["alice".to_string(), "bob".to_string()])
    );

    // Sending: the core's answer for any room one is not in.
    let secret = eve.refused(say("#secret", "hi"), "not_in_room").await;
    let nothing = eve.refused(say("#nothing", "hi"), "not_in_room").await;
    assert_eq!(generic(&secret, "#secret"), generic(&nothing, "#nothing"));

    // Member list (and with it the topic): the core's "no such room".
    let secret = eve
        .refused(json!({"type": "users", "room": "#secret"}), "no_such_room")
        .await;
    let nothing = eve
        .refused(json!({"type": "users", "room": "#nothing"}), "no_such_room")
        .await;
    assert_eq!(generic(&secret, "#secret"), generic(&nothing, "#nothing"));

    // Every private-room frame answers exactly as for a name that does not
    // exist.
    for frame in [
        json!({"type": "room_info"}),
        json!({"type": "room_accept"}),
        json!({"type": "room_decline"}),
        json!({"type": "room_leave"}),
        json!({"type": "room_delete"}),
        json!({"type": "room_topic", "topic": "mine now"}),
        json!({"type": "room_invite", "user": "eve"}),
        json!({"type": "room_revoke", "user": "eve"}),
        json!({"type": "room_kick", "user": "bob"}),
        json!({"type": "room_ban", "user": "bob"}),
        json!({"type": "room_unban", "user": "bob"}),
        json!({"type": "room_promote", "user": "eve"}),
        json!({"type": "room_demote", "user": "bob"}),
        json!({"type": "room_transfer", "user": "eve"}),
    ] {
        let mut on_secret = frame.clone();
        on_secret["room"] = json!("#secret");
        let mut on_nothing = frame.clone();
        on_nothing["room"] = json!("#nothing");
        let secret = eve.refused(on_secret, "no_such_room").await;
        let nothing = eve.refused(on_nothing, "no_such_room").await;
        assert_eq!(
            generic(&secret, "#secret"),
            generic(&nothing, "#nothing"),
            "{frame}"
        );
    }

    // Listings: eve does not see the room; members see it as private with
    // its topic.
    let listing = room_names(&request(&mut eve.c, json!({"type": "rooms"})).await);
    assert_eq!(listing, vec![("#lobby".to_string(), None, None)]);
    let listing = room_names(&request(&mut bob.c, json!({"type": "rooms"})).await);
    assert!(listing.contains(&(
        "#secret".to_string(),
        Some("private".to_string()),
        Some("launch plans".to_string())
    )));

    // Messages and presence stay inside.
    eve.c.sync().await.unwrap();
    alice.ok(say("#secret", "the plan")).await;
    bob.ok(json!({"type": "part", "room": "#secret"})).await;
    bob.ok(json!({"type": "join", "room": "#secret"})).await;
    alice
        .ok(json!({"type": "room_topic", "room": "#secret", "topic": "new plans"}))
        .await;
    alice.ok(say("#lobby", "visible")).await;
    eve.c
        .expect(WAIT, |f| mentions(f, "visible"))
        .await
        .unwrap();
    heard_nothing_of(&mut eve.c, "#secret").await;
    assert_eq!(
        texts_in(&bob.c.sync().await.unwrap(), "#secret"),
        ["the plan"]
    );
    server.stop().await;
}

#[tokio::test]
async fn owner_moderator_member_and_admin_permission_matrix() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let mut owner = server.user("owner").await;
    let mut moder = server.user("moder").await;
    let mut member = server.user("member").await;
    let mut other = server.user("other").await;
    let mut outsider = server.user("outsider").await;
    let room = "#team";
    room_with(&mut owner, room, &mut [&mut moder, &mut member, &mut other]).await;
    owner
        .ok(json!({"type": "room_promote", "room": room, "user": "moder"}))
        .await;
    expect_event(&mut member.c, room, "promote").await;

    let frame = |kind: &str, user: Option<&str>| {
        let mut f = json!({"type": kind, "room": room});
        if let Some(user) = user {
            f["user"] = json!(user);
        }
        if kind == "room_topic" {
            f["topic"] = json!("a topic");
        }
        f
    };

    // A member may do none of the moderation.
    for (kind, user) in [
        ("room_invite", Some("outsider")),
        ("room_revoke", Some("outsider")),
        ("room_kick", Some("other")),
        ("room_ban", Some("other")),
        ("room_unban", Some("outsider")),
        ("room_topic", None),
        ("room_promote", Some("other")),
        ("room_demote", Some("moder")),
        ("room_transfer", Some("other")),
        ("room_delete", None),
    ] {
        member.refused(frame(kind, user), "forbidden").await;
    }

    // A moderator moderates members, but not the owner nor other
    // moderators, and has none of the owner's powers.
    moder.ok(frame("room_invite", Some("outsider"))).await;
    outsider
        .c
        .expect(
            WAIT,
            |f| matches!(f, Received::Custom { kind, .. } if kind == "room_invitation"),
        )
        .await
        .unwrap();
    moder.ok(frame("room_revoke", Some("outsider"))).await;
    expect_event(&mut outsider.c, room, "revoke").await;
    moder.ok(frame("room_topic", None)).await;
    let topic = expect_event(&mut owner.c, room, "topic").await;
    assert_eq!(
        (&topic["by"], &topic["topic"]),
        (&json!("moder"), &json!("a topic"))
    );
    moder
        .refused(frame("room_kick", Some("owner")), "forbidden")
        .await;
    moder
        .refused(frame("room_ban", Some("owner")), "forbidden")
        .await;
    owner.ok(frame("room_promote", Some("other"))).await;
    moder
        .refused(frame("room_kick", Some("other")), "forbidden")
        .await;
    owner.ok(frame("room_demote", Some("other"))).await;
    moder.ok(frame("room_kick", Some("other"))).await;
    let kick = expect_event(&mut other.c, room, "kick").await;
    assert_eq!(
        (&kick["by"], &kick["user"]),
        (&json!("moder"), &json!("other"))
    );
    moder.ok(frame("room_ban", Some("outsider"))).await;
    moder.ok(frame("room_unban", Some("outsider"))).await;
    for (kind, user) in [
        ("room_promote", Some("member")),
        ("room_demote", Some("moder")),
        ("room_transfer", Some("member")),
        ("room_delete", None),
    ] {
        moder.refused(frame(kind, user), "forbidden").await;
    }
    moder
        .refused(frame("room_kick", Some("moder")), "forbidden")
        .await;
    moder
        .refused(frame("room_kick", Some("outsider")), "not_a_member")
        .await;

    // The owner hands the room over and becomes a moderator.
    owner.refused(frame("room_leave", None), "forbidden").await;
    owner.ok(frame("room_transfer", Some("moder"))).await;
    expect_event(&mut member.c, room, "transfer").await;
    owner.refused(frame("room_delete", None), "forbidden").await;
    owner
        .refused(frame("room_promote", Some("member")), "forbidden")
        .await;
    owner.ok(frame("room_invite", Some("other"))).await;
    let info = owner.ok(frame("room_info", None)).await;
    let Received::Custom { fields, .. } = &info else {
        panic!("{info:?}")
    };
    assert_eq!(fields["owner"], json!("moder"));
    assert_eq!(fields["moderators"], json!(["owner"]));
    assert_eq!(fields["members"], json!(["member", "moder", "owner"]));
    assert_eq!(fields["invited"], json!(["other"]));
    let info = member.ok(frame("room_info", None)).await;
    let Received::Custom { fields, .. } = &info else {
        panic!("{info:?}")
    };
    assert!(
        fields.get("invited").is_none(),
        "members do not see invitations"
    );
    owner.ok(frame("room_leave", None)).await;
    owner
        .refused(frame("room_info", None), "no_such_room")
        .await;

    // An admin may moderate a room it is not in, but not kick its owner.
    let mut root = admin(&setup, &server, "root").await;
    let listing = room_names(&request(&mut root.c, json!({"type": "rooms"})).await);
    assert!(listing
        .iter()
        .any(|(n, k, _)| n == room && k.as_deref() == Some("private")));
    root.ok(frame("room_info", None)).await;
    root.refused(frame("room_kick", Some("moder")), "forbidden")
        .await;
    root.ok(frame("room_kick", Some("member"))).await;
    expect_event(&mut member.c, room, "kick").await;
    root.ok(frame("room_delete", None)).await;
    expect_event(&mut moder.c, room, "delete").await;
    server.stop().await;
}

#[tokio::test]
async fn rooms_roles_invitations_and_bans_survive_a_restart() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    room_with(&mut alice, "#Persist", &mut [&mut bob]).await;
    for frame in [
        json!({"type": "room_topic", "room": "#persist", "topic": "kept"}),
        json!({"type": "room_promote", "room": "#persist", "user": "bob"}),
        json!({"type": "room_invite", "room": "#persist", "user": "carol"}),
        json!({"type": "room_ban", "room": "#persist", "user": "dave"}),
    ] {
        alice.ok(frame).await;
    }
    drop((alice, bob, carol, dave));
    server.stop().await;

    let server = setup.start().await;
    // Members are back in their rooms as soon as they log in.
    let mut alice = server.login("alice").await;
    let (members, topic) = expect_joined(&mut alice.c, "#Persist").await;
    assert_eq!(
        (members, topic.as_deref()),
        (vec!["alice".to_string()], Some("kept"))
    );
    let mut bob = server.login("bob").await;
    expect_joined(&mut bob.c, "#Persist").await;
    alice.ok(say("#Persist", "still here")).await;
    bob.c
        .expect(WAIT, |f| mentions(f, "still here"))
        .await
        .unwrap();
    // Roles, invitations and bans too.
    bob.ok(json!({"type": "room_topic", "room": "#persist", "topic": "by bob"}))
        .await;
    let mut carol = server.login("carol").await;
    let invitations = carol.ok(json!({"type": "room_invitations"})).await;
    let Received::Custom { fields, .. } = &invitations else {
        panic!("{invitations:?}")
    };
    assert_eq!(fields["invitations"][0]["room"], json!("#Persist"));
    assert_eq!(fields["invitations"][0]["from"], json!("alice"));
    carol
        .ok(json!({"type": "room_accept", "room": "#persist"}))
        .await;
    let mut dave = server.login("dave").await;
    dave.refused(json!({"type": "join", "room": "#persist"}), "not_invited")
        .await;
    alice
        .refused(
            json!({"type": "room_invite", "room": "#persist", "user": "dave"}),
            "banned",
        )
        .await;

    // Logging out leaves the room; logging in again returns to it.
    bob.ok(json!({"type": "logout"})).await;
    assert!(!hub_members(&server, "#persist").contains("bob"));
    let reply = request(
        &mut bob.c,
        json!({"type": "login", "user": "bob", "password": PASSWORD}),
    )
    .await;
    assert_eq!(code(&reply), None, "{reply:?}");
    expect_joined(&mut bob.c, "#Persist").await;
    assert_eq!(
        hub_members(&server, "#persist"),
        BTreeSet::from(["alice", "bob", "carol"].map(String::from))
    );
    server.stop().await;
}

#[tokio::test]
async fn kicked_and_banned_members_hear_nothing_more_and_bans_prevent_rejoining() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let mut dave = server.user("dave").await;
    let room = "#club";
    room_with(&mut alice, room, &mut [&mut bob, &mut carol]).await;

    alice
        .ok(json!({"type": "room_kick", "room": room, "user": "bob", "reason": "spam"}))
        .await;
    expect_event(&mut carol.c, room, "kick").await;
    alice.ok(say(room, "after the kick")).await;
    carol
        .c
        .expect(WAIT, |f| mentions(f, "after the kick"))
        .await
        .unwrap();
    let told = last_of(&mut bob.c, room, "kick").await;
    assert_eq!(
        (&told["by"], &told["reason"]),
        (&json!("alice"), &json!("spam"))
    );
    bob.refused(say(room, "let me in"), "not_in_room").await;
    bob.refused(json!({"type": "join", "room": room}), "not_invited")
        .await;

    // A kick is not a ban: invited again, joining accepts the invitation.
    alice
        .ok(json!({"type": "room_invite", "room": room, "user": "bob"}))
        .await;
    bob.ok(json!({"type": "join", "room": room})).await;

    // A ban removes and keeps out, also across logins.
    alice
        .ok(json!({"type": "room_ban", "room": room, "user": "bob"}))
        .await;
    alice.ok(say(room, "after the ban")).await;
    carol
        .c
        .expect(WAIT, |f| mentions(f, "after the ban"))
        .await
        .unwrap();
    last_of(&mut bob.c, room, "ban").await;
    carol
        .c
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Presence(p))
                if p.nick == "bob" && p.reason.as_deref() == Some("banned by alice"))
        })
        .await
        .unwrap();
    // Banning an outsider ahead of time tells the outsider nothing.
    alice
        .ok(json!({"type": "room_ban", "room": room, "user": "dave"}))
        .await;
    expect_event(&mut carol.c, room, "ban").await;
    heard_nothing_of(&mut dave.c, room).await;
    dave.refused(json!({"type": "join", "room": room}), "not_invited")
        .await;
    bob.refused(json!({"type": "join", "room": room}), "not_invited")
        .await;
    bob.refused(json!({"type": "room_accept", "room": room}), "no_such_room")
        .await;
    alice
        .refused(
            json!({"type": "room_invite", "room": room, "user": "bob"}),
            "banned",
        )
        .await;
    let mut bob = server.login("bob").await;
    heard_nothing_of(&mut bob.c, room).await;
    assert!(!hub_members(&server, room).contains("bob"));

    alice
        .ok(json!({"type": "room_unban", "room": room, "user": "bob"}))
        .await;
    alice
        .ok(json!({"type": "room_invite", "room": room, "user": "bob"}))
        .await;
    bob.ok(json!({"type": "room_accept", "room": room})).await;
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_room_ends_every_members_access_at_once() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let mut alice = server.user("alice").await;
    let mut members = Vec::new();
    for name in ["m1", "m2", "m3"] {
        members.push(server.user(name).await);
    }
    let mut pending = server.user("pending").await;
    let room = "#gone";
    {
        let mut refs: Vec<&mut User> = members.iter_mut().collect();
        room_with(&mut alice, room, &mut refs).await;
    }
    alice
        .ok(json!({"type": "room_invite", "room": room, "user": "pending"}))
        .await;
    alice.ok(json!({"type": "room_delete", "room": room})).await;

    assert!(server.server.hub().room_members(room).is_none());
    for m in &mut members {
        let event = expect_event(&mut m.c, room, "delete").await;
        assert_eq!(event["by"], json!("alice"));
        m.refused(say(room, "anyone?"), "not_in_room").await;
        m.refused(json!({"type": "room_info", "room": room}), "no_such_room")
            .await;
    }
    pending
        .refused(json!({"type": "room_accept", "room": room}), "no_such_room")
        .await;
    let db = database(&setup).await;
    assert!(db_members(&db, room).await.is_empty());
    check_db_invariants(&db).await;
    db.close().await;
    // Nobody is put back on logging in.
    let mut m1 = server.login("m1").await;
    heard_nothing_of(&mut m1.c, room).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_invites_accepts_kicks_and_bans_leave_hub_and_database_agreeing() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let room = "#race";
    let mut alice = server.user("alice").await;
    let mut moder = server.user("moder").await;
    room_with(&mut alice, room, &mut [&mut moder]).await;
    alice
        .ok(json!({"type": "room_promote", "room": room, "user": "moder"}))
        .await;
    let mut users = Vec::new();
    for i in 0..8 {
        let user = server.user(&format!("u{i}")).await;
        alice
            .ok(json!({"type": "room_invite", "room": room, "user": user.name}))
            .await;
        users.push(user);
    }

    // Every invitee accepts and talks while the owner kicks some and the
    // moderator bans others, all at once.
    let mut tasks = Vec::new();
    for mut user in users {
        tasks.push(tokio::spawn(async move {
            let reply = request(&mut user.c, json!({"type": "room_accept", "room": room})).await;
            assert!(
                matches!(code(&reply), None | Some("no_such_room")),
                "{reply:?}"
            );
            let reply = request(&mut user.c, say(room, "hello")).await;
            assert!(
                matches!(code(&reply), None | Some("not_in_room")),
                "{reply:?}"
            );
            user
        }));
    }
    let kicks = tokio::spawn(async move {
        for i in 0..4 {
            let reply = request(
                &mut alice.c,
                json!({"type": "room_kick", "room": room, "user": format!("u{i}")}),
            )
            .await;
            assert!(
                matches!(code(&reply), None | Some("not_a_member")),
                "{reply:?}"
            );
        }
        alice
    });
    let bans = tokio::spawn(async move {
        for i in 4..6 {
            moder
                .ok(json!({"type": "room_ban", "room": room, "user": format!("u{i}")}))
                .await;
        }
        moder
    });
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap());
    }
    let mut alice = kicks.await.unwrap();
    let _moder = bans.await.unwrap();

    // The hub holds exactly the database's members (all are connected).
    let db = database(&setup).await;
    check_db_invariants(&db).await;
    let members = db_members(&db, room).await;
    assert_eq!(hub_members(&server, room), members);
    for banned in ["u4", "u5"] {
        assert!(!members.contains(banned), "{banned} was banned");
    }
    for never_kicked in ["u6", "u7"] {
        assert!(members.contains(never_kicked), "{never_kicked} accepted");
    }
    db.close().await;

    // Members hear the room; everyone else hears nothing more of it.
    alice.ok(say(room, "final words")).await;
    for user in &mut users {
        let frames = user.c.sync().await.unwrap();
        let heard = texts_in(&frames, room).contains(&"final words".to_string());
        assert_eq!(heard, members.contains(&user.name), "{}", user.name);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_while_members_talk_and_invitees_accept_leaves_nobody_inside() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let room = "#doomed";
    let mut alice = server.user("alice").await;
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(server.user(&format!("m{i}")).await);
    }
    {
        let mut refs: Vec<&mut User> = members.iter_mut().collect();
        room_with(&mut alice, room, &mut refs).await;
    }
    let mut invitees = Vec::new();
    for i in 0..4 {
        let user = server.user(&format!("i{i}")).await;
        alice
            .ok(json!({"type": "room_invite", "room": room, "user": user.name}))
            .await;
        invitees.push(user);
    }
    for user in members.iter_mut().chain(invitees.iter_mut()) {
        user.c.sync().await.unwrap();
    }

    let mut tasks = Vec::new();
    for mut user in members {
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                let reply = request(&mut user.c, say(room, &format!("{} {n}", user.name))).await;
                assert!(
                    matches!(code(&reply), None | Some("not_in_room")),
                    "{reply:?}"
                );
            }
            user
        }));
    }
    for mut user in invitees {
        tasks.push(tokio::spawn(async move {
            let reply = request(&mut user.c, json!({"type": "room_accept", "room": room})).await;
            assert!(
                matches!(code(&reply), None | Some("no_such_room")),
                "{reply:?}"
            );
            user
        }));
    }
    alice.ok(json!({"type": "room_delete", "room": room})).await;
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap());
    }

    assert!(server.server.hub().room_members(room).is_none());
    let db = database(&setup).await;
    assert!(db_members(&db, room).await.is_empty());
    check_db_invariants(&db).await;
    db.close().await;
    // Whoever was inside got the deletion last: nothing of the room after it.
    for user in &mut users {
        let frames = user.c.sync().await.unwrap();
        let last = frames.iter().rposition(|f| mentions(f, room));
        let was_member = user.name.starts_with('m');
        assert!(!was_member || last.is_some(), "{} was not told", user.name);
        if let Some(last) = last {
            let is_end = matches!(&frames[last], Received::Custom { kind, fields }
                if kind == "room_event" && fields["event"] == "delete");
            assert!(
                is_end,
                "{}: after the deletion: {:?}",
                user.name, &frames[last]
            );
        }
        user.refused(say(room, "hello?"), "not_in_room").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn deleting_the_owners_account_deletes_the_room_without_opening_it() {
    let setup = rooms_setup("");
    let server = setup.start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    room_with(&mut alice, "#orphan", &mut [&mut bob]).await;
    // As `chatd user delete alice` does, behind the server's back.
    let db = database(&setup).await;
    sqlx::query("DELETE FROM accounts WHERE name_key = 'alice'")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(db_members(&db, "#orphan").await.is_empty());
    check_db_invariants(&db).await;
    db.close().await;
    // The name is free, but nobody who was inside is in the room eve gets.
    let joined = eve.ok(json!({"type": "join", "room": "#orphan"})).await;
    assert!(
        matches!(&joined, Received::Core(ServerFrame::Joined { members, .. }) if members == &["eve"]),
        "{joined:?}"
    );
    bob.c
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Presence(p))
                if p.room == "#orphan" && p.reason.as_deref() == Some("the room no longer exists"))
        })
        .await
        .unwrap();
    bob.refused(say("#orphan", "still private?"), "not_in_room")
        .await;
    drop(alice);
    server.stop().await;
}

#[tokio::test]
async fn limits_bound_rooms_per_owner_and_seats_per_room() {
    let setup = rooms_setup("max_rooms_per_owner = 1\nmax_members = 2\nmax_topic_length = 10");
    let server = setup.start().await;
    let mut alice = server.user("alice").await;
    server.user("bob").await;
    server.user("carol").await;
    alice
        .ok(json!({"type": "room_create", "room": "#one"}))
        .await;
    alice
        .refused(
            json!({"type": "room_create", "room": "#two"}),
            "too_many_rooms",
        )
        .await;
    alice
        .refused(
            json!({"type": "room_create", "room": "#ONE"}),
            "room_exists",
        )
        .await;
    alice
        .ok(json!({"type": "room_invite", "room": "#one", "user": "bob"}))
        .await;
    alice
        .refused(
            json!({"type": "room_invite", "room": "#one", "user": "carol"}),
            "room_full",
        )
        .await;
    alice
        .refused(
            json!({"type": "room_invite", "room": "#one", "user": "nobody"}),
            "no_such_user",
        )
        .await;
    alice
        .refused(
            json!({"type": "room_topic", "room": "#one", "topic": "far too long a topic"}),
            "invalid_text",
        )
        .await;
    alice
        .refused(
            json!({"type": "room_create", "room": "nohash"}),
            "invalid_room",
        )
        .await;
    alice
        .refused(json!({"type": "room_create"}), "invalid_frame")
        .await;
    alice
        .refused(
            json!({"type": "room_dance", "room": "#one"}),
            "unknown_type",
        )
        .await;
    // A public room's name with people in it cannot be taken private.
    alice.ok(json!({"type": "join", "room": "#public"})).await;
    let mut bob = server.login("bob").await;
    bob.refused(
        json!({"type": "room_create", "room": "#public"}),
        "room_exists",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn without_accounts_private_room_frames_are_refused_and_public_rooms_work() {
    let setup = with_plugins("[[plugin]]\nname = \"rooms\"\n");
    let server = setup.start().await;
    let mut guest = Client::connect_as(&server.addr, "guest").await.unwrap();
    let mut other = Client::connect_as(&server.addr, "other").await.unwrap();
    assert!(guest
        .welcome
        .features
        .contains(&"private_rooms".to_string()));
    for frame in [
        json!({"type": "room_create", "room": "#mine"}),
        json!({"type": "room_invitations"}),
        json!({"type": "room_accept", "room": "#mine"}),
    ] {
        refused(&mut guest, frame, "account_required").await;
    }
    ok(&mut guest, json!({"type": "join", "room": "#pub"})).await;
    ok(&mut other, json!({"type": "join", "room": "#pub"})).await;
    ok(&mut other, say("#pub", "public hello")).await;
    guest
        .expect(WAIT, |f| mentions(f, "public hello"))
        .await
        .unwrap();
    let listing = room_names(&request(&mut guest, json!({"type": "rooms"})).await);
    assert_eq!(listing, vec![("#pub".to_string(), None, None)]);
    server.stop().await;
}

/// A `room_create` that the hub refuses (here: the owner is already in as
/// many rooms as `limits.max_rooms_per_session` allows) leaves no room
/// behind: after parting a room, creating it works, rather than finding its
/// name taken by a room nobody was ever put into.
#[tokio::test]
async fn a_refused_room_create_leaves_no_room_behind() {
    let setup = with_plugins(
        "max_rooms_per_session = 1\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nwatch_interval_ms = 50\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n\
         [[plugin]]\nname = \"rooms\"\n[plugin.config]\n",
    );
    let server = setup.start().await;
    let mut ann = server.user("ann").await;
    ok(&mut ann.c, json!({"type": "join", "room": "#lobby"})).await;
    refused(
        &mut ann.c,
        json!({"type": "room_create", "room": "#den"}),
        "room_limit",
    )
    .await;
    let db = database(&setup).await;
    assert!(db_members(&db, "#den").await.is_empty());

    ok(&mut ann.c, json!({"type": "part", "room": "#lobby"})).await;
    ok(&mut ann.c, json!({"type": "room_create", "room": "#den"})).await;
    assert_eq!(
        db_members(&db, "#den").await,
        BTreeSet::from(["ann".to_string()])
    );
    check_db_invariants(&db).await;
    db.close().await;
    server.stop().await;
}

/// A `room_accept` (or an invitation-accepting `join`) that the hub refuses
/// with `room_limit` records no membership: the invitation stays, and
/// accepting works once the member has room for it.
#[tokio::test]
async fn an_accept_refused_by_the_room_limit_leaves_the_invitation() {
    let setup = with_plugins(
        "max_rooms_per_session = 1\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nwatch_interval_ms = 50\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n\
         [[plugin]]\nname = \"rooms\"\n[plugin.config]\n",
    );
    let server = setup.start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ok(&mut ann.c, json!({"type": "room_create", "room": "#den"})).await;
    ok(
        &mut ann.c,
        json!({"type": "room_invite", "room": "#den", "user": "bob"}),
    )
    .await;
    ok(&mut bob.c, json!({"type": "join", "room": "#lobby"})).await;
    for frame in [
        json!({"type": "room_accept", "room": "#den"}),
        json!({"type": "join", "room": "#den"}),
    ] {
        refused(&mut bob.c, frame, "room_limit").await;
        let db = database(&setup).await;
        assert_eq!(
            db_members(&db, "#den").await,
            BTreeSet::from(["ann".to_string()]),
            "no membership recorded"
        );
        db.close().await;
    }
    ok(&mut bob.c, json!({"type": "part", "room": "#lobby"})).await;
    ok(&mut bob.c, json!({"type": "room_accept", "room": "#den"})).await;
    let db = database(&setup).await;
    assert_eq!(
        db_members(&db, "#den").await,
        BTreeSet::from(["ann".to_string(), "bob".to_string()])
    );
    check_db_invariants(&db).await;
    db.close().await;
    server.stop().await;
}
