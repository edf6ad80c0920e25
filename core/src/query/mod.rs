//! Queries: filters, ordering, the index of current state, live subscriptions.
//!
//! (Module documentation: see the end of this file's doc section below.)

mod error;
mod filter;
mod index;
mod key;
mod live;

pub use error::QueryError;
pub use filter::{
    Compare, Direction, Filter, Order, Query, MAX_FILTER_DEPTH, MAX_TRAVERSAL_DEPTH,
    MAX_VALUE_DEPTH,
};
pub use index::Index;
pub use live::{LiveDiff, LiveQueries, SubscriptionId};
