//! Section "identity": signed change bundles and membership state.
//!
//! - Verifying 100,000 signed changes (decode each change, check the bundle
//!   signature over the change hashes, actor ids, authorization in the
//!   bundle's control-log cut), with 1 change per bundle and 100 per bundle.
//! - Membership state of a space with 1,000 members and 10,000 credentials:
//!   loading the log (signature checks included), recomputing the state
//!   from scratch, and adding one more credential (the usual case: it
//!   follows every head; and the concurrent case: a full re-evaluation).
//!
//! Takes about half a minute on a 2-core machine.

use std::hint::black_box;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Change, ROOT};
use echo_core::identity::{
    ChangeRef, Credential, CredentialKind, Issuer, Role, Run, SignedChanges, SpaceControl,
};
use echo_core::model::SpaceId;

use crate::person::{person, Person};
use crate::report::Report;

const SECTION: &str = "identity";
const CHANGES: usize = 100_000;
const MEMBERS: usize = 1_000;
const CREDENTIALS: usize = 10_000;

pub fn run(report: &mut Report) {
    verify_changes(report);
    membership(report);
}

fn verify_changes(report: &mut Report) {
    let owner = person();
    let editor = person();
    let mut space = SpaceControl::create(
        SpaceId::random(),
        Issuer::device(&owner.dev, owner.id.public_key()),
        Some(owner.cert.clone()),
    )
    .expect("create space");
    space
        .admit(
            Issuer::device(&owner.dev, owner.id.public_key()),
            editor.id.public_key(),
            Role::Editor,
        )
        .expect("admit");
    space
        .authorize_device((&editor.id).into(), editor.cert.clone())
        .expect("authorize");

    let mut doc = AutoCommit::new().with_actor(editor.dev.actor_id());
    let mut changes: Vec<Change> = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        doc.put(ROOT, format!("k{}", i % 1000), i as i64)
            .expect("put");
        doc.commit();
        changes.push(doc.get_last_local_change().expect("a change"));
    }
    let bytes: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
    report.say(
        SECTION,
        &format!(
            "{CHANGES} changes, {:.0} bytes each on average",
            bytes as f64 / CHANGES as f64
        ),
    );

    let actor = editor.dev.public_key().as_bytes().to_vec();
    for per_bundle in [1usize, 100] {
        let t = Instant::now();
        let bundles: Vec<(SignedChanges, &[Change])> = changes
            .chunks(per_bundle)
            .map(|chunk| {
                let run = Run {
                    shard: 0,
                    first_seq: chunk[0].seq(),
                    count: chunk.len() as u32,
                };
                let hashes = chunk.iter().map(Change::hash).collect();
                let b = editor
                    .dev
                    .sign_changes(space.space(), space.heads(), vec![(run, hashes)])
                    .expect("sign");
                (b, chunk)
            })
            .collect();
        let sign_us = t.elapsed().as_secs_f64() * 1e6 / CHANGES as f64;
        let t = Instant::now();
        let mut accepted = 0;
        for (b, chunk) in &bundles {
            // What a receiver does: decode each change, hash it, verify.
            let decoded: Vec<Change> = chunk
                .iter()
                .map(|c| Change::from_bytes(c.raw_bytes().to_vec()).expect("decode"))
                .collect();
            let refs: Vec<ChangeRef<'_>> = decoded
                .iter()
                .map(|c| ChangeRef {
                    hash: c.hash(),
                    actor: &actor,
                    seq: c.seq(),
                })
                .collect();
            if black_box(space.verify_bundle(b, &[refs])).is_ok() {
                accepted += chunk.len();
            }
        }
        let verify_us = t.elapsed().as_secs_f64() * 1e6 / CHANGES as f64;
        assert_eq!(accepted, CHANGES, "every honest change verifies");
        report.add(
            SECTION,
            &format!("verify 100k changes, {per_bundle}/bundle"),
            verify_us,
            "µs/change",
            "decode + hash + signature + authorization",
        );
        report.add(
            SECTION,
            &format!("sign 100k changes, {per_bundle}/bundle"),
            sign_us,
            "µs/change",
            "",
        );
    }
}

fn membership(report: &mut Report) {
    let owner = person();
    let by_owner = || Issuer::device(&owner.dev, owner.id.public_key());
    let mut space = SpaceControl::create(SpaceId::random(), by_owner(), Some(owner.cert.clone()))
        .expect("create space");
    let members: Vec<Person> = (0..MEMBERS).map(|_| person()).collect();
    let roles = [Role::Reader, Role::Editor, Role::Admin];
    for (i, m) in members.iter().enumerate() {
        space
            .admit(by_owner(), m.id.public_key(), roles[i % 2])
            .expect("admit");
        space
            .authorize_device((&m.id).into(), m.cert.clone())
            .expect("authorize");
    }
    let mut i = 0;
    while space.len() < CREDENTIALS {
        let m = &members[i % MEMBERS];
        space
            .change_role(by_owner(), m.id.public_key(), roles[(i / MEMBERS) % 3])
            .expect("change role");
        i += 1;
    }
    let log: Vec<Credential> = space.credentials().cloned().collect();
    let bytes: usize = log.iter().map(|c| c.to_bytes().len()).sum();
    report.say(
        SECTION,
        &format!(
            "{} members, {} credentials, {:.0} bytes each on average",
            space.state().members.len(),
            log.len(),
            bytes as f64 / log.len() as f64
        ),
    );

    let encoded: Vec<Vec<u8>> = log.iter().map(Credential::to_bytes).collect();
    let t = Instant::now();
    let mut loaded = SpaceControl::from_genesis(log[0].clone()).expect("genesis");
    for c in &encoded[1..] {
        loaded.receive_bytes(c).expect("receive");
    }
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(loaded.state(), space.state());
    report.add(
        SECTION,
        "load 1k members / 10k credentials",
        load_ms,
        "ms",
        "decode + signature + incremental state",
    );

    let t = Instant::now();
    let runs = 5;
    for _ in 0..runs {
        black_box(loaded.recompute());
    }
    report.add(
        SECTION,
        "state from scratch, 1k members / 10k credentials",
        t.elapsed().as_secs_f64() * 1e3 / runs as f64,
        "ms",
        "no signature checks",
    );

    // One more credential following every head (the usual case).
    let extra = 1_000;
    let fresh: Vec<Credential> = (0..extra)
        .map(|i| {
            space
                .change_role(by_owner(), members[i].id.public_key(), roles[(i + 1) % 3])
                .expect("change role")
        })
        .collect();
    let t = Instant::now();
    for c in &fresh {
        loaded.receive(c.clone()).expect("receive");
    }
    report.add(
        SECTION,
        "add a credential (follows all heads)",
        t.elapsed().as_secs_f64() * 1e6 / extra as f64,
        "µs",
        "signature + incremental state",
    );

    // A credential concurrent with the latest ones: full re-evaluation.
    let old_heads = vec![log[log.len() - 1].hash()];
    let concurrent: Vec<Credential> = (0..10)
        .map(|i| {
            Credential::issue(
                space.log_id(),
                old_heads.clone(),
                by_owner(),
                CredentialKind::ChangeRole {
                    member: members[500 + i].id.public_key(),
                    role: Role::Reader,
                },
            )
            .expect("issue")
        })
        .collect();
    let t = Instant::now();
    for c in &concurrent {
        loaded.receive(c.clone()).expect("receive");
    }
    report.add(
        SECTION,
        "add a concurrent credential (re-evaluates)",
        t.elapsed().as_secs_f64() * 1e3 / concurrent.len() as f64,
        "ms",
        "11k credentials",
    );

    // Verifying a bundle against an older cut (cache miss).
    let t = Instant::now();
    black_box(loaded.state_at(&old_heads).expect("known heads"));
    report.add(
        SECTION,
        "membership state of an older cut",
        t.elapsed().as_secs_f64() * 1e3,
        "ms",
        "first use; later uses are cached",
    );
}
