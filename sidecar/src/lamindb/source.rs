//! Reading a LaminDB instance's tables: every `lamindb_*` and `bionty_*`
//! table, each row as a JSON object, from its SQLite file or its Postgres
//! database (LaminDB's two backends). SQLite stores booleans as 0/1, JSON as
//! text and timestamps without a zone (UTC); `document` reads both forms.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::error::DbError;
use crate::refused;

pub type Row = Map<String, Value>;

/// Table name → rows.
#[derive(Debug, Default)]
pub struct Tables(pub HashMap<String, Vec<Row>>);

impl Tables {
    /// The rows of a table (none when the table does not exist: LaminDB's
    /// schema grew over releases).
    pub fn rows(&self, table: &str) -> &[Row] {
        self.0.get(table).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, table: &str) -> bool {
        self.0.contains_key(table)
    }
}

fn is_postgres(from: &str) -> bool {
    from.starts_with("postgresql://") || from.starts_with("postgres://") || from.contains('=')
}

/// The tables of the LaminDB instance at `from`: a Postgres URL, or the path
/// of its SQLite file (`{storage}/.lamindb/lamin.db`, or the storage folder).
pub async fn read(from: &str) -> anyhow::Result<Tables> {
    let tables = if is_postgres(from) {
        read_postgres(from).await?
    } else {
        let mut path = std::path::PathBuf::from(from);
        if path.is_dir() {
            path = path.join(".lamindb").join("lamin.db");
        }
        if !path.is_file() {
            return Err(refused!(
                "no LaminDB SQLite file at {}: give the instance's lamin.db (in {{storage}}/.lamindb/) or a postgresql:// URL",
                path.display()
            ));
        }
        tokio::task::spawn_blocking(move || read_sqlite(&path)).await??
    };
    if !tables.has("lamindb_artifact") {
        return Err(refused!(
            "{from} holds no LaminDB instance (no table lamindb_artifact)"
        ));
    }
    Ok(tables)
}

fn wanted(name: &str) -> bool {
    name.starts_with("lamindb_") || name.starts_with("bionty_")
}

fn read_sqlite(path: &std::path::Path) -> anyhow::Result<Tables> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {} with SQLite", path.display()))?;
    let names: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut tables = Tables::default();
    for name in names.into_iter().filter(|n| wanted(n)) {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                let mut row = Row::new();
                for (i, c) in columns.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => Value::from(n),
                        rusqlite::types::ValueRef::Real(x) => Value::from(x),
                        rusqlite::types::ValueRef::Text(t) => {
                            Value::String(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(_) => Value::Null,
                    };
                    row.insert(c.clone(), v);
                }
                Ok(row)
            })?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("cannot read table {name} of {}", path.display()))?;
        tables.0.insert(name, rows);
    }
    Ok(tables)
}

async fn read_postgres(url: &str) -> anyhow::Result<Tables> {
    let client = crate::db::connect(url).await?;
    let names: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c
             WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace ORDER BY 1",
            &[],
        )
        .await
        .map_err(DbError)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut tables = Tables::default();
    for name in names.into_iter().filter(|n| wanted(n)) {
        let rows = client
            .query(
                &format!(
                    "SELECT to_jsonb(t) FROM public.\"{}\" t",
                    name.replace('"', "\"\"")
                ),
                &[],
            )
            .await
            .map_err(DbError)
            .with_context(|| format!("cannot read table {name}"))?;
        let rows = rows
            .iter()
            .filter_map(|r| match r.get::<_, Value>(0) {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect();
        tables.0.insert(name, rows);
    }
    Ok(tables)
}
