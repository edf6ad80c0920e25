//! Crash safety: a child process writes numbered batches and acknowledges
//! each after `apply` returned `Ok`; we SIGKILL it at random moments, reopen
//! the store and check that every acknowledged batch is there in full and no
//! batch is there in part.
//!
//! This simulates a process crash (the OS keeps its page cache). A power
//! loss is covered by redb's fsync-on-commit (`Durability::Immediate`),
//! which this test cannot simulate.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use echo_core::store::ChunkStore;
use echo_store_file::crash::{batch_keys, marker, value, KEEP, NEXT_KEY};
use echo_store_file::FileStore;

const ROUNDS: usize = 30;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn killed_writer_loses_no_acknowledged_batch_and_leaves_no_partial_one() {
    let seed = std::env::var("ECHO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("seed {seed} (rerun with ECHO_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.redb");
    let started = Instant::now();
    let mut max_acked: Option<u64> = None;
    let mut total_acks = 0usize;

    for round in 0..ROUNDS {
        let mut child = spawn_writer(&path, Stdio::piped);
        // Mostly kill mid-stream; sometimes right away (during open/recovery).
        let delay_ms = match rng.next() % 10 {
            0 => rng.next() % 5,
            _ => 20 + rng.next() % 400,
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        let exited_early = child.try_wait().expect("poll crash-writer");
        child.kill().expect("SIGKILL crash-writer");
        let status = child.wait().expect("reap crash-writer");
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read stdout");
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read stderr");
        assert!(
            exited_early.is_none(),
            "round {round}: crash-writer exited by itself ({status}): {err}"
        );

        // Only complete lines were acknowledged.
        let complete = out.rfind('\n').map_or("", |end| &out[..end]);
        let acks: Vec<u64> = complete
            .lines()
            .map(|l| {
                l.parse()
                    .unwrap_or_else(|_| panic!("round {round}: bad ack line {l:?}"))
            })
            .collect();
        for pair in acks.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "round {round}: acks out of order");
        }
        if let (Some(first), Some(prev)) = (acks.first(), max_acked) {
            assert!(
                *first > prev,
                "round {round}: batch {first} acknowledged twice (after {prev})"
            );
        }
        total_acks += acks.len();
        if let Some(last) = acks.last() {
            max_acked = Some(*last);
        }

        check_store(&path, round, max_acked);
    }
    println!(
        "{ROUNDS} rounds, {total_acks} acknowledged batches, last {max_acked:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        total_acks >= ROUNDS,
        "the writer made too little progress to test anything ({total_acks} batches)"
    );
}

/// A writer killed while it creates its store — before, during or after
/// redb writes the new file's first header — leaves a path that opens: no
/// file (the next open creates it) or a store whose batches are whole. Each round
/// uses a fresh path and kills within the first few milliseconds, spread
/// over the creation window.
#[test]
fn a_writer_killed_while_creating_its_store_leaves_a_store_that_opens() {
    const CREATION_ROUNDS: u64 = 40;
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..CREATION_ROUNDS {
        let path = dir.path().join(format!("new-{round}.redb"));
        let mut child = spawn_writer(&path, Stdio::null);
        // 0.0 .. 4.0 ms in steps of 0.1 ms: process start-up takes about
        // one, creating the file another.
        std::thread::sleep(Duration::from_micros(round * 100));
        child.kill().expect("SIGKILL crash-writer");
        child.wait().expect("reap crash-writer");
        // It opens, and whatever batches the writer got to are whole.
        check_store(&path, round as usize, None);
    }
}

/// Starts the `crash-writer` helper on `path`, its output going to `out()`.
fn spawn_writer(path: &std::path::Path, out: fn() -> Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(path)
        .stdout(out())
        .stderr(out())
        .spawn()
        .expect("start crash-writer")
}

/// Opens the store after a kill and checks the invariants.
fn check_store(path: &std::path::Path, round: usize, max_acked: Option<u64>) {
    let store = FileStore::open(path)
        .unwrap_or_else(|e| panic!("round {round}: the store does not reopen: {e}"));
    let next: u64 = match store.get(NEXT_KEY).expect("read next") {
        Some(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("next is a number"),
        None => 0,
    };
    // Every acknowledged batch was committed (batches commit in order).
    if let Some(acked) = max_acked {
        assert!(next > acked, "round {round}: batch {acked} was acknowledged but the store only has batches before {next}");
    }
    // Exactly batches next-KEEP .. next are present, each complete.
    let first = next.saturating_sub(KEEP);
    let mut expected_keys = Vec::new();
    for n in first..next {
        let mut keys = batch_keys(n);
        keys.push(format!("crash/b/{n:08}/marker"));
        expected_keys.extend(keys);
    }
    expected_keys.sort();
    let present = store.list_keys("crash/b/").expect("list batches");
    assert_eq!(
        present, expected_keys,
        "round {round}: with next = {next}, the store holds a partial or stray batch"
    );
    for n in first..next {
        for (i, key) in batch_keys(n).iter().enumerate() {
            let got = store.get(key).expect("read value");
            assert!(
                got.as_deref() == Some(value(n, i).as_slice()),
                "round {round}: {key} has the wrong value"
            );
        }
        let got = store
            .get(&format!("crash/b/{n:08}/marker"))
            .expect("read marker");
        assert_eq!(
            got,
            Some(marker(n)),
            "round {round}: marker of batch {n} is wrong"
        );
    }
}
