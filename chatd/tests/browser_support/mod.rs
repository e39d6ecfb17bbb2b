//! What the browser tests share: a chromedriver with headless Chromium
//! browsers in fresh profiles, and helpers that drive the app and wait on
//! the page (reacting to DOM changes, bounded by [`WAIT`]), never on time.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::WAIT;

/// Chromium's flags for these machines (no sandbox, no calls outside).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,800",
];

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The browser and its driver, or `None` (after saying so) when the test
/// may be skipped. Under CI a missing browser is a failure.
pub fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let driver = find_program(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let message = "chromium and chromedriver are needed for the browser tests; \
                 install them with `apt-get install -y chromium chromium-driver`";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message} (CI=true: a missing browser is a failure)");
            }
            eprintln!("\n!!!!!!!!!! SKIPPING BROWSER TESTS: {message} !!!!!!!!!!\n");
            None
        }
    }
}

/// A running chromedriver on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
    profiles: tempfile::TempDir,
}

impl Driver {
    pub async fn start(chromium: PathBuf, driver: &Path) -> Driver {
        let mut child = Command::new(driver)
            // Port 0: chromedriver binds a free port and says which.
            .arg("--port=0")
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so that the browsers it starts can be
            // ended with it even when a failed assertion skips their `close`.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        // Ready once it says so on stdout.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port: u16 = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("chromedriver output") {
                // "ChromeDriver was started successfully on port 39907."
                if let Some((_, port)) = line.split_once("started successfully on port ") {
                    return port.trim_end_matches('.').parse().expect("a port number");
                }
            }
            panic!("chromedriver exited before it was ready");
        })
        .await
        .expect("chromedriver ready in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
            profiles: tempfile::tempdir().unwrap(),
        }
    }

    /// A new browser with a fresh profile.
    pub async fn browser(&self, name: &str) -> fantoccini::Client {
        self.browser_with(name, json!({})).await
    }

    /// A new browser showing pages as a phone does: a 390×844 viewport
    /// (CSS pixels) with touch, through Chromium's mobile emulation.
    pub async fn phone(&self, name: &str) -> fantoccini::Client {
        let emulation = json!({
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 3.0, "touch": true, "mobile": true }
            }
        });
        self.browser_with(name, emulation).await
    }

    /// A new browser whose pages see a dark system theme
    /// (`prefers-color-scheme: dark`).
    pub async fn dark(&self, name: &str) -> fantoccini::Client {
        self.browser_with(
            name,
            json!({ "extra_args": ["--blink-settings=preferredColorScheme=0"] }),
        )
        .await
    }

    async fn browser_with(&self, name: &str, mut extra: Value) -> fantoccini::Client {
        let profile = self.profiles.path().join(name);
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        if let Some(Value::Array(more)) = extra.as_object_mut().and_then(|o| o.remove("extra_args"))
        {
            args.extend(more.iter().filter_map(|a| a.as_str().map(str::to_string)));
        }
        args.push(format!("--user-data-dir={}", profile.display()));
        // Downloads the app saves go into the profile, never the home.
        let downloads = profile.join("downloads");
        let mut options = json!({
            "binary": self.chromium,
            "args": args,
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false
            }
        });
        if let (Some(options), Value::Object(extra)) = (options.as_object_mut(), extra) {
            options.extend(extra);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(group) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{group}")])
                .status();
        }
        let _ = self.child.start_kill();
    }
}

/// Waits until the JavaScript `predicate` (a function body returning a
/// truth value) holds on the page, reacting to DOM changes; false after
/// [`WAIT`].
pub async fn wait_until(browser: &fantoccini::Client, predicate: &str) -> bool {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        const check = () => {{ try {{ return Boolean((() => {{ {predicate} }})()); }} catch (e) {{ return false; }} }};
        if (check()) {{ done(true); return; }}
        let timer;
        const observer = new MutationObserver(() => {{
            if (check()) {{ observer.disconnect(); clearTimeout(timer); done(true); }}
        }});
        observer.observe(document.documentElement, {{subtree: true, childList: true, attributes: true, characterData: true}});
        timer = setTimeout(() => {{ observer.disconnect(); done(check()); }}, {ms});"#,
        ms = WAIT.as_millis()
    );
    browser
        .execute_async(&script, vec![])
        .await
        .expect("script runs")
        .as_bool()
        .unwrap_or(false)
}

/// The messages of the conversation on screen, as the user sees them.
pub async fn shown_messages(browser: &fantoccini::Client) -> Vec<Value> {
    let script = r#"return [...document.querySelectorAll('#messages .msg')]
        .filter(m => m.dataset.kind !== 'presence' && m.dataset.kind !== 'notice')
        .map(m => ({kind: m.dataset.kind, from: m.dataset.from, own: m.dataset.own === 'true',
                    text: m.querySelector('.text').textContent}));"#;
    match browser.execute(script, vec![]).await.expect("script runs") {
        Value::Array(items) => items,
        other => panic!("unexpected {other}"),
    }
}

pub fn msg(kind: &str, from: &str, own: bool, text: &str) -> Value {
    json!({"kind": kind, "from": from, "own": own, "text": text})
}

/// Clicks the element `css` finds. The app may re-render it between the
/// find and the click (a presence update redraws the member list): a stale
/// element is found again, a bounded number of times, as a user would click
/// the redrawn button.
pub async fn click(browser: &fantoccini::Client, css: &str) {
    for _ in 0..5 {
        let element = browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(_) => return,
            Err(e) if e.is_stale_element_reference() => continue,
            Err(e) => panic!("click {css}: {e}"),
        }
    }
    panic!("click {css}: the element was redrawn under every one of 5 clicks");
}

pub async fn type_into(browser: &fantoccini::Client, css: &str, keys: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(keys)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

pub const ENTER: &str = "\u{E007}";
pub const SHIFT: &str = "\u{E008}";
/// Releases held modifier keys.
pub const RELEASE: &str = "\u{E000}";

/// Opens the app and joins the chat under `nick`, then joins `room`.
pub async fn log_in(browser: &fantoccini::Client, web: SocketAddr, nick: &str, room: &str) {
    browser.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(
            browser,
            "return !document.getElementById('connect-button').disabled;"
        )
        .await,
        "{nick}: the connect screen becomes ready"
    );
    let nick_field = browser.find(Locator::Css("#nick")).await.unwrap();
    nick_field.clear().await.unwrap();
    nick_field.send_keys(nick).await.unwrap();
    click(browser, "#connect-button").await;
    assert!(
        wait_until(
            browser,
            &format!("return document.getElementById('me-nick').textContent === '{nick}';")
        )
        .await,
        "{nick}: the chat screen shows the nickname"
    );
    type_into(browser, "#join-input", &format!("{room}{ENTER}")).await;
    assert!(
        wait_until(
            browser,
            &format!("return document.getElementById('conv-title').textContent === '{room}';")
        )
        .await,
        "{nick}: {room} is open"
    );
}

/// Opens the app and registers the account `name` (the server must allow
/// open registration), waiting until the chat screen shows it.
pub async fn register(browser: &fantoccini::Client, web: SocketAddr, name: &str) {
    browser.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(browser, "const b = document.getElementById('register-button'); return !b.disabled && !b.hidden;").await,
        "{name}: registration is offered"
    );
    type_into(browser, "#nick", name).await;
    type_into(browser, "#password", "long enough password").await;
    click(browser, "#register-button").await;
    assert!(
        wait_until(
            browser,
            &format!("return document.getElementById('me-nick').textContent === '{name}';")
        )
        .await,
        "{name} is logged in"
    );
}

/// Types keys into whatever has the focus, as a keyboard does.
pub async fn press(browser: &fantoccini::Client, keys: &str) {
    browser
        .active_element()
        .await
        .expect("an element has the focus")
        .send_keys(keys)
        .await
        .unwrap_or_else(|e| panic!("typing {keys:?}: {e}"));
}

/// The id of the focused element, or of the closest ancestor with one.
pub async fn focused(browser: &fantoccini::Client) -> String {
    eval(browser, "return document.activeElement?.closest('[id], [data-nick], [data-key]')?.id || document.activeElement?.closest('[data-nick]')?.dataset.nick || '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Runs JavaScript that returns a value, and returns it.
pub async fn eval(browser: &fantoccini::Client, script: &str) -> Value {
    browser
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// The texts of every line on screen (messages, notices, presence), in order.
pub async fn all_lines(browser: &fantoccini::Client) -> Vec<String> {
    let lines = eval(
        browser,
        "return [...document.querySelectorAll('#messages .msg .text')].map(t => t.textContent);",
    )
    .await;
    serde_json::from_value(lines).unwrap()
}

/// Opens the conversation `key` (`#room`, `@nick` or `*server`) from the
/// sidebar and waits until it is shown.
pub async fn open_conversation(browser: &fantoccini::Client, key: &str) {
    click(browser, &format!("#sidebar li[data-key=\"{key}\"]")).await;
    assert!(
        wait_until(
            browser,
            &format!(
                "return document.querySelector('#sidebar li.current')?.dataset.key === '{key}';"
            )
        )
        .await,
        "{key} is open"
    );
}

/// Waits until a line of the conversation on screen contains `text`.
pub async fn wait_for_line(browser: &fantoccini::Client, text: &str) -> bool {
    let text = serde_json::to_string(text).unwrap();
    wait_until(
        browser,
        &format!("return [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent.includes({text}));"),
    )
    .await
}

/// A server with open registration and private rooms (and the files
/// plugin), its data in `dir`.
pub fn accounts_config(dir: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n\
         [[plugin]]\nname = \"rooms\"\n[[plugin]]\nname = \"files\"\n",
        dir.join("data")
    )
}

/// Guests only, with file transfer.
pub fn files_config(dir: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"files\"\n",
        dir.join("data")
    )
}
