//! An AnnData dataframe (`obs` or `var`) as a slice reads and writes it:
//! the index and typed columns, categoricals kept as codes and categories
//! so that a slice written as h5ad has the same categories as its source,
//! and every column in its source's type (see `num`).

use std::sync::Arc;

use anyhow::bail;
use arrow::array::{ArrayRef, BooleanArray, StringArray, UInt64Array};
use arrow::compute::kernels::cast::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::num::Num;
use crate::formats::anndata::{decode_categorical, index_name};
use crate::refused;

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Codes into the categories (-1: missing). The categories are a column
    /// of their own type: text, or numbers and booleans, as pandas allows.
    Cat {
        codes: Vec<i64>,
        categories: Box<Values>,
        ordered: bool,
    },
    /// Whole numbers and the type they are stored in.
    Int(Vec<Option<i64>>, Num),
    /// Numbers and the type they are stored in (float32 or float64).
    Float(Vec<f64>, Num),
    Bool(Vec<Option<bool>>),
    Str(Vec<String>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Cat { codes, .. } => codes.len(),
            Values::Int(v, _) => v.len(),
            Values::Float(v, _) => v.len(),
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
            Values::Cat {
                codes,
                categories,
                ordered,
            } => {
                let picked = pick(codes, rows);
                let n = categories.len();
                let mut used = vec![false; n];
                for c in &picked {
                    if let Some(u) = usize::try_from(*c).ok().and_then(|i| used.get_mut(i)) {
                        *u = true;
                    }
                }
                let mut new_code = vec![-1i64; n];
                let mut kept = Vec::new();
                for (i, u) in used.iter().enumerate() {
                    if *u {
                        new_code[i] = kept.len() as i64;
                        kept.push(i);
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
                    categories: Box::new(categories.take(&kept)),
                    ordered: *ordered,
                }
            }
            Values::Int(v, num) => Values::Int(pick(v, rows), *num),
            Values::Float(v, num) => Values::Float(pick(v, rows), *num),
            Values::Bool(v) => Values::Bool(pick(v, rows)),
            Values::Str(v) => Values::Str(pick(v, rows)),
        }
    }

    /// As arrow, in the source's types (a categorical as its categories'
    /// values, NULL where the code is missing).
    pub fn to_arrow(&self) -> anyhow::Result<ArrayRef> {
        Ok(match self {
            Values::Cat {
                codes, categories, ..
            } => decode_categorical(codes, &categories.to_arrow()?)?,
            Values::Int(v, num) => num.ints_to_arrow(v),
            Values::Float(v, num) => num.floats_to_arrow(v),
            Values::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
            Values::Str(v) => Arc::new(StringArray::from(v.clone())),
        })
    }

    /// The value at `row` as text, for matching names (`--var-key`).
    pub fn text(&self, row: usize) -> Option<String> {
        match self {
            Values::Cat {
                codes, categories, ..
            } => usize::try_from(codes[row])
                .ok()
                .filter(|i| *i < categories.len())
                .and_then(|i| categories.text(i)),
            Values::Str(v) => Some(v[row].clone()),
            Values::Int(v, _) => v[row].map(|x| x.to_string()),
            Values::Float(v, _) => Some(v[row].to_string()),
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
        for (n, v) in &self.columns {
            fields.push((n.clone(), v.to_arrow()?));
        }
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

/// A table with its whole numbers as 64-bit integers and its floats as
/// 64-bit floats: how `lamin query` and `lamin cat` give obs and var
/// (`formats::anndata`), whichever reader read them.
pub fn widened(batch: RecordBatch) -> anyhow::Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let wide = match field.data_type() {
            t if t.is_integer() => Some(DataType::Int64),
            DataType::Float16 | DataType::Float32 => Some(DataType::Float64),
            _ => None,
        };
        let column = match wide {
            Some(t) => cast(column, &t)?,
            None => Arc::clone(column),
        };
        fields.push((field.name().clone(), column, true));
    }
    Ok(RecordBatch::try_from_iter_with_nullable(fields)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn text(v: &[&str]) -> Box<Values> {
        Box::new(Values::Str(v.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn a_subset_keeps_only_the_categories_it_uses_in_their_order() {
        let cat = Values::Cat {
            codes: vec![2, 0, -1, 2, 1],
            categories: text(&["a", "b", "c"]),
            ordered: true,
        };
        assert_eq!(
            cat.take(&[3, 2, 0]),
            Values::Cat {
                codes: vec![0, -1, 0],
                categories: text(&["c"]),
                ordered: true,
            }
        );
        assert_eq!(
            cat.take(&[0, 1]),
            Values::Cat {
                codes: vec![1, 0],
                categories: text(&["a", "c"]),
                ordered: true,
            }
        );
    }

    #[test]
    fn categories_of_numbers_stay_numbers_and_a_code_past_them_is_missing() {
        let cat = Values::Cat {
            codes: vec![1, 0, -1, 7],
            categories: Box::new(Values::Int(vec![Some(3), Some(12)], Num::I64)),
            ordered: false,
        };
        let a = cat.to_arrow().unwrap();
        assert_eq!(a.data_type(), &DataType::Int64);
        let a = a.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [Some(12), Some(3), None, None]
        );
        assert_eq!(cat.text(0).as_deref(), Some("12"));
        assert_eq!(cat.text(3), None);
    }

    #[test]
    fn a_widened_table_has_64_bit_numbers() {
        let frame = Frame {
            index_name: "_index".into(),
            index: vec!["a".into()],
            columns: vec![
                ("n".into(), Values::Int(vec![Some(1)], Num::I32)),
                ("f".into(), Values::Float(vec![0.5], Num::F32)),
            ],
        };
        let narrow = frame.to_batch(false).unwrap();
        assert_eq!(narrow.column(1).data_type(), &DataType::Int32);
        let wide = widened(narrow).unwrap();
        assert_eq!(wide.column(1).data_type(), &DataType::Int64);
        assert_eq!(wide.column(2).data_type(), &DataType::Float64);
        assert_eq!(wide.column(0).data_type(), &DataType::Utf8);
    }
}
