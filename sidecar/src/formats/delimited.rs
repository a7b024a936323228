//! Delimited text (CSV, TSV): column types inferred as pandas would, rows counted.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow::datatypes::Schema;

use arrow::record_batch::RecordBatch;

use super::{columns_of, Emitter, Query, ReadCost, TableInfo};

/// Column types of a local CSV/TSV file, inferred from its first 10,000
/// rows (the same rule on save and on read).
fn infer(path: &Path, delimiter: u8) -> anyhow::Result<(arrow::csv::reader::Format, Schema)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let format = arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    let (schema, _) = format
        .infer_schema(std::io::BufReader::new(file), Some(10_000))
        .with_context(|| format!("{}: cannot infer column types", path.display()))?;
    Ok((format, schema))
}

/// Describe a local CSV/TSV file: column types inferred from the first
/// 10,000 rows (as pandas would), rows counted by parsing the whole file
/// (quoted fields may hold newlines); a file whose rows do not fit the
/// inferred types is refused.
pub fn describe_local(path: &Path, delimiter: u8) -> anyhow::Result<TableInfo> {
    let open =
        || std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let format = arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    let (schema, _) = format
        .infer_schema(std::io::BufReader::new(open()?), Some(10_000))
        .with_context(|| format!("{}: cannot infer column types", path.display()))?;
    let schema = Arc::new(schema);
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(65_536)
        .build(std::io::BufReader::new(open()?))?;
    let mut n_rows = 0i64;
    for batch in reader {
        n_rows += batch
            .with_context(|| format!("{}: a row does not fit the inferred types", path.display()))?
            .num_rows() as i64;
    }
    Ok(TableInfo {
        n_rows,
        columns: columns_of(&schema),
        row_groups: 0,
    })
}

/// Stream the rows of a local CSV/TSV file that `query` selects to `sink`
/// (`lamin cat`): columns typed as on save, only the needed columns
/// decoded, reading stops once the limit is reached (blocking).
pub fn scan_local(
    path: &Path,
    delimiter: u8,
    query: &Query,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<ReadCost> {
    let (format, schema) = infer(path, delimiter)?;
    let wanted = query.output_columns(&schema)?;
    let read = query.read_columns(&wanted);
    let projection: Vec<usize> = read
        .iter()
        .map(|n| schema.index_of(n))
        .collect::<Result<_, _>>()?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = arrow::csv::ReaderBuilder::new(Arc::new(schema))
        .with_format(format)
        .with_batch_size(8192)
        .with_projection(projection)
        .build(std::io::BufReader::new(file))?;
    let mut out = Emitter::new(query, wanted, sink);
    for batch in reader {
        if out.done() {
            break;
        }
        let batch = batch.with_context(|| {
            format!("{}: a row does not fit the inferred types", path.display())
        })?;
        out.emit(&batch)?;
    }
    Ok(ReadCost {
        bytes_read: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        rows_out: out.rows_out,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::filter::parse_where;

    #[test]
    fn csv_rows_are_read_typed_filtered_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "id,name,score\n1,a,1.5\n2,b,\n3,\"c, d\",7\n").unwrap();
        let query = Query {
            columns: Some(vec!["name".into()]),
            filter: Some(parse_where("score > 1 OR score IS NULL").unwrap()),
            limit: Some(2),
        };
        let mut rows = Vec::new();
        let cost = scan_local(&csv, b',', &query, |b| {
            rows.push(b.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(cost.rows_out, 2);
        assert_eq!(rows[0].schema().fields().len(), 1);
        let bad = Query {
            columns: Some(vec!["nope".into()]),
            ..Default::default()
        };
        let e = scan_local(&csv, b',', &bad, |_| Ok(())).unwrap_err();
        assert!(
            e.to_string().contains("the columns are id, name, score"),
            "{e}"
        );
    }
}
