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
