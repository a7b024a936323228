\echo Use "ALTER EXTENSION lamin UPDATE TO '0.10.0'" to load this file. \quit
-- lamin 0.9.0 → 0.10.0 (issue 20: write paths at real scale). Run by ALTER
-- EXTENSION lamin UPDATE in one transaction (all or nothing). Definitions
-- are copied verbatim from sql/ (the upgrade test compares the result with a
-- fresh install object by object).

-- == records looked up by name alone (sql/16_bionty.sql, sql/27_records.sql) ==
-- One pass over each table; genes and proteins are the large ones (the
-- default sources: a few hundred thousand rows, seconds).
-- A symbol of any organism (lamin.annotated_artifact_ids looks records up by name alone).
CREATE INDEX gene_symbol_any_organism ON bionty.gene (symbol);
CREATE INDEX protein_name ON bionty.protein (name);
-- A name in any space and type (lamin.annotated_artifact_ids looks records up by name alone).
CREATE INDEX project_name ON lamin.project (name);
-- A name in any space and type (lamin.annotated_artifact_ids looks records up by name alone).
CREATE INDEX reference_name ON lamin.reference (name);
-- A name in any space and type (lamin.annotated_artifact_ids looks records up by name alone).
CREATE INDEX record_name ON lamin.record (name) WHERE name IS NOT NULL;

-- == lamin ls --label and --feature as sets (sql/26_find.sql) ==
-- The artifacts annotated with `value`: with a record of that name in any
-- registry that annotates artifacts (ulabels, ontology terms, projects,
-- references, records, registries of one's own), and, when a feature is
-- named, only through that feature, or with that typed value of it. What
-- `lamin ls --label` and `--feature name=value` select.
-- Why a set and not a per-artifact test: a listing walks the artifacts in
-- key order, and asking each one for its annotations (registry_annotations,
-- about 1 ms a call) took 111 s to find the first 100 artifacts with a label
-- of 1 artifact in 1,000 at 1M artifacts. Here each registry is one indexed
-- look-up of the name and one of its links, so the cost is what the matches
-- cost, and the caller takes `id IN (SELECT …)` before it sorts.
-- It runs as the caller: row-level security applies to every table read.
CREATE FUNCTION lamin.annotated_artifact_ids(value text, feature text DEFAULT NULL) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_variable
DECLARE
    fid bigint;
    dtype text;
    reg record;
    parts text[] := '{}';
    col text;
    typed text;
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'annotated_artifact_ids: NULL is no label or value to look for'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF feature IS NOT NULL THEN
        SELECT x.id, x.dtype INTO fid, dtype FROM lamin.feature x WHERE x.name = feature;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no feature named %', to_json(feature)
                USING ERRCODE = 'no_data_found', HINT = 'see SELECT name, dtype FROM lamin.features';
        END IF;
    END IF;
    -- A record of that name, in every registry with a link table
    -- <schema>.artifact_<table> (registry records by their name field).
    FOR reg IN
        SELECT r.name, r.name_field,
               to_regclass(format('%I.%I', split_part(r.name, '.', 1), 'artifact_' || split_part(r.name, '.', 2))) AS link
        FROM lamin.registry r ORDER BY r.name
    LOOP
        CONTINUE WHEN reg.link IS NULL;
        parts := parts || format('SELECT l.artifact_id FROM %s l WHERE l.%I IN (SELECT t.id FROM %s t WHERE t.%I = $1)%s',
                                 reg.link, split_part(reg.name, '.', 2) || '_id', reg.name, reg.name_field,
                                 CASE WHEN feature IS NOT NULL THEN ' AND l.feature_id = $2' ELSE '' END);
    END LOOP;
    IF feature IS NOT NULL THEN
        -- A typed value, compared as the feature's dtype compares (a number
        -- as a number: "3" finds 3.0), on the typed index; a value that does
        -- not fit the dtype finds none. Dict values: by their text.
        col := lamin.value_column(dtype);
        IF col IS NULL THEN
            parts := parts || 'SELECT v.artifact_id FROM lamin.artifact_feature_value v WHERE v.feature_id = $2 AND v.value #>> ''{}'' = $1'::text;
        ELSE
            SELECT CASE col WHEN 'value_number' THEN fv.value_number::text WHEN 'value_text' THEN fv.value_text
                            WHEN 'value_boolean' THEN fv.value_boolean::text WHEN 'value_date' THEN fv.value_date::text
                            ELSE fv.value_timestamp::text END
            INTO typed
            FROM lamin.fit_value(CASE WHEN col = 'value_number' THEN 'num' ELSE lamin.dtype_base(dtype) END, to_jsonb(value), true) fv;
            IF typed IS NOT NULL THEN
                parts := parts || format('SELECT v.artifact_id FROM lamin.artifact_feature_value v WHERE v.feature_id = $2 AND v.%I = $3::%s',
                                         col, CASE col WHEN 'value_number' THEN 'double precision' WHEN 'value_text' THEN 'text' WHEN 'value_boolean' THEN 'boolean'
                                                       WHEN 'value_date' THEN 'date' ELSE 'timestamptz' END);
            END IF;
        END IF;
    END IF;
    IF parts <> '{}' THEN
        RETURN QUERY EXECUTE array_to_string(parts, ' UNION ') USING value, fid, typed;
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.annotated_artifact_ids(text, text) IS
    'Ids of the artifacts annotated with value: a record of that name in any registry that annotates artifacts (ulabels, ontology terms, projects, references, records, your own registries); with feature, only annotations through that feature, or that typed value of it (compared as its dtype compares). Each id once; artifacts in the trash too. Use as WHERE a.id IN (SELECT lamin.annotated_artifact_ids(''T cell'')): fast at any size, see sql/26_find.sql.';
