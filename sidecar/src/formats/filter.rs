//! Row conditions of `lamin cat --where`: a SQL boolean expression parsed
//! with `sqlparser` (PostgreSQL dialect), turned into a [`Predicate`] and
//! applied to arrow batches with each column's own type.
//!
//! Supported: `column op value` (=, !=, <>, <, <=, >, >=; a value on the
//! left works too), `[NOT] IN (…)`, `[NOT] BETWEEN … AND …`, `[NOT] LIKE` /
//! `ILIKE`, `IS [NOT] NULL`, `IS [NOT] TRUE/FALSE`, a boolean column alone,
//! joined by `AND`, `OR`, `NOT` and parentheses. Values are numbers,
//! 'single-quoted strings' ('' is a quote), TRUE/FALSE; each is read as the
//! type of the column it is compared with. Anything else is refused naming
//! the construct.

use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, BooleanArray, Scalar, StringArray};
use arrow::compute::kernels::cmp;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The operator with its operands swapped: `5 < n` is `n > 5`.
    fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }
}

/// A value of a condition, as written; read as the column's type when used.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number as written (`-3`, `1.5e3`).
    Number(String),
    /// A quoted string.
    Text(String),
    Bool(bool),
}

impl Literal {
    /// The text that is cast to the column's type.
    pub fn text(&self) -> String {
        match self {
            Literal::Number(s) | Literal::Text(s) => s.clone(),
            Literal::Bool(b) => b.to_string(),
        }
    }
}

/// The rows a `--where` keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `column op value`
    Compare {
        column: String,
        op: Op,
        value: Literal,
    },
    /// `column [NOT] IN (values)`
    In {
        column: String,
        values: Vec<Literal>,
        negated: bool,
    },
    /// `column IS [NOT] NULL`
    Null {
        column: String,
        negated: bool,
    },
    /// `column [NOT] LIKE / ILIKE 'pattern'`
    Like {
        column: String,
        pattern: String,
        negated: bool,
        case_insensitive: bool,
    },
    And(Box<Predicate>, Box<Predicate>),
    Or(Box<Predicate>, Box<Predicate>),
    Not(Box<Predicate>),
}

impl Predicate {
    /// The columns the predicate reads, in first-use order, each once.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_columns(&mut out);
        out
    }

    fn collect_columns(&self, out: &mut Vec<String>) {
        match self {
            Predicate::Compare { column, .. }
            | Predicate::In { column, .. }
            | Predicate::Null { column, .. }
            | Predicate::Like { column, .. } => {
                if !out.contains(column) {
                    out.push(column.clone());
                }
            }
            Predicate::And(a, b) | Predicate::Or(a, b) => {
                a.collect_columns(out);
                b.collect_columns(out);
            }
            Predicate::Not(a) => a.collect_columns(out),
        }
    }
}

const SUPPORTED: &str = "use column op value (=, !=, <, <=, >, >=), IN (…), BETWEEN … AND …, LIKE, IS [NOT] NULL, joined by AND, OR, NOT and parentheses";

/// Parse a `--where` text: `n_genes >= 200 AND (cell_type = 'T cell' OR donor IN ('d1', 'd2'))`.
pub fn parse_where(text: &str) -> anyhow::Result<Predicate> {
    if text.trim().is_empty() {
        bail!("--where is empty: give a condition such as n_genes >= 200 AND cell_type = 'T cell'");
    }
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(64)
        .try_with_sql(text)
        .with_context(|| format!("--where {text:?} cannot be read"))?;
    let expr = parser.parse_expr().map_err(|e| {
        anyhow::anyhow!(
            "--where {text:?} is not a valid condition: {e}; {SUPPORTED}; text values take 'single quotes'"
        )
    })?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        bail!(
            "--where {text:?}: unexpected {} after the condition {expr}; conditions are joined by AND or OR",
            next.token
        );
    }
    translate(&expr).with_context(|| format!("--where {text:?}"))
}

/// The name of a construct that `--where` does not support, for messages.
fn construct(expr: &Expr) -> String {
    let what = match expr {
        Expr::Function(_) => "a function call",
        Expr::Subquery(_) | Expr::Exists { .. } => "a subquery",
        Expr::Cast { .. } => "a cast",
        Expr::Case { .. } => "CASE",
        Expr::CompoundIdentifier(_) => "a qualified column name",
        Expr::BinaryOp { .. } => "this operator",
        Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => "IS [NOT] DISTINCT FROM",
        Expr::IsUnknown(_) | Expr::IsNotUnknown(_) => "IS [NOT] UNKNOWN",
        Expr::SimilarTo { .. } => "SIMILAR TO",
        Expr::RLike { .. } => "regular expressions",
        Expr::TypedString { .. } => "a typed literal",
        Expr::Interval(_) => "an interval",
        Expr::Array(_) => "an array",
        Expr::Tuple(_) => "a tuple",
        Expr::AnyOp { .. } | Expr::AllOp { .. } => "ANY / ALL",
        Expr::Collate { .. } => "COLLATE",
        _ => "this expression",
    };
    format!("{what} ({expr})")
}

fn unsupported(expr: &Expr) -> anyhow::Error {
    anyhow::anyhow!("{} is not supported; {SUPPORTED}", construct(expr))
}

/// A column name: a bare or "double-quoted" identifier.
fn column_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::Nested(inner) => column_of(inner),
        _ => None,
    }
}

/// A literal value, or None when `expr` is not one.
fn literal_of(expr: &Expr) -> anyhow::Result<Option<Literal>> {
    Ok(match expr {
        Expr::Value(v) => Some(match &v.value {
            Value::Number(n, _) => Literal::Number(n.to_string()),
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Literal::Text(s.clone()),
            Value::Boolean(b) => Literal::Bool(*b),
            Value::Null => bail!("NULL is never equal to anything: use column IS NULL or IS NOT NULL"),
            other => bail!("the value {other} is not supported: use a number, a 'quoted string', TRUE or FALSE"),
        }),
        Expr::UnaryOp {
            op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
            expr: inner,
        } => match literal_of(inner)? {
            Some(Literal::Number(n)) => Some(Literal::Number(if *op == UnaryOperator::Minus {
                format!("-{n}")
            } else {
                n
            })),
            _ => None,
        },
        Expr::Nested(inner) => literal_of(inner)?,
        _ => None,
    })
}

/// The value side of a condition on `column`: a literal; a column name
/// there is most often a string without its quotes, so the message says so.
fn value_of(expr: &Expr, column: &str) -> anyhow::Result<Literal> {
    if let Some(v) = literal_of(expr)? {
        return Ok(v);
    }
    if let Expr::Identifier(ident) = expr {
        let name = &ident.value;
        return Err(if ident.quote_style == Some('"') {
            anyhow::anyhow!(
                "\"{name}\" is a column name in SQL (double quotes); a text value takes single quotes: {column} = '{name}'"
            )
        } else {
            anyhow::anyhow!(
                "{name} is read as a column name, and columns are compared with values only; if {name} is a text value, put it in single quotes: {column} = '{}'",
                name.replace('\'', "''")
            )
        });
    }
    Err(unsupported(expr))
}

fn comparison(op: &BinaryOperator) -> Option<Op> {
    Some(match op {
        BinaryOperator::Eq => Op::Eq,
        BinaryOperator::NotEq => Op::Ne,
        BinaryOperator::Lt => Op::Lt,
        BinaryOperator::LtEq => Op::Le,
        BinaryOperator::Gt => Op::Gt,
        BinaryOperator::GtEq => Op::Ge,
        _ => return None,
    })
}

/// The column an expression tests, or a message naming what it is instead.
fn tested_column(expr: &Expr) -> anyhow::Result<String> {
    column_of(expr).ok_or_else(|| {
        anyhow::anyhow!(
            "{} where a column name was expected: conditions test a column",
            construct(expr)
        )
    })
}

fn translate(expr: &Expr) -> anyhow::Result<Predicate> {
    Ok(match expr {
        Expr::Nested(inner) => translate(inner)?,
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => {
                Predicate::And(Box::new(translate(left)?), Box::new(translate(right)?))
            }
            BinaryOperator::Or => {
                Predicate::Or(Box::new(translate(left)?), Box::new(translate(right)?))
            }
            _ => {
                let Some(cmp) = comparison(op) else {
                    bail!("the operator {op} is not supported; {SUPPORTED}");
                };
                if let Some(column) = column_of(left) {
                    Predicate::Compare {
                        value: value_of(right, &column)?,
                        column,
                        op: cmp,
                    }
                } else if let (Some(column), Some(value)) = (column_of(right), literal_of(left)?) {
                    Predicate::Compare {
                        column,
                        op: cmp.flipped(),
                        value,
                    }
                } else {
                    let odd = if literal_of(left)?.is_none() {
                        left
                    } else {
                        right
                    };
                    bail!(
                        "{} is not supported where a column name was expected: a condition compares a column with a value (e.g. n_genes >= 200)",
                        construct(odd)
                    );
                }
            }
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: inner,
        } => Predicate::Not(Box::new(translate(inner)?)),
        Expr::Identifier(_) => Predicate::Compare {
            column: tested_column(expr)?,
            op: Op::Eq,
            value: Literal::Bool(true),
        },
        Expr::IsTrue(e) | Expr::IsNotFalse(e) | Expr::IsFalse(e) | Expr::IsNotTrue(e) => {
            let wanted = matches!(expr, Expr::IsTrue(_) | Expr::IsNotFalse(_));
            let p = Predicate::Compare {
                column: tested_column(e)?,
                op: Op::Eq,
                value: Literal::Bool(wanted),
            };
            // IS NOT FALSE / IS NOT TRUE also keep NULLs.
            if matches!(expr, Expr::IsNotFalse(_) | Expr::IsNotTrue(_)) {
                let column = tested_column(e)?;
                Predicate::Or(
                    Box::new(p),
                    Box::new(Predicate::Null {
                        column,
                        negated: false,
                    }),
                )
            } else {
                p
            }
        }
        Expr::IsNull(e) => Predicate::Null {
            column: tested_column(e)?,
            negated: false,
        },
        Expr::IsNotNull(e) => Predicate::Null {
            column: tested_column(e)?,
            negated: true,
        },
        Expr::In {
            expr: e,
            target: InTarget::List(list),
            negated,
            ..
        } => {
            let column = tested_column(e)?;
            let values = list
                .iter()
                .map(|v| value_of(v, &column))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Predicate::In {
                column,
                values,
                negated: *negated,
            }
        }
        Expr::Between {
            expr: e,
            negated,
            low,
            high,
        } => {
            let column = tested_column(e)?;
            let range = Predicate::And(
                Box::new(Predicate::Compare {
                    column: column.clone(),
                    op: Op::Ge,
                    value: value_of(low, &column)?,
                }),
                Box::new(Predicate::Compare {
                    column: column.clone(),
                    op: Op::Le,
                    value: value_of(high, &column)?,
                }),
            );
            if *negated {
                Predicate::Not(Box::new(range))
            } else {
                range
            }
        }
        Expr::Like {
            negated,
            any: false,
            expr: e,
            pattern,
            escape_char: None,
        }
        | Expr::ILike {
            negated,
            any: false,
            expr: e,
            pattern,
            escape_char: None,
        } => {
            let column = tested_column(e)?;
            let Literal::Text(pattern) = value_of(pattern, &column)? else {
                bail!("{expr}: LIKE takes a 'quoted pattern'");
            };
            Predicate::Like {
                column,
                pattern,
                negated: *negated,
                case_insensitive: matches!(expr, Expr::ILike { .. }),
            }
        }
        other => return Err(unsupported(other)),
    })
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

/// A column of the batch, dictionaries decoded to their values.
fn column(batch: &RecordBatch, name: &str) -> anyhow::Result<ArrayRef> {
    let column = batch
        .column_by_name(name)
        .with_context(|| format!("condition column {name:?} not read"))?;
    Ok(match column.data_type() {
        DataType::Dictionary(_, v) => arrow::compute::cast(column, v)?,
        _ => column.clone(),
    })
}

/// The predicate per row, with SQL's three-valued logic (NULL: unknown).
pub fn evaluate(batch: &RecordBatch, predicate: &Predicate) -> anyhow::Result<BooleanArray> {
    Ok(match predicate {
        Predicate::Compare {
            column: c,
            op,
            value,
        } => {
            let col = column(batch, c)?;
            let v = Scalar::new(
                literal(&value.text(), col.data_type()).with_context(|| format!("column {c}"))?,
            );
            compare(*op, &col, &v).with_context(|| format!("column {c}"))?
        }
        Predicate::In {
            column: c,
            values,
            negated,
        } => {
            let col = column(batch, c)?;
            let mut any = BooleanArray::from(vec![false; batch.num_rows()]);
            for value in values {
                let v = Scalar::new(
                    literal(&value.text(), col.data_type())
                        .with_context(|| format!("column {c}"))?,
                );
                any = arrow::compute::or_kleene(&any, &cmp::eq(&col, &v)?)?;
            }
            if *negated {
                arrow::compute::not(&any)?
            } else {
                any
            }
        }
        Predicate::Null { column: c, negated } => {
            let col = column(batch, c)?;
            if *negated {
                arrow::compute::is_not_null(&col)?
            } else {
                arrow::compute::is_null(&col)?
            }
        }
        Predicate::Like {
            column: c,
            pattern,
            negated,
            case_insensitive,
        } => {
            let col = column(batch, c)?;
            if !matches!(
                col.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
                bail!(
                    "LIKE needs a text column; {c} is {}: compare it with =, <, > instead",
                    col.data_type()
                );
            }
            let p = Scalar::new(literal(pattern, col.data_type())?);
            use arrow::compute::kernels::comparison as k;
            match (case_insensitive, negated) {
                (false, false) => k::like(&col, &p)?,
                (false, true) => k::nlike(&col, &p)?,
                (true, false) => k::ilike(&col, &p)?,
                (true, true) => k::nilike(&col, &p)?,
            }
        }
        Predicate::And(a, b) => {
            arrow::compute::and_kleene(&evaluate(batch, a)?, &evaluate(batch, b)?)?
        }
        Predicate::Or(a, b) => {
            arrow::compute::or_kleene(&evaluate(batch, a)?, &evaluate(batch, b)?)?
        }
        Predicate::Not(a) => arrow::compute::not(&evaluate(batch, a)?)?,
    })
}

/// Keep the rows of `batch` for which the predicate is true (not false, not NULL).
pub fn filter_rows(
    batch: &RecordBatch,
    predicate: Option<&Predicate>,
) -> anyhow::Result<RecordBatch> {
    let Some(predicate) = predicate else {
        return Ok(batch.clone());
    };
    let mask = evaluate(batch, predicate)?;
    let mask = if mask.null_count() > 0 {
        arrow::compute::prep_null_mask_filter(&mask)
    } else {
        mask
    };
    Ok(arrow::compute::filter_record_batch(batch, &mask)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp_(column: &str, op: Op, value: Literal) -> Predicate {
        Predicate::Compare {
            column: column.into(),
            op,
            value,
        }
    }

    #[test]
    fn where_clauses_parse() {
        let p = parse_where("cell_type = 'T cell' AND n_genes >= 200 and x!=3").unwrap();
        assert_eq!(
            p,
            Predicate::And(
                Box::new(Predicate::And(
                    Box::new(cmp_("cell_type", Op::Eq, Literal::Text("T cell".into()))),
                    Box::new(cmp_("n_genes", Op::Ge, Literal::Number("200".into())))
                )),
                Box::new(cmp_("x", Op::Ne, Literal::Number("3".into())))
            )
        );
        assert_eq!(p.columns(), ["cell_type", "n_genes", "x"]);
        assert_eq!(
            parse_where("name = 'O''Neil'").unwrap(),
            cmp_("name", Op::Eq, Literal::Text("O'Neil".into()))
        );
        assert_eq!(
            parse_where("5 < n").unwrap(),
            cmp_("n", Op::Gt, Literal::Number("5".into()))
        );
        assert_eq!(
            parse_where("n > -2.5").unwrap(),
            cmp_("n", Op::Gt, Literal::Number("-2.5".into()))
        );
        assert_eq!(
            parse_where("\"Cell Type\" <> 'x'").unwrap(),
            cmp_("Cell Type", Op::Ne, Literal::Text("x".into()))
        );
        assert!(matches!(
            parse_where("a = 1 OR (b IS NOT NULL AND c IN ('x', 'y'))").unwrap(),
            Predicate::Or(..)
        ));
        assert!(matches!(
            parse_where("n NOT BETWEEN 1 AND 3").unwrap(),
            Predicate::Not(..)
        ));
        for bad in [
            "",
            "a",
            "a ~ 1",
            "a = 'open",
            "= 3",
            "a = 1 b = 2",
            "lower(a) = 'x'",
            "a + 1 > 2",
            "a = NULL",
        ] {
            // A bare column `a` is `a = true`: fine to parse.
            if bad == "a" {
                assert!(parse_where(bad).is_ok());
                continue;
            }
            assert!(parse_where(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = format!("{:#}", parse_where("cell_type = T").unwrap_err());
        assert!(e.contains("single quotes: cell_type = 'T'"), "{e}");
        let e = format!("{:#}", parse_where("cell_type = \"T cell\"").unwrap_err());
        assert!(e.contains("double quotes"), "{e}");
        let e = format!("{:#}", parse_where("lower(cell_type) = 'x'").unwrap_err());
        assert!(e.contains("a function call"), "{e}");
        let e = format!("{:#}", parse_where("a ~ 'x'").unwrap_err());
        assert!(e.contains("operator ~"), "{e}");
        let e = format!("{:#}", parse_where("a = NULL").unwrap_err());
        assert!(e.contains("IS NULL"), "{e}");
        let e = format!("{:#}", parse_where("a IN (SELECT 1)").unwrap_err());
        assert!(e.contains("not supported"), "{e}");
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(arrow::array::Int64Array::from(vec![
                    Some(1),
                    Some(5),
                    Some(10),
                    None,
                ])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                ])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn kept(text: &str) -> usize {
        filter_rows(&batch(), Some(&parse_where(text).unwrap()))
            .unwrap()
            .num_rows()
    }

    #[test]
    fn rows_are_filtered_by_typed_conditions() {
        assert_eq!(kept("n >= 5 AND s = 'a'"), 1);
        assert_eq!(kept("n = 1 OR s = 'b'"), 2);
        assert_eq!(kept("s IN ('a', 'b')"), 3);
        assert_eq!(kept("s NOT IN ('a')"), 1, "NULL is not kept");
        assert_eq!(kept("n IS NULL"), 1);
        assert_eq!(kept("n IS NOT NULL AND NOT (s = 'b')"), 2);
        assert_eq!(kept("n BETWEEN 2 AND 10"), 2);
        assert_eq!(kept("s LIKE 'A%'"), 0);
        assert_eq!(kept("s ILIKE 'A%'"), 2);
        assert_eq!(
            kept("n = '5'"),
            1,
            "a quoted number is read as the column's type"
        );
        assert!(filter_rows(&batch(), Some(&parse_where("n = 'abc'").unwrap())).is_err());
        assert!(filter_rows(&batch(), Some(&parse_where("n LIKE '1%'").unwrap())).is_err());
    }
}
