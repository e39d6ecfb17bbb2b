//! The `chatd` command line: configuration checks and certificates.

use std::process::Command;

fn chatd(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_config_accepts_the_committed_file_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../chatd.toml");
    let copy = dir.path().join("chatd.toml");
    std::fs::copy(committed, &copy).unwrap();
    let (ok, text) = chatd(&["check-config", "--config", "chatd.toml"], dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("configuration is valid"), "{text}");

    std::fs::write(
        dir.path().join("bad.toml"),
        "[limits]\nmax_frame_byte = 10\n",
    )
    .unwrap();
    let (ok, text) = chatd(&["check-config", "--config", "bad.toml"], dir.path());
    assert!(!ok);
    assert!(
        text.contains("bad.toml") && text.contains("max_frame_byte"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("plugin.toml"),
        "[[plugin]]\nname = \"wordfilter\"\n[plugin.config]\naction = \"explode\"\n",
    )
    .unwrap();
    let (ok, text) = chatd(&["check-config", "--config", "plugin.toml"], dir.path());
    assert!(!ok);
    assert!(
        text.contains("wordfilter") && text.contains("explode"),
        "{text}"
    );

    let (ok, text) = chatd(&["check-config", "--config", "missing.toml"], dir.path());
    assert!(!ok);
    assert!(text.contains("missing.toml"), "{text}");
}

/// `[admin] listen` must be an address of this host, and never a public
/// listener's port; the committed file's commented example is valid.
#[test]
fn check_config_validates_the_admin_address() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("admin.toml", "[admin]\nlisten = \"127.0.0.1:9100\"\n");
    let (ok, text) = chatd(&["check-config", "--config", "admin.toml"], dir.path());
    assert!(ok, "{text}");
    // 192.0.2.0/24 is reserved for documentation: no host has it.
    write("foreign.toml", "[admin]\nlisten = \"192.0.2.7:9100\"\n");
    let (ok, text) = chatd(&["check-config", "--config", "foreign.toml"], dir.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains("admin.listen") && text.contains("192.0.2.7 is not an address of this host"),
        "{text}"
    );
    write(
        "shared.toml",
        "[web]\nlisten = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"\n",
    );
    let (ok, text) = chatd(&["check-config", "--config", "shared.toml"], dir.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains("admin.listen") && text.contains("web.listen"),
        "{text}"
    );
    write("typo.toml", "[admin]\nlisten = \"127.0.0.1\"\n");
    let (ok, text) = chatd(&["check-config", "--config", "typo.toml"], dir.path());
    assert!(
        !ok && text.contains("typo.toml") && text.contains("listen"),
        "{text}"
    );

    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../chatd.toml")).unwrap();
    let example = committed
        .lines()
        .skip_while(|l| *l != "# [admin]")
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches("# ").trim_start_matches('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(example.contains("listen = \"127.0.0.1:9100\""), "{example}");
    write("example.toml", &example);
    let (ok, text) = chatd(&["check-config", "--config", "example.toml"], dir.path());
    assert!(ok, "{text}");
}

/// check-config touches nothing (no data directory, no database, no port,
/// no lock: it runs beside the server it checks) and reports every problem
/// at once: a garbage certificate, an unknown plugin and a bad plugin
/// setting together.
#[test]
fn check_config_has_no_side_effects_and_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "[server]\ndata_dir = \"data\"\n\
         [tls]\nlisten = \"127.0.0.1:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\
         [[plugin]]\nname = \"no-such-plugin\"\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"maybe\"\n",
    )
    .unwrap();
    let (ok, text) = chatd(&["check-config", "--config", "broken.toml"], dir.path());
    assert!(!ok, "{text}");
    assert!(text.contains("cert.pem"), "the certificate: {text}");
    assert!(
        text.contains("no-such-plugin"),
        "the unknown plugin: {text}"
    );
    assert!(text.contains("maybe"), "the bad setting: {text}");
    assert!(text.contains("3 problems"), "{text}");
    assert!(
        !dir.path().join("data").exists(),
        "created the data directory"
    );

    // A valid configuration whose data directory is in use by a server.
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../chatd.toml");
    std::fs::copy(committed, dir.path().join("chatd.toml")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let _held = chatd::data_dir::lock(&data).unwrap();
    let (ok, text) = chatd(&["check-config", "--config", "chatd.toml"], dir.path());
    assert!(ok, "{text}");
    let created: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "chatd.lock")
        .collect();
    assert!(created.is_empty(), "check-config wrote {created:?}");
}

#[test]
fn gen_cert_writes_a_usable_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = chatd(&["gen-cert", "--out", "certs"], dir.path());
    assert!(ok, "{text}");
    let cert = dir.path().join("certs/cert.pem");
    let key = dir.path().join("certs/key.pem");
    assert!(chatd::tls::acceptor(&cert, &key).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key must not be readable by others"
        );
    }
}

/// `chatd plugin-abi` tells a plugin author which chatd this is, the
/// plugin ABI it speaks and loads, and what to build against.
#[test]
fn plugin_abi_names_the_release_and_what_a_plugin_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = chatd(&["plugin-abi"], dir.path());
    assert!(ok, "{text}");
    let ours = chat_api::plugin_abi::ABI_VERSION;
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "chatd {} speaks plugin ABI {ours}",
            env!("CARGO_PKG_VERSION")
        )
    );
    for needed in [
        &format!("loads plugins declaring ABI {}.0 to {ours}", ours.major),
        "built by any Rust compiler",
        &format!(
            "depend on chat-api {} (ABI {ours})",
            chat_api::plugin_abi::CHAT_API_VERSION
        ),
        "crate-type = [\"cdylib\"]",
        "export_plugin!",
        "docs/plugins.md",
    ] {
        assert!(text.contains(needed), "missing {needed:?} in:\n{text}");
    }
}

/// An error that names its cause says it once: the OS error of a taken
/// port or an unreadable file is not repeated as a "Caused by" line.
#[test]
fn a_refused_start_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n");
    std::fs::write(dir.path().join("chatd.toml"), config).unwrap();
    let (ok, text) = chatd(&["--config", "chatd.toml"], dir.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{text}"
    );
    assert_eq!(text.matches("os error").count(), 1, "{text}");

    let (ok, text) = chatd(&["--config", "missing.toml"], dir.path());
    assert!(!ok);
    assert_eq!(text.matches("os error").count(), 1, "{text}");
}
