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
use super::spans::{batches, pieces, read_spans, runs, READERS};
use crate::formats::anndata::masked;
use crate::refused;

/// The most one read of a dataset may decode (4 GiB): a damaged file that
/// declares a huge extent is refused before anything is allocated for it.
const MAX_READ_BYTES: usize = 4 << 30;
/// How `X` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Dense,
    Csr,
    Csc,
}

/// An open h5ad file.
pub struct H5ad {
    file: Hdf5File,
    pub n_obs: u64,
    pub n_vars: u64,
    pub layout: Layout,
    /// Whether X holds 32-bit floats (written back as such).
    pub x_f32: bool,
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
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
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

fn is_float(ds: &Dataset) -> bool {
    matches!(ds.dtype(), Datatype::FloatingPoint { .. })
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

impl H5ad {
    /// Open the file behind `source`: checks that it is an AnnData and finds
    /// how X is stored.
    pub fn open(source: DynStorage, what: &str) -> anyhow::Result<H5ad> {
        let options = OpenOptions::default().with_max_read_bytes(MAX_READ_BYTES);
        let file = Hdf5File::from_storage_with_options(source, options)
            .map_err(|e| refused!("{what} is not a readable h5ad (HDF5) file: {e}"))?;
        let shape = || -> anyhow::Result<_> {
            let root = file.root_group()?;
            let (groups, datasets) = root.member_names()?;
            if !groups.iter().any(|g| g == "obs") || !groups.iter().any(|g| g == "var") {
                bail!(refused!(
                    "{what} has no obs and var groups: not an AnnData file"
                ));
            }
            Ok(if datasets.iter().any(|d| d == "X") {
                let x = file.dataset("X")?;
                let shape = x.shape().to_vec();
                if shape.len() != 2 {
                    bail!(refused!("{what}: X has {} dimensions, not 2", shape.len()));
                }
                (
                    shape[0],
                    shape[1],
                    Layout::Dense,
                    !matches!(x.dtype(), Datatype::FloatingPoint { size: 8, .. }),
                )
            } else if groups.iter().any(|g| g == "X") {
                let x = file.group("X")?;
                let layout = match group_attr(&x, "encoding-type").as_deref() {
                    Some("csr_matrix") => Layout::Csr,
                    Some("csc_matrix") => Layout::Csc,
                    other => bail!(refused!(
                        "{what}: X is encoded as {other:?}; slicing reads dense, csr_matrix and csc_matrix X"
                    )),
                };
                let shape = x
                    .attributes()?
                    .into_iter()
                    .find(|a| a.name == "shape")
                    .context("X has no shape")?;
                let shape: Vec<i64> = shape.read_1d::<i64>().or_else(|_| {
                    shape
                        .read_1d::<i32>()
                        .map(|v| v.into_iter().map(i64::from).collect())
                })?;
                let [rows, cols] = shape[..] else {
                    bail!(refused!("{what}: X's shape {shape:?} is not 2-dimensional"));
                };
                let data = x.dataset("data")?;
                (
                    rows as u64,
                    cols as u64,
                    layout,
                    !matches!(data.dtype(), Datatype::FloatingPoint { size: 8, .. }),
                )
            } else {
                bail!(refused!("{what} has no X to slice"));
            })
        };
        let (n_obs, n_vars, layout, x_f32) = shape().with_context(|| {
            format!("{what}: its X cannot be read (the file is truncated or damaged)")
        })?;
        Ok(H5ad {
            file,
            n_obs,
            n_vars,
            layout,
            x_f32,
        })
    }

    /// The dataframe `name` (obs or var) whole: its index and columns.
    pub fn frame(&self, name: &str) -> anyhow::Result<Frame> {
        let group = self.file.group(name)?;
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
                match group_attr(&g, "encoding-type").as_deref() {
                    Some("categorical") => Values::Cat {
                        codes: integers(&g.dataset("codes")?, None)?,
                        categories: g.dataset("categories")?.read_strings()?,
                    },
                    Some("nullable-integer") => {
                        let mask = bools(&g.dataset("mask")?)?;
                        let values = integers(&g.dataset("values")?, None)?;
                        Values::Int(masked(values, &mask))
                    }
                    Some("nullable-boolean") => {
                        let mask = bools(&g.dataset("mask")?)?;
                        let values = bools(&g.dataset("values")?)?;
                        Values::Bool(masked(values, &mask))
                    }
                    // Other encodings (arrays of arrays, …) are left out.
                    _ => continue,
                }
            } else {
                let ds = group.dataset(&col)?;
                let read = || -> anyhow::Result<Values> {
                    Ok(if is_bool(&ds) {
                        Values::Bool(bools(&ds)?.into_iter().map(Some).collect())
                    } else if is_float(&ds) {
                        Values::Float(numbers(&ds, None)?)
                    } else if is_text(&ds) {
                        Values::Str(ds.read_strings()?)
                    } else {
                        Values::Int(integers(&ds, None)?.into_iter().map(Some).collect())
                    })
                };
                read().with_context(|| format!("{name}/{col} cannot be read"))?
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

    /// X at `rows` (ascending) and the columns `keep` maps to output
    /// positions (`keep[var] = Some(position)`), as CSR rows.
    pub fn read_x(
        &self,
        rows: &[u64],
        keep: &[Option<u32>],
        n_out: usize,
    ) -> anyhow::Result<Sparse> {
        let mut out = Rows::new(n_out);
        match self.layout {
            Layout::Dense => self.dense_rows(rows, keep, &mut out)?,
            Layout::Csr => self.csr_rows(rows, keep, &mut out)?,
            Layout::Csc => self.csc_rows(rows, keep, &mut out)?,
        }
        Ok(out.finish())
    }

    /// Dense X: for each run of consecutive rows, the block of those rows
    /// between the first and last column kept.
    fn dense_rows(&self, rows: &[u64], keep: &[Option<u32>], out: &mut Rows) -> anyhow::Result<()> {
        let x = self.file.dataset("X")?;
        super::prefetch::chunk_index(&self.file, &x, READERS)?;
        let Some(first) = keep.iter().position(Option::is_some) else {
            rows.iter().for_each(|_| out.push_row(std::iter::empty()));
            return Ok(());
        };
        let last = keep.iter().rposition(Option::is_some).unwrap_or(first);
        let width = last - first + 1;
        for run in runs(rows) {
            let selection = SliceInfo {
                selections: vec![
                    SliceInfoElem::Slice {
                        start: run.start,
                        end: run.end,
                        step: 1,
                    },
                    SliceInfoElem::Slice {
                        start: first as u64,
                        end: last as u64 + 1,
                        step: 1,
                    },
                ],
            };
            let block: Vec<f64> = match x.dtype() {
                Datatype::FloatingPoint { size: 4, .. } => x
                    .read_slice::<f32>(&selection)?
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect(),
                Datatype::FloatingPoint { size: 8, .. } => {
                    x.read_slice::<f64>(&selection)?.iter().copied().collect()
                }
                Datatype::FixedPoint {
                    size: 4,
                    signed: true,
                    ..
                } => x
                    .read_slice::<i32>(&selection)?
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect(),
                Datatype::FixedPoint {
                    size: 8,
                    signed: true,
                    ..
                } => x
                    .read_slice::<i64>(&selection)?
                    .iter()
                    .map(|v| *v as f64)
                    .collect(),
                other => bail!(refused!(
                    "X holds {other:?}: slicing reads float and integer X"
                )),
            };
            for row in block.chunks(width) {
                out.push_row(
                    row.iter().enumerate().filter_map(|(j, v)| {
                        keep[first + j].filter(|_| *v != 0.0).map(|p| (p, *v))
                    }),
                );
            }
        }
        Ok(())
    }

    /// A sparse X's `data` and `indices` and its pointers (`n + 1` of them:
    /// rows for CSR, columns for CSC), checked before any is used: they
    /// start at 0, never decrease, and end at the length of `data`, which
    /// `indices` shares.
    fn sparse(&self, n: u64) -> anyhow::Result<(Dataset, Dataset, Vec<u64>)> {
        let x = self.file.group("X")?;
        let (data, indices) = (x.dataset("data")?, x.dataset("indices")?);
        let (ds, is) = (data.shape().to_vec(), indices.shape().to_vec());
        if ds.len() != 1 || ds != is {
            bail!(refused!(
                "X/data has the shape {ds:?} and X/indices {is:?}: they must be 1-dimensional and as long as each other"
            ));
        }
        for ds in [&data, &indices] {
            super::prefetch::chunk_index(&self.file, ds, READERS)?;
        }
        let raw = integers(&x.dataset("indptr")?, None)?;
        if raw.len() as u64 != n + 1 {
            bail!(refused!(
                "X/indptr has {} entries, not {}",
                raw.len(),
                n + 1
            ));
        }
        let mut pointers = Vec::with_capacity(raw.len());
        let mut last = 0u64;
        for (i, p) in raw.into_iter().enumerate() {
            match u64::try_from(p) {
                Ok(p) if (i > 0 || p == 0) && p >= last => {
                    pointers.push(p);
                    last = p;
                }
                _ => bail!(refused!(
                    "X/indptr[{i}] = {p} does not follow {last}: the pointers must start at 0 and never decrease"
                )),
            }
        }
        if last != ds[0] {
            bail!(refused!(
                "X/indptr ends at {last} but X/data holds {} entries: the file is damaged",
                ds[0]
            ));
        }
        Ok((data, indices, pointers))
    }

    /// CSR X: the row pointers, then for each run of consecutive rows the
    /// stretch of `indices` and `data` they own (long runs in pieces).
    fn csr_rows(&self, rows: &[u64], keep: &[Option<u32>], out: &mut Rows) -> anyhow::Result<()> {
        let (data, indices, indptr) = self.sparse(self.n_obs)?;
        let chunks = [chunk_len(&data), chunk_len(&indices)];
        let pieces: Vec<Range<u64>> = runs(rows)
            .into_iter()
            .flat_map(|r| pieces(r, &indptr))
            .collect();
        let spans: Vec<Range<u64>> = pieces
            .iter()
            .map(|p| indptr[p.start as usize]..indptr[p.end as usize])
            .collect();
        for batch in batches(&spans) {
            let read = read_spans(&spans[batch.clone()], &chunks, |s| {
                read_span(&data, &indices, s)
            })?;
            for (run, (values, cols)) in pieces[batch].iter().zip(read) {
                let from = indptr[run.start as usize];
                place_rows(run.clone(), from, &indptr, &values, &cols, keep, out);
            }
        }
        Ok(())
    }

    /// CSC X: the column pointers, then each kept column's stretch, turned
    /// around into rows.
    fn csc_rows(&self, rows: &[u64], keep: &[Option<u32>], out: &mut Rows) -> anyhow::Result<()> {
        let (data, indices, indptr) = self.sparse(self.n_vars)?;
        let chunks = [chunk_len(&data), chunk_len(&indices)];
        // Row of the file → its position in the output.
        let position: std::collections::HashMap<u64, usize> =
            rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        let mut by_row: Vec<Vec<(u32, f64)>> = vec![Vec::new(); rows.len()];
        let kept: Vec<(usize, u32)> = keep
            .iter()
            .enumerate()
            .filter_map(|(col, p)| p.map(|p| (col, p)))
            .collect();
        let spans: Vec<Range<u64>> = kept
            .iter()
            .map(|(col, _)| indptr[*col]..indptr[col + 1])
            .collect();
        for batch in batches(&spans) {
            let read = read_spans(&spans[batch.clone()], &chunks, |s| {
                read_span(&data, &indices, s)
            })?;
            for ((_, p), (values, row_of)) in kept[batch].iter().zip(read) {
                for (r, v) in row_of.into_iter().zip(values) {
                    if let Some(i) = u64::try_from(r).ok().and_then(|r| position.get(&r)) {
                        by_row[*i].push((*p, v));
                    }
                }
            }
        }
        for entries in by_row {
            out.push_row(entries.into_iter());
        }
        Ok(())
    }
}

/// The rows of `run` from their stretch of a CSR X (`values` and `cols`,
/// starting at entry `from`), with the kept columns at their positions.
fn place_rows(
    run: Range<u64>,
    from: u64,
    indptr: &[u64],
    values: &[f64],
    cols: &[i64],
    keep: &[Option<u32>],
    out: &mut Rows,
) {
    for r in run {
        let (a, b) = (indptr[r as usize] - from, indptr[r as usize + 1] - from);
        out.push_row((a as usize..b as usize).filter_map(|k| {
            let col = usize::try_from(cols[k]).ok()?;
            keep.get(col).copied().flatten().map(|p| (p, values[k]))
        }));
    }
}

/// The values and indices of a sparse X in `span`, each as long as the span
/// (a read the file cannot fill is refused, never short).
fn read_span(
    data: &Dataset,
    indices: &Dataset,
    span: Range<u64>,
) -> anyhow::Result<(Vec<f64>, Vec<i64>)> {
    if span.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let values = numbers(data, Some(span.clone()))?;
    let index = integers(indices, Some(span.clone()))?;
    let n = span.end - span.start;
    if values.len() as u64 != n || index.len() as u64 != n {
        bail!(refused!(
            "X/data or X/indices at {}..{} held {} and {} of the {n} entries asked for: the file is damaged",
            span.start,
            span.end,
            values.len(),
            index.len()
        ));
    }
    Ok((values, index))
}

/// Entries per HDF5 chunk of a 1-d dataset (1 when it is not chunked: its
/// reads are the ranges asked for, never shared).
fn chunk_len(ds: &Dataset) -> u64 {
    ds.chunks()
        .and_then(|c| c.first().copied())
        .map_or(1, u64::from)
        .max(1)
}
