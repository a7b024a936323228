//! Validation of datasets against schemas (LaminDB's curators): read the
//! facts a schema asks for from a table (parquet, CSV/TSV) or an AnnData
//! (h5ad, zarr) or a MuData (h5mu) — locally before a save, or from a storage as a job — and let
//! the database judge them (lamin.validation_verdict, lamin.record_validation).
//! Only facts travel to the server, never the data.

pub mod facts;
pub mod standardize;

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::error::DbError;
use crate::formats::anndata::{self, Slot};
use crate::formats::{self, is_anndata_suffix, parquet, Query};
use crate::formats::{mudata, spatialdata};
use crate::refused;
use crate::storage::Storage;
use facts::{FrameFacts, FrameNeeds, Needs};

/// The column pandas writes a (non-range) index into.
const PANDAS_INDEX: &str = "__index_level_0__";

/// Validate an artifact against a schema (uid or name), recording the verdict.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    pub uid: String,
    pub schema: String,
}

/// The object type of a dataset by its suffix, as lamin.artifact.otype names it.
fn otype_of(suffix: &str) -> &'static str {
    if is_anndata_suffix(suffix) {
        "AnnData"
    } else if suffix == ".h5mu" {
        "MuData"
    } else {
        "DataFrame"
    }
}

/// A schema's definition as validation reads it, for a dataset of `otype`.
pub async fn definition(client: &Client, schema: &str, otype: &str) -> anyhow::Result<Value> {
    let row = client
        .query_one(
            "SELECT lamin.schema_definition($1, $2)::text",
            &[&schema, &otype],
        )
        .await
        .map_err(DbError)?;
    Ok(serde_json::from_str(row.get::<_, &str>(0))?)
}

/// The facts `needs` asks of a local dataset (a file, or a `.zarr` folder),
/// as lamin.validation_verdict reads them (blocking).
pub fn local_facts(path: &Path, suffix: &str, needs: &Needs) -> anyhow::Result<Value> {
    let mut frames = serde_json::Map::new();
    if suffix == ".zarr" && spatialdata::is_spatialdata(path) {
        return Err(refused!(
            "{} is a SpatialData store: validating one against a schema is not supported yet (validate its table saved as an h5ad or AnnData zarr store)",
            path.display()
        ));
    }
    if is_anndata_suffix(suffix) {
        let info = match suffix {
            ".zarr" => anndata::describe_zarr(path)?,
            _ => anndata::describe_h5ad(path)?,
        };
        for (name, frame_needs) in &needs.frames {
            let (slot, columns) = match name.as_str() {
                "obs" => (Slot::Obs, &info.obs),
                "var" => (Slot::Var, &info.var),
                // A slot this dataset does not have: the verdict says so.
                _ => continue,
            };
            let mut facts = FrameFacts::new(
                columns.iter().map(|c| (c.name.as_str(), c.dtype)),
                frame_needs,
            );
            let batch = anndata::read_frame(path, suffix, slot)?;
            let index = batch.schema().field(0).name().clone();
            facts.add(&batch, Some(&index))?;
            frames.insert(name.clone(), facts.to_json());
        }
    } else if suffix == ".h5mu" {
        let info = mudata::describe_h5mu(path)?;
        for (name, frame_needs) in &needs.frames {
            // A slot this dataset does not have: the verdict says so.
            let Some(frame) = info.frames.iter().find(|f| &f.slot == name) else {
                continue;
            };
            let mut facts = FrameFacts::new(
                frame.columns.iter().map(|c| (c.name.as_str(), c.dtype)),
                frame_needs,
            );
            let batch = mudata::read_frame_h5mu(path, name)?;
            let index = batch.schema().field(0).name().clone();
            facts.add(&batch, Some(&index))?;
            frames.insert(name.clone(), facts.to_json());
        }
    } else if let Some(frame_needs) = needs.frames.get("columns") {
        let info = formats::describe_local_table(path, suffix)?;
        let mut facts = table_facts(&info, frame_needs);
        let query = read_query(&info, &facts, frame_needs);
        let sink = |batch: &arrow::record_batch::RecordBatch| facts.add(batch, Some(PANDAS_INDEX));
        formats::scan_local_table(path, suffix, &query, sink)?;
        frames.insert("columns".into(), facts.to_json());
    }
    Ok(json!({ "otype": otype_of(suffix), "frames": frames }))
}

/// The facts of a table's columns, pandas' index column set apart.
fn table_facts(info: &formats::TableInfo, needs: &FrameNeeds) -> FrameFacts {
    FrameFacts::new(
        info.columns
            .iter()
            .filter(|c| c.name != PANDAS_INDEX)
            .map(|c| (c.name.as_str(), c.dtype)),
        needs,
    )
}

/// The columns to read of a table: those the schema names, and the index when needed.
fn read_query(info: &formats::TableInfo, facts: &FrameFacts, needs: &FrameNeeds) -> Query {
    let mut columns = facts.columns_to_read();
    if needs.index && info.columns.iter().any(|c| c.name == PANDAS_INDEX) {
        columns.push(PANDAS_INDEX.to_string());
    }
    Query {
        columns: Some(columns),
        ..Default::default()
    }
}

/// The facts of a stored dataset: parquet by ranged reads of the needed
/// columns only; other formats through a local copy.
async fn object_facts(
    storage: &Storage,
    object: &str,
    suffix: &str,
    size: Option<i64>,
    needs: &Needs,
) -> anyhow::Result<Value> {
    if suffix == ".parquet" {
        let mut frames = serde_json::Map::new();
        if let Some(frame_needs) = needs.frames.get("columns") {
            let info = parquet::describe_object(storage, object).await?;
            let mut facts = table_facts(&info, frame_needs);
            let query = read_query(&info, &facts, frame_needs);
            parquet::scan(storage, object, size.map(|s| s as u64), &query, |batch| {
                facts.add(batch, Some(PANDAS_INDEX))
            })
            .await?;
            frames.insert("columns".into(), facts.to_json());
        }
        return Ok(json!({ "otype": "DataFrame", "frames": frames }));
    }
    storage
        .with_local_copy(object, suffix == ".zarr", |path| {
            tokio::task::block_in_place(|| local_facts(path, suffix, needs))
        })
        .await
}

/// The verdict on a local dataset against a schema, without recording it:
/// `lamin save --schema` asks before anything is stored. Returns the facts
/// (to record once saved) and the verdict.
pub async fn check_local(
    client: &Client,
    path: &Path,
    suffix: &str,
    schema: &str,
) -> anyhow::Result<(Value, Value)> {
    let def = definition(client, schema, otype_of(suffix)).await?;
    let needs = Needs::from_definition(&def);
    let facts = tokio::task::block_in_place(|| local_facts(path, suffix, &needs))
        .with_context(|| format!("reading {}", path.display()))?;
    let verdict = verdict(client, schema, &facts).await?;
    Ok((facts, verdict))
}

/// The database's verdict on a dataset's facts against a schema (nothing recorded).
pub async fn verdict(client: &Client, schema: &str, facts: &Value) -> anyhow::Result<Value> {
    let row = client
        .query_one(
            "SELECT lamin.validation_verdict($1, $2::text::jsonb)::text",
            &[&schema, &facts.to_string()],
        )
        .await
        .map_err(DbError)?;
    Ok(serde_json::from_str(row.get::<_, &str>(0))?)
}

/// Record facts of an artifact against a schema: the database judges them,
/// stores the verdict and, when it passed, links the schema and labels.
pub async fn record(
    client: &Client,
    uid: &str,
    schema: &str,
    facts: &Value,
) -> anyhow::Result<Value> {
    let row = client
        .query_one(
            "SELECT lamin.record_validation($1, $2, $3::text::jsonb)::text",
            &[&uid, &schema, &facts.to_string()],
        )
        .await
        .map_err(DbError)?;
    Ok(serde_json::from_str(row.get::<_, &str>(0))?)
}

/// validate: read a stored dataset's facts and record the verdict (the job
/// behind lamin.validate_artifact, and `lamin validate`).
pub async fn validate(client: &Client, request: &ValidateRequest) -> anyhow::Result<Value> {
    let uid = &request.uid;
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.size, a.suffix
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid],
        )
        .await
        .map_err(DbError)?
        .ok_or_else(|| refused!("no ready artifact with uid {uid:?}"))?;
    let (root, object, size, suffix): (String, String, Option<i64>, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if !formats::is_table_suffix(&suffix) {
        return Err(refused!(
            "artifact {uid} (suffix {suffix:?}) is not a dataset validation reads: parquet, CSV/TSV, h5ad, h5mu or AnnData zarr"
        ));
    }
    let def = definition(client, &request.schema, otype_of(&suffix)).await?;
    let needs = Needs::from_definition(&def);
    let storage = Storage::open(&root)?;
    let facts = object_facts(&storage, &object, &suffix, size, &needs)
        .await
        .with_context(|| format!("artifact {uid}"))?;
    record(client, uid, &request.schema, &facts).await
}

/// The verdict's problems as lines a person reads (one per problem).
pub fn problem_lines(verdict: &Value) -> Vec<String> {
    verdict["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let place = match (p["slot"].as_str(), p["column"].as_str()) {
                (Some(s), Some(c)) => format!("{s}.{c}: "),
                (Some(s), None) => format!("{s}: "),
                _ => String::new(),
            };
            let n = match p["n"].as_i64().filter(|_| p["problem"] == "invalid_values") {
                Some(1) => " (1 row)".to_string(),
                Some(n) => format!(" ({n} rows)"),
                None => String::new(),
            };
            format!("{place}{}{n}", p["detail"].as_str().unwrap_or("a problem"))
        })
        .collect()
}

/// The suffix a local dataset is read by — the suffix rule of saving (the
/// key's, else the file name's: lamin_core::key::suffix_from_key) — if it
/// names a format validation reads (parquet, CSV/TSV, h5ad, h5mu, zarr).
pub fn dataset_suffix(path: &Path, key: Option<&str>) -> Option<String> {
    let named = match key {
        Some(k) => k.to_string(),
        None => path.file_name()?.to_string_lossy().into_owned(),
    };
    let suffix = lamin_core::key::suffix_from_key(&named).to_ascii_lowercase();
    formats::is_table_suffix(&suffix).then_some(suffix)
}

/// How `lamin save --schema` ended.
#[derive(Debug)]
pub struct CheckedSave {
    /// The saved artifact; None when `strict` refused a failing dataset (nothing stored).
    pub outcome: Option<crate::artifacts::save::SaveOutcome>,
    /// The verdict (recorded on the artifact when it was saved).
    pub verdict: Value,
    /// Why the verdict could not be recorded on the artifact (e.g. known
    /// content came back from a space the caller can only read).
    pub not_recorded: Option<String>,
}

/// Save a local dataset checked against a schema: the verdict comes first
/// (the file is read once, before anything is stored); `strict` refuses a
/// failing dataset, else it is saved and the verdict recorded (a passing
/// artifact gets the schema and the labels of its categorical columns).
pub async fn save_with_schema(
    client: &Client,
    request: &crate::artifacts::save::SaveRequest,
    schema: &str,
    strict: bool,
    progress: &dyn crate::progress::Progress,
) -> anyhow::Result<CheckedSave> {
    let suffix = dataset_suffix(&request.path, request.key.as_deref()).ok_or_else(|| {
        refused!(
            "--schema validates parquet, CSV/TSV, h5ad files and AnnData zarr stores; {} is none of them; nothing was saved",
            request.path.display()
        )
    })?;
    let (facts, verdict) = check_local(client, &request.path, &suffix, schema)
        .await
        .context("nothing was saved")?;
    if strict && verdict["passed"] != true {
        return Ok(CheckedSave {
            outcome: None,
            verdict,
            not_recorded: None,
        });
    }
    let outcome = crate::artifacts::save::save(client, request, progress).await?;
    let (verdict, not_recorded) = match record(client, &outcome.uid, schema, &facts).await {
        Ok(recorded) => (recorded, None),
        Err(e) => (verdict, Some(format!("{e:#}"))),
    };
    Ok(CheckedSave {
        outcome: Some(outcome),
        verdict,
        not_recorded,
    })
}

/// Make a schema named `name` from the columns of a local sample file
/// (lamin.create_schema_from_columns). Returns {"schema", "created", "conflicts"}.
pub async fn schema_from_file(client: &Client, path: &Path, name: &str) -> anyhow::Result<Value> {
    let suffix = dataset_suffix(path, None).ok_or_else(|| {
        refused!(
            "{} is not a parquet, CSV/TSV, h5ad or h5mu file or AnnData zarr store",
            path.display()
        )
    })?;
    let column =
        |c: &str, dtype: &str, arrow: String| json!({ "name": c, "dtype": dtype, "arrow": arrow });
    let (frames, otype) =
        match tokio::task::block_in_place(|| formats::describe_local(path, &suffix))? {
            formats::Described::Table(info) => (
                json!({ "columns": info.columns.iter().filter(|c| c.name != PANDAS_INDEX)
                .map(|c| column(&c.name, c.dtype, c.arrow.clone())).collect::<Vec<_>>() }),
                "DataFrame",
            ),
            formats::Described::AnnData(info) => {
                let frame = |cols: &[anndata::FrameColumn], slot: &str| -> Vec<Value> {
                    cols.iter()
                        .map(|c| column(&c.name, c.dtype, format!("anndata {slot} {}", c.dtype)))
                        .collect()
                };
                (
                    json!({ "obs": frame(&info.obs, "obs"), "var": frame(&info.var, "var") }),
                    "AnnData",
                )
            }
            formats::Described::MuData(info) => (
                Value::Object(
                    info.frames
                        .iter()
                        .filter(|f| !f.columns.is_empty())
                        .map(|f| {
                            let cols = f.columns.iter().map(|c| {
                                column(&c.name, c.dtype, format!("mudata {} {}", f.slot, c.dtype))
                            });
                            (f.slot.clone(), Value::Array(cols.collect()))
                        })
                        .collect(),
                ),
                "MuData",
            ),
            formats::Described::Hdf5(_)
            | formats::Described::SpatialData(_)
            | formats::Described::Soma(_)
            | formats::Described::SomaFolder { .. }
            | formats::Described::DuckDb(_) => {
                return Err(refused!(
                    "{} is a generic HDF5 file, a SpatialData store, a TileDB-SOMA experiment or a DuckDB file: schemas are made from tables, AnnData and MuData files",
                    path.display()
                ))
            }
        };
    let row = client
        .query_one(
            "SELECT lamin.create_schema_from_columns($1, $2::text::jsonb, $3)::text",
            &[&name, &frames.to_string(), &otype],
        )
        .await
        .map_err(DbError)?;
    Ok(serde_json::from_str(row.get::<_, &str>(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_is_read_by_the_suffix_saving_records() {
        let p = Path::new("/data/Cells.PARQUET");
        assert_eq!(dataset_suffix(p, None).as_deref(), Some(".parquet"));
        assert_eq!(
            dataset_suffix(p, Some("atlas/cells.h5ad")).as_deref(),
            Some(".h5ad"),
            "the key's suffix, as saving records it"
        );
        assert_eq!(
            dataset_suffix(Path::new("store.zarr"), None).as_deref(),
            Some(".zarr")
        );
        assert_eq!(dataset_suffix(Path::new("notes.txt"), None), None);
        assert_eq!(
            dataset_suffix(Path::new("cells.csv.gz"), None),
            None,
            "compressed CSV is not read"
        );
    }
}
