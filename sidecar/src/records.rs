//! Sheets in files: a record type's records imported from and exported to
//! CSV/TSV and parquet (`lamin records import|export`). The rules live in
//! the database: a file's rows go to `lamin.import_records` as JSON (one
//! call, so one transaction: all rows or none), and an export reads
//! `lamin.record_columns` and `lamin.record_rows`. Here only the bytes are
//! turned into rows and back, typed by each feature's dtype.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use tokio_postgres::Client;

use crate::error::DbError;
use crate::formats::{self, delimiter_of, Query};

/// The name of the column that holds each record's uid in an export (and,
/// when present, says which record a row updates on import).
pub const UID_COLUMN: &str = "uid";

/// Import a file's rows into a record type.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The record type (uid or name).
    pub record_type: String,
    /// A local CSV, TSV or parquet file.
    pub path: PathBuf,
    /// The column that names the records.
    pub name_column: String,
}

/// One imported row: its record and whether the import created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRow {
    pub uid: String,
    pub name: Option<String>,
    pub created: bool,
}

/// Export a record type's records to a file.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The record type (uid or name).
    pub record_type: String,
    /// Where to write: `.csv`, `.tsv` or `.parquet`.
    pub path: PathBuf,
}

/// The suffix that decides a file's format, lower case (".csv"), refused
/// unless it is a table's.
fn check_format(path: &Path) -> anyhow::Result<String> {
    let suffix = lamin_core::key::suffix_from_key(&path.to_string_lossy()).to_ascii_lowercase();
    if suffix != ".parquet" && delimiter_of(&suffix).is_none() {
        bail!(
            "{}: records are imported from and exported to .csv, .tsv or .parquet files, not {:?}",
            path.display(),
            if suffix.is_empty() {
                "(no suffix)"
            } else {
                suffix.as_str()
            }
        );
    }
    Ok(suffix)
}

/// The rows of a local table file as one JSON array of objects (NULL cells
/// left out), typed as the file's reader types them (blocking).
pub fn read_rows_json(path: &Path) -> anyhow::Result<Vec<u8>> {
    let suffix = check_format(path)?;
    let mut out = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(false)
            .build::<_, arrow::json::writer::JsonArray>(&mut out);
        formats::scan_local_table(path, &suffix, &Query::default(), |batch| {
            Ok(writer.write(batch)?)
        })?;
        writer.finish()?;
    }
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(out)
}

/// Import a file into a record type (one call of lamin.import_records).
pub async fn import(client: &Client, request: &ImportRequest) -> anyhow::Result<Vec<ImportedRow>> {
    let path = request.path.clone();
    let json = tokio::task::spawn_blocking(move || read_rows_json(&path))
        .await
        .context("the file reader stopped")??;
    let json = String::from_utf8(json).context("the file's rows are not UTF-8 text")?;
    let rows = client
        .query(
            "SELECT uid, name, created FROM lamin.import_records($1, $2::text::jsonb, $3)",
            &[&request.record_type, &json, &request.name_column],
        )
        .await
        .map_err(DbError)
        .with_context(|| format!("{}: nothing was imported", request.path.display()))?;
    Ok(rows
        .iter()
        .map(|r| ImportedRow {
            uid: r.get(0),
            name: r.get(1),
            created: r.get(2),
        })
        .collect())
}

/// The arrow type a feature's values are exported as: numbers, booleans,
/// dates and datetimes typed; lists and dicts as JSON text; the rest text.
pub fn export_type(dtype: &str) -> DataType {
    match dtype {
        "int" => DataType::Int64,
        "float" | "num" => DataType::Float64,
        "bool" => DataType::Boolean,
        "date" => DataType::Date32,
        "datetime" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => DataType::Utf8,
    }
}

/// Build the table of an export from the sheet's columns (feature, dtype)
/// and rows (uid, name, values).
pub fn sheet_batch(
    columns: &[(String, String)],
    rows: &[(String, Option<String>, Value)],
) -> anyhow::Result<RecordBatch> {
    for (feature, _) in columns {
        if feature == "name" || feature == UID_COLUMN {
            bail!("feature {feature:?} has the name of the sheet's own column {feature:?}: rename the feature to export the sheet");
        }
    }
    let mut fields = vec![Field::new("name", DataType::Utf8, true)];
    fields.extend(
        columns
            .iter()
            .map(|(f, dtype)| Field::new(f, export_type(dtype), true)),
    );
    fields.push(Field::new(UID_COLUMN, DataType::Utf8, false));
    let schema = Arc::new(Schema::new(fields));
    // Rows as JSON lines that arrow's JSON reader decodes into the typed
    // columns (dates and datetimes from their ISO text).
    let mut lines = Vec::new();
    for (uid, name, values) in rows {
        let mut row = Map::new();
        row.insert(
            "name".into(),
            name.clone().map(Value::String).unwrap_or(Value::Null),
        );
        for (feature, dtype) in columns {
            let v = values.get(feature).cloned().unwrap_or(Value::Null);
            let v = match (&v, export_type(dtype)) {
                (Value::Null, _) => Value::Null,
                (Value::String(_), DataType::Utf8) => v,
                (_, DataType::Utf8) => Value::String(v.to_string()),
                _ => v,
            };
            row.insert(feature.clone(), v);
        }
        row.insert(UID_COLUMN.into(), Value::String(uid.clone()));
        serde_json::to_writer(&mut lines, &Value::Object(row))?;
        lines.push(b'\n');
    }
    let mut reader = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build(Cursor::new(lines))?;
    match reader.next() {
        Some(batch) => Ok(batch.context("a value does not fit its feature's dtype")?),
        None => Ok(RecordBatch::new_empty(schema)),
    }
}

/// Write a table to a local file by its suffix (blocking).
pub fn write_table(path: &Path, batch: &RecordBatch) -> anyhow::Result<()> {
    let suffix = check_format(path)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    match delimiter_of(&suffix) {
        Some(d) => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_delimiter(d)
                .build(file);
            writer.write(batch)?;
        }
        None => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
            writer.write(batch)?;
            writer.close()?;
        }
    }
    Ok(())
}

/// Export a record type's records to a file; returns the number of records.
pub async fn export(client: &Client, request: &ExportRequest) -> anyhow::Result<usize> {
    check_format(&request.path)?;
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT feature, dtype FROM lamin.record_columns($1)",
            &[&request.record_type],
        )
        .await
        .map_err(DbError)
        .context("nothing was exported")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows = client
        .query(
            "SELECT uid, name, \"values\"::text FROM lamin.record_rows($1)",
            &[&request.record_type],
        )
        .await
        .map_err(DbError)
        .context("nothing was exported")?
        .iter()
        .map(|r| {
            let values: String = r.get(2);
            Ok((r.get(0), r.get(1), serde_json::from_str(&values)?))
        })
        .collect::<anyhow::Result<Vec<(String, Option<String>, Value)>>>()?;
    let n = rows.len();
    let path = request.path.clone();
    tokio::task::spawn_blocking(move || write_table(&path, &sheet_batch(&columns, &rows)?))
        .await
        .context("the file writer stopped")??;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Date32Array, Int64Array, StringArray};
    use serde_json::json;

    #[test]
    fn a_sheet_is_typed_by_its_features() {
        let columns = vec![
            ("donor_age".to_string(), "int".to_string()),
            ("sampled_on".to_string(), "date".to_string()),
            ("tags".to_string(), "list[str]".to_string()),
        ];
        let rows = vec![
            (
                "u1".to_string(),
                Some("D1".to_string()),
                json!({"donor_age": 54, "sampled_on": "2024-05-17", "tags": ["a", "b"]}),
            ),
            ("u2".to_string(), None, json!({})),
        ];
        let batch = sheet_batch(&columns, &rows).unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["name", "donor_age", "sampled_on", "tags", "uid"]);
        let age = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(age.value(0), 54);
        assert!(age.is_null(1));
        let day = batch
            .column(2)
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap();
        assert_eq!(day.value_as_date(0).unwrap().to_string(), "2024-05-17");
        let tags = batch
            .column(3)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(tags.value(0), r#"["a","b"]"#);
        let name = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!(name.is_null(1));
    }

    #[test]
    fn a_feature_named_like_a_sheet_column_is_refused() {
        let err = sheet_batch(&[("uid".into(), "str".into())], &[]).unwrap_err();
        assert!(err.to_string().contains("rename the feature"), "{err}");
    }

    #[test]
    fn rows_of_a_csv_become_json_objects_without_empty_cells() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("donors.csv");
        std::fs::write(&csv, "name,donor_age,sex\nD1,54,female\nD2,,male\n").unwrap();
        let json = read_rows_json(&csv).unwrap();
        let rows: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(rows.as_array().map(Vec::len), Some(2));
        assert_eq!(
            rows,
            json!([{"name": "D1", "donor_age": 54, "sex": "female"}, {"name": "D2", "sex": "male"}])
        );
    }

    #[test]
    fn other_formats_are_refused_by_name() {
        let err = read_rows_json(Path::new("/tmp/donors.xlsx")).unwrap_err();
        assert!(err.to_string().contains(".csv, .tsv or .parquet"), "{err}");
    }
}
