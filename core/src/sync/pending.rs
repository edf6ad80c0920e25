//! Bundles that arrived before what they need: credentials their control
//! heads name, or changes their changes depend on. Bounded in count and
//! bytes, per signer and overall, and for a limited time, so one party
//! cannot fill the queue for everyone.
//!
//! - A signer has at most [`PendingLimits::per_signer_bundles`] bundles and
//!   [`PendingLimits::per_signer_bytes`] bytes waiting.
//! - Only *known* signers — devices the current control log authorizes for
//!   a member whose role writes — may use more than a quarter of the
//!   queue; keys a peer makes up share that quarter.
//! - A bundle that waited longer than [`PendingLimits::ttl_ms`] is dropped
//!   (a peer sends it again on the next sync, when its credentials or
//!   dependencies may be there).

use std::collections::VecDeque;

use automerge::ChangeHash;

use super::wire::WireBundle;
use crate::identity::{CredentialHash, DevicePublicKey, IdentityError};
use crate::peer::Millis;

/// What a waiting bundle waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    Credentials(Vec<CredentialHash>),
    /// `(shard, hash)` of changes its changes depend on.
    Changes(Vec<(u16, ChangeHash)>),
}

#[derive(Debug)]
pub(super) struct Waiting {
    pub bundle: WireBundle,
    pub wait: Wait,
    pub from: Option<DevicePublicKey>,
    known: bool,
    size: usize,
    at: Millis,
}

/// The bounds of the pending queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    pub max_bundles: usize,
    pub max_bytes: usize,
    pub per_signer_bundles: usize,
    pub per_signer_bytes: usize,
    pub ttl_ms: Millis,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            max_bundles: 4096,
            max_bytes: 64 << 20,
            per_signer_bundles: 1024,
            per_signer_bytes: 16 << 20,
            ttl_ms: 10 * 60 * 1000,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Pending {
    pub limits: PendingLimits,
    entries: VecDeque<Waiting>,
    bytes: usize,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains(&self, key: &[u8; 64]) -> bool {
        self.entries.iter().any(|w| w.bundle.header.key() == *key)
    }

    /// Queues a bundle; refused (dropped) when a bound is reached.
    pub fn push(
        &mut self,
        bundle: WireBundle,
        wait: Wait,
        from: Option<DevicePublicKey>,
        known: bool,
        now: Millis,
    ) -> Result<(), IdentityError> {
        let size = bundle.byte_len();
        let signer = bundle.header.signer;
        let (mut count, mut bytes, mut strangers) = (0, 0, 0);
        for w in &self.entries {
            if w.bundle.header.signer == signer {
                count += 1;
                bytes += w.size;
            }
            strangers += usize::from(!w.known);
        }
        let l = &self.limits;
        if self.entries.len() >= l.max_bundles
            || self.bytes + size > l.max_bytes
            || count >= l.per_signer_bundles
            || bytes + size > l.per_signer_bytes
            || (!known && strangers >= l.max_bundles.div_ceil(4))
        {
            return Err(IdentityError::PendingChangesFull {
                bundles: self.entries.len(),
                bytes: self.bytes,
            });
        }
        self.bytes += size;
        self.entries.push_back(Waiting {
            bundle,
            wait,
            from,
            known,
            size,
            at: now,
        });
        Ok(())
    }

    /// Takes out the bundles `ready` says can be tried again.
    pub fn take_ready(&mut self, mut ready: impl FnMut(&Wait) -> bool) -> Vec<Waiting> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.entries.len());
        for w in self.entries.drain(..) {
            if ready(&w.wait) {
                self.bytes -= w.size;
                out.push(w);
            } else {
                keep.push_back(w);
            }
        }
        self.entries = keep;
        out
    }

    /// Drops bundles that waited longer than the limit; returns how many.
    pub fn expire(&mut self, now: Millis) -> usize {
        let ttl = self.limits.ttl_ms;
        let before = self.entries.len();
        let mut dropped = 0;
        self.entries.retain(|w| {
            let keep = now.saturating_sub(w.at) < ttl;
            if !keep {
                dropped += w.size;
            }
            keep
        });
        self.bytes -= dropped;
        before - self.entries.len()
    }
}
