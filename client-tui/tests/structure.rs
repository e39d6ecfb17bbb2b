//! The layout docs/architecture.md describes for the terminal client: the
//! top-level modules of `client-tui/src` import each other without a
//! cycle; the model (state and update) never imports the view; the
//! transfer workers know nothing of the connection task that runs them.

use std::path::Path;

use chatd_testkit::structure::{cycle, module_graph};

fn graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph["update"].contains("state"), "the scan sees imports");
    graph
}

#[test]
fn the_client_modules_import_each_other_without_a_cycle() {
    if let Some(found) = cycle(&graph()) {
        panic!(
            "client-tui/src has an import cycle: {} (move what both need into a leaf module)",
            found.join(" -> ")
        );
    }
}

#[test]
fn the_model_does_not_import_the_view() {
    let graph = graph();
    let drawing = ["view", "help_view", "progress", "screen", "line_mode"];
    for model in [
        "state",
        "entry",
        "layout",
        "update",
        "transfers",
        "command",
        "complete",
    ] {
        let wrong: Vec<_> = drawing
            .iter()
            .filter(|d| graph[model].contains(**d))
            .collect();
        assert!(wrong.is_empty(), "{model} imports {wrong:?}");
    }
}

#[test]
fn transfer_workers_do_not_know_the_connection_task() {
    assert!(
        !graph()["transfer"].contains("net"),
        "transfer.rs imports net.rs: workers report on their own channel"
    );
}
