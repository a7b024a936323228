-- Transfer between instances. The source writes what the caller can read of
-- some artifacts and collections as one JSON document (lamin.transfer_out),
-- with every annotation by meaning, never by internal id: labels by name and
-- type, ontology terms by their public id, features by name and dtype. The
-- target maps it onto its own records (lamin.transfer_in), all or nothing,
-- as the calling role (row-level security holds on both sides). `lamin
-- transfer` connects to both and, with --copy, moves the bytes between them.

COMMENT ON FUNCTION lamin.admit_uid(text) IS 'Let this session insert a record with a uid lamin.uid did not hand out: a record transferred from another instance keeps its uid (lamin.transfer_in). 8 to 20 base62 characters.';
-- Writers only (they transfer): the unique key may refuse an admitted uid,
-- the one hint of a record in an unreadable space a transfer can give.
REVOKE EXECUTE ON FUNCTION lamin.admit_uid(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.admit_uid(text) TO lamin_writer;

-- The public id of a registry's records (what a term is matched by across
-- instances): its id field (ontology_id, ensembl_gene_id, …), else its name.
CREATE FUNCTION lamin.public_id_field(registry text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(r.id_field, r.name_field) FROM lamin.registry r WHERE r.name = registry
$$;
COMMENT ON FUNCTION lamin.public_id_field(text) IS 'The field records of a registry are matched by across instances: its id field (e.g. ontology_id), else its name field.';

-- One artifact as a transfer sees it (the caller's view of it).
CREATE FUNCTION lamin.transfer_artifact_json(a lamin.artifact) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'uid', a.uid, 'key', a.key, 'key_is_virtual', a.key_is_virtual, 'description', a.description,
        'suffix', a.suffix, 'kind', a.kind, 'otype', a.otype, 'size', a.size, 'hash', a.hash,
        'hash_type', a.hash_type, 'n_files', a.n_files, 'n_observations', a.n_observations,
        'version', a.version, 'created_at', a.created_at, 'status', a.status,
        'storage', (SELECT jsonb_build_object('root', s.root, 'region', s.region,
                                              'instance_uid', coalesce(s.instance_uid, (SELECT i.uid FROM lamin.instance i)))
                    FROM lamin.storage s WHERE s.id = a.storage_id),
        'overwrite_versions', a.overwrite_versions,
        'object', lamin.object_key(a),
        'run', (SELECT jsonb_build_object('uid', r.uid, 'transform', jsonb_build_object('uid', t.uid, 'key', t.key, 'kind', t.kind))
                FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.id = a.run_id),
        'labels', coalesce((
            SELECT jsonb_agg(jsonb_build_object('name', u.name, 'type', ty.name, 'feature', f.name, 'dtype', f.dtype)
                             ORDER BY u.name, f.name)
            FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
            LEFT JOIN lamin.ulabel ty ON ty.id = u.type_id LEFT JOIN lamin.feature f ON f.id = l.feature_id
            WHERE l.artifact_id = a.id), '[]'),
        'terms', coalesce((
            SELECT jsonb_agg(jsonb_build_object('registry', t.registry, 'id', coalesce(t.ontology_id, t.name), 'name', t.name,
                                                'feature', f.name, 'dtype', f.dtype) ORDER BY t.registry, t.name, f.name)
            FROM bionty.artifact_terms t LEFT JOIN lamin.feature f ON f.id = t.feature_id
            WHERE t.artifact_id = a.id), '[]'),
        'values', coalesce((
            SELECT jsonb_agg(jsonb_build_object('feature', f.name, 'dtype', f.dtype, 'value', v.value) ORDER BY f.name, v.value)
            FROM lamin.artifact_feature_value v JOIN lamin.feature f ON f.id = v.feature_id
            WHERE v.artifact_id = a.id), '[]'))
$$;
COMMENT ON FUNCTION lamin.transfer_artifact_json(lamin.artifact) IS 'An artifact with its storage, object, run and annotations by meaning (labels by name and type, terms by public id, values by feature name and dtype), as lamin.transfer_out writes it.';

-- The transfer document of artifacts and collections (by uid, or a 16-char
-- stem for the latest version); a collection brings its members. A uid the
-- caller cannot read is reported as unknown, as one that does not exist.
CREATE FUNCTION lamin.transfer_out(uids text[]) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text;
    aids bigint[] := '{}';
    cids bigint[] := '{}';
    found_id bigint;
    me lamin.instance;
BEGIN
    IF uids IS NULL OR cardinality(uids) = 0 THEN
        RAISE EXCEPTION 'transfer: no uids given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH u IN ARRAY uids LOOP
        PERFORM lamin.check_versioned_uid('artifact or collection', u);
        SELECT a.id INTO found_id FROM lamin.artifact a
        WHERE (a.uid = u OR (length(u) = 16 AND a.stem = u AND a.is_latest)) AND a.branch_id <> -1;
        IF found_id IS NOT NULL THEN
            aids := aids || found_id;
            CONTINUE;
        END IF;
        SELECT c.id INTO found_id FROM lamin.collection c
        WHERE (c.uid = u OR (length(u) = 16 AND c.stem = u AND c.is_latest)) AND c.branch_id <> -1;
        IF found_id IS NULL THEN
            RAISE EXCEPTION 'transfer: no artifact or collection with uid %', quote_literal(u) USING ERRCODE = 'no_data_found';
        END IF;
        cids := cids || found_id;
        aids := aids || ARRAY(SELECT ca.artifact_id FROM lamin.collection_artifact ca
                              JOIN lamin.artifact a ON a.id = ca.artifact_id WHERE ca.collection_id = found_id);
    END LOOP;
    IF EXISTS (SELECT FROM lamin.artifact a WHERE a.id = ANY (aids) AND a.status <> 'ready') THEN
        RAISE EXCEPTION 'transfer: artifact % is %, not ready: only artifacts whose bytes are stored and hashed travel',
            (SELECT a.uid FROM lamin.artifact a WHERE a.id = ANY (aids) AND a.status <> 'ready' ORDER BY a.uid LIMIT 1),
            (SELECT a.status FROM lamin.artifact a WHERE a.id = ANY (aids) AND a.status <> 'ready' ORDER BY a.uid LIMIT 1)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- (STABLE: the identity is read, not made; an instance that never had
    -- one is named by its database.)
    SELECT * INTO me FROM lamin.instance;
    RETURN jsonb_build_object(
        'lamin_transfer', 1,
        'instance', jsonb_build_object('uid', me.uid, 'name', coalesce(me.name, current_database()), 'version', lamin.version()),
        'artifacts', coalesce((SELECT jsonb_agg(lamin.transfer_artifact_json(a) ORDER BY a.uid COLLATE "C")
                               FROM lamin.artifact a WHERE a.id = ANY (aids)), '[]'),
        'collections', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'uid', c.uid, 'key', c.key, 'description', c.description, 'version', c.version, 'hash', c.hash,
                       'members', (SELECT coalesce(jsonb_agg(a.uid ORDER BY ca.position), '[]')
                                   FROM lamin.collection_artifact ca JOIN lamin.artifact a ON a.id = ca.artifact_id
                                   WHERE ca.collection_id = c.id))
                   ORDER BY c.uid COLLATE "C")
            FROM lamin.collection c WHERE c.id = ANY (cids)), '[]'));
END
$$;
COMMENT ON FUNCTION lamin.transfer_out(text[]) IS 'The transfer document (JSON) of artifacts and collections by uid, with what the caller can read of their annotations; lamin.transfer_in of another instance takes it.';
GRANT EXECUTE ON FUNCTION lamin.transfer_out(text[]) TO lamin_reader;

-- The storage of a transferred artifact that stays where it is: its root,
-- registered here when missing as a root the source manages (never swept,
-- never this instance's default).
CREATE FUNCTION lamin.transfer_storage(storage jsonb, source_name text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_id bigint;
    new_uid text;
BEGIN
    SELECT s.id INTO found_id FROM lamin.storage s WHERE s.root = storage ->> 'root';
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    new_uid := lamin.add_storage(storage ->> 'root', format('storage of instance %s (registered by a transfer)', source_name),
                                 storage ->> 'region');
    UPDATE lamin.storage s SET instance_uid = coalesce(storage ->> 'instance_uid', source_name), is_default = false
    WHERE s.uid = new_uid;
    SELECT s.id INTO found_id FROM lamin.storage s WHERE s.uid = new_uid;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION lamin.transfer_storage(jsonb, text) IS 'The id of a transferred artifact''s storage root, registered when missing as one the source instance manages (lamin.storage.instance_uid; not the default).';

-- Insert the new artifacts of a transfer document with their uids, in one
-- statement, as the caller (row-level security, the space and created_by are
-- theirs); returns source uid → id. Records keep their uids across instances
-- (LaminDB's rule, and what keeps the bytes of a shared storage at one path),
-- so each uid is admitted first (lamin.admit_uid). A uid taken by a record
-- the caller cannot read is refused: the one thing a transfer tells of a
-- record the caller cannot read is that a copy of the very record they
-- transfer is already there (README "Transfer"). The head of each family is
-- its newest version (the highest counter), also when an older version
-- arrives after a newer one.
CREATE FUNCTION lamin.insert_transferred_artifacts(artifacts jsonb, storage_ids jsonb, run_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids jsonb;
    taken text;
    detail text;
    family text;
    head text;
BEGIN
    PERFORM lamin.check_versioned_uid('artifact', a ->> 'uid'), lamin.admit_uid(a ->> 'uid')
    FROM jsonb_array_elements(artifacts) a;
    BEGIN
        WITH made AS (
            INSERT INTO lamin.artifact (uid, key, key_is_virtual, description, storage_id, suffix, kind, otype, size, hash,
                                        hash_type, n_files, n_observations, run_id, version, overwrite_versions)
            SELECT a ->> 'uid', a ->> 'key', coalesce((a ->> 'key_is_virtual')::boolean, true), a ->> 'description',
                   (storage_ids ->> (a -> 'storage' ->> 'root'))::bigint, coalesce(a ->> 'suffix', ''), a ->> 'kind',
                   a ->> 'otype', (a ->> 'size')::bigint, a ->> 'hash', a ->> 'hash_type', (a ->> 'n_files')::bigint,
                   (a ->> 'n_observations')::bigint, run_id, a ->> 'version',
                   coalesce((a ->> 'overwrite_versions')::boolean, false)
            FROM jsonb_array_elements(artifacts) a
            ORDER BY a ->> 'uid' COLLATE "C"
            RETURNING uid, id)
        SELECT coalesce(jsonb_object_agg(m.uid, m.id), '{}') INTO ids FROM made m;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS taken = CONSTRAINT_NAME, detail = PG_EXCEPTION_DETAIL;
        IF taken = 'artifact_uid_key' THEN
            RAISE EXCEPTION 'transfer: artifact % cannot keep its uid here: it is taken by a record in a space you cannot read',
                substring(detail FROM '\(uid\)=\(([0-9A-Za-z]+)\)')
                USING ERRCODE = 'insufficient_privilege', HINT = 'an admin of this instance can see it';
        END IF;
        RAISE;
    END;
    FOR family IN SELECT DISTINCT left(k, 16) FROM jsonb_object_keys(ids) k LOOP
        SELECT x.uid INTO head FROM lamin.artifact x
        WHERE x.stem = family AND x.branch_id <> -1 ORDER BY x.uid COLLATE "C" DESC LIMIT 1;
        IF NOT (SELECT x.is_latest FROM lamin.artifact x WHERE x.uid = head) THEN
            UPDATE lamin.artifact x SET is_latest = false WHERE x.stem = family AND x.is_latest;
            UPDATE lamin.artifact x SET is_latest = true WHERE x.uid = head;
        END IF;
    END LOOP;
    RETURN ids;
END
$$;
COMMENT ON FUNCTION lamin.insert_transferred_artifacts(jsonb, jsonb, bigint) IS 'Insert the new artifacts of a transfer document with their uids, as the caller, in one statement; source uid → id (used by lamin.transfer_in).';

-- The same for a collection (its uid kept, as an artifact's).
CREATE FUNCTION lamin.insert_transferred_collection(c jsonb, run_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
    taken text;
BEGIN
    PERFORM lamin.check_versioned_uid('collection', c ->> 'uid');
    PERFORM lamin.admit_uid(c ->> 'uid');
    BEGIN
        INSERT INTO lamin.collection (uid, key, description, version, hash, run_id)
        VALUES (c ->> 'uid', c ->> 'key', c ->> 'description', c ->> 'version', c ->> 'hash', run_id)
        RETURNING id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS taken = CONSTRAINT_NAME;
        IF taken = 'collection_uid_key' THEN
            RAISE EXCEPTION 'transfer: collection % cannot keep its uid here: it is taken by a record in a space you cannot read', c ->> 'uid'
                USING ERRCODE = 'insufficient_privilege', HINT = 'an admin of this instance can see it';
        END IF;
        RAISE;
    END;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION lamin.insert_transferred_collection(jsonb, bigint) IS 'Insert a collection of a transfer document with its uid, as the caller (used by lamin.transfer_in).';

-- What a transfer document asks of this instance that it cannot give: a
-- feature of the same name with another dtype, a term the registry lacks, a
-- storage the caller may not register, an artifact whose uid names other
-- content here. One line each; empty when the document fits.
CREATE FUNCTION lamin.transfer_conflicts(doc jsonb) RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    id_field text;
    have boolean;
BEGIN
    FOR x IN SELECT DISTINCT e ->> 'feature' AS name, e ->> 'dtype' AS dtype
             FROM jsonb_array_elements(doc -> 'artifacts') a,
                  jsonb_array_elements((a -> 'labels') || (a -> 'terms') || (a -> 'values')) e
             WHERE e ->> 'feature' IS NOT NULL ORDER BY 1, 2 LOOP
        RETURN QUERY SELECT format('feature %s: dtype %s here, %s in the source', quote_literal(x.name), f.dtype, x.dtype)
            FROM lamin.feature f WHERE f.name = x.name AND f.dtype <> x.dtype
            ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    END LOOP;
    FOR x IN SELECT DISTINCT e ->> 'registry' AS registry, e ->> 'id' AS id
             FROM jsonb_array_elements(doc -> 'artifacts') a, jsonb_array_elements(a -> 'terms') e ORDER BY 1, 2 LOOP
        id_field := lamin.public_id_field(x.registry);
        IF id_field IS NULL OR to_regclass(x.registry) IS NULL THEN
            RETURN NEXT format('registry %s does not exist here', x.registry);
            CONTINUE;
        END IF;
        EXECUTE format('SELECT EXISTS (SELECT FROM %s t WHERE t.%I = $1 AND t.branch_id <> -1)', x.registry::regclass, id_field)
        INTO have USING x.id;
        IF NOT have THEN
            RETURN NEXT format('%s has no record with %s %s (import its ontology or gene table first)', x.registry, id_field, quote_literal(x.id));
        END IF;
    END LOOP;
    FOR x IN SELECT DISTINCT a -> 'storage' ->> 'root' AS root FROM jsonb_array_elements(doc -> 'artifacts') a ORDER BY 1 LOOP
        IF NOT EXISTS (SELECT FROM lamin.storage s WHERE s.root = x.root)
           AND NOT (coalesce(lamin.is_unrestricted(), false) OR lamin.is_instance_admin()) THEN
            RETURN NEXT format('storage %s is not registered here, and registering it needs lamin_admin (or transfer with --copy into a storage of this instance)', x.root);
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT format('artifact %s holds other content here (hash %s, not %s)', a.uid, left(a.hash, 12), left(d ->> 'hash', 12))
        FROM jsonb_array_elements(doc -> 'artifacts') d JOIN lamin.artifact a ON a.uid = d ->> 'uid'
        WHERE a.hash IS DISTINCT FROM d ->> 'hash' ORDER BY a.uid;
END
$$;
COMMENT ON FUNCTION lamin.transfer_conflicts(jsonb) IS 'What of a transfer document this instance cannot take as it is (conflicting feature dtypes, missing terms, unregistrable storages, uids holding other content), one line each.';

-- Whether this instance can take a transfer document as the caller: its
-- conflicts, all listed, and the caller's write access (lamin transfer
-- --copy asks before it copies any bytes; lamin.transfer_in asks first).
CREATE FUNCTION lamin.transfer_check(doc jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problems text;
BEGIN
    SELECT string_agg('  ' || p, E'\n') INTO problems FROM lamin.transfer_conflicts(doc) p;
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION E'transfer from instance %: this instance''s definitions conflict; nothing was transferred:\n%',
            doc -> 'instance' ->> 'name', problems
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'align the definitions (rename a feature, import the missing ontology terms), then transfer again';
    END IF;
    PERFORM lamin.require_write('transferring records');
END
$$;
COMMENT ON FUNCTION lamin.transfer_check(jsonb) IS 'Raise what keeps this instance from taking a transfer document as the caller (every conflict, listed; or no write access); nothing when it fits.';
GRANT EXECUTE ON FUNCTION lamin.transfer_check(jsonb) TO lamin_reader;

-- Annotate the artifacts of a transfer document (ids: source uid → id
-- here) as it says, idempotently and set-based: labels by name within their
-- type (made when missing), terms by public id, values by feature (features
-- made when missing with the document's dtype).
CREATE FUNCTION lamin.transfer_annotations(artifacts jsonb, ids jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    feature_ids jsonb := '{}';
    label_ids jsonb := '{}';
    found_type bigint;
    found_label bigint;
    registry text;
BEGIN
    FOR x IN SELECT DISTINCT e ->> 'feature' AS name, e ->> 'dtype' AS dtype
             FROM jsonb_array_elements(artifacts) a,
                  jsonb_array_elements((a -> 'labels') || (a -> 'terms') || (a -> 'values')) e
             WHERE e ->> 'feature' IS NOT NULL LOOP
        PERFORM lamin.create_feature(x.name, x.dtype);
        feature_ids := feature_ids || jsonb_build_object(x.name, lamin.feature_id(x.name));
    END LOOP;
    FOR x IN SELECT DISTINCT e ->> 'type' AS type, e ->> 'name' AS name
             FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'labels') e LOOP
        found_type := NULL;
        IF x.type IS NOT NULL THEN
            SELECT u.id INTO found_type FROM lamin.ulabel u WHERE u.name = x.type AND u.is_type AND u.type_id IS NULL
                AND u.branch_id <> -1 ORDER BY u.space_id = lamin.current_space_id() DESC, u.id LIMIT 1;
            IF found_type IS NULL THEN
                INSERT INTO lamin.ulabel (name, is_type) VALUES (x.type, true) RETURNING id INTO found_type;
            END IF;
        END IF;
        SELECT u.id INTO found_label FROM lamin.ulabel u
        WHERE u.name = x.name AND u.type_id IS NOT DISTINCT FROM found_type AND u.branch_id <> -1
        ORDER BY u.space_id = lamin.current_space_id() DESC, u.id LIMIT 1;
        IF found_label IS NULL THEN
            INSERT INTO lamin.ulabel (name, type_id) VALUES (x.name, found_type) RETURNING id INTO found_label;
        END IF;
        label_ids := label_ids || jsonb_build_object(coalesce(x.type, '') || '/' || x.name, found_label);
    END LOOP;

    INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
    SELECT (ids ->> (a ->> 'uid'))::bigint, (label_ids ->> (coalesce(e ->> 'type', '') || '/' || (e ->> 'name')))::bigint,
           (feature_ids ->> (e ->> 'feature'))::bigint
    FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'labels') e
    ON CONFLICT DO NOTHING;
    INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value)
    SELECT (ids ->> (a ->> 'uid'))::bigint, (feature_ids ->> (e ->> 'feature'))::bigint, e -> 'value'
    FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'values') e
    ON CONFLICT DO NOTHING;
    -- Terms: one statement per registry, matched by public id.
    FOR registry IN SELECT DISTINCT e ->> 'registry' FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'terms') e LOOP
        EXECUTE format($q$INSERT INTO %1$I.%2$I (artifact_id, %3$I, feature_id)
                          SELECT ($1 ->> (a ->> 'uid'))::bigint, t.id, ($2 ->> (e ->> 'feature'))::bigint
                          FROM jsonb_array_elements($3) a
                          CROSS JOIN LATERAL jsonb_array_elements(a -> 'terms') e
                          JOIN LATERAL (SELECT t.id FROM %4$s t WHERE t.%5$I = e ->> 'id' AND t.branch_id <> -1
                                        ORDER BY t.id LIMIT 1) t ON true
                          WHERE e ->> 'registry' = %6$L
                          ON CONFLICT DO NOTHING$q$,
                       split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2),
                       split_part(registry, '.', 2) || '_id', registry::regclass, lamin.public_id_field(registry), registry)
        USING ids, feature_ids, artifacts;
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.transfer_annotations(jsonb, jsonb) IS 'Link the artifacts of a transfer document (source uid → id here) to their labels, terms and values, by meaning; idempotent.';

-- Take a transfer document: every artifact and collection in it, with its
-- annotations mapped by meaning, into the caller's current space, all or
-- nothing. Idempotent: a record already here (same uid) or the same content
-- already stored here (same storage and hash) is linked to, not duplicated,
-- and gains only annotations it lacks. The lineage is one run of the
-- transform `__lamin_transfer__/<source instance>`, whose params name the
-- source instance and every source uid with the run that made it there.
-- `storage` (when given) is where the bytes now are, for every artifact
-- (lamin transfer --copy copied them there); else each artifact stays in its
-- own storage root, registered here when missing. Set-based: a few
-- statements whatever the number of artifacts.
CREATE FUNCTION lamin.transfer_in(doc jsonb, storage text DEFAULT NULL)
RETURNS TABLE (kind text, source_uid text, uid text, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    src jsonb := doc -> 'instance';
    tid bigint;
    rid bigint;
    sid bigint;
    here bigint := lamin.current_space_id();
    x record;
    c jsonb;
    cid bigint;
    act text;
    storage_ids jsonb := '{}';
    existing jsonb;
    linked jsonb;
    created jsonb := '{}';
    fresh jsonb;
    made_collections jsonb := '[]';
BEGIN
    IF doc IS NULL OR (doc ->> 'lamin_transfer') IS DISTINCT FROM '1' OR jsonb_typeof(doc -> 'artifacts') <> 'array'
       OR jsonb_typeof(doc -> 'collections') <> 'array' OR src ->> 'name' IS NULL THEN
        RAISE EXCEPTION 'transfer: not a transfer document (lamin.transfer_out of another instance makes one)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(doc -> 'artifacts') = 0 AND jsonb_array_length(doc -> 'collections') = 0 THEN
        RETURN;
    END IF;
    PERFORM lamin.transfer_check(doc);
    IF storage IS NOT NULL THEN
        sid := lamin.storage_id(storage);
    END IF;

    -- Where each artifact is here already: the same record (by uid), else
    -- the same content in the storage it would land in (linked).
    SELECT coalesce(jsonb_object_agg(d ->> 'uid', a.id), '{}') INTO existing
    FROM jsonb_array_elements(doc -> 'artifacts') d JOIN lamin.artifact a ON a.uid = d ->> 'uid';
    SELECT coalesce(jsonb_object_agg(d ->> 'uid', m.id), '{}') INTO linked
    FROM jsonb_array_elements(doc -> 'artifacts') d
    LEFT JOIN lamin.storage s ON s.root = d -> 'storage' ->> 'root'
    CROSS JOIN LATERAL (SELECT a.id FROM lamin.artifact a
                        WHERE a.hash = d ->> 'hash' AND a.branch_id <> -1 AND a.storage_id = coalesce(sid, s.id)
                        ORDER BY a.space_id = here DESC, a.id LIMIT 1) m
    WHERE NOT existing ? (d ->> 'uid');
    SELECT coalesce(jsonb_agg(d), '[]') INTO fresh FROM jsonb_array_elements(doc -> 'artifacts') d
    WHERE NOT existing ? (d ->> 'uid') AND NOT linked ? (d ->> 'uid');

    -- The transfer transform of the source instance, and (when anything is
    -- new) this transfer's run.
    IF jsonb_array_length(fresh) > 0 OR EXISTS (
        SELECT FROM jsonb_array_elements(doc -> 'collections') e WHERE NOT EXISTS (SELECT FROM lamin.collection x WHERE x.uid = e ->> 'uid')) THEN
        SELECT t.id INTO tid FROM lamin.transform t
        WHERE t.key = '__lamin_transfer__/' || (src ->> 'name') AND t.kind = 'function' AND t.branch_id <> -1
        ORDER BY t.space_id = here DESC, t.id LIMIT 1;
        IF tid IS NULL THEN
            INSERT INTO lamin.transform (key, kind, description)
            VALUES ('__lamin_transfer__/' || (src ->> 'name'), 'function',
                    format('Transfers from lamin instance %s (uid %s)', src ->> 'name', coalesce(src ->> 'uid', 'unknown')))
            RETURNING id INTO tid;
        END IF;
        INSERT INTO lamin.run (transform_id, name, status, finished_at, params)
        VALUES (tid, 'transfer from ' || (src ->> 'name'), 'completed', now(),
                jsonb_build_object('source_instance', src,
                                   'artifacts', (SELECT coalesce(jsonb_agg(jsonb_build_object('uid', d ->> 'uid', 'run', d -> 'run')
                                                                           ORDER BY d ->> 'uid'), '[]')
                                                 FROM jsonb_array_elements(fresh) d),
                                   'collections', '[]'::jsonb))
        RETURNING id INTO rid;
    END IF;

    IF jsonb_array_length(fresh) > 0 THEN
        FOR x IN SELECT DISTINCT d -> 'storage' AS storage FROM jsonb_array_elements(fresh) d LOOP
            storage_ids := storage_ids || jsonb_build_object(x.storage ->> 'root',
                                                             coalesce(sid, lamin.transfer_storage(x.storage, src ->> 'name')));
        END LOOP;
        created := lamin.insert_transferred_artifacts(fresh, storage_ids, rid);
    END IF;
    PERFORM lamin.transfer_annotations(doc -> 'artifacts', existing || linked || created);
    RETURN QUERY
        SELECT 'artifact', d ->> 'uid', a.uid,
               CASE WHEN existing ? (d ->> 'uid') THEN 'exists' WHEN linked ? (d ->> 'uid') THEN 'linked' ELSE 'created' END
        FROM jsonb_array_elements(doc -> 'artifacts') d
        JOIN lamin.artifact a ON a.id = ((existing || linked || created) ->> (d ->> 'uid'))::bigint
        ORDER BY d ->> 'uid' COLLATE "C";

    FOR c IN SELECT e FROM jsonb_array_elements(doc -> 'collections') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        SELECT x.id INTO cid FROM lamin.collection x WHERE x.uid = c ->> 'uid';
        act := 'exists';
        IF cid IS NULL AND c ->> 'hash' IS NOT NULL THEN
            SELECT x.id INTO cid FROM lamin.collection x WHERE x.hash = c ->> 'hash' AND x.branch_id <> -1
            ORDER BY x.space_id = here DESC, x.id LIMIT 1;
            act := 'linked';
        END IF;
        IF cid IS NULL THEN
            cid := lamin.insert_transferred_collection(c, rid);
            -- Members: the artifacts of this document, wherever they are here.
            INSERT INTO lamin.collection_artifact (collection_id, artifact_id, position)
            SELECT cid, ((existing || linked || created) ->> m.member_uid)::bigint, m.ord - 1
            FROM jsonb_array_elements_text(c -> 'members') WITH ORDINALITY m(member_uid, ord)
            WHERE (existing || linked || created) ? m.member_uid;
            act := 'created';
            made_collections := made_collections || to_jsonb(c ->> 'uid');
        END IF;
        kind := 'collection'; source_uid := c ->> 'uid';
        uid := (SELECT x.uid FROM lamin.collection x WHERE x.id = cid); action := act;
        RETURN NEXT;
    END LOOP;
    IF jsonb_array_length(made_collections) > 0 THEN
        UPDATE lamin.run r SET params = jsonb_set(r.params, '{collections}', made_collections) WHERE r.id = rid;
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.transfer_in(jsonb, text) IS
    'Take a transfer document of another instance (lamin.transfer_out): artifacts and collections with their uids, annotations mapped by meaning, lineage as one run of transform __lamin_transfer__/<source>; all or nothing; idempotent. storage: where the bytes were copied (lamin transfer --copy), else each artifact''s own storage root. Returns what happened to each record: created, linked (same content already here) or exists.';
GRANT EXECUTE ON FUNCTION lamin.transfer_in(jsonb, text) TO lamin_writer;
