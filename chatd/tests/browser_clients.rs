//! Browser app faults found in daily use (issue 17): where notices land,
//! one line per event, `/leave` in a private room, keyboard use and the
//! phone layout. Real headless Chromium through chromedriver, two or three
//! users in separate browser profiles, as in `browser.rs` (same needs:
//! `chromium` and `chromium-driver`; under `CI=true` missing ones fail).

mod browser_support;
mod common;

use browser_support::*;
use common::{start_with_text, web_addr};

/// Bugs 1, 3 and 4: an invitation and a kick are told in the server view
/// (not the conversation open), a kick is one line for the room, and
/// `/leave` ends a membership as `/help` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_room_notices_land_in_the_right_place_and_leave_ends_the_membership() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&accounts_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob, carol) = tokio::join!(
        driver.browser("ann"),
        driver.browser("bob"),
        driver.browser("carol")
    );
    register(&ann, web, "ann").await;
    register(&bob, web, "bob").await;
    register(&carol, web, "carol").await;
    type_into(&bob, "#join-input", &format!("#lobby{ENTER}")).await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('conv-title').textContent === '#lobby';"
        )
        .await
    );

    type_into(&ann, "#create-input", &format!("#secret{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('room-role').textContent.includes('you own it');"
        )
        .await
    );
    type_into(&ann, "#input", &format!("/invite bob{ENTER}")).await;
    type_into(&ann, "#input", &format!("/invite carol{ENTER}")).await;

    // bob reads #lobby: the invitation goes to the sidebar and the server
    // view, not into #lobby.
    assert!(
        wait_until(
            &bob,
            "return document.querySelector('#invitations li[data-room=\"#secret\"]') !== null;"
        )
        .await
    );
    assert!(
        !all_lines(&bob)
            .await
            .iter()
            .any(|l| l.contains("invited you")),
        "the invitation is not written into #lobby: {:?}",
        all_lines(&bob).await
    );
    open_conversation(&bob, "*server").await;
    assert!(wait_for_line(&bob, "ann invited you to the private room #secret").await);
    click(&bob, "#invitations li[data-room=\"#secret\"] button.accept").await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('room-role').textContent.includes('you are a member');"
        )
        .await
    );
    assert!(
        wait_until(
            &carol,
            "return document.querySelector('#invitations li[data-room=\"#secret\"]') !== null;"
        )
        .await
    );
    click(
        &carol,
        "#invitations li[data-room=\"#secret\"] button.accept",
    )
    .await;
    assert!(
        wait_until(
            &carol,
            "return document.getElementById('room-role').textContent.includes('you are a member');"
        )
        .await
    );

    // carol's /leave ends her membership: the owner's /info no longer
    // lists her.
    type_into(&carol, "#input", &format!("/leave{ENTER}")).await;
    assert!(
        wait_until(
            &carol,
            "return !document.querySelector('#rooms li[data-key=\"#secret\"]');"
        )
        .await,
        "#secret leaves carol's sidebar"
    );
    assert!(wait_until(&ann, "return [...document.querySelectorAll('#member-list li')].map(l => l.dataset.nick).join(',') === 'ann,bob';").await);
    type_into(&ann, "#input", &format!("/info{ENTER}")).await;
    assert!(wait_for_line(&ann, "#secret: owner ann; members ").await);
    let info = all_lines(&ann)
        .await
        .into_iter()
        .rfind(|l| l.starts_with("#secret: owner ann"))
        .unwrap();
    assert!(
        info.contains("members ann, bob") && !info.contains("carol"),
        "carol is no longer a member: {info}"
    );

    // bob reads #lobby while ann removes him from #secret: he is told in
    // the server view; ann's #secret shows the removal once.
    open_conversation(&bob, "#lobby").await;
    type_into(&ann, "#input", &format!("/kick bob spamming{ENTER}")).await;
    assert!(
        wait_until(
            &bob,
            "return !document.querySelector('#rooms li[data-key=\"#secret\"]');"
        )
        .await
    );
    assert!(
        !all_lines(&bob)
            .await
            .iter()
            .any(|l| l.contains("removed you")),
        "the kick is not written into #lobby: {:?}",
        all_lines(&bob).await
    );
    open_conversation(&bob, "*server").await;
    assert!(wait_for_line(&bob, "ann removed you from #secret (spamming)").await);
    assert!(wait_for_line(&ann, "ann removed bob from #secret (spamming)").await);
    let about_bob: Vec<String> = all_lines(&ann)
        .await
        .into_iter()
        .filter(|l| l.starts_with("bob ") || l.contains(" bob "))
        .filter(|l| l.contains("left") || l.contains("removed") || l.contains("kicked"))
        .collect();
    assert_eq!(
        about_bob,
        ["ann removed bob from #secret (spamming)"],
        "one line for one kick"
    );

    for browser in [ann, bob, carol] {
        let _ = browser.close().await;
    }
    server.stop().await;
}

/// Bugs 2 and 4: a file offer is announced in the conversation it was sent
/// to, and a nickname change is one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_notices_land_in_their_conversation_and_a_nick_change_is_one_line() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&files_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let (ann, bob, carol) = tokio::join!(
        driver.browser("ann"),
        driver.browser("bob"),
        driver.browser("carol")
    );
    log_in(&ann, web, "ann", "#lobby").await;
    log_in(&bob, web, "bob", "#lobby").await;
    log_in(&carol, web, "carol", "#lobby").await;
    let to_room = dir.path().join("to-room.txt");
    let to_ann = dir.path().join("to-ann.txt");
    std::fs::write(&to_room, "for everyone").unwrap();
    std::fs::write(&to_ann, "for ann").unwrap();

    // ann reads her conversation with bob while carol sends to #lobby.
    type_into(&ann, "#dm-input", &format!("bob{ENTER}")).await;
    assert!(
        wait_until(
            &ann,
            "return document.getElementById('conv-title').textContent === 'Conversation with bob';"
        )
        .await
    );
    assert!(wait_until(&carol, "return !document.getElementById('attach').hidden;").await);
    type_into(&carol, "#file-input", to_room.to_str().unwrap()).await;
    assert!(wait_until(&ann, "return document.querySelector('#transfers li[data-name=\"to-room.txt\"]')?.dataset.state === 'available';").await);
    assert!(
        !all_lines(&ann)
            .await
            .iter()
            .any(|l| l.contains("sent a file")),
        "carol's file is not announced in the conversation with bob: {:?}",
        all_lines(&ann).await
    );
    open_conversation(&ann, "#lobby").await;
    assert!(wait_for_line(&ann, "carol sent a file in #lobby: to-room.txt").await);

    // bob sends ann a file directly while she reads #lobby.
    type_into(&bob, "#dm-input", &format!("ann{ENTER}")).await;
    assert!(
        wait_until(
            &bob,
            "return document.getElementById('conv-title').textContent === 'Conversation with ann';"
        )
        .await
    );
    type_into(&bob, "#file-input", to_ann.to_str().unwrap()).await;
    assert!(wait_until(&ann, "return document.querySelector('#transfers li[data-name=\"to-ann.txt\"]')?.dataset.state === 'available';").await);
    assert!(
        !all_lines(&ann)
            .await
            .iter()
            .any(|l| l.contains("to-ann.txt")),
        "bob's direct file is not announced in #lobby: {:?}",
        all_lines(&ann).await
    );
    open_conversation(&ann, "@bob").await;
    assert!(wait_for_line(&ann, "bob sent a file: to-ann.txt").await);

    // carol renames herself in #lobby: one line says so, for her and ann.
    open_conversation(&ann, "#lobby").await;
    type_into(&carol, "#input", &format!("/nick carla{ENTER}")).await;
    assert!(
        wait_until(
            &carol,
            "return document.getElementById('me-nick').textContent === 'carla';"
        )
        .await
    );
    assert!(wait_for_line(&ann, "carol is now known as carla").await);
    assert!(wait_for_line(&carol, "carla").await);
    for (who, browser) in [("carol", &carol), ("ann", &ann)] {
        let lines: Vec<String> = all_lines(browser)
            .await
            .into_iter()
            .filter(|l| l.contains("carla"))
            .collect();
        assert_eq!(lines.len(), 1, "{who} sees the rename once: {lines:?}");
    }

    for browser in [ann, bob, carol] {
        let _ = browser.close().await;
    }
    server.stop().await;
}

/// The names docs/commands.md gives the browser app: (command, aliases).
fn documented_browser_commands() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/commands.md"))
        .expect("docs/commands.md");
    let names = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|code| code.strip_prefix('/'))
            .map(|code| code.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    text.lines()
        .filter(|l| l.starts_with("| `/"))
        .filter_map(|line| {
            let line = line.replace("\\|", "¦");
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            (cells[4] == "yes").then(|| (names(cells[0]).remove(0), names(cells[1])))
        })
        .collect()
}

/// Item 14: one vocabulary. Every command docs/commands.md gives the
/// browser is understood by the app, and every other name means the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_understands_every_command_of_the_shared_table() {
    let Some((chromium, driver_path)) = browser_programs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_text(&accounts_config(dir.path())).await;
    let web = web_addr(&server);
    let driver = Driver::start(chromium, &driver_path).await;
    let ann = driver.browser("ann").await;
    register(&ann, web, "ann").await;
    // `/roll` needs the dice plugin, a dynamic library built on its own.
    let commands: Vec<_> = documented_browser_commands()
        .into_iter()
        .filter(|(name, _)| name != "roll")
        .collect();
    assert!(commands.len() > 25, "{commands:?}");
    let result = ann
        .execute_async(
            r#"const [commands, done] = arguments;
            Promise.all([import('/js/commands.js'), import('/js/features.js')]).then(([m, f]) => {
                // The feature modules' commands count (the server has them all).
                const isExtra = (name) => f.MODULES.some((module) => module.commands?.[name]);
                const parse = (line) => m.parse(line, isExtra);
                const action = (line) => JSON.stringify(parse(line));
                const unknown = [], differ = [];
                for (const [name, aliases] of commands) {
                    const a = parse(`/${name} bob`);
                    if (a.kind === 'error' && a.text.startsWith('Unknown')) unknown.push(name);
                    for (const alias of aliases) {
                        if (action(`/${alias} bob`) !== action(`/${name} bob`)) differ.push(`${alias} vs ${name}`);
                    }
                }
                done({unknown, differ});
            }, (e) => done({error: String(e)}));"#,
            vec![serde_json::to_value(&commands).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        result,
        serde_json::json!({"unknown": [], "differ": []}),
        "the browser app follows docs/commands.md"
    );
    let _ = ann.close().await;
    server.stop().await;
}
