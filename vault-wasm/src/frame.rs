//! Frames: several messages in one port message.
//!
//! A port message costs the browser a task on each side (a `MessageEvent`,
//! a copy of the text between threads, a call into wasm), about as much as
//! a small call costs the engine. An app that issues many calls at once —
//! a loop of creates, a replayed editing session — therefore sends them as
//! one **frame**: a JSON array of messages, `[m1, m2, …]`, in the order the
//! calls were made. The vault answers in frames too. A message on its own
//! (a JSON object) is a frame of one. The frame as a whole is what the size
//! limit ([`MAX_MESSAGE_BYTES`](echo_core::rpc::MAX_MESSAGE_BYTES)) applies to.
//!
//! Each message in a frame is decoded on its own ([`split_frame`] only cuts
//! the text), so a bad message gets its typed error for its own call and the
//! rest of the frame goes through. A frame that is not a JSON array of
//! values is one bad message. A frame may carry at most
//! [`MAX_FRAME_MESSAGES`](echo_core::rpc::MAX_FRAME_MESSAGES): cutting
//! stops at the first message over it, and the frame as a whole is one
//! bad message (so a frame of two million `0,` costs one answer, not two
//! million).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A frame that carries more messages than allowed (how many were seen
/// before cutting stopped: one more than the limit).
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyMessages(pub usize);

/// Cuts a port message into the texts of the messages it carries: the
/// elements of a JSON array, or the whole text when it is not an array.
/// More than `max` elements is an error, found without collecting them.
///
/// A text starting with `[` that does not parse as an array is returned
/// whole, so decoding it reports the JSON error.
pub fn split_frame(text: &str, max: usize) -> Result<Vec<&str>, TooManyMessages> {
    if !text.trim_start().starts_with('[') {
        return Ok(vec![text]);
    }
    let over = Cell::new(false);
    let seed = Capped { max, over: &over };
    let mut de = serde_json::Deserializer::from_str(text);
    match seed
        .deserialize(&mut de)
        .and_then(|items| de.end().map(|()| items))
    {
        Ok(items) => Ok(items.into_iter().map(RawValue::get).collect()),
        Err(_) if over.get() => Err(TooManyMessages(max + 1)),
        Err(_) => Ok(vec![text]),
    }
}

/// Reads a JSON array's elements as raw texts, stopping with an error at
/// the element after the `max`th.
struct Capped<'c> {
    max: usize,
    over: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Capped<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Capped<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON array of at most {} messages", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if out.len() == self.max {
                self.over.set(true);
                return Err(A::Error::custom("too many messages in one frame"));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// Packs encoded messages (JSON texts) into frames of at most `max_bytes`
/// each (a message longer than that on its own forms a frame by itself).
/// One message is sent bare, not as an array of one.
pub fn pack_frames(messages: &[String], max_bytes: usize) -> Vec<String> {
    let mut frames = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    // The open frame's length as an array: brackets and commas included.
    let mut open_bytes = 1;
    let mut close = |open: &mut Vec<&str>| {
        match open.as_slice() {
            [] => {}
            [one] => frames.push((*one).to_owned()),
            many => frames.push(format!("[{}]", many.join(","))),
        }
        open.clear();
    };
    for m in messages {
        if !open.is_empty() && open_bytes + m.len() + 1 > max_bytes {
            close(&mut open);
            open_bytes = 1;
        }
        open.push(m);
        open_bytes += m.len() + 1;
    }
    close(&mut open);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::rpc::{decode_client_message, ClientMessage, Probe, Undecodable};

    fn decode(text: &str) -> Result<ClientMessage, Undecodable> {
        decode_client_message(serde_json::from_str::<ClientMessage>(text), || {
            serde_json::from_str::<Probe>(text).ok()
        })
    }

    const MAX: usize = echo_core::rpc::MAX_FRAME_MESSAGES;

    #[test]
    fn a_bare_message_is_a_frame_of_one() {
        let text = r#"{"cancel":{"id":3}}"#;
        assert_eq!(split_frame(text, MAX).unwrap(), vec![text]);
    }

    #[test]
    fn a_frame_over_the_message_cap_is_refused_whole() {
        let at_cap = format!("[{}]", ["0"; 5].join(","));
        assert_eq!(split_frame(&at_cap, 5).unwrap().len(), 5);
        let over = format!("[{}]", ["0"; 6].join(","));
        assert_eq!(split_frame(&over, 5), Err(TooManyMessages(6)));
        // The flood of the issue: 4 MiB of `0,` — stopped at the cap.
        let flood = format!("[{}0]", "0,".repeat(2 * 1024 * 1024 - 1));
        assert_eq!(split_frame(&flood, MAX), Err(TooManyMessages(MAX + 1)));
        // A broken array past the cap is still too many, not a parse error.
        let broken = format!("[{},", ["0"; 6].join(","));
        assert_eq!(split_frame(&broken, 5), Err(TooManyMessages(6)));
    }

    #[test]
    fn an_array_is_cut_into_its_messages_in_order() {
        let text = r#" [{"cancel":{"id":1}}, {"request":{"id":2,"method":{"ping":{}}}} ,{"cancel":{"id":3}}]"#;
        let parts = split_frame(text, MAX).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode(parts[0]).unwrap(), ClientMessage::Cancel { id: 1 });
        assert!(matches!(
            decode(parts[1]).unwrap(),
            ClientMessage::Request { id: 2, .. }
        ));
        assert_eq!(decode(parts[2]).unwrap(), ClientMessage::Cancel { id: 3 });
        assert!(split_frame("[]", MAX).unwrap().is_empty());
    }

    #[test]
    fn a_bad_message_in_a_frame_fails_alone_with_its_id() {
        let text = r#"[{"request":{"id":7,"method":{"nope":{}}}},{"cancel":{"id":8}},5]"#;
        let parts = split_frame(text, MAX).unwrap();
        assert_eq!(parts.len(), 3);
        let bad = decode(parts[0]).unwrap_err();
        assert_eq!(bad.id, Some(7));
        assert_eq!(bad.error.code, "rpc.unknown_method");
        assert_eq!(decode(parts[1]).unwrap(), ClientMessage::Cancel { id: 8 });
        assert_eq!(decode(parts[2]).unwrap_err().error.code, "rpc.bad_request");
    }

    #[test]
    fn a_broken_array_is_one_bad_message() {
        for text in ["[{\"cancel\":{\"id\":1}}", "[1,,2]", "[ nope"] {
            assert_eq!(split_frame(text, MAX).unwrap(), vec![text]);
            assert_eq!(decode(text).unwrap_err().error.code, "rpc.bad_request");
        }
    }

    #[test]
    fn packing_keeps_order_and_size_and_round_trips() {
        let messages: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"cancel":{{"id":{i}}}}}"#))
            .collect();
        let frames = pack_frames(&messages, 200);
        assert!(frames.len() > 1);
        let mut back = Vec::new();
        for f in &frames {
            assert!(f.len() <= 200, "{} bytes", f.len());
            back.extend(split_frame(f, MAX).unwrap().into_iter().map(str::to_owned));
        }
        assert_eq!(back, messages);
        assert_eq!(pack_frames(&messages[..1], 200), vec![messages[0].clone()]);
        assert!(pack_frames(&[], 200).is_empty());
        // A message over the limit travels alone.
        let big = vec!["x".repeat(300), messages[0].clone()];
        assert_eq!(pack_frames(&big, 200), big);
    }
}
