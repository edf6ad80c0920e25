//! A test mode: a relay that tampers with the WebRTC descriptions it
//! passes on, for the end-to-end test that shows such a relay gets no
//! space data through (`e2e/12-two-vaults.test.mjs`).
//!
//! Off unless the server starts with `--signal-test-tamper`; then
//! `POST /signal/test/tamper` with the body `on` or `off` switches it, and
//! while on, every relayed message holding an `a=fingerprint:` line has
//! the first hex digit of that fingerprint changed — what a relay that
//! swaps in its own DTLS certificate would have to do. Never enable it in
//! a deployment: it exists to be the attacker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const MARK: &str = "a=fingerprint:";

/// The switch and how many messages it changed.
#[derive(Debug, Default)]
pub struct Tamper {
    on: AtomicBool,
    changed: AtomicU64,
}

impl Tamper {
    pub fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// Messages changed so far.
    pub fn changed(&self) -> u64 {
        self.changed.load(Ordering::SeqCst)
    }

    /// `data` as the relay passes it on: changed when the switch is on and
    /// it holds a fingerprint.
    pub fn apply(&self, data: String) -> String {
        if !self.is_on() {
            return data;
        }
        match change_fingerprint(&data) {
            Some(changed) => {
                self.changed.fetch_add(1, Ordering::SeqCst);
                changed
            }
            None => data,
        }
    }
}

/// `text` with the first hex digit after its first `a=fingerprint:<algo> `
/// replaced by another, or `None` when it has no fingerprint.
fn change_fingerprint(text: &str) -> Option<String> {
    let start = text.find(MARK)? + MARK.len();
    let space = start + text[start..].find(' ')? + 1;
    let digit = text[space..]
        .chars()
        .next()
        .filter(char::is_ascii_hexdigit)?;
    let other = if digit == '0' { '1' } else { '0' };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..space]);
    out.push(other);
    out.push_str(&text[space + 1..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_fingerprint_changes_and_only_when_on() {
        let t = Tamper::default();
        let sdp = r#"w{"kind":"offer","sdp":"v=0\r\na=fingerprint:sha-256 AB:CD\r\n"}"#.to_string();
        assert_eq!(t.apply(sdp.clone()), sdp, "off: passed on as it is");
        t.set(true);
        let out = t.apply(sdp.clone());
        assert_eq!(out, sdp.replace("sha-256 AB", "sha-256 0B"));
        assert_eq!(t.apply("no description".into()), "no description");
        assert_eq!(t.changed(), 1);
        let zero = "a=fingerprint:sha-256 0F".to_string();
        assert_eq!(t.apply(zero), "a=fingerprint:sha-256 1F");
    }
}
