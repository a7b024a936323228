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

/// id → uid of a table's rows.
fn uids(tables: &Tables, table: &str) -> HashMap<i64, String> {
    tables
        .rows(table)
        .iter()
        .filter_map(|r| Some((int(r, "id")?, text(r, "uid")?)))
        .collect()
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

pub fn build(tables: &Tables) -> anyhow::Result<Value> {
    let storage_roots: HashMap<i64, String> = tables
        .rows("lamindb_storage")
        .iter()
        .filter_map(|r| Some((int(r, "id")?, text(r, "root")?)))
        .collect();
    let transform_uids = uids(tables, "lamindb_transform");
    let run_uids = uids(tables, "lamindb_run");
    let artifact_uids = uids(tables, "lamindb_artifact");
    let collection_uids = uids(tables, "lamindb_collection");
    let ulabel_uids = uids(tables, "lamindb_ulabel");
    let schema_uids = uids(tables, "lamindb_schema");
    let feature_names: HashMap<i64, String> = tables
        .rows("lamindb_feature")
        .iter()
        .filter_map(|r| Some((int(r, "id")?, text(r, "name")?)))
        .collect();
    let feature_of = |row: &Row| -> Value {
        int(row, "feature_id")
            .and_then(|id| feature_names.get(&id))
            .map(|n| Value::String(n.clone()))
            .unwrap_or(Value::Null)
    };
    let instance_uid = tables
        .rows("lamindb_storage")
        .iter()
        .find_map(|r| text(r, "instance_uid"));

    let storages: Vec<Value> = tables
        .rows("lamindb_storage")
        .iter()
        .map(|r| {
            json!({"uid": text(r, "uid"), "root": text(r, "root"), "region": text(r, "region"),
                   "description": text(r, "description"), "instance_uid": text(r, "instance_uid")})
        })
        .collect();

    let transforms: Vec<Value> = tables
        .rows("lamindb_transform")
        .iter()
        .filter(|r| live(r))
        .map(|r| {
            json!({"uid": text(r, "uid"), "key": text(r, "key"), "description": text(r, "description"),
                   "kind": text(r, "kind").or_else(|| text(r, "type")), "source_code": text(r, "source_code"),
                   "reference": text(r, "reference"), "reference_type": text(r, "reference_type"),
                   "version": text(r, "version_tag").or_else(|| text(r, "version"))})
        })
        .collect();

    let mut run_inputs: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in tables.rows("lamindb_artifact_input_of_runs") {
        if let (Some(run), Some(a)) = (
            int(r, "run_id"),
            int(r, "artifact_id").and_then(|i| artifact_uids.get(&i)),
        ) {
            run_inputs
                .entry(run)
                .or_default()
                .push(Value::String(a.clone()));
        }
    }
    let mut run_collection_inputs: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in tables.rows("lamindb_collection_input_of_runs") {
        if let (Some(run), Some(c)) = (
            int(r, "run_id"),
            int(r, "collection_id").and_then(|i| collection_uids.get(&i)),
        ) {
            run_collection_inputs
                .entry(run)
                .or_default()
                .push(Value::String(c.clone()));
        }
    }
    let runs: Vec<Value> = tables
        .rows("lamindb_run")
        .iter()
        .filter(|r| live(r))
        .map(|r| {
            let id = int(r, "id").unwrap_or_default();
            json!({"uid": text(r, "uid"), "transform": lookup(&transform_uids, r, "transform_id"),
                   "name": text(r, "name"), "started_at": timestamp(r, "started_at"),
                   "finished_at": timestamp(r, "finished_at"), "params": json_value(r, "params"),
                   "status": run_status(int(r, "_status_code")), "reference": text(r, "reference"),
                   "initiated_by": lookup(&run_uids, r, "initiated_by_run_id"),
                   "inputs": run_inputs.remove(&id).unwrap_or_default(),
                   "collection_inputs": run_collection_inputs.remove(&id).unwrap_or_default()})
        })
        .collect();

    // Features (feature types, LaminDB's grouping records, are not features).
    let features: Vec<Value> = tables
        .rows("lamindb_feature")
        .iter()
        .filter(|r| live(r) && !flag(r, "is_type").unwrap_or(false))
        .filter_map(|r| {
            let d = text(r, "_dtype_str").or_else(|| text(r, "dtype"))?;
            Some(json!({"name": text(r, "name"), "dtype": dtype(&d)?, "description": text(r, "description"),
                        "unit": text(r, "unit"), "nullable": flag(r, "nullable"), "coerce": flag(r, "coerce")}))
        })
        .collect();

    let mut ulabel_parents: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in tables.rows("lamindb_ulabel_parents") {
        if let (Some(child), Some(parent)) = (
            int(r, "from_ulabel_id"),
            int(r, "to_ulabel_id").and_then(|i| ulabel_uids.get(&i)),
        ) {
            ulabel_parents
                .entry(child)
                .or_default()
                .push(Value::String(parent.clone()));
        }
    }
    let ulabels: Vec<Value> = tables
        .rows("lamindb_ulabel")
        .iter()
        .filter(|r| live(r))
        .map(|r| {
            let id = int(r, "id").unwrap_or_default();
            json!({"uid": text(r, "uid"), "name": text(r, "name"), "description": text(r, "description"),
                   "is_type": flag(r, "is_type").unwrap_or(false), "type": lookup(&ulabel_uids, r, "type_id"),
                   "reference": text(r, "reference"), "reference_type": text(r, "reference_type"),
                   "parents": ulabel_parents.remove(&id).unwrap_or_default()})
        })
        .collect();

    // bionty records, by public id; id → (registry, public id) for the links.
    let mut terms = Vec::new();
    let mut term_ids: HashMap<(&str, i64), (String, String)> = HashMap::new();
    for (model, registry, id_field) in BIONTY {
        let table = format!("bionty_{model}");
        for r in tables.rows(&table).iter().filter(|r| live(r)) {
            if let (Some(id), Some(public)) = (int(r, "id"), text(r, id_field)) {
                term_ids.insert((model, id), (registry.to_string(), public));
            }
        }
        let mut parents: HashMap<i64, Vec<Value>> = HashMap::new();
        for r in tables.rows(&format!("bionty_{model}_parents")) {
            let (Some(child), Some(parent)) = (
                int(r, &format!("from_{model}_id")),
                int(r, &format!("to_{model}_id")).and_then(|i| term_ids.get(&(*model, i))),
            ) else {
                continue;
            };
            parents
                .entry(child)
                .or_default()
                .push(Value::String(parent.1.clone()));
        }
        for r in tables.rows(&table).iter().filter(|r| live(r)) {
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
            if let Some(ids) = text(r, "ncbi_gene_ids") {
                fields.insert(
                    "ncbi_gene_ids".into(),
                    Value::from(ids.split('|').filter(|x| !x.is_empty()).collect::<Vec<_>>()),
                );
            }
            let id = int(r, "id").unwrap_or_default();
            terms.push(json!({"registry": registry, "id": public, "fields": fields,
                              "parents": parents.remove(&id).unwrap_or_default()}));
        }
    }

    let mut schema_features: HashMap<i64, Vec<(i64, Value)>> = HashMap::new();
    for r in tables.rows("lamindb_schemafeature") {
        if let (Some(s), Some(id)) = (int(r, "schema_id"), int(r, "id")) {
            let f = feature_of(r);
            if !f.is_null() {
                schema_features.entry(s).or_default().push((id, f));
            }
        }
    }
    let schemas: Vec<Value> = tables
        .rows("lamindb_schema")
        .iter()
        .filter(|r| live(r) && !flag(r, "is_type").unwrap_or(false))
        .map(|r| {
            let mut members = schema_features.remove(&int(r, "id").unwrap_or_default()).unwrap_or_default();
            members.sort_by_key(|(id, _)| *id);
            json!({"uid": text(r, "uid"), "name": text(r, "name"), "description": text(r, "description"),
                   "features": members.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
                   "otype": text(r, "otype"), "ordered": flag(r, "ordered_set"), "minimal_set": flag(r, "minimal_set"),
                   "maximal_set": flag(r, "maximal_set"), "coerce": flag(r, "coerce")})
        })
        .collect();

    // The annotations of each artifact.
    let mut labels: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in tables.rows("lamindb_artifactulabel") {
        if let (Some(a), Some(u)) = (
            int(r, "artifact_id"),
            int(r, "ulabel_id").and_then(|i| ulabel_uids.get(&i)),
        ) {
            labels
                .entry(a)
                .or_default()
                .push(json!({"uid": u, "feature": feature_of(r)}));
        }
    }
    let mut artifact_terms: HashMap<i64, Vec<Value>> = HashMap::new();
    for (model, _, _) in BIONTY {
        for r in tables.rows(&format!("bionty_artifact{model}")) {
            let (Some(a), Some((registry, public))) = (
                int(r, "artifact_id"),
                int(r, &format!("{model}_id")).and_then(|i| term_ids.get(&(*model, i))),
            ) else {
                continue;
            };
            artifact_terms
                .entry(a)
                .or_default()
                .push(json!({"registry": registry, "id": public, "feature": feature_of(r)}));
        }
    }
    let json_values: HashMap<i64, (Value, Value)> = tables
        .rows("lamindb_jsonvalue")
        .iter()
        .filter_map(|r| Some((int(r, "id")?, (feature_of(r), json_value(r, "value")))))
        .collect();
    let mut values: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in tables.rows("lamindb_artifactjsonvalue") {
        if let (Some(a), Some((feature, value))) = (
            int(r, "artifact_id"),
            int(r, "jsonvalue_id").and_then(|i| json_values.get(&i)),
        ) {
            if !feature.is_null() {
                values
                    .entry(a)
                    .or_default()
                    .push(json!({"feature": feature, "value": value}));
            }
        }
    }
    let mut slots: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in tables.rows("lamindb_artifactschema") {
        if let (Some(a), Some(s)) = (
            int(r, "artifact_id"),
            int(r, "schema_id").and_then(|i| schema_uids.get(&i)),
        ) {
            slots
                .entry(a)
                .or_default()
                .push(json!({"slot": text(r, "slot"), "schema": s}));
        }
    }

    let artifacts: Vec<Value> = tables
        .rows("lamindb_artifact")
        .iter()
        .filter(|r| live(r))
        .map(|r| {
            let id = int(r, "id").unwrap_or_default();
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
                   "storage": int(r, "storage_id").and_then(|s| storage_roots.get(&s)),
                   "run": lookup(&run_uids, r, "run_id"),
                   "labels": labels.remove(&id).unwrap_or_default(),
                   "terms": artifact_terms.remove(&id).unwrap_or_default(),
                   "values": values.remove(&id).unwrap_or_default(),
                   "schemas": slots.remove(&id).unwrap_or_default()})
        })
        .collect();

    let mut members: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    for r in tables.rows("lamindb_collectionartifact") {
        if let (Some(c), Some(id), Some(a)) = (
            int(r, "collection_id"),
            int(r, "id"),
            int(r, "artifact_id").and_then(|i| artifact_uids.get(&i)),
        ) {
            members.entry(c).or_default().push((id, a.clone()));
        }
    }
    let collections: Vec<Value> = tables
        .rows("lamindb_collection")
        .iter()
        .filter(|r| live(r))
        .map(|r| {
            let mut m = members.remove(&int(r, "id").unwrap_or_default()).unwrap_or_default();
            m.sort_by_key(|(id, _)| *id);
            json!({"uid": text(r, "uid"), "key": text(r, "key"), "description": text(r, "description"),
                   "version": text(r, "version_tag").or_else(|| text(r, "version")),
                   "run": lookup(&run_uids, r, "run_id"),
                   "members": m.into_iter().map(|(_, u)| u).collect::<Vec<_>>()})
        })
        .collect();

    Ok(json!({
        "lamindb_import": 1,
        "lamindb": {"instance_uid": instance_uid},
        "storages": storages, "transforms": transforms, "runs": runs, "features": features,
        "ulabels": ulabels, "terms": terms, "schemas": schemas, "artifacts": artifacts,
        "collections": collections,
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
