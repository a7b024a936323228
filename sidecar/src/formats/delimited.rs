//! Delimited text (CSV, TSV): column types inferred as pandas would, rows counted.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::{columns_of, TableInfo};

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
