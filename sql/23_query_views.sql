-- Views for asking questions of the annotations in one query, from SQL, a
-- BI tool or a driver, without internal ids or jsonb casts:
--   lamin.annotations     every label of an artifact (lamin.ulabel and the
--                         bionty registries), by uid, name and ontology id
--   lamin.feature_values  every feature value of an artifact in typed columns
--                         (labels too, by name)
--   lamin.artifact_values, lamin.collection_values, lamin.run_values
--                         the typed values of artifacts, collections and
--                         runs, one table each: a comparison on a feature's
--                         values is a range scan of its typed index
--   lamin.run_artifacts   every run with the artifacts it read and wrote
--   lamin.trash           records in the trash, whatever their registry
-- They read the tables as the caller (security_invoker): row-level security
-- applies, so nobody sees a record of a space they cannot read. They hide
-- artifacts in the trash, as the other views do.

CREATE VIEW lamin.annotations WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature,
       x.registry, x.record_uid, x.name, x.ontology_id, a.id AS artifact_id
FROM (
    SELECT l.artifact_id, l.feature_id, 'lamin.ulabel'::text AS registry, u.uid AS record_uid, u.name,
           NULL::text AS ontology_id
    FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
    UNION ALL
    SELECT t.artifact_id, t.feature_id, t.registry, t.uid, t.name, t.ontology_id
    FROM bionty.artifact_terms t
) x
JOIN lamin.artifact a ON a.id = x.artifact_id
LEFT JOIN lamin.feature f ON f.id = x.feature_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.annotations IS 'Every annotation of an artifact with a label (lamin.ulabel or a bionty registry), by uid: e.g. the latest artifacts annotated with any T cell: WHERE is_latest AND ontology_id IN (SELECT ontology_id FROM bionty.descendants(''CL:0000084'', include_self => true)).';
COMMENT ON COLUMN lamin.annotations.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.annotations.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.annotations.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.annotations.is_latest IS 'Whether the artifact is the newest version of its family.';
COMMENT ON COLUMN lamin.annotations.feature IS 'The feature the label is a value of, or NULL for a label linked without one.';
COMMENT ON COLUMN lamin.annotations.registry IS 'The registry of the label, e.g. lamin.ulabel, bionty.cell_type.';
COMMENT ON COLUMN lamin.annotations.record_uid IS 'uid of the label record.';
COMMENT ON COLUMN lamin.annotations.name IS 'Name of the label (genes: symbol).';
COMMENT ON COLUMN lamin.annotations.ontology_id IS 'Public id of the label: ontology id, Ensembl gene id, UniProtKB accession; NULL for ulabels and cell markers.';
COMMENT ON COLUMN lamin.annotations.artifact_id IS 'Internal id of the artifact (joins lamin.artifact).';

CREATE VIEW lamin.feature_values WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature, f.dtype,
       NULL::text AS registry,
       CASE WHEN jsonb_typeof(v.value) = 'string' THEN v.value #>> '{}' ELSE v.value::text END AS value_text,
       v.value_number::numeric AS value_number, v.value_boolean, v.value_date, v.value_timestamp,
       v.value, a.id AS artifact_id
FROM lamin.artifact_feature_value v
JOIN lamin.artifact a ON a.id = v.artifact_id
JOIN lamin.feature f ON f.id = v.feature_id
WHERE a.branch_id <> -1
UNION ALL
SELECT a.uid, a.key, a.version, a.is_latest, f.name, f.dtype, x.registry, x.name, NULL, NULL, NULL, NULL,
       to_jsonb(x.name), a.id
FROM (
    SELECT l.artifact_id, l.feature_id, 'lamin.ulabel'::text AS registry, u.name
    FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
    UNION ALL
    SELECT t.artifact_id, t.feature_id, t.registry, t.name FROM bionty.artifact_terms t
) x
JOIN lamin.artifact a ON a.id = x.artifact_id
JOIN lamin.feature f ON f.id = x.feature_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.feature_values IS 'Every feature value of an artifact, typed: numbers in value_number, text and labels in value_text, booleans, dates and timestamps in their columns (value_number numeric, as in 0.5.0; an index range scan needs lamin.artifact_values, whose value_number is the indexed double precision, or lamin.find_artifacts); e.g. artifacts where n_genes > 100: WHERE feature = ''n_genes'' AND value_number > 100.';
COMMENT ON COLUMN lamin.feature_values.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.feature_values.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.feature_values.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.feature_values.is_latest IS 'Whether the artifact is the newest version of its family.';
COMMENT ON COLUMN lamin.feature_values.feature IS 'Name of the feature.';
COMMENT ON COLUMN lamin.feature_values.dtype IS 'dtype of the feature.';
COMMENT ON COLUMN lamin.feature_values.registry IS 'For a label: its registry (see lamin.annotations); NULL for a plain value.';
COMMENT ON COLUMN lamin.feature_values.value_text IS 'The value as text (strings, the names of labels; other values in JSON form).';
COMMENT ON COLUMN lamin.feature_values.value_number IS 'The value of a numeric feature (int, float, num).';
COMMENT ON COLUMN lamin.feature_values.value_boolean IS 'The value of a bool feature.';
COMMENT ON COLUMN lamin.feature_values.value_date IS 'The value of a date feature.';
COMMENT ON COLUMN lamin.feature_values.value_timestamp IS 'The value of a datetime feature.';
COMMENT ON COLUMN lamin.feature_values.value IS 'The value as stored (JSON).';
COMMENT ON COLUMN lamin.feature_values.artifact_id IS 'Internal id of the artifact (joins lamin.artifact).';

CREATE VIEW lamin.run_artifacts WITH (security_invoker = true) AS
SELECT r.uid AS run_uid, t.key AS transform_key, r.status AS run_status, r.started_at, x.direction,
       a.uid AS artifact_uid, a.key, a.version, a.is_latest
FROM (
    SELECT i.run_id, i.artifact_id, 'input'::text AS direction FROM lamin.run_input_artifact i
    UNION ALL
    SELECT o.run_id, o.id, 'output' FROM lamin.artifact o WHERE o.run_id IS NOT NULL
    UNION ALL
    SELECT rr.run_id, rr.artifact_id, 'recreated' FROM lamin.artifact_recreating_run rr
) x
JOIN lamin.run r ON r.id = x.run_id
JOIN lamin.transform t ON t.id = r.transform_id
JOIN lamin.artifact a ON a.id = x.artifact_id
WHERE r.branch_id <> -1 AND a.branch_id <> -1;
COMMENT ON VIEW lamin.run_artifacts IS 'Every run with the artifacts it read (input), wrote (output) and saved again as known content (recreated): e.g. the runs of a transform with their inputs and outputs: WHERE transform_key = ''pipelines/qc.py''.';
COMMENT ON COLUMN lamin.run_artifacts.run_uid IS 'uid of the run.';
COMMENT ON COLUMN lamin.run_artifacts.transform_key IS 'Key of the run''s transform.';
COMMENT ON COLUMN lamin.run_artifacts.run_status IS 'Status of the run: started, completed, errored, aborted.';
COMMENT ON COLUMN lamin.run_artifacts.started_at IS 'When the run started.';
COMMENT ON COLUMN lamin.run_artifacts.direction IS 'input (read by the run), output (created by it) or recreated (saved by it as content already stored).';
COMMENT ON COLUMN lamin.run_artifacts.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.run_artifacts.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.run_artifacts.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.run_artifacts.is_latest IS 'Whether the artifact is the newest version of its family.';

CREATE VIEW lamin.trash WITH (security_invoker = true) AS
SELECT 'lamin.artifact'::text AS registry, a.uid, coalesce(a.key, a.description) AS label, sp.name AS space, a.updated_at
FROM lamin.artifact a JOIN lamin.space sp ON sp.id = a.space_id WHERE a.branch_id = -1
UNION ALL
SELECT 'lamin.collection', c.uid, coalesce(c.key, c.description), sp.name, c.updated_at
FROM lamin.collection c JOIN lamin.space sp ON sp.id = c.space_id WHERE c.branch_id = -1
UNION ALL
SELECT 'lamin.transform', t.uid, coalesce(t.key, t.description), sp.name, t.updated_at
FROM lamin.transform t JOIN lamin.space sp ON sp.id = t.space_id WHERE t.branch_id = -1
UNION ALL
SELECT 'lamin.run', r.uid, r.name, sp.name, coalesce(r.finished_at, r.started_at)
FROM lamin.run r JOIN lamin.space sp ON sp.id = r.space_id WHERE r.branch_id = -1
UNION ALL
SELECT 'lamin.feature', f.uid, f.name, sp.name, f.updated_at
FROM lamin.feature f JOIN lamin.space sp ON sp.id = f.space_id WHERE f.branch_id = -1
UNION ALL
SELECT 'lamin.schema', s.uid, s.name, sp.name, s.updated_at
FROM lamin.schema s JOIN lamin.space sp ON sp.id = s.space_id WHERE s.branch_id = -1
UNION ALL
SELECT 'lamin.ulabel', u.uid, u.name, sp.name, u.updated_at
FROM lamin.ulabel u JOIN lamin.space sp ON sp.id = u.space_id WHERE u.branch_id = -1;
COMMENT ON VIEW lamin.trash IS 'Records in the trash (lamin.delete once): lamin.restore(uid) brings one back, lamin.delete(uid) again deletes it for good.';
COMMENT ON COLUMN lamin.trash.registry IS 'The registry of the record.';
COMMENT ON COLUMN lamin.trash.uid IS 'uid of the record.';
COMMENT ON COLUMN lamin.trash.label IS 'Key, name or description of the record.';
COMMENT ON COLUMN lamin.trash.space IS 'Name of the space of the record.';
COMMENT ON COLUMN lamin.trash.updated_at IS 'Last change (for a record trashed and not changed since: when it was trashed).';

-- The typed values of one kind of record each, without labels: plain
-- columns of one table, so that WHERE feature = 'A' AND value_number > x (or
-- value_text = 'x', value_date >= ...) is a range scan of that column's
-- (feature_id, value, owner) index.
CREATE VIEW lamin.artifact_values WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature, f.dtype,
       v.value_text, v.value_number, v.value_boolean, v.value_date, v.value_timestamp, v.value,
       a.id AS artifact_id
FROM lamin.artifact_feature_value v
JOIN lamin.artifact a ON a.id = v.artifact_id
JOIN lamin.feature f ON f.id = v.feature_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.artifact_values IS 'The non-categorical feature values of artifacts, typed and indexed (labels: lamin.annotations): e.g. artifacts where temperature > 37: WHERE feature = ''temperature'' AND value_number > 37.';
COMMENT ON COLUMN lamin.artifact_values.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.artifact_values.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.artifact_values.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.artifact_values.is_latest IS 'Whether the artifact is the newest version of its family.';
COMMENT ON COLUMN lamin.artifact_values.feature IS 'Name of the feature.';
COMMENT ON COLUMN lamin.artifact_values.dtype IS 'dtype of the feature.';
COMMENT ON COLUMN lamin.artifact_values.value_text IS 'The value of a str, url or path feature.';
COMMENT ON COLUMN lamin.artifact_values.value_number IS 'The value of a numeric feature (int, float, num).';
COMMENT ON COLUMN lamin.artifact_values.value_boolean IS 'The value of a bool feature.';
COMMENT ON COLUMN lamin.artifact_values.value_date IS 'The value of a date feature.';
COMMENT ON COLUMN lamin.artifact_values.value_timestamp IS 'The value of a datetime feature.';
COMMENT ON COLUMN lamin.artifact_values.value IS 'The value as stored (canonical JSON; dicts only here).';
COMMENT ON COLUMN lamin.artifact_values.artifact_id IS 'Internal id of the artifact (joins lamin.artifact, lamin.annotations).';

CREATE VIEW lamin.collection_values WITH (security_invoker = true) AS
SELECT c.uid AS collection_uid, c.key, c.version, c.is_latest, f.name AS feature, f.dtype,
       v.value_text, v.value_number, v.value_boolean, v.value_date, v.value_timestamp, v.value,
       c.id AS collection_id
FROM lamin.collection_feature_value v
JOIN lamin.collection c ON c.id = v.collection_id
JOIN lamin.feature f ON f.id = v.feature_id
WHERE c.branch_id <> -1;
COMMENT ON VIEW lamin.collection_values IS 'The feature values of collections, typed and indexed, categorical ones by name in value_text: e.g. WHERE feature = ''experiment'' AND value_text = ''Exp 1''.';
COMMENT ON COLUMN lamin.collection_values.collection_uid IS 'uid of the collection.';
COMMENT ON COLUMN lamin.collection_values.key IS 'Key of the collection.';
COMMENT ON COLUMN lamin.collection_values.version IS 'Version tag of the collection, if one was given.';
COMMENT ON COLUMN lamin.collection_values.is_latest IS 'Whether the collection is the newest version of its family.';
COMMENT ON COLUMN lamin.collection_values.feature IS 'Name of the feature.';
COMMENT ON COLUMN lamin.collection_values.dtype IS 'dtype of the feature.';
COMMENT ON COLUMN lamin.collection_values.value_text IS 'The value of a str, url, path or categorical feature.';
COMMENT ON COLUMN lamin.collection_values.value_number IS 'The value of a numeric feature (int, float, num).';
COMMENT ON COLUMN lamin.collection_values.value_boolean IS 'The value of a bool feature.';
COMMENT ON COLUMN lamin.collection_values.value_date IS 'The value of a date feature.';
COMMENT ON COLUMN lamin.collection_values.value_timestamp IS 'The value of a datetime feature.';
COMMENT ON COLUMN lamin.collection_values.value IS 'The value as stored (canonical JSON).';
COMMENT ON COLUMN lamin.collection_values.collection_id IS 'Internal id of the collection (joins lamin.collection).';

CREATE VIEW lamin.run_values WITH (security_invoker = true) AS
SELECT r.uid AS run_uid, t.key AS transform_key, r.status AS run_status, r.started_at, f.name AS feature, f.dtype,
       v.value_text, v.value_number, v.value_boolean, v.value_date, v.value_timestamp, v.value,
       r.id AS run_id
FROM lamin.run_feature_value v
JOIN lamin.run r ON r.id = v.run_id
JOIN lamin.transform t ON t.id = r.transform_id
JOIN lamin.feature f ON f.id = v.feature_id
WHERE r.branch_id <> -1;
COMMENT ON VIEW lamin.run_values IS 'The feature values of runs (run parameters that name a feature, lamin.add_values), typed and indexed: e.g. runs with learning_rate < 0.01: WHERE feature = ''learning_rate'' AND value_number < 0.01.';
COMMENT ON COLUMN lamin.run_values.run_uid IS 'uid of the run.';
COMMENT ON COLUMN lamin.run_values.transform_key IS 'Key of the run''s transform.';
COMMENT ON COLUMN lamin.run_values.run_status IS 'Status of the run: started, completed, errored, aborted.';
COMMENT ON COLUMN lamin.run_values.started_at IS 'When the run started.';
COMMENT ON COLUMN lamin.run_values.feature IS 'Name of the feature.';
COMMENT ON COLUMN lamin.run_values.dtype IS 'dtype of the feature.';
COMMENT ON COLUMN lamin.run_values.value_text IS 'The value of a str, url, path or categorical feature.';
COMMENT ON COLUMN lamin.run_values.value_number IS 'The value of a numeric feature (int, float, num).';
COMMENT ON COLUMN lamin.run_values.value_boolean IS 'The value of a bool feature.';
COMMENT ON COLUMN lamin.run_values.value_date IS 'The value of a date feature.';
COMMENT ON COLUMN lamin.run_values.value_timestamp IS 'The value of a datetime feature.';
COMMENT ON COLUMN lamin.run_values.value IS 'The value as stored (canonical JSON).';
COMMENT ON COLUMN lamin.run_values.run_id IS 'Internal id of the run (joins lamin.run).';

GRANT SELECT ON lamin.annotations, lamin.feature_values, lamin.run_artifacts, lamin.trash TO lamin_reader;
GRANT SELECT ON lamin.artifact_values, lamin.collection_values, lamin.run_values TO lamin_reader;
