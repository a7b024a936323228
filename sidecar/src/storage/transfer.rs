//! Streaming an artifact's bytes: hashing what a storage holds, copying it
//! to local disk, and uploading local files, every byte through one sha256
//! stream (`lamin_core::content`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::{StreamExt, TryStreamExt};
use lamin_core::content::{folder_content, Content, FileHash, Sha256Stream, HASH_CHUNK};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};

use super::local::remove_path;
use super::{Entry, Storage};
use crate::progress::Progress;

/// How many files of a folder are read or written at once.
pub const FILES_IN_FLIGHT: usize = 8;
/// Multipart part size and how many parts may be in flight: bounded memory.
pub const UPLOAD_PART: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 4;

impl Storage {
    /// sha256 and size of one object, streamed.
    pub async fn hash_object(
        &self,
        location: &ObjectPath,
        progress: &dyn Progress,
    ) -> anyhow::Result<(String, u64)> {
        let mut stream = self.store.get(location).await?.into_stream();
        let mut hash = Sha256Stream::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hash.update(&chunk);
            progress.add(chunk.len() as u64);
        }
        Ok(hash.finish())
    }

    /// The content of `key` read back in full, or None when nothing is there.
    /// `folder`: what the caller expects (None: find out).
    pub async fn content(
        &self,
        key: &str,
        folder: Option<bool>,
        progress: &dyn Progress,
    ) -> anyhow::Result<Option<Content>> {
        let folder = match folder {
            Some(f) => f,
            None => match self.shape(key).await? {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        if !folder {
            return match self.hash_object(&self.path(key), progress).await {
                Ok((hash, size)) => Ok(Some(Content {
                    hash,
                    size,
                    n_files: None,
                })),
                Err(e) if crate::error::is_not_found(&e) => Ok(None),
                Err(e) => Err(e.context(format!("cannot read {}", self.uri(key)))),
            };
        }
        let entries = self.list_folder(key).await?;
        if entries.is_empty() {
            return Ok(None);
        }
        // Several objects at once: folders of many small objects (zarr
        // chunks) are bound by request latency, not bandwidth.
        let jobs: Vec<BoxFuture<'_, anyhow::Result<(String, u64)>>> = entries
            .iter()
            .map(|e| {
                async move {
                    self.hash_object(&e.meta.location, progress)
                        .await
                        .with_context(|| format!("cannot read {}", e.meta.location))
                }
                .boxed()
            })
            .collect();
        let hashed: Vec<(String, u64)> = futures_util::stream::iter(jobs)
            .buffered(FILES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(Some(entries_content(&entries, hashed)))
    }

    /// Run `read` on the object's local path: the object itself on a local
    /// storage, else a temporary copy (removed afterwards). For readers that
    /// need a whole local file (CSV, HDF5, a zarr folder).
    pub async fn with_local_copy<T>(
        &self,
        key: &str,
        folder: bool,
        read: impl FnOnce(&Path) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if let Some(path) = self.local_path(key) {
            return read(&path);
        }
        let dir = tempfile::tempdir()?;
        let name = key.rsplit('/').next().unwrap_or("object");
        let copy: PathBuf = dir.path().join(name);
        self.download(key, folder, &copy, &crate::progress::Silent)
            .await
            .with_context(|| format!("cannot read {}", self.uri(key)))?;
        read(&copy)
    }

    /// Copy `key` to the local path `dest` (a file, or a folder for folder
    /// artifacts), hashing on the way. The bytes go to `{dest}.partial`
    /// first and are renamed to `dest` once complete, so nothing is at
    /// `dest` unless the copy is whole; a copy interrupted by a crash is
    /// replaced by the next attempt rather than left behind.
    pub async fn download(
        &self,
        key: &str,
        folder: bool,
        dest: &Path,
        progress: &dyn Progress,
    ) -> anyhow::Result<Content> {
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        remove_path(&partial);
        let copied = self.download_to(key, folder, &partial, progress).await;
        let placed = copied.and_then(|content| {
            if folder {
                remove_path(dest);
            }
            std::fs::rename(&partial, dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
            Ok(content)
        });
        if placed.is_err() {
            remove_path(&partial);
        }
        placed
    }

    async fn download_to(
        &self,
        key: &str,
        folder: bool,
        target: &Path,
        progress: &dyn Progress,
    ) -> anyhow::Result<Content> {
        if !folder {
            let mut out = std::fs::File::create(target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            let (hash, size) = self.fetch(&self.path(key), &mut out, progress).await?;
            return Ok(Content {
                hash,
                size,
                n_files: None,
            });
        }
        let entries = self.list_folder(key).await?;
        if entries.is_empty() {
            return Err(anyhow::Error::new(object_store::Error::NotFound {
                path: self.uri(key),
                source: "the folder holds no files".into(),
            }));
        }
        let jobs: Vec<BoxFuture<'_, anyhow::Result<(String, u64)>>> = entries
            .iter()
            .map(|e| {
                async move {
                    let file = target.join(&e.relative);
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                    let mut out = std::fs::File::create(&file)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                    self.fetch(&e.meta.location, &mut out, progress).await
                }
                .boxed()
            })
            .collect();
        let fetched: Vec<(String, u64)> = futures_util::stream::iter(jobs)
            .buffered(FILES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(entries_content(&entries, fetched))
    }

    /// Stream one object into `out` while hashing it.
    async fn fetch(
        &self,
        location: &ObjectPath,
        out: &mut std::fs::File,
        progress: &dyn Progress,
    ) -> anyhow::Result<(String, u64)> {
        let mut stream = self
            .store
            .get(location)
            .await
            .with_context(|| format!("cannot read {location} in {}", self.root))?
            .into_stream();
        let mut hash = Sha256Stream::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading {location} failed"))?;
            hash.update(&chunk);
            tokio::task::block_in_place(|| out.write_all(&chunk)).context("writing failed")?;
            progress.add(chunk.len() as u64);
        }
        tokio::task::block_in_place(|| out.sync_all()).context("flushing failed")?;
        Ok(hash.finish())
    }
}

/// A folder's content from its entries and their (sha256, size), in order.
fn entries_content(entries: &[Entry], hashed: Vec<(String, u64)>) -> Content {
    let mut files: Vec<FileHash> = entries
        .iter()
        .zip(hashed)
        .map(|(e, (sha256, size))| FileHash {
            path: e.relative.clone(),
            sha256,
            size,
        })
        .collect();
    folder_content(&mut files)
}

/// Upload a local file as one object while hashing it; returns the sha256
/// and size of the bytes sent.
/// Large files go up in parts (bounded memory), small ones in one request.
/// `tick` runs after each part (a keep-alive for the upload's record).
pub async fn upload_file<F, Fut>(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    file: &Path,
    progress: &dyn Progress,
    tick: F,
) -> anyhow::Result<(String, u64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use tokio::io::AsyncReadExt;
    let mut input = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let len = input.metadata().await?.len();
    if len < UPLOAD_PART as u64 {
        let mut bytes = Vec::with_capacity(len as usize);
        input
            .read_to_end(&mut bytes)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
        let sent = (lamin_core::content::sha256_hex(&bytes), bytes.len() as u64);
        progress.add(sent.1);
        store
            .put(path, bytes.into())
            .await
            .context("the upload failed")?;
        return Ok(sent);
    }
    let upload = store
        .put_multipart(path)
        .await
        .context("cannot start the upload")?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
    let mut hash = Sha256Stream::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e).with_context(|| format!("cannot read {}", file.display()));
            }
        };
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            return Err(e).context("the upload failed");
        }
        writer.write(&buf[..n]);
        progress.add(n as u64);
        tick().await;
    }
    writer
        .finish()
        .await
        .context("completing the upload failed")?;
    Ok(hash.finish())
}
