//! Batches of writes applied atomically.

use super::Key;

/// One write in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store `value` under `key`, replacing any previous value.
    Put {
        /// The key to write.
        key: Key,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove `key`; deleting a missing key is not an error.
    Delete {
        /// The key to remove.
        key: Key,
    },
}

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }

    /// Bytes this op carries: key plus value.
    pub fn byte_size(&self) -> usize {
        match self {
            Op::Put { key, value } => key.len() + value.len(),
            Op::Delete { key } => key.len(),
        }
    }
}

/// An ordered list of puts and deletes that a store applies atomically.
///
/// Ops apply in order, so a later op on a key wins over an earlier one.
/// Keys are checked when the batch is applied, not when it is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
    bytes: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: impl Into<Key>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.push(Op::Put {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl Into<Key>) -> &mut Self {
        self.push(Op::Delete { key: key.into() })
    }

    /// Adds an op.
    pub fn push(&mut self, op: Op) -> &mut Self {
        self.bytes += op.byte_size();
        self.ops.push(op);
        self
    }

    /// Appends all ops of `other` after this batch's ops.
    pub fn extend(&mut self, other: Batch) -> &mut Self {
        self.bytes += other.bytes;
        self.ops.extend(other.ops);
        self
    }

    /// Whether the batch has no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The ops, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The ops, by value.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// Total bytes of keys and values in the batch.
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    /// Checks every key against [`validate_key`](super::validate_key).
    pub fn validate(&self) -> Result<(), super::StoreError> {
        self.ops
            .iter()
            .try_for_each(|op| super::validate_key(op.key()))
    }
}

impl IntoIterator for Batch {
    type Item = Op;
    type IntoIter = std::vec::IntoIter<Op>;

    fn into_iter(self) -> Self::IntoIter {
        self.ops.into_iter()
    }
}

impl FromIterator<Op> for Batch {
    fn from_iter<T: IntoIterator<Item = Op>>(iter: T) -> Self {
        let mut batch = Batch::new();
        for op in iter {
            batch.push(op);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_counts() {
        let mut b = Batch::new();
        assert!(b.is_empty());
        b.put("a/b", vec![1, 2, 3]).delete("a/c");
        assert_eq!(b.len(), 2);
        assert_eq!(b.byte_size(), 3 + 3 + 3);
        let mut c = Batch::new();
        c.put("z", b"xy".to_vec());
        b.extend(c);
        assert_eq!(b.len(), 3);
        assert_eq!(b.byte_size(), 9 + 3);
        assert_eq!(b.ops()[2].key(), "z");
        assert!(b.validate().is_ok());
        b.put("", Vec::new());
        assert_eq!(b.validate().unwrap_err().code(), "store.invalid_key");
    }
}
