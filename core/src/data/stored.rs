//! Object states as stored: checked and located when a space opens,
//! decoded only when first read.
//!
//! A stored state is [`ObjectState`]'s postcard encoding (`id`, `type_name`,
//! `fields`, `deleted`). Opening a space used to decode every one of them —
//! a `BTreeMap` of owned strings per object, most of the open's time and
//! memory. Now [`skim_state`] walks an encoded state without allocating:
//! it checks everything decoding would check (lengths, UTF-8, variant
//! tags, booleans, nesting) and notes where the type name and the fields
//! are. The [`StoredState`] keeps the chunk's bytes and those two spans;
//! [`StoredState::decode`] builds the [`ObjectState`] when someone reads
//! the object, [`StoredState::field`] reads one field without building the
//! rest (a field index is built from those), and [`write_state`] copies the
//! stored bytes back out when the chunk is rewritten.
//!
//! The walk follows postcard's wire format (varint lengths and enum tags,
//! zigzag varint integers, fixed little-endian floats, 0/1 for booleans and
//! options); a test checks it against postcard for every [`Value`] variant.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::id::ObjectId;
use super::object::ObjectState;
use super::value::{Value, MAX_VALUE_DEPTH};

/// Why stored bytes are not an encoded object state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored object state does not decode at byte {at}: {what}")]
pub struct SkimError {
    pub at: usize,
    pub what: &'static str,
}

/// A cursor over postcard-encoded bytes that reads without allocating.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// Moves past `n` bytes another decoder consumed from [`rest`](Self::rest).
    pub fn advance(&mut self, n: usize) -> Result<(), SkimError> {
        self.take(n).map(|_| ())
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, SkimError> {
        Err(SkimError { at: self.pos, what })
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], SkimError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            _ => self.fail("truncated"),
        }
    }

    fn byte(&mut self) -> Result<u8, SkimError> {
        Ok(self.take(1)?[0])
    }

    /// A LEB128 varint of an integer of `bits` bits (32 or 64), refused as
    /// postcard refuses it when it does not fit.
    fn varint(&mut self, bits: u32) -> Result<u64, SkimError> {
        let max_bytes = bits.div_ceil(7);
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            if i == max_bytes - 1 && u32::from(b) >= 1 << (bits - 7 * i) {
                return self.fail("varint out of range");
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail("varint too long")
    }

    /// A length (of a sequence, map, string or byte string). Every item
    /// takes at least a byte, so no honest length exceeds what is left.
    pub fn len(&mut self) -> Result<usize, SkimError> {
        let v = self.varint(usize::BITS)?;
        match usize::try_from(v) {
            Ok(n) if n <= self.bytes.len() - self.pos => Ok(n),
            _ => self.fail("length out of range"),
        }
    }

    /// A `usize` as postcard writes it (a count of something stored
    /// elsewhere, not bounded by what is left here).
    pub fn usize(&mut self) -> Result<usize, SkimError> {
        let v = self.varint(usize::BITS)?;
        usize::try_from(v).or_else(|_| self.fail("varint out of range"))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], SkimError> {
        let n = self.len()?;
        self.take(n)
    }

    /// A string's bytes, checked to be UTF-8.
    pub fn str(&mut self) -> Result<&'a [u8], SkimError> {
        let at = self.pos;
        let b = self.bytes()?;
        // Most strings are short and ASCII: checked word by word, without
        // the general decoder's setup.
        if b.is_ascii() || std::str::from_utf8(b).is_ok() {
            Ok(b)
        } else {
            Err(SkimError {
                at,
                what: "a string is not UTF-8",
            })
        }
    }

    fn bool(&mut self) -> Result<bool, SkimError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                self.pos -= 1;
                self.fail("a boolean is neither 0 nor 1")
            }
        }
    }

    fn id(&mut self) -> Result<ObjectId, SkimError> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(ObjectId::from_bytes(a))
    }

    /// Skips one encoded [`Value`], checking it as decoding would.
    fn skip_value(&mut self, depth: usize) -> Result<(), SkimError> {
        if depth > MAX_VALUE_DEPTH {
            return self.fail("a value nests too deep");
        }
        // Variant tags in `Value`'s declaration order.
        match self.varint(32)? {
            0 => {}
            1 => {
                self.bool()?;
            }
            2 => {
                self.varint(64)?;
            }
            3 => {
                self.take(8)?;
            }
            4 | 9 => {
                self.str()?;
            }
            5 => {
                self.bytes()?;
            }
            6 => {
                for _ in 0..self.len()? {
                    self.skip_value(depth + 1)?;
                }
            }
            7 => {
                for _ in 0..self.len()? {
                    self.str()?;
                    self.skip_value(depth + 1)?;
                }
            }
            8 => {
                // Reference { space: Option<SpaceId>, object: ObjectId }
                if self.bool()? {
                    self.take(16)?;
                }
                self.take(16)?;
            }
            _ => return self.fail("unknown value variant"),
        }
        Ok(())
    }
}

/// Where a state's parts sit in its chunk.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(start: usize, end: usize) -> Result<Self, SkimError> {
        match (u32::try_from(start), u32::try_from(end - start)) {
            (Ok(start), Ok(len)) => Ok(Self { start, len }),
            _ => Err(SkimError {
                at: start,
                what: "chunk larger than 4 GiB",
            }),
        }
    }

    fn in_<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let start = self.start as usize;
        &bytes[start..start + self.len as usize]
    }
}

/// An object's state as stored, checked but not decoded: the chunk it came
/// in (shared by all its objects) and where its parts are.
#[derive(Clone)]
pub struct StoredState {
    chunk: Arc<Vec<u8>>,
    /// Shared by the objects of a type ([`TypeNames`]).
    type_name: Arc<str>,
    fields: Span,
    deleted: bool,
}

impl fmt::Debug for StoredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredState")
            .field("type_name", &self.type_name)
            .field("fields_bytes", &self.fields.len)
            .field("deleted", &self.deleted)
            .finish()
    }
}

/// The type names met while reading a space, each kept once.
#[derive(Default)]
pub struct TypeNames(HashSet<Arc<str>>);

impl TypeNames {
    fn get(&mut self, name: &str) -> Arc<str> {
        match self.0.get(name) {
            Some(n) => Arc::clone(n),
            None => {
                let n: Arc<str> = Arc::from(name);
                self.0.insert(Arc::clone(&n));
                n
            }
        }
    }
}

/// Reads one encoded state at `reader`'s position in `chunk` (the reader
/// runs over `chunk`'s bytes from `base` on): its id and the unread state.
pub fn skim_state(
    chunk: &Arc<Vec<u8>>,
    base: usize,
    reader: &mut Reader<'_>,
    types: &mut TypeNames,
) -> Result<(ObjectId, StoredState), SkimError> {
    let id = reader.id()?;
    let at = reader.position();
    let type_name = match std::str::from_utf8(reader.bytes()?) {
        Ok(name) => types.get(name),
        Err(_) => {
            return Err(SkimError {
                at,
                what: "the type name is not UTF-8",
            })
        }
    };
    let fields_start = reader.position();
    for _ in 0..reader.len()? {
        reader.str()?;
        reader.skip_value(0)?;
    }
    let fields_end = reader.position();
    let deleted = reader.bool()?;
    Ok((
        id,
        StoredState {
            chunk: Arc::clone(chunk),
            type_name,
            fields: Span::of(base + fields_start, base + fields_end)?,
            deleted,
        },
    ))
}

impl StoredState {
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    pub fn deleted(&self) -> bool {
        self.deleted
    }

    fn fields_bytes(&self) -> &[u8] {
        self.fields.in_(&self.chunk)
    }

    /// The object's state. The bytes were checked by [`skim_state`], so
    /// decoding does not fail; if it did (a bug in the walk), the object
    /// reads as having no fields rather than taking the space down.
    pub fn decode(&self, id: ObjectId) -> ObjectState {
        let fields: BTreeMap<String, Value> =
            postcard::from_bytes(self.fields_bytes()).unwrap_or_default();
        debug_assert!(
            self.fields.len <= 1 || !fields.is_empty(),
            "a skimmed state failed to decode"
        );
        ObjectState {
            id,
            type_name: self.type_name().to_owned(),
            fields,
            deleted: self.deleted,
        }
    }

    /// One field's value, decoding only that field.
    pub fn field(&self, name: &str) -> Option<Value> {
        let mut r = Reader::new(self.fields_bytes());
        let n = r.len().ok()?;
        for _ in 0..n {
            // Checked to be UTF-8 when skimmed: compared as bytes.
            let key = r.bytes().ok()?;
            if key == name.as_bytes() {
                return postcard::take_from_bytes::<Value>(r.rest())
                    .ok()
                    .map(|(v, _)| v);
            }
            r.skip_value(0).ok()?;
        }
        None
    }

    /// Appends the state's encoding (the same bytes `postcard` writes for
    /// the decoded [`ObjectState`]) to `out`.
    pub fn write(&self, id: &ObjectId, out: &mut Vec<u8>) {
        out.extend_from_slice(id.as_bytes());
        write_len(self.type_name.len(), out);
        out.extend_from_slice(self.type_name.as_bytes());
        out.extend_from_slice(self.fields_bytes());
        out.push(u8::from(self.deleted));
    }
}

/// A postcard length (LEB128 varint).
pub fn write_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Reference, SpaceId};

    fn every_variant() -> BTreeMap<String, Value> {
        let id = ObjectId::from_bytes([9; 16]);
        BTreeMap::from([
            ("a_null".into(), Value::Null),
            ("bool".into(), Value::Bool(true)),
            ("bytes".into(), Value::Bytes(vec![0, 255, 7])),
            ("float".into(), Value::Float(-1.5e300)),
            ("int".into(), Value::Int(i64::MIN)),
            ("int_big".into(), Value::Int(i64::MAX)),
            (
                "list".into(),
                Value::List(vec![
                    Value::Int(1),
                    Value::String("ünï".into()),
                    Value::List(vec![]),
                ]),
            ),
            (
                "map".into(),
                Value::Map(BTreeMap::from([
                    ("x".into(), Value::Ref(Reference::local(id))),
                    (
                        "y".into(),
                        Value::Ref(Reference::remote(SpaceId::from_bytes([3; 16]), id)),
                    ),
                ])),
            ),
            ("ref".into(), Value::Ref(Reference::local(id))),
            ("string".into(), Value::String("x".repeat(300))),
            ("text".into(), Value::Text("hello".into())),
        ])
    }

    fn skim(bytes: Vec<u8>) -> Result<(ObjectId, StoredState, usize), SkimError> {
        let chunk = Arc::new(bytes);
        let mut r = Reader::new(&chunk[..]);
        let (id, s) = skim_state(&chunk, 0, &mut r, &mut TypeNames::default())?;
        Ok((id, s, r.position()))
    }

    #[test]
    fn a_skimmed_state_decodes_reads_fields_and_writes_back_the_same_bytes() {
        for deleted in [false, true] {
            let state = ObjectState {
                id: ObjectId::from_bytes([1; 16]),
                type_name: "tâsk".into(),
                fields: every_variant(),
                deleted,
            };
            let bytes = postcard::to_stdvec(&state).unwrap();
            let (id, stored, used) = skim(bytes.clone()).unwrap();
            assert_eq!(used, bytes.len(), "the walk ends where the state ends");
            assert_eq!(id, state.id);
            assert_eq!(stored.type_name(), "tâsk");
            assert_eq!(stored.deleted(), deleted);
            assert_eq!(stored.decode(id), state);
            for (name, value) in &state.fields {
                assert_eq!(stored.field(name).as_ref(), Some(value), "{name}");
            }
            assert_eq!(stored.field("absent"), None);
            let mut out = Vec::new();
            stored.write(&id, &mut out);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn damaged_states_are_refused_by_the_walk() {
        let state = ObjectState {
            id: ObjectId::from_bytes([1; 16]),
            type_name: "t".into(),
            fields: every_variant(),
            deleted: false,
        };
        let bytes = postcard::to_stdvec(&state).unwrap();
        // Every truncation fails.
        for n in 0..bytes.len() {
            assert!(skim(bytes[..n].to_vec()).is_err(), "truncated at {n}");
        }
        // Every single-byte change either fails the walk or still decodes
        // as postcard reads it: the walk never accepts what postcard refuses.
        for i in 0..bytes.len() {
            for x in [0x80u8, 0xff, 0x01] {
                let mut d = bytes.clone();
                d[i] ^= x;
                let by_postcard = postcard::take_from_bytes::<ObjectState>(&d).is_ok();
                if let Ok((id, s, _)) = skim(d.clone()) {
                    assert!(
                        by_postcard,
                        "the walk accepted what postcard refuses at {i}"
                    );
                    let (decoded, _) = postcard::take_from_bytes::<ObjectState>(&d).unwrap();
                    assert_eq!(s.decode(id), decoded);
                }
            }
        }
        // Too deep.
        let mut v = Value::Null;
        for _ in 0..=MAX_VALUE_DEPTH {
            v = Value::List(vec![v]);
        }
        let deep = ObjectState {
            fields: BTreeMap::from([("d".into(), v)]),
            ..state
        };
        assert_eq!(
            skim(postcard::to_stdvec(&deep).unwrap()).unwrap_err().what,
            "a value nests too deep"
        );
    }

    #[test]
    fn lengths_are_written_as_postcard_does() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 30] {
            let mut out = Vec::new();
            write_len(n, &mut out);
            assert_eq!(out, postcard::to_stdvec(&n).unwrap(), "{n}");
        }
        // A length beyond the bytes left is refused before anything is read.
        let mut r = Reader::new(&[0x80, 0x01]);
        assert_eq!(r.len().unwrap_err().what, "length out of range");
    }
}
