//! One plugin binary across chatd releases and compilers: a plugin built
//! against chat-api 1.0.0 (plugin ABI 1.0, frozen in
//! `plugins/testing/abi-compat/`) with Debian's rustc 1.85, outside the
//! workspace, loads into this chatd (a newer ABI minor, another compiler)
//! and works: it answers frames, uses host services, rewrites a frame in
//! place and sees deliveries.
//!
//! The toolchain is unpacked by `.ci/rust-1.85.sh` (which `.ci/run` calls
//! first); this test runs the script itself if it is missing. Without apt
//! (not Debian) the test is skipped, except under `CI=true`, where it
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chat_api::plugin_abi::ABI_VERSION;
use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, Received};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(10);

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Debian's rustc 1.85, unpacked; `None` (skip) if it cannot be had here.
fn old_toolchain() -> Option<PathBuf> {
    let dir = std::env::var_os("CHATD_RUST_1_85")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("rust-1.85"));
    if !dir.join("bin/cargo").is_file() {
        let status = Command::new(workspace().join(".ci/rust-1.85.sh"))
            .arg(&dir)
            .status();
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        match status {
            Ok(s) if s.success() => {}
            other if ci => {
                panic!("cannot unpack Debian's rustc 1.85 with .ci/rust-1.85.sh: {other:?}")
            }
            other => {
                eprintln!("skipped: Debian's rustc 1.85 is not available here ({other:?}); CI=true makes this a failure");
                return None;
            }
        }
    }
    Some(dir)
}

/// Builds the compat plugin with the old toolchain; returns the library.
fn build_compat_plugin(toolchain: &Path) -> PathBuf {
    let crate_dir = workspace().join("plugins/testing/abi-compat/plugin");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abi-compat-build");
    let output = Command::new(toolchain.join("bin/cargo"))
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Outside the workspace its profile does not apply (CI's disk).
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        // Whatever the outer build set must not leak into this one.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["build", "--locked", "--lib"])
        .output()
        .expect("the old cargo can be run");
    assert!(
        output.status.success(),
        "building {} with rustc 1.85 failed:\n{}",
        crate_dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir
        .join("debug")
        .join(chatd::dynamic::library_file_name(
            "chatd-test-plugin-abi-compat",
        ))
}

fn custom<'a>(frame: &'a Received, kind: &str) -> Option<&'a serde_json::Map<String, Value>> {
    match frame {
        Received::Custom { kind: k, fields } if k == kind => Some(fields),
        _ => None,
    }
}

#[tokio::test]
async fn plugin_built_by_rustc_1_85_against_chat_api_1_0_loads_and_works() {
    let Some(toolchain) = old_toolchain() else {
        return;
    };
    const {
        assert!(
            ABI_VERSION.minor >= 1,
            "chatd must speak a newer minor than the plugin's 1.0"
        )
    };
    let library = build_compat_plugin(&toolchain);
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {}\n[[plugin]]\nname = \"compat\"\npath = {}\n",
        toml::Value::String(data.path().display().to_string()),
        toml::Value::String(library.display().to_string()),
    );
    let config = chatd::Config::parse(&text, "test.toml", None).unwrap();
    let server = match chatd::start(config).await {
        Ok(server) => server,
        Err(error) => panic!("chatd refused the ABI 1.0 plugin: {error}"),
    };
    let addr = server.tcp_addr.unwrap().to_string();
    let mut alice = Client::connect_as(&addr, "alice").await.unwrap();
    let mut bob = Client::connect_as(&addr, "bob").await.unwrap();
    assert!(alice.welcome.features.contains(&"compat".to_string()));

    // A plugin frame, answered through host services (join, timer).
    let reply = alice
        .request_json(&json!({"type": "compat_hello", "room": "#Old"}))
        .await
        .unwrap();
    let hello = custom(&reply, "compat_hello").unwrap_or_else(|| panic!("{reply:?}"));
    let rustc = hello["rustc"].as_str().unwrap();
    assert!(rustc.starts_with("rustc 1.85."), "built by {rustc}");
    assert_eq!(hello["chat_api"], json!("1.0"), "{hello:?}");
    assert_eq!(hello["room"], json!("#Old"), "{hello:?}");
    assert_eq!(hello["members"], json!(["alice"]), "{hello:?}");
    assert_eq!(hello["nick"], json!("alice"), "{hello:?}");

    // A frame changed in place, delivered, and the delivery seen.
    bob.request_ok(&ClientFrame::Join {
        room: "#old".into(),
    })
    .await
    .unwrap();
    let reply = alice
        .request(&ClientFrame::Say {
            room: "#old".into(),
            text: "/upper quiet please".into(),
        })
        .await
        .unwrap();
    let Received::Core(ServerFrame::Sent { msg_id, .. }) = reply else {
        panic!("expected sent, got {reply:?}");
    };
    bob.expect(
        TIMEOUT,
        |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "QUIET PLEASE"),
    )
    .await
    .expect("bob sees the rewritten message");
    let seen = alice
        .expect(TIMEOUT, |f| custom(f, "compat_delivered").is_some())
        .await
        .expect("on_delivered reached the old plugin");
    let seen = custom(&seen, "compat_delivered").unwrap();
    assert_eq!(seen["msg_id"], json!(msg_id), "{seen:?}");
    assert_eq!(seen["target"], json!("#Old"), "{seen:?}");
    assert_eq!(seen["recipients"], json!(1), "{seen:?}");
    assert_eq!(seen["text"], json!("QUIET PLEASE"), "{seen:?}");
    server.stop().await;
}
