//! Section "baseline": raw automerge 0.12, no ECHO engine, on the shared
//! workload ([`crate::workload`]) and the automerge-paper editing trace.
//! Measured in the same run as the engine sections so ratios hold on a
//! noisy machine.
//!
//! Layouts compared (the object-layout question of ADR 0001):
//! - one document per space: every object a map under the root, keyed by id;
//! - one document per object: the object's fields at the root;
//! - N shards: object → shard `id[0] % N`, each shard laid out like the
//!   one-document case.
//!
//! All documents use one fixed actor (one peer writing) and pin the text
//! encoding to Unicode code points (see [`crate::trace`]).
//!
//! The whole section takes about a minute on a 2-core machine; the slowest
//! figures are the 100,000-object writes (~12–14 s each, one-document and
//! each shard count).

use std::hint::black_box;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, AutomergeError, LoadOptions, ObjId, ObjType, ReadDoc, TextEncoding, ROOT,
};

use crate::report::Report;
use crate::trace;
use crate::workload::{self, GenObject, F_FLAG, F_NUMBER, F_REF, F_TAGS, F_TITLE, F_TYPE};

const SECTION: &str = "baseline";
/// Objects in the one-document and sharded workloads.
pub const OBJECTS: usize = 100_000;
/// Objects (= documents) in the document-per-object workload.
pub const PER_OBJECT_DOCS: usize = 10_000;
/// Objects per commit / batch.
pub const BATCH: usize = 1_000;
pub const SHARD_COUNTS: &[usize] = &[16, 64, 256];
/// The type the scan figures look for.
const SCAN_TYPE: &str = "type3";
const TEXT_TRACE: &str = "automerge-paper";

/// A fresh document with the benchmark's fixed actor and code-point text.
pub fn new_doc() -> AutoCommit {
    AutoCommit::new_with_encoding(TextEncoding::UnicodeCodePoint)
        .with_actor(ActorId::from([0xEC; 16]))
}

pub fn load_doc(bytes: &[u8]) -> AutoCommit {
    AutoCommit::load_with_options(
        bytes,
        LoadOptions::new().text_encoding(TextEncoding::UnicodeCodePoint),
    )
    .expect("load a document this benchmark saved")
}

/// Writes the object's six fields into the map `obj`.
pub fn write_fields<T: Transactable>(
    doc: &mut T,
    obj: &ObjId,
    o: &GenObject,
) -> Result<(), AutomergeError> {
    doc.put(obj, F_TYPE, o.type_name.as_str())?;
    doc.put(obj, F_TITLE, o.title.as_str())?;
    doc.put(obj, F_NUMBER, o.number)?;
    doc.put(obj, F_FLAG, o.flag)?;
    let tags = doc.put_object(obj, F_TAGS, ObjType::List)?;
    for (i, t) in o.tags.iter().enumerate() {
        doc.insert(&tags, i, t.as_str())?;
    }
    doc.put(obj, F_REF, o.ref_text.as_str())?;
    Ok(())
}

/// Writes the object as a map under the root, keyed by its id text.
pub fn write_object<T: Transactable>(doc: &mut T, o: &GenObject) -> Result<(), AutomergeError> {
    let obj = doc.put_object(ROOT, o.id_text.as_str(), ObjType::Map)?;
    write_fields(doc, &obj, o)
}

/// Number of objects (maps under the root) whose type field is `ty`.
fn scan_type(doc: &AutoCommit, ty: &str) -> usize {
    let mut hits = 0;
    for item in doc.map_range(ROOT, ..) {
        let obj = item.id();
        if let Ok(Some((v, _))) = doc.get(&obj, F_TYPE) {
            if v.as_str() == Some(ty) {
                hits += 1;
            }
        }
    }
    hits
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn per_sec(n: usize, s: f64) -> f64 {
    n as f64 / s
}

pub fn run(report: &mut Report) {
    let t = Instant::now();
    let objs = workload::objects(OBJECTS, workload::DEFAULT_SEED);
    let expected_hits = objs.iter().filter(|o| o.type_name == SCAN_TYPE).count();
    report.say(
        SECTION,
        &format!(
            "workload: {OBJECTS} objects generated in {:.2} s (seed {:#x})",
            secs(t),
            workload::DEFAULT_SEED
        ),
    );

    per_object(report, &objs[..PER_OBJECT_DOCS]);
    for &n in SHARD_COUNTS {
        sharded(report, &objs, n, expected_hits);
    }
    one_document(report, &objs, expected_hits);
    text(report);
}

/// (b) one document per object: create, write, commit and save each.
fn per_object(report: &mut Report, objs: &[GenObject]) {
    let n = objs.len();
    let t = Instant::now();
    let mut saved = Vec::with_capacity(n);
    let mut save_s = 0.0;
    for o in objs {
        let mut doc = new_doc();
        write_fields(&mut doc, &ROOT, o).expect("write object");
        doc.commit();
        let ts = Instant::now();
        saved.push(doc.save());
        save_s += secs(ts);
    }
    let s = secs(t);
    let bytes: usize = saved.iter().map(Vec::len).sum();
    let m = format!("doc-per-object: create+save {n} docs");
    report.add(SECTION, &m, s, "s", "reference 0.23 s");
    report.add(
        SECTION,
        "doc-per-object: objects/s",
        per_sec(n, s),
        "obj/s",
        "",
    );
    report.add(
        SECTION,
        "doc-per-object: of which save()",
        save_s,
        "s",
        "included above",
    );
    report.add(
        SECTION,
        "doc-per-object: saved bytes",
        bytes as f64,
        "B",
        "total",
    );
    report.add(
        SECTION,
        "doc-per-object: bytes/doc",
        bytes as f64 / n as f64,
        "B",
        "per-document size floor",
    );

    let t = Instant::now();
    let docs: Vec<AutoCommit> = saved.iter().map(|b| load_doc(b)).collect();
    let s = secs(t);
    report.add(
        SECTION,
        &format!("doc-per-object: load {n} docs"),
        s,
        "s",
        "",
    );
    report.add(
        SECTION,
        "doc-per-object: loads/s",
        per_sec(n, s),
        "doc/s",
        "",
    );
    let t = Instant::now();
    let hits = docs
        .iter()
        .filter(
            |d| matches!(d.get(ROOT, F_TYPE), Ok(Some((v, _))) if v.as_str() == Some(SCAN_TYPE)),
        )
        .count();
    let s = secs(t);
    black_box(hits);
    report.add(
        SECTION,
        &format!("doc-per-object: scan {n} docs for type"),
        s,
        "s",
        &format!("{hits} hits"),
    );
}

/// (c) N shards, batches of [`BATCH`], one commit per touched shard per batch.
fn sharded(report: &mut Report, objs: &[GenObject], n: usize, expected_hits: usize) {
    let mut docs: Vec<AutoCommit> = (0..n).map(|_| new_doc()).collect();
    let t = Instant::now();
    let mut touched = vec![false; n];
    for batch in objs.chunks(BATCH) {
        for o in batch {
            let s = o.shard(n);
            write_object(&mut docs[s], o).expect("write object");
            touched[s] = true;
        }
        for (s, hit) in touched.iter_mut().enumerate() {
            if std::mem::take(hit) {
                docs[s].commit();
            }
        }
    }
    let s = secs(t);
    let count = objs.len();
    let label = format!("shards={n}");
    report.add(
        SECTION,
        &format!("{label}: write {count} objects"),
        s,
        "s",
        "",
    );
    report.add(
        SECTION,
        &format!("{label}: objects/s"),
        per_sec(count, s),
        "obj/s",
        "",
    );

    let t = Instant::now();
    let saved: Vec<Vec<u8>> = docs.iter_mut().map(|d| d.save()).collect();
    let s = secs(t);
    let bytes: usize = saved.iter().map(Vec::len).sum();
    drop(docs);
    report.add(SECTION, &format!("{label}: save all"), s, "s", "");
    report.add(
        SECTION,
        &format!("{label}: saved bytes"),
        bytes as f64,
        "B",
        "total",
    );

    let t = Instant::now();
    let docs: Vec<AutoCommit> = saved.iter().map(|b| load_doc(b)).collect();
    let s = secs(t);
    report.add(SECTION, &format!("{label}: load all"), s, "s", "");

    let t = Instant::now();
    let hits: usize = docs.iter().map(|d| scan_type(d, SCAN_TYPE)).sum();
    let s = secs(t);
    assert_eq!(hits, expected_hits, "sharded scan found the wrong count");
    report.add(
        SECTION,
        &format!("{label}: scan for type"),
        s,
        "s",
        &format!("{hits} hits"),
    );
    let total: usize = docs.iter().map(|d| d.length(ROOT)).sum();
    assert_eq!(total, count, "sharded docs lost objects");
}

/// (a) + (d) one document, commit every [`BATCH`] objects; save, load, scan.
fn one_document(report: &mut Report, objs: &[GenObject], expected_hits: usize) {
    let count = objs.len();
    let mut doc = new_doc();
    let t = Instant::now();
    for batch in objs.chunks(BATCH) {
        for o in batch {
            write_object(&mut doc, o).expect("write object");
        }
        doc.commit();
    }
    let s = secs(t);
    report.add(
        SECTION,
        &format!("one-doc: write {count} objects"),
        s,
        "s",
        "reference 15.6 s",
    );
    report.add(
        SECTION,
        "one-doc: objects/s",
        per_sec(count, s),
        "obj/s",
        "reference 6.4k",
    );

    let t = Instant::now();
    let bytes = doc.save();
    let s = secs(t);
    drop(doc);
    report.add(SECTION, "one-doc: save", s, "s", "");
    report.add(SECTION, "one-doc: saved bytes", bytes.len() as f64, "B", "");

    let t = Instant::now();
    let doc = load_doc(&bytes);
    let s = secs(t);
    report.add(SECTION, "one-doc: load", s, "s", "");

    let t = Instant::now();
    let hits = scan_type(&doc, SCAN_TYPE);
    let s = secs(t);
    assert_eq!(hits, expected_hits, "one-doc scan found the wrong count");
    report.add(
        SECTION,
        "one-doc: scan for type",
        s,
        "s",
        &format!("{hits} hits"),
    );
    assert_eq!(doc.length(ROOT), count, "one-doc lost objects");
}

/// (e) the automerge-paper trace into one Text object.
fn text(report: &mut Report) {
    let tr = match trace::load(TEXT_TRACE) {
        Ok(t) => t,
        Err(e) if e.is_absent() => {
            report.say(SECTION, &format!("{e} — skipped"));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(!tr.concurrent, "{TEXT_TRACE} should be sequential");
    let edits = tr.patches.len();

    for per_edit in [true, false] {
        let label = if per_edit {
            "text: commit per edit"
        } else {
            "text: one commit"
        };
        let mut doc = new_doc();
        let text = doc
            .put_object(ROOT, "text", ObjType::Text)
            .expect("create text");
        if !tr.start_content.is_empty() {
            doc.splice_text(&text, 0, 0, &tr.start_content)
                .expect("initial text");
        }
        doc.commit();
        let t = Instant::now();
        for p in &tr.patches {
            doc.splice_text(&text, p.pos, p.del as isize, &p.insert)
                .expect("apply trace patch");
            if per_edit {
                doc.commit();
            }
        }
        doc.commit();
        let s = secs(t);
        let reference = if per_edit {
            "reference 3.3 s"
        } else {
            "reference 2.7 s"
        };
        report.add(
            SECTION,
            &format!("{label}: apply {edits} edits"),
            s,
            "s",
            reference,
        );
        report.add(
            SECTION,
            &format!("{label}: edits/s"),
            per_sec(edits, s),
            "edit/s",
            "",
        );
        let got = doc.text(&text).expect("read text");
        assert!(
            got == tr.end_content,
            "{label}: final text differs from the trace's endContent ({} vs {} chars)",
            got.chars().count(),
            tr.end_content.chars().count()
        );

        let t = Instant::now();
        let bytes = doc.save();
        let s = secs(t);
        drop(doc);
        report.add(SECTION, &format!("{label}: save"), s, "s", "");
        report.add(
            SECTION,
            &format!("{label}: saved bytes"),
            bytes.len() as f64,
            "B",
            "",
        );
        let t = Instant::now();
        let doc = load_doc(&bytes);
        let s = secs(t);
        report.add(SECTION, &format!("{label}: load"), s, "s", "");
        let (_, text) = doc
            .get(ROOT, "text")
            .expect("read root")
            .expect("text object after load");
        assert!(
            doc.text(&text).expect("read text") == tr.end_content,
            "{label}: text after load differs from endContent"
        );
    }
}
