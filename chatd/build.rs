//! Records the source revision `chatd --version` prints: the short git
//! commit, or "unknown" when the source is not a git checkout (a tarball,
//! a vendored copy) or git is missing.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    let revision = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CHATD_GIT_REVISION={revision}");
    // Rebuild when HEAD moves: a checkout switches HEAD, a commit moves the
    // branch it names. (In a worktree HEAD lives in its own git directory,
    // the branches in the common one.)
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        let reference = PathBuf::from(&common).join(&branch);
        // A packed ref has no file of its own; packed-refs then changes.
        if reference.exists() {
            println!("cargo:rerun-if-changed={}", reference.display());
        }
        let packed = PathBuf::from(&common).join("packed-refs");
        if packed.exists() {
            println!("cargo:rerun-if-changed={}", packed.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
