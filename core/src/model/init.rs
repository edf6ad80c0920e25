//! The encoding of an object's initial state: its type name and every
//! non-text field, in one bytes value (see `codec` for why one).
//!
//! These bytes arrive from peers, so decoding must not trust them. Values
//! nest (lists and maps), and a derived, recursive decoder would follow any
//! nesting depth a peer chose down the stack. Instead the state is a flat
//! arena of nodes that refer to their children by index: decoding is a
//! plain sequence read, and the tree is rebuilt with children required to
//! come *after* their parent (so no cycles) and nesting capped at
//! [`MAX_VALUE_DEPTH`] levels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ModelError;
use crate::data::{ObjectId, Reference, Value, MAX_VALUE_DEPTH};

const VERSION: u8 = 1;

/// A node as decoded. [`NodeOut`] is the same encoding, borrowed.
#[derive(Deserialize)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<u32>),
    Map(Vec<(String, u32)>),
    Ref(Reference),
    Text(String),
}

#[derive(Deserialize)]
struct Arena {
    type_name: String,
    fields: Vec<(String, u32)>,
    nodes: Vec<Node>,
}

/// [`Node`] borrowing from the value being encoded (postcard encodes both
/// alike: variants by index, strings and bytes length-prefixed).
#[derive(Serialize)]
enum NodeOut<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(&'a str),
    Bytes(&'a [u8]),
    List(Vec<u32>),
    Map(Vec<(&'a str, u32)>),
    Ref(Reference),
    Text(&'a str),
}

#[derive(Serialize)]
struct ArenaOut<'a> {
    type_name: &'a str,
    fields: Vec<(&'a str, u32)>,
    nodes: Vec<NodeOut<'a>>,
}

/// The type name and fields of a newly created object.
pub(crate) struct InitialState {
    pub type_name: String,
    pub fields: BTreeMap<String, Value>,
}

/// Encodes a type name and fields. `fields` must already be checked to nest
/// at most [`MAX_VALUE_DEPTH`] levels.
pub(crate) fn encode<'a>(
    type_name: &'a str,
    fields: impl Iterator<Item = (&'a String, &'a Value)>,
) -> Vec<u8> {
    let mut arena = ArenaOut {
        type_name,
        fields: Vec::new(),
        nodes: Vec::new(),
    };
    for (name, value) in fields {
        let index = push(&mut arena.nodes, value);
        arena.fields.push((name.as_str(), index));
    }
    let mut bytes = vec![VERSION];
    bytes.extend(
        postcard::to_stdvec(&arena).expect("in-memory serialization of plain data cannot fail"),
    );
    bytes
}

/// Appends `value` (parent first, then its children) and returns its index.
fn push<'a>(nodes: &mut Vec<NodeOut<'a>>, value: &'a Value) -> u32 {
    let index = nodes.len();
    nodes.push(NodeOut::Null);
    let node = match value {
        Value::Null => NodeOut::Null,
        Value::Bool(b) => NodeOut::Bool(*b),
        Value::Int(n) => NodeOut::Int(*n),
        Value::Float(f) => NodeOut::Float(*f),
        Value::String(s) => NodeOut::String(s),
        Value::Bytes(b) => NodeOut::Bytes(b),
        Value::Ref(r) => NodeOut::Ref(*r),
        Value::Text(t) => NodeOut::Text(t),
        Value::List(items) => NodeOut::List(items.iter().map(|v| push(nodes, v)).collect()),
        Value::Map(map) => NodeOut::Map(
            map.iter()
                .map(|(k, v)| (k.as_str(), push(nodes, v)))
                .collect(),
        ),
    };
    nodes[index] = node;
    index as u32
}

/// Decodes bytes written by [`encode`], from this replica or a peer.
pub(crate) fn decode(id: &ObjectId, bytes: &[u8]) -> Result<InitialState, ModelError> {
    let corrupt = |why: String| ModelError::Corrupt {
        reason: format!("object {id}: initial state {why}"),
    };
    let arena: Arena = match bytes.split_first() {
        Some((&VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupt(format!("does not decode: {e}")))?
        }
        Some((v, _)) => return Err(corrupt(format!("has unknown version {v}"))),
        None => return Err(corrupt("is empty".into())),
    };
    let mut nodes: Vec<Option<Node>> = arena.nodes.into_iter().map(Some).collect();
    let mut fields = BTreeMap::new();
    for (name, index) in arena.fields {
        let value = take(&mut nodes, index, None, 0).map_err(corrupt)?;
        fields.insert(name, value);
    }
    Ok(InitialState {
        type_name: arena.type_name,
        fields,
    })
}

/// Rebuilds the value at `index`, whose parent is at `parent`. Each node may
/// be used once and only by a parent before it.
fn take(
    nodes: &mut [Option<Node>],
    index: u32,
    parent: Option<u32>,
    depth: usize,
) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("nests deeper than {MAX_VALUE_DEPTH} levels"));
    }
    if parent.is_some_and(|p| index <= p) {
        return Err("has a child before its parent".into());
    }
    let node = nodes
        .get_mut(index as usize)
        .ok_or_else(|| format!("refers to missing node {index}"))?
        .take()
        .ok_or_else(|| format!("uses node {index} twice"))?;
    Ok(match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(n) => Value::Int(n),
        Node::Float(f) => Value::Float(f),
        Node::String(s) => Value::String(s),
        Node::Bytes(b) => Value::Bytes(b),
        Node::Ref(r) => Value::Ref(r),
        Node::Text(t) => Value::Text(t),
        Node::List(children) => Value::List(
            children
                .into_iter()
                .map(|c| take(nodes, c, Some(index), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Node::Map(children) => Value::Map(
            children
                .into_iter()
                .map(|(k, c)| Ok((k, take(nodes, c, Some(index), depth + 1)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ObjectId {
        ObjectId::from_bytes([1; 16])
    }

    #[test]
    fn nested_values_round_trip() {
        let mut map = BTreeMap::new();
        map.insert(
            "k".to_string(),
            Value::List(vec![Value::Int(1), Value::Map(BTreeMap::new())]),
        );
        let fields: BTreeMap<String, Value> = [
            ("a".to_string(), Value::Map(map)),
            ("b".to_string(), Value::Ref(Reference::local(id()))),
            ("c".to_string(), Value::Float(f64::NAN)),
        ]
        .into();
        let decoded = decode(&id(), &encode("t", fields.iter())).unwrap();
        assert_eq!(decoded.type_name, "t");
        assert_eq!(decoded.fields["a"], fields["a"]);
        assert_eq!(decoded.fields["b"], fields["b"]);
        assert!(matches!(decoded.fields["c"], Value::Float(f) if f.is_nan()));
    }

    fn arena_bytes(arena: &ArenaOut<'_>) -> Vec<u8> {
        let mut bytes = vec![VERSION];
        bytes.extend(postcard::to_stdvec(arena).unwrap());
        bytes
    }

    #[test]
    fn hostile_arenas_are_rejected_without_recursion() {
        // A chain a million levels deep: decoding reads a flat list, and the
        // rebuild stops at the depth cap instead of exhausting the stack.
        let mut nodes: Vec<NodeOut> = (1..1_000_000u32).map(|i| NodeOut::List(vec![i])).collect();
        nodes.push(NodeOut::Null);
        let deep = ArenaOut {
            type_name: "t",
            fields: vec![("f", 0)],
            nodes,
        };
        let err = decode(&id(), &arena_bytes(&deep)).err().unwrap();
        assert!(err.to_string().contains("deeper"), "{err}");

        let cycle = ArenaOut {
            type_name: "t",
            fields: vec![("f", 0)],
            nodes: vec![NodeOut::List(vec![0])],
        };
        assert!(decode(&id(), &arena_bytes(&cycle)).is_err());
        let backwards = ArenaOut {
            type_name: "t",
            fields: vec![("f", 1)],
            nodes: vec![NodeOut::Null, NodeOut::List(vec![0])],
        };
        assert!(decode(&id(), &arena_bytes(&backwards)).is_err());
        let shared = ArenaOut {
            type_name: "t",
            fields: vec![("f", 0), ("g", 0)],
            nodes: vec![NodeOut::Int(1)],
        };
        assert!(decode(&id(), &arena_bytes(&shared)).is_err());
        let missing = ArenaOut {
            type_name: "t",
            fields: vec![("f", 7)],
            nodes: vec![],
        };
        assert!(decode(&id(), &arena_bytes(&missing)).is_err());
        for garbage in [
            &[][..],
            &[VERSION][..],
            &[9, 1, 2][..],
            &[VERSION, 0xff, 0xff, 0xff][..],
        ] {
            assert_eq!(
                decode(&id(), garbage).err().unwrap().code(),
                "model.corrupt"
            );
        }
    }
}
