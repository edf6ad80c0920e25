//! How raw Automerge 0.12's cost per object depends on operations per object
//! (the measurement behind ADR 0001's layout): 12 ops (nested maps, a list,
//! a reference map), 2 ops (map + one bytes value), 1 op, and 5 ops over 64
//! shard documents. `cargo run --release -p echo-bench --example automerge_op_cost`

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT};
use std::time::Instant;
fn main() {
    let n = 20_000;
    // A: 12 ops per object (nested maps, list, ref map)
    let mut doc = Automerge::new();
    let t = Instant::now();
    for chunk in 0..(n / 1000) {
        let mut tx = doc.transaction();
        for i in 0..1000 {
            let id = format!("{:026}", chunk * 1000 + i);
            let o = tx.put_object(ROOT, id.as_str(), ObjType::Map).unwrap();
            tx.put(&o, "type", "type3").unwrap();
            tx.put(&o, "deleted", false).unwrap();
            let f = tx.put_object(&o, "fields", ObjType::Map).unwrap();
            tx.put(&f, "title", "some title words here").unwrap();
            tx.put(&f, "number", 12345i64).unwrap();
            tx.put(&f, "flag", true).unwrap();
            let l = tx.put_object(&f, "tags", ObjType::List).unwrap();
            tx.insert(&l, 0, "tag1").unwrap();
            tx.insert(&l, 1, "tag2").unwrap();
            let r = tx.put_object(&f, "ref", ObjType::Map).unwrap();
            tx.put(&r, "\u{0}ref", "00000000000000000000000001")
                .unwrap();
        }
        tx.commit();
    }
    let a = t.elapsed().as_secs_f64();
    println!(
        "A 12 ops/object: {:.0} obj/s ({:.1} us/op)",
        n as f64 / a,
        a * 1e6 / (n as f64 * 12.0)
    );
    // B: 2 ops per object (map + blob)
    let mut doc = Automerge::new();
    let blob = vec![7u8; 120];
    let t = Instant::now();
    for chunk in 0..(n / 1000) {
        let mut tx = doc.transaction();
        for i in 0..1000 {
            let id = format!("{:026}", chunk * 1000 + i);
            let o = tx.put_object(ROOT, id.as_str(), ObjType::Map).unwrap();
            tx.put(&o, "\u{0}init", blob.clone()).unwrap();
        }
        tx.commit();
    }
    let b = t.elapsed().as_secs_f64();
    println!("B 2 ops/object: {:.0} obj/s", n as f64 / b);
    // C: 1 op per object (blob at root)
    let mut doc = Automerge::new();
    let t = Instant::now();
    for chunk in 0..(n / 1000) {
        let mut tx = doc.transaction();
        for i in 0..1000 {
            let id = format!("{:026}", chunk * 1000 + i);
            tx.put(ROOT, id.as_str(), blob.clone()).unwrap();
        }
        tx.commit();
    }
    let c = t.elapsed().as_secs_f64();
    println!("C 1 op/object: {:.0} obj/s", n as f64 / c);
    // D: 12 ops but in 64 shard docs of ~300 objects
    let mut docs: Vec<Automerge> = (0..64).map(|_| Automerge::new()).collect();
    let t = Instant::now();
    for chunk in 0..(n / 1000) {
        let mut per: Vec<Vec<usize>> = vec![Vec::new(); 64];
        for i in 0..1000 {
            per[(chunk * 1000 + i) % 64].push(chunk * 1000 + i);
        }
        for (s, ids) in per.iter().enumerate() {
            let mut tx = docs[s].transaction();
            for &k in ids {
                let id = format!("{:026}", k);
                let o = tx.put_object(ROOT, id.as_str(), ObjType::Map).unwrap();
                tx.put(&o, "type", "type3").unwrap();
                tx.put(&o, "title", "some title words here").unwrap();
                tx.put(&o, "number", 12345i64).unwrap();
                tx.put(&o, "flag", true).unwrap();
            }
            tx.commit();
        }
    }
    let d = t.elapsed().as_secs_f64();
    println!("D 5 ops/object, 64 shards: {:.0} obj/s", n as f64 / d);
}
