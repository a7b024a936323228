//! Tables in artifacts (parquet): what one holds — rows and typed columns,
//! which become lamin features and the artifact's `columns` schema — and
//! reading only what is asked for (`lamin cat`): the footer, the columns
//! named, the row groups whose statistics can match, through ranged reads on
//! any storage.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, BooleanArray, Scalar, StringArray};
use arrow::compute::kernels::cmp;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};
use parquet::file::metadata::ParquetMetaData;
use serde_json::{json, Value};

/// One column: its name, arrow type and the lamin dtype it maps to.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub arrow: String,
    pub dtype: &'static str,
}

/// What a table holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub n_rows: i64,
    pub columns: Vec<Column>,
    pub row_groups: usize,
}

/// The lamin feature dtype of an arrow type (see lamin.feature.dtype):
/// dictionary-encoded strings (pandas categoricals) are `cat`.
pub fn lamin_dtype(t: &DataType) -> &'static str {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => "int",
        Float16 | Float32 | Float64 => "float",
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => "num",
        Boolean => "bool",
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => {
            "str"
        }
        Dictionary(_, value) if matches!(value.as_ref(), Utf8 | LargeUtf8 | Utf8View) => "cat",
        Dictionary(_, value) => lamin_dtype(value),
        Date32 | Date64 => "date",
        Timestamp(..) => "datetime",
        _ => "dict",
    }
}

/// The columns of an arrow schema with their lamin dtypes.
fn columns_of(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            arrow: f.data_type().to_string(),
            dtype: lamin_dtype(f.data_type()),
        })
        .collect()
}

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

/// The column delimiter of a delimited-text suffix (`.csv`, `.tsv`), if any.
pub fn delimiter_of(suffix: &str) -> Option<u8> {
    match suffix {
        ".csv" => Some(b','),
        ".tsv" | ".tab" => Some(b'\t'),
        _ => None,
    }
}

/// Whether artifacts with this suffix get their columns recorded (files;
/// `.zarr` folders are AnnData stores).
pub fn is_table_suffix(suffix: &str) -> bool {
    suffix == ".parquet" || suffix == ".h5ad" || suffix == ".zarr" || delimiter_of(suffix).is_some()
}

/// Describe a local table file (parquet, CSV, TSV, h5ad) and record it on its artifact.
pub async fn describe_and_record(
    client: &tokio_postgres::Client,
    uid: &str,
    path: &std::path::Path,
    suffix: &str,
) -> anyhow::Result<Value> {
    if suffix == ".h5ad" || suffix == ".zarr" {
        let info = tokio::task::block_in_place(|| {
            if suffix == ".zarr" {
                crate::anndata::describe_zarr(path)
            } else {
                crate::anndata::describe_h5ad(path)
            }
        })?;
        return record_anndata(client, uid, &info).await;
    }
    let info = tokio::task::block_in_place(|| describe_local_table(path, suffix))?;
    record(client, uid, &info).await
}

/// Describe a local CSV/TSV file: column types inferred from the first
/// 10,000 rows (as pandas would), rows counted by parsing the whole file
/// (quoted fields may hold newlines); a file whose rows do not fit the
/// inferred types is refused.
pub fn describe_delimited_local(
    path: &std::path::Path,
    delimiter: u8,
) -> anyhow::Result<TableInfo> {
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

/// Describe a local table file by its suffix (parquet, CSV, TSV).
pub fn describe_local_table(path: &std::path::Path, suffix: &str) -> anyhow::Result<TableInfo> {
    match delimiter_of(suffix) {
        Some(d) => describe_delimited_local(path, d),
        None => describe_local(path),
    }
}

/// Describe a parquet object of a storage (ranged reads of its footer).
pub async fn describe_object(
    storage: &crate::storage::Storage,
    key: &str,
) -> anyhow::Result<TableInfo> {
    let reader = ParquetObjectReader::new(storage.shared_store(), storage.path(key));
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .with_context(|| format!("{} is not a readable parquet file", storage.uri(key)))?;
    Ok(describe(builder.metadata(), builder.schema()))
}

/// Record what a table holds on its artifact (lamin.record_columns): rows,
/// features for the columns (created when missing; a feature that exists
/// with another dtype is reported, not changed) and the `columns` schema.
pub async fn record(
    client: &tokio_postgres::Client,
    uid: &str,
    info: &TableInfo,
) -> anyhow::Result<Value> {
    let columns: Value = info
        .columns
        .iter()
        .map(|c| json!({ "name": c.name, "dtype": c.dtype, "arrow": c.arrow }))
        .collect();
    let row = client
        .query_one(
            "SELECT lamin.record_columns($1, $2, $3::text::jsonb)::text",
            &[&uid, &info.n_rows, &columns.to_string()],
        )
        .await
        .map_err(crate::files::db_message)?;
    Ok(serde_json::from_str(row.get::<_, &str>(0))?)
}

/// Record what an AnnData holds: n_obs, the `obs` and `var` schemas (features
/// for their columns), otype AnnData; the categories of categorical columns
/// come back in the result.
pub async fn record_anndata(
    client: &tokio_postgres::Client,
    uid: &str,
    info: &crate::anndata::AnnDataInfo,
) -> anyhow::Result<Value> {
    let mut out = json!({ "n_obs": info.n_obs, "n_vars": info.n_vars });
    for (slot, columns, n) in [
        ("obs", &info.obs, Some(info.n_obs)),
        ("var", &info.var, None),
    ] {
        if columns.is_empty() {
            continue;
        }
        let cols: Value = columns
            .iter()
            .map(|c| json!({ "name": c.name, "dtype": c.dtype, "arrow": format!("anndata {slot} {}", c.dtype) }))
            .collect();
        let row = client
            .query_one(
                "SELECT lamin.record_columns($1, $2, $3::text::jsonb, $4, 'AnnData')::text",
                &[&uid, &n, &cols.to_string(), &slot],
            )
            .await
            .map_err(crate::files::db_message)?;
        out[slot] = serde_json::from_str(row.get::<_, &str>(0))?;
        let categories: serde_json::Map<String, Value> = columns
            .iter()
            .filter_map(|c| c.categories.as_ref().map(|k| (c.name.clone(), json!(k))))
            .collect();
        out[slot]["categories"] = Value::Object(categories);
    }
    if info.obs.is_empty() {
        client
            .execute(
                "UPDATE lamin.artifact SET n_observations = $2, otype = 'AnnData' WHERE uid = $1",
                &[&uid, &info.n_obs],
            )
            .await
            .map_err(crate::files::db_message)?;
    }
    Ok(out)
}

/// A condition of `lamin cat --where`: `column op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Parse `a = 1 AND b >= 'x y'`: conditions joined by AND; values are
/// numbers or quoted strings ('' inside quotes is a quote).
pub fn parse_where(text: &str) -> anyhow::Result<Vec<Condition>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    loop {
        let end = rest
            .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
            .with_context(|| format!("--where {text:?}: expected `column op value`"))?;
        let column = rest[..end].trim_matches('"').to_string();
        if column.is_empty() {
            bail!("--where {text:?}: a condition has no column");
        }
        rest = rest[end..].trim_start();
        let (op, len) = [
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, op)| (*op, s.len()))
        .with_context(|| {
            format!("--where {text:?}: expected one of = != < <= > >= after {column}")
        })?;
        rest = rest[len..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut v = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut closed = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, c)| *c) == Some('\'') {
                        v.push('\'');
                        chars.next();
                    } else {
                        closed = Some(i + 1);
                        break;
                    }
                } else {
                    v.push(c);
                }
            }
            let closed = closed.with_context(|| format!("--where {text:?}: unclosed quote"))?;
            value = v;
            rest = quoted[closed..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            if value.is_empty() {
                bail!("--where {text:?}: {column} has no value");
            }
            rest = rest[end..].trim_start();
        }
        out.push(Condition { column, op, value });
        if rest.is_empty() {
            return Ok(out);
        }
        let Some(next) = rest
            .strip_prefix("AND ")
            .or_else(|| rest.strip_prefix("and "))
        else {
            bail!("--where {text:?}: conditions are joined by AND");
        };
        rest = next.trim_start();
    }
}

/// The literal of a condition as a one-element array of the column's type.
fn literal(value: &str, t: &DataType) -> anyhow::Result<ArrayRef> {
    let target = match t {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        other => other.clone(),
    };
    let text: ArrayRef = Arc::new(StringArray::from(vec![value]));
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(&text, &target, &options)
        .with_context(|| format!("{value:?} is not a value of type {target}"))
}

fn compare(
    op: Op,
    left: &dyn arrow::array::Datum,
    right: &dyn arrow::array::Datum,
) -> anyhow::Result<BooleanArray> {
    Ok(match op {
        Op::Eq => cmp::eq(left, right)?,
        Op::Ne => cmp::neq(left, right)?,
        Op::Lt => cmp::lt(left, right)?,
        Op::Le => cmp::lt_eq(left, right)?,
        Op::Gt => cmp::gt(left, right)?,
        Op::Ge => cmp::gt_eq(left, right)?,
    })
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

/// Keep the rows of `batch` that meet every condition.
fn filter_rows(batch: &RecordBatch, conditions: &[Condition]) -> anyhow::Result<RecordBatch> {
    if conditions.is_empty() {
        return Ok(batch.clone());
    }
    let mut mask: Option<BooleanArray> = None;
    for c in conditions {
        let column = batch
            .column_by_name(&c.column)
            .context("condition column not read")?;
        let column = match column.data_type() {
            DataType::Dictionary(_, v) => arrow::compute::cast(column, v)?,
            _ => column.clone(),
        };
        let value = Scalar::new(literal(&c.value, column.data_type())?);
        let m = compare(c.op, &column, &value)?;
        mask = Some(match mask {
            None => m,
            Some(prev) => arrow::compute::and(&prev, &m)?,
        });
    }
    Ok(arrow::compute::filter_record_batch(
        batch,
        &mask.expect("conditions"),
    )?)
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
    storage: &crate::storage::Storage,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_map_to_lamin_dtypes() {
        assert_eq!(lamin_dtype(&DataType::Int64), "int");
        assert_eq!(lamin_dtype(&DataType::Float32), "float");
        assert_eq!(lamin_dtype(&DataType::Utf8), "str");
        assert_eq!(
            lamin_dtype(&DataType::Dictionary(
                Box::new(DataType::Int8),
                Box::new(DataType::Utf8)
            )),
            "cat"
        );
        assert_eq!(lamin_dtype(&DataType::Boolean), "bool");
        assert_eq!(lamin_dtype(&DataType::Date32), "date");
        assert_eq!(
            lamin_dtype(&DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                None
            )),
            "datetime"
        );
        assert_eq!(
            lamin_dtype(&DataType::List(Arc::new(arrow::datatypes::Field::new(
                "x",
                DataType::Int32,
                true
            )))),
            "dict"
        );
    }

    #[test]
    fn csv_and_tsv_columns_are_inferred_and_rows_counted() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(
            &csv,
            "id,name,score,ok\n1,\"a, quoted\nline\",1.5,true\n2,b,,false\n",
        )
        .unwrap();
        let info = describe_local_table(&csv, ".csv").unwrap();
        assert_eq!(info.n_rows, 2);
        let dtypes: Vec<&str> = info.columns.iter().map(|c| c.dtype).collect();
        assert_eq!(dtypes, ["int", "str", "float", "bool"]);
        let tsv = dir.path().join("t.tsv");
        std::fs::write(&tsv, "gene\tcount\nCD4\t3\nCD8A\t5\n").unwrap();
        assert_eq!(describe_local_table(&tsv, ".tsv").unwrap().n_rows, 2);
        let ragged = dir.path().join("r.csv");
        std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
        assert!(describe_local_table(&ragged, ".csv").is_err());
    }

    #[test]
    fn where_clauses_parse() {
        let c = parse_where("cell_type = 'T cell' AND n_genes >= 200 and x!=3").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Condition {
                column: "cell_type".into(),
                op: Op::Eq,
                value: "T cell".into()
            }
        );
        assert_eq!(c[1].op, Op::Ge);
        assert_eq!(c[1].value, "200");
        assert_eq!(c[2].op, Op::Ne);
        assert_eq!(parse_where("name = 'O''Neil'").unwrap()[0].value, "O'Neil");
        for bad in ["", "a", "a ~ 1", "a = 'open", "a = 1 OR b = 2", "= 3"] {
            assert!(parse_where(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn rows_are_filtered_by_typed_conditions() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(arrow::array::Int64Array::from(vec![1, 5, 10])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let kept = filter_rows(&batch, &parse_where("n >= 5 AND s = 'a'").unwrap()).unwrap();
        assert_eq!(kept.num_rows(), 1);
        assert!(filter_rows(&batch, &parse_where("n = abc").unwrap()).is_err());
    }
}
