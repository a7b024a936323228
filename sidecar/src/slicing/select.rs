//! Which observations and variables a slice keeps: the rows of `obs` where
//! an SQL condition holds (DataFusion evaluates it, so every operator of
//! `lamin query` works: AND/OR, IN, IS NULL, LIKE, functions), and the
//! variables named by the var index or a var column.

use std::collections::HashMap;

use anyhow::bail;
use arrow::array::{Array, UInt64Array};
use datafusion::prelude::SessionContext;

use super::frame::{Frame, ROW_COLUMN};
use crate::refused;

/// The rows of `obs` (ascending) where `condition` holds; all rows without one.
pub async fn rows_where(obs: &Frame, condition: Option<&str>) -> anyhow::Result<Vec<u64>> {
    let Some(condition) = condition else {
        return Ok((0..obs.index.len() as u64).collect());
    };
    let columns = || {
        let mut names = vec![crate::formats::anndata::index_name(&obs.index_name)];
        names.extend(obs.columns.iter().map(|(n, _)| n.clone()));
        names.join(", ")
    };
    let ctx = SessionContext::new();
    let frame = ctx.read_batch(obs.to_batch(true)?)?;
    // Parsed as an expression against obs's columns, never pasted into a
    // query: the condition can only compute over obs.
    let expr = frame.parse_sql_expr(condition).map_err(|e| {
        refused!(
            "--obs {condition:?} cannot be used: {e}. obs has the columns {} (quote names with capitals or spaces in double quotes)",
            columns()
        )
    })?;
    let batches = frame
        .filter(expr)
        .and_then(|f| f.select_columns(&[ROW_COLUMN]))
        .map_err(|e| refused!("--obs {condition:?} cannot be used: {e}"))?
        .collect()
        .await
        .map_err(|e| refused!("--obs {condition:?} cannot be evaluated: {e}"))?;
    let mut rows = Vec::new();
    for batch in batches {
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("row numbers are u64");
        rows.extend(col.iter().flatten());
    }
    rows.sort_unstable();
    Ok(rows)
}

/// The variables a slice keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variables {
    /// For each variable of the file its output position (`None`: left out).
    pub keep: Vec<Option<u32>>,
    /// The file rows of `var`, in output order.
    pub rows: Vec<usize>,
    /// Their names in the output: the var index, or the `--var-key` column.
    pub names: Vec<String>,
}

/// The variables kept. Names are looked up in the var index, or in the
/// column `key`; without names every variable is kept.
pub fn variables(var: &Frame, names: &[String], key: Option<&str>) -> anyhow::Result<Variables> {
    let n = var.index.len();
    // The key is checked even without names: a misspelt --var-key is
    // refused, not ignored.
    let key_values = match key {
        None => None,
        Some(key) => Some(var.column(key).ok_or_else(|| {
            refused!(
                "--var-key {key:?}: var has no such column; its columns are {}",
                var.columns
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
    let named = |rows: &[usize]| -> Vec<String> {
        match key_values {
            Some(values) => rows
                .iter()
                .map(|i| values.text(*i).unwrap_or_default())
                .collect(),
            None => rows.iter().map(|i| var.index[*i].clone()).collect(),
        }
    };
    if names.is_empty() {
        let rows: Vec<usize> = (0..n).collect();
        return Ok(Variables {
            keep: (0..n as u32).map(Some).collect(),
            names: named(&rows),
            rows,
        });
    }
    let lookup: HashMap<String, usize> = match key_values {
        None => var
            .index
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect(),
        Some(values) => {
            // The first variable of each name (gene symbols can repeat).
            let mut map = HashMap::new();
            for i in (0..n).rev() {
                if let Some(t) = values.text(i) {
                    map.insert(t, i);
                }
            }
            map
        }
    };
    let mut keep = vec![None; n];
    let mut order = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match lookup.get(name) {
            Some(&i) if keep[i].is_none() => {
                keep[i] = Some(order.len() as u32);
                order.push(i);
            }
            Some(_) => {}
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(10).copied().collect();
        bail!(refused!(
            "{} of the --var names are not in {}: {}{}",
            unknown.len(),
            key.map_or("the var index".to_string(), |k| format!("var column {k:?}")),
            shown.join(", "),
            if unknown.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ));
    }
    Ok(Variables {
        keep,
        names: named(&order),
        rows: order,
    })
}
