//! The handler pipeline: configured order, reject, answer, change, failure
//! isolation, and the built-in example plugin.

use std::sync::{Arc, Mutex};

use chat_api::ServerFrame;
use chat_api::{
    async_trait, ApiError, ClientFrame, ErrorCode, HandlerError, HandlerResult, Inbound,
    MessageHandler, Payload, Request, Session, Verdict,
};
use chat_client::Received;
use chatd::config::PluginEntry;
use chatd::PluginRegistry;

use crate::common::*;

/// Records the order it sees frames in; rejects or answers on cue.
struct Probe {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl MessageHandler for Probe {
    fn name(&self) -> &str {
        &self.name
    }
    fn features(&self) -> Vec<String> {
        vec![format!("probe-{}", self.name)]
    }
    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{}", self.name, frame.kind));
        match (&self.name[..], &frame.request) {
            ("first", Request::Core(ClientFrame::Say { text, .. })) if text == "forbidden" => {
                Ok(Verdict::Reject(ApiError::new(
                    ErrorCode::custom("probe_says_no"),
                    "first refuses",
                )))
            }
            ("second", Request::Custom(_)) if frame.kind == "echo" => {
                session.send(Payload::encode(
                    &serde_json::json!({"type": "echoed", "id": frame.id}),
                ));
                Ok(Verdict::Done)
            }
            ("second", Request::Custom(_)) if frame.kind == "boom" => panic!("probe exploded"),
            ("second", Request::Custom(_)) if frame.kind == "fail" => {
                Err(HandlerError::msg("probe failed"))
            }
            _ => Ok(Verdict::Continue),
        }
    }
}

fn entry(name: &str, config: Option<&str>) -> PluginEntry {
    PluginEntry {
        name: name.into(),
        enabled: true,
        path: None,
        config: config.map(|c| toml::from_str(c).unwrap()),
    }
}

async fn probe_server(log: Arc<Mutex<Vec<String>>>) -> TestServer {
    let mut registry = PluginRegistry::builtin();
    for name in ["first", "second"] {
        let log = log.clone();
        registry.register(name, move |_ctx| {
            Ok(Arc::new(Probe {
                name: name.into(),
                log: log.clone(),
            }))
        });
    }
    start_with(
        |c| c.plugins = vec![entry("second", None), entry("first", None)],
        registry,
    )
    .await
}

#[tokio::test]
async fn handlers_run_in_configured_order_and_can_reject_or_answer() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = probe_server(log.clone()).await;
    let mut alice = client(&s.addr, "alice").await;
    assert_eq!(alice.welcome.plugins, vec!["second", "first"]);
    assert!(alice.welcome.features.contains(&"probe-first".to_string()));
    join(&mut alice, "#p").await;
    log.lock().unwrap().clear();

    let r = request(
        &mut alice,
        ClientFrame::Say {
            room: "#p".into(),
            text: "forbidden".into(),
        },
    )
    .await;
    assert_eq!(error_code(&r), "probe_says_no");
    assert_eq!(*log.lock().unwrap(), vec!["second:say", "first:say"]);

    let r = alice
        .request_json(&serde_json::json!({"type": "echo"}))
        .await
        .unwrap();
    assert_eq!(r.kind(), "echoed");
    assert_eq!(
        log.lock().unwrap().last().unwrap(),
        "second:echo",
        "first must not see a handled frame"
    );

    let r = request(
        &mut alice,
        ClientFrame::Say {
            room: "#p".into(),
            text: "fine".into(),
        },
    )
    .await;
    assert!(
        matches!(r, Received::Core(ServerFrame::Sent { .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_failing_or_panicking_handler_costs_one_frame_not_the_server() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = probe_server(log).await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "bob").await;
    for kind in ["boom", "fail"] {
        let r = alice
            .request_json(&serde_json::json!({"type": kind}))
            .await
            .unwrap();
        assert_eq!(error_code(&r), "internal");
    }
    // Alice's session and everyone else's carry on.
    request(
        &mut alice,
        ClientFrame::Msg {
            to: "bob".into(),
            text: "after the panic".into(),
        },
    )
    .await;
    expect_text(&mut bob, "after the panic").await;
}

#[tokio::test]
async fn wordfilter_masks_and_limits_when_enabled_and_is_absent_when_not() {
    let s = start(|c| {
        c.plugins = vec![entry(
            "wordfilter",
            Some("max_length = 20\nwords = [\"heck\"]\n"),
        )];
    })
    .await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "bob").await;
    assert_eq!(alice.welcome.plugins, vec!["wordfilter"]);
    request(
        &mut alice,
        ClientFrame::Msg {
            to: "bob".into(),
            text: "what the Heck".into(),
        },
    )
    .await;
    expect_text(&mut bob, "what the ****").await;
    let r = request(
        &mut alice,
        ClientFrame::Msg {
            to: "bob".into(),
            text: "x".repeat(21),
        },
    )
    .await;
    assert_eq!(error_code(&r), "rejected");

    let plain = start(|c| c.plugins.clear()).await;
    let mut carol = client(&plain.addr, "carol").await;
    let mut dave = client(&plain.addr, "dave").await;
    assert!(carol.welcome.plugins.is_empty());
    request(
        &mut carol,
        ClientFrame::Msg {
            to: "dave".into(),
            text: "what the heck".into(),
        },
    )
    .await;
    expect_text(&mut dave, "what the heck").await;
}

/// The `text` of a `sent` reply (absent: delivered as typed).
fn sent_text(reply: Received) -> Option<String> {
    match reply {
        Received::Core(ServerFrame::Sent { text, .. }) => text,
        other => panic!("expected sent, got {other:?}"),
    }
}

#[tokio::test]
async fn the_sender_learns_the_text_a_plugin_delivered() {
    let s = start(|c| {
        c.plugins = vec![entry("wordfilter", Some("words = [\"heck\"]\n"))];
    })
    .await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "bob").await;
    join(&mut alice, "#w").await;
    join(&mut bob, "#w").await;

    let changed = [
        ClientFrame::Say {
            room: "#w".into(),
            text: "what the heck".into(),
        },
        ClientFrame::Msg {
            to: "bob".into(),
            text: "heck, bob".into(),
        },
        ClientFrame::Broadcast {
            text: "HECK everyone".into(),
        },
    ];
    for (frame, delivered) in
        changed
            .into_iter()
            .zip(["what the ****", "****, bob", "**** everyone"])
    {
        let reply = request(&mut alice, frame).await;
        assert_eq!(sent_text(reply).as_deref(), Some(delivered));
        expect_text(&mut bob, delivered).await;
    }

    let reply = request(
        &mut alice,
        ClientFrame::Say {
            room: "#w".into(),
            text: "hello there".into(),
        },
    )
    .await;
    assert_eq!(sent_text(reply), None, "unchanged text is not repeated");
    expect_text(&mut bob, "hello there").await;
}

#[tokio::test]
async fn bad_plugin_configuration_stops_startup_naming_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.plugins = vec![entry("wordfilter", Some("max_lenght = 3\n"))];
    let err = chatd::start(config)
        .await
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        err.contains("wordfilter") && err.contains("max_lenght"),
        "{err}"
    );

    let mut config = crate::common::config(dir.path());
    config.plugins = vec![entry("nosuchplugin", None)];
    let err = chatd::start(config)
        .await
        .err()
        .expect("must refuse")
        .to_string();
    assert!(err.contains("nosuchplugin"), "{err}");
}
