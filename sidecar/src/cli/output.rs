//! Rows on stdout: an aligned table for people, CSV or JSON lines for
//! programs (`lamin ls`, `lamin search`).

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RowFormat {
    /// Aligned columns with a header.
    Table,
    /// CSV with a header, every field.
    Csv,
    /// One JSON object per line, every field.
    Json,
}

/// Print rows: `table` gives the table's header and cells per row; CSV and
/// JSON serialise each row in full.
pub fn print_rows<T: Serialize>(
    rows: &[T],
    format: RowFormat,
    header: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        RowFormat::Table => {
            let body: Vec<Vec<String>> = rows.iter().map(&cells).collect();
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for row in &body {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| -> String {
                let mut s = String::new();
                for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                    if i + 1 == cells.len() {
                        s.push_str(cell);
                    } else {
                        s.push_str(&format!("{cell:<w$}  "));
                    }
                }
                s.trim_end().to_string()
            };
            let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
            writeln!(out, "{}", line(&head))?;
            for row in &body {
                writeln!(out, "{}", line(row))?;
            }
        }
        RowFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for row in rows {
                w.serialize(row)?;
            }
            w.flush()?;
            return Ok(());
        }
        RowFormat::Json => {
            for row in rows {
                serde_json::to_writer(&mut out, row)?;
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// A byte count for people: 1.5 MB.
pub fn human_size(bytes: Option<i64>) -> String {
    let Some(b) = bytes else {
        return String::new();
    };
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
