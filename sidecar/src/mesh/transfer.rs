//! Copying records between two instances: the source writes a transfer
//! document of what the caller can read (`lamin.transfer_out`), the target
//! maps it onto its own records (`lamin.transfer_in`, one statement: all or
//! nothing). The bytes stay where they are when the target reaches the same
//! storage (checked: every object must be there); with `copy` they are
//! copied into a storage of the target first, hashed on the way and
//! compared with the source's hash.

use anyhow::Context;
use serde_json::Value;
use tokio_postgres::Client;

use crate::progress::Progress;
use crate::refused;
use crate::storage::Storage;
use crate::{db, error::DbError};

#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub from_url: String,
    pub to_url: String,
    /// Artifact and collection uids (a 16-character stem: the latest version).
    pub uids: Vec<String>,
    /// Copy the bytes into a storage of the target (else they stay where they are).
    pub copy: bool,
    /// With `copy`: the target storage (uid or root; default: its default storage).
    pub storage: Option<String>,
    /// The target space the records go to (default: "all").
    pub space: Option<String>,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferred {
    pub kind: String,
    pub source_uid: String,
    pub uid: String,
    /// created, linked (the same content was there) or exists (the same record was there).
    pub action: String,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub records: Vec<Transferred>,
    /// Objects copied (with `copy`) and their bytes.
    pub objects_copied: u64,
    pub bytes_copied: u64,
}

/// The uids a query on the source returns (its first column), as the caller.
pub async fn query_uids(from_url: &str, query: &str) -> anyhow::Result<Vec<String>> {
    let client = db::open(from_url).await?;
    let rows = client
        .query(query, &[])
        .await
        .map_err(DbError)
        .context("the query for uids failed on the source")?;
    rows.iter()
        .map(|r| {
            r.try_get::<_, String>(0)
                .context("the query's first column must be text uids")
        })
        .collect()
}

pub async fn transfer(req: &TransferRequest, progress: &dyn Progress) -> anyhow::Result<Summary> {
    if req.uids.is_empty() {
        return Err(refused!(
            "nothing to transfer: give uids, --query, or - to read them from stdin"
        ));
    }
    let source = db::open(&req.from_url)
        .await
        .context("cannot open the source instance")?;
    let target = db::open(&req.to_url)
        .await
        .context("cannot open the target instance")?;
    let same: bool = {
        let s: String = source
            .query_one("SELECT (lamin.instance()).uid", &[])
            .await?
            .get(0);
        let t: String = target
            .query_one("SELECT (lamin.instance()).uid", &[])
            .await?
            .get(0);
        s == t
    };
    if same {
        return Err(refused!("the source and the target are the same instance"));
    }
    if let Some(space) = &req.space {
        target
            .query_one("SELECT lamin.use_space($1)", &[space])
            .await
            .map_err(DbError)?;
    }
    let mut doc: Value = source
        .query_one("SELECT lamin.transfer_out($1)", &[&req.uids])
        .await
        .map_err(DbError)?
        .get(0);
    let mut summary = Summary::default();
    let storage = if req.copy {
        let root = target_root(&target, req.storage.as_deref()).await?;
        copy_bytes(&target, &mut doc, &root, progress, &mut summary).await?;
        Some(root)
    } else {
        check_objects(&doc).await?;
        None
    };
    let rows = target
        .query(
            "SELECT kind, source_uid, uid, action FROM lamin.transfer_in($1, $2)",
            &[&doc, &storage],
        )
        .await
        .map_err(DbError)?;
    summary.records = rows
        .iter()
        .map(|r| Transferred {
            kind: r.get(0),
            source_uid: r.get(1),
            uid: r.get(2),
            action: r.get(3),
        })
        .collect();
    Ok(summary)
}

async fn target_root(target: &Client, storage: Option<&str>) -> anyhow::Result<String> {
    Ok(target
        .query_one(
            "SELECT s.root FROM lamin.storage s WHERE s.id = lamin.storage_id($1)",
            &[&storage],
        )
        .await
        .map_err(DbError)?
        .get(0))
}

fn artifacts(doc: &Value) -> impl Iterator<Item = &Value> {
    doc["artifacts"].as_array().into_iter().flatten()
}

fn text<'a>(a: &'a Value, field: &str) -> &'a str {
    a[field].as_str().unwrap_or_default()
}

/// Without copying, the target points at the source's objects: each must be
/// where the document says (a record pointing at nothing is never made).
async fn check_objects(doc: &Value) -> anyhow::Result<()> {
    for a in artifacts(doc) {
        let root = a["storage"]["root"].as_str().unwrap_or_default();
        let storage = Storage::open(root)?;
        let folder = !a["n_files"].is_null();
        match storage.shape(text(a, "object")).await? {
            Some(f) if f == folder => {}
            _ => {
                return Err(refused!(
                    "artifact {}: its bytes are not at {} (the source's record is stale; lamin verify it there)",
                    text(a, "uid"),
                    storage.uri(text(a, "object"))
                ))
            }
        }
    }
    Ok(())
}

/// Copy each artifact's bytes the target does not hold yet into `root`,
/// at `.lamindb/{uid}{suffix}`, and point the document there.
async fn copy_bytes(
    target: &Client,
    doc: &mut Value,
    root: &str,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let dest = Storage::open(root)?;
    let Some(list) = doc["artifacts"].as_array_mut() else {
        return Ok(());
    };
    for a in list.iter_mut() {
        let uid = text(a, "uid").to_string();
        let hash = text(a, "hash").to_string();
        // Already there (the same record, or the same content in that storage): nothing to copy.
        let known: bool = target
            .query_one(
                "SELECT EXISTS (SELECT FROM lamin.artifact WHERE uid = $1)
                     OR EXISTS (SELECT FROM lamin.artifact WHERE hash = $2 AND storage_id = lamin.storage_id($3) AND branch_id <> -1)",
                &[&uid, &hash, &root],
            )
            .await?
            .get(0);
        let object = lamin_core::object::object_key(&uid, text(a, "suffix"));
        if !known {
            let from = Storage::open(a["storage"]["root"].as_str().unwrap_or_default())?;
            let folder = !a["n_files"].is_null();
            let copied =
                copy_object(&from, text(a, "object"), folder, &dest, &object, progress).await?;
            if copied.0 != hash {
                let _ = dest.delete(&object, folder).await;
                return Err(refused!(
                    "artifact {uid}: the bytes read from {} hash to {}, not to the recorded {} (nothing was transferred; lamin verify it in the source)",
                    from.uri(text(a, "object")),
                    copied.0,
                    hash
                ));
            }
            summary.objects_copied += 1;
            summary.bytes_copied += copied.1;
        }
        // (The copy is this instance's own object, one per version.)
        a["object"] = Value::String(object);
        a["key_is_virtual"] = Value::Bool(true);
        a["overwrite_versions"] = Value::Bool(false);
        a["storage"] = serde_json::json!({ "root": root, "region": Value::Null });
    }
    Ok(())
}

/// Copy one object (a file, or every file of a folder) between storages
/// through a local temporary copy, hashing it: (hash, bytes).
async fn copy_object(
    from: &Storage,
    key: &str,
    folder: bool,
    to: &Storage,
    dest_key: &str,
    progress: &dyn Progress,
) -> anyhow::Result<(String, u64)> {
    if let Some(path) = to.local_path(dest_key) {
        // A local target: the download lands in place (whole, or not at all).
        let content = from.download(key, folder, &path, progress).await?;
        return Ok((content.hash, content.size));
    }
    let dir = tempfile::tempdir()?;
    let local = dir.path().join("object");
    let content = from.download(key, folder, &local, progress).await?;
    let silent = crate::progress::Silent;
    if folder {
        for (relative, path) in crate::storage::local::local_folder_files(&local)? {
            crate::storage::transfer::upload_file(
                to.store(),
                &to.path(&format!("{dest_key}/{relative}")),
                &path,
                &silent,
                || async {},
            )
            .await?;
        }
    } else {
        crate::storage::transfer::upload_file(
            to.store(),
            &to.path(dest_key),
            &local,
            &silent,
            || async {},
        )
        .await?;
    }
    Ok((content.hash, content.size))
}
