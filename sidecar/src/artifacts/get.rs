//! Getting an artifact's bytes to local disk (`lamin get`), checking their
//! sha256 against the registered one before anything is put in place.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_postgres::Client;

use super::save::use_run;
use crate::error::DbError;
use crate::progress::Progress;
use crate::refused;
use crate::storage::local::{hash_and_copy_file, remove_path};
use crate::storage::Storage;

/// Which artifact, where to write it, and the run that reads it.
#[derive(Debug, Clone, Default)]
pub struct GetRequest {
    /// Artifact uid (20 characters) or stem (16: the latest version).
    pub uid: String,
    /// Where to write (None: the key's file name, else uid + suffix, in the current folder).
    pub to: Option<PathBuf>,
    /// The run (uid) that reads the artifact: recorded as one of its inputs.
    pub run: Option<String>,
}

/// Copy an artifact's file or folder to local disk; returns where it went.
pub async fn get(
    client: &Client,
    request: &GetRequest,
    progress: &dyn Progress,
) -> anyhow::Result<PathBuf> {
    use_run(client, &request.run).await?;
    let row = client
        .query_one(
            "SELECT a.uid, a.key, a.suffix, a.hash, a.status, a.size, s.root, lamin.object_key(a),
                    a.n_files IS NOT NULL, a.status_detail
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
             WHERE a.id = lamin.artifact_id($1)",
            &[&request.uid],
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
    let dest = request.to.clone().unwrap_or_else(|| {
        let name = key
            .as_deref()
            .and_then(|k| Path::new(k).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{uid}{suffix}"));
        PathBuf::from(name)
    });
    let dest = if dest.is_dir() && !folder {
        dest.join(format!("{uid}{suffix}"))
    } else {
        dest
    };
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
        client
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
