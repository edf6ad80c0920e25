//! The storage contract hosts implement, an in-memory store, compaction policy.
