//! The files plugin end to end: a real chatd on loopback, real files in temp
//! dirs, the real client library.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_api::files::{FileChunk, FileOffer, FileTarget};
use chat_api::{ClientFrame, ServerFrame};
use chat_client::files::{self, Recipient};
use chat_client::Received;
use common::*;

const MIB: usize = 1024 * 1024;

fn error_code(frame: &Received) -> String {
    match frame {
        Received::Core(ServerFrame::Error { code, .. }) => code.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A small chunk size makes a 3 MiB file 384 chunks: far more than the
/// default flood control (50 frames/s, burst 200) would let through in the
/// time the transfer takes, so this also shows chunks are exempt from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_file_arrives_byte_identical_to_a_user() {
    let t = start("", "chunk_size = 8192").await;
    let work = tempfile::tempdir().unwrap();
    let original = random_file(work.path(), "data.bin", 3 * MIB + 123, 1);
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;

    let mut reports = Vec::new();
    let sent = files::upload(&mut alice, &original, &Recipient::User("bob".into()), |p| {
        reports.push(p.done)
    })
    .await
    .unwrap();
    assert_eq!(sent.recipients, vec!["bob".to_string()]);
    assert_eq!(sent.size, (3 * MIB + 123) as u64);
    assert!(
        reports.len() > 300,
        "progress reported per chunk: {}",
        reports.len()
    );
    assert!(reports.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(*reports.last().unwrap(), sent.size);

    let offered = expect_available(&mut bob).await;
    assert_eq!(
        (offered.from.as_str(), offered.name.as_str()),
        ("alice", "data.bin")
    );
    assert_eq!(offered.sha256, sent.sha256);
    let copy = work.path().join("copy.bin");
    let mut done = 0;
    files::download(&mut bob, &offered, &copy, |p| done = p.done)
        .await
        .unwrap();
    assert_eq!(done, sent.size);
    same_bytes(&original, &copy);

    // The recipient confirmed: the sender hears of it, the disk is clean.
    let delivered = expect_kind(&mut alice, "file_delivered").await;
    assert_eq!(
        delivered
            .decode_custom::<chat_api::files::FileDelivered>()
            .unwrap()
            .to,
        "bob"
    );
    assert!(t.stored().is_empty(), "left on disk: {:?}", t.stored());
    assert!(files::list(&mut bob).await.unwrap().incoming.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_to_a_room_reaches_every_member_and_nobody_else() {
    let t = start("", "").await;
    let work = tempfile::tempdir().unwrap();
    let original = random_file(work.path(), "room.bin", 2 * MIB + 7, 2);
    let mut alice = client(&t.addr, "alice").await;
    let mut members = Vec::new();
    for nick in ["bob", "carol", "erin"] {
        let mut c = client(&t.addr, nick).await;
        join(&mut c, "#team").await;
        members.push((nick, c));
    }
    join(&mut alice, "#team").await;
    let mut dave = client(&t.addr, "dave").await;

    let sent = files::upload(
        &mut alice,
        &original,
        &Recipient::Room("#team".into()),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(sent.recipients, vec!["bob", "carol", "erin"]);

    for (nick, member) in &mut members {
        let offered = expect_available(member).await;
        assert_eq!(offered.room.as_deref(), Some("#team"));
        let copy = work.path().join(format!("{nick}.bin"));
        files::download(member, &offered, &copy, |_| {})
            .await
            .unwrap();
        same_bytes(&original, &copy);
    }
    // Dave is not in the room: told nothing, and cannot fetch it by id.
    let before = dave.sync().await.unwrap();
    assert!(
        before.iter().all(|f| f.kind() != "file_available"),
        "{before:?}"
    );
    let reply = dave
        .request_json(&chat_api::files::FileGet {
            transfer: sent.transfer.clone(),
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(error_code(&reply), "no_such_transfer");
    // Everyone has it: deleted from disk.
    assert!(t.stored().is_empty(), "left on disk: {:?}", t.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_the_connection_is_cut() {
    let t = start_with_accounts("").await;
    let work = tempfile::tempdir().unwrap();
    let size = 4 * MIB + 5;
    let original = random_file(work.path(), "resume.bin", size, 3);
    let proxy = Proxy::start(t.socket_addr()).await;
    let mut watcher = register(&t.addr, "watcher").await;
    join(&mut watcher, "#lobby").await;
    let mut bob = register(&t.addr, "bob").await;
    let mut alice = register(&proxy.addr.to_string(), "alice").await;
    join(&mut alice, "#lobby").await;

    let cut = proxy.cutter();
    let transfer = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = transfer.clone();
    let failed = files::upload(&mut alice, &original, &Recipient::User("bob".into()), |p| {
        *seen.lock().unwrap() = p.transfer.clone();
        if p.done >= (size / 3) as u64 {
            cut();
        }
    })
    .await;
    assert!(failed.is_err(), "the upload should have been cut");
    drop(alice);
    expect_quit(&mut watcher, "alice").await;
    let transfer = transfer.lock().unwrap().clone();

    // Back, directly this time: the server kept what it confirmed.
    let mut alice = log_in(&t.addr, "alice").await;
    let listing = files::list(&mut alice).await.unwrap();
    let partial = &listing.outgoing[0];
    assert_eq!(partial.transfer, transfer);
    assert_eq!(partial.state, "uploading");
    assert!(
        partial.received >= (size / 3) as u64 && partial.received < size as u64,
        "confirmed {} of {size}",
        partial.received
    );
    let mut first = None;
    let sent = files::resume_upload(&mut alice, &transfer, &original, |p| {
        first.get_or_insert(p.done);
    })
    .await
    .unwrap();
    assert_eq!(first, Some(partial.received), "resumed, not restarted");
    assert_eq!(sent.recipients, vec!["bob"]);

    let offered = expect_available(&mut bob).await;
    let copy = work.path().join("copy.bin");
    files::download(&mut bob, &offered, &copy, |_| {})
        .await
        .unwrap();
    same_bytes(&original, &copy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_resumes_after_the_connection_is_cut() {
    let t = start_with_accounts("").await;
    let work = tempfile::tempdir().unwrap();
    let size = 4 * MIB + 9;
    let original = random_file(work.path(), "down.bin", size, 4);
    let proxy = Proxy::start(t.socket_addr()).await;
    let mut alice = register(&t.addr, "alice").await;
    join(&mut alice, "#lobby").await;
    let mut bob = register(&proxy.addr.to_string(), "bob").await;
    join(&mut bob, "#lobby").await;
    files::upload(
        &mut alice,
        &original,
        &Recipient::User("bob".into()),
        |_| {},
    )
    .await
    .unwrap();
    let offered = expect_available(&mut bob).await;

    let copy = work.path().join("copy.bin");
    let cut = proxy.cutter();
    let failed = files::download(&mut bob, &offered, &copy, |p| {
        if p.done >= (size / 3) as u64 {
            cut();
        }
    })
    .await;
    assert!(failed.is_err(), "the download should have been cut");
    drop(bob);
    expect_quit(&mut alice, "bob").await;
    let partial = std::fs::metadata(files::part_path(&copy)).unwrap().len();
    assert!(
        partial >= (size / 3) as u64 && partial < size as u64,
        "{partial}"
    );
    assert!(
        !copy.exists(),
        "an unverified file must not appear under its name"
    );

    // Bob comes back later and finds the file waiting.
    let mut bob = log_in(&t.addr, "bob").await;
    let waiting = files::list(&mut bob).await.unwrap().incoming;
    assert_eq!(waiting, vec![offered.clone()]);
    let mut first = None;
    files::download(&mut bob, &waiting[0], &copy, |p| {
        first.get_or_insert(p.done);
    })
    .await
    .unwrap();
    assert_eq!(first, Some(partial), "resumed from the partial file");
    same_bytes(&original, &copy);
    assert!(!files::part_path(&copy).exists());
}

/// Uploads `content` by hand, with the offer saying `sha256`.
async fn upload_raw(
    client: &mut chat_client::Client,
    to: &str,
    name: &str,
    content: &[u8],
    sha256: &str,
) -> (String, Received) {
    let reply = client
        .request_json(&FileOffer {
            target: FileTarget {
                to: Some(to.into()),
                room: None,
            },
            name: name.into(),
            size: content.len() as u64,
            sha256: sha256.into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.kind(), "file_offered", "{reply:?}");
    let offered: chat_api::files::FileOffered = reply.decode_custom().unwrap();
    let mut last = None;
    for (i, piece) in content.chunks(offered.chunk_size as usize).enumerate() {
        last = Some(
            client
                .request_json(&chunk(
                    &offered.transfer,
                    (i * offered.chunk_size as usize) as u64,
                    piece,
                ))
                .await
                .unwrap(),
        );
    }
    (offered.transfer, last.unwrap())
}

fn chunk(transfer: &str, offset: u64, bytes: &[u8]) -> FileChunk {
    use base64::Engine;
    FileChunk {
        transfer: transfer.into(),
        offset,
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_mismatch_is_rejected_and_nothing_is_delivered() {
    let t = start("", "").await;
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    let content = vec![7u8; 100_000];
    let wrong = "0".repeat(64);
    let (transfer, last) = upload_raw(&mut alice, "bob", "x.bin", &content, &wrong).await;
    assert_eq!(error_code(&last), "hash_mismatch");
    let Received::Core(ServerFrame::Error { message, .. }) = &last else {
        unreachable!()
    };
    assert!(message.contains("offer the file again"), "{message}");
    let before = bob.sync().await.unwrap();
    assert!(
        before.iter().all(|f| f.kind() != "file_available"),
        "{before:?}"
    );
    assert!(files::list(&mut bob).await.unwrap().incoming.is_empty());
    assert!(files::list(&mut alice).await.unwrap().outgoing.is_empty());
    assert!(t.stored().is_empty(), "left on disk: {:?}", t.stored());
    let reply = bob
        .request_json(&chat_api::files::FileGet {
            transfer,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(error_code(&reply), "no_such_transfer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunks_get_clear_errors_and_do_not_corrupt_the_upload() {
    let t = start("", "chunk_size = 4096").await;
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    let mut mallory = client(&t.addr, "mallory").await;
    let work = tempfile::tempdir().unwrap();
    let path = random_file(work.path(), "f.bin", 10_000, 5);
    let content = std::fs::read(&path).unwrap();
    let (_, sha) = files::hash_file(&path).await.unwrap();
    let offer = FileOffer {
        target: FileTarget {
            to: Some("bob".into()),
            room: None,
        },
        name: "f.bin".into(),
        size: content.len() as u64,
        sha256: sha,
    };
    let offered: chat_api::files::FileOffered = alice
        .request_json(&offer)
        .await
        .unwrap()
        .decode_custom()
        .unwrap();
    let id = offered.transfer.clone();
    let send = async |client: &mut chat_client::Client, frame: FileChunk| {
        client.request_json(&frame).await.unwrap()
    };

    let reply = send(&mut alice, chunk(&id, 4096, &content[4096..8192])).await;
    assert_eq!(error_code(&reply), "bad_offset", "out of order");
    let reply = send(&mut alice, chunk(&id, 0, &content[..4096])).await;
    assert_eq!(reply.kind(), "file_ack");
    let reply = send(&mut alice, chunk(&id, 0, &content[..4096])).await;
    assert_eq!(error_code(&reply), "bad_offset", "duplicate");
    let reply = send(&mut alice, chunk(&id, 4096, &content[4096..])).await;
    assert_eq!(error_code(&reply), "bad_chunk", "larger than chunk_size");
    // One byte over: its base64 is no longer than chunk_size's, but the
    // bytes are.
    let reply = send(&mut alice, chunk(&id, 4096, &content[4096..8193])).await;
    assert_eq!(error_code(&reply), "bad_chunk", "chunk_size + 1 bytes");
    let reply = send(&mut alice, chunk(&"f".repeat(32), 0, b"x")).await;
    assert_eq!(error_code(&reply), "no_such_transfer", "unknown id");
    let reply = send(&mut alice, chunk("../../etc/passwd", 0, b"x")).await;
    assert_eq!(error_code(&reply), "no_such_transfer", "id that is a path");
    let reply = send(&mut mallory, chunk(&id, 4096, &content[4096..8192])).await;
    assert_eq!(error_code(&reply), "no_such_transfer", "someone else's");
    let mut bad = chunk(&id, 4096, b"");
    bad.data = "!!not base64!!".into();
    let reply = send(&mut alice, bad).await;
    assert_eq!(error_code(&reply), "bad_chunk", "not base64");
    let reply = alice
        .request_json(&serde_json::json!({"type": "file_chunk", "transfer": id}))
        .await
        .unwrap();
    assert_eq!(error_code(&reply), "invalid_frame", "fields missing");

    // None of it did harm: the rest completes and verifies.
    let reply = send(&mut alice, chunk(&id, 4096, &content[4096..8192])).await;
    assert_eq!(reply.kind(), "file_ack");
    let reply = send(&mut alice, chunk(&id, 8192, &content[8192..])).await;
    assert_eq!(reply.kind(), "file_complete", "{reply:?}");
    let reply = send(&mut alice, chunk(&id, 8192, &content[8192..])).await;
    assert_eq!(error_code(&reply), "wrong_state", "after completion");
    let offered = expect_available(&mut bob).await;
    let copy = work.path().join("copy");
    files::download(&mut bob, &offered, &copy, |_| {})
        .await
        .unwrap();
    same_bytes(&path, &copy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_size_limits_are_enforced_before_any_data() {
    let limits = "max_file_size = 1000000\nper_user_quota = 1500000\ntotal_quota = 2000000\nmax_concurrent_uploads_per_user = 2";
    let t = start("", limits).await;
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    let mut carol = client(&t.addr, "carol").await;
    let offer = |size: u64| FileOffer {
        target: FileTarget {
            to: Some("bob".into()),
            room: None,
        },
        name: "big.bin".into(),
        size,
        sha256: "a".repeat(64),
    };
    let reply = alice.request_json(&offer(1_000_001)).await.unwrap();
    assert_eq!(error_code(&reply), "file_too_large");
    assert!(t.stored().is_empty(), "a refused offer stores nothing");

    let first = alice.request_json(&offer(1_000_000)).await.unwrap();
    assert_eq!(first.kind(), "file_offered");
    let reply = alice.request_json(&offer(600_000)).await.unwrap();
    assert_eq!(error_code(&reply), "quota_exceeded", "alice's quota");
    let reply = alice.request_json(&offer(400_000)).await.unwrap();
    assert_eq!(reply.kind(), "file_offered");
    let reply = alice.request_json(&offer(10)).await.unwrap();
    assert_eq!(error_code(&reply), "too_many_uploads");

    let reply = carol.request_json(&offer(1_000_000)).await.unwrap();
    assert_eq!(
        error_code(&reply),
        "quota_exceeded",
        "the server's total quota"
    );
    let Received::Core(ServerFrame::Error { message, .. }) = &reply else {
        unreachable!()
    };
    assert!(message.contains("total quota"), "{message}");

    // Cancelling gives the space back and deletes the reservation.
    let first: chat_api::files::FileOffered = first.decode_custom().unwrap();
    files::cancel(&mut alice, &first.transfer).await.unwrap();
    let reply = carol.request_json(&offer(1_000_000)).await.unwrap();
    assert_eq!(reply.kind(), "file_offered");
    assert!(!t.stored().iter().any(|f| f.starts_with(&first.transfer)));
    // Nothing was ever announced to bob.
    let before = bob.sync().await.unwrap();
    assert!(before.iter().all(|f| f.kind() != "file_available"));
}

/// A guest's limits belong to its session: a new nickname does not reset
/// them, and the server-wide `max_transfers` bounds what many guests can
/// make the server hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_nickname_does_not_get_round_the_transfer_limits() {
    let t = start("", "max_concurrent_uploads_per_user = 1\nmax_transfers = 3").await;
    let _bob = client(&t.addr, "bob").await;
    let offer = FileOffer {
        target: FileTarget {
            to: Some("bob".into()),
            room: None,
        },
        name: "big.bin".into(),
        size: 1000,
        sha256: "0".repeat(64),
    };
    let mut mallory = client(&t.addr, "mallory").await;
    let reply = mallory.request_json(&offer).await.unwrap();
    assert_eq!(reply.kind(), "file_offered", "{reply:?}");
    mallory
        .request_ok(&ClientFrame::Nick {
            nick: "mallory2".into(),
        })
        .await
        .unwrap();
    let reply = mallory.request_json(&offer).await.unwrap();
    assert_eq!(error_code(&reply), "too_many_uploads");

    for n in 0..2 {
        let mut other = client(&t.addr, &format!("other{n}")).await;
        let reply = other.request_json(&offer).await.unwrap();
        assert_eq!(reply.kind(), "file_offered", "offer {n}");
    }
    let mut last = client(&t.addr, "last").await;
    let reply = last.request_json(&offer).await.unwrap();
    assert_eq!(error_code(&reply), "quota_exceeded");
    let Received::Core(ServerFrame::Error { message, .. }) = &reply else {
        unreachable!()
    };
    assert!(message.contains("maximum of 3 transfers"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_trick_names_are_refused() {
    let t = start("", "").await;
    let mut alice = client(&t.addr, "alice").await;
    let _bob = client(&t.addr, "bob").await;
    for name in [
        "../../../../tmp/evil",
        "/etc/passwd",
        "..",
        "sub/dir.txt",
        "..\\..\\win.ini",
        "C:boot.ini",
        ".bashrc",
        "bell\u{7}.txt",
        "report\u{202E}fdp.exe",
        &"x".repeat(256),
    ] {
        let reply = alice
            .request_json(&FileOffer {
                target: FileTarget {
                    to: Some("bob".into()),
                    room: None,
                },
                name: name.into(),
                size: 1,
                sha256: "a".repeat(64),
            })
            .await
            .unwrap();
        assert_eq!(error_code(&reply), "invalid_file_name", "{name:?}");
    }
    assert!(t.stored().is_empty());
    // Only the spool directory (and the database and lock file) exists in the data
    // directory.
    let entries: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().starts_with("chatd."))
        .collect();
    assert_eq!(entries, vec!["files"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_users_transfer_at_the_same_time() {
    let t = start("", "").await;
    let work = Arc::new(tempfile::tempdir().unwrap());
    let mut receiver = client(&t.addr, "rita").await;
    let senders = ["ann", "ben", "cat", "dan"];
    let mut tasks = Vec::new();
    for (i, &nick) in senders.iter().enumerate() {
        let path = random_file(
            work.path(),
            &format!("{nick}.bin"),
            MIB + i * 1000,
            10 + i as u64,
        );
        let addr = t.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = client(&addr, nick).await;
            files::upload(&mut c, &path, &Recipient::User("rita".into()), |_| {})
                .await
                .unwrap();
            (path, c)
        }));
    }
    let mut originals = Vec::new();
    for task in tasks {
        originals.push(task.await.unwrap());
    }
    let mut got = 0;
    while got < senders.len() {
        let offered = expect_available(&mut receiver).await;
        let copy = work.path().join(format!("from-{}", offered.from));
        files::download(&mut receiver, &offered, &copy, |_| {})
            .await
            .unwrap();
        same_bytes(&work.path().join(&offered.name), &copy);
        got += 1;
    }
    assert!(t.stored().is_empty(), "left on disk: {:?}", t.stored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes_unclaimed_files_and_abandoned_uploads() {
    let t = start("", "expiry_secs = 1").await;
    let work = tempfile::tempdir().unwrap();
    let path = random_file(work.path(), "old.bin", 50_000, 6);
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    let done = files::upload(&mut alice, &path, &Recipient::User("bob".into()), |_| {})
        .await
        .unwrap();
    // An upload abandoned after its first chunk.
    let content = vec![1u8; 50_000];
    let offered: chat_api::files::FileOffered = alice
        .request_json(&FileOffer {
            target: FileTarget {
                to: Some("bob".into()),
                room: None,
            },
            name: "half.bin".into(),
            size: content.len() as u64,
            sha256: "b".repeat(64),
        })
        .await
        .unwrap()
        .decode_custom()
        .unwrap();
    let ack = alice
        .request_json(&chunk(&offered.transfer, 0, &content[..1000]))
        .await
        .unwrap();
    assert_eq!(ack.kind(), "file_ack");

    let mut expired = Vec::new();
    while expired.len() < 2 {
        let frame = expect_kind(&mut alice, "file_removed").await;
        let removed: chat_api::files::FileRemoved = frame.decode_custom().unwrap();
        assert_eq!(removed.reason, "expired");
        expired.push(removed.transfer);
    }
    expired.sort();
    let mut expected = vec![done.transfer.clone(), offered.transfer.clone()];
    expected.sort();
    assert_eq!(expired, expected);
    // The recipient who never fetched it is told too.
    let frame = expect_kind(&mut bob, "file_removed").await;
    assert_eq!(
        frame
            .decode_custom::<chat_api::files::FileRemoved>()
            .unwrap()
            .transfer,
        done.transfer
    );
    assert!(t.stored().is_empty(), "left on disk: {:?}", t.stored());
    assert!(files::list(&mut bob).await.unwrap().incoming.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_survive_a_server_restart() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = random_file(work.path(), "keep.bin", 300_000, 7);
    let server = start_accounts_in(data.path(), "").await;
    let addr = server.tcp_addr.unwrap().to_string();
    let mut alice = register(&addr, "alice").await;
    let _bob = register(&addr, "bob").await;
    files::upload(&mut alice, &path, &Recipient::User("bob".into()), |_| {})
        .await
        .unwrap();
    drop(alice);
    server.stop().await;

    let server = start_accounts_in(data.path(), "").await;
    let addr = server.tcp_addr.unwrap().to_string();
    let mut bob = log_in(&addr, "bob").await;
    let waiting = files::list(&mut bob).await.unwrap().incoming;
    assert_eq!(waiting.len(), 1);
    let copy = work.path().join("copy");
    files::download(&mut bob, &waiting[0], &copy, |_| {})
        .await
        .unwrap();
    same_bytes(&path, &copy);
    server.stop().await;
}

/// Chat between two other users keeps its round trips short while a large
/// file goes through the server and back out to its recipient.
/// A guest is its connection, not its nickname: once guest bob has gone,
/// whoever takes the name next neither sees nor fetches what was offered
/// to him, and the next alice cannot touch the first alice's upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guests_files_stay_with_its_session_not_its_nickname() {
    let t = start("", "").await;
    let work = tempfile::tempdir().unwrap();
    let path = random_file(work.path(), "for-bob.bin", 50_000, 11);
    let mut watcher = client(&t.addr, "watcher").await;
    join(&mut watcher, "#w").await;
    let mut alice = client(&t.addr, "alice").await;
    join(&mut alice, "#w").await;
    let mut bob = client(&t.addr, "bob").await;
    join(&mut bob, "#w").await;
    files::upload(&mut alice, &path, &Recipient::User("bob".into()), |_| {})
        .await
        .unwrap();
    let offered = expect_available(&mut bob).await;
    drop(bob);
    expect_quit(&mut watcher, "bob").await;

    let mut second_bob = client(&t.addr, "bob").await;
    assert!(files::list(&mut second_bob)
        .await
        .unwrap()
        .incoming
        .is_empty());
    let reply = second_bob
        .request_json(&chat_api::files::FileGet {
            transfer: offered.transfer.clone(),
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(error_code(&reply), "no_such_transfer");

    drop(alice);
    expect_quit(&mut watcher, "alice").await;
    let mut second_alice = client(&t.addr, "alice").await;
    assert!(files::list(&mut second_alice)
        .await
        .unwrap()
        .outgoing
        .is_empty());
    let reply = second_alice
        .request_json(&chat_api::files::FileCancel {
            transfer: offered.transfer.clone(),
        })
        .await
        .unwrap();
    assert_eq!(error_code(&reply), "no_such_transfer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keeps_flowing_during_a_large_transfer() {
    let t = start("", "").await;
    let work = tempfile::tempdir().unwrap();
    let original = random_file(work.path(), "large.bin", 24 * MIB, 8);
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    let mut carol = client(&t.addr, "carol").await;
    let mut dave = client(&t.addr, "dave").await;

    let running = Arc::new(AtomicBool::new(true));
    let flag = running.clone();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let copy = work.path().join("copy.bin");
    let (source, target) = (original.clone(), copy.clone());
    let transfer = tokio::spawn(async move {
        let mut started_tx = Some(started_tx);
        files::upload(&mut alice, &source, &Recipient::User("bob".into()), |_| {
            if let Some(tx) = started_tx.take() {
                let _ = tx.send(());
            }
        })
        .await
        .unwrap();
        let offered = expect_available(&mut bob).await;
        files::download(&mut bob, &offered, &target, |_| {})
            .await
            .unwrap();
        flag.store(false, Ordering::Release);
    });

    // Start measuring once file data is moving.
    tokio::time::timeout(WAIT, started).await.unwrap().unwrap();
    let mut during = 0;
    let mut slowest = Duration::ZERO;
    // Within flood control's burst: chat frames are still counted.
    for i in 0..150 {
        if !running.load(Ordering::Acquire) {
            break;
        }
        let text = format!("ping {i}");
        let started = Instant::now();
        carol
            .request_ok(&ClientFrame::Msg {
                to: "dave".into(),
                text: text.clone(),
            })
            .await
            .unwrap();
        dave.expect(
            Duration::from_secs(2),
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == text),
        )
        .await
        .unwrap_or_else(|e| panic!("chat message {i} stuck behind the transfer: {e}"));
        slowest = slowest.max(started.elapsed());
        if running.load(Ordering::Acquire) {
            during += 1;
        }
    }
    transfer.await.unwrap();
    same_bytes(&original, &copy);
    assert!(
        during >= 5,
        "only {during} chat round trips overlapped the transfer"
    );
    eprintln!("{during} chat round trips during the transfer, slowest {slowest:?}");
}

/// With a flood limit of 2 frames/s, a 200-chunk transfer still goes
/// through (chunks and gets are paced by their acks), while chat frames are
/// still limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_frames_are_paced_by_acks_not_by_flood_control() {
    let t = start(
        "frames_per_second = 2\nframes_burst = 8",
        "chunk_size = 1024",
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let original = random_file(work.path(), "small-chunks.bin", 200 * 1024, 9);
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    files::upload(
        &mut alice,
        &original,
        &Recipient::User("bob".into()),
        |_| {},
    )
    .await
    .unwrap();
    let offered = expect_available(&mut bob).await;
    let copy = work.path().join("copy.bin");
    files::download(&mut bob, &offered, &copy, |_| {})
        .await
        .unwrap();
    same_bytes(&original, &copy);

    let mut limited = 0;
    for _ in 0..20 {
        let reply = alice
            .request(&ClientFrame::Msg {
                to: "bob".into(),
                text: "flood".into(),
            })
            .await
            .unwrap();
        if matches!(&reply, Received::Core(ServerFrame::Error { code, .. }) if code.as_str() == "rate_limited")
        {
            limited += 1;
        }
    }
    assert!(limited > 0, "chat frames must still be flood-controlled");
}

/// `/dev/full` fails every write with ENOSPC, like a full disk: the upload
/// file is swapped for a link to it once the transfer exists.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_a_clean_error_and_leaves_nothing_behind() {
    let t = start("", "").await;
    let mut alice = client(&t.addr, "alice").await;
    let _bob = client(&t.addr, "bob").await;
    let offered: chat_api::files::FileOffered = alice
        .request_json(&FileOffer {
            target: FileTarget {
                to: Some("bob".into()),
                room: None,
            },
            name: "big.bin".into(),
            size: 4096,
            sha256: "c".repeat(64),
        })
        .await
        .unwrap()
        .decode_custom()
        .unwrap();
    let part = t
        .dir
        .path()
        .join("files")
        .join(format!("{}.part", offered.transfer));
    std::fs::remove_file(&part).unwrap();
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();

    let reply = alice
        .request_json(&chunk(&offered.transfer, 0, &[0u8; 4096]))
        .await
        .unwrap();
    assert_eq!(error_code(&reply), "storage_full");
    let Received::Core(ServerFrame::Error { message, .. }) = &reply else {
        unreachable!()
    };
    assert!(message.contains("disk is full"), "{message}");
    assert!(files::list(&mut alice).await.unwrap().outgoing.is_empty());
    assert!(t.stored().is_empty(), "left on disk: {:?}", t.stored());
    // The server goes on: the next offer works.
    let work = tempfile::tempdir().unwrap();
    let path = random_file(work.path(), "ok.bin", 1000, 10);
    files::upload(&mut alice, &path, &Recipient::User("bob".into()), |_| {})
        .await
        .unwrap();
}

/// Records progress and the chat that arrives during a transfer.
struct ChatDuringTransfer<'a> {
    done: u64,
    /// (bytes done when the message arrived, its text)
    chat: &'a mut Vec<(u64, String)>,
}

impl files::Observer for ChatDuringTransfer<'_> {
    fn progress(&mut self, progress: files::Progress) {
        self.done = progress.done;
    }

    fn other_frame(&mut self, frame: Received) -> Option<Received> {
        match frame {
            Received::Core(ServerFrame::Message(m)) => {
                self.chat.push((self.done, m.text));
                None
            }
            other => Some(other),
        }
    }
}

/// The downloading client hands chat to the application as it arrives, not
/// after the last chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downloading_client_sees_chat_as_it_arrives() {
    let t = start("", "").await;
    let work = tempfile::tempdir().unwrap();
    let original = random_file(work.path(), "big.bin", 2 * MIB, 11);
    let mut alice = client(&t.addr, "alice").await;
    let mut bob = client(&t.addr, "bob").await;
    files::upload(
        &mut alice,
        &original,
        &Recipient::User("bob".into()),
        |_| {},
    )
    .await
    .unwrap();
    let offered = expect_available(&mut bob).await;
    // Queued for bob before his first file_get is answered.
    alice
        .request_ok(&ClientFrame::Msg {
            to: "bob".into(),
            text: "did you get it?".into(),
        })
        .await
        .unwrap();
    let mut chat = Vec::new();
    let observer = ChatDuringTransfer {
        done: 0,
        chat: &mut chat,
    };
    let copy = work.path().join("copy.bin");
    files::download_observed(&mut bob, &offered, &copy, observer)
        .await
        .unwrap();
    assert_eq!(chat.len(), 1, "{chat:?}");
    assert!(chat[0].0 < offered.size, "seen mid-transfer");
    assert_eq!(chat[0].1, "did you get it?");
    same_bytes(&original, &copy);
}

/// A second chatd whose files plugin shares the spool (configured with the
/// same absolute `dir`, as `chatd check-config` and a reload also build
/// one) must not delete what the running server keeps there: it neither
/// tidies nor expires the spool while the server owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_spool_deletes_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let files = format!("dir = {:?}", spool.path());
    let first = start("", &files).await;
    let work = tempfile::tempdir().unwrap();
    let path = random_file(work.path(), "kept.bin", 40_000, 21);
    let mut alice = client(&first.addr, "alice").await;
    let mut bob = client(&first.addr, "bob").await;
    files::upload(&mut alice, &path, &Recipient::User("bob".into()), |_| {})
        .await
        .unwrap();
    let offered = expect_available(&mut bob).await;
    // What a record being written by the running server looks like to
    // another process: a file no record owns yet.
    let in_flight = spool.path().join("in-flight.json.tmp");
    std::fs::write(&in_flight, b"{").unwrap();

    let second = start("", &files).await;
    assert!(in_flight.exists(), "the second instance tidied the spool");
    second.server.stop().await;

    let copy = work.path().join("copy.bin");
    files::download(&mut bob, &offered, &copy, |_| {})
        .await
        .unwrap();
    same_bytes(&path, &copy);
}
