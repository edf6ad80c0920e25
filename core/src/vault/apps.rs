//! The vault's part that owns connections: app and admin ports, each
//! app session's negotiated version, the answers it waits for, its live
//! queries, and the messages parked until the spaces they need are open.
//!
//! A live query is named to its app by an id of that connection alone
//! ([`SubKey::id`], counted per connection): an app learns nothing of
//! other apps' activity from the ids it gets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::guard::Meter;
use super::machine::{AdminUndecodable, ConnId, Millis};
use crate::data::{ObjectId, SpaceId};
use crate::query::{Query, SubscriptionId};
use crate::rpc::{AdminMessage, ClientMessage, Durability, SpaceStatus, Undecodable};

#[derive(Debug)]
pub(super) enum ConnKind {
    App { origin: String },
    Admin,
}

/// A message waiting for spaces to be opened (and every later message of
/// its connection behind it, so answers keep their order).
#[derive(Debug)]
pub(super) enum Parked {
    App(Result<ClientMessage, Undecodable>),
    Admin(Result<AdminMessage, AdminUndecodable>),
}

#[derive(Debug)]
pub(super) struct Conn {
    pub kind: ConnKind,
    /// The negotiated API version (app connections, after `hello`).
    pub version: Option<u32>,
    /// How durable its writes must be when answered (its `hello`).
    pub durability: Durability,
    /// Call ids answered only once durable.
    pub awaiting: BTreeSet<u32>,
    pub subscriptions: BTreeSet<u32>,
    pub parked: VecDeque<Parked>,
    /// Spaces whose status this connection asked for, with the status it
    /// was last told (`space_status` events when it changes).
    pub watching: BTreeMap<SpaceId, SpaceStatus>,
    /// When the vault last heard from it (idle connections expire).
    pub last_heard: Millis,
    /// Whether its `hello` came (an app sends exactly one, first).
    pub hello_seen: bool,
    /// Undecodable messages: too many in a short time closes it.
    pub strikes: Meter,
    /// Messages before the user allowed its origin: a bounded rate.
    pub chatter: Meter,
    /// The id its next live query gets.
    next_subscription: u32,
}

/// A live query: its connection, and its id on that connection (the id
/// its app knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SubKey {
    pub conn: ConnId,
    pub id: u32,
}

#[derive(Debug)]
pub(super) struct Subscription {
    pub conn: ConnId,
    pub space: SpaceId,
    pub inner: SubscriptionId,
    pub query: Query,
    pub resolve: bool,
    /// Set when its space was dropped after a failed flush: the result the
    /// app last saw, to diff against once the space is open again.
    pub stale: Option<Vec<ObjectId>>,
}

/// Connections and their live queries.
#[derive(Debug, Default)]
pub(super) struct Apps {
    pub conns: BTreeMap<ConnId, Conn>,
    pub subscriptions: BTreeMap<SubKey, Subscription>,
}

impl Apps {
    /// A new connection; `false` when the id is taken.
    pub fn connect(&mut self, conn: ConnId, kind: ConnKind, now: Millis) -> bool {
        if self.conns.contains_key(&conn) {
            return false;
        }
        self.conns.insert(
            conn,
            Conn {
                kind,
                version: None,
                durability: Durability::Strict,
                awaiting: BTreeSet::new(),
                subscriptions: BTreeSet::new(),
                parked: VecDeque::new(),
                watching: BTreeMap::new(),
                last_heard: now,
                hello_seen: false,
                strikes: Meter::full(now),
                chatter: Meter::full(now),
                next_subscription: 0,
            },
        );
        true
    }

    pub fn get(&self, conn: ConnId) -> Option<&Conn> {
        self.conns.get(&conn)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(&conn)
    }

    pub fn origin_of(&self, conn: ConnId) -> Option<&str> {
        match &self.conns.get(&conn)?.kind {
            ConnKind::App { origin } => Some(origin),
            ConnKind::Admin => None,
        }
    }

    pub fn is_admin(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn).map(|c| &c.kind),
            Some(ConnKind::Admin)
        )
    }

    pub fn app_conns_of(&self, origin: &str) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| matches!(&c.kind, ConnKind::App { origin: o } if o == origin))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn admins(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| matches!(c.kind, ConnKind::Admin))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn app_count(&self) -> usize {
        self.conns
            .values()
            .filter(|c| matches!(c.kind, ConnKind::App { .. }))
            .count()
    }

    /// Connections with parked messages.
    pub fn parked(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.parked.is_empty())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Adds a live query of a connection that exists; its id on that
    /// connection.
    pub fn add_subscription(&mut self, s: Subscription) -> Option<u32> {
        let c = self.conns.get_mut(&s.conn)?;
        c.next_subscription = c.next_subscription.wrapping_add(1).max(1);
        let id = c.next_subscription;
        c.subscriptions.insert(id);
        self.subscriptions.insert(SubKey { conn: s.conn, id }, s);
        Some(id)
    }

    pub fn remove_subscription(&mut self, sub: SubKey) -> Option<Subscription> {
        let s = self.subscriptions.remove(&sub)?;
        if let Some(c) = self.conns.get_mut(&sub.conn) {
            c.subscriptions.remove(&sub.id);
        }
        Some(s)
    }

    /// How many live queries the connections of `origin` hold together.
    pub fn subscriptions_of(&self, origin: &str) -> usize {
        self.conns
            .values()
            .filter(|c| matches!(&c.kind, ConnKind::App { origin: o } if o == origin))
            .map(|c| c.subscriptions.len())
            .sum()
    }

    /// The subscription of a space's inner live query.
    pub fn find_subscription(
        &self,
        space: SpaceId,
        inner: SubscriptionId,
    ) -> Option<(SubKey, &Subscription)> {
        self.subscriptions
            .iter()
            .find(|(_, s)| s.space == space && s.inner == inner)
            .map(|(id, s)| (*id, s))
    }
}
