//! Round trips of every message, hostile input, version negotiation and
//! error codes.

use std::collections::BTreeMap;

use automerge::ActorId;
use serde_json::json;

use super::*;
use crate::data::{ObjectId, ObjectState, Reference, SpaceId, Value};
use crate::model::{Heads, ModelError, Mutation, Space, SpaceOptions, WriteBatch};
use crate::query::{Compare, Direction, Filter, LiveDiff, Query, QueryError, SubscriptionId};
use crate::store::StoreError;
use crate::sync::SyncError;

fn oid() -> String {
    ObjectId::random().to_string()
}

fn sid() -> String {
    SpaceId::random().to_string()
}

fn heads() -> WireHeads {
    WireHeads(vec![format!("3:{}", "ab".repeat(32))])
}

fn fields() -> WireFields {
    let mut f = BTreeMap::new();
    f.insert("title".to_owned(), WireValue::String("hi".into()));
    f.insert("n".to_owned(), WireValue::Int(WireInt(7)));
    f
}

fn query() -> WireQuery {
    WireQuery {
        filter: WireFilter::And(vec![
            WireFilter::Type("task".into()),
            WireFilter::Field {
                field: "n".into(),
                op: WireCompare::Gt,
                value: WireValue::Int(WireInt(3)),
            },
        ]),
        order: vec![WireOrder {
            field: "n".into(),
            descending: true,
        }],
        limit: Some(20),
        offset: 0,
        include_deleted: false,
    }
}

fn object() -> WireObject {
    WireObject {
        id: oid(),
        type_name: "task".into(),
        fields: fields(),
        deleted: false,
    }
}

/// One of each request variant.
fn requests() -> Vec<Request> {
    let space = sid();
    vec![
        Request::Ping {},
        Request::IdentityInfo {},
        Request::CreateSpace {
            properties: fields(),
        },
        Request::ListSpaces {},
        Request::SpaceProperties {
            space: space.clone(),
        },
        Request::SetSpaceProperty {
            space: space.clone(),
            name: "name".into(),
            value: WireValue::String("Home".into()),
        },
        Request::SpaceHeads {
            space: space.clone(),
        },
        Request::CreateObject {
            space: space.clone(),
            id: Some(oid()),
            type_name: "task".into(),
            fields: fields(),
        },
        Request::UpdateObject {
            space: space.clone(),
            id: oid(),
            set: fields(),
            remove: vec!["old".into()],
        },
        Request::DeleteObject {
            space: space.clone(),
            id: oid(),
        },
        Request::GetObjects {
            space: space.clone(),
            ids: vec![oid(), oid()],
            at: Some(heads()),
        },
        Request::Batch {
            space: space.clone(),
            mutations: vec![
                WireMutation::Create {
                    id: None,
                    type_name: "task".into(),
                    fields: fields(),
                },
                WireMutation::Set {
                    id: oid(),
                    field: "n".into(),
                    value: WireValue::Null,
                },
                WireMutation::Remove {
                    id: oid(),
                    field: "n".into(),
                },
                WireMutation::Delete { id: oid() },
                WireMutation::SpliceText {
                    id: oid(),
                    field: "body".into(),
                    pos: 1,
                    delete: 2,
                    insert: "é".into(),
                },
            ],
        },
        Request::Query {
            space: space.clone(),
            query: query(),
            at: Some(heads()),
            resolve: true,
        },
        Request::Subscribe {
            space: space.clone(),
            query: query(),
            resolve: false,
        },
        Request::Unsubscribe { subscription: 9 },
        Request::SpliceText {
            space: space.clone(),
            id: oid(),
            field: "body".into(),
            pos: 0,
            delete: 0,
            insert: "x".into(),
            context: Some("ab".into()),
        },
        Request::ReadText {
            space: space.clone(),
            id: oid(),
            field: "body".into(),
            at: None,
        },
        Request::SpaceStatus { space },
    ]
}

fn status() -> SpaceStatus {
    SpaceStatus {
        peers: 2,
        synced_at: Some(1_764_000_000_000.0),
        online: true,
        can_connect: false,
    }
}

fn responses() -> Vec<Response> {
    let info = SpaceInfo {
        space: sid(),
        role: Role::Editor,
        properties: fields(),
    };
    vec![
        Response::Done {},
        Response::Identity(AppIdentity {
            user: "c".repeat(26),
            display_name: Some("Ada".into()),
        }),
        Response::Space(info.clone()),
        Response::Spaces { spaces: vec![info] },
        Response::Properties {
            properties: fields(),
        },
        Response::Heads { heads: heads() },
        Response::Written {
            created: vec![oid()],
        },
        Response::Objects {
            objects: vec![Some(object()), None],
        },
        Response::Result {
            ids: vec![oid()],
            objects: Some(vec![object()]),
        },
        Response::Subscribed {
            subscription: 4,
            ids: vec![],
            objects: None,
        },
        Response::Text {
            text: "hello".into(),
        },
        Response::SpaceStatus(status()),
    ]
}

fn events() -> Vec<Event> {
    vec![
        Event::QueryDiff {
            added: vec![oid()],
            removed: vec![],
            changed: vec![oid()],
            window: Some(vec![oid()]),
            objects: Some(vec![object()]),
        },
        Event::SpaceChanged { space: sid() },
        Event::SpaceStatus {
            space: sid(),
            status: status(),
        },
        Event::AccessRevoked { space: Some(sid()) },
        Event::AccessRevoked { space: None },
    ]
}

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug + PartialEq,
{
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(&back, value, "{text}");
    // Through serde_json::Value too (a self-describing in-memory form, as
    // serde-wasm-bindgen's JsValue is).
    let v = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(v).unwrap();
    assert_eq!(&back, value);
    back
}

fn decode(text: &str) -> Result<ClientMessage, Undecodable> {
    decode_client_message(serde_json::from_str::<ClientMessage>(text), || {
        serde_json::from_str(text).ok()
    })
}

fn decode_err(text: &str) -> Undecodable {
    decode(text).expect_err(text)
}

// ------------------------------------------------------------ round trips

#[test]
fn every_request_round_trips_under_its_method_name() {
    let requests = requests();
    let mut seen: Vec<&str> = requests.iter().map(Request::method).collect();
    seen.sort();
    seen.dedup();
    let mut all = METHODS.to_vec();
    all.sort();
    assert_eq!(seen, all, "one sample per method");
    for (i, request) in requests.into_iter().enumerate() {
        let json = serde_json::to_value(&request).unwrap();
        let key = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(key, request.method());
        let message = ClientMessage::Request {
            id: i as u32,
            method: request,
        };
        round_trip(&message);
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(decode(&text).unwrap(), message);
    }
}

#[test]
fn every_response_and_event_round_trips() {
    for (i, response) in responses().into_iter().enumerate() {
        round_trip(&VaultMessage::Response {
            id: i as u32,
            result: Ok(response),
        });
    }
    round_trip(&VaultMessage::Response {
        id: 1,
        result: Err(RpcError::new(codes::TIMEOUT, "slow").with_detail("a", "b")),
    });
    for event in events() {
        round_trip(&VaultMessage::Event {
            subscription: Some(3),
            event,
        });
    }
    round_trip(&VaultMessage::Welcome {
        version: 1,
        vault: VaultInfo {
            vault: "echo-vault 0.1.0".into(),
            storage: StorageState::Partitioned,
            consent: Consent::Granted,
        },
    });
    round_trip(&VaultMessage::Refused {
        error: negotiate(&[9]).unwrap_err(),
    });
    round_trip(&VaultMessage::Rejected {
        error: RpcError::bad_request("x"),
    });
    round_trip(&ClientMessage::Hello {
        versions: vec![1, 2],
        client: "echo-client 0.1".into(),
        durability: None,
    });
    round_trip(&ClientMessage::Hello {
        versions: vec![1],
        client: "echo-client 0.1".into(),
        durability: Some(Durability::Relaxed),
    });
    round_trip(&ClientMessage::Cancel { id: 3 });
    for state in [
        ConnectionState::Connecting,
        ConnectionState::Connected,
        ConnectionState::NotAuthorized,
        ConnectionState::StoragePartitioned,
        ConnectionState::StorageBlocked,
        ConnectionState::Disconnected,
    ] {
        round_trip(&state);
    }
}

#[test]
fn wire_shapes_are_as_documented() {
    let id = oid();
    let message = ClientMessage::Request {
        id: 7,
        method: Request::GetObjects {
            space: id.clone(),
            ids: vec![id.clone()],
            at: None,
        },
    };
    assert_eq!(
        serde_json::to_value(&message).unwrap(),
        json!({"request": {"id": 7, "method": {"object.get": {"space": id, "ids": [id]}}}})
    );
    let ok = VaultMessage::Response {
        id: 7,
        result: Ok(Response::Done {}),
    };
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({"response": {"id": 7, "result": {"Ok": {"done": {}}}}})
    );
    let values = [
        (Value::Null, json!("null")),
        (Value::Bool(true), json!({"bool": true})),
        (Value::Int(5), json!({"int": 5})),
        (
            Value::Int(MAX_SAFE_INTEGER),
            json!({"int": 9007199254740991_i64}),
        ),
        (
            Value::Int(MAX_SAFE_INTEGER + 1),
            json!({"int": "9007199254740992"}),
        ),
        (Value::Int(i64::MIN), json!({"int": "-9223372036854775808"})),
        (Value::Float(1.5), json!({"float": 1.5})),
        (Value::Float(f64::INFINITY), json!({"float": "Infinity"})),
        (
            Value::Float(f64::NEG_INFINITY),
            json!({"float": "-Infinity"}),
        ),
        (Value::Float(f64::NAN), json!({"float": "NaN"})),
        (Value::Float(-0.0), json!({"float": "-0"})),
        (Value::Float(0.0), json!({"float": 0.0})),
        (Value::Float(2.0), json!({"float": 2.0})),
        (Value::String("s".into()), json!({"string": "s"})),
        (Value::Text("t".into()), json!({"text": "t"})),
        (Value::Bytes(vec![1, 2]), json!({"bytes": "AQI="})),
        (Value::List(vec![Value::Null]), json!({"list": ["null"]})),
        (
            Value::Ref(Reference::local(id.parse().unwrap())),
            json!({"ref": {"object": id}}),
        ),
    ];
    for (value, expected) in values {
        let wire = WireValue::from(&value);
        assert_eq!(serde_json::to_value(&wire).unwrap(), expected);
        let back: WireValue = serde_json::from_value(expected.clone()).unwrap();
        let model = Value::try_from(&back).unwrap();
        match (&model, &value) {
            (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            _ => assert_eq!(model, value, "{expected}"),
        }
    }
}

#[test]
fn model_values_objects_queries_and_mutations_convert_both_ways() {
    let other = Reference::remote(SpaceId::random(), ObjectId::random());
    let mut map = BTreeMap::new();
    map.insert("k".to_owned(), Value::List(vec![Value::Ref(other)]));
    let state = ObjectState {
        id: ObjectId::random(),
        type_name: "task".into(),
        fields: [
            ("m".to_owned(), Value::Map(map)),
            ("b".to_owned(), Value::Bytes((0..=255).collect())),
            ("i".to_owned(), Value::Int(i64::MAX)),
            ("f".to_owned(), Value::Float(-0.0)),
        ]
        .into_iter()
        .collect(),
        deleted: true,
    };
    let wire = round_trip(&WireObject::from(&state));
    assert_eq!(ObjectState::try_from(&wire).unwrap(), state);

    let q = Query::new(Filter::Or(vec![
        Filter::Not(Box::new(Filter::Exists("x".into()))),
        Filter::In {
            field: "n".into(),
            values: vec![Value::Int(1), Value::Float(2.5)],
        },
        Filter::TextContains {
            field: "t".into(),
            needle: "a".into(),
        },
        Filter::ListContains {
            field: "l".into(),
            value: Value::Bool(false),
        },
        Filter::References(ObjectId::random()),
        Filter::RefersTo {
            field: "parent".into(),
            target: Box::new(Filter::field("n", Compare::Le, 3)),
        },
        Filter::Reachable {
            root: ObjectId::random(),
            field: "parent".into(),
            direction: Direction::Incoming,
            max_depth: 4,
        },
        Filter::All,
    ]))
    .order_by("n", false)
    .limit(5)
    .offset(2)
    .include_deleted(true);
    let wire = round_trip(&WireQuery::from(&q));
    assert_eq!(Query::try_from(&wire).unwrap(), q);

    let id = ObjectId::random();
    let mutations = [
        Mutation::Create {
            id,
            type_name: "t".into(),
            fields: BTreeMap::new(),
        },
        Mutation::Set {
            id,
            field: "f".into(),
            value: Value::Null,
        },
        Mutation::Remove {
            id,
            field: "f".into(),
        },
        Mutation::Delete { id },
        Mutation::SpliceText {
            id,
            field: "f".into(),
            pos: 3,
            delete: 1,
            insert: "x".into(),
        },
    ];
    for m in mutations {
        let wire = round_trip(&WireMutation::from(&m));
        assert_eq!(mutation_from_wire(&wire, &mut ObjectId::random).unwrap(), m);
    }
    // A create without an id gets a fresh one.
    let fresh = ObjectId::from_bytes([9; 16]);
    let created = mutation_from_wire(
        &WireMutation::Create {
            id: None,
            type_name: "t".into(),
            fields: fields(),
        },
        &mut || fresh,
    )
    .unwrap();
    assert!(matches!(created, Mutation::Create { id, .. } if id == fresh));
    assert!(matches!(created, Mutation::Create { ref fields, .. } if fields.len() == 2));
}

#[test]
fn heads_of_a_real_space_round_trip_and_read_back() {
    let mut space = Space::create(
        SpaceId::random(),
        ActorId::from([1u8; 32].as_slice()),
        SpaceOptions { shard_count: 4 },
    )
    .unwrap();
    let mut batch = WriteBatch::new();
    let id = batch.create("task", [("n", Value::Int(1))]);
    space.apply(batch).unwrap();
    let heads = space.heads().unwrap();
    assert!(!heads.entries.is_empty());
    let wire = round_trip(&WireHeads::from(&heads));
    assert_eq!(Heads::try_from(&wire).unwrap(), heads);
    let mut batch = WriteBatch::new();
    batch.set(id, "n", 2i64);
    space.apply(batch).unwrap();
    let then = space.get_at(&id, &Heads::try_from(&wire).unwrap()).unwrap();
    assert_eq!(then.unwrap().fields["n"], Value::Int(1));
    assert_eq!(
        Heads::try_from(&WireHeads(vec![])).unwrap(),
        Heads::default()
    );
}

#[test]
fn live_diffs_become_events() {
    let (a, b) = (ObjectId::random(), ObjectId::random());
    let diff = LiveDiff {
        subscription: SubscriptionId(1),
        added: vec![a],
        removed: vec![b],
        changed: vec![],
        window: Some(vec![a]),
    };
    assert_eq!(
        Event::from_diff(&diff),
        Event::QueryDiff {
            added: vec![a.to_string()],
            removed: vec![b.to_string()],
            changed: vec![],
            window: Some(vec![a.to_string()]),
            objects: None,
        }
    );
}

// --------------------------------------------------------- hostile input

#[test]
fn unknown_methods_are_answered_for_their_call() {
    let e = decode_err(r#"{"request":{"id":7,"method":{"object.explode":{}}}}"#);
    assert_eq!(e.id, Some(7));
    assert_eq!(e.error.code, codes::UNKNOWN_METHOD);
    assert_eq!(e.error.detail("method"), Some("object.explode"));
    assert!(
        e.error.message.contains("object.get"),
        "{}",
        e.error.message
    );
    // Method before id, extra junk around.
    let e = decode_err(r#"{"request":{"junk":[1,{"a":2}],"method":{"nope":{}},"id":8}}"#);
    assert_eq!(
        (e.id, e.error.code.as_str()),
        (Some(8), codes::UNKNOWN_METHOD)
    );
    match e.into_message() {
        VaultMessage::Response {
            id: 8,
            result: Err(err),
        } => {
            assert_eq!(err.code, codes::UNKNOWN_METHOD)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_messages_are_bad_requests_with_their_id_when_readable() {
    let space = sid();
    let cases = [
        // Wrong field types.
        (
            format!(
                r#"{{"request":{{"id":1,"method":{{"object.get":{{"space":"{space}","ids":"x"}}}}}}}}"#
            ),
            Some(1),
        ),
        (
            r#"{"request":{"id":2,"method":{"space.heads":{"space":5}}}}"#.to_owned(),
            Some(2),
        ),
        // Missing and unknown fields.
        (
            r#"{"request":{"id":3,"method":{"space.heads":{}}}}"#.to_owned(),
            Some(3),
        ),
        (
            format!(
                r#"{{"request":{{"id":4,"method":{{"space.heads":{{"space":"{space}","x":1}}}}}}}}"#
            ),
            Some(4),
        ),
        // Bad values: a rounded big integer, a fraction as an int, bad float string.
        (
            format!(
                r#"{{"request":{{"id":5,"method":{{"space.set_property":{{"space":"{space}","name":"n","value":{{"int":9007199254740993}}}}}}}}}}"#
            ),
            Some(5),
        ),
        (
            format!(
                r#"{{"request":{{"id":6,"method":{{"space.set_property":{{"space":"{space}","name":"n","value":{{"int":1.5}}}}}}}}}}"#
            ),
            Some(6),
        ),
        (
            format!(
                r#"{{"request":{{"id":7,"method":{{"space.set_property":{{"space":"{space}","name":"n","value":{{"float":"nan"}}}}}}}}}}"#
            ),
            Some(7),
        ),
        (
            format!(
                r#"{{"request":{{"id":8,"method":{{"space.set_property":{{"space":"{space}","name":"n","value":{{"int":"007"}}}}}}}}}}"#
            ),
            Some(8),
        ),
        (
            format!(
                r#"{{"request":{{"id":9,"method":{{"space.set_property":{{"space":"{space}","name":"n","value":{{"shape":1}}}}}}}}}}"#
            ),
            Some(9),
        ),
        // Ids unreadable: negative, too big, a string, missing.
        (
            r#"{"request":{"id":-1,"method":{"ping":{}}}}"#.to_owned(),
            None,
        ),
        (
            r#"{"request":{"id":4294967296,"method":{"ping":{}}}}"#.to_owned(),
            None,
        ),
        (
            r#"{"request":{"id":"1","method":{"ping":{}}}}"#.to_owned(),
            None,
        ),
        (r#"{"request":{"method":{"ping":{}}}}"#.to_owned(), None),
        // Not a message at all.
        ("[1,2,3]".to_owned(), None),
        ("\"hello\"".to_owned(), None),
        ("{".to_owned(), None),
        ("".to_owned(), None),
        (
            r#"{"hello":{"versions":"1","client":"x"}}"#.to_owned(),
            None,
        ),
        (r#"{"shout":{}}"#.to_owned(), None),
        (r#"{"cancel":{"id":"x"}}"#.to_owned(), None),
    ];
    for (text, id) in cases {
        let e = decode_err(&text);
        assert_eq!(e.id, id, "{text}");
        assert_eq!(e.error.code, codes::BAD_REQUEST, "{text}: {:?}", e.error);
        if id.is_none() {
            assert!(matches!(e.into_message(), VaultMessage::Rejected { .. }));
        }
    }
    // The probe sees through any shape without failing.
    let p: Probe = serde_json::from_str(r#"{"request":{"id":12,"method":"ping"}}"#).unwrap();
    assert_eq!(
        p,
        Probe {
            id: Some(12),
            method: None
        }
    );
    let p: Probe = serde_json::from_str(r#"{"cancel":{"id":3.0}}"#).unwrap();
    assert_eq!(p.id, Some(3));
}

#[test]
fn malformed_ids_and_payloads_fail_conversion_with_typed_errors() {
    let bad_ids = [
        "",
        "x",
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        &oid().to_uppercase(),
        "💥",
    ];
    for bad in bad_ids {
        let e = parse_object_id("ids", bad).unwrap_err();
        assert_eq!(e.code, "model.invalid_id", "{bad}");
        assert_eq!(e.detail("field"), Some("ids"));
        let e = Value::try_from(&WireValue::Ref(WireReference {
            space: Some(bad.into()),
            object: oid(),
        }))
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.detail("field")),
            ("model.invalid_id", Some("ref.space"))
        );
    }
    for bad in ["AQI", "A=QI", "!!!!", "AQJ="] {
        let e = Value::try_from(&WireValue::Bytes(bad.into())).unwrap_err();
        assert_eq!(e.code, codes::BAD_REQUEST, "{bad}");
    }
    let h = "ab".repeat(32);
    for bad in [
        "".to_owned(),
        h.clone(),
        format!("x:{h}"),
        format!("01:{h}"),
        format!("65536:{h}"),
        format!("1:{}", "AB".repeat(32)),
        format!("1:{}", "ab".repeat(31)),
        format!("1:{h}00"),
        format!("1:{}é", "ab".repeat(31)),
    ] {
        let e = Heads::try_from(&WireHeads(vec![bad.clone()])).unwrap_err();
        assert_eq!(e.code, codes::BAD_REQUEST, "{bad}");
        assert_eq!(e.detail("field"), Some("at"));
    }
    // A query that cannot run is refused with the query module's code.
    let q = WireQuery {
        filter: WireFilter::Field {
            field: "n".into(),
            op: WireCompare::Lt,
            value: WireValue::Null,
        },
        ..query()
    };
    assert_eq!(Query::try_from(&q).unwrap_err().code, "query.incomparable");
    let q = WireQuery {
        filter: WireFilter::Reachable {
            root: oid(),
            field: "p".into(),
            direction: WireDirection::Outgoing,
            max_depth: 0,
        },
        ..query()
    };
    assert_eq!(Query::try_from(&q).unwrap_err().code, "query.invalid_depth");
    let q = WireQuery {
        filter: WireFilter::References("nope".into()),
        ..query()
    };
    assert_eq!(Query::try_from(&q).unwrap_err().code, "model.invalid_id");
}

#[test]
fn negative_zero_and_integral_floats_keep_their_kind_and_sign() {
    // Every spelling of −0.0 decodes to −0.0; it is sent back as "-0", which
    // JSON.stringify keeps (it writes the number -0 as "0").
    for text in [r#"{"float":"-0"}"#, r#"{"float":-0.0}"#, r#"{"float":-0}"#] {
        let wire: WireValue = serde_json::from_str(text).unwrap();
        let Value::Float(f) = Value::try_from(&wire).unwrap() else {
            panic!("{text}: not a float")
        };
        assert_eq!(f.to_bits(), (-0.0f64).to_bits(), "{text}");
        assert_eq!(serde_json::to_string(&wire).unwrap(), r#"{"float":"-0"}"#);
    }
    // The JSON text a JavaScript client sends for float(2) / an integral
    // float it read: {"float":2}, a float, never an int.
    let wire: WireValue = serde_json::from_str(r#"{"float":2}"#).unwrap();
    assert!(matches!(Value::try_from(&wire).unwrap(), Value::Float(f) if f == 2.0));
    let wire: WireValue = serde_json::from_str(r#"{"int":2}"#).unwrap();
    assert_eq!(Value::try_from(&wire).unwrap(), Value::Int(2));
    let e = serde_json::from_str::<WireValue>(r#"{"float":"-0.0"}"#).unwrap_err();
    assert!(e.to_string().contains("-0"), "{e}");
    // The same through a structured clone (serde-wasm-bindgen's path).
    let back: WireValue = serde_json::from_value(json!({"float": "-0"})).unwrap();
    assert_eq!(back, WireValue::Float(WireFloat(-0.0)));
}

#[test]
fn a_value_at_the_depth_limit_can_be_written_and_filtered_on_from_json_text() {
    use crate::data::MAX_VALUE_DEPTH;
    // The JSON text of a value whose deepest item sits MAX_VALUE_DEPTH
    // levels below the field, as an app sends it.
    let mut value = String::from(r#"{"float":"-0"}"#);
    for level in 0..MAX_VALUE_DEPTH {
        value = if level % 2 == 0 {
            format!(r#"{{"list":[{{"int":{level}}},{value}]}}"#)
        } else {
            format!(r#"{{"map":{{"k":{value}}}}}"#)
        };
    }
    let decode_text = |text: &str| {
        decode_client_message(serde_json::from_str::<ClientMessage>(text), || {
            serde_json::from_str(text).ok()
        })
    };
    let create = format!(
        r#"{{"request":{{"id":1,"method":{{"object.create":{{"space":"{}","type":"t","fields":{{"v":{value}}}}}}}}}}}"#,
        sid()
    );
    let Ok(ClientMessage::Request {
        method: Request::CreateObject { fields, .. },
        ..
    }) = decode_text(&create)
    else {
        panic!("create did not decode")
    };
    let stored = fields_from_wire(&fields).unwrap();
    assert_eq!(stored["v"].depth(), MAX_VALUE_DEPTH);
    // Within the filter cap too: and / or / not around the equality. (JSON
    // text: serde_json's own limit of 128 levels leaves room for 27 levels
    // of and / or beside a value at its limit, each one 2 JSON levels.)
    for (wrap, levels) in [
        ("", 0),
        ("and", 1),
        ("or", 27),
        ("not", crate::query::MAX_FILTER_DEPTH - 1),
    ] {
        let mut filter = format!(r#"{{"field":{{"field":"v","op":"eq","value":{value}}}}}"#);
        for _ in 0..levels {
            filter = match wrap {
                "not" => format!(r#"{{"not":{filter}}}"#),
                _ => format!(r#"{{"{wrap}":[{filter}]}}"#),
            };
        }
        for method in ["query.run", "query.subscribe"] {
            let run = format!(
                r#"{{"request":{{"id":2,"method":{{"{method}":{{"space":"{}","query":{{"filter":{filter}}}}}}}}}}}"#,
                sid()
            );
            let query = match decode_text(&run) {
                Ok(ClientMessage::Request {
                    method: Request::Query { query, .. } | Request::Subscribe { query, .. },
                    ..
                }) => query,
                other => panic!("{method} {wrap} {levels}: {other:?}"),
            };
            let query = Query::try_from(&query).unwrap();
            let mut f = &query.filter;
            loop {
                f = match f {
                    Filter::And(fs) | Filter::Or(fs) => &fs[0],
                    Filter::Not(inner) => inner,
                    _ => break,
                };
            }
            let Filter::Field { value, .. } = f else {
                panic!("not a field filter: {f:?}")
            };
            assert_eq!(value, &stored["v"]);
        }
    }
}

/// `{"<tag>": v}` without `json!`, which would copy `v`.
fn tagged(tag: &str, v: serde_json::Value) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert(tag.to_owned(), v);
    serde_json::Value::Object(map)
}

fn nested_json(depth: usize) -> serde_json::Value {
    let mut v = json!("null");
    for _ in 0..depth {
        v = tagged("list", serde_json::Value::Array(vec![v]));
    }
    v
}

fn nested_filter_json(depth: usize) -> serde_json::Value {
    let mut v = json!("all");
    for _ in 0..depth {
        v = tagged("not", v);
    }
    v
}

/// `{"request": {"id": 3, "method": {method: params}}}` plus `extra`.
fn call(
    method: &str,
    params: serde_json::Value,
    extra: Option<(&str, serde_json::Value)>,
) -> serde_json::Value {
    let mut inner = serde_json::Map::new();
    inner.insert("id".into(), json!(3));
    if let Some((k, v)) = extra {
        inner.insert(k.into(), v);
    }
    inner.insert("method".into(), tagged(method, params));
    tagged("request", serde_json::Value::Object(inner))
}

#[test]
fn deep_values_and_filters_are_refused_without_exhausting_the_stack() {
    // Within the decoder's guard but beyond the query module's cap: the
    // precise query error.
    let q = WireQuery {
        filter: WireFilter::Field {
            field: "n".into(),
            op: WireCompare::Eq,
            value: serde_json::from_value(nested_json(40)).unwrap(),
        },
        ..query()
    };
    assert_eq!(Query::try_from(&q).unwrap_err().code, "query.too_deep");
    let f: WireFilter = serde_json::from_value(nested_filter_json(40)).unwrap();
    assert_eq!(
        Query::try_from(&WireQuery {
            filter: f,
            ..query()
        })
        .unwrap_err()
        .code,
        "query.too_deep"
    );

    // serde_json::Value has no recursion limit of its own (like a
    // structured clone through serde-wasm-bindgen): the guard stops it.
    // (A big stack only for building and dropping the test's deep values:
    // serde_json::Value's clone and drop recurse.)
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let value_msg = || {
                let field = tagged("field", json!({"field": "n", "op": "eq"}));
                let mut field = field;
                field["field"]
                    .as_object_mut()
                    .unwrap()
                    .insert("value".into(), nested_json(3_000));
                let mut params = json!({"space": sid()});
                params["query"] = tagged("filter", field);
                call("query.run", params, None)
            };
            let filter_msg = || {
                let mut params = json!({"space": sid()});
                params["query"] = tagged("filter", nested_filter_json(3_000));
                call("query.run", params, None)
            };
            // Deep junk the message does not even allow: the probe still
            // finds the id without recursing through it.
            let junk_msg = || call("ping", json!({}), Some(("junk", nested_json(3_000))));
            let deep_params = || call("query.nope", tagged("x", nested_json(3_000)), None);
            for (make, code) in [
                (
                    &value_msg as &dyn Fn() -> serde_json::Value,
                    codes::TOO_DEEP,
                ),
                (&filter_msg, codes::TOO_DEEP),
                (&junk_msg, codes::BAD_REQUEST),
                (&deep_params, codes::UNKNOWN_METHOD),
            ] {
                let e =
                    decode_client_message(serde_json::from_value::<ClientMessage>(make()), || {
                        serde_json::from_value(make()).ok()
                    })
                    .unwrap_err();
                assert_eq!((e.id, e.error.code.as_str()), (Some(3), code));
                // The flag does not leak into the next decode.
                assert!(decode(r#"{"request":{"id":1,"method":{"ping":{}}}}"#).is_ok());
            }
        })
        .unwrap()
        .join()
        .unwrap();

    // JSON text: serde_json's own recursion limit (128) stops it first.
    let text = serde_json::to_string(
        &json!({"request": {"id": 4, "method": {"space.set_property": {
        "space": sid(), "name": "n", "value": nested_json(300)}}}}),
    )
    .unwrap();
    let e = decode_err(&text);
    assert_eq!(e.id, Some(4));
    assert!(
        [codes::TOO_DEEP, codes::BAD_REQUEST].contains(&e.error.code.as_str()),
        "{:?}",
        e.error
    );

    // Deep values built in Rust are refused by the conversion too.
    let mut v = WireValue::Null;
    for _ in 0..(MAX_NESTING + 1) {
        v = WireValue::List(vec![v]);
    }
    assert_eq!(Value::try_from(&v).unwrap_err().code, codes::TOO_DEEP);
}

#[test]
fn oversized_messages_are_refused() {
    assert!(check_size(MAX_MESSAGE_BYTES).is_ok());
    let e = check_size(MAX_MESSAGE_BYTES + 1).unwrap_err();
    assert_eq!(e.code, codes::TOO_LARGE);
    assert_eq!(
        e.detail("limit"),
        Some(MAX_MESSAGE_BYTES.to_string().as_str())
    );

    let space = sid();
    let batch = ClientMessage::Request {
        id: 5,
        method: Request::Batch {
            space: space.clone(),
            mutations: vec![WireMutation::Delete { id: oid() }; MAX_BATCH + 1],
        },
    };
    let text = serde_json::to_string(&batch).unwrap();
    let e = decode_err(&text);
    assert_eq!((e.id, e.error.code.as_str()), (Some(5), codes::TOO_LARGE));
    let get = ClientMessage::Request {
        id: 6,
        method: Request::GetObjects {
            space,
            ids: vec![oid(); MAX_GET_IDS + 1],
            at: None,
        },
    };
    let e = decode_err(&serde_json::to_string(&get).unwrap());
    assert_eq!((e.id, e.error.code.as_str()), (Some(6), codes::TOO_LARGE));
    let hello = format!(
        r#"{{"hello":{{"versions":[1],"client":"{}"}}}}"#,
        "x".repeat(200)
    );
    assert_eq!(decode_err(&hello).error.code, codes::TOO_LARGE);
}

// ---------------------------------------------------- version negotiation

#[test]
fn the_vault_picks_the_highest_common_version_or_refuses() {
    assert_eq!(negotiate(&[1]).unwrap(), 1);
    assert_eq!(negotiate(&[3, 1, 2]).unwrap(), 1);
    for versions in [&[][..], &[0], &[2, 3], &[u32::MAX]] {
        let e = negotiate(versions).unwrap_err();
        assert_eq!(e.code, codes::UNSUPPORTED_VERSION, "{versions:?}");
        assert_eq!(e.detail("supported"), Some("1"));
    }
    let vault = VaultInfo {
        vault: "echo-vault test".into(),
        storage: StorageState::Persistent,
        consent: Consent::Required,
    };
    assert_eq!(
        answer_hello(&[1, 2], "c", vault.clone()),
        VaultMessage::Welcome {
            version: 1,
            vault: vault.clone()
        }
    );
    assert!(matches!(
        answer_hello(&[7], "c", vault.clone()),
        VaultMessage::Refused { error } if error.code == codes::UNSUPPORTED_VERSION
    ));
    assert!(matches!(
        answer_hello(&[1], &"c".repeat(MAX_CLIENT_NAME + 1), vault),
        VaultMessage::Refused { error } if error.code == codes::TOO_LARGE
    ));
    let hello = decode(r#"{"hello":{"versions":[2,1],"client":"echo-client 0.1"}}"#).unwrap();
    assert!(
        matches!(hello, ClientMessage::Hello { ref versions, .. } if negotiate(versions) == Ok(1))
    );
}

// ------------------------------------------------------------ error codes

#[test]
fn engine_errors_keep_their_codes() {
    let id = ObjectId::random();
    let e = RpcError::from(ModelError::NotFound { id });
    assert_eq!(e.code, "model.not_found");
    assert!(e.message.contains(&id.to_string()));
    let e = RpcError::from(QueryError::EmptyField { context: "order" });
    assert_eq!(e.code, "query.empty_field");
    let e = RpcError::from(ModelError::Query(QueryError::EmptyField {
        context: "filter",
    }));
    assert_eq!(e.code, "query.empty_field");
    let e = RpcError::from(StoreError::QuotaExceeded {
        store: "echo".into(),
        message: "full".into(),
    });
    assert_eq!(e.code, "store.quota_exceeded");
    assert!(e.message.contains("free up space"));
    assert_eq!(RpcError::from(SyncError::NoGenesis).code, "sync.no_genesis");
    assert_eq!(
        RpcError::from(SyncError::Model(ModelError::UnknownHeads)).code,
        "model.unknown_heads"
    );
    assert_eq!(
        RpcError::from(crate::identity::IdentityError::UnsealFailed).code,
        "identity.unseal_failed"
    );
}

#[test]
fn rpc_codes_are_unique_documented_and_well_formed() {
    let docs = include_str!("mod.rs");
    let mut seen = std::collections::HashSet::new();
    for code in codes::ALL {
        assert!(seen.insert(code), "{code} twice");
        assert!(
            code.starts_with("rpc.")
                && code[4..]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
        );
        assert!(
            docs.contains(&format!("| `{code}` |")),
            "{code} missing from the table"
        );
    }
    for e in [
        RpcError::bad_request("x"),
        RpcError::unknown_method("x"),
        RpcError::too_large("x", 2, 1),
        RpcError::too_deep(),
        RpcError::timeout("object.get", 5000),
        RpcError::cancelled(),
        RpcError::disconnected(),
        RpcError::not_authorized("x"),
        RpcError::no_such_space("x"),
        RpcError::no_such_subscription(1),
        negotiate(&[]).unwrap_err(),
    ] {
        assert!(codes::ALL.contains(&e.code.as_str()), "{}", e.code);
        assert!(!e.message.is_empty());
    }
}

#[test]
fn requests_name_their_space() {
    for r in requests() {
        let json = serde_json::to_value(&r).unwrap();
        let params = json.as_object().unwrap().values().next().unwrap();
        assert_eq!(
            r.space(),
            params.get("space").and_then(|s| s.as_str()),
            "{}",
            r.method()
        );
    }
}

fn value_strategy() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            Just(MAX_SAFE_INTEGER),
            Just(-MAX_SAFE_INTEGER),
            Just(MAX_SAFE_INTEGER + 1),
            Just(i64::MIN)
        ]
        .prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        ".{0,8}".prop_map(Value::String),
        ".{0,8}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
        (any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(remote, s, o)| {
            Value::Ref(Reference {
                space: remote.then(|| SpaceId::from_bytes(s)),
                object: ObjectId::from_bytes(o),
            })
        }),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            proptest::collection::btree_map(".{0,4}", inner, 0..4).prop_map(Value::Map),
        ]
    })
}

/// Equality with floats compared bit for bit (NaN == NaN).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, a), (l, b))| k == l && same(a, b))
        }
        _ => a == b,
    }
}

proptest::proptest! {
    #[test]
    fn any_value_survives_the_wire(value in value_strategy()) {
        let text = serde_json::to_string(&WireValue::from(&value)).unwrap();
        let wire: WireValue = serde_json::from_str(&text).unwrap();
        let back = Value::try_from(&wire).unwrap();
        proptest::prop_assert!(same(&back, &value), "{text}");
        // Decoding then encoding gives the same text: one wire form per value.
        proptest::prop_assert_eq!(serde_json::to_string(&wire).unwrap(), text);
    }
}

#[test]
fn json_nested_past_serde_json_limit_is_too_deep_for_its_call() {
    // 100 list levels are 200 JSON levels: serde_json's own limit (128)
    // fires first, and must still read as rpc.too_deep for call 7.
    let mut value = String::from("\"null\"");
    for _ in 0..100 {
        value = format!("{{\"list\":[{value}]}}");
    }
    let text = format!(
        r#"{{"request":{{"id":7,"method":{{"object.create":{{"space":"s","type":"x","fields":{{"d":{value}}}}}}}}}}}"#
    );
    let err = decode_client_message(serde_json::from_str::<ClientMessage>(&text), || {
        serde_json::from_str(&text).ok()
    })
    .unwrap_err();
    assert_eq!(
        (err.id, err.error.code.as_str()),
        (Some(7), codes::TOO_DEEP)
    );
}
