//! `chat-api` and `chat-protocol` build on their own, outside chatd's
//! workspace: as the `.crate`s that `cargo package` writes (what
//! docs/plugins.md tells plugin authors to build against), and as plain
//! copies of their directories side by side.
//!
//! Both builds run `cargo build --offline` in a temporary directory outside
//! the workspace, so they need the dependencies in the local registry cache
//! (the workspace's own build has put them there). They share one target
//! directory under `CARGO_TARGET_TMPDIR`: the outer `cargo test` holds the
//! lock on the main one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// chat-protocol's version, from its manifest (the package's file name).
fn protocol_version() -> String {
    let manifest = std::fs::read_to_string(workspace().join("chat-protocol/Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("chat-protocol's manifest has a version line")
        .to_string()
}

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
        // Outside the workspace its profile does not apply: no debug info
        // keeps this build's gigabytes off CI's disk.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
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

/// Unpacks the `.crate` of `name` at `version` that `cargo package` wrote
/// into `into`.
fn unpack(name: &str, version: &str, into: &Path) -> PathBuf {
    let crate_file = target_dir()
        .join("package")
        .join(format!("{name}-{version}.crate"));
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&crate_file)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar can be run");
    assert!(status.success(), "cannot unpack {}", crate_file.display());
    let unpacked = into.join(format!("{name}-{version}"));
    assert!(
        unpacked.join("Cargo.lock").is_file(),
        "the package of {name} carries chatd's Cargo.lock"
    );
    unpacked
}

#[test]
fn packaged_crates_build_outside_the_workspace() {
    let output = cargo(
        workspace(),
        &[
            "package",
            "-p",
            "chat-protocol",
            "-p",
            "chat-api",
            "--offline",
            "--no-verify",
            "--allow-dirty",
        ],
    );
    assert_success("cargo package -p chat-protocol -p chat-api", &output);
    let outside = tempfile::tempdir().unwrap();
    let protocol = unpack("chat-protocol", &protocol_version(), outside.path());
    let api = unpack("chat-api", env!("CARGO_PKG_VERSION"), outside.path());

    // The wire protocol alone, as clients build it.
    let output = cargo(&protocol, &["build", "--offline", "--locked"]);
    assert_success(
        &format!("cargo build in the unpacked {}", protocol.display()),
        &output,
    );
    // chat-api names chat-protocol by version, as published; offline, the
    // unpacked package stands in for the registry's copy (which changes the
    // lock file's source of that one crate, hence no `--locked`).
    let patch = format!(
        "patch.crates-io.chat-protocol.path={:?}",
        protocol.display().to_string()
    );
    let output = cargo(&api, &["build", "--offline", "--config", &patch]);
    assert_success(
        &format!("cargo build in the unpacked {}", api.display()),
        &output,
    );
}

#[test]
fn copy_of_the_directories_builds_outside_the_workspace() {
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("chat-api");
    copy_dir(Path::new(env!("CARGO_MANIFEST_DIR")), &copy);
    // Side by side, as chat-api's path dependency expects.
    copy_dir(
        &workspace().join("chat-protocol"),
        &outside.path().join("chat-protocol"),
    );
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
