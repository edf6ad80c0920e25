//! Test helper for `tests/crash.rs`: writes numbered batches to a
//! [`FileStore`] forever, printing each batch number to stdout once `apply`
//! returned `Ok`. The test kills it at random moments and checks the file.
//!
//! Usage: `crash-writer <store path>`
//!
//! Batch `n` writes keys `crash/b/<n>/0..8` (values derived from `n`), a
//! marker `crash/b/<n>/marker`, sets `crash/next` to `n + 1`, and deletes
//! batch `n - KEEP`, so exactly the last `KEEP` batches are in the store.

use std::io::Write;
use std::process::ExitCode;

use echo_core::store::{Batch, ChunkStore};
use echo_store_file::crash::{batch_keys, marker, value, KEEP, NEXT_KEY};
use echo_store_file::FileStore;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: crash-writer <store path>");
        return ExitCode::from(2);
    };
    let mut store = match FileStore::open(&path) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("crash-writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut next = match store.get(NEXT_KEY) {
        Ok(Some(bytes)) => match String::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(n) => n,
            None => {
                eprintln!("crash-writer: {NEXT_KEY} is not a number");
                return ExitCode::FAILURE;
            }
        },
        Ok(None) => 0,
        Err(e) => {
            eprintln!("crash-writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    loop {
        let mut batch = Batch::new();
        for (i, key) in batch_keys(next).into_iter().enumerate() {
            batch.put(key, value(next, i));
        }
        batch.put(format!("crash/b/{next:08}/marker"), marker(next));
        batch.put(NEXT_KEY, (next + 1).to_string());
        if next >= KEEP {
            for key in batch_keys(next - KEEP) {
                batch.delete(key);
            }
            batch.delete(format!("crash/b/{:08}/marker", next - KEEP));
        }
        if let Err(e) = store.apply(batch) {
            eprintln!("crash-writer: batch {next}: {e}");
            return ExitCode::FAILURE;
        }
        // One write per line, so a kill never leaves half a number behind.
        if writeln!(out, "{next}").and_then(|()| out.flush()).is_err() {
            return ExitCode::FAILURE;
        }
        next += 1;
    }
}
