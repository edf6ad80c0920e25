//! Frames: how messages travel over the byte pipe.
//!
//! ```text
//! frame = length (u16 le, payload bytes) ++ channel (u16 le) ++ flags (u8) ++ payload
//! flags = bit 0: FIN, the last frame of a message; other bits must be 0
//! ```
//!
//! A frame is at most [`MAX_FRAME`] bytes (16 KiB) with its header. A
//! message is the payloads of one channel's frames up to and including a
//! FIN frame; frames of different channels interleave. The decoder keeps at
//! most one partial frame, so what it buffers is bounded whatever a peer
//! sends.

use super::error::CloseCode;

/// The largest frame, header included.
pub const MAX_FRAME: usize = 16 * 1024;
/// Header bytes of a frame.
pub const HEADER: usize = 5;
/// The largest payload of one frame.
pub const MAX_PAYLOAD: usize = MAX_FRAME - HEADER;

const FIN: u8 = 1;

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub channel: u16,
    pub fin: bool,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame took on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER + self.payload.len()
    }
}

/// Appends the frames of one message on `channel` to `out`.
pub fn encode_message(channel: u16, message: &[u8], out: &mut Vec<u8>) {
    let mut chunks = message.chunks(MAX_PAYLOAD).peekable();
    if chunks.peek().is_none() {
        push_frame(channel, true, &[], out);
        return;
    }
    while let Some(chunk) = chunks.next() {
        push_frame(channel, chunks.peek().is_none(), chunk, out);
    }
}

/// The wire size of a message of `len` bytes, framed.
pub fn framed_len(len: usize) -> usize {
    len + HEADER * len.div_ceil(MAX_PAYLOAD).max(1)
}

fn push_frame(channel: u16, fin: bool, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(&channel.to_le_bytes());
    out.push(if fin { FIN } else { 0 });
    out.extend_from_slice(payload);
}

/// Cuts a byte stream into frames. Feed it the bytes as they arrive, in
/// any pieces; it hands out complete frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Bytes held back as the start of an incomplete frame.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Decodes the frames in `bytes` (after what was buffered), calling `f`
    /// for each. Stops at the first bad frame or when `f` fails.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        mut f: impl FnMut(Frame<'_>) -> Result<(), CloseCode>,
    ) -> Result<(), CloseCode> {
        // Complete the buffered partial frame first.
        if !self.buf.is_empty() {
            let need = match frame_len(&self.buf)? {
                Some(n) => n,
                None => {
                    let take = (HEADER - self.buf.len()).min(bytes.len());
                    self.buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    match frame_len(&self.buf)? {
                        Some(n) => n,
                        None => return Ok(()),
                    }
                }
            };
            let take = (need - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() < need {
                return Ok(());
            }
            let buf = std::mem::take(&mut self.buf);
            f(parse(&buf))?;
        }
        // Whole frames straight from the input; keep the tail.
        loop {
            match frame_len(bytes)? {
                Some(n) if bytes.len() >= n => {
                    f(parse(&bytes[..n]))?;
                    bytes = &bytes[n..];
                }
                _ => {
                    self.buf.extend_from_slice(bytes);
                    return Ok(());
                }
            }
        }
    }
}

/// The length of the frame starting at `bytes`, once its header is there.
fn frame_len(bytes: &[u8]) -> Result<Option<usize>, CloseCode> {
    if bytes.len() < HEADER {
        return Ok(None);
    }
    let len = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
    if len > MAX_PAYLOAD {
        return Err(CloseCode::FrameTooLarge);
    }
    if bytes[4] & !FIN != 0 {
        return Err(CloseCode::Protocol);
    }
    Ok(Some(HEADER + len))
}

fn parse(bytes: &[u8]) -> Frame<'_> {
    Frame {
        channel: u16::from_le_bytes([bytes[2], bytes[3]]),
        fin: bytes[4] & FIN != 0,
        payload: &bytes[HEADER..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(stream: &[u8], piece: usize) -> Result<Vec<(u16, bool, Vec<u8>)>, CloseCode> {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for chunk in stream.chunks(piece.max(1)) {
            d.feed(chunk, |f| {
                out.push((f.channel, f.fin, f.payload.to_vec()));
                Ok(())
            })?;
        }
        assert_eq!(d.buffered(), 0, "no partial frame left");
        Ok(out)
    }

    #[test]
    fn messages_round_trip_in_any_pieces() {
        let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut stream = Vec::new();
        encode_message(3, b"hello", &mut stream);
        encode_message(0, &[], &mut stream);
        encode_message(7, &big, &mut stream);
        assert_eq!(
            stream.len(),
            framed_len(5) + framed_len(0) + framed_len(big.len())
        );
        for piece in [1, 2, 5, 7, 1000, 16_384, 100_000] {
            let frames = decode_all(&stream, piece).unwrap();
            assert_eq!(frames[0], (3, true, b"hello".to_vec()));
            assert_eq!(frames[1], (0, true, vec![]));
            let body: Vec<u8> = frames[2..].iter().flat_map(|f| f.2.clone()).collect();
            assert_eq!(body, big);
            assert_eq!(frames.len(), 2 + big.len().div_ceil(MAX_PAYLOAD));
            assert!(frames[2..frames.len() - 1].iter().all(|f| !f.1));
            assert!(frames.last().unwrap().1);
        }
    }

    #[test]
    fn an_oversized_length_or_unknown_flag_is_refused() {
        let mut bad = Vec::new();
        bad.extend_from_slice(&(MAX_PAYLOAD as u16 + 1).to_le_bytes());
        bad.extend_from_slice(&[0, 0, 1]);
        assert_eq!(decode_all(&bad, 3), Err(CloseCode::FrameTooLarge));
        let flags = [1, 0, 0, 0, 0x80, 9];
        assert_eq!(decode_all(&flags, 1), Err(CloseCode::Protocol));
    }
}
