//! Messages reach exactly who they are addressed to.

use chat_api::{ClientFrame, MessageKind, PresenceEvent, ServerFrame};
use chat_client::Received;

use crate::common::*;

#[tokio::test]
async fn direct_message_reaches_only_its_recipient() {
    let s = start(|_| {}).await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "Bob").await;
    let mut carol = client(&s.addr, "carol").await;

    let reply = request(
        &mut alice,
        ClientFrame::Msg {
            to: "bob".into(),
            text: "psst".into(),
        },
    )
    .await;
    assert!(
        matches!(
            reply,
            Received::Core(ServerFrame::Sent { recipients: 1, .. })
        ),
        "{reply:?}"
    );
    let m = expect_text(&mut bob, "psst").await;
    assert_eq!(
        (m.kind, m.from.as_str(), m.to.as_deref()),
        (MessageKind::Direct, "alice", Some("Bob"))
    );
    assert!(m.msg_id > 0 && m.ts > 0);

    assert!(
        texts(&carol.sync().await.unwrap()).is_empty(),
        "carol saw private traffic"
    );
    assert!(
        texts(&alice.sync().await.unwrap()).is_empty(),
        "alice got her own DM back"
    );

    let reply = request(
        &mut alice,
        ClientFrame::Msg {
            to: "nobody".into(),
            text: "x".into(),
        },
    )
    .await;
    assert_eq!(error_code(&reply), "no_such_user");
}

#[tokio::test]
async fn room_message_reaches_exactly_the_members() {
    let s = start(|_| {}).await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "bob").await;
    let mut carol = client(&s.addr, "carol").await;
    let mut dave = client(&s.addr, "dave").await;
    assert_eq!(join(&mut alice, "#rust").await, vec!["alice"]);
    assert_eq!(join(&mut bob, "#Rust").await, vec!["alice", "bob"]);
    join(&mut carol, "#rust").await;
    join(&mut dave, "#go").await;

    let reply = request(
        &mut alice,
        ClientFrame::Say {
            room: "#RUST".into(),
            text: "hello rustaceans".into(),
        },
    )
    .await;
    let Received::Core(ServerFrame::Sent {
        recipients, msg_id, ..
    }) = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(recipients, 2);
    for member in [&mut bob, &mut carol] {
        let m = expect_text(member, "hello rustaceans").await;
        assert_eq!(
            (m.kind, m.room.as_deref(), m.msg_id),
            (MessageKind::Room, Some("#rust"), msg_id)
        );
    }
    assert!(
        texts(&dave.sync().await.unwrap()).is_empty(),
        "a non-member received a room message"
    );
    assert!(
        texts(&alice.sync().await.unwrap()).is_empty(),
        "the sender received her own message"
    );

    let reply = request(
        &mut dave,
        ClientFrame::Say {
            room: "#rust".into(),
            text: "let me in".into(),
        },
    )
    .await;
    assert_eq!(error_code(&reply), "not_in_room");
}

#[tokio::test]
async fn broadcast_reaches_everyone_once() {
    let s = start(|_| {}).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(client(&s.addr, &format!("user{i}")).await);
    }
    let reply = request(
        &mut clients[0],
        ClientFrame::Broadcast {
            text: "server maintenance at noon".into(),
        },
    )
    .await;
    assert!(
        matches!(
            reply,
            Received::Core(ServerFrame::Sent { recipients: 4, .. })
        ),
        "{reply:?}"
    );
    for c in clients.iter_mut().skip(1) {
        let m = expect_text(c, "server maintenance at noon").await;
        assert_eq!(m.kind, MessageKind::Broadcast);
        assert!(
            texts(&c.sync().await.unwrap()).is_empty(),
            "delivered twice"
        );
    }
    assert!(texts(&clients[0].sync().await.unwrap()).is_empty());
}

#[tokio::test]
async fn broadcast_policy_nobody_is_enforced() {
    let s = start(|c| c.server.broadcast = chatd::config::BroadcastPolicy::Nobody).await;
    let mut alice = client(&s.addr, "alice").await;
    let reply = request(
        &mut alice,
        ClientFrame::Broadcast {
            text: "hi all".into(),
        },
    )
    .await;
    assert_eq!(error_code(&reply), "forbidden");
}

#[tokio::test]
async fn presence_events_and_listings() {
    let s = start(|_| {}).await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "bob").await;
    join(&mut alice, "#lobby").await;
    join(&mut bob, "#lobby").await;
    let presence = |event: PresenceEvent, nick: &'static str| move |f: &Received| matches!(f, Received::Core(ServerFrame::Presence(p)) if p.event == event && p.nick == nick && p.room == "#lobby");
    alice
        .expect(WAIT, presence(PresenceEvent::Join, "bob"))
        .await
        .unwrap();

    let reply = request(
        &mut alice,
        ClientFrame::Users {
            room: Some("#lobby".into()),
        },
    )
    .await;
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Users { users, .. }) if users == &["alice", "bob"]),
        "{reply:?}"
    );
    let reply = request(&mut alice, ClientFrame::Rooms {}).await;
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Rooms { rooms, .. }) if rooms.len() == 1 && rooms[0].members == 2),
        "{reply:?}"
    );

    request(
        &mut bob,
        ClientFrame::Nick {
            nick: "robert".into(),
        },
    )
    .await;
    alice
        .expect(WAIT, |f| matches!(f, Received::Core(ServerFrame::Presence(p)) if p.event == PresenceEvent::Nick && p.new_nick.as_deref() == Some("robert")))
        .await
        .unwrap();
    request(
        &mut bob,
        ClientFrame::Part {
            room: "#lobby".into(),
        },
    )
    .await;
    alice
        .expect(WAIT, presence(PresenceEvent::Part, "robert"))
        .await
        .unwrap();

    join(&mut bob, "#lobby").await;
    bob.writer.shutdown().await.unwrap();
    drop(bob);
    alice
        .expect(WAIT, presence(PresenceEvent::Quit, "robert"))
        .await
        .unwrap();

    // The nickname is free again once its owner is gone.
    let _again = client(&s.addr, "robert").await;
    let reply = request(&mut alice, ClientFrame::Users { room: None }).await;
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Users { users, .. }) if users == &["alice", "robert"]),
        "{reply:?}"
    );
    s.server.hub().check_invariants().unwrap();
}

#[tokio::test]
async fn empty_room_disappears() {
    let s = start(|_| {}).await;
    let mut alice = client(&s.addr, "alice").await;
    join(&mut alice, "#temp").await;
    request(
        &mut alice,
        ClientFrame::Part {
            room: "#temp".into(),
        },
    )
    .await;
    let reply = request(&mut alice, ClientFrame::Rooms {}).await;
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Rooms { rooms, .. }) if rooms.is_empty()),
        "{reply:?}"
    );
    let reply = request(
        &mut alice,
        ClientFrame::Part {
            room: "#temp".into(),
        },
    )
    .await;
    assert_eq!(error_code(&reply), "not_in_room");
}
