-- Storage work done by the sidecar as jobs: register objects already in a
-- storage, stage artifacts into its cache, verify stored bytes, delete the
-- objects of deleted artifacts, and sweep what interrupted saves left behind.
-- SQL only records intent and results; the bytes never pass through Postgres.

-- Their job kinds (register, stage, verify, delete_object, sweep_storage)
-- are in lamin.job_kind with the others (sql/18_jobs.sql).

-- The storage holding a URI and the URI's path within it (longest root wins).
CREATE FUNCTION lamin.storage_of_uri(uri text, OUT storage_id bigint, OUT root text, OUT key text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    clean text := rtrim(uri, '/');
BEGIN
    IF uri IS NULL OR clean = '' THEN
        RAISE EXCEPTION 'uri must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.id, s.root, substr(clean, length(s.root) + 2) INTO storage_id, root, key
    FROM lamin.storage s
    WHERE left(clean, length(s.root) + 1) = s.root || '/' AND length(clean) > length(s.root) + 1
    ORDER BY length(s.root) DESC LIMIT 1;
    IF storage_id IS NULL THEN
        RAISE EXCEPTION 'uri % is outside every registered storage', quote_literal(left(uri, 300))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'register its root first with lamin.add_storage(root); roots are listed in lamin.storage';
    END IF;
    PERFORM lamin.check_key(key);
    IF key = '.lamindb' OR key LIKE '.lamindb/%' THEN
        RAISE EXCEPTION 'uri %: objects under .lamindb/ are managed by lamin; save files with lamin save instead',
            quote_literal(left(uri, 300)) USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.storage_of_uri(text) IS 'The registered storage holding a URI (longest root first) and the URI''s key within it.';

-- Register an object (file or folder) that is already in a registered
-- storage. The artifact is pending until a sidecar job has streamed the
-- object and recorded its size and sha256. Registering the same URI again
-- returns the same artifact (a failed one is tried again).
CREATE FUNCTION lamin.register(uri text, key text DEFAULT NULL, description text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    place record;
    existing record;
    family text;
    new_uid text;
BEGIN
    SELECT * INTO place FROM lamin.storage_of_uri(uri);
    IF key IS NOT NULL AND key <> place.key THEN
        RAISE EXCEPTION 'key % conflicts with the object''s place: % is at key % in storage %',
            quote_literal(key), uri, quote_literal(place.key), place.root
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a registered object''s key is its path within the storage; leave key out';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(lamin.artifact_saves_lock_key(place.storage_id));
    PERFORM pg_advisory_xact_lock(lamin.artifact_key_lock_key(place.storage_id, place.key));
    SELECT a.id, a.uid, a.status INTO existing FROM lamin.artifact a
    WHERE a.storage_id = place.storage_id AND a.key = place.key AND NOT a.key_is_virtual
    ORDER BY a.id DESC LIMIT 1;
    IF FOUND THEN
        IF existing.status = 'failed' THEN
            UPDATE lamin.artifact a SET status = 'pending', status_detail = 'registering', updated_at = now()
            WHERE a.id = existing.id;
            PERFORM lamin.enqueue('register', jsonb_build_object('uid', existing.uid));
        ELSE
            RAISE NOTICE 'returning the artifact already registered for %: %', uri, existing.uid;
        END IF;
        RETURN existing.uid;
    END IF;
    -- Another artifact with this key (a saved file named so) makes this a new version of its family.
    SELECT a.stem INTO family FROM lamin.artifact a
    WHERE a.storage_id = place.storage_id AND a.key = place.key AND a.branch_id <> -1
    ORDER BY a.id DESC LIMIT 1;
    new_uid := CASE WHEN family IS NULL THEN lamin.new_family_uid(20)
                    ELSE lamin.next_version_uid('lamin.artifact', family) END;
    INSERT INTO lamin.artifact AS a (uid, key, key_is_virtual, description, storage_id, suffix, status, status_detail, run_id)
    VALUES (new_uid, place.key, false, description, place.storage_id, lamin.suffix_from_key(place.key),
            'pending', 'registering', lamin.current_run_id());
    PERFORM lamin.enqueue('register', jsonb_build_object('uid', new_uid));
    RETURN new_uid;
END
$$;
COMMENT ON FUNCTION lamin.register(text, text, text) IS
    'Register an object already in a registered storage (file or folder URI); pending until the sidecar has hashed it. Returns the uid.';

-- The register job's result: the object's size, sha256 and (folders) file
-- count. The same content already registered in that storage fails the new
-- artifact, naming the existing one (content is stored once per storage).
CREATE FUNCTION lamin.finish_register(uid text, hash text, size bigint, n_files bigint DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    a record;
    twin text;
BEGIN
    IF hash IS NULL OR NOT lamin.is_sha256_hex(hash) OR size IS NULL OR size < 0 THEN
        RAISE EXCEPTION 'finish_register: invalid hash or size' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x.id, x.storage_id, x.status INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(uid) FOR UPDATE;
    IF a.status <> 'pending' THEN
        RETURN a.status;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(lamin.artifact_saves_lock_key(a.storage_id));
    PERFORM pg_advisory_xact_lock(lamin.artifact_hash_lock_key(a.storage_id, hash));
    SELECT x.uid INTO twin FROM lamin.artifact x WHERE x.storage_id = a.storage_id AND x.hash = finish_register.hash;
    IF twin IS NOT NULL THEN
        UPDATE lamin.artifact x SET status = 'failed', updated_at = now(), size = finish_register.size,
                                    status_detail = 'same content as artifact ' || twin || ' (sha256 ' || hash || '); use that one'
        WHERE x.id = a.id;
        RETURN 'failed';
    END IF;
    UPDATE lamin.artifact x SET status = 'ready', status_detail = NULL, updated_at = now(), checked_at = now(),
                                hash = finish_register.hash, size = finish_register.size, n_files = finish_register.n_files,
                                hash_type = CASE WHEN n_files IS NULL THEN 'sha256' ELSE 'sha256-dir' END
    WHERE x.id = a.id;
    RETURN 'ready';
END
$$;
COMMENT ON FUNCTION lamin.finish_register(text, text, bigint, bigint) IS 'Sidecar: a registered object was hashed; its artifact becomes ready (or failed if the content is already registered).';

-- (Replaced in sql/31_instances.sql, which adds the columns of artifacts moved in from LaminDB.)
CREATE FUNCTION lamin.fail_register(uid text, error text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE lamin.artifact a SET status = 'failed', updated_at = now(), status_detail = 'register failed: ' || left($2, 1000)
    WHERE a.id = lamin.artifact_id($1) AND a.status = 'pending' AND NOT a.key_is_virtual
$$;
COMMENT ON FUNCTION lamin.fail_register(text, text) IS 'Sidecar: a registered object could not be read; its artifact becomes failed (register the URI again to retry).';

-- Copy an artifact into the sidecar's cache folder; the job's result names the local path.
CREATE FUNCTION lamin.stage(uid text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    a record;
    job_id bigint;
BEGIN
    SELECT x.uid, x.status, x.status_detail INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(uid);
    IF a.status <> 'ready' THEN
        RAISE EXCEPTION 'artifact % is %: only ready artifacts can be staged%', a.uid, a.status,
            coalesce(' (' || a.status_detail || ')', '') USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- One copy at a time per artifact: a stage already under way is reused.
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.stage:' || a.uid, 0));
    SELECT j.id INTO job_id FROM lamin.job j
    WHERE j.kind = 'stage' AND j.status IN ('queued', 'running') AND j.args ->> 'uid' = a.uid LIMIT 1;
    RETURN coalesce(job_id, lamin.enqueue('stage', jsonb_build_object('uid', a.uid)));
END
$$;
COMMENT ON FUNCTION lamin.stage(text) IS 'Enqueue a copy of the artifact into the sidecar''s cache (reused when its hash matches); returns the job id, whose result has the path.';

-- Re-read stored bytes and compare hashes: one artifact, or (NULL) every
-- ready or corrupt artifact.
CREATE FUNCTION lamin.verify(uid text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    a record;
BEGIN
    IF uid IS NULL THEN
        RETURN lamin.enqueue('verify', '{}');
    END IF;
    SELECT x.uid, x.status, x.space_id INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(uid);
    -- Verifying flags records: it needs write on the artifact's space.
    IF NOT lamin.has_space_level(a.space_id, 'write') THEN
        RAISE EXCEPTION 'permission denied: verifying artifact % needs write on its space', a.uid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF a.status NOT IN ('ready', 'corrupt') THEN
        RAISE EXCEPTION 'artifact % is %: there are no stored bytes to verify yet', a.uid, a.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN lamin.enqueue('verify', jsonb_build_object('uid', a.uid));
END
$$;
COMMENT ON FUNCTION lamin.verify(text) IS 'Enqueue a re-read of the artifact''s bytes (NULL: of all stored artifacts); mismatches become status corrupt. Returns the job id.';

-- Sidecar: the outcome of re-reading an artifact. NULL problem: the bytes
-- match (a corrupt artifact whose bytes are back becomes ready again).
CREATE FUNCTION lamin.record_check(uid text, problem text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    new_status text;
BEGIN
    UPDATE lamin.artifact a
    SET checked_at = now(),
        status = CASE WHEN problem IS NULL THEN 'ready' ELSE 'corrupt' END,
        status_detail = left(problem, 1000),
        updated_at = CASE WHEN (problem IS NULL) = (a.status = 'ready') THEN a.updated_at ELSE now() END
    WHERE a.id = lamin.artifact_id(uid) AND a.status IN ('ready', 'corrupt')
    RETURNING a.status INTO new_status;
    RETURN new_status;
END
$$;
COMMENT ON FUNCTION lamin.record_check(text, text) IS 'Sidecar: record a verification; a problem marks the artifact corrupt, none marks it ready.';

-- Permanently deleted artifacts: their objects are deleted by a job, which
-- exists only once the deletion commits (a rolled-back delete deletes
-- nothing). Objects of registered artifacts (real keys) are not lamin's to
-- delete and stay, as in LaminDB. The job is internal (users cannot enqueue
-- one): SECURITY DEFINER, run as the sidecar itself, which derives the
-- storage root from storage_id and deletes only if no artifact has the uid.
-- (A trigger function cannot be called directly: only a delete that row-level
-- security let through gets here.) Replaced in sql/31_instances.sql: never
-- the bytes in a root another instance manages.
CREATE FUNCTION lamin.tg_artifact_delete_object() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO lamin.job (kind, args, requested_by)
    SELECT 'delete_object', jsonb_build_object('uid', g.uid, 'storage_id', g.storage_id, 'object', lamin.object_key(g),
                                               'folder', g.n_files IS NOT NULL),
           'lamin_sidecar'
    FROM gone g
    WHERE g.key_is_virtual;
    RETURN NULL;
END
$$;
CREATE TRIGGER artifact_delete_object AFTER DELETE ON lamin.artifact
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_artifact_delete_object();
REVOKE EXECUTE ON FUNCTION lamin.tg_artifact_delete_object() FROM PUBLIC;

-- Sweep storages for the leftovers of interrupted saves: one job per storage
-- (a sweep already queued or running is reused). Uploads idle for grace_s are
-- abandoned: recovered if their bytes are complete, else failed and removed.
-- Instance admins and the sidecar sweep; the sweep runs as the sidecar, which
-- sees every artifact (a sweep that saw only some would take the others'
-- objects for orphans).
CREATE FUNCTION lamin.sweep_storage(storage text DEFAULT NULL, grace_s int DEFAULT 3600) RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    s record;
BEGIN
    IF grace_s IS NULL OR grace_s < 0 THEN
        RAISE EXCEPTION 'grace_s must be >= 0 seconds' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (pg_has_role('lamin_admin', 'USAGE') OR current_user = 'lamin_sidecar' OR lamin.is_unrestricted()) THEN
        RAISE EXCEPTION 'permission denied: sweeping storages needs lamin_admin (role % is not a member)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Never a root another instance manages (lamin.storage.instance_uid):
    -- its objects are not all known here.
    FOR s IN SELECT x.id FROM lamin.storage x
             WHERE (storage IS NULL OR x.id = lamin.storage_id(storage)) AND x.instance_uid IS NULL ORDER BY x.id
    LOOP
        RETURN NEXT lamin.enqueue_sweep(s.id, grace_s);
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.sweep_storage(text, int) IS
    'Enqueue a sweep of a storage (NULL: all; needs lamin_admin): stale pending uploads are recovered or failed, orphan objects older than grace_s removed. Returns job ids.';

-- The sweep job of one storage (reused while one is queued or running).
-- SECURITY DEFINER: sweeps are internal jobs; executable by admins and the
-- sidecar only, and it takes nothing but a storage id and a grace period.
CREATE FUNCTION lamin.enqueue_sweep(storage_id bigint, grace_s int) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    job_id bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM lamin.storage x WHERE x.id = storage_id) OR grace_s IS NULL OR grace_s < 0 THEN
        RAISE EXCEPTION 'enqueue_sweep: no storage % or a negative grace period', storage_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.sweep:' || storage_id, 0));
    SELECT j.id INTO job_id FROM lamin.job j
    WHERE j.kind = 'sweep_storage' AND j.status IN ('queued', 'running') AND (j.args ->> 'storage_id')::bigint = storage_id
    LIMIT 1;
    IF job_id IS NULL THEN
        INSERT INTO lamin.job (kind, args, requested_by)
        VALUES ('sweep_storage', jsonb_build_object('storage_id', storage_id, 'grace_s', grace_s), 'lamin_sidecar')
        RETURNING id INTO job_id;
    END IF;
    RETURN job_id;
END
$$;
REVOKE ALL ON FUNCTION lamin.enqueue_sweep(bigint, int) FROM PUBLIC;
COMMENT ON FUNCTION lamin.enqueue_sweep(bigint, int) IS 'Internal: the sweep job of one storage (lamin.sweep_storage calls it; executable by lamin_admin and the sidecar).';

-- A register job that failed for good (or was cancelled) fails its artifact,
-- so that no artifact stays pending with nothing working on it.
CREATE FUNCTION lamin.tg_register_job_end() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM lamin.fail_register(NEW.args ->> 'uid', coalesce(NEW.error, 'the register job was ' || NEW.status))
    FROM lamin.artifact a WHERE a.uid = NEW.args ->> 'uid';
    RETURN NULL;
END
$$;
CREATE TRIGGER job_register_end AFTER UPDATE OF status ON lamin.job
FOR EACH ROW WHEN (NEW.kind = 'register' AND NEW.status IN ('failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION lamin.tg_register_job_end();
