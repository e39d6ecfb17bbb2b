//! A client that stops reading is disconnected; everyone else carries on.

use chat_api::{ClientFrame, PresenceEvent, ServerFrame};
use chat_client::Received;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stalls_is_cut_off_and_others_keep_receiving() {
    let s = start(|c| c.limits.outbound_queue = 32).await;
    let mut slow = client(&s.addr, "slow").await;
    join(&mut slow, "#room").await;
    let mut fast = client(&s.addr, "fast").await;
    join(&mut fast, "#room").await;
    let mut sender = client(&s.addr, "sender").await;
    join(&mut sender, "#room").await;

    // The fast reader counts messages until told how many to expect.
    let (total_tx, total_rx) = tokio::sync::oneshot::channel::<usize>();
    let reader = tokio::spawn(async move {
        let mut total_rx = total_rx;
        let (mut count, mut total, mut slow_quit) = (0usize, None, None::<String>);
        loop {
            if let Ok(n) = total_rx.try_recv() {
                total = Some(n);
            }
            if let (true, Some(reason)) = (total == Some(count), &slow_quit) {
                return (count, reason.clone());
            }
            let f = tokio::select! {
                f = fast.recv_timeout(WAIT) => f.expect("fast client keeps receiving"),
                n = &mut total_rx, if total.is_none() => { total = Some(n.unwrap()); continue }
            };
            match f {
                Received::Core(ServerFrame::Message(_)) => count += 1,
                Received::Core(ServerFrame::Presence(p))
                    if p.event == PresenceEvent::Quit && p.nick == "slow" =>
                {
                    slow_quit = p.reason
                }
                _ => {}
            }
        }
    });

    // Big messages fill the kernel's socket buffers, then the queue.
    let text = "x".repeat(16 * 1024);
    let mut sent = 0;
    loop {
        let reply = request(
            &mut sender,
            ClientFrame::Say {
                room: "#room".into(),
                text: text.clone(),
            },
        )
        .await;
        let Received::Core(ServerFrame::Sent { recipients, .. }) = reply else {
            panic!("{reply:?}")
        };
        sent += 1;
        if recipients == 1 {
            break; // the slow client no longer takes deliveries
        }
        assert!(sent < 20_000, "the slow client was never disconnected");
    }
    total_tx.send(sent).unwrap();
    let (received, reason) = tokio::time::timeout(WAIT * 3, reader)
        .await
        .expect("fast reader done")
        .unwrap();
    assert_eq!(received, sent, "the fast client lost messages");
    assert!(reason.contains("waiting for you to read"), "{reason}");

    // The slow client, once it reads again, finds the reason and the end.
    let frames = read_to_end(&mut slow).await;
    let (code, _) = bye(&frames).expect("bye at the end of the slow client's stream");
    assert_eq!(code, "slow_consumer");
    s.server.hub().check_invariants().unwrap();
}
