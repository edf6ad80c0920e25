//! Where cold-open time goes for a 100k-object space in the file store:
//! redb open (with and without its integrity check), listing, decoding the
//! index of current state, first query — then what follows it: reading the
//! documents' CRDT bytes and handing them over.
//! `cargo run --release -p echo-bench --example cold_open_phases`

use automerge::ActorId;
use echo_core::model::{
    documents_prefix, space_prefix, Reference, Space, SpaceId, SpaceOptions, Value, WriteBatch,
};
use echo_core::query::{Filter, Query};
use echo_core::store::{ChunkStore, CompactionPolicy};
use echo_store_file::{FileStore, FileStoreOptions};
use std::time::Instant;
fn main() {
    let n = 100_000;
    let actor = ActorId::from([7u8; 32].as_slice());
    let path = std::env::temp_dir().join("coldprof.redb");
    let _ = std::fs::remove_file(&path);
    let id = SpaceId::random();
    {
        let mut space = Space::create(id, actor.clone(), SpaceOptions::default()).unwrap();
        let ids: Vec<_> = (0..n)
            .map(|_| echo_core::model::ObjectId::random())
            .collect();
        for (c, chunk) in ids.chunks(1000).enumerate() {
            let mut b = WriteBatch::new();
            for (i, oid) in chunk.iter().enumerate() {
                b.create_with_id(
                    *oid,
                    format!("type{}", i % 10),
                    [
                        ("title", Value::String(format!("title words {i} here"))),
                        ("number", Value::Int((c * 1000 + i) as i64)),
                        ("flag", Value::Bool(i % 2 == 0)),
                        (
                            "tags",
                            Value::List(vec![
                                Value::String("t1".into()),
                                Value::String("t2".into()),
                            ]),
                        ),
                        (
                            "ref",
                            Value::Ref(Reference::local(ids[(i * 7) % ids.len()])),
                        ),
                    ],
                );
            }
            space.apply(b).unwrap();
        }
        let mut store = FileStore::open(&path).unwrap();
        let p = space
            .prepare_save(&CompactionPolicy::default())
            .unwrap()
            .unwrap();
        store.apply(p.batch).unwrap();
    }
    for check in [true, false] {
        let t = Instant::now();
        let store = FileStore::open_with(
            &path,
            FileStoreOptions {
                check_integrity_on_open: check,
                ..Default::default()
            },
        )
        .unwrap();
        let t_open = t.elapsed();
        let entries = store.list_prefix(&space_prefix(&id)).unwrap();
        let t_list = t.elapsed();
        let bytes: usize = entries.iter().map(|(_, v)| v.len()).sum();
        let mut space = Space::open(id, actor.clone(), entries).unwrap();
        let t_decode = t.elapsed();
        let hits = space
            .query(&Query {
                filter: Filter::Type("type3".into()),
                ..Query::default()
            })
            .unwrap()
            .len();
        let t_query = t.elapsed();
        let documents = store.list_prefix(&documents_prefix(&id)).unwrap();
        let t_documents = t.elapsed();
        let documents_bytes: usize = documents.iter().map(|(_, v)| v.len()).sum();
        space.attach_documents(documents).unwrap();
        let t_attach = t.elapsed();
        println!(
            "integrity={check} open {:?} list {:?} ({} MB) decode {:?} query {:?} hits {hits}; \
             then documents: list {:?} ({} MB) attach {:?}",
            t_open,
            t_list - t_open,
            bytes / 1_000_000,
            t_decode - t_list,
            t_query - t_decode,
            t_documents - t_query,
            documents_bytes / 1_000_000,
            t_attach - t_documents,
        );
    }
}
