//! The part of `X` a slice keeps, as a compressed sparse row matrix (the
//! layout anndata writes sparse X in), built row by row with each row's
//! entries in column order.

/// A CSR matrix: `indptr[r]..indptr[r + 1]` are row r's entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sparse {
    pub n_cols: usize,
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub data: Vec<f64>,
}

impl Sparse {
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Row `r` as a dense vector of the kept columns.
    pub fn dense_row(&self, r: usize) -> Vec<f64> {
        let mut row = vec![0.0; self.n_cols];
        let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
        for k in a..b {
            row[self.indices[k] as usize] = self.data[k];
        }
        row
    }

    /// Column `c` as a dense vector over the rows.
    pub fn dense_column(&self, c: usize) -> Vec<f64> {
        (0..self.n_rows())
            .map(|r| {
                let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
                self.indices[a..b]
                    .binary_search(&(c as i32))
                    .map(|k| self.data[a + k])
                    .unwrap_or(0.0)
            })
            .collect()
    }
}

impl Sparse {
    /// The rows at `at`, in that order (a row may come more than once).
    pub fn pick_rows(&self, at: &[usize]) -> Sparse {
        let mut out = Sparse {
            n_cols: self.n_cols,
            indptr: vec![0],
            ..Sparse::default()
        };
        for r in at {
            let (a, b) = (self.indptr[*r] as usize, self.indptr[*r + 1] as usize);
            out.indices.extend_from_slice(&self.indices[a..b]);
            out.data.extend_from_slice(&self.data[a..b]);
            out.indptr.push(out.indices.len() as i64);
        }
        out
    }
}

/// Builds a [`Sparse`] one row at a time.
pub struct Rows {
    matrix: Sparse,
    scratch: Vec<(u32, f64)>,
}

impl Rows {
    pub fn new(n_cols: usize) -> Rows {
        Rows {
            matrix: Sparse {
                n_cols,
                indptr: vec![0],
                ..Sparse::default()
            },
            scratch: Vec::new(),
        }
    }

    /// The next row: its (output column, value) entries in any order.
    pub fn push_row(&mut self, entries: impl Iterator<Item = (u32, f64)>) {
        self.scratch.clear();
        self.scratch.extend(entries);
        self.scratch.sort_unstable_by_key(|(c, _)| *c);
        for (c, v) in self.scratch.drain(..) {
            self.matrix.indices.push(c as i32);
            self.matrix.data.push(v);
        }
        self.matrix.indptr.push(self.matrix.indices.len() as i64);
    }

    pub fn finish(self) -> Sparse {
        self.matrix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_entries_in_column_order() {
        let mut rows = Rows::new(3);
        rows.push_row([(2, 5.0), (0, 1.0)].into_iter());
        rows.push_row(std::iter::empty());
        rows.push_row([(1, 7.0)].into_iter());
        let m = rows.finish();
        assert_eq!(m.indptr, vec![0, 2, 2, 3]);
        assert_eq!(m.indices, vec![0, 2, 1]);
        assert_eq!(m.dense_row(0), vec![1.0, 0.0, 5.0]);
        assert_eq!(m.dense_row(1), vec![0.0; 3]);
        assert_eq!(m.dense_column(1), vec![0.0, 0.0, 7.0]);
        assert_eq!(m.n_rows(), 3);
        let picked = m.pick_rows(&[2, 0, 2]);
        assert_eq!(picked.dense_row(0), vec![0.0, 7.0, 0.0]);
        assert_eq!(picked.dense_row(1), vec![1.0, 0.0, 5.0]);
        assert_eq!(picked.dense_row(2), vec![0.0, 7.0, 0.0]);
    }
}
