//! Cleaning a storage: delete_object removes the bytes of an artifact whose
//! permanent delete committed; sweep_storage recovers or fails saves that
//! were interrupted and removes what no artifact owns. Both are lamin's own
//! (internal) jobs: the worker runs them on the sidecar's own login only.

use std::collections::HashMap;
use std::time::SystemTime;

use lamin_core::object::{is_object_of, object_dir_entry, uid_of_object_name, OBJECT_DIR};
use serde::Serialize;
use tokio_postgres::Client;

use super::storage_root;
use crate::error::DbError;
use crate::refused;
use crate::storage::local::{newest_mtime, remove_path};
use crate::storage::Storage;

/// The object of a deleted artifact: its uid, object path and storage.
#[derive(Debug, Clone)]
pub struct DeleteObjectRequest {
    pub uid: String,
    pub object: String,
    pub storage_id: i64,
    pub folder: bool,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub uri: String,
    pub deleted_objects: u64,
}

/// Which storage to sweep, and how old an upload or leftover must be.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    pub storage_id: i64,
    pub grace_s: i64,
}

#[derive(Debug, Serialize)]
pub struct Swept {
    pub root: String,
    pub recovered: Vec<String>,
    pub failed: Vec<String>,
    pub removed: Vec<String>,
}

/// delete_object: the artifact's row is gone (committed); remove its bytes.
/// Its arguments name a record, not a place: the root is the storage row's,
/// the object must be the uid's own under .lamindb/, and nothing is deleted
/// while an artifact with that uid exists (read on the sidecar's own
/// connection, which sees every artifact).
pub async fn delete_object(
    client: &Client,
    request: &DeleteObjectRequest,
) -> anyhow::Result<Deleted> {
    let (uid, object) = (&request.uid, &request.object);
    if !is_object_of(object, uid) {
        return Err(refused!(
            "refusing to delete {object:?}: it is not the object of artifact {uid:?} under .lamindb/"
        ));
    }
    let still = client
        .query_opt(
            "SELECT a.status FROM lamin.artifact a WHERE a.uid = $1",
            &[&uid],
        )
        .await
        .map_err(DbError)?;
    if let Some(row) = still {
        let status: String = row.get(0);
        return Err(refused!(
            "refusing to delete the object of artifact {uid}: the artifact exists ({status})"
        ));
    }
    let root = storage_root(client, request.storage_id).await?;
    let storage = Storage::open(&root)?;
    let deleted = storage.delete(object, request.folder).await?;
    Ok(Deleted {
        uri: storage.uri(object),
        deleted_objects: deleted,
    })
}

/// One top-level entry of a storage's .lamindb/ folder.
struct Leftover {
    name: String,
    folder: bool,
    modified: SystemTime,
}

async fn leftovers(storage: &Storage) -> anyhow::Result<Vec<Leftover>> {
    if let Some(dir) = storage.local_path(OBJECT_DIR) {
        let Ok(read) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in read {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let folder = entry.file_type()?.is_dir();
            out.push(Leftover {
                name,
                folder,
                modified: newest_mtime(&entry.path()),
            });
        }
        return Ok(out);
    }
    let mut by_name: HashMap<String, Leftover> = HashMap::new();
    for e in storage.list_folder(OBJECT_DIR).await? {
        let (first, rest) = e.relative.split_once('/').unwrap_or((&e.relative, ""));
        let modified: SystemTime = e.meta.last_modified.into();
        let item = by_name.entry(first.to_string()).or_insert(Leftover {
            name: first.to_string(),
            folder: !rest.is_empty(),
            modified,
        });
        item.modified = item.modified.max(modified);
    }
    Ok(by_name.into_values().collect())
}

/// sweep_storage: stale pending uploads are recovered (bytes complete and
/// matching) or failed and removed; objects under .lamindb/ that no artifact
/// owns, or whose artifact failed, are removed once older than the grace period.
///
/// `conn` is a connection of its own: the row locks below need transactions of their own.
pub async fn sweep_storage(conn: &mut Client, request: &SweepRequest) -> anyhow::Result<Swept> {
    let (storage_id, grace_s) = (request.storage_id, request.grace_s);
    let root = storage_root(conn, storage_id).await?;
    let storage = Storage::open(&root)?;
    let grace = grace_s as f64;

    let (mut recovered, mut failed) = (Vec::new(), Vec::new());
    let stale = conn
        .query(
            "SELECT a.uid FROM lamin.artifact a
             WHERE a.storage_id = $1 AND a.status = 'pending' AND a.key_is_virtual
               AND a.updated_at < now() - make_interval(secs => $2)",
            &[&storage_id, &grace],
        )
        .await
        .map_err(DbError)?;
    for row in stale {
        let uid: String = row.get(0);
        let tx = conn.transaction().await.map_err(DbError)?;
        let Some(a) = tx
            .query_opt(
                "SELECT lamin.object_key(a), a.n_files IS NOT NULL, a.hash FROM lamin.artifact a
                 WHERE a.uid = $1 AND a.status = 'pending' AND a.updated_at < now() - make_interval(secs => $2)
                 FOR UPDATE SKIP LOCKED",
                &[&uid, &grace],
            )
            .await
            .map_err(DbError)?
        else {
            continue;
        };
        let (object, folder, hash): (String, bool, Option<String>) = (a.get(0), a.get(1), a.get(2));
        let found = storage
            .content(&object, Some(folder), &crate::progress::Silent)
            .await?;
        if found.as_ref().map(|c| Some(&c.hash) == hash.as_ref()) == Some(true) {
            tx.execute("SELECT lamin.finish_upload($1, $2)", &[&uid, &hash])
                .await
                .map_err(DbError)?;
            recovered.push(uid);
        } else {
            storage.delete(&object, folder).await?;
            tx.execute(
                "SELECT lamin.fail_upload($1, $2)",
                &[
                    &uid,
                    &format!("abandoned: no complete upload within {grace_s} s"),
                ],
            )
            .await
            .map_err(DbError)?;
            failed.push(uid);
        }
        tx.commit().await.map_err(DbError)?;
    }

    let cutoff = SystemTime::now() - std::time::Duration::from_secs(grace_s.max(0) as u64);
    let entries: Vec<Leftover> = leftovers(&storage)
        .await?
        .into_iter()
        .filter(|e| e.modified <= cutoff)
        .collect();
    let uids: Vec<String> = entries
        .iter()
        .filter_map(|e| uid_of_object_name(&e.name).map(str::to_string))
        .collect();
    let known: HashMap<String, bool> = conn
        .query(
            "SELECT a.uid, a.status = 'failed' AND a.updated_at < now() - make_interval(secs => $2)
             FROM lamin.artifact a WHERE a.uid = ANY ($1)",
            &[&uids, &grace],
        )
        .await
        .map_err(DbError)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut removed = Vec::new();
    for e in entries {
        let object = object_dir_entry(&e.name);
        match uid_of_object_name(&e.name) {
            // A temporary copy of a save that never finished, or bytes no artifact owns.
            None if e.name.starts_with(".lamin-save-") => {}
            None => continue,
            Some(uid) => match known.get(uid) {
                None => {}
                Some(false) => continue,
                Some(true) => {
                    // A failed artifact's leftover: removed under its row lock,
                    // so that a save retrying it meanwhile waits.
                    let tx = conn.transaction().await.map_err(DbError)?;
                    let still = tx
                        .query_opt(
                            "SELECT 1 FROM lamin.artifact a WHERE a.uid = $1 AND a.status = 'failed' FOR UPDATE",
                            &[&uid],
                        )
                        .await
                        .map_err(DbError)?;
                    if still.is_some() {
                        storage.delete(&object, e.folder).await?;
                        removed.push(object);
                    }
                    tx.commit().await.map_err(DbError)?;
                    continue;
                }
            },
        }
        if let Some(path) = storage.local_path(&object) {
            remove_path(&path);
        } else {
            storage.delete(&object, e.folder).await?;
        }
        removed.push(object);
    }
    Ok(Swept {
        root,
        recovered,
        failed,
        removed,
    })
}
