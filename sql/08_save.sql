-- Saving and reading artifacts and collections: content identity, versions,
-- and the lineage bookkeeping of the current run.

-- Record that the current run (if any) re-created an existing artifact.
CREATE FUNCTION lamin.note_recreating_run(artifact_id bigint, created_by_run bigint) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO lamin.artifact_recreating_run (artifact_id, run_id)
    SELECT note_recreating_run.artifact_id, r
    FROM (SELECT lamin.current_run_id() AS r) cur
    WHERE r IS NOT NULL AND r IS DISTINCT FROM created_by_run
    ON CONFLICT DO NOTHING
$$;

-- The advisory lock over all saves into one storage. Writers of one content
-- hash or one key lock that hash or key (lamin.artifact_hash_lock_key,
-- lamin.artifact_key_lock_key) and hold this lock shared; a bulk save
-- (lamin.save_artifacts), which would need thousands of such locks, holds it
-- exclusively instead.
CREATE FUNCTION lamin.artifact_saves_lock_key(storage_id bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT hashtextextended('lamin.artifact.saves:' || storage_id, 0) $$;
COMMENT ON FUNCTION lamin.artifact_saves_lock_key(bigint) IS 'The advisory lock key over all saves into one storage (shared by single saves, exclusive for bulk saves).';

-- The advisory lock keys of one content hash and of one key within a
-- storage, taken by every writer of that hash or key (save_artifact,
-- register, finish_register, a small save_artifacts), in one place.
CREATE FUNCTION lamin.artifact_hash_lock_key(storage_id bigint, hash text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT hashtextextended('lamin.artifact.hash:' || storage_id || ':' || hash, 0) $$;
COMMENT ON FUNCTION lamin.artifact_hash_lock_key(bigint, text) IS 'The advisory lock key of one content hash in one storage (held while an artifact with that hash is looked up and saved).';

CREATE FUNCTION lamin.artifact_key_lock_key(storage_id bigint, key text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT hashtextextended('lamin.artifact.key:' || storage_id || ':' || key, 0) $$;
COMMENT ON FUNCTION lamin.artifact_key_lock_key(bigint, text) IS 'The advisory lock key of one key in one storage (held while the key''s version family is looked up and extended).';

-- Whether a text is a content hash as lamin stores it: sha256 as 64
-- lowercase hex characters. (Not '^[0-9a-f]{64}$': a bounded repetition
-- costs Postgres' regular expressions about 8 µs; this, under 1 µs.) NULL
-- for NULL.
CREATE FUNCTION lamin.is_sha256_hex(hash text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT length(hash) = 64 AND hash !~ '[^0-9a-f]' $$;
COMMENT ON FUNCTION lamin.is_sha256_hex(text) IS 'Whether the text is a sha256 as 64 lowercase hex characters (NULL for NULL).';

-- Register an artifact whose bytes are (or will be) in a storage.
-- Idempotent: content whose hash already exists in that storage returns the
-- existing artifact (and records the current run as re-creating it). A key that
-- already names an artifact, or `revises`, makes the next version of its family.
-- Returns the artifact's uid.
CREATE FUNCTION lamin.save_artifact(
    hash           text,
    size           bigint,
    key            text DEFAULT NULL,
    suffix         text DEFAULT NULL,
    description    text DEFAULT NULL,
    storage        text DEFAULT NULL,
    revises        text DEFAULT NULL,
    version        text DEFAULT NULL,
    kind           text DEFAULT NULL,
    otype          text DEFAULT NULL,
    n_files        bigint DEFAULT NULL,
    n_observations bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    sid bigint;
    existing record;
    family text;
    new_uid text;
    here bigint;
BEGIN
    IF hash IS NULL OR NOT lamin.is_sha256_hex(hash) THEN
        RAISE EXCEPTION 'invalid hash %: expected the sha256 of the full content as 64 lowercase hex characters',
            coalesce(quote_literal(left(hash, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF size IS NULL OR size < 0 THEN
        RAISE EXCEPTION 'invalid size %: expected a byte count >= 0', coalesce(size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lamin.check_key(key);
    sid := lamin.storage_id(storage);

    -- One writer per content: the second of two concurrent savers waits here
    -- and then finds the first one's record.
    PERFORM pg_advisory_xact_lock_shared(lamin.artifact_saves_lock_key(sid));
    PERFORM pg_advisory_xact_lock(lamin.artifact_hash_lock_key(sid, hash));
    -- De-duplication within what the caller can read (row-level security
    -- hides the rest): content stored in a space the caller cannot read is
    -- not found here, and the new record goes to the caller's space (the
    -- unique index is per space), so nobody learns of content they cannot
    -- read. Among readable copies, the one in the current space wins.
    here := lamin.current_space_id();
    SELECT a.id, a.uid, a.run_id, a.branch_id, a.key AS old_key, a.space_id INTO existing
    FROM lamin.artifact a
    WHERE a.storage_id = sid AND a.hash = save_artifact.hash
    ORDER BY a.space_id = here DESC, a.branch_id = -1, a.id
    LIMIT 1;
    IF FOUND THEN
        IF existing.branch_id = -1 THEN
            UPDATE lamin.artifact SET branch_id = 1 WHERE id = existing.id;
        END IF;
        -- Say which record came back, and that the key given is not recorded.
        RAISE NOTICE '%', format('same content already saved as artifact %s (%s, space %s)%s%s: returning it, nothing new is stored',
            existing.uid, coalesce('key ' || quote_literal(existing.old_key), 'no key'),
            quote_literal((SELECT sp.name FROM lamin.space sp WHERE sp.id = existing.space_id)),
            CASE WHEN existing.branch_id = -1 THEN ', restored from the trash' ELSE '' END,
            CASE WHEN key IS DISTINCT FROM existing.old_key AND key IS NOT NULL
                 THEN format('; the key %s you gave is not recorded (save different content there, or use revises)', quote_literal(key))
                 ELSE '' END)
            USING HINT = 'the current run (if any) is recorded as re-creating it: lamin.describe(uid) -> lineage -> recreating_runs';
        PERFORM lamin.note_recreating_run(existing.id, existing.run_id);
        RETURN existing.uid;
    END IF;

    PERFORM lamin.require_write('saving an artifact');
    IF revises IS NOT NULL THEN
        SELECT a.stem INTO family FROM lamin.artifact a WHERE a.uid = revises OR (length(revises) = 16 AND a.stem = revises) LIMIT 1;
        IF family IS NULL THEN
            RAISE EXCEPTION 'revises: no artifact with uid %', quote_literal(revises) USING ERRCODE = 'no_data_found';
        END IF;
    ELSIF key IS NOT NULL THEN
        -- Saving under an existing key makes a new version of that key's family.
        PERFORM pg_advisory_xact_lock(lamin.artifact_key_lock_key(sid, key));
        SELECT a.stem INTO family FROM lamin.artifact a
        WHERE a.storage_id = sid AND a.key = save_artifact.key AND a.branch_id <> -1
        ORDER BY a.id DESC LIMIT 1;
    END IF;
    IF family IS NULL THEN
        new_uid := lamin.new_family_uid(20);
    ELSE
        new_uid := lamin.next_version_uid('lamin.artifact', family);
    END IF;

    INSERT INTO lamin.artifact AS a (uid, key, description, storage_id, suffix, kind, otype, size, hash, hash_type,
                                     n_files, n_observations, run_id, version)
    VALUES (new_uid, key, description, sid, coalesce(suffix, lamin.suffix_from_key(key), ''), kind, otype, size,
            save_artifact.hash, CASE WHEN n_files IS NULL THEN 'sha256' ELSE 'sha256-dir' END,
            n_files, n_observations, lamin.current_run_id(), version)
    RETURNING a.uid INTO new_uid;
    RETURN new_uid;
END
$$;
COMMENT ON FUNCTION lamin.save_artifact(text, bigint, text, text, text, text, text, text, text, text, bigint, bigint) IS
    'Register an artifact by content hash (sha256 hex); idempotent; same key or revises => new version. Returns the uid.';

-- Refuse a malformed uid of a 20-character versioned registry (artifact,
-- collection): 20 base62 characters, or the 16-character stem of a family.
CREATE FUNCTION lamin.check_versioned_uid(kind text, uid text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF uid IS NULL OR uid !~ '^[0-9A-Za-z]+$' OR length(uid) NOT IN (16, 20) THEN
        RAISE EXCEPTION 'invalid % uid %: expected 20 base62 characters (or a 16-character stem for the latest version)',
            kind, coalesce(quote_literal(left(uid, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Find an artifact by uid (20 characters) or by stem (16 characters: the
-- latest version). Raises a clear error for malformed or unknown uids.
CREATE FUNCTION lamin.artifact_id(uid text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    found_id bigint;
BEGIN
    PERFORM lamin.check_versioned_uid('artifact', uid);
    IF length(uid) = 20 THEN
        SELECT a.id INTO found_id FROM lamin.artifact a WHERE a.uid = artifact_id.uid;
    ELSE
        SELECT a.id INTO found_id FROM lamin.artifact a WHERE a.stem = artifact_id.uid AND a.is_latest;
    END IF;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'no artifact with uid %', quote_literal(uid) USING ERRCODE = 'no_data_found';
    END IF;
    RETURN found_id;
END
$$;

-- Refuse a write on a server or in a transaction that cannot write, with a
-- message naming what needed the write, before the INSERT's own "cannot
-- execute INSERT in a read-only transaction" from deep inside a function
-- that reads (lamin.get on a hot standby while a run is current). Reads never
-- call it: they work on a standby as they do on the primary.
CREATE FUNCTION lamin.refuse_read_only(what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION '% needs a writable server, and this one is a read-only standby', what
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'run it on the primary (a connection string listing every host with target_session_attrs=read-write reaches it); reads work here';
    ELSIF current_setting('transaction_read_only')::boolean THEN
        RAISE EXCEPTION '% needs a writable transaction, and this one is READ ONLY', what
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'run it in a read-write transaction (is default_transaction_read_only on?)';
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.refuse_read_only(text) IS
    'Raise a clear error (SQLSTATE 25006) naming what needed a write when this is a read-only standby or a READ ONLY transaction.';

-- Read an artifact's record (by uid or stem). While a run is tracked, the
-- artifact is recorded as an input of the run, unless the run created it.
CREATE FUNCTION lamin.get(uid text) RETURNS lamin.artifact
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec lamin.artifact;
    run bigint := lamin.current_run_id();
BEGIN
    SELECT * INTO rec FROM lamin.artifact a WHERE a.id = lamin.artifact_id(uid);
    IF run IS NOT NULL AND rec.run_id IS DISTINCT FROM run THEN
        PERFORM lamin.refuse_read_only(format('recording artifact %s as an input of the current run', rec.uid));
        INSERT INTO lamin.run_input_artifact (run_id, artifact_id) VALUES (run, rec.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN rec;
END
$$;
COMMENT ON FUNCTION lamin.get(text) IS
    'The artifact with this uid (or the latest version for a 16-character stem); records it as an input of the tracked run.';

CREATE FUNCTION lamin.collection_id(uid text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    found_id bigint;
BEGIN
    PERFORM lamin.check_versioned_uid('collection', uid);
    IF length(uid) = 20 THEN
        SELECT c.id INTO found_id FROM lamin.collection c WHERE c.uid = collection_id.uid;
    ELSE
        SELECT c.id INTO found_id FROM lamin.collection c WHERE c.stem = collection_id.uid AND c.is_latest;
    END IF;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'no collection with uid %', quote_literal(uid) USING ERRCODE = 'no_data_found';
    END IF;
    RETURN found_id;
END
$$;

CREATE FUNCTION lamin.get_collection(uid text) RETURNS lamin.collection
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec lamin.collection;
    run bigint := lamin.current_run_id();
BEGIN
    SELECT * INTO rec FROM lamin.collection c WHERE c.id = lamin.collection_id(uid);
    IF run IS NOT NULL AND rec.run_id IS DISTINCT FROM run THEN
        PERFORM lamin.refuse_read_only(format('recording collection %s as an input of the current run', rec.uid));
        INSERT INTO lamin.run_input_collection (run_id, collection_id) VALUES (run, rec.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN rec;
END
$$;
COMMENT ON FUNCTION lamin.get_collection(text) IS
    'The collection with this uid (or the latest version for a stem); records it as an input of the tracked run.';

-- Save a collection of artifacts (in this order). Idempotent on the hash of
-- the sorted member hashes; an existing key or `revises` makes a new version.
CREATE FUNCTION lamin.save_collection(
    key         text,
    artifacts   text[],
    description text DEFAULT NULL,
    revises     text DEFAULT NULL,
    version     text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    member_ids bigint[];
    member_hash text;
    missing text;
    existing record;
    family text;
    new_uid text;
    new_id bigint;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'a collection needs a key (its name)' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM lamin.check_key(key);
    IF artifacts IS NULL OR cardinality(artifacts) = 0 THEN
        RAISE EXCEPTION 'collection %: needs at least one artifact', quote_literal(key) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(artifacts) > 100000 THEN
        RAISE EXCEPTION 'collection %: % artifacts, at most 100000', quote_literal(key), cardinality(artifacts)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT array_agg(lamin.artifact_id(m.u) ORDER BY m.ord) INTO member_ids
    FROM unnest(artifacts) WITH ORDINALITY AS m(u, ord);
    IF (SELECT count(DISTINCT x) FROM unnest(member_ids) x) <> cardinality(member_ids) THEN
        RAISE EXCEPTION 'collection %: an artifact is listed twice', quote_literal(key) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(a.uid, ', ') INTO missing FROM lamin.artifact a WHERE a.id = ANY (member_ids) AND a.hash IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'collection %: artifacts without a content hash yet (pending): %', quote_literal(key), missing
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT encode(sha256(convert_to(string_agg(a.hash, E'\n' ORDER BY a.hash), 'UTF8')), 'hex') INTO member_hash
    FROM lamin.artifact a WHERE a.id = ANY (member_ids);

    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.collection.hash:' || member_hash, 0));
    SELECT c.id, c.uid, c.run_id, c.branch_id INTO existing FROM lamin.collection c WHERE c.hash = member_hash;
    IF FOUND THEN
        IF existing.branch_id = -1 THEN
            UPDATE lamin.collection SET branch_id = 1 WHERE id = existing.id;
        END IF;
        RAISE NOTICE 'returning existing collection with same members: %', existing.uid;
        INSERT INTO lamin.collection_recreating_run (collection_id, run_id)
        SELECT existing.id, r FROM (SELECT lamin.current_run_id() AS r) cur
        WHERE r IS NOT NULL AND r IS DISTINCT FROM existing.run_id
        ON CONFLICT DO NOTHING;
        RETURN existing.uid;
    END IF;

    PERFORM lamin.require_write('saving a collection');
    IF revises IS NOT NULL THEN
        SELECT c.stem INTO family FROM lamin.collection c WHERE c.id = lamin.collection_id(revises);
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('lamin.collection.key:' || key, 0));
        SELECT c.stem INTO family FROM lamin.collection c
        WHERE c.key = save_collection.key AND c.branch_id <> -1 ORDER BY c.id DESC LIMIT 1;
    END IF;
    new_uid := CASE WHEN family IS NULL THEN lamin.new_family_uid(20)
                    ELSE lamin.next_version_uid('lamin.collection', family) END;
    INSERT INTO lamin.collection AS c (uid, key, description, hash, run_id, version)
    VALUES (new_uid, key, description, member_hash, lamin.current_run_id(), version)
    RETURNING c.id INTO new_id;
    INSERT INTO lamin.collection_artifact (collection_id, artifact_id, position)
    SELECT new_id, m.id, (m.ord - 1)::int FROM unnest(member_ids) WITH ORDINALITY AS m(id, ord);
    RETURN new_uid;
END
$$;
COMMENT ON FUNCTION lamin.save_collection(text, text[], text, text, text) IS
    'Save an ordered collection of artifacts (uids); idempotent on member content; same key or revises => new version.';
