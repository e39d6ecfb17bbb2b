//! Live reload (SIGHUP and `chatd reload`) of the real binary: a renewed
//! certificate reaches new clients while connected ones stay; an invalid
//! file changes nothing and the log says why; the word filter's list, the
//! broadcast policy and the limits change in place; keys that need a
//! restart are named and left alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_api::{ClientFrame, ErrorCode, ServerFrame};
use chat_client::{Client, ClientError, ConnectOptions, Received};
use chatd_testkit::process::{chatd, Chatd};
use chatd_testkit::WAIT;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const RELOADED: &str = "configuration reloaded";
const REFUSED: &str = "reload refused, still running on the previous configuration";

/// A directory with `chatd.toml` holding `text`.
fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chatd.toml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

fn wordfilter(words: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[history]\nenabled = false\n\
         [[plugin]]\nname = \"wordfilter\"\n[plugin.config]\nwords = {words}\n"
    )
}

async fn join(client: &mut Client, room: &str) {
    client
        .request_ok(&ClientFrame::Join { room: room.into() })
        .await
        .unwrap();
}

async fn say(client: &mut Client, room: &str, text: &str) {
    client
        .request_ok(&ClientFrame::Say {
            room: room.into(),
            text: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("saying {text:?}: {e}"));
}

async fn expect_text(client: &mut Client, text: &str) {
    client
        .expect(
            WAIT,
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == text),
        )
        .await
        .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"));
}

/// The certificate a fresh TLS handshake gets, trusting only `trusted`.
async fn served_certificate(addr: &str, trusted: &Path) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(trusted).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(chatd::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake trusting the new certificate");
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

fn der_of(pem: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(pem).unwrap()
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_clients_while_connected_ones_keep_chatting() {
    let (dir, config) = setup(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
         [tls]\nlisten = \"127.0.0.1:0\"\ncert = \"live/cert.pem\"\nkey = \"live/key.pem\"\n\
         [web]\nlisten = \"127.0.0.1:0\"\ntls = true\n",
    );
    let live = dir.path().join("live");
    chatd::tls::generate_self_signed(&live, &["localhost".to_string()]).unwrap();
    let old_ca = dir.path().join("old-ca.pem");
    std::fs::copy(live.join("cert.pem"), &old_ca).unwrap();
    let server = Chatd::spawn(&config);
    let tls_addr = server.address("TLS").await;
    let plain_addr = server.address("plaintext").await;
    let web_addr = server.web_address().await;

    let options = ConnectOptions {
        tls: true,
        ca: Some(old_ca.clone()),
        server_name: Some("localhost".into()),
        ..ConnectOptions::default()
    };
    let mut secure = Client::connect(&tls_addr, &options).await.unwrap();
    secure
        .request_ok(&ClientFrame::Nick {
            nick: "secure".into(),
        })
        .await
        .unwrap();
    let mut plain = Client::connect_as(&plain_addr, "plain").await.unwrap();
    join(&mut secure, "#renew").await;
    join(&mut plain, "#renew").await;
    say(&mut secure, "#renew", "before the renewal").await;
    expect_text(&mut plain, "before the renewal").await;

    // What certbot does: new files written beside, then moved into place.
    let renewed = dir.path().join("renewed");
    chatd::tls::generate_self_signed(&renewed, &["localhost".to_string()]).unwrap();
    std::fs::rename(renewed.join("key.pem"), live.join("key.pem")).unwrap();
    std::fs::rename(renewed.join("cert.pem"), live.join("cert.pem")).unwrap();
    let new_cert = der_of(&live.join("cert.pem"));
    assert_ne!(new_cert, der_of(&old_ca));
    server.signal(libc::SIGHUP);
    let line = server.wait_for(RELOADED).await;
    assert!(line.contains("certificate_reloaded=true"), "{line}");

    // The connection made before the reload is still up, both ways.
    say(&mut secure, "#renew", "after the renewal").await;
    expect_text(&mut plain, "after the renewal").await;
    say(&mut plain, "#renew", "still hear you").await;
    expect_text(&mut secure, "still hear you").await;
    // A new handshake gets the new certificate, on the HTTPS listener too.
    let served = served_certificate(&tls_addr, &live.join("cert.pem")).await;
    assert_eq!(served, new_cert);
    let served = served_certificate(&web_addr, &live.join("cert.pem")).await;
    assert_eq!(served, new_cert);
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_configuration_changes_nothing_and_the_log_says_why() {
    let (dir, config) = setup(&wordfilter("[\"darn\"]"));
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut client = Client::connect_as(&addr, "kim").await.unwrap();
    let mut reader = Client::connect_as(&addr, "lee").await.unwrap();
    join(&mut client, "#r").await;
    join(&mut reader, "#r").await;

    // Parses, but the plugin's own check fails: nothing of it applies, not
    // even the valid new word.
    std::fs::write(&config, wordfilter("[\"heck\", \"two words\"]")).unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_for(REFUSED).await;
    assert!(
        line.contains("words must be single words") && line.contains("chatd.toml"),
        "{line}"
    );
    // Not TOML at all.
    std::fs::write(&config, "[server\n").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_for_nth(REFUSED, 2).await;
    assert!(line.contains("TOML parse error"), "{line}");

    say(&mut client, "#r", "darn heck").await;
    expect_text(&mut reader, "**** heck").await;
    let mut newcomer = Client::connect_as(&addr, "max").await.unwrap();
    join(&mut newcomer, "#r").await;
    assert!(!server.log().contains(RELOADED), "{}", server.log());
    drop(dir);
    server.stop().await;
}

#[tokio::test]
async fn chatd_reload_applies_a_new_word_list_to_connected_clients() {
    let (dir, config) = setup(&wordfilter("[\"darn\"]"));
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut client = Client::connect_as(&addr, "kim").await.unwrap();
    let mut reader = Client::connect_as(&addr, "lee").await.unwrap();
    join(&mut client, "#r").await;
    join(&mut reader, "#r").await;
    say(&mut client, "#r", "darn heck").await;
    expect_text(&mut reader, "**** heck").await;

    std::fs::write(&config, wordfilter("[\"heck\"]")).unwrap();
    let (ok, out) = chatd(&["--config", "chatd.toml", "reload"], dir.path()).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("asked chatd (pid {})", server.pid())),
        "{out}"
    );
    let line = server.wait_for(RELOADED).await;
    assert!(line.contains("plugin.wordfilter.config"), "{line}");
    say(&mut client, "#r", "darn heck").await;
    expect_text(&mut reader, "darn ****").await;

    server.stop().await;
    let (ok, out) = chatd(&["--config", "chatd.toml", "reload"], dir.path()).await;
    assert!(!ok && out.contains("no chatd is running"), "{out}");
}

#[tokio::test]
async fn keys_needing_a_restart_are_named_and_left_alone_while_the_rest_applies() {
    let base =
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[history]\nenabled = false\n";
    let (_dir, config) = setup(base);
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut first = Client::connect_as(&addr, "first").await.unwrap();

    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let moved_to = unused.local_addr().unwrap();
    drop(unused);
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{moved_to}\"\ndata_dir = \"data\"\nbroadcast = \"nobody\"\n\
             [history]\nenabled = false\n[limits]\nmax_connections = 1\n"
        ),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    let warning = server
        .wait_for("server.listen changed but takes effect only after a restart")
        .await;
    assert!(warning.contains("WARN"), "{warning}");
    let line = server.wait_for(RELOADED).await;
    assert!(
        line.contains("limits.max_connections") && line.contains("server.broadcast"),
        "{line}"
    );
    // Only server.listen waits: nothing unchanged is reported.
    assert!(line.contains("waiting_for_restart=1"), "{line}");

    // Still on the old address, nothing on the new one.
    assert!(tokio::net::TcpStream::connect(moved_to).await.is_err());
    // The broadcast policy applies to the connected client at once.
    let refused = first
        .request_ok(&ClientFrame::Broadcast {
            text: "hello all".into(),
        })
        .await;
    assert!(
        matches!(&refused, Err(ClientError::Refused { code, .. }) if *code == ErrorCode::FORBIDDEN),
        "{refused:?}"
    );
    // And the new connection limit to the next connection: one is held.
    let second = Client::connect(&addr, &ConnectOptions::default()).await;
    assert!(
        matches!(&second, Err(ClientError::Refused { code, .. }) if *code == ErrorCode::SERVER_FULL),
        "{:?}",
        second.as_ref().err()
    );
    server.wait_for("limits.max_connections reached").await;
    server.stop().await;
}

/// How many of `n` back-to-back requests are refused by flood control.
async fn rate_limited_of(client: &mut Client, n: usize) -> usize {
    let mut limited = 0;
    for _ in 0..n {
        match client.request(&ClientFrame::Rooms {}).await.unwrap() {
            Received::Core(ServerFrame::Error { code, .. }) if code == ErrorCode::RATE_LIMITED => {
                limited += 1
            }
            _ => {}
        }
    }
    limited
}

#[tokio::test]
async fn flood_control_changes_apply_to_connections_made_after_the_reload() {
    let limits = |fps: u32| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[history]\nenabled = false\n\
             [limits]\nframes_per_second = {fps}\nframes_burst = 3\n"
        )
    };
    let (_dir, config) = setup(&limits(1));
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut before = Client::connect(&addr, &ConnectOptions::default())
        .await
        .unwrap();
    // A burst of 3, then one frame a second: most of 6 are refused.
    assert!(rate_limited_of(&mut before, 6).await >= 3);

    std::fs::write(&config, limits(0)).unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_for(RELOADED).await;
    assert!(line.contains("limits.frames_per_second"), "{line}");
    let mut after = Client::connect(&addr, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(rate_limited_of(&mut after, 6).await, 0);
    // The session from before keeps the flood control it started with.
    assert!(rate_limited_of(&mut before, 6).await >= 3);
    server.stop().await;
}
