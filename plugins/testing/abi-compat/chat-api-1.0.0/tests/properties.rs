//! Property tests of client frame decoding: no input makes it panic, and
//! every refusal carries one of the documented error codes.

use chat_api::{ErrorCode, Inbound};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Arbitrary JSON, biased towards objects that look like frames.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Known frame types and field names, so that the decoder's deeper paths
/// (field types, missing fields) are reached, not only "no type".
fn frame_like() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        "hello",
        "nick",
        "join",
        "part",
        "say",
        "msg",
        "broadcast",
        "users",
        "rooms",
        "ping",
        "quit",
        "history",
        "read",
        "unread",
        "login",
        "resume",
        "room_create",
        "file_offer",
        "made_up",
    ]);
    let fields = prop::sample::select(vec![
        "id", "protocol", "nick", "room", "text", "to", "before", "after", "limit", "with",
        "msg_id", "token", "reason", "floor",
    ]);
    (
        kinds,
        proptest::collection::vec((fields, json_value()), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut map = Map::new();
            map.insert("type".into(), json!(kind));
            for (k, v) in fields {
                map.insert(k.to_string(), v);
            }
            Value::Object(map)
        })
}

fn documented(code: &ErrorCode) -> bool {
    *code == ErrorCode::MALFORMED_FRAME || *code == ErrorCode::INVALID_FRAME
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_decode_or_get_a_documented_error(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = Inbound::parse(&bytes) {
            prop_assert!(documented(&e.error.code), "{:?}", e);
        }
    }

    #[test]
    fn arbitrary_json_decodes_or_gets_a_documented_error(value in json_value()) {
        let line = serde_json::to_vec(&value).unwrap();
        if let Err(e) = Inbound::parse(&line) {
            prop_assert!(documented(&e.error.code), "{:?}", e);
        }
    }

    #[test]
    fn frame_like_objects_decode_or_name_the_problem(value in frame_like()) {
        let line = serde_json::to_vec(&value).unwrap();
        match Inbound::parse(&line) {
            Ok(frame) => prop_assert_eq!(Some(frame.kind.as_str()), value["type"].as_str()),
            Err(e) => {
                prop_assert!(documented(&e.error.code), "{:?}", e);
                prop_assert!(!e.error.message.is_empty());
            }
        }
    }
}

#[test]
fn a_client_cannot_set_the_server_side_history_floor() {
    let frame = Inbound::parse(br##"{"type":"history","room":"#r","floor":0}"##).unwrap();
    match frame.request {
        chat_api::Request::Core(chat_api::ClientFrame::History { floor, .. }) => {
            assert_eq!(floor, None)
        }
        other => panic!("{other:?}"),
    }
}
