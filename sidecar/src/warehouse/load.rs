//! load: a parquet artifact streamed into a new table with binary COPY, in
//! one transaction, on the requester's connection (so their privileges and
//! policies apply).

use anyhow::Context;
use futures_util::TryStreamExt;
use serde::Serialize;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::pg_binary::{pg_type, Col, Val};
use crate::db::quote_ident;
use crate::error::DbError;
use crate::progress::Counter;
use crate::refused;
use crate::storage::Storage;

/// Which artifact goes into which new table.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub uid: String,
    pub schema: String,
    pub table: String,
}

#[derive(Debug, Serialize)]
pub struct Loaded {
    /// `schema.table`.
    pub table: String,
    pub rows: i64,
    pub artifact: String,
}

/// load: a new table from a parquet artifact, filled in one transaction.
pub async fn load(
    client: &mut Client,
    request: &LoadRequest,
    progress: &Counter,
) -> anyhow::Result<Loaded> {
    let (uid, schema_name, table) = (&request.uid, &request.schema, &request.table);
    let target = format!("{}.{}", quote_ident(schema_name), quote_ident(table));
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.size FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
             WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid],
        )
        .await
        .map_err(DbError)?
        .ok_or_else(|| refused!("no ready artifact with uid {uid:?}"))?;
    let (root, object, size): (String, String, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    let storage = Storage::open(&root)?;
    let mut reader = parquet::arrow::async_reader::ParquetObjectReader::new(
        storage.shared_store(),
        storage.path(&object),
    );
    if let Some(size) = size {
        reader = reader.with_file_size(size as u64);
    }
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .with_context(|| format!("{} is not a readable parquet file", storage.uri(&object)))?;
    let arrow_schema = builder.schema().clone();
    let total = builder.metadata().file_metadata().num_rows();
    progress.set_total(total);
    let mut columns = Vec::new();
    for f in arrow_schema.fields() {
        let (pg, sql, canonical) = pg_type(f.data_type()).ok_or_else(|| {
            refused!(
                "column {:?} has type {}, which lamin.load cannot load yet",
                f.name(),
                f.data_type()
            )
        })?;
        columns.push((f.name().clone(), pg, sql, canonical));
    }
    let mut stream = builder.with_batch_size(8192).build()?;

    let tx = client.transaction().await.map_err(DbError)?;
    let ddl = format!(
        "CREATE TABLE {target} ({})",
        columns
            .iter()
            .map(|(n, _, sql, _)| format!("{} {sql}", quote_ident(n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    tx.batch_execute(&ddl)
        .await
        .map_err(DbError)
        .with_context(|| format!("cannot create {target}"))?;
    let sink = tx
        .copy_in(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
        .await
        .map_err(DbError)?;
    let types: Vec<Type> = columns.iter().map(|(_, t, _, _)| t.clone()).collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    let mut rows: i64 = 0;
    while let Some(batch) = stream.try_next().await? {
        let cols: Vec<Col> = batch
            .columns()
            .iter()
            .zip(&columns)
            .map(|(a, (name, _, _, canonical))| {
                Col::new(a, canonical).with_context(|| format!("column {name:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
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
                .map_err(DbError)
                .with_context(|| format!("row {}", rows + 1))?;
            rows += 1;
        }
        progress.set_done(rows);
    }
    writer.finish().await.map_err(DbError)?;
    tx.commit().await.map_err(DbError)?;
    Ok(Loaded {
        table: format!("{schema_name}.{table}"),
        rows,
        artifact: uid.clone(),
    })
}
