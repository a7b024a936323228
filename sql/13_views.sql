-- Flattened, read-only views for people and BI tools. They hide the trash;
-- query the tables for everything.

CREATE VIEW lamin.artifacts AS
SELECT a.uid, a.key, a.description, a.version, a.is_latest, a.suffix, a.kind, a.otype, a.size, a.hash, a.hash_type,
       a.n_files, a.n_observations, a.status, s.root AS storage_root, lamin.artifact_path(a) AS path,
       r.uid AS run_uid, t.key AS transform_key, b.name AS branch, sp.name AS space, u.handle AS created_by,
       a.created_at, a.updated_at, a.status_detail, a.checked_at
FROM lamin.artifact a
JOIN lamin.storage s ON s.id = a.storage_id
JOIN lamin.branch b ON b.id = a.branch_id
JOIN lamin.space sp ON sp.id = a.space_id
JOIN lamin."user" u ON u.id = a.created_by
LEFT JOIN lamin.run r ON r.id = a.run_id
LEFT JOIN lamin.transform t ON t.id = r.transform_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.artifacts IS 'Artifacts not in the trash, with storage, path, creating run and transform, space and creator.';
COMMENT ON COLUMN lamin.artifacts.uid IS '20-character uid (16-character version family stem + 4-character version counter).';
COMMENT ON COLUMN lamin.artifacts.key IS 'Path-like name of the artifact.';
COMMENT ON COLUMN lamin.artifacts.description IS 'Free-text description.';
COMMENT ON COLUMN lamin.artifacts.version IS 'Version tag, if one was given.';
COMMENT ON COLUMN lamin.artifacts.is_latest IS 'Whether this is the newest version of its family.';
COMMENT ON COLUMN lamin.artifacts.suffix IS 'File suffix, e.g. .parquet.';
COMMENT ON COLUMN lamin.artifacts.kind IS 'dataset, model, ...';
COMMENT ON COLUMN lamin.artifacts.otype IS 'Object type: DataFrame, AnnData, ...';
COMMENT ON COLUMN lamin.artifacts.size IS 'Size in bytes.';
COMMENT ON COLUMN lamin.artifacts.hash IS 'sha256 (hex) of the full content.';
COMMENT ON COLUMN lamin.artifacts.hash_type IS 'sha256 (file) or sha256-dir (folder).';
COMMENT ON COLUMN lamin.artifacts.n_files IS 'Number of files of a folder artifact.';
COMMENT ON COLUMN lamin.artifacts.n_observations IS 'Number of rows / observations, where known.';
COMMENT ON COLUMN lamin.artifacts.status IS 'pending, ready, failed or corrupt.';
COMMENT ON COLUMN lamin.artifacts.status_detail IS 'Why the artifact is pending, failed or corrupt.';
COMMENT ON COLUMN lamin.artifacts.checked_at IS 'When lamin.verify last re-read the bytes.';
COMMENT ON COLUMN lamin.artifacts.storage_root IS 'Root of the storage holding the bytes.';
COMMENT ON COLUMN lamin.artifacts.path IS 'Full path or URI of the bytes.';
COMMENT ON COLUMN lamin.artifacts.run_uid IS 'uid of the run that created the artifact.';
COMMENT ON COLUMN lamin.artifacts.transform_key IS 'Key of the transform of that run.';
COMMENT ON COLUMN lamin.artifacts.branch IS 'main or archive.';
COMMENT ON COLUMN lamin.artifacts.space IS 'Name of the space (access scope).';
COMMENT ON COLUMN lamin.artifacts.created_by IS 'Handle (database role) of the creator.';
COMMENT ON COLUMN lamin.artifacts.created_at IS 'When the record was created.';
COMMENT ON COLUMN lamin.artifacts.updated_at IS 'When the record was last changed.';

CREATE VIEW lamin.collections AS
SELECT c.uid, c.key, c.description, c.version, c.is_latest, c.hash,
       -- Members the reader can see (the join applies the artifact's
       -- row-level security): a count never tells of hidden records.
       (SELECT count(*) FROM lamin.collection_artifact m JOIN lamin.artifact a ON a.id = m.artifact_id
        WHERE m.collection_id = c.id) AS n_artifacts,
       r.uid AS run_uid, b.name AS branch, sp.name AS space, u.handle AS created_by, c.created_at
FROM lamin.collection c
JOIN lamin.branch b ON b.id = c.branch_id
JOIN lamin.space sp ON sp.id = c.space_id
JOIN lamin."user" u ON u.id = c.created_by
LEFT JOIN lamin.run r ON r.id = c.run_id
WHERE c.branch_id <> -1;
COMMENT ON VIEW lamin.collections IS 'Collections not in the trash, with member count, creating run, space and creator.';
COMMENT ON COLUMN lamin.collections.uid IS '20-character uid.';
COMMENT ON COLUMN lamin.collections.key IS 'Name of the collection.';
COMMENT ON COLUMN lamin.collections.description IS 'Free-text description.';
COMMENT ON COLUMN lamin.collections.version IS 'Version tag, if one was given.';
COMMENT ON COLUMN lamin.collections.is_latest IS 'Whether this is the newest version of its family.';
COMMENT ON COLUMN lamin.collections.hash IS 'sha256 of the sorted member hashes.';
COMMENT ON COLUMN lamin.collections.n_artifacts IS 'Number of member artifacts the reader can see.';
COMMENT ON COLUMN lamin.collections.run_uid IS 'uid of the run that created the collection.';
COMMENT ON COLUMN lamin.collections.branch IS 'main or archive.';
COMMENT ON COLUMN lamin.collections.space IS 'Name of the space.';
COMMENT ON COLUMN lamin.collections.created_by IS 'Handle of the creator.';
COMMENT ON COLUMN lamin.collections.created_at IS 'When the record was created.';

CREATE VIEW lamin.transforms AS
SELECT t.uid, t.key, t.description, t.version, t.is_latest, t.kind, t.hash, t.reference,
       (SELECT count(*) FROM lamin.run r WHERE r.transform_id = t.id) AS n_runs,
       b.name AS branch, sp.name AS space, u.handle AS created_by, t.created_at
FROM lamin.transform t
JOIN lamin.branch b ON b.id = t.branch_id
JOIN lamin.space sp ON sp.id = t.space_id
JOIN lamin."user" u ON u.id = t.created_by
WHERE t.branch_id <> -1;
COMMENT ON VIEW lamin.transforms IS 'Transforms not in the trash, with their number of runs.';
COMMENT ON COLUMN lamin.transforms.uid IS '16-character uid (12-character stem + version counter).';
COMMENT ON COLUMN lamin.transforms.key IS 'Name of the transform, e.g. pipelines/qc.py.';
COMMENT ON COLUMN lamin.transforms.description IS 'Free-text description.';
COMMENT ON COLUMN lamin.transforms.version IS 'Version tag, if one was given.';
COMMENT ON COLUMN lamin.transforms.is_latest IS 'Whether this is the newest version of its family.';
COMMENT ON COLUMN lamin.transforms.kind IS 'pipeline, notebook, script, function, ...';
COMMENT ON COLUMN lamin.transforms.hash IS 'sha256 of the source code.';
COMMENT ON COLUMN lamin.transforms.reference IS 'External reference (URL, commit).';
COMMENT ON COLUMN lamin.transforms.n_runs IS 'Number of runs.';
COMMENT ON COLUMN lamin.transforms.branch IS 'main or archive.';
COMMENT ON COLUMN lamin.transforms.space IS 'Name of the space.';
COMMENT ON COLUMN lamin.transforms.created_by IS 'Handle of the creator.';
COMMENT ON COLUMN lamin.transforms.created_at IS 'When the record was created.';

CREATE VIEW lamin.runs AS
SELECT r.uid, t.uid AS transform_uid, t.key AS transform_key, r.status, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.params,
       (SELECT count(*) FROM lamin.run_input_artifact i JOIN lamin.artifact a ON a.id = i.artifact_id
        WHERE i.run_id = r.id) AS n_input_artifacts,
       (SELECT count(*) FROM lamin.artifact a WHERE a.run_id = r.id) AS n_output_artifacts,
       b.name AS branch, sp.name AS space, u.handle AS created_by, r.created_at
FROM lamin.run r
JOIN lamin.transform t ON t.id = r.transform_id
JOIN lamin.branch b ON b.id = r.branch_id
JOIN lamin.space sp ON sp.id = r.space_id
JOIN lamin."user" u ON u.id = r.created_by
WHERE r.branch_id <> -1;
COMMENT ON VIEW lamin.runs IS 'Runs not in the trash, with transform, duration and input/output counts.';
COMMENT ON COLUMN lamin.runs.uid IS '20-character uid.';
COMMENT ON COLUMN lamin.runs.transform_uid IS 'uid of the transform run.';
COMMENT ON COLUMN lamin.runs.transform_key IS 'Key of the transform.';
COMMENT ON COLUMN lamin.runs.status IS 'started, completed, errored, aborted, ...';
COMMENT ON COLUMN lamin.runs.started_at IS 'Start time.';
COMMENT ON COLUMN lamin.runs.finished_at IS 'End time, NULL while running.';
COMMENT ON COLUMN lamin.runs.duration IS 'finished_at - started_at.';
COMMENT ON COLUMN lamin.runs.params IS 'Parameters as JSON.';
COMMENT ON COLUMN lamin.runs.n_input_artifacts IS 'Artifacts read by the run.';
COMMENT ON COLUMN lamin.runs.n_output_artifacts IS 'Artifacts created by the run.';
COMMENT ON COLUMN lamin.runs.branch IS 'main or archive.';
COMMENT ON COLUMN lamin.runs.space IS 'Name of the space.';
COMMENT ON COLUMN lamin.runs.created_by IS 'Handle of the creator.';
COMMENT ON COLUMN lamin.runs.created_at IS 'When the record was created.';

CREATE VIEW lamin.features AS
SELECT f.uid, f.name, f.dtype, f.unit, f.description, f.synonyms, f.nullable, sp.name AS space, u.handle AS created_by, f.created_at
FROM lamin.feature f
JOIN lamin.space sp ON sp.id = f.space_id
JOIN lamin."user" u ON u.id = f.created_by
WHERE f.branch_id <> -1;
COMMENT ON VIEW lamin.features IS 'Features not in the trash.';
COMMENT ON COLUMN lamin.features.uid IS '12-character uid.';
COMMENT ON COLUMN lamin.features.name IS 'Feature name.';
COMMENT ON COLUMN lamin.features.dtype IS 'Data type, e.g. int or cat[lamin.ulabel].';
COMMENT ON COLUMN lamin.features.unit IS 'Unit of measurement.';
COMMENT ON COLUMN lamin.features.description IS 'Free-text description.';
COMMENT ON COLUMN lamin.features.synonyms IS 'Other names.';
COMMENT ON COLUMN lamin.features.nullable IS 'Whether values may be missing.';
COMMENT ON COLUMN lamin.features.space IS 'Name of the space.';
COMMENT ON COLUMN lamin.features.created_by IS 'Handle of the creator.';
COMMENT ON COLUMN lamin.features.created_at IS 'When the record was created.';

CREATE VIEW lamin.schemas AS
SELECT s.uid, s.name, s.description, s.itype, s.n_members, s.is_ordered, s.hash,
       (SELECT array_agg(f.name ORDER BY sf.position) FROM lamin.schema_feature sf JOIN lamin.feature f ON f.id = sf.feature_id
        WHERE sf.schema_id = s.id) AS features,
       sp.name AS space, u.handle AS created_by, s.created_at
FROM lamin.schema s
JOIN lamin.space sp ON sp.id = s.space_id
JOIN lamin."user" u ON u.id = s.created_by
WHERE s.branch_id <> -1;
COMMENT ON VIEW lamin.schemas IS 'Schemas (feature sets) not in the trash, with their feature names in order.';
COMMENT ON COLUMN lamin.schemas.uid IS '16-character uid.';
COMMENT ON COLUMN lamin.schemas.name IS 'Schema name.';
COMMENT ON COLUMN lamin.schemas.description IS 'Free-text description.';
COMMENT ON COLUMN lamin.schemas.itype IS 'Registry of the members.';
COMMENT ON COLUMN lamin.schemas.n_members IS 'Number of members.';
COMMENT ON COLUMN lamin.schemas.is_ordered IS 'Whether member order matters.';
COMMENT ON COLUMN lamin.schemas.hash IS 'Hash of the members.';
COMMENT ON COLUMN lamin.schemas.features IS 'Member feature names in order.';
COMMENT ON COLUMN lamin.schemas.space IS 'Name of the space.';
COMMENT ON COLUMN lamin.schemas.created_by IS 'Handle of the creator.';
COMMENT ON COLUMN lamin.schemas.created_at IS 'When the record was created.';

CREATE VIEW lamin.ulabels AS
SELECT l.uid, l.name, l.description, l.synonyms, l.is_type, t.name AS type,
       (SELECT array_agg(p.name ORDER BY p.name) FROM lamin.ulabel_parent e JOIN lamin.ulabel p ON p.id = e.parent_id
        WHERE e.ulabel_id = l.id) AS parents,
       sp.name AS space, u.handle AS created_by, l.created_at
FROM lamin.ulabel l
LEFT JOIN lamin.ulabel t ON t.id = l.type_id
JOIN lamin.space sp ON sp.id = l.space_id
JOIN lamin."user" u ON u.id = l.created_by
WHERE l.branch_id <> -1;
COMMENT ON VIEW lamin.ulabels IS 'ULabels not in the trash, with type and parent names.';
COMMENT ON COLUMN lamin.ulabels.uid IS '8-character uid.';
COMMENT ON COLUMN lamin.ulabels.name IS 'Label name.';
COMMENT ON COLUMN lamin.ulabels.description IS 'Free-text description.';
COMMENT ON COLUMN lamin.ulabels.synonyms IS 'Other names.';
COMMENT ON COLUMN lamin.ulabels.is_type IS 'Whether this label is a type of other labels.';
COMMENT ON COLUMN lamin.ulabels.type IS 'Name of the label''s type.';
COMMENT ON COLUMN lamin.ulabels.parents IS 'Names of parent labels.';
COMMENT ON COLUMN lamin.ulabels.space IS 'Name of the space.';
COMMENT ON COLUMN lamin.ulabels.created_by IS 'Handle of the creator.';
COMMENT ON COLUMN lamin.ulabels.created_at IS 'When the record was created.';

-- Columns every registry shares get one standard comment each (where no
-- specific comment was written above).
DO $$
DECLARE
    col record;
    standard jsonb := jsonb_build_object(
        'id', 'Internal id; refer to records by uid.',
        'uid', 'Random base62 id.',
        'name', 'Name.',
        'description', 'Free-text description.',
        'created_at', 'When the record was created.',
        'created_by', 'The lamin user (lamin.user.id) who created the record.',
        'updated_at', 'When the record was last changed.',
        'space_id', 'The space (access scope) of the record (lamin.space.id).',
        'branch_id', '1 main, 0 archive, -1 trash (lamin.branch.id).',
        'is_locked', 'Locked records can only be changed by space admins.',
        'run_id', 'The run (lamin.run.id).',
        'artifact_id', 'The artifact (lamin.artifact.id).',
        'collection_id', 'The collection (lamin.collection.id).',
        'feature_id', 'The feature (lamin.feature.id).',
        'schema_id', 'The schema (lamin.schema.id).',
        'ulabel_id', 'The label (lamin.ulabel.id).',
        'parent_id', 'The parent label (lamin.ulabel.id).',
        'transform_id', 'The transform (lamin.transform.id).',
        'reference', 'External reference (URL, accession, commit).',
        'reference_type', 'Kind of the external reference.',
        'value', 'The value, as JSON typed by the feature''s dtype.',
        'slot', 'The part of the artifact the schema describes: columns, obs, var, ...',
        'position', '0-based position.',
        'synonyms', 'Other names.',
        'version', 'Version tag chosen by the user, unique within the version family.',
        'is_latest', 'True for exactly one record of each version family: the newest not in the trash.',
        'stem', 'The version family: the uid without its 4-character version counter.',
        'hash', 'sha256 (hex) content hash.',
        'key', 'Path-like name.',
        'source_code', 'Source code of the transform.',
        'started_at', 'Start time.',
        'finished_at', 'End time; NULL while running.',
        'status', 'State of the record.',
        'params', 'Parameters as JSON.',
        'unit', 'Unit of measurement.',
        'nullable', 'Whether values may be missing.',
        'itype', 'Registry of the members.',
        'n_members', 'Number of members.',
        'minimal_set', 'Validated data must contain at least these members.',
        'maximal_set', 'Validated data may contain no other members.',
        'is_ordered', 'Whether member order matters.',
        'is_type', 'Whether this label is a type of other labels.',
        'type_id', 'The type of this label (a ulabel with is_type).',
        'handle', 'The database role name.',
        'initiated_by_run_id', 'The run that started this one.'
    );
BEGIN
    FOR col IN
        SELECT c.oid::regclass AS tbl, a.attname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = 'lamin' AND c.relkind IN ('r', 'v')
          AND col_description(c.oid, a.attnum) IS NULL
          AND standard ? a.attname
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', col.tbl, col.attname, standard ->> col.attname::text);
    END LOOP;
END
$$;
