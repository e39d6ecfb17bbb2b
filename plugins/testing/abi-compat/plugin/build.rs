//! Records which compiler built the plugin, so that the test can show the
//! plugin chatd loaded was built by another one.
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=COMPAT_RUSTC_VERSION={version}");
}
