//! curate: the distinct values of an artifact's column, checked against a
//! registry with lamin.inspect (as the requester), stored as a curation report.

use anyhow::Context;
use arrow::array::StringArray;
use arrow::datatypes::DataType;
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::error::DbError;
use crate::formats::{anndata, parquet};
use crate::progress::Counter;
use crate::refused;
use crate::storage::Storage;

/// Which column of which artifact, checked against which registry (and field).
#[derive(Debug, Clone)]
pub struct CurateRequest {
    pub uid: String,
    pub column: String,
    pub registry: String,
    /// None: the registry's name field.
    pub field: Option<String>,
}

/// Distinct values of one column: at most this many are checked at once.
const MAX_DISTINCT: usize = 1_000_000;

/// curate: the distinct values of a column, checked against a registry with
/// lamin.inspect (as the requester), stored as a curation report.
///
/// Returns the summary lamin.record_curation made.
pub async fn curate(
    client: &Client,
    request: &CurateRequest,
    progress: &Counter,
) -> anyhow::Result<Value> {
    let (uid, column, registry) = (&request.uid, &request.column, &request.registry);
    let field = request.field.clone();
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.size, (SELECT r.name_field FROM lamin.registry r WHERE r.name = $2)
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid, &registry],
        )
        .await
        .map_err(DbError)?
        .ok_or_else(|| refused!("no ready artifact with uid {uid:?}"))?;
    let (root, object, size, name_field): (String, String, Option<i64>, Option<String>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let field = field
        .or(name_field)
        .ok_or_else(|| refused!("unknown registry {registry:?}"))?;
    let storage = Storage::open(&root)?;
    let values = if object.ends_with(".h5ad") || object.ends_with(".zarr") {
        anndata_values(&storage, &object, column)
            .await
            .with_context(|| format!("artifact {uid}"))?
    } else {
        parquet_values(&storage, &object, size, column)
            .await
            .with_context(|| format!("artifact {uid}"))?
    };
    progress.set_total(values.len() as i64);
    let rows = client
        .query(
            "SELECT value, validated, standardized, suggestion FROM lamin.inspect($1, $2, $3)",
            &[&registry, &values, &field],
        )
        .await
        .map_err(DbError)?;
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
        .map_err(DbError)?
        .get(0);
    Ok(serde_json::from_str(&summary)?)
}

/// The distinct values of an AnnData column, .h5ad file or .zarr store
/// (through a local copy for remote storages).
async fn anndata_values(
    storage: &Storage,
    object: &str,
    column: &str,
) -> anyhow::Result<Vec<String>> {
    let zarr = object.ends_with(".zarr");
    let read = |path: &std::path::Path| {
        tokio::task::block_in_place(|| {
            if zarr {
                anndata::distinct_values_zarr(path, column)
            } else {
                anndata::distinct_values(path, column)
            }
        })
    };
    if let Some(path) = storage.local_path(object) {
        return read(&path);
    }
    let dir = tempfile::tempdir()?;
    let copy = dir
        .path()
        .join(if zarr { "data.zarr" } else { "data.h5ad" });
    storage
        .download(object, zarr, &copy, &crate::progress::Silent)
        .await?;
    read(&copy)
}

/// The distinct values of a parquet column (only that column is read).
async fn parquet_values(
    storage: &Storage,
    object: &str,
    size: Option<i64>,
    column: &str,
) -> anyhow::Result<Vec<String>> {
    let query = parquet::Query {
        columns: Some(vec![column.to_string()]),
        ..Default::default()
    };
    let mut distinct = std::collections::BTreeSet::new();
    let mut too_many = false;
    parquet::scan(storage, object, size.map(|s| s as u64), &query, |batch| {
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
