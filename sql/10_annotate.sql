-- Features, schemas and annotation of artifacts.

-- Create a feature, or return the existing one with the same name and dtype.
CREATE FUNCTION lamin.create_feature(name text, dtype text, description text DEFAULT NULL, unit text DEFAULT NULL)
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
    SELECT f.uid, f.dtype INTO existing FROM lamin.feature f WHERE f.name = name
    ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    IF FOUND THEN
        IF existing.dtype <> dtype THEN
            RAISE EXCEPTION 'feature % exists with dtype %, not %', quote_literal(name), existing.dtype, dtype
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN existing.uid;
    END IF;
    PERFORM lamin.require_write('creating a feature');
    INSERT INTO lamin.feature AS f (name, dtype, description, unit)
    VALUES (name, dtype, description, unit) RETURNING f.uid INTO new_uid;
    RETURN new_uid;
END
$$;
COMMENT ON FUNCTION lamin.create_feature(text, text, text, text) IS
    'Create a feature (name, dtype such as int, str, cat[lamin.ulabel]); idempotent; returns its uid.';

-- The id of a feature by name, or an error listing what exists.
CREATE FUNCTION lamin.feature_id(name text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    found_id bigint;
BEGIN
    SELECT f.id INTO found_id FROM lamin.feature f WHERE f.name = name
    ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'unknown feature %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'create it with lamin.create_feature(name, dtype); existing features: ' ||
                         coalesce((SELECT string_agg(f.name, ', ' ORDER BY f.name) FROM (SELECT f.name FROM lamin.feature f ORDER BY f.name LIMIT 50) f), 'none');
    END IF;
    RETURN found_id;
END
$$;

-- Create a schema from feature names (idempotent on its members), returns its uid.
CREATE FUNCTION lamin.create_schema(features text[], name text DEFAULT NULL, ordered boolean DEFAULT false,
                                    description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    member_ids bigint[];
    member_hash text;
    found_uid text;
    new_id bigint;
BEGIN
    IF features IS NULL OR cardinality(features) = 0 THEN
        RAISE EXCEPTION 'a schema needs at least one feature' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(lamin.feature_id(f.n) ORDER BY f.ord) INTO member_ids FROM unnest(features) WITH ORDINALITY AS f(n, ord);
    IF (SELECT count(DISTINCT x) FROM unnest(member_ids) x) <> cardinality(member_ids) THEN
        RAISE EXCEPTION 'a schema lists each feature once' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT encode(sha256(convert_to(
               CASE WHEN ordered THEN 'ordered:' ELSE 'set:' END ||
               string_agg(f.uid, ',' ORDER BY CASE WHEN ordered THEN m.ord END, f.uid), 'UTF8')), 'hex')
    INTO member_hash
    FROM unnest(member_ids) WITH ORDINALITY AS m(id, ord) JOIN lamin.feature f ON f.id = m.id;

    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.schema.hash:' || member_hash, 0));
    SELECT s.uid INTO found_uid FROM lamin.schema s WHERE s.hash = member_hash;
    IF found_uid IS NOT NULL THEN
        RETURN found_uid;
    END IF;
    INSERT INTO lamin.schema AS s (name, description, hash, n_members, is_ordered)
    VALUES (name, description, member_hash, cardinality(member_ids), ordered)
    RETURNING s.id, s.uid INTO new_id, found_uid;
    INSERT INTO lamin.schema_feature (schema_id, feature_id, position)
    SELECT new_id, m.id, (m.ord - 1)::int FROM unnest(member_ids) WITH ORDINALITY AS m(id, ord);
    RETURN found_uid;
END
$$;
COMMENT ON FUNCTION lamin.create_schema(text[], text, boolean, text) IS
    'Create a schema (feature set) from feature names; idempotent on its members; returns its uid.';

-- Attach a schema to a slot of an artifact (columns, obs, var, ...).
CREATE FUNCTION lamin.link_schema(artifact_uid text, slot text, schema_uid text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid bigint;
BEGIN
    SELECT s.id INTO sid FROM lamin.schema s WHERE s.uid = schema_uid;
    IF sid IS NULL THEN
        RAISE EXCEPTION 'no schema with uid %', coalesce(quote_literal(schema_uid), 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO lamin.artifact_schema (artifact_id, schema_id, slot)
    VALUES (lamin.artifact_id(artifact_uid), sid, slot)
    ON CONFLICT ON CONSTRAINT artifact_schema_pkey DO UPDATE SET schema_id = excluded.schema_id;
END
$$;
COMMENT ON FUNCTION lamin.link_schema(text, text, text) IS 'Set the schema of a slot (columns, obs, var, ...) of an artifact.';

-- Annotate an artifact with values of a feature. Categorical features link
-- labels of the registry their dtype names; every value must exist there,
-- else nothing is linked and the error lists the missing values. Other dtypes
-- store typed values. Returns the number of new links.
CREATE FUNCTION lamin.annotate(artifact_uid text, feature_name text, vals text[], field text DEFAULT NULL) RETURNS int
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
COMMENT ON FUNCTION lamin.annotate(text, text, text[], text) IS
    'Annotate an artifact with values of a feature; categorical values must exist in the dtype''s registry (all or nothing). Returns the number of new links.';

-- "did you mean" for values a registry does not hold: lamin.inspect's
-- standardized form (a synonym) or its closest name, as one sentence; NULL
-- when there is none. Used by error messages only (never on the happy path).
CREATE FUNCTION lamin.did_you_mean(registry text, vals text[], field text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    said text;
BEGIN
    SELECT 'did you mean ' || string_agg(format('%L for %L', coalesce(i.standardized, i.suggestion), i.value), ', ' ORDER BY i.value)
           || CASE WHEN bool_or(i.standardized IS NOT NULL)
                   THEN format(' (lamin.standardize(%L, ARRAY[...]) maps synonyms)', registry) ELSE '' END
    INTO said
    FROM lamin.inspect(registry, vals, field) i
    WHERE NOT i.validated AND coalesce(i.standardized, i.suggestion) IS NOT NULL;
    RETURN said;
EXCEPTION WHEN OTHERS THEN
    -- A registry inspect cannot read (not searchable): no suggestion.
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.did_you_mean(text, text[], text) IS
    'A sentence suggesting registry values (standardized synonyms or closest names) for values the registry does not hold; NULL when there is none.';

-- A text value as JSON of the feature's dtype, or NULL when it does not parse.
CREATE FUNCTION lamin.typed_value(dtype text, val text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE dtype
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
