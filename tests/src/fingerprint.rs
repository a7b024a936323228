//! Fingerprints of table contents (row count and a hash of the sorted rows):
//! did every row survive an upgrade, or a pg_dump / pg_restore?

use std::collections::BTreeMap;

/// Table (`schema.name`) → its columns in order.
pub type Columns = BTreeMap<String, Vec<String>>;
/// Table → (rows, md5 of the sorted row texts).
pub type Fingerprint = BTreeMap<String, (i64, String)>;

/// The ordinary tables of `schemas` and their columns, as they are now.
pub fn columns(client: &mut postgres::Client, schemas: &[&str]) -> Columns {
    let schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    let mut out = Columns::new();
    for row in client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), a.attname::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY ($1)
             ORDER BY 1, a.attnum",
            &[&schemas],
        )
        .unwrap()
    {
        out.entry(row.get(0)).or_default().push(row.get(1));
    }
    out
}

/// Every row of every table in `tables`, over the listed columns only (so
/// that columns an upgrade adds do not count as changes).
pub fn rows_over(client: &mut postgres::Client, tables: &Columns) -> Fingerprint {
    tables
        .iter()
        .map(|(table, cols)| {
            let projection = format!(
                "row({})::text",
                cols.iter()
                    .map(|c| format!("x.{}", quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (
                table.clone(),
                fingerprint_of(client, table, &projection, ""),
            )
        })
        .collect()
}

/// The rows of one table matching `condition` (e.g. `WHERE …`), over `cols`.
pub fn rows_where(
    client: &mut postgres::Client,
    table: &str,
    cols: &[String],
    condition: &str,
) -> (i64, String) {
    let projection = format!(
        "row({})::text",
        cols.iter()
            .map(|c| format!("x.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    fingerprint_of(client, table, &projection, condition)
}

/// What a pg_dump / pg_restore must bring back: every row of the tables of
/// `schemas` that the extension marks for pg_dump (with its condition: rows
/// CREATE EXTENSION makes are left out), every row of the other tables (a
/// restore gets them from CREATE EXTENSION, or must get them from the dump),
/// and the search index by content (it is rebuilt on restore, with new ids).
pub fn backup_rows(client: &mut postgres::Client, schemas: &[&str]) -> Fingerprint {
    let conditions: BTreeMap<String, String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), x.cond
             FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(oid, cond)
             JOIN pg_class c ON c.oid = x.oid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE e.extname = 'lamin'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    columns(client, schemas)
        .into_keys()
        .map(|table| {
            let projection = match table.as_str() {
                "lamin.search_term" => {
                    "(x.registry, x.record_id, x.uid, x.name, x.kind, x.term, x.term_fold, x.term_norm, \
                      x.organism, x.deprecated, x.space_id)::text"
                }
                "lamin.search_word" => "(x.registry, x.word, x.term_len)::text",
                _ => "x::text",
            };
            let condition = conditions.get(&table).cloned().unwrap_or_default();
            let fp = fingerprint_of(client, &table, projection, &condition);
            (table, fp)
        })
        .collect()
}

fn fingerprint_of(
    client: &mut postgres::Client,
    table: &str,
    projection: &str,
    condition: &str,
) -> (i64, String) {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(r, '|' ORDER BY r)), '')
                 FROM (SELECT {projection} AS r FROM {table} x {condition}) rows"
            ),
            &[],
        )
        .unwrap_or_else(|e| panic!("fingerprint of {table}: {e}"));
    (row.get(0), row.get(1))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables whose fingerprints differ, for an assertion message.
pub fn changed(before: &Fingerprint, after: &Fingerprint) -> Vec<String> {
    before
        .iter()
        .filter_map(|(t, fp)| match after.get(t) {
            None => Some(format!("{t}: gone")),
            Some(other) if other != fp => Some(format!(
                "{t}: {} rows before, {} after{}",
                fp.0,
                other.0,
                if fp.0 == other.0 {
                    " (contents differ)"
                } else {
                    ""
                }
            )),
            Some(_) => None,
        })
        .collect()
}
