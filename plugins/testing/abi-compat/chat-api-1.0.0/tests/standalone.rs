//! `chat-api` builds on its own, outside chatd's workspace: as the `.crate`
//! that `cargo package -p chat-api` writes (what docs/plugins.md tells
//! plugin authors to build against), and as a plain copy of its directory.
//!
//! Both builds run `cargo build --offline` in a temporary directory outside
//! the workspace, so they need the dependencies in the local registry cache
//! (the workspace's own build has put them there). They share one target
//! directory under `CARGO_TARGET_TMPDIR`: the outer `cargo test` holds the
//! lock on the main one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("chat-api lives in the workspace")
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-api-standalone")
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .args(args)
        .output()
        .expect("cargo can be run")
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn packaged_crate_builds_outside_the_workspace() {
    let output = cargo(
        workspace(),
        &[
            "package",
            "-p",
            "chat-api",
            "--offline",
            "--no-verify",
            "--allow-dirty",
        ],
    );
    assert_success("cargo package -p chat-api", &output);
    let crate_file = target_dir()
        .join("package")
        .join(format!("chat-api-{}.crate", env!("CARGO_PKG_VERSION")));

    let outside = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&crate_file)
        .arg("-C")
        .arg(outside.path())
        .status()
        .expect("tar can be run");
    assert!(status.success(), "cannot unpack {}", crate_file.display());
    let unpacked = outside
        .path()
        .join(format!("chat-api-{}", env!("CARGO_PKG_VERSION")));
    assert!(
        unpacked.join("Cargo.lock").is_file(),
        "the package carries chatd's Cargo.lock"
    );

    let output = cargo(&unpacked, &["build", "--offline", "--locked"]);
    assert_success(
        &format!("cargo build in the unpacked {}", unpacked.display()),
        &output,
    );
    // The wire protocol alone, as clients build it.
    let output = cargo(
        &unpacked,
        &["build", "--offline", "--locked", "--no-default-features"],
    );
    assert_success("cargo build --no-default-features (protocol only)", &output);

}

#[test]
fn copy_of_the_directory_builds_outside_the_workspace() {
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("chat-api");
    copy_dir(Path::new(env!("CARGO_MANIFEST_DIR")), &copy);
    // chatd's dependency versions, as docs/plugins.md has authors do.
    std::fs::copy(workspace().join("Cargo.lock"), copy.join("Cargo.lock")).unwrap();

    let output = cargo(&copy, &["build", "--offline"]);
    assert_success(
        &format!("cargo build in a copy at {}", copy.display()),
        &output,
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}
