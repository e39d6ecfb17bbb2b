//! End to end: `client-tui --line` processes use private rooms on a real
//! chatd with the `auth` and `rooms` plugins (its SQLite file in a tempdir).

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{start_at, LineClient};

const PLUGINS: &str = "[[plugin]]\nname = \"auth\"\n[[plugin]]\nname = \"rooms\"\n";

/// A line-mode client that registers the account `name` (the password comes
/// from `CHATD_PASSWORD`, as in real use).
async fn registered(name: &str, addr: SocketAddr, home: &Path) -> LineClient {
    let addr = addr.to_string();
    let mut client = LineClient::spawn(
        name,
        home,
        &["--server", &addr, "--nick", name],
        &[("CHATD_PASSWORD", "correct horse battery")],
    );
    client.send(&format!("/register {name}")).await;
    client
        .expect_line(&format!("info * logged in as {name}"))
        .await;
    client
}

#[tokio::test]
async fn invited_members_talk_outsiders_see_nothing_and_a_kick_is_felt() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), PLUGINS).await;
    assert!(
        srv.dir.path().join("data").exists(),
        "the database lives in the tempdir"
    );
    let home = tempfile::tempdir().unwrap();
    let mut alice = registered("alice", srv.socket_addr(), home.path()).await;
    let mut bob = registered("bob", srv.socket_addr(), home.path()).await;
    let mut carol = registered("carol", srv.socket_addr(), home.path()).await;

    // Alice creates the room and invites bob, who is told how to accept.
    alice.send("/create #secret launch plans").await;
    alice.expect_line("joined #secret alice").await;
    alice.expect_line("info #secret topic: launch plans").await;
    alice.send("/invite bob").await;
    alice
        .expect_line("info #secret invited bob to #secret")
        .await;
    bob.expect_line("invitation * #secret alice").await;

    // Bob accepts (the latest invitation) and they talk.
    bob.send("/accept-invite").await;
    bob.expect_line("joined #secret alice,bob").await;
    bob.expect_line("info #secret topic: launch plans").await;
    alice.expect_line("join #secret bob").await;
    bob.send("hi alice, nice hideout").await;
    alice
        .expect_line("msg #secret bob hi alice, nice hideout")
        .await;
    alice.send("welcome bob").await;
    bob.expect_line("msg #secret alice welcome bob").await;
    bob.send("/info").await;
    bob.expect_line(
        "roominfo #secret owner=alice moderators= members=alice,bob present=alice,bob topic=launch plans",
    )
    .await;

    // Carol was not invited: she cannot join, list, inspect or accept it.
    carol.send("/join #secret").await;
    let refusal = carol
        .expect("the join refusal", |l| l.starts_with("error #secret "))
        .await;
    assert!(
        refusal.starts_with("error #secret not_invited "),
        "{refusal}"
    );
    carol.send("/rooms").await;
    let rooms = carol
        .expect("the room list", |l| l.starts_with("rooms "))
        .await;
    // `rooms CONV LIST`: the conversation is carol's failed `#secret`.
    let list = rooms.splitn(3, ' ').nth(2).unwrap_or_default();
    assert!(!list.contains("#secret"), "{rooms}");
    carol.send("/info #secret").await;
    carol
        .expect("the uniform refusal", |l| {
            l.starts_with("error #secret no_such_room ")
        })
        .await;
    carol.send("/accept #secret").await;
    carol
        .expect("the refused accept", |l| {
            l.starts_with("error #secret no_such_room ")
        })
        .await;

    // Alice kicks bob: both see it, bob's conversation stops taking text.
    alice.send("/kick bob spam").await;
    alice.expect_line("kick #secret alice bob spam").await;
    bob.expect_line("kick #secret alice bob spam").await;
    bob.expect_line("status #secret you were kicked from #secret by alice: spam")
        .await;
    bob.send("still here?").await;
    bob.expect_line(
        "error #secret not_in_room you can no longer talk in #secret: you were kicked from #secret by alice: spam",
    )
    .await;
    alice.send("after the kick").await;
    alice.expect_line("sent #secret alice after the kick").await;
    // A direct message sent after it reaches bob and carol after anything
    // the room could have sent them: proof that it sent nothing.
    alice.send("/msg bob that was all").await;
    bob.expect_line("msg alice alice that was all").await;
    alice.send("/msg carol that was all").await;
    carol.expect_line("msg alice alice that was all").await;

    for client in [alice, bob, carol] {
        let name = client.name.clone();
        let (status, seen) = client.finish().await;
        assert!(status.success(), "{name}: {status}");
        if name != "alice" {
            assert!(
                !seen.iter().any(|l| l.contains("after the kick")),
                "{name} saw the room after leaving it: {seen:#?}"
            );
        }
        if name == "carol" {
            assert!(
                !seen
                    .iter()
                    .any(|l| l.starts_with("msg #secret") || l.starts_with("join #secret")),
                "carol saw the private room: {seen:#?}"
            );
        }
        if name == "alice" {
            assert!(
                !seen.iter().any(|l| l.contains("still here?")),
                "bob's text after the kick was sent: {seen:#?}"
            );
        }
    }
    srv.server.stop().await;
}
