//! Collects benchmark figures, prints them as a table and writes JSON.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub section: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// Target or baseline context, e.g. "target >= 50000" or "ratio vs raw automerge".
    pub note: String,
}

#[derive(Default, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    /// Records one figure and prints it at once, so long runs show progress.
    pub fn add(&mut self, section: &str, metric: &str, value: f64, unit: &str, note: &str) {
        let row = Row {
            section: section.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            note: note.into(),
        };
        eprintln!(
            "  [{}] {} = {} {} {}",
            row.section,
            row.metric,
            fmt_value(value),
            row.unit,
            row.note
        );
        self.rows.push(row);
    }

    /// Prints a note that is not a figure (e.g. "trace data absent, skipped").
    pub fn say(&self, section: &str, text: &str) {
        eprintln!("  [{section}] {text}");
    }

    pub fn print_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let w_sec = self
            .rows
            .iter()
            .map(|r| r.section.len())
            .max()
            .unwrap_or(7)
            .max(7);
        let w_met = self
            .rows
            .iter()
            .map(|r| r.metric.len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            out,
            "{:<w_sec$}  {:<w_met$}  {:>14}  {:<8}  note",
            "section", "metric", "value", "unit"
        )?;
        writeln!(out, "{}", "-".repeat(w_sec + w_met + 40))?;
        for r in &self.rows {
            writeln!(
                out,
                "{:<w_sec$}  {:<w_met$}  {:>14}  {:<8}  {}",
                r.section,
                r.metric,
                fmt_value(r.value),
                r.unit,
                r.note
            )?;
        }
        Ok(())
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}
