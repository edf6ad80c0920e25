//! Section "verify": the verification hook in the data path.
//!
//! An editor's replica makes 100,000 changes (one field set per write),
//! seals them into signed shard bundles, and a fresh replica of the owner
//! receives them: verify every bundle against the control log, then merge
//! (`Replica::receive`). Compared with merging the same changes into a
//! fresh `Space` unverified (`Space::apply_changes`). A second, smaller
//! run seals after every write (one change per bundle), the worst case.
//!
//! Takes about a minute on a 2-core machine.

use std::time::Instant;

use echo_core::identity::{CredentialKind, DeviceKey, Issuer, Role};
use echo_core::model::{ObjectId, SpaceId, SpaceOptions, Value, WriteBatch};
use echo_core::sync::{Replica, WireBundle};

use crate::person::person;
use crate::report::Report;

const SECTION: &str = "verify";
const CHANGES: usize = 100_000;
const SMALL_BUNDLE_CHANGES: usize = 10_000;
const OBJECTS: usize = 1_000;

pub fn run(report: &mut Report) {
    let options = SpaceOptions::default();
    let o = person();
    let owner_id = o.id.public_key();
    let mut owner =
        Replica::create(SpaceId::random(), owner_id, o.dev, o.cert, options).expect("create space");
    let e = person();
    owner
        .issue(CredentialKind::Admit {
            member: e.id.public_key(),
            role: Role::Editor,
        })
        .expect("admit");
    let creds = || owner.control().credentials().cloned().collect::<Vec<_>>();
    let (mut editor, _) = Replica::join(creds(), e.id.public_key(), e.dev, options).expect("join");
    editor
        .issue_as(
            Issuer::Identity(&e.id),
            CredentialKind::AuthorizeDevice {
                certificate: e.cert,
            },
        )
        .expect("authorize");
    let creds: Vec<_> = editor.control().credentials().cloned().collect();

    // A fresh receiver: the owner's identity on a new device would need
    // its own authorization; receiving needs none, so any device will do.
    let receiver = || {
        let dev = DeviceKey::generate().expect("OS randomness");
        let (r, out) = Replica::join(creds.clone(), owner_id, dev, options).expect("join");
        assert!(out.refused.is_empty());
        r
    };

    let mut batch = WriteBatch::new();
    let ids: Vec<ObjectId> = (0..OBJECTS)
        .map(|i| batch.create("item", [("n", Value::Int(i as i64))]))
        .collect();
    editor.write(batch).expect("create objects");
    let wire = |r: &mut Replica, idx: Vec<usize>| -> Vec<WireBundle> {
        idx.into_iter()
            .map(|i| r.wire_bundle(i).expect("bundle"))
            .collect()
    };
    let first = editor.seal().expect("seal");
    let mut bundles = wire(&mut editor, first);

    let t = Instant::now();
    for i in 0..CHANGES {
        let mut b = WriteBatch::new();
        b.set(ids[i % OBJECTS], "n", Value::Int(i as i64));
        editor.write(b).expect("write");
    }
    let write_us = t.elapsed().as_secs_f64() * 1e6 / CHANGES as f64;
    let t = Instant::now();
    let sealed = editor.seal().expect("seal");
    let seal_us = t.elapsed().as_secs_f64() * 1e6 / CHANGES as f64;
    let sealed = wire(&mut editor, sealed);
    let changes: usize = sealed.iter().map(|b| b.header.change_count()).sum();
    assert_eq!(changes, CHANGES, "one change per write");
    report.say(
        SECTION,
        &format!(
            "{CHANGES} changes on {OBJECTS} objects in {} shards, sealed into {} bundles",
            options.shard_count,
            sealed.len()
        ),
    );
    bundles.extend(sealed);
    let total: usize = bundles.iter().map(|b| b.header.change_count()).sum();

    // Unverified baseline: the same changes, straight into Automerge
    // documents (no verification, no index of object state).
    let mut docs: Vec<automerge::Automerge> = (0..options.shard_count)
        .map(|_| automerge::Automerge::new())
        .collect();
    let plain: Vec<(u16, Vec<automerge::Change>)> = bundles
        .iter()
        .flat_map(|b| {
            b.header.runs.iter().zip(&b.changes).map(|(run, changes)| {
                (
                    run.shard,
                    changes
                        .iter()
                        .map(|c| automerge::Change::from_bytes(c.clone()).expect("decode"))
                        .collect(),
                )
            })
        })
        .collect();
    let t = Instant::now();
    for (shard, changes) in plain {
        docs[usize::from(shard)]
            .apply_changes(changes)
            .expect("apply");
    }
    let apply_us = t.elapsed().as_secs_f64() * 1e6 / total as f64;

    let mut r = receiver();
    let n = bundles.len();
    let t = Instant::now();
    let out = r.receive(bundles, None, 0);
    let receive_us = t.elapsed().as_secs_f64() * 1e6 / total as f64;
    assert_eq!((out.accepted, out.rejected.len()), (n, 0));
    assert_eq!(out.applied.changed.len(), OBJECTS);

    report.add(
        SECTION,
        "write through Replica::write",
        write_us,
        "µs/change",
        "write check + Space::apply",
    );
    report.add(
        SECTION,
        "seal 100k changes",
        seal_us,
        "µs/change",
        "find own changes + sign",
    );
    report.add(
        SECTION,
        "receive 100k sealed changes",
        receive_us,
        "µs/change",
        "verify (decode, signatures, authorization) + merge",
    );
    report.add(
        SECTION,
        "automerge apply_changes, same changes (no verification, no index)",
        apply_us,
        "µs/change",
        "",
    );
    report.add(
        SECTION,
        "receive / automerge apply_changes",
        receive_us / apply_us,
        "ratio",
        "cost of verification in the data path",
    );

    // Worst case: a seal after every write, one change per bundle.
    let mut small = Vec::with_capacity(SMALL_BUNDLE_CHANGES);
    for i in 0..SMALL_BUNDLE_CHANGES {
        let mut b = WriteBatch::new();
        b.set(ids[i % OBJECTS], "m", Value::Int(i as i64));
        editor.write(b).expect("write");
        let sealed = editor.seal().expect("seal");
        small.extend(wire(&mut editor, sealed));
    }
    let mut r = receiver();
    let earlier = wire(&mut editor, (0..n).collect());
    r.receive(earlier, None, 0);
    let t = Instant::now();
    let out = r.receive(small, None, 0);
    let small_us = t.elapsed().as_secs_f64() * 1e6 / SMALL_BUNDLE_CHANGES as f64;
    assert_eq!(out.accepted, SMALL_BUNDLE_CHANGES);
    report.add(
        SECTION,
        "receive 10k changes, 1/bundle",
        small_us,
        "µs/change",
        "one signature check per bundle",
    );
}
