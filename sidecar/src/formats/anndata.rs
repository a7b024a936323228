//! AnnData files — `.h5ad` (HDF5, read with the HDF5 library) and `.zarr`
//! stores (folders; zarr format 2 or 3 as anndata writes them, read with zarrs): what
//! one holds — n_obs, n_vars, the columns of `obs` and `var` (categoricals
//! with their categories) — and the values of one column or index, for
//! curation.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};

use zarrs::storage::ReadableStorage;

use super::zarr_node::{is_plain_name, ZarrNode};

/// One column of `obs` or `var`.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameColumn {
    pub name: String,
    pub dtype: &'static str,
    /// The categories of a categorical column.
    pub categories: Option<Vec<String>>,
}

/// What an AnnData holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnDataInfo {
    pub n_obs: i64,
    pub n_vars: i64,
    pub obs: Vec<FrameColumn>,
    pub var: Vec<FrameColumn>,
}

pub(crate) fn open(path: &Path) -> anyhow::Result<hdf5::File> {
    hdf5::File::open(path)
        .map_err(|e| anyhow::anyhow!("{} is not a readable h5ad (HDF5) file: {e}", path.display()))
}

/// A string attribute (anndata writes them as variable-length UTF-8).
pub(crate) fn string_attr(obj: &hdf5::Location, name: &str) -> Option<String> {
    let attr = obj.attr(name).ok()?;
    attr.read_scalar::<VarLenUnicode>()
        .map(|s| s.as_str().to_string())
        .or_else(|_| {
            attr.read_scalar::<VarLenAscii>()
                .map(|s| s.as_str().to_string())
        })
        .ok()
}

/// A 1-d dataset of strings.
pub(crate) fn strings(ds: &hdf5::Dataset) -> anyhow::Result<Vec<String>> {
    if let Ok(v) = ds.read_1d::<VarLenUnicode>() {
        return Ok(v.iter().map(|s| s.as_str().to_string()).collect());
    }
    let v = ds
        .read_1d::<VarLenAscii>()
        .with_context(|| format!("{} is not a string array", ds.name()))?;
    Ok(v.iter().map(|s| s.as_str().to_string()).collect())
}

fn dtype_of(ds: &hdf5::Dataset) -> &'static str {
    match ds.dtype().and_then(|t| t.to_descriptor()) {
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => "int",
        Ok(TypeDescriptor::Float(_)) => "float",
        Ok(TypeDescriptor::Boolean | TypeDescriptor::Enum(_)) => "bool",
        Ok(
            TypeDescriptor::VarLenUnicode
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_),
        ) => "str",
        _ => "dict",
    }
}

/// The index name and columns of a dataframe group (obs or var), in order.
pub(crate) fn frame(file: &hdf5::File, name: &str) -> anyhow::Result<(i64, Vec<FrameColumn>)> {
    let group = file
        .group(name)
        .with_context(|| format!("no {name} group: not an AnnData file"))?;
    let index = string_attr(&group, "_index").unwrap_or_else(|| "_index".into());
    let n = group
        .dataset(&index)
        .with_context(|| format!("{name} has no index {index:?}"))?
        .shape()
        .first()
        .copied()
        .unwrap_or(0) as i64;
    let order: Vec<String> = group
        .attr("column-order")
        .ok()
        .and_then(|a| a.read_1d::<VarLenUnicode>().ok())
        .map(|v| v.iter().map(|s| s.as_str().to_string()).collect())
        .unwrap_or_else(|| {
            group
                .member_names()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| *m != index && !m.starts_with("__"))
                .collect()
        });
    let mut columns = Vec::with_capacity(order.len());
    for col in order {
        if let Ok(g) = group.group(&col) {
            if string_attr(&g, "encoding-type").as_deref() == Some("categorical") {
                let categories = category_texts(&h5_values(&g.dataset("categories")?)?)?;
                columns.push(FrameColumn {
                    name: col,
                    dtype: "cat",
                    categories: Some(categories),
                });
            } else {
                // Nullable integers/booleans and other encoded columns.
                let dtype = match string_attr(&g, "encoding-type").as_deref() {
                    Some("nullable-integer") => "int",
                    Some("nullable-boolean") => "bool",
                    _ => "dict",
                };
                columns.push(FrameColumn {
                    name: col,
                    dtype,
                    categories: None,
                });
            }
        } else {
            let ds = group
                .dataset(&col)
                .with_context(|| format!("{name}/{col} cannot be read"))?;
            columns.push(FrameColumn {
                name: col,
                dtype: dtype_of(&ds),
                categories: None,
            });
        }
    }
    Ok((n, columns))
}

/// Describe a local .h5ad file.
pub fn describe_h5ad(path: &Path) -> anyhow::Result<AnnDataInfo> {
    let file = open(path)?;
    let (n_obs, obs) = frame(&file, "obs")?;
    let (n_vars, var) = frame(&file, "var")?;
    Ok(AnnDataInfo {
        n_obs,
        n_vars,
        obs,
        var,
    })
}

/// A zarr array of strings (vlen-utf8, as anndata writes them in v2 and v3).
pub(crate) fn zarr_strings(store: &ReadableStorage, path: &str) -> anyhow::Result<Vec<String>> {
    let array = zarrs::array::Array::open(Arc::clone(store), path)
        .with_context(|| format!("cannot open zarr array {path}"))?;
    Ok(array.retrieve_array_subset::<Vec<String>>(&array.subset_all())?)
}

/// The lamin dtype of a zarr array's numpy kind code (see [`ZarrNode::kind`]).
fn zarr_dtype(kind: &str) -> &'static str {
    match kind.chars().next() {
        Some('i' | 'u') => "int",
        Some('f') => "float",
        Some('b') => "bool",
        Some('O' | 'U' | 'S') => "str",
        Some('M') => "datetime",
        _ => "dict",
    }
}

/// The index name and length and the columns of a dataframe group of a
/// zarr AnnData (v2 or v3).
pub(crate) fn zarr_frame(
    store: &ReadableStorage,
    name: &str,
) -> anyhow::Result<(String, i64, Vec<FrameColumn>)> {
    // (`name` may be a path: `raw/var`.)
    let at: Vec<&str> = name.split('/').collect();
    let node = |child: &str| {
        let parts: Vec<&str> = at.iter().copied().chain([child]).collect();
        ZarrNode::read(store.as_ref(), &parts)
    };
    let group = ZarrNode::read(store.as_ref(), &at)?
        .filter(|n| n.is_group)
        .with_context(|| format!("no {name} group: not an AnnData zarr store"))?;
    let index = group.attr("_index").unwrap_or("_index").to_string();
    let plain = |n: &str| -> anyhow::Result<()> {
        if !is_plain_name(n) {
            bail!("{name} names {n:?}, which is not a column of the store");
        }
        Ok(())
    };
    plain(&index)?;
    let n = node(&index)?
        .and_then(|a| a.shape.first().copied())
        .with_context(|| format!("{name} has no index {index:?}"))?;
    let order: Vec<String> = group
        .attrs
        .get("column-order")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut columns = Vec::with_capacity(order.len());
    for col in order {
        plain(&col)?;
        let column = node(&col)?.with_context(|| format!("{name}/{col} cannot be read"))?;
        let (dtype, categories) = if column.is_group {
            match column.attr("encoding-type").unwrap_or("") {
                "categorical" => (
                    "cat",
                    Some(category_texts(&zarr_column(
                        store,
                        &format!("/{name}/{col}/categories"),
                    )?)?),
                ),
                "nullable-integer" => ("int", None),
                "nullable-boolean" => ("bool", None),
                _ => ("dict", None),
            }
        } else {
            (zarr_dtype(&column.kind), None)
        };
        columns.push(FrameColumn {
            name: col,
            dtype,
            categories,
        });
    }
    Ok((index, n, columns))
}

/// A local folder as a zarr store.
fn local_store(dir: &Path) -> anyhow::Result<ReadableStorage> {
    Ok(Arc::new(zarrs::filesystem::FilesystemStore::new(dir)?))
}

/// Describe a local AnnData zarr store (a folder; zarr format 2 or 3).
pub fn describe_zarr(dir: &Path) -> anyhow::Result<AnnDataInfo> {
    // The path and the reason in one message, as the callers show it.
    describe_zarr_store(&local_store(dir)?).map_err(|e| anyhow::anyhow!("{}: {e:#}", dir.display()))
}

/// Whether a zarr store is an AnnData: its root says `encoding-type:
/// anndata` (one read of the root's metadata).
pub(crate) fn is_anndata_store(store: &ReadableStorage) -> anyhow::Result<bool> {
    let root = ZarrNode::read(store.as_ref(), &[])?;
    Ok(root.as_ref().and_then(|r| r.attr("encoding-type")) == Some("anndata"))
}

const NOT_ANNDATA_STORE: &str = "not an AnnData zarr store (no encoding-type anndata)";

/// Describe an AnnData zarr store, local or where it is stored.
pub fn describe_zarr_store(store: &ReadableStorage) -> anyhow::Result<AnnDataInfo> {
    if !is_anndata_store(store)? {
        bail!(NOT_ANNDATA_STORE);
    }
    let (_, n_obs, obs) = zarr_frame(store, "obs")?;
    let (_, n_vars, var) = zarr_frame(store, "var")?;
    Ok(AnnDataInfo {
        n_obs,
        n_vars,
        obs,
        var,
    })
}

/// The `obs` or `var` table of an AnnData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Obs,
    Var,
}

impl Slot {
    pub fn name(self) -> &'static str {
        match self {
            Slot::Obs => "obs",
            Slot::Var => "var",
        }
    }
}

/// The output name of a frame's index: its dataset name, `index` for anndata's `_index`.
pub(crate) fn index_name(index: &str) -> String {
    if index == "_index" {
        "index".to_string()
    } else {
        index.to_string()
    }
}

/// Categorical codes as their categories' values, in the categories' own
/// type (text, numbers, booleans); a code that names no category (-1:
/// missing) is NULL.
pub(crate) fn decode_categorical(codes: &[i64], categories: &ArrayRef) -> anyhow::Result<ArrayRef> {
    let n = categories.len() as i64;
    let at = Int64Array::from_iter(
        codes
            .iter()
            .map(|c| Some(*c).filter(|c| (0..n).contains(c))),
    );
    Ok(arrow::compute::take(categories.as_ref(), &at, None)?)
}

/// A categorical's categories as text (numbers and booleans as they print),
/// for describing a column and validating its values.
fn category_texts(categories: &ArrayRef) -> anyhow::Result<Vec<String>> {
    // (Booleans as pandas prints them.)
    if let Some(b) = categories.as_any().downcast_ref::<BooleanArray>() {
        return Ok(b
            .iter()
            .map(|v| if v == Some(true) { "True" } else { "False" }.to_string())
            .collect());
    }
    let text = arrow::compute::kernels::cast::cast(categories, &arrow::datatypes::DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .context("categories as text")?;
    Ok(text
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// A 1-d dataset of a dataframe (a column, or a categorical's categories)
/// as arrow: whole numbers as 64-bit integers, numbers as 64-bit floats,
/// booleans, text.
fn h5_values(ds: &hdf5::Dataset) -> anyhow::Result<ArrayRef> {
    Ok(match dtype_of(ds) {
        "int" => Arc::new(Int64Array::from(ds.read_1d::<i64>()?.to_vec())),
        "float" => Arc::new(Float64Array::from(ds.read_1d::<f64>()?.to_vec())),
        "bool" => Arc::new(BooleanArray::from(ds.read_1d::<bool>()?.to_vec())),
        "str" => Arc::new(StringArray::from(strings(ds)?)),
        other => bail!("{} holds {other} values, which are not read", ds.name()),
    })
}

/// Values with a mask (true: missing), as anndata writes nullable columns.
pub(crate) fn masked<T>(values: Vec<T>, mask: &[bool]) -> Vec<Option<T>> {
    values
        .into_iter()
        .zip(mask.iter().chain(std::iter::repeat(&false)))
        .map(|(v, m)| if *m { None } else { Some(v) })
        .collect()
}

fn batch_of(fields: Vec<(String, ArrayRef)>) -> anyhow::Result<RecordBatch> {
    Ok(RecordBatch::try_from_iter_with_nullable(
        fields.into_iter().map(|(n, a)| (n, a, true)),
    )?)
}

/// The `obs` or `var` table of a local AnnData, by its suffix: a `.zarr`
/// store, else an `.h5ad` file (see [`read_frame_h5ad`], [`read_frame_zarr`]).
pub fn read_frame(path: &Path, suffix: &str, slot: Slot) -> anyhow::Result<RecordBatch> {
    if suffix == ".zarr" {
        read_frame_zarr(path, slot)
    } else {
        read_frame_h5ad(path, slot)
    }
}

/// The `obs` or `var` table of a local .h5ad file as one arrow batch: the
/// index first, then the columns in order (categoricals as their strings,
/// nullable integers and booleans with NULLs); columns of other encodings
/// are left out.
pub fn read_frame_h5ad(path: &Path, slot: Slot) -> anyhow::Result<RecordBatch> {
    read_h5_frame(&open(path)?, slot.name())
}

/// The dataframe group at `name` (e.g. `obs`, or `mod/rna/obs` in a MuData)
/// of an HDF5 file as one arrow batch (see [`read_frame_h5ad`]).
pub(crate) fn read_h5_frame(file: &hdf5::File, name: &str) -> anyhow::Result<RecordBatch> {
    let (_, columns) = frame(file, name)?;
    let group = file.group(name)?;
    let index = string_attr(&group, "_index").unwrap_or_else(|| "_index".into());
    let mut fields: Vec<(String, ArrayRef)> = vec![(
        index_name(&index),
        Arc::new(StringArray::from(strings(&group.dataset(&index)?)?)) as ArrayRef,
    )];
    for col in columns {
        let array: ArrayRef = match group.group(&col.name) {
            Ok(g) => match string_attr(&g, "encoding-type").as_deref() {
                Some("categorical") => decode_categorical(
                    &g.dataset("codes")?.read_1d::<i64>()?.to_vec(),
                    &h5_values(&g.dataset("categories")?)?,
                )
                .with_context(|| format!("{name}/{} cannot be read", col.name))?,
                Some("nullable-integer") => {
                    let mask = g.dataset("mask")?.read_1d::<bool>()?.to_vec();
                    let values = g.dataset("values")?.read_1d::<i64>()?.to_vec();
                    Arc::new(Int64Array::from_iter(masked(values, &mask)))
                }
                Some("nullable-boolean") => {
                    let mask = g.dataset("mask")?.read_1d::<bool>()?.to_vec();
                    let values = g.dataset("values")?.read_1d::<bool>()?.to_vec();
                    Arc::new(BooleanArray::from_iter(masked(values, &mask)))
                }
                _ => continue,
            },
            Err(_) => {
                let ds = group.dataset(&col.name)?;
                let read = || h5_values(&ds);
                match col.dtype {
                    "int" | "float" | "bool" | "str" => {
                        read().with_context(|| format!("{name}/{} cannot be read", col.name))?
                    }
                    _ => continue,
                }
            }
        };
        fields.push((col.name, array));
    }
    batch_of(fields)
}

/// A zarr array (v2 or v3) of any element type anndata writes for a column, as arrow.
pub(crate) fn zarr_column(store: &ReadableStorage, path: &str) -> anyhow::Result<ArrayRef> {
    let array = zarrs::array::Array::open(Arc::clone(store), path)
        .with_context(|| format!("cannot open zarr array {path}"))?;
    let relative: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let kind = ZarrNode::read(store.as_ref(), &relative)?
        .map(|n| n.kind)
        .unwrap_or_default();
    let all = array.subset_all();
    macro_rules! get {
        ($t:ty) => {
            array
                .retrieve_array_subset::<Vec<$t>>(&all)
                .with_context(|| format!("cannot read zarr array {path}"))?
        };
    }
    Ok(match kind.as_str() {
        "i1" => Arc::new(Int64Array::from_iter_values(
            get!(i8).into_iter().map(i64::from),
        )),
        "i2" => Arc::new(Int64Array::from_iter_values(
            get!(i16).into_iter().map(i64::from),
        )),
        "i4" => Arc::new(Int64Array::from_iter_values(
            get!(i32).into_iter().map(i64::from),
        )),
        "i8" => Arc::new(Int64Array::from(get!(i64))),
        "u1" => Arc::new(Int64Array::from_iter_values(
            get!(u8).into_iter().map(i64::from),
        )),
        "u2" => Arc::new(Int64Array::from_iter_values(
            get!(u16).into_iter().map(i64::from),
        )),
        "u4" => Arc::new(Int64Array::from_iter_values(
            get!(u32).into_iter().map(i64::from),
        )),
        "f4" => Arc::new(Float64Array::from_iter_values(
            get!(f32).into_iter().map(f64::from),
        )),
        "f8" => Arc::new(Float64Array::from(get!(f64))),
        "b1" => Arc::new(BooleanArray::from(get!(bool))),
        "O" => Arc::new(StringArray::from(get!(String))),
        "u8" => Arc::new(Int64Array::from(
            get!(u64)
                .into_iter()
                .map(|v| {
                    i64::try_from(v).map_err(|_| {
                        anyhow::anyhow!(
                            "zarr array {path} holds the unsigned value {v}, above 2^63 - 1, which lamin does not read"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<i64>>>()?,
        )),
        other => bail!("zarr array {path} has dtype {other:?}, which lamin does not read"),
    })
}

fn int64s(array: &ArrayRef) -> anyhow::Result<Vec<i64>> {
    Ok(array
        .as_any()
        .downcast_ref::<Int64Array>()
        .context("expected integer codes")?
        .values()
        .to_vec())
}

/// The `obs` or `var` table of a local AnnData zarr store as one arrow
/// batch (as [`read_frame_h5ad`] does for .h5ad files).
pub fn read_frame_zarr(dir: &Path, slot: Slot) -> anyhow::Result<RecordBatch> {
    read_frame_zarr_store(&local_store(dir)?, slot)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", dir.display()))
}

/// The `obs` or `var` table of an AnnData zarr store, local or where it is
/// stored (only obs's or var's arrays are read), as one arrow batch.
pub fn read_frame_zarr_store(store: &ReadableStorage, slot: Slot) -> anyhow::Result<RecordBatch> {
    let name = slot.name();
    // (Only the root is checked: the other table is not read.)
    if !is_anndata_store(store)? {
        bail!(NOT_ANNDATA_STORE);
    }
    let (index, _, columns) = zarr_frame(store, name)?;
    let mut fields: Vec<(String, ArrayRef)> = vec![(
        index_name(&index),
        Arc::new(StringArray::from(zarr_strings(
            store,
            &format!("/{name}/{index}"),
        )?)) as ArrayRef,
    )];
    for col in columns {
        let base = format!("/{name}/{}", col.name);
        let node = ZarrNode::read(store.as_ref(), &[name, &col.name])?;
        let array: ArrayRef = if let Some(group) = node.filter(|n| n.is_group) {
            let encoding = group.attr("encoding-type").unwrap_or_default().to_string();
            match encoding.as_str() {
                "categorical" => decode_categorical(
                    &int64s(&zarr_column(store, &format!("{base}/codes"))?)?,
                    &zarr_column(store, &format!("{base}/categories"))?,
                )?,
                "nullable-integer" | "nullable-boolean" => {
                    let mask = zarr_column(store, &format!("{base}/mask"))?;
                    let values = zarr_column(store, &format!("{base}/values"))?;
                    let mask = mask
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .context("expected a boolean mask")?;
                    let nulls = arrow::buffer::NullBuffer::from(
                        mask.iter().map(|m| m != Some(true)).collect::<Vec<bool>>(),
                    );
                    arrow::array::make_array(
                        values
                            .into_data()
                            .into_builder()
                            .nulls(Some(nulls))
                            .build()?,
                    )
                }
                _ => continue,
            }
        } else {
            match col.dtype {
                "int" | "float" | "bool" | "str" => zarr_column(store, &base)?,
                _ => continue,
            }
        };
        fields.push((col.name, array));
    }
    batch_of(fields)
}

/// A 1-d dataset of strings written as anndata writes them.
pub(crate) fn write_strings(
    group: &hdf5::Group,
    name: &str,
    values: &[String],
) -> anyhow::Result<()> {
    let values: Vec<VarLenUnicode> = values
        .iter()
        .map(|v| v.parse::<VarLenUnicode>())
        .collect::<Result<_, _>>()?;
    let ds = group
        .new_dataset_builder()
        .with_data(&values)
        .create(name)?;
    for (attr, value) in [
        ("encoding-type", "string-array"),
        ("encoding-version", "0.2.0"),
    ] {
        ds.new_attr::<VarLenUnicode>()
            .shape(())
            .create(attr)?
            .write_scalar(&value.parse::<VarLenUnicode>()?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn anndata_written_by_anndata_is_described() {
        let info = describe_h5ad(&fixture("anndata/pbmc.h5ad")).unwrap();
        assert_eq!((info.n_obs, info.n_vars), (120, 6));
        let obs: Vec<(&str, &str)> = info
            .obs
            .iter()
            .map(|c| (c.name.as_str(), c.dtype))
            .collect();
        assert_eq!(
            obs,
            [
                ("cell_type", "cat"),
                ("n_genes", "int"),
                ("donor", "cat"),
                ("pct_mito", "float")
            ]
        );
        // anndata stores string columns as categoricals.
        assert_eq!(info.obs[0].categories.as_ref().unwrap().len(), 5);
        assert_eq!(info.var[0].name, "gene_symbol");
        assert!(describe_h5ad(&fixture("anndata/truncated.h5ad")).is_err());
    }

    #[test]
    fn a_zarr_store_written_by_anndata_reads_like_its_h5ad() {
        let zarr = describe_zarr(&fixture("anndata/pbmc.zarr")).unwrap();
        let h5ad = describe_h5ad(&fixture("anndata/pbmc.h5ad")).unwrap();
        assert_eq!(zarr, h5ad);
        assert!(describe_zarr(&fixture("anndata/..")).is_err());
    }

    #[test]
    fn a_zarr_format_3_store_written_by_anndata_is_read() {
        let dir = fixture("formats/pbmc_v3.zarr");
        let info = describe_zarr(&dir).unwrap();
        assert_eq!((info.n_obs, info.n_vars), (40, 5));
        let obs: Vec<(&str, &str)> = info
            .obs
            .iter()
            .map(|c| (c.name.as_str(), c.dtype))
            .collect();
        assert_eq!(obs, [("cell_type", "cat"), ("n_genes", "int")]);
        assert_eq!(
            info.obs[0].categories.as_deref(),
            Some(&["B cell".to_string(), "T cell".into(), "monocyte".into()][..])
        );
        let var: Vec<(&str, &str)> = info
            .var
            .iter()
            .map(|c| (c.name.as_str(), c.dtype))
            .collect();
        assert_eq!(var, [("gene_symbol", "str"), ("highly_variable", "bool")]);
        let obs = read_frame_zarr(&dir, Slot::Obs).unwrap();
        assert_eq!((obs.num_rows(), obs.num_columns()), (40, 3));
        let cell_types = obs
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(cell_types.value(0), "T cell");
        assert_eq!(cell_types.value(2), "monocyte");
        let var = read_frame_zarr(&dir, Slot::Var).unwrap();
        let symbols = var
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(symbols.value(4), "ACTB");
    }

    #[test]
    fn obs_and_var_read_as_tables_alike_from_h5ad_and_zarr() {
        let h5ad = read_frame_h5ad(&fixture("anndata/pbmc.h5ad"), Slot::Obs).unwrap();
        let zarr = read_frame_zarr(&fixture("anndata/pbmc.zarr"), Slot::Obs).unwrap();
        assert_eq!(h5ad.num_rows(), 120);
        let names: Vec<String> = h5ad
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            ["index", "cell_type", "n_genes", "donor", "pct_mito"]
        );
        assert_eq!(h5ad, zarr);
        let var = read_frame_h5ad(&fixture("anndata/pbmc.h5ad"), Slot::Var).unwrap();
        assert_eq!((var.num_rows(), var.num_columns()), (6, 2));
        assert_eq!(
            var,
            read_frame_zarr(&fixture("anndata/pbmc.zarr"), Slot::Var).unwrap()
        );
        assert!(read_frame_h5ad(&fixture("anndata/truncated.h5ad"), Slot::Obs).is_err());
    }

    /// Categories need not be text: pandas keeps integers, floats and
    /// booleans as categories, and anndata writes them so.
    #[test]
    fn categories_of_numbers_and_booleans_are_described_and_read() {
        let h5ad = describe_h5ad(&fixture("anndata/typed.h5ad")).unwrap();
        let zarr = describe_zarr(&fixture("anndata/typed.zarr")).unwrap();
        assert_eq!(h5ad, zarr);
        let categories = |name: &str| {
            h5ad.obs
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.categories.clone())
                .unwrap()
        };
        assert_eq!(categories("cluster"), ["1", "3", "12"]);
        assert_eq!(categories("dose"), ["0.5", "2.25"]);
        assert_eq!(categories("treated"), ["False", "True"]);
        assert_eq!(categories("stage"), ["early", "mid", "late"]);
        let table = read_frame_h5ad(&fixture("anndata/typed.h5ad"), Slot::Obs).unwrap();
        assert_eq!(
            table,
            read_frame_zarr(&fixture("anndata/typed.zarr"), Slot::Obs).unwrap()
        );
        let cluster = table.column_by_name("cluster").unwrap();
        let cluster = cluster.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(cluster.values()[..3], [3, 1, 12]);
    }
}
