//! DuckDB database files (`.duckdb`): each table with its typed columns
//! (ENUM columns as categoricals with their values) and its rows, and the
//! views — read through the DuckDB library ([`ffi`]), the file opened
//! read-only. Each table becomes a schema in a slot named like the table
//! (`cells`; `qc.runs` outside the `main` schema).
//!
//! The catalog is read through `system.main.…` names: a file can define its
//! own macros, and an unqualified `duckdb_tables()` would find the file's
//! first.

pub mod ffi;

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::anndata::FrameColumn;

/// At most this many tables are read.
const MAX_TABLES: usize = 1000;

/// Whether a suffix names a DuckDB database file.
pub fn is_duckdb_suffix(suffix: &str) -> bool {
    suffix == ".duckdb"
}

/// One table: where it is, its rows, its columns with DuckDB's type names.
#[derive(Debug, Clone, PartialEq)]
pub struct DuckTable {
    pub schema: String,
    pub name: String,
    pub n_rows: i64,
    pub columns: Vec<FrameColumn>,
    pub types: Vec<String>,
}

impl DuckTable {
    /// The slot the table's schema goes in.
    pub fn slot(&self) -> String {
        slot_name(&self.schema, &self.name)
    }
}

/// The slot of a table: its name in the `main` schema, `schema.name` in others.
fn slot_name(schema: &str, table: &str) -> String {
    if schema == "main" {
        table.to_string()
    } else {
        format!("{schema}.{table}")
    }
}

/// What a DuckDB file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct DuckDbInfo {
    /// The library that read it, e.g. "v1.5.6".
    pub duckdb_version: String,
    pub tables: Vec<DuckTable>,
    /// Views as `schema.name`.
    pub views: Vec<String>,
}

impl DuckDbInfo {
    /// As recorded in lamin.artifact_layout.
    pub fn to_json(&self) -> Value {
        json!({
            "duckdb_version": self.duckdb_version,
            "tables": self.tables.iter().map(|t| json!({
                "schema": t.schema,
                "name": t.name,
                "n_rows": t.n_rows,
                "columns": t.columns.iter().zip(&t.types)
                    .map(|(c, ty)| json!({ "name": c.name, "type": ty }))
                    .collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "views": self.views,
        })
    }
}

/// The lamin dtype of a DuckDB type name.
fn lamin_dtype(t: &str) -> &'static str {
    // Lists and arrays of anything (`INTEGER[]`, `DECIMAL(10,2)[3]`).
    if t.ends_with(']') {
        return "dict";
    }
    let base = t.split('(').next().unwrap_or(t).trim();
    match base {
        "BOOLEAN" => "bool",
        "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT" | "USMALLINT"
        | "UINTEGER" | "UBIGINT" | "UHUGEINT" => "int",
        "FLOAT" | "DOUBLE" => "float",
        "DECIMAL" => "num",
        "VARCHAR" | "UUID" | "BLOB" | "BIT" => "str",
        "DATE" => "date",
        _ if base.starts_with("TIMESTAMP") => "datetime",
        "ENUM" => "cat",
        _ => "dict",
    }
}

/// The values of an `ENUM('a', 'b''c')` type name, in order.
fn enum_values(t: &str) -> Option<Vec<String>> {
    let inner = t.strip_prefix("ENUM(")?.strip_suffix(')')?;
    let mut values = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        match chars.next() {
            None => return Some(values),
            Some('\'') => {}
            Some(_) => return None,
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => break,
                c => value.push(c),
            }
        }
        values.push(value);
    }
}

/// A quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Describe a local DuckDB file (blocking).
pub fn describe_duckdb(path: &Path) -> anyhow::Result<DuckDbInfo> {
    let duckdb_version = ffi::library_version()?;
    let not_duckdb = || format!("{} is not a readable DuckDB database", path.display());
    let db = ffi::Database::open(path).with_context(not_duckdb)?;
    let columns = db
        .query(
            "SELECT t.schema_name, t.table_name, c.column_name, c.data_type
             FROM system.main.duckdb_tables() t JOIN system.main.duckdb_columns() c ON c.table_oid = t.table_oid
             WHERE t.database_name = system.main.current_database() AND NOT t.internal AND NOT t.temporary
             ORDER BY t.schema_name, t.table_name, c.column_index",
        )
        .with_context(not_duckdb)?;
    let mut tables: Vec<DuckTable> = Vec::new();
    for row in columns {
        let [Some(schema), Some(table), Some(column), Some(ty)] = &row[..] else {
            continue;
        };
        if tables
            .last()
            .is_none_or(|t| (&t.schema, &t.name) != (schema, table))
        {
            if tables.len() == MAX_TABLES {
                break;
            }
            tables.push(DuckTable {
                schema: schema.clone(),
                name: table.clone(),
                n_rows: 0,
                columns: vec![],
                types: vec![],
            });
        }
        let t = tables.last_mut().expect("pushed above");
        t.columns.push(FrameColumn {
            name: column.clone(),
            dtype: lamin_dtype(ty),
            categories: enum_values(ty),
        });
        t.types.push(ty.clone());
    }
    for t in &mut tables {
        let counted = db
            .query(&format!(
                "SELECT count(*) FROM {}.{}",
                quoted(&t.schema),
                quoted(&t.name)
            ))
            .with_context(not_duckdb)?;
        t.n_rows = counted
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{}: no row count for {}", not_duckdb(), t.slot()))?;
    }
    let views = db
        .query(
            "SELECT schema_name || '.' || view_name FROM system.main.duckdb_views()
             WHERE database_name = system.main.current_database() AND NOT internal AND NOT temporary ORDER BY 1",
        )
        .with_context(not_duckdb)?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    Ok(DuckDbInfo {
        duckdb_version,
        tables,
        views,
    })
}

/// One table of a local DuckDB file by its slot name (`cells`, `qc.runs`)
/// as one arrow batch; `obs`, the default slot of `lamin cat` and `lamin
/// query`, names the only table of a file with one (blocking).
pub fn read_table(path: &Path, slot: &str) -> anyhow::Result<arrow::record_batch::RecordBatch> {
    let not_duckdb = || format!("{} is not a readable DuckDB database", path.display());
    let db = ffi::Database::open(path).with_context(not_duckdb)?;
    let tables: Vec<(String, String)> = db
        .query(
            "SELECT schema_name, table_name FROM system.main.duckdb_tables()
             WHERE database_name = system.main.current_database() AND NOT internal AND NOT temporary ORDER BY 1, 2",
        )
        .with_context(not_duckdb)?
        .into_iter()
        .filter_map(|r| match &r[..] {
            [Some(s), Some(t)] => Some((s.clone(), t.clone())),
            _ => None,
        })
        .collect();
    let slot_of = |(s, t): &(String, String)| slot_name(s, t);
    let found = match tables.iter().find(|t| slot_of(t) == slot) {
        Some(t) => t,
        None if slot == "obs" && tables.len() == 1 => &tables[0],
        None => {
            return Err(crate::refused!(
                "{} has no table {slot:?}; its tables are {}",
                path.display(),
                tables.iter().map(slot_of).collect::<Vec<_>>().join(", ")
            ))
        }
    };
    db.query_arrow(&format!(
        "SELECT * FROM {}.{}",
        quoted(&found.0),
        quoted(&found.1)
    ))
    .with_context(not_duckdb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn duckdb_types_map_to_lamin_dtypes_and_enums_keep_their_values() {
        assert_eq!(lamin_dtype("BIGINT"), "int");
        assert_eq!(lamin_dtype("DECIMAL(10,2)"), "num");
        assert_eq!(lamin_dtype("TIMESTAMP WITH TIME ZONE"), "datetime");
        assert_eq!(lamin_dtype("INTEGER[]"), "dict");
        assert_eq!(lamin_dtype("DECIMAL(10,2)[]"), "dict");
        assert_eq!(lamin_dtype("ENUM('a')[3]"), "dict");
        assert_eq!(lamin_dtype("ENUM('a', 'b')"), "cat");
        assert_eq!(
            enum_values("ENUM('B cell', 'T cell', 'it''s')"),
            Some(vec!["B cell".into(), "T cell".into(), "it's".into()])
        );
        assert_eq!(enum_values("VARCHAR"), None);
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }

    /// The tests need the library: scripts/test fetches it and sets
    /// LAMIN_DUCKDB_LIBRARY (the error says how to get one by hand).
    fn library() {
        if let Err(e) = ffi::library_version() {
            panic!("{e}");
        }
    }

    #[test]
    fn a_database_written_by_duckdb_is_described_table_by_table() {
        library();
        let info = describe_duckdb(&fixture("formats/experiment.duckdb")).unwrap();
        assert!(
            info.duckdb_version.starts_with("v1."),
            "{}",
            info.duckdb_version
        );
        type Seen<'a> = (String, i64, Vec<(&'a str, &'a str)>);
        let tables: Vec<Seen> = info
            .tables
            .iter()
            .map(|t| {
                (
                    t.slot(),
                    t.n_rows,
                    t.columns
                        .iter()
                        .map(|c| (c.name.as_str(), c.dtype))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            tables,
            [
                ("2024 runs".to_string(), 1, vec![("n", "int")]),
                (
                    "cells".to_string(),
                    50,
                    vec![
                        ("cell_id", "str"),
                        ("cell_type", "cat"),
                        ("n_genes", "int"),
                        ("score", "float"),
                        ("passed_qc", "bool"),
                        ("collected", "date"),
                        ("measured_at", "datetime"),
                        ("dose", "num"),
                        ("tags", "dict"),
                    ]
                ),
                (
                    "genes".to_string(),
                    4,
                    vec![("ensembl_gene_id", "str"), ("symbol", "str")]
                ),
                (
                    "qc.runs".to_string(),
                    2,
                    vec![("run", "int"), ("operator", "str")]
                ),
            ]
        );
        assert_eq!(
            info.tables[1].columns[1].categories.as_deref(),
            Some(
                &[
                    "B cell".to_string(),
                    "NK cell".to_string(),
                    "T cell".to_string()
                ][..]
            )
        );
        assert_eq!(info.views, ["main.t_cells"]);
    }

    #[test]
    fn tables_read_as_arrow_by_their_slot() {
        library();
        let path = fixture("formats/experiment.duckdb");
        let cells = read_table(&path, "cells").unwrap();
        assert_eq!((cells.num_rows(), cells.num_columns()), (50, 9));
        let names: Vec<String> = cells
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert!(
            names[1].starts_with("Dictionary("),
            "ENUM as a dictionary: {names:?}"
        );
        assert_eq!(
            crate::formats::lamin_dtype(cells.schema().field(1).data_type()),
            "cat"
        );
        let runs = read_table(&path, "qc.runs").unwrap();
        assert_eq!(runs.num_rows(), 2);
        let e = read_table(&path, "obs").unwrap_err();
        assert!(
            format!("{e:#}").contains("its tables are 2024 runs, cells, genes, qc.runs"),
            "{e:#}"
        );
    }

    #[test]
    fn a_query_past_the_time_limit_is_interrupted() {
        library();
        let db = ffi::Database::open(&fixture("formats/experiment.duckdb"))
            .unwrap()
            .with_time_limit(std::time::Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = db
            .query("SELECT count(*) FROM range(100000000) a, range(100000000) b")
            .unwrap_err();
        assert!(format!("{e:#}").contains("stopped after 0.2 s"), "{e:#}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The connection is usable afterwards.
        assert_eq!(db.query("SELECT 42").unwrap(), [[Some("42".to_string())]]);
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused_with_duckdbs_reason() {
        library();
        for file in ["formats/truncated.duckdb", "formats/scan.h5"] {
            let e = describe_duckdb(&fixture(file)).unwrap_err();
            assert!(
                format!("{e:#}").contains("is not a readable DuckDB database"),
                "{file}: {e:#}"
            );
        }
    }
}
