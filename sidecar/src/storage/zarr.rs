//! A zarr store (a folder artifact) where it is stored, as zarrs reads a
//! store: each key a GET, each partial read ranged GETs, through
//! object_store (counted when the store given is a counting one). zarrs
//! reads synchronously: use it from a blocking thread; reads wait on the
//! runtime given.
//!
//! The nodes' metadata come from the store's consolidated metadata when it
//! has them (anndata writes them: `.zmetadata` in format 2, the root's
//! `zarr.json` in format 3): one GET instead of two to four a node, each
//! waiting for the store's latency in a row. An artifact does not change,
//! so they cannot be stale.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use tokio::runtime::Handle;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    Bytes, MaybeBytesIterator, ReadableStorage, ReadableStorageTraits, StorageError, StoreKey,
};

/// The folder at `prefix` of `store` as a zarr store.
pub fn zarr_store(
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: Handle,
) -> ReadableStorage {
    Arc::new(ObjectZarr {
        store,
        prefix,
        runtime,
        consolidated: OnceLock::new(),
    })
}

struct ObjectZarr {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: Handle,
    /// The consolidated metadata (key → its bytes), read at the first
    /// metadata key asked for; None when the store has none.
    consolidated: OnceLock<Option<HashMap<String, Bytes>>>,
}

/// Whether `key` names a node's metadata (zarr format 2 or 3).
fn is_metadata(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    matches!(name, ".zarray" | ".zattrs" | ".zgroup" | "zarr.json")
}

/// The metadata keys of a store's consolidated metadata, with their bytes:
/// format 2's `.zmetadata` holds them by key; format 3's root `zarr.json`
/// holds each node's `zarr.json` by the node's path.
fn consolidated_keys(v2: Option<&[u8]>, v3: Option<&[u8]>) -> Option<HashMap<String, Bytes>> {
    use serde_json::Value;
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    let entries = |m: &Value, key: &dyn Fn(&str) -> String| -> Option<HashMap<String, Bytes>> {
        let map = m.as_object()?;
        Some(
            map.iter()
                .map(|(k, v)| (key(k), Bytes::from(v.to_string())))
                .collect(),
        )
    };
    if let Some(root) = v3.and_then(parse) {
        let nodes = root.get("consolidated_metadata")?.get("metadata")?;
        let mut keys = entries(nodes, &|path| format!("{path}/zarr.json"))?;
        keys.insert("zarr.json".into(), Bytes::copy_from_slice(v3?));
        return Some(keys);
    }
    let meta = parse(v2?)?;
    entries(meta.get("metadata")?, &|key| key.to_string())
}

/// An object_store error as zarrs carries one; a missing object is not an
/// error for zarrs (None) and is told apart by the callers.
fn storage_error(e: object_store::Error) -> StorageError {
    StorageError::Other(e.to_string())
}

impl ObjectZarr {
    /// The whole value at `key`, None when there is none.
    fn get_whole(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let path = self.path_of(key);
        self.runtime
            .block_on(async {
                match self.store.get(&path).await {
                    Ok(got) => got.bytes().await.map(Some),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .map_err(storage_error)
    }

    /// The store's consolidated metadata, read once.
    fn consolidated(&self) -> Result<Option<&HashMap<String, Bytes>>, StorageError> {
        if let Some(c) = self.consolidated.get() {
            return Ok(c.as_ref());
        }
        let v3 = self.get_whole("zarr.json")?;
        let v2 = match v3 {
            Some(_) => None,
            None => self.get_whole(".zmetadata")?,
        };
        let keys = consolidated_keys(v2.as_deref(), v3.as_deref());
        Ok(self.consolidated.get_or_init(|| keys).as_ref())
    }

    /// What the consolidated metadata say of `key`: its bytes, or that it
    /// is not in the store (Some(None)); None when they cannot say and the
    /// store must be asked. They speak for the metadata of their own format
    /// only, and of a key they lack only when its node is in them (format
    /// 2: an array has no `.zgroup`, a node may have no `.zattrs`): a node
    /// they do not list (written after they were) is looked up itself.
    fn consolidated_answer(&self, key: &str) -> Result<Option<Option<Bytes>>, StorageError> {
        if !is_metadata(key) {
            return Ok(None);
        }
        let Some(keys) = self.consolidated()? else {
            return Ok(None);
        };
        if let Some(bytes) = keys.get(key) {
            return Ok(Some(Some(bytes.clone())));
        }
        let v3 = keys.contains_key("zarr.json");
        let (node, name) = key.rsplit_once('/').unwrap_or(("", key));
        let other_format = if v3 {
            name != "zarr.json"
        } else {
            name == "zarr.json"
        };
        let child = |n: &str| {
            if node.is_empty() {
                n.to_string()
            } else {
                format!("{node}/{n}")
            }
        };
        let node_listed = !v3
            && [".zarray", ".zgroup"]
                .iter()
                .any(|n| keys.contains_key(&child(n)));
        Ok((other_format || node_listed).then_some(None))
    }

    fn path(&self, key: &StoreKey) -> ObjectPath {
        self.path_of(key.as_str())
    }

    fn path_of(&self, key: &str) -> ObjectPath {
        key.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.child(part))
    }
}

impl ReadableStorageTraits for ObjectZarr {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        // A node's metadata from the consolidated metadata, when they say.
        if let Some(known) = self.consolidated_answer(key.as_str())? {
            {
                let Some(bytes) = known else {
                    return Ok(None);
                };
                let size = bytes.len() as u64;
                let parts: Vec<Result<Bytes, StorageError>> = ranges
                    .iter()
                    .map(|r| {
                        let r = r.to_range(size);
                        if r.end > size || r.start > r.end {
                            return Err(StorageError::Other(format!(
                                "{key}: bytes {}..{} asked of {size}",
                                r.start, r.end
                            )));
                        }
                        Ok(bytes.slice(r.start as usize..r.end as usize))
                    })
                    .collect();
                return Ok(Some(Box::new(parts.into_iter())));
            }
        }
        // A whole value (metadata, an uncompressed-size-unknown chunk): one
        // GET, without asking its size first.
        if let [ByteRange::FromStart(0, None)] = ranges[..] {
            return Ok(self
                .get_whole(key.as_str())?
                .map(|bytes| Box::new(std::iter::once(Ok(bytes))) as _));
        }
        let Some(size) = self.size_key(key)? else {
            return Ok(None);
        };
        let mut absolute: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
        for range in &ranges {
            let r = range.to_range(size);
            if r.end > size || r.start > r.end {
                return Err(StorageError::Other(format!(
                    "{key}: bytes {}..{} asked of a value of {size} bytes (the store is damaged)",
                    r.start, r.end
                )));
            }
            absolute.push(r);
        }
        // object_store joins nearby ranges into fewer requests.
        let parts = self
            .runtime
            .block_on(self.store.get_ranges(&self.path(key), &absolute))
            .map_err(storage_error)?;
        Ok(Some(Box::new(parts.into_iter().map(Ok))))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        if let Some(known) = self.consolidated_answer(key.as_str())? {
            return Ok(known.map(|b| b.len() as u64));
        }
        match self.runtime.block_on(self.store.head(&self.path(key))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use object_store::local::LocalFileSystem;

    use super::*;
    use crate::formats::anndata::{read_frame_zarr, read_frame_zarr_store, Slot};
    use crate::formats::fixture;
    use crate::query::counting::ReadCounter;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_store_read_through_object_store_reads_as_the_folder_does() {
        for name in ["anndata/pbmc.zarr", "formats/pbmc_v3.zarr"] {
            let dir = fixture(name).canonicalize().unwrap();
            let counter = ReadCounter::default();
            let store = zarr_store(
                counter.wrap(Arc::new(LocalFileSystem::new())),
                ObjectPath::from_absolute_path(&dir).unwrap(),
                Handle::current(),
            );
            let chunk = if name.contains("v3") {
                "obs/n_genes/c/0"
            } else {
                "obs/n_genes/0"
            };
            let c = counter.clone();
            let (obs, var, frames_requests, missing, part) =
                tokio::task::spawn_blocking(move || {
                    let key = |k: &str| StoreKey::new(k).unwrap();
                    let obs = read_frame_zarr_store(&store, Slot::Obs).unwrap();
                    let var = read_frame_zarr_store(&store, Slot::Var).unwrap();
                    let frames_requests = c.requests();
                    (
                        obs,
                        var,
                        frames_requests,
                        store.get(&key("obs/no_such_array/.zarray")).unwrap(),
                        store
                            .get_partial(&key(chunk), ByteRange::FromStart(1, Some(3)))
                            .unwrap(),
                    )
                })
                .await
                .unwrap();
            assert_eq!(obs, read_frame_zarr(&dir, Slot::Obs).unwrap(), "{name}");
            assert_eq!(var, read_frame_zarr(&dir, Slot::Var).unwrap(), "{name}");
            // The metadata from the consolidated metadata (one or two GETs:
            // format 2 has no root zarr.json), then a GET a chunk (obs's and
            // var's arrays, some twice: reading a slot checks both frames);
            // read node by node, the same took 108.
            assert!(frames_requests <= 20, "{name}: {frames_requests} requests");
            assert!(missing.is_none(), "a missing key is None, not an error");
            let whole = std::fs::read(dir.join(chunk)).unwrap();
            assert_eq!(part.unwrap().as_ref(), &whole[1..4], "{name}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_node_the_consolidated_metadata_lack_is_read_itself() {
        // A copy of the fixture whose .zmetadata lost one obs column (as if
        // it were written after the consolidation).
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("pbmc.zarr");
        let from = fixture("anndata/pbmc.zarr");
        for entry in walkdir::WalkDir::new(&from) {
            let entry = entry.unwrap();
            let to = copy.join(entry.path().strip_prefix(&from).unwrap());
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::copy(entry.path(), &to).unwrap();
            }
        }
        let meta_path = copy.join(".zmetadata");
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        let listed = meta["metadata"].as_object_mut().unwrap();
        let before = listed.len();
        listed.retain(|k, _| !k.starts_with("obs/pct_mito/"));
        assert!(listed.len() < before, "the fixture lists obs/pct_mito");
        std::fs::write(&meta_path, meta.to_string()).unwrap();
        let store = zarr_store(
            Arc::new(LocalFileSystem::new()),
            ObjectPath::from_absolute_path(copy.canonicalize().unwrap()).unwrap(),
            Handle::current(),
        );
        let obs = tokio::task::spawn_blocking(move || read_frame_zarr_store(&store, Slot::Obs))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(obs, read_frame_zarr(&copy, Slot::Obs).unwrap());
        assert!(obs.schema().field_with_name("pct_mito").is_ok());
    }

    #[test]
    fn consolidated_metadata_of_either_format_are_read_by_key() {
        let v2 = br#"{"metadata": {".zgroup": {"zarr_format": 2}, "obs/.zattrs": {"_index": "_index"}}, "zarr_consolidated_format": 1}"#;
        let keys = consolidated_keys(Some(v2), None).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["obs/.zattrs"].as_ref(), br#"{"_index":"_index"}"#);
        let v3 = br#"{"node_type": "group", "consolidated_metadata": {"kind": "inline", "metadata": {"obs": {"node_type": "group"}, "obs/n": {"node_type": "array"}}}}"#;
        let keys = consolidated_keys(None, Some(v3)).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(
            keys["obs/n/zarr.json"].as_ref(),
            br#"{"node_type":"array"}"#
        );
        assert_eq!(keys["zarr.json"].as_ref(), v3);
        // Without them (format 3 writes null), every key is read itself.
        assert!(consolidated_keys(None, Some(br#"{"consolidated_metadata": null}"#)).is_none());
        assert!(consolidated_keys(None, None).is_none());
        assert!(is_metadata("obs/x/.zarray") && is_metadata("zarr.json"));
        assert!(!is_metadata("obs/x/0") && !is_metadata("obs/x/c/0"));
    }
}
