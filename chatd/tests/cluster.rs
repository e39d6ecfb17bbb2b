//! Several chatd nodes as one chat (docs/scaling.md): real `nats-server`
//! with JetStream (Debian's package; see `chatd_testkit::nats`), three
//! nodes on loopback, clients spread over them.

use std::collections::HashSet;
use std::time::Duration;

use chat_api::{ClientFrame, MessageKind, PresenceEvent, ServerFrame};
use chat_client::{Client, ConnectOptions, Received};
use chatd_testkit::nats::TempNats;
use chatd_testkit::{client, error_code, expect_text, join, request, start_at, TestServer, WAIT};

/// `[cluster]` for node `node` on `nats`, with a short heartbeat so that a
/// dead node is noticed quickly.
fn cluster_toml(nats: &TempNats, node: &str) -> String {
    format!(
        "[history]\nenabled = false\n[cluster]\nnode = \"{node}\"\nnats = [\"{}\"]\nheartbeat_ms = 100\nnode_timeout_ms = 1000\n",
        nats.url()
    )
}

async fn node(nats: &TempNats, name: &str) -> TestServer {
    start_at(
        "127.0.0.1:0",
        tempfile::tempdir().unwrap(),
        &cluster_toml(nats, name),
    )
    .await
}

async fn three_nodes(nats: &TempNats) -> [TestServer; 3] {
    [
        node(nats, "a").await,
        node(nats, "b").await,
        node(nats, "c").await,
    ]
}

/// Asks `client` for `users [room]` until the answer is `expected` (the
/// other nodes' events reach this node's directory shortly after they
/// happen), bounded by WAIT.
async fn await_users(client: &mut Client, room: Option<&str>, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = request(
            client,
            ClientFrame::Users {
                room: room.map(String::from),
            },
        )
        .await;
        let users = match &reply {
            Received::Core(ServerFrame::Users { users, .. }) => users.clone(),
            _ => Vec::new(),
        };
        if users == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "users {room:?} stayed {users:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sent_of(reply: &Received) -> (u64, usize) {
    match reply {
        Received::Core(ServerFrame::Sent {
            msg_id, recipients, ..
        }) => (*msg_id, *recipients),
        other => panic!("expected sent, got {other:?}"),
    }
}

async fn say(client: &mut Client, room: &str, text: &str) -> (u64, usize) {
    let reply = request(
        client,
        ClientFrame::Say {
            room: room.into(),
            text: text.into(),
        },
    )
    .await;
    sent_of(&reply)
}

#[tokio::test]
async fn users_on_three_nodes_message_each_other_in_rooms_directly_and_all_at_once() {
    let Some(nats) = TempNats::start().await else {
        return;
    };
    let [a, b, c] = three_nodes(&nats).await;
    let mut alice = client(&a.addr, "alice").await;
    let mut bob = client(&b.addr, "bob").await;
    let mut carol = client(&c.addr, "carol").await;
    for user in [&mut alice, &mut bob, &mut carol] {
        join(user, "#x").await;
    }
    for user in [&mut alice, &mut bob, &mut carol] {
        await_users(user, Some("#x"), &["alice", "bob", "carol"]).await;
    }
    // Everyone, from any node.
    await_users(&mut bob, None, &["alice", "bob", "carol"]).await;

    // A room message reaches the members on the two other nodes, with
    // one id.
    let (msg_id, recipients) = say(&mut alice, "#x", "hello from a").await;
    assert_eq!(recipients, 2, "the sender counts the members elsewhere");
    for user in [&mut bob, &mut carol] {
        let m = expect_text(user, "hello from a").await;
        assert_eq!((m.msg_id, m.from.as_str()), (msg_id, "alice"));
        assert_eq!(m.room.as_deref(), Some("#x"));
    }

    // A direct message crosses to the recipient's node only.
    let reply = request(
        &mut bob,
        ClientFrame::Msg {
            to: "Carol".into(),
            text: "psst".into(),
        },
    )
    .await;
    let (dm_id, _) = sent_of(&reply);
    let m = expect_text(&mut carol, "psst").await;
    assert_eq!(
        (m.kind, m.from.as_str(), m.msg_id),
        (MessageKind::Direct, "bob", dm_id)
    );
    assert_eq!(m.to.as_deref(), Some("carol"));

    // A broadcast reaches every node.
    let reply = request(
        &mut carol,
        ClientFrame::Broadcast {
            text: "to all".into(),
        },
    )
    .await;
    assert_eq!(sent_of(&reply).1, 2);
    for user in [&mut alice, &mut bob] {
        assert_eq!(
            expect_text(user, "to all").await.kind,
            MessageKind::Broadcast
        );
    }

    // Someone who joins later sees every member in the reply, wherever
    // they are, and the others see the join.
    let mut dave = client(&a.addr, "dave").await;
    await_users(&mut dave, Some("#x"), &["alice", "bob", "carol"]).await;
    let members = join(&mut dave, "#x").await;
    assert_eq!(members, ["alice", "bob", "carol", "dave"]);
    for user in [&mut bob, &mut carol] {
        let joined = user
            .expect(WAIT, |f| {
                matches!(f, Received::Core(ServerFrame::Presence(p))
                    if p.nick == "dave" && p.event == PresenceEvent::Join)
            })
            .await;
        assert!(joined.is_ok(), "the other nodes saw dave join");
    }
    let rooms = request(&mut carol, ClientFrame::Rooms {}).await;
    match rooms {
        Received::Core(ServerFrame::Rooms { rooms, .. }) => {
            assert_eq!(rooms.len(), 1);
            assert_eq!((rooms[0].name.as_str(), rooms[0].members), ("#x", 4));
        }
        other => panic!("expected rooms, got {other:?}"),
    }
    // Nobody by that name on any node.
    let reply = request(
        &mut alice,
        ClientFrame::Msg {
            to: "nobody".into(),
            text: "hi".into(),
        },
    )
    .await;
    assert_eq!(error_code(&reply), "no_such_user");

    // Leaving: the others see the quit, and the name leaves the lists.
    drop(carol);
    for user in [&mut alice, &mut bob] {
        chatd_testkit::expect_quit(user, "carol").await;
    }
    await_users(&mut alice, None, &["alice", "bob", "dave"]).await;
    for server in [a, b, c] {
        server.stop().await;
    }
}

/// A connection that has said `hello` but chosen no nickname yet.
async fn anonymous(addr: &str) -> Client {
    tokio::time::timeout(WAIT, Client::connect(addr, &ConnectOptions::default()))
        .await
        .expect("connect in time")
        .expect("connect")
}

#[tokio::test]
async fn two_nodes_racing_for_a_nickname_have_exactly_one_winner() {
    let Some(nats) = TempNats::start().await else {
        return;
    };
    let [a, b, c] = three_nodes(&nats).await;
    for round in 0..20 {
        let mut on_a = anonymous(&a.addr).await;
        let mut on_b = anonymous(&b.addr).await;
        let mut on_c = anonymous(&c.addr).await;
        // Case differs: names are unique without regard to case.
        let (ra, rb, rc) = tokio::join!(
            request(
                &mut on_a,
                ClientFrame::Nick {
                    nick: format!("Racer{round}")
                }
            ),
            request(
                &mut on_b,
                ClientFrame::Nick {
                    nick: format!("racer{round}")
                }
            ),
            request(
                &mut on_c,
                ClientFrame::Nick {
                    nick: format!("RACER{round}")
                }
            ),
        );
        let outcomes: Vec<Option<String>> = [&ra, &rb, &rc]
            .iter()
            .map(|r| chatd_testkit::code_of(r).map(str::to_string))
            .collect();
        let winners = outcomes.iter().filter(|o| o.is_none()).count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().flatten().all(|code| code == "nick_taken"),
            "round {round}: {outcomes:?}"
        );
    }
    // A name is free again once its holder has gone.
    let first = client(&a.addr, "keeper").await;
    let mut second = anonymous(&b.addr).await;
    let taken = request(
        &mut second,
        ClientFrame::Nick {
            nick: "KEEPER".into(),
        },
    )
    .await;
    assert_eq!(error_code(&taken), "nick_taken");
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = request(
            &mut second,
            ClientFrame::Nick {
                nick: "KEEPER".into(),
            },
        )
        .await;
        if chatd_testkit::code_of(&reply).is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the name stayed taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for server in [a, b, c] {
        server.stop().await;
    }
}

#[tokio::test]
async fn members_on_every_node_see_a_room_in_one_order_under_concurrent_senders() {
    let Some(nats) = TempNats::start().await else {
        return;
    };
    let nodes = three_nodes(&nats).await;
    const PER_SENDER: usize = 40;
    let mut senders = Vec::new();
    let mut watchers = Vec::new();
    for (i, server) in nodes.iter().enumerate() {
        let mut sender = client(&server.addr, &format!("sender{i}")).await;
        let mut watcher = client(&server.addr, &format!("watcher{i}")).await;
        join(&mut sender, "#order").await;
        join(&mut watcher, "#order").await;
        senders.push(sender);
        watchers.push(watcher);
    }
    let everyone: Vec<String> = (0..3)
        .flat_map(|i| [format!("sender{i}"), format!("watcher{i}")])
        .collect();
    let mut expected: Vec<&str> = everyone.iter().map(String::as_str).collect();
    expected.sort();
    for watcher in &mut watchers {
        await_users(watcher, Some("#order"), &expected).await;
    }
    // Three senders on three nodes at once.
    let sending = senders.into_iter().enumerate().map(|(i, mut sender)| {
        tokio::spawn(async move {
            for n in 0..PER_SENDER {
                say(&mut sender, "#order", &format!("{i}:{n}")).await;
            }
            sender
        })
    });
    let senders = futures_util::future::join_all(sending).await;
    let mut seen: Vec<Vec<(u64, String)>> = Vec::new();
    for watcher in &mut watchers {
        let mut got = Vec::new();
        while got.len() < 3 * PER_SENDER {
            let frame = tokio::time::timeout(WAIT, watcher.recv())
                .await
                .expect("messages keep coming")
                .unwrap()
                .expect("connection open");
            if let Received::Core(ServerFrame::Message(m)) = frame {
                got.push((m.msg_id, m.text));
            }
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "nodes a and b saw different orders");
    assert_eq!(seen[0], seen[2], "nodes a and c saw different orders");
    assert!(
        seen[0].windows(2).all(|w| w[0].0 < w[1].0),
        "ids rise in the order delivered"
    );
    let texts: HashSet<&String> = seen[0].iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), 3 * PER_SENDER, "nothing lost or repeated");
    // Each sender's messages stay in the order it sent them.
    for i in 0..3 {
        let mine: Vec<usize> = seen[0]
            .iter()
            .filter_map(|(_, t)| t.strip_prefix(&format!("{i}:"))?.parse().ok())
            .collect();
        assert_eq!(mine, (0..PER_SENDER).collect::<Vec<_>>());
    }
    drop(senders);
    for server in nodes {
        server.stop().await;
    }
}
