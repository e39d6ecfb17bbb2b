//! docs/commands.md, the one command vocabulary of both clients (issue 17
//! item 14), agrees with client-tui's command table: every command and
//! alias of the client is in the document, and every command the document
//! gives client-tui is one of its commands under that name.

use client_tui::command::{parse, spec, CommandError, ALIASES, COMMANDS};

/// One row of a command table: its name, other names, and whether
/// client-tui has it.
struct Row {
    name: String,
    aliases: Vec<String>,
    terminal: bool,
}

/// The command name in a cell such as "`/join #ROOM`" or "`/accept ID`".
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.strip_prefix('/'))
        .map(|code| code.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/commands.md"))
        .expect("docs/commands.md");
    text.lines()
        .filter(|l| l.starts_with("| `/"))
        .map(|line| {
            let line = line.replace("\\|", "¦");
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 5, "five columns: {line}");
            Row {
                name: names(cells[0]).remove(0),
                aliases: names(cells[1]),
                terminal: cells[3] == "yes",
            }
        })
        .collect()
}

#[test]
fn every_command_and_alias_of_the_terminal_client_is_documented() {
    let rows = rows();
    for command in COMMANDS {
        let row = rows
            .iter()
            .find(|r| r.name == command.name)
            .unwrap_or_else(|| panic!("/{} is not in docs/commands.md", command.name));
        assert!(
            row.terminal,
            "/{} is marked as not in client-tui",
            command.name
        );
    }
    for (alias, canonical) in ALIASES {
        assert!(
            rows.iter()
                .any(|r| r.name == *canonical && r.aliases.iter().any(|a| a == alias)),
            "/{alias} (for /{canonical}) is not listed in docs/commands.md"
        );
    }
}

#[test]
fn every_documented_terminal_command_is_the_clients_under_that_name() {
    for row in rows().into_iter().filter(|r| r.terminal) {
        let found = spec(&row.name).unwrap_or_else(|| panic!("client-tui has no /{}", row.name));
        assert_eq!(found.name, row.name, "/{} is a canonical name", row.name);
        // Aliases (and abbreviations such as `/j`) are understood.
        for alias in &row.aliases {
            let known = !matches!(
                parse(&format!("/{alias}")),
                Err(CommandError::Unknown { .. } | CommandError::Ambiguous { .. })
            );
            assert!(known, "client-tui does not know /{alias}");
        }
    }
}
