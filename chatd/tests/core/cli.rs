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
