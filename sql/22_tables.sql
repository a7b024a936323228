-- Tables in artifacts (parquet, and later AnnData): what the sidecar or the
-- CLI read from a file's footer is recorded here — rows, a feature per column
-- and the artifact's `columns` schema — and the bridge to the warehouse:
-- lamin.load (artifact → table) and lamin.export (query → artifact).

-- Their job kinds (load, export) are in lamin.job_kind (sql/18_jobs.sql).

-- Whether a column of dtype `col` fits a feature of dtype `feature`: the same
-- dtype, labels as text either way (an AnnData's categorical obs column and
-- a parquet file's string column of the same name are one feature), and
-- integers as floats or numbers.
CREATE FUNCTION lamin.dtype_fits(feature text, col text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT feature = col
        OR (feature LIKE 'cat%' AND col IN ('cat', 'str'))
        OR (feature = 'str' AND col LIKE 'cat%')
        OR (feature IN ('float', 'num') AND col IN ('int', 'float', 'num'))
$$;
COMMENT ON FUNCTION lamin.dtype_fits(text, text) IS
    'Whether a column of dtype col fits a feature of dtype feature (the same; labels and text either way; integers as floats or numbers).';

-- Features for the columns of a file: `columns` is a JSON array of {"name",
-- "dtype", "arrow"}; features are created when missing (one INSERT for all:
-- a table of thousands of columns passes the triggers once, not once per
-- column). A feature that exists with another dtype is used as it is and
-- reported. Returns {"created": [names], "conflicts": [{column,
-- feature_dtype, column_dtype}]}.
CREATE FUNCTION lamin.ensure_features(columns jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    created text[];
    conflicts jsonb;
BEGIN
    IF jsonb_typeof(columns) IS DISTINCT FROM 'array' OR jsonb_array_length(columns) = 0 THEN
        RAISE EXCEPTION 'columns must be a non-empty JSON array of {"name", "dtype"}' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(columns) > 10000 THEN
        RAISE EXCEPTION 'a table of % columns: at most 10000 are recorded as features', jsonb_array_length(columns)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT 1 AS x INTO bad FROM jsonb_array_elements(columns) x WHERE x ->> 'name' IS NULL OR btrim(x ->> 'name') = '' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a column has no name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x ->> 'name' AS name INTO bad FROM jsonb_array_elements(columns) x GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column % appears twice', quote_literal(bad.name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Conflicts are against the features that existed before.
    WITH cols AS (
        SELECT x ->> 'name' AS name, x ->> 'dtype' AS dtype, x ->> 'arrow' AS arrow, e.ord
        FROM jsonb_array_elements(columns) WITH ORDINALITY AS e(x, ord)
    ), made AS (
        INSERT INTO lamin.feature (name, dtype, description)
        SELECT c.name, c.dtype, 'column of type ' || coalesce(c.arrow, c.dtype) FROM cols c
        WHERE NOT EXISTS (SELECT FROM lamin.feature f WHERE f.name = c.name)
        ORDER BY c.ord
        RETURNING name
    )
    SELECT ARRAY(SELECT c.name FROM cols c JOIN made m ON m.name = c.name ORDER BY c.ord),
           coalesce((SELECT jsonb_agg(jsonb_build_object('column', c.name, 'feature_dtype', f.dtype, 'column_dtype', c.dtype) ORDER BY c.ord)
                     FROM cols c CROSS JOIN LATERAL (
                         SELECT x.dtype FROM lamin.feature x WHERE x.name = c.name
                         ORDER BY x.space_id = lamin.current_space_id() DESC, x.id LIMIT 1) f
                     WHERE NOT lamin.dtype_fits(f.dtype, c.dtype)), '[]')
    INTO created, conflicts;
    RETURN jsonb_build_object('created', to_jsonb(created), 'conflicts', conflicts);
END
$$;
COMMENT ON FUNCTION lamin.ensure_features(jsonb) IS
    'Features for the columns of a file ([{"name", "dtype", "arrow"}]): made when missing, conflicting dtypes reported, not changed. Returns {"created", "conflicts"}.';

-- Record the columns of a tabular artifact: `columns` is a JSON array of
-- {"name", "dtype", "arrow"} in file order. Features are created when
-- missing; a feature that exists with another dtype is used as it is and
-- reported (never overwritten). Returns {"schema", "created", "conflicts"}.
CREATE FUNCTION lamin.record_columns(artifact_uid text, n_observations bigint, columns jsonb,
                                     slot text DEFAULT 'columns', otype text DEFAULT 'DataFrame') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
    created text[];
    conflicts jsonb;
    names text[];
    schema_uid text;
    made jsonb;
BEGIN
    made := lamin.ensure_features(columns);
    names := ARRAY(SELECT x ->> 'name' FROM jsonb_array_elements(columns) WITH ORDINALITY AS e(x, ord) ORDER BY e.ord);
    created := ARRAY(SELECT jsonb_array_elements_text(made -> 'created'));
    conflicts := made -> 'conflicts';
    schema_uid := lamin.create_schema(names, ordered => true);
    PERFORM lamin.link_schema(artifact_uid, slot, schema_uid);
    UPDATE lamin.artifact a SET n_observations = coalesce(record_columns.n_observations, a.n_observations),
                                otype = record_columns.otype, updated_at = now()
    WHERE a.id = aid;
    RETURN jsonb_build_object('slot', slot, 'schema', schema_uid, 'n_observations', n_observations,
                              'created', to_jsonb(created), 'conflicts', conflicts);
END
$$;
COMMENT ON FUNCTION lamin.record_columns(text, bigint, jsonb, text, text) IS
    'Record the rows and columns of a tabular artifact (or one slot of an AnnData: obs, var): features for its columns (conflicting dtypes reported, not changed) and the slot''s schema.';

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
CREATE FUNCTION lamin.record_layout(artifact_uid text, format text, layout jsonb, otype text DEFAULT NULL) RETURNS jsonb
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

-- Load a parquet artifact into a new table (a job: the sidecar streams the
-- rows in with binary COPY, in one transaction, as the caller). The artifact
-- is recorded as an input of the current run. Returns the job id.
CREATE FUNCTION lamin.load(artifact_uid text, target_table text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a lamin.artifact;
    parts text[];
BEGIN
    a := lamin.get(artifact_uid);  -- also records the input of the current run
    IF a.status <> 'ready' THEN
        RAISE EXCEPTION 'artifact % is %: only ready artifacts can be loaded', a.uid, a.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF a.suffix <> '.parquet' OR a.n_files IS NOT NULL THEN
        RAISE EXCEPTION 'artifact % is not a parquet file: lamin.load reads parquet artifacts', a.uid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        parts := parse_ident(target_table);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'invalid table name %: %', quote_literal(left(target_table, 200)), SQLERRM
            USING ERRCODE = 'invalid_name';
    END;
    IF cardinality(parts) NOT IN (1, 2) THEN
        RAISE EXCEPTION 'invalid table name %: expected table or schema.table', quote_literal(left(target_table, 200))
            USING ERRCODE = 'invalid_name';
    END IF;
    IF cardinality(parts) = 1 THEN
        parts := ARRAY['public'] || parts;
    END IF;
    IF to_regnamespace(quote_ident(parts[1])) IS NULL THEN
        RAISE EXCEPTION 'no schema named %', quote_ident(parts[1]) USING ERRCODE = 'invalid_schema_name';
    END IF;
    IF to_regclass(quote_ident(parts[1]) || '.' || quote_ident(parts[2])) IS NOT NULL THEN
        RAISE EXCEPTION 'table %.% exists: lamin.load creates a new table', quote_ident(parts[1]), quote_ident(parts[2])
            USING ERRCODE = 'duplicate_table';
    END IF;
    RETURN lamin.enqueue('load', jsonb_build_object('uid', a.uid, 'schema', parts[1], 'table', parts[2]));
END
$$;
COMMENT ON FUNCTION lamin.load(text, text) IS
    'Enqueue loading a parquet artifact into a new table (schema.table; types from the file); records it as an input of the current run. Returns the job id.';

-- Export a query's rows as a parquet artifact (a job: the sidecar runs the
-- query as the caller in a read-only transaction, writes row groups of 128k
-- rows and saves the file under `key`, created by the current run, in the
-- current space). Returns the job id; its result names the artifact.
CREATE FUNCTION lamin.export(query text, key text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF query IS NULL OR btrim(query) = '' THEN
        RAISE EXCEPTION 'export needs a query' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(query) > 100000 THEN
        RAISE EXCEPTION 'an export query of % characters: at most 100000', length(query) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM lamin.check_key(key);
    IF key IS NULL OR key NOT LIKE '%.parquet' THEN
        RAISE EXCEPTION 'export key % must end with .parquet', coalesce(quote_literal(left(key, 200)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN lamin.enqueue('export', jsonb_build_object(
        'query', query, 'key', key,
        'run', nullif(current_setting('lamin.run_uid', true), ''),
        'space', nullif(current_setting('lamin.space_uid', true), '')));
END
$$;
COMMENT ON FUNCTION lamin.export(text, text) IS
    'Enqueue an export of a query''s rows (run as the caller, read-only) to a parquet artifact under key, created by the current run. Returns the job id.';

-- Curation: the distinct values of a column checked against a registry
-- (lamin.inspect), kept as a report per artifact and column; a follow-up
-- call annotates the artifact with the validated labels.
-- (Its job kind, curate, is in lamin.job_kind: sql/18_jobs.sql.)

CREATE TABLE lamin.curation (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    artifact_id    bigint NOT NULL REFERENCES lamin.artifact ON DELETE CASCADE,
    column_name    text NOT NULL,
    registry       text NOT NULL,
    field          text NOT NULL,
    n_values       int NOT NULL,
    n_validated    int NOT NULL,
    report         jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    n_null         bigint,
    CONSTRAINT curation_one_per_column UNIQUE (artifact_id, column_name, registry)
);
COMMENT ON TABLE lamin.curation IS 'Curation reports: the distinct values of an artifact''s column checked against a registry.';
COMMENT ON COLUMN lamin.curation.id IS 'Identity.';
COMMENT ON COLUMN lamin.curation.artifact_id IS 'The artifact.';
COMMENT ON COLUMN lamin.curation.column_name IS 'The column (or slot) whose values were checked.';
COMMENT ON COLUMN lamin.curation.registry IS 'The registry checked against, e.g. bionty.cell_type.';
COMMENT ON COLUMN lamin.curation.field IS 'The registry field the values were matched on.';
COMMENT ON COLUMN lamin.curation.n_values IS 'Distinct non-null values of the column.';
COMMENT ON COLUMN lamin.curation.n_validated IS 'How many of them are valid as they are.';
COMMENT ON COLUMN lamin.curation.report IS 'Per value: n (rows holding it), validated, standardized (the registry value a synonym maps to), suggestion.';
COMMENT ON COLUMN lamin.curation.n_null IS 'Rows whose value is NULL (missing); NULL for reports made before 0.5.0.';
COMMENT ON COLUMN lamin.curation.created_at IS 'When the report was made.';
COMMENT ON COLUMN lamin.curation.created_by IS 'Who asked for it.';
SELECT lamin.secure_table('lamin.curation', 'link:lamin.artifact:artifact_id');
SELECT pg_catalog.pg_extension_config_dump('lamin.curation', '');

-- Enqueue a curation of a column of a tabular artifact against a registry.
CREATE FUNCTION lamin.curate(artifact_uid text, column_name text, registry text, field text DEFAULT NULL) RETURNS bigint
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
COMMENT ON FUNCTION lamin.curate(text, text, text, text) IS
    'Enqueue a curation: the distinct values of a column (parquet; h5ad: obs.<col>, var.index, …) checked against a registry; read the outcome with lamin.curation_report(uid). Returns the job id.';

-- Sidecar: store a curation's outcome (replacing an earlier one of that column and registry).
CREATE FUNCTION lamin.record_curation(artifact_uid text, column_name text, registry text, field text, report jsonb,
                                       n_null bigint DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    n int := jsonb_array_length(report);
    ok int := (SELECT count(*) FROM jsonb_array_elements(report) r WHERE (r ->> 'validated')::boolean);
BEGIN
    INSERT INTO lamin.curation AS c (artifact_id, column_name, registry, field, n_values, n_validated, report, n_null)
    VALUES (lamin.artifact_id(artifact_uid), column_name, registry, field, n, ok, report, n_null)
    ON CONFLICT ON CONSTRAINT curation_one_per_column DO UPDATE
        SET field = excluded.field, n_values = excluded.n_values, n_validated = excluded.n_validated,
            report = excluded.report, n_null = excluded.n_null, created_at = now(), created_by = lamin.current_user_id();
    RETURN jsonb_build_object('column', column_name, 'registry', registry, 'n_values', n, 'n_validated', ok,
                              'validated_pct', CASE WHEN n = 0 THEN 100 ELSE round(100.0 * ok / n, 1) END,
                              'n_null', n_null);
END
$$;
COMMENT ON FUNCTION lamin.record_curation(text, text, text, text, jsonb, bigint) IS
    'Sidecar: store a curation''s outcome (per value: n, validated, standardized, suggestion; and the NULL count), replacing an earlier one of that column and registry.';

-- The curation reports of an artifact, one row per distinct value (with how
-- many rows hold it), and one row for the column's NULLs when it has any.
CREATE FUNCTION lamin.curation_report(artifact_uid text)
RETURNS TABLE (column_name text, registry text, validated_pct numeric, value text, n bigint, validated boolean,
               standardized text, suggestion text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.column_name, x.registry, x.pct, x.value, x.n, x.validated, x.standardized, x.suggestion
    FROM (
        SELECT c.column_name, c.registry, c.id,
               CASE WHEN c.n_values = 0 THEN 100 ELSE round(100.0 * c.n_validated / c.n_values, 1) END AS pct,
               r ->> 'value' AS value, (r ->> 'n')::bigint AS n, (r ->> 'validated')::boolean AS validated,
               r ->> 'standardized' AS standardized, r ->> 'suggestion' AS suggestion
        FROM lamin.curation c, jsonb_array_elements(c.report) r
        WHERE c.artifact_id = lamin.artifact_id(artifact_uid)
        UNION ALL
        SELECT c.column_name, c.registry, c.id,
               CASE WHEN c.n_values = 0 THEN 100 ELSE round(100.0 * c.n_validated / c.n_values, 1) END,
               NULL, c.n_null, NULL, NULL, 'missing values: not checked, not annotated'
        FROM lamin.curation c
        WHERE c.artifact_id = lamin.artifact_id(artifact_uid) AND c.n_null > 0
    ) x
    ORDER BY x.column_name, x.registry, x.validated NULLS FIRST, x.value
$$;
COMMENT ON FUNCTION lamin.curation_report(text) IS
    'Curation reports of an artifact: per column and registry, the validated share and each value with its row count and its standardized form or suggestion; a row with value NULL counts the missing values.';

-- Annotate an artifact with the labels its curated column validated (values
-- mapped through synonyms count as their standard name), through a feature
-- named like the column with dtype cat[registry]. Returns the new links.
CREATE FUNCTION lamin.annotate_curated(artifact_uid text, column_name text, registry text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    c record;
    labels text[];
    -- The feature: the column's name (AnnData: without obs./var.).
    feature text := CASE column_name WHEN 'obs.index' THEN 'obs_index' WHEN 'var.index' THEN 'var_index'
                                     ELSE regexp_replace(column_name, '^(obs|var)\.', '') END;
BEGIN
    SELECT x.* INTO c FROM lamin.curation x
    WHERE x.artifact_id = lamin.artifact_id(artifact_uid) AND x.column_name = column_name
      AND (registry IS NULL OR x.registry = registry)
    ORDER BY x.created_at DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no curation of column % of artifact %: run lamin.curate first', quote_literal(column_name), artifact_uid
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT array_agg(DISTINCT coalesce(r ->> 'standardized', r ->> 'value')) INTO labels
    FROM jsonb_array_elements(c.report) r
    WHERE (r ->> 'validated')::boolean OR r ->> 'standardized' IS NOT NULL;
    IF labels IS NULL THEN
        RETURN 0;
    END IF;
    -- A column read from a file got the generic dtype cat; curation names its
    -- registry, as long as no labels are linked through the feature yet.
    UPDATE lamin.feature f SET dtype = 'cat[' || c.registry || ']', updated_at = now()
    WHERE f.id = (SELECT x.id FROM lamin.feature x WHERE x.name = feature
                  ORDER BY x.space_id = lamin.current_space_id() DESC, x.id LIMIT 1)
      AND f.dtype IN ('cat', 'str') AND c.registry <> 'lamin.ulabel'
      AND NOT EXISTS (SELECT FROM lamin.artifact_ulabel l WHERE l.feature_id = f.id)
      AND NOT EXISTS (SELECT FROM lamin.artifact_feature_value v WHERE v.feature_id = f.id)
      AND NOT EXISTS (SELECT FROM lamin.collection_feature_value v WHERE v.feature_id = f.id)
      AND NOT EXISTS (SELECT FROM lamin.run_feature_value v WHERE v.feature_id = f.id);
    PERFORM lamin.create_feature(feature, CASE WHEN c.registry = 'lamin.ulabel' THEN 'cat' ELSE 'cat[' || c.registry || ']' END);
    -- Link by the field the curation matched on (e.g. bionty.gene's
    -- ensembl_gene_id): the values are that field's, not names.
    RETURN lamin.annotate(artifact_uid, feature, labels, c.field);
END
$$;
COMMENT ON FUNCTION lamin.annotate_curated(text, text, text) IS
    'Annotate an artifact with the labels its curated column validated (synonyms as their standard names), through a feature named like the column.';
