//! Query planner micro-profile: 100,000 objects, 10 types, a bool `flag`
//! (half of each type), a unique `number`. Prints the mean time per run.
//! `REPS=5 valgrind --tool=callgrind target/release/examples/queryprof`.

use echo_core::model::{ObjectId, ObjectState, Value};
use echo_core::query::{Filter, Index, Query};
use std::time::Instant;

fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let mut index = Index::new();
    let start = Instant::now();
    for i in 0..100_000i64 {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("flag".to_string(), Value::Bool((i / 10) % 2 == 0));
        fields.insert("number".to_string(), Value::Int(i));
        index.upsert(ObjectState {
            id: ObjectId::random(),
            type_name: format!("type{}", i % 10),
            fields,
            deleted: false,
        });
    }
    println!(
        "upsert 100k: {:.0} obj/s",
        100_000.0 / start.elapsed().as_secs_f64()
    );
    let ty = |t: &str| Filter::type_is(t);
    let flag = |b: bool| Filter::eq("flag", b);
    let cases = [
        ("type only", Query::new(ty("type3"))),
        ("flag only", Query::new(flag(true))),
        (
            "type+flag",
            Query::new(Filter::And(vec![ty("type3"), flag(true)])),
        ),
        (
            "type+number",
            Query::new(Filter::And(vec![ty("type3"), Filter::eq("number", 13)])),
        ),
        (
            "type+flag+not type",
            Query::new(Filter::And(vec![
                ty("type3"),
                flag(false),
                Filter::not(ty("type4")),
            ])),
        ),
        (
            "type or type",
            Query::new(Filter::Or(vec![ty("type3"), ty("type4")])),
        ),
        (
            "flag or type",
            Query::new(Filter::Or(vec![flag(true), ty("type4")])),
        ),
        (
            "(type or type)+flag",
            Query::new(Filter::And(vec![
                Filter::Or(vec![ty("type3"), ty("type4")]),
                flag(false),
            ])),
        ),
        (
            "type+flag, number asc, limit 20",
            Query::new(Filter::And(vec![ty("type3"), flag(false)]))
                .order_by("number", false)
                .limit(20),
        ),
        (
            "type+flag, number desc, limit 20",
            Query::new(Filter::And(vec![ty("type3"), flag(false)]))
                .order_by("number", true)
                .limit(20),
        ),
    ];
    for (name, q) in cases {
        index.run(&q).unwrap();
        let t = Instant::now();
        let mut n = 0;
        for _ in 0..reps {
            n = index.run(&q).unwrap().len();
        }
        println!(
            "{name}: {:.0} us ({n} hits)",
            t.elapsed().as_secs_f64() * 1e6 / reps as f64
        );
    }
}
