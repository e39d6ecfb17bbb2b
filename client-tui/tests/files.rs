//! End to end: `client-tui --line` processes send files to each other (to a
//! user and to a room) through a real chatd with the files plugin.

mod common;

use std::path::Path;

use common::{registered, start_at, LineClient};

const FILES_PLUGIN: &str = "[[plugin]]\nname = \"files\"\n";
/// Accounts ahead of files, with cheap hashing: a logged-in user's
/// transfers outlive the connection (a guest's end with it).
const ACCOUNTS: &str =
    "[[plugin]]\nname = \"auth\"\n[plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";
/// `len` bytes that no compressor or coincidence makes easy: xorshift from a
/// seed that differs per run.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Waits for `line` unless it was printed already (lines that race with
/// the one awaited before it).
async fn saw_or_expect(client: &mut LineClient, line: &str) {
    if !client.seen.iter().any(|l| l == line) {
        client.expect_line(line).await;
    }
}

/// The `done` line's last field: the saved file's path.
fn saved_path(done_line: &str) -> &Path {
    Path::new(
        done_line
            .splitn(6, ' ')
            .nth(5)
            .expect("done line has a path"),
    )
}

#[tokio::test]
async fn a_file_goes_to_a_user_and_to_a_room_byte_for_byte() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), FILES_PLUGIN).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let inbox = work.path().join("bob-inbox");
    std::fs::create_dir(&inbox).unwrap();
    // Several chunks and a ragged end.
    let data = random_bytes(3 * 1024 * 1024 + 12_345);
    let source = work.path().join("report.bin");
    std::fs::write(&source, &data).unwrap();
    let size = data.len();

    let mut alice = LineClient::guest(
        "alice",
        srv.socket_addr(),
        home.path(),
        &["--join", "#team"],
    );
    alice.expect_line("joined #team alice").await;
    let inbox_arg = inbox.to_str().unwrap();
    let mut bob = LineClient::guest(
        "bob",
        srv.socket_addr(),
        home.path(),
        &["--join", "#team", "--download-dir", inbox_arg],
    );
    bob.expect_line("joined #team alice,bob").await;
    alice.expect_line("join #team bob").await;

    // To a user; chat goes on while the file travels.
    alice.send(&format!("/send bob {}", source.display())).await;
    alice.send("still chatting while sending").await;
    let done = alice
        .expect("the upload's end", |l| l.starts_with("done bob "))
        .await;
    let offer = bob
        .expect("the offer", |l| l.starts_with("file alice alice "))
        .await;
    let fields: Vec<&str> = offer.split(' ').collect();
    let id = fields[3].to_string();
    assert_eq!(
        done,
        format!("done bob {id} up {size} {}", source.display())
    );
    assert_eq!(fields[4], size.to_string(), "{offer}");
    assert_eq!(fields[5], "report.bin", "{offer}");
    saw_or_expect(&mut bob, "msg #team alice still chatting while sending").await;
    bob.send(&format!("/accept {}", &id[..8])).await;
    bob.send("thanks, downloading").await;
    let done = bob
        .expect("the download's end", |l| {
            l.starts_with(&format!("done alice {id} down {size} "))
        })
        .await;
    let saved = saved_path(&done).to_path_buf();
    assert_eq!(saved, inbox.join("report.bin"));
    assert!(std::fs::read(&saved).unwrap() == data, "bytes differ");
    saw_or_expect(&mut alice, "msg #team bob thanks, downloading").await;
    saw_or_expect(&mut alice, "info bob bob received report.bin").await;
    // Progress came as occasional lines: each tenth once, in order.
    let progress: Vec<u64> = bob
        .seen
        .iter()
        .filter(|l| l.starts_with(&format!("progress alice {id} down ")))
        .map(|l| {
            l.split(' ')
                .nth(4)
                .unwrap()
                .trim_end_matches('%')
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        (5..=9).contains(&progress.len()) && progress.windows(2).all(|w| w[0] < w[1]),
        "progress lines: {progress:?}"
    );

    // To a room: its other members get it; a second copy gets a new name.
    alice
        .send(&format!("/send #team {}", source.display()))
        .await;
    let offer = bob
        .expect("the room offer", |l| l.starts_with("file #team alice "))
        .await;
    let id = offer.split(' ').nth(3).unwrap().to_string();
    alice
        .expect("the room upload's end", |l| {
            l.starts_with(&format!("done #team {id} up {size} "))
        })
        .await;
    bob.send("/accept").await;
    let done = bob
        .expect("the room download's end", |l| {
            l.starts_with(&format!("done #team {id} down {size} "))
        })
        .await;
    let saved = saved_path(&done).to_path_buf();
    assert_eq!(saved, inbox.join("report.bin.1"));
    assert!(std::fs::read(&saved).unwrap() == data, "bytes differ");

    // Nothing is left waiting; no partial file remains.
    bob.send("/files").await;
    bob.expect_line("info #team no files wait for you, and you have no uploads")
        .await;
    let left: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let (status, _) = alice.finish().await;
    assert!(status.success());
    let (status, _) = bob.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}

#[tokio::test]
async fn file_commands_explain_what_is_wrong() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), FILES_PLUGIN).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut alice = LineClient::guest("alice", srv.socket_addr(), home.path(), &[]);
    alice
        .expect("the nickname", |l| l.contains("you are now known as alice"))
        .await;
    alice.send("/accept").await;
    alice
        .expect_line("error * input no file is waiting for you; /files asks the server")
        .await;
    let missing = work.path().join("missing.bin");
    alice
        .send(&format!("/send bob {}", missing.display()))
        .await;
    alice
        .expect("the missing-file error", |l| {
            l.starts_with(&format!(
                "error * input cannot send {}: ",
                missing.display()
            ))
        })
        .await;
    let present = work.path().join("a.txt");
    std::fs::write(&present, b"hello").unwrap();
    alice
        .send(&format!("/send nobody {}", present.display()))
        .await;
    alice
        .expect("the refusal", |l| {
            l.starts_with("error nobody no_such_user sending a.txt failed: ")
        })
        .await;
    let (status, _) = alice.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}

/// Starts chatd with accounts and files on `port`, keeping its data in `data`.
async fn start_files_server(
    port: u16,
    data: &Path,
) -> Result<chatd::RunningServer, chatd::StartError> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{ACCOUNTS}{FILES_PLUGIN}",
        data.display()
    );
    let config = chatd::Config::parse(&text, "test", None).expect("test config is valid");
    chatd::start(config).await
}

#[tokio::test]
async fn transfers_cut_by_server_restarts_resume_after_reconnecting() {
    let data = tempfile::tempdir().unwrap();
    // A fixed port below the ephemeral range, so the restarted server can
    // take it again (see common::start_restartable_server).
    let first = 21_000 + (std::process::id() % 9_000) as u16;
    let mut found = None;
    for port in (first..32_000).take(200) {
        match start_files_server(port, data.path()).await {
            Ok(server) => {
                found = Some((server, port));
                break;
            }
            Err(chatd::StartError::Bind { .. }) => continue,
            Err(e) => panic!("server does not start: {e}"),
        }
    }
    let (server, port) = found.expect("a free port below 32000");
    let addr = server.tcp_addr.unwrap();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let inbox = work.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    // Large enough that the upload is still running when the server stops.
    let data_bytes = random_bytes(24 * 1024 * 1024 + 7);
    let source = work.path().join("big.bin");
    std::fs::write(&source, &data_bytes).unwrap();
    let size = data_bytes.len();

    drop(registered(&addr.to_string(), "alice").await);
    drop(registered(&addr.to_string(), "bob").await);
    let mut alice = LineClient::logged_in("alice", addr, home.path(), &[]);
    alice
        .expect("alice logged in", |l| l.contains("logged in as alice"))
        .await;
    let inbox_arg = inbox.to_str().unwrap();
    let mut bob = LineClient::logged_in("bob", addr, home.path(), &["--download-dir", inbox_arg]);
    bob.expect("bob logged in", |l| l.contains("logged in as bob"))
        .await;

    alice.send(&format!("/send bob {}", source.display())).await;
    let first_progress = alice
        .expect("the first tenth", |l| l.starts_with("progress bob "))
        .await;
    let id = first_progress.split(' ').nth(2).unwrap().to_string();
    server.stop().await;
    alice
        .expect("the interruption", |l| {
            l == "info bob transfer of big.bin interrupted; it resumes after reconnecting"
        })
        .await;
    assert!(
        !alice.seen.iter().any(|l| l.starts_with("done ")),
        "the upload finished before the server stopped; the test needs a larger file"
    );

    let server = start_files_server(port, data.path())
        .await
        .expect("the server restarts on the same port");
    alice.expect_line("info bob resuming big.bin").await;
    alice
        .expect("the resumed upload's end", |l| {
            l == format!("done bob {id} up {size} {}", source.display())
        })
        .await;
    // Resumed, not restarted: the tenths before the cut are not repeated
    // from the start.
    let tenths: Vec<&String> = alice
        .seen
        .iter()
        .filter(|l| l.starts_with(&format!("progress bob {id} up 10% ")))
        .collect();
    assert_eq!(tenths.len(), 1, "{:#?}", alice.seen);

    bob.expect("bob back", |l| l.starts_with("status * connected to "))
        .await;
    let offer = bob
        .expect("the offer", |l| l.starts_with("file alice alice "))
        .await;
    assert_eq!(offer, format!("file alice alice {id} {size} big.bin"));
    bob.send("/accept").await;

    // The download is cut by a second restart, and resumes from its .part.
    bob.expect("the download's first tenth", |l| {
        l.starts_with(&format!("progress alice {id} down "))
    })
    .await;
    server.stop().await;
    bob.expect_line("info alice transfer of big.bin interrupted; it resumes after reconnecting")
        .await;
    let cut = bob
        .seen
        .iter()
        .any(|l| l.starts_with(&format!("done alice {id} ")));
    assert!(!cut, "the download finished before the server stopped");
    let part = inbox.join("big.bin.part");
    let kept = std::fs::metadata(&part)
        .expect("the partial download is kept")
        .len();
    assert!(kept > 0 && kept < size as u64, "{kept}");
    let server = start_files_server(port, data.path())
        .await
        .expect("the server restarts again");
    bob.expect_line("info alice resuming big.bin").await;
    let done = bob
        .expect("the download's end", |l| {
            l.starts_with(&format!("done alice {id} down {size} "))
        })
        .await;
    assert!(
        std::fs::read(saved_path(&done)).unwrap() == data_bytes,
        "bytes differ"
    );
    assert!(!part.exists());
    let tenths = bob
        .seen
        .iter()
        .filter(|l| l.starts_with(&format!("progress alice {id} down 10% ")))
        .count();
    assert_eq!(tenths, 1, "resumed, not restarted: {:#?}", bob.seen);

    let (status, _) = alice.finish().await;
    assert!(status.success());
    let (status, _) = bob.finish().await;
    assert!(status.success());
    server.stop().await;
}

#[tokio::test]
async fn end_of_input_waits_for_a_running_upload() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), FILES_PLUGIN).await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let data = random_bytes(8 * 1024 * 1024);
    let source = work.path().join("batch.bin");
    std::fs::write(&source, &data).unwrap();
    let mut bob = LineClient::guest("bob", srv.socket_addr(), home.path(), &[]);
    bob.expect("bob's nickname", |l| {
        l.ends_with("you are now known as bob")
    })
    .await;
    // A script whose input ends right after its one command: end of input
    // is read while the upload is still running.
    let script = work.path().join("script.txt");
    std::fs::write(&script, format!("/send bob {}\n", source.display())).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_client-tui"))
        .args([
            "--line",
            "--server",
            &srv.socket_addr().to_string(),
            "--nick",
            "alice",
        ])
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(std::fs::File::open(&script).unwrap())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(common::TIMEOUT, run)
        .await
        .expect("the script ends")
        .unwrap();
    assert!(output.status.success(), "{}", output.status);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let seen: Vec<&str> = stdout.lines().collect();
    let done = seen
        .iter()
        .position(|l| l.starts_with("done bob ") && l.ends_with(&source.display().to_string()))
        .unwrap_or_else(|| panic!("no done line: {seen:#?}"));
    let ended = seen.iter().position(|l| {
        l.starts_with("info * end of input: quitting once 1 running transfer(s) end")
    });
    assert!(ended.is_some_and(|e| e < done), "{seen:#?}");
    bob.expect("the offer", |l| l.starts_with("file alice alice "))
        .await;
    let inbox = work.path().join("in");
    std::fs::create_dir(&inbox).unwrap();
    bob.send(&format!("/download {}", inbox.display())).await;
    let done = bob
        .expect("the download's end", |l| l.starts_with("done alice "))
        .await;
    assert!(std::fs::read(saved_path(&done)).unwrap() == data);
    let (status, _) = bob.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}
