//! The part of X a slice keeps — the rows at `rows` and the columns `keep`
//! maps to output positions — from X stored dense, as CSR or as CSC,
//! whatever file holds it: the file's reader says how to read a block of
//! a dense X, or a span of a sparse X's `data` and `indices`; here is what
//! to read and how it becomes the slice's rows.

use std::ops::Range;

use anyhow::bail;

use super::matrix::Rows;
use super::num::Num;
use super::spans::{batches, pieces, read_spans, runs, Read, SPAN_ENTRIES};
use crate::refused;

/// How `X` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Dense,
    Csr,
    Csc,
}

/// A matrix of an AnnData — X, a layer, an `obsm` or `varm` entry —: where
/// it is in the file or store, how it is stored, its shape and the type of
/// its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub path: String,
    pub layout: Layout,
    pub rows: u64,
    pub cols: u64,
    pub num: Num,
}

/// A sparse X as its reader gives it: the pointers (`n + 1`, checked by
/// [`pointers`]), the entries per stored chunk of `data` and of `indices`,
/// and how to read a span of both (each as long as the span).
pub struct SparseX<R> {
    pub pointers: Vec<u64>,
    pub chunks: [u64; 2],
    pub read: R,
}

/// A sparse X's pointers (rows for CSR, columns for CSC) checked before
/// any is used: `n + 1` of them, starting at 0, never decreasing, ending at
/// the length of `data` (`entries`), and none a stretch longer than the
/// other dimension (`width`: a row of CSR holds at most one entry a column),
/// so a damaged file cannot make one row a read of any size.
pub fn pointers(
    path: &str,
    raw: Vec<i64>,
    n: u64,
    entries: u64,
    width: u64,
) -> anyhow::Result<Vec<u64>> {
    if raw.len() as u64 != n + 1 {
        bail!(refused!(
            "{path}/indptr has {} entries, not {}",
            raw.len(),
            n + 1
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut last = 0u64;
    for (i, p) in raw.into_iter().enumerate() {
        match u64::try_from(p) {
            Ok(p) if (i > 0 || p == 0) && p >= last && p - last <= width => {
                out.push(p);
                last = p;
            }
            Ok(p) if (i > 0 || p == 0) && p >= last => bail!(refused!(
                "{path}/indptr[{i}] = {p} follows {last}: {} entries in one row or column of a matrix {width} wide; the file is damaged",
                p - last
            )),
            _ => bail!(refused!(
                "{path}/indptr[{i}] = {p} does not follow {last}: the pointers must start at 0 and never decrease"
            )),
        }
    }
    if last != entries {
        bail!(refused!(
            "{path}/indptr ends at {last} but {path}/data holds {entries} entries: the file is damaged"
        ));
    }
    Ok(out)
}

/// A span's read checked for length: a read the file cannot fill is
/// refused, never short.
pub fn exact(path: &str, span: &Range<u64>, read: Read) -> anyhow::Result<Read> {
    let n = span.end - span.start;
    if read.0.len() as u64 != n || read.1.len() as u64 != n {
        bail!(refused!(
            "{path}/data or {path}/indices at {}..{} held {} and {} of the {n} entries asked for: the file is damaged",
            span.start,
            span.end,
            read.0.len(),
            read.1.len()
        ));
    }
    Ok(read)
}

/// CSR X: for each run of consecutive rows the stretch of `indices` and
/// `data` they own (long runs in pieces).
pub fn csr_rows<R>(
    x: &SparseX<R>,
    rows: &[u64],
    keep: &[Option<u32>],
    out: &mut Rows,
) -> anyhow::Result<()>
where
    R: Fn(Range<u64>) -> anyhow::Result<Read> + Sync,
{
    let indptr = &x.pointers;
    let pieces: Vec<Range<u64>> = runs(rows)
        .into_iter()
        .flat_map(|r| pieces(r, indptr))
        .collect();
    let spans: Vec<Range<u64>> = pieces
        .iter()
        .map(|p| indptr[p.start as usize]..indptr[p.end as usize])
        .collect();
    for batch in batches(&spans) {
        let read = read_spans(&spans[batch.clone()], &x.chunks, &x.read)?;
        for (run, (values, cols)) in pieces[batch].iter().zip(read) {
            let from = indptr[run.start as usize];
            place_rows(run.clone(), from, indptr, &values, &cols, keep, out);
        }
    }
    Ok(())
}

/// CSC X: each kept column's stretch, turned around into rows.
pub fn csc_rows<R>(
    x: &SparseX<R>,
    rows: &[u64],
    keep: &[Option<u32>],
    out: &mut Rows,
) -> anyhow::Result<()>
where
    R: Fn(Range<u64>) -> anyhow::Result<Read> + Sync,
{
    let indptr = &x.pointers;
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
        let read = read_spans(&spans[batch.clone()], &x.chunks, &x.read)?;
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

/// Dense X: for each run of consecutive rows, the block of those rows
/// between the first and last column kept (`block(rows, columns)`, row
/// after row).
pub fn dense_rows(
    block: impl Fn(Range<u64>, Range<u64>) -> anyhow::Result<Vec<f64>>,
    rows: &[u64],
    keep: &[Option<u32>],
    out: &mut Rows,
) -> anyhow::Result<()> {
    let Some(first) = keep.iter().position(Option::is_some) else {
        rows.iter().for_each(|_| out.push_row(std::iter::empty()));
        return Ok(());
    };
    let last = keep.iter().rposition(Option::is_some).unwrap_or(first);
    let width = last - first + 1;
    if width as u64 > SPAN_ENTRIES {
        bail!(refused!(
            "a dense matrix is read between the first and the last column kept, here {width} columns apart: keep fewer or nearer variables (at most {SPAN_ENTRIES} columns apart)"
        ));
    }
    // Runs in pieces of at most SPAN_ENTRIES values (a block is read whole).
    let rows_a_piece = (SPAN_ENTRIES / width as u64).max(1);
    let pieces = runs(rows).into_iter().flat_map(|run| {
        (run.start..run.end)
            .step_by(rows_a_piece as usize)
            .map(move |s| s..(s + rows_a_piece).min(run.end))
    });
    for run in pieces {
        let n = (run.end - run.start) as usize;
        let values = block(run, first as u64..last as u64 + 1)?;
        if values.len() != n * width {
            bail!(refused!(
                "X held {} values where {n} × {width} were asked for: the file is damaged",
                values.len()
            ));
        }
        for row in values.chunks(width) {
            out.push_row(
                row.iter()
                    .enumerate()
                    .filter_map(|(j, v)| keep[first + j].filter(|_| *v != 0.0).map(|p| (p, *v))),
            );
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_checked_before_use() {
        assert_eq!(
            pointers("X", vec![0, 2, 2, 5], 3, 5, 4).unwrap(),
            vec![0, 2, 2, 5]
        );
        for (raw, n, entries, says) in [
            (
                vec![0, 2, 7, 9],
                3,
                9,
                "5 entries in one row or column of a matrix 4 wide",
            ),
            (vec![0, 2, 5], 3, 5, "has 3 entries, not 4"),
            (vec![1, 2, 3, 5], 3, 5, "indptr[0] = 1"),
            (vec![0, 3, 2, 5], 3, 5, "indptr[2] = 2 does not follow 3"),
            (vec![0, 2, 3, 4], 3, 5, "ends at 4 but X/data holds 5"),
            (vec![0, -1, 3, 5], 3, 5, "indptr[1] = -1"),
        ] {
            let err = pointers("X", raw, n, entries, 4).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn csr_csc_and_dense_x_give_the_same_rows() {
        // 3 × 4:  [1 0 2 0; 0 0 0 3; 4 5 0 0]
        let dense = [1., 0., 2., 0., 0., 0., 0., 3., 4., 5., 0., 0.];
        let csr = (
            vec![0i64, 2, 3, 5],
            vec![1., 2., 3., 4., 5.],
            vec![0i64, 2, 3, 0, 1],
        );
        let csc = (
            vec![0i64, 2, 3, 4, 5],
            vec![1., 4., 5., 2., 3.],
            vec![0i64, 2, 2, 0, 1],
        );
        let read = |values: Vec<f64>, index: Vec<i64>| {
            move |s: Range<u64>| {
                let r = s.start as usize..s.end as usize;
                exact("X", &s, (values[r.clone()].to_vec(), index[r].to_vec()))
            }
        };
        // Rows 0 and 2; columns 2 then 0 (output positions 0 and 1).
        let (rows, keep) = ([0u64, 2], [Some(1), None, Some(0), None]);
        let want = vec![vec![(1, 1.0), (0, 2.0)], vec![(1, 4.0)]];
        let collect = |out: Rows| {
            let s = out.finish();
            (0..s.n_rows())
                .map(|i| {
                    let mut row: Vec<(u32, f64)> = s
                        .dense_row(i)
                        .into_iter()
                        .enumerate()
                        .filter(|(_, v)| *v != 0.0)
                        .map(|(p, v)| (p as u32, v))
                        .collect();
                    row.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
                    row
                })
                .collect::<Vec<_>>()
        };
        let mut out = Rows::new(2);
        let x = SparseX {
            pointers: pointers("X", csr.0, 3, 5, 4).unwrap(),
            chunks: [2, 2],
            read: read(csr.1, csr.2),
        };
        csr_rows(&x, &rows, &keep, &mut out).unwrap();
        assert_eq!(collect(out), want);
        let mut out = Rows::new(2);
        let x = SparseX {
            pointers: pointers("X", csc.0, 4, 5, 3).unwrap(),
            chunks: [2, 2],
            read: read(csc.1, csc.2),
        };
        csc_rows(&x, &rows, &keep, &mut out).unwrap();
        assert_eq!(collect(out), want);
        let mut out = Rows::new(2);
        let block = |r: Range<u64>, c: Range<u64>| {
            Ok(
                r.flat_map(|i| c.clone().map(move |j| dense[i as usize * 4 + j as usize]))
                    .collect(),
            )
        };
        dense_rows(block, &rows, &keep, &mut out).unwrap();
        assert_eq!(collect(out), want);
        // A short read is refused.
        let short = |s: Range<u64>| exact("X", &s, (vec![1.0], vec![0]));
        let x = SparseX {
            pointers: pointers("X", vec![0, 2, 3, 5], 3, 5, 4).unwrap(),
            chunks: [2, 2],
            read: short,
        };
        assert!(csr_rows(&x, &rows, &keep, &mut Rows::new(2)).is_err());
    }
}
