//! What an AnnData holds beside X that a slice carries, cut as anndata's
//! `adata[rows, vars]` cuts it: each layer as X (the rows and variables
//! kept), each `obsm` matrix at the rows kept, each `varm` matrix at the
//! variables kept (in their order), each `obsp` and `varp` matrix at the
//! rows, or variables, kept on both sides. Dense stays dense, sparse
//! becomes CSR, the numbers keep their type. `raw` (the matrix before
//! variables were dropped, with its own var) comes at the rows kept and
//! every one of its variables. What is not carried — `uns`, and entries
//! that are not matrices (an `obsm` dataframe) — is named, for the user to
//! hear of it.

use anyhow::{bail, Context};

use super::frame::Frame;
use super::matrix::Sparse;
use super::num::Num;
use super::source::AnnData;
use super::x::{Layout, Matrix};
use crate::error::NotAMatrix;
use crate::refused;

/// One matrix of a slice beside X.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Its name in its group (`counts`, `X_umap`).
    pub name: String,
    pub values: Sparse,
    pub num: Num,
    /// Stored sparse in the source (written as CSR).
    pub sparse: bool,
}

/// The groups of a slice beside X, in anndata's names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Aligned {
    pub layers: Vec<Part>,
    pub obsm: Vec<Part>,
    pub varm: Vec<Part>,
    pub obsp: Vec<Part>,
    pub varp: Vec<Part>,
    pub raw: Option<Raw>,
    /// What the source holds that the slice does not (`uns`,
    /// `obsm/meta (a dataframe)`).
    pub left_out: Vec<String>,
}

/// `raw`: its X at the rows kept (every variable of its own), its var, and
/// its varm whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    pub x: Part,
    pub var: Frame,
    pub varm: Vec<Part>,
}

/// What is kept: the rows (ascending), the variables (`keep[var] =
/// Some(position)`; `var_rows[position] = var`), and X's shape.
pub struct Kept<'a> {
    pub rows: &'a [u64],
    pub keep: &'a [Option<u32>],
    pub var_rows: &'a [usize],
    pub n_obs: u64,
    pub n_vars: u64,
}

/// The most columns a matrix beside X may have (16 Mi): each is one entry
/// of the map of columns kept, so a damaged file declaring a trillion
/// cannot make the slice allocate for them.
const MAX_COLUMNS: u64 = 1 << 24;

/// Read what the slice carries beside X. Blocking.
pub fn read(file: &AnnData, kept: &Kept) -> anyhow::Result<Aligned> {
    let mut out = Aligned::default();
    let mut raw_varm = Vec::new();
    // raw/X first: raw/varm's rows are its columns.
    let raw_x = match file.matrix("raw/X") {
        Ok(m) => m,
        Err(e) => return Err(e.context("raw/X cannot be read")),
    };
    if let Some(m) = &raw_x {
        shaped(m, kept.n_obs, None)?;
    }
    // Positions of the kept rows, for the columns of obsp.
    let row_keep = positions(kept.rows.iter().map(|r| *r as usize), kept.n_obs);
    for group in ["layers", "obsm", "varm", "obsp", "varp", "raw/varm"] {
        let Some(names) = file.members(group)? else {
            out.left_out.push(format!(
                "{group} (the store has no consolidated metadata naming its entries)"
            ));
            continue;
        };
        for name in names {
            let path = format!("{group}/{name}");
            let m = match file.matrix(&path) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                // (A dataframe in obsm, an array of more dimensions, of
                // text: anndata allows them; a slice names them.)
                Err(e) => match e.downcast_ref::<NotAMatrix>() {
                    Some(n) => {
                        out.left_out.push(format!("{path} ({})", n.what));
                        continue;
                    }
                    None => return Err(e.context(format!("{path} cannot be read"))),
                },
            };
            let part = |values: Sparse| Part {
                name: name.clone(),
                values,
                num: m.num,
                sparse: m.layout != Layout::Dense,
            };
            let read = || -> anyhow::Result<Part> {
                Ok(match group {
                    "layers" => {
                        shaped(&m, kept.n_obs, Some(kept.n_vars))?;
                        part(file.read_matrix(&m, kept.rows, kept.keep, kept.var_rows.len())?)
                    }
                    "obsm" => {
                        shaped(&m, kept.n_obs, None)?;
                        part(file.read_matrix(&m, kept.rows, &every(m.cols), m.cols as usize)?)
                    }
                    "obsp" => {
                        shaped(&m, kept.n_obs, Some(kept.n_obs))?;
                        part(file.read_matrix(&m, kept.rows, &row_keep, kept.rows.len())?)
                    }
                    "varm" => {
                        shaped(&m, kept.n_vars, None)?;
                        part(in_order(
                            file,
                            &m,
                            kept.var_rows,
                            &every(m.cols),
                            m.cols as usize,
                        )?)
                    }
                    "varp" => {
                        shaped(&m, kept.n_vars, Some(kept.n_vars))?;
                        part(in_order(
                            file,
                            &m,
                            kept.var_rows,
                            kept.keep,
                            kept.var_rows.len(),
                        )?)
                    }
                    // raw/varm: whole, as raw's variables all stay.
                    _ => {
                        let Some(raw_x) = &raw_x else {
                            bail!(refused!("the file has raw/varm but no raw/X"));
                        };
                        shaped(&m, raw_x.cols, None)?;
                        let all: Vec<u64> = (0..m.rows).collect();
                        part(file.read_matrix(&m, &all, &every(m.cols), m.cols as usize)?)
                    }
                })
            };
            let read = read().with_context(|| format!("{path} cannot be read"))?;
            out_of(&mut out, &mut raw_varm, group).push(read);
        }
    }
    out.raw = match raw_x {
        Some(m) => Some(raw(file, kept, m, raw_varm)?),
        None => None,
    };
    if file.has_content("uns")? {
        out.left_out.push("uns".to_string());
    }
    Ok(out)
}

/// `raw` (its X is `m`) at the rows kept.
fn raw(file: &AnnData, kept: &Kept, m: Matrix, varm: Vec<Part>) -> anyhow::Result<Raw> {
    let var = file.frame("raw/var").context("raw/var cannot be read")?;
    if var.index.len() as u64 != m.cols {
        bail!(refused!(
            "raw/X has {} columns but raw/var {} rows: the file is damaged",
            m.cols,
            var.index.len()
        ));
    }
    let x = file
        .read_matrix(&m, kept.rows, &every(m.cols), m.cols as usize)
        .context("raw/X cannot be read")?;
    Ok(Raw {
        x: Part {
            name: "X".into(),
            values: x,
            num: m.num,
            sparse: m.layout != Layout::Dense,
        },
        var,
        varm,
    })
}

fn out_of<'a>(out: &'a mut Aligned, raw_varm: &'a mut Vec<Part>, group: &str) -> &'a mut Vec<Part> {
    match group {
        "layers" => &mut out.layers,
        "obsm" => &mut out.obsm,
        "varm" => &mut out.varm,
        "obsp" => &mut out.obsp,
        "varp" => &mut out.varp,
        _ => raw_varm,
    }
}

/// A matrix must have as many rows as its axis (and, for a layer or a
/// pairwise matrix, as many columns): anndata refuses others, and so does
/// a slice, by name.
fn shaped(m: &Matrix, rows: u64, cols: Option<u64>) -> anyhow::Result<()> {
    if m.cols > MAX_COLUMNS {
        bail!(refused!(
            "{} has {} columns, more than a slice carries ({MAX_COLUMNS}): the file is damaged or not what anndata writes",
            m.path,
            m.cols
        ));
    }
    if m.rows != rows || cols.is_some_and(|c| c != m.cols) {
        bail!(refused!(
            "{} is {} × {}, which does not fit its axis ({rows} × {}): the file is damaged",
            m.path,
            m.rows,
            m.cols,
            cols.map_or("any".to_string(), |c| c.to_string())
        ));
    }
    Ok(())
}

/// Every column, each at its own position.
fn every(cols: u64) -> Vec<Option<u32>> {
    (0..cols).map(|c| Some(c as u32)).collect()
}

/// `keep` for the columns at `indices` (in that order) of `n` columns.
fn positions(indices: impl Iterator<Item = usize>, n: u64) -> Vec<Option<u32>> {
    let mut keep = vec![None; n as usize];
    for (position, i) in indices.enumerate() {
        if let Some(k) = keep.get_mut(i) {
            *k = Some(position as u32);
        }
    }
    keep
}

/// The rows at `order` (any order, as the variables were named): read
/// ascending, then put in that order.
fn in_order(
    file: &AnnData,
    m: &Matrix,
    order: &[usize],
    keep: &[Option<u32>],
    n_out: usize,
) -> anyhow::Result<Sparse> {
    let mut ascending: Vec<u64> = order.iter().map(|r| *r as u64).collect();
    ascending.sort_unstable();
    ascending.dedup();
    let read = file.read_matrix(m, &ascending, keep, n_out)?;
    let at: Vec<usize> = order
        .iter()
        .map(|r| ascending.binary_search(&(*r as u64)).unwrap_or_default())
        .collect();
    Ok(read.pick_rows(&at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_columns_get_the_positions_they_were_kept_in() {
        assert_eq!(
            positions([4, 1].into_iter(), 6),
            [None, Some(1), None, None, Some(0), None]
        );
        assert_eq!(every(2), [Some(0), Some(1)]);
    }
}
