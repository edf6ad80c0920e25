//! ECHO's WebRTC driver, run by the one vault page that holds the Web Lock
//! `echo-net-host` (docs/browser-vault.md, section 7).
//!
//! `RTCPeerConnection` exists only in pages (not in workers, and a data
//! channel cannot be moved to a SharedWorker in Chromium), so the engine in
//! the worker decides whom to connect to and this driver only drives the
//! connections and moves bytes:
//!
//! ```text
//! engine ─{t:"dial", dial, peer, topic}─► NetHost: offer
//!   ─{t:"signal_send", to, topic, payload:{kind:"offer", sdp}}─► engine ─► signaling
//!   then each candidate as found (trickle ICE): payload {kind:"candidate", side, candidate}
//! signaling ─► engine ─{t:"signal", from, topic, payload}─► NetHost: answer (and its
//!   candidates) / candidates added
//! data channel open ─► {t:"link", dial|null, binding, port} (port transferred)
//!   port ◄─► data channel: ArrayBuffers both ways (transferred, not copied);
//!   "close" from the engine closes the channel; "closed" tells the engine
//! ```
//!
//! The channel binding the engine authenticates peers over is
//! [`channel_binding`] of the two DTLS certificate fingerprints in the
//! local and remote descriptions: a signaling server that swaps
//! descriptions makes the two sides compute different bindings, and the
//! peer protocol's authentication fails.
//!
//! Backpressure: the engine sends within the peer protocol's credits; this
//! driver queues while the channel's `bufferedAmount` is over
//! [`HIGH_WATER`] and drains on `bufferedamountlow`.

#[cfg(target_arch = "wasm32")]
mod host;

#[cfg(target_arch = "wasm32")]
pub use host::NetHost;

use sha2::{Digest, Sha256};

/// Above this many buffered bytes the driver queues instead of sending.
pub const HIGH_WATER: u32 = 1024 * 1024;
/// `bufferedamountlow` fires below this.
pub const LOW_WATER: u32 = 256 * 1024;

/// The `a=fingerprint:` value of a session description (algorithm and hex),
/// normalised to lower case.
pub fn sdp_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("a=fingerprint:"))
        .map(|fp| fp.trim().to_ascii_lowercase())
}

/// The binding both ends compute from their descriptions: SHA-256 over a
/// label and the two fingerprints in a fixed (sorted) order, as 64 hex
/// digits. `None` when a description has no fingerprint.
pub fn channel_binding(local_sdp: &str, remote_sdp: &str) -> Option<String> {
    let mut fps = [sdp_fingerprint(local_sdp)?, sdp_fingerprint(remote_sdp)?];
    fps.sort();
    let mut h = Sha256::new();
    h.update(b"echo/webrtc-binding/v1");
    for fp in &fps {
        h.update((fp.len() as u32).to_be_bytes());
        h.update(fp.as_bytes());
    }
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// An invite link as a QR code, SVG text (dark modules on a light
/// background, 4 modules of quiet zone), or `None` when it is too long for
/// one.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "v=0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\n";
    const B: &str = "v=0\r\na=fingerprint:sha-256 11:22:33\r\n";
    const M: &str = "v=0\r\na=fingerprint:sha-256 66:66:66\r\n";

    #[test]
    fn both_ends_compute_the_same_binding() {
        assert_eq!(channel_binding(A, B), channel_binding(B, A));
        assert_eq!(channel_binding(A, B).map(|b| b.len()), Some(64));
    }

    #[test]
    fn a_swapped_description_changes_the_binding() {
        // A relay that hands each side its own certificate's description
        // in place of the other's: each computes a different binding.
        assert_ne!(channel_binding(A, M), channel_binding(B, M));
        assert_ne!(channel_binding(A, B), channel_binding(A, M));
    }

    #[test]
    fn an_invite_link_fits_a_qr_code() {
        let link = format!(
            "http://vault.localhost:8600/invite.html#echo-invite-{}",
            "a".repeat(100)
        );
        let svg = qr_svg(&link).expect("fits");
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{}",
            &svg[..40]
        );
        assert!(svg.contains("<path") || svg.contains("<rect"));
        assert_eq!(qr_svg(&"x".repeat(5000)), None);
    }

    #[test]
    fn a_description_without_a_fingerprint_has_no_binding() {
        assert_eq!(channel_binding("v=0\r\n", B), None);
        assert_eq!(sdp_fingerprint(A).as_deref(), Some("sha-256 aa:bb:cc"));
    }
}
