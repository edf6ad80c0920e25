//! Query execution over an [`Index`]: a filter compiled into executable
//! nodes, candidates picked from the indexes and narrowed, the rest checked
//! object by object, then ordering and the `offset` / `limit` window. The
//! steps and their costs are described in the module docs.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;

use super::error::QueryError;
use super::filter::{Compare, Direction, Filter, Query};
use super::index::{for_each_local_ref, Bucket, FieldIndex, Index, Lazy};
use super::key::{cmp_opt, rank, total_cmp, total_eq, Key};
use crate::data::{ObjectId, ObjectState, Value};

/// Ordering walks the first order field's index only for at least this many
/// matches, and only when they outnumber the window this many times.
#[cfg(not(test))]
const ORDER_WALK_MIN: usize = 256;
#[cfg(not(test))]
const ORDER_WALK_FACTOR: usize = 4;
/// Tests exercise the walk on small sets.
#[cfg(test)]
const ORDER_WALK_MIN: usize = 1;
#[cfg(test)]
const ORDER_WALK_FACTOR: usize = 1;

/// Intersecting ascending ids with an index set walks the set alongside when
/// it holds at most this many times as many ids, and probes it otherwise.
#[cfg(not(test))]
const MERGE_FACTOR: usize = 8;
/// Tests exercise both ways on small sets.
#[cfg(test)]
const MERGE_FACTOR: usize = 1;
/// `In` narrows by probing each of its buckets; up to this many values.
const NARROW_MAX_KEYS: usize = 16;

impl Index {
    /// Runs a query: the ids of the matching objects, ordered and sliced.
    pub fn run(&self, query: &Query) -> Result<Vec<ObjectId>, QueryError> {
        query.validate()?;
        let node = self.compile(&query.filter, query.include_deleted);
        let ids = self.matching(&node, query.include_deleted);
        Ok(self.window(ids, query))
    }

    // ------------------------------------------------------------ internals

    /// Turns a (validated) filter into an executable node, resolving the
    /// parts that depend on other objects (`RefersTo`, `Reachable`) into id
    /// sets now.
    pub(crate) fn compile(&self, filter: &Filter, include_deleted: bool) -> Node {
        match filter {
            Filter::All => Node::All,
            Filter::Type(t) => Node::Type(t.clone()),
            Filter::Field { field, op, value } => Node::Cmp {
                field: field.clone(),
                op: *op,
                value: value.clone(),
            },
            Filter::In { field, values } => {
                let mut keys: Vec<Key> = values.iter().cloned().map(Key).collect();
                keys.sort();
                keys.dedup();
                Node::In {
                    field: field.clone(),
                    keys,
                }
            }
            Filter::Exists(f) => Node::Exists(f.clone()),
            Filter::TextContains { field, needle } => Node::Text {
                field: field.clone(),
                needle: needle.to_lowercase(),
            },
            Filter::ListContains { field, value } => Node::ListContains {
                field: field.clone(),
                value: value.clone(),
            },
            Filter::References(target) => Node::RefIn {
                field: None,
                targets: HashSet::from([*target]),
            },
            Filter::RefersTo { field, target } => {
                let target = self.compile(target, include_deleted);
                let targets = self
                    .matching(&target, include_deleted)
                    .into_iter()
                    .collect();
                Node::RefIn {
                    field: Some(field.clone()),
                    targets,
                }
            }
            Filter::Reachable {
                root,
                field,
                direction,
                max_depth,
            } => Node::Ids(self.reachable(*root, field, *direction, *max_depth, include_deleted)),
            Filter::And(fs) => Node::And(
                fs.iter()
                    .map(|f| self.compile(f, include_deleted))
                    .collect(),
            ),
            Filter::Or(fs) => Node::Or(
                fs.iter()
                    .map(|f| self.compile(f, include_deleted))
                    .collect(),
            ),
            Filter::Not(f) => Node::Not(Box::new(self.compile(f, include_deleted))),
        }
    }

    fn reachable(
        &self,
        root: ObjectId,
        field: &str,
        direction: Direction,
        max_depth: u32,
        include_deleted: bool,
    ) -> HashSet<ObjectId> {
        if direction == Direction::Incoming {
            self.ensure_backlinks();
        }
        let lazy = self.lazy.borrow();
        let mut found = HashSet::new();
        let mut visited = HashSet::from([root]);
        let mut frontier = vec![root];
        for _ in 0..max_depth {
            let mut next = Vec::new();
            for id in frontier {
                // Only live objects (or any, with include_deleted) are waypoints.
                match self.objects.get(&id) {
                    Some(s) if include_deleted || !s.deleted() => {}
                    _ => continue,
                }
                let mut visit = |t: ObjectId| {
                    // Dangling refs lead nowhere and are not results.
                    if visited.insert(t) && self.objects.contains_key(&t) {
                        found.insert(t);
                        next.push(t);
                    }
                };
                match direction {
                    Direction::Outgoing => {
                        if let Some(v) = self.objects.get(&id).and_then(|s| s.field(field)) {
                            for_each_local_ref(&v, &mut |t| visit(t));
                        }
                    }
                    Direction::Incoming => {
                        if let Some(sources) = lazy.backlinks.as_ref().and_then(|b| b.get(&id)) {
                            for (s, f) in sources {
                                if f == field {
                                    visit(*s);
                                }
                            }
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        found
    }

    /// Ids of the objects matching `node`, ascending.
    pub(crate) fn matching(&self, node: &Node, include_deleted: bool) -> Vec<ObjectId> {
        self.ensure_indexes(node);
        let lazy = self.lazy.borrow();
        let ok = |s: &ObjectState| (include_deleted || !s.deleted) && node.matches(s);
        let mut out: Vec<ObjectId> = match self.candidates(node, &lazy) {
            // Exactly the matching ids: only deleted ones to drop.
            Some((mut cands, true)) => {
                if !include_deleted && !self.deleted.is_empty() {
                    cands.retain(|id| !self.deleted.contains(id));
                }
                cands
            }
            Some((cands, false)) => cands
                .into_iter()
                .filter(|id| self.get(id).is_some_and(ok))
                .collect(),
            None => self.iter().filter(|s| ok(s)).map(|s| s.id).collect(),
        };
        // Stable sort: candidates are mostly ascending runs (index buckets,
        // unions of them), which it merges in linear time.
        out.sort();
        out.dedup();
        out
    }

    /// Orders matching ids (ascending by id on entry) and applies offset/limit.
    pub(crate) fn window(&self, mut ids: Vec<ObjectId>, query: &Query) -> Vec<ObjectId> {
        let end = query
            .limit
            .map_or(usize::MAX, |l| query.offset.saturating_add(l));
        if !query.order.is_empty() {
            // Large matching sets with a small window: only the top of the
            // first order field's index needs sorting.
            if let Some(top) = self.top_by_index(&ids, query, end) {
                ids = top;
            }
            // Look every sort value up once: keys[i * k + j] is row i's
            // value of order field j.
            let order = &query.order;
            let k = order.len();
            let rows: Vec<&ObjectState> = ids.iter().filter_map(|id| self.get(id)).collect();
            let keys: Vec<Option<&Value>> = rows
                .iter()
                .flat_map(|s| order.iter().map(|o| s.fields.get(&o.field)))
                .collect();
            let cmp = |a: &usize, b: &usize| {
                for (j, o) in order.iter().enumerate() {
                    let c = cmp_opt(keys[a * k + j], keys[b * k + j]);
                    let c = if o.descending { c.reverse() } else { c };
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                rows[*a].id.cmp(&rows[*b].id)
            };
            let mut at: Vec<usize> = (0..rows.len()).collect();
            if end < at.len() {
                at.select_nth_unstable_by(end, cmp);
                at.truncate(end);
            }
            at.sort_unstable_by(cmp);
            ids = at.into_iter().map(|i| rows[i].id).collect();
        }
        ids.into_iter()
            .skip(query.offset)
            .take(end.saturating_sub(query.offset))
            .collect()
    }

    /// For a window of `end` ids over many more `matched` ones (ascending):
    /// the matched ids of the first buckets, in the first order field's
    /// direction, of that field's index, whole buckets, at least `end` of
    /// them. Every other match sorts after them. `None` when not worth it,
    /// when ascending and some object lacks the field (it would sort first),
    /// or when the index runs out (matches without the field come next).
    fn top_by_index(
        &self,
        matched: &[ObjectId],
        query: &Query,
        end: usize,
    ) -> Option<Vec<ObjectId>> {
        let first = query.order.first()?;
        if end == 0
            || matched.len() < ORDER_WALK_MIN
            || end.saturating_mul(ORDER_WALK_FACTOR) >= matched.len()
        {
            return None;
        }
        self.ensure_fields(&[first.field.as_str()]);
        let lazy = self.lazy.borrow();
        let fi = lazy.fields.get(&first.field)?;
        // Ascending, matches without the field come first: walk only when
        // no object lacks it.
        if !first.descending && fi.present != self.objects.len() {
            return None;
        }
        let buckets: Box<dyn Iterator<Item = &Bucket>> = if first.descending {
            Box::new(fi.values.values().rev())
        } else {
            Box::new(fi.values.values())
        };
        let mut picked = Vec::new();
        for bucket in buckets {
            picked.extend(bucket.iter().filter(|id| matched.binary_search(id).is_ok()));
            if picked.len() >= end {
                return Some(picked);
            }
        }
        None
    }

    /// Builds the field indexes and backlinks `node` can use for candidates.
    fn ensure_indexes(&self, node: &Node) {
        let mut wanted = Vec::new();
        let mut backlinks = false;
        node.index_needs(&mut wanted, &mut backlinks);
        if backlinks {
            self.ensure_backlinks();
        }
        self.ensure_fields(&wanted);
    }

    /// An upper bound of how many candidates `node` yields from indexes, or
    /// `None` if it cannot narrow the search. Counting ranges stops past
    /// `cap` (the caller only wants to know whether it beats `cap`).
    fn estimate(&self, node: &Node, lazy: &Lazy, cap: usize) -> Option<usize> {
        match node {
            Node::Type(t) => Some(self.by_type.get(t).map_or(0, BTreeSet::len)),
            Node::Cmp { field, op, value } => {
                let fi = &lazy.fields.get(field)?.values;
                match op {
                    Compare::Ne => None,
                    Compare::Eq => Some(fi.get(&Key(value.clone())).map_or(0, Bucket::len)),
                    _ => Some(count_span(fi, &Span::of(*op, value), cap)),
                }
            }
            Node::In { field, keys } => {
                let fi = &lazy.fields.get(field)?.values;
                Some(keys.iter().map(|k| fi.get(k).map_or(0, Bucket::len)).sum())
            }
            Node::RefIn { targets, .. } => {
                let bl = lazy.backlinks.as_ref()?;
                Some(
                    targets
                        .iter()
                        .map(|t| bl.get(t).map_or(0, BTreeSet::len))
                        .sum(),
                )
            }
            Node::Ids(ids) => Some(ids.len()),
            Node::And(nodes) => self.pick(nodes, lazy, cap).map(|(e, _)| e),
            Node::Or(nodes) => {
                let mut sum = 0usize;
                for n in nodes {
                    sum = sum.saturating_add(self.estimate(n, lazy, cap)?);
                }
                Some(sum)
            }
            Node::All
            | Node::Exists(_)
            | Node::Text { .. }
            | Node::ListContains { .. }
            | Node::Not(_) => None,
        }
    }

    /// The planner's choice for an `And`: the conjunct (or the merged range
    /// of all range conjuncts on one field) with the fewest candidates.
    fn pick<'a>(&self, nodes: &'a [Node], lazy: &Lazy, cap: usize) -> Option<(usize, Pick<'a>)> {
        let mut best: Option<(usize, Pick<'a>)> = None;
        let bound =
            |best: &Option<(usize, Pick<'a>)>| best.as_ref().map_or(cap, |(b, _)| (*b).min(cap));
        // Ranges on the same field, intersected: `a <= n < b` is one scan.
        let mut spans: Vec<(&'a str, Option<Span<'a>>)> = Vec::new();
        for n in nodes {
            if let Node::Cmp { field, op, value } = n {
                if op.is_range() && lazy.fields.contains_key(field) {
                    let span = Span::of(*op, value);
                    match spans.iter_mut().find(|(f, _)| f == field) {
                        Some((_, s)) => *s = s.take().and_then(|s| s.intersect(span)),
                        None => spans.push((field, Some(span))),
                    }
                    continue;
                }
            }
            if let Some(e) = self.estimate(n, lazy, bound(&best)) {
                if best.as_ref().is_none_or(|(b, _)| e < *b) {
                    best = Some((e, Pick::Node(n)));
                }
            }
        }
        for (field, span) in spans {
            let e = match (&span, lazy.fields.get(field).map(|f| &f.values)) {
                (Some(s), Some(fi)) => count_span(fi, s, bound(&best)),
                _ => 0,
            };
            if best.as_ref().is_none_or(|(b, _)| e < *b) {
                best = Some((e, Pick::Span(field, span)));
            }
        }
        best
    }

    /// A superset of the ids matching `node` (possibly unsorted, with
    /// duplicates), or `None` if every object has to be checked. With
    /// `true`, the ids are exactly the matches (deleted ones included), so
    /// they need no re-check.
    fn candidates(&self, node: &Node, lazy: &Lazy) -> Option<(Vec<ObjectId>, bool)> {
        let exact = |ids: Vec<ObjectId>| Some((ids, true));
        match node {
            Node::Type(t) => exact(
                self.by_type
                    .get(t)
                    .map_or_else(Vec::new, |s| s.iter().copied().collect()),
            ),
            Node::Cmp { field, op, value } => {
                let fi = &lazy.fields.get(field)?.values;
                match op {
                    Compare::Ne => None,
                    Compare::Eq => exact(
                        fi.get(&Key(value.clone()))
                            .map_or_else(Vec::new, |s| s.iter().copied().collect()),
                    ),
                    _ => exact(span_ids(fi, &Span::of(*op, value))),
                }
            }
            Node::In { field, keys } => {
                let fi = &lazy.fields.get(field)?.values;
                exact(
                    keys.iter()
                        .filter_map(|k| fi.get(k))
                        .flatten()
                        .copied()
                        .collect(),
                )
            }
            Node::RefIn { field, targets } => {
                let bl = lazy.backlinks.as_ref()?;
                let mut out = Vec::new();
                for t in targets {
                    for (s, f) in bl.get(t).into_iter().flatten() {
                        if field.as_ref().is_none_or(|want| want == f) {
                            out.push(*s);
                        }
                    }
                }
                exact(out)
            }
            // Reachable only yields existing objects.
            Node::Ids(ids) => exact(ids.iter().copied().collect()),
            Node::And(nodes) => {
                // The smallest conjunct drives; every other conjunct an index
                // can decide per id narrows its ids (probing or merging sorted
                // sets, never reading objects); the rest are checked later.
                let pick = self.pick(nodes, lazy, usize::MAX)?.1;
                let (mut ids, mut is_exact) = match &pick {
                    Pick::Node(d) => self.candidates(d, lazy)?,
                    Pick::Span(field, Some(span)) => {
                        (span_ids(&lazy.fields.get(*field)?.values, span), true)
                    }
                    Pick::Span(_, None) => return exact(Vec::new()),
                };
                // What the driver already answers: itself, or (a span) every
                // range conjunct on its field.
                let covered = |n: &Node| match &pick {
                    Pick::Node(d) => std::ptr::eq(n, *d),
                    Pick::Span(field, _) => {
                        matches!(n, Node::Cmp { field: f, op, .. } if f == field && op.is_range())
                    }
                };
                let rest: Vec<&Node> = nodes.iter().filter(|n| !covered(n)).collect();
                if rest.is_empty() {
                    return Some((ids, is_exact));
                }
                ids.sort();
                ids.dedup();
                for n in rest {
                    if ids.is_empty() {
                        break;
                    }
                    if self.can_narrow(n, lazy) {
                        self.narrow(n, lazy, &mut ids);
                    } else {
                        is_exact = false;
                    }
                }
                Some((ids, is_exact))
            }
            Node::Or(nodes) => {
                let mut out = Vec::new();
                let mut all_exact = true;
                for n in nodes {
                    let (ids, exact) = self.candidates(n, lazy)?;
                    out.extend(ids);
                    all_exact &= exact;
                }
                Some((out, all_exact))
            }
            Node::All
            | Node::Exists(_)
            | Node::Text { .. }
            | Node::ListContains { .. }
            | Node::Not(_) => None,
        }
    }

    /// Can [`narrow`](Index::narrow) decide `node` for any id from built
    /// indexes alone (without reading objects)?
    fn can_narrow(&self, node: &Node, lazy: &Lazy) -> bool {
        match node {
            Node::Type(_) | Node::Ids(_) => true,
            Node::Cmp {
                field,
                op: Compare::Eq,
                ..
            } => lazy.fields.contains_key(field),
            Node::In { field, keys } => {
                keys.len() <= NARROW_MAX_KEYS && lazy.fields.contains_key(field)
            }
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().all(|n| self.can_narrow(n, lazy)),
            Node::Not(n) => self.can_narrow(n, lazy),
            _ => false,
        }
    }

    /// Keeps exactly the ids (ascending, distinct) that match `node`
    /// (deleted-ness aside). Only for nodes [`can_narrow`](Index::can_narrow)
    /// accepts. Costs O(ids · log set) probing, or O(ids + set) merging when
    /// the set is not much larger than `ids`.
    fn narrow(&self, node: &Node, lazy: &Lazy, ids: &mut Vec<ObjectId>) {
        match node {
            Node::Type(t) => match self.by_type.get(t) {
                Some(set) => retain_in(ids, set),
                None => ids.clear(),
            },
            Node::Cmp { field, value, .. } => {
                match lazy
                    .fields
                    .get(field)
                    .and_then(|fi| fi.values.get(&Key(value.clone())))
                {
                    Some(Bucket::Many(set)) => retain_in(ids, set),
                    Some(Bucket::One(x)) => ids.retain(|id| id == x),
                    None => ids.clear(),
                }
            }
            Node::In { field, keys } => {
                let Some(fi) = lazy.fields.get(field).map(|f| &f.values) else {
                    return ids.clear();
                };
                let buckets: Vec<&Bucket> = keys.iter().filter_map(|k| fi.get(k)).collect();
                ids.retain(|id| {
                    buckets.iter().any(|b| match b {
                        Bucket::One(x) => x == id,
                        Bucket::Many(set) => set.contains(id),
                    })
                });
            }
            Node::Ids(set) => ids.retain(|id| set.contains(id)),
            Node::And(nodes) => {
                for n in nodes {
                    if ids.is_empty() {
                        break;
                    }
                    self.narrow(n, lazy, ids);
                }
            }
            Node::Or(nodes) => {
                let mut out = Vec::new();
                for n in nodes {
                    let mut part = ids.clone();
                    self.narrow(n, lazy, &mut part);
                    out.extend(part);
                }
                // Sorted runs: the stable sort merges them.
                out.sort();
                out.dedup();
                *ids = out;
            }
            Node::Not(n) => {
                let mut hit = ids.clone();
                self.narrow(n, lazy, &mut hit);
                let mut hit = hit.into_iter().peekable();
                ids.retain(|id| {
                    if hit.peek() == Some(id) {
                        hit.next();
                        false
                    } else {
                        true
                    }
                });
            }
            // `can_narrow` rejects the rest.
            _ => {}
        }
    }
}

/// Keeps the ids (ascending) that are in `set`: merges when the set is at
/// most [`MERGE_FACTOR`] times larger, probes it otherwise.
fn retain_in(ids: &mut Vec<ObjectId>, set: &BTreeSet<ObjectId>) {
    if set.len() <= ids.len().saturating_mul(MERGE_FACTOR) {
        let mut it = set.iter().peekable();
        ids.retain(|id| {
            while it.next_if(|x| *x < id).is_some() {}
            it.peek() == Some(&id)
        });
    } else {
        ids.retain(|id| set.contains(id));
    }
}

/// What the planner chose for an `And`.
enum Pick<'a> {
    Node(&'a Node),
    /// A merged range on a field; `None` if the ranges exclude each other.
    Span(&'a str, Option<Span<'a>>),
}

/// A range of values of one kind (`class` is the kind's rank).
#[derive(Clone, Debug)]
struct Span<'a> {
    class: u8,
    lo: Bound<&'a Value>,
    hi: Bound<&'a Value>,
}

impl<'a> Span<'a> {
    fn of(op: Compare, value: &'a Value) -> Self {
        let (lo, hi) = match op {
            Compare::Lt => (Bound::Unbounded, Bound::Excluded(value)),
            Compare::Le => (Bound::Unbounded, Bound::Included(value)),
            Compare::Gt => (Bound::Excluded(value), Bound::Unbounded),
            Compare::Ge => (Bound::Included(value), Bound::Unbounded),
            // Not ranges; callers only pass range operators.
            Compare::Eq | Compare::Ne => (Bound::Included(value), Bound::Included(value)),
        };
        Span {
            class: rank(value),
            lo,
            hi,
        }
    }

    /// Both spans at once; `None` if nothing can be in both.
    fn intersect(self, other: Span<'a>) -> Option<Span<'a>> {
        if self.class != other.class {
            return None;
        }
        // The tighter lower bound: the greater value; Excluded wins a tie.
        let lo = match (self.lo, other.lo) {
            (Bound::Unbounded, b) | (b, Bound::Unbounded) => b,
            (a, b) => match total_cmp(bound_value(a), bound_value(b)) {
                Ordering::Greater => a,
                Ordering::Less => b,
                Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
                Ordering::Equal => b,
            },
        };
        let hi = match (self.hi, other.hi) {
            (Bound::Unbounded, b) | (b, Bound::Unbounded) => b,
            (a, b) => match total_cmp(bound_value(a), bound_value(b)) {
                Ordering::Less => a,
                Ordering::Greater => b,
                Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
                Ordering::Equal => b,
            },
        };
        Some(Span {
            class: self.class,
            lo,
            hi,
        })
    }

    /// The entries of `fi` in this span.
    fn iter<'f>(&self, fi: &'f FieldIndex) -> Box<dyn Iterator<Item = &'f Bucket> + 'f> {
        let class = self.class;
        let same = move |(k, _): &(&Key, &Bucket)| rank(&k.0) == class;
        let key = |b: Bound<&Value>| b.map(|v| Key(v.clone()));
        match (self.lo, self.hi) {
            (Bound::Unbounded, Bound::Unbounded) => Box::new(std::iter::empty()),
            (Bound::Unbounded, hi) => Box::new(
                fi.range((Bound::Unbounded, key(hi)))
                    .rev()
                    .take_while(same)
                    .map(|(_, ids)| ids),
            ),
            (lo, Bound::Unbounded) => Box::new(
                fi.range((key(lo), Bound::Unbounded))
                    .take_while(same)
                    .map(|(_, ids)| ids),
            ),
            (lo, hi) => {
                // BTreeMap::range panics on an empty or inverted range.
                let ok = match total_cmp(bound_value(lo), bound_value(hi)) {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        matches!((lo, hi), (Bound::Included(_), Bound::Included(_)))
                    }
                    Ordering::Greater => false,
                };
                if !ok {
                    return Box::new(std::iter::empty());
                }
                // Both ends are of `class`, so is everything between them.
                Box::new(fi.range((key(lo), key(hi))).map(|(_, ids)| ids))
            }
        }
    }
}

fn bound_value(b: Bound<&Value>) -> &Value {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => v,
        // Callers match Unbounded first.
        Bound::Unbounded => &Value::Null,
    }
}

/// How many ids the span holds, counting no further than just past `cap`.
fn count_span(fi: &FieldIndex, span: &Span<'_>, cap: usize) -> usize {
    let mut n = 0usize;
    for ids in span.iter(fi) {
        n += ids.len();
        if n > cap {
            break;
        }
    }
    n
}

fn span_ids(fi: &FieldIndex, span: &Span<'_>) -> Vec<ObjectId> {
    span.iter(fi).flatten().copied().collect()
}

fn has_local_ref_in(v: &Value, targets: &HashSet<ObjectId>) -> bool {
    match v {
        Value::Ref(r) => r.space.is_none() && targets.contains(&r.object),
        Value::List(items) => items.iter().any(|i| has_local_ref_in(i, targets)),
        Value::Map(m) => m.values().any(|i| has_local_ref_in(i, targets)),
        _ => false,
    }
}

/// Does `field op value` hold for a present field value?
pub(crate) fn compare(field_value: &Value, op: Compare, value: &Value) -> bool {
    match op {
        Compare::Eq => total_eq(field_value, value),
        Compare::Ne => !total_eq(field_value, value),
        _ => {
            if rank(field_value) != rank(value) {
                return false;
            }
            let c = total_cmp(field_value, value);
            match op {
                Compare::Lt => c == Ordering::Less,
                Compare::Le => c != Ordering::Greater,
                Compare::Gt => c == Ordering::Greater,
                _ => c != Ordering::Less,
            }
        }
    }
}

/// An executable filter: a [`Filter`] with its parts that depend on other
/// objects already resolved to id sets.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    All,
    Type(String),
    Cmp {
        field: String,
        op: Compare,
        value: Value,
    },
    /// Sorted, deduplicated.
    In {
        field: String,
        keys: Vec<Key>,
    },
    Exists(String),
    /// `needle` is lower-cased.
    Text {
        field: String,
        needle: String,
    },
    ListContains {
        field: String,
        value: Value,
    },
    /// Some local ref in `field` (any field if `None`) points into `targets`.
    RefIn {
        field: Option<String>,
        targets: HashSet<ObjectId>,
    },
    Ids(HashSet<ObjectId>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

impl Node {
    /// Does this object match (deleted-ness is checked by the caller)?
    pub(crate) fn matches(&self, s: &ObjectState) -> bool {
        match self {
            Node::All => true,
            Node::Type(t) => s.type_name == *t,
            Node::Cmp { field, op, value } => {
                s.fields.get(field).is_some_and(|v| compare(v, *op, value))
            }
            Node::In { field, keys } => s
                .fields
                .get(field)
                .is_some_and(|v| keys.binary_search_by(|k| total_cmp(&k.0, v)).is_ok()),
            Node::Exists(field) => s.fields.contains_key(field),
            Node::Text { field, needle } => s
                .fields
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|text| contains_ignore_case(text, needle)),
            Node::ListContains { field, value } => match s.fields.get(field) {
                Some(Value::List(items)) => items.iter().any(|i| total_eq(i, value)),
                _ => false,
            },
            Node::RefIn {
                field: Some(f),
                targets,
            } => s
                .fields
                .get(f)
                .is_some_and(|v| has_local_ref_in(v, targets)),
            Node::RefIn {
                field: None,
                targets,
            } => s.fields.values().any(|v| has_local_ref_in(v, targets)),
            Node::Ids(ids) => ids.contains(&s.id),
            Node::And(nodes) => nodes.iter().all(|n| n.matches(s)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(s)),
            Node::Not(n) => !n.matches(s),
        }
    }

    /// Fields whose index and whether backlinks may serve as candidates.
    fn index_needs<'a>(&'a self, fields: &mut Vec<&'a str>, backlinks: &mut bool) {
        match self {
            Node::Cmp { field, op, .. } if *op != Compare::Ne => fields.push(field),
            Node::In { field, .. } => fields.push(field),
            Node::RefIn { .. } => *backlinks = true,
            Node::And(nodes) | Node::Or(nodes) => {
                nodes.iter().for_each(|n| n.index_needs(fields, backlinks))
            }
            _ => {}
        }
    }
}

fn contains_ignore_case(text: &str, lower_needle: &str) -> bool {
    if lower_needle.is_empty() {
        return true;
    }
    if text.is_ascii() && lower_needle.is_ascii() {
        let (h, n) = (text.as_bytes(), lower_needle.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    text.to_lowercase().contains(lower_needle)
}
