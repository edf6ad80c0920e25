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

/// The value of data key `i` of batch `n`: sizes vary from a few bytes to
/// 256 KiB so commits touch different numbers of pages.
pub fn value(n: u64, i: usize) -> Vec<u8> {
    let seed = n * 1000 + i as u64;
    let len = match seed % 7 {
        0 => 3,
        1 => 4096,
        2 => 256 * 1024,
        _ => (seed as usize * 7919) % 20_000,
    };
    echo_core::store::contract::pattern(len, seed)
}

/// The marker of batch `n`: its number and a checksum over its values.
pub fn marker(n: u64) -> Vec<u8> {
    let mut out = n.to_be_bytes().to_vec();
    let sum = (0..KEYS_PER_BATCH)
        .flat_map(|i| value(n, i))
        .fold(0u32, |h, b| h.rotate_left(5) ^ u32::from(b));
    out.extend_from_slice(&sum.to_be_bytes());
    out
}
