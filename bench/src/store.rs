//! `store`: the native file store (`echo-store-file`, redb) on its own.
//!
//! Writes 1,000 batches of 100 × 1 KiB values (one durable redb commit
//! each), lists a 10 MB prefix, reads single keys, measures commit overhead
//! with tiny batches, and times reopening the ~100 MB file with and without
//! the integrity check. The in-memory store gives a no-I/O baseline.

use std::path::Path;
use std::time::{Duration, Instant};

use echo_core::store::{contract::pattern, Batch, ChunkStore, MemoryStore};
use echo_store_file::{FileStore, FileStoreOptions};

use crate::report::Report;

const SECTION: &str = "store";
const BATCHES: usize = 1_000;
const PER_BATCH: usize = 100;
const VALUE: usize = 1024;

fn batch(b: usize, values: &[Vec<u8>]) -> Batch {
    let mut batch = Batch::new();
    for (i, value) in values.iter().enumerate() {
        batch.put(format!("bench/{b:06}/{i:03}"), value.clone());
    }
    batch
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

pub fn run(report: &mut Report) {
    let dir = std::env::temp_dir().join(format!("echo-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    file_store(report, &dir.join("store.redb"));
    memory_store(report);
    let _ = std::fs::remove_dir_all(&dir);
}

fn file_store(report: &mut Report, path: &Path) {
    let values: Vec<Vec<u8>> = (0..PER_BATCH).map(|i| pattern(VALUE, i as u64)).collect();
    let payload = BATCHES * PER_BATCH * VALUE;
    let mut store = FileStore::open(path).expect("open file store");

    let started = Instant::now();
    for b in 0..BATCHES {
        store.apply(batch(b, &values)).expect("apply");
    }
    let secs = started.elapsed().as_secs_f64();
    report.add(
        SECTION,
        "file: apply 1000 × (100 × 1 KiB)",
        BATCHES as f64 / secs,
        "batch/s",
        "one fsync'ed redb commit per batch",
    );
    report.add(
        SECTION,
        "file: apply throughput",
        mb(payload) / secs,
        "MB/s",
        "values only",
    );

    // 100 batches × 100 × 1 KiB = 10.24 MB under one prefix.
    let prefix = "bench/0000";
    let listed = store.list_prefix(prefix).expect("list");
    let bytes: usize = listed.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(listed.len(), 100 * PER_BATCH);
    let runs = (0..5)
        .map(|_| {
            let t = Instant::now();
            let l = store.list_prefix(prefix).expect("list");
            std::hint::black_box(l);
            t.elapsed()
        })
        .collect();
    let t = median(runs).as_secs_f64();
    report.add(
        SECTION,
        "file: list_prefix 10 MB (10k entries)",
        t * 1e3,
        "ms",
        &format!("{:.0} MB/s", mb(bytes) / t),
    );

    let keys_t = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(store.list_keys(prefix).expect("list keys"));
                t.elapsed()
            })
            .collect(),
    );
    report.add(
        SECTION,
        "file: list_keys 10k keys",
        keys_t.as_secs_f64() * 1e3,
        "ms",
        "",
    );

    let gets = 10_000;
    let t = Instant::now();
    for i in 0..gets {
        let key = format!("bench/{:06}/{:03}", (i * 7919) % BATCHES, i % PER_BATCH);
        std::hint::black_box(store.get(&key).expect("get"));
    }
    report.add(
        SECTION,
        "file: get 1 KiB (warm cache)",
        t.elapsed().as_secs_f64() * 1e6 / gets as f64,
        "µs/op",
        "one read transaction each",
    );

    let tiny = 1_000;
    let t = Instant::now();
    for i in 0..tiny {
        let mut b = Batch::new();
        b.put(format!("tiny/{i:06}"), vec![1u8; 100]);
        store.apply(b).expect("apply tiny");
    }
    report.add(
        SECTION,
        "file: apply 1 × 100 B batches",
        tiny as f64 / t.elapsed().as_secs_f64(),
        "batch/s",
        "commit + fsync overhead",
    );
    drop(store);

    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    report.add(
        SECTION,
        "file: size on disk",
        mb(size as usize),
        "MB",
        &format!("for {:.1} MB of values", mb(payload)),
    );
    for (check, metric) in [
        (true, "file: reopen, integrity check on"),
        (false, "file: reopen, integrity check off"),
    ] {
        let options = FileStoreOptions {
            check_integrity_on_open: check,
            ..FileStoreOptions::default()
        };
        let t = Instant::now();
        let store = FileStore::open_with(path, options).expect("reopen");
        let secs = t.elapsed().as_secs_f64();
        drop(store);
        report.add(
            SECTION,
            metric,
            secs * 1e3,
            "ms",
            &format!("{:.0} MB file", mb(size as usize)),
        );
    }
}

fn memory_store(report: &mut Report) {
    let values: Vec<Vec<u8>> = (0..PER_BATCH).map(|i| pattern(VALUE, i as u64)).collect();
    let mut store = MemoryStore::new();
    let t = Instant::now();
    for b in 0..BATCHES {
        store.apply(batch(b, &values)).expect("apply");
    }
    let secs = t.elapsed().as_secs_f64();
    report.add(
        SECTION,
        "memory: apply 1000 × (100 × 1 KiB)",
        BATCHES as f64 / secs,
        "batch/s",
        "baseline without I/O",
    );
    let runs = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(store.list_prefix("bench/0000").expect("list"));
            t.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "memory: list_prefix 10 MB",
        median(runs).as_secs_f64() * 1e3,
        "ms",
        "baseline without I/O",
    );
}
