//! AnnData files — `.h5ad` (HDF5, read with the HDF5 library) and `.zarr`
//! stores (folders; zarr v2 as anndata writes them, read with zarrs): what
//! one holds — n_obs, n_vars, the columns of `obs` and `var` (categoricals
//! with their categories) — and the values of one column or index, for
//! curation.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};
use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};

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

fn open(path: &Path) -> anyhow::Result<hdf5::File> {
    hdf5::File::open(path)
        .map_err(|e| anyhow::anyhow!("{} is not a readable h5ad (HDF5) file: {e}", path.display()))
}

/// A string attribute (anndata writes them as variable-length UTF-8).
fn string_attr(obj: &hdf5::Location, name: &str) -> Option<String> {
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
fn strings(ds: &hdf5::Dataset) -> anyhow::Result<Vec<String>> {
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
fn frame(file: &hdf5::File, name: &str) -> anyhow::Result<(i64, Vec<FrameColumn>)> {
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
                let categories = strings(&g.dataset("categories")?)?;
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

/// The distinct values of `obs.<column>`, `var.<column>`, `obs.index` or
/// `var.index` of a local .h5ad file.
pub fn distinct_values(path: &Path, column: &str) -> anyhow::Result<Vec<String>> {
    let Some((frame_name, col)) = column
        .split_once('.')
        .filter(|(f, _)| *f == "obs" || *f == "var")
    else {
        bail!("column {column:?} of an AnnData: expected obs.<column>, var.<column>, obs.index or var.index");
    };
    let file = open(path)?;
    let group = file.group(frame_name)?;
    let name = if col == "index" {
        string_attr(&group, "_index").unwrap_or_else(|| "_index".into())
    } else {
        col.to_string()
    };
    let values: Vec<String> = if let Ok(g) = group.group(&name) {
        // Categorical: the categories its codes use.
        let categories = strings(&g.dataset("categories")?)?;
        let codes = g.dataset("codes")?.read_1d::<i64>()?;
        let used: BTreeSet<usize> = codes
            .iter()
            .filter(|c| **c >= 0)
            .map(|c| *c as usize)
            .collect();
        used.into_iter()
            .filter_map(|i| categories.get(i).cloned())
            .collect()
    } else {
        let ds = group
            .dataset(&name)
            .with_context(|| format!("no column {col:?} in {frame_name}"))?;
        match dtype_of(&ds) {
            "str" => strings(&ds)?,
            _ => ds.read_1d::<f64>()?.iter().map(|v| v.to_string()).collect(),
        }
    };
    Ok(values
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// The JSON of a zarr v2 metadata file (`.zattrs`, `.zarray`), or None.
fn zarr_json(dir: &Path, parts: &[&str], file: &str) -> Option<serde_json::Value> {
    let mut p = dir.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p.push(file);
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// A zarr v2 array of strings (vlen-utf8, blosc-compressed as anndata writes them).
fn zarr_strings(dir: &Path, path: &str) -> anyhow::Result<Vec<String>> {
    let store = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(dir)?);
    let array = zarrs::array::Array::open(store, path)
        .with_context(|| format!("cannot open zarr array {path}"))?;
    Ok(array.retrieve_array_subset::<Vec<String>>(&array.subset_all())?)
}

/// The lamin dtype of a zarr v2 (numpy) dtype string.
fn zarr_dtype(numpy: &str) -> &'static str {
    let kind = numpy.trim_start_matches(['<', '>', '|', '=']);
    match kind.chars().next() {
        Some('i' | 'u') => "int",
        Some('f') => "float",
        Some('b') => "bool",
        Some('O' | 'U' | 'S') => "str",
        Some('M') => "datetime",
        _ => "dict",
    }
}

/// The index length and columns of a dataframe group of a zarr AnnData.
fn zarr_frame(dir: &Path, name: &str) -> anyhow::Result<(i64, Vec<FrameColumn>)> {
    let attrs = zarr_json(dir, &[name], ".zattrs").with_context(|| {
        if dir.join(name).join("zarr.json").exists() {
            format!("{name}: zarr format 3 stores are not read yet")
        } else {
            format!("no {name} group: not an AnnData zarr store")
        }
    })?;
    let index = attrs
        .get("_index")
        .and_then(|v| v.as_str())
        .unwrap_or("_index");
    let n = zarr_json(dir, &[name, index], ".zarray")
        .and_then(|a| a.get("shape")?.get(0)?.as_i64())
        .with_context(|| format!("{name} has no index {index:?}"))?;
    let order: Vec<String> = attrs
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
        if let Some(group) = zarr_json(dir, &[name, &col], ".zattrs")
            .filter(|_| dir.join(name).join(&col).join(".zgroup").exists())
        {
            let encoding = group
                .get("encoding-type")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let (dtype, categories) = match encoding {
                "categorical" => (
                    "cat",
                    Some(zarr_strings(dir, &format!("/{name}/{col}/categories"))?),
                ),
                "nullable-integer" => ("int", None),
                "nullable-boolean" => ("bool", None),
                _ => ("dict", None),
            };
            columns.push(FrameColumn {
                name: col,
                dtype,
                categories,
            });
        } else {
            let array = zarr_json(dir, &[name, &col], ".zarray")
                .with_context(|| format!("{name}/{col} cannot be read"))?;
            let numpy = array.get("dtype").and_then(|v| v.as_str()).unwrap_or("");
            columns.push(FrameColumn {
                name: col,
                dtype: zarr_dtype(numpy),
                categories: None,
            });
        }
    }
    Ok((n, columns))
}

/// Describe a local AnnData zarr store (a folder).
pub fn describe_zarr(dir: &Path) -> anyhow::Result<AnnDataInfo> {
    let root = zarr_json(dir, &[], ".zattrs").unwrap_or_default();
    if root.get("encoding-type").and_then(|v| v.as_str()) != Some("anndata") {
        bail!(
            "{} is not an AnnData zarr store (no encoding-type anndata)",
            dir.display()
        );
    }
    let (n_obs, obs) = zarr_frame(dir, "obs")?;
    let (n_vars, var) = zarr_frame(dir, "var")?;
    Ok(AnnDataInfo {
        n_obs,
        n_vars,
        obs,
        var,
    })
}

/// The distinct values of a column or index of a local AnnData zarr store
/// (categoricals: their categories).
pub fn distinct_values_zarr(dir: &Path, column: &str) -> anyhow::Result<Vec<String>> {
    let Some((frame_name, col)) = column
        .split_once('.')
        .filter(|(f, _)| *f == "obs" || *f == "var")
    else {
        bail!("column {column:?} of an AnnData: expected obs.<column>, var.<column>, obs.index or var.index");
    };
    let attrs = zarr_json(dir, &[frame_name], ".zattrs").context("not an AnnData zarr store")?;
    let name = if col == "index" {
        attrs
            .get("_index")
            .and_then(|v| v.as_str())
            .unwrap_or("_index")
            .to_string()
    } else {
        col.to_string()
    };
    let path = if dir.join(frame_name).join(&name).join(".zgroup").exists() {
        format!("/{frame_name}/{name}/categories")
    } else if dir.join(frame_name).join(&name).join(".zarray").exists() {
        format!("/{frame_name}/{name}")
    } else {
        bail!("no column {col:?} in {frame_name}");
    };
    let values = zarr_strings(dir, &path)?;
    Ok(values
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/anndata")
            .join(name)
    }

    #[test]
    fn anndata_written_by_anndata_is_described() {
        let info = describe_h5ad(&fixture("pbmc.h5ad")).unwrap();
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
        let genes = distinct_values(&fixture("pbmc.h5ad"), "var.index").unwrap();
        assert_eq!(genes.len(), 6);
        assert!(genes.contains(&"ENSG00000010610".to_string()));
        let types = distinct_values(&fixture("pbmc.h5ad"), "obs.cell_type").unwrap();
        assert!(types.contains(&"T lymphocyte".to_string()));
        assert!(describe_h5ad(&fixture("truncated.h5ad")).is_err());
        assert!(distinct_values(&fixture("pbmc.h5ad"), "cell_type").is_err());
    }

    #[test]
    fn a_zarr_store_written_by_anndata_reads_like_its_h5ad() {
        let zarr = describe_zarr(&fixture("pbmc.zarr")).unwrap();
        let h5ad = describe_h5ad(&fixture("pbmc.h5ad")).unwrap();
        assert_eq!(zarr, h5ad);
        assert_eq!(
            distinct_values_zarr(&fixture("pbmc.zarr"), "var.index").unwrap(),
            distinct_values(&fixture("pbmc.h5ad"), "var.index").unwrap()
        );
        assert_eq!(
            distinct_values_zarr(&fixture("pbmc.zarr"), "obs.cell_type")
                .unwrap()
                .len(),
            5
        );
        assert!(describe_zarr(&fixture("..")).is_err());
    }
}
