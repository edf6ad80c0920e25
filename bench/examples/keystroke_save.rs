//! One keystroke in a long document, then its save, as an app typing into
//! it does (each keystroke its own write and flush): what the write and the
//! save cost per keystroke in a 108,000-character text.
//!
//! cargo run --release -p echo-bench --example keystroke_save

use std::time::{Duration, Instant};

use automerge::ActorId;
use echo_core::model::{Space, SpaceId, SpaceOptions, Value, WriteBatch};
use echo_core::store::CompactionPolicy;

const KEYSTROKES: u32 = 1_000;

fn main() {
    let mut space = Space::create(
        SpaceId::random(),
        ActorId::from([7u8; 32].as_slice()),
        SpaceOptions::default(),
    )
    .expect("space");
    let mut b = WriteBatch::new();
    let text = "lorem ipsum ".repeat(9_000);
    let chars = text.chars().count();
    let id = b.create("doc", [("body", Value::Text(text))]);
    space.apply(b).expect("create");
    let policy = CompactionPolicy::default();
    let first = space.prepare_save(&policy).expect("save").expect("unsaved");
    space.save_done(first.receipt);
    let (mut write, mut save) = (Duration::ZERO, Duration::ZERO);
    for i in 0..KEYSTROKES as usize {
        let mut b = WriteBatch::new();
        b.splice_text(id, "body", chars / 2 + i, 0, "x");
        let t = Instant::now();
        space.apply(b).expect("splice");
        write += t.elapsed();
        let t = Instant::now();
        let pending = space.prepare_save(&policy).expect("save").expect("unsaved");
        save += t.elapsed();
        space.save_done(pending.receipt);
    }
    println!(
        "{chars}-character text, {KEYSTROKES} keystrokes each saved: write {:?} a keystroke, prepare the save {:?}",
        write / KEYSTROKES,
        save / KEYSTROKES
    );
}
