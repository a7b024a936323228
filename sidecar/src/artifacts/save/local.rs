//! Saving to a local storage in one pass: copy beside the object's place
//! while hashing, register, then rename into place.

use std::path::PathBuf;

use anyhow::Context;
use lamin_core::content::{folder_content, Content, FileHash};
use lamin_core::object::{object_key, OBJECT_DIR};

use super::{Saved, Source, Upload};
use crate::progress::Progress;
use crate::storage::local::hash_and_copy_file;
use crate::storage::Storage;

/// Local storage in one pass: copy into a temporary file (or folder) next to
/// the object's place while hashing, then register; known content drops the
/// copy, new content is renamed into place (atomic) before it is marked ready.
/// Copies are flushed to disk before the rename.
pub(super) async fn save_local(
    upload: &Upload<'_>,
    storage: &Storage,
    source: &Source,
    total: u64,
    progress: &dyn Progress,
) -> anyhow::Result<(String, Saved, Option<String>)> {
    let root = &storage.root;
    let dir = storage.local_path(OBJECT_DIR).expect("a local storage");
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "storage {root} is not usable: cannot create {}",
            dir.display()
        )
    })?;
    let unusable = || {
        format!(
            "storage {root} is not usable: cannot write in {}",
            dir.display()
        )
    };
    progress.start("saving", total);
    match source {
        Source::File(file) => {
            let mut tmp = tempfile::Builder::new()
                .prefix(".lamin-save-")
                .tempfile_in(&dir)
                .with_context(unusable)?;
            let (hash, size) = tokio::task::block_in_place(|| {
                hash_and_copy_file(file, tmp.as_file_mut(), true, progress)
            })?;
            progress.finish();
            // Known content: the temporary copy is removed when dropped.
            let content = Content {
                hash,
                size,
                n_files: None,
            };
            let (uid, stored_suffix, target) = match upload.begin_local(&content, storage).await? {
                Ok(claimed) => claimed,
                Err(done) => return Ok(done),
            };
            let written = tmp.persist(&target).map(|_| content.hash).map_err(|e| {
                anyhow::Error::new(e.error)
                    .context(format!("cannot move the copy to {}", target.display()))
            });
            upload.finish(&uid, written).await?;
            Ok((uid, Saved::Uploaded, Some(stored_suffix)))
        }
        Source::Folder(files) => {
            let tmp = tempfile::Builder::new()
                .prefix(".lamin-save-")
                .tempdir_in(&dir)
                .with_context(unusable)?;
            let content = tokio::task::block_in_place(|| -> anyhow::Result<Content> {
                let mut hashes = Vec::with_capacity(files.len());
                for (relative, full) in files {
                    let target = tmp.path().join(relative);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut out = std::fs::File::create(&target)
                        .with_context(|| format!("cannot write {}", target.display()))?;
                    let (sha256, size) = hash_and_copy_file(full, &mut out, true, progress)?;
                    hashes.push(FileHash {
                        path: relative.clone(),
                        sha256,
                        size,
                    });
                }
                Ok(folder_content(&mut hashes))
            })?;
            progress.finish();
            let (uid, stored_suffix, target) = match upload.begin_local(&content, storage).await? {
                Ok(claimed) => claimed,
                Err(done) => return Ok(done),
            };
            // A failed earlier attempt may have left its copy: ours to replace.
            let _ = std::fs::remove_dir_all(&target);
            let kept = tmp.keep();
            let written = std::fs::rename(&kept, &target)
                .map(|_| content.hash)
                .map_err(|e| {
                    let _ = std::fs::remove_dir_all(&kept);
                    anyhow::Error::new(e)
                        .context(format!("cannot move the copy to {}", target.display()))
                });
            upload.finish(&uid, written).await?;
            Ok((uid, Saved::Uploaded, Some(stored_suffix)))
        }
    }
}

impl Upload<'_> {
    /// `begin` on a local storage: the uid, suffix and local path to write
    /// the object to, or how the save is already done.
    pub(super) async fn begin_local(
        &self,
        content: &Content,
        storage: &Storage,
    ) -> anyhow::Result<Result<(String, String, PathBuf), (String, Saved, Option<String>)>> {
        let (uid, begun) = self.begin(content).await?;
        Ok(match begun {
            Ok(suffix) => {
                let target = storage
                    .local_path(&object_key(&uid, &suffix))
                    .expect("a local storage");
                Ok((uid, suffix, target))
            }
            Err(how) => Err((uid, how, None)),
        })
    }
}
