//! The vault's part that owns the user's decisions about apps: per origin,
//! allowed or denied, and the spaces it may see — as decided, and as
//! stored.
//!
//! **Fail closed**: a flush that fails puts back what is stored only where
//! that gives less access. What the user took away (a revocation, a denial,
//! a narrower set of spaces) holds in memory and is written again until it
//! is stored; what the user gave (an allow, more spaces) is undone with the
//! failed flush, whose answer said so.

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

    /// Whether a decision not yet stored takes away access that storage
    /// still gives (a revocation, a denial, fewer spaces).
    pub fn restricts(&self) -> bool {
        self.saved.iter().any(|(origin, saved)| {
            saved.allowed
                && self
                    .current
                    .get(origin)
                    .is_none_or(|now| !now.allowed || !saved.spaces.is_subset(&now.spaces))
        })
    }

    /// A failed flush: each origin gets the lesser of what is stored and
    /// what was decided (see the module docs).
    pub fn revert(&mut self) {
        self.current = self.restricted();
    }

    /// What storage holds, less what was taken away since: the grants a
    /// flush may store before the decisions that gave more are answered.
    pub fn restricted(&self) -> BTreeMap<String, GrantRecord> {
        let mut back = BTreeMap::new();
        for (origin, saved) in &self.saved {
            // Absent now: revoked, and revoked it stays.
            if let Some(now) = self.current.get(origin) {
                back.insert(origin.clone(), lesser(saved, now));
            }
        }
        for (origin, now) in &self.current {
            if !self.saved.contains_key(origin) && !now.allowed {
                // A new denial is a restriction too.
                back.insert(origin.clone(), now.clone());
            }
        }
        back
    }
}

/// The grant that allows only what both allow.
fn lesser(a: &GrantRecord, b: &GrantRecord) -> GrantRecord {
    let allowed = a.allowed && b.allowed;
    GrantRecord {
        allowed,
        spaces: if allowed {
            a.spaces.intersection(&b.spaces).copied().collect()
        } else {
            BTreeSet::new()
        },
        decided_at: a.decided_at.max(b.decided_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(allowed: bool, spaces: &[SpaceId]) -> GrantRecord {
        GrantRecord {
            allowed,
            spaces: spaces.iter().copied().collect(),
            decided_at: 1.0,
        }
    }

    #[test]
    fn a_failed_flush_keeps_what_was_taken_away_and_undoes_what_was_given() {
        let (s1, s2) = (SpaceId::from_bytes([1; 16]), SpaceId::from_bytes([2; 16]));
        let mut g = Grants::from_stored(BTreeMap::from([
            ("https://revoked".to_string(), grant(true, &[s1])),
            ("https://narrowed".to_string(), grant(true, &[s1, s2])),
            ("https://widened".to_string(), grant(true, &[s1])),
            ("https://denied".to_string(), grant(true, &[s1])),
            ("https://allowed".to_string(), grant(false, &[])),
        ]));
        g.current.remove("https://revoked");
        g.current
            .insert("https://narrowed".into(), grant(true, &[s2]));
        g.current
            .insert("https://widened".into(), grant(true, &[s1, s2]));
        g.current.insert("https://denied".into(), grant(false, &[]));
        g.current
            .insert("https://allowed".into(), grant(true, &[s1]));
        g.current.insert("https://new".into(), grant(true, &[s1]));
        g.current
            .insert("https://new-denial".into(), grant(false, &[]));
        g.revert();
        assert_eq!(g.consent_of("https://revoked"), Consent::Required);
        assert_eq!(g.spaces_of("https://narrowed"), BTreeSet::from([s2]));
        assert_eq!(g.spaces_of("https://widened"), BTreeSet::from([s1]));
        assert_eq!(g.consent_of("https://denied"), Consent::Denied);
        assert_eq!(g.consent_of("https://allowed"), Consent::Denied);
        assert_eq!(g.consent_of("https://new"), Consent::Required);
        assert_eq!(g.consent_of("https://new-denial"), Consent::Denied);
        // What holds in memory but not in storage is written again.
        assert!(g.changed());
        assert!(g.restricts());
        g.saved = g.current.clone();
        assert!(!g.restricts());
        // Giving more is no restriction.
        g.current
            .insert("https://widened".into(), grant(true, &[s1, s2]));
        assert!(g.changed() && !g.restricts());
    }
}
