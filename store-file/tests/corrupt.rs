//! Damaged files: flipping bytes in a closed store file must give either a
//! clear [`StoreError`] naming the file, or exactly the data written — never
//! a panic and never silently wrong data.
//!
//! What redb guarantees: every page of the committed trees carries a
//! checksum in its parent, and the commit slots in the header carry their
//! own. With `check_integrity_on_open` (the `FileStore` default) all of them
//! are verified when the file is opened, so damage to live data is reported
//! as `store.corrupt`. Damage to free pages or unused header bytes is
//! harmless and the file opens with its data intact.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use echo_core::store::{contract::pattern, Batch, ChunkStore, Key};
use echo_store_file::{FileStore, FileStoreOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes a store with a few batches and returns its contents.
fn write_store(path: &Path) -> Vec<(Key, Vec<u8>)> {
    let mut store = FileStore::open(path).expect("create store");
    for b in 0..5u64 {
        let mut batch = Batch::new();
        for i in 0..40u64 {
            let len = [10, 300, 1500, 5000][(i % 4) as usize];
            batch.put(format!("data/{b}/{i:03}"), pattern(len, b * 100 + i));
        }
        if b > 0 {
            batch.delete(format!("data/{}/000", b - 1));
        }
        store.apply(batch).expect("write batch");
    }
    store.list_prefix("").expect("list")
}

#[derive(Default, Debug)]
struct Outcomes {
    intact: usize,
    rejected_on_open: usize,
    rejected_on_read: usize,
}

/// Opens `path` and classifies the result; panics on wrong data or a panic.
fn check(
    path: &Path,
    expected: &[(Key, Vec<u8>)],
    options: FileStoreOptions,
    what: &str,
    outcomes: &mut Outcomes,
) {
    let name = path.display().to_string();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let store = match FileStore::open_with(path, options) {
            Ok(store) => store,
            Err(e) => {
                assert!(
                    matches!(e.code(), "store.corrupt" | "store.io"),
                    "{what}: unexpected error {e}"
                );
                assert!(
                    e.to_string().contains(&name),
                    "{what}: the error does not name the file: {e}"
                );
                outcomes.rejected_on_open += 1;
                return;
            }
        };
        match store.list_prefix("") {
            Ok(entries) => {
                assert!(
                    entries == expected,
                    "{what}: the damaged file opened and returned wrong data"
                );
                outcomes.intact += 1;
            }
            Err(e) => {
                assert!(
                    e.to_string().contains(&name),
                    "{what}: the error does not name the file: {e}"
                );
                outcomes.rejected_on_read += 1;
            }
        }
    }));
    if let Err(panic) = result {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        panic!("{what}: {}", text.unwrap_or_else(|| "panic".into()));
    }
}

#[test]
fn flipped_bytes_give_an_error_or_the_intact_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = dir.path().join("original.redb");
    let expected = write_store(&original);
    let bytes = std::fs::read(&original).expect("read store file");
    let seed = std::env::var("ECHO_CORRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed);
    let mut outcomes = Outcomes::default();
    let damaged = dir.path().join("damaged.redb");
    for trial in 0..150 {
        let mut copy = bytes.clone();
        let flips = 1 + rng.next() % 4;
        let mut at = Vec::new();
        for _ in 0..flips {
            // A third of the trials hit the header and first pages.
            let pos = if trial % 3 == 0 {
                rng.next() % 8192
            } else {
                rng.next() % copy.len() as u64
            } as usize;
            copy[pos] ^= 1 << (rng.next() % 8);
            at.push(pos);
        }
        std::fs::write(&damaged, &copy).expect("write damaged copy");
        check(
            &damaged,
            &expected,
            FileStoreOptions::default(),
            &format!("trial {trial}, bits flipped at {at:?}"),
            &mut outcomes,
        );
    }
    println!(
        "file of {} bytes, 150 damaged copies: {outcomes:?}",
        bytes.len()
    );
    assert!(
        outcomes.rejected_on_open > 0,
        "no damage was detected at all — is the check on?"
    );
}

#[test]
fn garbage_and_truncated_files_are_rejected_with_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = dir.path().join("original.redb");
    let expected = write_store(&original);
    let bytes = std::fs::read(&original).expect("read store file");
    let mut outcomes = Outcomes::default();

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, pattern(100_000, 7)).expect("write garbage");
    let err = FileStore::open(&garbage).expect_err("garbage is not a store");
    assert_eq!(err.code(), "store.corrupt", "{err}");
    assert!(
        err.to_string().contains(&garbage.display().to_string()),
        "{err}"
    );

    let text = dir.path().join("text.redb");
    std::fs::write(&text, "this is not a database\n").expect("write text");
    let err = FileStore::open(&text).expect_err("text is not a store");
    assert!(
        err.to_string().contains(&text.display().to_string()),
        "{err}"
    );

    for keep in [bytes.len() / 2, bytes.len() - 4096, 4096, 600, 100] {
        let truncated = dir.path().join(format!("truncated-{keep}.redb"));
        std::fs::write(&truncated, &bytes[..keep]).expect("write truncated copy");
        check(
            &truncated,
            &expected,
            FileStoreOptions::default(),
            &format!("truncated to {keep} bytes"),
            &mut outcomes,
        );
    }
    println!("truncated copies: {outcomes:?}");
}

/// Without the integrity check redb trusts the file: damage may go unnoticed
/// (wrong data) or make redb panic. This documents that behaviour; the only
/// assertion is that no panic escapes `FileStore`.
#[test]
fn without_the_integrity_check_panics_are_still_contained() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = dir.path().join("original.redb");
    let expected = write_store(&original);
    let bytes = std::fs::read(&original).expect("read store file");
    let options = FileStoreOptions {
        check_integrity_on_open: false,
        ..FileStoreOptions::default()
    };
    let damaged = dir.path().join("damaged.redb");
    let mut rng = Rng(0xbad);
    let (mut errors, mut intact, mut wrong) = (0, 0, 0);
    for _ in 0..100 {
        let mut copy = bytes.clone();
        let pos = (rng.next() % copy.len() as u64) as usize;
        copy[pos] ^= 0xFF;
        std::fs::write(&damaged, &copy).expect("write damaged copy");
        let result = catch_unwind(AssertUnwindSafe(|| {
            FileStore::open_with(&damaged, options).and_then(|store| store.list_prefix(""))
        }));
        match result.expect("a panic escaped FileStore") {
            Err(_) => errors += 1,
            Ok(entries) if entries == expected => intact += 1,
            Ok(_) => wrong += 1,
        }
    }
    println!("integrity check off, 100 damaged copies: {errors} errors, {intact} intact, {wrong} wrong data");
}
