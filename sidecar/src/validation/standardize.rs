//! Standardizing a dataset against a schema: the values of its categorical
//! columns that a registry knows by another name (synonyms, case) are
//! written as their registry names into a copy, saved as a new version of
//! the artifact and validated. The bytes of the existing version never
//! change. Values with no standardized form (typos) are left and reported.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Client;

use super::{check_local, local_facts, record, Needs};
use crate::artifacts::save::{save, SaveRequest};
use crate::error::DbError;
use crate::formats::rewrite::{rewrite, Replacements};
use crate::progress::Progress;
use crate::refused;
use crate::storage::Storage;

/// Standardize an artifact's categorical values against a schema.
#[derive(Debug, Clone)]
pub struct StandardizeRequest {
    pub uid: String,
    pub schema: String,
    /// The run (uid) that makes the new version.
    pub run: Option<String>,
}

/// What standardizing did.
#[derive(Debug, Serialize)]
pub struct Standardized {
    /// The new version.
    pub uid: String,
    /// The version it revises.
    pub revises: String,
    /// Rows rewritten, per "frame.column".
    pub replaced: std::collections::BTreeMap<String, u64>,
    /// The new version's verdict (recorded on it).
    pub verdict: Value,
}

/// The replacements a verdict proposes: values with a standardized form, per frame and column.
fn replacements(verdict: &Value) -> Replacements {
    let mut out = Replacements::new();
    for p in verdict["problems"].as_array().into_iter().flatten() {
        let (Some(slot), Some(column), Some(value), Some(to)) = (
            p["slot"].as_str(),
            p["column"].as_str(),
            p["value"].as_str(),
            p["standardized"].as_str(),
        ) else {
            continue;
        };
        out.entry(slot.trim_end_matches(".T").to_string())
            .or_default()
            .entry(column.to_string())
            .or_default()
            .insert(value.to_string(), to.to_string());
    }
    out
}

/// standardize: the stored dataset's verdict, its standardized copy saved as
/// a new version in the artifact's space, that version validated.
pub async fn standardize(
    client: &Client,
    request: &StandardizeRequest,
    progress: &dyn Progress,
) -> anyhow::Result<Standardized> {
    let uid = &request.uid;
    let row = client
        .query_opt(
            "SELECT s.root, lamin.object_key(a), a.suffix, a.key, sp.uid
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id JOIN lamin.space sp ON sp.id = a.space_id
             WHERE a.uid = $1 AND a.status = 'ready'",
            &[&uid],
        )
        .await
        .map_err(DbError)?
        .ok_or_else(|| refused!("no ready artifact with uid {uid:?}"))?;
    let (root, object, suffix, key, space): (String, String, String, Option<String>, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if !matches!(
        suffix.as_str(),
        ".parquet" | ".csv" | ".tsv" | ".tab" | ".h5ad"
    ) {
        return Err(refused!(
            "artifact {uid} ({suffix}): standardizing writes parquet, CSV/TSV and h5ad files; nothing was changed"
        ));
    }
    let def = super::definition(client, &request.schema, super::otype_of(&suffix)).await?;
    let needs = Needs::from_definition(&def);
    let storage = Storage::open(&root)?;
    // One local copy (the object itself on a local storage) serves both the
    // facts and the rewrite: a remote dataset is downloaded once.
    let dir = tempfile::tempdir()?;
    let source = match storage.local_path(&object) {
        Some(path) => path,
        None => {
            let path = dir.path().join(format!("source{suffix}"));
            storage
                .download(&object, false, &path, &crate::progress::Silent)
                .await
                .with_context(|| format!("cannot read {}", storage.uri(&object)))?;
            path
        }
    };
    let facts = tokio::task::block_in_place(|| local_facts(&source, &suffix, &needs))
        .with_context(|| format!("artifact {uid}"))?;
    let verdict = super::verdict(client, &request.schema, &facts).await?;
    let maps = replacements(&verdict);
    if maps.is_empty() {
        return Err(refused!(
            "artifact {uid}: nothing to standardize against schema {:?} ({} problem(s), none with a standardized form); nothing was changed",
            request.schema,
            verdict["n_problems"]
        ));
    }
    // The copy, named like the object (its suffix tells the format).
    let copy = dir.path().join(format!("standardized{suffix}"));
    let replaced = tokio::task::block_in_place(|| rewrite(&source, &copy, &suffix, &maps))
        .with_context(|| format!("artifact {uid}: nothing was changed"))?;
    let saved = save(
        client,
        &SaveRequest {
            path: copy.clone(),
            key: key.clone(),
            description: Some(format!(
                "{uid} standardized against schema {}",
                def["name"].as_str().or(def["uid"].as_str()).unwrap_or("?")
            )),
            storage: Some(root.clone()),
            run: request.run.clone(),
            space: Some(space),
            revises: Some(uid.clone()),
        },
        progress,
    )
    .await?;
    let (new_facts, _) = check_local(client, &copy, &suffix, &request.schema).await?;
    let verdict = record(client, &saved.uid, &request.schema, &new_facts).await?;
    Ok(Standardized {
        uid: saved.uid,
        revises: uid.clone(),
        replaced,
        verdict,
    })
}
