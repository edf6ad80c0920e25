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
//! values is one bad message.

use serde_json::value::RawValue;

/// Cuts a port message into the texts of the messages it carries: the
/// elements of a JSON array, or the whole text when it is not an array.
///
/// A text starting with `[` that does not parse as an array is returned
/// whole, so decoding it reports the JSON error.
pub fn split_frame(text: &str) -> Vec<&str> {
    if !text.trim_start().starts_with('[') {
        return vec![text];
    }
    match serde_json::from_str::<Vec<&RawValue>>(text) {
        Ok(items) => items.into_iter().map(RawValue::get).collect(),
        Err(_) => vec![text],
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

    #[test]
    fn a_bare_message_is_a_frame_of_one() {
        let text = r#"{"cancel":{"id":3}}"#;
        assert_eq!(split_frame(text), vec![text]);
    }

    #[test]
    fn an_array_is_cut_into_its_messages_in_order() {
        let text = r#" [{"cancel":{"id":1}}, {"request":{"id":2,"method":{"ping":{}}}} ,{"cancel":{"id":3}}]"#;
        let parts = split_frame(text);
        assert_eq!(parts.len(), 3);
        assert_eq!(decode(parts[0]).unwrap(), ClientMessage::Cancel { id: 1 });
        assert!(matches!(
            decode(parts[1]).unwrap(),
            ClientMessage::Request { id: 2, .. }
        ));
        assert_eq!(decode(parts[2]).unwrap(), ClientMessage::Cancel { id: 3 });
        assert!(split_frame("[]").is_empty());
    }

    #[test]
    fn a_bad_message_in_a_frame_fails_alone_with_its_id() {
        let text = r#"[{"request":{"id":7,"method":{"nope":{}}}},{"cancel":{"id":8}},5]"#;
        let parts = split_frame(text);
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
            assert_eq!(split_frame(text), vec![text]);
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
            back.extend(split_frame(f).into_iter().map(str::to_owned));
        }
        assert_eq!(back, messages);
        assert_eq!(pack_frames(&messages[..1], 200), vec![messages[0].clone()]);
        assert!(pack_frames(&[], 200).is_empty());
        // A message over the limit travels alone.
        let big = vec!["x".repeat(300), messages[0].clone()];
        assert_eq!(pack_frames(&big, 200), big);
    }
}
