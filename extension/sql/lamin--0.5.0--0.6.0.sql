\echo Use "ALTER EXTENSION lamin UPDATE TO '0.6.0'" to load this file. \quit
-- lamin 0.5.0 → 0.6.0 (issue 17: schemas that validate datasets, typed
-- feature values). Run by ALTER EXTENSION lamin UPDATE in one transaction (all
-- or nothing). Definitions are copied verbatim from sql/ and from what
-- `cargo pgrx schema` prints (the upgrade test compares the result with a
-- fresh install object by object). Each concern has its own section below.

-- == dtypes: cat[schema.table.field], list[...] ==

-- The grammar of feature dtypes, in one place (the CHECK on lamin.feature and
-- the trigger's message both use it): a scalar (int, float, num, str, bool,
-- date, datetime, dict, url, path), cat (labels of lamin.ulabel),
-- cat[schema.table] (records of a registry, matched on its name field),
-- cat[schema.table.field] (matched on that field, e.g.
-- cat[bionty.gene.ensembl_gene_id]), and list[...] of any of these (several
-- values per record; LaminDB's list[...]).
CREATE OR REPLACE FUNCTION lamin.dtype_valid(dtype text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dtype ~ ('^(' || e || '|list\[' || e || '\])$')
    FROM (SELECT '(int|float|num|str|bool|date|datetime|dict|url|path|cat|cat\[[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\])'::text AS e) x
$$;
COMMENT ON FUNCTION lamin.dtype_valid(text) IS
    'Whether a text is a feature dtype: int, float, num, str, bool, date, datetime, dict, url, path, cat, cat[schema.table], cat[schema.table.field], or list[...] of one of these.';

-- The element dtype of a dtype: list[X] → X; cat[...] → cat; else itself.
CREATE OR REPLACE FUNCTION lamin.dtype_base(dtype text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN e LIKE 'cat[%' THEN 'cat' ELSE e END
    FROM (SELECT CASE WHEN dtype LIKE 'list[%]' THEN substr(dtype, 6, length(dtype) - 6) ELSE dtype END AS e) x
$$;
COMMENT ON FUNCTION lamin.dtype_base(text) IS
    'The element dtype: list[X] gives X, cat[...] gives cat, a scalar gives itself.';

ALTER TABLE lamin.feature DROP CONSTRAINT feature_dtype_format;
ALTER TABLE lamin.feature ADD CONSTRAINT feature_dtype_format CHECK (lamin.dtype_valid(dtype));
ALTER TABLE lamin.feature ADD COLUMN coerce boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN lamin.feature.dtype IS 'int, float, num, str, bool, date, datetime, dict, url, path, cat, cat[schema.table] naming the registry of its labels (e.g. cat[lamin.ulabel], cat[bionty.cell_type]), cat[schema.table.field] matching on a field (e.g. cat[bionty.gene.ensembl_gene_id]), or list[...] of one of these.';
COMMENT ON COLUMN lamin.feature.coerce IS 'Whether validation may coerce a column to the dtype (e.g. integer-valued floats to int, numbers written as text to numbers) instead of failing.';

-- The registry a categorical dtype names, e.g. 'cat[bionty.cell_type]' and
-- 'list[cat[bionty.cell_type.ontology_id]]' → 'bionty.cell_type'; plain 'cat'
-- means lamin.ulabel; NULL for non-categorical dtypes.
CREATE OR REPLACE FUNCTION lamin.dtype_registry(dtype text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN e = 'cat' THEN 'lamin.ulabel'
        WHEN e LIKE 'cat[%]' THEN array_to_string((string_to_array(substr(e, 5, length(e) - 5), '.'))[1:2], '.')
    END
    FROM (SELECT CASE WHEN dtype LIKE 'list[%]' THEN substr(dtype, 6, length(dtype) - 6) ELSE dtype END AS e) x
$$;

-- The field a categorical dtype matches on: 'cat[bionty.gene.ensembl_gene_id]'
-- → 'ensembl_gene_id'; NULL when it names none (the registry's name field).
CREATE OR REPLACE FUNCTION lamin.dtype_field(dtype text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN e LIKE 'cat[%]' THEN (string_to_array(substr(e, 5, length(e) - 5), '.'))[3] END
    FROM (SELECT CASE WHEN dtype LIKE 'list[%]' THEN substr(dtype, 6, length(dtype) - 6) ELSE dtype END AS e) x
$$;
COMMENT ON FUNCTION lamin.dtype_field(text) IS
    'The registry field a categorical dtype matches on (cat[schema.table.field]); NULL for the registry''s name field or a non-categorical dtype.';

CREATE OR REPLACE FUNCTION lamin.tg_feature_dtype_registry() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    registry text := lamin.dtype_registry(NEW.dtype);
    -- What people write for LaminDB's dtypes (Python, pandas, SQL names).
    alias text := CASE lower(btrim(NEW.dtype))
        WHEN 'integer' THEN 'int' WHEN 'int64' THEN 'int' WHEN 'int32' THEN 'int' WHEN 'bigint' THEN 'int'
        WHEN 'smallint' THEN 'int' WHEN 'float64' THEN 'float' WHEN 'double' THEN 'float' WHEN 'real' THEN 'float'
        WHEN 'double precision' THEN 'float' WHEN 'numeric' THEN 'num' WHEN 'number' THEN 'num' WHEN 'decimal' THEN 'num'
        WHEN 'string' THEN 'str' WHEN 'text' THEN 'str' WHEN 'varchar' THEN 'str' WHEN 'object' THEN 'str'
        WHEN 'boolean' THEN 'bool' WHEN 'timestamp' THEN 'datetime' WHEN 'timestamptz' THEN 'datetime'
        WHEN 'datetime64' THEN 'datetime' WHEN 'json' THEN 'dict' WHEN 'jsonb' THEN 'dict'
        WHEN 'category' THEN 'cat' WHEN 'categorical' THEN 'cat' WHEN 'ulabel' THEN 'cat'
        ELSE CASE WHEN lower(btrim(NEW.dtype)) ~ '^(int|float|num|str|bool|date|datetime|dict|url|path|cat)$'
                  THEN lower(btrim(NEW.dtype)) END END;
BEGIN
    -- Said before the check constraint would reject it with its definition.
    IF NEW.dtype IS NOT NULL AND NOT lamin.dtype_valid(NEW.dtype) THEN
        RAISE EXCEPTION 'feature %: unknown dtype %', quote_literal(NEW.name),
            quote_literal(NEW.dtype) || CASE WHEN alias IS NOT NULL THEN format(' (did you mean %L?)', alias) ELSE '' END
            USING ERRCODE = 'check_violation',
                  HINT = 'the dtypes are int, float, num, str, bool, date, datetime, dict, url, path, cat (labels of lamin.ulabel), cat[schema.table] (records of a registry, e.g. cat[bionty.cell_type]), cat[schema.table.field] (matched on a field, e.g. cat[bionty.gene.ensembl_gene_id]) and list[...] of these';
    END IF;
    IF registry IS NOT NULL AND to_regclass(registry) IS NULL THEN
        RAISE EXCEPTION 'feature %: dtype % names unknown registry %', quote_literal(NEW.name), NEW.dtype, registry
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'use cat[lamin.ulabel] or another existing registry table';
    END IF;
    IF lamin.dtype_field(NEW.dtype) IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(registry) AND a.attname = lamin.dtype_field(NEW.dtype)
          AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'feature %: dtype % names field %, which % does not have', quote_literal(NEW.name), NEW.dtype,
            quote_literal(lamin.dtype_field(NEW.dtype)), registry
            USING ERRCODE = 'undefined_column',
                  HINT = format('the columns of %s: %s', registry,
                                (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
                                 WHERE a.attrelid = to_regclass(registry) AND a.attnum > 0 AND NOT a.attisdropped
                                   AND a.atttypid = 'text'::regtype));
    END IF;
    RETURN NEW;
END
$$;

-- typed_value reads list[X] as X; annotate matches on the field a dtype names.
CREATE OR REPLACE FUNCTION lamin.typed_value(dtype text, val text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE lamin.dtype_base(dtype)
        WHEN 'int' THEN to_jsonb(val::bigint)
        WHEN 'float' THEN to_jsonb(val::double precision)
        WHEN 'num' THEN to_jsonb(val::numeric)
        WHEN 'bool' THEN to_jsonb(val::boolean)
        WHEN 'date' THEN to_jsonb(val::date)
        WHEN 'datetime' THEN to_jsonb(val::timestamptz)
        WHEN 'dict' THEN val::jsonb
        ELSE to_jsonb(val)
    END;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION lamin.annotate(artifact_uid text, feature_name text, vals text[], field text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
    feat record;
    registry text;
    missing text;
    ambiguous text;
    bad text;
    added int;
    name_field text;
    link text;
    tbl text;
    hints text;
BEGIN
    SELECT f.id, f.name, f.dtype INTO feat FROM lamin.feature f WHERE f.id = lamin.feature_id(feature_name);
    IF vals IS NULL OR cardinality(vals) = 0 THEN
        RAISE EXCEPTION 'annotate: no values given for feature %', quote_literal(feat.name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(vals, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'annotate: NULL among the values for feature %', quote_literal(feat.name) USING ERRCODE = 'null_value_not_allowed';
    END IF;
    registry := lamin.dtype_registry(feat.dtype);
    -- The field the feature's dtype names (cat[bionty.gene.ensembl_gene_id]) unless one is given.
    field := coalesce(field, lamin.dtype_field(feat.dtype));

    IF registry = 'lamin.ulabel' THEN
        SELECT string_agg(quote_literal(v), ', ' ORDER BY v) INTO missing
        FROM (SELECT DISTINCT v FROM unnest(vals) v) d
        WHERE NOT EXISTS (SELECT 1 FROM lamin.ulabel u WHERE u.name = d.v AND u.branch_id <> -1);
        IF missing IS NOT NULL THEN
            hints := lamin.did_you_mean('lamin.ulabel', vals, NULL);
            RAISE EXCEPTION 'feature % (dtype %): values not in lamin.ulabel: %', quote_literal(feat.name), feat.dtype,
                missing || coalesce('; ' || hints, '')
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'create the labels first, e.g. INSERT INTO lamin.ulabel (name) VALUES (...)';
        END IF;
        -- Names are unique per space and type: of the spaces the caller reads
        -- that have a label of a name, the current space's first.
        SELECT string_agg(quote_literal(u.name), ', ') INTO ambiguous
        FROM (SELECT u.name FROM lamin.ulabel u
              WHERE u.name = ANY (vals) AND u.branch_id <> -1
                AND u.space_id = (SELECT x.space_id FROM lamin.ulabel x WHERE x.name = u.name AND x.branch_id <> -1
                                  ORDER BY x.space_id = lamin.current_space_id() DESC, x.space_id LIMIT 1)
              GROUP BY u.name HAVING count(*) > 1) u;
        IF ambiguous IS NOT NULL THEN
            RAISE EXCEPTION 'feature %: label names used by more than one ulabel type: %', quote_literal(feat.name), ambiguous
                USING ERRCODE = 'cardinality_violation';
        END IF;
        INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
        SELECT aid, u.id, feat.id FROM lamin.ulabel u
        WHERE u.name = ANY (vals) AND u.branch_id <> -1
          AND u.space_id = (SELECT x.space_id FROM lamin.ulabel x WHERE x.name = u.name AND x.branch_id <> -1
                            ORDER BY x.space_id = lamin.current_space_id() DESC, x.space_id LIMIT 1)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS added = ROW_COUNT;
        RETURN added;
    ELSIF registry IS NOT NULL THEN
        -- Another registry (bionty.cell_type, …): values are names (genes: symbols)
        -- of its records, or values of `field` (e.g. ensembl_gene_id, the field
        -- a curation matched on), linked through <schema>.artifact_<table>.
        SELECT r.name_field INTO name_field FROM lamin.registry r WHERE r.name = registry;
        IF field IS NOT NULL AND name_field IS NOT NULL THEN
            IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(registry) AND a.attname = field
                           AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'annotate: % has no field %', registry, quote_literal(field)
                    USING ERRCODE = 'undefined_column',
                          HINT = format('the fields of %s are its text columns, e.g. %s', registry, name_field);
            END IF;
            name_field := field;
        END IF;
        link := format('%I.%I', split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2));
        IF name_field IS NULL OR to_regclass(link) IS NULL THEN
            RAISE EXCEPTION 'feature % (dtype %): artifacts cannot be annotated with records of %', quote_literal(feat.name), feat.dtype, registry
                USING ERRCODE = 'feature_not_supported', HINT = 'annotatable registries have a link table <schema>.artifact_<table>';
        END IF;
        tbl := format('%I.%I', split_part(registry, '.', 1), split_part(registry, '.', 2));
        EXECUTE format($q$SELECT string_agg(quote_literal(d.v), ', ' ORDER BY d.v)
                          FROM (SELECT DISTINCT v FROM unnest($1) v) d
                          WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE t.%I = d.v AND t.branch_id <> -1)$q$, tbl, name_field)
        INTO missing USING vals;
        IF missing IS NOT NULL THEN
            hints := lamin.did_you_mean(registry, vals, name_field);
            RAISE EXCEPTION 'feature % (dtype %): values not in %: %', quote_literal(feat.name), feat.dtype,
                registry || CASE WHEN field IS NOT NULL THEN format(' (field %s)', name_field) ELSE '' END,
                missing || coalesce('; ' || hints, '')
                USING ERRCODE = 'foreign_key_violation',
                      HINT = format('map synonyms and ids first: SELECT lamin.standardize(%L, ARRAY[...])', registry);
        END IF;
        -- A name shared by several live records is ambiguous; a name whose only
        -- other holders are deprecated (obsolete duplicates) links the live one.
        EXECUTE format($q$SELECT string_agg(quote_literal(x.n), ', ') FROM (
                              SELECT t.%2$I AS n FROM %1$s t WHERE t.%2$I = ANY ($1) AND t.branch_id <> -1 AND NOT t.deprecated
                              GROUP BY 1 HAVING count(*) > 1) x$q$, tbl, name_field)
        INTO ambiguous USING vals;
        IF ambiguous IS NOT NULL THEN
            RAISE EXCEPTION 'feature %: names used by more than one record of %: %', quote_literal(feat.name), registry, ambiguous
                USING ERRCODE = 'cardinality_violation';
        END IF;
        EXECUTE format($q$INSERT INTO %1$s (artifact_id, %2$I, feature_id)
                          SELECT $1, t.id, $2 FROM %3$s t
                          WHERE t.%4$I = ANY ($3) AND t.branch_id <> -1
                            AND (NOT t.deprecated OR NOT EXISTS (
                                SELECT 1 FROM %3$s o WHERE o.%4$I = t.%4$I AND o.branch_id <> -1 AND NOT o.deprecated))
                          ON CONFLICT DO NOTHING$q$,
                       link, split_part(registry, '.', 2) || '_id', tbl, name_field)
        USING aid, feat.id, vals;
        GET DIAGNOSTICS added = ROW_COUNT;
        RETURN added;
    END IF;

    -- Non-categorical: check every value casts to the dtype, then store them.
    SELECT string_agg(quote_literal(v), ', ') INTO bad FROM unnest(vals) v WHERE lamin.typed_value(feat.dtype, v) IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'feature % (dtype %): values that are not %: %', quote_literal(feat.name), feat.dtype, feat.dtype, bad
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value)
    SELECT DISTINCT aid, feat.id, lamin.typed_value(feat.dtype, v) FROM unnest(vals) v
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END
$$;


-- == typed feature values ==
-- Typed columns beside the canonical JSON of artifact values (filled below
-- from each feature's dtype), value tables for collections and runs, one
-- trigger that types and checks values, the add / set / remove API, run
-- parameters stored as typed run values, and views to query values.
ALTER TABLE lamin.artifact_feature_value
    ADD COLUMN value_number double precision,
    ADD COLUMN value_text text,
    ADD COLUMN value_boolean boolean,
    ADD COLUMN value_date date,
    ADD COLUMN value_timestamp timestamptz;
COMMENT ON TABLE lamin.artifact_feature_value IS 'Values of non-categorical features of artifacts (numbers, strings, dates, ...): canonical JSON in value, typed copies in value_number, value_text, value_boolean, value_date, value_timestamp (filled and checked by a trigger from the feature''s dtype). Categorical values are links (lamin.artifact_ulabel, bionty.artifact_*).';
COMMENT ON COLUMN lamin.artifact_feature_value.value IS 'The value, canonical JSON of the feature''s dtype (one element of a list[...] feature).';
COMMENT ON COLUMN lamin.artifact_feature_value.value_number IS 'The value of an int, float or num feature in double precision (set by the trigger; the exact value is in value).';
COMMENT ON COLUMN lamin.artifact_feature_value.value_text IS 'The value of a str, url or path feature (set by the trigger).';
COMMENT ON COLUMN lamin.artifact_feature_value.value_boolean IS 'The value of a bool feature (set by the trigger).';
COMMENT ON COLUMN lamin.artifact_feature_value.value_date IS 'The value of a date feature (set by the trigger).';
COMMENT ON COLUMN lamin.artifact_feature_value.value_timestamp IS 'The value of a datetime feature (set by the trigger).';

-- Collections and runs hold every kind of value here, categorical ones too
-- (as the canonical text of the registry record, checked by the trigger):
-- they have no label link tables.
CREATE TABLE lamin.collection_feature_value (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    collection_id   bigint NOT NULL REFERENCES lamin.collection ON DELETE CASCADE,
    feature_id      bigint NOT NULL REFERENCES lamin.feature ON DELETE RESTRICT,
    value           jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    value_number    double precision,
    value_text      text,
    value_boolean   boolean,
    value_date      date,
    value_timestamp timestamptz,
    CONSTRAINT collection_feature_value_unique UNIQUE (collection_id, feature_id, value)
);
CREATE INDEX collection_feature_value_number ON lamin.collection_feature_value (feature_id, value_number, collection_id) WHERE value_number IS NOT NULL;
CREATE INDEX collection_feature_value_text ON lamin.collection_feature_value (feature_id, value_text, collection_id) WHERE value_text IS NOT NULL;
CREATE INDEX collection_feature_value_boolean ON lamin.collection_feature_value (feature_id, value_boolean, collection_id) WHERE value_boolean IS NOT NULL;
CREATE INDEX collection_feature_value_date ON lamin.collection_feature_value (feature_id, value_date, collection_id) WHERE value_date IS NOT NULL;
CREATE INDEX collection_feature_value_timestamp ON lamin.collection_feature_value (feature_id, value_timestamp, collection_id) WHERE value_timestamp IS NOT NULL;
COMMENT ON TABLE lamin.collection_feature_value IS 'Feature values of collections, categorical ones included (the registry record''s canonical text): canonical JSON in value, typed copies filled and checked by a trigger from the feature''s dtype.';
COMMENT ON COLUMN lamin.collection_feature_value.id IS 'Internal id; refer to records by uid.';
COMMENT ON COLUMN lamin.collection_feature_value.collection_id IS 'The collection (lamin.collection.id).';
COMMENT ON COLUMN lamin.collection_feature_value.feature_id IS 'The feature (lamin.feature.id).';
COMMENT ON COLUMN lamin.collection_feature_value.created_at IS 'When the record was created.';
COMMENT ON COLUMN lamin.collection_feature_value.created_by IS 'The lamin user (lamin.user.id) who created the record.';
COMMENT ON COLUMN lamin.collection_feature_value.value IS 'The value, canonical JSON of the feature''s dtype (one element of a list[...] feature).';
COMMENT ON COLUMN lamin.collection_feature_value.value_number IS 'The value of an int, float or num feature in double precision (set by the trigger; the exact value is in value).';
COMMENT ON COLUMN lamin.collection_feature_value.value_text IS 'The value of a str, url, path or categorical feature (set by the trigger).';
COMMENT ON COLUMN lamin.collection_feature_value.value_boolean IS 'The value of a bool feature (set by the trigger).';
COMMENT ON COLUMN lamin.collection_feature_value.value_date IS 'The value of a date feature (set by the trigger).';
COMMENT ON COLUMN lamin.collection_feature_value.value_timestamp IS 'The value of a datetime feature (set by the trigger).';

CREATE TABLE lamin.run_feature_value (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id          bigint NOT NULL REFERENCES lamin.run ON DELETE CASCADE,
    feature_id      bigint NOT NULL REFERENCES lamin.feature ON DELETE RESTRICT,
    value           jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    value_number    double precision,
    value_text      text,
    value_boolean   boolean,
    value_date      date,
    value_timestamp timestamptz,
    CONSTRAINT run_feature_value_unique UNIQUE (run_id, feature_id, value)
);
CREATE INDEX run_feature_value_number ON lamin.run_feature_value (feature_id, value_number, run_id) WHERE value_number IS NOT NULL;
CREATE INDEX run_feature_value_text ON lamin.run_feature_value (feature_id, value_text, run_id) WHERE value_text IS NOT NULL;
CREATE INDEX run_feature_value_boolean ON lamin.run_feature_value (feature_id, value_boolean, run_id) WHERE value_boolean IS NOT NULL;
CREATE INDEX run_feature_value_date ON lamin.run_feature_value (feature_id, value_date, run_id) WHERE value_date IS NOT NULL;
CREATE INDEX run_feature_value_timestamp ON lamin.run_feature_value (feature_id, value_timestamp, run_id) WHERE value_timestamp IS NOT NULL;
COMMENT ON TABLE lamin.run_feature_value IS 'Feature values of runs (run parameters that name a feature, lamin.add_values), categorical ones included: canonical JSON in value, typed copies filled and checked by a trigger from the feature''s dtype.';
COMMENT ON COLUMN lamin.run_feature_value.id IS 'Internal id; refer to records by uid.';
COMMENT ON COLUMN lamin.run_feature_value.run_id IS 'The run (lamin.run.id).';
COMMENT ON COLUMN lamin.run_feature_value.feature_id IS 'The feature (lamin.feature.id).';
COMMENT ON COLUMN lamin.run_feature_value.created_at IS 'When the record was created.';
COMMENT ON COLUMN lamin.run_feature_value.created_by IS 'The lamin user (lamin.user.id) who created the record.';
COMMENT ON COLUMN lamin.run_feature_value.value IS 'The value, canonical JSON of the feature''s dtype (one element of a list[...] feature).';
COMMENT ON COLUMN lamin.run_feature_value.value_number IS 'The value of an int, float or num feature in double precision (set by the trigger; the exact value is in value).';
COMMENT ON COLUMN lamin.run_feature_value.value_text IS 'The value of a str, url, path or categorical feature (set by the trigger).';
COMMENT ON COLUMN lamin.run_feature_value.value_boolean IS 'The value of a bool feature (set by the trigger).';
COMMENT ON COLUMN lamin.run_feature_value.value_date IS 'The value of a date feature (set by the trigger).';
COMMENT ON COLUMN lamin.run_feature_value.value_timestamp IS 'The value of a datetime feature (set by the trigger).';

-- A JSON value made to fit a dtype: the canonical JSON and its typed copy, or
-- all NULL when it does not fit. `coerce` (lamin.feature.coerce, or run
-- parameters that came in as text) also accepts numbers and booleans written
-- as strings. Datetimes are kept in UTC, so that one instant has one form
-- whatever the session's time zone.
CREATE FUNCTION lamin.fit_value(dtype text, val jsonb, coerce boolean DEFAULT false,
                                OUT value jsonb, OUT value_number numeric, OUT value_text text,
                                OUT value_boolean boolean, OUT value_date date, OUT value_timestamp timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base text := lamin.dtype_base(dtype);
    kind text := jsonb_typeof(val);
    txt text := val #>> '{}';
BEGIN
    IF val IS NULL OR kind = 'null' OR kind = 'array' THEN
        RETURN;
    END IF;
    IF base IN ('int', 'float', 'num') THEN
        IF kind = 'number' OR (coerce AND kind = 'string') THEN
            value_number := txt::numeric;
        END IF;
        IF base = 'int' THEN
            -- An integer-valued number (3.0) is the integer; 3.5 is no int.
            IF value_number <> trunc(value_number) THEN
                value_number := NULL;
            END IF;
            value := to_jsonb(value_number::bigint);
            value_number := value_number::bigint;
        ELSIF base = 'float' THEN
            value := to_jsonb(value_number::double precision);
            value_number := value_number::double precision::numeric;
        ELSE
            value := to_jsonb(value_number);
        END IF;
    ELSIF base = 'bool' THEN
        IF kind = 'boolean' OR (coerce AND kind = 'string') THEN
            value_boolean := txt::boolean;
            value := to_jsonb(value_boolean);
        END IF;
    ELSIF base = 'date' THEN
        IF kind = 'string' THEN
            value_date := txt::date;
            value := to_jsonb(value_date);
        END IF;
    ELSIF base = 'datetime' THEN
        IF kind = 'string' THEN
            value_timestamp := txt::timestamptz;
            value := to_jsonb((to_jsonb(value_timestamp AT TIME ZONE 'UTC') #>> '{}') || '+00:00');
        END IF;
    ELSIF base = 'dict' THEN
        IF kind = 'object' THEN
            value := val;
        END IF;
    ELSIF base = 'url' THEN
        IF kind = 'string' AND txt ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]]+$' THEN
            value_text := txt;
            value := val;
        END IF;
    ELSIF base IN ('path', 'cat') THEN
        IF kind = 'string' AND btrim(txt) <> '' THEN
            value_text := txt;
            value := val;
        END IF;
    ELSIF kind = 'string' OR (coerce AND kind IN ('number', 'boolean')) THEN
        -- str
        value_text := txt;
        value := to_jsonb(txt);
    END IF;
    IF value IS NULL THEN
        value_number := NULL; value_text := NULL; value_boolean := NULL; value_date := NULL; value_timestamp := NULL;
    END IF;
EXCEPTION WHEN data_exception THEN
    value := NULL; value_number := NULL; value_text := NULL; value_boolean := NULL; value_date := NULL; value_timestamp := NULL;
END
$$;
COMMENT ON FUNCTION lamin.fit_value(text, jsonb, boolean) IS
    'A JSON value made to fit a feature dtype: its canonical JSON and typed copy (value_number, value_text, value_boolean, value_date, value_timestamp), or all NULL when it does not fit; coerce accepts numbers and booleans written as text.';

-- Whether a text is a record of the registry a categorical dtype names (in
-- its name field, or the field the dtype names), among the records the
-- caller can read (row-level security applies: no hint of others).
CREATE FUNCTION lamin.in_registry(dtype text, val text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    registry text := lamin.dtype_registry(dtype);
    field text := coalesce(lamin.dtype_field(dtype), (SELECT r.name_field FROM lamin.registry r WHERE r.name = lamin.dtype_registry(dtype)), 'name');
    tbl text := format('%I.%I', split_part(registry, '.', 1), split_part(registry, '.', 2));
    found boolean;
BEGIN
    IF registry IS NULL OR to_regclass(tbl) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s t WHERE t.%I = $1%s)', tbl, field,
                   CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(tbl) AND a.attname = 'branch_id'
                                     AND a.attnum > 0 AND NOT a.attisdropped)
                        THEN ' AND t.branch_id <> -1' ELSE '' END)
    INTO found USING val;
    RETURN found;
END
$$;
COMMENT ON FUNCTION lamin.in_registry(text, text) IS
    'Whether a value names a record (not in the trash) of the registry of a categorical dtype, in its name field or the field the dtype names; only readable records count.';

-- The message of a value that does not fit its feature, shared by the
-- trigger and the API (one wording everywhere).
CREATE FUNCTION lamin.value_misfit(feature text, dtype text, val jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('feature %s (dtype %s): %s is not %s', quote_literal(feature), dtype, left(val::text, 200),
                  CASE lamin.dtype_base(dtype)
                      WHEN 'int' THEN 'an integer (a JSON number without a fraction)'
                      WHEN 'float' THEN 'a number'
                      WHEN 'num' THEN 'a number'
                      WHEN 'bool' THEN 'a boolean (true or false)'
                      WHEN 'date' THEN 'a date (a string such as "2024-05-17")'
                      WHEN 'datetime' THEN 'a datetime (a string such as "2024-05-17T09:30:00+02:00")'
                      WHEN 'dict' THEN 'a dict (a JSON object)'
                      WHEN 'url' THEN 'a URL (a string such as "https://example.org/x" or "s3://bucket/key")'
                      WHEN 'path' THEN 'a path (a non-empty string)'
                      WHEN 'cat' THEN 'a label (a non-empty string naming a record)'
                      ELSE 'a string' END)
$$;
COMMENT ON FUNCTION lamin.value_misfit(text, text, jsonb) IS 'The error message for a value that does not fit its feature''s dtype.';

-- The trigger of the three value tables: check and type a value before it
-- is written. Runs as the caller: it reads the feature, the registry and
-- the record's other values through row-level security.
CREATE FUNCTION lamin.tg_feature_value() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
    fit record;
    owner_id bigint;
    owner_kind text := split_part(TG_TABLE_NAME, '_', 1);
    registry text;
    other jsonb;
    hints text;
BEGIN
    IF TG_TABLE_NAME = 'artifact_feature_value' THEN
        owner_id := NEW.artifact_id;
    ELSIF TG_TABLE_NAME = 'collection_feature_value' THEN
        owner_id := NEW.collection_id;
    ELSE
        owner_id := NEW.run_id;
    END IF;
    SELECT x.id, x.name, x.dtype, x.coerce INTO f FROM lamin.feature x WHERE x.id = NEW.feature_id;
    IF NOT FOUND THEN
        -- A feature the caller cannot read (or none): the row-level security
        -- policy (or the foreign key) refuses the row with its usual message,
        -- the same whether the feature exists elsewhere or not at all.
        RETURN NEW;
    END IF;
    IF NEW.value IS NULL OR jsonb_typeof(NEW.value) = 'null' THEN
        RAISE EXCEPTION 'feature % (dtype %): a value cannot be NULL', quote_literal(f.name), f.dtype
            USING ERRCODE = 'null_value_not_allowed', HINT = 'to remove values: lamin.remove_values(kind, uid, feature)';
    END IF;
    IF jsonb_typeof(NEW.value) = 'array' THEN
        RAISE EXCEPTION 'feature % (dtype %): % is a list; a row holds one value', quote_literal(f.name), f.dtype, left(NEW.value::text, 200)
            USING ERRCODE = 'datatype_mismatch',
                  HINT = CASE WHEN f.dtype LIKE 'list[%' THEN 'write one row per element, or let lamin.add_values split the list'
                              ELSE format('a %s feature holds one value; a feature of dtype list[%s] holds several', f.dtype, f.dtype) END;
    END IF;
    registry := lamin.dtype_registry(f.dtype);
    IF registry IS NOT NULL AND owner_kind = 'artifact' THEN
        RAISE EXCEPTION 'feature % (dtype %) is categorical: artifacts link its values as records of %', quote_literal(f.name), f.dtype, registry
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'use lamin.add_values(''artifact'', uid, ''{"feature": ["value", ...]}'') or lamin.annotate(uid, feature, ARRAY[...])';
    END IF;
    fit := lamin.fit_value(f.dtype, NEW.value, f.coerce);
    IF fit.value IS NULL THEN
        RAISE EXCEPTION '%', lamin.value_misfit(f.name, f.dtype, NEW.value) USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF registry IS NOT NULL AND NOT lamin.in_registry(f.dtype, fit.value_text) THEN
        hints := lamin.did_you_mean(registry, ARRAY[fit.value_text], lamin.dtype_field(f.dtype));
        RAISE EXCEPTION 'feature % (dtype %): % is not in %', quote_literal(f.name), f.dtype, quote_literal(fit.value_text),
            registry || coalesce('; ' || hints, '')
            USING ERRCODE = 'foreign_key_violation',
                  HINT = format('values of a categorical feature name records of its registry: create the record first, or map synonyms with SELECT lamin.standardize(%L, ARRAY[...])', registry);
    END IF;
    -- (Index rows are at most ~2.7 kB.)
    IF octet_length(fit.value_text) > 2600 THEN
        RAISE EXCEPTION 'feature % (dtype %): a value of % bytes is too long (at most 2600)', quote_literal(f.name), f.dtype, octet_length(fit.value_text)
            USING ERRCODE = 'program_limit_exceeded', HINT = 'store long text as an artifact and its key or uid as the value';
    END IF;
    NEW.value := fit.value;
    NEW.value_number := fit.value_number;
    NEW.value_text := fit.value_text;
    NEW.value_boolean := fit.value_boolean;
    NEW.value_date := fit.value_date;
    NEW.value_timestamp := fit.value_timestamp;
    -- One value per record of a feature that is neither list[...] nor
    -- categorical. A row lock on the record makes two writers of its values
    -- take turns, so that the second sees the first's value. (Not an
    -- advisory lock per record and feature: each takes a slot of the shared
    -- lock table until the transaction ends, and a statement writing more
    -- than a few thousand values ran out of them.)
    IF f.dtype NOT LIKE 'list[%' AND registry IS NULL THEN
        CASE owner_kind
            WHEN 'artifact' THEN PERFORM FROM lamin.artifact o WHERE o.id = owner_id FOR NO KEY UPDATE;
            WHEN 'collection' THEN PERFORM FROM lamin.collection o WHERE o.id = owner_id FOR NO KEY UPDATE;
            ELSE PERFORM FROM lamin.run o WHERE o.id = owner_id FOR NO KEY UPDATE;
        END CASE;
        EXECUTE format('SELECT t.value FROM lamin.%I t WHERE t.%I = $1 AND t.feature_id = $2 AND t.value <> $3 AND t.id <> $4 LIMIT 1',
                       TG_TABLE_NAME, owner_kind || '_id')
        INTO other USING owner_id, f.id, NEW.value, NEW.id;
        IF other IS NOT NULL THEN
            RAISE EXCEPTION 'feature % (dtype %) holds one value per %, which has % already (not also %)', quote_literal(f.name), f.dtype,
                owner_kind, left(other::text, 200), left(NEW.value::text, 200)
                USING ERRCODE = 'unique_violation',
                      HINT = format('replace it: SELECT lamin.set_values(%L, uid, ''{"%s": ...}''); a feature of dtype list[%s] holds several values',
                                    owner_kind, f.name, f.dtype);
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION lamin.tg_feature_value() IS
    'Trigger of the feature value tables: checks a value against its feature''s dtype (and registry, for categorical values of collections and runs), stores its canonical JSON and typed copy, and keeps one value per record for features that are neither list[...] nor categorical.';

-- Values stored before 0.6.0 get their typed copy (the stored JSON stays as
-- it is; a value that does not fit its feature's dtype keeps NULLs there).
UPDATE lamin.artifact_feature_value v
SET (value_number, value_text, value_boolean, value_date, value_timestamp) =
    (SELECT x.value_number, x.value_text, x.value_boolean, x.value_date, x.value_timestamp
     FROM lamin.fit_value((SELECT f.dtype FROM lamin.feature f WHERE f.id = v.feature_id), v.value) x);
CREATE INDEX artifact_feature_value_number ON lamin.artifact_feature_value (feature_id, value_number, artifact_id) WHERE value_number IS NOT NULL;
CREATE INDEX artifact_feature_value_text ON lamin.artifact_feature_value (feature_id, value_text, artifact_id) WHERE value_text IS NOT NULL;
CREATE INDEX artifact_feature_value_boolean ON lamin.artifact_feature_value (feature_id, value_boolean, artifact_id) WHERE value_boolean IS NOT NULL;
CREATE INDEX artifact_feature_value_date ON lamin.artifact_feature_value (feature_id, value_date, artifact_id) WHERE value_date IS NOT NULL;
CREATE INDEX artifact_feature_value_timestamp ON lamin.artifact_feature_value (feature_id, value_timestamp, artifact_id) WHERE value_timestamp IS NOT NULL;

CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.artifact_feature_value
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value();
CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.collection_feature_value
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value();
CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.run_feature_value
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value();

-- The record whose values a call writes: its id, and a clear refusal when the
-- caller may read it but not write its space (a record the caller cannot
-- read is "no such record", as everywhere).
CREATE FUNCTION lamin.value_owner(kind text, uid text, writing boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    found_id bigint;
    sid bigint;
    space_name text;
BEGIN
    IF kind = 'artifact' THEN
        found_id := lamin.artifact_id(uid);
        SELECT a.space_id INTO sid FROM lamin.artifact a WHERE a.id = found_id;
    ELSIF kind = 'collection' THEN
        found_id := lamin.collection_id(uid);
        SELECT c.space_id INTO sid FROM lamin.collection c WHERE c.id = found_id;
    ELSIF kind = 'run' THEN
        SELECT r.id, r.space_id INTO found_id, sid FROM lamin.run r WHERE r.uid = value_owner.uid;
        IF found_id IS NULL THEN
            RAISE EXCEPTION 'no run with uid %', coalesce(quote_literal(left(uid, 80)), 'NULL') USING ERRCODE = 'no_data_found';
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown kind %: feature values belong to an artifact, a collection or a run', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'kind is ''artifact'', ''collection'' or ''run''';
    END IF;
    IF writing AND NOT lamin.has_space_level(sid, 'write') THEN
        SELECT s.name INTO space_name FROM lamin.space s WHERE s.id = sid;
        RAISE EXCEPTION 'permission denied: writing feature values of % % needs write in space %, and role % can only read there',
            kind, uid, quote_literal(space_name), current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('an admin of the space grants it: SELECT lamin.grant(%L, %L, ''write'')', space_name, current_user);
    END IF;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION lamin.value_owner(text, text, boolean) IS
    'The id of the artifact, collection or run whose feature values are read or written (kind, uid); refuses writing without write access to its space.';

-- The one writer behind add_values, set_values and lamin.track's params:
-- checks every value first (nothing is written unless all fit), then writes.
--   mode 'add'     add values (a value already there is kept, not doubled)
--   mode 'set'     replace the values of each feature named
--   mode 'params'  run parameters: keys that name no feature are skipped
--                  (they stay in lamin.run.params only); values that came
--                  in as text are coerced
-- Returns the number of values (and label links) written.
CREATE FUNCTION lamin.write_values(kind text, uid text, vals jsonb, mode text DEFAULT 'add') RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    owner_id bigint := lamin.value_owner(kind, uid);
    tbl text := format('lamin.%I', kind || '_feature_value');
    col text := kind || '_id';
    item record;
    f record;
    elems jsonb[];
    e jsonb;
    bad jsonb;
    todo jsonb := '[]';
    n int := 0;
    c int;
    said text;
BEGIN
    IF mode NOT IN ('add', 'set', 'params') THEN
        RAISE EXCEPTION 'write_values: unknown mode %', quote_literal(mode) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF vals IS NULL OR jsonb_typeof(vals) <> 'object' THEN
        RAISE EXCEPTION 'feature values are a JSON object of feature names and values, not %', coalesce(left(vals::text, 200), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'e.g. ''{"temperature": 21.6, "experiment": "Exp 1", "cell_type": ["T cell"]}''';
    END IF;
    -- Check everything first.
    FOR item IN SELECT j.key, j.value FROM jsonb_each(vals) j ORDER BY j.key LOOP
        said := CASE WHEN mode = 'params' THEN format('run parameter %s names a feature: ', quote_literal(item.key)) ELSE '' END;
        IF mode = 'params' THEN
            SELECT x.id, x.name, x.dtype, x.coerce INTO f FROM lamin.feature x WHERE x.name = item.key
            ORDER BY x.space_id = lamin.current_space_id() DESC, x.id LIMIT 1;
            CONTINUE WHEN NOT FOUND;
        ELSE
            SELECT x.id, x.name, x.dtype, x.coerce INTO f FROM lamin.feature x WHERE x.id = lamin.feature_id(item.key);
        END IF;
        IF jsonb_typeof(item.value) = 'null' THEN
            RAISE EXCEPTION '%feature % (dtype %): NULL is no value', said, quote_literal(f.name), f.dtype
                USING ERRCODE = 'null_value_not_allowed',
                      HINT = CASE WHEN mode = 'params' THEN 'leave the parameter out, or give it a value'
                                  ELSE format('to remove values: SELECT lamin.remove_values(%L, %L, %L)', kind, uid, f.name) END;
        END IF;
        IF jsonb_typeof(item.value) = 'array' THEN
            IF f.dtype NOT LIKE 'list[%' AND lamin.dtype_registry(f.dtype) IS NULL THEN
                RAISE EXCEPTION '%feature % (dtype %) holds one value, not the list %', said, quote_literal(f.name),
                    f.dtype, left(item.value::text, 200)
                    USING ERRCODE = 'datatype_mismatch', HINT = format('a feature of dtype list[%s] holds several values', f.dtype);
            END IF;
            IF jsonb_array_length(item.value) = 0 THEN
                RAISE EXCEPTION '%feature % (dtype %): the list is empty', said, quote_literal(f.name), f.dtype
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = format('to remove values: SELECT lamin.remove_values(%L, %L, %L)', kind, uid, f.name);
            END IF;
            elems := ARRAY(SELECT x FROM jsonb_array_elements(item.value) x);
        ELSE
            elems := ARRAY[item.value];
        END IF;
        IF lamin.dtype_registry(f.dtype) IS NOT NULL AND kind = 'artifact' THEN
            -- Links: lamin.annotate checks the registry (all or nothing).
            SELECT x INTO bad FROM unnest(elems) x WHERE jsonb_typeof(x) <> 'string' LIMIT 1;
        ELSE
            SELECT x INTO bad FROM unnest(elems) x
            WHERE (lamin.fit_value(f.dtype, x, f.coerce OR mode = 'params')).value IS NULL LIMIT 1;
        END IF;
        IF bad IS NOT NULL OR array_position(elems, 'null'::jsonb) IS NOT NULL THEN
            RAISE EXCEPTION '%', said || lamin.value_misfit(f.name, f.dtype, coalesce(bad, 'null'))
                USING ERRCODE = 'datatype_mismatch',
                      HINT = CASE WHEN mode = 'params' THEN 'give the parameter a value of the feature''s dtype, or another name (parameters that name no feature are kept in lamin.run.params only)'
                                  ELSE 'lamin.feature lists each feature''s dtype' END;
        END IF;
        IF lamin.dtype_registry(f.dtype) IS NOT NULL AND kind <> 'artifact' THEN
            SELECT x INTO bad FROM unnest(elems) x WHERE NOT lamin.in_registry(f.dtype, x #>> '{}') LIMIT 1;
            IF bad IS NOT NULL THEN
                RAISE EXCEPTION '%feature % (dtype %): % is not in %', said, quote_literal(f.name), f.dtype, quote_literal(bad #>> '{}'),
                    lamin.dtype_registry(f.dtype) || coalesce('; ' || lamin.did_you_mean(lamin.dtype_registry(f.dtype), ARRAY[bad #>> '{}'], lamin.dtype_field(f.dtype)), '')
                    USING ERRCODE = 'foreign_key_violation',
                          HINT = format('values of a categorical feature name records of its registry: create the record first, or map synonyms with SELECT lamin.standardize(%L, ARRAY[...])', lamin.dtype_registry(f.dtype));
            END IF;
        END IF;
        todo := todo || jsonb_build_array(jsonb_build_object('id', f.id, 'name', f.name, 'dtype', f.dtype, 'elems', to_jsonb(elems)));
    END LOOP;
    -- Then write.
    FOR item IN SELECT x AS t FROM jsonb_array_elements(todo) x LOOP
        IF mode = 'set' THEN
            PERFORM lamin.remove_values(kind, uid, item.t ->> 'name');
        END IF;
        IF lamin.dtype_registry(item.t ->> 'dtype') IS NOT NULL AND kind = 'artifact' THEN
            n := n + lamin.annotate(uid, item.t ->> 'name', ARRAY(SELECT jsonb_array_elements_text(item.t -> 'elems')));
        ELSE
            IF mode = 'params' THEN
                -- Coerce here (the trigger coerces only for features marked coerce).
                item.t := jsonb_set(item.t, '{elems}', (SELECT jsonb_agg((lamin.fit_value(item.t ->> 'dtype', x, true)).value)
                                                        FROM jsonb_array_elements(item.t -> 'elems') x));
            END IF;
            EXECUTE format('INSERT INTO %s (%I, feature_id, value) SELECT $1, $2, x FROM jsonb_array_elements($3) x ON CONFLICT DO NOTHING', tbl, col)
            USING owner_id, (item.t ->> 'id')::bigint, item.t -> 'elems';
            GET DIAGNOSTICS c = ROW_COUNT;
            n := n + c;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION lamin.write_values(text, text, jsonb, text) IS
    'The writer behind lamin.add_values, lamin.set_values and lamin.track''s params (mode add, set or params): checks every value against its feature, then writes them; returns the number written.';

CREATE FUNCTION lamin.add_values(kind text, uid text, vals jsonb) RETURNS int
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT lamin.write_values(kind, uid, vals, 'add') $$;
COMMENT ON FUNCTION lamin.add_values(text, text, jsonb) IS
    'Add feature values to an artifact, collection or run (kind, uid, {"feature": value or [values], ...}): typed and checked against each feature''s dtype, all or nothing; categorical values of artifacts become label links. A feature that is neither list[...] nor categorical holds one value (a different second value is refused: use set_values). Returns the number of new values.';

CREATE FUNCTION lamin.set_values(kind text, uid text, vals jsonb) RETURNS int
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT lamin.write_values(kind, uid, vals, 'set') $$;
COMMENT ON FUNCTION lamin.set_values(text, text, jsonb) IS
    'Replace the values of the features named (kind, uid, {"feature": value or [values], ...}): their old values (and label links) go, the new ones are added, all or nothing; other features keep theirs. Returns the number of values written.';

CREATE FUNCTION lamin.remove_values(kind text, uid text, feature text, value jsonb DEFAULT NULL) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    owner_id bigint := lamin.value_owner(kind, uid);
    f record;
    registry text;
    field text;
    vals jsonb[];
    texts text[];
    n int;
BEGIN
    SELECT x.id, x.name, x.dtype, x.coerce INTO f FROM lamin.feature x WHERE x.id = lamin.feature_id(feature);
    IF value IS NOT NULL THEN
        -- The values as given and in canonical form (either matches).
        vals := ARRAY(SELECT x FROM jsonb_array_elements(CASE WHEN jsonb_typeof(value) = 'array' THEN value ELSE jsonb_build_array(value) END) x
                      UNION SELECT (lamin.fit_value(f.dtype, x, true)).value
                      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(value) = 'array' THEN value ELSE jsonb_build_array(value) END) x);
        texts := ARRAY(SELECT x #>> '{}' FROM unnest(vals) x WHERE x IS NOT NULL);
    END IF;
    registry := lamin.dtype_registry(f.dtype);
    IF registry IS NOT NULL AND kind = 'artifact' THEN
        IF registry = 'lamin.ulabel' THEN
            DELETE FROM lamin.artifact_ulabel l USING lamin.ulabel u
            WHERE l.artifact_id = owner_id AND l.feature_id = f.id AND u.id = l.ulabel_id
              AND (texts IS NULL OR u.name = ANY (texts));
            GET DIAGNOSTICS n = ROW_COUNT;
        ELSE
            field := coalesce(lamin.dtype_field(f.dtype), (SELECT r.name_field FROM lamin.registry r WHERE r.name = registry), 'name');
            IF to_regclass(format('%I.%I', split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2))) IS NULL THEN
                RETURN 0;
            END IF;
            EXECUTE format('DELETE FROM %1$I.%2$I l USING %1$I.%3$I t WHERE l.artifact_id = $1 AND l.feature_id = $2 AND t.id = l.%4$I
                              AND ($3 IS NULL OR t.%5$I = ANY ($3))',
                           split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2), split_part(registry, '.', 2),
                           split_part(registry, '.', 2) || '_id', field)
            USING owner_id, f.id, texts;
            GET DIAGNOSTICS n = ROW_COUNT;
        END IF;
        RETURN n;
    END IF;
    EXECUTE format('DELETE FROM lamin.%I t WHERE t.%I = $1 AND t.feature_id = $2 AND ($3 IS NULL OR t.value = ANY ($3))',
                   kind || '_feature_value', kind || '_id')
    USING owner_id, f.id, vals;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION lamin.remove_values(text, text, text, jsonb) IS
    'Remove the values of a feature from an artifact, collection or run (kind, uid, feature), or only the value(s) given (a value or a JSON list); categorical values of artifacts: their label links. Returns the number removed (0 when there was none).';

-- Visible and written with their owner, like the artifacts' values.
SELECT lamin.secure_table('lamin.collection_feature_value', 'link:lamin.collection:collection_id|lamin.feature:feature_id');
SELECT lamin.secure_table('lamin.run_feature_value', 'link:lamin.run:run_id|lamin.feature:feature_id');

-- Rows for pg_dump (see sql/14_backup.sql). Here, after the tables of 0.5.0
-- and before those of sql/25, in the order the upgrade script registers them
-- (pg_dump compares the list in order).
SELECT pg_catalog.pg_extension_config_dump('lamin.collection_feature_value', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.run_feature_value', '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.collection_feature_value', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.run_feature_value', 'id')::regclass, '');

-- (A fresh install grants every sequence of the schema at once.)
GRANT USAGE ON SEQUENCE lamin.collection_feature_value_id_seq, lamin.run_feature_value_id_seq TO lamin_reader;

CREATE OR REPLACE FUNCTION lamin.track(
    key         text,
    source_code text DEFAULT NULL,
    kind        text DEFAULT 'pipeline',
    description text DEFAULT NULL,
    params      jsonb DEFAULT NULL,
    version     text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    source_hash text := CASE WHEN source_code IS NOT NULL
                             THEN encode(sha256(convert_to(source_code, 'UTF8')), 'hex') END;
    current record;
    tf record;
    transform_uid text;
    run_uid text;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'lamin.track needs a key naming the transform, e.g. pipelines/qc.py'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM lamin.check_key(key);

    -- Re-calling track in the same session for the same transform keeps the run.
    SELECT r.uid, r.finished_at, t.key, t.hash INTO current
    FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id
    WHERE r.id = lamin.current_run_id();
    IF FOUND AND current.finished_at IS NULL AND current.key = key
       AND (source_hash IS NULL OR current.hash IS NOT DISTINCT FROM source_hash) THEN
        RETURN current.uid;
    END IF;

    PERFORM lamin.require_write('tracking a run');
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.transform.key:' || key, 0));
    SELECT NULL::bigint AS id, NULL::text AS uid, NULL::text AS hash, NULL::text AS stem INTO tf;
    IF source_hash IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('lamin.transform.hash:' || source_hash, 0));
        SELECT t.id, t.uid, t.hash, t.stem INTO tf FROM lamin.transform t WHERE t.hash = source_hash;
    END IF;
    IF tf.id IS NULL THEN
        -- The latest transform under this key: reuse it when its source is the
        -- same (or unknown), else the changed source is its next version.
        SELECT t.id, t.uid, t.hash, t.stem INTO tf FROM lamin.transform t
        WHERE t.key = key AND t.branch_id <> -1 ORDER BY t.id DESC LIMIT 1;
        IF tf.id IS NULL OR (source_hash IS NOT NULL AND tf.hash IS DISTINCT FROM source_hash) THEN
            transform_uid := CASE WHEN tf.id IS NULL THEN lamin.uid(12) || '0000'
                                  ELSE lamin.next_version_uid('lamin.transform', tf.stem) END;
            INSERT INTO lamin.transform AS t (uid, key, kind, description, source_code, hash, version)
            VALUES (transform_uid, key, kind, description, source_code, source_hash, version)
            RETURNING t.id, t.uid, t.hash, t.stem INTO tf;
        END IF;
    END IF;

    INSERT INTO lamin.run AS r (transform_id, params, status, initiated_by_run_id)
    VALUES (tf.id, params, 'started', lamin.current_run_id())
    RETURNING r.uid INTO run_uid;
    -- Parameters whose key names a feature are that feature's values of the
    -- run: checked against its dtype (a misfit fails the call, no run is
    -- started) and stored typed in lamin.run_feature_value, where they can be
    -- queried (lamin.run_values). Other keys stay in run.params only.
    IF jsonb_typeof(params) = 'object' THEN
        PERFORM lamin.write_values('run', run_uid, params, 'params');
    END IF;
    -- Session-wide (is_local = false); rolled back with the transaction if it aborts.
    PERFORM set_config('lamin.run_uid', run_uid, false);
    RETURN run_uid;
END
$$;
COMMENT ON FUNCTION lamin.track(text, text, text, text, jsonb, text) IS
    'Find or create the transform (new version when its source changes) and start a run for this session; returns the run uid. Idempotent within a session. params whose key names a feature must fit its dtype and are also stored as the run''s feature values; other keys stay in run.params only.';

CREATE OR REPLACE VIEW lamin.feature_values WITH (security_invoker = true) AS
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

GRANT SELECT ON lamin.artifact_values, lamin.collection_values, lamin.run_values TO lamin_reader;

-- == schemas that validate datasets ==

ALTER TABLE lamin.schema ADD COLUMN otype text CONSTRAINT schema_otype_known
    CHECK (otype IN ('DataFrame', 'AnnData', 'MuData', 'SpatialData', 'tiledbsoma'));
ALTER TABLE lamin.schema ADD COLUMN coerce boolean NOT NULL DEFAULT false;
ALTER TABLE lamin.schema_feature ADD COLUMN optional boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN lamin.schema.hash IS 'sha256 (hex) of the definition: the member feature uids (sorted unless ordered) and, when they differ from the defaults, the sets, optional members, otype, coercion, itype and slots; the same definition is the same schema.';
COMMENT ON COLUMN lamin.schema.itype IS 'What the members are: lamin.feature (columns named by features), or a registry and field (e.g. bionty.gene.ensembl_gene_id) whose records the slot''s columns or index must be (a var.T slot of genes); lamin.schema for a composite (its slots are schemas, lamin.schema_component).';
COMMENT ON COLUMN lamin.schema.otype IS 'The object type a validated dataset must be (DataFrame, AnnData, ...); NULL for any.';
COMMENT ON COLUMN lamin.schema.coerce IS 'Whether validation may coerce every column to its feature''s dtype (as feature.coerce does for one feature).';
COMMENT ON COLUMN lamin.schema_feature.optional IS 'Whether validated data may lack this member although the schema is a minimal set.';

-- New parameters: nullable and coerce; the sets, optionals, otype, coercion, itype and slots.
DROP FUNCTION lamin.create_feature(text, text, text, text);
-- Create a feature, or return the existing one with the same name and dtype.
CREATE FUNCTION lamin.create_feature(name text, dtype text, description text DEFAULT NULL, unit text DEFAULT NULL,
                                     nullable boolean DEFAULT true, coerce boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    existing record;
    new_uid text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.feature.name:' || name, 0));
    -- (Names are unique per space: the current space's feature first.)
    SELECT f.uid, f.dtype, f.nullable, f.coerce INTO existing FROM lamin.feature f WHERE f.name = name
    ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    IF FOUND THEN
        IF existing.dtype <> dtype THEN
            RAISE EXCEPTION 'feature % exists with dtype %, not %', quote_literal(name), existing.dtype, dtype
                USING ERRCODE = 'unique_violation';
        END IF;
        IF (existing.nullable, existing.coerce) IS DISTINCT FROM (nullable, coerce) THEN
            -- Idempotent on name and dtype: a repeated call never changes a definition data was validated with.
            RAISE NOTICE 'feature % exists with nullable = %, coerce = %; unchanged (UPDATE lamin.feature to change it)',
                quote_literal(name), existing.nullable, existing.coerce;
        END IF;
        RETURN existing.uid;
    END IF;
    PERFORM lamin.require_write('creating a feature');
    INSERT INTO lamin.feature AS f (name, dtype, description, unit, nullable, coerce)
    VALUES (name, dtype, description, unit, coalesce(nullable, true), coalesce(coerce, false)) RETURNING f.uid INTO new_uid;
    RETURN new_uid;
END
$$;
COMMENT ON FUNCTION lamin.create_feature(text, text, text, text, boolean, boolean) IS
    'Create a feature (name, dtype such as int, str, cat[bionty.cell_type], list[str]; whether values may be missing; whether validation may coerce to the dtype); idempotent on name and dtype; returns its uid.';

DROP FUNCTION lamin.create_schema(text[], text, boolean, text);
-- Create a schema, or return the one with the same definition (LaminDB's
-- Schema: idempotent by a hash of the definition). A schema is either
--   * a set of features (the columns of a table, or of one slot such as obs):
--     required unless listed in `optionals` (minimal_set), others allowed
--     unless maximal_set; or
--   * an itype schema (itype => 'bionty.gene.ensembl_gene_id', no features):
--     the slot's columns or index must be records of that registry field (the
--     var.T slot of an AnnData: its genes); or
--   * a composite (slots => '{"obs": "<schema>", "var.T": "<schema>"}'): one
--     schema per slot of a dataset, each named by uid or name.
-- otype fixes the dataset's object type (DataFrame, AnnData, ...); coerce lets
-- validation coerce every column to its feature's dtype.
-- A schema with the 0.1.0 defaults keeps the hash of its members only, so the
-- schemas recorded from files before 0.6.0 are found again.
CREATE FUNCTION lamin.create_schema(features text[] DEFAULT NULL, name text DEFAULT NULL, ordered boolean DEFAULT false,
                                    description text DEFAULT NULL, minimal_set boolean DEFAULT true,
                                    maximal_set boolean DEFAULT false, optionals text[] DEFAULT NULL,
                                    otype text DEFAULT NULL, coerce boolean DEFAULT false, itype text DEFAULT NULL,
                                    slots jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    member_ids bigint[] := '{}';
    optional_ids bigint[] := '{}';
    unknown text;
    itype_registry text;
    itype_field text;
    components jsonb;
    definition text;
    member_hash text;
    hit record;
    new_id bigint;
    new_uid text;
BEGIN
    minimal_set := coalesce(minimal_set, true);
    maximal_set := coalesce(maximal_set, false);
    ordered := coalesce(ordered, false);
    coerce := coalesce(coerce, false);
    IF otype IS NOT NULL AND otype NOT IN ('DataFrame', 'AnnData', 'MuData', 'SpatialData', 'tiledbsoma') THEN
        RAISE EXCEPTION 'schema: unknown otype %', quote_literal(otype)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'the otypes are DataFrame, AnnData, MuData, SpatialData, tiledbsoma';
    END IF;
    IF slots IS NOT NULL THEN
        -- A composite: its slots name other schemas; it has no members of its own.
        IF cardinality(features) > 0 OR itype IS NOT NULL THEN
            RAISE EXCEPTION 'schema: slots and features (or itype) exclude each other'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'make a schema per slot, then one with slots => ''{"obs": "<uid or name>", "var.T": "<uid or name>"}''';
        END IF;
        IF jsonb_typeof(slots) <> 'object' OR slots = '{}' THEN
            RAISE EXCEPTION 'schema: slots must be a JSON object of slot → schema uid or name, e.g. {"obs": "cells", "var.T": "genes"}'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT k INTO unknown FROM jsonb_object_keys(slots) k WHERE k !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'schema: invalid slot name %', quote_literal(unknown)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'slots are e.g. columns, obs, var, var.T, rna:obs';
        END IF;
        SELECT jsonb_object_agg(e.key, lamin.schema_id(e.value #>> '{}')) INTO components FROM jsonb_each(slots) e;
        itype := 'lamin.schema';
        definition := 'composite' || (SELECT string_agg(format(';%s=%s', e.key, s.hash), '' ORDER BY e.key)
                                      FROM jsonb_each(components) e JOIN lamin.schema s ON s.id = (e.value #>> '{}')::bigint);
    ELSIF itype IS NOT NULL AND itype <> 'lamin.feature' THEN
        IF cardinality(features) > 0 THEN
            RAISE EXCEPTION 'schema: an itype schema (%) has no features: its members are the records of %', itype, itype
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        itype_registry := array_to_string((string_to_array(itype, '.'))[1:2], '.');
        itype_field := (string_to_array(itype, '.'))[3];
        IF itype !~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$' OR to_regclass(itype_registry) IS NULL THEN
            RAISE EXCEPTION 'schema: itype % names no registry', quote_literal(itype)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. bionty.gene.ensembl_gene_id or bionty.gene (matched on symbols)';
        END IF;
        IF itype_field IS NOT NULL AND NOT EXISTS (
            SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(itype_registry) AND a.attname = itype_field
              AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'schema: % has no field %', itype_registry, quote_literal(itype_field) USING ERRCODE = 'undefined_column';
        END IF;
        definition := 'itype:' || itype;
    ELSE
        itype := 'lamin.feature';
        IF features IS NULL OR cardinality(features) = 0 THEN
            RAISE EXCEPTION 'a schema needs at least one feature (or an itype, or slots)' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT array_agg(lamin.feature_id(f.n) ORDER BY f.ord) INTO member_ids FROM unnest(features) WITH ORDINALITY AS f(n, ord);
        IF (SELECT count(DISTINCT x) FROM unnest(member_ids) x) <> cardinality(member_ids) THEN
            RAISE EXCEPTION 'a schema lists each feature once' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT string_agg(quote_literal(o), ', ') INTO unknown FROM unnest(optionals) o WHERE o <> ALL (features);
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'schema: optionals not among the features: %', unknown USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT coalesce(array_agg(lamin.feature_id(o)), '{}') INTO optional_ids FROM unnest(optionals) o;
        SELECT CASE WHEN ordered THEN 'ordered:' ELSE 'set:' END ||
               string_agg(f.uid, ',' ORDER BY CASE WHEN ordered THEN m.ord END, f.uid)
        INTO definition
        FROM unnest(member_ids) WITH ORDINALITY AS m(id, ord) JOIN lamin.feature f ON f.id = m.id;
    END IF;
    -- What differs from the defaults joins the hash (so that schemas of 0.5.0 keep theirs).
    definition := definition
        || CASE WHEN NOT minimal_set THEN ';minimal=false' ELSE '' END
        || CASE WHEN maximal_set THEN ';maximal=true' ELSE '' END
        || coalesce(';optional=' || (SELECT string_agg(f.uid, ',' ORDER BY f.uid) FROM lamin.feature f WHERE f.id = ANY (optional_ids)), '')
        || coalesce(';otype=' || otype, '')
        || CASE WHEN coerce THEN ';coerce=true' ELSE '' END;
    member_hash := encode(sha256(convert_to(definition, 'UTF8')), 'hex');

    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.schema.hash:' || member_hash, 0));
    -- (Unique per space: the current space's first; one in the trash is still the same schema.)
    SELECT s.id, s.uid, s.name INTO hit FROM lamin.schema s WHERE s.hash = member_hash
    ORDER BY s.branch_id <> -1 DESC, s.space_id = lamin.current_space_id() DESC, s.id LIMIT 1;
    IF FOUND THEN
        IF name IS NOT NULL AND hit.name IS NULL THEN
            -- A schema recorded from a file gets the name a user gives its definition.
            UPDATE lamin.schema s SET name = create_schema.name, description = coalesce(s.description, create_schema.description),
                                      updated_at = now()
            WHERE s.id = hit.id;
        ELSIF name IS NOT NULL AND hit.name <> name THEN
            RAISE NOTICE 'schema % (%) has this definition already; returned as it is', hit.uid, quote_literal(hit.name);
        END IF;
        RETURN hit.uid;
    END IF;
    PERFORM lamin.require_write('creating a schema');
    INSERT INTO lamin.schema AS s (name, description, hash, n_members, is_ordered, minimal_set, maximal_set, itype, otype, coerce)
    VALUES (name, description, member_hash, coalesce(cardinality(member_ids), 0), ordered, minimal_set, maximal_set,
            itype, otype, coerce)
    RETURNING s.id, s.uid INTO new_id, new_uid;
    INSERT INTO lamin.schema_feature (schema_id, feature_id, position, optional)
    SELECT new_id, m.id, (m.ord - 1)::int, m.id = ANY (optional_ids) FROM unnest(member_ids) WITH ORDINALITY AS m(id, ord);
    INSERT INTO lamin.schema_component (composite_id, slot, component_id)
    SELECT new_id, e.key, (e.value #>> '{}')::bigint FROM jsonb_each(components) e;
    RETURN new_uid;
END
$$;
COMMENT ON FUNCTION lamin.create_schema(text[], text, boolean, text, boolean, boolean, text[], text, boolean, text, jsonb) IS
    'Create a schema — features (required unless optional; others allowed unless maximal_set), an itype (e.g. bionty.gene.ensembl_gene_id) or slots of other schemas — with an otype and coercion; idempotent by a hash of the definition; returns its uid.';

-- The id of a schema named by uid or name (readable by the caller), or an
-- error listing the schemas there are.
CREATE FUNCTION lamin.schema_id(ref text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_ids bigint[];
BEGIN
    SELECT array_agg(s.id ORDER BY s.id) INTO found_ids FROM lamin.schema s
    WHERE (s.uid = ref OR s.name = ref) AND s.branch_id <> -1;
    IF found_ids IS NULL THEN
        RAISE EXCEPTION 'unknown schema %', coalesce(quote_literal(left(ref, 200)), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'name a schema by uid or name; named schemas: ' ||
                         coalesce((SELECT string_agg(x.name, ', ' ORDER BY x.name) FROM (
                             SELECT DISTINCT s.name FROM lamin.schema s WHERE s.name IS NOT NULL AND s.branch_id <> -1
                             ORDER BY s.name LIMIT 50) x), 'none') || '; create one with lamin.create_schema';
    END IF;
    IF cardinality(found_ids) > 1 THEN
        -- A uid names one schema; a name may be shared (of the current space's first, else ambiguous).
        SELECT array_agg(s.id ORDER BY s.id) INTO found_ids FROM lamin.schema s
        WHERE s.id = ANY (found_ids) AND (s.uid = ref OR s.space_id = lamin.current_space_id());
        IF cardinality(found_ids) IS DISTINCT FROM 1 THEN
            RAISE EXCEPTION 'schema name % is shared by several schemas', quote_literal(ref)
                USING ERRCODE = 'cardinality_violation',
                      HINT = 'name it by uid: ' || (SELECT string_agg(s.uid, ', ' ORDER BY s.id) FROM lamin.schema s
                                                    WHERE s.name = ref AND s.branch_id <> -1);
        END IF;
    END IF;
    RETURN found_ids[1];
END
$$;
COMMENT ON FUNCTION lamin.schema_id(text) IS 'The id of a schema named by uid or name; an error lists the named schemas when none matches.';

-- begin_upload takes revises (a standardized copy is a new version of its artifact).
DROP FUNCTION lamin.begin_upload(text, bigint, text, text, text, text, bigint);
CREATE FUNCTION lamin.begin_upload(hash text, size bigint, key text DEFAULT NULL, suffix text DEFAULT NULL,
                                   description text DEFAULT NULL, storage text DEFAULT NULL,
                                   n_files bigint DEFAULT NULL, revises text DEFAULT NULL)
RETURNS TABLE (uid text, upload boolean, status text, path text, storage_root text, storage_type text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    saved text;
BEGIN
    saved := lamin.save_artifact(hash, size, key => key, suffix => suffix, description => description, storage => storage,
                                 n_files => n_files, revises => revises);
    -- Ours to write: created (or brought back) by this transaction, or an
    -- earlier upload that failed, or one left pending for 10 minutes (its
    -- client died). A pending upload in progress elsewhere is left alone.
    UPDATE lamin.artifact a SET status = 'pending', status_detail = 'uploading', updated_at = now()
    WHERE a.uid = saved
      AND ((a.xmin = xid(pg_current_xact_id()) AND a.status <> 'pending')
           OR a.status = 'failed'
           OR (a.status = 'pending' AND a.updated_at < now() - interval '10 minutes'));
    RETURN QUERY
    SELECT a.uid, a.xmin = xid(pg_current_xact_id()), a.status, lamin.artifact_path(a), s.root, s.type
    FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
    WHERE a.uid = saved;
END
$$;
COMMENT ON FUNCTION lamin.begin_upload(text, bigint, text, text, text, text, bigint, text) IS
    'Client upload, step 1: register content by hash (revises: as a new version of that artifact); new content is pending and gets the path to write (upload = true), known content returns its uid (upload = false).';

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

-- record_columns makes its features through lamin.ensure_features.
CREATE OR REPLACE FUNCTION lamin.record_columns(artifact_uid text, n_observations bigint, columns jsonb,
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
-- of a table, or to obs of an AnnData.
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
        SELECT CASE WHEN coalesce(r.otype, data_otype) = 'AnnData' THEN 'obs' ELSE 'columns' END, r.*
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
    'A schema (by uid or name) as validation reads it: per slot the frame and members to read, the features with dtype, registry, field, nullability, required and coercion. A schema without slots applies to the columns of a table (obs of an AnnData).';

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
    SELECT x.uid, x.status, x.suffix, x.n_files, x.space_id INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(artifact_uid);
    IF a.status <> 'ready' THEN
        RAISE EXCEPTION 'artifact % is %: only ready artifacts can be %', a.uid, a.status, action
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT ((a.suffix IN ('.parquet', '.csv', '.tsv', '.tab', '.h5ad') AND a.n_files IS NULL)
            OR (zarr AND a.suffix = '.zarr' AND a.n_files IS NOT NULL)) THEN
        RAISE EXCEPTION 'artifact % (suffix %) cannot be %', a.uid, quote_literal(a.suffix), action
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN zarr THEN 'validation reads parquet, CSV and TSV files, h5ad files and AnnData zarr stores'
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
-- dataset (parquet, CSV/TSV, h5ad, AnnData zarr) and records the verdict.
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
-- `name` of the schemas "<name> obs" and "<name> var"); each column is
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
                                    name => CASE WHEN otype = 'AnnData' THEN name || ' ' || fr.key ELSE name END,
                                    otype => CASE WHEN otype = 'AnnData' THEN NULL ELSE otype END);
        slots := slots || jsonb_build_object(fr.key, part);
    END LOOP;
    IF slots = '{}' THEN
        RAISE EXCEPTION 'the file has no columns to make a schema of' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF otype = 'AnnData' THEN
        part := lamin.create_schema(name => name, otype => 'AnnData', slots => slots);
    END IF;
    RETURN jsonb_build_object('schema', part, 'created', created, 'conflicts', conflicts);
END
$$;
COMMENT ON FUNCTION lamin.create_schema_from_columns(text, jsonb, text) IS
    'A schema named name from the columns of a sample file ({"columns": [...]}, or {"obs": [...], "var": [...]} of an AnnData: a composite); features made when missing. Returns {"schema", "created", "conflicts"}.';

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

-- == describe, dtype changes of features with values ==

-- describe: the schema an artifact passed and its validations (plpgsql: the
-- validation tables come later), values of collections and runs, slots and
-- optional members of schemas.
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
    'An artifact as one JSON document: fields, storage and path, versions, features and labels, schemas, the schema it was validated against and its validations, lineage summary.';

CREATE OR REPLACE FUNCTION lamin.describe(uid text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec record;
    doc jsonb;
BEGIN
    IF uid IS NOT NULL AND length(uid) IN (16, 20) AND EXISTS (
        SELECT FROM lamin.artifact a WHERE a.uid = uid OR (length(uid) = 16 AND a.stem = uid AND a.is_latest)) THEN
        RETURN lamin.describe_artifact(uid);
    END IF;
    IF uid IS NOT NULL AND length(uid) = 16 THEN
        -- A collection's version stem: its latest version.
        SELECT c.uid INTO rec FROM lamin.collection c WHERE c.stem = uid AND c.is_latest;
        IF FOUND THEN
            uid := rec.uid;
        END IF;
    END IF;
    SELECT * INTO rec FROM lamin.find_record(uid);
    EXECUTE format('SELECT to_jsonb(x) FROM %s x WHERE x.id = $1', rec.registry) INTO doc USING rec.record_id;
    doc := jsonb_build_object('record_kind', split_part(rec.registry::text, '.', 2), 'registry', rec.registry::text)
        || (doc - ARRAY['id', 'space_id', 'branch_id', 'created_by', 'run_id', 'transform_id', 'type_id', 'storage_id'])
        || jsonb_build_object(
            'space', (SELECT sp.name FROM lamin.space sp WHERE sp.id = (doc ->> 'space_id')::bigint),
            'branch', (SELECT b.name FROM lamin.branch b WHERE b.id = (doc ->> 'branch_id')::smallint),
            'created_by', (SELECT u.handle FROM lamin."user" u WHERE u.id = (doc ->> 'created_by')::bigint));
    IF rec.registry = 'lamin.run'::regclass THEN
        doc := (doc - 'initiated_by_run_id') || jsonb_build_object(
            'initiated_by_run', (SELECT p.uid FROM lamin.run r JOIN lamin.run p ON p.id = r.initiated_by_run_id
                                 WHERE r.id = rec.record_id),
            'transform', (SELECT jsonb_build_object('uid', t.uid, 'key', t.key, 'kind', t.kind, 'version', t.version)
                          FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.id = rec.record_id),
            'inputs', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY a.id)
                                FROM lamin.run_input_artifact i JOIN lamin.artifact a ON a.id = i.artifact_id
                                WHERE i.run_id = rec.record_id), '[]'::jsonb),
            'outputs', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY a.id)
                                 FROM lamin.artifact a WHERE a.run_id = rec.record_id AND a.branch_id <> -1), '[]'::jsonb),
            'recreated', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY a.id)
                                   FROM lamin.artifact_recreating_run rr JOIN lamin.artifact a ON a.id = rr.artifact_id
                                   WHERE rr.run_id = rec.record_id), '[]'::jsonb),
            'features', coalesce((SELECT jsonb_object_agg(x.name, x.vals) FROM (
                                      SELECT f.name, jsonb_agg(v.value ORDER BY v.value) AS vals
                                      FROM lamin.run_feature_value v JOIN lamin.feature f ON f.id = v.feature_id
                                      WHERE v.run_id = rec.record_id GROUP BY f.name) x), '{}'::jsonb));
    ELSIF rec.registry = 'lamin.transform'::regclass THEN
        doc := doc || jsonb_build_object(
            'runs', (SELECT count(*) FROM lamin.run r WHERE r.transform_id = rec.record_id));
    ELSIF rec.registry = 'lamin.collection'::regclass THEN
        doc := doc || jsonb_build_object(
            'artifacts', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY m.position, a.id)
                                   FROM lamin.collection_artifact m JOIN lamin.artifact a ON a.id = m.artifact_id
                                   WHERE m.collection_id = rec.record_id), '[]'::jsonb),
            'run', (SELECT r.uid FROM lamin.collection c JOIN lamin.run r ON r.id = c.run_id WHERE c.id = rec.record_id),
            'features', coalesce((SELECT jsonb_object_agg(x.name, x.vals) FROM (
                                      SELECT f.name, jsonb_agg(v.value ORDER BY v.value) AS vals
                                      FROM lamin.collection_feature_value v JOIN lamin.feature f ON f.id = v.feature_id
                                      WHERE v.collection_id = rec.record_id GROUP BY f.name) x), '{}'::jsonb));
    ELSIF rec.registry = 'lamin.schema'::regclass THEN
        doc := doc || jsonb_build_object(
            'features', coalesce((SELECT jsonb_agg(jsonb_build_object('name', f.name, 'dtype', f.dtype, 'nullable', f.nullable,
                                                             'optional', sf.optional) ORDER BY sf.position)
                                  FROM lamin.schema_feature sf JOIN lamin.feature f ON f.id = sf.feature_id
                                  WHERE sf.schema_id = rec.record_id), '[]'::jsonb),
            'slots', coalesce((SELECT jsonb_object_agg(c.slot, jsonb_build_object('uid', x.uid, 'name', x.name, 'itype', x.itype))
                               FROM lamin.schema_component c JOIN lamin.schema x ON x.id = c.component_id
                               WHERE c.composite_id = rec.record_id), '{}'::jsonb));
    ELSIF rec.registry = 'lamin.ulabel'::regclass THEN
        doc := doc || jsonb_build_object(
            'type', (SELECT t.name FROM lamin.ulabel l JOIN lamin.ulabel t ON t.id = l.type_id WHERE l.id = rec.record_id),
            'n_artifacts', (SELECT count(*) FROM lamin.artifact_ulabel l JOIN lamin.artifact a ON a.id = l.artifact_id
                            WHERE l.ulabel_id = rec.record_id));
    END IF;
    RETURN doc;
END
$$;

-- annotate_curated changes a feature's dtype only while no value of any kind uses it.
CREATE OR REPLACE FUNCTION lamin.annotate_curated(artifact_uid text, column_name text, registry text DEFAULT NULL) RETURNS int
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

-- A feature's dtype changed: its stored values are typed again, converted
-- where the new dtype reads them (3 → "3" for str, "3" → 3 for int), or
-- the change is refused with the value that does not fit. In two passes: the
-- values the caller may write, as the caller (a misfit is named), then every
-- other value as the definer (a misfit there is not named: it may belong to
-- a record of a space the caller cannot read).
CREATE FUNCTION lamin.retype_values(feature_id bigint, dtype text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE lamin.artifact_feature_value v SET value = coalesce((lamin.fit_value(dtype, v.value, true)).value, v.value) WHERE v.feature_id = retype_values.feature_id;
    UPDATE lamin.collection_feature_value v SET value = coalesce((lamin.fit_value(dtype, v.value, true)).value, v.value) WHERE v.feature_id = retype_values.feature_id;
    UPDATE lamin.run_feature_value v SET value = coalesce((lamin.fit_value(dtype, v.value, true)).value, v.value) WHERE v.feature_id = retype_values.feature_id;
END
$$;
COMMENT ON FUNCTION lamin.retype_values(bigint, text) IS
    'Type the stored values of a feature again for a new dtype (converted where it reads them); as the caller, the values the caller may write.';

-- (It reads the dtype from the feature itself: called directly, it can only
-- write every value again in the form it already has.)
CREATE FUNCTION lamin.retype_all_values(feature_id bigint) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
BEGIN
    SELECT x.name, x.dtype INTO f FROM lamin.feature x WHERE x.id = feature_id;
    PERFORM lamin.retype_values(feature_id, f.dtype);
EXCEPTION WHEN datatype_mismatch OR foreign_key_violation OR wrong_object_type OR unique_violation OR program_limit_exceeded THEN
    RAISE EXCEPTION 'feature %: dtype % does not fit a stored value of a record you cannot write; nothing was changed',
        quote_literal(f.name), f.dtype
        USING ERRCODE = SQLSTATE, HINT = 'an admin of the spaces that hold its values can change the dtype';
END
$$;
COMMENT ON FUNCTION lamin.retype_all_values(bigint) IS
    'Type every stored value of a feature again for its dtype (as the definer: also values in spaces the caller cannot write); a misfit is refused without naming it.';
REVOKE EXECUTE ON FUNCTION lamin.retype_all_values(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.retype_all_values(bigint) TO lamin_reader;

CREATE FUNCTION lamin.tg_feature_dtype_retype() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    BEGIN
        PERFORM lamin.retype_values(NEW.id, NEW.dtype);
    EXCEPTION WHEN datatype_mismatch OR foreign_key_violation OR wrong_object_type OR unique_violation OR program_limit_exceeded THEN
        RAISE EXCEPTION 'feature %: dtype % does not fit its stored values (%); nothing was changed', quote_literal(NEW.name), NEW.dtype, SQLERRM
            USING ERRCODE = SQLSTATE,
                  HINT = format('remove or fix the values first (lamin.remove_values), or keep dtype %s', OLD.dtype);
    END;
    PERFORM lamin.retype_all_values(NEW.id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.tg_feature_dtype_retype() IS
    'Trigger: a feature whose dtype changed gets its stored values typed again, or the change is refused (naming the value that does not fit when the caller may write its record).';
CREATE TRIGGER feature_dtype_retype AFTER UPDATE OF dtype ON lamin.feature
    FOR EACH ROW WHEN (OLD.dtype IS DISTINCT FROM NEW.dtype) EXECUTE FUNCTION lamin.tg_feature_dtype_retype();

-- == finding artifacts (lamin.find_artifacts); link policies, one per writing command ==
-- Link tables read their owner once per row: the FOR ALL policy link_write
-- (OR-ed with link_read on every read) becomes one policy per writing command.
CREATE OR REPLACE FUNCTION lamin.secure_table(tbl regclass, kind text, audited boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner_table text;
    owner_column text;
    -- "the row's space is one the role may read / write", evaluated once per statement.
    readable text := '(space_id = ANY ((SELECT lamin.readable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()))';
    writable text := '(space_id = ANY ((SELECT lamin.writable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()))';
    ends text := '';
    p record;
BEGIN
    IF tbl IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'secure_table needs a table and a kind' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    FOR p IN SELECT polname FROM pg_policy WHERE polrelid = tbl LOOP
        EXECUTE format('DROP POLICY %I ON %s', p.polname, tbl);
    END LOOP;
    EXECUTE format('GRANT SELECT ON %s TO lamin_reader', tbl);
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO lamin_reader', tbl);
    IF kind = 'space' THEN
        EXECUTE format('CREATE POLICY space_read ON %s FOR SELECT USING %s', tbl, readable);
        EXECUTE format('CREATE POLICY space_insert ON %s FOR INSERT WITH CHECK %s', tbl, writable);
        EXECUTE format('CREATE POLICY space_update ON %s FOR UPDATE USING %s WITH CHECK %s', tbl, writable, writable);
        EXECUTE format('CREATE POLICY space_delete ON %s FOR DELETE USING %s', tbl, writable);
    ELSIF kind = 'shared' THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s FROM lamin_reader', tbl);
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO lamin_writer', tbl);
        -- Every lamin role reads; a record with a space goes only where its
        -- writer may write (it would show up in that space's search).
        EXECUTE format('CREATE POLICY shared_all ON %s USING (true) WITH CHECK (%s)', tbl,
                       CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'space_id' AND NOT a.attisdropped)
                            THEN writable ELSE 'true' END);
    ELSIF kind LIKE 'link:%' THEN
        owner_table := split_part(split_part(substr(kind, 6), '|', 1), ':', 1);
        owner_column := split_part(split_part(substr(kind, 6), '|', 1), ':', 2);
        -- The other ends ('|table:column' each) must be readable to be linked
        -- to: nobody links to (and so pins) a record they cannot see.
        FOR p IN SELECT split_part(e, ':', 1)::regclass AS t, split_part(e, ':', 2) AS c
                 FROM unnest((string_to_array(substr(kind, 6), '|'))[2:]) e
        LOOP
            ends := ends || format(' AND (%2$I IS NULL OR EXISTS (SELECT FROM %1$s e WHERE e.id = %2$I))', p.t, p.c);
        END LOOP;
        EXECUTE format('CREATE POLICY link_read ON %s FOR SELECT USING (EXISTS (SELECT FROM %s o WHERE o.id = %I))',
                       tbl, owner_table::regclass, owner_column);
        -- One policy per writing command, none FOR ALL: a FOR ALL policy
        -- also applies to SELECT, where it is OR-ed with link_read, and a
        -- reader would pay a second look-up of the owner on every row read.
        FOR p IN SELECT x.cmd, x.clauses FROM (VALUES
                     ('INSERT', 'WITH CHECK (%5$s%6$s)'),
                     ('UPDATE', 'USING (%5$s) WITH CHECK (%5$s%6$s)'),
                     ('DELETE', 'USING (%5$s)')) x(cmd, clauses)
        LOOP
            EXECUTE format('CREATE POLICY %1$I ON %2$s FOR %3$s ' || p.clauses, 'link_' || lower(p.cmd), tbl, p.cmd, NULL,
                           format('EXISTS (SELECT FROM %s o WHERE o.id = %I AND %s)', owner_table::regclass, owner_column,
                                  replace(writable, 'space_id', 'o.space_id')),
                           ends);
        END LOOP;
    ELSE
        RAISE EXCEPTION 'secure_table: unknown kind %', kind;
    END IF;
    IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'is_locked' AND NOT a.attisdropped) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS check_lock ON %s', tbl);
        EXECUTE format('CREATE TRIGGER check_lock BEFORE UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION lamin.tg_check_lock()', tbl);
    END IF;
    IF (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = tbl AND NOT a.attisdropped
        AND a.attname IN ('created_by', 'created_at', 'is_locked', 'space_id', 'uid')) = 5 THEN
        EXECUTE format('DROP TRIGGER IF EXISTS system_fields_insert ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS system_fields_update ON %s', tbl);
        EXECUTE format('CREATE TRIGGER system_fields_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_system_fields()', tbl);
        EXECUTE format('CREATE TRIGGER system_fields_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_system_fields()', tbl);
    END IF;
    IF kind = 'space' AND audited AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'uid' AND NOT a.attisdropped) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS uid_check ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS uid_fixed ON %s', tbl);
        EXECUTE format('CREATE TRIGGER uid_check BEFORE INSERT ON %s FOR EACH ROW WHEN (NOT lamin.uid_was_issued(NEW.uid))
                        EXECUTE FUNCTION lamin.tg_uid_check()', tbl);
        EXECUTE format('CREATE TRIGGER uid_fixed BEFORE UPDATE OF uid ON %s FOR EACH ROW WHEN (NEW.uid IS DISTINCT FROM OLD.uid)
                        EXECUTE FUNCTION lamin.tg_uid_check()', tbl);
    END IF;
    IF audited THEN
        EXECUTE format('DROP TRIGGER IF EXISTS audit_insert ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_update ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_delete ON %s', tbl);
        EXECUTE format('CREATE TRIGGER audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()', tbl);
        EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()', tbl);
        EXECUTE format('CREATE TRIGGER audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()', tbl);
    END IF;
END
$$;

DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT pol.polrelid::regclass AS tbl, pg_get_expr(pol.polqual, pol.polrelid) AS using_expr,
                    pg_get_expr(pol.polwithcheck, pol.polrelid) AS check_expr
             FROM pg_policy pol WHERE pol.polname = 'link_write' ORDER BY pol.polrelid
    LOOP
        EXECUTE format('CREATE POLICY link_insert ON %s FOR INSERT WITH CHECK (%s)', p.tbl, p.check_expr);
        EXECUTE format('CREATE POLICY link_update ON %s FOR UPDATE USING (%s) WITH CHECK (%s)', p.tbl, p.using_expr, p.check_expr);
        EXECUTE format('CREATE POLICY link_delete ON %s FOR DELETE USING (%s)', p.tbl, p.using_expr);
        EXECUTE format('DROP POLICY link_write ON %s', p.tbl);
    END LOOP;
END
$$;

-- The records at and below a record of a registry with parents (bionty's
-- ontologies: <table>_parent(child_id, parent_id); ulabels:
-- lamin.ulabel_parent(ulabel_id, parent_id)), as ids. A breadth-first walk by
-- the parent index; UNION keeps each record once, so a DAG with many paths
-- (and even a cycle) stays linear. Hash joins are off for the walk: each
-- level is a handful of index probes, which the planner, not knowing the
-- level's size, would otherwise answer with a scan of every edge per level.
CREATE FUNCTION lamin.subtree_ids(registry text, root_id bigint) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    edges regclass := to_regclass(registry || '_parent');
    child text := CASE WHEN registry = 'lamin.ulabel' THEN 'ulabel_id' ELSE 'child_id' END;
    ids bigint[];
BEGIN
    IF edges IS NULL THEN
        RAISE EXCEPTION 'registry % has no hierarchy', registry
            USING ERRCODE = 'feature_not_supported', HINT = 'match its records by name: = or in';
    END IF;
    EXECUTE format($q$
        WITH RECURSIVE below(id) AS (
            SELECT $1
            UNION
            SELECT e.%1$I FROM below b JOIN %2$s e ON e.parent_id = b.id
        )
        SELECT array_agg(id) FROM below$q$, child, edges)
    INTO ids USING root_id;
    RETURN ids;
END
$$;
COMMENT ON FUNCTION lamin.subtree_ids(text, bigint) IS
    'The ids of a registry record and of every record below it (its children, their children, …), e.g. lamin.subtree_ids(''bionty.cell_type'', id): the registry''s <table>_parent edges walked by their parent index.';

-- The typed column a feature's values are compared in (lamin.fit_value
-- fills them): NULL for dict and categorical dtypes.
CREATE FUNCTION lamin.value_column(dtype text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE lamin.dtype_base(dtype)
        WHEN 'int' THEN 'value_number' WHEN 'float' THEN 'value_number' WHEN 'num' THEN 'value_number'
        WHEN 'str' THEN 'value_text' WHEN 'url' THEN 'value_text' WHEN 'path' THEN 'value_text'
        WHEN 'bool' THEN 'value_boolean' WHEN 'date' THEN 'value_date' WHEN 'datetime' THEN 'value_timestamp'
    END
$$;
COMMENT ON FUNCTION lamin.value_column(text) IS
    'The typed column of lamin.artifact_feature_value (value_number, value_text, value_boolean, value_date, value_timestamp) that holds the values of a dtype; NULL for dict and categorical dtypes.';

-- Two settings for its own statements: no JIT (these are index probes; the
-- planner's high cost guesses, inflated by the row-level-security checks,
-- would otherwise spend 50-500 ms compiling them), and a small work_mem, so
-- that a security check "is the owning artifact readable?" is an index
-- probe per row, never a hash of every artifact built to answer a few
-- thousand rows.
CREATE FUNCTION lamin.find_artifacts(filters jsonb) RETURNS SETOF lamin.artifact
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '1MB'
AS $$
#variable_conflict use_variable
DECLARE
    cand bigint[];          -- the artifacts every value condition so far holds for; NULL: none yet
    probes text := '';      -- one EXISTS per label condition
    item record;
    f record;
    ops jsonb;
    c record;
    col text;
    typ text;
    operands text[];
    ids bigint[];
    registry text;
    link regclass;
    reg record;
    root_id bigint;
    misfit jsonb;
    example constant text := '{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}, "assay": ["10x 3'' v3"]}';
BEGIN
    IF filters IS NULL OR jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'find_artifacts: filters are a JSON object of feature names and conditions, not %',
            coalesce(left(filters::text, 200), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ' || example;
    END IF;
    -- Value conditions first (each gives an exact set of artifacts), then labels.
    FOR item IN
        SELECT j.key, j.value, x.id AS feature_id, x.name, x.dtype
        FROM jsonb_each(filters) j
        CROSS JOIN LATERAL (SELECT x.id, x.name, x.dtype FROM lamin.feature x WHERE x.id = lamin.feature_id(j.key)) x
        ORDER BY lamin.dtype_registry(x.dtype) IS NOT NULL, j.key
    LOOP
        -- A bare value is equality, a bare list membership: {"assay": "x"}, {"assay": ["x", "y"]}.
        ops := CASE jsonb_typeof(item.value)
                   WHEN 'object' THEN item.value
                   WHEN 'array' THEN jsonb_build_object('in', item.value)
                   ELSE jsonb_build_object('=', item.value) END;
        IF ops = '{}' THEN
            RAISE EXCEPTION 'find_artifacts: feature % has an empty condition', quote_literal(item.name)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ' || example;
        END IF;
        registry := lamin.dtype_registry(item.dtype);
        FOR c IN SELECT o.key AS op, o.value AS operand FROM jsonb_each(ops) o ORDER BY o.key LOOP
            IF jsonb_typeof(c.operand) = 'null' THEN
                RAISE EXCEPTION 'find_artifacts: feature %: NULL is no value to compare with', quote_literal(item.name)
                    USING ERRCODE = 'null_value_not_allowed';
            END IF;
            IF c.op = 'in' AND (jsonb_typeof(c.operand) <> 'array' OR jsonb_array_length(c.operand) = 0) THEN
                RAISE EXCEPTION 'find_artifacts: feature %: "in" takes a non-empty list, not %', quote_literal(item.name), left(c.operand::text, 200)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF c.op <> 'in' AND jsonb_typeof(c.operand) = 'array' THEN
                RAISE EXCEPTION 'find_artifacts: feature %: % takes one value, not the list %', quote_literal(item.name), c.op, left(c.operand::text, 200)
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'for any of several values: {"in": [...]}';
            END IF;
            IF registry IS NULL THEN
                -- A value condition: one range scan of the typed index.
                col := lamin.value_column(item.dtype);
                IF col IS NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %) cannot be compared', quote_literal(item.name), item.dtype
                        USING ERRCODE = 'feature_not_supported',
                              HINT = 'query its values in lamin.artifact_values (column value, jsonb)';
                END IF;
                IF c.op NOT IN ('=', '>', '>=', '<', '<=', 'in') THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): unknown operator %', quote_literal(item.name), item.dtype, quote_literal(c.op)
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'the operators are =, >, >=, <, <= and in';
                END IF;
                typ := CASE col WHEN 'value_number' THEN 'double precision' WHEN 'value_text' THEN 'text' WHEN 'value_boolean' THEN 'boolean'
                                WHEN 'value_date' THEN 'date' ELSE 'timestamptz' END;
                -- Each operand made to fit the dtype (a comparison of an int
                -- feature with 2.5 is fine: numbers are compared as numbers).
                SELECT array_agg(CASE col WHEN 'value_number' THEN fv.value_number::text WHEN 'value_text' THEN fv.value_text
                                          WHEN 'value_boolean' THEN fv.value_boolean::text WHEN 'value_date' THEN fv.value_date::text
                                          ELSE fv.value_timestamp::text END),
                       (array_agg(e) FILTER (WHERE fv.value IS NULL))[1]
                INTO operands, misfit
                FROM jsonb_array_elements(CASE WHEN c.op = 'in' THEN c.operand ELSE jsonb_build_array(c.operand) END) e
                CROSS JOIN LATERAL lamin.fit_value(CASE WHEN col = 'value_number' THEN 'num' ELSE lamin.dtype_base(item.dtype) END, e, true) fv;
                IF misfit IS NOT NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): % is no % to compare with', quote_literal(item.name), item.dtype,
                        left(misfit::text, 200), lamin.dtype_base(item.dtype)
                        USING ERRCODE = 'datatype_mismatch';
                END IF;
                EXECUTE format('SELECT array_agg(DISTINCT v.artifact_id) FROM lamin.artifact_feature_value v
                                WHERE v.feature_id = $1 AND v.%I %s', col,
                               CASE WHEN c.op = 'in' THEN format('= ANY ($2::%s[])', typ) ELSE format('%s $2[1]::%s', c.op, typ) END)
                INTO ids USING item.feature_id, operands;
                cand := CASE WHEN cand IS NULL THEN coalesce(ids, '{}')
                             ELSE ARRAY(SELECT unnest(cand) INTERSECT SELECT unnest(ids)) END;
            ELSE
                -- A label condition: the registry records it accepts.
                link := to_regclass(format('%I.%I', split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2)));
                SELECT r.name_field, r.id_field INTO reg FROM lamin.registry r WHERE r.name = registry;
                IF link IS NULL OR reg IS NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): artifacts are not annotated with records of %', quote_literal(item.name), item.dtype, registry
                        USING ERRCODE = 'feature_not_supported', HINT = 'annotatable registries have a link table <schema>.artifact_<table>';
                END IF;
                IF c.op IN ('=', 'in') THEN
                    EXECUTE format('SELECT array_agg(t.id) FROM %s t WHERE t.%I = ANY ($1) AND t.branch_id <> -1',
                                   registry, coalesce(lamin.dtype_field(item.dtype), reg.name_field))
                    INTO ids
                    USING ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(CASE WHEN c.op = 'in' THEN c.operand ELSE jsonb_build_array(c.operand) END) e);
                ELSIF c.op = 'under' THEN
                    -- The term itself (by its id, e.g. CL:0000084, or its name) and everything below it.
                    EXECUTE format('SELECT t.id FROM %s t WHERE (t.%I = $1%s) AND t.branch_id <> -1 ORDER BY t.%I = $1 DESC LIMIT 1',
                                   registry, reg.name_field,
                                   CASE WHEN reg.id_field IS NOT NULL THEN format(' OR t.%I = $1', reg.id_field) ELSE '' END,
                                   coalesce(reg.id_field, reg.name_field))
                    INTO root_id USING c.operand #>> '{}';
                    IF root_id IS NULL THEN
                        RAISE EXCEPTION 'find_artifacts: feature %: % holds no record %', quote_literal(item.name), registry, quote_literal(c.operand #>> '{}')
                            USING ERRCODE = 'no_data_found',
                                  HINT = CASE WHEN registry LIKE 'bionty.%' THEN 'give an ontology id or name, e.g. CL:0000084 or ''T cell''; import the ontology first' END;
                    END IF;
                    ids := lamin.subtree_ids(registry, root_id);
                ELSE
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): unknown operator %', quote_literal(item.name), item.dtype, quote_literal(c.op)
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'labels are matched with =, in and under (a term and every term below it)';
                END IF;
                IF ids IS NULL THEN
                    RETURN;  -- no record matches: neither does any artifact
                END IF;
                -- IN (SELECT unnest(...)): a hash of the records, built once and
                -- probed by each link (= ANY would compare with every element).
                probes := probes || format(' AND EXISTS (SELECT FROM %s l WHERE l.artifact_id = a.id AND l.feature_id = %s AND l.%I IN (SELECT unnest(%L::bigint[])))',
                                           link, item.feature_id, split_part(registry, '.', 2) || '_id', ids);
            END IF;
            IF cand = '{}' THEN
                RETURN;
            END IF;
        END LOOP;
    END LOOP;
    -- $1 is planned as the constant it is: the planner sees how many candidates there are.
    RETURN QUERY EXECUTE 'SELECT a.* FROM lamin.artifact a WHERE a.branch_id <> -1'
        || CASE WHEN cand IS NOT NULL THEN ' AND a.id = ANY ($1)' ELSE '' END || probes
        USING cand;
END
$$;
COMMENT ON FUNCTION lamin.find_artifacts(jsonb) IS
    'Artifacts (not in the trash) whose feature values and labels meet every condition, e.g. lamin.find_artifacts(''{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}, "assay": ["10x 3'''' v3"]}''): per feature a value (=), a list (in) or an object of operators: =, >, >=, <, <=, in for values; =, in and under (the term and every term below it) for labels. Fast at any size: see sql/26_find.sql.';
