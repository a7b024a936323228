//! An `.h5ad` file read in place by the pure-Rust HDF5 reader: its `obs`
//! and `var` dataframes (the columns anndata writes: numbers, booleans,
//! strings, categoricals, nullable integers and booleans) and the part of
//! `X` (dense, CSR or CSC) at some rows and columns — each dataset read by
//! the ranges the selection needs, never the file whole.

use std::ops::Range;

use anyhow::{bail, Context};
use hdf5_reader::group::Group;
use hdf5_reader::storage::DynStorage;
use hdf5_reader::{Dataset, Datatype, H5Type, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem};

use super::frame::{Frame, Values};
use super::matrix::{Rows, Sparse};
use super::num::Num;
use super::spans::{Read, READERS};
use super::x::{self, Layout, Matrix, SparseX};
use crate::error::NotAMatrix;
use crate::formats::anndata::masked;
use crate::refused;

/// The most one read of a dataset may decode (4 GiB): a damaged file that
/// declares a huge extent is refused before anything is allocated for it.
const MAX_READ_BYTES: usize = 4 << 30;
/// An open h5ad file.
pub struct H5ad {
    file: Hdf5File,
    /// X: how it is stored, its shape (observations × variables) and the
    /// type of its values (a slice's X is written in it).
    pub x: Matrix,
}

/// A string attribute, as anndata writes them (variable-length UTF-8).
fn text_attr(attrs: Vec<hdf5_reader::Attribute>, name: &str) -> Option<String> {
    let attr = attrs.into_iter().find(|a| a.name == name)?;
    attr.read_strings()
        .ok()
        .and_then(|v| v.into_iter().next())
        .or_else(|| attr.read_string().ok())
}

fn group_attr(g: &Group, name: &str) -> Option<String> {
    text_attr(g.attributes().ok()?, name)
}

/// A 1-d dataset's values (or the values in `range`) as one type.
fn read_1d<T: H5Type + Copy>(ds: &Dataset, range: Option<Range<u64>>) -> anyhow::Result<Vec<T>> {
    let array = match range {
        None => ds.read_array::<T>()?,
        Some(r) => ds.read_slice::<T>(&SliceInfo {
            selections: vec![SliceInfoElem::Slice {
                start: r.start,
                end: r.end,
                step: 1,
            }],
        })?,
    };
    Ok(array.iter().copied().collect())
}

/// Whole numbers of any width, widened to i64.
fn integers(ds: &Dataset, range: Option<Range<u64>>) -> anyhow::Result<Vec<i64>> {
    Ok(match ds.dtype() {
        Datatype::FixedPoint { size, signed, .. } => match (*size, *signed) {
            (1, true) => read_1d::<i8>(ds, range)?
                .into_iter()
                .map(i64::from)
                .collect(),
            (1, false) => read_1d::<u8>(ds, range)?
                .into_iter()
                .map(i64::from)
                .collect(),
            (2, true) => read_1d::<i16>(ds, range)?
                .into_iter()
                .map(i64::from)
                .collect(),
            (2, false) => read_1d::<u16>(ds, range)?
                .into_iter()
                .map(i64::from)
                .collect(),
            (4, true) => read_1d::<i32>(ds, range)?
                .into_iter()
                .map(i64::from)
                .collect(),
            (4, false) => read_1d::<u32>(ds, range)?
                .into_iter()
                .map(i64::from)
                .collect(),
            (8, true) => read_1d::<i64>(ds, range)?,
            (8, false) => read_1d::<u64>(ds, range)?
                .into_iter()
                .map(|v| {
                    i64::try_from(v).map_err(|_| {
                        refused!(
                            "{} holds the unsigned value {v}, above 2^63 - 1, which lamin does not read",
                            ds.name()
                        )
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            _ => bail!("{}: integers of {size} bytes are not read", ds.name()),
        },
        // Booleans (h5py's FALSE/TRUE over int8), read whole: the reader
        // decodes enumerations only as raw bytes.
        Datatype::Enum { base, .. }
            if range.is_none() && matches!(base.as_ref(), Datatype::FixedPoint { size: 1, .. }) =>
        {
            ds.read_raw_bytes()?
                .into_iter()
                .map(|b| i64::from(b as i8))
                .collect()
        }
        other => bail!("{} holds {other:?}, not integers", ds.name()),
    })
}

/// Numbers of any type, as f64.
fn numbers(ds: &Dataset, range: Option<Range<u64>>) -> anyhow::Result<Vec<f64>> {
    Ok(match ds.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => read_1d::<f32>(ds, range)?
            .into_iter()
            .map(f64::from)
            .collect(),
        Datatype::FloatingPoint { size: 8, .. } => read_1d::<f64>(ds, range)?,
        _ => integers(ds, range)?.into_iter().map(|v| v as f64).collect(),
    })
}

fn is_bool(ds: &Dataset) -> bool {
    // h5py writes numpy booleans as an enumeration FALSE/TRUE over int8.
    matches!(ds.dtype(), Datatype::Enum { members, .. } if members.len() == 2)
}

fn is_text(ds: &Dataset) -> bool {
    matches!(
        ds.dtype(),
        Datatype::String { .. } | Datatype::VarLen { .. }
    )
}

fn bools(ds: &Dataset) -> anyhow::Result<Vec<bool>> {
    Ok(integers(ds, None)?.into_iter().map(|v| v != 0).collect())
}

/// A 1-d dataset of a dataframe (a column, or a categorical's categories)
/// in its own type: booleans, numbers, text.
fn values(ds: &Dataset) -> anyhow::Result<Values> {
    Ok(if is_bool(ds) {
        Values::Bool(bools(ds)?.into_iter().map(Some).collect())
    } else if is_text(ds) {
        Values::Str(ds.read_strings()?)
    } else {
        match Num::from_hdf5(ds.dtype()) {
            Some(num) if num.is_float() => Values::Float(numbers(ds, None)?, num),
            Some(num) => Values::Int(integers(ds, None)?.into_iter().map(Some).collect(), num),
            None => bail!("{} holds {:?}, not numbers or text", ds.name(), ds.dtype()),
        }
    })
}

/// The type of a matrix's values, or a refusal of one of anything but
/// numbers.
fn number_type(ds: &Dataset, path: &str) -> anyhow::Result<Num> {
    Num::from_hdf5(ds.dtype()).ok_or_else(|| {
        NotAMatrix {
            path: path.into(),
            what: format!("of {:?} values", ds.dtype()),
        }
        .into()
    })
}

/// Whether the file has a group at `path` (each step of it a group).
fn is_group(file: &Hdf5File, path: &str) -> anyhow::Result<bool> {
    let mut group = file.root_group()?;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let (groups, _) = group.member_names()?;
        if !groups.iter().any(|g| g == part) {
            return Ok(false);
        }
        group = group.group(part)?;
    }
    Ok(true)
}

/// The matrix at `path` of the file (see [`H5ad::matrix`]).
fn matrix(file: &Hdf5File, path: &str) -> anyhow::Result<Option<Matrix>> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    if !is_group(file, parent)? {
        return Ok(None);
    }
    let members = file.group(parent)?.member_names()?;
    let (groups, datasets) = members;
    if datasets.iter().any(|d| d == name) {
        let x = file.dataset(path)?;
        let shape = x.shape().to_vec();
        let [rows, cols] = shape[..] else {
            bail!(NotAMatrix {
                path: path.into(),
                what: format!("an array of {} dimensions", shape.len()),
            });
        };
        return Ok(Some(Matrix {
            path: path.into(),
            layout: Layout::Dense,
            rows,
            cols,
            num: number_type(&x, path)?,
        }));
    }
    if !groups.iter().any(|g| g == name) {
        return Ok(None);
    }
    let x = file.group(path)?;
    let layout = match group_attr(&x, "encoding-type").as_deref() {
        Some("csr_matrix") => Layout::Csr,
        Some("csc_matrix") => Layout::Csc,
        other => bail!(NotAMatrix {
            path: path.into(),
            what: format!("a {}", other.unwrap_or("group of no encoding")),
        }),
    };
    let shape = x
        .attributes()?
        .into_iter()
        .find(|a| a.name == "shape")
        .with_context(|| format!("{path} has no shape"))?;
    let shape: Vec<i64> = shape.read_1d::<i64>().or_else(|_| {
        shape
            .read_1d::<i32>()
            .map(|v| v.into_iter().map(i64::from).collect())
    })?;
    let [Ok(rows), Ok(cols)] = shape.iter().map(|d| u64::try_from(*d)).collect::<Vec<_>>()[..]
    else {
        bail!(refused!(
            "{path}'s shape {shape:?} is not 2 sizes of 0 or more"
        ));
    };
    Ok(Some(Matrix {
        path: path.into(),
        layout,
        rows,
        cols,
        num: number_type(&x.dataset("data")?, path)?,
    }))
}

impl H5ad {
    /// Open the file behind `source`: checks that it is an AnnData and finds
    /// how X is stored.
    pub fn open(source: DynStorage, what: &str) -> anyhow::Result<H5ad> {
        let file = open_anndata(source, what)?;
        let x = match matrix(&file, "X") {
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
            Err(e) => {
                return Err(e.context(format!(
                    "{what}: its X cannot be read (the file is truncated or damaged)"
                )))
            }
        };
        Ok(H5ad { file, x })
    }

    /// The matrix at `path` (`X`, `layers/counts`, `obsm/X_umap`): None
    /// when there is none, a refusal when it is not a matrix slicing reads.
    pub fn matrix(&self, path: &str) -> anyhow::Result<Option<Matrix>> {
        matrix(&self.file, path)
    }

    /// The names in the group `name` (`layers`, `obsm`, …); none when the
    /// file has no such group.
    pub fn members(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        if !is_group(&self.file, path)? {
            return Ok(Some(Vec::new()));
        }
        let (mut groups, datasets) = self.file.group(path)?.member_names()?;
        groups.extend(datasets);
        groups.sort();
        Ok(Some(groups))
    }

    /// The dataframe `name` (obs or var) whole: its index and columns.
    pub fn frame(&self, name: &str) -> anyhow::Result<Frame> {
        read_frame(&self.file, name)
    }

    /// X at `rows` (ascending) and the columns `keep` maps to output
    /// positions (`keep[var] = Some(position)`), as CSR rows.
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
            Layout::Dense => self.dense_rows(m, rows, keep, &mut out)?,
            Layout::Csr => {
                x::csr_rows(&self.sparse(&m.path, m.rows, m.cols)?, rows, keep, &mut out)?
            }
            Layout::Csc => {
                x::csc_rows(&self.sparse(&m.path, m.cols, m.rows)?, rows, keep, &mut out)?
            }
        }
        Ok(out.finish())
    }

    /// A dense matrix: the block of each run of rows between the first and
    /// last column kept.
    fn dense_rows(
        &self,
        m: &Matrix,
        rows: &[u64],
        keep: &[Option<u32>],
        out: &mut Rows,
    ) -> anyhow::Result<()> {
        let x = self.file.dataset(&m.path)?;
        super::prefetch::chunk_index(&self.file, &x, READERS);
        let block = |rows: Range<u64>, cols: Range<u64>| -> anyhow::Result<Vec<f64>> {
            let slice = |r: Range<u64>| SliceInfoElem::Slice {
                start: r.start,
                end: r.end,
                step: 1,
            };
            let selection = SliceInfo {
                selections: vec![slice(rows), slice(cols)],
            };
            macro_rules! read {
                ($t:ty) => {
                    x.read_slice::<$t>(&selection)?
                        .iter()
                        .map(|v| *v as f64)
                        .collect()
                };
            }
            Ok(match m.num {
                Num::F32 => read!(f32),
                Num::F64 => read!(f64),
                Num::I8 => read!(i8),
                Num::I16 => read!(i16),
                Num::I32 => read!(i32),
                Num::I64 => read!(i64),
                Num::U8 => read!(u8),
                Num::U16 => read!(u16),
                Num::U32 => read!(u32),
                Num::U64 => read!(u64),
            })
        };
        x::dense_rows(block, rows, keep, out)
    }

    /// A sparse X's `data` and `indices`, their chunk index fetched, and
    /// its pointers (`n + 1`: rows for CSR, columns for CSC), checked.
    fn sparse(
        &self,
        path: &str,
        n: u64,
        width: u64,
    ) -> anyhow::Result<SparseX<impl Fn(Range<u64>) -> anyhow::Result<Read> + Sync>> {
        let x = self.file.group(path)?;
        let (data, indices) = (x.dataset("data")?, x.dataset("indices")?);
        let (ds, is) = (data.shape().to_vec(), indices.shape().to_vec());
        if ds.len() != 1 || ds != is {
            bail!(refused!(
                "{path}/data has the shape {ds:?} and {path}/indices {is:?}: they must be 1-dimensional and as long as each other"
            ));
        }
        for ds in [&data, &indices] {
            super::prefetch::chunk_index(&self.file, ds, READERS);
        }
        let indptr = x.dataset("indptr")?;
        // (Checked before it is read: the pointers are read whole.)
        if indptr.shape() != [n + 1] {
            bail!(refused!(
                "{path}/indptr has the shape {:?}, not [{}]",
                indptr.shape(),
                n + 1
            ));
        }
        let pointers = x::pointers(path, integers(&indptr, None)?, n, ds[0], width)?;
        // (Owned: the reader outlives this call.)
        let path = path.to_string();
        Ok(SparseX {
            pointers,
            chunks: [chunk_len(&data), chunk_len(&indices)],
            read: move |span: Range<u64>| -> anyhow::Result<Read> {
                if span.is_empty() {
                    return Ok((Vec::new(), Vec::new()));
                }
                let read = (
                    numbers(&data, Some(span.clone()))?,
                    integers(&indices, Some(span.clone()))?,
                );
                x::exact(&path, &span, read)
            },
        })
    }
}

/// The file behind `source`, opened and checked to be an AnnData (an obs
/// and a var group), whatever its X.
pub fn open_anndata(source: DynStorage, what: &str) -> anyhow::Result<Hdf5File> {
    let options = OpenOptions::default().with_max_read_bytes(MAX_READ_BYTES);
    let file = Hdf5File::from_storage_with_options(source, options)
        .map_err(|e| refused!("{what} is not a readable h5ad (HDF5) file: {e}"))?;
    let (groups, _) = file
        .root_group()
        .and_then(|root| root.member_names())
        .with_context(|| format!("{what} cannot be read (the file is truncated or damaged)"))?;
    if !groups.iter().any(|g| g == "obs") || !groups.iter().any(|g| g == "var") {
        bail!(refused!(
            "{what} has no obs and var groups: not an AnnData file"
        ));
    }
    Ok(file)
}

/// The dataframe `name` (obs or var) of an AnnData file whole: its index
/// and columns.
pub fn read_frame(file: &Hdf5File, name: &str) -> anyhow::Result<Frame> {
    let group = file.group(name)?;
    let index_name = group_attr(&group, "_index").unwrap_or_else(|| "_index".into());
    let index = group
        .dataset(&index_name)
        .with_context(|| format!("{name} has no index {index_name:?}"))?
        .read_strings()?;
    let (groups, datasets) = group.member_names()?;
    let order: Vec<String> = group
        .attributes()?
        .into_iter()
        .find(|a| a.name == "column-order")
        .and_then(|a| a.read_strings().ok())
        .unwrap_or_else(|| {
            groups
                .iter()
                .chain(&datasets)
                .filter(|m| **m != index_name && !m.starts_with("__"))
                .cloned()
                .collect()
        });
    let mut columns = Vec::with_capacity(order.len());
    for col in order {
        let values = if groups.contains(&col) {
            let g = group.group(&col)?;
            let read = || -> anyhow::Result<Option<Values>> {
                Ok(Some(match group_attr(&g, "encoding-type").as_deref() {
                    Some("categorical") => Values::Cat {
                        codes: integers(&g.dataset("codes")?, None)?,
                        categories: Box::new(values(&g.dataset("categories")?)?),
                        ordered: g
                            .attributes()?
                            .into_iter()
                            .find(|a| a.name == "ordered")
                            .is_some_and(|a| a.raw_data.iter().any(|b| *b != 0)),
                    },
                    Some("nullable-integer") => {
                        let mask = bools(&g.dataset("mask")?)?;
                        let ds = g.dataset("values")?;
                        let num = Num::from_hdf5(ds.dtype()).unwrap_or(Num::I64);
                        Values::Int(masked(integers(&ds, None)?, &mask), num)
                    }
                    Some("nullable-boolean") => {
                        let mask = bools(&g.dataset("mask")?)?;
                        let values = bools(&g.dataset("values")?)?;
                        Values::Bool(masked(values, &mask))
                    }
                    // Other encodings (arrays of arrays, …) are left out.
                    _ => return Ok(None),
                }))
            };
            match read().with_context(|| format!("{name}/{col} cannot be read"))? {
                Some(values) => values,
                None => continue,
            }
        } else {
            let ds = group.dataset(&col)?;
            values(&ds).with_context(|| format!("{name}/{col} cannot be read"))?
        };
        columns.push((col, values));
    }
    let frame = Frame {
        index_name,
        index,
        columns,
    };
    frame.check_lengths(name)?;
    Ok(frame)
}

/// Entries per HDF5 chunk of a 1-d dataset (1 when it is not chunked: its
/// reads are the ranges asked for, never shared).
fn chunk_len(ds: &Dataset) -> u64 {
    ds.chunks()
        .and_then(|c| c.first().copied())
        .map_or(1, u64::from)
        .max(1)
}
