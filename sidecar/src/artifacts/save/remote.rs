//! Saving to a remote storage (S3, GCS, Azure) in two passes: the content
//! hash decides whether anything needs uploading; then upload while hashing
//! again, and only matching hashes make the artifact ready.

use anyhow::Context;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::{StreamExt, TryStreamExt};
use lamin_core::content::{folder_content, Content, FileHash};
use lamin_core::object::object_key;
use tokio_postgres::Client;

use super::{Saved, Source, Upload};
use crate::progress::Progress;
use crate::refused;
use crate::storage::local::{hash_file, hash_files};
use crate::storage::transfer::upload_file;
use crate::storage::Storage;

/// Files of a folder uploaded at once: memory stays under 4 × 4 parts.
const FOLDER_UPLOADS_IN_FLIGHT: usize = 4;

/// Tells the database, at most once a minute, that a pending upload is
/// alive, so that it is not taken for abandoned (lamin.touch_upload).
struct Keepalive<'a> {
    client: &'a Client,
    uid: &'a str,
    last: std::sync::Mutex<std::time::Instant>,
}

impl Keepalive<'_> {
    async fn tick(&self) {
        let due = {
            let mut last = self.last.lock().expect("keepalive clock");
            let due = last.elapsed() >= std::time::Duration::from_secs(60);
            if due {
                *last = std::time::Instant::now();
            }
            due
        };
        if due {
            let _ = self
                .client
                .execute("SELECT lamin.touch_upload($1)", &[&self.uid])
                .await;
        }
    }
}

/// Remote storage in two passes: the content hash decides whether anything
/// needs uploading; then upload while hashing again.
pub(super) async fn save_remote(
    upload: &Upload<'_>,
    storage: &Storage,
    source: &Source,
    total: u64,
    progress: &dyn Progress,
) -> anyhow::Result<(String, Saved, Option<String>)> {
    progress.start("hashing", total);
    let content = tokio::task::block_in_place(|| match source {
        Source::File(p) => hash_file(p, progress).map(|(hash, size)| Content {
            hash,
            size,
            n_files: None,
        }),
        Source::Folder(files) => hash_files(files, progress),
    })?;
    progress.finish();
    // The storage must answer before anything is registered.
    storage
        .check_reachable()
        .await
        .context("nothing was saved")?;
    let (uid, begun) = upload.begin(&content).await?;
    let stored_suffix = match begun {
        Ok(suffix) => suffix,
        Err(how) => return Ok((uid, how, None)),
    };
    let name = object_key(&uid, &stored_suffix);
    progress.start("saving", content.size);
    let alive = Keepalive {
        client: upload.client,
        uid: &uid,
        last: std::sync::Mutex::new(std::time::Instant::now()),
    };
    let tick = || alive.tick();
    let uploaded = match source {
        Source::File(p) => upload_file(storage.store(), &storage.path(&name), p, progress, tick)
            .await
            .map(|(sha256, _)| sha256),
        Source::Folder(files) => {
            // A few files at a time (each with its own parts in flight):
            // many small files are bound by request latency.
            let (name, alive) = (&name, &alive);
            // Boxed futures: a closure returning futures that borrow would
            // not be Send for every lifetime, which a spawned job (export) needs.
            let uploads: Vec<BoxFuture<'_, anyhow::Result<FileHash>>> = files
                .iter()
                .map(|(relative, full)| {
                    async move {
                        let object = storage.path(&format!("{name}/{relative}"));
                        let (sha256, size) =
                            upload_file(storage.store(), &object, full, progress, || alive.tick())
                                .await?;
                        alive.tick().await;
                        Ok(FileHash {
                            path: relative.clone(),
                            sha256,
                            size,
                        })
                    }
                    .boxed()
                })
                .collect();
            futures_util::stream::iter(uploads)
                .buffered(FOLDER_UPLOADS_IN_FLIGHT)
                .try_collect::<Vec<_>>()
                .await
                .map(|mut hashes| folder_content(&mut hashes).hash)
        }
    };
    progress.finish();
    let outcome = match uploaded {
        Ok(again) if again == content.hash => Ok(again),
        Ok(again) => Err(refused!(
            "{} changed while it was being saved (sha256 {} then {again})",
            upload.request.path.display(),
            content.hash
        )),
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        let _ = storage.delete(&name, source.n_files().is_some()).await;
    }
    upload.finish(&uid, outcome).await?;
    Ok((uid, Saved::Uploaded, Some(stored_suffix)))
}
