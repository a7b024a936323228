//! The bridge between artifacts and the warehouse: `load` streams a parquet
//! artifact into a new table with binary COPY, in one transaction, on the
//! requester's connection (so their privileges and policies apply).

use std::error::Error;

use anyhow::Context;
use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use bytes::{BufMut, BytesMut};
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Client;

use crate::jobs::{arg_str, Failure, Job};
use crate::storage_jobs::Progress;

/// How an arrow column goes into Postgres: the column type, and the arrow
/// type its values are cast to before they are written.
fn pg_type(t: &DataType) -> Option<(Type, &'static str, DataType)> {
    use DataType::*;
    Some(match t {
        Int8 | Int16 => (Type::INT2, "smallint", Int16),
        Int32 | UInt8 | UInt16 => (Type::INT4, "integer", Int32),
        Int64 | UInt32 | UInt64 => (Type::INT8, "bigint", Int64),
        Float16 | Float32 => (Type::FLOAT4, "real", Float32),
        Float64 => (Type::FLOAT8, "double precision", Float64),
        Boolean => (Type::BOOL, "boolean", Boolean),
        Utf8 | LargeUtf8 | Utf8View => (Type::TEXT, "text", Utf8),
        Dictionary(_, v) if matches!(v.as_ref(), Utf8 | LargeUtf8 | Utf8View) => {
            (Type::TEXT, "text", Utf8)
        }
        Binary | LargeBinary | BinaryView => (Type::BYTEA, "bytea", Binary),
        Date32 | Date64 => (Type::DATE, "date", Date32),
        Timestamp(_, None) => (
            Type::TIMESTAMP,
            "timestamp",
            Timestamp(TimeUnit::Microsecond, None),
        ),
        Timestamp(_, Some(tz)) => (
            Type::TIMESTAMPTZ,
            "timestamptz",
            Timestamp(TimeUnit::Microsecond, Some(tz.clone())),
        ),
        _ => return None,
    })
}

/// `"name"` with quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One value on its way into a binary COPY, borrowed from an arrow array.
#[derive(Debug)]
enum Val<'a> {
    Null,
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01.
    Micros(i64),
}

/// Postgres counts dates and timestamps from 2000-01-01.
const DAYS_1970_TO_2000: i32 = 10_957;
const MICROS_1970_TO_2000: i64 = 946_684_800_000_000;

impl ToSql for Val<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Val::Null => return Ok(IsNull::Yes),
            Val::I16(v) => out.put_i16(*v),
            Val::I32(v) => out.put_i32(*v),
            Val::I64(v) => out.put_i64(*v),
            Val::F32(v) => out.put_f32(*v),
            Val::F64(v) => out.put_f64(*v),
            Val::Bool(v) => out.put_u8(*v as u8),
            Val::Text(v) => out.put_slice(v.as_bytes()),
            Val::Bytes(v) => out.put_slice(v),
            Val::Date(d) => out.put_i32(d - DAYS_1970_TO_2000),
            Val::Micros(m) => out.put_i64(m - MICROS_1970_TO_2000),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        // The column types come from pg_type above, which matches each variant.
        true
    }

    to_sql_checked!();
}

/// A batch column cast to its canonical arrow type, ready to hand out values.
enum Col {
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Bool(BooleanArray),
    Text(StringArray),
    Bytes(BinaryArray),
    Date(Date32Array),
    Micros(TimestampMicrosecondArray),
}

impl Col {
    fn new(array: &ArrayRef, canonical: &DataType) -> anyhow::Result<Col> {
        let options = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        let cast = arrow::compute::cast_with_options(array, canonical, &options)?;
        let any = cast.as_any();
        macro_rules! take {
            ($variant:ident, $t:ty) => {
                Col::$variant(
                    any.downcast_ref::<$t>()
                        .expect("cast to the canonical type")
                        .clone(),
                )
            };
        }
        Ok(match canonical {
            DataType::Int16 => take!(I16, Int16Array),
            DataType::Int32 => take!(I32, Int32Array),
            DataType::Int64 => take!(I64, Int64Array),
            DataType::Float32 => take!(F32, Float32Array),
            DataType::Float64 => take!(F64, Float64Array),
            DataType::Boolean => take!(Bool, BooleanArray),
            DataType::Utf8 => take!(Text, StringArray),
            DataType::Binary => take!(Bytes, BinaryArray),
            DataType::Date32 => take!(Date, Date32Array),
            DataType::Timestamp(..) => take!(Micros, TimestampMicrosecondArray),
            other => anyhow::bail!("no canonical column for {other}"),
        })
    }

    fn get(&self, row: usize) -> Val<'_> {
        macro_rules! at {
            ($a:expr, $variant:ident) => {
                if $a.is_null(row) {
                    Val::Null
                } else {
                    Val::$variant($a.value(row))
                }
            };
        }
        match self {
            Col::I16(a) => at!(a, I16),
            Col::I32(a) => at!(a, I32),
            Col::I64(a) => at!(a, I64),
            Col::F32(a) => at!(a, F32),
            Col::F64(a) => at!(a, F64),
            Col::Bool(a) => at!(a, Bool),
            Col::Text(a) => at!(a, Text),
            Col::Bytes(a) => at!(a, Bytes),
            Col::Date(a) => at!(a, Date),
            Col::Micros(a) => at!(a, Micros),
        }
    }
}

/// load: a new table from a parquet artifact, filled in one transaction.
pub async fn load(client: &mut Client, job: &Job, progress: &Progress) -> Result<Value, Failure> {
    let uid = arg_str(&job.args, "uid")?;
    let (schema_name, table) = (arg_str(&job.args, "schema")?, arg_str(&job.args, "table")?);
    let target = format!("{}.{}", quote_ident(&schema_name), quote_ident(&table));
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.size FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
             WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid],
        )
        .await
        .map_err(|e| Failure::Retry(e.into()))?
        .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("no ready artifact with uid {uid:?}")))?;
    let (root, object, size): (String, String, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    let storage = crate::storage::Storage::open(&root).map_err(Failure::Permanent)?;
    let mut reader = parquet::arrow::async_reader::ParquetObjectReader::new(
        storage.shared_store(),
        storage.path(&object),
    );
    if let Some(size) = size {
        reader = reader.with_file_size(size as u64);
    }
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| {
            Failure::Permanent(anyhow::anyhow!(
                "{} is not a readable parquet file: {e}",
                storage.uri(&object)
            ))
        })?;
    let arrow_schema = builder.schema().clone();
    let total = builder.metadata().file_metadata().num_rows();
    progress
        .total
        .store(total, std::sync::atomic::Ordering::Relaxed);
    let mut columns = Vec::new();
    for f in arrow_schema.fields() {
        let (pg, sql, canonical) = pg_type(f.data_type()).ok_or_else(|| {
            Failure::Permanent(anyhow::anyhow!(
                "column {:?} has type {}, which lamin.load cannot load yet",
                f.name(),
                f.data_type()
            ))
        })?;
        columns.push((f.name().clone(), pg, sql, canonical));
    }
    let mut stream = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| Failure::Permanent(e.into()))?;

    let tx = client
        .transaction()
        .await
        .map_err(|e| Failure::Retry(e.into()))?;
    let ddl = format!(
        "CREATE TABLE {target} ({})",
        columns
            .iter()
            .map(|(n, _, sql, _)| format!("{} {sql}", quote_ident(n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    tx.batch_execute(&ddl).await.map_err(|e| {
        Failure::Permanent(crate::files::db_message(e).context(format!("cannot create {target}")))
    })?;
    let sink = tx
        .copy_in(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e)))?;
    let types: Vec<Type> = columns.iter().map(|(_, t, _, _)| t.clone()).collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    let mut rows: i64 = 0;
    while let Some(batch) = stream
        .try_next()
        .await
        .map_err(|e| Failure::Retry(e.into()))?
    {
        let cols: Vec<Col> = batch
            .columns()
            .iter()
            .zip(&columns)
            .map(|(a, (name, _, _, canonical))| {
                Col::new(a, canonical).with_context(|| format!("column {name:?}"))
            })
            .collect::<anyhow::Result<_>>()
            .map_err(Failure::Permanent)?;
        // One buffer for every row (an iterator of closures here would not be Send).
        let mut vals: Vec<Val<'_>> = Vec::with_capacity(cols.len());
        for r in 0..batch.num_rows() {
            for c in &cols {
                vals.push(c.get(r));
            }
            writer
                .as_mut()
                .write_raw(vals.drain(..))
                .await
                .map_err(|e| {
                    Failure::Permanent(
                        crate::files::db_message(e).context(format!("row {}", rows + 1)),
                    )
                })?;
            rows += 1;
        }
        progress
            .done
            .store(rows, std::sync::atomic::Ordering::Relaxed);
    }
    writer
        .finish()
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e)))?;
    tx.commit().await.map_err(|e| Failure::Retry(e.into()))?;
    Ok(json!({ "table": format!("{schema_name}.{table}"), "rows": rows, "artifact": uid }))
}

/// A Postgres date or timestamp read in binary: days / microseconds since 2000-01-01.
struct PgInstant(i64);

impl<'a> tokio_postgres::types::FromSql<'a> for PgInstant {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(PgInstant(if *ty == Type::DATE {
            i32::from_be_bytes(raw.try_into()?) as i64
        } else {
            i64::from_be_bytes(raw.try_into()?)
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ)
    }
}

/// The arrow type a query column is exported as.
fn arrow_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::BOOL => DataType::Boolean,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DataType::Utf8
        }
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => return None,
    })
}

/// Rows of a query result as one arrow column.
fn column(
    rows: &[tokio_postgres::Row],
    i: usize,
    pg: &Type,
    t: &DataType,
) -> anyhow::Result<ArrayRef> {
    use arrow::array::*;
    macro_rules! collect {
        ($rust:ty, $array:ty) => {{
            let v: Vec<Option<$rust>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(<$array>::from(v)) as ArrayRef
        }};
    }
    Ok(match t {
        DataType::Int16 => collect!(i16, Int16Array),
        DataType::Int32 => collect!(i32, Int32Array),
        DataType::Int64 => collect!(i64, Int64Array),
        DataType::Float32 => collect!(f32, Float32Array),
        DataType::Float64 => collect!(f64, Float64Array),
        DataType::Boolean => collect!(bool, BooleanArray),
        DataType::Utf8 if matches!(*pg, Type::JSON | Type::JSONB) => {
            let v: Vec<Option<serde_json::Value>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(StringArray::from(
                v.into_iter()
                    .map(|j| j.map(|j| j.to_string()))
                    .collect::<Vec<_>>(),
            ))
        }
        DataType::Utf8 => collect!(&str, StringArray),
        DataType::Binary => collect!(&[u8], BinaryArray),
        DataType::Date32 => {
            let v: Vec<Option<PgInstant>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(Date32Array::from(
                v.into_iter()
                    .map(|d| d.map(|d| d.0 as i32 + DAYS_1970_TO_2000))
                    .collect::<Vec<_>>(),
            ))
        }
        DataType::Timestamp(_, tz) => {
            let v: Vec<Option<PgInstant>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(
                TimestampMicrosecondArray::from(
                    v.into_iter()
                        .map(|d| d.map(|d| d.0 + MICROS_1970_TO_2000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone_opt(tz.clone()),
            )
        }
        other => anyhow::bail!("no export for {other}"),
    })
}

/// Rows per parquet row group of an export: large enough for fast scans,
/// small enough that `lamin cat` can skip most of a file.
const EXPORT_ROW_GROUP: usize = 131_072;

/// A user's query, ready to run on a sidecar connection.
struct Sandboxed {
    /// The statement to run: the query, called through its function.
    run: String,
    /// The query's column names (the function's are c1, c2, …).
    names: Vec<String>,
}

/// Wrap a user's query in a SECURITY DEFINER function of the requester's own
/// (a temporary one, owned by the role this connection acts as). The
/// connection's session user is the sidecar, which may act as many roles; but
/// inside a security-definer function Postgres refuses every change of role
/// (`set_config('role', …)`, `SET ROLE` in a called function), so the query
/// runs with exactly the requester's rights. The query is first prepared on
/// its own: one statement, no parameters.
async fn sandbox_query(client: &Client, query: &str) -> Result<Sandboxed, Failure> {
    let stmt = client
        .prepare(query)
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e).context("the export query")))?;
    if !stmt.params().is_empty() {
        return Err(Failure::Permanent(anyhow::anyhow!(
            "the export query has parameters ($1, …): write the values into it"
        )));
    }
    if stmt.columns().is_empty() {
        return Err(Failure::Permanent(anyhow::anyhow!(
            "the export query returns no columns: export a SELECT"
        )));
    }
    let oids: Vec<u32> = stmt.columns().iter().map(|c| c.type_().oid()).collect();
    let types: Vec<String> = client
        .query(
            "SELECT pg_catalog.format_type(t.oid, NULL) FROM unnest($1::oid[]) WITH ORDINALITY t(oid, n) ORDER BY t.n",
            &[&oids],
        )
        .await
        .map_err(|e| Failure::Retry(e.into()))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut tag = String::from("$lamin_export$");
    while query.contains(&tag) {
        tag.insert(tag.len() - 1, 'x');
    }
    let columns: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("c{} {t}", i + 1))
        .collect();
    let body = query.trim_end().trim_end_matches(';');
    client
        .batch_execute(&format!(
            "CREATE FUNCTION pg_temp.lamin_export_query() RETURNS TABLE ({}) LANGUAGE sql SECURITY DEFINER AS {tag}{body}\n{tag}",
            columns.join(", ")
        ))
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e).context("preparing the export query")))?;
    Ok(Sandboxed {
        run: "SELECT * FROM pg_temp.lamin_export_query()".to_string(),
        names: stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
    })
}

/// export: run a query as the requester in a read-only transaction, write
/// the rows to parquet and save it as an artifact (key, current run, space).
pub async fn export(
    ctx: &crate::jobs::WorkerContext,
    job: &Job,
    progress: &Progress,
) -> Result<Value, Failure> {
    let query = arg_str(&job.args, "query")?;
    let key = arg_str(&job.args, "key")?;
    let opt = |name: &str| {
        job.args
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut conn = ctx.connect_as(job).await?;
    let sandboxed = sandbox_query(&conn, &query).await?;
    let tx = conn
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(|e| Failure::Retry(e.into()))?;
    let stmt = tx
        .prepare(&sandboxed.run)
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e).context("the export query")))?;
    let mut fields = Vec::new();
    for c in stmt.columns() {
        let t = arrow_type(c.type_()).ok_or_else(|| {
            Failure::Permanent(anyhow::anyhow!(
                "column {:?} of the export query has type {}: cast it in the query (e.g. ::float8 or ::text)",
                c.name(),
                c.type_()
            ))
        })?;
        fields.push(arrow::datatypes::Field::new(
            &sandboxed.names[fields.len()],
            t,
            true,
        ));
    }
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
    let dir = ctx.cache_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Permanent(e.into()))?;
    let file = tempfile::Builder::new()
        .prefix(".lamin-export-")
        .suffix(".parquet")
        .tempfile_in(&dir)
        .map_err(|e| Failure::Permanent(e.into()))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_size(EXPORT_ROW_GROUP)
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        file.reopen().map_err(|e| Failure::Permanent(e.into()))?,
        schema.clone(),
        Some(props),
    )
    .map_err(|e| Failure::Permanent(e.into()))?;
    let portal = tx
        .bind(&stmt, &[])
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e)))?;
    let mut rows_out: i64 = 0;
    loop {
        let rows = tx.query_portal(&portal, 65_536).await.map_err(|e| {
            Failure::Permanent(crate::files::db_message(e).context("the export query"))
        })?;
        if rows.is_empty() {
            break;
        }
        let arrays = stmt
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| column(&rows, i, c.type_(), schema.field(i).data_type()))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(Failure::Permanent)?;
        let batch = arrow::record_batch::RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| Failure::Permanent(e.into()))?;
        tokio::task::block_in_place(|| writer.write(&batch))
            .map_err(|e| Failure::Permanent(e.into()))?;
        rows_out += rows.len() as i64;
        progress
            .done
            .store(rows_out, std::sync::atomic::Ordering::Relaxed);
    }
    tokio::task::block_in_place(|| writer.close()).map_err(|e| Failure::Permanent(e.into()))?;
    tx.rollback().await.map_err(|e| Failure::Retry(e.into()))?;
    drop(conn);
    // Saved exactly as `lamin save` saves, by this same binary, acting as the requester.
    let short: String = query.chars().take(200).collect();
    let exe = std::env::current_exe().map_err(|e| Failure::Permanent(e.into()))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("save")
        .arg(file.path())
        .args([
            "--key",
            &key,
            "--description",
            &format!("export of: {short}"),
            "--quiet",
        ])
        .env("DATABASE_URL", ctx.url_acting_as(&job.requested_by))
        .env_remove("LAMIN_RUN")
        .env_remove("LAMIN_SPACE");
    if let Some(run) = opt("run") {
        cmd.args(["--run", &run]);
    }
    if let Some(space) = opt("space") {
        cmd.args(["--space", &space]);
    }
    let out = cmd.output().await.map_err(|e| Failure::Retry(e.into()))?;
    if !out.status.success() {
        return Err(Failure::Permanent(anyhow::anyhow!(
            "saving the export failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let uid = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(json!({ "uid": uid, "key": key, "rows": rows_out }))
}

/// Distinct values of one column: at most this many are checked at once.
const MAX_DISTINCT: usize = 1_000_000;

/// curate: the distinct values of a column, checked against a registry with
/// lamin.inspect (as the requester), stored as a curation report.
pub async fn curate(
    ctx: &crate::jobs::WorkerContext,
    job: &Job,
    progress: &Progress,
) -> Result<Value, Failure> {
    let uid = arg_str(&job.args, "uid")?;
    let column = arg_str(&job.args, "column")?;
    let registry = arg_str(&job.args, "registry")?;
    let field = job
        .args
        .get("field")
        .and_then(Value::as_str)
        .map(str::to_string);
    let client = ctx.connect_as(job).await?;
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.size, (SELECT r.name_field FROM lamin.registry r WHERE r.name = $2)
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid, &registry],
        )
        .await
        .map_err(|e| Failure::Retry(e.into()))?
        .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("no ready artifact with uid {uid:?}")))?;
    let (root, object, size, name_field): (String, String, Option<i64>, Option<String>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let field = field
        .or(name_field)
        .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("unknown registry {registry:?}")))?;
    let storage = crate::storage::Storage::open(&root).map_err(Failure::Permanent)?;
    let values = if object.ends_with(".h5ad") || object.ends_with(".zarr") {
        anndata_values(&storage, &object, &column)
            .await
            .map_err(|e| Failure::Permanent(e.context(format!("artifact {uid}"))))?
    } else {
        parquet_values(&storage, &object, size, &column)
            .await
            .map_err(|e| Failure::Permanent(e.context(format!("artifact {uid}"))))?
    };
    progress
        .total
        .store(values.len() as i64, std::sync::atomic::Ordering::Relaxed);
    let rows = client
        .query(
            "SELECT value, validated, standardized, suggestion FROM lamin.inspect($1, $2, $3)",
            &[&registry, &values, &field],
        )
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e)))?;
    let report: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "value": r.get::<_, Option<String>>(0),
                "validated": r.get::<_, bool>(1),
                "standardized": r.get::<_, Option<String>>(2),
                "suggestion": r.get::<_, Option<String>>(3),
            })
        })
        .collect();
    let report = Value::from(report).to_string();
    let summary: String = client
        .query_one(
            "SELECT lamin.record_curation($1, $2, $3, $4, $5::text::jsonb)::text",
            &[&uid, &column, &registry, &field, &report],
        )
        .await
        .map_err(|e| Failure::Permanent(crate::files::db_message(e)))?
        .get(0);
    serde_json::from_str(&summary).map_err(|e| Failure::Permanent(e.into()))
}

/// The distinct values of an AnnData column, .h5ad file or .zarr store
/// (through a local copy for remote storages).
async fn anndata_values(
    storage: &crate::storage::Storage,
    object: &str,
    column: &str,
) -> anyhow::Result<Vec<String>> {
    let zarr = object.ends_with(".zarr");
    let read = |path: &std::path::Path| {
        tokio::task::block_in_place(|| {
            if zarr {
                crate::anndata::distinct_values_zarr(path, column)
            } else {
                crate::anndata::distinct_values(path, column)
            }
        })
    };
    if storage.is_local() {
        return read(&std::path::Path::new(&storage.root).join(object));
    }
    let dir = tempfile::tempdir()?;
    let copy = dir
        .path()
        .join(if zarr { "data.zarr" } else { "data.h5ad" });
    storage.download(object, zarr, &copy, &|_| {}).await?;
    read(&copy)
}

/// The distinct values of a parquet column (only that column is read).
async fn parquet_values(
    storage: &crate::storage::Storage,
    object: &str,
    size: Option<i64>,
    column: &str,
) -> anyhow::Result<Vec<String>> {
    let query = crate::tabular::Query {
        columns: Some(vec![column.to_string()]),
        ..Default::default()
    };
    let mut distinct = std::collections::BTreeSet::new();
    let mut too_many = false;
    crate::tabular::scan(storage, object, size.map(|s| s as u64), &query, |batch| {
        let values = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let values = values
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        for v in values.iter().flatten() {
            if distinct.len() < MAX_DISTINCT {
                distinct.insert(v.to_string());
            } else if !distinct.contains(v) {
                too_many = true;
            }
        }
        Ok(())
    })
    .await?;
    if too_many {
        anyhow::bail!(
            "column {column:?} has more than {MAX_DISTINCT} distinct values: not a label column"
        );
    }
    Ok(distinct.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn arrow_types_have_postgres_columns() {
        assert_eq!(pg_type(&DataType::Int64).unwrap().1, "bigint");
        assert_eq!(pg_type(&DataType::UInt8).unwrap().1, "integer");
        assert_eq!(
            pg_type(&DataType::Dictionary(
                Box::new(DataType::Int8),
                Box::new(DataType::Utf8)
            ))
            .unwrap()
            .1,
            "text"
        );
        assert_eq!(
            pg_type(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            ))
            .unwrap()
            .1,
            "timestamptz"
        );
        assert!(
            pg_type(&DataType::List(Arc::new(arrow::datatypes::Field::new(
                "x",
                DataType::Int32,
                true
            ))))
            .is_none()
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn dates_and_times_count_from_2000() {
        let mut out = BytesMut::new();
        Val::Date(DAYS_1970_TO_2000)
            .to_sql(&Type::DATE, &mut out)
            .unwrap();
        assert_eq!(&out[..], &0i32.to_be_bytes());
        let mut out = BytesMut::new();
        Val::Micros(MICROS_1970_TO_2000 + 1)
            .to_sql(&Type::TIMESTAMP, &mut out)
            .unwrap();
        assert_eq!(&out[..], &1i64.to_be_bytes());
    }
}
