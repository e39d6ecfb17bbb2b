//! What daily users of the browser app expect (issue 17 items 5–8 and 10,
//! and the additions): the reconnect banner, one Leave button and a member
//! menu, the keyboard alone, a phone, mentions, links and grouping. Real
//! headless Chromium through chromedriver, as in `browser.rs` (same needs:
//! `chromium` and `chromium-driver`; under `CI=true` missing ones fail).
//! Others in the rooms are plain protocol clients (`chat_client`). With
//! `CHATD_WEB_PHONE_SCREENSHOT=FILE` set, the phone test writes a
//! screenshot of the app on a phone to FILE.

mod browser_support;
mod common;

use browser_support::*;
use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, Received};
use common::{start_with_text, tcp_addr, web_addr, WAIT};

const ALT: &str = "\u{E00A}";
const TAB: &str = "\u{E004}";
const UP: &str = "\u{E013}";

/// A protocol client `nick` in `rooms`.
async fn terminal_user(server: &chatd::RunningServer, nick: &str, rooms: &[&str]) -> Client {
    let mut client = Client::connect_as(&tcp_addr(server), nick).await.unwrap();
    for room in rooms {
        client
            .request_ok(&ClientFrame::Join {
                room: room.to_string(),
            })
            .await
            .unwrap();
    }
    client
}

async fn say(client: &mut Client, room: &str, text: &str) {
    client
        .request_ok(&ClientFrame::Say {
            room: room.into(),
            text: text.into(),
        })
        .await
        .unwrap();
}

/// JavaScript: whether the element `#id` is what is seen at its centre
/// (nothing covers it).
fn uncovered(id: &str) -> String {
    format!(
        "const e = document.getElementById('{id}'); const r = e.getBoundingClientRect(); \
         return r.width > 0 && e.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2));"
    )
}

/// Item 5: while reconnecting, the banner covers nothing; afterwards it
/// says "Reconnected." for a moment, then goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconnect_banner_leaves_the_header_visible_and_says_reconnected() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = files_config(dir.path());
    let server = start_with_text(&config).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.browser("ann").await;
    log_in(&ann, web, "ann", "#lobby").await;

    server.stop().await;
    assert!(wait_until(&ann, "return document.body.dataset.connection === 'reconnecting' && !document.getElementById('status').hidden;").await);
    for id in ["conv-title", "me-nick", "leave", "input"] {
        assert!(
            eval(&ann, &uncovered(id)).await.as_bool().unwrap_or(false),
            "#{id} is not covered by the banner"
        );
    }
    let config = config.replace(
        "[web]\nlisten = \"127.0.0.1:0\"",
        &format!("[web]\nlisten = \"{web}\""),
    );
    let server = start_with_text(&config).await;
    assert!(
        wait_until(&ann, "const s = document.getElementById('status'); return !s.hidden && s.textContent === 'Reconnected.';").await,
        "the page says that it is back"
    );
    assert!(eval(&ann, &uncovered("conv-title"))
        .await
        .as_bool()
        .unwrap());
    assert!(
        wait_until(&ann, "return document.getElementById('status').hidden;").await,
        "and the note goes by itself"
    );
    let _ = ann.close().await;
    server.stop().await;
}

/// Item 7 and the accessibility basics: every input is labelled; log in,
/// join, send, switch conversation and message a member with the keyboard
/// alone; the focus is visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_alone_joins_switches_sends_and_reaches_members() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&files_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.browser("ann").await;
    let mut bob = terminal_user(&server, "bob", &["#a"]).await;

    ann.goto(&format!("http://{web}/")).await.unwrap();
    assert!(
        wait_until(
            &ann,
            "return !document.getElementById('connect-button').disabled;"
        )
        .await
    );
    let unlabelled = eval(
        &ann,
        "return [...document.querySelectorAll('input, textarea, select')]
            .filter(i => !(i.labels?.length || i.getAttribute('aria-label') || i.getAttribute('aria-labelledby')))
            .map(i => i.id);",
    )
    .await;
    assert_eq!(unlabelled, serde_json::json!([]), "every input has a label");

    // The nickname field has the focus: type, Enter, and the message box
    // has it next.
    assert_eq!(focused(&ann).await, "nick");
    press(&ann, &format!("ann{ENTER}")).await;
    assert!(wait_until(&ann, "return document.getElementById('me-nick').textContent === 'ann' && document.activeElement?.id === 'input';").await, "the message box has the focus after joining the chat");
    press(&ann, &format!("/join #a{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('conv-title').textContent === '#a';"
        )
        .await
    );
    press(&ann, &format!("/join #b{ENTER}")).await;
    assert!(wait_until(&ann, "return document.getElementById('conv-title').textContent === '#b' && document.activeElement?.id === 'input';").await, "the focus stays in the message box after joining a room");

    // Alt+Up: the conversation above in the sidebar; the text goes there.
    press(&ann, &format!("{ALT}{UP}{RELEASE}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('conv-title').textContent === '#a';"
        )
        .await,
        "Alt+Up switches to #a"
    );
    press(&ann, &format!("typed without a mouse{ENTER}")).await;
    bob.expect(WAIT, |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "typed without a mouse"))
        .await
        .expect("bob gets ann's message in #a");

    // Tab reaches the Send button, with a visible focus ring, then bob in
    // the member list; Enter opens his menu, Tab and Enter message him.
    press(&ann, TAB).await;
    assert_eq!(
        eval(&ann, "const s = getComputedStyle(document.activeElement); return [document.activeElement.textContent, s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2];").await,
        serde_json::json!(["Send", true]),
        "the focused button shows it"
    );
    press(&ann, TAB).await;
    assert_eq!(
        focused(&ann).await,
        "bob",
        "the member list is reached with Tab"
    );
    press(&ann, ENTER).await;
    assert!(wait_until(&ann, "return document.querySelector('#member-list li[data-nick=\"bob\"] .member-menu') !== null;").await);
    // The menu's buttons follow bob's entry: the first is "Message".
    press(&ann, TAB).await;
    assert_eq!(
        eval(&ann, "return document.activeElement.dataset.action;").await,
        serde_json::json!("message")
    );
    press(&ann, ENTER).await;
    assert!(wait_until(&ann, "return document.getElementById('conv-title').textContent === 'Conversation with bob' && document.activeElement?.id === 'input';").await);
    let _ = ann.close().await;
    server.stop().await;
}

/// The phone test (390×844) with item 8: join a room from the sidebar
/// (which then closes), read, send, open and close the sidebar, and never
/// scroll sideways; the message box's placeholder fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_joins_reads_sends_and_opens_and_closes_the_sidebar_without_sideways_scrolling() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&files_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let phone = driver.phone("phone").await;
    let mut bob = terminal_user(&server, "bob", &["#lobby"]).await;
    const NO_SIDEWAYS: &str = "return document.documentElement.scrollWidth <= window.innerWidth && document.body.scrollWidth <= window.innerWidth;";

    phone.goto(&format!("http://{web}/")).await.unwrap();
    assert_eq!(
        eval(&phone, "return window.innerWidth;").await,
        serde_json::json!(390)
    );
    assert!(
        wait_until(
            &phone,
            "return !document.getElementById('connect-button').disabled;"
        )
        .await
    );
    assert!(
        eval(&phone, NO_SIDEWAYS).await.as_bool().unwrap(),
        "connect screen"
    );
    type_into(&phone, "#nick", "ann").await;
    click(&phone, "#connect-button").await;
    assert!(
        wait_until(
            &phone,
            "return document.getElementById('me-nick').textContent === 'ann';"
        )
        .await
    );

    click(&phone, "#sidebar-toggle").await;
    assert!(wait_until(&phone, "return document.getElementById('chat').classList.contains('show-sidebar') && document.getElementById('sidebar').getBoundingClientRect().left >= 0;").await);
    type_into(&phone, "#join-input", &format!("#lobby{ENTER}")).await;
    assert!(
        wait_until(&phone, "return document.getElementById('conv-title').textContent === '#lobby' && !document.getElementById('chat').classList.contains('show-sidebar');").await,
        "joining a room closes the sidebar"
    );
    assert!(eval(&phone, NO_SIDEWAYS).await.as_bool().unwrap(), "a room");

    say(&mut bob, "#lobby", "hello phone, a long line that has to wrap on such a narrow screen without making the page wider").await;
    assert!(wait_for_line(&phone, "hello phone").await);
    assert!(
        eval(&phone, NO_SIDEWAYS).await.as_bool().unwrap(),
        "a long message"
    );
    type_into(&phone, "#input", &format!("sent from a phone{ENTER}")).await;
    bob.expect(
        WAIT,
        |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "sent from a phone"),
    )
    .await
    .expect("bob gets the phone's message");

    if let Some(path) = std::env::var_os("CHATD_WEB_PHONE_SCREENSHOT") {
        say(
            &mut bob,
            "#lobby",
            "ann: lunch at noon? https://example.org/menu",
        )
        .await;
        say(&mut bob, "#lobby", "the usual place").await;
        assert!(wait_for_line(&phone, "the usual place").await);
        type_into(&phone, "#input", "on my way").await;
        std::fs::write(&path, phone.screenshot().await.unwrap()).unwrap();
        phone
            .find(fantoccini::Locator::Css("#input"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
    }

    // The placeholder fits in the box.
    let fits = eval(
        &phone,
        "const i = document.getElementById('input'); const s = getComputedStyle(i);
         const c = document.createElement('canvas').getContext('2d'); c.font = s.font;
         const room = i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
         return [i.placeholder, c.measureText(i.placeholder).width <= room];",
    )
    .await;
    assert_eq!(fits[1], serde_json::json!(true), "{fits}");

    // The sidebar opens, and its own button closes it.
    click(&phone, "#sidebar-toggle").await;
    assert!(
        wait_until(
            &phone,
            "return document.getElementById('chat').classList.contains('show-sidebar');"
        )
        .await
    );
    assert!(
        eval(&phone, NO_SIDEWAYS).await.as_bool().unwrap(),
        "the open sidebar"
    );
    assert!(wait_until(&phone, "const r = document.getElementById('sidebar-close').getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;").await, "the close button is on screen");
    // Clicked once the slide-in has finished: mid-transition, the point the
    // driver aims at moves under it.
    assert!(
        wait_until(
            &phone,
            "return getComputedStyle(document.querySelector('.sidebar')).transform === 'none';"
        )
        .await,
        "the sidebar has finished sliding in"
    );
    click(&phone, "#sidebar-close").await;
    assert!(
        wait_until(
            &phone,
            "return !document.getElementById('chat').classList.contains('show-sidebar');"
        )
        .await
    );
    assert!(
        eval(&phone, NO_SIDEWAYS).await.as_bool().unwrap(),
        "closed again"
    );
    let _ = phone.close().await;
    server.stop().await;
}

/// Item 10 and the additions: a mention is highlighted and has a badge of
/// its own, the tab title counts unread messages, links are safe links,
/// one sender's messages share one header, a line marks where the new
/// messages start, and a dark theme can be chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_stand_out_links_are_safe_and_one_senders_messages_are_grouped() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&files_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.browser("ann").await;
    log_in(&ann, web, "ann", "#lobby").await;
    type_into(&ann, "#input", &format!("/join #plain{ENTER}")).await;
    type_into(&ann, "#input", &format!("/join #other{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('conv-title').textContent === '#other';"
        )
        .await
    );
    let mut bob = terminal_user(&server, "bob", &["#lobby", "#plain"]).await;

    say(&mut bob, "#plain", "nothing for you here").await;
    say(&mut bob, "#lobby", "earlier chatter").await;
    say(&mut bob, "#lobby", "Ann, see https://example.org/a_(b)?q=1. Not javascript:alert(1) nor <b>bold</b> or http://").await;
    say(&mut bob, "#lobby", "and a second line").await;
    assert!(wait_until(&ann, "return document.querySelector('#rooms li[data-key=\"#lobby\"] .badge')?.textContent === '3';").await);
    let badges = eval(
        &ann,
        "return ['#lobby', '#plain'].map(k => document.querySelector(`#rooms li[data-key=\"${k}\"] .badge`).className);",
    )
    .await;
    assert_eq!(
        badges,
        serde_json::json!(["badge mention", "badge"]),
        "a mention's badge differs"
    );
    assert!(
        eval(&ann, "return document.title;")
            .await
            .as_str()
            .unwrap()
            .starts_with("(4@) #other"),
        "{}",
        eval(&ann, "return document.title;").await
    );

    open_conversation(&ann, "#lobby").await;
    let shown = eval(
        &ann,
        "const ms = [...document.querySelectorAll('#messages .msg[data-from=\"bob\"]')];
         const links = [...document.querySelectorAll('#messages .msg a')];
         return {
           mention: ms.map(m => m.classList.contains('mention')),
           headers: ms.filter(m => m.querySelector('.meta')).length,
           links: links.map(a => [a.getAttribute('href'), a.rel, a.target, a.textContent]),
           bold: document.querySelectorAll('#messages b').length,
           text: ms[1].querySelector('.text').textContent,
           newLineBefore: ms[0].closest('.entry').querySelector('.unread-line') !== null,
         };",
    )
    .await;
    assert_eq!(
        shown,
        serde_json::json!({
            "mention": [false, true, false],
            "headers": 1,
            "links": [["https://example.org/a_(b)?q=1", "noopener noreferrer", "_blank", "https://example.org/a_(b)?q=1"]],
            "bold": 0,
            "text": "Ann, see https://example.org/a_(b)?q=1. Not javascript:alert(1) nor <b>bold</b> or http://",
            "newLineBefore": true,
        })
    );
    assert!(
        wait_until(&ann, "return document.title.startsWith('(1) #lobby');").await,
        "only #plain is left unread"
    );
    // Today's messages sit under one day line.
    assert_eq!(
        eval(
            &ann,
            "return [...document.querySelectorAll('#messages .day')].length;"
        )
        .await,
        serde_json::json!(1)
    );

    // Dark mode, chosen in the settings (the default follows the system).
    const BACKGROUND: &str =
        "return getComputedStyle(document.querySelector('.conversation')).backgroundColor;";
    assert_eq!(
        eval(&ann, BACKGROUND).await,
        serde_json::json!("rgb(255, 255, 255)")
    );
    ann.find(fantoccini::Locator::Css("#theme"))
        .await
        .unwrap()
        .select_by_value("dark")
        .await
        .unwrap();
    assert!(wait_until(&ann, "return getComputedStyle(document.querySelector('.conversation')).backgroundColor === 'rgb(27, 31, 39)';").await, "the page turns dark");

    // Desktop notifications: none before they are switched on; then one
    // per mention or direct message while the page is not looked at. The
    // browser's Notification is replaced by one that records (a headless
    // browser shows none), and the page is made to look hidden.
    eval(
        &ann,
        "window.shownNotes = [];
         window.Notification = class { static permission = 'default';
           static requestPermission() { Notification.permission = 'granted'; return Promise.resolve('granted'); }
           constructor(title, options) { window.shownNotes.push([title, options.body]); } };
         Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' });
         return true;",
    )
    .await;
    say(&mut bob, "#lobby", "ann, are you there?").await;
    assert!(wait_for_line(&ann, "ann, are you there?").await);
    click(&ann, "#notify-toggle").await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('notify-toggle').checked;"
        )
        .await
    );
    say(&mut bob, "#lobby", "just chatting").await;
    say(&mut bob, "#lobby", "ann: now?").await;
    bob.request_ok(&ClientFrame::Msg {
        to: "ann".into(),
        text: "psst".into(),
    })
    .await
    .unwrap();
    assert!(wait_until(&ann, "return window.shownNotes.length === 2;").await);
    assert_eq!(
        eval(&ann, "return window.shownNotes;").await,
        serde_json::json!([
            ["bob (#lobby)", "ann: now?"],
            ["bob (direct message)", "psst"]
        ]),
        "only mentions and direct messages, once switched on"
    );
    let _ = ann.close().await;
    server.stop().await;
}

/// Item 6: one Leave button in a private room; the invitation shows the
/// whole room name; moderation from the member menu and the room settings
/// panel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_has_one_leave_button_and_a_member_menu_for_moderation() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&accounts_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob) = tokio::join!(driver.browser("ann"), driver.browser("bob"));
    register(&ann, web, "ann").await;
    register(&bob, web, "bob").await;
    type_into(
        &ann,
        "#create-input",
        &format!("#secret-launch-plans{ENTER}"),
    )
    .await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('room-role').textContent.includes('you own it');"
        )
        .await
    );
    type_into(&ann, "#input", &format!("/invite bob{ENTER}")).await;

    assert!(wait_until(&bob, "return document.querySelector('#invitations li[data-room=\"#secret-launch-plans\"]') !== null;").await);
    let name = eval(&bob, "const n = document.querySelector('#invitations li .name'); return [n.textContent, n.scrollWidth <= n.clientWidth];").await;
    assert_eq!(
        name,
        serde_json::json!(["#secret-launch-plans from ann", true]),
        "the room name is not cut"
    );
    click(&bob, "#invitations li button.accept").await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('room-role').textContent.includes('you are a member');"
        )
        .await
    );
    const LEAVE_BUTTONS: &str = "return [...document.querySelectorAll('.conversation button')].filter(b => b.offsetParent !== null && /leave/i.test(b.textContent)).map(b => b.textContent);";
    assert_eq!(
        eval(&bob, LEAVE_BUTTONS).await,
        serde_json::json!(["Leave room"])
    );
    assert_eq!(
        eval(&ann, LEAVE_BUTTONS).await,
        serde_json::json!(["Leave"]),
        "the owner steps out"
    );

    // ann promotes bob from the member list, then kicks him.
    assert!(wait_until(&ann, "return document.querySelector('#member-list li[data-nick=\"bob\"] button.member') !== null;").await);
    click(&ann, "#member-list li[data-nick=\"bob\"] button.member").await;
    click(
        &ann,
        "#member-list li[data-nick=\"bob\"] button[data-action=\"promote\"]",
    )
    .await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('room-role').textContent.includes('you moderate it');"
        )
        .await,
        "bob is a moderator"
    );
    click(&ann, "#member-list li[data-nick=\"bob\"] button.member").await;
    assert!(wait_until(&ann, "return document.querySelector('#member-list li[data-nick=\"bob\"] button[data-action=\"demote\"]') !== null;").await);
    click(
        &ann,
        "#member-list li[data-nick=\"bob\"] button[data-action=\"kick\"]",
    )
    .await;
    assert!(
        wait_until(
            &bob,
            "return !document.querySelector('#rooms li[data-key=\"#secret-launch-plans\"]');"
        )
        .await,
        "bob is out"
    );
    assert!(wait_until(&ann, "return [...document.querySelectorAll('#member-list li')].map(l => l.dataset.nick).join(',') === 'ann';").await);

    // The room settings panel: the topic, and bans undone by a click.
    click(&ann, "#room-settings summary").await;
    type_into(&ann, "#topic-input", &format!("launch on Monday{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('room-role').textContent.includes('launch on Monday');"
        )
        .await
    );
    type_into(&ann, "#input", &format!("/ban bob{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.querySelector('#room-banned button[data-user=\"bob\"]') !== null;"
        )
        .await
    );
    click(&ann, "#room-banned button[data-user=\"bob\"]").await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('room-banned').textContent === 'nobody';"
        )
        .await,
        "bob is unbanned"
    );
    let _ = ann.close().await;
    let _ = bob.close().await;
    server.stop().await;
}

/// A 1×1 PNG.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Item 9: one click downloads, verifies and saves; the progress says how
/// far and how fast; an image is shown only when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_downloads_and_saves_and_an_image_is_previewed_on_request() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&files_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob) = tokio::join!(driver.browser("ann"), driver.browser("bob"));
    log_in(&ann, web, "ann", "#lobby").await;
    log_in(&bob, web, "bob", "#lobby").await;
    let path = dir.path().join("pixel.png");
    std::fs::write(&path, PIXEL_PNG).unwrap();
    assert!(wait_until(&ann, "return !document.getElementById('attach').hidden;").await);
    type_into(&ann, "#file-input", path.to_str().unwrap()).await;

    const ITEM: &str = "#transfers li[data-name=\"pixel.png\"]";
    assert!(
        wait_until(
            &bob,
            &format!("return document.querySelector('{ITEM}')?.dataset.state === 'available';")
        )
        .await
    );
    // What the page saves, by name (the browser's own download is not
    // observable from the test).
    eval(
        &bob,
        "window.savedFiles = []; const click = HTMLAnchorElement.prototype.click;
         HTMLAnchorElement.prototype.click = function () { if (this.download) window.savedFiles.push(this.download); return click.call(this); };
         return true;",
    )
    .await;
    click(&bob, &format!("{ITEM} button.download")).await;
    assert!(
        wait_until(
            &bob,
            &format!("return document.querySelector('{ITEM}')?.dataset.state === 'ready';")
        )
        .await
    );
    assert_eq!(
        eval(&bob, "return window.savedFiles;").await,
        serde_json::json!(["pixel.png"]),
        "saved with the one click"
    );
    let progress = eval(
        &bob,
        &format!("return document.querySelector('{ITEM} .progress-text').textContent;"),
    )
    .await;
    assert!(
        progress.as_str().unwrap().starts_with("100% in "),
        "{progress}"
    );
    assert_eq!(
        eval(
            &bob,
            &format!("return document.querySelector('{ITEM} img');")
        )
        .await,
        serde_json::Value::Null,
        "no preview unless asked"
    );
    click(&bob, &format!("{ITEM} button.preview")).await;
    assert!(
        wait_until(&bob, &format!("const i = document.querySelector('{ITEM} img.preview'); return i?.complete && i.naturalWidth === 1;")).await,
        "the picture is shown"
    );
    let _ = ann.close().await;
    let _ = bob.close().await;
    server.stop().await;
}

/// Dark mode follows the system unless a theme is chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_theme_follows_a_dark_system_setting_unless_light_is_chosen() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&files_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.dark("ann").await;
    log_in(&ann, web, "ann", "#lobby").await;
    assert_eq!(
        eval(
            &ann,
            "return matchMedia('(prefers-color-scheme: dark)').matches;"
        )
        .await,
        serde_json::json!(true),
        "the browser reports a dark system theme"
    );
    const BACKGROUND: &str =
        "return getComputedStyle(document.querySelector('.conversation')).backgroundColor;";
    assert_eq!(
        eval(&ann, BACKGROUND).await,
        serde_json::json!("rgb(27, 31, 39)")
    );
    ann.find(fantoccini::Locator::Css("#theme"))
        .await
        .unwrap()
        .select_by_value("light")
        .await
        .unwrap();
    assert!(wait_until(&ann, "return getComputedStyle(document.querySelector('.conversation')).backgroundColor === 'rgb(255, 255, 255)';").await);
    // The choice is remembered by this browser.
    ann.refresh().await.unwrap();
    assert!(wait_until(&ann, "return document.documentElement.dataset.theme === 'light' && document.getElementById('theme').value === 'light';").await);
    let _ = ann.close().await;
    server.stop().await;
}
