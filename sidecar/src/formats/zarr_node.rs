//! One node (group or array) of a zarr store (local, or where an artifact
//! is stored), read from its metadata
//! in either zarr format: v2 (`.zgroup` / `.zarray` with `.zattrs`) or v3
//! (one `zarr.json` holding the node type, shape, data type and attributes).
//! The AnnData readers ask this module only, so both formats read alike;
//! the arrays' bytes are read by zarrs, which decodes both.

use std::path::Path;

use serde_json::Value;
use zarrs::storage::{ReadableStorageTraits, StorageError, StoreKey};

/// What a node's metadata says.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrNode {
    pub is_group: bool,
    /// The node's attributes (`{}` when it has none).
    pub attrs: Value,
    /// An array's shape (empty for a group).
    pub shape: Vec<i64>,
    /// An array's element type as a numpy kind code: `i8`, `u4`, `f4`, `b1`,
    /// `O` (strings), … (v2 writes these; v3's names are mapped to them).
    pub kind: String,
}

impl ZarrNode {
    /// The node at `parts` below the local store `dir`, or None when there
    /// is none (or its metadata is not JSON, or cannot be read).
    pub fn open(dir: &Path, parts: &[&str]) -> Option<ZarrNode> {
        let store = zarrs::filesystem::FilesystemStore::new(dir).ok()?;
        Self::read(&store, parts).ok().flatten()
    }

    /// The node at `parts` of `store` (local or where an artifact is
    /// stored), None when there is none or its metadata is not JSON; an
    /// error when the store cannot be read.
    pub fn read(
        store: &dyn ReadableStorageTraits,
        parts: &[&str],
    ) -> Result<Option<ZarrNode>, StorageError> {
        // (Names come from the store's own metadata: none may leave it.)
        if !parts.iter().all(|p| is_plain_name(p)) {
            return Ok(None);
        }
        let key = |name: &str| {
            let path: Vec<&str> = parts.iter().copied().chain([name]).collect();
            StoreKey::new(path.join("/"))
        };
        let json = |name: &str| -> Result<Option<Value>, StorageError> {
            Ok(store
                .get(&key(name)?)?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
        };
        if let Some(v3) = json("zarr.json")? {
            return Ok(Some(Self::from_v3(&v3)));
        }
        let attrs = json(".zattrs")?.unwrap_or_else(|| Value::Object(Default::default()));
        if store.size_key(&key(".zgroup")?)?.is_some() {
            return Ok(Some(ZarrNode {
                is_group: true,
                attrs,
                shape: vec![],
                kind: String::new(),
            }));
        }
        let Some(array) = json(".zarray")? else {
            return Ok(None);
        };
        let numpy = array.get("dtype").and_then(Value::as_str).unwrap_or("");
        Ok(Some(ZarrNode {
            is_group: false,
            attrs,
            shape: shape_of(&array),
            kind: numpy.trim_start_matches(['<', '>', '|', '=']).to_string(),
        }))
    }

    fn from_v3(meta: &Value) -> ZarrNode {
        let data_type = meta.get("data_type").and_then(Value::as_str).unwrap_or("");
        let kind = match data_type {
            "int8" => "i1",
            "int16" => "i2",
            "int32" => "i4",
            "int64" => "i8",
            "uint8" => "u1",
            "uint16" => "u2",
            "uint32" => "u4",
            "uint64" => "u8",
            "float16" => "f2",
            "float32" => "f4",
            "float64" => "f8",
            "bool" => "b1",
            "string" => "O",
            "fixed_length_utf32" => "U",
            "fixed_length_bytes" | "null_terminated_bytes" | "variable_length_bytes" | "bytes" => {
                "S"
            }
            "numpy.datetime64" => "M",
            "numpy.timedelta64" => "m",
            "complex64" | "complex128" => "c",
            // Anything else: a type lamin does not map (dtype dict).
            _ => "",
        };
        ZarrNode {
            is_group: meta.get("node_type").and_then(Value::as_str) == Some("group"),
            attrs: meta
                .get("attributes")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
            shape: shape_of(meta),
            kind: kind.to_string(),
        }
    }

    /// A string attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }
}

/// The names of the children of the group at `parts`, as the store's
/// consolidated metadata list them (see [`consolidated_paths`]); None when
/// the store has none, and so cannot say without listing (which a store
/// read by keys cannot).
pub fn children(
    store: &dyn ReadableStorageTraits,
    parts: &[&str],
) -> Result<Option<Vec<String>>, StorageError> {
    Ok(consolidated_paths(store)?.map(|paths| children_in(&paths, parts)))
}

/// The paths the store's consolidated metadata name (format 2's
/// `.zmetadata`: metadata keys; format 3's root `zarr.json`: nodes), from
/// the root; None when it has none. One read: callers that ask about many
/// groups keep them.
pub fn consolidated_paths(
    store: &dyn ReadableStorageTraits,
) -> Result<Option<Vec<String>>, StorageError> {
    let json = |key: &str| -> Result<Option<Value>, StorageError> {
        Ok(store
            .get(&StoreKey::new(key)?)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    };
    let listed = |m: Option<&Value>| {
        m.and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
    };
    Ok(match json("zarr.json")? {
        Some(root) => listed(
            root.get("consolidated_metadata")
                .and_then(|c| c.get("metadata")),
        ),
        None => listed(json(".zmetadata")?.as_ref().and_then(|m| m.get("metadata"))),
    })
}

/// The names of the children of the group at `parts` among `paths` (see
/// [`consolidated_paths`]).
pub fn children_in(paths: &[String], parts: &[&str]) -> Vec<String> {
    let prefix: String = parts.iter().map(|p| format!("{p}/")).collect();
    let mut names: Vec<String> = paths
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter(|n| is_plain_name(n) && !n.starts_with('.'))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether a name read from a store's metadata (a column, an index, a
/// scale's path) names a child node, and no path that could leave the store.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn shape_of(meta: &Value) -> Vec<i64> {
    meta.get("shape")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn a_groups_children_are_named_by_the_consolidated_metadata_of_either_format() {
        for store in ["anndata/pbmc.zarr", "formats/pbmc_v3.zarr"] {
            let dir = fixture(store);
            let fs = zarrs::filesystem::FilesystemStore::new(&dir).unwrap();
            let names = |parts: &[&str]| children(&fs, parts).unwrap().unwrap();
            assert_eq!(
                names(&["obs", "cell_type"]),
                ["categories", "codes"],
                "{store}"
            );
            assert_eq!(names(&["X"]), ["data", "indices", "indptr"], "{store}");
            assert!(names(&["layers"]).is_empty(), "{store}");
            assert!(names(&[]).contains(&"obs".to_string()), "{store}");
        }
        // A store without consolidated metadata cannot say.
        let plain = tempfile::tempdir().unwrap();
        let fs = zarrs::filesystem::FilesystemStore::new(plain.path()).unwrap();
        assert_eq!(children(&fs, &["obs"]).unwrap(), None);
    }

    #[test]
    fn v2_and_v3_stores_written_by_anndata_read_alike() {
        for store in ["anndata/pbmc.zarr", "formats/pbmc_v3.zarr"] {
            let dir = fixture(store);
            let root = ZarrNode::open(&dir, &[]).unwrap();
            assert!(root.is_group, "{store}");
            assert_eq!(root.attr("encoding-type"), Some("anndata"), "{store}");
            let index = ZarrNode::open(&dir, &["obs", "_index"]).unwrap();
            assert!(!index.is_group);
            assert_eq!(index.kind, "O", "{store}: strings");
            let n_genes = ZarrNode::open(&dir, &["obs", "n_genes"]).unwrap();
            assert_eq!(n_genes.kind, "i8", "{store}");
            assert_eq!(n_genes.shape, [index.shape[0]]);
            assert!(ZarrNode::open(&dir, &["obs", "no_such_column"]).is_none());
            // Names from metadata never leave the store.
            for bad in ["..", "../anndata", "/etc", "", "."] {
                assert!(ZarrNode::open(&dir, &["obs", bad]).is_none(), "{bad:?}");
            }
        }
    }
}
