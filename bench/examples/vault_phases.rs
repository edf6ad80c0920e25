//! Where the time of the vault's write path goes, natively, on the
//! simulator's host loop (the same `Vault::handle_input` / `poll_output`
//! path the browser's worker drives): N creates as separate calls decoded
//! from JSON like the browser host does, the flush that stores them, and a
//! cold open of the space afterwards.
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

use echo_core::rpc::{
    decode_client_message, AdminRequest, ClientMessage, Probe, Request, Response, VaultMessage,
};
use echo_core::store::ChunkStore;
use echo_core::vault::{ConnId, Input};
use echo_sim::Node;

const APP: &str = "http://app.localhost:8601";
const T: u64 = 1_700_000_000_000;

fn decode(conn: ConnId, text: &str) -> Input {
    let message = decode_client_message(serde_json::from_str::<ClientMessage>(text), || {
        serde_json::from_str::<Probe>(text).ok()
    });
    Input::AppMessage { conn, message }
}

/// Hands the calls to the vault as one arrival (like a frame), then times
/// the phases: inputs (decode + stage), until the flush is asked for
/// (commit + prepare), the flush's completion (store + answers).
fn burst(n: &mut Node, conn: ConnId, texts: &[String]) -> (Duration, Duration, Duration, usize) {
    n.auto_io = false;
    let t = Instant::now();
    for text in texts {
        n.feed(T, decode(conn, text));
    }
    let staged = t.elapsed();
    let t = Instant::now();
    n.drain(T);
    let prepared = t.elapsed();
    let puts = n.writes.iter().map(|(_, b)| b.len()).sum();
    let t = Instant::now();
    n.complete_io(T);
    let done = t.elapsed();
    n.auto_io = true;
    (staged, prepared, done, puts)
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut n = Node::new("bench", 1, T);
    let app = n.connect_app(T, APP);
    let admin = n.connect_admin(T);
    n.admin_call(
        T,
        admin,
        AdminRequest::Decide {
            origin: APP.into(),
            allow: true,
            spaces: vec![],
        },
    )
    .unwrap();
    let space = match n
        .call(
            T,
            app,
            Request::CreateSpace {
                properties: Default::default(),
            },
        )
        .unwrap()
    {
        Response::Space(s) => s.space,
        other => panic!("{other:?}"),
    };

    let texts: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"request":{{"id":{},"method":{{"object.create":{{"space":"{space}","type":"task","fields":{{"title":{{"string":"task number {i}"}},"done":{{"bool":{}}},"priority":{{"float":{}}},"tags":{{"list":[{{"string":"work"}},{{"string":"p1"}}]}},"ref":{{"string":"obj-{}"}}}}}}}}}}}}"#,
                10 + i,
                i % 2 == 0,
                (i % 1000) as f64 / 10.0 + 0.5,
                (i * 7) % count
            )
        })
        .collect();
    // The calls arrive together (as a frame does): all of them share a flush.
    let (staged, prepared, done, puts) = burst(&mut n, app, &texts);
    println!(
        "{count} creates as separate calls: decode + stage {staged:?} ({:.1} µs/call), commit + prepare the flush {prepared:?} ({puts} puts), store + answers {done:?}",
        staged.as_secs_f64() * 1e6 / count as f64
    );
    let again: Vec<String> = texts
        .iter()
        .map(|t| t.replacen("\"task number", "\"again task number", 1))
        .collect();
    let t = Instant::now();
    burst(&mut n, app, &again);
    println!(
        "a second {count} into the saved space (decode + commit + flush): {:?}",
        t.elapsed()
    );

    // Single updates, each awaited (its own flush): where the time of one goes.
    let ids = match n
        .call(
            T,
            app,
            serde_json::from_str::<Request>(&format!(
                r#"{{"query.run":{{"space":"{space}","query":{{"filter":{{"type":"task"}},"limit":1000}}}}}}"#
            ))
            .unwrap(),
        )
        .unwrap()
    {
        Response::Result { ids, .. } => ids,
        other => panic!("{other:?}"),
    };
    let (mut stage, mut prep, mut finish, mut puts) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
    for (k, id) in ids.iter().enumerate() {
        let text = format!(
            r#"{{"request":{{"id":{},"method":{{"object.update":{{"space":"{space}","id":"{id}","set":{{"done":{{"bool":true}}}}}}}}}}}}"#,
            500_000 + k
        );
        let (s, p, d, u) = burst(&mut n, app, &[text]);
        stage += s;
        prep += p;
        finish += d;
        puts += u;
    }
    let n_up = ids.len() as f64;
    println!("{} single updates, each its own flush: per update decode+stage {:.1} µs, commit + prepare {:.1} µs, store + answer {:.1} µs; {:.1} puts per flush",
        ids.len(), stage.as_secs_f64() * 1e6 / n_up, prep.as_secs_f64() * 1e6 / n_up, finish.as_secs_f64() * 1e6 / n_up, puts as f64 / n_up);

    text_replay(&mut n, app, &space);

    // A big space: BIG objects in batch calls of 1,000, a flush per 10 calls.
    let big: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let t = Instant::now();
    let mut id = 1_000_000u64;
    let mut round = Vec::new();
    for chunk in 0..big.div_ceil(1000) {
        let mut muts = Vec::new();
        for i in chunk * 1000..((chunk + 1) * 1000).min(big) {
            muts.push(format!(
                r#"{{"create":{{"type":"{}","fields":{{"title":{{"string":"task number {i}"}},"done":{{"bool":{}}},"priority":{{"float":{}}},"tags":{{"list":[{{"string":"work"}}]}},"ref":{{"string":"obj-{}"}}}}}}}}"#,
                if i % 4 == 0 { "task" } else { "note" }, i % 2 == 0, (i % 1000) as f64 / 10.0 + 0.5, (i * 7) % big));
        }
        id += 1;
        round.push(format!(
            r#"{{"request":{{"id":{id},"method":{{"object.batch":{{"space":"{space}","mutations":[{}]}}}}}}}}"#,
            muts.join(",")
        ));
        if round.len() == 10 {
            burst(&mut n, app, &std::mem::take(&mut round));
        }
    }
    burst(&mut n, app, &round);
    let keys = n
        .store
        .list_keys(&echo_core::model::space_prefix(&space.parse().unwrap()))
        .unwrap()
        .len();
    println!(
        "filled {big} objects in {:?} ({keys} keys in the space)",
        t.elapsed()
    );

    // Cold open: the vault boots (records, keys), then the first query
    // reads and opens the space.
    let t = Instant::now();
    n.restart(T + 1);
    let booted = t.elapsed();
    let app = n.connect_app(T + 1, APP);
    let t = Instant::now();
    n.call(
        T + 1,
        app,
        serde_json::from_str::<Request>(&format!(
            r#"{{"query.run":{{"space":"{space}","query":{{"filter":{{"type":"task"}},"limit":10}}}}}}"#
        ))
        .unwrap(),
    )
    .unwrap();
    println!(
        "cold open: boot {booted:?}, space open + first query {:?}",
        t.elapsed()
    );
}

/// The automerge-paper trace as `text.splice` calls, in rounds of 16,384
/// calls with one flush each: where the time of the browser's workload 4
/// goes, natively.
fn text_replay(n: &mut Node, app: ConnId, space: &str) {
    let trace = match trace::load("automerge-paper") {
        Ok(t) => t,
        Err(e) => {
            println!("text replay skipped: {e}");
            return;
        }
    };
    let created = n
        .call(
            T,
            app,
            serde_json::from_str::<Request>(&format!(
                r#"{{"object.create":{{"space":"{space}","type":"doc","fields":{{"note":{{"text":""}}}}}}}}"#
            ))
            .unwrap(),
        )
        .unwrap();
    let Response::Written { created } = created else {
        panic!("{created:?}")
    };
    let doc = &created[0];
    let (mut stage, mut prepare, mut done, mut puts) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
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
        let (s, p, d, u) = burst(n, app, &texts);
        stage += s;
        prepare += p;
        done += d;
        puts += u;
    }
    let answered = n.app.get(&app).map_or(0, |m| {
        m.iter()
            .filter(|m| matches!(m, VaultMessage::Response { .. }))
            .count()
    });
    println!(
        "text replay ({} splices in rounds of 16,384): {:?} — decode + stage {stage:?}, commit + prepare {prepare:?} ({puts} puts), store + answers {done:?}; {answered} answers",
        trace.patches.len(),
        started.elapsed(),
    );
}
