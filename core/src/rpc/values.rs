//! Wire forms of the model's and the query module's types: plain JSON /
//! structured-clone data, identical through `serde_json` and
//! `serde-wasm-bindgen` (see the module docs for each choice), and the
//! checked conversions to and from the engine's types.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use automerge::ChangeHash;
use data_encoding::{BASE64, HEXLOWER};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::errors::RpcError;
use super::MAX_NESTING;
use crate::data::{ObjectId, ObjectState, Reference, SpaceId, Value};
use crate::model::{Heads, Mutation};
use crate::query::{Compare, Direction, Filter, Order, Query};

/// Largest integer magnitude a JavaScript number holds exactly (2^53 − 1).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

// ------------------------------------------------------------ nesting guard

thread_local! {
    /// Values and filters being decoded on this thread, innermost count.
    static NESTING: Cell<usize> = const { Cell::new(0) };
    /// Set when a decode hit [`MAX_NESTING`]; read by `take_too_deep`.
    static TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// Counts one level of value / filter nesting while decoding, so hostile
/// input cannot exhaust the stack whatever the deserializer (serde_json has
/// a recursion limit; serde-wasm-bindgen has none).
struct NestingGuard;

impl NestingGuard {
    fn enter<E: de::Error>() -> Result<Self, E> {
        let depth = NESTING.with(|n| n.get()) + 1;
        if depth == 1 {
            // A new outermost value: forget an earlier decode's failure.
            TOO_DEEP.with(|t| t.set(false));
        }
        if depth > MAX_NESTING {
            TOO_DEEP.with(|t| t.set(true));
            return Err(E::custom(format_args!(
                "the message nests values or filters more than {MAX_NESTING} levels deep"
            )));
        }
        NESTING.with(|n| n.set(depth));
        Ok(NestingGuard)
    }
}

impl Drop for NestingGuard {
    fn drop(&mut self) {
        NESTING.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Whether the last decode on this thread failed for nesting too deep
/// (and clears the flag).
pub(crate) fn take_too_deep() -> bool {
    NESTING.with(|n| n.set(0));
    TOO_DEEP.with(|t| t.replace(false))
}

// --------------------------------------------------------------- numbers

/// An `i64` on the wire: a JSON number when it is a safe JavaScript integer
/// (|n| ≤ 2^53 − 1), else its decimal string. Decoding accepts either form
/// (a number must be integral and safe; a string must be an `i64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireInt(pub i64);

impl Serialize for WireInt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.unsigned_abs() <= MAX_SAFE_INTEGER as u64 {
            s.serialize_i64(self.0)
        } else {
            s.collect_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for WireInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer: a safe JavaScript integer or a decimal string")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<WireInt, E> {
                if n.unsigned_abs() <= MAX_SAFE_INTEGER as u64 {
                    Ok(WireInt(n))
                } else {
                    Err(E::custom(format_args!(
                        "integer {n} is beyond 2^53 - 1: send it as a decimal string"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<WireInt, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::custom("integer out of range of i64")),
                }
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<WireInt, E> {
                if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 {
                    Ok(WireInt(n as i64))
                } else {
                    Err(E::custom(format_args!(
                        "{n} is not a safe integer: send a whole number, or a decimal string"
                    )))
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireInt, E> {
                let canonical = s.parse::<i64>().ok().filter(|n| n.to_string() == s);
                canonical.map(WireInt).ok_or_else(|| {
                    E::custom(format_args!(
                        "{:?} is not a decimal i64",
                        s.chars().take(32).collect::<String>()
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// An `f64` on the wire: a JSON number when finite and not −0.0, else one
/// of the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such
/// numbers and serde_json would turn them into `null`) and `"-0"`
/// (JavaScript's `JSON.stringify(-0)` is `"0"`: a client that parses a
/// message and writes it back would lose the sign of a number). Decoding
/// also takes −0.0 as a number (`-0.0`, `-0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WireFloat(pub f64);

impl Serialize for WireFloat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        if n == 0.0 && n.is_sign_negative() {
            s.serialize_str("-0")
        } else if n.is_finite() {
            s.serialize_f64(n)
        } else if n.is_nan() {
            s.serialize_str("NaN")
        } else if n > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

impl<'de> Deserialize<'de> for WireFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireFloat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or \"NaN\", \"Infinity\", \"-Infinity\", \"-0\"")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<WireFloat, E> {
                Ok(WireFloat(n as f64))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<WireFloat, E> {
                Ok(WireFloat(n as f64))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<WireFloat, E> {
                Ok(WireFloat(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireFloat, E> {
                match s {
                    "NaN" => Ok(WireFloat(f64::NAN)),
                    "Infinity" => Ok(WireFloat(f64::INFINITY)),
                    "-Infinity" => Ok(WireFloat(f64::NEG_INFINITY)),
                    "-0" => Ok(WireFloat(-0.0)),
                    _ => Err(E::custom(
                        "a float string must be NaN, Infinity, -Infinity or -0",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod ts_numbers {
    use ts_rs::{Config, TS};
    impl TS for super::WireInt {
        type WithoutGenerics = Self;
        type OptionInnerType = Self;
        fn name(_: &Config) -> String {
            "Int".into()
        }
        fn inline(_: &Config) -> String {
            "number | string".into()
        }
        fn decl(_: &Config) -> String {
            "type Int = number | string;".into()
        }
        fn docs() -> Option<String> {
            Some(
                "/**\n * An i64: a number when |n| <= 2^53 - 1, else its decimal string.\n */\n"
                    .into(),
            )
        }
    }
    impl TS for super::WireFloat {
        type WithoutGenerics = Self;
        type OptionInnerType = Self;
        fn name(_: &Config) -> String {
            "Float".into()
        }
        fn inline(_: &Config) -> String {
            "number | \"NaN\" | \"Infinity\" | \"-Infinity\" | \"-0\"".into()
        }
        fn decl(_: &Config) -> String {
            "type Float = number | \"NaN\" | \"Infinity\" | \"-Infinity\" | \"-0\";".into()
        }
        fn docs() -> Option<String> {
            Some(
                "/**\n * An f64: a number when finite and not -0, else one of four strings\n * (JSON.stringify(-0) is \"0\", so -0 travels as \"-0\").\n */\n"
                    .into(),
            )
        }
    }
}

// ---------------------------------------------------------------- values

/// A reference on the wire: `{ object }` (same space) or `{ space, object }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Reference"))]
#[serde(deny_unknown_fields)]
pub struct WireReference {
    /// The other space's id; absent for a reference within the same space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub space: Option<String>,
    pub object: String,
}

/// A field value on the wire, externally tagged: `"null"`, `{ "bool": true }`,
/// `{ "int": 5 }`, `{ "float": 1.5 }`, `{ "string": "hi" }`,
/// `{ "bytes": "<base64>" }`, `{ "list": [..] }`, `{ "map": { .. } }`,
/// `{ "ref": { "object": ".." } }`, `{ "text": "collaborative" }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Value"))]
#[serde(rename_all = "snake_case")]
pub enum WireValue {
    Null,
    Bool(bool),
    Int(WireInt),
    Float(WireFloat),
    String(String),
    /// Standard base64 (RFC 4648 §4) with padding.
    Bytes(String),
    List(Vec<WireValue>),
    Map(BTreeMap<String, WireValue>),
    Ref(WireReference),
    Text(String),
}

/// The derived decoding of [`WireValue`], run under a [`NestingGuard`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", rename = "Value")]
enum ValueRepr {
    Null,
    Bool(bool),
    Int(WireInt),
    Float(WireFloat),
    String(String),
    Bytes(String),
    List(Vec<WireValue>),
    Map(BTreeMap<String, WireValue>),
    Ref(WireReference),
    Text(String),
}

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _guard = NestingGuard::enter::<D::Error>()?;
        Ok(match ValueRepr::deserialize(d)? {
            ValueRepr::Null => WireValue::Null,
            ValueRepr::Bool(b) => WireValue::Bool(b),
            ValueRepr::Int(n) => WireValue::Int(n),
            ValueRepr::Float(n) => WireValue::Float(n),
            ValueRepr::String(s) => WireValue::String(s),
            ValueRepr::Bytes(s) => WireValue::Bytes(s),
            ValueRepr::List(l) => WireValue::List(l),
            ValueRepr::Map(m) => WireValue::Map(m),
            ValueRepr::Ref(r) => WireValue::Ref(r),
            ValueRepr::Text(t) => WireValue::Text(t),
        })
    }
}

/// Field values by name, as apps send and read them.
pub type WireFields = BTreeMap<String, WireValue>;

fn space_id(field: &str, text: &str) -> Result<SpaceId, RpcError> {
    text.parse()
        .map_err(|e| RpcError::from(e).with_detail("field", field))
}

fn object_id(field: &str, text: &str) -> Result<ObjectId, RpcError> {
    text.parse()
        .map_err(|e| RpcError::from(e).with_detail("field", field))
}

impl From<&Reference> for WireReference {
    fn from(r: &Reference) -> Self {
        WireReference {
            space: r.space.map(|s| s.to_string()),
            object: r.object.to_string(),
        }
    }
}

impl TryFrom<&WireReference> for Reference {
    type Error = RpcError;
    fn try_from(r: &WireReference) -> Result<Self, RpcError> {
        Ok(Reference {
            space: r
                .space
                .as_deref()
                .map(|s| space_id("ref.space", s))
                .transpose()?,
            object: object_id("ref.object", &r.object)?,
        })
    }
}

impl From<&Value> for WireValue {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => WireValue::Null,
            Value::Bool(b) => WireValue::Bool(*b),
            Value::Int(n) => WireValue::Int(WireInt(*n)),
            Value::Float(n) => WireValue::Float(WireFloat(*n)),
            Value::String(s) => WireValue::String(s.clone()),
            Value::Bytes(b) => WireValue::Bytes(BASE64.encode(b)),
            Value::List(l) => WireValue::List(l.iter().map(WireValue::from).collect()),
            Value::Map(m) => WireValue::Map(m.iter().map(|(k, v)| (k.clone(), v.into())).collect()),
            Value::Ref(r) => WireValue::Ref(r.into()),
            Value::Text(t) => WireValue::Text(t.clone()),
        }
    }
}

impl TryFrom<&WireValue> for Value {
    type Error = RpcError;
    fn try_from(v: &WireValue) -> Result<Self, RpcError> {
        wire_to_value(v, 1)
    }
}

impl TryFrom<WireValue> for Value {
    type Error = RpcError;
    fn try_from(v: WireValue) -> Result<Self, RpcError> {
        wire_to_value(&v, 1)
    }
}

fn wire_to_value(v: &WireValue, depth: usize) -> Result<Value, RpcError> {
    // Values built in Rust (not decoded) are not guarded by NestingGuard.
    if depth > MAX_NESTING {
        return Err(RpcError::too_deep());
    }
    Ok(match v {
        WireValue::Null => Value::Null,
        WireValue::Bool(b) => Value::Bool(*b),
        WireValue::Int(n) => Value::Int(n.0),
        WireValue::Float(n) => Value::Float(n.0),
        WireValue::String(s) => Value::String(s.clone()),
        WireValue::Bytes(b) => Value::Bytes(BASE64.decode(b.as_bytes()).map_err(|e| {
            RpcError::bad_request(format!(
                "bytes must be standard base64 with padding (RFC 4648): {e}"
            ))
        })?),
        WireValue::List(l) => Value::List(
            l.iter()
                .map(|v| wire_to_value(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        WireValue::Map(m) => Value::Map(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), wire_to_value(v, depth + 1)?)))
                .collect::<Result<_, RpcError>>()?,
        ),
        WireValue::Ref(r) => Value::Ref(r.try_into()?),
        WireValue::Text(t) => Value::Text(t.clone()),
    })
}

/// Converts wire fields into model fields.
pub fn fields_from_wire(fields: &WireFields) -> Result<BTreeMap<String, Value>, RpcError> {
    fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), Value::try_from(v)?)))
        .collect()
}

/// Converts model fields into wire fields.
pub fn fields_to_wire(fields: &BTreeMap<String, Value>) -> WireFields {
    fields.iter().map(|(k, v)| (k.clone(), v.into())).collect()
}

// ---------------------------------------------------------------- objects

/// An object's current state on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "ObjectState"))]
#[serde(deny_unknown_fields)]
pub struct WireObject {
    pub id: String,
    /// The type name, e.g. `"task"`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub fields: WireFields,
    /// Soft-deleted: still readable; references to it resolve as deleted.
    pub deleted: bool,
}

impl From<&ObjectState> for WireObject {
    fn from(o: &ObjectState) -> Self {
        WireObject {
            id: o.id.to_string(),
            type_name: o.type_name.clone(),
            fields: fields_to_wire(&o.fields),
            deleted: o.deleted,
        }
    }
}

impl TryFrom<&WireObject> for ObjectState {
    type Error = RpcError;
    fn try_from(o: &WireObject) -> Result<Self, RpcError> {
        Ok(ObjectState {
            id: object_id("id", &o.id)?,
            type_name: o.type_name.clone(),
            fields: fields_from_wire(&o.fields)?,
            deleted: o.deleted,
        })
    }
}

// ------------------------------------------------------------------ heads

/// A point in a space's history: opaque strings `"<shard>:<64 hex digits>"`
/// (a shard number and the lower-case hex of an Automerge change hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Heads"))]
#[serde(transparent)]
pub struct WireHeads(pub Vec<String>);

impl From<&Heads> for WireHeads {
    fn from(h: &Heads) -> Self {
        WireHeads(
            h.entries
                .iter()
                .map(|(shard, hash)| format!("{shard}:{}", HEXLOWER.encode(&hash.0)))
                .collect(),
        )
    }
}

impl TryFrom<&WireHeads> for Heads {
    type Error = RpcError;
    fn try_from(h: &WireHeads) -> Result<Self, RpcError> {
        let mut entries = Vec::with_capacity(h.0.len());
        for text in &h.0 {
            let bad = || {
                RpcError::bad_request(format!(
                    "invalid head {:?}: expected \"<shard>:<64 lower-case hex digits>\" as returned by space.heads",
                    text.chars().take(80).collect::<String>()
                ))
                .with_detail("field", "at")
            };
            let (shard, hex) = text.split_once(':').ok_or_else(bad)?;
            let shard: u16 = shard
                .parse()
                .ok()
                .filter(|n: &u16| n.to_string() == shard)
                .ok_or_else(bad)?;
            if hex.len() != 64 {
                return Err(bad());
            }
            let bytes = HEXLOWER.decode(hex.as_bytes()).map_err(|_| bad())?;
            let hash: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
            entries.push((shard, ChangeHash(hash)));
        }
        entries.sort();
        entries.dedup();
        Ok(Heads { entries })
    }
}

// ---------------------------------------------------------------- queries

/// Comparison operators of a field filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Compare"))]
#[serde(rename_all = "snake_case")]
pub enum WireCompare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Direction of a `reachable` traversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Direction"))]
#[serde(rename_all = "snake_case")]
pub enum WireDirection {
    Outgoing,
    Incoming,
}

/// A filter on the wire, externally tagged like values: `"all"`,
/// `{ "type": "task" }`, `{ "and": [..] }`, … Semantics: `echo_core::query`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Filter"))]
#[serde(rename_all = "snake_case")]
pub enum WireFilter {
    All,
    Type(String),
    Field {
        field: String,
        op: WireCompare,
        value: WireValue,
    },
    In {
        field: String,
        values: Vec<WireValue>,
    },
    Exists(String),
    TextContains {
        field: String,
        needle: String,
    },
    ListContains {
        field: String,
        value: WireValue,
    },
    References(String),
    RefersTo {
        field: String,
        target: Box<WireFilter>,
    },
    Reachable {
        root: String,
        field: String,
        direction: WireDirection,
        max_depth: u32,
    },
    And(Vec<WireFilter>),
    Or(Vec<WireFilter>),
    Not(Box<WireFilter>),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", rename = "Filter")]
enum FilterRepr {
    All,
    Type(String),
    Field {
        field: String,
        op: WireCompare,
        value: WireValue,
    },
    In {
        field: String,
        values: Vec<WireValue>,
    },
    Exists(String),
    TextContains {
        field: String,
        needle: String,
    },
    ListContains {
        field: String,
        value: WireValue,
    },
    References(String),
    RefersTo {
        field: String,
        target: Box<WireFilter>,
    },
    Reachable {
        root: String,
        field: String,
        direction: WireDirection,
        max_depth: u32,
    },
    And(Vec<WireFilter>),
    Or(Vec<WireFilter>),
    Not(Box<WireFilter>),
}

impl<'de> Deserialize<'de> for WireFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _guard = NestingGuard::enter::<D::Error>()?;
        Ok(match FilterRepr::deserialize(d)? {
            FilterRepr::All => WireFilter::All,
            FilterRepr::Type(t) => WireFilter::Type(t),
            FilterRepr::Field { field, op, value } => WireFilter::Field { field, op, value },
            FilterRepr::In { field, values } => WireFilter::In { field, values },
            FilterRepr::Exists(f) => WireFilter::Exists(f),
            FilterRepr::TextContains { field, needle } => {
                WireFilter::TextContains { field, needle }
            }
            FilterRepr::ListContains { field, value } => WireFilter::ListContains { field, value },
            FilterRepr::References(id) => WireFilter::References(id),
            FilterRepr::RefersTo { field, target } => WireFilter::RefersTo { field, target },
            FilterRepr::Reachable {
                root,
                field,
                direction,
                max_depth,
            } => WireFilter::Reachable {
                root,
                field,
                direction,
                max_depth,
            },
            FilterRepr::And(fs) => WireFilter::And(fs),
            FilterRepr::Or(fs) => WireFilter::Or(fs),
            FilterRepr::Not(f) => WireFilter::Not(f),
        })
    }
}

/// One sort key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Order"))]
#[serde(deny_unknown_fields)]
pub struct WireOrder {
    pub field: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional = nullable))]
    pub descending: bool,
}

/// A query on the wire. Only `filter` is required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Query"))]
#[serde(deny_unknown_fields)]
pub struct WireQuery {
    pub filter: WireFilter,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(test, ts(optional = nullable))]
    pub order: Vec<WireOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[cfg_attr(test, ts(optional = nullable))]
    pub offset: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    #[cfg_attr(test, ts(optional = nullable))]
    pub include_deleted: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl From<Compare> for WireCompare {
    fn from(c: Compare) -> Self {
        match c {
            Compare::Eq => WireCompare::Eq,
            Compare::Ne => WireCompare::Ne,
            Compare::Lt => WireCompare::Lt,
            Compare::Le => WireCompare::Le,
            Compare::Gt => WireCompare::Gt,
            Compare::Ge => WireCompare::Ge,
        }
    }
}

impl From<WireCompare> for Compare {
    fn from(c: WireCompare) -> Self {
        match c {
            WireCompare::Eq => Compare::Eq,
            WireCompare::Ne => Compare::Ne,
            WireCompare::Lt => Compare::Lt,
            WireCompare::Le => Compare::Le,
            WireCompare::Gt => Compare::Gt,
            WireCompare::Ge => Compare::Ge,
        }
    }
}

impl From<Direction> for WireDirection {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Outgoing => WireDirection::Outgoing,
            Direction::Incoming => WireDirection::Incoming,
        }
    }
}

impl From<WireDirection> for Direction {
    fn from(d: WireDirection) -> Self {
        match d {
            WireDirection::Outgoing => Direction::Outgoing,
            WireDirection::Incoming => Direction::Incoming,
        }
    }
}

impl From<&Filter> for WireFilter {
    fn from(f: &Filter) -> Self {
        match f {
            Filter::All => WireFilter::All,
            Filter::Type(t) => WireFilter::Type(t.clone()),
            Filter::Field { field, op, value } => WireFilter::Field {
                field: field.clone(),
                op: (*op).into(),
                value: value.into(),
            },
            Filter::In { field, values } => WireFilter::In {
                field: field.clone(),
                values: values.iter().map(WireValue::from).collect(),
            },
            Filter::Exists(f) => WireFilter::Exists(f.clone()),
            Filter::TextContains { field, needle } => WireFilter::TextContains {
                field: field.clone(),
                needle: needle.clone(),
            },
            Filter::ListContains { field, value } => WireFilter::ListContains {
                field: field.clone(),
                value: value.into(),
            },
            Filter::References(id) => WireFilter::References(id.to_string()),
            Filter::RefersTo { field, target } => WireFilter::RefersTo {
                field: field.clone(),
                target: Box::new((&**target).into()),
            },
            Filter::Reachable {
                root,
                field,
                direction,
                max_depth,
            } => WireFilter::Reachable {
                root: root.to_string(),
                field: field.clone(),
                direction: (*direction).into(),
                max_depth: *max_depth,
            },
            Filter::And(fs) => WireFilter::And(fs.iter().map(WireFilter::from).collect()),
            Filter::Or(fs) => WireFilter::Or(fs.iter().map(WireFilter::from).collect()),
            Filter::Not(f) => WireFilter::Not(Box::new((&**f).into())),
        }
    }
}

fn filter_from_wire(f: &WireFilter, depth: usize) -> Result<Filter, RpcError> {
    if depth > MAX_NESTING {
        return Err(RpcError::too_deep());
    }
    let all = |fs: &[WireFilter]| {
        fs.iter()
            .map(|f| filter_from_wire(f, depth + 1))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match f {
        WireFilter::All => Filter::All,
        WireFilter::Type(t) => Filter::Type(t.clone()),
        WireFilter::Field { field, op, value } => Filter::Field {
            field: field.clone(),
            op: (*op).into(),
            value: value.try_into()?,
        },
        WireFilter::In { field, values } => Filter::In {
            field: field.clone(),
            values: values
                .iter()
                .map(Value::try_from)
                .collect::<Result<_, _>>()?,
        },
        WireFilter::Exists(f) => Filter::Exists(f.clone()),
        WireFilter::TextContains { field, needle } => Filter::TextContains {
            field: field.clone(),
            needle: needle.clone(),
        },
        WireFilter::ListContains { field, value } => Filter::ListContains {
            field: field.clone(),
            value: value.try_into()?,
        },
        WireFilter::References(id) => Filter::References(object_id("references", id)?),
        WireFilter::RefersTo { field, target } => Filter::RefersTo {
            field: field.clone(),
            target: Box::new(filter_from_wire(target, depth + 1)?),
        },
        WireFilter::Reachable {
            root,
            field,
            direction,
            max_depth,
        } => Filter::Reachable {
            root: object_id("reachable.root", root)?,
            field: field.clone(),
            direction: (*direction).into(),
            max_depth: *max_depth,
        },
        WireFilter::And(fs) => Filter::And(all(fs)?),
        WireFilter::Or(fs) => Filter::Or(all(fs)?),
        WireFilter::Not(f) => Filter::Not(Box::new(filter_from_wire(f, depth + 1)?)),
    })
}

impl TryFrom<&WireFilter> for Filter {
    type Error = RpcError;
    fn try_from(f: &WireFilter) -> Result<Self, RpcError> {
        filter_from_wire(f, 1)
    }
}

impl From<&Query> for WireQuery {
    fn from(q: &Query) -> Self {
        WireQuery {
            filter: (&q.filter).into(),
            order: q
                .order
                .iter()
                .map(|o| WireOrder {
                    field: o.field.clone(),
                    descending: o.descending,
                })
                .collect(),
            limit: q.limit.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            offset: u32::try_from(q.offset).unwrap_or(u32::MAX),
            include_deleted: q.include_deleted,
        }
    }
}

/// Converts and validates ([`Query::validate`]): a query that cannot run is
/// refused here with its `query.*` code.
impl TryFrom<&WireQuery> for Query {
    type Error = RpcError;
    fn try_from(q: &WireQuery) -> Result<Self, RpcError> {
        let query = Query {
            filter: (&q.filter).try_into()?,
            order: q
                .order
                .iter()
                .map(|o| Order {
                    field: o.field.clone(),
                    descending: o.descending,
                })
                .collect(),
            limit: q.limit.map(|n| n as usize),
            offset: q.offset as usize,
            include_deleted: q.include_deleted,
        };
        query.validate()?;
        Ok(query)
    }
}

// -------------------------------------------------------------- mutations

/// One write of an `object.batch`, externally tagged:
/// `{ "create": { .. } }`, `{ "set": { .. } }`, …
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Mutation"))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WireMutation {
    /// Creates an object; without `id` the vault picks a random one (the
    /// response lists created ids in order).
    Create {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        id: Option<String>,
        #[serde(rename = "type")]
        type_name: String,
        #[serde(default)]
        #[cfg_attr(test, ts(optional = nullable))]
        fields: WireFields,
    },
    Set {
        id: String,
        field: String,
        value: WireValue,
    },
    Remove {
        id: String,
        field: String,
    },
    /// Soft delete.
    Delete {
        id: String,
    },
    /// Positions and lengths in Unicode code points.
    SpliceText {
        id: String,
        field: String,
        pos: u32,
        delete: u32,
        insert: String,
    },
}

impl From<&Mutation> for WireMutation {
    fn from(m: &Mutation) -> Self {
        match m {
            Mutation::Create {
                id,
                type_name,
                fields,
            } => WireMutation::Create {
                id: Some(id.to_string()),
                type_name: type_name.clone(),
                fields: fields_to_wire(fields),
            },
            Mutation::Set { id, field, value } => WireMutation::Set {
                id: id.to_string(),
                field: field.clone(),
                value: value.into(),
            },
            Mutation::Remove { id, field } => WireMutation::Remove {
                id: id.to_string(),
                field: field.clone(),
            },
            Mutation::Delete { id } => WireMutation::Delete { id: id.to_string() },
            Mutation::SpliceText {
                id,
                field,
                pos,
                delete,
                insert,
            } => WireMutation::SpliceText {
                id: id.to_string(),
                field: field.clone(),
                pos: u32::try_from(*pos).unwrap_or(u32::MAX),
                delete: u32::try_from(*delete).unwrap_or(u32::MAX),
                insert: insert.clone(),
            },
        }
    }
}

/// A mutation from the wire; a `create` without an id gets one from
/// `new_id` (the engine's generator).
pub fn mutation_from_wire(
    m: &WireMutation,
    new_id: &mut dyn FnMut() -> ObjectId,
) -> Result<Mutation, RpcError> {
    Ok(match m {
        WireMutation::Create {
            id,
            type_name,
            fields,
        } => Mutation::Create {
            id: match id {
                Some(id) => object_id("create.id", id)?,
                None => new_id(),
            },
            type_name: type_name.clone(),
            fields: fields_from_wire(fields)?,
        },
        WireMutation::Set { id, field, value } => Mutation::Set {
            id: object_id("set.id", id)?,
            field: field.clone(),
            value: value.try_into()?,
        },
        WireMutation::Remove { id, field } => Mutation::Remove {
            id: object_id("remove.id", id)?,
            field: field.clone(),
        },
        WireMutation::Delete { id } => Mutation::Delete {
            id: object_id("delete.id", id)?,
        },
        WireMutation::SpliceText {
            id,
            field,
            pos,
            delete,
            insert,
        } => Mutation::SpliceText {
            id: object_id("splice_text.id", id)?,
            field: field.clone(),
            pos: *pos as usize,
            delete: *delete as usize,
            insert: insert.clone(),
        },
    })
}

/// Parses a space id from the wire; a malformed one is `model.invalid_id`
/// with `details.field` naming where it was.
pub fn parse_space_id(field: &str, text: &str) -> Result<SpaceId, RpcError> {
    space_id(field, text)
}

/// Parses an object id from the wire (see [`parse_space_id`]).
pub fn parse_object_id(field: &str, text: &str) -> Result<ObjectId, RpcError> {
    object_id(field, text)
}
