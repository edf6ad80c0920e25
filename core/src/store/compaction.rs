//! When to fold incremental chunks into a snapshot.

/// When a space should rewrite a shard as one compacted snapshot instead of
/// appending another incremental chunk.
///
/// Each save appends an *incremental* chunk (the changes since the last
/// one). Opening a shard reads its snapshot plus all incrementals, so they
/// should not pile up; compacting rewrites the whole shard, so it should not
/// happen on every save. Compaction is due once **either** limit is
/// exceeded, so a shard never holds more than `max_incremental_chunks`
/// incrementals (counting the one about to be written).
///
/// The defaults — 32 chunks or 1 MiB — keep a shard's open cost at one
/// snapshot read plus a few dozen small reads (each an IndexedDB cursor step
/// in the browser) while amortising a rewrite over many saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Compact when a shard would have more incremental chunks than this.
    pub max_incremental_chunks: usize,
    /// Compact when a shard's incremental chunks would total more bytes than this.
    pub max_incremental_bytes: usize,
    /// A chunk's CRDT bytes up to this size stay inside it; larger ones
    /// are a value of their own, which opening a space does not wait for
    /// (`model/persist.rs`). A small change then costs one stored value,
    /// not two.
    pub max_inline_crdt_bytes: usize,
}

impl CompactionPolicy {
    /// Default limit on incremental chunks per shard.
    pub const DEFAULT_MAX_INCREMENTAL_CHUNKS: usize = 32;
    /// Default limit on incremental bytes per shard (1 MiB).
    pub const DEFAULT_MAX_INCREMENTAL_BYTES: usize = 1024 * 1024;
    /// Default size up to which a chunk keeps its CRDT bytes (1 KiB: a
    /// change of a few fields or a run of keystrokes; an open then reads at
    /// most the incrementals' limit × 1 KiB of them per shard).
    pub const DEFAULT_MAX_INLINE_CRDT_BYTES: usize = 1024;

    /// Compacts on every save (useful in tests).
    pub const ALWAYS: CompactionPolicy = CompactionPolicy {
        max_incremental_chunks: 0,
        max_incremental_bytes: 0,
        max_inline_crdt_bytes: Self::DEFAULT_MAX_INLINE_CRDT_BYTES,
    };

    /// Never compacts (useful in tests).
    pub const NEVER: CompactionPolicy = CompactionPolicy {
        max_incremental_chunks: usize::MAX,
        max_incremental_bytes: usize::MAX,
        max_inline_crdt_bytes: Self::DEFAULT_MAX_INLINE_CRDT_BYTES,
    };

    /// Whether a shard whose incrementals would number `incremental_chunks`
    /// and total `incremental_bytes` (after the pending save) should be
    /// compacted instead.
    pub fn should_compact(&self, incremental_chunks: usize, incremental_bytes: usize) -> bool {
        incremental_chunks > self.max_incremental_chunks
            || incremental_bytes > self.max_incremental_bytes
    }
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            max_incremental_chunks: Self::DEFAULT_MAX_INCREMENTAL_CHUNKS,
            max_incremental_bytes: Self::DEFAULT_MAX_INCREMENTAL_BYTES,
            max_inline_crdt_bytes: Self::DEFAULT_MAX_INLINE_CRDT_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let p = CompactionPolicy::default();
        assert!(!p.should_compact(1, 100));
        assert!(!p.should_compact(32, 1024 * 1024));
        assert!(p.should_compact(33, 0));
        assert!(p.should_compact(1, 1024 * 1024 + 1));
        assert!(CompactionPolicy::ALWAYS.should_compact(1, 0));
        assert!(!CompactionPolicy::NEVER.should_compact(usize::MAX - 1, usize::MAX - 1));
    }
}
