//! An AnnData zarr store (format 2 or 3, as anndata writes it) read where
//! it is stored, by zarrs over object_store (`storage::zarr`): its `obs`
//! and `var` dataframes, and the part of `X` (dense, CSR or CSC) at some
//! rows and columns — each array read by the chunks the selection needs
//! (zarrs reads a subset's chunks and nothing else), never the store whole.

use std::ops::Range;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use zarrs::array::chunk_cache::{ChunkCache, ChunkCacheEncodedLruSizeLimit};
use zarrs::array::{Array as ZarrArray, ArraySubset, CodecOptions};
use zarrs::storage::{ReadableStorage, ReadableStorageTraits};

use super::frame::{Frame, Values};
use super::matrix::{Rows, Sparse};
use super::num::Num;
use super::spans::Read;
use super::x::{self, Layout, Matrix, SparseX};
use crate::error::NotAMatrix;
use crate::formats::anndata::{is_anndata_store, masked, zarr_column, zarr_frame, zarr_strings};
use crate::formats::zarr_node::{children_in, consolidated_paths, ZarrNode};
use crate::refused;

type Store = Arc<dyn ReadableStorageTraits>;

/// An open AnnData zarr store.
pub struct ZarrAnnData {
    store: ReadableStorage,
    /// X: how it is stored, its shape (observations × variables) and the
    /// type of its values (a slice's X is written in it).
    pub x: Matrix,
    /// The paths its consolidated metadata name, read at the first need.
    consolidated: std::sync::OnceLock<Option<Vec<String>>>,
}

/// Encoded chunks kept per array read (what a slice's neighbouring spans
/// share: zarrs reads a chunk for every subset that touches it, so without
/// a cache a scattered slice would fetch a chunk once per kept row in it).
const CACHED_CHUNK_BYTES: u64 = 64 << 20;

/// One array of the store, opened behind a chunk cache, with its numpy
/// kind (`f4`, `i8`, …) and its shape.
fn array(store: &Store, path: &str) -> anyhow::Result<(Cached, String, Vec<u64>)> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let kind = ZarrNode::read(store.as_ref(), &parts)?
        .filter(|n| !n.is_group)
        .with_context(|| format!("{path} is not an array of the store"))?
        .kind;
    let array = ZarrArray::open(Arc::clone(store), &format!("/{}", parts.join("/")))
        .with_context(|| format!("cannot open zarr array {path}"))?;
    let shape = array.shape().to_vec();
    let chunk = array
        .chunk_shape(&vec![0; shape.len()])
        .ok()
        .and_then(|c| c.first().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let cached = Cached {
        cache: ChunkCacheEncodedLruSizeLimit::new(Arc::new(array), CACHED_CHUNK_BYTES),
        chunk,
    };
    Ok((cached, kind, shape))
}

/// An array behind its chunk cache, with its chunks' length (first
/// dimension).
struct Cached {
    cache: ChunkCacheEncodedLruSizeLimit,
    chunk: u64,
}

/// The values of `subset` of a numeric array as f64 (X's values).
fn numbers(array: &Cached, kind: &str, subset: &ArraySubset) -> anyhow::Result<Vec<f64>> {
    macro_rules! get {
        ($t:ty) => {
            array
                .cache
                .retrieve_array_subset::<Vec<$t>>(subset, &CodecOptions::default())?
                .into_iter()
                .map(|v| v as f64)
                .collect()
        };
    }
    Ok(match kind {
        "f4" => get!(f32),
        "f8" => get!(f64),
        "i1" => get!(i8),
        "i2" => get!(i16),
        "i4" => get!(i32),
        "i8" => get!(i64),
        "u1" => get!(u8),
        "u2" => get!(u16),
        "u4" => get!(u32),
        "u8" => get!(u64),
        other => bail!(refused!(
            "X holds {other:?} values: slicing reads float and integer X"
        )),
    })
}

/// The values of `subset` of an integer array as i64 (indices, pointers).
fn integers(array: &Cached, kind: &str, subset: &ArraySubset) -> anyhow::Result<Vec<i64>> {
    macro_rules! get {
        ($t:ty) => {
            array
                .cache
                .retrieve_array_subset::<Vec<$t>>(subset, &CodecOptions::default())?
                .into_iter()
                .map(i64::from)
                .collect()
        };
    }
    Ok(match kind {
        "i4" => get!(i32),
        "i8" => get!(i64),
        "u4" => get!(u32),
        "i2" => get!(i16),
        "u2" => get!(u16),
        other => bail!(refused!(
            "X's indices or pointers are {other:?}: anndata writes 32- or 64-bit integers"
        )),
    })
}

/// The matrix at `path` of the store (see [`ZarrAnnData::matrix`]).
fn matrix(store: &ReadableStorage, path: &str) -> anyhow::Result<Option<Matrix>> {
    let parts: Vec<&str> = path.split('/').collect();
    let number_type = |kind: &str| -> anyhow::Result<Num> {
        Num::from_kind(kind).ok_or_else(|| {
            NotAMatrix {
                path: path.into(),
                what: format!("of {kind:?} values"),
            }
            .into()
        })
    };
    Ok(Some(match ZarrNode::read(store.as_ref(), &parts)? {
        Some(x) if !x.is_group => {
            let [Ok(rows), Ok(cols)] = x
                .shape
                .iter()
                .map(|d| u64::try_from(*d))
                .collect::<Vec<_>>()[..]
            else {
                bail!(NotAMatrix {
                    path: path.into(),
                    what: format!("an array of the shape {:?}", x.shape),
                });
            };
            Matrix {
                path: path.into(),
                layout: Layout::Dense,
                rows,
                cols,
                num: number_type(&x.kind)?,
            }
        }
        Some(x) => {
            let layout = match x.attr("encoding-type") {
                Some("csr_matrix") => Layout::Csr,
                Some("csc_matrix") => Layout::Csc,
                other => bail!(NotAMatrix {
                    path: path.into(),
                    what: format!("a {}", other.unwrap_or("group of no encoding")),
                }),
            };
            let shape: Vec<i64> = x
                .attrs
                .get("shape")
                .and_then(|s| s.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
                .unwrap_or_default();
            let [Ok(rows), Ok(cols)] =
                shape.iter().map(|d| u64::try_from(*d)).collect::<Vec<_>>()[..]
            else {
                bail!(refused!(
                    "{path}'s shape {shape:?} is not 2 sizes of 0 or more"
                ));
            };
            let mut data_path = parts.clone();
            data_path.push("data");
            let data = ZarrNode::read(store.as_ref(), &data_path)?
                .with_context(|| format!("{path} has no data"))?;
            Matrix {
                path: path.into(),
                layout,
                rows,
                cols,
                num: number_type(&data.kind)?,
            }
        }
        None => return Ok(None),
    }))
}

impl ZarrAnnData {
    /// Open the store: checks that it is an AnnData and finds how X is
    /// stored. Call from a blocking thread.
    pub fn open(store: ReadableStorage, what: &str) -> anyhow::Result<ZarrAnnData> {
        let unreadable = || format!("{what} cannot be read (the store is damaged or unreachable)");
        if !is_anndata_store(&store).with_context(unreadable)? {
            bail!(refused!(
                "{what} is not an AnnData zarr store (no encoding-type anndata at its root)"
            ));
        }
        let x = match matrix(&store, "X") {
            Ok(Some(x)) => x,
            Ok(None) => bail!(refused!("{what} has no X to slice")),
            Err(e) if e.downcast_ref::<NotAMatrix>().is_some() => {
                bail!(refused!(
                    "{what}: {e}; slicing reads a dense, csr_matrix or csc_matrix X"
                ))
            }
            Err(e) if e.downcast_ref::<crate::error::Refused>().is_some() => {
                return Err(e.context(format!("{what}: its X cannot be sliced")))
            }
            Err(e) => return Err(e.context(unreadable())),
        };
        Ok(ZarrAnnData {
            store,
            x,
            consolidated: std::sync::OnceLock::new(),
        })
    }

    /// The matrix at `path` (`X`, `layers/counts`, `obsm/X_umap`): None
    /// when there is none, a refusal when it is not a matrix slicing reads.
    pub fn matrix(&self, path: &str) -> anyhow::Result<Option<Matrix>> {
        matrix(&self.store, path)
    }

    /// Whether the store has a group `name`.
    fn has_group(&self, name: &str) -> anyhow::Result<bool> {
        let parts: Vec<&str> = name.split('/').collect();
        Ok(ZarrNode::read(self.store.as_ref(), &parts)?.is_some_and(|g| g.is_group))
    }

    /// The names in the group `name` (`layers`, `obsm`, …), from the
    /// store's consolidated metadata; none when it has no such group, None
    /// when it has no consolidated metadata to name them.
    pub fn members(&self, name: &str) -> anyhow::Result<Option<Vec<String>>> {
        if !self.has_group(name)? {
            return Ok(Some(Vec::new()));
        }
        let parts: Vec<&str> = name.split('/').collect();
        // (The consolidated metadata read once per slice, not per group:
        // over a remote store each read is a request.)
        let paths = match self.consolidated.get() {
            Some(paths) => paths,
            None => {
                let read = consolidated_paths(self.store.as_ref())?;
                self.consolidated.get_or_init(|| read)
            }
        };
        Ok(paths.as_ref().map(|p| children_in(p, &parts)))
    }

    /// The dataframe `name` (obs or var) whole: its index and columns
    /// (categoricals as codes and categories; other encodings left out),
    /// each in the type the store gives it.
    pub fn frame(&self, name: &str) -> anyhow::Result<Frame> {
        let (index_name, _, columns) = zarr_frame(&self.store, name)?;
        let index = zarr_strings(&self.store, &format!("/{name}/{index_name}"))?;
        let mut out = Vec::with_capacity(columns.len());
        for col in columns {
            let base = format!("/{name}/{}", col.name);
            let node = |path: &str| -> anyhow::Result<ZarrNode> {
                let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
                ZarrNode::read(self.store.as_ref(), &parts)?
                    .with_context(|| format!("{path} is not in the store"))
            };
            // An array of the store as values of its own type.
            let array = |path: &str| -> anyhow::Result<Values> {
                values(&zarr_column(&self.store, path)?, &node(path)?.kind)
            };
            let read = || -> anyhow::Result<Option<Values>> {
                let here = node(&base)?;
                if !here.is_group {
                    return Ok(match col.dtype {
                        "int" | "bool" | "float" | "str" => Some(array(&base)?),
                        // Other types (dates, …) are left out.
                        _ => None,
                    });
                }
                Ok(Some(match here.attr("encoding-type").unwrap_or_default() {
                    "categorical" => Values::Cat {
                        codes: ints(&zarr_column(&self.store, &format!("{base}/codes"))?)?
                            .into_iter()
                            .map(|c| c.unwrap_or(-1))
                            .collect(),
                        categories: Box::new(array(&format!("{base}/categories"))?),
                        ordered: here
                            .attrs
                            .get("ordered")
                            .and_then(|o| o.as_bool())
                            .unwrap_or(false),
                    },
                    // Nullable: values and a mask (true: missing).
                    kind @ ("nullable-integer" | "nullable-boolean") => {
                        let mask: Vec<bool> =
                            bools(&zarr_column(&self.store, &format!("{base}/mask"))?)?
                                .into_iter()
                                .map(|m| m.unwrap_or(true))
                                .collect();
                        match array(&format!("{base}/values"))? {
                            Values::Int(v, num) if kind == "nullable-integer" => Values::Int(
                                masked(v.into_iter().map(|v| v.unwrap_or(0)).collect(), &mask),
                                num,
                            ),
                            Values::Bool(v) if kind == "nullable-boolean" => Values::Bool(masked(
                                v.into_iter().map(|v| v.unwrap_or(false)).collect(),
                                &mask,
                            )),
                            _ => bail!("its values are not of its encoding {kind}"),
                        }
                    }
                    // Other encodings (dicts, …) are left out.
                    _ => return Ok(None),
                }))
            };
            if let Some(values) =
                read().with_context(|| format!("{name}/{} cannot be read", col.name))?
            {
                out.push((col.name, values));
            }
        }
        let frame = Frame {
            index_name,
            index,
            columns: out,
        };
        frame.check_lengths(name)?;
        Ok(frame)
    }

    /// X at `rows` (ascending) and the columns `keep` maps to output
    /// positions, as CSR rows.
    pub fn read_x(
        &self,
        rows: &[u64],
        keep: &[Option<u32>],
        n_out: usize,
    ) -> anyhow::Result<Sparse> {
        self.read_matrix(&self.x, rows, keep, n_out)
    }

    /// A matrix at `rows` (ascending) and the columns `keep` maps to output
    /// positions, as CSR rows.
    pub fn read_matrix(
        &self,
        m: &Matrix,
        rows: &[u64],
        keep: &[Option<u32>],
        n_out: usize,
    ) -> anyhow::Result<Sparse> {
        let mut out = Rows::new(n_out);
        match m.layout {
            Layout::Dense => {
                let (x, kind, _) = array(&self.store, &m.path)?;
                let block = |rows: Range<u64>, cols: Range<u64>| {
                    numbers(&x, &kind, &ArraySubset::new_with_ranges(&[rows, cols]))
                };
                x::dense_rows(block, rows, keep, &mut out)?;
            }
            Layout::Csr => {
                x::csr_rows(&self.sparse(&m.path, m.rows, m.cols)?, rows, keep, &mut out)?
            }
            Layout::Csc => {
                x::csc_rows(&self.sparse(&m.path, m.cols, m.rows)?, rows, keep, &mut out)?
            }
        }
        Ok(out.finish())
    }

    /// A sparse X's `data` and `indices` and its pointers, checked.
    fn sparse(
        &self,
        path: &str,
        n: u64,
        width: u64,
    ) -> anyhow::Result<SparseX<impl Fn(Range<u64>) -> anyhow::Result<Read> + Sync>> {
        let (data, data_kind, data_shape) = array(&self.store, &format!("{path}/data"))?;
        let (indices, index_kind, index_shape) = array(&self.store, &format!("{path}/indices"))?;
        let (indptr, indptr_kind, indptr_shape) = array(&self.store, &format!("{path}/indptr"))?;
        if data_shape.len() != 1 || data_shape != index_shape || indptr_shape.len() != 1 {
            bail!(refused!(
                "{path}/data has the shape {data_shape:?}, {path}/indices {index_shape:?} and {path}/indptr {indptr_shape:?}: they must be 1-dimensional, data and indices as long as each other"
            ));
        }
        // (Checked before it is read: a damaged store could declare any
        // length, and the pointers are read whole.)
        if indptr_shape[0] != n + 1 {
            bail!(refused!(
                "{path}/indptr has {} entries, not {}",
                indptr_shape[0],
                n + 1
            ));
        }
        let raw = integers(
            &indptr,
            &indptr_kind,
            &ArraySubset::new_with_ranges(std::slice::from_ref(&(0..indptr_shape[0]))),
        )?;
        let pointers = x::pointers(path, raw, n, data_shape[0], width)?;
        // (Owned: the reader outlives this call.)
        let path = path.to_string();
        Ok(SparseX {
            pointers,
            chunks: [data.chunk, indices.chunk],
            read: move |span: Range<u64>| -> anyhow::Result<Read> {
                if span.is_empty() {
                    return Ok((Vec::new(), Vec::new()));
                }
                let subset = ArraySubset::new_with_ranges(std::slice::from_ref(&span));
                let read = (
                    numbers(&data, &data_kind, &subset)?,
                    integers(&indices, &index_kind, &subset)?,
                );
                x::exact(&path, &span, read)
            },
        })
    }
}

/// A column as `zarr_column` reads it (64-bit numbers, booleans, text) and
/// the numpy kind it is stored as, as values of that type.
fn values(a: &ArrayRef, kind: &str) -> anyhow::Result<Values> {
    Ok(match Num::from_kind(kind) {
        Some(num) if num.is_float() => Values::Float(
            a.as_any()
                .downcast_ref::<Float64Array>()
                .context("expected floats")?
                .values()
                .to_vec(),
            num,
        ),
        Some(num) => Values::Int(ints(a)?, num),
        None if kind == "b1" => Values::Bool(bools(a)?),
        None => Values::Str(
            a.as_any()
                .downcast_ref::<StringArray>()
                .context("expected strings")?
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect(),
        ),
    })
}

fn ints(a: &ArrayRef) -> anyhow::Result<Vec<Option<i64>>> {
    Ok(a.as_any()
        .downcast_ref::<Int64Array>()
        .context("expected integers")?
        .iter()
        .collect())
}

fn bools(a: &ArrayRef) -> anyhow::Result<Vec<Option<bool>>> {
    Ok(a.as_any()
        .downcast_ref::<BooleanArray>()
        .context("expected booleans")?
        .iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use object_store::local::LocalFileSystem;
    use object_store::path::Path as ObjectPath;
    use tokio::runtime::Handle;

    use super::*;
    use crate::formats::fixture;
    use crate::query::counting::ReadCounter;
    use crate::slicing::h5ad::H5ad;
    use crate::slicing::ranged::hdf5_source;
    use crate::storage::zarr::zarr_store;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_zarr_store_slices_as_the_same_anndatas_h5ad() {
        // pbmc.zarr and pbmc.h5ad: one AnnData written twice by anndata.
        let dir = fixture("anndata/pbmc.zarr").canonicalize().unwrap();
        let file = fixture("anndata/pbmc.h5ad").canonicalize().unwrap();
        let counter = ReadCounter::default();
        let store = zarr_store(
            counter.wrap(Arc::new(LocalFileSystem::new())),
            ObjectPath::from_absolute_path(&dir).unwrap(),
            Handle::current(),
        );
        let source = hdf5_source(
            Arc::new(LocalFileSystem::new()),
            ObjectPath::from_absolute_path(&file).unwrap(),
            std::fs::metadata(&file).unwrap().len(),
            Handle::current(),
        );
        let c = counter.clone();
        tokio::task::spawn_blocking(move || {
            let z = ZarrAnnData::open(store, "zarr").unwrap();
            let h = H5ad::open(source, "h5ad").unwrap();
            assert_eq!(
                (z.x.rows, z.x.cols, z.x.layout, z.x.num),
                (120, 6, Layout::Csr, Num::F32)
            );
            for name in ["obs", "var"] {
                assert_eq!(z.frame(name).unwrap(), h.frame(name).unwrap(), "{name}");
            }
            assert!(matches!(
                z.frame("obs").unwrap().columns[0].1,
                Values::Cat { ref categories, .. } if categories.len() == 5
            ));
            // Rows 30..119 in steps of 5 from 1, and a scattered few; columns 2 and 0.
            let keep = [Some(1), None, Some(0), None, None, None];
            for rows in [
                (30..120).filter(|r| r % 5 == 1).collect::<Vec<u64>>(),
                vec![0, 7, 8, 9, 119],
            ] {
                let (a, b) = (
                    z.read_x(&rows, &keep, 2).unwrap(),
                    h.read_x(&rows, &keep, 2).unwrap(),
                );
                assert_eq!(a.n_rows(), rows.len());
                for (i, r) in rows.iter().enumerate() {
                    assert_eq!(a.dense_row(i), b.dense_row(i), "row {r}");
                }
            }
            assert!(c.requests() > 0, "read through object_store");
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_store_that_is_not_an_anndata_is_refused_by_name() {
        let dir = fixture("formats/visium.zarr").canonicalize().unwrap();
        let store = zarr_store(
            Arc::new(LocalFileSystem::new()),
            ObjectPath::from_absolute_path(&dir).unwrap(),
            Handle::current(),
        );
        let err = tokio::task::spawn_blocking(move || ZarrAnnData::open(store, "artifact S").err())
            .await
            .unwrap()
            .expect("a SpatialData store is not an AnnData");
        assert!(
            err.to_string()
                .contains("artifact S is not an AnnData zarr store"),
            "{err}"
        );
    }
}
