//! Many tasks racing on shared state leave it consistent.

use std::sync::Arc;
use std::time::Duration;

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, ConnectOptions, Received};
use tokio::sync::Barrier;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_client_wins_a_contested_nickname() {
    let s = start(|_| {}).await;
    const N: usize = 40;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let addr = s.addr.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr, &ConnectOptions::default())
                .await
                .unwrap();
            barrier.wait().await;
            let reply = c
                .request(&ClientFrame::Nick {
                    nick: "Highlander".into(),
                })
                .await
                .unwrap();
            (matches!(reply, Received::Core(ServerFrame::Ok { .. })), c)
        }));
    }
    let mut winners = 0;
    let mut clients = Vec::new();
    for t in tasks {
        let (won, c) = t.await.unwrap();
        winners += usize::from(won);
        clients.push(c);
    }
    assert_eq!(winners, 1, "exactly one session may hold a nickname");
    assert_eq!(s.server.hub().users(), vec!["Highlander"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_churn_keeps_the_hub_consistent() {
    let s = start(|_| {}).await;
    let rooms = ["#a", "#b", "#c"];
    let mut tasks = Vec::new();
    for t in 0..24 {
        let addr = s.addr.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..8 {
                let mut c = client(&addr, &format!("u{t}r{round}")).await;
                for (i, room) in rooms.iter().enumerate() {
                    if (t + round + i) % 2 == 0 {
                        join(&mut c, room).await;
                        let r = c
                            .request(&ClientFrame::Say {
                                room: room.to_string(),
                                text: format!("hi from {t}"),
                            })
                            .await
                            .unwrap();
                        assert!(
                            matches!(r, Received::Core(ServerFrame::Sent { .. })),
                            "{r:?}"
                        );
                    }
                }
                if round % 3 == 0 {
                    let _ = c
                        .request(&ClientFrame::Part { room: "#a".into() })
                        .await
                        .unwrap();
                }
                match round % 3 {
                    // Abrupt disconnect: just drop the socket.
                    0 => drop(c),
                    1 => {
                        c.writer
                            .send(None, &ClientFrame::Quit { reason: None })
                            .await
                            .unwrap();
                        read_to_end(&mut c).await;
                    }
                    _ => {
                        c.writer.shutdown().await.unwrap();
                        read_to_end(&mut c).await;
                    }
                }
            }
        }));
    }
    // Check the invariants while the churn is going on, too.
    let hub = s.server.hub().clone();
    let checker = tokio::spawn(async move {
        for _ in 0..200 {
            hub.check_invariants().unwrap();
            tokio::task::yield_now().await;
        }
    });
    for t in tasks {
        t.await.unwrap();
    }
    checker.await.unwrap();
    let hub = s.server.hub();
    wait_until("every session has left", || hub.session_count() == 0).await;
    hub.check_invariants().unwrap();
    assert!(
        hub.rooms().is_empty(),
        "rooms outlived their members: {:?}",
        hub.rooms()
    );
    assert!(hub.users().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_arrives_after_leaving_a_room() {
    let s = start(|_| {}).await;
    let mut talker = client(&s.addr, "talker").await;
    join(&mut talker, "#busy").await;
    let flood = tokio::spawn(async move {
        let mut n = 0u64;
        let stop = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            n += 1;
            let r = talker
                .request(&ClientFrame::Say {
                    room: "#busy".into(),
                    text: format!("m{n}"),
                })
                .await
                .unwrap();
            assert!(
                matches!(r, Received::Core(ServerFrame::Sent { .. })),
                "{r:?}"
            );
            if tokio::time::Instant::now() > stop || n > 200_000 {
                return;
            }
            if n.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut listener = client(&s.addr, "listener").await;
    for _ in 0..25 {
        join(&mut listener, "#busy").await;
        let id = listener.next_id();
        listener
            .writer
            .send(
                Some(id),
                &ClientFrame::Part {
                    room: "#busy".into(),
                },
            )
            .await
            .unwrap();
        // Everything up to the part's reply may contain room traffic...
        loop {
            let f = listener.recv_timeout(WAIT).await.unwrap();
            if f.reply_to() == Some(id) {
                assert!(matches!(f, Received::Core(ServerFrame::Ok { .. })), "{f:?}");
                break;
            }
        }
        // ...nothing after it may.
        let after = listener.sync().await.unwrap();
        assert!(
            texts(&after).is_empty(),
            "received {:?} after leaving",
            texts(&after)
        );
    }
    flood.abort();
    s.server.hub().check_invariants().unwrap();
}
