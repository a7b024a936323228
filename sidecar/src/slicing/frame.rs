//! An AnnData dataframe (`obs` or `var`) as a slice reads and writes it:
//! the index and typed columns, categoricals kept as codes and categories
//! so that a slice written as h5ad has the same categories as its source.

use std::sync::Arc;

use anyhow::bail;
use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, UInt64Array};
use arrow::record_batch::RecordBatch;

use crate::formats::anndata::index_name;
use crate::refused;

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Codes into the categories (-1: missing).
    Cat {
        codes: Vec<i64>,
        categories: Vec<String>,
    },
    Int(Vec<Option<i64>>),
    Float(Vec<f64>),
    Bool(Vec<Option<bool>>),
    Str(Vec<String>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Cat { codes, .. } => codes.len(),
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values at `rows`, in that order.
    fn take(&self, rows: &[usize]) -> Values {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|r| v[*r].clone()).collect()
        }
        match self {
            // Categories no row uses any more are dropped, the others keep
            // their order: what anndata does when it copies a subset.
            Values::Cat { codes, categories } => {
                let picked = pick(codes, rows);
                let mut used = vec![false; categories.len()];
                for c in &picked {
                    if let Some(u) = usize::try_from(*c).ok().and_then(|i| used.get_mut(i)) {
                        *u = true;
                    }
                }
                let mut new_code = vec![-1i64; categories.len()];
                let mut kept = Vec::new();
                for (i, category) in categories.iter().enumerate() {
                    if used[i] {
                        new_code[i] = kept.len() as i64;
                        kept.push(category.clone());
                    }
                }
                Values::Cat {
                    codes: picked
                        .iter()
                        .map(|c| {
                            usize::try_from(*c)
                                .ok()
                                .and_then(|i| new_code.get(i))
                                .copied()
                                .unwrap_or(-1)
                        })
                        .collect(),
                    categories: kept,
                }
            }
            Values::Int(v) => Values::Int(pick(v, rows)),
            Values::Float(v) => Values::Float(pick(v, rows)),
            Values::Bool(v) => Values::Bool(pick(v, rows)),
            Values::Str(v) => Values::Str(pick(v, rows)),
        }
    }

    /// As arrow (categoricals as their strings).
    pub fn to_arrow(&self) -> ArrayRef {
        match self {
            Values::Cat { codes, categories } => {
                Arc::new(StringArray::from_iter(codes.iter().map(|c| {
                    usize::try_from(*c)
                        .ok()
                        .and_then(|i| categories.get(i).map(String::as_str))
                })))
            }
            Values::Int(v) => Arc::new(Int64Array::from(v.clone())),
            Values::Float(v) => Arc::new(Float64Array::from(v.clone())),
            Values::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
            Values::Str(v) => Arc::new(StringArray::from(v.clone())),
        }
    }

    /// The value at `row` as text, for matching names (`--var-key`).
    pub fn text(&self, row: usize) -> Option<String> {
        match self {
            Values::Cat { codes, categories } => usize::try_from(codes[row])
                .ok()
                .and_then(|i| categories.get(i).cloned()),
            Values::Str(v) => Some(v[row].clone()),
            Values::Int(v) => v[row].map(|x| x.to_string()),
            Values::Float(v) => Some(v[row].to_string()),
            Values::Bool(v) => v[row].map(|x| x.to_string()),
        }
    }
}

/// A dataframe: its index (named as in the file) and columns, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub index_name: String,
    pub index: Vec<String>,
    pub columns: Vec<(String, Values)>,
}

/// The column of row numbers added to `obs` for a condition to select by.
pub const ROW_COLUMN: &str = "_lamin_row";

impl Frame {
    /// Every column as long as the index, or a clear refusal.
    pub fn check_lengths(&self, name: &str) -> anyhow::Result<()> {
        for (col, values) in &self.columns {
            if values.len() != self.index.len() {
                bail!(refused!(
                    "{name}/{col} has {} values for {} rows: the file is damaged",
                    values.len(),
                    self.index.len()
                ));
            }
        }
        Ok(())
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Frame {
        Frame {
            index_name: self.index_name.clone(),
            index: rows.iter().map(|r| self.index[*r].clone()).collect(),
            columns: self
                .columns
                .iter()
                .map(|(n, v)| (n.clone(), v.take(rows)))
                .collect(),
        }
    }

    /// The index (named `index` for anndata's `_index`) and the columns as
    /// arrow, plus the row numbers when `with_rows`.
    pub fn to_batch(&self, with_rows: bool) -> anyhow::Result<RecordBatch> {
        let mut fields: Vec<(String, ArrayRef)> = vec![(
            index_name(&self.index_name),
            Arc::new(StringArray::from(self.index.clone())),
        )];
        fields.extend(self.columns.iter().map(|(n, v)| (n.clone(), v.to_arrow())));
        if with_rows {
            fields.push((
                ROW_COLUMN.into(),
                Arc::new(UInt64Array::from_iter_values(0..self.index.len() as u64)),
            ));
        }
        Ok(RecordBatch::try_from_iter_with_nullable(
            fields.into_iter().map(|(n, a)| (n, a, true)),
        )?)
    }

    /// The column `name`.
    pub fn column(&self, name: &str) -> Option<&Values> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subset_keeps_only_the_categories_it_uses_in_their_order() {
        let cat = Values::Cat {
            codes: vec![2, 0, -1, 2, 1],
            categories: vec!["a".into(), "b".into(), "c".into()],
        };
        assert_eq!(
            cat.take(&[3, 2, 0]),
            Values::Cat {
                codes: vec![0, -1, 0],
                categories: vec!["c".into()],
            }
        );
        assert_eq!(
            cat.take(&[0, 1]),
            Values::Cat {
                codes: vec![1, 0],
                categories: vec!["a".into(), "c".into()],
            }
        );
    }
}
