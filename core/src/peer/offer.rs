//! Space offers: how two authenticated peers find the spaces they share
//! without telling each other about any other space.
//!
//! A side offers a space only to a peer its control log names as a
//! member (an authorized device of a member), and offers it as a tag:
//!
//! ```text
//! tag = HMAC-SHA256(key = space id (16 bytes),
//!                   "echo/space-offer/v1\0" ++ offerer's nonce ++ receiver's nonce)
//! ```
//!
//! Only a holder of the space id can compute the tag, and the nonces make
//! it new on every connection, so tags cannot be linked across sessions or
//! matched by anyone who does not already hold the space. The receiver
//! computes the tag of each space it holds and accepts the matches; a tag
//! it cannot match stays unanswered, so the offerer learns nothing either.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::data::SpaceId;

const TAG: &[u8] = b"echo/space-offer/v1\0";

/// A space, as offered on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferTag(pub [u8; 32]);

pub(crate) fn offer_tag(
    space: &SpaceId,
    offerer_nonce: &[u8; 32],
    receiver_nonce: &[u8; 32],
) -> OfferTag {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(space.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts 16-byte keys"));
    mac.update(TAG);
    mac.update(offerer_nonce);
    mac.update(receiver_nonce);
    OfferTag(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_space_nonces_and_direction() {
        let (s, t) = (SpaceId::from_bytes([1; 16]), SpaceId::from_bytes([2; 16]));
        let (a, b) = ([3; 32], [4; 32]);
        assert_eq!(offer_tag(&s, &a, &b), offer_tag(&s, &a, &b));
        assert_ne!(offer_tag(&s, &a, &b), offer_tag(&t, &a, &b));
        assert_ne!(offer_tag(&s, &a, &b), offer_tag(&s, &b, &a));
        assert_ne!(offer_tag(&s, &a, &b), offer_tag(&s, &a, &[5; 32]));
    }
}
