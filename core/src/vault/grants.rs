//! The vault's part that owns the user's decisions about apps: per origin,
//! allowed or denied, and the spaces it may see — as decided, and as
//! stored (so a failed flush can put them back).

use std::collections::{BTreeMap, BTreeSet};

use super::records::GrantRecord;
use crate::data::SpaceId;
use crate::rpc::Consent;

#[derive(Debug, Default)]
pub(super) struct Grants {
    pub current: BTreeMap<String, GrantRecord>,
    pub saved: BTreeMap<String, GrantRecord>,
}

impl Grants {
    pub fn from_stored(stored: BTreeMap<String, GrantRecord>) -> Self {
        Grants {
            saved: stored.clone(),
            current: stored,
        }
    }

    pub fn consent_of(&self, origin: &str) -> Consent {
        match self.current.get(origin) {
            Some(g) if g.allowed => Consent::Granted,
            Some(_) => Consent::Denied,
            None => Consent::Required,
        }
    }

    /// Whether `origin` may use `space`.
    pub fn allows(&self, origin: &str, space: &SpaceId) -> bool {
        self.current
            .get(origin)
            .is_some_and(|g| g.allowed && g.spaces.contains(space))
    }

    /// The spaces `origin` may use.
    pub fn spaces_of(&self, origin: &str) -> BTreeSet<SpaceId> {
        self.current
            .get(origin)
            .filter(|g| g.allowed)
            .map(|g| g.spaces.clone())
            .unwrap_or_default()
    }

    pub fn changed(&self) -> bool {
        self.current != self.saved
    }

    /// A failed flush: back to what is stored.
    pub fn revert(&mut self) {
        self.current = self.saved.clone();
    }
}
