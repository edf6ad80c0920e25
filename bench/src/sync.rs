//! Section "sync": two vaults replicating a space over the peer protocol,
//! natively, in one process — the simulator's host loop (`echo_sim`) on
//! memory stores with a network of no delay, so the times are the two
//! vaults' own work: framing, authentication, the sync exchange, signing,
//! verifying, merging, storing. The space holds the engine section's
//! workload (100,000 objects of six fields, written in batches of 1,000).
//!
//! Rows, each measured until the network is quiet and both vaults hold the
//! same heads:
//! - initial sync to a member's empty vault: time, bytes on the wire and
//!   their ratio to the space's compacted CRDT documents (what a snapshot
//!   carries: every shard's `save()`), transport writes;
//! - one edit on one side → applied on the other: bytes and writes each
//!   way;
//! - reconnect after 1,000 edits on each side while apart: time and bytes,
//!   with the vaults running, and again after both restarted (per-peer
//!   state read back from storage);
//!
//! and, in the same run, the anchor: raw `automerge::sync` between two
//! documents holding the same objects (one document, committed every
//! 1,000), for the same four rows — the reconnect after a restart with
//! fresh sync states, which is what a restart leaves automerge.
//!
//! Takes about 30 s on a 2-core machine (`cargo run --release -p
//! echo-bench -- sync`).

use std::time::Instant;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use echo_core::data::SpaceId;
use echo_core::rpc::{
    Request, Response, Role, WireFields, WireFilter, WireInt, WireMutation, WireReference,
    WireValue,
};
use echo_core::vault::ConnId;
use echo_sim::scenario::{allow, query, share, write};
use echo_sim::{NetConfig, Sim, Traffic};

use crate::baseline::{new_doc, write_object};
use crate::report::Report;
use crate::workload::{self, GenObject, SplitMix64, DEFAULT_SEED, F_NUMBER};

const SECTION: &str = "sync";
const OBJECTS: usize = 100_000;
const BATCH: usize = 1_000;
const EDITS: usize = 1_000;

pub fn run(report: &mut Report) {
    let objs = workload::objects(OBJECTS, DEFAULT_SEED);
    let echo = echo_rows(&objs);
    let anchor = anchor_rows(&objs);
    report.say(
        SECTION,
        &format!(
            "{OBJECTS} objects of 6 fields; ECHO: two vaults on the simulator's host loop, \
             no network delay; anchor: raw automerge::sync, one document"
        ),
    );
    let rows = [
        ("initial sync", &echo.initial, &anchor.initial),
        ("one edit", &echo.one_edit, &anchor.one_edit),
        (
            "reconnect, 1,000 + 1,000 edits",
            &echo.reconnect,
            &anchor.reconnect,
        ),
        (
            "reconnect after both restarted, 1,000 + 1,000 edits",
            &echo.after_restart,
            &anchor.after_restart,
        ),
    ];
    for (name, e, a) in rows {
        report.add(
            SECTION,
            &format!("{name}: time"),
            e.secs * 1e3,
            "ms",
            &format!(
                "automerge::sync {:.1} ms ({:.2}×)",
                a.secs * 1e3,
                e.secs / a.secs
            ),
        );
        report.add(
            SECTION,
            &format!("{name}: bytes"),
            e.bytes() as f64,
            "B",
            &format!(
                "automerge::sync {} B ({:.2}×); writes {} → / {} ←, automerge messages {} → / {} ←",
                a.bytes(),
                e.bytes() as f64 / a.bytes() as f64,
                e.there.writes,
                e.back.writes,
                a.there.writes,
                a.back.writes,
            ),
        );
    }
    report.add(
        SECTION,
        "initial sync: bytes / compacted CRDT bytes",
        echo.initial.bytes() as f64 / echo.compacted as f64,
        "×",
        &format!(
            "{} B of shard documents (save()), signed bundle headers included on the wire; \
             automerge::sync {:.2}× its document ({} B)",
            echo.compacted,
            anchor.initial.bytes() as f64 / anchor.compacted as f64,
            anchor.compacted
        ),
    );
    report.add(
        SECTION,
        "after a restart: open the space (per vault)",
        echo.reopen_secs * 1e3,
        "ms",
        "the index from storage; not in the reconnect row (a vault opens a space before it offers it)",
    );
    report.add(
        SECTION,
        "after a restart: parse the shard documents (per vault)",
        echo.documents_secs * 1e3,
        "ms",
        "Space::load_documents; not in the reconnect row (the anchor's documents stay in memory too)",
    );
}

/// What crossed the wire in one measured exchange, and how long it took.
#[derive(Clone, Copy, Debug, Default)]
struct Exchange {
    secs: f64,
    /// From the side that changed (or holds the data) to the other.
    there: Traffic,
    back: Traffic,
}

impl Exchange {
    fn bytes(&self) -> u64 {
        self.there.bytes + self.back.bytes
    }
}

struct Rows {
    initial: Exchange,
    one_edit: Exchange,
    reconnect: Exchange,
    after_restart: Exchange,
    compacted: u64,
    reopen_secs: f64,
    documents_secs: f64,
}

// ------------------------------------------------------------------ ECHO

fn fields(o: &GenObject) -> WireFields {
    let mut f = WireFields::new();
    f.insert("title".into(), WireValue::String(o.title.clone()));
    f.insert("number".into(), WireValue::Int(WireInt(o.number)));
    f.insert("flag".into(), WireValue::Bool(o.flag));
    f.insert(
        "tags".into(),
        WireValue::List(o.tags.iter().cloned().map(WireValue::String).collect()),
    );
    f.insert(
        "ref".into(),
        WireValue::Ref(WireReference {
            space: None,
            object: o.ref_text.clone(),
        }),
    );
    f
}

/// Runs the network until nothing is in flight; returns the wall time and
/// what each node sent meanwhile.
fn until_quiet(sim: &mut Sim, from: usize, to: usize) -> Exchange {
    let before = sim.sent_by.clone();
    let t = Instant::now();
    loop {
        let now = sim.now;
        sim.step(now);
        if !sim.in_flight() {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let delta = |n: usize| Traffic {
        bytes: sim.sent_by[n].bytes - before[n].bytes,
        writes: sim.sent_by[n].writes - before[n].writes,
    };
    Exchange {
        secs,
        there: delta(from),
        back: delta(to),
    }
}

/// Every shard's heads of `space` on node `n`.
fn heads(sim: &mut Sim, n: usize, space: &SpaceId) -> Vec<Vec<automerge::ChangeHash>> {
    let replica = sim.nodes[n]
        .vault_mut()
        .replica_mut(space)
        .expect("the space is open");
    (0..replica.space().shard_count())
        .map(|s| replica.shard_heads(s).expect("heads"))
        .collect()
}

fn assert_converged(sim: &mut Sim, space: &SpaceId, what: &str) {
    assert!(
        heads(sim, 0, space) == heads(sim, 1, space),
        "{what}: the two vaults differ"
    );
}

fn edits(sim: &mut Sim, n: usize, app: ConnId, space: &str, ids: &[String], rng: &mut SplitMix64) {
    for _ in 0..EDITS {
        let id = &ids[rng.below(ids.len() as u64) as usize];
        let mut set = WireFields::new();
        set.insert(
            "number".into(),
            WireValue::Int(WireInt(rng.below(1_000_000) as i64)),
        );
        write(
            sim,
            n,
            app,
            Request::UpdateObject {
                space: space.into(),
                id: id.clone(),
                set,
                remove: vec![],
            },
        );
    }
}

fn count(sim: &mut Sim, n: usize, app: ConnId, space: &str) -> usize {
    match write(sim, n, app, query(space, WireFilter::All, false, false)) {
        Response::Result { ids, .. } => ids.len(),
        other => panic!("{other:?}"),
    }
}

fn echo_rows(objs: &[GenObject]) -> Rows {
    let mut sim = Sim::new(DEFAULT_SEED, 2);
    sim.net = NetConfig {
        min_delay: 0,
        max_delay: 0,
    };
    let s = share(&mut sim, &[0, 1], Role::Editor);
    let space: SpaceId = s.space.parse().expect("a space id");
    for chunk in objs.chunks(BATCH) {
        let mutations = chunk
            .iter()
            .map(|o| WireMutation::Create {
                id: Some(o.id_text.clone()),
                type_name: o.type_name.clone(),
                fields: fields(o),
            })
            .collect();
        write(
            &mut sim,
            0,
            s.apps[0],
            Request::Batch {
                space: s.space.clone(),
                mutations,
            },
        );
    }
    let compacted: u64 = {
        let replica = sim.nodes[0].vault_mut().replica_mut(&space).expect("open");
        let snapshot = replica.snapshot().expect("snapshot");
        snapshot.shards.iter().map(|(_, d)| d.len() as u64).sum()
    };

    // Initial sync to the member's empty vault.
    let link = sim.link(0, 1).expect("link");
    let initial = until_quiet(&mut sim, 0, 1);
    assert_converged(&mut sim, &space, "initial sync");
    assert_eq!(count(&mut sim, 1, s.apps[1], &s.space), OBJECTS);

    // One edit, live.
    let ids: Vec<String> = objs.iter().map(|o| o.id_text.clone()).collect();
    let mut rng = SplitMix64::new(DEFAULT_SEED ^ 1);
    let mut set = WireFields::new();
    set.insert("number".into(), WireValue::Int(WireInt(-1)));
    let before = sim.sent_by.clone();
    let t = Instant::now();
    write(
        &mut sim,
        0,
        s.apps[0],
        Request::UpdateObject {
            space: s.space.clone(),
            id: ids[0].clone(),
            set,
            remove: vec![],
        },
    );
    let mut one_edit = until_quiet(&mut sim, 0, 1);
    one_edit.secs = t.elapsed().as_secs_f64();
    // `until_quiet` counted from after the write; the write's own sends
    // (the bundle, at its flush) happened inside `write`.
    one_edit.there.bytes = sim.sent_by[0].bytes - before[0].bytes;
    one_edit.there.writes = sim.sent_by[0].writes - before[0].writes;
    one_edit.back.bytes = sim.sent_by[1].bytes - before[1].bytes;
    one_edit.back.writes = sim.sent_by[1].writes - before[1].writes;
    assert_converged(&mut sim, &space, "one edit");

    // Apart: 1,000 edits on each side; then they meet again.
    sim.cut(link);
    edits(&mut sim, 0, s.apps[0], &s.space, &ids, &mut rng);
    edits(&mut sim, 1, s.apps[1], &s.space, &ids, &mut rng);
    let link = sim.link(0, 1).expect("link");
    let reconnect = until_quiet(&mut sim, 0, 1);
    assert_converged(&mut sim, &space, "reconnect");

    // Again, and both restart before they meet.
    sim.cut(link);
    edits(&mut sim, 0, s.apps[0], &s.space, &ids, &mut rng);
    edits(&mut sim, 1, s.apps[1], &s.space, &ids, &mut rng);
    let (mut reopen_secs, mut documents_secs) = (0.0, 0.0);
    let mut apps = Vec::new();
    for n in 0..2 {
        sim.restart(n);
        let app = allow(&mut sim, n, vec![s.space.clone()]);
        let t = Instant::now();
        // Opening happens on the first call that needs the space; it reads
        // the index, not the CRDT documents.
        count(&mut sim, n, app, &s.space);
        reopen_secs += t.elapsed().as_secs_f64() / 2.0;
        let t = Instant::now();
        sim.nodes[n]
            .vault_mut()
            .replica_mut(&space)
            .expect("open")
            .load_documents()
            .expect("documents");
        documents_secs += t.elapsed().as_secs_f64() / 2.0;
        apps.push(app);
    }
    sim.link(0, 1).expect("link");
    let after_restart = until_quiet(&mut sim, 0, 1);
    assert_converged(&mut sim, &space, "reconnect after restart");
    assert_eq!(count(&mut sim, 1, apps[1], &s.space), OBJECTS);

    Rows {
        initial,
        one_edit,
        reconnect,
        after_restart,
        compacted,
        reopen_secs,
        documents_secs,
    }
}

// ---------------------------------------------------------------- anchor

/// Runs automerge's sync protocol between two documents until neither has
/// anything to say; counts messages and bytes each way.
fn automerge_sync(
    a: &mut AutoCommit,
    sa: &mut State,
    b: &mut AutoCommit,
    sb: &mut State,
) -> Exchange {
    let t = Instant::now();
    let mut there = Traffic::default();
    let mut back = Traffic::default();
    loop {
        let sent = automerge_send(a, sa, b, sb, &mut there);
        if !(automerge_send(b, sb, a, sa, &mut back) | sent) {
            break;
        }
    }
    Exchange {
        secs: t.elapsed().as_secs_f64(),
        there,
        back,
    }
}

/// One message from `from` to `to`, if `from` has one; counted in `count`.
fn automerge_send(
    from: &mut AutoCommit,
    from_state: &mut State,
    to: &mut AutoCommit,
    to_state: &mut State,
    count: &mut Traffic,
) -> bool {
    let Some(m) = from.sync().generate_sync_message(from_state) else {
        return false;
    };
    let bytes = m.encode();
    count.bytes += bytes.len() as u64;
    count.writes += 1;
    let m = Message::decode(&bytes).expect("decode");
    to.sync()
        .receive_sync_message(to_state, m)
        .expect("receive");
    true
}

fn automerge_edits(doc: &mut AutoCommit, objs: &[GenObject], rng: &mut SplitMix64) {
    for _ in 0..EDITS {
        let o = &objs[rng.below(objs.len() as u64) as usize];
        let obj = match doc.get(ROOT, o.id_text.as_str()) {
            Ok(Some((_, id))) => id,
            _ => panic!("object {} missing", o.id_text),
        };
        doc.put(&obj, F_NUMBER, rng.below(1_000_000) as i64)
            .expect("put");
        doc.commit();
    }
}

fn anchor_rows(objs: &[GenObject]) -> Rows {
    let mut a = new_doc();
    for chunk in objs.chunks(BATCH) {
        for o in chunk {
            write_object(&mut a, o).expect("write");
        }
        a.commit();
    }
    let compacted = a.save().len() as u64;
    let mut b = AutoCommit::new().with_actor(automerge::ActorId::from([0xED; 16]));
    let (mut sa, mut sb) = (State::new(), State::new());
    let initial = automerge_sync(&mut a, &mut sa, &mut b, &mut sb);
    assert_eq!(a.get_heads(), b.get_heads());

    let first = objs[0].id_text.as_str();
    let Ok(Some((_, obj))) = a.get(ROOT, first) else {
        panic!("object missing")
    };
    let t = Instant::now();
    a.put(&obj, F_NUMBER, -1).expect("put");
    a.commit();
    let mut one_edit = automerge_sync(&mut a, &mut sa, &mut b, &mut sb);
    one_edit.secs = t.elapsed().as_secs_f64();

    // Apart, each side keeps its sync state as automerge persists it
    // between connections (`encode`: the shared heads).
    let mut rng = SplitMix64::new(DEFAULT_SEED ^ 1);
    automerge_edits(&mut a, objs, &mut rng);
    automerge_edits(&mut b, objs, &mut rng);
    let mut sa = State::decode(&sa.encode()).expect("a persisted sync state");
    let mut sb = State::decode(&sb.encode()).expect("a persisted sync state");
    let reconnect = automerge_sync(&mut a, &mut sa, &mut b, &mut sb);
    assert_eq!(a.get_heads(), b.get_heads());

    automerge_edits(&mut a, objs, &mut rng);
    automerge_edits(&mut b, objs, &mut rng);
    let (mut sa, mut sb) = (State::new(), State::new());
    let after_restart = automerge_sync(&mut a, &mut sa, &mut b, &mut sb);
    assert_eq!(a.get_heads(), b.get_heads());
    Rows {
        initial,
        one_edit,
        reconnect,
        after_restart,
        compacted,
        reopen_secs: 0.0,
        documents_secs: 0.0,
    }
}
