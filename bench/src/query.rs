//! The query index on its own: 100,000 objects of the shared workload
//! (type, title, number, flag, tags, ref) in an `echo_core::query::Index`,
//! without the CRDT. Upsert rate, first and warm queries, range filters and
//! live-query diff latency.

use std::hint::black_box;
use std::time::{Duration, Instant};

use echo_core::model::{ObjectState, Reference, Value};
use echo_core::query::{Compare, Filter, Index, LiveQueries, Query};

use crate::report::Report;
use crate::workload::{self, SplitMix64, DEFAULT_SEED};

const SECTION: &str = "query";
const OBJECTS: usize = 100_000;
/// `number` is uniform in 0..1_000_000: a window this wide holds ~1%.
const RANGE_WIDTH: i64 = 10_000;

fn states() -> Vec<ObjectState> {
    workload::objects(OBJECTS, DEFAULT_SEED)
        .into_iter()
        .map(|o| ObjectState {
            id: o.id,
            type_name: o.type_name,
            fields: [
                (workload::F_TITLE, Value::String(o.title)),
                (workload::F_NUMBER, Value::Int(o.number)),
                (workload::F_FLAG, Value::Bool(o.flag)),
                (
                    workload::F_TAGS,
                    Value::List(o.tags.into_iter().map(Value::String).collect()),
                ),
                (workload::F_REF, Value::Ref(Reference::local(o.reference))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            deleted: false,
        })
        .collect()
}

fn median_us(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn number_of(s: &ObjectState) -> i64 {
    match s.fields.get(workload::F_NUMBER) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    }
}

pub fn run(report: &mut Report) {
    let states = states();
    let mut rng = SplitMix64::new(DEFAULT_SEED ^ 0x51);

    // Upsert: fresh index, every object once.
    let input = states.clone();
    let start = Instant::now();
    let mut index = Index::new();
    for s in input {
        index.upsert(s);
    }
    let secs = start.elapsed().as_secs_f64();
    report.add(
        SECTION,
        "upsert 100k (type index only)",
        OBJECTS as f64 / secs,
        "obj/s",
        "index share of the engine's >= 50000 obj/s",
    );

    // First queries: the type index exists; the number index is built lazily.
    let by_type = Query::new(Filter::type_is("type3"));
    let start = Instant::now();
    let hits = index.run(&by_type).map(|r| r.len()).unwrap_or(0);
    report.add(
        SECTION,
        "first query by type",
        start.elapsed().as_secs_f64() * 1e3,
        "ms",
        &format!("{hits} hits"),
    );
    let probe = number_of(&states[17]);
    let type_eq = |t: &str, n: i64| {
        Query::new(Filter::And(vec![
            Filter::type_is(t),
            Filter::eq(workload::F_NUMBER, n),
        ]))
    };
    let start = Instant::now();
    let hits = index
        .run(&type_eq(&states[17].type_name, probe))
        .map(|r| r.len())
        .unwrap_or(0);
    report.add(
        SECTION,
        "first type + number = (builds field index)",
        start.elapsed().as_secs_f64() * 1e3,
        "ms",
        &format!("{hits} hits; lazy index over 100k values"),
    );

    // Warm queries.
    let samples: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            black_box(index.run(&by_type).map(|r| r.len()).unwrap_or(0));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "warm query by type (~10k hits)",
        median_us(samples),
        "us",
        "median",
    );
    let samples: Vec<Duration> = (0..1_000)
        .map(|_| {
            let s = &states[rng.below(OBJECTS as u64) as usize];
            let q = type_eq(&s.type_name, number_of(s));
            let start = Instant::now();
            black_box(index.run(&q).map(|r| r.len()).unwrap_or(0));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "warm type + number = query",
        median_us(samples),
        "us",
        "median, ~1 hit",
    );
    // Two large exact answers (~10k of a type, ~50k with the flag): the
    // planner intersects the index sets instead of checking every object.
    let type_flag = Query::new(Filter::And(vec![
        Filter::type_is("type3"),
        Filter::eq(workload::F_FLAG, true),
    ]));
    let hits = index.run(&type_flag).map(|r| r.len()).unwrap_or(0);
    let samples: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            black_box(index.run(&type_flag).map(|r| r.len()).unwrap_or(0));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "warm type + flag = query (two large sets)",
        median_us(samples),
        "us",
        &format!("median, {hits} hits; target <= 1000"),
    );
    let first_page = Query::new(Filter::And(vec![
        Filter::type_is("type3"),
        Filter::eq(workload::F_FLAG, false),
    ]))
    .order_by(workload::F_NUMBER, false)
    .limit(20);
    let samples: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            black_box(index.run(&first_page).map(|r| r.len()).unwrap_or(0));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "type + flag =, order by number asc, limit 20",
        median_us(samples),
        "us",
        "median; first page, walks the number index from the bottom",
    );
    let mut hits_total = 0;
    let samples: Vec<Duration> = (0..200)
        .map(|_| {
            let lo = rng.below((1_000_000 - RANGE_WIDTH) as u64) as i64;
            let q = Query::new(Filter::And(vec![
                Filter::field(workload::F_NUMBER, Compare::Ge, lo),
                Filter::field(workload::F_NUMBER, Compare::Lt, lo + RANGE_WIDTH),
            ]));
            let start = Instant::now();
            hits_total += black_box(index.run(&q).map(|r| r.len()).unwrap_or(0));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "range a <= number < b (~1%)",
        median_us(samples),
        "us",
        &format!("median, {} hits on average", hits_total / 200),
    );
    let top = Query::new(Filter::type_is("type3"))
        .order_by(workload::F_NUMBER, true)
        .limit(20);
    let samples: Vec<Duration> = (0..100)
        .map(|_| {
            let start = Instant::now();
            black_box(index.run(&top).map(|r| r.len()).unwrap_or(0));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "type, order by number desc, limit 20",
        median_us(samples),
        "us",
        "median; walks the number index from the top",
    );
    let text = Query::new(Filter::TextContains {
        field: workload::F_TITLE.into(),
        needle: "Meadow".into(),
    });
    let start = Instant::now();
    let hits = index.run(&text).map(|r| r.len()).unwrap_or(0);
    report.add(
        SECTION,
        "text contains (full scan)",
        start.elapsed().as_secs_f64() * 1e3,
        "ms",
        &format!("{hits} hits"),
    );

    // Upserts with field indexes built (number, flag): maintenance cost.
    let flag_q = Query::new(Filter::eq(workload::F_FLAG, true));
    black_box(index.run(&flag_q).map(|r| r.len()).unwrap_or(0));
    let changed: Vec<ObjectState> = states
        .iter()
        .map(|s| {
            let mut s = s.clone();
            let n = number_of(&s);
            s.fields
                .insert(workload::F_NUMBER.into(), Value::Int((n + 1) % 1_000_000));
            s
        })
        .collect();
    let start = Instant::now();
    for s in changed {
        index.upsert(s);
    }
    let secs = start.elapsed().as_secs_f64();
    report.add(
        SECTION,
        "re-upsert 100k, number changed (2 field indexes)",
        OBJECTS as f64 / secs,
        "obj/s",
        "moves each id between number buckets",
    );

    // Live queries: one upsert, then on_change.
    let mut live = LiveQueries::new();
    let subs = [
        Query::new(Filter::type_is("type3")),
        Query::new(Filter::And(vec![
            Filter::type_is("type3"),
            Filter::eq(workload::F_FLAG, true),
        ]))
        .order_by(workload::F_NUMBER, true)
        .limit(20),
    ];
    for q in subs {
        if let Err(e) = live.subscribe(q, &index) {
            report.say(SECTION, &format!("subscribe failed: {e}"));
            return;
        }
    }
    let mut diffs = 0usize;
    let samples: Vec<Duration> = (0..1_000)
        .map(|i| {
            let mut s = states[rng.below(OBJECTS as u64) as usize].clone();
            s.fields.insert(
                workload::F_NUMBER.into(),
                Value::Int(rng.below(1_000_000) as i64),
            );
            s.fields
                .insert(workload::F_FLAG.into(), Value::Bool(i % 2 == 0));
            let id = s.id;
            index.upsert(s);
            let start = Instant::now();
            diffs += black_box(live.on_change(&index, &[id])).len();
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "live diff after one upsert (2 subscriptions)",
        median_us(samples),
        "us",
        &format!("median; plain type + ordered top-20; {diffs} diffs / 1000"),
    );

    // A subscription that depends on other objects is re-run on each change.
    // The current number of some object (the re-upsert above changed them).
    let target = index.get(&states[99].id).map_or(0, number_of);
    let rerun = Query::new(Filter::RefersTo {
        field: workload::F_REF.into(),
        target: Box::new(Filter::eq(workload::F_NUMBER, target)),
    });
    let mut live = LiveQueries::new();
    if let Err(e) = live.subscribe(rerun, &index) {
        report.say(SECTION, &format!("subscribe failed: {e}"));
        return;
    }
    let samples: Vec<Duration> = (0..200)
        .map(|_| {
            let mut s = states[rng.below(OBJECTS as u64) as usize].clone();
            s.fields
                .insert(workload::F_TITLE.into(), Value::String("changed".into()));
            let id = s.id;
            index.upsert(s);
            let start = Instant::now();
            black_box(live.on_change(&index, &[id]));
            start.elapsed()
        })
        .collect();
    report.add(
        SECTION,
        "live diff, RefersTo subscription (re-run)",
        median_us(samples),
        "us",
        "median; target by number =, sources by backlinks",
    );
}
