-- describe(): one JSON document per artifact; delete()/restore(): the trash.

-- Where an artifact's bytes live: {root}/.lamindb/{uid}{suffix} (LaminDB's
-- default layout; keys are names, not paths, so renaming never moves bytes).
-- Where an artifact's bytes are, relative to its storage root. (Replaced in
-- sql/31_instances.sql, after the columns of artifacts moved in from LaminDB
-- exist; they come after those of 0.6.0, as an upgrade adds them.)
CREATE FUNCTION lamin.object_key(a lamin.artifact) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN a.key_is_virtual THEN '.lamindb/' || a.uid || a.suffix ELSE a.key END
$$;
COMMENT ON FUNCTION lamin.object_key(lamin.artifact) IS 'Path of an artifact''s bytes within its storage root: .lamindb/{uid}{suffix}, or the key of a registered object.';

CREATE FUNCTION lamin.artifact_path(a lamin.artifact) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.root || '/' || lamin.object_key(a) FROM lamin.storage s WHERE s.id = a.storage_id
$$;
COMMENT ON FUNCTION lamin.artifact_path(lamin.artifact) IS 'Full path or URI of an artifact''s bytes: {storage root}/.lamindb/{uid}{suffix}, or {root}/{key} for registered objects.';

-- An artifact's annotations with records of other registries (bionty
-- cell types, genes, …), read through the view bionty.artifact_terms, which
-- is created after this file (hence plpgsql and a dynamic statement).
CREATE FUNCTION lamin.registry_annotations(artifact_id bigint)
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

-- An artifact as one JSON document (lamin.describe of an artifact's uid).
CREATE FUNCTION lamin.describe_artifact(uid text) RETURNS jsonb
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

-- Any record as one JSON document, whatever its kind: artifacts in full
-- (describe_artifact); collections, runs, transforms, schemas, features and
-- labels with their fields (internal ids left out, references by uid) and
-- what links to them. A uid nobody can read is "no record", as for a uid
-- that does not exist.
CREATE FUNCTION lamin.describe(uid text) RETURNS jsonb
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
CREATE FUNCTION lamin.find_record(uid text, OUT registry regclass, OUT record_id bigint, OUT branch_id smallint)
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

-- Take a record's version family lock before its row lock: the head of the
-- family moves under the family lock, and taking the two in the other order
-- deadlocks against a concurrent delete or restore in the same family.
CREATE FUNCTION lamin.lock_family_of(registry regclass, record_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    family text;
BEGIN
    IF registry IN ('lamin.artifact'::regclass, 'lamin.collection'::regclass, 'lamin.transform'::regclass) THEN
        EXECUTE format('SELECT stem FROM %s WHERE id = $1', registry) INTO family USING record_id;
        IF family IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(lamin.family_lock_key(registry::text, family));
        END IF;
    END IF;
END
$$;

-- A change that row-level security let through to no row: the caller can read
-- the record (find_record found it) but not write its space.
CREATE FUNCTION lamin.refuse_unchanged(registry regclass, uid text, what text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'permission denied: % % % needs write on its space', what, registry, uid
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Delete a record: the first call moves it to the trash (hidden from the
-- views, the head of its version family moves on), a second call (or
-- permanent => true) deletes it for good. Returns 'trashed' or 'deleted'.
CREATE FUNCTION lamin.delete(uid text, permanent boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec record;
    blocker text;
    changed int;
BEGIN
    SELECT * INTO rec FROM lamin.find_record(uid);
    PERFORM lamin.lock_family_of(rec.registry, rec.record_id);
    IF rec.branch_id <> -1 AND NOT coalesce(permanent, false) THEN
        EXECUTE format('UPDATE %s SET branch_id = -1 WHERE id = $1', rec.registry) USING rec.record_id;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed = 0 THEN
            PERFORM lamin.refuse_unchanged(rec.registry, uid, 'trashing');
        END IF;
        RETURN 'trashed';
    END IF;
    IF rec.registry = 'lamin.artifact'::regclass THEN
        SELECT string_agg(c.uid, ', ') INTO blocker
        FROM lamin.collection_artifact m JOIN lamin.collection c ON c.id = m.collection_id
        WHERE m.artifact_id = rec.record_id;
        IF blocker IS NOT NULL THEN
            RAISE EXCEPTION 'artifact % is a member of collection(s) %: delete those first', uid, blocker
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    BEGIN
        EXECUTE format('DELETE FROM %s WHERE id = $1', rec.registry) USING rec.record_id;
        GET DIAGNOSTICS changed = ROW_COUNT;
    EXCEPTION WHEN foreign_key_violation THEN
        RAISE EXCEPTION 'cannot delete % %: other records still refer to it (%)', rec.registry, uid, SQLERRM
            USING ERRCODE = 'foreign_key_violation';
    END;
    IF changed = 0 THEN
        PERFORM lamin.refuse_unchanged(rec.registry, uid, 'deleting');
    END IF;
    RETURN 'deleted';
END
$$;
COMMENT ON FUNCTION lamin.delete(text, boolean) IS
    'Move a record to the trash; a second call (or permanent => true) deletes it for good. Returns trashed or deleted.';

CREATE FUNCTION lamin.restore(uid text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec record;
    changed int;
BEGIN
    SELECT * INTO rec FROM lamin.find_record(uid);
    IF rec.branch_id <> -1 THEN
        RETURN 'not in trash';
    END IF;
    PERFORM lamin.lock_family_of(rec.registry, rec.record_id);
    EXECUTE format('UPDATE %s SET branch_id = 1 WHERE id = $1', rec.registry) USING rec.record_id;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM lamin.refuse_unchanged(rec.registry, uid, 'restoring');
    END IF;
    RETURN 'restored';
END
$$;
COMMENT ON FUNCTION lamin.restore(text) IS 'Move a record from the trash back to main.';
