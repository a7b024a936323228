//! curate: the distinct values of an artifact's column, with how many rows
//! hold each and how many are NULL, checked against a registry with
//! lamin.inspect (as the requester), stored as a curation report.

use std::collections::BTreeMap;

use anyhow::Context;
use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::error::DbError;
use crate::formats::anndata::{self, Slot};
use crate::formats::{is_anndata_suffix, parquet};
use crate::progress::Counter;
use crate::refused;
use crate::storage::Storage;

/// Which column of which artifact, checked against which registry (and field).
#[derive(Debug, Clone)]
pub struct CurateRequest {
    pub uid: String,
    pub column: String,
    pub registry: String,
    /// None: the registry's name field.
    pub field: Option<String>,
}

/// A column's values: how many rows hold each distinct value, and how many
/// are NULL (missing).
#[derive(Debug, Default, PartialEq)]
pub struct ValueCounts {
    pub counts: BTreeMap<String, i64>,
    pub n_null: i64,
}

impl ValueCounts {
    /// Count the values of one arrow array (any type, read as text).
    pub(crate) fn add(&mut self, column: &ArrayRef, name: &str) -> anyhow::Result<()> {
        let text = arrow::compute::cast(column, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        self.n_null += text.null_count() as i64;
        for v in text.iter().flatten() {
            if let Some(n) = self.counts.get_mut(v) {
                *n += 1;
            } else if self.counts.len() < MAX_DISTINCT {
                self.counts.insert(v.to_string(), 1);
            } else {
                anyhow::bail!(
                    "column {name:?} has more than {MAX_DISTINCT} distinct values: not a label column"
                );
            }
        }
        Ok(())
    }
}

/// Distinct values of one column: at most this many are checked at once.
const MAX_DISTINCT: usize = 1_000_000;

/// curate: the distinct values of a column, checked against a registry with
/// lamin.inspect (as the requester), stored as a curation report.
///
/// Returns the summary lamin.record_curation made.
pub async fn curate(
    client: &Client,
    request: &CurateRequest,
    progress: &Counter,
) -> anyhow::Result<Value> {
    let (uid, column, registry) = (&request.uid, &request.column, &request.registry);
    let field = request.field.clone();
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.size, (SELECT r.name_field FROM lamin.registry r WHERE r.name = $2),
                    a.suffix
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid, &registry],
        )
        .await
        .map_err(DbError)?
        .ok_or_else(|| refused!("no ready artifact with uid {uid:?}"))?;
    let (root, object, size, name_field, suffix): (
        String,
        String,
        Option<i64>,
        Option<String>,
        String,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let field = field
        .or(name_field)
        .ok_or_else(|| refused!("unknown registry {registry:?}"))?;
    let storage = Storage::open(&root)?;
    let values = if is_anndata_suffix(&suffix) {
        anndata_values(&storage, &object, &suffix, column)
            .await
            .with_context(|| format!("artifact {uid}"))?
    } else {
        parquet_values(&storage, &object, size, column)
            .await
            .with_context(|| format!("artifact {uid}"))?
    };
    let distinct: Vec<&str> = values.counts.keys().map(String::as_str).collect();
    progress.set_total(distinct.len() as i64);
    let rows = client
        .query(
            "SELECT value, validated, standardized, suggestion FROM lamin.inspect($1, $2, $3)",
            &[&registry, &distinct, &field],
        )
        .await
        .map_err(DbError)?;
    let report: Vec<Value> = rows
        .iter()
        .map(|r| {
            let value = r.get::<_, Option<String>>(0);
            let n = value.as_ref().and_then(|v| values.counts.get(v)).copied();
            json!({
                "value": value,
                "n": n,
                "validated": r.get::<_, bool>(1),
                "standardized": r.get::<_, Option<String>>(2),
                "suggestion": r.get::<_, Option<String>>(3),
            })
        })
        .collect();
    let report = Value::from(report).to_string();
    let summary: String = client
        .query_one(
            "SELECT lamin.record_curation($1, $2, $3, $4, $5::text::jsonb, $6)::text",
            &[&uid, &column, &registry, &field, &report, &values.n_null],
        )
        .await
        .map_err(DbError)?
        .get(0);
    Ok(serde_json::from_str(&summary)?)
}

/// The values of an AnnData column (`obs.<column>`, `var.<column>`,
/// `obs.index`, `var.index`), .h5ad file or .zarr store (through a local
/// copy for remote storages), counted.
async fn anndata_values(
    storage: &Storage,
    object: &str,
    suffix: &str,
    column: &str,
) -> anyhow::Result<ValueCounts> {
    let Some((slot, col)) = column.split_once('.').and_then(|(f, c)| match f {
        "obs" => Some((Slot::Obs, c)),
        "var" => Some((Slot::Var, c)),
        _ => None,
    }) else {
        anyhow::bail!(
            "column {column:?} of an AnnData: expected obs.<column>, var.<column>, obs.index or var.index"
        );
    };
    storage
        .with_local_copy(object, suffix == ".zarr", |path| {
            let frame = tokio::task::block_in_place(|| anndata::read_frame(path, suffix, slot))?;
            // The index is the frame's first column.
            let array = if col == "index" {
                frame.column(0).clone()
            } else {
                frame
                    .column_by_name(col)
                    .cloned()
                    .with_context(|| format!("no column {col:?} in {}", slot.name()))?
            };
            let mut values = ValueCounts::default();
            values.add(&array, column)?;
            Ok(values)
        })
        .await
}

/// The values of a parquet column (only that column is read), counted.
async fn parquet_values(
    storage: &Storage,
    object: &str,
    size: Option<i64>,
    column: &str,
) -> anyhow::Result<ValueCounts> {
    let query = parquet::Query {
        columns: Some(vec![column.to_string()]),
        ..Default::default()
    };
    let mut values = ValueCounts::default();
    parquet::scan(storage, object, size.map(|s| s as u64), &query, |batch| {
        values.add(batch.column(0), column)?;
        Ok(())
    })
    .await?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn values_are_counted_with_their_nulls_whatever_their_type() {
        let mut v = ValueCounts::default();
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("T cell"),
            None,
            Some("T cell"),
            Some("B cell"),
        ]));
        v.add(&text, "cell_type").unwrap();
        let ints: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![Some(7), None]));
        v.add(&ints, "n").unwrap();
        assert_eq!(v.counts.get("T cell"), Some(&2));
        assert_eq!(v.counts.get("B cell"), Some(&1));
        assert_eq!(v.counts.get("7"), Some(&1));
        assert_eq!(v.n_null, 2);
    }
}
