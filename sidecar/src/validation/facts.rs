//! The facts validation needs of a dataset, gathered batch by batch: per
//! frame (the columns of a table; obs or var of an AnnData) each column's
//! dtype, and for the columns a schema names their NULL count, whether
//! floats are whole and text numeric (for coercion), the distinct values of
//! categorical columns; and the frame's index when a slot is about it.
//! What they mean is decided in the database (lamin.validation_verdict).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, ArrayRef, Float16Array, Float32Array, Float64Array, StringArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use serde_json::{json, Value};

use crate::warehouse::curate::ValueCounts;

/// What one frame must yield.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FrameNeeds {
    /// Columns named by the schema: their NULLs, whole/numeric checks.
    pub stats: BTreeSet<String>,
    /// Columns of categorical features: their distinct values too.
    pub values: BTreeSet<String>,
    /// Whether the frame's index is needed (a var.T slot).
    pub index: bool,
}

/// What a schema definition (lamin.schema_definition) asks of a dataset, by frame.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Needs {
    pub frames: BTreeMap<String, FrameNeeds>,
}

impl Needs {
    pub fn from_definition(definition: &Value) -> Self {
        let mut needs = Needs::default();
        for slot in definition["slots"].as_array().into_iter().flatten() {
            let Some(frame) = slot["frame"].as_str() else {
                continue;
            };
            let n = needs.frames.entry(frame.to_string()).or_default();
            if slot["members"] == "index" {
                n.index = true;
            }
            for f in slot["features"].as_array().into_iter().flatten() {
                let Some(name) = f["name"].as_str() else {
                    continue;
                };
                n.stats.insert(name.to_string());
                if !f["registry"].is_null() {
                    n.values.insert(name.to_string());
                }
            }
        }
        needs
    }
}

/// One column's facts.
#[derive(Debug, Default)]
struct ColumnFacts {
    name: String,
    dtype: String,
    /// Gathered (the schema names the column).
    stats: bool,
    n_null: i64,
    /// Floats: all whole numbers so far. Text: all integers so far.
    whole: bool,
    /// Text: all parse as numbers so far.
    numeric: bool,
    values: Option<ValueCounts>,
}

/// The facts of one frame.
#[derive(Debug)]
pub struct FrameFacts {
    n_rows: i64,
    columns: Vec<ColumnFacts>,
    index: Option<Vec<String>>,
}

impl FrameFacts {
    /// A frame with these columns (name, lamin dtype), in order.
    pub fn new<'a>(
        columns: impl IntoIterator<Item = (&'a str, &'a str)>,
        needs: &FrameNeeds,
    ) -> Self {
        FrameFacts {
            n_rows: 0,
            columns: columns
                .into_iter()
                .map(|(name, dtype)| ColumnFacts {
                    name: name.to_string(),
                    dtype: dtype.to_string(),
                    stats: needs.stats.contains(name),
                    whole: true,
                    numeric: true,
                    values: needs.values.contains(name).then(ValueCounts::default),
                    ..Default::default()
                })
                .collect(),
            index: needs.index.then(Vec::new),
        }
    }

    /// The names of the columns to read (those the schema names).
    pub fn columns_to_read(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.stats)
            .map(|c| c.name.clone())
            .collect()
    }

    /// Add a batch holding (at least) the columns to read; `index` names the
    /// batch's index column, if it has one.
    pub fn add(&mut self, batch: &RecordBatch, index: Option<&str>) -> anyhow::Result<()> {
        self.n_rows += batch.num_rows() as i64;
        if let (Some(out), Some(name)) = (self.index.as_mut(), index) {
            if let Some(array) = batch.column_by_name(name) {
                out.extend(
                    text_values(array)?
                        .iter()
                        .map(|v| v.unwrap_or("").to_string()),
                );
            }
        }
        for col in self.columns.iter_mut().filter(|c| c.stats) {
            let Some(array) = batch.column_by_name(&col.name) else {
                continue;
            };
            col.n_null += array.null_count() as i64;
            observe(col, array)?;
            if let Some(values) = col.values.as_mut() {
                values.add(array, &col.name)?;
            }
        }
        Ok(())
    }

    /// The frame as lamin.validation_verdict reads it.
    pub fn to_json(&self) -> Value {
        let columns: Vec<Value> = self
            .columns
            .iter()
            .map(|c| {
                if !c.stats {
                    return json!({ "name": c.name, "dtype": c.dtype });
                }
                json!({
                    "name": c.name,
                    "dtype": c.dtype,
                    "n_null": c.n_null,
                    "whole": (c.dtype == "float" || c.dtype == "str").then_some(c.whole),
                    "numeric": (c.dtype == "str").then_some(c.numeric),
                    "values": c.values.as_ref().map(|v| json!(v.counts)),
                })
            })
            .collect();
        json!({ "n_rows": self.n_rows, "columns": columns, "index": self.index })
    }
}

/// Whether floats are whole, and text integers or numbers.
fn observe(col: &mut ColumnFacts, array: &ArrayRef) -> anyhow::Result<()> {
    match array.data_type() {
        DataType::Float16 | DataType::Float32 | DataType::Float64 if col.whole => {
            let whole = |x: f64| x.is_finite() && x.fract() == 0.0;
            col.whole = if let Some(a) = array.as_any().downcast_ref::<Float64Array>() {
                a.iter().flatten().all(whole)
            } else if let Some(a) = array.as_any().downcast_ref::<Float32Array>() {
                a.iter().flatten().all(|x| whole(x as f64))
            } else if let Some(a) = array.as_any().downcast_ref::<Float16Array>() {
                a.iter().flatten().all(|x| whole(f64::from(x)))
            } else {
                false
            };
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if col.numeric || col.whole => {
            for v in text_values(array)?.iter().flatten() {
                let v = v.trim();
                col.whole &= v.parse::<i64>().is_ok();
                col.numeric &= v.parse::<f64>().is_ok_and(f64::is_finite);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Any array as text.
fn text_values(array: &ArrayRef) -> anyhow::Result<StringArray> {
    let text = arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array};

    fn needs() -> FrameNeeds {
        FrameNeeds {
            stats: ["cell_type", "n", "x", "dose"].map(String::from).into(),
            values: ["cell_type"].map(String::from).into(),
            index: true,
        }
    }

    #[test]
    fn named_columns_get_their_facts_others_only_their_dtype() {
        let mut f = FrameFacts::new(
            [
                ("cell_type", "str"),
                ("n", "int"),
                ("x", "float"),
                ("dose", "str"),
                ("extra", "int"),
            ],
            &needs(),
        );
        assert_eq!(f.columns_to_read(), ["cell_type", "n", "x", "dose"]);
        let batch = RecordBatch::try_from_iter(vec![
            (
                "index",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            (
                "cell_type",
                Arc::new(StringArray::from(vec![
                    Some("T cell"),
                    None,
                    Some("T cell"),
                ])) as ArrayRef,
            ),
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(1), None, None])) as ArrayRef,
            ),
            (
                "x",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
            ),
            (
                "dose",
                Arc::new(StringArray::from(vec!["0.5", "1", "2"])) as ArrayRef,
            ),
        ])
        .unwrap();
        f.add(&batch, Some("index")).unwrap();
        let j = f.to_json();
        assert_eq!(j["n_rows"], 3);
        assert_eq!(j["index"], json!(["a", "b", "c"]));
        let c = &j["columns"];
        assert_eq!(c[0]["values"], json!({"T cell": 2}));
        assert_eq!(c[0]["n_null"], 1);
        assert_eq!(c[1]["n_null"], 2);
        assert_eq!(c[2]["whole"], true);
        assert_eq!(c[3]["numeric"], true);
        assert_eq!(c[3]["whole"], false, "0.5 is not an integer");
        assert_eq!(c[4], json!({"name": "extra", "dtype": "int"}));
        let more = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(Float64Array::from(vec![2.5])) as ArrayRef,
        )])
        .unwrap();
        f.add(&more, None).unwrap();
        assert_eq!(f.to_json()["columns"][2]["whole"], false);
    }

    #[test]
    fn needs_come_from_the_definition() {
        let def = json!({"slots": [
            {"slot": "obs", "frame": "obs", "members": "columns",
             "features": [{"name": "cell_type", "registry": "bionty.cell_type"}, {"name": "n", "registry": null}]},
            {"slot": "var.T", "frame": "var", "members": "index", "features": []}
        ]});
        let n = Needs::from_definition(&def);
        assert_eq!(n.frames["obs"].stats.len(), 2);
        assert!(n.frames["obs"].values.contains("cell_type"));
        assert!(!n.frames["obs"].values.contains("n"));
        assert!(n.frames["var"].index);
        assert!(!n.frames["obs"].index);
    }
}
