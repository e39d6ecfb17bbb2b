//! The layout docs/architecture.md describes: the top-level modules of
//! `chatd/src` import each other without a cycle, so each can be read (and
//! changed) knowing only the modules it names.

use std::path::Path;

use chatd_testkit::structure::{cycle, module_graph};

#[test]
fn the_server_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph.len() > 10, "modules found: {:?}", graph.keys());
    assert!(graph["session"].contains("hub"), "the scan sees imports");
    if let Some(found) = cycle(&graph) {
        panic!(
            "chatd/src has an import cycle: {} (move what both need into a leaf module)",
            found.join(" -> ")
        );
    }
}

#[test]
fn sessions_commands_and_the_hub_know_no_transport() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph["transport"].contains("session"),
        "the scan sees imports"
    );
    for module in ["session", "commands", "hub", "pipeline", "shared"] {
        assert!(
            !graph[module].contains("transport"),
            "{module} imports crate::transport; it must stay independent of the wire \
             (take a frame or a `session::Connection`, not a socket)"
        );
    }
}
