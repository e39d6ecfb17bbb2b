//! End-to-end tests of the web app in a real headless Chromium, driven over
//! WebDriver (chromedriver): two browser users and one terminal (TCP) user.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test
//! fails under `CI=true` and is skipped, loudly, otherwise. Run alone with
//! `cargo test -p chatd --test browser`. With `CHATD_WEB_SCREENSHOT=FILE`
//! set, a screenshot of the app is written to FILE.

mod browser_support;
mod common;

use browser_support::*;
use chat_api::{ClientFrame, PresenceEvent, ServerFrame};
use chat_client::{Client, Received};
use common::{start_with_text, tcp_addr, web_addr, WAIT};
use fantoccini::Locator;
use serde_json::{json, Value};

const XSS: &str = "<img src=x onerror=alert(1)>";

async fn has_message(client: &mut Client, text: &str) {
    client
        .expect(
            WAIT,
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == text),
        )
        .await
        .unwrap_or_else(|e| panic!("terminal user did not get {text:?}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_a_terminal_chat_and_the_page_survives_a_restart() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The word filter masks "heck": a sender sees the delivered text.
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"wordfilter\"\n[plugin.config]\nwords = [\"heck\"]\n",
        dir.path().join("data")
    );
    let server = start_with_text(&config).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob) = tokio::join!(driver.browser("ann"), driver.browser("bob"));

    log_in(&ann, web, "ann", "#lobby").await;
    // A taken nickname is explained in words on the connect screen.
    bob.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(
            &bob,
            "return !document.getElementById('connect-button').disabled;"
        )
        .await
    );
    type_into(&bob, "#nick", &format!("ann{ENTER}")).await;
    assert!(
        wait_until(&bob, "return document.getElementById('connect-error').textContent === 'That nickname is already in use. Choose another one.';").await,
        "the nick_taken error is shown in words"
    );
    log_in(&bob, web, "bob", "#lobby").await;
    let mut carol = Client::connect_as(&tcp_addr(&server), "carol")
        .await
        .unwrap();
    carol
        .request_ok(&ClientFrame::Join {
            room: "#lobby".into(),
        })
        .await
        .unwrap();
    // The member list shows everyone, presence included.
    assert!(
        wait_until(&ann, "return [...document.querySelectorAll('#member-list li')].map(l => l.dataset.nick).join(',') === 'ann,bob,carol';").await,
        "ann sees ann, bob and carol in #lobby"
    );

    // Room messages: browser → everyone; Shift+Enter makes a new line.
    type_into(
        &ann,
        "#input",
        &format!("hello from ann{SHIFT}{ENTER}{RELEASE}second line{ENTER}"),
    )
    .await;
    has_message(&mut carol, "hello from ann\nsecond line").await;
    assert!(
        wait_until(
            &bob,
            "return document.querySelectorAll('#messages .msg[data-from=\"ann\"]').length === 1;"
        )
        .await
    );
    // Terminal → browsers.
    carol
        .request_ok(&ClientFrame::Say {
            room: "#lobby".into(),
            text: "hello from carol".into(),
        })
        .await
        .unwrap();
    // Markup in a message is shown as text, never run.
    type_into(&bob, "#input", &format!("{XSS}{ENTER}")).await;
    has_message(&mut carol, XSS).await;
    for browser in [&ann, &bob] {
        assert!(wait_until(browser, "return document.querySelectorAll('#messages .msg').length >= 3 && [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent === '<img src=x onerror=alert(1)>');").await);
        let images: Value = browser
            .execute(
                "return document.querySelectorAll('#messages img').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(images, json!(0), "the XSS text made no element");
    }

    // A direct message from ann to bob, by slash command.
    type_into(
        &ann,
        "#input",
        &format!("/msg bob just for you, bob: what the heck{ENTER}"),
    )
    .await;
    assert!(
        wait_until(&bob, "const dm = document.querySelector('#dms li[data-key=\"@ann\"]'); return dm && dm.querySelector('.badge')?.textContent === '1';").await,
        "bob sees an unread direct conversation with ann"
    );
    // The terminal user sends one too, to bob.
    carol
        .request_ok(&ClientFrame::Msg {
            to: "bob".into(),
            text: "carol to bob".into(),
        })
        .await
        .unwrap();

    // Each sees exactly what they should.
    let lobby_for = |me: &str| {
        vec![
            msg("room", "ann", me == "ann", "hello from ann\nsecond line"),
            msg("room", "carol", false, "hello from carol"),
            msg("room", "bob", me == "bob", XSS),
        ]
    };
    assert_eq!(shown_messages(&ann).await, lobby_for("ann"));
    assert_eq!(shown_messages(&bob).await, lobby_for("bob"));
    click(&bob, "#dms li[data-key=\"@ann\"]").await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('conv-title').textContent === 'Conversation with ann';"
        )
        .await
    );
    assert_eq!(
        shown_messages(&bob).await,
        vec![msg(
            "direct",
            "ann",
            false,
            "just for you, bob: what the ****"
        )]
    );
    click(&bob, "#dms li[data-key=\"@carol\"]").await;
    assert!(wait_until(&bob, "return document.getElementById('conv-title').textContent === 'Conversation with carol';").await);
    assert_eq!(
        shown_messages(&bob).await,
        vec![msg("direct", "carol", false, "carol to bob")]
    );
    assert_eq!(
        ann.execute(
            "return document.querySelectorAll('#dms li').length;",
            vec![]
        )
        .await
        .unwrap(),
        json!(1),
        "ann has only her conversation with bob"
    );
    click(&ann, "#dms li[data-key=\"@bob\"]").await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('conv-title').textContent === 'Conversation with bob';"
        )
        .await
    );
    assert_eq!(
        shown_messages(&ann).await,
        vec![msg(
            "direct",
            "ann",
            true,
            "just for you, bob: what the ****"
        )],
        "ann sees the text as bob got it, not as she typed it"
    );
    click(&ann, "#rooms li[data-key=\"#lobby\"]").await;
    let rest = carol.sync().await.unwrap();
    assert!(
        rest.iter().all(|f| f.kind() != "message"),
        "the terminal user got nothing more: {rest:?}"
    );

    if let Some(path) = std::env::var_os("CHATD_WEB_SCREENSHOT") {
        bob.set_window_size(1200, 800).await.unwrap();
        click(&bob, "#rooms li[data-key=\"#lobby\"]").await;
        type_into(&bob, "#input", "typing a reply…").await;
        let png = bob.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        bob.find(Locator::Css("#input"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
    }

    // Scrollback: a reader who scrolled up keeps their place when new
    // messages arrive, and is offered a way down.
    click(&bob, "#rooms li[data-key=\"#lobby\"]").await;
    for n in 0..40 {
        carol
            .request_ok(&ClientFrame::Say {
                room: "#lobby".into(),
                text: format!("filler {n}"),
            })
            .await
            .unwrap();
    }
    let at_bottom = "const l = document.getElementById('messages'); return l.scrollHeight - l.scrollTop - l.clientHeight <= 48;";
    assert!(wait_until(&bob, "return [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent === 'filler 39');").await);
    assert!(
        wait_until(&bob, at_bottom).await,
        "a reader at the bottom follows new messages"
    );
    bob.execute("document.getElementById('messages').scrollTop = 0;", vec![])
        .await
        .unwrap();
    carol
        .request_ok(&ClientFrame::Say {
            room: "#lobby".into(),
            text: "while you were reading".into(),
        })
        .await
        .unwrap();
    assert!(wait_until(&bob, "return [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent === 'while you were reading') && !document.getElementById('new-below').hidden;").await);
    assert_eq!(
        bob.execute(
            "return document.getElementById('messages').scrollTop;",
            vec![]
        )
        .await
        .unwrap(),
        json!(0),
        "the reader's place is kept"
    );
    click(&bob, "#new-below").await;
    assert!(wait_until(&bob, at_bottom).await);
    let rest = carol.sync().await.unwrap();
    assert!(rest.iter().all(|f| f.kind() != "message"), "{rest:?}");

    // chatd restarts on the same port; the pages reconnect by themselves,
    // rejoin their room, and keep what was being typed.
    type_into(&ann, "#input", "half-written").await;
    server.stop().await;
    for browser in [&ann, &bob] {
        assert!(
            wait_until(browser, "return document.body.dataset.connection === 'reconnecting' && !document.getElementById('status').hidden;").await,
            "the page shows that it is reconnecting"
        );
    }
    let config = config.replace(
        "[web]\nlisten = \"127.0.0.1:0\"",
        &format!("[web]\nlisten = \"{web}\""),
    );
    let server = start_with_text(&config).await;
    assert_eq!(server.web_addr, Some(web));
    let mut dave = Client::connect_as(&tcp_addr(&server), "dave")
        .await
        .unwrap();
    dave.request_ok(&ClientFrame::Join {
        room: "#lobby".into(),
    })
    .await
    .unwrap();
    let mut rejoined = Vec::new();
    while rejoined.len() < 2 {
        let frame = dave
            .expect(WAIT, |f| {
                matches!(f, Received::Core(ServerFrame::Presence(_)))
            })
            .await
            .expect("both browsers rejoin #lobby");
        if let Received::Core(ServerFrame::Presence(p)) = frame {
            rejoined.push(p.nick);
        }
    }
    rejoined.sort();
    assert_eq!(rejoined, ["ann", "bob"]);
    for browser in [&ann, &bob] {
        assert!(wait_until(browser, "return document.body.dataset.connection === 'open' && document.getElementById('status').hidden;").await);
    }
    let typed = ann
        .find(Locator::Css("#input"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(typed.as_deref(), Some("half-written"));
    dave.request_ok(&ClientFrame::Say {
        room: "#lobby".into(),
        text: "welcome back".into(),
    })
    .await
    .unwrap();
    assert!(wait_until(&ann, "return [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent === 'welcome back');").await);
    type_into(&ann, "#input", &format!(" and sent{ENTER}")).await;
    has_message(&mut dave, "half-written and sent").await;

    let _ = ann.close().await;
    let _ = bob.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_register_log_in_and_out_in_the_browser() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    // The accounts plugin as committed (guests allowed, registration open),
    // with cheap hashing so that the test does not wait on argon2.
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\nallow_guests = true\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n",
        dir.path().join("data")
    );
    let server = start_with_text(&config).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob) = tokio::join!(driver.browser("ann"), driver.browser("bob"));

    // The connect screen offers a password and registration.
    ann.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(&ann, "return !document.getElementById('password-row').hidden && !document.getElementById('register-button').hidden && !document.getElementById('register-button').disabled;").await,
        "user name, password and 'Create account' are offered"
    );
    type_into(&ann, "#nick", "ann").await;
    type_into(&ann, "#password", "correct horse").await;
    click(&ann, "#register-button").await;
    assert!(wait_until(&ann, "return document.getElementById('me-nick').textContent === 'ann' && !document.getElementById('logout').hidden;").await);

    // A wrong password is explained in words, and the person can retry.
    bob.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(
            &bob,
            "return !document.getElementById('connect-button').disabled;"
        )
        .await
    );
    type_into(&bob, "#nick", "ann").await;
    type_into(&bob, "#password", "wrong").await;
    click(&bob, "#connect-button").await;
    assert!(
        wait_until(&bob, "return document.getElementById('connect-error').textContent === 'Wrong user name or password.';").await,
        "the login error is shown"
    );
    bob.find(Locator::Css("#nick"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    bob.find(Locator::Css("#password"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    // The server's password rule is shown as it states it.
    type_into(&bob, "#nick", "bob").await;
    type_into(&bob, "#password", "short").await;
    click(&bob, "#register-button").await;
    assert!(
        wait_until(
            &bob,
            "return /password/i.test(document.getElementById('connect-error').textContent);"
        )
        .await,
        "the invalid_password error is shown"
    );
    bob.find(Locator::Css("#password"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    type_into(&bob, "#password", "battery staple").await;
    click(&bob, "#register-button").await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('me-nick').textContent === 'bob';"
        )
        .await
    );

    // Logged-in users chat.
    type_into(&ann, "#input", &format!("/join #club{ENTER}")).await;
    type_into(&bob, "#input", &format!("/join #club{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.querySelectorAll('#member-list li').length === 2;"
        )
        .await
    );
    // A guest on the terminal is in the same room.
    let mut carol = Client::connect_as(&tcp_addr(&server), "carol")
        .await
        .unwrap();
    carol
        .request_ok(&ClientFrame::Join {
            room: "#club".into(),
        })
        .await
        .unwrap();
    assert!(wait_until(&ann, "return [...document.querySelectorAll('#member-list li')].map(l => l.dataset.nick).join(',') === 'ann,bob,carol';").await);
    type_into(&bob, "#input", &format!("hi ann{ENTER}")).await;
    has_message(&mut carol, "hi ann").await;
    assert!(wait_until(&ann, "return [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent === 'hi ann');").await);

    // Leaving a room from the sidebar: the others see it in the member list.
    click(&bob, "#leave").await;
    assert!(
        wait_until(
            &bob,
            "return document.querySelectorAll('#rooms li').length === 0;"
        )
        .await
    );
    assert!(
        wait_until(&ann, "return [...document.querySelectorAll('#member-list li')].map(l => l.dataset.nick).join(',') === 'ann,carol' && [...document.querySelectorAll('#messages .msg.presence .text')].some(t => t.textContent === 'bob left #club');").await,
        "ann sees bob leave"
    );

    // Logging out returns to the connect screen; logging in again works.
    click(&ann, "#logout").await;
    assert!(wait_until(&ann, "return !document.getElementById('connect').hidden;").await);
    ann.find(Locator::Css("#password"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    type_into(&ann, "#password", "correct horse").await;
    click(&ann, "#connect-button").await;
    assert!(wait_until(&ann, "return document.getElementById('me-nick').textContent === 'ann' && !document.getElementById('chat').hidden;").await);

    let _ = ann.close().await;
    let _ = bob.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_from_one_browser_to_the_other_byte_identical() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"files\"\n",
        dir.path().join("data")
    );
    let server = start_with_text(&config).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob) = tokio::join!(driver.browser("ann"), driver.browser("bob"));
    log_in(&ann, web, "ann", "#lobby").await;
    log_in(&bob, web, "bob", "#lobby").await;

    // Several chunks (32 KiB each), not a multiple of the chunk size.
    let original: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = dir.path().join("report.bin");
    std::fs::write(&path, &original).unwrap();

    // ann sends it to bob from their direct conversation.
    type_into(&ann, "#dm-input", &format!("bob{ENTER}")).await;
    assert!(wait_until(&ann, "return !document.getElementById('attach').hidden && document.getElementById('conv-title').textContent === 'Conversation with bob';").await);
    type_into(&ann, "#file-input", path.to_str().unwrap()).await;

    // bob is told, downloads, and the app verifies it before offering it.
    assert!(
        wait_until(&bob, "return document.querySelector('#transfers li[data-name=\"report.bin\"]')?.dataset.state === 'available';").await,
        "bob is offered the file"
    );
    click(
        &bob,
        "#transfers li[data-name=\"report.bin\"] button.download",
    )
    .await;
    assert!(
        wait_until(&bob, "return document.querySelector('#transfers li[data-name=\"report.bin\"]')?.dataset.state === 'ready';").await,
        "the download completes and verifies"
    );
    let saved = bob
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            const link = document.querySelector('#transfers li[data-name="report.bin"] a.save');
            fetch(link.href).then(r => r.arrayBuffer()).then(buffer => {
                const bytes = new Uint8Array(buffer);
                let text = '';
                for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
                done({name: link.download, data: btoa(text)});
            }, e => done({error: String(e)}));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(saved["name"], "report.bin", "{saved}");
    let data = saved["data"].as_str().unwrap_or_else(|| panic!("{saved}"));
    use base64::Engine;
    let received = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert!(
        received == original,
        "the saved file is byte-identical ({} bytes)",
        received.len()
    );

    // ann learns that bob has it.
    assert!(
        wait_until(&ann, "const t = document.querySelector('#transfers li[data-name=\"report.bin\"]'); return t?.dataset.state === 'sent' && t.textContent.includes('bob received it');").await,
        "the sender sees the delivery"
    );
    let _ = ann.close().await;
    let _ = bob.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rooms_create_invite_accept_and_kick_in_the_browser() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n\
         [[plugin]]\nname = \"rooms\"\n",
        dir.path().join("data")
    );
    let server = start_with_text(&config).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob) = tokio::join!(driver.browser("ann"), driver.browser("bob"));
    for (browser, name) in [(&ann, "ann"), (&bob, "bob")] {
        browser.goto(&format!("http://{web}/")).await.unwrap();
        assert!(wait_until(browser, "return !document.getElementById('register-button').disabled && !document.getElementById('register-button').hidden;").await);
        type_into(browser, "#nick", name).await;
        type_into(browser, "#password", "long enough password").await;
        click(browser, "#register-button").await;
        assert!(
            wait_until(browser, &format!("return document.getElementById('me-nick').textContent === '{name}' && !document.getElementById('create-form').hidden;")).await,
            "{name} is logged in and may create private rooms"
        );
    }

    // ann creates a private room from the sidebar and invites bob.
    type_into(&ann, "#create-input", &format!("#secret{ENTER}")).await;
    assert!(
        wait_until(&ann, "return document.getElementById('conv-title').textContent === '#secret' && !document.getElementById('room-tools').hidden && document.getElementById('room-role').textContent.includes('you own it');").await,
        "ann is in her private room, as its owner"
    );
    type_into(&ann, "#invite-input", &format!("bob{ENTER}")).await;

    // bob accepts from the sidebar.
    assert!(
        wait_until(
            &bob,
            "return document.querySelector('#invitations li[data-room=\"#secret\"]') !== null;"
        )
        .await,
        "bob sees the invitation"
    );
    click(&bob, "#invitations li[data-room=\"#secret\"] button.accept").await;
    assert!(
        wait_until(&bob, "return document.getElementById('conv-title').textContent === '#secret' && document.getElementById('room-role').textContent.includes('you are a member') && document.getElementById('invitations').children.length === 0;").await,
        "bob is a member of #secret"
    );
    type_into(&ann, "#input", &format!("for members only{ENTER}")).await;
    assert!(wait_until(&bob, "return [...document.querySelectorAll('#messages .msg .text')].some(t => t.textContent === 'for members only');").await);

    // ann removes bob with a moderation command; bob is told and the room
    // leaves his sidebar.
    type_into(&ann, "#input", &format!("/kick bob spamming{ENTER}")).await;
    assert!(
        wait_until(&bob, "return !document.querySelector('#rooms li[data-key=\"#secret\"]') && [...document.querySelectorAll('#messages .msg.notice .text')].some(t => t.textContent === 'ann removed you from #secret (spamming)');").await,
        "bob sees that he was removed"
    );
    assert!(wait_until(&ann, "return [...document.querySelectorAll('#member-list li')].map(l => l.dataset.nick).join(',') === 'ann';").await);

    let _ = ann.close().await;
    let _ = bob.close().await;
    server.stop().await;
}

/// The texts of the messages on screen (not presence or notices), in order.
async fn shown_texts(browser: &fantoccini::Client) -> Vec<String> {
    shown_messages(browser)
        .await
        .into_iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A JavaScript expression: the texts of the messages on screen, joined by `|`.
const SHOWN_TEXTS: &str = "[...document.querySelectorAll('#messages .msg[data-msg-id] .text')].map(t => t.textContent).join('|')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_login_the_rooms_and_recent_history() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\nallow_guests = true\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n",
        dir.path().join("data")
    );
    let server = start_with_text(&config).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.browser("ann").await;

    // ann creates an account and joins #club; bob (a terminal guest) is there.
    ann.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(&ann, "return !document.getElementById('register-button').hidden && !document.getElementById('register-button').disabled;").await,
        "the connect screen offers registration"
    );
    type_into(&ann, "#nick", "ann").await;
    type_into(&ann, "#password", "correct horse").await;
    click(&ann, "#register-button").await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('me-nick').textContent === 'ann';"
        )
        .await
    );
    type_into(&ann, "#join-input", &format!("#club{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('conv-title').textContent === '#club';"
        )
        .await
    );
    let mut bob = Client::connect_as(&tcp_addr(&server), "bob").await.unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#club".into(),
    })
    .await
    .unwrap();
    for text in ["first from bob", "second from bob"] {
        bob.request_ok(&ClientFrame::Say {
            room: "#club".into(),
            text: text.into(),
        })
        .await
        .unwrap();
    }
    type_into(&ann, "#input", &format!("hello from ann{ENTER}")).await;
    has_message(&mut bob, "hello from ann").await;
    let before = "first from bob|second from bob|hello from ann";
    assert!(
        wait_until(&ann, &format!("return {SHOWN_TEXTS} === '{before}';")).await,
        "ann sees the conversation: {:?}",
        shown_texts(&ann).await
    );

    // The resume token is out of reach of page scripts.
    let exposed: Value = ann
        .execute(
            r#"const token = /[A-Za-z0-9_-]{43}/;
            const stored = [localStorage, sessionStorage].flatMap(s => Object.keys(s).map(k => s.getItem(k)));
            return token.test(document.cookie) || stored.some(v => token.test(v))
                || Object.keys(window).some(k => typeof window[k] === 'string' && token.test(window[k]));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(exposed, json!(false), "the token is visible to scripts");

    // A reload: still logged in, in #club, with its recent history, and
    // without the login form.
    ann.refresh().await.unwrap();
    assert!(
        wait_until(&ann, &format!(
            "return document.getElementById('me-nick').textContent === 'ann' && !document.getElementById('chat').hidden \
             && document.querySelector('#rooms li[data-key=\"#club\"]') !== null \
             && document.getElementById('conv-title').textContent === '#club' && {SHOWN_TEXTS} === '{before}';"
        ))
        .await,
        "after the reload ann is in #club with its history: {:?}",
        shown_texts(&ann).await
    );
    // The room is really joined again: a new message arrives live.
    bob.request_ok(&ClientFrame::Say {
        room: "#club".into(),
        text: "after the reload".into(),
    })
    .await
    .unwrap();
    assert!(
        wait_until(
            &ann,
            &format!("return {SHOWN_TEXTS} === '{before}|after the reload';")
        )
        .await,
        "live messages follow the history: {:?}",
        shown_texts(&ann).await
    );

    // chatd restarts: the page (not reloaded) resumes by itself and shows
    // what was said meanwhile once, in order.
    server.stop().await;
    assert!(
        wait_until(
            &ann,
            "return document.body.dataset.connection === 'reconnecting';"
        )
        .await,
        "the page notices the restart"
    );
    let config = config.replace(
        "[web]\nlisten = \"127.0.0.1:0\"",
        &format!("[web]\nlisten = \"{web}\""),
    );
    let server = start_with_text(&config).await;
    let mut bob = Client::connect_as(&tcp_addr(&server), "bob").await.unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#club".into(),
    })
    .await
    .unwrap();
    for text in ["during the outage 1", "during the outage 2"] {
        bob.request_ok(&ClientFrame::Say {
            room: "#club".into(),
            text: text.into(),
        })
        .await
        .unwrap();
    }
    let before = format!("{before}|after the reload|during the outage 1|during the outage 2");
    assert!(
        wait_until(&ann, &format!(
            "return document.body.dataset.connection === 'open' && document.getElementById('connect').hidden \
             && {SHOWN_TEXTS} === '{before}';"
        ))
        .await,
        "after the restart ann is logged in and sees every message once: {:?}",
        shown_texts(&ann).await
    );

    // ann closes the page; bob writes to her meanwhile. Coming back (a new
    // page load) shows the direct conversation with its unread count.
    ann.goto("about:blank").await.unwrap();
    bob.expect(WAIT, |f| {
        matches!(f, Received::Core(ServerFrame::Presence(p))
            if p.nick == "ann" && p.event == PresenceEvent::Quit)
    })
    .await
    .expect("bob sees ann leave");
    bob.request_ok(&ClientFrame::Msg {
        to: "ann".into(),
        text: "while you were away".into(),
    })
    .await
    .unwrap();
    ann.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(&ann, "const dm = document.querySelector('#dms li[data-key=\"@bob\"]'); \
             return document.getElementById('me-nick').textContent === 'ann' && dm !== null && dm.querySelector('.badge')?.textContent === '1';").await,
        "the direct conversation with bob shows one unread message"
    );
    click(&ann, "#dms li[data-key=\"@bob\"]").await;
    assert!(
        wait_until(&ann, &format!("return {SHOWN_TEXTS} === 'while you were away' && document.querySelector('#dms li[data-key=\"@bob\"] .badge') === null;")).await,
        "the direct message is shown and counted as read: {:?}",
        shown_texts(&ann).await
    );

    // Logging out ends it: a reload shows the login form.
    click(&ann, "#logout").await;
    assert!(wait_until(&ann, "return !document.getElementById('connect').hidden;").await);
    ann.refresh().await.unwrap();
    assert!(
        wait_until(&ann, "return !document.getElementById('connect').hidden && !document.getElementById('connect-button').disabled;").await,
        "after logging out, a reload asks for the password"
    );
    let chat_hidden: Value = ann
        .execute("return document.getElementById('chat').hidden;", vec![])
        .await
        .unwrap();
    assert_eq!(chat_hidden, json!(true));

    // What ann read in the browser is read on her other devices too.
    let mut phone = Client::connect(&tcp_addr(&server), &chat_client::ConnectOptions::default())
        .await
        .unwrap();
    let reply = phone
        .request_json(&json!({"type": "login", "user": "ann", "password": "correct horse"}))
        .await
        .unwrap();
    assert_eq!(reply.kind(), "logged_in", "{reply:?}");
    let frames = phone.sync().await.unwrap();
    let unread = frames
        .iter()
        .find_map(|f| match f {
            Received::Core(ServerFrame::Unread { conversations, .. }) => {
                Some(conversations.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("unread after login: {frames:?}"));
    for entry in &unread {
        assert_eq!(
            (entry.unread, entry.read_msg_id),
            (0, entry.last_msg_id),
            "ann read everything in the browser: {unread:?}"
        );
    }
    assert!(
        unread.iter().any(|e| e.with.as_deref() == Some("bob"))
            && unread.iter().any(|e| e.room.as_deref() == Some("#club")),
        "{unread:?}"
    );

    let _ = ann.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_up_loads_older_messages_and_keeps_the_readers_place() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [limits]\nframes_per_second = 0\n",
        dir.path().join("data")
    );
    let server = start_with_text(&config).await;
    let web = web_addr(&server);

    // 120 messages: more than two pages of 50.
    let mut carol = Client::connect_as(&tcp_addr(&server), "carol")
        .await
        .unwrap();
    carol
        .request_ok(&ClientFrame::Join {
            room: "#big".into(),
        })
        .await
        .unwrap();
    for i in 1..=120 {
        carol
            .request_ok(&ClientFrame::Say {
                room: "#big".into(),
                text: format!("message {i}"),
            })
            .await
            .unwrap();
    }

    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.browser("ann").await;
    log_in(&ann, web, "ann", "#big").await;
    let page = |from: u32, to: u32| {
        (from..=to)
            .map(|i| format!("message {i}"))
            .collect::<Vec<_>>()
            .join("|")
    };
    // Joining shows the latest page, scrolled to the newest message.
    assert!(
        wait_until(&ann, &format!("const l = document.getElementById('messages'); \
             return {SHOWN_TEXTS} === '{}' && l.scrollHeight > l.clientHeight && l.scrollHeight - l.scrollTop - l.clientHeight < 48;", page(71, 120)))
        .await,
        "the latest 50 messages are shown: {:?}",
        shown_texts(&ann).await
    );

    // Scrolling to the top loads the page before, and the message that was
    // at the top stays where the reader saw it.
    let scroll_to_top = r#"const l = document.getElementById('messages');
        l.scrollTop = 0;
        const first = l.querySelector('.msg[data-msg-id]');
        window.__readerTop = first.getBoundingClientRect().top;
        window.__readerId = first.dataset.msgId;"#;
    ann.execute(scroll_to_top, vec![]).await.unwrap();
    assert!(
        wait_until(&ann, &format!("const l = document.getElementById('messages'); \
             const kept = l.querySelector(`.msg[data-msg-id=\"${{window.__readerId}}\"]`); \
             return {SHOWN_TEXTS} === '{}' && l.scrollTop > 0 && Math.abs(kept.getBoundingClientRect().top - window.__readerTop) < 60;", page(21, 120)))
        .await,
        "the page before is prepended and the reader's place kept: {:?}",
        shown_texts(&ann).await
    );

    // Once more: the first message appears, and nothing more is asked for.
    ann.execute(scroll_to_top, vec![]).await.unwrap();
    assert!(
        wait_until(
            &ann,
            &format!("return {SHOWN_TEXTS} === '{}';", page(1, 120))
        )
        .await,
        "scrolling up reaches the first message: {:?}",
        shown_texts(&ann).await
    );

    let _ = ann.close().await;
    server.stop().await;
}
