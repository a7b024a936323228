//! An artifact's bytes in a storage root, whatever the backend: open a root
//! (local folder, s3://, gs://, az://) through object_store, tell a file from
//! a folder, list a folder's files, delete. Streaming reads and writes are in
//! `transfer`, local files and folders in `local`.
//!
//! Credentials never live in the database: object_store reads them from the
//! environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
//! AWS_ENDPOINT, AWS_ALLOW_HTTP; GOOGLE_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT_KEY;
//! AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_USE_EMULATOR, …).

pub mod local;
pub mod transfer;
pub mod zarr;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use lamin_core::storage_root::{parse_root, StorageType};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};

use crate::error::StorageUnusable;

pub use lamin_core::content::Content;

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
    kind: StorageType,
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
        let kind = parse_root(root)
            .map_err(|e| crate::refused!("storage root {root:?} is not usable: {e}"))?
            .kind;
        let unusable = |source| StorageUnusable {
            root: root.to_string(),
            source,
        };
        let url = match kind {
            StorageType::Local => url::Url::from_file_path(root)
                .map_err(|_| crate::refused!("storage root {root} is not an absolute path"))?,
            _ => url::Url::parse(root)
                .with_context(|| format!("storage root {root} is not a URL"))?,
        };
        let store: Arc<dyn ObjectStore> = match kind {
            StorageType::Local => {
                let (store, prefix) = object_store::parse_url(&url).map_err(unusable)?;
                return Ok(Storage {
                    root: root.to_string(),
                    kind,
                    store: Arc::from(store),
                    prefix,
                });
            }
            StorageType::S3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(root)
                    .with_retry(retry_config())
                    .build()
                    .map_err(unusable)?,
            ),
            StorageType::Gcs => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(root)
                    .with_retry(retry_config())
                    .build()
                    .map_err(unusable)?,
            ),
            StorageType::Azure => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(root)
                    .with_retry(retry_config())
                    .build()
                    .map_err(unusable)?,
            ),
        };
        let prefix = ObjectPath::from_url_path(url.path())
            .map_err(|e| unusable(object_store::Error::InvalidPath { source: e }))?;
        Ok(Storage {
            root: root.to_string(),
            kind,
            store,
            prefix,
        })
    }

    /// Whether the root is a local folder (its objects are files of this machine).
    pub fn is_local(&self) -> bool {
        self.kind == StorageType::Local
    }

    /// The local path of `key` under a local root.
    pub fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.is_local().then(|| Path::new(&self.root).join(key))
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
        match self
            .store
            .head(&self.path(lamin_core::object::OBJECT_DIR))
            .await
        {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("storage {} is not usable", self.root)))
            }
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
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot read {}", self.uri(key))))
            }
        }
        let mut listing = self.store.list(Some(&self.path(key)));
        match listing.next().await {
            Some(Ok(_)) => Ok(Some(true)),
            Some(Err(e)) => {
                Err(anyhow::Error::new(e).context(format!("cannot list {}", self.uri(key))))
            }
            None => Ok(None),
        }
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
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("cannot delete {location}")))
                }
            }
        }
        if let Some(dir) = self.local_path(key).filter(|_| folder) {
            // object_store deletes files; the emptied folders are ours to remove.
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use local::{cache_path, local_folder_files};

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
        let folder = s
            .content("d", None, &crate::progress::Silent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            folder.hash,
            "d72288ff590dfd9defd4dc12bf84b9e2a9cb3c85a272a54b3b0e7f717935cb50"
        );
        assert_eq!((folder.size, folder.n_files), (7, Some(2)));
        let file = s
            .content("f.txt", Some(false), &crate::progress::Silent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file.n_files, None);
        assert!(s
            .content("gone.txt", Some(false), &crate::progress::Silent)
            .await
            .unwrap()
            .is_none());

        let out = tempfile::tempdir().unwrap();
        let copy = s
            .download("d", true, &out.path().join("d2"), &crate::progress::Silent)
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
