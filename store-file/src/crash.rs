//! The batch layout shared by the `crash-writer` helper and the crash test.
//! Not part of the API.

/// How many of the most recent batches stay in the store.
pub const KEEP: u64 = 10;
/// The key holding the number of the next batch, as decimal text.
pub const NEXT_KEY: &str = "crash/next";
/// Data keys per batch.
pub const KEYS_PER_BATCH: usize = 8;

/// The data keys of batch `n`.
pub fn batch_keys(n: u64) -> Vec<String> {
    (0..KEYS_PER_BATCH)
        .map(|i| format!("crash/b/{n:08}/{i}"))
        .collect()
}

/// The value of data key `i` of batch `n`: a header naming `(n, i)`, then
/// a fill byte derived from both. Sizes vary from 16 bytes to 64 KiB so
/// commits touch different numbers of pages.
pub fn value(n: u64, i: usize) -> Vec<u8> {
    let seed = n * 1000 + i as u64;
    let len = match seed % 7 {
        0 => 0,
        1 => 4096,
        2 => 64 * 1024,
        _ => (seed as usize * 7919) % 8_000,
    };
    let mut out = Vec::with_capacity(16 + len);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&(i as u64).to_be_bytes());
    out.resize(16 + len, (seed % 251) as u8);
    out
}

/// The marker of batch `n`: its number and the total size of its values.
pub fn marker(n: u64) -> Vec<u8> {
    let total: usize = (0..KEYS_PER_BATCH).map(|i| value(n, i).len()).sum();
    let mut out = n.to_be_bytes().to_vec();
    out.extend_from_slice(&(total as u64).to_be_bytes());
    out
}
