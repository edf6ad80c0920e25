//! Loader for the editing traces (`josephg/editing-traces` format).
//!
//! The data lives outside the repository and is never copied into it: the
//! directory is `$ECHO_TRACES_DIR`, or by default `../shared/data/traces`
//! relative to the workspace root. Files are `<name>.json.gz`, e.g.
//! `automerge-paper`, `sveltecomponent` (sequential) and `friendsforever`
//! (concurrent).
//!
//! JSON format: `{startContent?, endContent, kind?, txns: [{patches:
//! [[pos, del, ins], ...], parents?, agent?, time}]}`.
//!
//! # Position units
//!
//! Trace positions and delete lengths count **Unicode code points** (the
//! traces' README: "Positions are in Unicode code points"), i.e. Rust
//! `char`s, not bytes and not UTF-16 units.
//!
//! automerge 0.12's Rust API indexes text by `TextEncoding::platform_default()`
//! (`src/text_value.rs`): Unicode code points unless the crate is built with
//! the `utf8-indexing` (bytes) or `utf16-indexing` (UTF-16 units, used by the
//! wasm build) feature. Neither feature is enabled in this workspace, so the
//! units already agree and no conversion is needed. Because Cargo unifies
//! features across the build, benchmarks should still pin the encoding with
//! `AutoCommit::new_with_encoding(TextEncoding::UnicodeCodePoint)` (and
//! `LoadOptions::text_encoding` on load) rather than rely on the default.
//! (automerge-paper is pure ASCII, so all encodings coincide there anyway.)

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variable naming the traces directory.
pub const TRACES_ENV: &str = "ECHO_TRACES_DIR";

/// One edit: at `pos` (code points), delete `del` code points, then insert
/// `insert`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub pos: usize,
    pub del: usize,
    pub insert: String,
}

/// Per-transaction metadata. Only concurrent traces carry `parents` and
/// `agent`; for those, a patch's position is relative to its author's version
/// (the document after the txns in `parents`), not to the flattened order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMeta {
    /// Indexes of parent txns (empty for sequential traces).
    pub parents: Vec<usize>,
    pub agent: Option<usize>,
    /// This txn's patches, as a range into [`Trace::patches`].
    pub patches: Range<usize>,
}

#[derive(Clone, Debug)]
pub struct Trace {
    pub start_content: String,
    pub end_content: String,
    /// Every txn's patches, flattened in order. For a sequential trace,
    /// applying them in order to `start_content` yields `end_content`.
    pub patches: Vec<Patch>,
    /// True for concurrent traces (`"kind": "concurrent"`): flattened
    /// replay does NOT give `end_content`; see [`TxnMeta`].
    pub concurrent: bool,
    /// Not used by the sequential benchmarks yet; kept for concurrent replay.
    #[allow(dead_code)]
    pub txns: Vec<TxnMeta>,
}

#[derive(Debug)]
pub enum TraceError {
    /// The trace file does not exist (data not installed here).
    Absent {
        path: PathBuf,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Parse {
        path: PathBuf,
        error: String,
    },
}

impl TraceError {
    pub fn is_absent(&self) -> bool {
        matches!(self, TraceError::Absent { .. })
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Absent { path } => write!(
                f,
                "trace data absent at {} (set {TRACES_ENV})",
                path.display()
            ),
            TraceError::Io { path, error } => {
                write!(f, "cannot read trace {}: {error}", path.display())
            }
            TraceError::Parse { path, error } => {
                write!(f, "malformed trace {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for TraceError {}

/// The traces directory: `$ECHO_TRACES_DIR`, else `<workspace>/../shared/data/traces`.
pub fn traces_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(TRACES_ENV) {
        return PathBuf::from(dir);
    }
    // CARGO_MANIFEST_DIR is bench/; its parent is the workspace root.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent directory");
    match workspace.parent() {
        Some(above) => above.join("shared/data/traces"),
        None => workspace.join("../shared/data/traces"),
    }
}

/// The file for trace `name` (`"automerge-paper"`; a `.json.gz` suffix is
/// accepted too).
pub fn trace_path(name: &str) -> PathBuf {
    let file = if name.ends_with(".json.gz") {
        name.to_string()
    } else {
        format!("{name}.json.gz")
    };
    traces_dir().join(file)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrace {
    #[serde(default)]
    start_content: String,
    end_content: String,
    #[serde(default)]
    kind: Option<String>,
    txns: Vec<RawTxn>,
}

#[derive(Deserialize)]
struct RawTxn {
    #[serde(default)]
    parents: Vec<usize>,
    #[serde(default)]
    agent: Option<usize>,
    patches: Vec<(usize, usize, String)>,
}

/// Loads and decompresses trace `name`. A missing file gives
/// [`TraceError::Absent`], whose message names the path and the env var.
pub fn load(name: &str) -> Result<Trace, TraceError> {
    let path = trace_path(name);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TraceError::Absent { path })
        }
        Err(error) => return Err(TraceError::Io { path, error }),
    };
    let mut json = Vec::new();
    if let Err(error) = flate2::read::GzDecoder::new(file).read_to_end(&mut json) {
        return Err(TraceError::Io { path, error });
    }
    let raw: RawTrace = serde_json::from_slice(&json).map_err(|e| TraceError::Parse {
        path: path.clone(),
        error: e.to_string(),
    })?;
    let mut patches = Vec::with_capacity(raw.txns.iter().map(|t| t.patches.len()).sum());
    let mut txns = Vec::with_capacity(raw.txns.len());
    for t in raw.txns {
        let begin = patches.len();
        patches.extend(
            t.patches
                .into_iter()
                .map(|(pos, del, insert)| Patch { pos, del, insert }),
        );
        txns.push(TxnMeta {
            parents: t.parents,
            agent: t.agent,
            patches: begin..patches.len(),
        });
    }
    Ok(Trace {
        start_content: raw.start_content,
        end_content: raw.end_content,
        patches,
        concurrent: raw.kind.as_deref() == Some("concurrent"),
        txns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive replay in code points; only for small traces in tests.
    fn replay(t: &Trace) -> String {
        let mut s: Vec<char> = t.start_content.chars().collect();
        for p in &t.patches {
            s.splice(p.pos..p.pos + p.del, p.insert.chars());
        }
        s.into_iter().collect()
    }

    #[test]
    fn sequential_trace_replays_to_end_content() {
        match load("sveltecomponent") {
            Ok(t) => {
                assert!(!t.concurrent);
                assert_eq!(replay(&t), t.end_content);
            }
            Err(e) if e.is_absent() => eprintln!("{e} — skipped"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn absent_trace_names_path_and_env() {
        let e = load("no-such-trace-xyz").unwrap_err();
        assert!(e.is_absent());
        let msg = e.to_string();
        assert!(msg.contains("no-such-trace-xyz.json.gz") && msg.contains(TRACES_ENV));
    }
}
