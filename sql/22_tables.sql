-- Tables in artifacts (parquet, and later AnnData): what the sidecar or the
-- CLI read from a file's footer is recorded here — rows, a feature per column
-- and the artifact's `columns` schema — and the bridge to the warehouse:
-- lamin.load (artifact → table) and lamin.export (query → artifact).

INSERT INTO lamin.job_kind (kind, description) VALUES
    ('load', 'Loads a parquet artifact into a new table with binary COPY, in one transaction (lamin.load).'),
    ('export', 'Runs a query as its requester (read-only) and saves the rows as a parquet artifact (lamin.export).');

-- Record the columns of a tabular artifact: `columns` is a JSON array of
-- {"name", "dtype", "arrow"} in file order. Features are created when
-- missing; a feature that exists with another dtype is used as it is and
-- reported (never overwritten). Returns {"schema", "created", "conflicts"}.
CREATE FUNCTION lamin.record_columns(artifact_uid text, n_observations bigint, columns jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
    c record;
    existing text;
    created text[] := '{}';
    conflicts jsonb := '[]';
    names text[] := '{}';
    schema_uid text;
BEGIN
    IF jsonb_typeof(columns) IS DISTINCT FROM 'array' OR jsonb_array_length(columns) = 0 THEN
        RAISE EXCEPTION 'columns must be a non-empty JSON array of {"name", "dtype"}' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(columns) > 10000 THEN
        RAISE EXCEPTION 'a table of % columns: at most 10000 are recorded as features', jsonb_array_length(columns)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR c IN SELECT x ->> 'name' AS name, x ->> 'dtype' AS dtype, x ->> 'arrow' AS arrow
             FROM jsonb_array_elements(columns) WITH ORDINALITY AS e(x, ord) ORDER BY ord
    LOOP
        IF c.name IS NULL OR btrim(c.name) = '' THEN
            RAISE EXCEPTION 'a column has no name' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF c.name = ANY (names) THEN
            RAISE EXCEPTION 'column % appears twice', quote_literal(c.name) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT f.dtype INTO existing FROM lamin.feature f WHERE f.name = c.name;
        IF existing IS NULL THEN
            PERFORM lamin.create_feature(c.name, c.dtype, description => 'column of type ' || coalesce(c.arrow, c.dtype));
            created := created || c.name;
        ELSIF existing <> c.dtype AND NOT (existing LIKE 'cat%' AND c.dtype IN ('cat', 'str')) THEN
            conflicts := conflicts || jsonb_build_object('column', c.name, 'feature_dtype', existing, 'column_dtype', c.dtype);
        END IF;
        names := names || c.name;
    END LOOP;
    schema_uid := lamin.create_schema(names, ordered => true);
    PERFORM lamin.link_schema(artifact_uid, 'columns', schema_uid);
    UPDATE lamin.artifact a SET n_observations = record_columns.n_observations, otype = coalesce(a.otype, 'DataFrame'),
                                updated_at = now()
    WHERE a.id = aid;
    RETURN jsonb_build_object('schema', schema_uid, 'n_observations', n_observations, 'created', to_jsonb(created),
                              'conflicts', conflicts);
END
$$;
COMMENT ON FUNCTION lamin.record_columns(text, bigint, jsonb) IS
    'Record the rows and columns of a tabular artifact: features for its columns (conflicting dtypes reported, not changed) and its columns schema.';

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
