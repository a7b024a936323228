\echo Use "ALTER EXTENSION lamin UPDATE TO '0.7.0'" to load this file. \quit
-- lamin 0.6.0 → 0.7.0 (issue 18: projects, references, records, and your own
-- registries). Run by ALTER EXTENSION lamin UPDATE in one transaction (all or
-- nothing). Definitions are copied verbatim from sql/ (the upgrade test
-- compares the result with a fresh install object by object). Each concern
-- has its own section below.

-- == feature values of records, projects and references ==
-- Whether a text is a record of the registry a categorical dtype names (in
-- its name field, or the field the dtype names), among the records the
-- caller can read (row-level security applies: no hint of others).
CREATE OR REPLACE FUNCTION lamin.in_registry(dtype text, val text) RETURNS boolean
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

-- The trigger of the three value tables: check and type a value before it
-- is written. Runs as the caller: it reads the feature, the registry and
-- the record's other values through row-level security.
CREATE OR REPLACE FUNCTION lamin.tg_feature_value() RETURNS trigger
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

-- The record whose values a call writes: its id, and a clear refusal when the
-- caller may read it but not write its space (a record the caller cannot
-- read is "no such record", as everywhere).
CREATE OR REPLACE FUNCTION lamin.value_owner(kind text, uid text, writing boolean DEFAULT true) RETURNS bigint
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
COMMENT ON FUNCTION lamin.add_values(text, text, jsonb) IS
    'Add feature values to an artifact, collection, run, record, project or reference (kind, uid, {"feature": value or [values], ...}): typed and checked against each feature''s dtype, all or nothing; categorical values of artifacts become label links. A feature that is neither list[...] nor categorical holds one value (a different second value is refused: use set_values). Returns the number of new values.';
COMMENT ON FUNCTION lamin.remove_values(text, text, text, jsonb) IS
    'Remove the values of a feature from an artifact, collection, run, record, project or reference (kind, uid, feature), or only the value(s) given (a value or a JSON list); categorical values of artifacts: their label links. Returns the number removed (0 when there was none).';

-- == annotate: a registry without a deprecated field (records, projects, your own) ==
-- Annotate an artifact with values of a feature. Categorical features link
-- labels of the registry their dtype names; every value must exist there,
-- else nothing is linked and the error lists the missing values. Other dtypes
-- store typed values. Returns the number of new links.
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
    deprecated_field text;
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
        SELECT r.name_field, r.deprecated_field INTO name_field, deprecated_field FROM lamin.registry r WHERE r.name = registry;
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
                              SELECT t.%2$I AS n FROM %1$s t WHERE t.%2$I = ANY ($1) AND t.branch_id <> -1 AND NOT %3$s
                              GROUP BY 1 HAVING count(*) > 1) x$q$, tbl, name_field, coalesce('t.' || quote_ident(deprecated_field), 'false'))
        INTO ambiguous USING vals;
        IF ambiguous IS NOT NULL THEN
            RAISE EXCEPTION 'feature %: names used by more than one record of %: %', quote_literal(feat.name), registry, ambiguous
                USING ERRCODE = 'cardinality_violation';
        END IF;
        EXECUTE format($q$INSERT INTO %1$s (artifact_id, %2$I, feature_id)
                          SELECT $1, t.id, $2 FROM %3$s t
                          WHERE t.%4$I = ANY ($3) AND t.branch_id <> -1
                            AND (NOT %5$s OR NOT EXISTS (
                                SELECT 1 FROM %3$s o WHERE o.%4$I = t.%4$I AND o.branch_id <> -1 AND NOT %6$s))
                          ON CONFLICT DO NOTHING$q$,
                       link, split_part(registry, '.', 2) || '_id', tbl, name_field, coalesce('t.' || quote_ident(deprecated_field), 'false'), coalesce('o.' || quote_ident(deprecated_field), 'false'))
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

-- == describe, delete and restore: projects, references, records; annotations with them and with registries of one's own ==
-- An artifact's annotations with records of other registries (bionty
-- cell types, genes, …), read through the view bionty.artifact_terms, which
-- is created after this file (hence plpgsql and a dynamic statement).
CREATE OR REPLACE FUNCTION lamin.registry_annotations(artifact_id bigint)
RETURNS TABLE (feature_id bigint, registry text, uid text, name text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    own record;
BEGIN
    IF to_regclass('bionty.artifact_terms') IS NOT NULL THEN
        RETURN QUERY EXECUTE 'SELECT t.feature_id, t.registry, t.uid, t.name FROM bionty.artifact_terms t WHERE t.artifact_id = $1'
        USING artifact_id;
    END IF;
    -- Projects, references and records (sql/27_records.sql, links in
    -- sql/28_record_links.sql), and registries of one's own
    -- (lamin.create_registry), through their link tables.
    IF to_regclass('lamin.artifact_project') IS NOT NULL THEN
        RETURN QUERY EXECUTE
            'SELECT l.feature_id, ''lamin.project'', p.uid, p.name FROM lamin.artifact_project l JOIN lamin.project p ON p.id = l.project_id WHERE l.artifact_id = $1
             UNION ALL
             SELECT l.feature_id, ''lamin.reference'', r.uid, r.name FROM lamin.artifact_reference l JOIN lamin.reference r ON r.id = l.reference_id WHERE l.artifact_id = $1
             UNION ALL
             SELECT l.feature_id, ''lamin.record'', r.uid, coalesce(r.name, r.uid) FROM lamin.artifact_record l JOIN lamin.record r ON r.id = l.record_id WHERE l.artifact_id = $1'
        USING artifact_id;
        FOR own IN SELECT o.name, r.name_field FROM lamin.own_registry o JOIN lamin.registry r ON r.name = o.name
                   WHERE to_regclass(o.name) IS NOT NULL ORDER BY o.name LOOP
            RETURN QUERY EXECUTE format('SELECT l.feature_id, %L, t.uid, t.%I::text FROM %I.%I l JOIN %I.%I t ON t.id = l.%I WHERE l.artifact_id = $1',
                                        own.name, own.name_field, split_part(own.name, '.', 1), 'artifact_' || split_part(own.name, '.', 2),
                                        split_part(own.name, '.', 1), split_part(own.name, '.', 2), split_part(own.name, '.', 2) || '_id')
            USING artifact_id;
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.registry_annotations(bigint) IS 'Annotations of an artifact with records of registries other than lamin.ulabel (bionty''s, projects, references, records, registries of one''s own).';

-- Any record as one JSON document, whatever its kind: artifacts in full
-- (describe_artifact); collections, runs, transforms, schemas, features and
-- labels with their fields (internal ids left out, references by uid) and
-- what links to them. A uid nobody can read is "no record", as for a uid
-- that does not exist.
CREATE OR REPLACE FUNCTION lamin.describe(uid text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec record;
    doc jsonb;
    rec_doc jsonb;
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
    ELSIF rec.registry IN ('lamin.project'::regclass, 'lamin.reference'::regclass, 'lamin.record'::regclass) THEN
        -- (Dynamic: these registries come later, in sql/27_records.sql.)
        EXECUTE format($q$SELECT jsonb_build_object(
                              'type', (SELECT t.name FROM %1$s x JOIN %1$s t ON t.id = x.type_id WHERE x.id = $1),
                              'features', coalesce((SELECT jsonb_object_agg(y.name, y.vals) FROM (
                                  SELECT f.name, jsonb_agg(v.value ORDER BY v.value) AS vals
                                  FROM lamin.%2$I v JOIN lamin.feature f ON f.id = v.feature_id
                                  WHERE v.%3$I = $1 GROUP BY f.name) y), '{}'::jsonb))$q$,
                       rec.registry, split_part(rec.registry::text, '.', 2) || '_feature_value', split_part(rec.registry::text, '.', 2) || '_id')
        INTO STRICT rec_doc USING rec.record_id;
        doc := doc || rec_doc || jsonb_build_object('links', lamin.link_counts(split_part(rec.registry::text, '.', 2), rec.record_id));
        IF rec.registry = 'lamin.record'::regclass THEN
            doc := doc || jsonb_build_object(
                'schema', (SELECT jsonb_build_object('uid', s.uid, 'name', s.name) FROM lamin.record r JOIN lamin.schema s ON s.id = r.schema_id
                           WHERE r.id = rec.record_id),
                'run', (SELECT x.uid FROM lamin.record r JOIN lamin.run x ON x.id = r.run_id WHERE r.id = rec.record_id));
        END IF;
    ELSIF rec.registry = 'lamin.ulabel'::regclass THEN
        doc := doc || jsonb_build_object(
            'type', (SELECT t.name FROM lamin.ulabel l JOIN lamin.ulabel t ON t.id = l.type_id WHERE l.id = rec.record_id),
            'n_artifacts', (SELECT count(*) FROM lamin.artifact_ulabel l JOIN lamin.artifact a ON a.id = l.artifact_id
                            WHERE l.ulabel_id = rec.record_id));
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION lamin.describe(text) IS
    'Any record (artifact, collection, run, transform, schema, feature, label, project, reference, record) by uid as one JSON document; artifacts in full (lamin.describe_artifact).';

-- Registries that delete() and restore() act on, in the order a uid is looked up.
CREATE OR REPLACE FUNCTION lamin.find_record(uid text, OUT registry regclass, OUT record_id bigint, OUT branch_id smallint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    candidate regclass;
BEGIN
    IF uid IS NULL OR uid !~ '^[0-9A-Za-z]+$' OR length(uid) NOT IN (8, 12, 16, 20) THEN
        RAISE EXCEPTION 'invalid uid %: expected 8, 12, 16 or 20 base62 characters', coalesce(quote_literal(left(uid, 80)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH candidate IN ARRAY CASE length(uid)
        WHEN 20 THEN ARRAY['lamin.artifact', 'lamin.collection', 'lamin.run']::regclass[]
        -- (Names, not regclass constants: records, projects and references
        -- come later in the install, sql/27_records.sql.)
        WHEN 16 THEN ARRAY['lamin.transform', 'lamin.schema', 'lamin.record']::regclass[]
        WHEN 12 THEN ARRAY['lamin.feature', 'lamin.project', 'lamin.reference']::regclass[]
        ELSE ARRAY['lamin.ulabel']::regclass[] END
    LOOP
        EXECUTE format('SELECT id, branch_id FROM %s WHERE uid = $1', candidate) INTO record_id, branch_id USING uid;
        IF record_id IS NOT NULL THEN
            registry := candidate;
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no record with uid %', quote_literal(uid) USING ERRCODE = 'no_data_found';
END
$$;

-- == audit: registries of one's own only while their spaces are enforced ==
-- One trigger function for the three events: the rows come from transition
-- tables, so a statement touching many rows writes its audit rows in one go.
-- Bulk imports (lamin.audit_in_summary) write one summary row instead.
-- SECURITY DEFINER: audit rows are lamin's, never written by the roles whose
-- changes they record; the role named is the session's (SET ROLE, or the
-- requester a sidecar connection acts as), which the function cannot forge.
-- A space's own rows are audited in that space (readers of "all" do not
-- learn of spaces they cannot read).
CREATE OR REPLACE FUNCTION lamin.tg_audit() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    op text := lower(TG_OP);
    who name := lamin.acting_role();
    own_space boolean := TG_TABLE_SCHEMA = 'lamin' AND TG_TABLE_NAME = 'space';
BEGIN
    IF lamin.is_restoring() THEN
        RETURN NULL;
    END IF;
    -- A registry of one's own (lamin.create_registry) is audited only while
    -- its spaces are enforced: its owner could switch row-level security
    -- off and write rows, and so audit rows, into spaces of others.
    IF TG_TABLE_SCHEMA NOT IN ('lamin', 'bionty')
       AND NOT (SELECT c.relrowsecurity AND c.relforcerowsecurity FROM pg_class c WHERE c.oid = TG_RELID) THEN
        RAISE EXCEPTION '%: row-level security is off, so lamin does not record changes of it', reg
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('switch it on again: SELECT lamin.create_registry(%L)', reg);
    END IF;
    IF lamin.audit_in_summary() THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO lamin.audit (role_name, registry, operation, n_rows)
            SELECT who, reg, op, count(*) FROM old_rows HAVING count(*) > 0;
        ELSE
            INSERT INTO lamin.audit (role_name, registry, operation, n_rows)
            SELECT who, reg, op, count(*) FROM new_rows HAVING count(*) > 0;
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id, fields)
        SELECT who, reg, op, (j ->> 'id')::bigint, j ->> 'uid',
               CASE WHEN own_space THEN (j ->> 'id')::bigint ELSE coalesce((j ->> 'space_id')::bigint, 1) END,
               ARRAY(SELECT k FROM jsonb_each(j) e(k, v) WHERE v <> 'null' ORDER BY k)
        FROM (SELECT to_jsonb(n) AS j FROM new_rows n) x;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id, fields)
        SELECT who, reg, op, (nj ->> 'id')::bigint, nj ->> 'uid',
               CASE WHEN own_space THEN (nj ->> 'id')::bigint ELSE coalesce((nj ->> 'space_id')::bigint, 1) END,
               ARRAY(SELECT k FROM jsonb_each(nj) e(k, v) WHERE v IS DISTINCT FROM oj -> k AND k <> 'updated_at' ORDER BY k)
        FROM (SELECT to_jsonb(n) AS nj FROM new_rows n) n
        JOIN (SELECT to_jsonb(o) AS oj FROM old_rows o) o ON o.oj -> 'id' = n.nj -> 'id';
    ELSE
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id)
        SELECT who, reg, op, (j ->> 'id')::bigint, j ->> 'uid',
               CASE WHEN own_space THEN (j ->> 'id')::bigint ELSE coalesce((j ->> 'space_id')::bigint, 1) END
        FROM (SELECT to_jsonb(o) AS j FROM old_rows o) x;
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION lamin.tg_audit() FROM PUBLIC;

-- == track: project =>; a new parameter, so a new signature ==
DROP FUNCTION lamin.track(text, text, text, text, jsonb, text);
CREATE FUNCTION lamin.track(
    key         text,
    source_code text DEFAULT NULL,
    kind        text DEFAULT 'pipeline',
    description text DEFAULT NULL,
    params      jsonb DEFAULT NULL,
    version     text DEFAULT NULL,
    project     text DEFAULT NULL
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
        IF project IS NOT NULL THEN
            PERFORM lamin.link('run', ARRAY[current.uid], 'project', project);
        END IF;
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
    -- The run and its transform belong to the project; what the run creates
    -- (artifacts, collections, records) is linked to it as it is saved
    -- (lamin.tg_link_run_projects).
    IF project IS NOT NULL THEN
        PERFORM lamin.link('run', ARRAY[run_uid], 'project', project);
        PERFORM lamin.link('transform', ARRAY[tf.uid], 'project', project);
    END IF;
    -- Session-wide (is_local = false); rolled back with the transaction if it aborts.
    PERFORM set_config('lamin.run_uid', run_uid, false);
    RETURN run_uid;
END
$$;
COMMENT ON FUNCTION lamin.track(text, text, text, text, jsonb, text, text) IS
    'Find or create the transform (new version when its source changes) and start a run for this session; returns the run uid. Idempotent within a session. params whose key names a feature must fit its dtype and are also stored as the run''s feature values; other keys stay in run.params only. project (uid or name) links the run, its transform and what the run creates to that project.';

-- == sql/27_records.sql ==

CREATE TABLE lamin.project (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    uid         text NOT NULL UNIQUE DEFAULT lamin.uid(12)
                CONSTRAINT project_uid_format CHECK (uid ~ '^[0-9A-Za-z]{12}$'),
    name        text NOT NULL CONSTRAINT project_name_not_blank CHECK (btrim(name) <> ''),
    description text,
    is_type     boolean NOT NULL DEFAULT false,
    type_id     bigint REFERENCES lamin.project ON DELETE RESTRICT,
    abbr        text,
    url         text,
    start_date  date,
    end_date    date,
    branch_id   smallint NOT NULL DEFAULT 1 REFERENCES lamin.branch,
    space_id    bigint NOT NULL DEFAULT lamin.current_space_id() REFERENCES lamin.space,
    is_locked   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_not_own_type CHECK (type_id <> id),
    CONSTRAINT project_dates_in_order CHECK (end_date >= start_date)
);
-- Unique per space and type, as labels are: none tells of a record in a
-- space the writer cannot read.
CREATE UNIQUE INDEX project_name_in_type ON lamin.project (space_id, coalesce(type_id, 0), name);
CREATE INDEX project_type ON lamin.project (type_id);
COMMENT ON TABLE lamin.project IS 'Projects: what work belongs to; parents form a hierarchy (lamin.project_parent); artifacts, collections, transforms, runs and records link to them.';
COMMENT ON COLUMN lamin.project.id IS 'Internal id; refer to records by uid.';
COMMENT ON COLUMN lamin.project.uid IS '12 random base62 characters.';
COMMENT ON COLUMN lamin.project.name IS 'The project''s name (unique within its type and space).';
COMMENT ON COLUMN lamin.project.description IS 'Free text.';
COMMENT ON COLUMN lamin.project.is_type IS 'Whether this project is a type that other projects can have (e.g. "Grant").';
COMMENT ON COLUMN lamin.project.type_id IS 'The type of this project: a project with is_type = true.';
COMMENT ON COLUMN lamin.project.abbr IS 'A short name (searchable).';
COMMENT ON COLUMN lamin.project.url IS 'A web page of the project.';
COMMENT ON COLUMN lamin.project.start_date IS 'When the project started.';
COMMENT ON COLUMN lamin.project.end_date IS 'When the project ended (not before start_date).';
COMMENT ON COLUMN lamin.project.branch_id IS '1 main, 0 archive, -1 trash.';
COMMENT ON COLUMN lamin.project.space_id IS 'The space: who may read and write the record.';
COMMENT ON COLUMN lamin.project.is_locked IS 'Locked records change only by admins of their space.';
COMMENT ON COLUMN lamin.project.created_at IS 'When the record was created.';
COMMENT ON COLUMN lamin.project.created_by IS 'The lamin user (lamin.user.id) who created the record.';
COMMENT ON COLUMN lamin.project.updated_at IS 'When the record last changed.';

CREATE TABLE lamin.reference (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    uid         text NOT NULL UNIQUE DEFAULT lamin.uid(12)
                CONSTRAINT reference_uid_format CHECK (uid ~ '^[0-9A-Za-z]{12}$'),
    name        text NOT NULL CONSTRAINT reference_name_not_blank CHECK (btrim(name) <> ''),
    description text,
    is_type     boolean NOT NULL DEFAULT false,
    type_id     bigint REFERENCES lamin.reference ON DELETE RESTRICT,
    abbr        text,
    url         text,
    pubmed_id   bigint CONSTRAINT reference_pubmed_id_positive CHECK (pubmed_id > 0),
    -- LaminDB's pattern: a bare DOI or one written as a doi.org URL or doi: prefix.
    doi         text CONSTRAINT reference_doi_format CHECK (doi ~ '^(https?://(dx\.)?doi\.org/|doi:|DOI:)?10\.[0-9]+/\S+$'),
    text        text,
    date        date,
    branch_id   smallint NOT NULL DEFAULT 1 REFERENCES lamin.branch,
    space_id    bigint NOT NULL DEFAULT lamin.current_space_id() REFERENCES lamin.space,
    is_locked   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reference_not_own_type CHECK (type_id <> id)
);
-- A DOI is kept bare (10.1038/...), however it was written: one form to
-- search and compare.
CREATE FUNCTION lamin.tg_reference_doi() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.doi := regexp_replace(btrim(NEW.doi), '^(https?://(dx\.)?doi\.org/|doi:|DOI:)', '');
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION lamin.tg_reference_doi() IS 'Trigger: a reference''s DOI is stored bare (https://doi.org/ and doi: prefixes removed).';
CREATE TRIGGER reference_doi BEFORE INSERT OR UPDATE OF doi ON lamin.reference
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_reference_doi();
CREATE UNIQUE INDEX reference_name_in_type ON lamin.reference (space_id, coalesce(type_id, 0), name);
CREATE INDEX reference_type ON lamin.reference (type_id);
CREATE INDEX reference_doi ON lamin.reference (doi) WHERE doi IS NOT NULL;
COMMENT ON TABLE lamin.reference IS 'References: publications and other sources (doi, url, text, date) that artifacts, collections, transforms, runs, records and projects cite.';
COMMENT ON COLUMN lamin.reference.id IS 'Internal id; refer to records by uid.';
COMMENT ON COLUMN lamin.reference.uid IS '12 random base62 characters.';
COMMENT ON COLUMN lamin.reference.name IS 'The reference''s name, e.g. a paper''s title (unique within its type and space).';
COMMENT ON COLUMN lamin.reference.description IS 'Free text.';
COMMENT ON COLUMN lamin.reference.is_type IS 'Whether this reference is a type that other references can have (e.g. "Preprint").';
COMMENT ON COLUMN lamin.reference.type_id IS 'The type of this reference: a reference with is_type = true.';
COMMENT ON COLUMN lamin.reference.abbr IS 'A short name, e.g. "Smith 2024" (searchable).';
COMMENT ON COLUMN lamin.reference.url IS 'Where to read it.';
COMMENT ON COLUMN lamin.reference.pubmed_id IS 'The PubMed id.';
COMMENT ON COLUMN lamin.reference.doi IS 'The DOI, stored bare (10.1000/xyz123; written also as https://doi.org/10.1000/xyz123 or doi:10.1000/xyz123), searchable as its id.';
COMMENT ON COLUMN lamin.reference.text IS 'Text of or from the reference, e.g. an abstract or a quote.';
COMMENT ON COLUMN lamin.reference.date IS 'The date of publication.';
COMMENT ON COLUMN lamin.reference.branch_id IS '1 main, 0 archive, -1 trash.';
COMMENT ON COLUMN lamin.reference.space_id IS 'The space: who may read and write the record.';
COMMENT ON COLUMN lamin.reference.is_locked IS 'Locked records change only by admins of their space.';
COMMENT ON COLUMN lamin.reference.created_at IS 'When the record was created.';
COMMENT ON COLUMN lamin.reference.created_by IS 'The lamin user (lamin.user.id) who created the record.';
COMMENT ON COLUMN lamin.reference.updated_at IS 'When the record last changed.';

CREATE TABLE lamin.record (
    id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    uid            text NOT NULL UNIQUE DEFAULT lamin.uid(16)
                   CONSTRAINT record_uid_format CHECK (uid ~ '^[0-9A-Za-z]{16}$'),
    name           text CONSTRAINT record_name_not_blank CHECK (btrim(name) <> ''),
    description    text,
    is_type        boolean NOT NULL DEFAULT false,
    type_id        bigint REFERENCES lamin.record ON DELETE RESTRICT,
    schema_id      bigint REFERENCES lamin.schema ON DELETE RESTRICT,
    reference      text,
    reference_type text,
    run_id         bigint DEFAULT lamin.current_run_id() REFERENCES lamin.run ON DELETE SET NULL,
    branch_id      smallint NOT NULL DEFAULT 1 REFERENCES lamin.branch,
    space_id       bigint NOT NULL DEFAULT lamin.current_space_id() REFERENCES lamin.space,
    is_locked      boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT record_not_own_type CHECK (type_id <> id),
    -- A schema says what the records of a type hold: only types have one.
    CONSTRAINT record_schema_on_types CHECK (schema_id IS NULL OR is_type),
    CONSTRAINT record_type_named CHECK (name IS NOT NULL OR NOT is_type)
);
CREATE UNIQUE INDEX record_name_in_type ON lamin.record (space_id, coalesce(type_id, 0), name) WHERE name IS NOT NULL;
CREATE INDEX record_type ON lamin.record (type_id);
CREATE INDEX record_run ON lamin.record (run_id);
COMMENT ON TABLE lamin.record IS 'Records: rows of sheets (samples, donors, reagents). A record with is_type is a record type; its schema names the features its records hold as typed values (lamin.record_feature_value).';
COMMENT ON COLUMN lamin.record.id IS 'Internal id; refer to records by uid.';
COMMENT ON COLUMN lamin.record.uid IS '16 random base62 characters.';
COMMENT ON COLUMN lamin.record.name IS 'The record''s name, unique within its type and space; NULL for an unnamed row (a type needs a name).';
COMMENT ON COLUMN lamin.record.description IS 'Free text.';
COMMENT ON COLUMN lamin.record.is_type IS 'Whether this record is a record type (a sheet) whose records have it as type_id.';
COMMENT ON COLUMN lamin.record.type_id IS 'The record type of this record: a record with is_type = true.';
COMMENT ON COLUMN lamin.record.schema_id IS 'Of a record type: the schema whose features its records hold (only those; its required ones on every record that has values).';
COMMENT ON COLUMN lamin.record.reference IS 'An external reference, e.g. a LIMS id.';
COMMENT ON COLUMN lamin.record.reference_type IS 'What kind of reference that is.';
COMMENT ON COLUMN lamin.record.run_id IS 'The run that created the record (lamin.track).';
COMMENT ON COLUMN lamin.record.branch_id IS '1 main, 0 archive, -1 trash.';
COMMENT ON COLUMN lamin.record.space_id IS 'The space: who may read and write the record.';
COMMENT ON COLUMN lamin.record.is_locked IS 'Locked records change only by admins of their space.';
COMMENT ON COLUMN lamin.record.created_at IS 'When the record was created.';
COMMENT ON COLUMN lamin.record.created_by IS 'The lamin user (lamin.user.id) who created the record.';
COMMENT ON COLUMN lamin.record.updated_at IS 'When the record last changed.';

CREATE TRIGGER project_touch BEFORE UPDATE ON lamin.project FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at();
CREATE TRIGGER reference_touch BEFORE UPDATE ON lamin.reference FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at();
CREATE TRIGGER record_touch BEFORE UPDATE ON lamin.record FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at();

-- type_id points at a type of the same registry, and the chain of types does
-- not loop (ulabels have their own copy of this rule, lamin.tg_ulabel_type).
-- A record type with a schema holds records, not sub-types (LaminDB's rule:
-- the schema says what its members are), and its schema is a set of features.
CREATE FUNCTION lamin.tg_registry_type() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    parent record;
    loops boolean;
    itype text;
BEGIN
    -- (Through to_jsonb: projects and references have no schema_id to name.)
    SELECT s.itype INTO itype FROM lamin.schema s WHERE s.id = (to_jsonb(NEW) ->> 'schema_id')::bigint;
    IF itype <> 'lamin.feature' THEN
        RAISE EXCEPTION 'record type %: its schema must be a set of features, not %', quote_literal(NEW.name), itype
            USING ERRCODE = 'check_violation', HINT = 'make one with lamin.create_schema(ARRAY[feature names])';
    END IF;
    IF NEW.type_id IS NULL THEN
        RETURN NEW;
    END IF;
    -- (Static statements: parsed once; a bulk insert of records pays one
    -- index probe per row here.)
    CASE TG_TABLE_NAME
        WHEN 'record' THEN SELECT t.is_type, t.name, t.schema_id INTO parent FROM lamin.record t WHERE t.id = NEW.type_id;
        WHEN 'project' THEN SELECT t.is_type, t.name, NULL::bigint AS schema_id INTO parent FROM lamin.project t WHERE t.id = NEW.type_id;
        ELSE SELECT t.is_type, t.name, NULL::bigint AS schema_id INTO parent FROM lamin.reference t WHERE t.id = NEW.type_id;
    END CASE;
    IF parent.is_type IS NOT true THEN
        RAISE EXCEPTION '% %: its type % is not a type; set is_type = true on it first', TG_TABLE_NAME,
            coalesce(quote_literal(NEW.name), NEW.uid), coalesce(quote_literal(parent.name), '(id ' || NEW.type_id || ')')
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.is_type AND parent.schema_id IS NOT NULL THEN
        RAISE EXCEPTION 'record type %: type % has a schema, so it holds records, not record types', quote_literal(NEW.name),
            quote_literal(parent.name)
            USING ERRCODE = 'check_violation', HINT = 'nest types under a type without a schema';
    END IF;
    -- A new row has no types below it: only a changed type_id can close a cycle.
    IF TG_OP = 'INSERT' THEN
        RETURN NEW;
    END IF;
    EXECUTE format($q$WITH RECURSIVE chain(id, depth) AS (
                          SELECT $1, 1
                          UNION ALL
                          SELECT t.type_id, c.depth + 1 FROM chain c JOIN %s t ON t.id = c.id
                          WHERE t.type_id IS NOT NULL AND c.depth < 1000)
                      SELECT bool_or(id = $2) FROM chain$q$, tbl)
    INTO loops USING NEW.type_id, NEW.id;
    IF loops THEN
        RAISE EXCEPTION '% %: type chain would form a cycle', TG_TABLE_NAME, coalesce(quote_literal(NEW.name), NEW.uid)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION lamin.tg_registry_type() IS
    'Trigger of project, reference and record: type_id names a type (is_type) of the same registry without closing a cycle; a record type with a schema has no sub-types, and its schema is a set of features.';
CREATE TRIGGER project_type BEFORE INSERT OR UPDATE OF type_id ON lamin.project
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_registry_type();
CREATE TRIGGER reference_type BEFORE INSERT OR UPDATE OF type_id ON lamin.reference
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_registry_type();
CREATE TRIGGER record_type BEFORE INSERT OR UPDATE OF type_id, schema_id, is_type ON lamin.record
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_registry_type();

-- Parents: projects nest (a programme and its projects), records nest (a
-- record ontology of one's own). Acyclic, like ulabel_parent.
CREATE TABLE lamin.project_parent (
    project_id bigint NOT NULL REFERENCES lamin.project ON DELETE CASCADE,
    parent_id  bigint NOT NULL REFERENCES lamin.project ON DELETE CASCADE,
    PRIMARY KEY (project_id, parent_id),
    CONSTRAINT project_parent_not_self CHECK (project_id <> parent_id)
);
CREATE INDEX project_parent_parent ON lamin.project_parent (parent_id);
COMMENT ON TABLE lamin.project_parent IS 'Parent edges between projects (a directed acyclic graph).';
COMMENT ON COLUMN lamin.project_parent.project_id IS 'The child project.';
COMMENT ON COLUMN lamin.project_parent.parent_id IS 'The parent project.';

CREATE TABLE lamin.record_parent (
    record_id bigint NOT NULL REFERENCES lamin.record ON DELETE CASCADE,
    parent_id bigint NOT NULL REFERENCES lamin.record ON DELETE CASCADE,
    PRIMARY KEY (record_id, parent_id),
    CONSTRAINT record_parent_not_self CHECK (record_id <> parent_id)
);
CREATE INDEX record_parent_parent ON lamin.record_parent (parent_id);
COMMENT ON TABLE lamin.record_parent IS 'Parent edges between records (a directed acyclic graph).';
COMMENT ON COLUMN lamin.record_parent.record_id IS 'The child record.';
COMMENT ON COLUMN lamin.record_parent.parent_id IS 'The parent record.';

-- An edge must not close a cycle (as lamin.tg_ulabel_parent_acyclic, for
-- any table of (X_id, parent_id) edges over lamin.X).
CREATE FUNCTION lamin.tg_parent_acyclic() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node text := split_part(TG_TABLE_NAME, '_parent', 1);
    child bigint := (to_jsonb(NEW) ->> (node || '_id'))::bigint;
    loops boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.' || TG_TABLE_NAME, 0));
    EXECUTE format($q$WITH RECURSIVE ancestors(id) AS (
                          SELECT $1
                          UNION
                          SELECT p.parent_id FROM ancestors a JOIN lamin.%I p ON p.%I = a.id)
                      SELECT bool_or(id = $2) FROM ancestors$q$, TG_TABLE_NAME, node || '_id')
    INTO loops USING NEW.parent_id, child;
    IF loops THEN
        EXECUTE format('SELECT (SELECT uid FROM lamin.%1$I WHERE id = $1) || '' -> '' || (SELECT uid FROM lamin.%1$I WHERE id = $2)', node)
        INTO node USING child, NEW.parent_id;
        RAISE EXCEPTION '% parent edge % would form a cycle', split_part(TG_TABLE_NAME, '_parent', 1), node
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION lamin.tg_parent_acyclic() FROM PUBLIC;
COMMENT ON FUNCTION lamin.tg_parent_acyclic() IS 'Trigger of project_parent and record_parent: an edge must not close a cycle (sees every edge, also those the caller cannot read).';
CREATE TRIGGER project_parent_acyclic AFTER INSERT OR UPDATE ON lamin.project_parent
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_parent_acyclic();
CREATE TRIGGER record_parent_acyclic AFTER INSERT OR UPDATE ON lamin.record_parent
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_parent_acyclic();

-- Registries of spaces: row-level security, lock, uid, audit; the space a
-- record goes to is the session's (lamin.use_space).
SELECT lamin.secure_table('lamin.project', 'space', true);
SELECT lamin.secure_table('lamin.reference', 'space', true);
SELECT lamin.secure_table('lamin.record', 'space', true);
SELECT lamin.secure_table('lamin.project_parent', 'link:lamin.project:project_id|lamin.project:parent_id');
SELECT lamin.secure_table('lamin.record_parent', 'link:lamin.record:record_id|lamin.record:parent_id');
ALTER POLICY link_read ON lamin.project_parent
    USING (EXISTS (SELECT FROM lamin.project o WHERE o.id = project_id) AND EXISTS (SELECT FROM lamin.project t WHERE t.id = parent_id));
ALTER POLICY link_read ON lamin.record_parent
    USING (EXISTS (SELECT FROM lamin.record o WHERE o.id = record_id) AND EXISTS (SELECT FROM lamin.record t WHERE t.id = parent_id));

SELECT pg_catalog.pg_extension_config_dump('lamin.project', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.reference', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.record', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.project_parent', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.record_parent', '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.project', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.reference', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.record', 'id')::regclass, '');
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lamin TO lamin_reader;

-- Searchable. Projects and references are guarded against near-duplicate
-- names like labels; records are not: a sheet's rows are often named by
-- counters (S1, S2, ...) and a name is unique within its type, not across.
SELECT lamin.make_searchable('lamin.project', 'name', abbr_field => 'abbr');
SELECT lamin.make_searchable('lamin.reference', 'name', abbr_field => 'abbr', id_field => 'doi');
SELECT lamin.make_searchable('lamin.record', 'name', guard => false);

-- Rows of lamin.registry that CREATE EXTENSION makes are not dumped (a
-- restore into a fresh extension would collide with them); users' are.
SELECT pg_catalog.pg_extension_config_dump('lamin.registry',
    $$WHERE name !~ '^bionty\.' AND name NOT IN ('lamin.ulabel', 'lamin.feature', 'lamin.project', 'lamin.reference', 'lamin.record')$$);

-- == sql/28_record_links.sql ==

-- Links: <owner>_<target> (owner_id, target_id[, feature_id]), visible and
-- written with the owner (an artifact's projects are seen with the artifact),
-- and only to targets the writer can read. The artifact tables carry the
-- feature through which an artifact was annotated (cat[lamin.project], ...),
-- as every artifact_<registry> table does; the others are plain links.
DO $$
DECLARE
    l record;
BEGIN
    FOR l IN SELECT * FROM (VALUES
        ('artifact', 'project', true), ('collection', 'project', false), ('transform', 'project', false),
        ('run', 'project', false), ('record', 'project', false),
        ('artifact', 'reference', true), ('collection', 'reference', false), ('transform', 'reference', false),
        ('run', 'reference', false), ('record', 'reference', false), ('project', 'reference', false),
        ('artifact', 'record', true), ('collection', 'record', false), ('run', 'record', false)
    ) x(owner, target, with_feature) LOOP
        EXECUTE format($t$CREATE TABLE lamin.%1$I (
                id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                %2$I        bigint NOT NULL REFERENCES lamin.%3$I ON DELETE CASCADE,
                %4$I        bigint NOT NULL REFERENCES lamin.%5$I ON DELETE RESTRICT,
                %6$s
                created_at  timestamptz NOT NULL DEFAULT now(),
                created_by  bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user")$t$,
            l.owner || '_' || l.target, l.owner || '_id', l.owner, l.target || '_id', l.target,
            CASE WHEN l.with_feature THEN 'feature_id bigint REFERENCES lamin.feature ON DELETE RESTRICT,' ELSE '' END);
        EXECUTE format('CREATE UNIQUE INDEX %I ON lamin.%I (%I, %I%s)', l.owner || '_' || l.target || '_unique',
                       l.owner || '_' || l.target, l.owner || '_id', l.target || '_id',
                       CASE WHEN l.with_feature THEN ', coalesce(feature_id, 0)' ELSE '' END);
        EXECUTE format('CREATE INDEX %I ON lamin.%I (%I)', l.owner || '_' || l.target || '_' || l.target,
                       l.owner || '_' || l.target, l.target || '_id');
        EXECUTE format('COMMENT ON TABLE lamin.%I IS %L', l.owner || '_' || l.target,
                       format('Links of %ss to %ss%s.', l.owner, l.target,
                              CASE WHEN l.with_feature THEN format(', optionally through a feature (dtype cat[lamin.%s])', l.target) ELSE '' END));
        EXECUTE format('COMMENT ON COLUMN lamin.%I.id IS %L', l.owner || '_' || l.target, 'Internal id of the link.');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.%I IS %L', l.owner || '_' || l.target, l.owner || '_id', format('The %s (lamin.%s.id).', l.owner, l.owner));
        EXECUTE format('COMMENT ON COLUMN lamin.%I.%I IS %L', l.owner || '_' || l.target, l.target || '_id', format('The %s (lamin.%s.id).', l.target, l.target));
        IF l.with_feature THEN
            EXECUTE format('COMMENT ON COLUMN lamin.%I.feature_id IS %L', l.owner || '_' || l.target, 'The feature the link annotates (NULL: a plain link).');
        END IF;
        EXECUTE format('COMMENT ON COLUMN lamin.%I.created_at IS %L', l.owner || '_' || l.target, 'When the link was made.');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.created_by IS %L', l.owner || '_' || l.target, 'The lamin user (lamin.user.id) who made the link.');
        PERFORM lamin.secure_table(format('lamin.%I', l.owner || '_' || l.target)::regclass,
                                   format('link:lamin.%1$s:%1$s_id|lamin.%2$s:%2$s_id', l.owner, l.target)
                                   || CASE WHEN l.with_feature THEN '|lamin.feature:feature_id' ELSE '' END);
        -- Seen only when both ends are: that an artifact belongs to a
        -- project of a space one cannot read is itself news of that project.
        EXECUTE format('ALTER POLICY link_read ON lamin.%1$I USING (EXISTS (SELECT FROM lamin.%2$I o WHERE o.id = %3$I)
                                                                   AND EXISTS (SELECT FROM lamin.%4$I t WHERE t.id = %5$I))',
                       l.owner || '_' || l.target, l.owner, l.owner || '_id', l.target, l.target || '_id');
        PERFORM pg_catalog.pg_extension_config_dump(format('lamin.%I', l.owner || '_' || l.target), '');
        PERFORM pg_catalog.pg_extension_config_dump(pg_get_serial_sequence(format('lamin.%I', l.owner || '_' || l.target), 'id')::regclass, '');
    END LOOP;
END
$$;

-- The id of a record of one of the registries links and values name by
-- uid: artifacts and collections by uid (or the stem: the latest version),
-- transforms by uid, stem or key (the latest version), runs by uid;
-- projects, references and records also by name (of the spaces the caller
-- reads, the current space's first; a name shared within them is refused
-- with the uids to choose from). A record the caller cannot read is "no such
-- record", as everywhere.
CREATE FUNCTION lamin.entity_id(kind text, ref text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_ids bigint[];
    by_uid boolean;
BEGIN
    IF ref IS NULL THEN
        RAISE EXCEPTION 'no % given', coalesce(kind, 'record') USING ERRCODE = 'null_value_not_allowed';
    END IF;
    CASE kind
        WHEN 'artifact' THEN RETURN lamin.artifact_id(ref);
        WHEN 'collection' THEN RETURN lamin.collection_id(ref);
        WHEN 'transform' THEN
            found_ids := ARRAY(SELECT t.id FROM lamin.transform t
                               WHERE t.uid = ref OR ((t.stem = ref OR t.key = ref) AND t.is_latest) ORDER BY t.uid = ref DESC, t.id LIMIT 2);
        WHEN 'run' THEN
            found_ids := ARRAY(SELECT r.id FROM lamin.run r WHERE r.uid = ref);
        WHEN 'project', 'reference', 'record' THEN
            EXECUTE format($q$SELECT ARRAY(
                                  SELECT x.id FROM lamin.%1$I x
                                  WHERE x.uid = $1
                                     OR (x.name = $1 AND x.branch_id <> -1
                                         AND x.space_id = (SELECT y.space_id FROM lamin.%1$I y WHERE y.name = $1 AND y.branch_id <> -1
                                                           ORDER BY y.space_id = lamin.current_space_id() DESC, y.space_id LIMIT 1))
                                  ORDER BY x.uid = $1 DESC, x.id)$q$, kind)
            INTO found_ids USING ref;
            -- A uid names one record; a name may be shared by records of several types.
            IF cardinality(found_ids) > 1 THEN
                EXECUTE format('SELECT x.uid = $1 FROM lamin.%I x WHERE x.id = $2', kind) INTO STRICT by_uid USING ref, found_ids[1];
                IF NOT by_uid THEN
                    RAISE EXCEPTION '% name % is shared by several %s', kind, quote_literal(left(ref, 200)), kind
                        USING ERRCODE = 'cardinality_violation',
                              HINT = 'name it by uid: ' || (SELECT string_agg(x, ', ') FROM unnest(ARRAY(
                                  SELECT lamin.entity_uid(kind, i) FROM unnest(found_ids) i)) x);
                END IF;
            END IF;
        ELSE
            RAISE EXCEPTION 'unknown kind %', coalesce(quote_literal(kind), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'kind is ''artifact'', ''collection'', ''transform'', ''run'', ''record'', ''project'' or ''reference''';
    END CASE;
    IF cardinality(found_ids) = 0 THEN
        RAISE EXCEPTION 'no % %', kind, quote_literal(left(ref, 200))
            USING ERRCODE = 'no_data_found',
                  HINT = CASE WHEN kind IN ('project', 'reference', 'record')
                              THEN format('name it by uid or name; lamin.search(%L, ''lamin.%s'') finds it by part of its name', left(ref, 200), kind)
                              ELSE 'name it by uid' END;
    END IF;
    RETURN found_ids[1];
END
$$;
COMMENT ON FUNCTION lamin.entity_id(text, text) IS
    'The id of an artifact, collection, transform, run, record, project or reference (kind) named by uid (records, projects, references also by name; transforms also by key); no such record, or a shared name, is an error.';

-- The uid of a record of one of those registries (for messages).
CREATE FUNCTION lamin.entity_uid(kind text, id bigint) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found text;
BEGIN
    IF kind NOT IN ('artifact', 'collection', 'transform', 'run', 'record', 'project', 'reference') THEN
        RAISE EXCEPTION 'unknown kind %', coalesce(quote_literal(kind), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT x.uid FROM lamin.%I x WHERE x.id = $1', kind) INTO found USING id;
    RETURN found;
END
$$;
COMMENT ON FUNCTION lamin.entity_uid(text, bigint) IS 'The uid of a record of an artifact, collection, transform, run, record, project or reference (kind) by id; NULL when the caller cannot read it.';

-- The link table between records of a kind and a project, reference or
-- record (lamin.<kind>_<target>), or a clear refusal.
CREATE FUNCTION lamin.link_table(kind text, target_kind text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target_kind IS NULL OR target_kind NOT IN ('project', 'reference', 'record')
       OR to_regclass(format('lamin.%I', kind || '_' || target_kind)) IS NULL THEN
        RAISE EXCEPTION 'cannot link a % to a %', coalesce(kind, 'NULL'), coalesce(target_kind, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'projects take artifacts, collections, transforms, runs and records; references take those and projects; records take artifacts, collections and runs';
    END IF;
    RETURN kind || '_' || target_kind;
END
$$;
COMMENT ON FUNCTION lamin.link_table(text, text) IS 'The link table (in schema lamin) between records of a kind and a project, reference or record; an error names the kinds that link.';

-- Link records to a project or a reference: lamin.link('artifact', uids,
-- 'project', 'Atlas'). Everything named must exist (all or nothing); links
-- already there are kept. Returns the number of new links.
CREATE FUNCTION lamin.link(kind text, uids text[], target_kind text, target text) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tbl text := lamin.link_table(kind, target_kind);
    target_id bigint;
    ids bigint[];
    n int;
BEGIN
    IF uids IS NULL OR cardinality(uids) = 0 THEN
        RAISE EXCEPTION 'link: no % uids given', kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    target_id := lamin.entity_id(target_kind, target);
    ids := ARRAY(SELECT DISTINCT lamin.entity_id(kind, u) FROM unnest(uids) u);
    EXECUTE format('INSERT INTO lamin.%I (%I, %I) SELECT i, $1 FROM unnest($2) i ON CONFLICT DO NOTHING', tbl, kind || '_id', target_kind || '_id')
    USING target_id, ids;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION lamin.link(text, text[], text, text) IS
    'Link records of a kind (artifact, collection, transform, run, record, project) by uid to a project, reference or record named by uid or name (all or nothing); returns the number of new links.';

CREATE FUNCTION lamin.unlink(kind text, uids text[], target_kind text, target text) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tbl text := lamin.link_table(kind, target_kind);
    n int;
BEGIN
    EXECUTE format('DELETE FROM lamin.%I WHERE %I = $1 AND %I = ANY ($2)', tbl, target_kind || '_id', kind || '_id')
    USING lamin.entity_id(target_kind, target), ARRAY(SELECT lamin.entity_id(kind, u) FROM unnest(uids) u);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION lamin.unlink(text, text[], text, text) IS
    'Remove the links of records of a kind (by uid) to a project, reference or record (by uid or name); returns the number removed.';

-- What a run creates belongs to the run's projects (lamin.track(...,
-- project => ...)): one statement per saving statement, nothing when the
-- run has no project.
CREATE FUNCTION lamin.tg_link_run_projects() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$INSERT INTO lamin.%1$I (%2$I, project_id)
                      SELECT n.id, rp.project_id FROM new_rows n JOIN lamin.run_project rp ON rp.run_id = n.run_id
                      WHERE n.run_id IS NOT NULL
                      ON CONFLICT DO NOTHING$q$, TG_TABLE_NAME || '_project', TG_TABLE_NAME || '_id');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.tg_link_run_projects() IS 'Trigger: artifacts, collections and records a run creates are linked to the run''s projects.';
CREATE TRIGGER link_run_projects AFTER INSERT ON lamin.artifact REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_link_run_projects();
CREATE TRIGGER link_run_projects AFTER INSERT ON lamin.collection REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_link_run_projects();
CREATE TRIGGER link_run_projects AFTER INSERT ON lamin.record REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_link_run_projects();

-- How many records of each kind link to a project, reference or record
-- (describe's "links"), among those the caller can read.
CREATE FUNCTION lamin.link_counts(kind text, id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner text;
    n bigint;
    out jsonb := '{}';
BEGIN
    FOREACH owner IN ARRAY ARRAY['artifact', 'collection', 'transform', 'run', 'record', 'project'] LOOP
        CONTINUE WHEN to_regclass(format('lamin.%I', owner || '_' || kind)) IS NULL OR owner = kind;
        EXECUTE format('SELECT count(*) FROM lamin.%I l WHERE l.%I = $1', owner || '_' || kind, kind || '_id') INTO n USING id;
        out := out || jsonb_build_object(owner || 's', n);
    END LOOP;
    RETURN out;
END
$$;
COMMENT ON FUNCTION lamin.link_counts(text, bigint) IS 'The number of readable artifacts, collections, transforms, runs, records and projects linked to a project, reference or record (kind, id).';

-- lamin.annotations (sql/23_query_views.sql) gains the annotations with
-- projects, references and records, whose link tables exist from here on.
CREATE OR REPLACE VIEW lamin.annotations WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature,
       x.registry, x.record_uid, x.name, x.ontology_id, a.id AS artifact_id
FROM (
    SELECT l.artifact_id, l.feature_id, 'lamin.ulabel'::text AS registry, u.uid AS record_uid, u.name,
           NULL::text AS ontology_id
    FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
    UNION ALL
    SELECT t.artifact_id, t.feature_id, t.registry, t.uid, t.name, t.ontology_id
    FROM bionty.artifact_terms t
    UNION ALL
    SELECT l.artifact_id, l.feature_id, 'lamin.project', p.uid, p.name, NULL
    FROM lamin.artifact_project l JOIN lamin.project p ON p.id = l.project_id
    UNION ALL
    SELECT l.artifact_id, l.feature_id, 'lamin.reference', r.uid, r.name, NULL
    FROM lamin.artifact_reference l JOIN lamin.reference r ON r.id = l.reference_id
    UNION ALL
    SELECT l.artifact_id, l.feature_id, 'lamin.record', r.uid, coalesce(r.name, r.uid), NULL
    FROM lamin.artifact_record l JOIN lamin.record r ON r.id = l.record_id
) x
JOIN lamin.artifact a ON a.id = x.artifact_id
LEFT JOIN lamin.feature f ON f.id = x.feature_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.annotations IS 'Every annotation of an artifact with a label (lamin.ulabel, a bionty registry, a project, reference or record), by uid: e.g. the latest artifacts annotated with any T cell: WHERE is_latest AND ontology_id IN (SELECT ontology_id FROM bionty.descendants(''CL:0000084'', include_self => true)). Registries of one''s own have their own link tables (schema.artifact_<table>).';

-- (Sequences of the tables above.)
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lamin TO lamin_reader;

-- == sql/29_sheets.sql ==

-- Typed feature values of projects, references and records: the layout and
-- trigger of the collections' values (sql/24_feature_values.sql).
DO $$
DECLARE
    k text;
BEGIN
    FOREACH k IN ARRAY ARRAY['project', 'reference', 'record'] LOOP
        EXECUTE format($t$CREATE TABLE lamin.%1$I (
                id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                %2$I            bigint NOT NULL REFERENCES lamin.%3$I ON DELETE CASCADE,
                feature_id      bigint NOT NULL REFERENCES lamin.feature ON DELETE RESTRICT,
                value           jsonb NOT NULL,
                created_at      timestamptz NOT NULL DEFAULT now(),
                created_by      bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user",
                value_number    double precision,
                value_text      text,
                value_boolean   boolean,
                value_date      date,
                value_timestamp timestamptz,
                CONSTRAINT %4$I UNIQUE (%2$I, feature_id, value))$t$,
            k || '_feature_value', k || '_id', k, k || '_feature_value_unique');
        EXECUTE format('CREATE INDEX %1$I ON lamin.%2$I (feature_id, value_number, %3$I) WHERE value_number IS NOT NULL', k || '_feature_value_number', k || '_feature_value', k || '_id');
        EXECUTE format('CREATE INDEX %1$I ON lamin.%2$I (feature_id, value_text, %3$I) WHERE value_text IS NOT NULL', k || '_feature_value_text', k || '_feature_value', k || '_id');
        EXECUTE format('CREATE INDEX %1$I ON lamin.%2$I (feature_id, value_boolean, %3$I) WHERE value_boolean IS NOT NULL', k || '_feature_value_boolean', k || '_feature_value', k || '_id');
        EXECUTE format('CREATE INDEX %1$I ON lamin.%2$I (feature_id, value_date, %3$I) WHERE value_date IS NOT NULL', k || '_feature_value_date', k || '_feature_value', k || '_id');
        EXECUTE format('CREATE INDEX %1$I ON lamin.%2$I (feature_id, value_timestamp, %3$I) WHERE value_timestamp IS NOT NULL', k || '_feature_value_timestamp', k || '_feature_value', k || '_id');
        EXECUTE format('COMMENT ON TABLE lamin.%I IS %L', k || '_feature_value',
                       format('Feature values of %ss, categorical ones included (the registry record''s canonical text): canonical JSON in value, typed copies filled and checked by a trigger from the feature''s dtype.', k));
        EXECUTE format('COMMENT ON COLUMN lamin.%I.id IS %L', k || '_feature_value', 'Internal id; refer to records by uid.');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.%I IS %L', k || '_feature_value', k || '_id', format('The %s (lamin.%s.id).', k, k));
        EXECUTE format('COMMENT ON COLUMN lamin.%I.feature_id IS %L', k || '_feature_value', 'The feature (lamin.feature.id).');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.value IS %L', k || '_feature_value', 'The value, canonical JSON of the feature''s dtype (one element of a list[...] feature).');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.created_at IS %L', k || '_feature_value', 'When the record was created.');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.created_by IS %L', k || '_feature_value', 'The lamin user (lamin.user.id) who created the record.');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.value_number IS %L', k || '_feature_value', 'The value of an int, float or num feature in double precision (set by the trigger; the exact value is in value).');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.value_text IS %L', k || '_feature_value', 'The value of a str, url, path or categorical feature (set by the trigger).');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.value_boolean IS %L', k || '_feature_value', 'The value of a bool feature (set by the trigger).');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.value_date IS %L', k || '_feature_value', 'The value of a date feature (set by the trigger).');
        EXECUTE format('COMMENT ON COLUMN lamin.%I.value_timestamp IS %L', k || '_feature_value', 'The value of a datetime feature (set by the trigger).');
        EXECUTE format('CREATE TRIGGER typed_value BEFORE INSERT OR UPDATE ON lamin.%I FOR EACH ROW EXECUTE FUNCTION lamin.tg_feature_value()', k || '_feature_value');
        PERFORM lamin.secure_table(format('lamin.%I', k || '_feature_value')::regclass,
                                   format('link:lamin.%1$s:%1$s_id|lamin.feature:feature_id', k));
        PERFORM pg_catalog.pg_extension_config_dump(format('lamin.%I', k || '_feature_value'), '');
        PERFORM pg_catalog.pg_extension_config_dump(pg_get_serial_sequence(format('lamin.%I', k || '_feature_value'), 'id')::regclass, '');
    END LOOP;
END
$$;

-- The records of a typed sheet that have values hold one of every feature
-- its schema requires (a minimal set: members not marked optional). Checked
-- when the transaction commits, so that a record's values can be written in
-- several statements; a record without any values is an empty row and
-- passes. (Which features a record may hold at all is the value trigger's
-- check, per row.)
CREATE FUNCTION lamin.record_missing_features(record_id bigint) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(f.name ORDER BY sf.position)
    FROM lamin.record r
    JOIN lamin.record t ON t.id = r.type_id
    JOIN lamin.schema s ON s.id = t.schema_id AND s.minimal_set
    JOIN lamin.schema_feature sf ON sf.schema_id = s.id AND NOT sf.optional
    JOIN lamin.feature f ON f.id = sf.feature_id
    WHERE r.id = record_missing_features.record_id
      AND EXISTS (SELECT FROM lamin.record_feature_value v WHERE v.record_id = r.id)
      AND NOT EXISTS (SELECT FROM lamin.record_feature_value v WHERE v.record_id = r.id AND v.feature_id = sf.feature_id)
$$;
COMMENT ON FUNCTION lamin.record_missing_features(bigint) IS
    'The features a record''s type requires (its schema''s members not marked optional) that the record holds no value of; NULL when none is missing or the record holds no values at all.';

CREATE FUNCTION lamin.tg_record_complete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.record_id ELSE NEW.record_id END;
    missing text[];
    r record;
BEGIN
    -- A record's values arrive together (an import writes them in a row):
    -- the queued checks of one record after the first are the same check.
    -- The record last checked is remembered for the transaction, and
    -- forgotten by every statement that writes values
    -- (lamin.tg_record_values_written), so a skipped check is always one
    -- that just ran on the same values.)
    IF current_setting('lamin.record_checked', true) = rid::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('lamin.record_checked', rid::text, true);
    missing := lamin.record_missing_features(rid);
    IF missing IS NOT NULL THEN
        SELECT x.uid, x.name, t.name AS type_name INTO r FROM lamin.record x JOIN lamin.record t ON t.id = x.type_id WHERE x.id = rid;
        RAISE EXCEPTION 'record % of type % lacks required feature(s) %', coalesce(quote_literal(r.name), r.uid),
            quote_literal(r.type_name), array_to_string(missing, ', ')
            USING ERRCODE = 'not_null_violation',
                  HINT = format('give every required feature a value (lamin.add_values(''record'', %L, ''{"%s": ...}'')), or mark it optional in the type''s schema',
                                r.uid, missing[1]);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.tg_record_complete() IS 'Deferred trigger: at commit, a record with values holds a value of every feature its type''s schema requires.';
CREATE CONSTRAINT TRIGGER record_complete AFTER INSERT OR DELETE ON lamin.record_feature_value
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lamin.tg_record_complete();

CREATE FUNCTION lamin.tg_record_values_written() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('lamin.record_checked', '', true);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.tg_record_values_written() IS 'Trigger: a statement that writes record values makes lamin.tg_record_complete check every record again.';
CREATE TRIGGER record_values_written AFTER INSERT OR UPDATE OR DELETE ON lamin.record_feature_value
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_record_values_written();

-- The values of records (a sheet, row by row), projects and references,
-- typed: as lamin.run_values for runs.
CREATE VIEW lamin.record_values WITH (security_invoker = true) AS
SELECT r.uid AS record_uid, r.name AS record_name, t.name AS record_type, f.name AS feature, f.dtype,
       v.value_text, v.value_number, v.value_boolean, v.value_date, v.value_timestamp, v.value,
       r.id AS record_id
FROM lamin.record_feature_value v
JOIN lamin.record r ON r.id = v.record_id
LEFT JOIN lamin.record t ON t.id = r.type_id
JOIN lamin.feature f ON f.id = v.feature_id
WHERE r.branch_id <> -1;
COMMENT ON VIEW lamin.record_values IS 'The feature values of records, typed and indexed: e.g. donors older than 50: WHERE record_type = ''Donor'' AND feature = ''donor_age'' AND value_number > 50.';
COMMENT ON COLUMN lamin.record_values.record_uid IS 'uid of the record.';
COMMENT ON COLUMN lamin.record_values.record_name IS 'Name of the record.';
COMMENT ON COLUMN lamin.record_values.record_type IS 'Name of the record''s type (its sheet).';
COMMENT ON COLUMN lamin.record_values.feature IS 'Name of the feature.';
COMMENT ON COLUMN lamin.record_values.dtype IS 'dtype of the feature.';
COMMENT ON COLUMN lamin.record_values.value_text IS 'The value of a str, url, path or categorical feature.';
COMMENT ON COLUMN lamin.record_values.value_number IS 'The value of a numeric feature (int, float, num).';
COMMENT ON COLUMN lamin.record_values.value_boolean IS 'The value of a bool feature.';
COMMENT ON COLUMN lamin.record_values.value_date IS 'The value of a date feature.';
COMMENT ON COLUMN lamin.record_values.value_timestamp IS 'The value of a datetime feature.';
COMMENT ON COLUMN lamin.record_values.value IS 'The value as stored (canonical JSON).';
COMMENT ON COLUMN lamin.record_values.record_id IS 'Internal id of the record (joins lamin.record).';
GRANT SELECT ON lamin.record_values TO lamin_reader;

-- The record type a sheet function names (uid or name), refused when it is a
-- plain record.
CREATE FUNCTION lamin.record_type_id(record_type text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found record;
BEGIN
    SELECT r.id, r.is_type, r.name INTO found FROM lamin.record r WHERE r.id = lamin.entity_id('record', record_type);
    IF NOT found.is_type THEN
        RAISE EXCEPTION 'record % is not a record type', quote_literal(found.name)
            USING ERRCODE = 'wrong_object_type', HINT = 'a record type (a sheet) has is_type = true; its records have it as type_id';
    END IF;
    RETURN found.id;
END
$$;
COMMENT ON FUNCTION lamin.record_type_id(text) IS 'The id of a record type (is_type) named by uid or name; a plain record is refused.';

-- The columns of a sheet: its schema's features in order; without a schema,
-- the features its records hold, by name.
CREATE FUNCTION lamin.record_columns(record_type text) RETURNS TABLE (feature text, dtype text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (SELECT r.id, r.schema_id FROM lamin.record r WHERE r.id = lamin.record_type_id(record_type))
    SELECT c.name, c.dtype FROM (
        SELECT f.name, f.dtype, sf.position AS pos
        FROM t JOIN lamin.schema_feature sf ON sf.schema_id = t.schema_id JOIN lamin.feature f ON f.id = sf.feature_id
        UNION ALL
        SELECT x.name, x.dtype, row_number() OVER (ORDER BY x.name) FROM (
            SELECT DISTINCT f.name, f.dtype FROM t JOIN lamin.record r ON r.type_id = t.id AND r.branch_id <> -1
            JOIN lamin.record_feature_value v ON v.record_id = r.id JOIN lamin.feature f ON f.id = v.feature_id
            WHERE t.schema_id IS NULL) x
    ) c ORDER BY c.pos
$$;
COMMENT ON FUNCTION lamin.record_columns(text) IS 'The features of a record type''s sheet: its schema''s members in order, or (without a schema) the features its records hold.';

-- The rows of a sheet: each record of the type (trash excluded, oldest
-- first) with its values as one JSON object (a list[...] feature: a list).
CREATE FUNCTION lamin.record_rows(record_type text) RETURNS TABLE (uid text, name text, "values" jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.uid, r.name, coalesce((
               SELECT jsonb_object_agg(x.feature, x.value) FROM (
                   SELECT f.name AS feature,
                          CASE WHEN f.dtype LIKE 'list[%' THEN jsonb_agg(v.value ORDER BY v.id) ELSE min(v.value::text)::jsonb END AS value
                   FROM lamin.record_feature_value v JOIN lamin.feature f ON f.id = v.feature_id
                   WHERE v.record_id = r.id GROUP BY f.name, f.dtype) x), '{}')
    FROM lamin.record r
    WHERE r.type_id = lamin.record_type_id(record_type) AND r.branch_id <> -1
    ORDER BY r.id
$$;
COMMENT ON FUNCTION lamin.record_rows(text) IS 'The records of a record type (a sheet), oldest first, each with its feature values as one JSON object (list features as lists).';

-- Import rows into a sheet, all or nothing: a JSON array of objects whose
-- keys are feature names, plus the name column and, optionally, "uid". A row
-- with a uid updates that record; else a row whose name the type already has
-- (in the current space) updates that one; else it is a new record. An
-- update replaces the values of the features the row gives; NULL cells are
-- left out (and leave values as they are). Values are coerced where the
-- dtype reads them (a number written as text), and checked as add_values
-- checks them; a misfit names its row and column.
CREATE FUNCTION lamin.import_records(record_type text, rows jsonb, name_column text DEFAULT 'name')
RETURNS TABLE (uid text, name text, created boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tid bigint := lamin.record_type_id(record_type);
    t record;
    items jsonb[];
    ids bigint[] := '{}';
    uids text[] := '{}';
    fresh boolean[] := '{}';
    new_names text[] := '{}';
    fnames text[];
    fids bigint[];
    fdtypes text[];
    v_rows bigint[];
    v_features bigint[];
    v_values jsonb[];
    v_raw jsonb[];
    v_keys text[];
    bad record;
    i int;
BEGIN
    SELECT r.name, r.schema_id, r.space_id INTO t FROM lamin.record r WHERE r.id = tid;
    IF rows IS NULL OR jsonb_typeof(rows) <> 'array' OR EXISTS (SELECT FROM jsonb_array_elements(rows) x WHERE jsonb_typeof(x) <> 'object') THEN
        RAISE EXCEPTION 'import_records: rows are a JSON array of objects, one per record'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ''[{"name": "D1", "donor_age": 54}, {"name": "D2", "donor_age": 61}]''';
    END IF;
    PERFORM lamin.require_write('importing records');
    items := ARRAY(SELECT x FROM jsonb_array_elements(rows) x);
    -- Every other column names a feature (of the type's schema, if it has one).
    fnames := ARRAY(SELECT DISTINCT k FROM unnest(items) x, jsonb_object_keys(x) k WHERE k NOT IN (name_column, 'uid') ORDER BY 1);
    SELECT string_agg(quote_literal(k), ', ') AS ks INTO bad FROM unnest(fnames) k
    WHERE NOT EXISTS (SELECT FROM lamin.feature f WHERE f.name = k);
    IF bad.ks IS NOT NULL THEN
        RAISE EXCEPTION 'import_records: columns that name no feature: %', bad.ks
            USING ERRCODE = 'undefined_column',
                  HINT = format('create them (lamin.create_feature(name, dtype)), or name the column holding record names: name_column => ... (now %L)', name_column);
    END IF;
    fids := ARRAY(SELECT lamin.feature_id(k) FROM unnest(fnames) WITH ORDINALITY x(k, o) ORDER BY o);
    fdtypes := ARRAY(SELECT f.dtype FROM unnest(fids) WITH ORDINALITY x(id, o) JOIN lamin.feature f ON f.id = x.id ORDER BY o);
    IF t.schema_id IS NOT NULL THEN
        SELECT string_agg(quote_literal(k), ', ') AS ks INTO bad FROM unnest(fnames, fids) x(k, id)
        WHERE NOT EXISTS (SELECT FROM lamin.schema_feature sf WHERE sf.schema_id = t.schema_id AND sf.feature_id = x.id);
        IF bad.ks IS NOT NULL THEN
            RAISE EXCEPTION 'import_records: columns not in the schema of record type %: %', quote_literal(t.name), bad.ks
                USING ERRCODE = 'check_violation',
                      HINT = 'its features: ' || (SELECT string_agg(f.name, ', ' ORDER BY sf.position) FROM lamin.schema_feature sf
                                                 JOIN lamin.feature f ON f.id = sf.feature_id WHERE sf.schema_id = t.schema_id);
        END IF;
    END IF;
    -- Every value made to fit its feature once (coerced where the dtype
    -- reads it); one that does not fit is named by row (1 = the first) and column.
    SELECT array_agg(x.n ORDER BY x.n, e.key, el.o), array_agg(f.id ORDER BY x.n, e.key, el.o),
           array_agg((lamin.fit_value(f.dtype, el.v, true)).value ORDER BY x.n, e.key, el.o),
           array_agg(el.v ORDER BY x.n, e.key, el.o), array_agg(e.key ORDER BY x.n, e.key, el.o)
    INTO v_rows, v_features, v_values, v_raw, v_keys
    FROM unnest(items) WITH ORDINALITY x(r, n)
    CROSS JOIN LATERAL jsonb_each(x.r) e
    JOIN unnest(fnames, fids, fdtypes) f(name, id, dtype) ON f.name = e.key
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(e.value) = 'array' THEN e.value ELSE jsonb_build_array(e.value) END)
        WITH ORDINALITY el(v, o)
    WHERE jsonb_typeof(e.value) <> 'null' AND jsonb_typeof(el.v) <> 'null';
    i := array_position(v_values, NULL);
    IF i IS NOT NULL THEN
        RAISE EXCEPTION 'import_records: row %: %', v_rows[i],
            lamin.value_misfit(v_keys[i], fdtypes[array_position(fnames, v_keys[i])], v_raw[i])
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    -- Which record each row is, in one pass: by uid, else by name within the
    -- type in the current space (the probe matches record_name_in_type), else
    -- a new record with a uid handed out here.
    SELECT array_agg(coalesce(ru.id, rn.id) ORDER BY x.n),
           array_agg(CASE WHEN ru.id IS NULL AND rn.id IS NULL THEN lamin.uid(16) END ORDER BY x.n),
           array_agg(x.r ->> name_column ORDER BY x.n),
           array_agg(x.r ->> 'uid' IS NOT NULL AND ru.id IS NULL ORDER BY x.n)
    INTO ids, uids, new_names, fresh
    FROM unnest(items) WITH ORDINALITY x(r, n)
    LEFT JOIN lamin.record ru ON x.r ->> 'uid' IS NOT NULL AND ru.uid = x.r ->> 'uid' AND ru.type_id = tid
    LEFT JOIN lamin.record rn ON x.r ->> 'uid' IS NULL AND x.r ->> name_column IS NOT NULL
                             AND rn.space_id = lamin.current_space_id() AND coalesce(rn.type_id, 0) = tid AND rn.name = x.r ->> name_column;
    i := array_position(fresh, true);
    IF i IS NOT NULL THEN
        RAISE EXCEPTION 'import_records: row %: uid % is no record of type %', i, quote_literal(items[i] ->> 'uid'), quote_literal(t.name)
            USING ERRCODE = 'no_data_found', HINT = 'leave uid empty for a new record';
    END IF;
    -- Two rows of one record: the same existing record, or one new name twice.
    SELECT min(x.n) AS n, (array_agg(x.n ORDER BY x.n))[2] AS again, min(coalesce(x.nm, items[x.n] ->> 'uid')) AS what INTO bad
    FROM unnest(ids, new_names) WITH ORDINALITY x(id, nm, n)
    WHERE x.id IS NOT NULL OR x.nm IS NOT NULL
    GROUP BY CASE WHEN x.id IS NOT NULL THEN 'id:' || x.id ELSE 'new:' || x.nm END
    HAVING count(*) > 1
    ORDER BY 2 LIMIT 1;
    IF bad.n IS NOT NULL THEN
        RAISE EXCEPTION 'import_records: row % is record % of row % again', bad.again, quote_literal(bad.what), bad.n
            USING ERRCODE = 'unique_violation', HINT = 'one row per record: names are unique within a record type';
    END IF;
    -- Rows with a uid may rename their record.
    UPDATE lamin.record r SET name = x.nm
    FROM unnest(ids, new_names, items) x(id, nm, item)
    WHERE r.id = x.id AND x.item ->> 'uid' IS NOT NULL AND x.nm IS NOT NULL AND r.name IS DISTINCT FROM x.nm;
    fresh := ARRAY(SELECT x IS NULL FROM unnest(ids) x);
    -- New records in one statement (lamin's statement triggers run once).
    INSERT INTO lamin.record (uid, name, type_id) SELECT x.u, x.nm, tid FROM unnest(uids, new_names) x(u, nm) WHERE x.u IS NOT NULL;
    ids := ARRAY(SELECT coalesce(x.id, r.id) FROM unnest(ids, uids) WITH ORDINALITY x(id, u, o)
                 LEFT JOIN lamin.record r ON r.uid = x.u ORDER BY x.o);
    -- The values: those of the features a row gives replace the record's.
    DELETE FROM lamin.record_feature_value v
    USING unnest(ids, items, fresh) x(id, r, is_new), jsonb_each(x.r) e, unnest(fnames, fids) f(name, id)
    WHERE NOT x.is_new AND f.name = e.key AND jsonb_typeof(e.value) <> 'null' AND v.record_id = x.id AND v.feature_id = f.id;
    INSERT INTO lamin.record_feature_value (record_id, feature_id, value)
    SELECT ids[x.n], x.feature_id, x.value FROM unnest(v_rows, v_features, v_values) x(n, feature_id, value)
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT r.uid, r.name, x.is_new FROM unnest(ids, fresh) WITH ORDINALITY x(id, is_new, o) JOIN lamin.record r ON r.id = x.id ORDER BY x.o;
END
$$;
COMMENT ON FUNCTION lamin.import_records(text, jsonb, text) IS
    'Import rows (a JSON array of objects: feature columns, the name column, optionally uid) into a record type, all or nothing: rows with a known uid or name update that record (the values of the features given are replaced), others are new records; returns each row''s record and whether it is new.';

-- (Sequences of the tables above.)
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lamin TO lamin_reader;

-- == sql/30_own_registries.sql ==

CREATE TABLE lamin.own_registry (
    name       text PRIMARY KEY REFERENCES lamin.registry ON UPDATE CASCADE ON DELETE CASCADE,
    relid      oid NOT NULL,
    fields     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lamin.own_registry IS 'Registries users made of their own tables (lamin.create_registry): what lamin follows when the table is altered.';
COMMENT ON COLUMN lamin.own_registry.name IS 'The table, e.g. lab.sample (lamin.registry.name).';
COMMENT ON COLUMN lamin.own_registry.relid IS 'The table''s oid when lamin last looked (refreshed on every ALTER TABLE; a restore changes it).';
COMMENT ON COLUMN lamin.own_registry.fields IS 'The column numbers of the fields search uses ({"name_field": 2, ...}): how a renamed column is recognised.';
COMMENT ON COLUMN lamin.own_registry.created_at IS 'When the table became a registry.';
-- Rows are the users'; dumped and restored with their tables.
SELECT pg_catalog.pg_extension_config_dump('lamin.own_registry', '');
SELECT lamin.secure_table('lamin.own_registry', 'shared');
REVOKE INSERT, UPDATE, DELETE ON lamin.own_registry FROM lamin_writer;

-- lamin's columns of a registry of one's own: added when missing, never
-- renamed or dropped.
CREATE FUNCTION lamin.own_registry_system_columns() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['id', 'uid', 'branch_id', 'space_id', 'is_locked', 'created_at', 'created_by', 'updated_at'] $$;
COMMENT ON FUNCTION lamin.own_registry_system_columns() IS 'The columns lamin.create_registry adds to a table and keeps: never renamed or dropped.';

-- The field roles of lamin.registry and their column numbers in a table.
CREATE FUNCTION lamin.registry_field_numbers(reg lamin.registry) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(f.role, a.attnum), '{}')
    FROM (VALUES ('name_field', reg.name_field), ('synonyms_field', reg.synonyms_field), ('abbr_field', reg.abbr_field),
                 ('id_field', reg.id_field), ('organism_field', reg.organism_field), ('deprecated_field', reg.deprecated_field)) f(role, col)
    JOIN pg_attribute a ON a.attrelid = to_regclass(reg.name) AND a.attname = f.col AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION lamin.registry_field_numbers(lamin.registry) IS 'The column numbers of a registry''s search fields, by role.';

-- Make a table a registry (idempotent). A table that does not exist is
-- created with id, name and description (then ALTER TABLE it as you like)
-- and owned by the caller; an existing one must be the caller's. SECURITY
-- DEFINER: triggers that write lamin's audit and search index are attached
-- by lamin, and only to tables whose spaces it enforces.
CREATE FUNCTION lamin.create_registry(
    registry       text,
    name_field     text DEFAULT 'name',
    synonyms_field text DEFAULT NULL,
    abbr_field     text DEFAULT NULL,
    id_field       text DEFAULT NULL,
    guard          boolean DEFAULT true
) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (Quiet: re-arming drops triggers "IF EXISTS", which would say so for each.)
SET client_min_messages = warning
AS $$
#variable_conflict use_variable
DECLARE
    caller name := lamin.acting_role();
    nsp text := split_part(registry, '.', 1);
    rel text := split_part(registry, '.', 2);
    tbl regclass;
    qualified text;
    link text;
    col record;
    reg lamin.registry;
    has_pk boolean;
BEGIN
    IF registry IS NULL OR registry !~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'create_registry: % is not a table name of the form schema.table (lower case, digits, _)',
            coalesce(quote_literal(registry), 'NULL')
            USING ERRCODE = 'invalid_name', HINT = 'e.g. lamin.create_registry(''lab.sample'')';
    END IF;
    IF nsp IN ('lamin', 'bionty', 'pg_catalog', 'information_schema') OR nsp LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'create_registry: schema % is lamin''s or the system''s; keep your registries in a schema of your own', nsp
            USING ERRCODE = 'invalid_schema_name', HINT = 'CREATE SCHEMA lab; SELECT lamin.create_registry(''lab.sample'')';
    END IF;
    IF length('artifact_' || rel) > 63 THEN
        RAISE EXCEPTION 'create_registry: table name % is too long for its link table artifact_% (at most 54 characters)', rel, rel
            USING ERRCODE = 'name_too_long';
    END IF;
    tbl := to_regclass(format('%I.%I', nsp, rel));
    IF tbl IS NULL THEN
        IF to_regnamespace(quote_ident(nsp)) IS NULL THEN
            RAISE EXCEPTION 'create_registry: no schema %', nsp
                USING ERRCODE = 'invalid_schema_name', HINT = format('CREATE SCHEMA %I first', nsp);
        END IF;
        IF NOT has_schema_privilege(caller, to_regnamespace(quote_ident(nsp)), 'CREATE') THEN
            RAISE EXCEPTION 'permission denied: role % may not create tables in schema %', caller, nsp
                USING ERRCODE = 'insufficient_privilege', HINT = format('the schema''s owner grants it: GRANT CREATE ON SCHEMA %I TO %I', nsp, caller);
        END IF;
        EXECUTE format($t$CREATE TABLE %I.%I (
                            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                            %I          text NOT NULL CHECK (btrim(%I) <> ''),
                            description text)$t$, nsp, rel, name_field, name_field);
        tbl := to_regclass(format('%I.%I', nsp, rel));
        EXECUTE format('ALTER TABLE %s OWNER TO %I', tbl, caller);
    ELSIF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r') THEN
        RAISE EXCEPTION 'create_registry: % is not a plain table', registry USING ERRCODE = 'wrong_object_type';
    ELSIF NOT pg_has_role(caller, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: only the owner of % makes it a registry', registry
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    qualified := nsp || '.' || rel;
    IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = name_field AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)) THEN
        RAISE EXCEPTION 'create_registry: % has no text column % to name its records', qualified, quote_literal(name_field)
            USING ERRCODE = 'undefined_column',
                  HINT = 'pass name_field => the column that names a record, or ALTER TABLE ' || qualified || ' ADD COLUMN name text';
    END IF;
    -- lamin's columns, where missing. Existing rows get a uid each, the
    -- default space and the caller as creator.
    has_pk := EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = tbl AND k.contype = 'p');
    FOR col IN SELECT * FROM (VALUES
        ('id', 'bigint GENERATED BY DEFAULT AS IDENTITY ' || CASE WHEN has_pk THEN 'UNIQUE' ELSE 'PRIMARY KEY' END, NULL::text, 'int8'),
        ('uid', 'text NOT NULL DEFAULT lamin.uid(12) UNIQUE CHECK (uid ~ ''^[0-9A-Za-z]{12}$'')', NULL, 'text'),
        ('branch_id', 'smallint NOT NULL DEFAULT 1 REFERENCES lamin.branch', NULL, 'int2'),
        ('space_id', 'bigint NOT NULL DEFAULT 1 REFERENCES lamin.space', 'lamin.current_space_id()', 'int8'),
        ('is_locked', 'boolean NOT NULL DEFAULT false', NULL, 'bool'),
        ('created_at', 'timestamptz NOT NULL DEFAULT now()', NULL, 'timestamptz'),
        ('created_by', 'bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user"', NULL, 'int8'),
        ('updated_at', 'timestamptz NOT NULL DEFAULT now()', NULL, 'timestamptz')) x(name, def, later_default, typ)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', tbl, col.name, col.def);
            IF col.later_default IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, col.name, col.later_default);
            END IF;
        ELSIF (SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               WHERE a.attrelid = tbl AND a.attname = col.name AND NOT a.attisdropped) NOT IN (col.typ, CASE col.typ WHEN 'int8' THEN 'int4' END) THEN
            RAISE EXCEPTION 'create_registry: %.% is lamin''s column and must be of type %', qualified, col.name, col.typ
                USING ERRCODE = 'datatype_mismatch', HINT = 'rename your column first: ALTER TABLE ' || qualified || ' RENAME COLUMN ' || col.name || ' TO ...';
        END IF;
    END LOOP;
    -- Links and search refer to records by id: it must be unique.
    IF NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = tbl AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
                   AND i.indkey[0] = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'id')) THEN
        EXECUTE format('ALTER TABLE %s ADD UNIQUE (id)', tbl);
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS touch ON %s', tbl);
    EXECUTE format('CREATE TRIGGER touch BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at()', tbl);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (%I)', left(rel || '_' || name_field, 55) || '_lookup', tbl, name_field);
    -- Spaces, also for the table's owner (FORCE): a record in a space one
    -- cannot read stays unknown to everyone but superusers.
    PERFORM lamin.secure_table(tbl, 'space', true);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO lamin_reader, lamin_sidecar', nsp);
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO lamin_reader', pg_get_serial_sequence(tbl::text, 'id'));
    PERFORM lamin.make_searchable(tbl, name_field, synonyms_field => synonyms_field, abbr_field => abbr_field,
                                  id_field => id_field, guard => guard);
    -- The link table of annotations: lamin's (so that no owner can read
    -- around its policies), in the registry's schema, named as annotate expects.
    link := format('%I.%I', nsp, 'artifact_' || rel);
    IF to_regclass(link) IS NULL THEN
        EXECUTE format($t$CREATE TABLE %s (
                            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                            artifact_id bigint NOT NULL REFERENCES lamin.artifact ON DELETE CASCADE,
                            %I          bigint NOT NULL REFERENCES %s (id) ON DELETE RESTRICT,
                            feature_id  bigint REFERENCES lamin.feature ON DELETE RESTRICT,
                            created_at  timestamptz NOT NULL DEFAULT now(),
                            created_by  bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user")$t$,
                       link, rel || '_id', tbl);
        EXECUTE format('CREATE UNIQUE INDEX %I ON %s (artifact_id, %I, coalesce(feature_id, 0))', left('artifact_' || rel, 56) || '_unique', link, rel || '_id');
        EXECUTE format('CREATE INDEX %I ON %s (%I)', left('artifact_' || rel, 56) || '_target', link, rel || '_id');
        EXECUTE format('COMMENT ON TABLE %s IS %L', link, format('Annotations of artifacts with records of %s (lamin.create_registry).', qualified));
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO lamin_reader', pg_get_serial_sequence(link, 'id'));
    END IF;
    PERFORM lamin.secure_table(link::regclass, format('link:lamin.artifact:artifact_id|%s:%s|lamin.feature:feature_id', tbl, rel || '_id'));
    -- Seen only when the record is too (as lamin's links to projects and records).
    EXECUTE format('ALTER POLICY link_read ON %s USING (EXISTS (SELECT FROM lamin.artifact o WHERE o.id = artifact_id)
                                                        AND EXISTS (SELECT FROM %s t WHERE t.id = %I))', link, tbl, rel || '_id');
    SELECT * INTO reg FROM lamin.registry r WHERE r.name = qualified;
    INSERT INTO lamin.own_registry AS o (name, relid, fields) VALUES (qualified, tbl, lamin.registry_field_numbers(reg))
    ON CONFLICT (name) DO UPDATE SET relid = excluded.relid, fields = excluded.fields;
    RETURN qualified;
END
$$;
COMMENT ON FUNCTION lamin.create_registry(text, text, text, text, text, boolean) IS
    'Make a table of your own (schema.table; created with id, name, description when missing) a lamin registry: uid, space with row-level security (forced, also for its owner), lock, audit, search and typo guard, and the link table schema.artifact_<table> for features of dtype cat[schema.table]. Idempotent; returns the table''s name.';
REVOKE EXECUTE ON FUNCTION lamin.create_registry(text, text, text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.create_registry(text, text, text, text, text, boolean) TO lamin_writer;

-- Follow an ALTER TABLE of a registry of one's own: the fields search uses
-- keep their meaning under new names; what would break lamin is refused
-- (the whole ALTER TABLE is rolled back). Reads only the catalog, so anyone
-- may call it: it brings lamin's view in line with the table as it is.
CREATE FUNCTION lamin.own_registry_altered(table_oid oid) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lamin.making_searchable = 'on'
AS $$
DECLARE
    o lamin.own_registry;
    reg lamin.registry;
    role_name text;
    num text;
    now_named text;
    missing text;
    changed boolean := false;
BEGIN
    FOR o IN SELECT * FROM lamin.own_registry x WHERE x.relid = table_oid OR to_regclass(x.name) = table_oid LOOP
        IF to_regclass(o.name) IS DISTINCT FROM table_oid THEN
            RAISE EXCEPTION 'table % is a lamin registry: it keeps its name and schema (features name it as cat[%])', o.name, o.name
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'create a new registry under the new name and move the records, or leave the name as it is';
        END IF;
        SELECT string_agg(c, ', ') INTO missing FROM unnest(lamin.own_registry_system_columns()) c
        WHERE NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = table_oid AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'table %: columns % are lamin''s and cannot be renamed or dropped', o.name, missing
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'the columns ' || array_to_string(lamin.own_registry_system_columns(), ', ') || ' carry the record''s identity, space, lock and history';
        END IF;
        SELECT * INTO reg FROM lamin.registry r WHERE r.name = o.name;
        -- Names win: a field whose column still has its name stays; a field
        -- whose name is gone is found by its column number, if that column
        -- is still there (a rename), else the change is refused (a drop).
        FOR role_name, num IN SELECT k, v FROM jsonb_each_text(o.fields) e(k, v) LOOP
            IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = table_oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND a.attname = (to_jsonb(reg) ->> role_name)) THEN
                CONTINUE;
            END IF;
            SELECT a.attname INTO now_named FROM pg_attribute a
            WHERE a.attrelid = table_oid AND a.attnum = num::int AND NOT a.attisdropped;
            IF now_named IS NULL THEN
                RAISE EXCEPTION 'table %: column % is its registry''s % and cannot be dropped', o.name,
                    quote_literal(to_jsonb(reg) ->> role_name), replace(role_name, '_field', '')
                    USING ERRCODE = 'feature_not_supported',
                          HINT = format('first point search at another column: SELECT lamin.create_registry(%L, ...)', o.name);
            END IF;
            reg := jsonb_populate_record(reg, jsonb_build_object(role_name, now_named));
            changed := true;
        END LOOP;
        IF changed THEN
            PERFORM lamin.make_searchable(to_regclass(o.name), reg.name_field, reg.synonyms_field, reg.abbr_field, reg.id_field,
                                          reg.organism_field, reg.deprecated_field, reg.guard);
        END IF;
        UPDATE lamin.own_registry x SET relid = table_oid, fields = lamin.registry_field_numbers(reg) WHERE x.name = o.name;
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.own_registry_altered(oid) IS
    'After an ALTER TABLE of a registry of one''s own: follow renamed search fields (regenerating its search triggers), refuse renaming or moving the table and renaming or dropping lamin''s columns or a search field.';
-- (Called by the event trigger below, which runs as lamin's owner; not by users.)
REVOKE EXECUTE ON FUNCTION lamin.own_registry_altered(oid) FROM PUBLIC;

-- SECURITY DEFINER: it runs for every ALTER TABLE in the database, also by
-- roles that have nothing to do with lamin and cannot read its tables.
CREATE FUNCTION lamin.tg_own_registry_altered() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t oid;
BEGIN
    -- Only tables lamin follows: other DDL pays one look-up of a tiny table.
    FOR t IN SELECT DISTINCT c.objid FROM pg_event_trigger_ddl_commands() c
             WHERE c.classid = 'pg_class'::regclass
               AND EXISTS (SELECT FROM lamin.own_registry o WHERE o.relid = c.objid OR to_regclass(o.name) = c.objid)
    LOOP
        PERFORM lamin.own_registry_altered(t);
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.tg_own_registry_altered() IS 'Event trigger: an ALTER TABLE of a registry of one''s own is followed by lamin.own_registry_altered.';
CREATE EVENT TRIGGER lamin_own_registry_altered ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
EXECUTE FUNCTION lamin.tg_own_registry_altered();
COMMENT ON EVENT TRIGGER lamin_own_registry_altered IS 'Keeps lamin in step with ALTER TABLE of registries users made (see lamin.own_registry_altered).';

