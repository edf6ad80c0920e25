//! The contract suite every [`ChunkStore`] implementation must pass.
//!
//! The cases are plain data — a [`Case`] is a list of [`Step`]s, each an
//! operation with its expected outcome — so an asynchronous host (IndexedDB
//! in the browser) can mirror [`run_step`] with its own async calls and run
//! the very same [`cases`]: it performs each step, hands the result to
//! [`check_outcome`] as an [`Outcome`], and checks rejected batches with
//! [`check_unchanged`] and listings with [`check_listings`] /
//! [`check_listed_value`] (crate `echo-vault` does, in `contract`). Expected
//! errors are given by their stable [`StoreError::code`].
//!
//! ```
//! use echo_core::store::{contract, ChunkStore, MemoryStore};
//! contract::run_all(&mut || Box::new(MemoryStore::new()) as Box<dyn ChunkStore>);
//! ```
//!
//! Durable stores also run [`durable`], which writes, drops the store,
//! reopens it and checks what survived.
//!
//! Violations panic with the case name, the step number and what differed.

use super::{Batch, ChunkStore, Key, Op, StoreError, MAX_KEY_LEN, MIN_SUPPORTED_VALUE_LEN};

/// An expected outcome: a value, or the code of the expected error.
pub type Expect<T> = Result<T, &'static str>;

/// One operation of a case and what it must return.
#[derive(Debug, Clone)]
pub enum Step {
    /// Apply `batch`; `Err(code)` also means nothing of it may be applied.
    Apply { batch: Batch, expect: Expect<()> },
    /// `get(key)` returns `expect`.
    Get {
        key: Key,
        expect: Expect<Option<Vec<u8>>>,
    },
    /// `list_prefix(prefix)` returns `expect`.
    ListPrefix {
        prefix: String,
        expect: Expect<Vec<(Key, Vec<u8>)>>,
    },
    /// `list_keys(prefix)` returns `expect`.
    ListKeys {
        prefix: String,
        expect: Expect<Vec<Key>>,
    },
}

/// A named sequence of steps run against one fresh, empty store.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case checks, for failure messages.
    pub name: &'static str,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// A case for durable stores: `write` runs on a store, which is then dropped
/// and opened again, and `after_reopen` runs on the reopened store.
#[derive(Debug, Clone)]
pub struct DurableCase {
    /// What the case checks.
    pub name: &'static str,
    /// Steps before the store is dropped.
    pub write: Vec<Step>,
    /// Steps on the reopened store.
    pub after_reopen: Vec<Step>,
}

// ---------------------------------------------------------------- helpers

fn v(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

fn batch(ops: &[(&str, Option<&[u8]>)]) -> Batch {
    let mut b = Batch::new();
    for (key, value) in ops {
        match value {
            Some(value) => b.put(*key, value.to_vec()),
            None => b.delete(*key),
        };
    }
    b
}

fn apply(ops: &[(&str, Option<&[u8]>)]) -> Step {
    Step::Apply {
        batch: batch(ops),
        expect: Ok(()),
    }
}

fn apply_fails(ops: &[(&str, Option<&[u8]>)], code: &'static str) -> Step {
    Step::Apply {
        batch: batch(ops),
        expect: Err(code),
    }
}

fn get(key: &str, value: Option<&[u8]>) -> Step {
    Step::Get {
        key: key.into(),
        expect: Ok(value.map(v)),
    }
}

fn get_fails(key: &str, code: &'static str) -> Step {
    Step::Get {
        key: key.into(),
        expect: Err(code),
    }
}

fn list(prefix: &str, entries: &[(&str, &[u8])]) -> Step {
    Step::ListPrefix {
        prefix: prefix.into(),
        expect: Ok(entries
            .iter()
            .map(|(k, val)| (k.to_string(), v(val)))
            .collect()),
    }
}

fn keys(prefix: &str, keys: &[&str]) -> Step {
    Step::ListKeys {
        prefix: prefix.into(),
        expect: Ok(keys.iter().map(|k| k.to_string()).collect()),
    }
}

/// A deterministic pseudo-random value, so large values are not all zeros.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const INVALID: &str = "store.invalid_key";

// ---------------------------------------------------------------- cases

/// All cases every store must pass, each on a fresh empty store.
pub fn cases() -> Vec<Case> {
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let long_key = "k".repeat(MAX_KEY_LEN);
    let too_long_key = "k".repeat(MAX_KEY_LEN + 1);
    let large = pattern(MIN_SUPPORTED_VALUE_LEN, 1);
    let larger = pattern(MIN_SUPPORTED_VALUE_LEN + 12345, 2);

    let many_keys: Vec<(Key, Vec<u8>)> = (0..10_000u32)
        .map(|i| {
            (
                format!("many/{:08}", (i * 7919) % 10_000),
                i.to_be_bytes().to_vec(),
            )
        })
        .collect();
    let mut many_sorted = many_keys.clone();
    many_sorted.sort();
    let mut many_batch = Batch::new();
    for (k, val) in &many_keys {
        many_batch.put(k.clone(), val.clone());
    }
    let many_delete: Batch = (0..10_000u32)
        .filter(|i| i % 2 == 1)
        .map(|i| Op::Delete {
            key: format!("many/{i:08}"),
        })
        .collect();
    let many_after: Vec<(Key, Vec<u8>)> = many_sorted
        .iter()
        .filter(|(k, _)| k.ends_with(['0', '2', '4', '6', '8']))
        .cloned()
        .collect();

    vec![
        Case {
            name: "get of a missing key is None",
            steps: vec![
                get("missing", None),
                get("a/b/c", None),
                list("", &[]),
                keys("", &[]),
            ],
        },
        Case {
            name: "put then get",
            steps: vec![
                apply(&[("a", Some(b"1")), ("b/c", Some(b"2"))]),
                get("a", Some(b"1")),
                get("b/c", Some(b"2")),
                get("b", None),
            ],
        },
        Case {
            name: "overwrite replaces the value",
            steps: vec![
                apply(&[("k", Some(b"old value"))]),
                apply(&[("k", Some(b"new"))]),
                get("k", Some(b"new")),
                list("", &[("k", b"new")]),
            ],
        },
        Case {
            name: "delete removes the key; deleting a missing key is fine",
            steps: vec![
                apply(&[("k", Some(b"x")), ("l", Some(b"y"))]),
                apply(&[("k", None)]),
                get("k", None),
                get("l", Some(b"y")),
                apply(&[("never/written", None)]),
                list("", &[("l", b"y")]),
                apply(&[("k", Some(b"again"))]),
                get("k", Some(b"again")),
            ],
        },
        Case {
            name: "empty value is stored and differs from a missing key",
            steps: vec![
                apply(&[("empty", Some(b""))]),
                get("empty", Some(b"")),
                list("", &[("empty", b"")]),
            ],
        },
        Case {
            name: "binary values round-trip",
            steps: vec![
                Step::Apply {
                    batch: {
                        let mut b = Batch::new();
                        b.put("bin/all", all_bytes.clone())
                            .put("bin/nul", vec![0u8; 100])
                            .put("bin/ff", vec![0xFF; 3]);
                        b
                    },
                    expect: Ok(()),
                },
                Step::Get {
                    key: "bin/all".into(),
                    expect: Ok(Some(all_bytes.clone())),
                },
                get("bin/nul", Some(&[0u8; 100])),
                list(
                    "bin/",
                    &[
                        ("bin/all", &all_bytes),
                        ("bin/ff", &[0xFF; 3]),
                        ("bin/nul", &[0u8; 100]),
                    ],
                ),
            ],
        },
        Case {
            name: "a batch applies all its ops",
            steps: vec![
                apply(&[
                    ("x/1", Some(b"a")),
                    ("x/2", Some(b"b")),
                    ("x/3", Some(b"c")),
                    ("y", Some(b"d")),
                ]),
                apply(&[
                    ("x/1", None),
                    ("x/2", Some(b"B")),
                    ("x/4", Some(b"e")),
                    ("y", None),
                ]),
                list("", &[("x/2", b"B"), ("x/3", b"c"), ("x/4", b"e")]),
            ],
        },
        Case {
            name: "later op wins within a batch",
            steps: vec![
                apply(&[("k", Some(b"1")), ("k", Some(b"2")), ("k", Some(b"3"))]),
                get("k", Some(b"3")),
                apply(&[("k", Some(b"4")), ("k", None)]),
                get("k", None),
                apply(&[("k", None), ("k", Some(b"5"))]),
                get("k", Some(b"5")),
                apply(&[
                    ("j", Some(b"1")),
                    ("j", None),
                    ("j", Some(b"2")),
                    ("j", None),
                ]),
                get("j", None),
                list("", &[("k", b"5")]),
            ],
        },
        Case {
            name: "an empty batch is fine",
            steps: vec![
                apply(&[]),
                list("", &[]),
                apply(&[("a", Some(b"1"))]),
                apply(&[]),
                get("a", Some(b"1")),
            ],
        },
        Case {
            name: "a batch with an invalid key is rejected whole",
            steps: vec![
                apply(&[("keep", Some(b"old"))]),
                apply_fails(
                    &[
                        ("keep", Some(b"new")),
                        ("added", Some(b"x")),
                        ("", Some(b"bad")),
                        ("after", Some(b"y")),
                    ],
                    INVALID,
                ),
                apply_fails(&[("keep", None), ("a//b", Some(b"bad"))], INVALID),
                apply_fails(&[("/lead", Some(b"bad"))], INVALID),
                apply_fails(&[("trail/", Some(b"bad"))], INVALID),
                apply_fails(&[("sp ace", Some(b"bad"))], INVALID),
                apply_fails(&[("nul\0", Some(b"bad"))], INVALID),
                apply_fails(&[("ünï", Some(b"bad"))], INVALID),
                Step::Apply {
                    batch: batch(&[(too_long_key.as_str(), Some(b"bad"))]),
                    expect: Err(INVALID),
                },
                apply_fails(&[("", None)], INVALID),
                list("", &[("keep", b"old")]),
                // The store is still usable after a rejected batch.
                apply(&[("added", Some(b"x"))]),
                list("", &[("added", b"x"), ("keep", b"old")]),
            ],
        },
        Case {
            name: "reads with an invalid key or prefix are rejected",
            steps: vec![
                get_fails("", INVALID),
                get_fails("a//b", INVALID),
                get_fails("/a", INVALID),
                get_fails("a/", INVALID),
                get_fails("tab\t", INVALID),
                Step::Get {
                    key: too_long_key.clone(),
                    expect: Err(INVALID),
                },
                Step::ListPrefix {
                    prefix: "sp ace".into(),
                    expect: Err(INVALID),
                },
                Step::ListKeys {
                    prefix: "é".into(),
                    expect: Err(INVALID),
                },
                Step::ListPrefix {
                    prefix: too_long_key.clone(),
                    expect: Err(INVALID),
                },
            ],
        },
        Case {
            name: "the longest valid key works",
            steps: vec![
                Step::Apply {
                    batch: batch(&[(long_key.as_str(), Some(b"long"))]),
                    expect: Ok(()),
                },
                get(&long_key, Some(b"long")),
                keys("", &[long_key.as_str()]),
            ],
        },
        Case {
            name: "listing is sorted byte-wise",
            steps: vec![
                apply(&[
                    ("b", Some(b"4")),
                    ("a~", Some(b"3")),
                    ("a/z", Some(b"2")),
                    ("A", Some(b"0")),
                    ("a-b", Some(b"1")),
                    ("a0", Some(b"1")),
                    ("a/b", Some(b"2")),
                    ("a", Some(b"1")),
                    ("a/B", Some(b"2")),
                    ("a/10", Some(b"2")),
                    ("a/9", Some(b"2")),
                ]),
                keys(
                    "",
                    &[
                        "A", "a", "a-b", "a/10", "a/9", "a/B", "a/b", "a/z", "a0", "a~", "b",
                    ],
                ),
            ],
        },
        Case {
            name: "prefix boundaries",
            steps: vec![
                apply(&[
                    ("a/a", Some(b"1")),
                    ("a/b", Some(b"2")),
                    ("a/b/c", Some(b"3")),
                    ("a/b/d/e", Some(b"4")),
                    ("a/bc", Some(b"5")),
                    ("a/c", Some(b"6")),
                    ("a.b", Some(b"7")),
                    ("ab", Some(b"8")),
                ]),
                list(
                    "a/b",
                    &[
                        ("a/b", b"2"),
                        ("a/b/c", b"3"),
                        ("a/b/d/e", b"4"),
                        ("a/bc", b"5"),
                    ],
                ),
                list("a/b/", &[("a/b/c", b"3"), ("a/b/d/e", b"4")]),
                keys("a/b/", &["a/b/c", "a/b/d/e"]),
                keys("a/", &["a/a", "a/b", "a/b/c", "a/b/d/e", "a/bc", "a/c"]),
                keys(
                    "a",
                    &["a.b", "a/a", "a/b", "a/b/c", "a/b/d/e", "a/bc", "a/c", "ab"],
                ),
                keys("a/bc", &["a/bc"]),
                keys("a/bcd", &[]),
                keys("a/b/d/e/", &[]),
                keys("b", &[]),
                keys("/", &[]),
                keys(
                    "",
                    &["a.b", "a/a", "a/b", "a/b/c", "a/b/d/e", "a/bc", "a/c", "ab"],
                ),
            ],
        },
        Case {
            name: "prefix at the top of the character range",
            steps: vec![
                apply(&[
                    ("x~", Some(b"1")),
                    ("x~~", Some(b"2")),
                    ("x~~/a", Some(b"3")),
                    ("y", Some(b"4")),
                    ("x}", Some(b"0")),
                ]),
                keys("x~", &["x~", "x~~", "x~~/a"]),
                keys("x~~", &["x~~", "x~~/a"]),
                keys("~", &[]),
            ],
        },
        Case {
            name: "large values",
            steps: vec![
                Step::Apply {
                    batch: {
                        let mut b = Batch::new();
                        b.put("big/1", large.clone())
                            .put("big/2", larger.clone())
                            .put("big/small", v(b"s"));
                        b
                    },
                    expect: Ok(()),
                },
                Step::Get {
                    key: "big/1".into(),
                    expect: Ok(Some(large.clone())),
                },
                Step::Get {
                    key: "big/2".into(),
                    expect: Ok(Some(larger.clone())),
                },
                Step::ListPrefix {
                    prefix: "big/".into(),
                    expect: Ok(vec![
                        ("big/1".into(), large.clone()),
                        ("big/2".into(), larger.clone()),
                        ("big/small".into(), v(b"s")),
                    ]),
                },
                apply(&[("big/1", Some(b"shrunk")), ("big/2", None)]),
                get("big/1", Some(b"shrunk")),
                keys("big/", &["big/1", "big/small"]),
                Step::Apply {
                    batch: {
                        let mut b = Batch::new();
                        b.put("big/small", larger.clone());
                        b
                    },
                    expect: Ok(()),
                },
                Step::Get {
                    key: "big/small".into(),
                    expect: Ok(Some(larger.clone())),
                },
            ],
        },
        Case {
            name: "many keys",
            steps: vec![
                Step::Apply {
                    batch: many_batch,
                    expect: Ok(()),
                },
                Step::ListPrefix {
                    prefix: "many/".into(),
                    expect: Ok(many_sorted.clone()),
                },
                Step::ListKeys {
                    prefix: "many/".into(),
                    expect: Ok(many_sorted.iter().map(|(k, _)| k.clone()).collect()),
                },
                get("many/00004321", Some(&many_sorted[4321].1)),
                Step::Apply {
                    batch: many_delete,
                    expect: Ok(()),
                },
                Step::ListPrefix {
                    prefix: "many/".into(),
                    expect: Ok(many_after.clone()),
                },
                Step::ListPrefix {
                    prefix: "many/0000999".into(),
                    expect: Ok(many_after
                        .iter()
                        .filter(|(k, _)| k.starts_with("many/0000999"))
                        .cloned()
                        .collect()),
                },
                get("many/00004321", None),
            ],
        },
    ]
}

/// Cases for durable stores. They all run in the same store, one after the
/// other, each under its own key prefix (`d<n>/`).
pub fn durable_cases() -> Vec<DurableCase> {
    let large = pattern(MIN_SUPPORTED_VALUE_LEN, 3);
    let many: Batch = (0..2_000u32)
        .map(|i| Op::Put {
            key: format!("d5/{i:05}"),
            value: pattern(100, u64::from(i)),
        })
        .collect();
    let many_expected: Vec<(Key, Vec<u8>)> = (0..2_000u32)
        .map(|i| (format!("d5/{i:05}"), pattern(100, u64::from(i))))
        .collect();
    vec![
        DurableCase {
            name: "applied batches survive a reopen",
            write: vec![
                apply(&[("d1/a", Some(b"1")), ("d1/b", Some(b"2"))]),
                apply(&[("d1/c", Some(b"3"))]),
            ],
            after_reopen: vec![list(
                "d1/",
                &[("d1/a", b"1"), ("d1/b", b"2"), ("d1/c", b"3")],
            )],
        },
        DurableCase {
            name: "overwrites and deletes survive a reopen",
            write: vec![
                apply(&[
                    ("d2/a", Some(b"old")),
                    ("d2/b", Some(b"gone")),
                    ("d2/c", Some(b"x")),
                ]),
                apply(&[
                    ("d2/a", Some(b"new")),
                    ("d2/b", None),
                    ("d2/c", None),
                    ("d2/c", Some(b"back")),
                ]),
            ],
            after_reopen: vec![
                list("d2/", &[("d2/a", b"new"), ("d2/c", b"back")]),
                get("d2/b", None),
            ],
        },
        DurableCase {
            name: "a rejected batch leaves nothing behind",
            write: vec![
                apply(&[("d3/keep", Some(b"1"))]),
                apply_fails(
                    &[
                        ("d3/keep", None),
                        ("d3/new", Some(b"x")),
                        ("d3//bad", Some(b"y")),
                    ],
                    INVALID,
                ),
            ],
            after_reopen: vec![list("d3/", &[("d3/keep", b"1")])],
        },
        DurableCase {
            name: "large values survive a reopen",
            write: vec![Step::Apply {
                batch: {
                    let mut b = Batch::new();
                    b.put("d4/big", large.clone()).put("d4/empty", Vec::new());
                    b
                },
                expect: Ok(()),
            }],
            after_reopen: vec![
                Step::Get {
                    key: "d4/big".into(),
                    expect: Ok(Some(large)),
                },
                get("d4/empty", Some(b"")),
            ],
        },
        DurableCase {
            name: "many keys survive a reopen",
            write: vec![Step::Apply {
                batch: many,
                expect: Ok(()),
            }],
            after_reopen: vec![Step::ListPrefix {
                prefix: "d5/".into(),
                expect: Ok(many_expected),
            }],
        },
        DurableCase {
            name: "the store keeps working after a reopen",
            write: vec![apply(&[("d6/a", Some(b"1"))])],
            after_reopen: vec![
                apply(&[("d6/b", Some(b"2")), ("d6/a", None)]),
                list("d6/", &[("d6/b", b"2")]),
            ],
        },
    ]
}

// ---------------------------------------------------------------- running

/// Runs every case of [`cases`], each on a fresh store from `new_store`,
/// then checks the store's listings are consistent.
pub fn run_all(new_store: &mut dyn FnMut() -> Box<dyn ChunkStore>) {
    for case in cases() {
        let mut store = new_store();
        run_case(store.as_mut(), &case);
        check_consistent(store.as_ref(), case.name);
    }
}

/// Runs the steps of one case.
pub fn run_case(store: &mut dyn ChunkStore, case: &Case) {
    for (i, step) in case.steps.iter().enumerate() {
        run_step(store, case.name, i, step);
    }
}

/// Runs [`durable_cases`] against a durable store. Each call of `open` must
/// open the same store (empty on the first call); the suite drops every
/// handle before opening the next one.
pub fn durable(open: &mut dyn FnMut() -> Box<dyn ChunkStore>) {
    let cases = durable_cases();
    for case in &cases {
        let mut store = open();
        for (i, step) in case.write.iter().enumerate() {
            run_step(store.as_mut(), case.name, i, step);
        }
        drop(store);
        let mut store = open();
        let name = format!("{} (after reopen)", case.name);
        for (i, step) in case.after_reopen.iter().enumerate() {
            run_step(store.as_mut(), &name, i, step);
        }
        check_consistent(store.as_ref(), &name);
    }
    // Every case's data is still there at the end, after more reopens.
    let store = open();
    for case in &cases {
        for (i, step) in case.after_reopen.iter().enumerate() {
            if !matches!(step, Step::Apply { .. }) {
                run_step_ref(
                    store.as_ref(),
                    &format!("{} (at the end)", case.name),
                    i,
                    step,
                );
            }
        }
    }
}

/// Runs one step and panics with a clear message if the outcome differs.
pub fn run_step(store: &mut dyn ChunkStore, case: &str, index: usize, step: &Step) {
    match step {
        Step::Apply { batch, expect } => {
            let before = if expect.is_err() {
                Some(snapshot(store, case))
            } else {
                None
            };
            let got = Outcome::Apply(store.apply(batch.clone()));
            check_outcome(case, index, step, &got);
            if let Some(before) = before {
                check_unchanged(case, index, &before, &snapshot(store, case));
            }
        }
        _ => run_step_ref(store, case, index, step),
    }
}

fn run_step_ref(store: &dyn ChunkStore, case: &str, index: usize, step: &Step) {
    let got = match step {
        Step::Apply { .. } => {
            panic!("contract case {case:?}, step {index}: an apply step needs a mutable store")
        }
        Step::Get { key, .. } => Outcome::Get(store.get(key)),
        Step::ListPrefix { prefix, .. } => Outcome::ListPrefix(store.list_prefix(prefix)),
        Step::ListKeys { prefix, .. } => Outcome::ListKeys(store.list_keys(prefix)),
    };
    check_outcome(case, index, step, &got);
}

// ------------------------------------------- hooks for hosts with own runners

/// What a store returned for one [`Step`]. A host whose store cannot be a
/// [`ChunkStore`] (an async store in the browser) performs each step itself
/// and lets [`check_outcome`] judge the result, so every store is held to the
/// same expectations with the same failure messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The result of `apply`.
    Apply(Result<(), StoreError>),
    /// The result of `get`.
    Get(Result<Option<Vec<u8>>, StoreError>),
    /// The result of `list_prefix`.
    ListPrefix(Result<Vec<(Key, Vec<u8>)>, StoreError>),
    /// The result of `list_keys`.
    ListKeys(Result<Vec<Key>, StoreError>),
}

/// Panics with a clear message (case, step number, expected and got) if
/// `got` is not what `step` expects, or is the outcome of another kind of
/// step. For a failing [`Step::Apply`] the runner must also check, with
/// [`check_unchanged`], that the store did not change.
pub fn check_outcome(case: &str, index: usize, step: &Step, got: &Outcome) {
    match (step, got) {
        (Step::Apply { batch, expect }, Outcome::Apply(got)) => compare(
            case,
            index,
            &format!("apply of {} ops", batch.len()),
            got,
            expect,
            |_| String::from("()"),
        ),
        (Step::Get { key, expect }, Outcome::Get(got)) => compare(
            case,
            index,
            &format!("get({})", short_key(key)),
            got,
            expect,
            |v| match v {
                Some(v) => format!("Some({})", describe_value(v)),
                None => "None".into(),
            },
        ),
        (Step::ListPrefix { prefix, expect }, Outcome::ListPrefix(got)) => compare(
            case,
            index,
            &format!("list_prefix({})", short_key(prefix)),
            got,
            expect,
            |v| describe_entries(v),
        ),
        (Step::ListKeys { prefix, expect }, Outcome::ListKeys(got)) => compare(
            case,
            index,
            &format!("list_keys({})", short_key(prefix)),
            got,
            expect,
            |v| describe_keys(v),
        ),
        (step, got) => panic!(
            "contract case {case:?}, step {index}: the runner passed an outcome of another step \
             (step {step:?}, outcome {got:?})"
        ),
    }
}

/// Panics if a rejected batch changed the store: `before` and `after` are
/// the store's `list_prefix("")` around the failed apply.
pub fn check_unchanged(
    case: &str,
    index: usize,
    before: &[(Key, Vec<u8>)],
    after: &[(Key, Vec<u8>)],
) {
    if before != after {
        fail(
            case,
            index,
            "a rejected batch changed the store",
            &describe_entries(before),
            &describe_entries(after),
        );
    }
}

/// Checks that `list_prefix("")` and `list_keys("")` agree, are strictly
/// sorted, and that `get` returns each listed value.
pub fn check_consistent(store: &dyn ChunkStore, case: &str) {
    let entries = snapshot(store, case);
    let keys = store
        .list_keys("")
        .unwrap_or_else(|e| panic!("contract case {case:?}: list_keys(\"\") failed: {e}"));
    check_listings(case, &entries, &keys);
    for (key, value) in &entries {
        let got = store
            .get(key)
            .unwrap_or_else(|e| panic!("contract case {case:?}: get({key:?}) failed: {e}"));
        check_listed_value(case, key, value, got.as_deref());
    }
}

/// The listing half of [`check_consistent`], for hosts with own runners:
/// `entries` and `keys` (of `list_prefix("")` and `list_keys("")`) list the
/// same keys, strictly sorted byte-wise.
pub fn check_listings(case: &str, entries: &[(Key, Vec<u8>)], keys: &[Key]) {
    let listed: Vec<&Key> = entries.iter().map(|(k, _)| k).collect();
    let keys_ref: Vec<&Key> = keys.iter().collect();
    assert!(
        listed == keys_ref,
        "contract case {case:?}: list_prefix(\"\") and list_keys(\"\") list different keys"
    );
    for pair in keys.windows(2) {
        assert!(
            pair[0].as_bytes() < pair[1].as_bytes(),
            "contract case {case:?}: keys not strictly sorted: {:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// The `get` half of [`check_consistent`]: `got` (of `get(key)`) is the
/// `listed` value.
pub fn check_listed_value(case: &str, key: &str, listed: &[u8], got: Option<&[u8]>) {
    assert!(
        got == Some(listed),
        "contract case {case:?}: get({key:?}) differs from its listed value"
    );
}

fn snapshot(store: &dyn ChunkStore, case: &str) -> Vec<(Key, Vec<u8>)> {
    store
        .list_prefix("")
        .unwrap_or_else(|e| panic!("contract case {case:?}: list_prefix(\"\") failed: {e}"))
}

fn compare<T: PartialEq>(
    case: &str,
    index: usize,
    what: &str,
    got: &Result<T, StoreError>,
    expect: &Expect<T>,
    show: impl Fn(&T) -> String,
) {
    let show_result = |r: Result<&T, String>| match r {
        Ok(v) => format!("Ok({})", show(v)),
        Err(e) => format!("Err({e})"),
    };
    let same = match (got, expect) {
        (Ok(g), Ok(e)) => g == e,
        (Err(g), Err(code)) => g.code() == *code,
        _ => false,
    };
    if !same {
        let got_text = show_result(got.as_ref().map_err(|e| format!("{}: {e}", e.code())));
        let expect_text = show_result(expect.as_ref().map_err(|c| c.to_string()));
        fail(case, index, what, &expect_text, &got_text);
    }
}

fn fail(case: &str, index: usize, what: &str, expected: &str, got: &str) -> ! {
    panic!("store contract violated in case {case:?}, step {index}: {what}\n  expected: {expected}\n       got: {got}")
}

fn short_key(key: &str) -> String {
    if key.len() > 80 {
        format!(
            "{:?}… ({} bytes)",
            &key[..char_boundary(key, 60)],
            key.len()
        )
    } else {
        format!("{key:?}")
    }
}

fn char_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn describe_value(v: &[u8]) -> String {
    if v.len() <= 32 {
        format!("{v:?}")
    } else {
        let hash = v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        format!(
            "<{} bytes, starting {:?}, fnv {hash:016x}>",
            v.len(),
            &v[..8]
        )
    }
}

fn describe_keys(keys: &[Key]) -> String {
    if keys.len() <= 20 {
        format!(
            "{:?}",
            keys.iter().map(|k| short_key(k)).collect::<Vec<_>>()
        )
    } else {
        format!(
            "<{} keys from {} to {}>",
            keys.len(),
            short_key(&keys[0]),
            short_key(&keys[keys.len() - 1])
        )
    }
}

fn describe_entries(entries: &[(Key, Vec<u8>)]) -> String {
    if entries.len() <= 10 {
        let parts: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{} => {}", short_key(k), describe_value(v)))
            .collect();
        format!("[{}]", parts.join(", "))
    } else {
        let keys: Vec<Key> = entries.iter().map(|(k, _)| k.clone()).collect();
        let bytes: usize = entries.iter().map(|(_, v)| v.len()).sum();
        format!("{} with {bytes} value bytes", describe_keys(&keys))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn memory_store_passes_the_contract() {
        run_all(&mut || Box::new(MemoryStore::new()));
    }

    /// A handle on a shared map: "reopening" gives a new handle on the same
    /// data, which exercises the durable suite itself.
    struct Shared(Rc<RefCell<MemoryStore>>);

    impl ChunkStore for Shared {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.borrow().get(key)
        }
        fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
            self.0.borrow().list_prefix(prefix)
        }
        fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
            self.0.borrow().list_keys(prefix)
        }
        fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
            self.0.borrow_mut().apply(batch)
        }
    }

    #[test]
    fn durable_suite_runs_on_a_shared_memory_store() {
        let data = Rc::new(RefCell::new(MemoryStore::new()));
        durable(&mut || Box::new(Shared(data.clone())));
    }

    #[test]
    fn durable_suite_catches_a_store_that_forgets() {
        let result = std::panic::catch_unwind(|| durable(&mut || Box::new(MemoryStore::new())));
        let message = result.expect_err("a forgetful store must fail the durable suite");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("after reopen"), "{text}");
    }

    /// A store that ignores all but the first op of a batch.
    struct FirstOpOnly(MemoryStore);

    impl ChunkStore for FirstOpOnly {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(key)
        }
        fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
            self.0.list_prefix(prefix)
        }
        fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
            self.0.list_keys(prefix)
        }
        fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
            self.0.apply(batch.into_ops().into_iter().take(1).collect())
        }
    }

    #[test]
    fn contract_catches_a_broken_store() {
        let result =
            std::panic::catch_unwind(|| run_all(&mut || Box::new(FirstOpOnly(MemoryStore::new()))));
        let message = result.expect_err("a broken store must fail the contract");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("store contract violated"), "{text}");
    }

    #[test]
    fn quota_rejects_the_whole_batch() {
        let mut store = MemoryStore::with_quota(20);
        let mut b = Batch::new();
        b.put("a", vec![0; 9]);
        store.apply(b).expect("fits");
        assert_eq!(store.byte_size(), 10);
        let mut b = Batch::new();
        b.put("a", vec![0; 4]).put("b", vec![0; 15]);
        let err = store.apply(b).expect_err("over quota");
        assert_eq!(err.code(), "store.quota_exceeded");
        assert_eq!(store.get("a").expect("valid key"), Some(vec![0; 9]));
        assert_eq!(store.len(), 1);
        // Replacing and deleting count what is freed.
        let mut b = Batch::new();
        b.delete("a").put("b", vec![0; 19]);
        store.apply(b).expect("fits after the delete");
        assert_eq!(store.byte_size(), 20);
    }
}
