//! Where the time of the vault's write path goes, natively: N creates as
//! separate calls (decoded from JSON like the browser host does), one
//! flush, its storage batch; and a cold open of the space afterwards.
//!
//! cargo run --release -p echo-bench --example vault_phases -- [N] [BIG]
//!
//! With the automerge-paper trace present (`$ECHO_TRACES_DIR`), it also
//! replays it as `text.splice` calls in rounds of 16,384 (the browser
//! benchmark's flow control), one flush per round.

use std::time::{Duration, Instant};

#[path = "../src/trace.rs"]
#[allow(dead_code)]
mod trace;

use echo_core::identity::{ChaChaKeyWrap, KeyWrap};
use echo_core::rpc::{decode_client_message, ClientMessage, Probe, Response, VaultMessage};
use echo_core::store::{ChunkStore, MemoryStore};
use echo_core::vault::{NewIdentity, Output, StoredVault, Vault, PREFIX};

fn drain(v: &mut Vault) -> Vec<Output> {
    std::iter::from_fn(|| v.poll_output()).collect()
}

fn call(v: &mut Vault, conn: echo_core::vault::ConnId, text: &str) {
    let decoded = decode_client_message(serde_json::from_str::<ClientMessage>(text), || {
        serde_json::from_str::<Probe>(text).ok()
    });
    v.app_message(conn, decoded);
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let (wrap, _) = ChaChaKeyWrap::generate().unwrap();
    let new = NewIdentity::generate().unwrap();
    let [a, b] = new.seal_requests();
    let cts = [
        wrap.seal(a.plaintext(), &a.aad()).unwrap(),
        wrap.seal(b.plaintext(), &b.aad()).unwrap(),
    ];
    let mut v = Vault::create(new, cts, StoredVault::default()).unwrap();
    let mut store = MemoryStore::new();
    let admin = v.connect_admin();
    let app = v.connect_app("http://app.localhost:8601");
    call(
        &mut v,
        app,
        r#"{"hello":{"versions":[1],"client":"bench"}}"#,
    );
    let decide = r#"{"request":{"id":1,"method":{"consent.decide":{"origin":"http://app.localhost:8601","allow":true}}}}"#;
    v.admin_message(admin, serde_json::from_str(decide).unwrap(), 0.0);
    let flush = |v: &mut Vault, store: &mut MemoryStore| {
        if let Some(f) = v.prepare_flush().unwrap() {
            store.apply(f.batch).unwrap();
            v.flush_done(f.ticket);
        }
    };
    flush(&mut v, &mut store);
    call(
        &mut v,
        app,
        r#"{"request":{"id":2,"method":{"spaces.create":{}}}}"#,
    );
    flush(&mut v, &mut store);
    let space = drain(&mut v)
        .into_iter()
        .find_map(|o| match o {
            Output::App {
                message:
                    VaultMessage::Response {
                        result: Ok(Response::Space(s)),
                        ..
                    },
                ..
            } => Some(s.space),
            _ => None,
        })
        .unwrap();

    let texts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"request":{{"id":{},"method":{{"object.create":{{"space":"{space}","type":"task","fields":{{"title":{{"string":"task number {i}"}},"done":{{"bool":{}}},"priority":{{"float":{}}},"tags":{{"list":[{{"string":"work"}},{{"string":"p1"}}]}},"ref":{{"string":"obj-{}"}}}}}}}}}}}}"#,
                10 + i,
                i % 2 == 0,
                (i % 1000) as f64 / 10.0 + 0.5,
                (i * 7) % n
            )
        })
        .collect();
    let t = Instant::now();
    for text in &texts {
        call(&mut v, app, text);
    }
    let apply = t.elapsed();
    let t = Instant::now();
    v.commit_staged();
    let commit = t.elapsed();
    let t = Instant::now();
    let f = v.prepare_flush().unwrap().unwrap();
    let prepare = t.elapsed();
    let ops = f.batch.len();
    let bytes: usize = f
        .batch
        .ops()
        .iter()
        .map(|op| match op {
            echo_core::store::Op::Put { key, value } => key.len() + value.len(),
            echo_core::store::Op::Delete { key } => key.len(),
        })
        .sum();
    store.apply(f.batch).unwrap();
    let t = Instant::now();
    v.flush_done(f.ticket);
    let answers = drain(&mut v).len();
    let done = t.elapsed();
    println!("{n} creates as separate calls: decode + stage {apply:?} ({:.1} µs/call), commit {commit:?}, prepare_flush {prepare:?} ({ops} puts, {} KiB), flush_done + {answers} answers {done:?}",
        apply.as_secs_f64() * 1e6 / n as f64, bytes / 1024);
    // A second burst into the same (now saved) space: incremental chunks.
    let t = Instant::now();
    for text in &texts {
        let again = text.replacen("\"task number", "\"again task number", 1);
        call(&mut v, app, &again);
    }
    v.commit_staged();
    let f = v.prepare_flush().unwrap().unwrap();
    let second = t.elapsed();
    store.apply(f.batch).unwrap();
    v.flush_done(f.ticket);
    drain(&mut v);
    println!("a second {n} into the saved space (decode + commit + prepare_flush): {second:?}");

    // Single updates, each flushed on its own (an awaited write): where
    // the time of one goes.
    let ids: Vec<String> = {
        let q = format!(
            r#"{{"request":{{"id":3,"method":{{"query.run":{{"space":"{space}","query":{{"filter":{{"type":"task"}},"limit":1000}}}}}}}}}}"#
        );
        call(&mut v, app, &q);
        drain(&mut v)
            .into_iter()
            .find_map(|o| match o {
                Output::App {
                    message:
                        VaultMessage::Response {
                            result: Ok(Response::Result { ids, .. }),
                            ..
                        },
                    ..
                } => Some(ids),
                _ => None,
            })
            .unwrap()
    };
    let (mut stage, mut prep, mut done) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    let mut puts = 0;
    for (k, id) in ids.iter().enumerate() {
        let text = format!(
            r#"{{"request":{{"id":{},"method":{{"object.update":{{"space":"{space}","id":"{id}","set":{{"done":{{"bool":true}}}}}}}}}}}}"#,
            500_000 + k
        );
        let t = Instant::now();
        call(&mut v, app, &text);
        stage += t.elapsed();
        let t = Instant::now();
        let f = v.prepare_flush().unwrap().unwrap();
        prep += t.elapsed();
        puts += f.batch.len();
        store.apply(f.batch).unwrap();
        let t = Instant::now();
        v.flush_done(f.ticket);
        drain(&mut v);
        done += t.elapsed();
    }
    let n_up = ids.len() as f64;
    println!("{} single updates, each its own flush: per update decode+stage {:.1} µs, prepare_flush (commit, seal, save) {:.1} µs, done {:.1} µs; {:.1} puts per flush",
        ids.len(), stage.as_secs_f64() * 1e6 / n_up, prep.as_secs_f64() * 1e6 / n_up, done.as_secs_f64() * 1e6 / n_up, puts as f64 / n_up);

    text_replay(&mut v, app, &mut store, &space);

    // A big space: BIG objects in batch calls of 1,000, a flush per 10 calls.
    let big: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let t = Instant::now();
    let mut id = 1_000_000u64;
    for chunk in 0..big.div_ceil(1000) {
        let mut muts = Vec::new();
        for i in chunk * 1000..((chunk + 1) * 1000).min(big) {
            muts.push(format!(
                r#"{{"create":{{"type":"{}","fields":{{"title":{{"string":"task number {i}"}},"done":{{"bool":{}}},"priority":{{"float":{}}},"tags":{{"list":[{{"string":"work"}}]}},"ref":{{"string":"obj-{}"}}}}}}}}"#,
                if i % 4 == 0 { "task" } else { "note" }, i % 2 == 0, (i % 1000) as f64 / 10.0 + 0.5, (i * 7) % big));
        }
        id += 1;
        let text = format!(
            r#"{{"request":{{"id":{id},"method":{{"object.batch":{{"space":"{space}","mutations":[{}]}}}}}}}}"#,
            muts.join(",")
        );
        call(&mut v, app, &text);
        if chunk % 10 == 9 {
            flush(&mut v, &mut store);
            drain(&mut v);
        }
    }
    flush(&mut v, &mut store);
    drain(&mut v);
    let keys = store
        .list_keys(&Vault::storage_prefix(&space.parse().unwrap()))
        .unwrap()
        .len();
    println!(
        "filled {big} objects in {:?} ({keys} keys in the space)",
        t.elapsed()
    );

    // Cold open: records, then the space from its chunks, then a query.
    let t = Instant::now();
    let stored = StoredVault::parse(store.list_prefix(PREFIX).unwrap()).unwrap();
    let sealed = stored.sealed_device().unwrap().unwrap();
    let plain = wrap.unseal(sealed.ciphertext(), &sealed.aad()).unwrap();
    let mut v = Vault::open(stored, &plain).unwrap();
    let id = space.parse().unwrap();
    let entries = store.list_prefix(&Vault::storage_prefix(&id)).unwrap();
    let listed = t.elapsed();
    v.open_space(id, entries).unwrap();
    let opened = t.elapsed();
    println!(
        "cold open: records + list {listed:?}, space open {:?}",
        opened - listed
    );
}

/// The automerge-paper trace as `text.splice` calls, in rounds of 16,384
/// calls with one flush each: where the time of the browser's workload 4
/// goes, natively.
fn text_replay(v: &mut Vault, app: echo_core::vault::ConnId, store: &mut MemoryStore, space: &str) {
    let trace = match trace::load("automerge-paper") {
        Ok(t) => t,
        Err(e) => {
            println!("text replay skipped: {e}");
            return;
        }
    };
    call(
        v,
        app,
        &format!(
            r#"{{"request":{{"id":900000,"method":{{"object.create":{{"space":"{space}","type":"doc","fields":{{"note":{{"text":""}}}}}}}}}}}}"#
        ),
    );
    let f = v.prepare_flush().unwrap().unwrap();
    store.apply(f.batch).unwrap();
    v.flush_done(f.ticket);
    let doc = drain(v)
        .into_iter()
        .find_map(|o| match o {
            Output::App {
                message:
                    VaultMessage::Response {
                        result: Ok(Response::Written { created }),
                        ..
                    },
                ..
            } => created.into_iter().next(),
            _ => None,
        })
        .unwrap();
    let (mut decode, mut commit, mut prepare, mut done) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let (mut puts, mut bytes) = (0usize, 0usize);
    let started = Instant::now();
    for (round, patches) in trace.patches.chunks(16_384).enumerate() {
        let texts: Vec<String> = patches
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    r#"{{"request":{{"id":{},"method":{{"text.splice":{{"space":"{space}","id":"{doc}","field":"note","pos":{},"delete":{},"insert":{}}}}}}}}}"#,
                    1_000_000 + round * 16_384 + i,
                    p.pos,
                    p.del,
                    serde_json::to_string(&p.insert).unwrap()
                )
            })
            .collect();
        let t = Instant::now();
        for text in &texts {
            call(v, app, text);
        }
        decode += t.elapsed();
        let t = Instant::now();
        v.commit_staged();
        commit += t.elapsed();
        let t = Instant::now();
        let f = v.prepare_flush().unwrap().unwrap();
        prepare += t.elapsed();
        puts += f.batch.len();
        bytes += f
            .batch
            .ops()
            .iter()
            .map(|op| match op {
                echo_core::store::Op::Put { value, .. } => value.len(),
                echo_core::store::Op::Delete { .. } => 0,
            })
            .sum::<usize>();
        store.apply(f.batch).unwrap();
        let t = Instant::now();
        v.flush_done(f.ticket);
        drain(v);
        done += t.elapsed();
    }
    println!(
        "text replay ({} splices in rounds of 16,384): {:?} — decode + stage {decode:?}, commit {commit:?}, prepare_flush {prepare:?} ({puts} puts, {} KiB), flush_done {done:?}",
        trace.patches.len(),
        started.elapsed(),
        bytes / 1024
    );
}
