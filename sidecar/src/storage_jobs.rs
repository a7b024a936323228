//! The storage jobs: register (hash an object already in a storage), stage
//! (copy into the cache), verify (re-read and compare hashes), delete_object
//! (after a permanent delete committed) and sweep_storage (what interrupted
//! saves left behind).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::SystemTime;

use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::jobs::{arg_i64, arg_str, Failure, Job, WorkerContext, SIDECAR_ROLE};
use crate::storage::{cache_path, local_folder_files, remove_path, Content, Storage};

/// Work done and total, read by the heartbeat that reports it.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicI64,
    pub total: AtomicI64,
}

impl Progress {
    fn add(&self, n: u64) {
        self.done.fetch_add(n as i64, Ordering::Relaxed);
    }
    fn set_total(&self, n: i64) {
        self.total.store(n, Ordering::Relaxed);
    }
}

/// Storage errors worth another attempt (network, throttling, a server
/// error) versus those that will not change (missing object, refused
/// credentials, bad configuration).
fn classify(e: anyhow::Error) -> Failure {
    let permanent = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<object_store::Error>(),
            Some(
                object_store::Error::NotFound { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
                    | object_store::Error::NotSupported { .. }
            )
        )
    }) || e
        .chain()
        .any(|c| c.to_string().starts_with("cannot open storage"));
    if permanent {
        Failure::Permanent(e)
    } else {
        Failure::Retry(e)
    }
}

fn db(e: tokio_postgres::Error) -> Failure {
    Failure::Retry(crate::files::db_message(e))
}

/// An artifact as the storage jobs need it.
struct Located {
    uid: String,
    root: String,
    object: String,
    folder: bool,
    hash: Option<String>,
    status: String,
}

async fn locate(client: &Client, uid: &str) -> Result<Located, Failure> {
    let row = client
        .query_opt(
            "SELECT a.uid, s.root, lamin.object_key(a), a.n_files IS NOT NULL, a.hash, a.status
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.uid = $1",
            &[&uid],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("no artifact with uid {uid:?}")))?;
    Ok(Located {
        uid: row.get(0),
        root: row.get(1),
        object: row.get(2),
        folder: row.get(3),
        hash: row.get(4),
        status: row.get(5),
    })
}

/// register: stream the object, record its size and sha256.
pub async fn register(client: &Client, job: &Job, progress: &Progress) -> Result<Value, Failure> {
    let uid = arg_str(&job.args, "uid")?;
    let a = locate(client, &uid).await?;
    if a.status != "pending" {
        return Ok(
            json!({ "uid": a.uid, "status": a.status, "note": "not pending: nothing to do" }),
        );
    }
    let storage = Storage::open(&a.root).map_err(Failure::Permanent)?;
    let uri = storage.uri(&a.object);
    let content = storage
        .content(&a.object, None, &|n| progress.add(n))
        .await
        .map_err(|e| classify(e.context(format!("cannot read {uri}"))))?
        .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("no object at {uri}")))?;
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
        .map_err(db)?
        .get(0);
    let mut result = json!({
        "uid": a.uid, "status": status, "hash": content.hash, "size": content.size,
        "n_files": content.n_files,
    });
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
    let is_store = content.n_files.is_some() && suffix == ".zarr";
    if status == "ready"
        && (content.n_files.is_none() || is_store)
        && crate::tabular::is_table_suffix(&suffix)
    {
        let described = if suffix == ".parquet" {
            match crate::tabular::describe_object(&storage, &a.object).await {
                Ok(info) => crate::tabular::record(client, &a.uid, &info).await,
                Err(e) => Err(e),
            }
        } else {
            // Delimited text and HDF5 are read whole: through a local copy.
            describe_copy(client, &a.uid, &storage, &a.object, &suffix, is_store).await
        };
        match described {
            Ok(table) => result["table"] = table,
            Err(e) => result["warning"] = json!(format!("registered as plain bytes: {e:#}")),
        }
    }
    Ok(result)
}

/// Describe a CSV/TSV/h5ad object (or a .zarr store) through a temporary local copy of it.
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
    storage.download(key, folder, &copy, &|_| {}).await?;
    crate::tabular::describe_and_record(client, uid, &copy, suffix).await
}

/// The content of a local file or folder (to reuse a cached copy).
fn local_content(path: &Path) -> Option<Content> {
    let meta = std::fs::metadata(path).ok()?;
    let hash_file = |p: &Path| -> Option<(String, u64)> {
        use sha2::{Digest, Sha256};
        let mut f = std::fs::File::open(p).ok()?;
        let mut h = Sha256::new();
        let n = std::io::copy(&mut f, &mut h).ok()?;
        Some((format!("{:x}", h.finalize()), n))
    };
    if meta.is_file() {
        let (hash, size) = hash_file(path)?;
        return Some(Content {
            hash,
            size,
            n_files: None,
        });
    }
    let files = local_folder_files(path).ok()?;
    let mut hashes = Vec::with_capacity(files.len());
    let mut size = 0;
    for (relative, full) in &files {
        let (sha256, n) = hash_file(full)?;
        size += n;
        hashes.push(lamin_core::content::FileHash {
            path: relative.clone(),
            sha256,
        });
    }
    Some(Content {
        hash: lamin_core::content::folder_hash(&mut hashes),
        size,
        n_files: Some(files.len() as i64),
    })
}

/// The problem with stored content, if any, for lamin.record_check.
fn problem(uri: &str, found: &Option<Content>, registered: Option<&str>) -> Option<String> {
    match found {
        None => Some(format!("object missing at {uri}")),
        Some(c) if Some(c.hash.as_str()) != registered => Some(format!(
            "stored bytes at {uri} have sha256 {}, not the registered {}",
            c.hash,
            registered.unwrap_or("?")
        )),
        Some(_) => None,
    }
}

async fn record_check(client: &Client, uid: &str, problem: &Option<String>) -> Result<(), Failure> {
    client
        .execute("SELECT lamin.record_check($1, $2)", &[&uid, problem])
        .await
        .map_err(db)?;
    Ok(())
}

/// stage: copy a remote artifact into the cache (reused when its hash
/// matches); a local storage's object is its own local copy.
pub async fn stage(
    client: &Client,
    ctx: &WorkerContext,
    job: &Job,
    progress: &Progress,
) -> Result<Value, Failure> {
    let uid = arg_str(&job.args, "uid")?;
    let a = locate(client, &uid).await?;
    if a.status != "ready" {
        return Err(Failure::Permanent(anyhow::anyhow!(
            "artifact {} is {}: only ready artifacts can be staged",
            a.uid,
            a.status
        )));
    }
    if a.root.starts_with('/') {
        let path = Path::new(&a.root).join(&a.object);
        if !path.exists() {
            let problem = format!("object missing at {}", path.display());
            record_check(client, &a.uid, &Some(problem.clone())).await?;
            return Err(Failure::Permanent(anyhow::anyhow!(
                "artifact {} is corrupt: {problem}",
                a.uid
            )));
        }
        return Ok(json!({ "uid": a.uid, "path": path, "copied": false,
                          "note": "local storage: the object itself is the local copy" }));
    }
    let cache = ctx.cache_dir.as_ref().ok_or_else(|| {
        Failure::Permanent(anyhow::anyhow!(
            "this sidecar has no cache folder: start it with --cache-dir (or LAMIN_CACHE_DIR)"
        ))
    })?;
    let dest = cache_path(cache, &a.root, &a.object).map_err(Failure::Permanent)?;
    let cached = {
        let d = dest.clone();
        tokio::task::spawn_blocking(move || local_content(&d))
            .await
            .ok()
            .flatten()
    };
    if let Some(c) = cached.filter(|c| Some(c.hash.as_str()) == a.hash.as_deref()) {
        return Ok(json!({ "uid": a.uid, "path": dest, "copied": false, "bytes": c.size }));
    }
    // A stale or damaged copy is replaced.
    remove_path(&dest);
    let storage = Storage::open(&a.root).map_err(Failure::Permanent)?;
    let uri = storage.uri(&a.object);
    let got = storage
        .download(&a.object, a.folder, &dest, &|n| progress.add(n))
        .await;
    let got = match got {
        Ok(c) => Some(c),
        Err(e) if crate::storage::is_not_found(&e) => None,
        Err(e) => return Err(classify(e.context(format!("cannot copy {uri}")))),
    };
    if let Some(p) = problem(&uri, &got, a.hash.as_deref()) {
        remove_path(&dest);
        record_check(client, &a.uid, &Some(p.clone())).await?;
        return Err(Failure::Permanent(anyhow::anyhow!(
            "artifact {} is corrupt: {p}",
            a.uid
        )));
    }
    Ok(json!({ "uid": a.uid, "path": dest, "copied": true,
               "bytes": got.map(|c| c.size).unwrap_or(0) }))
}

/// verify: re-read one artifact (args.uid) or every stored one; mismatches
/// and missing objects make the artifact corrupt, matches make it ready.
pub async fn verify(client: &Client, job: &Job, progress: &Progress) -> Result<Value, Failure> {
    let uid = job.args.get("uid").and_then(Value::as_str);
    let rows = client
        .query(
            "SELECT a.uid FROM lamin.artifact a
             WHERE ($1::text IS NULL AND a.status IN ('ready', 'corrupt')) OR a.uid = $1
             ORDER BY a.id",
            &[&uid],
        )
        .await
        .map_err(db)?;
    progress.set_total(rows.len() as i64);
    let mut stores: HashMap<String, Storage> = HashMap::new();
    let (mut ok, mut corrupt) = (0u64, Vec::new());
    for row in &rows {
        let a = locate(client, row.get(0)).await?;
        if a.status != "ready" && a.status != "corrupt" {
            progress.add(1);
            continue;
        }
        if !stores.contains_key(&a.root) {
            let s = Storage::open(&a.root).map_err(Failure::Permanent)?;
            stores.insert(a.root.clone(), s);
        }
        let storage = &stores[&a.root];
        let uri = storage.uri(&a.object);
        let found = storage
            .content(&a.object, Some(a.folder), &|_| {})
            .await
            .map_err(|e| classify(e.context(format!("cannot read {uri}"))))?;
        let p = problem(&uri, &found, a.hash.as_deref());
        record_check(client, &a.uid, &p).await?;
        match p {
            None => ok += 1,
            Some(problem) => {
                if corrupt.len() < 1000 {
                    corrupt.push(json!({ "uid": a.uid, "problem": problem }));
                }
            }
        }
        progress.add(1);
    }
    Ok(json!({ "checked": rows.len(), "ok": ok, "corrupt": corrupt }))
}

/// The root of a storage, read from its row (never from a job's arguments).
async fn storage_root(client: &Client, storage_id: i64) -> Result<String, Failure> {
    client
        .query_opt(
            "SELECT s.root FROM lamin.storage s WHERE s.id = $1",
            &[&storage_id],
        )
        .await
        .map_err(db)?
        .map(|r| r.get(0))
        .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("no storage with id {storage_id}")))
}

/// Internal jobs (delete_object, sweep_storage) are enqueued by lamin's own
/// code for the sidecar itself (or by the superuser the sidecar logs in as);
/// one that names another requester was not.
fn check_internal(ctx: &WorkerContext, job: &Job) -> Result<(), Failure> {
    if job.requested_by == SIDECAR_ROLE || job.requested_by == ctx.own_role {
        return Ok(());
    }
    Err(Failure::Permanent(anyhow::anyhow!(
        "refusing a {} job requested by {:?}: jobs of this kind are lamin's own (enqueued for {SIDECAR_ROLE:?})",
        job.kind,
        job.requested_by,
    )))
}

/// Whether `object` is the object of artifact `uid`: `.lamindb/{uid}{suffix}`,
/// one name, no folder of its own.
fn is_object_of(object: &str, uid: &str) -> bool {
    object
        .strip_prefix(".lamindb/")
        .filter(|name| !name.contains('/') && !name.contains('\\'))
        .and_then(uid_of)
        == Some(uid)
}

/// delete_object: the artifact's row is gone (committed); remove its bytes.
/// Its arguments name a record, not a place: the root is the storage row's,
/// the object must be the uid's own under .lamindb/, and nothing is deleted
/// while an artifact with that uid exists (read on the sidecar's own
/// connection, which sees every artifact).
pub async fn delete_object(
    client: &Client,
    ctx: &WorkerContext,
    job: &Job,
) -> Result<Value, Failure> {
    check_internal(ctx, job)?;
    let uid = arg_str(&job.args, "uid")?;
    let object = arg_str(&job.args, "object")?;
    if !is_object_of(&object, &uid) {
        return Err(Failure::Permanent(anyhow::anyhow!(
            "refusing to delete {object:?}: it is not the object of artifact {uid:?} under .lamindb/"
        )));
    }
    let still = client
        .query_opt(
            "SELECT a.status FROM lamin.artifact a WHERE a.uid = $1",
            &[&uid],
        )
        .await
        .map_err(db)?;
    if let Some(row) = still {
        let status: String = row.get(0);
        return Err(Failure::Permanent(anyhow::anyhow!(
            "refusing to delete the object of artifact {uid}: the artifact exists ({status})"
        )));
    }
    let root = storage_root(client, arg_i64(&job.args, "storage_id")?).await?;
    let folder = job
        .args
        .get("folder")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let storage = Storage::open(&root).map_err(Failure::Permanent)?;
    let deleted = storage.delete(&object, folder).await.map_err(classify)?;
    Ok(json!({ "uri": storage.uri(&object), "deleted_objects": deleted }))
}

/// One top-level entry of a storage's .lamindb/ folder.
struct Leftover {
    name: String,
    folder: bool,
    modified: SystemTime,
}

/// The newest modification time under a local path.
fn newest_mtime(path: &Path) -> SystemTime {
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

async fn leftovers(storage: &Storage) -> anyhow::Result<Vec<Leftover>> {
    if storage.is_local() {
        let dir = PathBuf::from(&storage.root).join(".lamindb");
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
    for e in storage.list_folder(".lamindb").await? {
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

/// The artifact uid an object name under .lamindb/ belongs to ({uid}{suffix}).
fn uid_of(name: &str) -> Option<&str> {
    let uid = name.get(..20)?;
    let rest = &name[20..];
    (uid.bytes().all(|b| b.is_ascii_alphanumeric()) && (rest.is_empty() || rest.starts_with('.')))
        .then_some(uid)
}

/// sweep_storage: stale pending uploads are recovered (bytes complete and
/// matching) or failed and removed; objects under .lamindb/ that no artifact
/// owns, or whose artifact failed, are removed once older than the grace period.
pub async fn sweep_storage(ctx: &WorkerContext, job: &Job) -> Result<Value, Failure> {
    check_internal(ctx, job)?;
    let storage_id = arg_i64(&job.args, "storage_id")?;
    let grace_s = job
        .args
        .get("grace_s")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    // Its own connection: the row locks below need a transaction of their own.
    let mut conn = ctx.connect_as(job).await?;
    let root = storage_root(&conn, storage_id).await?;
    let storage = Storage::open(&root).map_err(Failure::Permanent)?;
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
        .map_err(db)?;
    for row in stale {
        let uid: String = row.get(0);
        let tx = conn.transaction().await.map_err(db)?;
        let Some(a) = tx
            .query_opt(
                "SELECT lamin.object_key(a), a.n_files IS NOT NULL, a.hash FROM lamin.artifact a
                 WHERE a.uid = $1 AND a.status = 'pending' AND a.updated_at < now() - make_interval(secs => $2)
                 FOR UPDATE SKIP LOCKED",
                &[&uid, &grace],
            )
            .await
            .map_err(db)?
        else {
            continue;
        };
        let (object, folder, hash): (String, bool, Option<String>) = (a.get(0), a.get(1), a.get(2));
        let found = storage
            .content(&object, Some(folder), &|_| {})
            .await
            .map_err(classify)?;
        if found.as_ref().map(|c| Some(&c.hash) == hash.as_ref()) == Some(true) {
            tx.execute("SELECT lamin.finish_upload($1, $2)", &[&uid, &hash])
                .await
                .map_err(db)?;
            recovered.push(uid);
        } else {
            storage.delete(&object, folder).await.map_err(classify)?;
            tx.execute(
                "SELECT lamin.fail_upload($1, $2)",
                &[
                    &uid,
                    &format!("abandoned: no complete upload within {grace_s} s"),
                ],
            )
            .await
            .map_err(db)?;
            failed.push(uid);
        }
        tx.commit().await.map_err(db)?;
    }

    let cutoff = SystemTime::now() - std::time::Duration::from_secs(grace_s.max(0) as u64);
    let entries: Vec<Leftover> = leftovers(&storage)
        .await
        .map_err(classify)?
        .into_iter()
        .filter(|e| e.modified <= cutoff)
        .collect();
    let uids: Vec<String> = entries
        .iter()
        .filter_map(|e| uid_of(&e.name).map(str::to_string))
        .collect();
    let known: HashMap<String, bool> = conn
        .query(
            "SELECT a.uid, a.status = 'failed' AND a.updated_at < now() - make_interval(secs => $2)
             FROM lamin.artifact a WHERE a.uid = ANY ($1)",
            &[&uids, &grace],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut removed = Vec::new();
    for e in entries {
        let object = format!(".lamindb/{}", e.name);
        match uid_of(&e.name) {
            // A temporary copy of a save that never finished, or bytes no artifact owns.
            None if e.name.starts_with(".lamin-save-") => {}
            None => continue,
            Some(uid) => match known.get(uid) {
                None => {}
                Some(false) => continue,
                Some(true) => {
                    // A failed artifact's leftover: removed under its row lock,
                    // so that a save retrying it meanwhile waits.
                    let tx = conn.transaction().await.map_err(db)?;
                    let still = tx
                        .query_opt(
                            "SELECT 1 FROM lamin.artifact a WHERE a.uid = $1 AND a.status = 'failed' FOR UPDATE",
                            &[&uid],
                        )
                        .await
                        .map_err(db)?;
                    if still.is_some() {
                        storage.delete(&object, e.folder).await.map_err(classify)?;
                        removed.push(object);
                    }
                    tx.commit().await.map_err(db)?;
                    continue;
                }
            },
        }
        if storage.is_local() {
            let path = Path::new(&root).join(&object);
            remove_path(&path);
        } else {
            storage.delete(&object, e.folder).await.map_err(classify)?;
        }
        removed.push(object);
    }
    Ok(json!({ "root": root, "recovered": recovered, "failed": failed, "removed": removed }))
}

#[cfg(test)]
mod tests {
    use super::{is_object_of, uid_of};

    #[test]
    fn only_the_uids_own_object_is_deleted() {
        let uid = "abcdefghij0123456789";
        assert!(is_object_of(".lamindb/abcdefghij0123456789.parquet", uid));
        assert!(is_object_of(".lamindb/abcdefghij0123456789", uid));
        assert!(!is_object_of(".lamindb/abcdefghij0123456789.zarr/x", uid));
        assert!(!is_object_of(".lamindb/zzzzzzzzzz0123456789.parquet", uid));
        assert!(!is_object_of(
            ".lamindb/abcdefghij0123456789/../../etc",
            uid
        ));
        assert!(!is_object_of(".lamindb", uid));
        assert!(!is_object_of("data/abcdefghij0123456789.parquet", uid));
    }

    #[test]
    fn object_names_give_their_uid() {
        assert_eq!(
            uid_of("abcdefghij0123456789.parquet"),
            Some("abcdefghij0123456789")
        );
        assert_eq!(uid_of("abcdefghij0123456789"), Some("abcdefghij0123456789"));
        assert_eq!(uid_of(".lamin-save-abc"), None);
        assert_eq!(uid_of("abcdefghij0123456789x"), None);
        assert_eq!(uid_of("short.txt"), None);
    }
}
