\echo Use "ALTER EXTENSION lamin UPDATE TO '0.12.0'" to load this file. \quit
-- lamin 0.11.0 → 0.12.0. Run by ALTER EXTENSION lamin UPDATE in one
-- transaction (all or nothing). Definitions are copied verbatim from sql/
-- (the upgrade test compares the result with a fresh install object by
-- object).

-- == issue 21: read replicas — what needs a write says so on a standby (sql/08_save.sql, sql/31_instances.sql) ==
CREATE FUNCTION lamin.refuse_read_only(what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION '% needs a writable server, and this one is a read-only standby', what
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'run it on the primary (a connection string listing every host with target_session_attrs=read-write reaches it); reads work here';
    ELSIF current_setting('transaction_read_only')::boolean THEN
        RAISE EXCEPTION '% needs a writable transaction, and this one is READ ONLY', what
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'run it in a read-write transaction (is default_transaction_read_only on?)';
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.refuse_read_only(text) IS
    'Raise a clear error (SQLSTATE 25006) naming what needed a write when this is a read-only standby or a READ ONLY transaction.';

-- Read an artifact's record (by uid or stem). While a run is tracked, the
-- artifact is recorded as an input of the run, unless the run created it.
CREATE OR REPLACE FUNCTION lamin.get(uid text) RETURNS lamin.artifact
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec lamin.artifact;
    run bigint := lamin.current_run_id();
BEGIN
    SELECT * INTO rec FROM lamin.artifact a WHERE a.id = lamin.artifact_id(uid);
    IF run IS NOT NULL AND rec.run_id IS DISTINCT FROM run THEN
        PERFORM lamin.refuse_read_only(format('recording artifact %s as an input of the current run', rec.uid));
        INSERT INTO lamin.run_input_artifact (run_id, artifact_id) VALUES (run, rec.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN rec;
END
$$;

CREATE OR REPLACE FUNCTION lamin.get_collection(uid text) RETURNS lamin.collection
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec lamin.collection;
    run bigint := lamin.current_run_id();
BEGIN
    SELECT * INTO rec FROM lamin.collection c WHERE c.id = lamin.collection_id(uid);
    IF run IS NOT NULL AND rec.run_id IS DISTINCT FROM run THEN
        PERFORM lamin.refuse_read_only(format('recording collection %s as an input of the current run', rec.uid));
        INSERT INTO lamin.run_input_collection (run_id, collection_id) VALUES (run, rec.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN rec;
END
$$;

CREATE OR REPLACE FUNCTION lamin.instance() RETURNS lamin.instance
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me lamin.instance;
BEGIN
    SELECT * INTO me FROM lamin.instance;
    IF NOT FOUND THEN
        -- (A standby cannot make it: its uid must be the primary's.)
        PERFORM lamin.refuse_read_only('giving this instance its identity (its first lamin.instance() call)');
        INSERT INTO lamin.instance (name)
        VALUES (CASE WHEN current_database() ~ '^[a-z][a-z0-9_]{0,62}$' THEN current_database() ELSE 'instance' END)
        ON CONFLICT (one) DO NOTHING;
        SELECT * INTO me FROM lamin.instance;
    END IF;
    RETURN me;
END
$$;

-- == issue 21: a job asked of a standby says where it can be queued (sql/18_jobs.sql) ==
CREATE OR REPLACE FUNCTION lamin.enqueue(kind text, args jsonb DEFAULT '{}', max_attempts int DEFAULT 5) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lamin.job_kind k WHERE k.kind = enqueue.kind) THEN
        RAISE EXCEPTION 'unknown job kind %: known kinds are %', quote_literal(kind),
            (SELECT string_agg(k.kind, ', ' ORDER BY k.kind) FROM lamin.job_kind k)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Work asked of a standby (validate_artifact, stage, verify, …) says
    -- where it can be queued, instead of failing inside the INSERT.
    PERFORM lamin.refuse_read_only(format('queuing a %s job', kind));
    INSERT INTO lamin.job (kind, args, max_attempts) VALUES (kind, coalesce(args, '{}'), max_attempts)
    RETURNING id INTO job_id;
    RETURN job_id;
END
$$;

-- == issue 22: MuData datasets validate against composite schemas (sql/25_validation.sql) ==
CREATE OR REPLACE FUNCTION lamin.schema_definition(ref text, data_otype text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH root AS (
        SELECT s.* FROM lamin.schema s WHERE s.id = lamin.schema_id(ref)
    ), slot AS (
        SELECT c.slot, x.* FROM root r JOIN lamin.schema_component c ON c.composite_id = r.id
        JOIN lamin.schema x ON x.id = c.component_id
        UNION ALL
        SELECT CASE WHEN coalesce(r.otype, data_otype) IN ('AnnData', 'MuData') THEN 'obs' ELSE 'columns' END, r.*
        FROM root r WHERE NOT EXISTS (SELECT FROM lamin.schema_component c WHERE c.composite_id = r.id)
    )
    SELECT jsonb_build_object(
        'uid', r.uid, 'name', r.name, 'otype', r.otype, 'coerce', r.coerce,
        'slots', (SELECT coalesce(jsonb_agg(jsonb_build_object(
            'slot', sl.slot,
            'frame', regexp_replace(sl.slot, '\.T$', ''),
            'members', CASE WHEN sl.slot LIKE '%.T' THEN 'index' ELSE 'columns' END,
            'schema', sl.uid,
            'itype', sl.itype,
            'registry', CASE WHEN sl.itype <> 'lamin.feature' THEN array_to_string((string_to_array(sl.itype, '.'))[1:2], '.') END,
            'field', CASE WHEN sl.itype <> 'lamin.feature'
                          THEN coalesce((string_to_array(sl.itype, '.'))[3],
                                        (SELECT g.name_field FROM lamin.registry g
                                         WHERE g.name = array_to_string((string_to_array(sl.itype, '.'))[1:2], '.'))) END,
            'minimal_set', sl.minimal_set, 'maximal_set', sl.maximal_set, 'ordered', sl.is_ordered,
            'coerce', sl.coerce OR r.coerce,
            'features', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'name', f.name, 'dtype', f.dtype, 'base', lamin.dtype_base(f.dtype),
                    'registry', lamin.dtype_registry(f.dtype),
                    'field', coalesce(lamin.dtype_field(f.dtype),
                                      (SELECT g.name_field FROM lamin.registry g WHERE g.name = lamin.dtype_registry(f.dtype))),
                    'nullable', f.nullable,
                    'required', sl.minimal_set AND NOT sf.optional,
                    'coerce', f.coerce OR sl.coerce OR r.coerce) ORDER BY sf.position), '[]')
                FROM lamin.schema_feature sf JOIN lamin.feature f ON f.id = sf.feature_id
                WHERE sf.schema_id = sl.id)
        ) ORDER BY sl.slot), '[]') FROM slot sl))
    FROM root r
$$;
COMMENT ON FUNCTION lamin.schema_definition(text, text) IS
    'A schema (by uid or name) as validation reads it: per slot the frame and members to read, the features with dtype, registry, field, nullability, required and coercion. A schema without slots applies to the columns of a table (obs of an AnnData or MuData).';

CREATE OR REPLACE FUNCTION lamin.create_schema_from_columns(name text, frames jsonb, otype text DEFAULT 'DataFrame') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    fr record;
    made jsonb;
    created jsonb := '[]';
    conflicts jsonb := '[]';
    slots jsonb := '{}';
    part text;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'a schema made from a file needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(frames) IS DISTINCT FROM 'object' OR frames = '{}' THEN
        RAISE EXCEPTION 'frames must be a JSON object of frame → columns, e.g. {"columns": [{"name": "n", "dtype": "int"}]}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR fr IN SELECT e.key, e.value FROM jsonb_each(frames) e WHERE jsonb_array_length(e.value) > 0 ORDER BY e.key LOOP
        made := lamin.ensure_features(fr.value);
        created := created || (made -> 'created');
        conflicts := conflicts || (SELECT coalesce(jsonb_agg(c || jsonb_build_object('frame', fr.key)), '[]')
                                   FROM jsonb_array_elements(made -> 'conflicts') c);
        part := lamin.create_schema(ARRAY(SELECT x ->> 'name' FROM jsonb_array_elements(fr.value) WITH ORDINALITY AS e(x, ord) ORDER BY e.ord),
                                    name => CASE WHEN otype IN ('AnnData', 'MuData') THEN name || ' ' || fr.key ELSE name END,
                                    otype => CASE WHEN otype IN ('AnnData', 'MuData') THEN NULL ELSE otype END);
        slots := slots || jsonb_build_object(fr.key, part);
    END LOOP;
    IF slots = '{}' THEN
        RAISE EXCEPTION 'the file has no columns to make a schema of' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF otype IN ('AnnData', 'MuData') THEN
        part := lamin.create_schema(name => name, otype => otype, slots => slots);
    END IF;
    RETURN jsonb_build_object('schema', part, 'created', created, 'conflicts', conflicts);
END
$$;
COMMENT ON FUNCTION lamin.create_schema_from_columns(text, jsonb, text) IS
    'A schema named name from the columns of a sample file ({"columns": [...]}, or {"obs": [...], "var": [...]} of an AnnData, {"obs", "rna:var", ...} of a MuData: a composite); features made when missing. Returns {"schema", "created", "conflicts"}.';

-- == issue 22: the layout of container files (sql/22_tables.sql, sql/12_describe_delete.sql) ==
-- What a container file holds beyond its tables (issue 22): the groups and
-- datasets of an HDF5 file, the elements of a SpatialData store, … as the
-- sidecar read them on save or register. One row per artifact, replaced
-- when the artifact is described again; `lamin.describe` shows it as
-- "layout".
CREATE TABLE lamin.artifact_layout (
    artifact_id bigint PRIMARY KEY REFERENCES lamin.artifact ON DELETE CASCADE,
    format      text NOT NULL CONSTRAINT artifact_layout_format_known CHECK (format IN ('hdf5', 'spatialdata', 'tiledbsoma', 'duckdb')),
    layout      jsonb NOT NULL CONSTRAINT artifact_layout_is_object CHECK (jsonb_typeof(layout) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lamin.artifact_layout IS 'What a container artifact holds (HDF5 groups and datasets, SpatialData elements, TileDB-SOMA arrays, DuckDB tables), as read on save or register.';
COMMENT ON COLUMN lamin.artifact_layout.artifact_id IS 'The artifact.';
COMMENT ON COLUMN lamin.artifact_layout.format IS 'The container format read: hdf5, spatialdata, tiledbsoma, duckdb.';
COMMENT ON COLUMN lamin.artifact_layout.layout IS 'The layout as a JSON object (for hdf5: datasets with path, shape and dtype, groups; for spatialdata: elements by kind, tables; for tiledbsoma: measurements, arrays with stored values, or the folder''s arrays and why no more was read; for duckdb: tables with schema, rows and column types, views).';
COMMENT ON COLUMN lamin.artifact_layout.created_at IS 'When it was read.';
SELECT lamin.secure_table('lamin.artifact_layout', 'link:lamin.artifact:artifact_id');
SELECT pg_catalog.pg_extension_config_dump('lamin.artifact_layout', '');

-- Record what a container artifact holds (the sidecar calls it after reading
-- the file). Returns the layout as stored.
CREATE OR REPLACE FUNCTION lamin.record_layout(artifact_uid text, format text, layout jsonb, otype text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
BEGIN
    INSERT INTO lamin.artifact_layout AS l (artifact_id, format, layout) VALUES (aid, format, layout)
    ON CONFLICT (artifact_id) DO UPDATE SET format = excluded.format, layout = excluded.layout, created_at = now();
    IF otype IS NOT NULL THEN
        UPDATE lamin.artifact a SET otype = record_layout.otype, updated_at = now() WHERE a.id = aid;
    END IF;
    RETURN layout;
END
$$;
COMMENT ON FUNCTION lamin.record_layout(text, text, jsonb, text) IS
    'Record what a container artifact holds (format hdf5, spatialdata, tiledbsoma or duckdb, its layout as JSON) and, when given, its otype; replaces an earlier layout.';

CREATE OR REPLACE FUNCTION lamin.describe_artifact(uid text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (plpgsql: the validations it reads are defined later, in sql/25_validation.sql.)
    RETURN (SELECT jsonb_build_object(
        'uid', a.uid,
        'key', a.key,
        'description', a.description,
        'version', a.version,
        'is_latest', a.is_latest,
        'suffix', a.suffix,
        'kind', a.kind,
        'otype', a.otype,
        'size', a.size,
        'hash', a.hash,
        'hash_type', a.hash_type,
        'n_files', a.n_files,
        'n_observations', a.n_observations,
        'status', a.status,
        'status_detail', a.status_detail,
        'checked_at', a.checked_at,
        'key_is_virtual', a.key_is_virtual,
        'branch', b.name,
        'space', sp.name,
        'created_at', a.created_at,
        'created_by', u.handle,
        'path', lamin.artifact_path(a),
        'storage', jsonb_build_object('uid', s.uid, 'root', s.root, 'type', s.type),
        'versions', (SELECT jsonb_agg(jsonb_build_object('uid', v.uid, 'version', v.version, 'is_latest', v.is_latest,
                                                         'created_at', v.created_at) ORDER BY v.id)
                     FROM lamin.artifact v WHERE v.stem = a.stem AND v.branch_id <> -1),
        'features', coalesce((
            SELECT jsonb_object_agg(fv.name, fv.vals) FROM (
                SELECT f.name, jsonb_agg(x.val ORDER BY x.val) AS vals FROM (
                    SELECT l.feature_id, to_jsonb(ul.name) AS val
                    FROM lamin.artifact_ulabel l JOIN lamin.ulabel ul ON ul.id = l.ulabel_id
                    WHERE l.artifact_id = a.id AND l.feature_id IS NOT NULL
                    UNION ALL
                    SELECT v.feature_id, v.value FROM lamin.artifact_feature_value v WHERE v.artifact_id = a.id
                    UNION ALL
                    SELECT r.feature_id, to_jsonb(r.name) FROM lamin.registry_annotations(a.id) r WHERE r.feature_id IS NOT NULL
                ) x JOIN lamin.feature f ON f.id = x.feature_id
                GROUP BY f.name
            ) fv), '{}'::jsonb),
        'labels', coalesce((
            SELECT jsonb_agg(jsonb_build_object('uid', x.uid, 'name', x.name, 'registry', x.registry, 'feature', f.name)
                             ORDER BY x.registry, x.name)
            FROM (SELECT l.feature_id, 'lamin.ulabel' AS registry, ul.uid, ul.name
                  FROM lamin.artifact_ulabel l JOIN lamin.ulabel ul ON ul.id = l.ulabel_id
                  WHERE l.artifact_id = a.id
                  UNION ALL
                  SELECT r.feature_id, r.registry, r.uid, r.name FROM lamin.registry_annotations(a.id) r) x
            LEFT JOIN lamin.feature f ON f.id = x.feature_id), '[]'::jsonb),
        'schemas', coalesce((
            SELECT jsonb_object_agg(asch.slot, jsonb_build_object(
                'uid', sc.uid, 'name', sc.name, 'itype', sc.itype, 'n_members', sc.n_members,
                'features', (SELECT jsonb_agg(jsonb_build_object('name', f.name, 'dtype', f.dtype) ORDER BY sf.position)
                             FROM lamin.schema_feature sf JOIN lamin.feature f ON f.id = sf.feature_id
                             WHERE sf.schema_id = sc.id)))
            FROM lamin.artifact_schema asch JOIN lamin.schema sc ON sc.id = asch.schema_id
            WHERE asch.artifact_id = a.id), '{}'::jsonb),
        'validated_by_schema', (SELECT jsonb_build_object('uid', sc.uid, 'name', sc.name) FROM lamin.schema sc WHERE sc.id = a.schema_id),
        -- (lamin.artifact_layout is defined later, in sql/22_tables.sql.)
        'layout', (SELECT l.layout || jsonb_build_object('format', l.format) FROM lamin.artifact_layout l WHERE l.artifact_id = a.id),
        'validations', coalesce((
            SELECT jsonb_agg(jsonb_build_object('schema', sc.uid, 'schema_name', sc.name, 'passed', v.passed,
                                                'n_problems', v.n_problems, 'validated_at', v.created_at) ORDER BY v.created_at DESC)
            FROM lamin.validation v JOIN lamin.schema sc ON sc.id = v.schema_id WHERE v.artifact_id = a.id), '[]'::jsonb),
        'lineage', jsonb_build_object(
            'run', (SELECT jsonb_build_object('uid', r.uid, 'status', r.status, 'started_at', r.started_at,
                                              'finished_at', r.finished_at, 'params', r.params)
                    FROM lamin.run r WHERE r.id = a.run_id),
            'transform', (SELECT jsonb_build_object('uid', t.uid, 'key', t.key, 'kind', t.kind, 'version', t.version)
                          FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.id = a.run_id),
            'inputs', coalesce((SELECT jsonb_agg(DISTINCT x.source_uid) FROM lamin.lineage(a.uid) x
                                WHERE x.depth = 2 AND x.source_type IN ('artifact', 'collection')), '[]'::jsonb),
            'n_upstream', (SELECT count(DISTINCT x.source_uid) FROM lamin.lineage(a.uid) x),
            'recreating_runs', (SELECT coalesce(jsonb_agg(r.uid ORDER BY r.id), '[]'::jsonb)
                                FROM lamin.artifact_recreating_run rr JOIN lamin.run r ON r.id = rr.run_id
                                WHERE rr.artifact_id = a.id),
            'used_by_runs', (SELECT count(*) FROM lamin.run_input_artifact i WHERE i.artifact_id = a.id))
    )
    FROM lamin.artifact a
    JOIN lamin.storage s ON s.id = a.storage_id
    JOIN lamin.branch b ON b.id = a.branch_id
    JOIN lamin.space sp ON sp.id = a.space_id
    JOIN lamin."user" u ON u.id = a.created_by
    WHERE a.id = lamin.artifact_id($1));
END
$$;
COMMENT ON FUNCTION lamin.describe_artifact(text) IS
    'An artifact as one JSON document: fields, storage and path, versions, features and labels, schemas, the schema it was validated against and its validations, the layout of a container file (HDF5, SpatialData), lineage summary.';

-- == issue 22: MuData validated as a job, SpatialData refused by name in validation and curation (sql/25_validation.sql, sql/22_tables.sql) ==
CREATE OR REPLACE FUNCTION lamin.dataset_job_args(artifact_uid text, schema text, action text, zarr boolean) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
BEGIN
    SELECT x.uid, x.status, x.suffix, x.n_files, x.space_id, x.otype INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(artifact_uid);
    IF a.status <> 'ready' THEN
        RAISE EXCEPTION 'artifact % is %: only ready artifacts can be %', a.uid, a.status, action
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF zarr AND a.otype = 'SpatialData' THEN
        RAISE EXCEPTION 'artifact % is a SpatialData store: validating one against a schema is not supported yet', a.uid
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'validate its table saved as an h5ad file or AnnData zarr store';
    END IF;
    IF NOT ((a.suffix IN ('.parquet', '.csv', '.tsv', '.tab', '.h5ad') AND a.n_files IS NULL)
            OR (zarr AND a.suffix = '.h5mu' AND a.n_files IS NULL)
            OR (zarr AND a.suffix = '.zarr' AND a.n_files IS NOT NULL)) THEN
        RAISE EXCEPTION 'artifact % (suffix %) cannot be %', a.uid, quote_literal(a.suffix), action
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN zarr THEN 'validation reads parquet, CSV and TSV files, h5ad and h5mu files and AnnData zarr stores'
                              ELSE 'standardizing writes parquet, CSV/TSV and h5ad files (AnnData zarr stores: standardize an h5ad copy)' END;
    END IF;
    IF NOT lamin.has_space_level(a.space_id, 'write') THEN
        RAISE EXCEPTION 'permission denied: artifact % can be % only by a role that writes in its space (the outcome is written there)',
            a.uid, action USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN jsonb_build_object('uid', a.uid, 'schema', (SELECT s.uid FROM lamin.schema s WHERE s.id = lamin.schema_id(schema)));
END
$$;

CREATE OR REPLACE FUNCTION lamin.curate(artifact_uid text, column_name text, registry text, field text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    a record;
BEGIN
    SELECT x.uid, x.status, x.suffix, x.n_files, x.otype INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(artifact_uid);
    IF a.status <> 'ready' OR NOT ((a.suffix IN ('.parquet', '.h5ad') AND a.n_files IS NULL)
                                   OR (a.suffix = '.zarr' AND a.n_files IS NOT NULL AND a.otype IS DISTINCT FROM 'SpatialData')) THEN
        RAISE EXCEPTION 'artifact % is not a ready parquet file, h5ad file or AnnData zarr store: lamin.curate reads their columns', a.uid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF a.suffix IN ('.h5ad', '.zarr') AND column_name !~ '^(obs|var)\.' THEN
        RAISE EXCEPTION 'column % of an AnnData: expected obs.<column>, var.<column>, obs.index or var.index',
            quote_literal(column_name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF column_name IS NULL OR btrim(column_name) = '' THEN
        RAISE EXCEPTION 'curate needs a column name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM lamin.registry r WHERE r.name = registry) THEN
        RAISE EXCEPTION 'unknown registry %', coalesce(quote_literal(left(registry, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'searchable registries are listed in lamin.registry';
    END IF;
    RETURN lamin.enqueue('curate', jsonb_build_object('uid', a.uid, 'column', column_name, 'registry', registry, 'field', field));
END
$$;
