-- Typed feature values on artifacts, collections and runs.
--
-- Each value is one row of lamin.artifact_feature_value,
-- lamin.collection_feature_value or lamin.run_feature_value (sql/06_links.sql):
-- `value` holds the canonical JSON, the typed columns (value_number,
-- value_text, value_boolean, value_date, value_timestamp) a copy that queries
-- compare and indexes order. One trigger fills them from the feature's dtype
-- and refuses what does not fit, so a direct INSERT is as typed as
-- lamin.add_values.
--
-- How many values a record holds for a feature:
--   list[...] features       several (one row per element)
--   categorical (cat...)     several (a set of labels, as LaminDB and
--                            lamin.annotate have always allowed)
--   every other dtype        one: adding a second, different value is
--                            refused; lamin.set_values replaces it
-- (LaminDB's add_values accumulates values of any feature; its list[...]
-- dtypes say "several" explicitly, which is the line drawn here.)
--
-- Categorical values of artifacts are links to registry records
-- (lamin.artifact_ulabel, bionty.artifact_*; lamin.annotate), so the artifact
-- table refuses them; collections and runs store the record's text (the
-- registry's name field, or the field the dtype names), checked to exist.

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
    field text := lamin.dtype_field(dtype);
    tbl text;
    found boolean;
BEGIN
    -- Labels (dtype cat), the most common: a static statement, its plan kept.
    IF registry = 'lamin.ulabel' AND field IS NULL THEN
        RETURN EXISTS (SELECT FROM lamin.ulabel t WHERE t.name = val AND t.branch_id <> -1);
    END IF;
    field := coalesce(field, (SELECT r.name_field FROM lamin.registry r WHERE r.name = registry), 'name');
    tbl := format('%I.%I', split_part(registry, '.', 1), split_part(registry, '.', 2));
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
    other_schema record;
    hints text;
BEGIN
    -- (Static per table: to_jsonb(NEW) would cost every row a conversion.)
    CASE TG_TABLE_NAME
        WHEN 'artifact_feature_value' THEN owner_id := NEW.artifact_id;
        WHEN 'collection_feature_value' THEN owner_id := NEW.collection_id;
        WHEN 'run_feature_value' THEN owner_id := NEW.run_id;
        WHEN 'record_feature_value' THEN owner_id := NEW.record_id;
        WHEN 'project_feature_value' THEN owner_id := NEW.project_id;
        ELSE owner_id := NEW.reference_id;
    END CASE;
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
    -- A record of a typed sheet holds the features of its type's schema only.
    IF owner_kind = 'record' THEN
        SELECT t.name AS type_name, s.id AS schema_id, s.name AS schema_name,
               EXISTS (SELECT FROM lamin.schema_feature sf WHERE sf.schema_id = s.id AND sf.feature_id = f.id) AS member
        INTO other_schema
        FROM lamin.record r JOIN lamin.record t ON t.id = r.type_id JOIN lamin.schema s ON s.id = t.schema_id
        WHERE r.id = owner_id;
        IF other_schema.schema_id IS NOT NULL AND NOT other_schema.member THEN
            RAISE EXCEPTION 'feature % is not in the schema of record type % (%)', quote_literal(f.name), quote_literal(other_schema.type_name),
                coalesce(quote_literal(other_schema.schema_name), 'unnamed')
                USING ERRCODE = 'check_violation',
                      HINT = 'its features: ' || (SELECT string_agg(x.name, ', ' ORDER BY sf.position) FROM lamin.schema_feature sf
                                                 JOIN lamin.feature x ON x.id = sf.feature_id WHERE sf.schema_id = other_schema.schema_id);
        END IF;
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
        -- (Static statements, one per table: parsed once, where EXECUTE
        -- would parse its query again for every value.)
        CASE owner_kind
            WHEN 'artifact' THEN
                PERFORM FROM lamin.artifact o WHERE o.id = owner_id FOR NO KEY UPDATE;
                SELECT t.value INTO other FROM lamin.artifact_feature_value t
                WHERE t.artifact_id = owner_id AND t.feature_id = f.id AND t.value <> NEW.value AND t.id <> NEW.id LIMIT 1;
            WHEN 'collection' THEN
                PERFORM FROM lamin.collection o WHERE o.id = owner_id FOR NO KEY UPDATE;
                SELECT t.value INTO other FROM lamin.collection_feature_value t
                WHERE t.collection_id = owner_id AND t.feature_id = f.id AND t.value <> NEW.value AND t.id <> NEW.id LIMIT 1;
            WHEN 'run' THEN
                PERFORM FROM lamin.run o WHERE o.id = owner_id FOR NO KEY UPDATE;
                SELECT t.value INTO other FROM lamin.run_feature_value t
                WHERE t.run_id = owner_id AND t.feature_id = f.id AND t.value <> NEW.value AND t.id <> NEW.id LIMIT 1;
            WHEN 'record' THEN
                PERFORM FROM lamin.record o WHERE o.id = owner_id FOR NO KEY UPDATE;
                SELECT t.value INTO other FROM lamin.record_feature_value t
                WHERE t.record_id = owner_id AND t.feature_id = f.id AND t.value <> NEW.value AND t.id <> NEW.id LIMIT 1;
            WHEN 'project' THEN
                PERFORM FROM lamin.project o WHERE o.id = owner_id FOR NO KEY UPDATE;
                SELECT t.value INTO other FROM lamin.project_feature_value t
                WHERE t.project_id = owner_id AND t.feature_id = f.id AND t.value <> NEW.value AND t.id <> NEW.id LIMIT 1;
            ELSE
                PERFORM FROM lamin.reference o WHERE o.id = owner_id FOR NO KEY UPDATE;
                SELECT t.value INTO other FROM lamin.reference_feature_value t
                WHERE t.reference_id = owner_id AND t.feature_id = f.id AND t.value <> NEW.value AND t.id <> NEW.id LIMIT 1;
        END CASE;
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

CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.artifact_feature_value
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value();
CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.collection_feature_value
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value();
CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.run_feature_value
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value();

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
    ELSIF kind IN ('record', 'project', 'reference') THEN
        found_id := lamin.entity_id(kind, uid);
        EXECUTE format('SELECT x.space_id FROM lamin.%I x WHERE x.id = $1', kind) INTO sid USING found_id;
    ELSE
        RAISE EXCEPTION 'unknown kind %: feature values belong to an artifact, a collection, a run, a record, a project or a reference',
            coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'kind is ''artifact'', ''collection'', ''run'', ''record'', ''project'' or ''reference''';
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
    'The id of the artifact, collection, run, record, project or reference whose feature values are read or written (kind, uid; records, projects and references also by name); refuses writing without write access to its space.';

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
    'Add feature values to an artifact, collection, run, record, project or reference (kind, uid, {"feature": value or [values], ...}): typed and checked against each feature''s dtype, all or nothing; categorical values of artifacts become label links. A feature that is neither list[...] nor categorical holds one value (a different second value is refused: use set_values). Returns the number of new values.';

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
    'Remove the values of a feature from an artifact, collection, run, record, project or reference (kind, uid, feature), or only the value(s) given (a value or a JSON list); categorical values of artifacts: their label links. Returns the number removed (0 when there was none).';

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
