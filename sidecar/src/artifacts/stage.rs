//! stage: a copy of a remote artifact in the sidecar's cache (reused while
//! its hash matches); a local storage's object is its own local copy.

use std::path::PathBuf;

use serde::Serialize;
use tokio_postgres::Client;

use super::{locate, problem, record_check};
use crate::progress::Progress;
use crate::refused;
use crate::storage::local::{cache_path, hash_local, remove_path};
use crate::storage::Storage;

/// Which artifact to stage, and the cache folder (None: remote artifacts cannot be staged).
#[derive(Debug, Clone)]
pub struct StageRequest {
    pub uid: String,
    pub cache_dir: Option<PathBuf>,
}

/// Where the local copy is.
#[derive(Debug, Serialize)]
pub struct Staged {
    pub uid: String,
    pub path: PathBuf,
    pub copied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// stage: copy a remote artifact into the cache (reused when its hash
/// matches); a local storage's object is its own local copy.
pub async fn stage(
    client: &Client,
    request: &StageRequest,
    progress: &dyn Progress,
) -> anyhow::Result<Staged> {
    let a = locate(client, &request.uid).await?;
    if a.status != "ready" {
        return Err(refused!(
            "artifact {} is {}: only ready artifacts can be staged",
            a.uid,
            a.status
        ));
    }
    let storage = Storage::open(&a.root)?;
    if let Some(path) = storage.local_path(&a.object) {
        if !path.exists() {
            let problem = format!("object missing at {}", path.display());
            record_check(client, &a.uid, &Some(problem.clone())).await?;
            return Err(refused!("artifact {} is corrupt: {problem}", a.uid));
        }
        return Ok(Staged {
            uid: a.uid,
            path,
            copied: false,
            bytes: None,
            note: Some("local storage: the object itself is the local copy"),
        });
    }
    let cache = request.cache_dir.as_ref().ok_or_else(|| {
        refused!("this sidecar has no cache folder: start it with --cache-dir (or LAMIN_CACHE_DIR)")
    })?;
    let dest = cache_path(cache, &a.root, &a.object)?;
    let cached = {
        let d = dest.clone();
        tokio::task::spawn_blocking(move || hash_local(&d, &crate::progress::Silent).ok())
            .await
            .ok()
            .flatten()
    };
    if let Some(c) = cached.filter(|c| Some(c.hash.as_str()) == a.hash.as_deref()) {
        return Ok(Staged {
            uid: a.uid,
            path: dest,
            copied: false,
            bytes: Some(c.size),
            note: None,
        });
    }
    // A stale or damaged copy is replaced.
    remove_path(&dest);
    let uri = storage.uri(&a.object);
    let got = storage.download(&a.object, a.folder, &dest, progress).await;
    let got = match got {
        Ok(c) => Some(c),
        Err(e) if crate::error::is_not_found(&e) => None,
        Err(e) => return Err(e.context(format!("cannot copy {uri}"))),
    };
    if let Some(p) = problem(&uri, &got, a.hash.as_deref()) {
        remove_path(&dest);
        record_check(client, &a.uid, &Some(p.clone())).await?;
        return Err(refused!("artifact {} is corrupt: {p}", a.uid));
    }
    Ok(Staged {
        uid: a.uid,
        path: dest,
        copied: true,
        bytes: Some(got.map(|c| c.size).unwrap_or(0)),
        note: None,
    })
}
