//! Parquet: what a file holds (its footer), and reading only what is asked
//! for (`lamin cat`, curation): the columns named, the row groups whose
//! statistics can match, through ranged reads on any storage.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
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

use super::filter::{filter_rows, literal, Condition, Op};
use super::{columns_of, TableInfo};
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

/// Describe a parquet object of a storage (ranged reads of its footer).
pub async fn describe_object(storage: &Storage, key: &str) -> anyhow::Result<TableInfo> {
    let reader = ParquetObjectReader::new(storage.shared_store(), storage.path(key));
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .with_context(|| format!("{} is not a readable parquet file", storage.uri(key)))?;
    Ok(describe(builder.metadata(), builder.schema()))
}

/// The row groups whose min/max statistics allow a match of every condition.
fn matching_row_groups(
    meta: &ParquetMetaData,
    schema: &Schema,
    conditions: &[Condition],
) -> anyhow::Result<Vec<usize>> {
    let n = meta.num_row_groups();
    let mut keep = vec![true; n];
    for c in conditions {
        let field = schema.field_with_name(&c.column)?;
        let Ok(conv) =
            StatisticsConverter::try_new(&c.column, schema, meta.file_metadata().schema_descr())
        else {
            continue;
        };
        let (mins, maxes) = (
            conv.row_group_mins(meta.row_groups())?,
            conv.row_group_maxes(meta.row_groups())?,
        );
        let value = literal(&c.value, field.data_type())?;
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
        let possible = match c.op {
            Op::Eq => arrow::compute::and(&cmp::lt_eq(&mins, &v)?, &cmp::gt_eq(&maxes, &v)?)?,
            Op::Lt => cmp::lt(&mins, &v)?,
            Op::Le => cmp::lt_eq(&mins, &v)?,
            Op::Gt => cmp::gt(&maxes, &v)?,
            Op::Ge => cmp::gt_eq(&maxes, &v)?,
            Op::Ne => continue,
        };
        for (i, k) in keep.iter_mut().enumerate() {
            // No statistics (null): keep the row group.
            if possible.is_valid(i) && !possible.value(i) {
                *k = false;
            }
        }
    }
    Ok((0..n).filter(|i| keep[*i]).collect())
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

/// What `lamin cat` asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub columns: Option<Vec<String>>,
    pub conditions: Vec<Condition>,
    pub limit: Option<usize>,
}

/// How much a read cost.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadCost {
    pub bytes_read: u64,
    pub row_groups_read: usize,
    pub row_groups: usize,
    pub rows_out: u64,
}

/// Stream the rows of a parquet object that `query` selects to `sink`,
/// batch by batch, reading only the needed columns and row groups.
pub async fn scan(
    storage: &Storage,
    key: &str,
    size: Option<u64>,
    query: &Query,
    mut sink: impl FnMut(&RecordBatch) -> anyhow::Result<()> + Send,
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
    let wanted: Vec<String> = match &query.columns {
        Some(cols) => cols.clone(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    for name in wanted
        .iter()
        .chain(query.conditions.iter().map(|c| &c.column))
    {
        if schema.field_with_name(name).is_err() {
            bail!(
                "no column {name:?}; the columns are {}",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut read: Vec<String> = wanted.clone();
    for c in &query.conditions {
        if !read.contains(&c.column) {
            read.push(c.column.clone());
        }
    }
    let groups = matching_row_groups(builder.metadata(), &schema, &query.conditions)?;
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
    let mut left = query.limit.unwrap_or(usize::MAX);
    while left > 0 {
        let Some(batch) = stream.try_next().await? else {
            break;
        };
        let batch = filter_rows(&batch, &query.conditions)?;
        let indices: Vec<usize> = wanted
            .iter()
            .map(|n| batch.schema().index_of(n))
            .collect::<Result<_, _>>()?;
        let mut batch = batch.project(&indices)?;
        if batch.num_rows() > left {
            batch = batch.slice(0, left);
        }
        left -= batch.num_rows();
        cost.rows_out += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            sink(&batch)?;
        }
    }
    cost.bytes_read = bytes.load(Ordering::Relaxed);
    Ok(cost)
}
