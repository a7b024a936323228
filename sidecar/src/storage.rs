//! An artifact's bytes in a storage root, whatever the backend: open a root
//! (local folder, s3://, gs://, az://) through object_store, tell a file from
//! a folder, list a folder's files, hash content while streaming it, copy it
//! to local disk, delete it.
//!
//! Credentials never live in the database: object_store reads them from the
//! environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
//! AWS_ENDPOINT, AWS_ALLOW_HTTP; GOOGLE_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT_KEY;
//! AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_USE_EMULATOR, …).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};
use sha2::{Digest, Sha256};

use lamin_core::content::{folder_hash, FileHash};

/// What is stored: the sha256 (of the file, or of the folder's manifest),
/// the total size and, for folders, the number of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub hash: String,
    pub size: u64,
    pub n_files: Option<i64>,
}

/// One file of a folder object.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the folder, with `/`.
    pub relative: String,
    pub meta: ObjectMeta,
}

/// A storage root opened through object_store.
#[derive(Clone)]
pub struct Storage {
    pub root: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

/// Retries of failed requests: a few, within 30 s, so that an unreachable
/// endpoint becomes an error in seconds rather than object_store's default
/// three minutes (jobs have their own retries on top).
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: Default::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
    }
}

impl Storage {
    /// Open a root: an absolute path, or s3:// gs:// az:// with the backend's
    /// settings read from the environment (AWS_*, GOOGLE_*, AZURE_*).
    pub fn open(root: &str) -> anyhow::Result<Self> {
        use object_store::aws::AmazonS3Builder;
        use object_store::azure::MicrosoftAzureBuilder;
        use object_store::gcp::GoogleCloudStorageBuilder;
        let unusable = || format!("cannot open storage {root}");
        if root.starts_with('/') {
            let url = url::Url::from_file_path(root)
                .map_err(|_| anyhow::anyhow!("storage root {root} is not an absolute path"))?;
            let (store, prefix) = object_store::parse_url(&url).with_context(unusable)?;
            return Ok(Storage {
                root: root.to_string(),
                store: Arc::from(store),
                prefix,
            });
        }
        let url =
            url::Url::parse(root).with_context(|| format!("storage root {root} is not a URL"))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(root)
                    .with_retry(retry_config())
                    .build()
                    .with_context(unusable)?,
            ),
            "gs" => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(root)
                    .with_retry(retry_config())
                    .build()
                    .with_context(unusable)?,
            ),
            "az" => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(root)
                    .with_retry(retry_config())
                    .build()
                    .with_context(unusable)?,
            ),
            other => bail!("storage {root}: unknown scheme {other}://"),
        };
        let prefix = ObjectPath::from_url_path(url.path()).with_context(unusable)?;
        Ok(Storage {
            root: root.to_string(),
            store,
            prefix,
        })
    }

    pub fn is_local(&self) -> bool {
        self.root.starts_with('/')
    }

    pub fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    /// The store itself, for readers that keep it (parquet).
    pub fn shared_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The object path of `key` (a path relative to the root, split at `/`).
    pub fn path(&self, key: &str) -> ObjectPath {
        key.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.child(part))
    }

    /// `root/key` as users see it.
    pub fn uri(&self, key: &str) -> String {
        format!("{}/{}", self.root, key)
    }

    /// A cheap request that fails fast when the storage is unreachable or refuses us.
    pub async fn check_reachable(&self) -> anyhow::Result<()> {
        match self.store.head(&self.path(".lamindb")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("storage {} is not usable: {e}", self.root)),
        }
    }

    /// The files under `key/`, sorted by relative path.
    pub async fn list_folder(&self, key: &str) -> anyhow::Result<Vec<Entry>> {
        let base = self.path(key);
        let depth = base.parts().count();
        let mut entries: Vec<Entry> = self
            .store
            .list(Some(&base))
            .map_ok(|meta| Entry {
                relative: meta
                    .location
                    .parts()
                    .skip(depth)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                meta,
            })
            .try_collect()
            .await
            .with_context(|| format!("cannot list {}", self.uri(key)))?;
        entries.sort_by(|a, b| a.relative.as_bytes().cmp(b.relative.as_bytes()));
        Ok(entries)
    }

    /// Whether `key` is a file (Some(false)), a folder (Some(true)) or absent (None).
    pub async fn shape(&self, key: &str) -> anyhow::Result<Option<bool>> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => return Ok(Some(false)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", self.uri(key))),
        }
        let mut listing = self.store.list(Some(&self.path(key)));
        match listing.next().await {
            Some(Ok(_)) => Ok(Some(true)),
            Some(Err(e)) => Err(anyhow::anyhow!("cannot list {}: {e}", self.uri(key))),
            None => Ok(None),
        }
    }

    /// sha256 and size of one object, streamed; `on_bytes` hears of each chunk.
    pub async fn hash_object(
        &self,
        location: &ObjectPath,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<(String, u64)> {
        let mut stream = self.store.get(location).await?.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            on_bytes(chunk.len() as u64);
        }
        Ok((format!("{:x}", hasher.finalize()), size))
    }

    /// The content of `key` read back in full, or None when nothing is there.
    /// `folder`: what the caller expects (None: find out).
    pub async fn content(
        &self,
        key: &str,
        folder: Option<bool>,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<Option<Content>> {
        let folder = match folder {
            Some(f) => f,
            None => match self.shape(key).await? {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        if !folder {
            return match self.hash_object(&self.path(key), on_bytes).await {
                Ok((hash, size)) => Ok(Some(Content {
                    hash,
                    size,
                    n_files: None,
                })),
                Err(e) if is_not_found(&e) => Ok(None),
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
                    self.hash_object(&e.meta.location, on_bytes)
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
        Ok(Some(folder_content(&entries, hashed)))
    }

    /// Delete `key` (a file, or every file of a folder); returns how many
    /// objects were deleted (a missing object is no error).
    pub async fn delete(&self, key: &str, folder: bool) -> anyhow::Result<u64> {
        let locations: Vec<ObjectPath> = if folder {
            self.list_folder(key)
                .await?
                .into_iter()
                .map(|e| e.meta.location)
                .collect()
        } else {
            vec![self.path(key)]
        };
        let mut deleted = 0;
        for location in locations {
            match self.store.delete(&location).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(anyhow::anyhow!("cannot delete {location}: {e}")),
            }
        }
        if folder && self.is_local() {
            // object_store deletes files; the emptied folders are ours to remove.
            let _ = std::fs::remove_dir_all(Path::new(&self.root).join(key));
        }
        Ok(deleted)
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
        on_bytes: &(dyn Fn(u64) + Sync),
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
        let copied = self.download_to(key, folder, &partial, on_bytes).await;
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
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<Content> {
        if !folder {
            let mut out = std::fs::File::create(target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            let (hash, size) = self.fetch(&self.path(key), &mut out, on_bytes).await?;
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
                    self.fetch(&e.meta.location, &mut out, on_bytes).await
                }
                .boxed()
            })
            .collect();
        let fetched: Vec<(String, u64)> = futures_util::stream::iter(jobs)
            .buffered(FILES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(folder_content(&entries, fetched))
    }

    /// Stream one object into `out` while hashing it.
    async fn fetch(
        &self,
        location: &ObjectPath,
        out: &mut std::fs::File,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<(String, u64)> {
        let mut stream = self
            .store
            .get(location)
            .await
            .with_context(|| format!("cannot read {location} in {}", self.root))?
            .into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading {location} failed"))?;
            hasher.update(&chunk);
            tokio::task::block_in_place(|| out.write_all(&chunk)).context("writing failed")?;
            size += chunk.len() as u64;
            on_bytes(chunk.len() as u64);
        }
        tokio::task::block_in_place(|| out.sync_all()).context("flushing failed")?;
        Ok((format!("{:x}", hasher.finalize()), size))
    }
}

/// How many files of a folder are read or written at once.
pub const FILES_IN_FLIGHT: usize = 8;

/// A folder's content from its entries and their (sha256, size), in order.
fn folder_content(entries: &[Entry], hashed: Vec<(String, u64)>) -> Content {
    let size = hashed.iter().map(|(_, n)| n).sum();
    let mut files: Vec<FileHash> = entries
        .iter()
        .zip(hashed)
        .map(|(e, (sha256, _))| FileHash {
            path: e.relative.clone(),
            sha256,
        })
        .collect();
    Content {
        hash: folder_hash(&mut files),
        size,
        n_files: Some(files.len() as i64),
    }
}

/// Remove a file or folder if it is there.
pub fn remove_path(path: &Path) {
    let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
}

/// Whether an error chain holds object_store's NotFound.
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        )
    })
}

/// Where the sidecar's cache keeps an artifact of a remote storage:
/// `{cache}/{scheme}/{bucket}/{prefix}/{object key}`, e.g.
/// `~/.cache/lamin/s3/my-bucket/project/.lamindb/{uid}.parquet`.
pub fn cache_path(cache_dir: &Path, root: &str, object_key: &str) -> anyhow::Result<PathBuf> {
    let (scheme, rest) = root
        .split_once("://")
        .with_context(|| format!("storage {root} is local: it needs no cache"))?;
    let mut path = cache_dir.join(scheme);
    for part in rest.split('/').chain(object_key.split('/')) {
        if part.is_empty() {
            continue;
        }
        if part == "." || part == ".." {
            bail!("refusing the cache path of {root}/{object_key}: it has . or .. parts");
        }
        path.push(part);
    }
    Ok(path)
}

/// A local folder's files as (relative path with `/`, full path), sorted;
/// symbolic links are refused so that a save never reaches outside the folder.
pub fn local_folder_files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let kind = entry.file_type();
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link: folders with links cannot be saved (copy the target in instead)",
                entry.path().display()
            );
        }
        if !kind.is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root");
        let parts: Option<Vec<&str>> = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect();
        let Some(parts) = parts else {
            bail!("{}: file names must be UTF-8", entry.path().display());
        };
        files.push((parts.join("/"), entry.path().to_path_buf()));
    }
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if files.is_empty() {
        bail!(
            "{} holds no files: an empty folder is not an artifact",
            dir.display()
        );
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_mirror_the_bucket() {
        let c = Path::new("/cache");
        assert_eq!(
            cache_path(c, "s3://bkt/pre/fix", ".lamindb/abc.parquet").unwrap(),
            Path::new("/cache/s3/bkt/pre/fix/.lamindb/abc.parquet")
        );
        assert!(cache_path(c, "/local/root", "x").is_err());
        assert!(cache_path(c, "s3://bkt", "a/../../etc").is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn local_roots_hash_files_and_folders_like_the_manifest_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("d/a"), "hello\n").unwrap();
        std::fs::write(dir.path().join("d/sub/b c"), "x").unwrap();
        std::fs::write(dir.path().join("f.txt"), "hello\n").unwrap();
        let s = Storage::open(root).unwrap();
        assert_eq!(s.shape("d").await.unwrap(), Some(true));
        assert_eq!(s.shape("f.txt").await.unwrap(), Some(false));
        assert_eq!(s.shape("nope").await.unwrap(), None);
        let folder = s.content("d", None, &|_| {}).await.unwrap().unwrap();
        assert_eq!(
            folder.hash,
            "d72288ff590dfd9defd4dc12bf84b9e2a9cb3c85a272a54b3b0e7f717935cb50"
        );
        assert_eq!((folder.size, folder.n_files), (7, Some(2)));
        let file = s
            .content("f.txt", Some(false), &|_| {})
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file.n_files, None);
        assert!(s
            .content("gone.txt", Some(false), &|_| {})
            .await
            .unwrap()
            .is_none());

        let out = tempfile::tempdir().unwrap();
        let copy = s
            .download("d", true, &out.path().join("d2"), &|_| {})
            .await
            .unwrap();
        assert_eq!(copy, folder);
        assert_eq!(
            std::fs::read_to_string(out.path().join("d2/sub/b c")).unwrap(),
            "x"
        );
        assert_eq!(s.delete("d", true).await.unwrap(), 2);
        assert!(!dir.path().join("d").exists());
    }

    #[test]
    fn local_folders_refuse_links_and_emptiness() {
        let dir = tempfile::tempdir().unwrap();
        assert!(local_folder_files(dir.path())
            .unwrap_err()
            .to_string()
            .contains("no files"));
        std::fs::write(dir.path().join("a"), "1").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert!(local_folder_files(dir.path())
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
    }
}
