//! Where a slice reads an AnnData from: an `.h5ad` file (by ranged reads,
//! `ranged`) or an AnnData zarr store (by zarrs over object_store), where
//! the artifact is stored — and, for `lamin query`, their obs and var.

use anyhow::{bail, Context};
use zarrs::storage::ReadableStorage;

use super::frame::{widened, Frame};
use super::h5ad::{self, H5ad};
use super::matrix::Sparse;
use super::num::Num;
use super::ranged;
use super::x::{Layout, Matrix};
use super::zarr::ZarrAnnData;
use crate::artifacts::Located;
use crate::formats::anndata::{read_frame_zarr_store, Slot};
use crate::formats::zarr_node::ZarrNode;
use crate::query::counting::ReadCounter;
use crate::refused;
use crate::storage::zarr::zarr_store;
use crate::storage::Storage;

/// An AnnData open where it is stored.
pub enum AnnData {
    H5ad(H5ad),
    Zarr(ZarrAnnData),
}

impl AnnData {
    /// The artifact `a` (an `.h5ad` file or a `.zarr` store) opened, its
    /// reads counted by `counter`, with its obs and var read whole.
    pub async fn open(
        a: &Located,
        counter: &ReadCounter,
        what: &str,
    ) -> anyhow::Result<(AnnData, Frame, Frame)> {
        let opened = match (a.suffix.as_str(), a.folder) {
            (".h5ad", false) => {
                let source = stored_file(a, counter).await?;
                let what = what.to_string();
                tokio::task::spawn_blocking(move || H5ad::open(source, &what).map(AnnData::H5ad))
            }
            (".zarr", true) => {
                let store = stored_zarr(a, counter)?;
                let what = what.to_string();
                tokio::task::spawn_blocking(move || {
                    ZarrAnnData::open(store, &what).map(AnnData::Zarr)
                })
            }
            (suffix, folder) => bail!(refused!(
                "{what} is a {suffix:?} {}: lamin slice reads AnnData .h5ad files and .zarr stores",
                if folder { "folder" } else { "file" }
            )),
        };
        let file = opened.await??;
        let what = what.to_string();
        tokio::task::spawn_blocking(move || {
            let (obs, var) = frames(&file, &what)?;
            Ok((file, obs, var))
        })
        .await?
    }

    pub fn frame(&self, name: &str) -> anyhow::Result<Frame> {
        match self {
            AnnData::H5ad(f) => f.frame(name),
            AnnData::Zarr(z) => z.frame(name),
        }
    }

    /// X: how it is stored, its shape and the type of its values.
    pub fn x(&self) -> &Matrix {
        match self {
            AnnData::H5ad(f) => &f.x,
            AnnData::Zarr(z) => &z.x,
        }
    }

    /// X's rows and columns.
    pub fn shape(&self) -> (u64, u64) {
        (self.x().rows, self.x().cols)
    }

    /// How X is stored, and the type of its values.
    pub fn layout(&self) -> (Layout, Num) {
        (self.x().layout, self.x().num)
    }

    /// The matrix at `path` (`layers/counts`, `obsm/X_umap`), None when
    /// there is none. Blocking.
    pub fn matrix(&self, path: &str) -> anyhow::Result<Option<Matrix>> {
        match self {
            AnnData::H5ad(f) => f.matrix(path),
            AnnData::Zarr(z) => z.matrix(path),
        }
    }

    /// The names in the group `name` (`layers`, `obsm`, …); None when they
    /// cannot be known (a zarr store without consolidated metadata).
    /// Blocking.
    pub fn members(&self, name: &str) -> anyhow::Result<Option<Vec<String>>> {
        match self {
            AnnData::H5ad(f) => f.members(name),
            AnnData::Zarr(z) => z.members(name),
        }
    }

    /// Whether the group `name` (`uns`, `raw`) is there and holds
    /// anything. Blocking.
    pub fn has_content(&self, name: &str) -> anyhow::Result<bool> {
        // (No group: no members. A zarr group whose members cannot be
        // named, for want of consolidated metadata, may hold anything.)
        Ok(self.members(name)?.is_none_or(|m| !m.is_empty()))
    }

    /// A matrix at `rows` (ascending) and the columns `keep` maps to
    /// output positions, as CSR rows. Blocking.
    pub fn read_matrix(
        &self,
        m: &Matrix,
        rows: &[u64],
        keep: &[Option<u32>],
        n_out: usize,
    ) -> anyhow::Result<Sparse> {
        match self {
            AnnData::H5ad(f) => f.read_matrix(m, rows, keep, n_out),
            AnnData::Zarr(z) => z.read_matrix(m, rows, keep, n_out),
        }
    }

    /// X at `rows` (ascending) and the columns `keep` maps to output
    /// positions, as CSR rows. Blocking.
    pub fn read_x(
        &self,
        rows: &[u64],
        keep: &[Option<u32>],
        n_out: usize,
    ) -> anyhow::Result<Sparse> {
        self.read_matrix(self.x(), rows, keep, n_out)
    }
}

/// The obs and var of an open AnnData, each as long as X says.
pub fn frames(file: &AnnData, what: &str) -> anyhow::Result<(Frame, Frame)> {
    let read = |name: &str| file.frame(name).with_context(|| unreadable(what, name));
    let (obs, var) = (read("obs")?, read("var")?);
    let (n_obs, n_vars) = file.shape();
    if obs.index.len() as u64 != n_obs || var.index.len() as u64 != n_vars {
        bail!(refused!(
            "{what}: X is {} × {} but obs has {} rows and var {}: the file is damaged",
            n_obs,
            n_vars,
            obs.index.len(),
            var.index.len()
        ));
    }
    Ok((obs, var))
}

/// An artifact's file where it is stored, as the byte source of the HDF5
/// reader (its reads counted by `counter`): open it with [`H5ad::open`] on
/// a blocking thread.
pub async fn stored_file(
    a: &Located,
    counter: &ReadCounter,
) -> anyhow::Result<hdf5_reader::storage::DynStorage> {
    let storage = Storage::open(&a.root)?;
    let path = storage.path(&a.object);
    let size = match a.size {
        Some(s) => s as u64,
        None => storage.store().head(&path).await?.size,
    };
    Ok(ranged::hdf5_source(
        counter.wrap(storage.shared_store()),
        path,
        size,
        tokio::runtime::Handle::current(),
    ))
}

/// Why an AnnData's table could not be read.
fn unreadable(what: &str, slot: &str) -> String {
    format!(
        "{what}: its {slot} cannot be read (it is truncated or damaged, or not written by anndata)"
    )
}

/// An artifact's zarr store (a folder) where it is stored, as zarrs reads
/// one (its reads counted by `counter`): use it on a blocking thread.
pub fn stored_zarr(a: &Located, counter: &ReadCounter) -> anyhow::Result<ReadableStorage> {
    let storage = Storage::open(&a.root)?;
    Ok(zarr_store(
        counter.wrap(storage.shared_store()),
        storage.path(&a.object),
        tokio::runtime::Handle::current(),
    ))
}

/// obs or var of an artifact's `.h5ad` or AnnData `.zarr` store where it
/// is stored, read by ranges (its reads counted by `counter`) as an arrow
/// table: what `lamin query` reads of them, without copying the file or
/// store (X, most of it, is never read). None for other artifacts (a
/// SpatialData store, whose tables are read otherwise).
pub async fn stored_frame(
    a: &Located,
    slot: &str,
    counter: &ReadCounter,
) -> anyhow::Result<Option<arrow::record_batch::RecordBatch>> {
    let what = format!("artifact {}", a.uid);
    match (a.suffix.as_str(), a.folder, slot) {
        (".h5ad", false, "obs" | "var") => {
            let source = stored_file(a, counter).await?;
            let slot = slot.to_string();
            tokio::task::spawn_blocking(move || {
                let file = h5ad::open_anndata(source, &what)?;
                // As wide as `formats::anndata` gives obs and var of a
                // file read whole.
                let frame =
                    h5ad::read_frame(&file, &slot).with_context(|| unreadable(&what, &slot))?;
                widened(frame.to_batch(false)?).map(Some)
            })
            .await?
        }
        (".zarr", true, "obs" | "var") => {
            let store = stored_zarr(a, counter)?;
            let slot = if slot == "obs" { Slot::Obs } else { Slot::Var };
            tokio::task::spawn_blocking(move || {
                let root = ZarrNode::read(store.as_ref(), &[])
                    .with_context(|| format!("{what} cannot be read"))?;
                if root.is_some_and(|r| r.attrs.get("spatialdata_attrs").is_some()) {
                    return Ok(None);
                }
                read_frame_zarr_store(&store, slot)
                    .map(Some)
                    .with_context(|| unreadable(&what, slot.name()))
            })
            .await?
        }
        _ => Ok(None),
    }
}
