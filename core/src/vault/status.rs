//! The vault's part that tells apps how their spaces are connected: the
//! `space.status` answer and the `space_status` events that follow it, so
//! that an app can show peers online and the last sync — or say plainly
//! that nothing syncs (no vault page open, offline) instead of stalling
//! silently.
//!
//! A connection watches a space from its first `space.status` call until
//! it disconnects. After every input the vault compares each watched
//! space's status with the one the connection was last told and pushes
//! the new one when it differs: peers, being online, being able to
//! connect — and the last time a peer was heard, at most once a second.

use super::apps::ConnKind;
use super::machine::ConnId;
use super::Vault;
use crate::data::SpaceId;
use crate::rpc::{Event, SpaceStatus, VaultMessage};

/// The least time between two events that differ only in `synced_at`.
const SYNCED_AT_STEP_MS: f64 = 1_000.0;

/// Whether `now` is news to a connection that was told `told`.
fn is_news(told: &SpaceStatus, now: &SpaceStatus) -> bool {
    if told.peers != now.peers || told.online != now.online || told.can_connect != now.can_connect {
        return true;
    }
    match (told.synced_at, now.synced_at) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => b - a >= SYNCED_AT_STEP_MS,
        _ => false,
    }
}

impl Vault {
    /// How `space` is connected now.
    pub(super) fn space_status(&self, space: &SpaceId) -> SpaceStatus {
        let online = self.signal_is_up();
        SpaceStatus {
            peers: self.peers.syncing(space) as u32,
            synced_at: self.peers.heard.get(space).map(|t| *t as f64),
            online,
            can_connect: online && self.can_dial(),
        }
    }

    /// Pushes a `space_status` event to each connection watching a space
    /// whose status changed since it was last told. Runs after every input.
    pub(super) fn push_statuses(&mut self) {
        let watched: Vec<(ConnId, SpaceId)> = self
            .apps
            .conns
            .iter()
            .flat_map(|(conn, c)| c.watching.keys().map(move |space| (*conn, *space)))
            .collect();
        for (conn, space) in watched {
            let now = self.space_status(&space);
            let Some(c) = self.apps.get_mut(conn) else {
                continue;
            };
            // Only while the space stays granted (and held).
            let allowed = match &c.kind {
                ConnKind::App { origin } => {
                    self.grants.allows(origin, &space) && self.spaces.contains(&space)
                }
                ConnKind::Admin => false,
            };
            if !allowed {
                c.watching.remove(&space);
                continue;
            }
            let Some(told) = c.watching.get_mut(&space) else {
                continue;
            };
            if !is_news(told, &now) {
                continue;
            }
            *told = now.clone();
            self.send(
                conn,
                VaultMessage::Event {
                    subscription: None,
                    event: Event::SpaceStatus {
                        space: space.to_string(),
                        status: now,
                    },
                },
            );
        }
    }
}
