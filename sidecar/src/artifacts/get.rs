//! Getting an artifact's bytes to local disk (`lamin get`), checking their
//! sha256 against the registered one before anything is put in place.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lamin_core::uid::is_base62;
use tokio_postgres::Client;

use crate::error::DbError;
use crate::progress::Progress;
use crate::refused;
use crate::runs::reading_for_run;
use crate::storage::local::{hash_and_copy_file, remove_path};
use crate::storage::Storage;

/// Whether `text` has the shape of an artifact uid: 20 base62 characters,
/// or a 16-character stem (the latest version). Anything else is a key.
pub fn is_artifact_uid(text: &str) -> bool {
    is_base62(text, 20) || is_base62(text, 16)
}

/// The uid of an artifact given by uid, stem or key: a uid or stem stays as
/// it is (looked up by the caller's query); a key is the newest version
/// under that key that the caller can read (row-level security applies;
/// trashed versions are not found).
pub async fn resolve_artifact(client: &Client, uid_or_key: &str) -> anyhow::Result<String> {
    if is_artifact_uid(uid_or_key) {
        return Ok(uid_or_key.to_string());
    }
    client
        .query_opt(
            "SELECT a.uid FROM lamin.artifact a
             WHERE a.key = $1 AND a.branch_id <> -1
             ORDER BY a.is_latest DESC, a.id DESC LIMIT 1",
            &[&uid_or_key],
        )
        .await
        .map_err(DbError)?
        .map(|r| r.get(0))
        .ok_or_else(|| {
            let folder = uid_or_key
                .rsplit_once('/')
                .map(|(dir, _)| format!(" {dir}/"))
                .unwrap_or_default();
            refused!(
                "no artifact with key {uid_or_key:?} that you can read (a uid is 20 base62 characters, or 16 for the latest version); `lamin ls{folder}` lists keys"
            )
        })
}

/// Where a get writes: `to` as given, or — when it is a folder (ends with
/// `/` or is an existing folder) or not given — the key's file name (else
/// uid + suffix) in that folder.
pub fn destination(to: Option<&Path>, key: Option<&str>, uid: &str, suffix: &str) -> PathBuf {
    let name = || {
        key.and_then(|k| Path::new(k.trim_end_matches('/')).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{uid}{suffix}"))
    };
    match to {
        None => PathBuf::from(name()),
        Some(to) if to.as_os_str().to_string_lossy().ends_with('/') || to.is_dir() => {
            to.join(name())
        }
        Some(to) => to.to_path_buf(),
    }
}

/// Which artifact, where to write it, and the run that reads it.
#[derive(Debug, Clone, Default)]
pub struct GetRequest {
    /// Artifact uid (20 characters), stem (16: the latest version) or key
    /// (the latest version under it).
    pub uid: String,
    /// Where to write (None: the key's file name, else uid + suffix, in the
    /// current folder; a folder — ending with `/` or existing —: that name in it).
    pub to: Option<PathBuf>,
    /// The run (uid) that reads the artifact: recorded as one of its inputs.
    pub run: Option<String>,
}

/// Copy an artifact's file or folder to local disk; returns where it went.
/// `client` reads the artifact's record (a hot standby will do); `recorder`
/// records it as an input of the run, which needs the primary (the same
/// connection when there is no standby).
pub async fn get(
    client: &Client,
    recorder: &Client,
    request: &GetRequest,
    progress: &dyn Progress,
) -> anyhow::Result<PathBuf> {
    reading_for_run(recorder, request.run.as_deref()).await?;
    let wanted = resolve_artifact(client, &request.uid).await?;
    let row = client
        .query_one(
            "SELECT a.uid, a.key, a.suffix, a.hash, a.status, a.size, s.root, lamin.object_key(a),
                    a.n_files IS NOT NULL, a.status_detail
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
             WHERE a.id = lamin.artifact_id($1)",
            &[&wanted],
        )
        .await
        .map_err(DbError)?;
    let uid: String = row.get(0);
    let key: Option<String> = row.get(1);
    let suffix: String = row.get(2);
    let hash: Option<String> = row.get(3);
    let status: String = row.get(4);
    let size: Option<i64> = row.get(5);
    let root: String = row.get(6);
    let object: String = row.get(7);
    let folder: bool = row.get(8);
    let detail: Option<String> = row.get(9);
    if status != "ready" {
        return Err(refused!(
            "artifact {uid} is {status}{}: its bytes are not (yet) verified in storage",
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        ));
    }
    let dest = destination(request.to.as_deref(), key.as_deref(), &uid, &suffix);
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let storage = Storage::open(&root)?;
    progress.start("getting", size.unwrap_or(0) as u64);
    match storage.local_path(&object).filter(|_| !folder) {
        // Local disk: a kernel copy with the hash computed beside it.
        Some(source) => {
            if !source.is_file() {
                return Err(refused!(
                    "artifact {uid}: its object {} is missing",
                    source.display()
                ));
            }
            let dir = dest
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            let got = tokio::task::block_in_place(|| {
                hash_and_copy_file(&source, tmp.as_file_mut(), false, progress)
            })?
            .0;
            progress.finish();
            check_hash(&uid, &got, hash.as_deref())?;
            tmp.persist(&dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        None => {
            if folder && dest.exists() {
                return Err(refused!(
                    "{} exists: lamin get does not overwrite folders",
                    dest.display()
                ));
            }
            // Downloaded beside `dest` (a name of this process), checked, then put in place.
            let staging = dest.with_file_name(format!(
                ".lamin-get-{}-{}",
                std::process::id(),
                dest.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            let got = storage
                .download(&object, folder, &staging, progress)
                .await
                .with_context(|| format!("artifact {uid}: cannot read its object in {root}"))?;
            progress.finish();
            let checked = check_hash(&uid, &got.hash, hash.as_deref());
            let placed = checked.and_then(|_| {
                std::fs::rename(&staging, &dest)
                    .with_context(|| format!("cannot write {}", dest.display()))
            });
            if placed.is_err() {
                remove_path(&staging);
            }
            placed?;
        }
    }
    // lamin.get records the artifact as an input of the current run, if any.
    if request.run.is_some() {
        recorder
            .query_one("SELECT (lamin.get($1)).uid", &[&uid])
            .await
            .map_err(DbError)
            .context("the file was written, but recording it as an input of the run failed")?;
    }
    Ok(dest)
}

fn check_hash(uid: &str, got: &str, registered: Option<&str>) -> anyhow::Result<()> {
    if Some(got) != registered {
        return Err(refused!(
            "artifact {uid}: the stored bytes have sha256 {got}, not the registered {} — not written",
            registered.unwrap_or("?")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_and_keys_are_told_apart_by_shape() {
        assert!(is_artifact_uid("abcdEFGH01234567wxyz"));
        assert!(is_artifact_uid("abcdEFGH01234567"));
        assert!(!is_artifact_uid("raw/cells.parquet"));
        assert!(!is_artifact_uid("cells.parquet"));
        assert!(!is_artifact_uid("abcdEFGH0123456"));
    }

    #[test]
    fn a_folder_destination_gets_the_key_s_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = Some("raw/cells.parquet");
        let uid = "abcdEFGH01234567wxyz";
        assert_eq!(
            destination(None, key, uid, ".parquet"),
            PathBuf::from("cells.parquet")
        );
        assert_eq!(
            destination(Some(d), key, uid, ".parquet"),
            d.join("cells.parquet")
        );
        let slash = PathBuf::from(format!("{}/new/", d.display()));
        assert_eq!(
            destination(Some(&slash), key, uid, ".parquet"),
            d.join("new").join("cells.parquet")
        );
        assert_eq!(
            destination(Some(d), None, uid, ".parquet"),
            d.join(format!("{uid}.parquet"))
        );
        let file = d.join("x.parquet");
        assert_eq!(destination(Some(&file), key, uid, ".parquet"), file);
    }
}
