//! The word filter as the pipeline runs it, on chat-api's fake host: what
//! reaches the room, what is refused, and a reload's effect.

use chat_api::testkit::{FakeHost, FakeSession};
use chat_api::{ClientFrame, MessageHandler, PluginConfig, Reconfigured, Request, Verdict};
use chatd_plugin_wordfilter::WordFilter;

fn say(text: &str) -> ClientFrame {
    ClientFrame::Say {
        room: "#lobby".into(),
        text: text.into(),
    }
}

/// Runs one `say` through the filter: the verdict and the text passed on.
async fn filter(plugin: &WordFilter, text: &str) -> (Verdict, String) {
    let host = FakeHost::new();
    let alice = FakeSession::logged_in(&host, "alice", false);
    let mut frame = FakeSession::inbound(Some(1), &say(text));
    let verdict = plugin.on_frame(&alice, &mut frame).await.unwrap();
    let Request::Core(ClientFrame::Say { text, .. }) = frame.request else {
        panic!("the frame stays a say");
    };
    (verdict, text)
}

fn config(toml: &str) -> PluginConfig {
    FakeHost::new().context("wordfilter", toml).config
}

#[tokio::test]
async fn listed_words_are_masked_and_the_rest_passes() {
    let plugin = WordFilter::from_config(&config("words = [\"darn\"]")).unwrap();
    let (verdict, text) = filter(&plugin, "well DARN it").await;
    assert!(matches!(verdict, Verdict::Continue), "{verdict:?}");
    assert_eq!(text, "well **** it");
    let (_, text) = filter(&plugin, "darned fine").await;
    assert_eq!(text, "darned fine", "only whole words are masked");
}

#[tokio::test]
async fn too_long_or_refused_words_are_rejected_and_reload_applies() {
    let plugin = WordFilter::from_config(&config(
        "max_length = 10\nwords = [\"darn\"]\naction = \"reject\"",
    ))
    .unwrap();
    match filter(&plugin, "darn").await.0 {
        Verdict::Reject(e) => assert_eq!(e.code.as_str(), "rejected"),
        other => panic!("{other:?}"),
    }
    match filter(&plugin, "eleven char").await.0 {
        Verdict::Reject(e) => assert!(e.message.contains("at most 10"), "{}", e.message),
        other => panic!("{other:?}"),
    }
    let applied = plugin.reconfigure(&config("max_length = 100")).unwrap();
    assert_eq!(applied, Reconfigured::Applied);
    assert!(matches!(
        filter(&plugin, "darn, eleven chars").await.0,
        Verdict::Continue
    ));
}
