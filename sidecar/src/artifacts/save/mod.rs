//! Saving a local file or folder as an artifact (`lamin save`, and the
//! parquet file of `lamin.export`), with the full-content sha256 checked.
//!
//! Save: hash the content (pass 1) → lamin.begin_upload registers it by
//! content (known content: nothing is uploaded) → upload to
//! {root}/.lamindb/{uid}{suffix} (a folder: its files under that prefix),
//! hashing again (pass 2; bounded memory) → lamin.finish_upload marks it ready
//! only if both hashes agree. A file appears under its name only when
//! complete (S3 multipart completion, a rename on local disk), and a crash
//! leaves the artifact 'pending', never 'ready' without bytes; the storage
//! sweep (lamin.sweep_storage) recovers or fails what an interrupted save left.
//! Local storage takes one pass: copy beside the object's place while
//! hashing, then rename into place.
//!
//! Credentials come from the environment only (see `storage`).

mod local;
mod remote;

use std::path::{Path, PathBuf};

use anyhow::Context;
use lamin_core::content::Content;
use serde_json::Value;
use tokio_postgres::Client;

use super::describe::{describe_and_record, take_warning};
use crate::error::DbError;
use crate::formats::{is_described_suffix, is_store_suffix};
use crate::progress::Progress;
use crate::refused;
use crate::storage::local::local_folder_files;
use crate::storage::Storage;
use local::save_local;
use remote::save_remote;

/// What to save, and where it goes.
#[derive(Debug, Clone, Default)]
pub struct SaveRequest {
    /// The local file or folder.
    pub path: PathBuf,
    /// Key (path within the storage); a key that names an artifact makes a new version of it.
    pub key: Option<String>,
    pub description: Option<String>,
    /// Storage root or uid (None: the default storage).
    pub storage: Option<String>,
    /// The run (uid) that creates the artifact.
    pub run: Option<String>,
    /// The space (name or uid) the artifact goes to.
    pub space: Option<String>,
    /// The artifact (uid) this one is a new version of (a key already
    /// naming an artifact does the same).
    pub revises: Option<String>,
}

/// How a save ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// The bytes were written and the artifact is ready.
    Uploaded,
    /// The same content is already stored: nothing was written.
    Known,
    /// The same content is being uploaded by another save; the artifact is
    /// pending until that one finishes.
    PendingElsewhere,
}

/// The artifact a save made or found.
#[derive(Debug, Clone)]
pub struct SaveOutcome {
    pub uid: String,
    pub saved: Saved,
    /// Rows and columns recorded for a table or AnnData.
    pub table: Option<Value>,
    /// Why a file whose suffix names a table stays plain bytes.
    pub warning: Option<String>,
    /// Known content: the record that came back (its key and space), and
    /// that a different key given was not recorded, as a sentence.
    pub note: Option<String>,
}

impl SaveOutcome {
    /// Columns whose features exist with another dtype (left as they are):
    /// tables report them at the top, AnnData and MuData per slot.
    pub fn conflicts(&self) -> Vec<Value> {
        self.table
            .as_ref()
            .map(conflicts_by_slot)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }
}

/// The dtype conflicts a description of a file reports, with their slot:
/// "" for a table's columns; `obs`, `var`, `rna:obs`, … for AnnData and MuData.
pub fn conflicts_by_slot(table: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut add = |slot: &str, part: &Value| {
        let found = part.get("conflicts").and_then(|c| c.as_array());
        for c in found.into_iter().flatten() {
            out.push((slot.to_string(), c.clone()));
        }
    };
    add("", table);
    for (slot, part) in table.as_object().into_iter().flatten() {
        if part.is_object() {
            add(slot, part);
        }
    }
    out
}

/// What was given: one file, or a folder's files (relative path with `/`,
/// full path), sorted.
pub(super) enum Source {
    File(PathBuf),
    Folder(Vec<(String, PathBuf)>),
}

impl Source {
    pub(super) fn n_files(&self) -> Option<i64> {
        match self {
            Source::File(_) => None,
            Source::Folder(files) => Some(files.len() as i64),
        }
    }
}

/// Save a file or folder as an artifact, on `client` (whose role's rights
/// apply): the session's current run and space are set from the request.
pub async fn save(
    client: &Client,
    request: &SaveRequest,
    progress: &dyn Progress,
) -> anyhow::Result<SaveOutcome> {
    let path = &request.path;
    check_request(request)?;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let source = if meta.is_dir() {
        Source::Folder(local_folder_files(path)?)
    } else {
        // Unreadable files fail here, before anything is registered.
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Source::File(path.clone())
    };
    let total: u64 = match &source {
        Source::File(_) => meta.len(),
        Source::Folder(files) => files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum(),
    };
    crate::runs::use_run(client, request.run.as_deref()).await?;
    if let Some(space) = &request.space {
        client
            .query_one("SELECT lamin.use_space($1)", &[space])
            .await
            .map_err(DbError)
            .context("nothing was saved")?;
    }
    let root: String = client
        .query_one(
            "SELECT s.root FROM lamin.storage s WHERE s.id = lamin.storage_id($1)",
            &[&request.storage],
        )
        .await
        .map_err(DbError)
        .context("nothing was saved")?
        .get(0);
    // The suffix rule the database uses too: from the key, else the file name.
    let named = request
        .key
        .clone()
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let suffix = Some(lamin_core::key::suffix_from_key(&named)).filter(|s| !s.is_empty());
    let storage = Storage::open(&root)?;
    let upload = Upload {
        client,
        request,
        suffix,
        n_files: source.n_files(),
    };
    let (uid, saved, stored_suffix) = if storage.is_local() {
        save_local(&upload, &storage, &source, total, progress).await?
    } else {
        save_remote(&upload, &storage, &source, total, progress).await?
    };
    let note = match saved {
        Saved::Uploaded => None,
        Saved::Known | Saved::PendingElsewhere => {
            Some(known_content_note(client, &uid, &saved, request.key.as_deref()).await?)
        }
    };
    let mut outcome = SaveOutcome {
        uid,
        saved,
        table: None,
        warning: None,
        note,
    };
    if let Some(suffix) = stored_suffix {
        describe(client, &mut outcome, &suffix, &source).await;
    }
    Ok(outcome)
}

/// The sentence for content that was already saved: which record came back
/// (key and space, both readable by the caller: de-duplication only finds
/// what they can read), and that the key given was not recorded.
async fn known_content_note(
    client: &Client,
    uid: &str,
    saved: &Saved,
    key: Option<&str>,
) -> anyhow::Result<String> {
    let row = client
        .query_one(
            "SELECT a.key, sp.name FROM lamin.artifact a JOIN lamin.space sp ON sp.id = a.space_id WHERE a.uid = $1",
            &[&uid],
        )
        .await
        .map_err(DbError)?;
    let (old_key, space): (Option<String>, String) = (row.get(0), row.get(1));
    let mut note = format!(
        "same content already saved as artifact {uid} ({}, space {space:?}): {}",
        old_key
            .as_deref()
            .map_or("no key".to_string(), |k| format!("key {k:?}")),
        if *saved == Saved::PendingElsewhere {
            "another save is uploading it; nothing uploaded here"
        } else {
            "nothing uploaded"
        }
    );
    if let Some(k) = key.filter(|k| Some(*k) != old_key.as_deref()) {
        note.push_str(&format!(
            "; the key {k:?} is not recorded (the record keeps its key)"
        ));
    }
    Ok(note)
}

/// Refuse a request that can never be saved (a bad key) before anything is
/// read, registered or sent.
pub fn check_request(request: &SaveRequest) -> anyhow::Result<()> {
    if let Some(key) = &request.key {
        lamin_core::key::validate_key(key)
            .map_err(|e| refused!("invalid key {key:?}: {e}; nothing was saved"))?;
    }
    Ok(())
}

/// What every way of saving needs to register the content.
pub(super) struct Upload<'a> {
    pub(super) client: &'a Client,
    pub(super) request: &'a SaveRequest,
    suffix: Option<String>,
    n_files: Option<i64>,
}

impl Upload<'_> {
    /// lamin.begin_upload: the artifact's uid, with the suffix the database
    /// recorded when the bytes are ours to write (the object's name is
    /// {uid}{suffix}), or how the content is already there.
    pub(super) async fn begin(
        &self,
        content: &Content,
    ) -> anyhow::Result<(String, Result<String, Saved>)> {
        let r = self.request;
        let row = self
            .client
            .query_one(
                "SELECT uid, upload, status, path FROM lamin.begin_upload($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &content.hash,
                    &(content.size as i64),
                    &r.key,
                    &self.suffix,
                    &r.description,
                    &r.storage,
                    &self.n_files,
                    &r.revises,
                ],
            )
            .await
            .map_err(DbError)
            .context("nothing was saved")?;
        let uid: String = row.get(0);
        if row.get::<_, bool>(1) {
            // The path ends with {uid}{suffix}, the suffix as the database recorded it.
            let path: String = row.get(3);
            let suffix = path
                .rsplit_once(uid.as_str())
                .map(|(_, s)| s.to_string())
                .unwrap_or_default();
            return Ok((uid, Ok(suffix)));
        }
        let how = if row.get::<_, String>(2) == "pending" {
            Saved::PendingElsewhere
        } else {
            Saved::Known
        };
        Ok((uid, Err(how)))
    }

    /// The end of an upload: the bytes with hash `written` are in place
    /// (ready), or writing them failed (the artifact is marked failed;
    /// saving again retries).
    pub(super) async fn finish(
        &self,
        uid: &str,
        written: anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        match written {
            Ok(hash) => {
                self.client
                    .query_one("SELECT lamin.finish_upload($1, $2)", &[&uid, &hash])
                    .await
                    .map_err(DbError)
                    .context("marking the artifact ready failed (it stays pending)")?;
                Ok(())
            }
            Err(e) => {
                let msg = format!("{e:#}");
                let _ = self
                    .client
                    .execute("SELECT lamin.fail_upload($1, $2)", &[&uid, &msg])
                    .await;
                Err(e.context(format!(
                    "artifact {uid} is marked failed; saving it again retries"
                )))
            }
        }
    }
}

/// A saved table, AnnData or MuData: record its rows and columns (features,
/// schemas); a generic HDF5 file: its layout.
/// A file that cannot be read as its suffix says stays saved as plain bytes,
/// with a warning.
async fn describe(client: &Client, outcome: &mut SaveOutcome, suffix: &str, source: &Source) {
    if !is_described_suffix(suffix) {
        return;
    }
    // Files by suffix; a folder only as a store (zarr, TileDB-SOMA).
    let path: PathBuf = match source {
        Source::File(path) => path.clone(),
        Source::Folder(files) if is_store_suffix(suffix) => match files.first() {
            Some((relative, full)) => {
                let depth = relative.split('/').count();
                full.ancestors()
                    .nth(depth)
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            }
            None => return,
        },
        Source::Folder(_) => return,
    };
    match describe_and_record(client, &outcome.uid, &path, suffix).await {
        Ok(mut table) => {
            outcome.warning = take_warning(&mut table);
            outcome.table = Some(table);
        }
        Err(e) => outcome.warning = Some(format!("{e:#}")),
    }
}
