//! `echo-bench [SECTION...]`: runs the native benchmarks and prints a table.
//!
//! Sections run in the order given (default: all). Results are also written
//! to `target/bench/native.json` (override with `ECHO_BENCH_JSON`).

mod baseline;
mod engine;
mod identity;
mod person;
mod query;
mod report;
mod store;
mod sync;
mod trace;
mod verify;
mod workload;

use std::path::PathBuf;

use report::Report;

type Section = (&'static str, fn(&mut Report));

const SECTIONS: &[Section] = &[
    ("baseline", baseline::run),
    ("engine", engine::run),
    ("layout", engine::layout),
    ("store", store::run),
    ("identity", identity::run),
    ("query", query::run),
    ("verify", verify::run),
    ("sync", sync::run),
];

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    if wanted.first().map(String::as_str) == Some(engine::COLD_OPEN_FLAG) {
        if let Err(e) = engine::cold_open_child(&wanted[1..]) {
            eprintln!("cold open failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !SECTIONS.iter().any(|(name, _)| name == w))
    {
        let names: Vec<_> = SECTIONS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "unknown section {unknown:?}; sections: {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    let mut report = Report::default();
    for (name, run) in SECTIONS {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            eprintln!("== {name}");
            run(&mut report);
        }
    }
    let mut stdout = std::io::stdout();
    report.print_table(&mut stdout).expect("write to stdout");
    let path = std::env::var_os("ECHO_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench/native.json"));
    match report.write_json(&path) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
