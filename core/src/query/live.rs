//! Live queries: subscriptions whose results are kept current by diffs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::error::QueryError;
use super::filter::{Order, Query};
use super::index::Index;
use super::key::cmp_opt;
use super::planner::Node;
use crate::data::{ObjectId, ObjectState, Value};

/// Names a live query within one [`LiveQueries`] registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubscriptionId(pub u64);

/// How a subscription's result changed. See the module docs for the contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveDiff {
    pub subscription: SubscriptionId,
    /// Ids that entered the result, ascending.
    pub added: Vec<ObjectId>,
    /// Ids that left the result, ascending.
    pub removed: Vec<ObjectId>,
    /// Ids that stayed in the result and whose state changed, ascending.
    pub changed: Vec<ObjectId>,
    /// For windowed queries (with an order, a limit or an offset): the whole
    /// new result, in order. `None` for plain queries, whose result is the
    /// matching ids in ascending order: apply `added` / `removed` to it.
    pub window: Option<Vec<ObjectId>>,
}

/// A sort key: the order fields' values (cloned) with their directions,
/// then the id. Ordered like [`Index::run`] orders results.
#[derive(Clone, Debug)]
struct SortKey {
    parts: Vec<(Option<Value>, bool)>,
    id: ObjectId,
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SortKey {}
impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        for ((x, desc), (y, _)) in self.parts.iter().zip(&other.parts) {
            let c = cmp_opt(x.as_ref(), y.as_ref());
            let c = if *desc { c.reverse() } else { c };
            if c != Ordering::Equal {
                return c;
            }
        }
        self.id.cmp(&other.id)
    }
}

struct Subscription {
    query: Query,
    /// Compiled once for local filters; `None`: re-run on every change.
    local: Option<Node>,
    /// Every matching id (before offset/limit) with its sort key.
    members: BTreeMap<ObjectId, SortKey>,
    /// Matching ids in result order; kept only for ordered queries (for
    /// unordered ones `members` is already in result order).
    ordered: BTreeSet<SortKey>,
    /// The last reported window (windowed queries only).
    window: Vec<ObjectId>,
}

impl Subscription {
    fn insert(&mut self, key: SortKey) {
        if !self.query.order.is_empty() {
            self.ordered.insert(key.clone());
        }
        self.members.insert(key.id, key);
    }

    fn remove(&mut self, id: &ObjectId) {
        if let Some(key) = self.members.remove(id) {
            self.ordered.remove(&key);
        }
    }

    fn current_window(&self) -> Vec<ObjectId> {
        let q = &self.query;
        let take = q.limit.unwrap_or(usize::MAX);
        if q.order.is_empty() {
            self.members
                .keys()
                .skip(q.offset)
                .take(take)
                .copied()
                .collect()
        } else {
            self.ordered
                .iter()
                .skip(q.offset)
                .take(take)
                .map(|k| k.id)
                .collect()
        }
    }

    fn rebuild(&mut self, index: &Index, ids: Vec<ObjectId>) {
        self.members.clear();
        self.ordered.clear();
        for id in ids {
            if let Some(s) = index.get(&id) {
                self.insert(sort_key(&self.query.order, s));
            }
        }
    }
}

fn sort_key(order: &[Order], s: &ObjectState) -> SortKey {
    SortKey {
        parts: order
            .iter()
            .map(|o| (s.fields.get(&o.field).cloned(), o.descending))
            .collect(),
        id: s.id,
    }
}

/// The registry of live queries over one [`Index`].
///
/// Call [`on_change`](LiveQueries::on_change) after every change to the
/// index with the ids of the objects whose state changed.
#[derive(Default)]
pub struct LiveQueries {
    next: u64,
    subs: BTreeMap<SubscriptionId, Subscription>,
}

impl std::fmt::Debug for LiveQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveQueries")
            .field("subscriptions", &self.subs.len())
            .finish()
    }
}

impl LiveQueries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a query; returns its id and current result (the same ids
    /// in the same order as [`Index::run`]).
    pub fn subscribe(
        &mut self,
        query: Query,
        index: &Index,
    ) -> Result<(SubscriptionId, Vec<ObjectId>), QueryError> {
        query.validate()?;
        let node = index.compile(&query.filter, query.include_deleted);
        let ids = index.matching(&node, query.include_deleted);
        let local = query.filter.is_local().then_some(node);
        let mut sub = Subscription {
            query,
            local,
            members: BTreeMap::new(),
            ordered: BTreeSet::new(),
            window: Vec::new(),
        };
        sub.rebuild(index, ids);
        let result = sub.current_window();
        if sub.query.is_windowed() {
            sub.window = result.clone();
        }
        self.next += 1;
        let id = SubscriptionId(self.next);
        self.subs.insert(id, sub);
        Ok((id, result))
    }

    /// Ends a subscription; false if it did not exist.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        self.subs.remove(&id).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// The query of a subscription.
    pub fn query(&self, id: SubscriptionId) -> Option<&Query> {
        self.subs.get(&id).map(|s| &s.query)
    }

    /// A subscription's current result, as last reported.
    pub fn result(&self, id: SubscriptionId) -> Option<Vec<ObjectId>> {
        self.subs.get(&id).map(Subscription::current_window)
    }

    /// Call after `index` was updated for the objects in `changed` (created,
    /// updated, deleted, merged from a peer). Returns one diff per
    /// subscription whose result changed, by ascending subscription id.
    pub fn on_change(&mut self, index: &Index, changed: &[ObjectId]) -> Vec<LiveDiff> {
        let changed: BTreeSet<ObjectId> = changed.iter().copied().collect();
        let mut diffs = Vec::new();
        for (sid, sub) in self.subs.iter_mut() {
            let include_deleted = sub.query.include_deleted;
            let mut added = Vec::new();
            let mut removed = Vec::new();
            let mut still = Vec::new();
            if let Some(node) = &sub.local {
                // Only the changed objects can have entered or left.
                let mut updates = Vec::new();
                for id in &changed {
                    let now = index
                        .get(id)
                        .filter(|s| (include_deleted || !s.deleted) && node.matches(s));
                    let was = sub.members.contains_key(id);
                    match (was, now) {
                        (false, Some(s)) => {
                            added.push(*id);
                            updates.push((*id, Some(sort_key(&sub.query.order, s))));
                        }
                        (true, None) => {
                            removed.push(*id);
                            updates.push((*id, None));
                        }
                        (true, Some(s)) => {
                            still.push(*id);
                            updates.push((*id, Some(sort_key(&sub.query.order, s))));
                        }
                        (false, None) => {}
                    }
                }
                if updates.is_empty() {
                    continue;
                }
                for (id, key) in updates {
                    sub.remove(&id);
                    if let Some(k) = key {
                        sub.insert(k);
                    }
                }
            } else {
                // Depends on other objects: re-run (see module docs).
                let node = index.compile(&sub.query.filter, include_deleted);
                let ids = index.matching(&node, include_deleted);
                let now: HashSet<ObjectId> = ids.iter().copied().collect();
                removed = sub
                    .members
                    .keys()
                    .filter(|id| !now.contains(id))
                    .copied()
                    .collect();
                for id in &ids {
                    if !sub.members.contains_key(id) {
                        added.push(*id);
                    } else if changed.contains(id) {
                        still.push(*id);
                    }
                }
                sub.rebuild(index, ids);
            }
            let diff = if sub.query.is_windowed() {
                let window = sub.current_window();
                let before: HashSet<&ObjectId> = sub.window.iter().collect();
                let after: HashSet<&ObjectId> = window.iter().collect();
                let mut added: Vec<ObjectId> = window
                    .iter()
                    .filter(|id| !before.contains(id))
                    .copied()
                    .collect();
                let mut removed: Vec<ObjectId> = sub
                    .window
                    .iter()
                    .filter(|id| !after.contains(id))
                    .copied()
                    .collect();
                let mut changed_in: Vec<ObjectId> = window
                    .iter()
                    .filter(|id| before.contains(id) && changed.contains(id))
                    .copied()
                    .collect();
                added.sort_unstable();
                removed.sort_unstable();
                changed_in.sort_unstable();
                if added.is_empty()
                    && removed.is_empty()
                    && changed_in.is_empty()
                    && window == sub.window
                {
                    None
                } else {
                    sub.window = window.clone();
                    Some(LiveDiff {
                        subscription: *sid,
                        added,
                        removed,
                        changed: changed_in,
                        window: Some(window),
                    })
                }
            } else if added.is_empty() && removed.is_empty() && still.is_empty() {
                None
            } else {
                added.sort_unstable();
                removed.sort_unstable();
                still.sort_unstable();
                Some(LiveDiff {
                    subscription: *sid,
                    added,
                    removed,
                    changed: still,
                    window: None,
                })
            };
            diffs.extend(diff);
        }
        diffs
    }
}
