//! Recording what a file holds on its artifact: rows, features for the
//! columns and the per-slot schemas (lamin.record_columns); and reading a
//! record back as one document (lamin.describe, `lamin describe`).

use std::path::Path;

use serde_json::{json, Value};
use tokio_postgres::Client;

use super::get::resolve_artifact;
use crate::error::DbError;
use crate::formats::anndata::{AnnDataInfo, FrameColumn};
use crate::formats::duckdb::DuckDbInfo;
use crate::formats::mudata::MuDataInfo;
use crate::formats::spatialdata::SpatialDataInfo;
use crate::formats::tiledb::SomaInfo;
use crate::formats::{describe_local, Described, TableInfo};
use crate::refused;

/// Describe a local file of a known format and record it on its artifact.
pub async fn describe_and_record(
    client: &Client,
    uid: &str,
    path: &Path,
    suffix: &str,
) -> anyhow::Result<Value> {
    match tokio::task::block_in_place(|| describe_local(path, suffix))? {
        Described::AnnData(info) => record_anndata(client, uid, &info).await,
        Described::Table(info) => record(client, uid, &info).await,
        Described::MuData(info) => record_mudata(client, uid, &info).await,
        Described::Hdf5(layout) => {
            record_layout(client, uid, "hdf5", &layout.to_json(), None).await
        }
        Described::SpatialData(info) => record_spatialdata(client, uid, &info).await,
        Described::Soma(info) => record_soma(client, uid, &info).await,
        Described::DuckDb(info) => record_duckdb(client, uid, &info).await,
        Described::SomaFolder { layout, reason } => {
            // The folder's arrays, and why no more was read: a warning.
            let mut layout = layout;
            layout["unread"] = json!(reason);
            let mut out =
                record_layout(client, uid, "tiledbsoma", &layout, Some("tiledbsoma")).await?;
            out["warning"] = json!(format!("only the folder's layout was recorded: {reason}"));
            Ok(out)
        }
    }
}

/// The warning a description carries (a SOMA experiment read without a
/// TileDB library), taken out of it.
pub fn take_warning(described: &mut Value) -> Option<String> {
    let warning = described.get("warning")?.as_str()?.to_string();
    described.as_object_mut()?.remove("warning");
    Some(warning)
}

/// Record what a table holds on its artifact (lamin.record_columns): rows,
/// features for the columns (created when missing; a feature that exists
/// with another dtype is reported, not changed) and the `columns` schema.
pub async fn record(client: &Client, uid: &str, info: &TableInfo) -> anyhow::Result<Value> {
    let columns: Value = info
        .columns
        .iter()
        .map(|c| json!({ "name": c.name, "dtype": c.dtype, "arrow": c.arrow }))
        .collect();
    let row = client
        .query_one(
            "SELECT lamin.record_columns($1, $2, $3::text::jsonb)::text",
            &[&uid, &info.n_rows, &columns.to_string()],
        )
        .await
        .map_err(DbError)?;
    Ok(serde_json::from_str(row.get::<_, &str>(0))?)
}

/// Record what an AnnData holds: n_obs, the `obs` and `var` schemas (features
/// for their columns), otype AnnData; the categories of categorical columns
/// come back in the result.
pub async fn record_anndata(
    client: &Client,
    uid: &str,
    info: &AnnDataInfo,
) -> anyhow::Result<Value> {
    let frames = [("obs", &info.obs[..]), ("var", &info.var[..])];
    let mut out =
        record_frames(client, uid, Otype::Is("AnnData"), Some(info.n_obs), &frames).await?;
    out["n_vars"] = json!(info.n_vars);
    Ok(out)
}

/// Record what a MuData holds as an AnnData is recorded, a schema per slot
/// with columns: `obs`, `var`, `rna:obs`, `rna:var`, …; otype MuData.
pub async fn record_mudata(client: &Client, uid: &str, info: &MuDataInfo) -> anyhow::Result<Value> {
    let frames: Vec<(&str, &[FrameColumn])> = info
        .frames
        .iter()
        .map(|f| (f.slot.as_str(), &f.columns[..]))
        .collect();
    let mut out =
        record_frames(client, uid, Otype::Is("MuData"), Some(info.n_obs), &frames).await?;
    out["n_vars"] = json!(info.n_vars);
    out["modalities"] = json!(info.modalities);
    Ok(out)
}

/// Record what a SpatialData store holds: its elements as the artifact's
/// layout, otype SpatialData, and each table's obs and var as schemas in the
/// slots `tables:<table>:obs` / `tables:<table>:var`.
pub async fn record_spatialdata(
    client: &Client,
    uid: &str,
    info: &SpatialDataInfo,
) -> anyhow::Result<Value> {
    let slots: Vec<(String, &[FrameColumn])> = info
        .tables
        .iter()
        .flat_map(|(name, t)| {
            [
                (format!("tables:{name}:obs"), &t.obs[..]),
                (format!("tables:{name}:var"), &t.var[..]),
            ]
        })
        .collect();
    let frames: Vec<(&str, &[FrameColumn])> = slots.iter().map(|(s, c)| (s.as_str(), *c)).collect();
    // (No global obs: n_observations stays unset.)
    let mut out = record_frames(client, uid, Otype::Is("SpatialData"), None, &frames).await?;
    let recorded = record_layout(
        client,
        uid,
        "spatialdata",
        &info.to_json(),
        Some("SpatialData"),
    )
    .await?;
    out["layout"] = recorded["layout"].clone();
    Ok(out)
}

/// Record what a TileDB-SOMA experiment holds: n_obs, the `obs` schema and
/// one `ms:<measurement>` schema per measurement's var (as LaminDB's SOMA
/// curator names the slots), otype tiledbsoma, and its arrays as the layout.
pub async fn record_soma(client: &Client, uid: &str, info: &SomaInfo) -> anyhow::Result<Value> {
    let frames: Vec<(&str, &[FrameColumn])> = info
        .frames
        .iter()
        .map(|f| (f.slot.as_str(), &f.columns[..]))
        .collect();
    let mut out = record_frames(
        client,
        uid,
        Otype::Is("tiledbsoma"),
        Some(info.n_obs),
        &frames,
    )
    .await?;
    let recorded = record_layout(client, uid, "tiledbsoma", &info.to_json(), None).await?;
    out["layout"] = recorded["layout"].clone();
    Ok(out)
}

/// Record what a DuckDB file holds: a schema per table in a slot named like
/// it (`cells`, `qc.runs`), n_observations when it has one table, and the
/// tables with their DuckDB types, rows and the views as the layout. (No
/// otype: LaminDB has none for DuckDB files.)
pub async fn record_duckdb(client: &Client, uid: &str, info: &DuckDbInfo) -> anyhow::Result<Value> {
    // A table whose name cannot name a slot (or a second one with the same
    // slot name) is left out of the schemas, not the whole file; the layout
    // lists it.
    let mut kept: Vec<(String, &[FrameColumn])> = Vec::new();
    let mut skipped = Vec::new();
    for t in &info.tables {
        let slot = t.slot();
        if is_slot_name(&slot) && !kept.iter().any(|(s, _)| *s == slot) {
            kept.push((slot, &t.columns));
        } else {
            skipped.push(slot);
        }
    }
    let frames: Vec<(&str, &[FrameColumn])> = kept.iter().map(|(s, c)| (s.as_str(), *c)).collect();
    let mut out = record_frames(client, uid, Otype::None("duckdb"), None, &frames).await?;
    if let [only] = &info.tables[..] {
        client
            .execute(
                "UPDATE lamin.artifact SET n_observations = $2 WHERE uid = $1",
                &[&uid, &only.n_rows],
            )
            .await
            .map_err(DbError)?;
        out["n_obs"] = json!(only.n_rows);
    }
    if !skipped.is_empty() {
        out["warning"] = json!(format!(
            "no schema for the tables {} (their names cannot name a slot: letters, digits, _ . : -, starting with a letter or _, at most 64); the layout lists them",
            skipped.join(", ")
        ));
    }
    let recorded = record_layout(client, uid, "duckdb", &info.to_json(), None).await?;
    out["layout"] = recorded["layout"].clone();
    Ok(out)
}

/// The otype a dataset's frames are recorded with, or none (a DuckDB file;
/// with the word its column types are labelled with).
#[derive(Clone, Copy)]
enum Otype<'a> {
    Is(&'a str),
    None(&'a str),
}

/// Record the dataframes of an AnnData-like dataset: for each slot with
/// columns its schema (lamin.record_columns, features made for its columns),
/// n_obs from `obs`, and the otype. The result has each slot's record with
/// the categories of its categorical columns. `n_obs`: the dataset's rows
/// (None for a SpatialData store, which has no global obs).
async fn record_frames(
    client: &Client,
    uid: &str,
    otype: Otype<'_>,
    n_obs: Option<i64>,
    frames: &[(&str, &[FrameColumn])],
) -> anyhow::Result<Value> {
    // Every slot name is checked before anything is written, so that a file
    // whose names cannot name slots is refused whole (the rule of
    // lamin.artifact_schema's CHECK artifact_schema_slot_format).
    if let Some((slot, _)) = frames.iter().find(|(slot, _)| !is_slot_name(slot)) {
        return Err(refused!(
            "{slot:?} cannot name a slot (letters, digits, _ . : -, starting with a letter or _, at most 64): rename the modality or table in the file"
        ));
    }
    let (label, otype) = match otype {
        Otype::Is(o) => (o.to_lowercase(), Some(o)),
        Otype::None(label) => (label.to_string(), None),
    };
    let mut out = json!({});
    if let Some(n) = n_obs {
        out["n_obs"] = json!(n);
    }
    for (slot, columns) in frames {
        if columns.is_empty() {
            continue;
        }
        let n = n_obs.filter(|_| *slot == "obs");
        let cols: Value = columns
            .iter()
            .map(|c| json!({ "name": c.name, "dtype": c.dtype, "arrow": format!("{label} {slot} {}", c.dtype) }))
            .collect();
        let row = client
            .query_one(
                "SELECT lamin.record_columns($1, $2, $3::text::jsonb, $4, $5)::text",
                &[&uid, &n, &cols.to_string(), slot, &otype],
            )
            .await
            .map_err(DbError)?;
        out[*slot] = serde_json::from_str(row.get::<_, &str>(0))?;
        let categories: serde_json::Map<String, Value> = columns
            .iter()
            .filter_map(|c| c.categories.as_ref().map(|k| (c.name.clone(), json!(k))))
            .collect();
        out[*slot]["categories"] = Value::Object(categories);
    }
    if frames
        .iter()
        .all(|(slot, columns)| *slot != "obs" || columns.is_empty())
    {
        client
            .execute(
                "UPDATE lamin.artifact SET n_observations = coalesce($2, n_observations), otype = $3 WHERE uid = $1",
                &[&uid, &n_obs, &otype],
            )
            .await
            .map_err(DbError)?;
    }
    Ok(out)
}

/// Whether a name can name a schema slot of an artifact: what the CHECK
/// artifact_schema_slot_format of lamin.artifact_schema allows.
fn is_slot_name(slot: &str) -> bool {
    let mut chars = slot.chars();
    slot.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Record what a container file holds (lamin.record_layout: HDF5 groups and
/// datasets, SpatialData elements) and, when given, its otype. Returns
/// {"layout": ...}.
pub async fn record_layout(
    client: &Client,
    uid: &str,
    format: &str,
    layout: &Value,
    otype: Option<&str>,
) -> anyhow::Result<Value> {
    let row = client
        .query_one(
            "SELECT lamin.record_layout($1, $2, $3::text::jsonb, $4)::text",
            &[&uid, &format, &layout.to_string(), &otype],
        )
        .await
        .map_err(DbError)?;
    Ok(json!({ "layout": serde_json::from_str::<Value>(row.get::<_, &str>(0))? }))
}

/// Whether `text` has the shape of a uid of some registry (8 to 20 base62
/// characters: labels 8, features and storages 12, ontology terms 14,
/// transforms and stems 16, artifacts, collections and runs 20).
pub fn is_record_uid(text: &str) -> bool {
    (8..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A record as one JSON document (lamin.describe): by uid, or an artifact by
/// key (its latest version the caller can read).
pub async fn describe_record(client: &Client, uid_or_key: &str) -> anyhow::Result<Value> {
    let uid = if is_record_uid(uid_or_key) {
        uid_or_key.to_string()
    } else {
        resolve_artifact(client, uid_or_key).await?
    };
    let row = client
        .query_one("SELECT lamin.describe($1)::text", &[&uid])
        .await
        .map_err(DbError)?;
    match row.get::<_, Option<&str>>(0) {
        Some(doc) => Ok(serde_json::from_str(doc)?),
        None => Err(refused!("no record with uid {uid:?} that you can read")),
    }
}

#[cfg(test)]
mod tests {
    use super::is_slot_name;

    #[test]
    fn slot_names_follow_the_databases_rule() {
        for ok in [
            "obs",
            "rna:var",
            "tables:table:obs",
            "_x",
            "a.b-c",
            &"a".repeat(64),
        ] {
            assert!(is_slot_name(ok), "{ok}");
        }
        for bad in [
            "",
            "10x:obs",
            "Gene Expression:obs",
            "réa:obs",
            ":obs",
            &"a".repeat(65),
        ] {
            assert!(!is_slot_name(bad), "{bad}");
        }
    }
}
