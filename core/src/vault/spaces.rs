//! The vault's part that owns the spaces it holds: which exist (the
//! records of `vault/spaces/`), which are open (a [`Replica`] in memory),
//! and which are being read from storage.
//!
//! A space is opened on demand — when a call of an app allowed to use it,
//! a listing, or a peer needs it — by asking the host to read its prefix;
//! until then only its record is in memory. That prefix holds everything
//! but the CRDT bytes of its documents, which are read next (the
//! documents' prefix, `model::documents_prefix`): meanwhile the space
//! answers reads of current state, and whatever needs a document (a
//! write, a read at earlier heads, a sync) waits. Its properties and this
//! device's role come from its documents and its control log, so a space
//! that is not open has neither: whoever needs them opens it.

use std::collections::BTreeMap;

use super::machine::ReadId;
use super::records::SpaceRecord;
use crate::data::SpaceId;
use crate::sync::Replica;

#[derive(Debug)]
pub(super) enum SlotState {
    Closed,
    /// Its prefix is being read.
    Opening(ReadId),
    /// Open for reads of current state; its documents' prefix is being
    /// read by `documents`.
    Reading {
        replica: Box<Replica>,
        documents: ReadId,
    },
    Open(Box<Replica>),
}

#[derive(Debug)]
pub(super) struct Slot {
    pub record: SpaceRecord,
    pub state: SlotState,
}

#[derive(Debug, Default)]
pub(super) struct Spaces {
    pub slots: BTreeMap<SpaceId, Slot>,
    /// The records as stored.
    pub saved: BTreeMap<SpaceId, SpaceRecord>,
}

impl Spaces {
    pub fn from_stored(stored: BTreeMap<SpaceId, SpaceRecord>) -> Self {
        Spaces {
            slots: stored
                .iter()
                .map(|(id, record)| {
                    (
                        *id,
                        Slot {
                            record: record.clone(),
                            state: SlotState::Closed,
                        },
                    )
                })
                .collect(),
            saved: stored,
        }
    }

    pub fn contains(&self, id: &SpaceId) -> bool {
        self.slots.contains_key(id)
    }

    pub fn ids(&self) -> Vec<SpaceId> {
        self.slots.keys().copied().collect()
    }

    pub fn is_open(&self, id: &SpaceId) -> bool {
        matches!(
            self.slots.get(id).map(|s| &s.state),
            Some(SlotState::Open(_))
        )
    }

    /// Whether its current state can be read (open, or its documents
    /// still being read).
    pub fn is_readable(&self, id: &SpaceId) -> bool {
        matches!(
            self.slots.get(id).map(|s| &s.state),
            Some(SlotState::Open(_) | SlotState::Reading { .. })
        )
    }

    /// A replica to read current state from: open, or with its documents
    /// still being read (see the module docs).
    pub fn readable(&mut self, id: &SpaceId) -> Option<&mut Replica> {
        match &mut self.slots.get_mut(id)?.state {
            SlotState::Open(r) | SlotState::Reading { replica: r, .. } => Some(r),
            _ => None,
        }
    }

    /// [`readable`](Self::readable), shared.
    pub fn readable_ref(&self, id: &SpaceId) -> Option<&Replica> {
        match &self.slots.get(id)?.state {
            SlotState::Open(r) | SlotState::Reading { replica: r, .. } => Some(r),
            _ => None,
        }
    }

    pub fn replica(&mut self, id: &SpaceId) -> Option<&mut Replica> {
        match &mut self.slots.get_mut(id)?.state {
            SlotState::Open(r) => Some(r),
            _ => None,
        }
    }

    pub fn replica_ref(&self, id: &SpaceId) -> Option<&Replica> {
        match &self.slots.get(id)?.state {
            SlotState::Open(r) => Some(r),
            _ => None,
        }
    }

    /// Open replicas.
    pub fn open(&mut self) -> impl Iterator<Item = (SpaceId, &mut Replica)> {
        self.slots
            .iter_mut()
            .filter_map(|(id, s)| match &mut s.state {
                SlotState::Open(r) => Some((*id, &mut **r)),
                _ => None,
            })
    }

    pub fn set_state(&mut self, id: &SpaceId, state: SlotState) {
        if let Some(s) = self.slots.get_mut(id) {
            s.state = state;
        }
    }

    /// The space being read by `read`.
    pub fn opening(&self, read: ReadId) -> Option<SpaceId> {
        self.slots
            .iter()
            .find(|(_, s)| matches!(s.state, SlotState::Opening(r) if r == read))
            .map(|(id, _)| *id)
    }

    /// The space whose documents are being read by `read`.
    pub fn reading_documents(&self, read: ReadId) -> Option<SpaceId> {
        self.slots
            .iter()
            .find(|(_, s)| matches!(s.state, SlotState::Reading { documents, .. } if documents == read))
            .map(|(id, _)| *id)
    }

    pub fn records_changed(&self) -> bool {
        self.slots.len() != self.saved.len()
            || self
                .slots
                .iter()
                .any(|(id, s)| self.saved.get(id) != Some(&s.record))
    }
}
