//! register: an object already in a storage (lamin.register) is hashed where
//! it lies and marked ready; tables among them get their columns recorded.

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Client;

use super::describe::{describe_and_record, record, take_warning};
use super::locate;
use crate::error::DbError;
use crate::formats::{is_described_suffix, is_store_suffix, parquet};
use crate::progress::Progress;
use crate::refused;
use crate::storage::Storage;

/// Which artifact to register.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    pub uid: String,
}

/// What register found and recorded.
#[derive(Debug, Serialize)]
pub struct Registered {
    pub uid: String,
    pub status: String,
    #[serde(flatten)]
    pub content: Option<Stored>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// Rows and columns of a table or AnnData.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Value>,
    /// Why a file that claims to be a table stays plain bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The content as the job result shows it.
#[derive(Debug, Serialize)]
pub struct Stored {
    pub hash: String,
    pub size: u64,
    pub n_files: Option<i64>,
}

/// register: stream the object, record its size and sha256.
pub async fn register(
    client: &Client,
    request: &RegisterRequest,
    progress: &dyn Progress,
) -> anyhow::Result<Registered> {
    let a = locate(client, &request.uid).await?;
    if a.status != "pending" {
        return Ok(Registered {
            uid: a.uid,
            status: a.status,
            content: None,
            note: Some("not pending: nothing to do"),
            table: None,
            warning: None,
        });
    }
    let storage = Storage::open(&a.root)?;
    let uri = storage.uri(&a.object);
    // An artifact moved in from LaminDB: its bytes are checked against
    // LaminDB's own hash on the way (lamindb::legacy).
    let content = match &a.legacy {
        Some((legacy_hash, legacy_type))
            if !a.folder && crate::lamindb::legacy::checkable(legacy_type) =>
        {
            crate::lamindb::legacy::hash_and_check(
                &storage,
                &a.object,
                legacy_hash,
                legacy_type,
                progress,
            )
            .await
            .map_err(|e| {
                if crate::error::is_not_found(&e) {
                    refused!("no object at {uri}")
                } else {
                    e
                }
            })?
        }
        _ => storage
            .content(&a.object, None, progress)
            .await
            .map_err(|e| e.context(format!("cannot read {uri}")))?
            .ok_or_else(|| refused!("no object at {uri}"))?,
    };
    let status: String = client
        .query_one(
            "SELECT lamin.finish_register($1, $2, $3, $4)",
            &[
                &a.uid,
                &content.hash,
                &(content.size as i64),
                &content.n_files,
            ],
        )
        .await
        .map_err(DbError)?
        .get(0);
    let mut result = Registered {
        uid: a.uid.clone(),
        status: status.clone(),
        content: Some(Stored {
            hash: content.hash.clone(),
            size: content.size,
            n_files: content.n_files,
        }),
        note: None,
        table: None,
        warning: None,
    };
    // Tables: rows and columns; a file that is not what its suffix says stays
    // registered as plain bytes, with a warning in the result.
    let suffix = client
        .query_one(
            "SELECT suffix FROM lamin.artifact WHERE uid = $1",
            &[&a.uid],
        )
        .await
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_default();
    let is_store = content.n_files.is_some() && is_store_suffix(&suffix);
    if status == "ready" && (content.n_files.is_none() || is_store) && is_described_suffix(&suffix)
    {
        let described = if suffix == ".parquet" {
            match parquet::describe_object(&storage, &a.object).await {
                Ok(info) => record(client, &a.uid, &info).await,
                Err(e) => Err(e),
            }
        } else {
            // Delimited text and HDF5 are read whole: through a local copy.
            describe_copy(client, &a.uid, &storage, &a.object, &suffix, is_store).await
        };
        match described {
            Ok(mut table) => {
                result.warning = take_warning(&mut table);
                result.table = Some(table);
            }
            Err(e) => result.warning = Some(format!("registered as plain bytes: {e:#}")),
        }
    }
    Ok(result)
}

/// Describe a CSV/TSV/HDF5 object (or a .zarr store) through a temporary local copy of it.
async fn describe_copy(
    client: &Client,
    uid: &str,
    storage: &Storage,
    key: &str,
    suffix: &str,
    folder: bool,
) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join(format!("table{suffix}"));
    storage
        .download(key, folder, &copy, &crate::progress::Silent)
        .await?;
    describe_and_record(client, uid, &copy, suffix).await
}
