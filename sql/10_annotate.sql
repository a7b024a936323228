-- Features, schemas and annotation of artifacts.

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
