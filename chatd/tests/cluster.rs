//! Several chatd nodes as one chat (docs/scaling.md): real `nats-server`
//! with JetStream (Debian's package; see `chatd_testkit::nats`), three
//! nodes on loopback, clients spread over them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_api::{ClientFrame, MessageKind, PresenceEvent, ServerFrame};
use chat_client::{Client, Received};
use chatd_testkit::nats::TempNats;
use chatd_testkit::process::Chatd;
use chatd_testkit::{
    anonymous, await_users, client, error_code, expect_text, join, request, start_at, TestServer,
    WAIT,
};

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

/// Asks `/readyz` until it answers `status` (bounded by WAIT): a node's
/// link to NATS is told to no client. Returns the body.
async fn await_readyz(admin: std::net::SocketAddr, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (got, _, body) = chatd_testkit::http_get(admin, "/readyz").await;
        if got == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {got}: {body}"
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

/// A `chatd` process in the cluster, its config in its own directory.
async fn node_process(nats: &TempNats, name: &str, dir: &std::path::Path) -> (Chatd, String) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{}",
            dir.join(name),
            cluster_toml(nats, name)
        ),
    )
    .unwrap();
    let chatd = Chatd::spawn(&config);
    let addr = chatd.address("plaintext").await;
    (chatd, addr)
}

/// Waits until `observer` sees `nick` quit; returns the reason given.
async fn quit_reason(observer: &mut Client, nick: &str) -> Option<String> {
    let frame = observer
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Presence(p))
                if p.nick == nick && p.event == PresenceEvent::Quit)
        })
        .await
        .unwrap_or_else(|e| panic!("waiting for {nick} to quit: {e}"));
    match frame {
        Received::Core(ServerFrame::Presence(p)) => p.reason,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_node_killed_mid_conversation_loses_only_its_own_users_who_come_back_elsewhere() {
    let Some(nats) = TempNats::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, a_addr) = node_process(&nats, "a", dir.path()).await;
    let (b, b_addr) = node_process(&nats, "b", dir.path()).await;
    let (mut c, c_addr) = node_process(&nats, "c", dir.path()).await;
    let mut alice = client(&a_addr, "alice").await;
    let mut bob = client(&b_addr, "bob").await;
    let mut carol = client(&c_addr, "carol").await;
    for user in [&mut alice, &mut bob, &mut carol] {
        join(user, "#x").await;
    }
    for user in [&mut alice, &mut bob, &mut carol] {
        await_users(user, Some("#x"), &["alice", "bob", "carol"]).await;
    }
    say(&mut carol, "#x", "before the crash").await;
    expect_text(&mut alice, "before the crash").await;

    c.child.start_kill().unwrap();
    c.child.wait().await.unwrap();
    // Within node_timeout_ms (1 s here) the others drop carol.
    let started = std::time::Instant::now();
    for user in [&mut alice, &mut bob] {
        let reason = quit_reason(user, "carol").await;
        assert_eq!(
            reason.as_deref(),
            Some("the user's server stopped answering")
        );
    }
    eprintln!(
        "carol was dropped {:?} after node c died",
        started.elapsed()
    );
    await_users(&mut alice, None, &["alice", "bob"]).await;

    // The others were not held up: they go on talking.
    say(&mut alice, "#x", "still here").await;
    expect_text(&mut bob, "still here").await;

    // Carol reconnects to another node, under her name (the dead node's
    // claim on it is taken over) and in her room again.
    let mut carol = client(&b_addr, "carol").await;
    join(&mut carol, "#x").await;
    await_users(&mut alice, Some("#x"), &["alice", "bob", "carol"]).await;
    say(&mut alice, "#x", "welcome back").await;
    expect_text(&mut carol, "welcome back").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn nodes_keep_serving_their_own_users_while_nats_restarts_and_then_recover() {
    let Some(mut nats) = TempNats::start().await else {
        return;
    };
    let with_admin = |name: &str| {
        format!(
            "{}[admin]\nlisten = \"127.0.0.1:0\"\n",
            cluster_toml(&nats, name)
        )
    };
    let a = start_at(
        "127.0.0.1:0",
        tempfile::tempdir().unwrap(),
        &with_admin("a"),
    )
    .await;
    let b = start_at(
        "127.0.0.1:0",
        tempfile::tempdir().unwrap(),
        &with_admin("b"),
    )
    .await;
    let mut alice = client(&a.addr, "alice").await;
    let mut anna = client(&a.addr, "anna").await;
    let mut bob = client(&b.addr, "bob").await;
    for user in [&mut alice, &mut anna, &mut bob] {
        join(user, "#x").await;
    }
    await_users(&mut alice, Some("#x"), &["alice", "anna", "bob"]).await;
    await_users(&mut bob, Some("#x"), &["alice", "anna", "bob"]).await;
    let admin = a.server.admin_addr.expect("admin listener");
    let (status, _, body) = chatd_testkit::http_get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("cluster: ok (node a, 1 other node(s): b)"),
        "{body}"
    );

    // Load through the restart: a sender on each node keeps talking in
    // its own room; refusals (`cluster_unavailable`, for a message in
    // flight when NATS went away) are allowed, stalls and crashes are not.
    let stop_load = tokio_util::sync::CancellationToken::new();
    let mut loaders = Vec::new();
    let mut accepted_counts = Vec::new();
    for (server, nick) in [(&a, "load_a"), (&b, "load_b")] {
        let mut loader = client(&server.addr, nick).await;
        join(&mut loader, "#load").await;
        let stop = stop_load.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        accepted_counts.push(accepted.clone());
        loaders.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let frame = ClientFrame::Say {
                    room: "#load".into(),
                    text: "load".into(),
                };
                if chatd_testkit::code_of(&request(&mut loader, frame).await).is_none() {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let accepted_all = |at_least: Vec<usize>| {
        let counts = accepted_counts.clone();
        move || {
            counts
                .iter()
                .zip(&at_least)
                .all(|(c, min)| c.load(Ordering::Relaxed) > *min)
        }
    };
    chatd_testkit::wait_until("the load flows", accepted_all(vec![0, 0])).await;

    nats.kill().await;
    // Node a says it is degraded...
    let body = await_readyz(admin, 503).await;
    assert!(
        body.contains(
            "cluster: FAILED: node a: NATS is unreachable; serving this node's users only"
        ),
        "{body}"
    );
    // ...and its own users still talk to each other, without a stall.
    for n in 0..20 {
        say(&mut alice, "#x", &format!("local {n}")).await;
        expect_text(&mut anna, &format!("local {n}")).await;
    }
    // A new name cannot be checked against the other nodes meanwhile.
    let mut newcomer = anonymous(&a.addr).await;
    let refused = request(
        &mut newcomer,
        ClientFrame::Nick {
            nick: "newcomer".into(),
        },
    )
    .await;
    assert_eq!(error_code(&refused), "cluster_unavailable");

    nats.restart().await;
    await_readyz(admin, 200).await;
    // Across nodes again, both ways, nobody dropped in between.
    await_users(&mut bob, Some("#x"), &["alice", "anna", "bob"]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut n = 0;
    loop {
        // The stream's consumers may take a moment to be recreated: a
        // message is sent until one arrives, then every later one must.
        say(&mut alice, "#x", &format!("across {n}")).await;
        let got = bob
            .expect(Duration::from_millis(200), |f| {
                matches!(f, Received::Core(ServerFrame::Message(m)) if m.text.starts_with("across"))
            })
            .await;
        if got.is_ok() {
            break;
        }
        n += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages never crossed again"
        );
    }
    say(&mut bob, "#x", "back from b").await;
    expect_text(&mut alice, "back from b").await;
    expect_text(&mut anna, "back from b").await;
    request(
        &mut newcomer,
        ClientFrame::Nick {
            nick: "newcomer".into(),
        },
    )
    .await;
    let now: Vec<usize> = accepted_counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    chatd_testkit::wait_until("the load flows again", accepted_all(now)).await;
    stop_load.cancel();
    for loader in loaders {
        loader.await.unwrap();
    }
    a.stop().await;
    b.stop().await;
}

#[test]
fn what_needs_a_shared_database_is_refused_by_name() {
    let parse = |extra: &str| {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[cluster]\nnode = \"a\"\nnats = [\"nats://127.0.0.1:4222\"]\n{extra}"
        );
        chatd::Config::parse(&text, "test.toml", None).map_err(|e| e.to_string())
    };
    let history = parse("").unwrap_err();
    assert!(
        history.contains(
            "[cluster] with [history] needs the nodes' shared database: set database.url"
        ),
        "{history}"
    );
    let auth = parse("[history]\nenabled = false\n[[plugin]]\nname = \"auth\"\n").unwrap_err();
    assert!(
        auth.contains("with the 'auth' plugin needs the nodes' shared database"),
        "{auth}"
    );
    let shared = "[database]\nurl = \"postgres://chatd:pw@127.0.0.1/chatd\"\n";
    let accounts = "[[plugin]]\nname = \"auth\"\n[[plugin]]\nname = \"rooms\"\n";
    assert!(parse(&format!("{shared}{accounts}")).is_ok());
    assert!(parse(&format!("{shared}[[plugin]]\nname = \"files\"\n")).is_ok());
    assert!(parse("[history]\nenabled = false\n").is_ok());
    let bad_node = chatd::Config::parse(
        "[server]\nlisten = \"127.0.0.1:0\"\n[history]\nenabled = false\n[cluster]\nnode = \"a.b\"\nnats = [\"nats://127.0.0.1:4222\"]\n",
        "test.toml",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad_node.contains("cluster.node = \"a.b\" must be 1 to 32 characters"),
        "{bad_node}"
    );
}

#[tokio::test]
async fn a_node_that_cannot_reach_nats_refuses_to_start_and_says_what_to_do() {
    // A port nobody listens on, held (bound, never listening) for the
    // test, so no other test's listener can take it meanwhile.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[history]\nenabled = false\n[cluster]\nnode = \"a\"\nnats = [\"nats://127.0.0.1:{port}\"]\n",
        dir.path()
    );
    let config = chatd::Config::parse(&text, "test.toml", None).unwrap();
    let error = match chatd::start(config).await {
        Ok(_) => panic!("started without NATS"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.starts_with(&format!("cannot reach NATS at nats://127.0.0.1:{port}: "))
            && error.ends_with("start nats-server with JetStream (-js) there or fix cluster.nats"),
        "{error}"
    );
}

#[tokio::test]
async fn a_node_shut_down_gracefully_takes_its_users_out_of_the_others_lists_at_once() {
    let Some(nats) = TempNats::start().await else {
        return;
    };
    let a = node(&nats, "a").await;
    let b = node(&nats, "b").await;
    let mut alice = client(&a.addr, "alice").await;
    let mut bob = client(&b.addr, "bob").await;
    join(&mut alice, "#x").await;
    join(&mut bob, "#x").await;
    await_users(&mut alice, Some("#x"), &["alice", "bob"]).await;
    b.stop().await;
    // Told by the leaving node, not found out by its silence (which would
    // say "the user's server stopped answering").
    let reason = quit_reason(&mut alice, "bob").await;
    assert_eq!(reason.as_deref(), Some("the server is shutting down"));
    await_users(&mut alice, None, &["alice"]).await;
    a.stop().await;
}

/// A node's state (everyone on it, with their rooms) can be larger than
/// one NATS message (`max_payload`: 1 MB by default, some ten thousand
/// users; 4 KB here). It goes in pages: a node started later sees every
/// user and room member of the large one, and after NATS restarts (when
/// each node republishes its state on the stream) the picture is whole
/// and current.
#[tokio::test]
async fn a_node_with_more_users_than_one_nats_message_holds_is_seen_whole() {
    let Some(mut nats) = TempNats::start_with("max_payload: 4096\n").await else {
        return;
    };
    let a = node(&nats, "a").await;
    let mut members = Vec::new();
    for i in 0..80 {
        let nick = format!("member{i:02}");
        let mut member = client(&a.addr, &nick).await;
        join(&mut member, "#everyone").await;
        join(
            &mut member,
            &format!("#a-room-with-a-rather-long-name-{i:02}"),
        )
        .await;
        members.push((nick, member));
    }
    let b = node(&nats, "b").await;
    let mut bob = client(&b.addr, "bob").await;
    let expected = |members: &[(String, Client)]| {
        let mut names: Vec<String> = members.iter().map(|(nick, _)| nick.clone()).collect();
        names.push("bob".into());
        names.sort();
        names
    };
    let names = expected(&members);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    await_users(&mut bob, None, &names).await;
    join(&mut bob, "#everyone").await;
    await_users(&mut bob, Some("#everyone"), &names).await;
    await_users(&mut members[0].1, Some("#everyone"), &names).await;

    // A quarter of them leave while NATS is down; when it is back, node a
    // republishes its state (in pages) and node b holds exactly the rest.
    nats.kill().await;
    let leaving: Vec<(String, Client)> = members.drain(..20).collect();
    let left: Vec<String> = leaving.iter().map(|(nick, _)| nick.clone()).collect();
    drop(leaving);
    let names = expected(&members);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // Node a has seen them go (bob stays listed: nobody is judged while
    // the link is down).
    await_users(&mut members[0].1, Some("#everyone"), &names).await;
    nats.restart().await;
    await_users(&mut bob, Some("#everyone"), &names).await;
    await_users(&mut bob, None, &names).await;
    // Bob's client was told of each of them leaving, as if he had seen it.
    for nick in &left {
        quit_reason(&mut bob, nick).await;
    }
}

/// A node of the previous version reads another node's state from the
/// answer to its request on `<prefix>.state.<node>`. During a rolling
/// upgrade the answer still carries it, marked as also on the stream
/// (where nodes of this version take it from, in order with the events).
#[tokio::test]
async fn the_answer_to_a_state_request_still_carries_the_state_for_older_nodes() {
    let Some(nats) = TempNats::start().await else {
        return;
    };
    let a = node(&nats, "a").await;
    let mut alice = client(&a.addr, "alice").await;
    join(&mut alice, "#x").await;
    let older_node = async_nats::connect(nats.url()).await.unwrap();
    let asked = older_node.request("chatd.state.a", bytes::Bytes::new());
    let reply = tokio::time::timeout(WAIT, asked).await.unwrap().unwrap();
    let state: chat_api::serde_json::Value =
        chat_api::serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(state["node"], "a", "{state}");
    assert_eq!(state["on_stream"], true, "{state}");
    assert_eq!(state["users"][0]["nick"], "alice", "{state}");
    assert_eq!(state["users"][0]["rooms"][0], "#x", "{state}");
}
