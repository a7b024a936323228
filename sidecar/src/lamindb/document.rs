//! A LaminDB instance's tables as the document `lamin.import_lamindb`
//! takes: internal ids replaced by uids (ontology terms by their public id),
//! LaminDB's dtypes and registry names by lamin's, and only what is not in
//! the trash (branch -1).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::source::{Row, Tables};

/// LaminDB's bionty models (table suffix) → lamin's registries, with the
/// field a record is matched by across instances.
const BIONTY: &[(&str, &str, &str)] = &[
    ("celltype", "bionty.cell_type", "ontology_id"),
    ("cellline", "bionty.cell_line", "ontology_id"),
    ("tissue", "bionty.tissue", "ontology_id"),
    ("disease", "bionty.disease", "ontology_id"),
    ("phenotype", "bionty.phenotype", "ontology_id"),
    ("pathway", "bionty.pathway", "ontology_id"),
    (
        "experimentalfactor",
        "bionty.experimental_factor",
        "ontology_id",
    ),
    (
        "developmentalstage",
        "bionty.developmental_stage",
        "ontology_id",
    ),
    ("ethnicity", "bionty.ethnicity", "ontology_id"),
    ("organism", "bionty.organism", "ontology_id"),
    ("gene", "bionty.gene", "ensembl_gene_id"),
    ("protein", "bionty.protein", "uniprotkb_id"),
    ("cellmarker", "bionty.cell_marker", "name"),
];

/// LaminDB's bionty class names in dtypes (cat[bionty.CellType]) → lamin's tables.
fn bionty_table(class: &str) -> Option<&'static str> {
    let lower = class.to_ascii_lowercase();
    BIONTY
        .iter()
        .find(|(t, _, _)| *t == lower)
        .map(|(_, registry, _)| *registry)
}

/// A LaminDB dtype (`_dtype_str`) as lamin writes it: cat[ULabel] → cat,
/// cat[bionty.CellType.ontology_id] → cat[bionty.cell_type.ontology_id],
/// list[…] of those; None for one lamin has no counterpart for.
pub fn dtype(lamindb: &str) -> Option<String> {
    let d = lamindb.trim();
    if let Some(inner) = d.strip_prefix("list[").and_then(|r| r.strip_suffix(']')) {
        return dtype(inner).map(|i| format!("list[{i}]"));
    }
    if let Some(inner) = d.strip_prefix("cat[").and_then(|r| r.strip_suffix(']')) {
        // (A union cat[A|B] has no counterpart: the first is taken.)
        let first = inner.split('|').next().unwrap_or(inner);
        // ULabel, ULabel[Type]: lamin's labels (the type restriction is not kept).
        if first == "ULabel" || first.starts_with("ULabel[") {
            return Some("cat".into());
        }
        for (model, registry) in [
            ("Record", "lamin.record"),
            ("Project", "lamin.project"),
            ("Reference", "lamin.reference"),
        ] {
            if first == model || first.starts_with(&format!("{model}[")) {
                return Some(format!("cat[{registry}]"));
            }
        }
        let rest = first.strip_prefix("bionty.")?;
        let (class, field) = match rest.split_once('.') {
            Some((c, f)) => (c, Some(f)),
            None => (rest, None),
        };
        let table = bionty_table(class)?;
        return Some(match field {
            Some(f) => format!("cat[{table}.{f}]"),
            None => format!("cat[{table}]"),
        });
    }
    match d {
        "int" | "float" | "num" | "str" | "bool" | "date" | "datetime" | "dict" | "url"
        | "path" => Some(d.into()),
        "cat" => Some("cat".into()),
        _ => None,
    }
}

fn text(row: &Row, col: &str) -> Option<String> {
    match row.get(col)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn int(row: &Row, col: &str) -> Option<i64> {
    match row.get(col)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A boolean, as Postgres (true) or SQLite (1) stores it.
fn flag(row: &Row, col: &str) -> Option<bool> {
    match row.get(col)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|v| v != 0),
        _ => None,
    }
}

/// JSON, as Postgres (jsonb) or SQLite (text) stores it.
fn json_value(row: &Row, col: &str) -> Value {
    match row.get(col) {
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// A timestamp with its zone (SQLite's are UTC without one).
fn timestamp(row: &Row, col: &str) -> Value {
    match text(row, col) {
        Some(t) if t.contains('+') || t.ends_with('Z') || t.rfind('-').is_some_and(|i| i > 10) => {
            Value::String(t)
        }
        Some(t) => Value::String(format!("{t}+00")),
        None => Value::Null,
    }
}

fn live(row: &Row) -> bool {
    int(row, "branch_id") != Some(-1)
}

fn lookup(map: &HashMap<i64, String>, row: &Row, col: &str) -> Value {
    int(row, col)
        .and_then(|id| map.get(&id))
        .map(|u| Value::String(u.clone()))
        .unwrap_or(Value::Null)
}

/// LaminDB's run status codes.
fn run_status(code: Option<i64>) -> &'static str {
    match code {
        Some(-3) => "scheduled",
        Some(-2) => "restarted",
        Some(-1) => "started",
        Some(0) => "completed",
        Some(1) => "errored",
        Some(2) => "aborted",
        _ => "completed",
    }
}

/// LaminDB's synonyms: one text, "|"-separated.
fn synonyms(row: &Row) -> Value {
    match text(row, "synonyms") {
        Some(s) if !s.is_empty() => {
            Value::from(s.split('|').filter(|x| !x.is_empty()).collect::<Vec<_>>())
        }
        _ => json!([]),
    }
}

/// The uids of the artifacts a document holds.
pub fn artifact_uids(doc: &Value) -> Vec<String> {
    doc["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["uid"].as_str().map(str::to_string))
        .collect()
}

/// The rows of a link table grouped by one of its ends (`key`, an id), each
/// as `f` makes it (None: left out), in the order LaminDB made them (by id).
fn grouped(
    tables: &Tables,
    table: &str,
    key: &str,
    f: impl Fn(&Row) -> Option<Value>,
) -> HashMap<i64, Vec<Value>> {
    let mut rows: Vec<&Row> = tables.rows(table).iter().collect();
    rows.sort_by_key(|r| int(r, "id"));
    let mut out: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in rows {
        if let (Some(k), Some(v)) = (int(r, key), f(r)) {
            out.entry(k).or_default().push(v);
        }
    }
    out
}

/// The rows of a registry that are not in the trash, with their LaminDB id.
fn live_rows<'t>(tables: &'t Tables, table: &str) -> impl Iterator<Item = (i64, &'t Row)> {
    tables
        .rows(table)
        .iter()
        .filter(|r| live(r))
        .map(|r| (int(r, "id").unwrap_or_default(), r))
}

/// LaminDB's internal ids → what lamin knows records by.
struct Ids {
    storage_roots: HashMap<i64, String>,
    transforms: HashMap<i64, String>,
    runs: HashMap<i64, String>,
    artifacts: HashMap<i64, String>,
    collections: HashMap<i64, String>,
    ulabels: HashMap<i64, String>,
    schemas: HashMap<i64, String>,
    features: HashMap<i64, String>,
    /// (bionty model, id) → (lamin registry, public id).
    terms: HashMap<(&'static str, i64), (String, String)>,
}

impl Ids {
    fn read(tables: &Tables) -> Ids {
        let by = |table: &str, col: &str| -> HashMap<i64, String> {
            tables
                .rows(table)
                .iter()
                .filter_map(|r| Some((int(r, "id")?, text(r, col)?)))
                .collect()
        };
        let mut terms = HashMap::new();
        for (model, registry, id_field) in BIONTY {
            for (id, r) in live_rows(tables, &format!("bionty_{model}")) {
                if let Some(public) = text(r, id_field) {
                    terms.insert((*model, id), (registry.to_string(), public));
                }
            }
        }
        Ids {
            storage_roots: by("lamindb_storage", "root"),
            transforms: by("lamindb_transform", "uid"),
            runs: by("lamindb_run", "uid"),
            artifacts: by("lamindb_artifact", "uid"),
            collections: by("lamindb_collection", "uid"),
            ulabels: by("lamindb_ulabel", "uid"),
            schemas: by("lamindb_schema", "uid"),
            features: by("lamindb_feature", "name"),
            terms,
        }
    }

    /// The name of a link row's feature (its `feature_id`), or null.
    fn feature_of(&self, row: &Row) -> Value {
        lookup(&self.features, row, "feature_id")
    }
}

fn storages(tables: &Tables) -> Vec<Value> {
    tables
        .rows("lamindb_storage")
        .iter()
        .map(|r| {
            json!({"uid": text(r, "uid"), "root": text(r, "root"), "region": text(r, "region"),
                   "description": text(r, "description"), "instance_uid": text(r, "instance_uid")})
        })
        .collect()
}

fn transforms(tables: &Tables) -> Vec<Value> {
    live_rows(tables, "lamindb_transform")
        .map(|(_, r)| {
            json!({"uid": text(r, "uid"), "key": text(r, "key"), "description": text(r, "description"),
                   "kind": text(r, "kind").or_else(|| text(r, "type")), "source_code": text(r, "source_code"),
                   "reference": text(r, "reference"), "reference_type": text(r, "reference_type"),
                   "version": text(r, "version_tag").or_else(|| text(r, "version"))})
        })
        .collect()
}

/// Runs, with what each read (artifacts and collections).
fn runs(tables: &Tables, ids: &Ids) -> Vec<Value> {
    let mut inputs = grouped(tables, "lamindb_artifact_input_of_runs", "run_id", |r| {
        ids.artifacts.get(&int(r, "artifact_id")?).map(|u| json!(u))
    });
    let mut collection_inputs =
        grouped(tables, "lamindb_collection_input_of_runs", "run_id", |r| {
            ids.collections
                .get(&int(r, "collection_id")?)
                .map(|u| json!(u))
        });
    live_rows(tables, "lamindb_run")
        .map(|(id, r)| {
            json!({"uid": text(r, "uid"), "transform": lookup(&ids.transforms, r, "transform_id"),
                   "name": text(r, "name"), "started_at": timestamp(r, "started_at"),
                   "finished_at": timestamp(r, "finished_at"), "params": json_value(r, "params"),
                   "status": run_status(int(r, "_status_code")), "reference": text(r, "reference"),
                   "initiated_by": lookup(&ids.runs, r, "initiated_by_run_id"),
                   "inputs": inputs.remove(&id).unwrap_or_default(),
                   "collection_inputs": collection_inputs.remove(&id).unwrap_or_default()})
        })
        .collect()
}

/// Features with lamin's dtypes (feature types, LaminDB's grouping records,
/// are not features; a dtype lamin has no counterpart for leaves one out).
fn features(tables: &Tables) -> Vec<Value> {
    live_rows(tables, "lamindb_feature")
        .filter(|(_, r)| !flag(r, "is_type").unwrap_or(false))
        .filter_map(|(_, r)| {
            let d = text(r, "_dtype_str").or_else(|| text(r, "dtype"))?;
            Some(json!({"name": text(r, "name"), "dtype": dtype(&d)?, "description": text(r, "description"),
                        "unit": text(r, "unit"), "nullable": flag(r, "nullable"), "coerce": flag(r, "coerce")}))
        })
        .collect()
}

/// Labels with their type and parents.
fn ulabels(tables: &Tables, ids: &Ids) -> Vec<Value> {
    let mut parents = grouped(tables, "lamindb_ulabel_parents", "from_ulabel_id", |r| {
        ids.ulabels.get(&int(r, "to_ulabel_id")?).map(|u| json!(u))
    });
    live_rows(tables, "lamindb_ulabel")
        .map(|(id, r)| {
            json!({"uid": text(r, "uid"), "name": text(r, "name"), "description": text(r, "description"),
                   "is_type": flag(r, "is_type").unwrap_or(false), "type": lookup(&ids.ulabels, r, "type_id"),
                   "reference": text(r, "reference"), "reference_type": text(r, "reference_type"),
                   "parents": parents.remove(&id).unwrap_or_default()})
        })
        .collect()
}

/// bionty records by public id, with LaminDB's fields (for those lamin
/// lacks) and their parents.
fn terms(tables: &Tables, ids: &Ids) -> Vec<Value> {
    let mut out = Vec::new();
    for (model, registry, id_field) in BIONTY {
        let mut parents = grouped(
            tables,
            &format!("bionty_{model}_parents"),
            &format!("from_{model}_id"),
            |r| {
                ids.terms
                    .get(&(*model, int(r, &format!("to_{model}_id"))?))
                    .map(|(_, public)| json!(public))
            },
        );
        for (id, r) in live_rows(tables, &format!("bionty_{model}")) {
            let Some(public) = text(r, id_field) else {
                continue;
            };
            let mut fields = Map::new();
            for (k, v) in r {
                if !k.starts_with('_') && !k.ends_with("_id") && !matches!(v, Value::Null) {
                    fields.insert(k.clone(), v.clone());
                }
            }
            fields.insert(id_field.to_string(), Value::String(public.clone()));
            fields.insert("synonyms".into(), synonyms(r));
            // (Numbers are lists in lamin: ncbi_gene_ids.)
            if let Some(ncbi) = text(r, "ncbi_gene_ids") {
                fields.insert(
                    "ncbi_gene_ids".into(),
                    Value::from(
                        ncbi.split('|')
                            .filter(|x| !x.is_empty())
                            .collect::<Vec<_>>(),
                    ),
                );
            }
            out.push(json!({"registry": registry, "id": public, "fields": fields,
                            "parents": parents.remove(&id).unwrap_or_default()}));
        }
    }
    out
}

/// Schemas with their features in order.
fn schemas(tables: &Tables, ids: &Ids) -> Vec<Value> {
    let mut members = grouped(tables, "lamindb_schemafeature", "schema_id", |r| {
        Some(ids.feature_of(r)).filter(|f| !f.is_null())
    });
    live_rows(tables, "lamindb_schema")
        .filter(|(_, r)| !flag(r, "is_type").unwrap_or(false))
        .map(|(id, r)| {
            json!({"uid": text(r, "uid"), "name": text(r, "name"), "description": text(r, "description"),
                   "features": members.remove(&id).unwrap_or_default(),
                   "otype": text(r, "otype"), "ordered": flag(r, "ordered_set"), "minimal_set": flag(r, "minimal_set"),
                   "maximal_set": flag(r, "maximal_set"), "coerce": flag(r, "coerce")})
        })
        .collect()
}

/// Artifacts with their annotations: labels, terms, values and schemas per slot.
fn artifacts(tables: &Tables, ids: &Ids) -> Vec<Value> {
    let mut labels = grouped(tables, "lamindb_artifactulabel", "artifact_id", |r| {
        let u = ids.ulabels.get(&int(r, "ulabel_id")?)?;
        Some(json!({"uid": u, "feature": ids.feature_of(r)}))
    });
    let mut terms: HashMap<i64, Vec<Value>> = HashMap::new();
    for (model, _, _) in BIONTY {
        for (a, found) in grouped(
            tables,
            &format!("bionty_artifact{model}"),
            "artifact_id",
            |r| {
                let (registry, public) =
                    ids.terms.get(&(*model, int(r, &format!("{model}_id"))?))?;
                Some(json!({"registry": registry, "id": public, "feature": ids.feature_of(r)}))
            },
        ) {
            terms.entry(a).or_default().extend(found);
        }
    }
    let json_values: HashMap<i64, (Value, Value)> = tables
        .rows("lamindb_jsonvalue")
        .iter()
        .filter_map(|r| Some((int(r, "id")?, (ids.feature_of(r), json_value(r, "value")))))
        .collect();
    let mut values = grouped(tables, "lamindb_artifactjsonvalue", "artifact_id", |r| {
        let (feature, value) = json_values.get(&int(r, "jsonvalue_id")?)?;
        (!feature.is_null()).then(|| json!({"feature": feature, "value": value}))
    });
    let mut slots = grouped(tables, "lamindb_artifactschema", "artifact_id", |r| {
        let s = ids.schemas.get(&int(r, "schema_id")?)?;
        Some(json!({"slot": text(r, "slot"), "schema": s}))
    });
    live_rows(tables, "lamindb_artifact")
        .map(|(id, r)| {
            let hash_type = text(r, "_hash_type").filter(|t| matches!(t.as_str(), "md5" | "md5-n" | "md5-d" | "sha1-fl"));
            json!({"uid": text(r, "uid"), "key": text(r, "key"),
                   "key_is_virtual": flag(r, "_key_is_virtual").unwrap_or(true),
                   "overwrite_versions": flag(r, "_overwrite_versions").unwrap_or(false),
                   "description": text(r, "description"), "suffix": text(r, "suffix"), "kind": text(r, "kind"),
                   "otype": text(r, "otype"), "size": int(r, "size"),
                   "legacy_hash": hash_type.as_ref().and(text(r, "hash")), "legacy_hash_type": hash_type,
                   "n_files": int(r, "n_files"), "n_observations": int(r, "n_observations"),
                   "version": text(r, "version_tag").or_else(|| text(r, "version")),
                   "is_latest": flag(r, "is_latest").unwrap_or(true),
                   "storage": lookup(&ids.storage_roots, r, "storage_id"),
                   "run": lookup(&ids.runs, r, "run_id"),
                   "labels": labels.remove(&id).unwrap_or_default(),
                   "terms": terms.remove(&id).unwrap_or_default(),
                   "values": values.remove(&id).unwrap_or_default(),
                   "schemas": slots.remove(&id).unwrap_or_default()})
        })
        .collect()
}

/// Collections with their members in order.
fn collections(tables: &Tables, ids: &Ids) -> Vec<Value> {
    let mut members = grouped(tables, "lamindb_collectionartifact", "collection_id", |r| {
        ids.artifacts.get(&int(r, "artifact_id")?).map(|u| json!(u))
    });
    live_rows(tables, "lamindb_collection")
        .map(|(id, r)| {
            json!({"uid": text(r, "uid"), "key": text(r, "key"), "description": text(r, "description"),
                   "version": text(r, "version_tag").or_else(|| text(r, "version")),
                   "run": lookup(&ids.runs, r, "run_id"),
                   "members": members.remove(&id).unwrap_or_default()})
        })
        .collect()
}

/// The import document of a LaminDB instance's tables.
pub fn build(tables: &Tables) -> anyhow::Result<Value> {
    let ids = Ids::read(tables);
    let instance_uid = tables
        .rows("lamindb_storage")
        .iter()
        .find_map(|r| text(r, "instance_uid"));
    Ok(json!({
        "lamindb_import": 1,
        "lamindb": {"instance_uid": instance_uid},
        "storages": storages(tables),
        "transforms": transforms(tables),
        "runs": runs(tables, &ids),
        "features": features(tables),
        "ulabels": ulabels(tables, &ids),
        "terms": terms(tables, &ids),
        "schemas": schemas(tables, &ids),
        "artifacts": artifacts(tables, &ids),
        "collections": collections(tables, &ids),
    }))
}

#[cfg(test)]
mod tests {
    use super::dtype;

    #[test]
    fn lamindb_dtypes_become_lamins() {
        assert_eq!(dtype("float").as_deref(), Some("float"));
        assert_eq!(dtype("cat[ULabel]").as_deref(), Some("cat"));
        assert_eq!(dtype("cat[ULabel[Perturbation]]").as_deref(), Some("cat"));
        assert_eq!(
            dtype("cat[bionty.CellType]").as_deref(),
            Some("cat[bionty.cell_type]")
        );
        assert_eq!(
            dtype("list[cat[bionty.Gene.ensembl_gene_id]]").as_deref(),
            Some("list[cat[bionty.gene.ensembl_gene_id]]")
        );
        assert_eq!(
            dtype("cat[bionty.DevelopmentalStage]").as_deref(),
            Some("cat[bionty.developmental_stage]")
        );
        assert_eq!(
            dtype("cat[Record[Sample]]").as_deref(),
            Some("cat[lamin.record]")
        );
        assert_eq!(dtype("cat[pertdb.Compound]"), None);
        assert_eq!(dtype("object"), None);
    }
}
