//! Which root keys of a shard document a batch of changes touches — so a
//! merge knows which objects to read back into the index.
//!
//! Every object lives under root keys (`codec`): its initial state, its
//! fields, its deletion mark. An operation on the root names its key; an
//! operation inside a nested object (a text, a list or map value) belongs
//! to the root key that object hangs from — known from the batch itself
//! when the batch made the object, else asked of the merged document.
//! Reading the operations is far cheaper than diffing the document before
//! and after, which materializes every changed value.

use std::collections::{BTreeSet, HashMap};

use automerge::legacy::{Key, ObjectId as OpObject, OpId, OpType};
use automerge::{Automerge, Change, Prop, ReadDoc, ROOT};

/// What [`scan`] found: root keys, and nested objects whose root key only
/// the merged document knows.
#[derive(Debug, Default)]
pub(super) struct Scan {
    keys: BTreeSet<String>,
    unresolved: BTreeSet<OpId>,
}

/// Reads the operations of `changes` (before they are applied).
pub(super) fn scan(changes: &[Change]) -> Scan {
    let mut out = Scan::default();
    // Objects the batch made, and the root key each hangs from.
    let mut made: HashMap<OpId, String> = HashMap::new();
    for change in changes {
        let expanded = change.decode();
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            let root_key = match (&op.obj, &op.key) {
                (OpObject::Root, Key::Map(key)) => Some(key.to_string()),
                (OpObject::Root, Key::Seq(_)) => None,
                (OpObject::Id(obj), _) => match made.get(obj) {
                    Some(key) => Some(key.clone()),
                    None => {
                        out.unresolved.insert(obj.clone());
                        None
                    }
                },
            };
            if let Some(key) = root_key {
                if let OpType::Make(_) = op.action {
                    made.insert(
                        OpId(start + i as u64, expanded.actor_id.clone()),
                        key.clone(),
                    );
                }
                out.keys.insert(key);
            }
        }
    }
    out
}

impl Scan {
    /// The root keys touched, once the changes are merged into `doc`;
    /// `None` when a nested object cannot be traced to its root key (the
    /// caller then diffs the document instead).
    pub(super) fn resolve(mut self, doc: &Automerge) -> Option<BTreeSet<String>> {
        for obj in std::mem::take(&mut self.unresolved) {
            // `import_obj` reads the `counter@actor` form `OpId` prints.
            let id = doc.import_obj(&obj.to_string()).ok()?;
            let top = doc.parents(&id).ok()?.last()?;
            match (top.obj == ROOT, top.prop) {
                (true, Prop::Map(key)) => {
                    self.keys.insert(key);
                }
                _ => return None,
            }
        }
        Some(self.keys)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use automerge::transaction::Transactable;
    use automerge::AutoCommit;

    use super::*;
    use crate::data::{ObjectId, Value};
    use crate::model::codec;

    #[test]
    fn the_operations_name_the_keys_a_diff_finds() {
        let id = |i: u8| ObjectId::from_bytes([i; 16]);
        let mut fields = BTreeMap::new();
        fields.insert("body".to_owned(), Value::Text("hello".into()));
        fields.insert("n".to_owned(), Value::Int(1));
        let mut a = AutoCommit::new();
        for i in 1..=4 {
            codec::put_object(&mut a, &id(i), "note", &fields).unwrap();
        }
        codec::put_field(&mut a, &id(2), "tags", &Value::List(vec![Value::Int(1)])).unwrap();
        a.commit();
        let mut b = a.fork();
        let base = a.get_heads();
        // In a: a field, a splice into text made earlier, an insert into a
        // list made earlier, a deletion, a new object with text, and a
        // splice into the text it just made.
        codec::put_field(&mut a, &id(1), "n", &Value::Int(2)).unwrap();
        let (_, text) = a
            .get(ROOT, codec::field_key(&id(3), "body"))
            .unwrap()
            .unwrap();
        a.splice_text(&text, 0, 0, "oh ").unwrap();
        a.commit();
        let (_, tags) = a
            .get(ROOT, codec::field_key(&id(2), "tags"))
            .unwrap()
            .unwrap();
        a.insert(&tags, 1, 2).unwrap();
        codec::mark_deleted(&mut a, &id(4)).unwrap();
        codec::put_object(&mut a, &id(5), "note", &fields).unwrap();
        let (_, fresh) = a
            .get(ROOT, codec::field_key(&id(5), "body"))
            .unwrap()
            .unwrap();
        a.splice_text(&fresh, 5, 0, "!").unwrap();
        a.commit();

        let changes: Vec<Change> = a.get_changes(&base);
        let found = scan(&changes);
        let before = b.get_heads();
        b.apply_changes(changes).unwrap();
        let after = b.get_heads();
        let keys = found.resolve(b.document()).expect("every object traced");
        let objects = |keys: &BTreeSet<String>| -> BTreeSet<ObjectId> {
            keys.iter()
                .filter_map(|k| codec::object_of_key(k))
                .collect()
        };
        let diffed = super::super::merge::diffed_keys(b.document(), &before, &after);
        assert_eq!(objects(&keys), objects(&diffed));
        assert_eq!(objects(&keys), [1, 2, 3, 4, 5].map(id).into());
    }
}
