//! TLS end to end with a generated certificate; mismatched transports fail
//! fast instead of hanging.

use std::time::Duration;

use chat_api::ClientFrame;
use chat_client::{Client, ClientError, ConnectOptions};

use crate::common::*;

async fn tls_server() -> (TestServer, std::path::PathBuf) {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(certs.path(), &["localhost".into()]).unwrap();
    let s = start(|c| {
        c.tls.listen = Some("127.0.0.1:0".parse().unwrap());
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key);
    })
    .await;
    // Keep the certificate directory alive with the server's.
    let ca = s.dir.path().join("ca.pem");
    std::fs::copy(&cert, &ca).unwrap();
    (s, ca)
}

fn tls_options(ca: &std::path::Path) -> ConnectOptions {
    ConnectOptions {
        tls: true,
        ca: Some(ca.to_path_buf()),
        server_name: Some("localhost".into()),
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn tls_and_plaintext_clients_chat_together() {
    let (s, ca) = tls_server().await;
    let tls_addr = s.server.tls_addr.unwrap().to_string();
    let mut secure = Client::connect(&tls_addr, &tls_options(&ca)).await.unwrap();
    secure
        .request_ok(&ClientFrame::Nick {
            nick: "secure".into(),
        })
        .await
        .unwrap();
    let mut plain = client(&s.addr, "plain").await;
    join(&mut secure, "#mixed").await;
    join(&mut plain, "#mixed").await;
    request(
        &mut secure,
        ClientFrame::Say {
            room: "#mixed".into(),
            text: "over TLS".into(),
        },
    )
    .await;
    expect_text(&mut plain, "over TLS").await;
    request(
        &mut plain,
        ClientFrame::Msg {
            to: "secure".into(),
            text: "in the clear".into(),
        },
    )
    .await;
    expect_text(&mut secure, "in the clear").await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_by_the_client() {
    let (s, _ca) = tls_server().await;
    let other = tempfile::tempdir().unwrap();
    let (wrong_ca, _) =
        chatd::tls::generate_self_signed(other.path(), &["localhost".into()]).unwrap();
    let err = Client::connect(
        &s.server.tls_addr.unwrap().to_string(),
        &tls_options(&wrong_ca),
    )
    .await
    .err()
    .expect("must not connect");
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn plaintext_client_on_the_tls_port_fails_cleanly() {
    let (s, _ca) = tls_server().await;
    let options = ConnectOptions {
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let err = Client::connect(&s.server.tls_addr.unwrap().to_string(), &options)
        .await
        .err()
        .expect("must not connect");
    assert!(
        !matches!(err, ClientError::Timeout(_)),
        "hung instead of failing: {err:?}"
    );
}

#[tokio::test]
async fn tls_client_on_the_plaintext_port_fails_cleanly() {
    let (s, ca) = tls_server().await;
    let err = Client::connect(&s.addr, &tls_options(&ca))
        .await
        .err()
        .expect("must not connect");
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    // The server is unaffected.
    let mut ok = client(&s.addr, "fine").await;
    ok.sync().await.unwrap();
}

/// A raw TLS client restricted to one protocol version, trusting `ca`.
async fn tls_stream(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    version: &'static rustls::SupportedProtocolVersion,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(chatd::tls::provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// Sends `frames` (one JSON object per line) and reads lines until the
/// server closes; the read's error if the close was not a clean TLS one
/// (no `close_notify`).
async fn exchange_until_closed(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    frames: &[serde_json::Value],
) -> (Vec<serde_json::Value>, std::io::Result<()>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    for frame in frames {
        stream
            .write_all(format!("{frame}\n").as_bytes())
            .await
            .unwrap();
    }
    stream.flush().await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut seen = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => seen.push(serde_json::from_str(&line).unwrap()),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the server did not close the connection");
    (seen, end)
}

/// A TLS session ends as TLS should: the `bye` arrives, then the server's
/// `close_notify` (a client reading on sees a clean end of stream, not a
/// truncation error).
#[tokio::test]
async fn a_tls_client_gets_its_goodbye_and_a_clean_close() {
    let (s, ca) = tls_server().await;
    let addr = s.server.tls_addr.unwrap();
    let mut stream = tls_stream(addr, &ca, &rustls::version::TLS13).await;
    let (frames, end) = exchange_until_closed(
        &mut stream,
        &[
            serde_json::json!({"type": "hello", "protocol": 1}),
            serde_json::json!({"type": "nick", "nick": "leaving"}),
            serde_json::json!({"type": "quit", "reason": "done"}),
        ],
    )
    .await;
    let last = frames.last().expect("frames before the close");
    assert_eq!(
        (&last["type"], &last["code"]),
        (&serde_json::json!("bye"), &serde_json::json!("quit")),
        "{frames:?}"
    );
    end.expect("the server closed without close_notify");
}

/// TLS 1.2 and 1.3 clients both work, with frames longer than a TLS record
/// (16 KiB) in both directions: a 40 KB line is read from several records
/// and written as several.
#[tokio::test]
async fn tls_1_2_and_1_3_clients_exchange_frames_longer_than_a_record() {
    let (s, ca) = tls_server().await;
    let addr = s.server.tls_addr.unwrap();
    let text: String = (0..40_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for (version, name) in [
        (&rustls::version::TLS12, "twelve"),
        (&rustls::version::TLS13, "thirteen"),
    ] {
        let mut stream = tls_stream(addr, &ca, version).await;
        let (frames, end) = exchange_until_closed(
            &mut stream,
            &[
                serde_json::json!({"type": "hello", "protocol": 1}),
                serde_json::json!({"type": "nick", "nick": name}),
                serde_json::json!({"type": "msg", "to": name, "text": text}),
                serde_json::json!({"type": "quit"}),
            ],
        )
        .await;
        let echoed = frames
            .iter()
            .find(|f| f["type"] == "message")
            .unwrap_or_else(|| panic!("{name}: no message in {frames:?}"));
        assert_eq!(echoed["text"].as_str(), Some(text.as_str()), "{name}");
        end.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
