-- Validation of datasets against schemas (LaminDB's curators). A schema says
-- per slot which features a dataset must have (minimal set) and may have
-- (maximal set), each feature's dtype, nullability and allowed values; a
-- composite schema names one schema per slot (columns of a table; obs, var
-- and var.T — the var index — of an AnnData).
--
-- The work is split so that every rule lives here, in the database: the
-- sidecar (a job, or the CLI before a save) reads the dataset and sends its
-- facts — per frame the columns with their dtypes, NULL counts, whether
-- floats are whole and text is numeric, the distinct values of categorical
-- columns, the index when a slot is about it — and lamin.validation_verdict
-- turns facts and schema into a report. Data never travel to the server.

INSERT INTO lamin.job_kind (kind, description, needs_role, internal) VALUES
    ('validate', 'Reads a dataset artifact and validates it against a schema (lamin.validate_artifact).', 'lamin_reader', false),
    ('standardize', 'Writes a dataset''s synonyms as registry names into a new version and validates it (lamin.standardize_artifact).', 'lamin_reader', false);

-- The slots of a composite schema: one component schema per slot.
CREATE TABLE lamin.schema_component (
    composite_id bigint NOT NULL REFERENCES lamin.schema ON DELETE CASCADE,
    slot         text NOT NULL CONSTRAINT schema_component_slot_format CHECK (slot ~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$'),
    component_id bigint NOT NULL REFERENCES lamin.schema ON DELETE RESTRICT,
    PRIMARY KEY (composite_id, slot),
    CONSTRAINT schema_component_not_self CHECK (composite_id <> component_id)
);
CREATE INDEX schema_component_component ON lamin.schema_component (component_id);
COMMENT ON TABLE lamin.schema_component IS 'The slots of a composite schema (e.g. obs, var.T of an AnnData), each with its own schema.';
COMMENT ON COLUMN lamin.schema_component.composite_id IS 'The composite schema.';
COMMENT ON COLUMN lamin.schema_component.slot IS 'The slot: columns, obs, var, var.T (the var index: its members), rna:obs, ...';
COMMENT ON COLUMN lamin.schema_component.component_id IS 'The schema of the slot.';
SELECT lamin.secure_table('lamin.schema_component', 'link:lamin.schema:composite_id|lamin.schema:component_id');
SELECT pg_catalog.pg_extension_config_dump('lamin.schema_component', '');

-- The schema an artifact was validated against (LaminDB's artifact.schema):
-- set when a validation passed, never when it failed.
ALTER TABLE lamin.artifact ADD COLUMN schema_id bigint REFERENCES lamin.schema ON DELETE RESTRICT;
CREATE INDEX artifact_schema_id ON lamin.artifact (schema_id) WHERE schema_id IS NOT NULL;
COMMENT ON COLUMN lamin.artifact.schema_id IS 'The schema the artifact passed validation against (lamin.validate_artifact, lamin save --schema); NULL when not validated.';

CREATE TABLE lamin.validation (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    artifact_id bigint NOT NULL REFERENCES lamin.artifact ON DELETE CASCADE,
    schema_id   bigint NOT NULL REFERENCES lamin.schema ON DELETE CASCADE,
    passed      boolean NOT NULL,
    n_problems  int NOT NULL CONSTRAINT validation_n_problems_nonnegative CHECK (n_problems >= 0),
    report      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    CONSTRAINT validation_one_per_schema UNIQUE (artifact_id, schema_id)
);
CREATE INDEX validation_schema ON lamin.validation (schema_id);
COMMENT ON TABLE lamin.validation IS 'Validation reports: an artifact checked against a schema (the latest check per schema).';
COMMENT ON COLUMN lamin.validation.id IS 'Identity.';
COMMENT ON COLUMN lamin.validation.artifact_id IS 'The artifact.';
COMMENT ON COLUMN lamin.validation.schema_id IS 'The schema.';
COMMENT ON COLUMN lamin.validation.passed IS 'Whether the artifact met the schema (then artifact.schema_id names it).';
COMMENT ON COLUMN lamin.validation.n_problems IS 'How many problems were found.';
COMMENT ON COLUMN lamin.validation.report IS 'The verdict of lamin.validation_verdict: problems, checked columns, labels; read it with lamin.validation_report(uid).';
COMMENT ON COLUMN lamin.validation.created_at IS 'When the check was made.';
COMMENT ON COLUMN lamin.validation.created_by IS 'Who asked for it.';
SELECT lamin.secure_table('lamin.validation', 'link:lamin.artifact:artifact_id|lamin.schema:schema_id');
SELECT pg_catalog.pg_extension_config_dump('lamin.validation', '');

-- A schema's definition as the sidecar needs it to read a dataset: per slot
-- the frame it reads (columns of a table; obs or var of an AnnData), whether
-- the slot's members are the frame's columns or its index (var.T), and each
-- feature with its dtype, registry and field, nullability, whether it is
-- required and may be coerced. A schema without slots applies to the columns
-- of a table, or to obs of an AnnData or MuData.
CREATE FUNCTION lamin.schema_definition(ref text, data_otype text DEFAULT NULL) RETURNS jsonb
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

-- Whether a column of dtype `col` can be coerced to a feature's dtype, given
-- what the sidecar saw of its values: integer-valued floats to int, numbers
-- written as text to numbers, anything to text.
CREATE FUNCTION lamin.dtype_coercible(feature text, col text, whole boolean, numeric_text boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (lamin.dtype_base(feature) = 'int' AND col = 'float' AND coalesce(whole, false))
        OR (lamin.dtype_base(feature) IN ('float', 'num') AND col = 'str' AND coalesce(numeric_text, false))
        OR (lamin.dtype_base(feature) = 'int' AND col = 'str' AND coalesce(numeric_text, false) AND coalesce(whole, false))
        OR (lamin.dtype_base(feature) = 'str' AND col IN ('int', 'float', 'num', 'bool', 'date', 'datetime'))
$$;
COMMENT ON FUNCTION lamin.dtype_coercible(text, text, boolean, boolean) IS
    'Whether a column (dtype col; whole: its floats are whole numbers; numeric_text: its text parses as numbers) may be coerced to a feature''s dtype.';

-- The sentence for a value a registry does not hold, with its standardized
-- form (a synonym's) or the closest name.
CREATE FUNCTION lamin.invalid_value_detail(val text, registry text, field text, standardized text, suggestion text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%s is not in %s', coalesce(quote_literal(val), 'NULL'), registry || coalesce(' (field ' || field || ')', ''))
        || CASE WHEN standardized IS NOT NULL THEN format('; it standardizes to %L', standardized) ELSE '' END
        || CASE WHEN suggestion IS NOT NULL THEN format('; did you mean %L?', suggestion) ELSE '' END
$$;
COMMENT ON FUNCTION lamin.invalid_value_detail(text, text, text, text, text) IS
    'The report''s sentence for a value a registry does not hold, with its standardized form or a suggestion.';

-- The problems of values a registry does not hold: one per value (at most
-- 1000, then one saying how many more), each with its row count (`counts`:
-- value → rows; NULL for an index), its standardized form or a suggestion.
CREATE FUNCTION lamin.invalid_value_problems(registry text, field text, vals text[], counts jsonb,
                                             slot text, column_name text, feature text,
                                             OUT n_invalid int, OUT problems jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    -- Values listed per column at most (the count says how many there are).
    max_listed constant int := 1000;
BEGIN
    n_invalid := 0;
    problems := '[]';
    IF coalesce(cardinality(vals), 0) = 0 THEN
        RETURN;
    END IF;
    FOR bad IN SELECT i.value, i.standardized, i.suggestion
               FROM lamin.inspect(registry, vals, field) i WHERE NOT i.validated
               ORDER BY i.value LOOP
        n_invalid := n_invalid + 1;
        IF n_invalid <= max_listed THEN
            problems := problems || jsonb_build_object('slot', slot, 'column', column_name, 'feature', feature,
                'problem', 'invalid_values', 'value', bad.value, 'n', (counts ->> bad.value)::bigint,
                'standardized', bad.standardized, 'suggestion', bad.suggestion,
                'detail', lamin.invalid_value_detail(bad.value, registry, field, bad.standardized, bad.suggestion));
        END IF;
    END LOOP;
    IF n_invalid > max_listed THEN
        problems := problems || jsonb_build_object('slot', slot, 'column', column_name, 'feature', feature,
            'problem', 'invalid_values', 'detail', format('and %s more values not in %s', n_invalid - max_listed, registry));
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.invalid_value_problems(text, text, text[], jsonb, text, text, text) IS
    'The report''s problems for values a registry does not hold (one per value, at most 1000 listed), and how many there are.';

-- The verdict on a dataset's facts against a schema: nothing is written. The
-- facts are what the sidecar read:
--   {"otype": "AnnData", "frames": {"obs": {"n_rows": 3, "columns": [
--       {"name": "cell_type", "dtype": "cat", "n_null": 0, "whole": null,
--        "numeric": null, "values": {"B cell": 1, "T cell": 2}}, ...],
--     "index": ["ENSG...", ...]}}}
-- (values: the distinct values of columns of categorical features with their
-- row counts; index: the frame's index when a slot's members are its index).
-- The verdict lists every problem (slot, column, feature, problem, detail and,
-- for values not in a registry, the value, its row count, its standardized
-- form or a suggestion), every checked column, and the labels a passing
-- dataset is annotated with.
CREATE FUNCTION lamin.validation_verdict(schema_ref text, facts jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    def jsonb;
    sl jsonb;
    f jsonb;
    frame jsonb;
    col jsonb;
    cols jsonb;
    names text[];
    problems jsonb := '[]';
    checked jsonb := '[]';
    labels jsonb := '[]';
    vals text[];
    status text;
    inv record;
BEGIN
    IF jsonb_typeof(facts) IS DISTINCT FROM 'object' OR jsonb_typeof(facts -> 'frames') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'validation facts must be a JSON object with "frames"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    def := lamin.schema_definition(schema_ref, facts ->> 'otype');
    IF def ->> 'otype' IS NOT NULL AND def ->> 'otype' IS DISTINCT FROM facts ->> 'otype' THEN
        problems := problems || jsonb_build_object('slot', NULL, 'column', NULL, 'feature', NULL, 'problem', 'wrong_otype',
            'detail', format('the schema is for a %s, the dataset is %s', def ->> 'otype',
                             coalesce('a ' || (facts ->> 'otype'), 'neither a DataFrame nor an AnnData')));
    END IF;
    FOR sl IN SELECT x FROM jsonb_array_elements(def -> 'slots') x LOOP
        frame := facts -> 'frames' -> (sl ->> 'frame');
        IF frame IS NULL THEN
            problems := problems || jsonb_build_object('slot', sl ->> 'slot', 'column', NULL, 'feature', NULL, 'problem', 'missing_slot',
                'detail', format('the dataset has no %s', sl ->> 'frame'));
            CONTINUE;
        END IF;
        cols := coalesce(frame -> 'columns', '[]');
        names := ARRAY(SELECT c ->> 'name' FROM jsonb_array_elements(cols) c);

        IF sl ->> 'itype' <> 'lamin.feature' THEN
            -- The members are records of a registry: the frame's index (var.T) or its column names.
            vals := CASE WHEN sl ->> 'members' = 'index'
                         THEN ARRAY(SELECT jsonb_array_elements_text(coalesce(frame -> 'index', '[]'))) ELSE names END;
            inv := lamin.invalid_value_problems(sl ->> 'registry', sl ->> 'field', vals, NULL, sl ->> 'slot', NULL, NULL);
            problems := problems || inv.problems;
            checked := checked || jsonb_build_object('slot', sl ->> 'slot', 'column', sl ->> 'members', 'feature', NULL,
                'dtype', 'cat[' || (sl ->> 'itype') || ']', 'column_dtype', NULL, 'n_null', NULL,
                'status', CASE WHEN inv.n_invalid = 0 THEN 'ok' ELSE 'problem' END, 'n_values', cardinality(vals),
                'n_invalid', inv.n_invalid);
            CONTINUE;
        END IF;

        -- Required features the frame lacks.
        FOR f IN SELECT x FROM jsonb_array_elements(sl -> 'features') x
                 WHERE (x ->> 'required')::boolean AND (x ->> 'name') <> ALL (names) LOOP
            problems := problems || jsonb_build_object('slot', sl ->> 'slot', 'column', f ->> 'name', 'feature', f ->> 'name',
                'problem', 'missing_column', 'detail', format('required column %s (%s) is missing', quote_literal(f ->> 'name'), f ->> 'dtype'));
        END LOOP;
        -- Columns the schema does not name: refused by a maximal set, else let through.
        FOR col IN SELECT c FROM jsonb_array_elements(cols) c
                   WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(sl -> 'features') x WHERE x ->> 'name' = c ->> 'name') LOOP
            IF (sl ->> 'maximal_set')::boolean THEN
                problems := problems || jsonb_build_object('slot', sl ->> 'slot', 'column', col ->> 'name', 'feature', NULL,
                    'problem', 'unexpected_column',
                    'detail', format('column %s is not in the schema, which allows no others (maximal set)', quote_literal(col ->> 'name')));
            END IF;
            checked := checked || jsonb_build_object('slot', sl ->> 'slot', 'column', col ->> 'name', 'feature', NULL,
                'dtype', NULL, 'column_dtype', col ->> 'dtype', 'n_null', (col ->> 'n_null')::bigint,
                'status', CASE WHEN (sl ->> 'maximal_set')::boolean THEN 'problem' ELSE 'extra' END);
        END LOOP;
        -- The columns the schema names.
        FOR f, col IN SELECT x, c FROM jsonb_array_elements(sl -> 'features') WITH ORDINALITY AS e(x, ord)
                      JOIN jsonb_array_elements(cols) c ON c ->> 'name' = x ->> 'name' ORDER BY e.ord LOOP
            status := 'ok';
            IF NOT lamin.dtype_fits(f ->> 'dtype', col ->> 'dtype')
               AND NOT (f ->> 'dtype' LIKE 'list[%' AND col ->> 'dtype' IN ('list', 'dict')) THEN
                IF (f ->> 'coerce')::boolean AND lamin.dtype_coercible(f ->> 'dtype', col ->> 'dtype',
                                                                       (col ->> 'whole')::boolean, (col ->> 'numeric')::boolean) THEN
                    status := 'coerced';
                ELSE
                    status := 'problem';
                    problems := problems || jsonb_build_object('slot', sl ->> 'slot', 'column', col ->> 'name', 'feature', f ->> 'name',
                        'problem', 'wrong_dtype',
                        'detail', format('column %s is %s, the feature is %s', quote_literal(col ->> 'name'), col ->> 'dtype', f ->> 'dtype')
                            || CASE WHEN lamin.dtype_coercible(f ->> 'dtype', col ->> 'dtype', (col ->> 'whole')::boolean, (col ->> 'numeric')::boolean)
                                    THEN format('; its values can be coerced: set coerce on the feature (UPDATE lamin.feature SET coerce = true WHERE name = %L) or the schema', f ->> 'name')
                                    ELSE '' END);
                END IF;
            END IF;
            IF NOT (f ->> 'nullable')::boolean AND coalesce((col ->> 'n_null')::bigint, 0) > 0 THEN
                status := 'problem';
                problems := problems || jsonb_build_object('slot', sl ->> 'slot', 'column', col ->> 'name', 'feature', f ->> 'name',
                    'problem', 'null_values', 'n', (col ->> 'n_null')::bigint,
                    'detail', format('column %s has %s missing values; the feature is not nullable', quote_literal(col ->> 'name'), col ->> 'n_null'));
            END IF;
            IF f ->> 'registry' IS NOT NULL AND jsonb_typeof(col -> 'values') = 'object' THEN
                vals := ARRAY(SELECT jsonb_object_keys(col -> 'values'));
                inv := lamin.invalid_value_problems(f ->> 'registry', f ->> 'field', vals, col -> 'values',
                                                    sl ->> 'slot', col ->> 'name', f ->> 'name');
                problems := problems || inv.problems;
                IF inv.n_invalid > 0 THEN
                    status := 'problem';
                ELSIF cardinality(vals) > 0 THEN
                    labels := labels || jsonb_build_object('feature', f ->> 'name', 'field', f ->> 'field', 'values', to_jsonb(vals));
                END IF;
            END IF;
            checked := checked || jsonb_build_object('slot', sl ->> 'slot', 'column', col ->> 'name', 'feature', f ->> 'name',
                'dtype', f ->> 'dtype', 'column_dtype', col ->> 'dtype', 'n_null', (col ->> 'n_null')::bigint, 'status', status);
        END LOOP;
    END LOOP;
    RETURN jsonb_build_object('schema', def ->> 'uid', 'schema_name', def ->> 'name',
                              'passed', jsonb_array_length(problems) = 0,
                              'n_problems', jsonb_array_length(problems),
                              'problems', problems, 'columns', checked, 'labels', labels);
END
$$;
COMMENT ON FUNCTION lamin.validation_verdict(text, jsonb) IS
    'The verdict on a dataset''s facts (as the sidecar read them) against a schema: problems (missing, unexpected columns, wrong dtypes, missing values in non-nullable columns, values not in a registry with their standardized form or a suggestion), checked columns, labels; writes nothing.';

-- Sidecar: store the verdict on an artifact's facts. A passing artifact gets
-- the schema (artifact.schema_id) and is annotated with the labels of its
-- categorical columns; a failing one keeps no schema. Returns the verdict.
CREATE FUNCTION lamin.record_validation(artifact_uid text, schema_ref text, facts jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
    sid bigint := lamin.schema_id(schema_ref);
    verdict jsonb := lamin.validation_verdict(schema_ref, facts);
    passed boolean := (verdict ->> 'passed')::boolean;
    l jsonb;
BEGIN
    -- The artifact must be writable (row-level security hides the row from the UPDATE otherwise).
    UPDATE lamin.artifact a SET schema_id = CASE WHEN passed THEN sid
                                                 WHEN a.schema_id = sid THEN NULL ELSE a.schema_id END,
                                updated_at = now()
    WHERE a.id = aid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'permission denied: artifact % can be validated only by a role that writes in its space (the outcome is written there)',
            artifact_uid USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO lamin.validation AS v (artifact_id, schema_id, passed, n_problems, report)
    VALUES (aid, sid, passed, (verdict ->> 'n_problems')::int, verdict)
    ON CONFLICT ON CONSTRAINT validation_one_per_schema DO UPDATE
        SET passed = excluded.passed, n_problems = excluded.n_problems, report = excluded.report,
            created_at = now(), created_by = lamin.current_user_id();
    IF passed THEN
        FOR l IN SELECT x FROM jsonb_array_elements(verdict -> 'labels') x LOOP
            BEGIN
                PERFORM lamin.annotate(artifact_uid, l ->> 'feature', ARRAY(SELECT jsonb_array_elements_text(l -> 'values')), l ->> 'field');
            EXCEPTION WHEN cardinality_violation THEN
                -- A label name shared by several ulabel types links nothing: the
                -- artifact stays validated, the verdict says which labels are missing.
                verdict := jsonb_set(verdict, '{not_annotated}', coalesce(verdict -> 'not_annotated', '[]')
                                     || jsonb_build_object('feature', l ->> 'feature', 'reason', SQLERRM));
            END;
        END LOOP;
        UPDATE lamin.validation v SET report = verdict WHERE v.artifact_id = aid AND v.schema_id = sid;
    END IF;
    RETURN verdict;
END
$$;
COMMENT ON FUNCTION lamin.record_validation(text, text, jsonb) IS
    'Sidecar: store the verdict on an artifact''s facts against a schema; a passing artifact gets the schema and the labels of its categorical columns. Returns the verdict.';

-- The job arguments of validating or standardizing an artifact against a
-- schema, once the artifact is a ready dataset of the kinds the job reads
-- (zarr stores only when `zarr`) and the caller may write its space (the
-- outcome is written on it); else an error naming what is missing.
CREATE FUNCTION lamin.dataset_job_args(artifact_uid text, schema text, action text, zarr boolean) RETURNS jsonb
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
COMMENT ON FUNCTION lamin.dataset_job_args(text, text, text, boolean) IS
    'The arguments of a validate or standardize job, once the artifact is a ready dataset the caller may write; else a clear error.';

-- Enqueue a validation of an artifact against a schema: the sidecar reads the
-- dataset (parquet, CSV/TSV, h5ad, h5mu, AnnData zarr) and records the verdict.
CREATE FUNCTION lamin.validate_artifact(artifact_uid text, schema text) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lamin.enqueue('validate', lamin.dataset_job_args(artifact_uid, schema, 'validated', true))
$$;
COMMENT ON FUNCTION lamin.validate_artifact(text, text) IS
    'Enqueue a validation of an artifact (parquet, CSV, h5ad, AnnData zarr) against a schema (uid or name); read the outcome with lamin.validation_report(uid). Returns the job id.';

-- Enqueue standardizing an artifact against a schema: the values of its
-- categorical columns that the registries know by another name (synonyms,
-- case) are written as their names into a copy, saved as a new version (in
-- the artifact's space, by the current run) and validated; the existing
-- version's bytes never change. The job's result names the new version.
CREATE FUNCTION lamin.standardize_artifact(artifact_uid text, schema text) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lamin.enqueue('standardize', lamin.dataset_job_args(artifact_uid, schema, 'standardized', false)
                                        || jsonb_build_object('run', nullif(current_setting('lamin.run_uid', true), '')))
$$;
COMMENT ON FUNCTION lamin.standardize_artifact(text, text) IS
    'Enqueue standardizing an artifact (parquet, CSV, h5ad) against a schema: synonyms written as registry names into a new, validated version. Returns the job id; its result names the new version.';

-- The latest validation reports of an artifact, one row per problem (values
-- not in a registry: one row each); a passing report is one row without a
-- problem.
CREATE FUNCTION lamin.validation_report(artifact_uid text)
RETURNS TABLE (schema_uid text, schema_name text, passed boolean, slot text, column_name text, feature text,
               problem text, detail text, value text, n bigint, standardized text, suggestion text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.uid, s.name, v.passed, p ->> 'slot', p ->> 'column', p ->> 'feature', p ->> 'problem', p ->> 'detail',
           p ->> 'value', (p ->> 'n')::bigint, p ->> 'standardized', p ->> 'suggestion'
    FROM lamin.validation v
    JOIN lamin.schema s ON s.id = v.schema_id
    LEFT JOIN LATERAL jsonb_array_elements(v.report -> 'problems') WITH ORDINALITY AS e(p, ord) ON true
    WHERE v.artifact_id = lamin.artifact_id(artifact_uid)
    ORDER BY v.created_at DESC, s.uid, e.ord
$$;
COMMENT ON FUNCTION lamin.validation_report(text) IS
    'The validation reports of an artifact: per schema whether it passed and one row per problem (slot, column, feature, problem, detail; values not in a registry with row count, standardized form or suggestion).';

-- A schema from the columns of a sample file (`lamin schema from-file`):
-- features for its columns (made when missing, conflicting dtypes reported),
-- then a schema of them named `name`. `frames` is {"columns": [...]} for a
-- table, or {"obs": [...], "var": [...]} for an AnnData (a composite named
-- `name` of the schemas "<name> obs" and "<name> var"; a MuData's slots are
-- obs, var, rna:obs, rna:var, … alike); each column is
-- {"name", "dtype", "arrow"} as the sidecar read it. Existing features keep
-- their dtypes: e.g. a feature cell_type of dtype cat[bionty.cell_type]
-- validates the file's cell_type column against the ontology. Returns
-- {"schema", "created", "conflicts"}.
CREATE FUNCTION lamin.create_schema_from_columns(name text, frames jsonb, otype text DEFAULT 'DataFrame') RETURNS jsonb
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

-- Every artifact's validations, for SQL users and BI tools: which schema,
-- whether it passed, how many problems; read as the caller (row-level
-- security applies), artifacts in the trash hidden.
CREATE VIEW lamin.validations WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, s.uid AS schema_uid, s.name AS schema_name,
       v.passed, v.n_problems, v.created_at AS validated_at, u.handle AS validated_by, a.id AS artifact_id
FROM lamin.validation v
JOIN lamin.artifact a ON a.id = v.artifact_id
JOIN lamin.schema s ON s.id = v.schema_id
JOIN lamin."user" u ON u.id = v.created_by
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.validations IS 'Every validation of an artifact against a schema (the latest per schema): e.g. the latest artifacts that passed schema cells: WHERE is_latest AND passed AND schema_name = ''cells''; the problems: lamin.validation_report(uid).';
COMMENT ON COLUMN lamin.validations.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.validations.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.validations.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.validations.is_latest IS 'Whether the artifact is the newest version of its family.';
COMMENT ON COLUMN lamin.validations.schema_uid IS 'uid of the schema.';
COMMENT ON COLUMN lamin.validations.schema_name IS 'Name of the schema.';
COMMENT ON COLUMN lamin.validations.passed IS 'Whether the artifact met the schema.';
COMMENT ON COLUMN lamin.validations.n_problems IS 'How many problems were found (lamin.validation_report lists them).';
COMMENT ON COLUMN lamin.validations.validated_at IS 'When it was checked.';
COMMENT ON COLUMN lamin.validations.validated_by IS 'Handle of who asked.';
COMMENT ON COLUMN lamin.validations.artifact_id IS 'Internal id of the artifact (joins lamin.artifact).';
GRANT SELECT ON lamin.validations TO lamin_reader;
