//! Parquet: what a file holds (its footer), and reading only what is asked
//! for (`lamin cat`, curation): the columns named, the row groups whose
//! statistics can match, through ranged reads on any storage.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{Array, Scalar};
use arrow::compute::kernels::cmp;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};
use parquet::file::metadata::ParquetMetaData;

use super::filter::{literal, Op, Predicate};
use super::{columns_of, Emitter, TableInfo};
pub use super::{Query, ReadCost};
use crate::storage::Storage;

fn describe(meta: &ParquetMetaData, schema: &Schema) -> TableInfo {
    TableInfo {
        n_rows: meta.file_metadata().num_rows(),
        columns: columns_of(schema),
        row_groups: meta.num_row_groups(),
    }
}

/// Describe a local parquet file (its footer only).
pub fn describe_local(path: &std::path::Path) -> anyhow::Result<TableInfo> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable parquet file", path.display()))?;
    Ok(describe(builder.metadata(), builder.schema()))
}

/// Stream the rows of a local parquet file that `query` selects to `sink`,
/// reading only the needed columns (blocking; every row group: the local
/// readers of validation want all rows).
pub fn scan_local(
    path: &std::path::Path,
    query: &Query,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<ReadCost> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable parquet file", path.display()))?;
    let schema = builder.schema().clone();
    let wanted = query.output_columns(&schema)?;
    let read = query.read_columns(&wanted);
    let mut cost = ReadCost {
        row_groups: builder.metadata().num_row_groups(),
        row_groups_read: builder.metadata().num_row_groups(),
        ..Default::default()
    };
    let mask = parquet::arrow::ProjectionMask::columns(
        builder.parquet_schema(),
        read.iter().map(String::as_str),
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()?;
    let mut out = Emitter::new(query, wanted, sink);
    for batch in reader {
        if out.done() {
            break;
        }
        out.emit(&batch?)?;
    }
    cost.rows_out = out.rows_out;
    Ok(cost)
}

/// Describe a parquet object of a storage (ranged reads of its footer).
pub async fn describe_object(storage: &Storage, key: &str) -> anyhow::Result<TableInfo> {
    let reader = ParquetObjectReader::new(storage.shared_store(), storage.path(key));
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .with_context(|| format!("{} is not a readable parquet file", storage.uri(key)))?;
    Ok(describe(builder.metadata(), builder.schema()))
}

/// Per row group: whether its statistics allow a row where `predicate`
/// holds (true when they cannot tell). Comparisons use min/max, `IN` is
/// its equalities, `IS NULL` the null counts; AND and OR combine; anything
/// else (NOT, !=, LIKE) keeps every row group.
fn possible(
    meta: &ParquetMetaData,
    schema: &Schema,
    predicate: &Predicate,
) -> anyhow::Result<Vec<bool>> {
    let n = meta.num_row_groups();
    let all = || vec![true; n];
    let converter = |column: &str| {
        StatisticsConverter::try_new(column, schema, meta.file_metadata().schema_descr()).ok()
    };
    Ok(match predicate {
        Predicate::Compare { column, op, value } => {
            let Some(conv) = converter(column) else {
                return Ok(all());
            };
            let field = schema.field_with_name(column)?;
            let (mins, maxes) = (
                conv.row_group_mins(meta.row_groups())?,
                conv.row_group_maxes(meta.row_groups())?,
            );
            let value = literal(&value.text(), field.data_type())
                .with_context(|| format!("column {column}"))?;
            let (mins, maxes) = if mins.data_type() == value.data_type() {
                (mins, maxes)
            } else {
                (
                    arrow::compute::cast(&mins, value.data_type())?,
                    arrow::compute::cast(&maxes, value.data_type())?,
                )
            };
            let v = Scalar::new(value);
            // A row group can hold a match unless its range excludes the value.
            let may = match op {
                Op::Eq => arrow::compute::and(&cmp::lt_eq(&mins, &v)?, &cmp::gt_eq(&maxes, &v)?)?,
                Op::Lt => cmp::lt(&mins, &v)?,
                Op::Le => cmp::lt_eq(&mins, &v)?,
                Op::Gt => cmp::gt(&maxes, &v)?,
                Op::Ge => cmp::gt_eq(&maxes, &v)?,
                Op::Ne => return Ok(all()),
            };
            // No statistics (null): keep the row group.
            (0..n).map(|i| !may.is_valid(i) || may.value(i)).collect()
        }
        Predicate::In {
            column,
            values,
            negated: false,
        } => {
            let mut any = vec![false; n];
            for value in values {
                let one = Predicate::Compare {
                    column: column.clone(),
                    op: Op::Eq,
                    value: value.clone(),
                };
                for (a, b) in any.iter_mut().zip(possible(meta, schema, &one)?) {
                    *a |= b;
                }
            }
            any
        }
        Predicate::Null {
            column,
            negated: false,
        } => {
            let Some(conv) = converter(column) else {
                return Ok(all());
            };
            let nulls = conv.row_group_null_counts(meta.row_groups())?;
            (0..n)
                .map(|i| !nulls.is_valid(i) || nulls.value(i) > 0)
                .collect()
        }
        Predicate::And(a, b) => possible(meta, schema, a)?
            .into_iter()
            .zip(possible(meta, schema, b)?)
            .map(|(x, y)| x && y)
            .collect(),
        Predicate::Or(a, b) => possible(meta, schema, a)?
            .into_iter()
            .zip(possible(meta, schema, b)?)
            .map(|(x, y)| x || y)
            .collect(),
        _ => all(),
    })
}

/// The row groups whose statistics allow a match of the filter.
fn matching_row_groups(
    meta: &ParquetMetaData,
    schema: &Schema,
    filter: Option<&Predicate>,
) -> anyhow::Result<Vec<usize>> {
    let keep = match filter {
        Some(p) => possible(meta, schema, p)?,
        None => vec![true; meta.num_row_groups()],
    };
    Ok((0..keep.len()).filter(|i| keep[*i]).collect())
}

/// An AsyncFileReader that counts the bytes it fetched (the footer too: it
/// is read through `get_bytes` here rather than by the inner reader).
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
    file_size: u64,
}

impl<R: AsyncFileReader> AsyncFileReader for Counting<R> {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.bytes
            .fetch_add(range.end - range.start, Ordering::Relaxed);
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        let n: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        let _ = options;
        let file_size = self.file_size;
        async move {
            let meta = parquet::file::metadata::ParquetMetaDataReader::new()
                .load_and_finish(self, file_size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// Stream the rows of a parquet object that `query` selects to `sink`,
/// batch by batch, reading only the needed columns and row groups.
pub async fn scan(
    storage: &Storage,
    key: &str,
    size: Option<u64>,
    query: &Query,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()> + Send,
) -> anyhow::Result<ReadCost> {
    use futures_util::TryStreamExt;
    let bytes = Arc::new(AtomicU64::new(0));
    let file_size = match size {
        Some(size) => size,
        None => storage.store().head(&storage.path(key)).await?.size,
    };
    let reader = ParquetObjectReader::new(storage.shared_store(), storage.path(key))
        .with_file_size(file_size);
    let counting = Counting {
        inner: reader,
        bytes: Arc::clone(&bytes),
        file_size,
    };
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(counting)
        .await
        .with_context(|| format!("{} is not a readable parquet file", storage.uri(key)))?;
    let schema = builder.schema().clone();
    let wanted = query.output_columns(&schema)?;
    let read = query.read_columns(&wanted);
    let groups = matching_row_groups(builder.metadata(), &schema, query.filter.as_ref())?;
    let mut cost = ReadCost {
        row_groups: builder.metadata().num_row_groups(),
        row_groups_read: groups.len(),
        ..Default::default()
    };
    let mask = parquet::arrow::ProjectionMask::columns(
        builder.parquet_schema(),
        read.iter().map(String::as_str),
    );
    let mut stream = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_batch_size(8192)
        .build()?;
    let mut out = Emitter::new(query, wanted, sink);
    while !out.done() {
        let Some(batch) = stream.try_next().await? else {
            break;
        };
        out.emit(&batch)?;
    }
    cost.rows_out = out.rows_out;
    cost.bytes_read = bytes.load(Ordering::Relaxed);
    Ok(cost)
}
