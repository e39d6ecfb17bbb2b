//! Records what a shared-library plugin must have in common with the chatd
//! that loads it (see `src/plugin_abi.rs`): the exact compiler, the target,
//! and a digest of this crate's source and of chat-protocol's (whose frame
//! types cross the boundary too). Rust has no stable ABI, so a
//! plugin is only safe to load when all of these match exactly.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("chat-api build: cannot run `{rustc} -vV`: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().to_string())
            .unwrap_or_else(|| {
                panic!("chat-api build: `{rustc} -vV` printed no `{key}` line:\n{text}")
            })
    };
    println!(
        "cargo:rustc-env=CHAT_API_RUSTC_RELEASE={}",
        field("release:")
    );
    println!(
        "cargo:rustc-env=CHAT_API_RUSTC_COMMIT={}",
        field("commit-hash:")
    );

    let target = env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=CHAT_API_TARGET={target}");

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // chat-protocol's build script names its source directory.
    let protocol_src = PathBuf::from(
        env::var("DEP_CHAT_PROTOCOL_SRC").expect("chat-protocol's build script sets `src`"),
    );
    println!("cargo:rerun-if-changed={}", protocol_src.display());
    let digest = source_digest(&[
        ("", manifest_dir.join("src")),
        ("chat-protocol/", protocol_src),
    ]);
    println!("cargo:rustc-env=CHAT_API_SOURCE_DIGEST={digest:016x}");
}

/// FNV-1a over every source file (relative path with the tree's prefix, and
/// contents, line endings normalised), so two copies of `chat-api` or
/// `chat-protocol` with the same version number but different types (for
/// example a merge that added a method) are told apart.
fn source_digest(trees: &[(&str, PathBuf)]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (prefix, src) in trees {
        let mut files = Vec::new();
        collect_files(src, &mut files);
        files.sort();
        for file in files {
            let relative = file.strip_prefix(src).unwrap_or(&file);
            let name = format!("{prefix}{}", relative.to_string_lossy().replace('\\', "/"));
            feed(name.as_bytes());
            feed(&[0]);
            let contents = fs::read(&file)
                .unwrap_or_else(|e| panic!("chat-api build: cannot read {}: {e}", file.display()));
            let normalised: Vec<u8> = contents.into_iter().filter(|&b| b != b'\r').collect();
            feed(&normalised);
            feed(&[0]);
        }
    }
    hash
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("chat-api build: cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}
