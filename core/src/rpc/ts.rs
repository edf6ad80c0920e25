//! TypeScript generation: `client/src/protocol.ts` is made from the Rust
//! types by `ts-rs` (a dev-dependency: no wasm build ever includes it).
//!
//! The test below regenerates the file in memory and fails when the
//! committed one differs, so a stale file fails `make test`. To update it:
//!
//! ```sh
//! ECHO_UPDATE_TS=1 cargo test -p echo-core rpc::ts
//! ```
//!
//! Why `ts-rs` (12): stable releases, reads the serde attributes used here
//! (renames, external tagging, `skip_serializing_if` + `default` →
//! optional), and a type's declaration is available as a string
//! (`TS::decl`) so one file can be assembled without its per-type export
//! layout. `specta` 2 is still a release candidate.

use std::path::PathBuf;

use ts_rs::{Config, TS};

use super::*;

/// Path of the generated file, from this crate's directory.
const OUT: &str = "../client/src/protocol.ts";

fn decl<T: TS>(cfg: &Config) -> String {
    let mut out = String::new();
    // ts-rs hands docs over as a finished JSDoc comment.
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push_str("\n\n");
    out
}

/// The whole generated file.
pub(super) fn generate() -> String {
    let cfg = Config::new();
    let mut out = String::from(
        "// Generated from the Rust types of echo_core::rpc (core/src/rpc) by ts-rs.\n\
         // Do not edit: run `ECHO_UPDATE_TS=1 cargo test -p echo-core rpc::ts`.\n\
         // Wire forms and error codes are documented in core/src/rpc/mod.rs.\n\n",
    );
    out.push_str(&format!(
        "/** The API versions this build speaks. */\nexport const SUPPORTED_VERSIONS: readonly number[] = [{}];\n\n",
        SUPPORTED_VERSIONS
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!(
        "/** Method names of API v1. */\nexport const METHODS = [{}] as const;\n\n",
        METHODS
            .iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!(
        "/** The `rpc.*` error codes; other modules' codes pass through (`model.*`, `query.*`, …). */\nexport const RPC_ERROR_CODES = [{}] as const;\n\n",
        codes::ALL
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!(
        "/**\n * The engine's limits (see core/src/rpc/mod.rs). `maxValueDepth`: levels of\n * lists / maps a value may nest (its deepest item at most this many levels\n * below the field), in a field and in a filter alike; `maxFilterDepth`:\n * levels of and / or / not / refers_to in a filter.\n */\nexport const LIMITS = {{ maxMessageBytes: {MAX_MESSAGE_BYTES}, maxFrameMessages: {MAX_FRAME_MESSAGES}, maxBatch: {MAX_BATCH}, maxGetIds: {MAX_GET_IDS}, maxValueDepth: {}, maxFilterDepth: {}, maxTraversalDepth: {}, maxClientName: {MAX_CLIENT_NAME}, maxSubscriptions: {MAX_SUBSCRIPTIONS} }} as const;\n\n",
        crate::data::MAX_VALUE_DEPTH,
        crate::query::MAX_FILTER_DEPTH,
        crate::query::MAX_TRAVERSAL_DEPTH,
    ));
    out.push_str(&method_map());
    for d in [
        decl::<ClientMessage>(&cfg),
        decl::<VaultMessage>(&cfg),
        decl::<VaultInfo>(&cfg),
        decl::<StorageState>(&cfg),
        decl::<Consent>(&cfg),
        decl::<ConnectionState>(&cfg),
        decl::<Durability>(&cfg),
        decl::<Request>(&cfg),
        decl::<Response>(&cfg),
        decl::<Event>(&cfg),
        decl::<RpcError>(&cfg),
        decl::<AppIdentity>(&cfg),
        decl::<IdentityInfo>(&cfg),
        decl::<SpaceInfo>(&cfg),
        decl::<SpaceStatus>(&cfg),
        decl::<Role>(&cfg),
        decl::<WireValue>(&cfg),
        decl::<WireInt>(&cfg),
        decl::<WireFloat>(&cfg),
        decl::<WireReference>(&cfg),
        decl::<WireObject>(&cfg),
        decl::<WireHeads>(&cfg),
        decl::<WireQuery>(&cfg),
        decl::<WireFilter>(&cfg),
        decl::<WireCompare>(&cfg),
        decl::<WireDirection>(&cfg),
        decl::<WireOrder>(&cfg),
        decl::<WireMutation>(&cfg),
        decl::<AdminMessage>(&cfg),
        decl::<AdminRequest>(&cfg),
        decl::<AdminResponse>(&cfg),
        decl::<AppGrant>(&cfg),
        decl::<VaultSpace>(&cfg),
        decl::<Member>(&cfg),
        decl::<AdminReply>(&cfg),
        decl::<InvitationInfo>(&cfg),
        decl::<InvitationSide>(&cfg),
        decl::<InvitationState>(&cfg),
    ] {
        out.push_str(&d);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// What each method answers on success: the tag of its [`Response`]
/// variant, in the order of [`METHODS`] (each [`Request`] variant's doc
/// says it too; `core/src/vault/api.rs` answers so). Checked below against
/// `METHODS` and the `Response` variants.
const METHOD_RESPONSES: &[(&str, &str)] = &[
    ("ping", "done"),
    ("identity.info", "identity"),
    ("spaces.create", "space"),
    ("spaces.list", "spaces"),
    ("space.properties", "properties"),
    ("space.set_property", "done"),
    ("space.heads", "heads"),
    ("object.create", "written"),
    ("object.update", "written"),
    ("object.delete", "written"),
    ("object.get", "objects"),
    ("object.batch", "written"),
    ("query.run", "result"),
    ("query.subscribe", "subscribed"),
    ("query.unsubscribe", "done"),
    ("text.splice", "written"),
    ("text.read", "text"),
    ("space.status", "space_status"),
];

/// The method → params and method → response maps: `request` in the client
/// is typed per method from them (`{ "object.create": … }` resolves with
/// `{ written: { created } }`), with no check of the response's kind at run
/// time. The responses come from [`METHOD_RESPONSES`].
fn method_map() -> String {
    let mut out = String::from(
        "/** A method's name (one of `METHODS`). */\n\
         export type Method = (typeof METHODS)[number];\n\n\
         /** What each method takes: the content of its `Request` variant. */\n\
         export type MethodParams = { [M in Method]: Extract<Request, { [K in M]: unknown }>[M] };\n\n\
         /** What each method answers on success: its `Response` variant. */\n\
         export type MethodResponses = {\n",
    );
    for (method, kind) in METHOD_RESPONSES {
        out.push_str(&format!(
            "  {method:?}: Extract<Response, {{ {kind:?}: unknown }}>;\n"
        ));
    }
    out.push_str("};\n\n");
    out
}

/// A `Response` variant's tag is known to serde: `{tag: {}}` fails, if at
/// all, for a missing field, not as an unknown variant.
fn is_response_tag(tag: &str) -> bool {
    match serde_json::from_value::<Response>(serde_json::json!({ tag: {} })) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("unknown variant"),
    }
}

#[test]
fn every_method_has_one_response_kind_that_is_a_response_variant() {
    let methods: Vec<&str> = METHOD_RESPONSES.iter().map(|(m, _)| *m).collect();
    assert_eq!(methods, METHODS, "METHOD_RESPONSES lists METHODS, in order");
    assert!(
        !is_response_tag("no_such_kind"),
        "the probe tells variants apart"
    );
    for (method, kind) in METHOD_RESPONSES {
        assert!(
            is_response_tag(kind),
            "{method} answers {kind:?}, which is no Response variant"
        );
    }
    // Every variant answers some method: serde names them all when it
    // meets an unknown one ("unknown variant `x`, expected one of `done`, …").
    let err = serde_json::from_value::<Response>(serde_json::json!({ "no_such_kind": {} }))
        .unwrap_err()
        .to_string();
    let expected = err.split("expected one of").nth(1).expect(&err);
    let tags: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    assert!(tags.len() >= 12, "{err}");
    for tag in tags {
        assert!(
            METHOD_RESPONSES.iter().any(|(_, k)| *k == tag),
            "no method answers {tag}"
        );
    }
}

#[test]
fn protocol_ts_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(OUT);
    let fresh = generate();
    if std::env::var_os("ECHO_UPDATE_TS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with `ECHO_UPDATE_TS=1 cargo test -p echo-core rpc::ts` and commit it",
        path.display()
    );
}
