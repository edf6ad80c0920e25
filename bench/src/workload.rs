//! The shared object workload: deterministic objects of six fields, so the
//! raw-automerge baseline and the engine benchmarks write identical data.
//!
//! Each object has an id (an `echo_core::model::ObjectId`, random bytes from
//! the seeded generator) and six fields:
//!
//! | field    | automerge key  | value                                       |
//! |----------|----------------|---------------------------------------------|
//! | type     | [`F_TYPE`]     | string, one of `"type0"`..`"type9"`         |
//! | title    | [`F_TITLE`]    | string, 3–6 words                           |
//! | number   | [`F_NUMBER`]   | int (i64), 0..1_000_000                     |
//! | flag     | [`F_FLAG`]     | bool                                        |
//! | tags     | [`F_TAGS`]     | list of 1–3 strings out of 32               |
//! | ref      | [`F_REF`]      | string: another object's id (text form)     |
//!
//! Same `(n, seed)` → same objects, on every machine and run.

use echo_core::model::ObjectId;

/// Field names as written into automerge maps by the baseline.
pub const F_TYPE: &str = "type";
pub const F_TITLE: &str = "title";
pub const F_NUMBER: &str = "number";
pub const F_FLAG: &str = "flag";
pub const F_TAGS: &str = "tags";
pub const F_REF: &str = "ref";

/// Number of distinct type names (`"type0"`..`"type9"`).
pub const TYPE_COUNT: usize = 10;

/// The seed the benchmarks use unless they say otherwise.
pub const DEFAULT_SEED: u64 = 0xEC40_2026;

/// SplitMix64: tiny, fast, well-distributed, and good enough for test data.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

/// One generated object. `id_text` / `ref_text` are the ids' printable
/// forms (what the baseline stores), computed once so encoding ids is not
/// part of any timed loop.
#[derive(Clone, Debug, PartialEq)]
pub struct GenObject {
    pub id: ObjectId,
    pub id_text: String,
    pub type_name: String,
    pub title: String,
    pub number: i64,
    pub flag: bool,
    pub tags: Vec<String>,
    /// Another object of the same workload (itself only when `n == 1`).
    pub reference: ObjectId,
    pub ref_text: String,
}

impl GenObject {
    /// The shard this object belongs to among `n` shards: the first byte of
    /// its id modulo `n`.
    pub fn shard(&self, n: usize) -> usize {
        self.id.as_bytes()[0] as usize % n
    }
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
    "kestrel", "lumen", "meadow", "nectar", "orbit", "prairie", "quartz", "river", "summit",
    "tundra", "umber", "violet", "willow", "xenon", "yarrow", "zephyr", "plan", "notes", "draft",
    "review", "budget", "meeting",
];

const TAGS: &[&str] = &[
    "urgent", "later", "home", "work", "idea", "bug", "feature", "question", "blocked", "done",
    "waiting", "review", "design", "ops", "docs", "research", "travel", "finance", "health",
    "family", "reading", "music", "garden", "kitchen", "car", "school", "sport", "friends",
    "events", "archive", "pinned", "draft",
];

/// `n` objects from `seed`. Ids are drawn first, then fields, so the
/// reference targets are known when fields are drawn.
pub fn objects(n: usize, seed: u64) -> Vec<GenObject> {
    let mut rng = SplitMix64::new(seed);
    let ids: Vec<ObjectId> = (0..n)
        .map(|_| ObjectId::from_bytes(rng.bytes16()))
        .collect();
    let texts: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let type_name = format!("type{}", rng.below(TYPE_COUNT as u64));
        let words = 3 + rng.below(4) as usize;
        let mut title = String::new();
        for w in 0..words {
            if w > 0 {
                title.push(' ');
            }
            title.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        let number = rng.below(1_000_000) as i64;
        let flag = rng.below(2) == 1;
        let tag_count = 1 + rng.below(3) as usize;
        let tags = (0..tag_count)
            .map(|_| TAGS[rng.below(TAGS.len() as u64) as usize].to_string())
            .collect();
        let r = if n > 1 {
            // Any index but `i`.
            let k = rng.below(n as u64 - 1) as usize;
            if k >= i {
                k + 1
            } else {
                k
            }
        } else {
            i
        };
        out.push(GenObject {
            id: ids[i],
            id_text: texts[i].clone(),
            type_name,
            title,
            number,
            flag,
            tags,
            reference: ids[r],
            ref_text: texts[r].clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let a = objects(500, 7);
        assert_eq!(a, objects(500, 7));
        assert_ne!(a, objects(500, 8));
        for (i, o) in a.iter().enumerate() {
            assert!((1..=3).contains(&o.tags.len()));
            assert_ne!(o.reference, o.id, "object {i} refers to itself");
            assert!(a.iter().any(|p| p.id == o.reference));
            assert_eq!(o.id_text, o.id.to_string());
            let t: usize = o.type_name[4..].parse().unwrap();
            assert!(t < TYPE_COUNT);
        }
    }
}
