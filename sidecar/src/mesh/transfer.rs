//! Copying records between two instances: the source writes a transfer
//! document of what the caller can read (`lamin.transfer_out`), the target
//! maps it onto its own records (`lamin.transfer_in`, one statement: all or
//! nothing). The bytes stay where they are when the target reaches the same
//! storage (checked: every object must be there); with `copy` they are
//! copied into a storage of the target first, hashed on the way and
//! compared with the source's hash.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
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
    let mut copied = Vec::new();
    let storage = if req.copy {
        let root = target_root(&target, req.storage.as_deref()).await?;
        copied = copy_bytes(&target, &mut doc, &root, progress, &mut summary).await?;
        Some(root)
    } else {
        check_objects(&doc).await?;
        None
    };
    let rows = match target
        .query(
            "SELECT kind, source_uid, uid, action FROM lamin.transfer_in($1, $2)",
            &[&doc, &storage],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            // Nothing was transferred: neither are the bytes copied for it.
            if let Some(root) = &storage {
                let dest = Storage::open(root)?;
                for (object, folder) in &copied {
                    let _ = dest.delete(object, *folder).await;
                }
            }
            return Err(DbError(e).into());
        }
    };
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

/// The storage roots a document's artifacts lie in, each opened once.
fn source_storages(doc: &Value) -> anyhow::Result<HashMap<String, Storage>> {
    let mut storages = HashMap::new();
    for a in artifacts(doc) {
        let root = a["storage"]["root"].as_str().unwrap_or_default();
        if !storages.contains_key(root) {
            storages.insert(root.to_string(), Storage::open(root)?);
        }
    }
    Ok(storages)
}

/// How many objects are checked or copied at once (request latency, not
/// bandwidth, bounds many small objects).
const OBJECTS_IN_FLIGHT: usize = 8;

/// Without copying, the target points at the source's objects: each must be
/// where the document says (a record pointing at nothing is never made).
async fn check_objects(doc: &Value) -> anyhow::Result<()> {
    let storages = &source_storages(doc)?;
    futures_util::stream::iter(artifacts(doc).map(|a| async move {
        let storage = &storages[a["storage"]["root"].as_str().unwrap_or_default()];
        let folder = !a["n_files"].is_null();
        match storage.shape(text(a, "object")).await? {
            Some(f) if f == folder => Ok(()),
            _ => Err(refused!(
                "artifact {}: its bytes are not at {} (the source's record is stale; lamin verify it there)",
                text(a, "uid"),
                storage.uri(text(a, "object"))
            )),
        }
    }))
    .buffer_unordered(OBJECTS_IN_FLIGHT)
    .try_collect::<Vec<()>>()
    .await?;
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
) -> anyhow::Result<Vec<(String, bool)>> {
    let dest = Storage::open(root)?;
    // What the target cannot take is refused before any byte is copied.
    let mut preview = doc.clone();
    point_at(&mut preview, root);
    target
        .query_one("SELECT lamin.transfer_check($1)", &[&preview])
        .await
        .map_err(DbError)?;
    // Already there (the same record, or the same content in that storage): nothing to copy.
    let known: HashSet<String> = target
        .query(
            "SELECT d ->> 'uid' FROM jsonb_array_elements($1) d
             WHERE EXISTS (SELECT FROM lamin.artifact a WHERE a.uid = d ->> 'uid')
                OR EXISTS (SELECT FROM lamin.artifact a WHERE a.hash = d ->> 'hash'
                           AND a.storage_id = lamin.storage_id($2) AND a.branch_id <> -1)",
            &[&doc["artifacts"], &root],
        )
        .await
        .map_err(DbError)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let sources = source_storages(doc)?;
    let (sources, dest, known) = (&sources, &dest, &known);
    let results: Vec<anyhow::Result<Option<(String, bool, u64)>>> = futures_util::stream::iter(artifacts(doc).map(|a| async move {
        let uid = text(a, "uid");
        if known.contains(uid) {
            return Ok(None);
        }
        let from = &sources[a["storage"]["root"].as_str().unwrap_or_default()];
        let folder = !a["n_files"].is_null();
        let object = lamin_core::object::object_key(uid, text(a, "suffix"));
        let (hash, size) = copy_object(from, text(a, "object"), folder, dest, &object, progress).await?;
        if hash != text(a, "hash") {
            let _ = dest.delete(&object, folder).await;
            return Err(refused!(
                "artifact {uid}: the bytes read from {} hash to {hash}, not to the recorded {} (nothing was transferred; lamin verify it in the source)",
                from.uri(text(a, "object")),
                text(a, "hash")
            ));
        }
        Ok(Some((object, folder, size)))
    }))
    .buffered(OBJECTS_IN_FLIGHT)
    .collect()
    .await;
    // One failure transfers nothing: the copies already made are removed.
    if let Some(pos) = results.iter().position(|r| r.is_err()) {
        for (object, folder, _) in results
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned().flatten())
        {
            let _ = dest.delete(&object, folder).await;
        }
        let mut results = results;
        return Err(results.swap_remove(pos).unwrap_err());
    }
    let mut copied = Vec::new();
    for (object, folder, size) in results.into_iter().filter_map(|r| r.ok().flatten()) {
        summary.objects_copied += 1;
        summary.bytes_copied += size;
        copied.push((object, folder));
    }
    // (The copy is this instance's own object, one per version.)
    point_at(doc, root);
    Ok(copied)
}

/// Point every artifact of a document at its copy in `root`: this
/// instance's own object, one per version, at `.lamindb/{uid}{suffix}`.
fn point_at(doc: &mut Value, root: &str) {
    if let Some(list) = doc["artifacts"].as_array_mut() {
        for a in list.iter_mut() {
            let object = lamin_core::object::object_key(text(a, "uid"), text(a, "suffix"));
            a["object"] = Value::String(object);
            a["key_is_virtual"] = Value::Bool(true);
            a["overwrite_versions"] = Value::Bool(false);
            a["storage"] = serde_json::json!({ "root": root, "region": Value::Null });
        }
    }
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
