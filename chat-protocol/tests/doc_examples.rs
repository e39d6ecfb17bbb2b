//! The typed plugin frames say exactly what `docs/protocol.md` shows: every
//! example line of the accounts, private-rooms and file-transfer sections
//! decodes into its type and encodes back to the same JSON object.

use std::path::Path;

use chat_protocol::accounts::{AccountRequest, LoggedIn, WhoAmI};
use chat_protocol::files;
use chat_protocol::rooms::{RoomDetails, RoomEvent, RoomInvitation, RoomInvitations, RoomRequest};
use chat_protocol::serde_json::{self, Value};
use chat_protocol::{Inbound, Payload, Received};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The JSON objects on lines of `docs/protocol.md` between two headings.
fn examples(from_heading: &str, to_heading: &str) -> Vec<Value> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md"))
            .expect("docs/protocol.md is readable");
    let start = doc.find(from_heading).expect("the section exists");
    let end = start
        + doc[start..]
            .find(to_heading)
            .expect("the next section exists");
    doc[start..end]
        .lines()
        .filter_map(|line| {
            // Lines of code blocks, with or without a direction arrow, and
            // `...` spans within text; not the abbreviated ones (`...`).
            let line = line.trim().trim_start_matches(['>', '<', '→', '←', ' ']);
            let line = line.trim_matches('`');
            let value: Value = serde_json::from_str(line).ok()?;
            value.get("type")?.is_string().then_some(value)
        })
        .collect()
}

/// Whether `example` decodes as a `T` that encodes back to the same object
/// (with the request `id`, which a client library adds, put back).
fn round_trips<T: DeserializeOwned + Serialize>(example: &Value) -> bool {
    let Ok(frame) = serde_json::from_value::<T>(example.clone()) else {
        return false;
    };
    let mut encoded: Value = serde_json::from_slice(Payload::encode(&frame).json()).unwrap();
    if let (Some(id), Value::Object(map)) = (example.get("id"), &mut encoded) {
        map.entry("id").or_insert(id.clone());
    }
    &encoded == example
}

/// Checks every example of the section whose type a family claims; returns
/// how many were checked.
fn check(section: (&str, &str), claims: &[&str], typed: &[fn(&Value) -> bool]) -> usize {
    let mut checked = 0;
    for example in examples(section.0, section.1) {
        let kind = example["type"].as_str().unwrap();
        if !claims.contains(&kind) {
            continue;
        }
        assert!(
            typed.iter().any(|round_trip| round_trip(&example)),
            "docs/protocol.md shows {example}, which no typed frame reproduces"
        );
        checked += 1;
    }
    checked
}

#[test]
fn accounts_examples_round_trip() {
    let checked = check(
        ("## Accounts frames", "## File transfer frames"),
        &AccountRequest::KINDS
            .iter()
            .copied()
            .chain(["logged_in"])
            .collect::<Vec<_>>(),
        &[
            round_trips::<AccountRequest>,
            round_trips::<LoggedIn>,
            round_trips::<WhoAmI>,
        ],
    );
    // register, logged_in, login, logged_in, passwd, logout x2, whoami x2
    assert!(checked >= 9, "only {checked} accounts examples found");
    // `resume` is shown in the history section.
    let resume = examples("### Resuming a session", "### Retention");
    assert!(round_trips::<AccountRequest>(&resume[0]), "{}", resume[0]);
    assert!(round_trips::<LoggedIn>(&resume[1]), "{}", resume[1]);
}

#[test]
fn private_rooms_examples_round_trip() {
    let checked = check(
        ("## Private rooms frames", "## Dice frames"),
        &RoomRequest::KINDS
            .iter()
            .copied()
            .chain(["room_invitation", "room_event"])
            .collect::<Vec<_>>(),
        &[
            round_trips::<RoomRequest>,
            round_trips::<RoomInvitation>,
            round_trips::<RoomEvent>,
            round_trips::<RoomInvitations>,
            round_trips::<RoomDetails>,
        ],
    );
    assert!(checked >= 12, "only {checked} private-room examples found");
}

#[test]
fn file_transfer_examples_round_trip() {
    let checked = check(
        ("## File transfer frames", "## Private rooms frames"),
        &[
            "file_offer",
            "file_offered",
            "file_chunk",
            "file_ack",
            "file_complete",
            "file_available",
            "file_get",
            "file_data",
            "file_received",
            "file_delivered",
            "file_resume",
            "file_resumed",
        ],
        &[
            round_trips::<files::FileOffer>,
            round_trips::<files::FileOffered>,
            round_trips::<files::FileChunk>,
            round_trips::<files::FileAck>,
            round_trips::<files::FileComplete>,
            round_trips::<files::FileAvailable>,
            round_trips::<files::FileGet>,
            round_trips::<files::FileData>,
            round_trips::<files::FileReceived>,
            round_trips::<files::FileDelivered>,
            round_trips::<files::FileResume>,
            round_trips::<files::FileResumed>,
        ],
    );
    assert!(checked >= 12, "only {checked} file-transfer examples found");
}

#[test]
fn requests_arrive_as_the_plugin_decodes_them() {
    // What a client sends (the client library adds the id) is what the
    // plugin gets back from `Inbound::decode_custom`.
    let sent = RoomRequest::Kick {
        room: "#secret".into(),
        user: "bob".into(),
        reason: Some("spam".into()),
    };
    let mut line: Value = serde_json::from_slice(Payload::encode(&sent).json()).unwrap();
    line["id"] = 6.into();
    let inbound = Inbound::parse(line.to_string().as_bytes()).unwrap();
    assert_eq!(inbound.kind, sent.kind());
    assert_eq!(inbound.decode_custom::<RoomRequest>().unwrap(), sent);

    let reply = Received::parse(
        br#"{"type":"logged_in","id":1,"user":"alice","nick":"alice","admin":false}"#,
    )
    .unwrap();
    let logged_in = LoggedIn::from_frame(&reply).unwrap();
    assert_eq!((logged_in.id, logged_in.user.as_str()), (Some(1), "alice"));
    assert!(!format!(
        "{:?}",
        AccountRequest::Login {
            user: "alice".into(),
            password: "correct horse".into()
        }
    )
    .contains("horse"));
}
