//! Reading a parquet artifact's rows (`lamin cat`): the columns and rows a
//! query selects, by ranged reads of only what is needed, to a sink.

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use tokio_postgres::Client;

use crate::error::DbError;
use crate::formats::parquet::{scan, Query, ReadCost};
use crate::refused;
use crate::storage::Storage;

/// Which artifact (uid or 16-character stem), and what of it.
#[derive(Debug, Clone)]
pub struct CatRequest {
    pub uid: String,
    pub query: Query,
}

/// What was read.
#[derive(Debug, Clone)]
pub struct CatOutcome {
    pub uid: String,
    /// The artifact's size in bytes, when known.
    pub size: Option<i64>,
    pub cost: ReadCost,
}

/// Stream the selected rows of a ready parquet artifact to `sink`, batch by batch.
pub async fn cat(
    client: &Client,
    request: &CatRequest,
    sink: impl FnMut(&RecordBatch) -> anyhow::Result<()> + Send,
) -> anyhow::Result<CatOutcome> {
    let row = client
        .query_one(
            "SELECT a.uid, s.root, lamin.object_key(a), a.status, a.size, a.suffix, a.n_files IS NOT NULL
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.id = lamin.artifact_id($1)",
            &[&request.uid],
        )
        .await
        .map_err(DbError)?;
    let (uid, root, object, status): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let (size, suffix, folder): (Option<i64>, String, bool) = (row.get(4), row.get(5), row.get(6));
    if status != "ready" {
        return Err(refused!(
            "artifact {uid} is {status}: its bytes are not (yet) verified in storage"
        ));
    }
    if suffix != ".parquet" || folder {
        return Err(refused!(
            "lamin cat reads parquet artifacts; {uid} is {}",
            if folder {
                "a folder".to_string()
            } else {
                format!("a {suffix:?} file")
            }
        ));
    }
    let storage = Storage::open(&root)?;
    let cost = scan(
        &storage,
        &object,
        size.map(|s| s as u64),
        &request.query,
        sink,
    )
    .await
    .with_context(|| format!("artifact {uid}"))?;
    Ok(CatOutcome { uid, size, cost })
}
