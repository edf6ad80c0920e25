//! The vault: the sans-IO service that apps and the vault's own pages talk
//! to. It owns the identity, the user's grants, the spaces (as
//! [`Replica`]s), the connections and their live queries, and decides
//! every call. The browser host (`echo-vault`) is its driver: it moves
//! decoded messages in and [`Output`]s out, opens spaces from storage when
//! asked, and writes [`Flush`]es to storage.
//!
//! | file | concept |
//! |---|---|
//! | `records.rs` | the vault's stored records (identity, grants, spaces) and their keys |
//! | `identity.rs` | the identity and device created on first run, sealed by the host |
//! | `api.rs` | API v1 calls of apps: consent and grant checks, then the engine |
//! | `admin.rs` | management calls of the vault's pages: consent decisions, revocation, listings |
//! | `flush.rs` | group commit: one storage batch for every write since the last one |
//!
//! # Driving it
//!
//! ```text
//! host                                         Vault
//!   list "vault/" → StoredVault::parse ──────►
//!   unseal device key (WebCrypto) ───────────► Vault::open            (first run: NewIdentity → Vault::create)
//!   port attached ───────────────────────────► connect_app(origin) / connect_admin()
//!   message decoded ─► space_to_open(&msg)? ─► list its prefix → open_space(id, entries)
//!                      ──────────────────────► app_message / admin_message
//!   ◄─ poll_output(): messages to send, connections to close
//!   prepare_flush() → write the batch ─► flush_done(ticket) | flush_failed(ticket, error)
//! ```
//!
//! **Coalescing**: writes of objects are staged and applied together — per
//! space one engine batch for every write call since the last commit
//! (`commit_staged`; any other call, and every flush, commits first, so
//! reads see all writes before them).
//!
//! **Durability**: a call that writes is answered only after the flush
//! holding its write completed (`flush_done` releases the answers). Writes
//! made while a flush is in flight go into the next one, so any number of
//! concurrent calls share one storage transaction. A failed flush answers
//! each of its calls with the storage error and reverts what they did:
//! the spaces they touched are reopened from storage (`spaces_to_reload`),
//! grants and records return to their stored values. Reads see writes at
//! once (before they are durable), as every writer in one process does.
//!
//! **Origins**: an app connection carries the origin the shell tagged it
//! with; nothing in a message can change it. An origin the user has not
//! allowed gets `rpc.not_authorized` for everything but `ping`; an allowed
//! one sees only the spaces granted to it (others answer
//! `rpc.no_such_space`, like spaces that do not exist).

mod admin;
mod api;
mod error;
mod flush;
mod identity;
mod records;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use error::VaultError;
pub use flush::Flush;
pub use identity::NewIdentity;
pub use records::{StoredVault, PREFIX};

use crate::data::SpaceId;
use crate::identity::{DeviceCertificate, DeviceKey, IdentityPublicKey};
use crate::model::space_prefix;
use crate::query::{Query, SubscriptionId};
use crate::rpc::{AdminReply, AdminResponse, Consent, Response, VaultMessage};
use crate::store::CompactionPolicy;
use crate::sync::Replica;
use records::{GrantRecord, IdentityRecord, SpaceRecord};

/// Names a connection within one [`Vault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

/// Something for the host to do.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Send to an app connection.
    App { conn: ConnId, message: VaultMessage },
    /// Send to an admin connection.
    Admin { conn: ConnId, message: AdminReply },
    /// Close the connection's port (after sending what came before).
    Close { conn: ConnId },
}

#[derive(Debug)]
enum ConnKind {
    App { origin: String },
    Admin,
}

#[derive(Debug)]
struct Conn {
    kind: ConnKind,
    /// The negotiated API version (app connections, after `hello`).
    version: Option<u32>,
    /// Call ids answered only once durable.
    awaiting: BTreeSet<u32>,
    subscriptions: BTreeSet<u32>,
}

#[derive(Debug)]
struct Subscription {
    conn: ConnId,
    space: SpaceId,
    inner: SubscriptionId,
    query: Query,
    resolve: bool,
    /// Set when its space was dropped after a failed flush: the result the
    /// app last saw, to diff against once the space is open again.
    stale: Option<Vec<crate::data::ObjectId>>,
}

struct SpaceSlot {
    record: SpaceRecord,
    replica: Option<Replica>,
}

/// An answer waiting for its write to be durable.
#[derive(Debug)]
enum Held {
    App {
        conn: ConnId,
        id: u32,
        response: Response,
    },
    Admin {
        conn: ConnId,
        id: u32,
        response: AdminResponse,
    },
}

/// The vault service. See the module docs.
pub struct Vault {
    identity: IdentityPublicKey,
    device: DeviceKey,
    certificate: DeviceCertificate,
    identity_record: IdentityRecord,
    identity_unsaved: bool,
    grants: BTreeMap<String, GrantRecord>,
    saved_grants: BTreeMap<String, GrantRecord>,
    spaces: BTreeMap<SpaceId, SpaceSlot>,
    saved_spaces: BTreeMap<SpaceId, SpaceRecord>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u32,
    subscriptions: BTreeMap<u32, Subscription>,
    next_subscription: u32,
    held: Vec<Held>,
    staged: Vec<api::Staged>,
    flush_in_flight: bool,
    reload: BTreeSet<SpaceId>,
    outputs: VecDeque<Output>,
    policy: CompactionPolicy,
    build: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("identity", &self.identity)
            .field("spaces", &self.spaces.len())
            .field("grants", &self.grants.len())
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Vault {
    fn assemble(
        device: DeviceKey,
        identity_record: IdentityRecord,
        identity_unsaved: bool,
        stored: StoredVault,
    ) -> Self {
        let certificate = identity_record.certificate.clone();
        Vault {
            identity: certificate.identity,
            device,
            certificate,
            identity_record,
            identity_unsaved,
            saved_grants: stored.grants.clone(),
            grants: stored.grants,
            saved_spaces: stored.spaces.clone(),
            spaces: stored
                .spaces
                .into_iter()
                .map(|(id, record)| {
                    (
                        id,
                        SpaceSlot {
                            record,
                            replica: None,
                        },
                    )
                })
                .collect(),
            conns: BTreeMap::new(),
            next_conn: 1,
            subscriptions: BTreeMap::new(),
            next_subscription: 1,
            held: Vec::new(),
            staged: Vec::new(),
            flush_in_flight: false,
            reload: BTreeSet::new(),
            outputs: VecDeque::new(),
            policy: CompactionPolicy::default(),
            build: format!("echo-vault {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Opens a vault whose identity exists: `device_plaintext` is the
    /// host's decryption of `stored.sealed_device()`.
    pub fn open(stored: StoredVault, device_plaintext: &[u8]) -> Result<Self, VaultError> {
        let record = stored
            .identity
            .clone()
            .ok_or_else(|| VaultError::CorruptRecord {
                key: records::identity_key().to_owned(),
                reason: "missing: the vault has no identity yet (create one)".into(),
            })?;
        let sealed = stored
            .sealed_device()?
            .ok_or_else(|| VaultError::CorruptRecord {
                key: records::identity_key().to_owned(),
                reason: "missing".into(),
            })?;
        let device = DeviceKey::from_unsealed(&sealed, device_plaintext)?;
        if device.public_key() != record.certificate.device || !record.certificate.is_valid() {
            return Err(VaultError::CorruptRecord {
                key: records::identity_key().to_owned(),
                reason: "the device certificate does not match the device key".into(),
            });
        }
        Ok(Self::assemble(device, record, false, stored))
    }

    /// The vault's build name, as `welcome` tells it.
    pub fn build(&self) -> &str {
        &self.build
    }

    /// Replaces the compaction policy (tests use small ones).
    pub fn set_policy(&mut self, policy: CompactionPolicy) {
        self.policy = policy;
    }

    // ----------------------------------------------------------- connections

    fn add_conn(&mut self, kind: ConnKind) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1).max(1);
        self.conns.insert(
            id,
            Conn {
                kind,
                version: None,
                awaiting: BTreeSet::new(),
                subscriptions: BTreeSet::new(),
            },
        );
        id
    }

    /// A new app connection, tagged by the shell with the origin it checked.
    pub fn connect_app(&mut self, origin: &str) -> ConnId {
        let id = self.add_conn(ConnKind::App {
            origin: origin.to_owned(),
        });
        self.admin_changed();
        id
    }

    /// A new management connection of a top-level vault page.
    pub fn connect_admin(&mut self) -> ConnId {
        self.add_conn(ConnKind::Admin)
    }

    /// The connection's port closed: its live queries end. Answers still
    /// held for it are dropped when they are released (its staged writes
    /// are still applied: the app may not learn of them, as with any write
    /// whose answer was lost).
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            for sub in c.subscriptions {
                self.drop_subscription(sub);
            }
            if matches!(c.kind, ConnKind::App { .. }) {
                self.admin_changed();
            }
        }
    }

    /// The origin of an app connection.
    pub fn origin_of(&self, conn: ConnId) -> Option<&str> {
        match &self.conns.get(&conn)?.kind {
            ConnKind::App { origin } => Some(origin),
            ConnKind::Admin => None,
        }
    }

    fn consent_of(&self, origin: &str) -> Consent {
        match self.grants.get(origin) {
            Some(g) if g.allowed => Consent::Granted,
            Some(_) => Consent::Denied,
            None => Consent::Required,
        }
    }

    fn app_conns_of(&self, origin: &str) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| matches!(&c.kind, ConnKind::App { origin: o } if o == origin))
            .map(|(id, _)| *id)
            .collect()
    }

    fn admin_changed(&mut self) {
        let admins: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.kind, ConnKind::Admin))
            .map(|(id, _)| *id)
            .collect();
        for conn in admins {
            self.outputs.push_back(Output::Admin {
                conn,
                message: AdminReply::Changed {},
            });
        }
    }

    /// The next thing for the host to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ---------------------------------------------------------------- spaces

    /// The space a message needs open before it can be handled, if it is
    /// one the vault holds and has not opened yet: list
    /// `space_prefix(id)` and call [`open_space`](Self::open_space).
    pub fn space_to_open(&self, request: &crate::rpc::Request) -> Option<SpaceId> {
        let id: SpaceId = request.space()?.parse().ok()?;
        match self.spaces.get(&id) {
            Some(slot) if slot.replica.is_none() => Some(id),
            _ => None,
        }
    }

    /// The key prefix to list for [`open_space`](Self::open_space).
    pub fn storage_prefix(id: &SpaceId) -> String {
        space_prefix(id)
    }

    /// Opens a space from the entries its host listed under its prefix.
    /// Live queries that were open on it before a failed flush are opened
    /// again and told what changed.
    pub fn open_space(
        &mut self,
        id: SpaceId,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<(), VaultError> {
        let Some(slot) = self.spaces.get_mut(&id) else {
            return Err(VaultError::NotOpen {
                space: id.to_string(),
            });
        };
        if slot.replica.is_some() {
            return Ok(());
        }
        let replica = Replica::open(id, self.identity, self.device.duplicate(), entries)?;
        slot.replica = Some(replica);
        self.reload.remove(&id);
        self.resubscribe(id);
        Ok(())
    }

    /// Spaces dropped after a failed flush, to open again
    /// ([`open_space`](Self::open_space)) so their live queries resume.
    pub fn spaces_to_reload(&self) -> Vec<SpaceId> {
        self.reload.iter().copied().collect()
    }

    /// Opened spaces.
    pub fn open_spaces(&self) -> usize {
        self.spaces.values().filter(|s| s.replica.is_some()).count()
    }

    fn replica(&mut self, id: &SpaceId) -> Result<&mut Replica, VaultError> {
        self.spaces
            .get_mut(id)
            .and_then(|s| s.replica.as_mut())
            .ok_or_else(|| VaultError::NotOpen {
                space: id.to_string(),
            })
    }

    // ----------------------------------------------------------- live queries

    fn drop_subscription(&mut self, sub: u32) {
        if let Some(s) = self.subscriptions.remove(&sub) {
            if let Some(r) = self
                .spaces
                .get_mut(&s.space)
                .and_then(|s| s.replica.as_mut())
            {
                r.space_mut().unsubscribe(s.inner);
            }
            if let Some(c) = self.conns.get_mut(&s.conn) {
                c.subscriptions.remove(&sub);
            }
        }
    }

    /// Moves the space's pending live-query diffs to the outputs.
    fn pump_events(&mut self, space: SpaceId) {
        let Some(replica) = self.spaces.get_mut(&space).and_then(|s| s.replica.as_mut()) else {
            return;
        };
        let mut diffs = Vec::new();
        while let Some(event) = replica.space_mut().poll_event() {
            if let crate::model::SpaceEvent::Live(diff) = event {
                diffs.push(diff);
            }
        }
        for diff in diffs {
            let found = self
                .subscriptions
                .iter()
                .find(|(_, s)| s.space == space && s.inner == diff.subscription)
                .map(|(id, s)| (*id, s.conn, s.resolve));
            let Some((sub, conn, resolve)) = found else {
                continue;
            };
            let mut event = crate::rpc::Event::from_diff(&diff);
            if resolve {
                if let crate::rpc::Event::QueryDiff { objects, .. } = &mut event {
                    let replica = self
                        .spaces
                        .get_mut(&space)
                        .and_then(|s| s.replica.as_mut())
                        .expect("checked above");
                    let mut out = Vec::new();
                    for id in diff.added.iter().chain(&diff.changed) {
                        if let Ok(Some(state)) = replica.space_mut().get(id) {
                            out.push(crate::rpc::WireObject::from(state));
                        }
                    }
                    *objects = Some(out);
                }
            }
            self.outputs.push_back(Output::App {
                conn,
                message: VaultMessage::Event {
                    subscription: Some(sub),
                    event,
                },
            });
        }
    }

    /// Re-opens the live queries of a space that was reopened after a
    /// failed flush, each with a diff from the result its app last saw.
    fn resubscribe(&mut self, space: SpaceId) {
        let stale: Vec<u32> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.space == space && s.stale.is_some())
            .map(|(id, _)| *id)
            .collect();
        for sub in stale {
            let (query, before) = {
                let s = &self.subscriptions[&sub];
                (s.query.clone(), s.stale.clone().unwrap_or_default())
            };
            let Ok(replica) = self.replica(&space) else {
                return;
            };
            match replica.space_mut().subscribe(query) {
                Ok((inner, now)) => {
                    let s = self.subscriptions.get_mut(&sub).expect("listed above");
                    s.inner = inner;
                    s.stale = None;
                    let conn = s.conn;
                    let old: BTreeSet<_> = before.iter().copied().collect();
                    let new: BTreeSet<_> = now.iter().copied().collect();
                    let diff = crate::query::LiveDiff {
                        subscription: inner,
                        added: new.difference(&old).copied().collect(),
                        removed: old.difference(&new).copied().collect(),
                        changed: new.intersection(&old).copied().collect(),
                        window: Some(now),
                    };
                    self.outputs.push_back(Output::App {
                        conn,
                        message: VaultMessage::Event {
                            subscription: Some(sub),
                            event: crate::rpc::Event::from_diff(&diff),
                        },
                    });
                }
                Err(_) => self.drop_subscription(sub),
            }
        }
    }
}
