//! Consecutive text splices of one batch, merged into one Automerge splice.
//!
//! Typing sends a splice per keystroke, and the vault writes all the calls
//! of a turn as one batch: thousands of one-character splices of one field,
//! each at the end of the one before. Automerge's cost of a splice is mostly
//! fixed (finding the position, then editing every column of the op set),
//! so [`Space::apply`](super::Space::apply) writes such a run as one splice.
//! Only runs whose merged splice writes what the splices one by one write
//! are merged (positions and lengths in code points, the documents' text
//! encoding):
//!
//! - typing on: `(p, d, a)` with `a` not empty, or `(p, 0, "")`, then
//!   `(p + |a|, 0, b)` is `(p, d, ab)` — the same operations with the same
//!   ids, each character inserted after the one before;
//! - deleting forward: `(p, d, "")` then `(p, e, "")` is `(p, d + e, "")`;
//! - deleting backward: `(p, d, "")` then `(q, e, "")` with `q + e = p` is
//!   `(q, e + d, "")` — the same characters deleted, by operations in
//!   another order.
//!
//! Not an insert after a deletion: Automerge anchors an insert after the
//! character before it, and after a separate deletion that can be the
//! deleted one, so a concurrent insert at the same place would order
//! differently (the convergence test found it). Nor anything else: an insert
//! then a deletion of part of it, a splice of another field or object in
//! between.

use std::borrow::Cow;

use super::batch::Mutation;
use crate::data::ObjectId;

/// One splice to write: a run of a batch's splices of one text field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SpliceRun<'a> {
    pub(super) id: ObjectId,
    pub(super) field: &'a str,
    pub(super) pos: usize,
    pub(super) delete: usize,
    pub(super) insert: Cow<'a, str>,
    /// `insert`'s length in code points.
    insert_len: usize,
}

impl<'a> SpliceRun<'a> {
    pub(super) fn new(
        id: ObjectId,
        field: &'a str,
        pos: usize,
        delete: usize,
        insert: &'a str,
    ) -> Self {
        Self {
            id,
            field,
            pos,
            delete,
            insert: Cow::Borrowed(insert),
            insert_len: insert.chars().count(),
        }
    }

    /// The run a splice mutation starts; `None` for other mutations.
    pub(super) fn of(m: &'a Mutation) -> Option<Self> {
        match m {
            Mutation::SpliceText {
                id,
                field,
                pos,
                delete,
                insert,
            } => Some(Self::new(*id, field, *pos, *delete, insert)),
            _ => None,
        }
    }

    /// Takes the next splice (a run of one, as [`of`](Self::of) makes) into
    /// this run when writing the run as one splice leaves the same text as
    /// writing both; `false` leaves the run unchanged.
    pub(super) fn absorb(&mut self, next: &SpliceRun<'a>) -> bool {
        let (pos, delete) = (next.pos, next.delete);
        if next.id != self.id || next.field != self.field {
            return false;
        }
        let typing_on = self.insert_len > 0 || self.delete == 0;
        if typing_on && delete == 0 && pos == self.pos + self.insert_len {
            self.insert.to_mut().push_str(&next.insert);
            self.insert_len += next.insert_len;
            return true;
        }
        if self.insert_len != 0 || next.insert_len != 0 {
            return false;
        }
        if pos == self.pos {
            self.delete += delete;
        } else if pos + delete == self.pos {
            self.pos = pos;
            self.delete += delete;
        } else {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, pos: usize, delete: usize, insert: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        chars.splice(pos..pos + delete, insert.chars());
        chars.into_iter().collect()
    }

    /// Every pair of splices in a small space of positions and lengths: when
    /// the run absorbs the second, the merged splice leaves the text both do.
    #[test]
    fn a_merged_run_leaves_the_text_its_splices_leave() {
        let id = ObjectId::from_bytes([1; 16]);
        let base = "aé😀bcdefg";
        let len = base.chars().count();
        let inserts = ["", "x", "ÿz", "😀😀q"];
        let mut merged = 0;
        for p1 in 0..=len {
            for d1 in 0..=(len - p1) {
                for i1 in inserts {
                    let after1 = apply(base, p1, d1, i1);
                    let len1 = after1.chars().count();
                    for p2 in 0..=len1 {
                        for d2 in 0..=(len1 - p2) {
                            for i2 in inserts {
                                let both = apply(&after1, p2, d2, i2);
                                let mut run = SpliceRun::new(id, "f", p1, d1, i1);
                                if run.absorb(&SpliceRun::new(id, "f", p2, d2, i2)) {
                                    merged += 1;
                                    assert_eq!(
                                        apply(base, run.pos, run.delete, &run.insert),
                                        both,
                                        "({p1},{d1},{i1:?}) then ({p2},{d2},{i2:?}) as {run:?}"
                                    );
                                    assert_eq!(run.insert_len, run.insert.chars().count());
                                } else {
                                    assert_eq!(run, SpliceRun::new(id, "f", p1, d1, i1));
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(merged > 1000, "only {merged} pairs merged");
    }

    #[test]
    fn typing_merges_into_one_splice_and_other_fields_do_not() {
        let id = ObjectId::from_bytes([1; 16]);
        let other = ObjectId::from_bytes([2; 16]);
        let mut run = SpliceRun::new(id, "body", 3, 0, "h");
        assert!(run.absorb(&SpliceRun::new(id, "body", 4, 0, "e")));
        assert!(run.absorb(&SpliceRun::new(id, "body", 5, 0, "y")));
        assert_eq!((run.pos, run.delete, run.insert.as_ref()), (3, 0, "hey"));
        assert!(!run.absorb(&SpliceRun::new(id, "title", 6, 0, "!")));
        assert!(!run.absorb(&SpliceRun::new(other, "body", 6, 0, "!")));
        // A backspace over what the run typed is not merged.
        assert!(!run.absorb(&SpliceRun::new(id, "body", 5, 1, "")));
        // Backspaces after a deletion are; typing after them is not.
        let mut run = SpliceRun::new(id, "body", 9, 1, "");
        assert!(run.absorb(&SpliceRun::new(id, "body", 8, 1, "")));
        assert!(run.absorb(&SpliceRun::new(id, "body", 8, 2, "")));
        assert_eq!((run.pos, run.delete, run.insert.as_ref()), (8, 4, ""));
        assert!(!run.absorb(&SpliceRun::new(id, "body", 8, 0, "z")));
        assert!(!run.absorb(&SpliceRun::new(id, "body", 7, 1, "z")));
    }
}
