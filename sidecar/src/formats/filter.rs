//! Row conditions of `lamin cat --where`: parsing `col = value AND …`, and
//! applying them to arrow batches with the column's own type.

use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, BooleanArray, Scalar, StringArray};
use arrow::compute::kernels::cmp;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

/// A condition of `lamin cat --where`: `column op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Parse `a = 1 AND b >= 'x y'`: conditions joined by AND; values are
/// numbers or quoted strings ('' inside quotes is a quote).
pub fn parse_where(text: &str) -> anyhow::Result<Vec<Condition>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    loop {
        let end = rest
            .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
            .with_context(|| format!("--where {text:?}: expected `column op value`"))?;
        let column = rest[..end].trim_matches('"').to_string();
        if column.is_empty() {
            bail!("--where {text:?}: a condition has no column");
        }
        rest = rest[end..].trim_start();
        let (op, len) = [
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, op)| (*op, s.len()))
        .with_context(|| {
            format!("--where {text:?}: expected one of = != < <= > >= after {column}")
        })?;
        rest = rest[len..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut v = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut closed = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, c)| *c) == Some('\'') {
                        v.push('\'');
                        chars.next();
                    } else {
                        closed = Some(i + 1);
                        break;
                    }
                } else {
                    v.push(c);
                }
            }
            let closed = closed.with_context(|| format!("--where {text:?}: unclosed quote"))?;
            value = v;
            rest = quoted[closed..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            if value.is_empty() {
                bail!("--where {text:?}: {column} has no value");
            }
            rest = rest[end..].trim_start();
        }
        out.push(Condition { column, op, value });
        if rest.is_empty() {
            return Ok(out);
        }
        let Some(next) = rest
            .strip_prefix("AND ")
            .or_else(|| rest.strip_prefix("and "))
        else {
            bail!("--where {text:?}: conditions are joined by AND");
        };
        rest = next.trim_start();
    }
}

/// The literal of a condition as a one-element array of the column's type.
pub fn literal(value: &str, t: &DataType) -> anyhow::Result<ArrayRef> {
    let target = match t {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        other => other.clone(),
    };
    let text: ArrayRef = Arc::new(StringArray::from(vec![value]));
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(&text, &target, &options)
        .with_context(|| format!("{value:?} is not a value of type {target}"))
}

fn compare(
    op: Op,
    left: &dyn arrow::array::Datum,
    right: &dyn arrow::array::Datum,
) -> anyhow::Result<BooleanArray> {
    Ok(match op {
        Op::Eq => cmp::eq(left, right)?,
        Op::Ne => cmp::neq(left, right)?,
        Op::Lt => cmp::lt(left, right)?,
        Op::Le => cmp::lt_eq(left, right)?,
        Op::Gt => cmp::gt(left, right)?,
        Op::Ge => cmp::gt_eq(left, right)?,
    })
}

/// Keep the rows of `batch` that meet every condition.
pub fn filter_rows(batch: &RecordBatch, conditions: &[Condition]) -> anyhow::Result<RecordBatch> {
    if conditions.is_empty() {
        return Ok(batch.clone());
    }
    let mut mask: Option<BooleanArray> = None;
    for c in conditions {
        let column = batch
            .column_by_name(&c.column)
            .context("condition column not read")?;
        let column = match column.data_type() {
            DataType::Dictionary(_, v) => arrow::compute::cast(column, v)?,
            _ => column.clone(),
        };
        let value = Scalar::new(literal(&c.value, column.data_type())?);
        let m = compare(c.op, &column, &value)?;
        mask = Some(match mask {
            None => m,
            Some(prev) => arrow::compute::and(&prev, &m)?,
        });
    }
    Ok(arrow::compute::filter_record_batch(
        batch,
        &mask.expect("conditions"),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_clauses_parse() {
        let c = parse_where("cell_type = 'T cell' AND n_genes >= 200 and x!=3").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Condition {
                column: "cell_type".into(),
                op: Op::Eq,
                value: "T cell".into()
            }
        );
        assert_eq!(c[1].op, Op::Ge);
        assert_eq!(c[1].value, "200");
        assert_eq!(c[2].op, Op::Ne);
        assert_eq!(parse_where("name = 'O''Neil'").unwrap()[0].value, "O'Neil");
        for bad in ["", "a", "a ~ 1", "a = 'open", "a = 1 OR b = 2", "= 3"] {
            assert!(parse_where(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn rows_are_filtered_by_typed_conditions() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(arrow::array::Int64Array::from(vec![1, 5, 10])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let kept = filter_rows(&batch, &parse_where("n >= 5 AND s = 'a'").unwrap()).unwrap();
        assert_eq!(kept.num_rows(), 1);
        assert!(filter_rows(&batch, &parse_where("n = abc").unwrap()).is_err());
    }
}
