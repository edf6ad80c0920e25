//! What one app may keep in the vault: a quota per origin.
//!
//! Every app shares the browser's one storage quota for the vault's origin;
//! without a share of its own, one app (or a hostile site the person once
//! allowed) could fill it and every other app's writes would fail. So the
//! spaces an origin created (`SpaceRecord::created_by`) together may hold at
//! most [`VaultConfig::origin_quota`](super::VaultConfig::origin_quota)
//! bytes in storage. Over it, that origin may create no space, and no app
//! may grow one of its spaces (create, update, batch, splice, set a
//! property) — `store.quota_exceeded`, with `details.scope = "site"`, the
//! site, and the bytes used and allowed. Deletes stay allowed (they are
//! small, and how a person tidies up). The spaces a person made or joined
//! (no creator app) count against no site.
//!
//! What counts is the space's chunks in storage as of its last completed
//! save (`Space::stored_bytes`): a space that is open knows it exactly; one
//! that is not counts its record's `stored_bytes`, which a flush updates
//! once the size moved by [`RECORD_STEP`] (so it lags by at most that). A
//! call is checked before it runs, so one call may end over the quota by
//! its own size (at most a message, 4 MiB) — the next one is refused.

use super::spaces::SlotState;
use super::Vault;
use crate::data::SpaceId;
use crate::rpc::{Request, RpcError};
use crate::store::StoreError;

/// A space's recorded size is written again once it is this far off.
pub(super) const RECORD_STEP: u64 = 64 * 1024;

impl Vault {
    /// Bytes the spaces `origin` created hold in storage.
    pub(super) fn origin_usage(&self, origin: &str) -> u64 {
        self.spaces
            .slots
            .iter()
            .filter(|(_, slot)| slot.record.created_by.as_deref() == Some(origin))
            .map(|(_, slot)| match &slot.state {
                SlotState::Open(replica) | SlotState::Reading { replica, .. } => {
                    replica.space().stored_bytes()
                }
                _ => slot.record.stored_bytes,
            })
            .sum()
    }

    /// Refuses `method` of `origin` when it would grow the spaces of a site
    /// that is over its quota: a new space of `origin`'s own, or a write to
    /// a space an app created.
    pub(super) fn check_quota(&self, origin: &str, method: &Request) -> Result<(), RpcError> {
        let Some(limit) = self.config.origin_quota else {
            return Ok(());
        };
        let payer: Option<&str> = match method {
            Request::CreateSpace { .. } => Some(origin),
            Request::CreateObject { space, .. }
            | Request::UpdateObject { space, .. }
            | Request::Batch { space, .. }
            | Request::SpliceText { space, .. }
            | Request::SetSpaceProperty { space, .. } => space
                .parse::<SpaceId>()
                .ok()
                .and_then(|id| self.spaces.slots.get(&id))
                .and_then(|slot| slot.record.created_by.as_deref()),
            _ => None,
        };
        let Some(payer) = payer else {
            return Ok(());
        };
        let used = self.origin_usage(payer);
        if used < limit {
            return Ok(());
        }
        let whose = if payer == origin {
            "this site's spaces".to_owned()
        } else {
            format!("the spaces of {payer}, which made this one,")
        };
        let message = format!(
            "{whose} hold {} of the {} one site may keep in the vault (its share of the browser's storage), so they cannot grow; reads and deletes still work. Keep large data (files, media) outside the vault",
            mib(used),
            mib(limit)
        );
        Err(RpcError::new(StoreError::QUOTA_EXCEEDED, message)
            .with_detail("scope", "site")
            .with_detail("site", payer)
            .with_detail("used", used.to_string())
            .with_detail("limit", limit.to_string()))
    }

    /// While a flush is made: `id` will hold `after` bytes once it is
    /// done; its record gets that size when it moved by [`RECORD_STEP`]
    /// (written with this flush, since the record then differs from the
    /// stored one).
    pub(super) fn record_size(&mut self, id: &SpaceId, after: u64) {
        if let Some(slot) = self.spaces.slots.get_mut(id) {
            if after.abs_diff(slot.record.stored_bytes) >= RECORD_STEP {
                slot.record.stored_bytes = after;
            }
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
