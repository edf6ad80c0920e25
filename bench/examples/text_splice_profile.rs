//! One splice per write batch through the engine, or through raw Automerge
//! (`raw`), for profiling the per-keystroke path:
//! `valgrind --tool=callgrind target/release/examples/text_splice_profile 5000 [raw|engine]`

use automerge::ActorId;
use echo_core::model::{Space, SpaceId, SpaceOptions, Value, WriteBatch};
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    if std::env::args().nth(2).as_deref() == Some("raw") {
        raw(n);
        return;
    }
    let mut space = Space::create(
        SpaceId::random(),
        ActorId::from([7u8; 32].as_slice()),
        SpaceOptions::default(),
    )
    .unwrap();
    let mut b = WriteBatch::new();
    let id = b.create("doc", [("body", Value::Text(String::new()))]);
    space.apply(b).unwrap();
    let t = std::time::Instant::now();
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.splice_text(id, "body", i, 0, "x");
        space.apply(b).unwrap();
    }
    eprintln!("{:.1} us/edit", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
#[allow(dead_code)]
fn raw(n: usize) {
    use automerge::{transaction::Transactable, Automerge, ObjType, ROOT};
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    let text = tx.put_object(ROOT, "t", ObjType::Text).unwrap();
    tx.commit();
    for i in 0..n {
        let mut tx = doc.transaction();
        tx.splice_text(&text, i, 0, "x").unwrap();
        tx.commit();
    }
}
