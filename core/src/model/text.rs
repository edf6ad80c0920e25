//! Collaborative text fields: reading them, stable cursors, the cache of
//! text objects and lengths that keeps a keystroke to one Automerge splice,
//! the lazy re-read of spliced text into the index, and the range checks of
//! splices.

use automerge::{Cursor, ObjId, ObjType, ReadDoc};

use super::codec::Reader;
use super::error::ModelError;
use super::space::Space;
use crate::data::{ObjectId, Value};

/// A text field's Automerge object and its length in code points.
pub(crate) struct CachedText {
    pub(super) field: String,
    pub(super) obj: ObjId,
    pub(super) len: usize,
}

impl Space {
    /// Reads a text field's content.
    pub fn text(&mut self, id: &ObjectId, field: &str) -> Result<String, ModelError> {
        let state = self.get(id)?.ok_or(ModelError::NotFound { id: *id })?;
        match state.fields.get(field) {
            Some(Value::Text(t)) => Ok(t.clone()),
            Some(other) => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: other.kind(),
            }),
            None => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: "missing",
            }),
        }
    }

    /// A stable cursor at `pos` of a text field: it keeps pointing at the same
    /// character while others edit around it.
    pub fn text_cursor(
        &mut self,
        id: &ObjectId,
        field: &str,
        pos: usize,
    ) -> Result<String, ModelError> {
        let (shard, text) = self.text_obj(id, field)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        let len = doc.length(&text);
        if pos > len {
            return Err(ModelError::TextRange {
                id: *id,
                field: field.to_owned(),
                pos,
                delete: 0,
                len,
            });
        }
        Ok(doc.get_cursor(&text, pos, None)?.to_string())
    }

    /// Where a cursor from [`text_cursor`](Self::text_cursor) points now.
    pub fn text_cursor_position(
        &mut self,
        id: &ObjectId,
        field: &str,
        cursor: &str,
    ) -> Result<usize, ModelError> {
        let parsed = Cursor::try_from(cursor).map_err(|e| ModelError::InvalidCursor {
            cursor: cursor.chars().take(64).collect(),
            reason: e.to_string(),
        })?;
        let (shard, text) = self.text_obj(id, field)?;
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        doc.get_cursor_position(&text, &parsed, None)
            .map_err(|e| ModelError::InvalidCursor {
                cursor: cursor.chars().take(64).collect(),
                reason: e.to_string(),
            })
    }

    fn text_obj(&mut self, id: &ObjectId, field: &str) -> Result<(usize, ObjId), ModelError> {
        let shard = self.shard_of(id);
        Ok((shard, self.cached_text(shard, id, field)?.obj.clone()))
    }

    /// The cached text object and length of a field, looked up on first use.
    fn cached_text(
        &mut self,
        shard: usize,
        id: &ObjectId,
        field: &str,
    ) -> Result<&CachedText, ModelError> {
        let known = self
            .text_objs
            .get(id)
            .and_then(|fs| fs.iter().position(|c| c.field == field));
        let at = match known {
            Some(at) => at,
            None => {
                let obj = self.lookup_text_obj(shard, id, field)?;
                let len = self.shards[shard]
                    .doc(&self.id_text, &self.actor)?
                    .length(&obj);
                let fields = self.text_objs.entry(*id).or_default();
                fields.push(CachedText {
                    field: field.to_owned(),
                    obj,
                    len,
                });
                fields.len() - 1
            }
        };
        Ok(&self.text_objs[id][at])
    }

    fn lookup_text_obj(
        &mut self,
        shard: usize,
        id: &ObjectId,
        field: &str,
    ) -> Result<ObjId, ModelError> {
        let doc = self.shards[shard].doc(&self.id_text, &self.actor)?;
        let reader = Reader {
            doc: &*doc,
            heads: None,
        };
        if !reader.exists(id)? {
            return Err(ModelError::NotFound { id: *id });
        }
        match reader.field_obj(id, field)? {
            Some((automerge::Value::Object(ObjType::Text), text)) => Ok(text),
            Some((automerge::Value::Object(t), _)) => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: obj_type_name(t),
            }),
            Some(_) => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: "scalar",
            }),
            None => Err(ModelError::NotText {
                id: *id,
                field: field.to_owned(),
                found: "missing",
            }),
        }
    }

    pub(super) fn text_len(&mut self, id: &ObjectId, field: &str) -> Result<usize, ModelError> {
        let shard = self.shard_of(id);
        Ok(self.cached_text(shard, id, field)?.len)
    }

    /// Re-reads from the documents the objects whose text lags in the index:
    /// just `only` when given, else all.
    pub(super) fn refresh_text(&mut self, only: Option<&ObjectId>) -> Result<(), ModelError> {
        let ids: Vec<ObjectId> = match only {
            Some(id) if self.stale_text.contains(id) => vec![*id],
            Some(_) => return Ok(()),
            None => self.stale_text.iter().copied().collect(),
        };
        for id in ids {
            self.reload_object(&id)?;
            self.stale_text.remove(&id);
        }
        Ok(())
    }
}

pub(super) fn check_range(
    id: ObjectId,
    field: &str,
    pos: usize,
    delete: usize,
    len: usize,
) -> Result<(), ModelError> {
    match pos.checked_add(delete) {
        Some(end) if end <= len => Ok(()),
        _ => Err(ModelError::TextRange {
            id,
            field: field.to_owned(),
            pos,
            delete,
            len,
        }),
    }
}

/// Replaces the code-point range `pos..pos + delete` of `text` by `insert`,
/// in place; `false` (and `text` unchanged) when the range is not in it.
/// A prefix of ASCII is skipped without decoding it (typing in a long
/// document: this runs once per splice run of a turn).
pub(super) fn splice_chars(text: &mut String, pos: usize, delete: usize, insert: &str) -> bool {
    let bytes = text.as_bytes();
    // `is_ascii` on a slice checks a word at a time.
    let ascii = match bytes.get(..pos) {
        Some(prefix) if prefix.is_ascii() => pos,
        _ => bytes.iter().take(pos).take_while(|b| b.is_ascii()).count(),
    };
    // The byte where code point `pos` starts (the end, for `pos` = length).
    let rest = &text[ascii..];
    let Some(start) = rest
        .char_indices()
        .map(|(b, _)| ascii + b)
        .chain([text.len()])
        .nth(pos - ascii)
    else {
        return false;
    };
    let mut end = start;
    for _ in 0..delete {
        match text[end..].chars().next() {
            Some(c) => end += c.len_utf8(),
            None => return false,
        }
    }
    text.replace_range(start..end, insert);
    true
}

fn obj_type_name(t: ObjType) -> &'static str {
    match t {
        ObjType::Map | ObjType::Table => "map",
        ObjType::List => "list",
        ObjType::Text => "text",
    }
}

/// How far from its position a splice's context is looked for.
const ANCHOR_WINDOW: usize = 4096;

/// Where a splice made at `pos` of an app's view of a text belongs in
/// `text`, the text as it is now: `context` is what the app had just
/// before `pos` (its last characters). When another writer's edit arrived
/// first and moved things, the place right after the longest tail of the
/// context found within [`ANCHOR_WINDOW`] of `pos` is taken (the nearest
/// one of that length: the other edit may have changed the context's
/// beginning); with none (or no context), `pos` itself. Positions in code
/// points.
pub fn anchor_position(text: &str, pos: usize, context: &str) -> usize {
    let ctx: Vec<char> = context.chars().collect();
    if ctx.is_empty() {
        return pos;
    }
    let chars: Vec<char> = text.chars().collect();
    let ends_here = |p: usize, tail: &[char]| {
        p >= tail.len() && p <= chars.len() && chars[p - tail.len()..p] == *tail
    };
    if ends_here(pos, &ctx) {
        return pos;
    }
    let lo = pos.saturating_sub(ANCHOR_WINDOW);
    let hi = pos.saturating_add(ANCHOR_WINDOW).min(chars.len());
    for k in (1..=ctx.len()).rev() {
        let tail = &ctx[ctx.len() - k..];
        let nearest = (lo.max(k)..=hi)
            .filter(|&p| ends_here(p, tail))
            .min_by_key(|&p| (p.abs_diff(pos), p));
        if let Some(p) = nearest {
            return p;
        }
    }
    pos
}

#[cfg(test)]
mod anchor_tests {
    use super::{anchor_position, splice_chars};

    #[test]
    fn a_splice_in_place_edits_code_points() {
        let base = "ab😀é cd";
        let len = base.chars().count();
        for pos in 0..=len + 1 {
            for delete in 0..=len + 1 - pos.min(len + 1) {
                let mut text = base.to_owned();
                let done = splice_chars(&mut text, pos, delete, "xÿ");
                if pos + delete <= len {
                    let mut chars: Vec<char> = base.chars().collect();
                    chars.splice(pos..pos + delete, "xÿ".chars());
                    assert!(done, "{pos} {delete}");
                    assert_eq!(
                        text,
                        chars.into_iter().collect::<String>(),
                        "{pos} {delete}"
                    );
                } else {
                    assert!(!done, "{pos} {delete}");
                    assert_eq!(text, base);
                }
            }
        }
    }

    #[test]
    fn a_splice_follows_the_characters_before_it() {
        // Someone inserted "Organic, " at the start after the app computed pos 8.
        assert_eq!(anchor_position("Organic, 2 litres", 8, "2 litres"), 17);
        // Nothing moved: pos as it is.
        assert_eq!(anchor_position("2 litres", 8, "2 litres"), 8);
        // Someone deleted before it.
        assert_eq!(anchor_position("litres, x", 8, "litres, "), 8);
        assert_eq!(
            anchor_position("res, x", 8, "litres, "),
            5,
            "its tail found"
        );
        assert_eq!(anchor_position("zzz", 2, "q"), 2, "nothing of it left: pos");
        // The other writer changed the beginning of the context: its longest tail found wins.
        assert_eq!(
            anchor_position("Organic2 litres, fr", 15, "Org2 litres, fr"),
            19
        );
        // The nearest of several matches wins.
        assert_eq!(anchor_position("ab ab ab", 5, "ab"), 5);
        assert_eq!(anchor_position("xab ab ab", 5, "ab"), 6);
        // No context: pos; code points, not bytes.
        assert_eq!(anchor_position("héllo", 3, ""), 3);
        assert_eq!(anchor_position("¡héllo", 3, "hé"), 3);
    }
}
