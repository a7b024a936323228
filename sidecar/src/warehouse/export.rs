//! export: a query's rows, run as the requester in a read-only transaction,
//! written to parquet and saved as an artifact by the same function as
//! `lamin save`.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use tokio_postgres::Client;

use super::pg_binary::{arrow_type, column};
use crate::artifacts::save::{save, SaveRequest};
use crate::error::DbError;
use crate::progress::Counter;
use crate::refused;

/// The query, and where its parquet file goes (key, run, space).
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub query: String,
    pub key: String,
    pub run: Option<String>,
    pub space: Option<String>,
    /// Where the parquet file is written before it is saved (None: the system's temp folder).
    pub scratch_dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Exported {
    pub uid: String,
    pub key: String,
    pub rows: i64,
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
async fn sandbox_query(client: &Client, query: &str) -> anyhow::Result<Sandboxed> {
    let stmt = client
        .prepare(query)
        .await
        .map_err(DbError)
        .context("the export query")?;
    if !stmt.params().is_empty() {
        return Err(refused!(
            "the export query has parameters ($1, …): write the values into it"
        ));
    }
    if stmt.columns().is_empty() {
        return Err(refused!(
            "the export query returns no columns: export a SELECT"
        ));
    }
    let oids: Vec<u32> = stmt.columns().iter().map(|c| c.type_().oid()).collect();
    let types: Vec<String> = client
        .query(
            "SELECT pg_catalog.format_type(t.oid, NULL) FROM unnest($1::oid[]) WITH ORDINALITY t(oid, n) ORDER BY t.n",
            &[&oids],
        )
        .await
        .map_err(DbError)?
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
        .map_err(DbError)
        .context("preparing the export query")?;
    Ok(Sandboxed {
        run: "SELECT * FROM pg_temp.lamin_export_query()".to_string(),
        names: stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
    })
}

/// export: run a query as the requester (`conn` acts as them) in a
/// read-only transaction, write the rows to parquet and save it as an
/// artifact (key, run, space) on the same connection.
pub async fn export(
    conn: &mut Client,
    request: &ExportRequest,
    progress: &Counter,
) -> anyhow::Result<Exported> {
    let query = &request.query;
    let sandboxed = sandbox_query(conn, query).await?;
    let tx = conn
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(DbError)?;
    let stmt = tx
        .prepare(&sandboxed.run)
        .await
        .map_err(DbError)
        .context("the export query")?;
    let mut fields = Vec::new();
    for c in stmt.columns() {
        let t = arrow_type(c.type_()).ok_or_else(|| {
            refused!(
                "column {:?} of the export query has type {}: cast it in the query (e.g. ::float8 or ::text)",
                c.name(),
                c.type_()
            )
        })?;
        fields.push(arrow::datatypes::Field::new(
            &sandboxed.names[fields.len()],
            t,
            true,
        ));
    }
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
    let dir = request
        .scratch_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = tempfile::Builder::new()
        .prefix(".lamin-export-")
        .suffix(".parquet")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_size(EXPORT_ROW_GROUP)
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file.reopen()?, schema.clone(), Some(props))?;
    let portal = tx.bind(&stmt, &[]).await.map_err(DbError)?;
    let mut rows_out: i64 = 0;
    loop {
        let rows = tx
            .query_portal(&portal, 65_536)
            .await
            .map_err(DbError)
            .context("the export query")?;
        if rows.is_empty() {
            break;
        }
        let arrays = stmt
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| column(&rows, i, c.type_(), schema.field(i).data_type()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let batch = arrow::record_batch::RecordBatch::try_new(schema.clone(), arrays)?;
        tokio::task::block_in_place(|| writer.write(&batch))?;
        rows_out += rows.len() as i64;
        progress.set_done(rows_out);
    }
    tokio::task::block_in_place(|| writer.close())?;
    tx.rollback().await.map_err(DbError)?;
    // Saved exactly as `lamin save` saves, acting as the requester.
    let short: String = query.chars().take(200).collect();
    let saved = save(
        conn,
        &SaveRequest {
            path: file.path().to_path_buf(),
            key: Some(request.key.clone()),
            description: Some(format!("export of: {short}")),
            storage: None,
            run: request.run.clone(),
            space: request.space.clone(),
            revises: None,
        },
        progress,
    )
    .await
    .context("saving the export failed")?;
    Ok(Exported {
        uid: saved.uid,
        key: request.key.clone(),
        rows: rows_out,
    })
}
