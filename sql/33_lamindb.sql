-- Moving in from LaminDB. `lamin import-lamindb` reads an existing LaminDB
-- instance (its Django tables, SQLite or Postgres) and hands this function
-- one document of what it holds, with every reference by uid (and ontology
-- terms by their public id); it is written here in one transaction, all or
-- nothing. Records keep their uids; what is already here is taken as it is,
-- so running the import again takes only what is new. Artifacts arrive
-- pending, with LaminDB's hash kept as their legacy hash: a register job per
-- artifact reads the bytes where LaminDB stored them and records their
-- sha256, and only then is an artifact ready.

-- One record of a bionty registry by its public id (ontology_id,
-- ensembl_gene_id, …), made from LaminDB's fields when missing; its id.
CREATE FUNCTION lamin.lamindb_term(registry text, public_id text, fields jsonb) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass := to_regclass(registry);
    id_field text := lamin.public_id_field(registry);
    found_id bigint;
    cols text;
BEGIN
    IF tbl IS NULL OR id_field IS NULL OR registry NOT LIKE 'bionty.%' THEN
        RAISE EXCEPTION 'LaminDB registry % has no counterpart here', registry USING ERRCODE = 'undefined_table';
    END IF;
    EXECUTE format('SELECT t.id FROM %s t WHERE t.%I = $1 ORDER BY t.deprecated, t.id LIMIT 1', tbl, id_field)
    INTO found_id USING public_id;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    -- The fields this registry has (LaminDB's others are left out).
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND fields ? a.attname
      AND a.attname NOT IN ('id', 'uid', 'branch_id', 'space_id', 'is_locked', 'created_at', 'created_by', 'updated_at', 'source_id');
    EXECUTE format('INSERT INTO %1$s (%2$s) SELECT %2$s FROM jsonb_populate_record(NULL::%1$s, $1) RETURNING id', tbl, cols)
    INTO found_id USING fields;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION lamin.lamindb_term(text, text, jsonb) IS 'The id of a bionty record by public id (lamin import-lamindb), made from LaminDB''s fields when this instance lacks it.';

-- Conflicts that stop an import before it writes anything: a feature of the
-- same name with another dtype.
CREATE FUNCTION lamin.lamindb_conflicts(doc jsonb) RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('feature %s: dtype %s here, %s in LaminDB', quote_literal(f.name), f.dtype, d ->> 'dtype')
    FROM jsonb_array_elements(doc -> 'features') d
    JOIN lamin.feature f ON f.name = d ->> 'name' AND f.dtype <> d ->> 'dtype'
    UNION ALL
    SELECT format('artifact %s holds other content here (LaminDB hash %s)', a.uid, d ->> 'legacy_hash')
    FROM jsonb_array_elements(doc -> 'artifacts') d
    JOIN lamin.artifact a ON a.uid = d ->> 'uid'
    WHERE a.legacy_hash IS DISTINCT FROM d ->> 'legacy_hash' AND a.size IS DISTINCT FROM (d ->> 'size')::bigint
    UNION ALL
    SELECT format('LaminDB registry %s has no counterpart here', t ->> 'registry')
    FROM jsonb_array_elements(doc -> 'terms') t
    WHERE lamin.public_id_field(t ->> 'registry') IS NULL OR to_regclass(t ->> 'registry') IS NULL
    ORDER BY 1
$$;
COMMENT ON FUNCTION lamin.lamindb_conflicts(jsonb) IS 'What stops a LaminDB import document from being taken (features with another dtype here, uids holding other content, registries missing), one line each.';

-- The import. Returns, per kind of record, how many were new and how many
-- were here already. Instance admins only: it registers storages and makes
-- records with the uids LaminDB gave them.
CREATE FUNCTION lamin.import_lamindb(doc jsonb)
RETURNS TABLE (kind text, imported int, existing int)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    problems text;
    x jsonb;
    e jsonb;
    n_new int;
    n_old int;
    found_id bigint;
    other_id bigint;
    fid bigint;
    aid bigint;
    storage_ids jsonb := '{}';
    term_ids jsonb := '{}';
    new_terms jsonb := '{}';
    schema_uids jsonb := '{}';
    label_ids jsonb := '{}';
    manager text := coalesce(doc -> 'lamindb' ->> 'instance_uid', 'lamindb');
    new_uid text;
BEGIN
    IF doc IS NULL OR (doc ->> 'lamindb_import') IS DISTINCT FROM '1' THEN
        RAISE EXCEPTION 'import_lamindb: not an import document (lamin import-lamindb makes one)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (coalesce(lamin.is_unrestricted(), false) OR lamin.is_instance_admin()) THEN
        RAISE EXCEPTION 'permission denied: moving a LaminDB instance in needs lamin_admin (role % is not one)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT string_agg('  ' || p, E'\n') INTO problems FROM lamin.lamindb_conflicts(doc) p;
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION E'import from LaminDB: this instance''s definitions conflict; nothing was imported:\n%', problems
            USING ERRCODE = 'integrity_constraint_violation', HINT = 'rename or remove the conflicting records here, then import again';
    END IF;

    -- Storages: LaminDB keeps managing their objects (lamin.storage.instance_uid).
    n_new := 0; n_old := 0;
    FOR x IN SELECT * FROM jsonb_array_elements(doc -> 'storages') LOOP
        SELECT s.id INTO found_id FROM lamin.storage s WHERE s.root = rtrim(x ->> 'root', '/');
        IF found_id IS NULL THEN
            -- (Two statements: a STABLE lookup in the same expression would
            -- not see the storage just registered.)
            new_uid := lamin.add_storage(x ->> 'root', coalesce(x ->> 'description', 'storage of LaminDB instance ' || manager), x ->> 'region');
            UPDATE lamin.storage s SET instance_uid = coalesce(x ->> 'instance_uid', manager), is_default = false
            WHERE s.uid = new_uid RETURNING s.id INTO found_id;
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        storage_ids := storage_ids || jsonb_build_object(x ->> 'root', found_id);
    END LOOP;
    kind := 'storage'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Transforms, in uid order (a family's versions oldest first).
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'transforms') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        IF EXISTS (SELECT FROM lamin.transform t WHERE t.uid = x ->> 'uid') THEN
            n_old := n_old + 1;
            CONTINUE;
        END IF;
        PERFORM lamin.admit_uid(x ->> 'uid');
        INSERT INTO lamin.transform (uid, key, description, kind, source_code, reference, reference_type, version)
        VALUES (x ->> 'uid', x ->> 'key', x ->> 'description',
                CASE WHEN x ->> 'kind' IN ('pipeline', 'notebook', 'script', 'function', 'upload', 'linker') THEN x ->> 'kind' ELSE 'other' END,
                x ->> 'source_code', x ->> 'reference', x ->> 'reference_type', x ->> 'version');
        n_new := n_new + 1;
    END LOOP;
    kind := 'transform'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Runs (who initiated whom: a second pass).
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'runs') e ORDER BY e ->> 'started_at', e ->> 'uid' LOOP
        IF EXISTS (SELECT FROM lamin.run r WHERE r.uid = x ->> 'uid') THEN
            n_old := n_old + 1;
            CONTINUE;
        END IF;
        PERFORM lamin.admit_uid(x ->> 'uid');
        INSERT INTO lamin.run (uid, transform_id, name, started_at, finished_at, params, status, reference)
        SELECT x ->> 'uid', t.id, x ->> 'name', coalesce((x ->> 'started_at')::timestamptz, now()),
               (x ->> 'finished_at')::timestamptz, x -> 'params', x ->> 'status', x ->> 'reference'
        FROM lamin.transform t WHERE t.uid = x ->> 'transform';
        n_new := n_new + 1;
    END LOOP;
    UPDATE lamin.run r SET initiated_by_run_id = i.id
    FROM jsonb_array_elements(doc -> 'runs') d JOIN lamin.run i ON i.uid = d ->> 'initiated_by'
    WHERE r.uid = d ->> 'uid' AND r.initiated_by_run_id IS NULL;
    kind := 'run'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Features by name and dtype.
    n_new := 0; n_old := 0;
    FOR x IN SELECT * FROM jsonb_array_elements(doc -> 'features') LOOP
        IF EXISTS (SELECT FROM lamin.feature f WHERE f.name = x ->> 'name') THEN
            n_old := n_old + 1;
        ELSE
            PERFORM lamin.create_feature(x ->> 'name', x ->> 'dtype', x ->> 'description', x ->> 'unit',
                                         coalesce((x ->> 'nullable')::boolean, true), coalesce((x ->> 'coerce')::boolean, false));
            n_new := n_new + 1;
        END IF;
    END LOOP;
    kind := 'feature'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Labels: by uid, else by name within their type; types first.
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'ulabels') e ORDER BY (e ->> 'is_type')::boolean DESC, e ->> 'type' NULLS FIRST LOOP
        SELECT u.id INTO found_id FROM lamin.ulabel u WHERE u.uid = x ->> 'uid';
        IF found_id IS NULL THEN
            SELECT u.id INTO found_id FROM lamin.ulabel u
            WHERE u.name = x ->> 'name' AND u.type_id IS NOT DISTINCT FROM (label_ids ->> (x ->> 'type'))::bigint
            ORDER BY u.id LIMIT 1;
        END IF;
        IF found_id IS NULL THEN
            PERFORM lamin.admit_uid(x ->> 'uid');
            INSERT INTO lamin.ulabel (uid, name, description, is_type, type_id, reference, reference_type)
            VALUES (x ->> 'uid', x ->> 'name', x ->> 'description', coalesce((x ->> 'is_type')::boolean, false),
                    (label_ids ->> (x ->> 'type'))::bigint, x ->> 'reference', x ->> 'reference_type')
            RETURNING id INTO found_id;
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        label_ids := label_ids || jsonb_build_object(x ->> 'uid', found_id);
    END LOOP;
    INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
    SELECT (label_ids ->> (d ->> 'uid'))::bigint, (label_ids ->> p)::bigint
    FROM jsonb_array_elements(doc -> 'ulabels') d, jsonb_array_elements_text(d -> 'parents') p
    WHERE label_ids ? p
    ON CONFLICT DO NOTHING;
    kind := 'ulabel'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Ontology terms and genes by their public id; parents among them.
    n_new := 0; n_old := 0;
    FOR x IN SELECT * FROM jsonb_array_elements(doc -> 'terms') LOOP
        EXECUTE format('SELECT t.id FROM %s t WHERE t.%I = $1 LIMIT 1', (x ->> 'registry')::regclass, lamin.public_id_field(x ->> 'registry'))
        INTO found_id USING x ->> 'id';
        IF found_id IS NULL THEN
            found_id := lamin.lamindb_term(x ->> 'registry', x ->> 'id', x -> 'fields');
            new_terms := new_terms || jsonb_build_object((x ->> 'registry') || ':' || (x ->> 'id'), true);
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        term_ids := term_ids || jsonb_build_object((x ->> 'registry') || ':' || (x ->> 'id'), found_id);
    END LOOP;
    -- (The hierarchy of terms this instance had already is its ontology's.)
    FOR x IN SELECT t FROM jsonb_array_elements(doc -> 'terms') t
             WHERE jsonb_array_length(coalesce(t -> 'parents', '[]')) > 0 AND new_terms ? ((t ->> 'registry') || ':' || (t ->> 'id')) LOOP
        IF to_regclass((x ->> 'registry') || '_parent') IS NOT NULL THEN
            EXECUTE format('INSERT INTO %s (child_id, parent_id) SELECT $1, (($2)->>($3 || '':'' || p))::bigint
                            FROM jsonb_array_elements_text($4) p WHERE ($2) ? ($3 || '':'' || p) ON CONFLICT DO NOTHING',
                           ((x ->> 'registry') || '_parent')::regclass)
            USING (term_ids ->> ((x ->> 'registry') || ':' || (x ->> 'id')))::bigint, term_ids, x ->> 'registry', x -> 'parents';
        END IF;
    END LOOP;
    kind := 'term'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Schemas: made from their features (the same definition is the same schema).
    n_new := 0; n_old := 0;
    FOR x IN SELECT d FROM jsonb_array_elements(doc -> 'schemas') d WHERE jsonb_array_length(coalesce(d -> 'features', '[]')) > 0 LOOP
        SELECT count(*) INTO other_id FROM lamin.schema;
        schema_uids := schema_uids || jsonb_build_object(x ->> 'uid', lamin.create_schema(
            ARRAY(SELECT jsonb_array_elements_text(x -> 'features')), x ->> 'name', coalesce((x ->> 'ordered')::boolean, false),
            x ->> 'description', coalesce((x ->> 'minimal_set')::boolean, true), coalesce((x ->> 'maximal_set')::boolean, false),
            NULL, x ->> 'otype', coalesce((x ->> 'coerce')::boolean, false)));
        IF (SELECT count(*) FROM lamin.schema) > other_id THEN n_new := n_new + 1; ELSE n_old := n_old + 1; END IF;
    END LOOP;
    kind := 'schema'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Artifacts: pending until their bytes are hashed (a register job each).
    -- An older version of a family whose versions share one object (LaminDB's
    -- folders) has no bytes of its own any more: failed, saying so.
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'artifacts') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        SELECT a.id INTO aid FROM lamin.artifact a WHERE a.uid = x ->> 'uid';
        IF aid IS NULL THEN
            PERFORM lamin.admit_uid(x ->> 'uid');
            INSERT INTO lamin.artifact (uid, key, key_is_virtual, description, storage_id, suffix, kind, otype, size,
                                        n_files, n_observations, run_id, version, status, status_detail,
                                        legacy_hash, legacy_hash_type, overwrite_versions)
            VALUES (x ->> 'uid', x ->> 'key', coalesce((x ->> 'key_is_virtual')::boolean, true), x ->> 'description',
                    (storage_ids ->> (x ->> 'storage'))::bigint, coalesce(x ->> 'suffix', ''),
                    CASE WHEN x ->> 'kind' IN ('dataset', 'model', '__lamindb_run__') THEN x ->> 'kind' WHEN x ->> 'kind' IS NULL THEN NULL ELSE 'other' END,
                    CASE WHEN x ->> 'otype' IN ('DataFrame', 'AnnData', 'MuData', 'SpatialData', 'tiledbsoma') THEN x ->> 'otype' END,
                    (x ->> 'size')::bigint, (x ->> 'n_files')::bigint, (x ->> 'n_observations')::bigint,
                    (SELECT r.id FROM lamin.run r WHERE r.uid = x ->> 'run'), x ->> 'version',
                    CASE WHEN (x ->> 'overwrite_versions')::boolean AND NOT coalesce((x ->> 'is_latest')::boolean, true) THEN 'failed' ELSE 'pending' END,
                    CASE WHEN (x ->> 'overwrite_versions')::boolean AND NOT coalesce((x ->> 'is_latest')::boolean, true)
                         THEN 'LaminDB overwrote this version''s bytes with a later version''s (its folders keep one object per family)'
                         ELSE 'moved in from LaminDB: reading and hashing its bytes' END,
                    x ->> 'legacy_hash', x ->> 'legacy_hash_type', coalesce((x ->> 'overwrite_versions')::boolean, false))
            RETURNING id INTO aid;
            IF (SELECT a.status FROM lamin.artifact a WHERE a.id = aid) = 'pending' THEN
                PERFORM lamin.enqueue('register', jsonb_build_object('uid', x ->> 'uid'));
            END IF;
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        -- Annotations (taken again only where missing).
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(x -> 'labels', '[]')) LOOP
            INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
            VALUES (aid, (label_ids ->> (e ->> 'uid'))::bigint, (SELECT f.id FROM lamin.feature f WHERE f.name = e ->> 'feature' ORDER BY f.id LIMIT 1))
            ON CONFLICT DO NOTHING;
        END LOOP;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(x -> 'terms', '[]')) LOOP
            EXECUTE format('INSERT INTO %I.%I (artifact_id, %I, feature_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
                           split_part(e ->> 'registry', '.', 1), 'artifact_' || split_part(e ->> 'registry', '.', 2),
                           split_part(e ->> 'registry', '.', 2) || '_id')
            USING aid, (term_ids ->> ((e ->> 'registry') || ':' || (e ->> 'id')))::bigint,
                  (SELECT f.id FROM lamin.feature f WHERE f.name = e ->> 'feature' ORDER BY f.id LIMIT 1);
        END LOOP;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(x -> 'values', '[]')) LOOP
            SELECT f.id INTO fid FROM lamin.feature f WHERE f.name = e ->> 'feature' ORDER BY f.id LIMIT 1;
            INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (aid, fid, e -> 'value')
            ON CONFLICT DO NOTHING;
        END LOOP;
        INSERT INTO lamin.artifact_schema (artifact_id, schema_id, slot)
        SELECT aid, s.id, e ->> 'slot' FROM jsonb_array_elements(coalesce(x -> 'schemas', '[]')) e
        JOIN lamin.schema s ON s.uid = schema_uids ->> (e ->> 'schema')
        ON CONFLICT DO NOTHING;
    END LOOP;
    -- What runs read.
    INSERT INTO lamin.run_input_artifact (run_id, artifact_id)
    SELECT r.id, a.id
    FROM jsonb_array_elements(doc -> 'runs') d
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(d -> 'inputs', '[]')) i
    JOIN lamin.artifact a ON a.uid = i
    JOIN lamin.run r ON r.uid = d ->> 'uid'
    ON CONFLICT DO NOTHING;
    kind := 'artifact'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Collections with their members in order.
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'collections') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        IF EXISTS (SELECT FROM lamin.collection c WHERE c.uid = x ->> 'uid') THEN
            n_old := n_old + 1;
            CONTINUE;
        END IF;
        PERFORM lamin.admit_uid(x ->> 'uid');
        INSERT INTO lamin.collection (uid, key, description, version, run_id)
        VALUES (x ->> 'uid', x ->> 'key', x ->> 'description', x ->> 'version', (SELECT r.id FROM lamin.run r WHERE r.uid = x ->> 'run'))
        RETURNING id INTO found_id;
        INSERT INTO lamin.collection_artifact (collection_id, artifact_id, position)
        SELECT found_id, a.id, m.ord - 1 FROM jsonb_array_elements_text(x -> 'members') WITH ORDINALITY m(member_uid, ord)
        JOIN lamin.artifact a ON a.uid = m.member_uid;
        n_new := n_new + 1;
    END LOOP;
    INSERT INTO lamin.run_input_collection (run_id, collection_id)
    SELECT r.id, c.id
    FROM jsonb_array_elements(doc -> 'runs') d
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(d -> 'collection_inputs', '[]')) i
    JOIN lamin.collection c ON c.uid = i
    JOIN lamin.run r ON r.uid = d ->> 'uid'
    ON CONFLICT DO NOTHING;
    kind := 'collection'; imported := n_new; existing := n_old; RETURN NEXT;
END
$$;
COMMENT ON FUNCTION lamin.import_lamindb(jsonb) IS
    'Take the document lamin import-lamindb reads from a LaminDB instance: storages (still managed by LaminDB), transforms, runs and their inputs, features, labels with types and parents, bionty terms by public id, schemas, artifacts (uids, keys and versions kept; pending with LaminDB''s hash as legacy hash until a register job has hashed their bytes) and collections; all or nothing, what exists is kept. Instance admins only. Returns per kind the records new and already here.';
REVOKE EXECUTE ON FUNCTION lamin.import_lamindb(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.import_lamindb(jsonb) TO lamin_admin;
