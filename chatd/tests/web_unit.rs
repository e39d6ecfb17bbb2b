//! The browser app's JavaScript unit tests (chatd/web/test/*.test.js: the
//! reducers of state.js, the feature modules' reducers, the command
//! parser), run with `node --test`: no bundler, no npm packages.
//!
//! Without Node.js the test is skipped with a message, except under
//! `CI=true`, where a missing `node` is a failure (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

#[test]
fn javascript_unit_tests_pass() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    // The files by name: how `node --test` treats a directory differs
    // between Node.js releases.
    let mut files: Vec<String> = std::fs::read_dir(web.join("test"))
        .expect("chatd/web/test exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("test/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test.js in chatd/web/test");
    let output = match Command::new("node")
        .arg("--test")
        .args(&files)
        .current_dir(&web)
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            let message = format!("cannot run `node` ({e}): install Node.js 20 or newer to run the web app's unit tests");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message} (CI=true: a missing node is a failure)");
            }
            eprintln!("skipped: {message}");
            return;
        }
    };
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node --test web/test/*.test.js failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that found no test files also exits 0.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("# pass ") && l != "# pass 0"),
        "node --test web/test/*.test.js ran no tests:\n{report}"
    );
}
