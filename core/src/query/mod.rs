//! Queries: the index of current object state, filters, ordering, and live
//! subscriptions with incremental diffs.
//!
//! # The index
//!
//! [`Index`] (`index.rs`) holds the materialized
//! [`ObjectState`](crate::data::ObjectState) of every object of a space
//! beside the CRDT, so opening a space and querying it never replays
//! history. The model feeds it with [`Index::upsert`] after every local
//! write or merge.
//!
//! - Always maintained: objects by id (hash map) and a type index
//!   (type → ordered id set). Creating an object costs one hash insert and one
//!   set insert (well under a microsecond at 100k objects).
//! - Built lazily, on the first query that can use it, then maintained by
//!   every later upsert: an ordered index per filtered field (value → ids,
//!   serving `=`, `In` and `<` `<=` `>` `>=`), and one reverse-reference
//!   index (target → referring objects and fields, serving `References`,
//!   `RefersTo` and incoming `Reachable`). Once a field is indexed, an upsert
//!   that changes that field moves the id between buckets (O(log n));
//!   unchanged fields cost one comparison. Field indexes clone the values
//!   they index; [`Index::drop_lazy_indexes`] frees them.
//! - [`Index::run`] takes `&self`; the lazy indexes live in a `RefCell` (the
//!   engine is single-threaded: an `Index` is `Send`, not `Sync`).
//!
//! # Executing a query
//!
//! [`Index::run`] (`planner.rs`) takes these steps:
//!
//! 1. [`Query::validate`] rejects what cannot run ([`QueryError`]).
//! 2. Parts that depend on other objects are resolved to id sets first:
//!    `RefersTo`'s target is run as a sub-query; `Reachable` is a
//!    breadth-first walk with a visited set (cycles terminate).
//! 3. The planner takes candidates from an index: `Type` → type index,
//!    `Field =` / `In` → field index buckets, range → an ordered range of the
//!    field index (within the value's kind), `References` / `RefersTo` →
//!    reverse references, `Reachable` → its set. For `And` it estimates every
//!    indexable conjunct (bucket sizes; range sizes counted up to the best so
//!    far) and takes the smallest as the driver; `Or` is the union when every
//!    branch is indexable. `Not`, `Exists`, `Ne`, `TextContains`,
//!    `ListContains` and `All` can't narrow: a query made only of them scans
//!    every object.
//! 4. The other conjuncts of an `And` that indexes decide per id (`Type`,
//!    `=`, `In` of up to 16 values, `Reachable`, and `And` / `Or` / `Not` of
//!    such) narrow the driver's ids without reading objects: each id is
//!    probed in the type set or bucket (O(log n)), or, when that set is at
//!    most 8 times larger than the ids, both are walked together in id order
//!    (O(ids + set)). `type = X and flag = v` over 100k objects costs about
//!    O(smaller side), whatever the sizes; it never sorts the larger side.
//! 5. If anything is left undecided (a range on another field, `Exists`,
//!    `Ne`, text, `RefersTo`, …), every remaining candidate is checked
//!    against the whole filter. Deleted objects are dropped (unless
//!    `include_deleted`), then the result is ordered and sliced by `offset` /
//!    `limit` (partial selection when limited).
//!
//! When the indexes answer the filter exactly (a lone `Type`, `=`, `In`,
//! range, `References`, `RefersTo` or `Reachable`, a union of such, an `And`
//! of ranges on one field, or an `And` whose driver is exact and whose other
//! conjuncts all narrow as in step 4) step 5 only drops deleted ids, without
//! reading the objects.
//!
//! Cost: O(c · f + r log r) for c candidates left to check, filter size f
//! and r results (candidates come out of the indexes in ascending runs,
//! which the final sort merges in linear time); a type or equality query over
//! 100k objects touches only its bucket. `TextContains` alone is a full scan
//! (no text index yet). Ordering reads the order fields of every match once
//! and selects the window (O(r) when limited). A small window over many
//! matches ("latest 20", "first page") instead walks the first order
//! field's index (built lazily) from the top when descending, or from the
//! bottom when ascending and every object has that field (matches without it
//! would sort first; each field index counts the objects holding it), and
//! sorts only the buckets it needs.
//!
//! # Semantics
//!
//! - **Values** compare by one total order (see `key.rs`): kinds rank
//!   `Null < Bool < number < string < bytes < ref < list < map`. `Int` and
//!   `Float` are one kind compared numerically and exactly: `Int(3) ==
//!   Float(3.0)`; `-0.0 == 0.0`; all NaNs are equal to each other and greater
//!   than every other number. `String` and `Text` are one kind compared by
//!   content (code point order).
//! - **`Field`**: the field must be present. `Eq` / `Ne` use total-order
//!   equality (lists and maps structurally). Range operators (`Lt` `Le` `Gt`
//!   `Ge`) take a bool, number, string/text or bytes value (anything else is
//!   [`QueryError::Incomparable`]) and match only fields of the same kind:
//!   `n < 5` never matches a string. `Ne` does not match a missing field; use
//!   `Not(Field Eq)` for "missing or different".
//! - **`In`**: present and equal to one of the values. **`Exists`**: present
//!   (even if `Null`). **`TextContains`**: a `String` or `Text` field
//!   containing the needle, case-insensitively (Unicode lower-casing).
//!   **`ListContains`**: a list field with an element equal to the value.
//! - **References**: only local refs (`space: None`) are followed. Refs to
//!   another space (`space: Some(..)`) are never followed nor matched by
//!   `References` / `RefersTo` / `Reachable` within one index; the model
//!   stores same-space refs as local. A ref counts wherever it sits inside
//!   the field's value: directly, in a list, in a map.
//!   - `References(x)`: some field refers to `x`.
//!   - `RefersTo { field, target }`: one hop — `field` refers to an object
//!     matching `target`. Nest it for fixed-length paths
//!     (`RefersTo { "parent", RefersTo { "parent", Type("root") } }`).
//!   - `Reachable { root, field, direction, max_depth }`: transitive, 1 to
//!     `max_depth` (≤ [`MAX_TRAVERSAL_DEPTH`]) hops from `root` along `field`,
//!     forward (`Outgoing`) or backward (`Incoming`, e.g. all descendants of
//!     a folder when children point to their `parent`). `root` is never in
//!     the result, even through a cycle.
//!   - Deleted objects are neither `RefersTo` targets nor traversal
//!     waypoints (`root` included) unless `include_deleted`.
//! - **`And(vec![])`** matches everything, **`Or(vec![])`** nothing.
//! - **Deleted** objects are excluded unless `include_deleted`.
//! - **Order**: each [`Order`] sorts by the total order, a missing field
//!   before every value (so last when descending); ties, and queries without
//!   order, by ascending [`ObjectId`](crate::data::ObjectId). Results are
//!   therefore the same ids in the same order on every replica with the
//!   same state.
//! - **Limits**: filters nest at most [`MAX_FILTER_DEPTH`] levels, filter
//!   values [`MAX_VALUE_DEPTH`](crate::data::MAX_VALUE_DEPTH) levels; `limit` and `offset` are unbounded
//!   (the result is bounded by the space).
//!
//! # Live queries and the diff contract
//!
//! [`LiveQueries::subscribe`] returns the initial result (identical to
//! [`Index::run`]). After the index changed, the host calls
//! [`LiveQueries::on_change`] with the ids whose state changed; it returns a
//! [`LiveDiff`] for each subscription whose result changed, never an empty one:
//!
//! - `added` / `removed`: ids that entered / left the result; `changed`: ids
//!   in the result before and after whose state changed. All ascending.
//! - Plain queries (no order, limit or offset): the result is the matching
//!   ids ascending; applying `added` / `removed` reproduces it. `window` is
//!   `None`.
//! - Windowed queries (an order, a limit or an offset): `added` / `removed`
//!   / `changed` are relative to the previous window, and `window` is the
//!   whole new result in order (a move inside the window with no membership
//!   change still produces a diff, with only `window` telling the new order).
//!
//! Cost: filters that depend only on the object itself (everything but
//! `RefersTo` and `Reachable`; see [`Filter::is_local`]) re-evaluate only
//! the changed objects: O(k · (f + log m)) for k changed ids and m matches.
//! Each subscription keeps its matching set, ordered by its sort key for
//! ordered queries, so a window is recomputed in O(offset + limit).
//! Subscriptions whose filter has `RefersTo` or `Reachable` are re-run in
//! full on every change (their result can change when any other object
//! changes); keep those for small result sets.

mod error;
mod filter;
mod index;
mod key;
mod live;
mod planner;
#[cfg(test)]
mod tests;

pub use error::QueryError;
pub use filter::{Compare, Direction, Filter, Order, Query, MAX_FILTER_DEPTH, MAX_TRAVERSAL_DEPTH};
pub use index::Index;
pub use live::{LiveDiff, LiveQueries, SubscriptionId};
