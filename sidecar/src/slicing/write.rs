//! A slice written out: as an `.h5ad` file in anndata's on-disk format
//! (obs and var dataframes with their categoricals, X sparse or dense as in
//! the source), or as a parquet table (obs columns, then one column per
//! variable kept).

use std::path::Path;

use anyhow::{bail, Context};
use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use hdf5::types::VarLenUnicode;

use super::aligned::{Aligned, Part};
use super::frame::{Frame, Values};
use super::matrix::Sparse;
use super::num::Num;
use crate::formats::anndata::write_strings;
use crate::refused;

/// What a slice holds.
pub struct Slice {
    pub obs: Frame,
    pub var: Frame,
    /// The names the variables are written under in parquet.
    pub var_names: Vec<String>,
    pub x: Sparse,
    /// X was sparse in the source (written back sparse).
    pub sparse: bool,
    /// The type of X's values in the source (written in it).
    pub x_type: Num,
    /// Layers, obsm, varm, obsp, varp and raw, cut alike (h5ad only).
    pub aligned: Aligned,
}

/// Variables a parquet slice holds at most: one column each.
pub const MAX_PARQUET_VARIABLES: usize = 2_000;

fn text_attr(location: &hdf5::Location, name: &str, value: &str) -> anyhow::Result<()> {
    location
        .new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&value.parse::<VarLenUnicode>()?)?;
    Ok(())
}

fn encoding(location: &hdf5::Location, kind: &str, version: &str) -> anyhow::Result<()> {
    text_attr(location, "encoding-type", kind)?;
    text_attr(location, "encoding-version", version)
}

fn values_dataset<T: hdf5::H5Type>(
    group: &hdf5::Group,
    name: &str,
    values: &[T],
) -> anyhow::Result<hdf5::Dataset> {
    let ds = group.new_dataset::<T>().shape(values.len()).create(name)?;
    ds.write_raw(values)?;
    Ok(ds)
}

fn array<T: hdf5::H5Type>(group: &hdf5::Group, name: &str, values: &[T]) -> anyhow::Result<()> {
    let ds = values_dataset(group, name, values)?;
    encoding(&ds, "array", "0.2.0")
}

/// Numbers (as f64, whole ones exactly) as a dataset of type `num`, of
/// `shape`.
fn numbers_dataset(
    group: &hdf5::Group,
    name: &str,
    values: &[f64],
    num: Num,
    shape: &[usize],
) -> anyhow::Result<hdf5::Dataset> {
    macro_rules! write {
        ($t:ty) => {{
            let narrow: Vec<$t> = values.iter().map(|v| *v as $t).collect();
            let ds = group.new_dataset::<$t>().shape(shape).create(name)?;
            ds.write_raw(&narrow)?;
            ds
        }};
    }
    Ok(match num {
        Num::F32 => write!(f32),
        Num::F64 => write!(f64),
        Num::I8 => write!(i8),
        Num::I16 => write!(i16),
        Num::I32 => write!(i32),
        Num::I64 => write!(i64),
        Num::U8 => write!(u8),
        Num::U16 => write!(u16),
        Num::U32 => write!(u32),
        Num::U64 => write!(u64),
    })
}

/// Whole numbers as an `array` of type `num`.
fn int_array(group: &hdf5::Group, name: &str, values: &[i64], num: Num) -> anyhow::Result<()> {
    let floats: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    // (i64 beyond 2^53 would not survive f64: written as they are.)
    let ds = if num == Num::I64 {
        values_dataset(group, name, values)?
    } else {
        numbers_dataset(group, name, &floats, num, &[values.len()])?
    };
    encoding(&ds, "array", "0.2.0")
}

/// A nullable column: values (missing ones as the default) and a mask.
fn nullable<T: hdf5::H5Type + Default + Copy>(
    group: &hdf5::Group,
    name: &str,
    kind: &str,
    values: &[Option<T>],
    write_values: impl Fn(&hdf5::Group, &[T]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let g = group.create_group(name)?;
    encoding(&g, kind, "0.1.0")?;
    let plain: Vec<T> = values.iter().map(|v| v.unwrap_or_default()).collect();
    let mask: Vec<bool> = values.iter().map(Option::is_none).collect();
    write_values(&g, &plain)?;
    array(&g, "mask", &mask)
}

fn column(group: &hdf5::Group, name: &str, values: &Values) -> anyhow::Result<()> {
    match values {
        Values::Cat {
            codes,
            categories,
            ordered,
        } => {
            let g = group.create_group(name)?;
            encoding(&g, "categorical", "0.2.0")?;
            g.new_attr::<bool>()
                .shape(())
                .create("ordered")?
                .write_scalar(ordered)?;
            // A code that names no category is written missing (-1), never
            // wrapped into another one.
            let n = categories.len() as i64;
            let code = |c: &i64| if (0..n).contains(c) { *c } else { -1 };
            if n < i8::MAX as i64 {
                let codes: Vec<i8> = codes.iter().map(|c| code(c) as i8).collect();
                array(&g, "codes", &codes)?;
            } else {
                let codes: Vec<i32> = codes.iter().map(|c| code(c) as i32).collect();
                array(&g, "codes", &codes)?;
            }
            match categories.as_ref() {
                Values::Str(v) => write_strings(&g, "categories", v),
                Values::Cat { .. } => bail!("categories that are categorical cannot be written"),
                other => column(&g, "categories", other),
            }
        }
        Values::Int(v, num) if v.iter().all(Option::is_some) => int_array(
            group,
            name,
            &v.iter().flatten().copied().collect::<Vec<i64>>(),
            *num,
        ),
        Values::Int(v, num) => nullable(group, name, "nullable-integer", v, |g, plain| {
            int_array(g, "values", plain, *num)
        }),
        Values::Bool(v) if v.iter().all(Option::is_some) => array(
            group,
            name,
            &v.iter().flatten().copied().collect::<Vec<bool>>(),
        ),
        Values::Bool(v) => nullable(group, name, "nullable-boolean", v, |g, plain| {
            array(g, "values", plain)
        }),
        Values::Float(v, num) => {
            let ds = numbers_dataset(group, name, v, *num, &[v.len()])?;
            encoding(&ds, "array", "0.2.0")
        }
        Values::Str(v) => write_strings(group, name, v),
    }
}

fn dataframe(parent: &hdf5::Group, name: &str, frame: &Frame) -> anyhow::Result<()> {
    let g = parent.create_group(name)?;
    encoding(&g, "dataframe", "0.2.0")?;
    text_attr(&g, "_index", &frame.index_name)?;
    let order: Vec<VarLenUnicode> = frame
        .columns
        .iter()
        .map(|(n, _)| n.parse::<VarLenUnicode>())
        .collect::<Result<_, _>>()?;
    if order.is_empty() {
        // (anndata writes an empty column order as an empty float array.)
        g.new_attr::<f64>().shape(0).create("column-order")?;
    } else {
        g.new_attr::<VarLenUnicode>()
            .shape(order.len())
            .create("column-order")?
            .write_raw(&order)?;
    }
    write_strings(&g, &frame.index_name, &frame.index)?;
    for (col, values) in &frame.columns {
        column(&g, col, values).with_context(|| format!("{name}/{col} cannot be written"))?;
    }
    Ok(())
}

/// A matrix as anndata writes one: sparse as a `csr_matrix` group (data,
/// indices, indptr and its shape), dense as a 2-d `array`; its values in
/// the type `num`.
fn write_matrix(
    parent: &hdf5::Group,
    name: &str,
    m: &Sparse,
    num: Num,
    sparse: bool,
) -> anyhow::Result<()> {
    let (rows, cols) = (m.n_rows(), m.n_cols);
    if sparse {
        let x = parent.create_group(name)?;
        encoding(&x, "csr_matrix", "0.1.0")?;
        x.new_attr::<i64>()
            .shape(2)
            .create("shape")?
            .write_raw(&[rows as i64, cols as i64])?;
        numbers_dataset(&x, "data", &m.data, num, &[m.data.len()])?;
        values_dataset(&x, "indices", &m.indices)?;
        values_dataset(&x, "indptr", &m.indptr)?;
    } else {
        let dense: Vec<f64> = (0..rows).flat_map(|r| m.dense_row(r)).collect();
        let ds = numbers_dataset(parent, name, &dense, num, &[rows, cols])?;
        encoding(&ds, "array", "0.2.0")?;
    }
    Ok(())
}

/// A `dict` group of matrices (layers, obsm, …).
fn parts_group(parent: &hdf5::Group, name: &str, parts: &[Part]) -> anyhow::Result<()> {
    let g = parent.create_group(name)?;
    encoding(&g, "dict", "0.1.0")?;
    for part in parts {
        write_matrix(&g, &part.name, &part.values, part.num, part.sparse)
            .with_context(|| format!("{name}/{} cannot be written", part.name))?;
    }
    Ok(())
}

/// The slice as an h5ad file at `path`.
pub fn write_h5ad(slice: &Slice, path: &Path) -> anyhow::Result<()> {
    let file = hdf5::File::create(path)
        .with_context(|| format!("{} cannot be created", path.display()))?;
    encoding(&file, "anndata", "0.1.0")?;
    dataframe(&file, "obs", &slice.obs)?;
    dataframe(&file, "var", &slice.var)?;
    write_matrix(&file, "X", &slice.x, slice.x_type, slice.sparse)?;
    let a = &slice.aligned;
    for (group, parts) in [
        ("layers", &a.layers),
        ("obsm", &a.obsm),
        ("obsp", &a.obsp),
        ("varm", &a.varm),
        ("varp", &a.varp),
        ("uns", &Vec::new()),
    ] {
        parts_group(&file, group, parts)?;
    }
    if let Some(raw) = &a.raw {
        let g = file.create_group("raw")?;
        encoding(&g, "raw", "0.1.0")?;
        write_matrix(&g, "X", &raw.x.values, raw.x.num, raw.x.sparse)
            .context("raw/X cannot be written")?;
        dataframe(&g, "var", &raw.var)?;
        parts_group(&g, "varm", &raw.varm)?;
    }
    file.flush()?;
    Ok(())
}

/// The slice as a table: obs (index and columns), then one column per
/// variable kept, named by `var_names`.
pub fn slice_batch(slice: &Slice) -> anyhow::Result<RecordBatch> {
    if slice.x.n_cols > MAX_PARQUET_VARIABLES {
        bail!(refused!(
            "a parquet slice has one column per variable, and this one keeps {}: name the variables with --var (at most {MAX_PARQUET_VARIABLES}), or write .h5ad",
            slice.x.n_cols
        ));
    }
    let obs = slice.obs.to_batch(false)?;
    let mut fields: Vec<(String, ArrayRef)> = obs
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .zip(obs.columns().iter().cloned())
        .collect();
    for (c, name) in slice.var_names.iter().enumerate() {
        if fields.iter().any(|(n, _)| n == name) {
            bail!(refused!(
                "variable {name:?} has the name of an obs column: a parquet slice cannot hold both"
            ));
        }
        let values = slice.x.dense_column(c);
        let array: ArrayRef = slice.x_type.floats_to_arrow(&values);
        fields.push((name.clone(), array));
    }
    Ok(RecordBatch::try_from_iter_with_nullable(
        fields.into_iter().map(|(n, a)| (n, a, true)),
    )?)
}

/// The slice as a parquet file at `path`.
pub fn write_parquet(slice: &Slice, path: &Path) -> anyhow::Result<()> {
    let batch = slice_batch(slice)?;
    let file = std::fs::File::create(path)
        .with_context(|| format!("{} cannot be created", path.display()))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A code that names no category is written missing, never wrapped
    /// into another category (300 as i8 would be 44).
    #[test]
    fn a_code_past_the_categories_is_written_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = hdf5::File::create(dir.path().join("c.h5")).unwrap();
        let cat = Values::Cat {
            codes: vec![0, 300, -1, 1],
            categories: Box::new(Values::Str(vec!["a".into(), "b".into()])),
            ordered: false,
        };
        column(&file, "c", &cat).unwrap();
        let codes = file
            .dataset("c/codes")
            .unwrap()
            .read_1d::<i8>()
            .unwrap()
            .to_vec();
        assert_eq!(codes, [0, -1, -1, 1]);
    }
}
