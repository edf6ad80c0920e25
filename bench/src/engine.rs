//! The engine's own figures for the "Engine core" issue: create rate, save,
//! cold open → first query (in a child process, for its peak RSS), warm
//! queries, live-query latency, and the text trace through the engine beside
//! raw Automerge in the same run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ROOT};
use echo_core::model::{
    ObjectId, Reference, Space, SpaceEvent, SpaceId, SpaceOptions, Value, WriteBatch,
};
use echo_core::query::{Compare, Filter, Query};
use echo_core::store::{ChunkStore, CompactionPolicy};
use echo_store_file::FileStore;

use crate::report::Report;
use crate::trace;
use crate::workload::{self, GenObject, DEFAULT_SEED};

const SECTION: &str = "engine";
const OBJECTS: usize = 100_000;
const BATCH: usize = 1_000;

fn actor() -> ActorId {
    ActorId::from([7u8; 32].as_slice())
}

fn fields(o: &GenObject) -> Vec<(&'static str, Value)> {
    vec![
        (workload::F_TITLE, Value::String(o.title.clone())),
        (workload::F_NUMBER, Value::Int(o.number)),
        (workload::F_FLAG, Value::Bool(o.flag)),
        (
            workload::F_TAGS,
            Value::List(o.tags.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (workload::F_REF, Value::Ref(Reference::local(o.reference))),
    ]
}

/// Creates the workload's objects in batches; returns the space and seconds.
fn create_space(objects: &[GenObject], options: SpaceOptions) -> (Space, f64) {
    let mut space = Space::create(SpaceId::random(), actor(), options).expect("valid options");
    let start = Instant::now();
    for chunk in objects.chunks(BATCH) {
        let mut batch = WriteBatch::new();
        for o in chunk {
            batch.create_with_id(o.id, o.type_name.clone(), fields(o));
        }
        space.apply(batch).expect("valid batch");
    }
    (space, start.elapsed().as_secs_f64())
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

/// Objects of type `t` whose `field` equals `value`.
fn type_and_field(t: &str, field: &str, value: Value) -> Query {
    Query {
        filter: Filter::And(vec![
            Filter::Type(t.into()),
            Filter::Field {
                field: field.into(),
                op: Compare::Eq,
                value,
            },
        ]),
        ..Query::default()
    }
}

fn type_query(t: &str) -> Query {
    Query {
        filter: Filter::Type(t.into()),
        ..Query::default()
    }
}

fn save_all(space: &mut Space, store: &mut FileStore) -> usize {
    let pending = space
        .prepare_save(&CompactionPolicy::default())
        .expect("save")
        .expect("something to save");
    let bytes = pending.batch.byte_size();
    store.apply(pending.batch).expect("file store write");
    space.save_done(pending.receipt);
    bytes
}

pub fn run(report: &mut Report) {
    let objects = workload::objects(OBJECTS, DEFAULT_SEED);

    // Create.
    let (mut space, secs) = create_space(&objects, SpaceOptions::default());
    report.add(
        SECTION,
        "create 100k objects, batches of 1,000",
        OBJECTS as f64 / secs,
        "obj/s",
        "target >= 150,000 (issue 13)",
    );

    // Save, then cold open in a fresh process.
    let dir = std::env::temp_dir().join(format!("echo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("space.redb");
    {
        let mut store = FileStore::open(&path).expect("open file store");
        let start = Instant::now();
        let bytes = save_all(&mut space, &mut store);
        report.add(
            SECTION,
            "save 100k objects to the file store",
            start.elapsed().as_secs_f64() * 1e3,
            "ms",
            "",
        );
        report.add(
            SECTION,
            "stored size (CRDT + index)",
            bytes as f64 / 1e6,
            "MB",
            "",
        );
    }
    match cold_open_in_child(&path, space.id()) {
        Ok(figures) => {
            report.add(
                SECTION,
                "cold open -> first query (type = type3)",
                figures.total_ms,
                "ms",
                "target <= 100",
            );
            report.add(
                SECTION,
                "  of which: read chunks from redb",
                figures.read_ms,
                "ms",
                "",
            );
            report.add(
                SECTION,
                "  first query hits",
                figures.hits as f64,
                "objects",
                "",
            );
            report.add(
                SECTION,
                "cold open peak RSS (child process)",
                figures.peak_rss_kb as f64 / 1024.0,
                "MiB",
                "",
            );
        }
        Err(e) => report.say(SECTION, &format!("cold open child failed: {e}")),
    }
    let _ = std::fs::remove_dir_all(&dir);

    warm_queries(report, &mut space, &objects);
    live_latency(report, &mut space, &objects);
    text_trace(report);
}

fn warm_queries(report: &mut Report, space: &mut Space, objects: &[GenObject]) {
    let probe = objects
        .iter()
        .find(|o| o.type_name == "type3")
        .expect("the workload has type3 objects");
    let selective = type_and_field("type3", workload::F_NUMBER, Value::Int(probe.number));
    let eq = type_and_field("type3", workload::F_FLAG, Value::Bool(true));
    let range = Query {
        filter: Filter::And(vec![
            Filter::Field {
                field: workload::F_NUMBER.into(),
                op: Compare::Ge,
                value: Value::Int(500_000),
            },
            Filter::Field {
                field: workload::F_NUMBER.into(),
                op: Compare::Lt,
                value: Value::Int(510_000),
            },
        ]),
        ..Query::default()
    };
    for (name, q) in [
        ("warm query type + number equality", &selective),
        ("warm query type + bool equality (half match)", &eq),
        ("warm query range (~1% of objects)", &range),
        ("warm query by type", &type_query("type5")),
    ] {
        let hits = space.query(q).expect("query").len();
        let samples: Vec<Duration> = (0..200)
            .map(|_| {
                let start = Instant::now();
                let n = space.query(q).expect("query").len();
                let elapsed = start.elapsed();
                assert_eq!(n, hits);
                elapsed
            })
            .collect();
        report.add(
            SECTION,
            name,
            median(samples),
            "µs",
            &format!("median of 200, {hits} hits; target <= 1,000"),
        );
    }
}

fn live_latency(report: &mut Report, space: &mut Space, objects: &[GenObject]) {
    let query = type_and_field("type3", workload::F_FLAG, Value::Bool(true));
    let (sub, _) = space.subscribe(query).expect("subscribe");
    let targets: Vec<&GenObject> = objects
        .iter()
        .filter(|o| o.type_name == "type3")
        .take(200)
        .collect();
    let mut samples = Vec::with_capacity(targets.len());
    for o in targets {
        let current = space
            .get(&o.id)
            .expect("read")
            .and_then(|s| s.field(workload::F_FLAG).cloned());
        let flip = !matches!(current, Some(Value::Bool(true)));
        let start = Instant::now();
        let mut batch = WriteBatch::new();
        batch.set(o.id, workload::F_FLAG, flip);
        space.apply(batch).expect("write");
        let event = space.poll_event();
        samples.push(start.elapsed());
        match event {
            Some(SpaceEvent::Live(diff)) if diff.subscription == sub => {}
            other => panic!("expected a live diff, got {other:?}"),
        }
    }
    space.unsubscribe(sub);
    report.add(
        SECTION,
        "live query: write -> subscriber diff",
        median(samples),
        "µs",
        "median of 200; target <= 1,000",
    );
}

fn text_trace(report: &mut Report) {
    let trace = match trace::load("automerge-paper.json.gz") {
        Ok(t) => t,
        Err(e) => {
            report.say(SECTION, &format!("{e} — text trace skipped"));
            return;
        }
    };
    let edits = trace.patches.len();

    // Raw automerge, a commit per edit (the baseline for the ratio).
    let start = Instant::now();
    let mut doc = Automerge::new();
    let text = {
        let mut tx = doc.transaction();
        let text = tx.put_object(ROOT, "text", ObjType::Text).expect("put");
        tx.splice_text(&text, 0, 0, &trace.start_content)
            .expect("splice");
        tx.commit();
        text
    };
    for p in &trace.patches {
        let mut tx = doc.transaction();
        tx.splice_text(&text, p.pos, p.del as isize, &p.insert)
            .expect("splice");
        tx.commit();
    }
    let raw = start.elapsed().as_secs_f64();
    assert_eq!(
        doc.text(&text).expect("text"),
        trace.end_content,
        "raw automerge replay diverged"
    );
    report.add(
        SECTION,
        "text trace: raw automerge, commit per edit",
        raw,
        "s",
        &format!("{edits} edits"),
    );

    for (label, per_batch) in [
        ("engine, change per edit", 1usize),
        ("engine, batches of 100 edits", 100),
    ] {
        let mut space =
            Space::create(SpaceId::random(), actor(), SpaceOptions::default()).expect("space");
        let start = Instant::now();
        let mut batch = WriteBatch::new();
        let id: ObjectId =
            batch.create("doc", [("body", Value::Text(trace.start_content.clone()))]);
        space.apply(batch).expect("create");
        for chunk in trace.patches.chunks(per_batch) {
            let mut batch = WriteBatch::new();
            for p in chunk {
                batch.splice_text(id, "body", p.pos, p.del, p.insert.clone());
            }
            space.apply(batch).expect("splice");
        }
        let secs = start.elapsed().as_secs_f64();
        let content = space.text(&id, "body").expect("read text");
        assert_eq!(
            content, trace.end_content,
            "engine replay diverged from endContent"
        );
        report.add(
            SECTION,
            &format!("text trace: {label}"),
            secs,
            "s",
            &format!("ratio vs raw {:.2}; target <= 1.2", secs / raw),
        );
    }
}

struct ColdOpen {
    read_ms: f64,
    total_ms: f64,
    hits: usize,
    peak_rss_kb: u64,
}

fn cold_open_in_child(path: &Path, space: SpaceId) -> Result<ColdOpen, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg(COLD_OPEN_FLAG)
        .arg(path)
        .arg(space.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match nums.as_slice() {
        [read_ms, total_ms, hits, rss] => Ok(ColdOpen {
            read_ms: *read_ms,
            total_ms: *total_ms,
            hits: *hits as usize,
            peak_rss_kb: *rss as u64,
        }),
        _ => Err(format!("unexpected child output {text:?}")),
    }
}

/// The hidden flag with which the bench binary runs a cold open as a child.
pub const COLD_OPEN_FLAG: &str = "--cold-open-child";

/// Child side: open the store, open the space, run the first query, print
/// `read_ms total_ms hits peak_rss_kb`.
pub fn cold_open_child(args: &[String]) -> Result<(), String> {
    let [path, space] = args else {
        return Err("usage: --cold-open-child PATH SPACE".into());
    };
    let space: SpaceId = space.parse().map_err(|e| format!("{e}"))?;
    let start = Instant::now();
    let store = FileStore::open(Path::new(path)).map_err(|e| e.to_string())?;
    let entries = store
        .list_prefix(&echo_core::model::space_prefix(&space))
        .map_err(|e| e.to_string())?;
    let read_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut opened = Space::open(space, actor(), entries).map_err(|e| e.to_string())?;
    let hits = opened
        .query(&type_query("type3"))
        .map_err(|e| e.to_string())?
        .len();
    let total_ms = start.elapsed().as_secs_f64() * 1e3;
    println!("{read_ms} {total_ms} {hits} {}", peak_rss_kb());
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Section "layout": the same 100k-object workload through the engine with
/// different shard counts — the measurements behind ADR 0001.
pub fn layout(report: &mut Report) {
    const S: &str = "layout";
    let objects = workload::objects(OBJECTS, DEFAULT_SEED);
    let counts: &[u16] = if std::env::var_os("ECHO_BENCH_FULL").is_some() {
        &[1, 4, 16, 64, 256]
    } else {
        &[16, 64, 256]
    };
    if counts[0] != 1 {
        report.say(
            S,
            "one shard (one document per space) skipped: it takes ~20 s; set ECHO_BENCH_FULL=1",
        );
    }
    for &shard_count in counts {
        let (mut space, secs) = create_space(&objects, SpaceOptions { shard_count });
        let dir =
            std::env::temp_dir().join(format!("echo-layout-{}-{shard_count}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("space.redb");
        let mut store = FileStore::open(&path).expect("open file store");
        let start = Instant::now();
        let bytes = save_all(&mut space, &mut store);
        let save_ms = start.elapsed().as_secs_f64() * 1e3;
        // Load every shard document: what a sync or a history read costs.
        let start = Instant::now();
        let mut entries = store
            .list_prefix(&echo_core::model::space_prefix(&space.id()))
            .expect("list");
        entries.extend(
            store
                .list_prefix(&echo_core::model::documents_prefix(&space.id()))
                .expect("list"),
        );
        let mut opened = Space::open(space.id(), actor(), entries).expect("open");
        let heads = opened.heads().expect("load all shards");
        let load_ms = start.elapsed().as_secs_f64() * 1e3;
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        let note = format!("{} heads", heads.entries.len());
        report.add(
            S,
            &format!("{shard_count:>3} shards: create"),
            OBJECTS as f64 / secs,
            "obj/s",
            "",
        );
        report.add(
            S,
            &format!("{shard_count:>3} shards: save"),
            save_ms,
            "ms",
            &format!("{:.1} MB", bytes as f64 / 1e6),
        );
        report.add(
            S,
            &format!("{shard_count:>3} shards: load all documents"),
            load_ms,
            "ms",
            &note,
        );
    }
}
