\echo Use "ALTER EXTENSION lamin UPDATE TO '0.9.0'" to load this file. \quit
-- lamin 0.8.0 → 0.9.0 (issue 20: write paths at real scale). Run by ALTER
-- EXTENSION lamin UPDATE in one transaction (all or nothing). Definitions
-- are copied verbatim from sql/ (the upgrade test compares the result with a
-- fresh install object by object): first the changes to existing objects,
-- then the files whose objects are all new.

-- == the queue's functions keep their plans for the session (sql/18_jobs.sql) ==
-- Extend the lease and report progress; false when the job is no longer
-- this worker's (cancelled, or taken over after the lease ran out).
-- `attempt` (when given) pins the call to one attempt: a sidecar that took
-- its own job over after a stall must not keep the stalled attempt alive.
CREATE OR REPLACE FUNCTION lamin.heartbeat_job(job_id bigint, worker text, lease_s int DEFAULT 30,
                                    progress_done bigint DEFAULT NULL, progress_total bigint DEFAULT NULL,
                                    attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE lamin.job j SET lease_until = now() + make_interval(secs => $3), updated_at = now(),
                           progress_done = coalesce($4, j.progress_done), progress_total = coalesce($5, j.progress_total)
    WHERE j.id = $1 AND j.worker = $2 AND j.status = 'running' AND ($6 IS NULL OR j.attempts = $6);
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION lamin.complete_job(job_id bigint, worker text, result jsonb DEFAULT '{}', attempt int DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE lamin.job j SET status = 'done', result = coalesce($3, '{}'), error = NULL, lease_until = NULL,
                           finished_at = now(), updated_at = now(),
                           progress_done = coalesce(j.progress_total, j.progress_done)
    WHERE j.id = $1 AND j.worker = $2 AND j.status = 'running' AND ($4 IS NULL OR j.attempts = $4);
    RETURN FOUND;
END
$$;

-- Several completions in one statement (a sidecar batches the jobs that
-- finished while its previous batch was being recorded). Returns the ids
-- that were this worker's running attempt and are now done.
-- The queue's functions are plpgsql, not sql: plpgsql keeps their plans for
-- the session, while an sql function with a SET clause is parsed and planned
-- again in every transaction (a third of a busy sidecar's database time).
CREATE OR REPLACE FUNCTION lamin.complete_jobs(worker text, ids bigint[], attempts int[], results jsonb[]) RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    UPDATE lamin.job j SET status = 'done', result = coalesce(x.result, '{}'), error = NULL, lease_until = NULL,
                           finished_at = now(), updated_at = now(),
                           progress_done = coalesce(j.progress_total, j.progress_done)
    FROM unnest($2, $3, $4) AS x(id, attempt, result)
    WHERE j.id = x.id AND j.worker = $1 AND j.status = 'running' AND j.attempts = x.attempt
    RETURNING j.id;
END
$$;

-- A failed attempt: queued again after 2^attempts seconds (at most 10 min),
-- or failed for good when attempts are used up or the error is permanent.
CREATE OR REPLACE FUNCTION lamin.fail_job(job_id bigint, worker text, error text, permanent boolean DEFAULT false,
                               attempt int DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_status text;
BEGIN
    UPDATE lamin.job j
    SET status = CASE WHEN $4 OR j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
        run_after = now() + make_interval(secs => least(600, 2 ^ j.attempts)),
        error = left($3, 10000), lease_until = NULL, updated_at = now(),
        finished_at = CASE WHEN $4 OR j.attempts >= j.max_attempts THEN now() END
    WHERE j.id = $1 AND j.worker = $2 AND j.status = 'running' AND ($5 IS NULL OR j.attempts = $5)
    RETURNING j.status INTO new_status;
    RETURN new_status;
END
$$;

-- == await_job names pruning when a job is gone (sql/18_jobs.sql) ==
-- Wait for a job to finish. Each check is its own statement with a fresh
-- snapshot, and no lock is taken: the wait holds no row, no lock and no old
-- snapshot (call it outside an explicit transaction block to hold nothing at all).
CREATE OR REPLACE FUNCTION lamin.await_job_outcome(job_id bigint, timeout_s int DEFAULT 60)
RETURNS TABLE (status text, result jsonb, error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    st text;
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
    pause double precision := 0.005;
BEGIN
    IF timeout_s IS NULL OR timeout_s < 0 THEN
        RAISE EXCEPTION 'timeout_s must be 0 or more, got %', timeout_s USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A job enqueued by this very transaction runs only once it commits:
    -- waiting for it here could only time out.
    IF EXISTS (SELECT FROM lamin.job j WHERE j.id = job_id AND j.status = 'queued'
               AND j.xmin = xid(pg_current_xact_id_if_assigned())) THEN
        RAISE EXCEPTION 'job % was enqueued in this transaction: it starts when the transaction commits', job_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'commit first, then call lamin.await_job in a new transaction (e.g. a separate statement in autocommit)';
    END IF;
    LOOP
        SELECT j.status INTO st FROM lamin.job j WHERE j.id = job_id;
        IF st IS NULL THEN
            RAISE EXCEPTION 'no job %', job_id USING ERRCODE = 'no_data_found',
                HINT = 'a finished job is pruned after the sidecar''s retention (lamin daemon --keep-done-jobs, --keep-failed-jobs)';
        END IF;
        IF st IN ('done', 'failed', 'cancelled') OR clock_timestamp() >= deadline THEN
            -- Read in this statement's own snapshot, taken after the job
            -- ended: the error and result are the ones the sidecar wrote.
            RETURN QUERY SELECT j.status, j.result, j.error FROM lamin.job j WHERE j.id = job_id;
            RETURN;
        END IF;
        PERFORM pg_sleep(least(pause, greatest(0, extract(epoch FROM deadline - clock_timestamp()))));
        pause := least(pause * 2, 0.2);
    END LOOP;
END
$$;

-- == a superuser's queue updates skip the requesters' trigger (sql/21_access.sql) ==
DROP TRIGGER job_user_update ON lamin.job;
-- (Not for the sidecar, nor for a superuser's session, e.g. a sidecar logged
-- in as the instance's owner: their queue updates pay nothing. is_superuser
-- follows SET ROLE; a superuser-owned SECURITY DEFINER function called by a
-- user still fires it, and is_unrestricted then lets it pass, as before.)
CREATE TRIGGER job_user_update BEFORE UPDATE ON lamin.job FOR EACH ROW
WHEN (current_user <> 'lamin_sidecar' AND current_setting('is_superuser') <> 'on')
EXECUTE FUNCTION lamin.tg_job_user_update();

-- == a vouched head (a new family, or a bulk save's next version) skips the versioning trigger (extension/src/uid.rs, sql/07_versioning.sql) ==
CREATE FUNCTION lamin."new_family_uid"(
	"len" INT
) RETURNS TEXT
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'new_family_uid_wrapper';

CREATE FUNCTION lamin."is_vouched_head"(
	"uid" TEXT
) RETURNS bool
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'is_vouched_head_wrapper';

CREATE FUNCTION lamin."vouch_heads"(
	"uids" TEXT[]
) RETURNS INT
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'vouch_heads_wrapper';

DROP TRIGGER artifact_versioned_before ON lamin.artifact;
DROP TRIGGER collection_versioned_before ON lamin.collection;
DROP TRIGGER transform_versioned_before ON lamin.transform;

-- An inserted head (not in the trash) that lamin vouched for in this session
-- (lamin.is_vouched_head: the first version of a new family, whose random
-- stem nobody else knows, or a next version whose family's head a bulk save
-- has already demoted) skips the trigger: there is nothing to lock, look up
-- or demote. The check runs in the executor (no plpgsql call); the trigger
-- was most of a bulk save's per-row cost. Every other insert, and every
-- update, goes through the trigger.
CREATE TRIGGER artifact_versioned_before BEFORE UPDATE ON lamin.artifact
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_artifact_versioned_before();
CREATE TRIGGER artifact_versioned_insert BEFORE INSERT ON lamin.artifact
    FOR EACH ROW WHEN (NOT (NEW.is_latest AND NEW.branch_id <> -1 AND lamin.is_vouched_head(NEW.uid)))
    EXECUTE FUNCTION lamin.tg_artifact_versioned_before();
CREATE TRIGGER collection_versioned_before BEFORE UPDATE ON lamin.collection
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_collection_versioned_before();
CREATE TRIGGER collection_versioned_insert BEFORE INSERT ON lamin.collection
    FOR EACH ROW WHEN (NOT (NEW.is_latest AND NEW.branch_id <> -1 AND lamin.is_vouched_head(NEW.uid)))
    EXECUTE FUNCTION lamin.tg_collection_versioned_before();
CREATE TRIGGER transform_versioned_before BEFORE UPDATE ON lamin.transform
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_transform_versioned_before();
CREATE TRIGGER transform_versioned_insert BEFORE INSERT ON lamin.transform
    FOR EACH ROW WHEN (NOT (NEW.is_latest AND NEW.branch_id <> -1 AND lamin.is_vouched_head(NEW.uid)))
    EXECUTE FUNCTION lamin.tg_transform_versioned_before();

-- == saves lock per storage; new families; cheaper checks of artifacts (sql/04_artifact_collection.sql, sql/08_save.sql, sql/09_track.sql, sql/20_storage_jobs.sql) ==
ALTER TABLE lamin.artifact DROP CONSTRAINT artifact_hash_sha256,
    ADD CONSTRAINT artifact_hash_sha256 CHECK (length(hash) = 64 AND hash !~ '[^0-9a-f]');
DROP INDEX lamin.artifact_key;
-- id last: "the newest artifact with this key" (a key's version family) is
-- one backward step in this index, whatever the statistics say (with only
-- (storage_id, key), a planner that guessed many rows per key walked the
-- primary key backwards, through every artifact, for a key never seen).
CREATE INDEX artifact_key ON lamin.artifact (storage_id, key, id);

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
CREATE OR REPLACE FUNCTION lamin.save_artifact(
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

CREATE OR REPLACE FUNCTION lamin.track(
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
            transform_uid := CASE WHEN tf.id IS NULL THEN lamin.new_family_uid(16)
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

-- Register an object (file or folder) that is already in a registered
-- storage. The artifact is pending until a sidecar job has streamed the
-- object and recorded its size and sha256. Registering the same URI again
-- returns the same artifact (a failed one is tried again).
CREATE OR REPLACE FUNCTION lamin.register(uri text, key text DEFAULT NULL, description text DEFAULT NULL) RETURNS text
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

-- The register job's result: the object's size, sha256 and (folders) file
-- count. The same content already registered in that storage fails the new
-- artifact, naming the existing one (content is stored once per storage).
CREATE OR REPLACE FUNCTION lamin.finish_register(uid text, hash text, size bigint, n_files bigint DEFAULT NULL) RETURNS text
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

-- Save a collection of artifacts (in this order). Idempotent on the hash of
-- the sorted member hashes; an existing key or `revises` makes a new version.
CREATE OR REPLACE FUNCTION lamin.save_collection(
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

-- == audit rows cost less (sql/21_access.sql) ==
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
-- An UPDATE's old and new rows are joined by id: with no statistics on
-- transition tables, the planner chose a nested loop for some sizes, which
-- compared every new row with every old one (10,000 rows: minutes).
SET enable_nestloop = off
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
               -- (The keys of the fields that are not NULL: jsonb_strip_nulls is
               -- several times cheaper than filtering jsonb_each's pairs.)
               ARRAY(SELECT k FROM jsonb_object_keys(jsonb_strip_nulls(j)) k ORDER BY k)
        -- OFFSET 0: each row is turned into JSON once, not once per use of j.
        FROM (SELECT to_jsonb(n) AS j FROM new_rows n OFFSET 0) x;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id, fields)
        SELECT who, reg, op, (nj ->> 'id')::bigint, nj ->> 'uid',
               CASE WHEN own_space THEN (nj ->> 'id')::bigint ELSE coalesce((nj ->> 'space_id')::bigint, 1) END,
               ARRAY(SELECT k FROM jsonb_each(nj) e(k, v) WHERE v IS DISTINCT FROM oj -> k AND k <> 'updated_at' ORDER BY k)
        -- Each row's JSON made once (OFFSET 0: pulled up, to_jsonb ran again for
        -- every use of nj and oj, once per field in the list of changed
        -- fields), and its id taken out once, to join on (see enable_nestloop).
        FROM (SELECT x.nj, x.nj ->> 'id' AS id FROM (SELECT to_jsonb(n) AS nj FROM new_rows n OFFSET 0) x) n
        JOIN (SELECT x.oj, x.oj ->> 'id' AS id FROM (SELECT to_jsonb(o) AS oj FROM old_rows o OFFSET 0) x) o ON o.id = n.id;
    ELSE
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id)
        SELECT who, reg, op, (j ->> 'id')::bigint, j ->> 'uid',
               CASE WHEN own_space THEN (j ->> 'id')::bigint ELSE coalesce((j ->> 'space_id')::bigint, 1) END
        FROM (SELECT to_jsonb(o) AS j FROM old_rows o OFFSET 0) x;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER audit_insert_guard ON lamin.audit;
-- Who inserts does not depend on the row: checked once per statement (a
-- bulk statement's audit rows pay nothing each).
CREATE TRIGGER audit_insert_guard BEFORE INSERT ON lamin.audit FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit_guard();

-- == finished jobs are pruned after their retention (sql/34_job_retention.sql, new) ==
-- A queue that does not grow forever. Finished jobs are kept for a while
-- (what ran, its result, its error), then pruned: done and cancelled ones
-- after keep_done, failed ones after keep_failed, which is longer by default
-- (their errors are what one reads when something went wrong). Each sidecar
-- prunes periodically with its own retention (lamin daemon --keep-done-jobs,
-- --keep-failed-jobs), as River, graphile-worker and pgmq do; with several
-- sidecars the shortest retention wins. Queued and running jobs are never
-- pruned. Nothing refers to a job row (artifacts, runs and the audit log name
-- no job), so a pruned job leaves no dangling reference; lamin.await_job of a
-- pruned id says that it does not exist.

-- The prune walks finished jobs oldest first and stops after max_rows: a
-- partial index on finished_at holds only those, so the walk never reads the
-- queue's live rows.
CREATE INDEX job_finished ON lamin.job (finished_at) WHERE status IN ('done', 'failed', 'cancelled');

-- A queue's table churns: each job is written when it is claimed and when it
-- ends, then deleted. Vacuum it once 1 % of its rows changed (Postgres'
-- default waits for 20 %), so that claims do not walk the dead index entries
-- of jobs already taken and the table reuses its space instead of growing.
ALTER TABLE lamin.job SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                           autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);

-- SECURITY DEFINER: no role may delete jobs (the queue's history is not the
-- requester's to edit); this function deletes only finished jobs past their
-- retention. FOR UPDATE SKIP LOCKED: sidecars pruning at once never wait for
-- each other, nor for a requester reading or cancelling a job.
CREATE FUNCTION lamin.prune_jobs(keep_done interval DEFAULT '7 days', keep_failed interval DEFAULT '30 days',
                                 max_rows int DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doomed bigint[];
    pruned bigint;
BEGIN
    IF keep_done IS NULL OR keep_failed IS NULL OR keep_done < interval '0' OR keep_failed < interval '0' THEN
        RAISE EXCEPTION 'job retention must be a duration of zero or more (keep_done %, keep_failed %)',
            coalesce(keep_done::text, 'NULL'), coalesce(keep_failed::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. lamin.prune_jobs(interval ''7 days'', interval ''30 days'')';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be 1 or more, not %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    doomed := ARRAY(
        SELECT j.id FROM lamin.job j
        WHERE j.status IN ('done', 'failed', 'cancelled')
          -- The bound of the index walk: it stops at the younger retention.
          AND j.finished_at < now() - least(keep_done, keep_failed)
          AND j.finished_at < now() - CASE WHEN j.status = 'failed' THEN keep_failed ELSE keep_done END
        ORDER BY j.finished_at
        LIMIT max_rows
        FOR UPDATE SKIP LOCKED);
    DELETE FROM lamin.job j WHERE j.id = ANY (doomed);
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END
$$;
REVOKE EXECUTE ON FUNCTION lamin.prune_jobs(interval, interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.prune_jobs(interval, interval, int) TO lamin_admin, lamin_sidecar;
COMMENT ON FUNCTION lamin.prune_jobs(interval, interval, int) IS 'Delete up to max_rows finished jobs, oldest first: done and cancelled ones finished more than keep_done ago, failed ones more than keep_failed ago; returns how many. Queued and running jobs are never pruned. The sidecar calls it periodically (lamin daemon --keep-done-jobs, --keep-failed-jobs); lamin admins may call it.';

-- == many artifacts saved in one call (sql/35_save_artifacts.sql, new) ==
-- Saving many artifacts in one call (lamin save of many files, imports):
-- lamin.save_artifact's rules (content saved once per storage and space,
-- an existing key makes the next version of its family, the current run
-- recorded, the caller's space) applied to a whole set in a few statements
-- instead of one call, lock and insert per file.

-- Register artifacts whose bytes are (or will be) in one storage, one entry
-- per position of the arrays (NULL arrays: NULL for every entry). Returns one
-- row per entry, in order: its artifact's uid and what happened:
--   saved        a new artifact (a new family, or the first version of its key);
--   new version  a new artifact: the next version of the family of its key;
--   existing     the content was saved before (or earlier in this call): that
--                artifact is returned and the current run recorded as re-creating it;
--   restored     as existing, and the artifact came back from the trash.
-- Within one call a key may appear once (which of two files would be the
-- newer version is not said); version tags and `revises` are
-- lamin.save_artifact's.
CREATE FUNCTION lamin.save_artifacts(
    hashes         text[],
    sizes          bigint[],
    keys           text[] DEFAULT NULL,
    suffixes       text[] DEFAULT NULL,
    descriptions   text[] DEFAULT NULL,
    storage        text DEFAULT NULL,
    kinds          text[] DEFAULT NULL,
    otypes         text[] DEFAULT NULL,
    n_files        bigint[] DEFAULT NULL,
    n_observations bigint[] DEFAULT NULL
) RETURNS TABLE (ord int, uid text, outcome text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Each statement below is planned for the arrays it gets (a generic plan
-- would not know how many entries a call has).
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_variable
DECLARE
    n int := coalesce(cardinality(hashes), 0);
    sid bigint;
    here bigint;
    run bigint := lamin.current_run_id();
    me bigint;
    bad record;
    -- Content saved before, one element per distinct hash that has a record.
    old_hash text[];
    old_id bigint[];
    old_uid text[];
    old_trashed boolean[];
    -- Artifacts this call made.
    new_hash text[];
    new_uid text[];
    fresh bigint[];
    family text[];
    planned text[];
    n_existing int;
    n_keys_dropped int;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF n > 10000 THEN
        RAISE EXCEPTION 'save_artifacts: % entries, at most 10000 a call', n
            USING ERRCODE = 'program_limit_exceeded', HINT = 'split the entries into calls of up to 10000';
    END IF;
    SELECT x.name, x.len INTO bad
    FROM (VALUES ('sizes', cardinality(sizes)), ('keys', cardinality(keys)), ('suffixes', cardinality(suffixes)),
                 ('descriptions', cardinality(descriptions)), ('kinds', cardinality(kinds)), ('otypes', cardinality(otypes)),
                 ('n_files', cardinality(n_files)), ('n_observations', cardinality(n_observations))) x(name, len)
    WHERE x.len IS DISTINCT FROM n AND (x.len IS NOT NULL OR x.name = 'sizes')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'save_artifacts: % has % entries, hashes has %', bad.name, coalesce(bad.len, 0), n
            USING ERRCODE = 'invalid_parameter_value', HINT = 'pass one element per artifact in every array (or NULL for none)';
    END IF;
    SELECT u.o, u.h INTO bad FROM unnest(hashes) WITH ORDINALITY u(h, o)
    WHERE u.h IS NULL OR NOT lamin.is_sha256_hex(u.h) ORDER BY u.o LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry %: invalid hash %: expected the sha256 of the full content as 64 lowercase hex characters',
            bad.o, coalesce(quote_literal(left(bad.h, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT u.o, u.s INTO bad FROM unnest(sizes) WITH ORDINALITY u(s, o)
    WHERE u.s IS NULL OR u.s < 0 ORDER BY u.o LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry %: invalid size %: expected a byte count >= 0', bad.o, coalesce(bad.s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keys IS NOT NULL THEN
        PERFORM lamin.check_key(k) FROM unnest(keys) k WHERE k IS NOT NULL;
        SELECT u.k, array_agg(u.o ORDER BY u.o) AS os INTO bad FROM unnest(keys) WITH ORDINALITY u(k, o)
        WHERE u.k IS NOT NULL GROUP BY u.k HAVING count(*) > 1 ORDER BY min(u.o) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'key % is given to entries % in one call', quote_literal(bad.k), array_to_string(bad.os, ', ')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'save them in separate calls: the later call makes the next version of the key';
        END IF;
    END IF;
    sid := lamin.storage_id(storage);
    here := lamin.current_space_id();

    -- The same locks as lamin.save_artifact's, so that concurrent savers of
    -- one content or one key wait for each other and then find each other's
    -- records: for a few entries one per hash and per key (sorted: no two
    -- calls take them in opposite orders); for more, the storage's lock over
    -- all saves (advisory locks live in a shared table of bounded size).
    IF n > 64 THEN
        PERFORM pg_advisory_xact_lock(lamin.artifact_saves_lock_key(sid));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(lamin.artifact_saves_lock_key(sid));
        PERFORM pg_advisory_xact_lock(l.k)
        FROM (SELECT DISTINCT lamin.artifact_hash_lock_key(sid, h) AS k FROM unnest(hashes) h ORDER BY 1) l;
        PERFORM pg_advisory_xact_lock(l.k)
        FROM (SELECT DISTINCT lamin.artifact_key_lock_key(sid, k) AS k
              FROM unnest(keys) k WHERE k IS NOT NULL ORDER BY 1) l;
    END IF;

    -- Content saved before, within what the caller can read (as in
    -- lamin.save_artifact: row-level security hides the rest; the copy in the
    -- current space first, then one not in the trash).
    SELECT array_agg(d.h), array_agg(e.id), array_agg(e.uid), array_agg(e.branch_id = -1)
    INTO old_hash, old_id, old_uid, old_trashed
    FROM (SELECT DISTINCT h FROM unnest(hashes) h) d
    CROSS JOIN LATERAL (
        SELECT a.id, a.uid, a.branch_id FROM lamin.artifact a
        WHERE a.storage_id = sid AND a.hash = d.h
        ORDER BY a.space_id = here DESC, a.branch_id = -1, a.id
        LIMIT 1) e;
    IF old_id IS NOT NULL THEN
        UPDATE lamin.artifact a SET branch_id = 1
        FROM unnest(old_id, old_trashed) t(id, trashed) WHERE a.id = t.id AND t.trashed;
        INSERT INTO lamin.artifact_recreating_run (artifact_id, run_id)
        SELECT a.id, run FROM lamin.artifact a
        WHERE run IS NOT NULL AND a.id = ANY (old_id) AND a.run_id IS DISTINCT FROM run
        ON CONFLICT DO NOTHING;
    END IF;

    -- New content: the first entry of each hash not saved before, in order.
    IF EXISTS (SELECT FROM unnest(hashes) h WHERE h <> ALL (coalesce(old_hash, '{}'))) THEN
        PERFORM lamin.require_write('saving artifacts');
        me := lamin.current_user_id();
        -- The entries to store, each with the family of its key (saving under
        -- an existing key makes a new version of that key's family).
        SELECT array_agg(e.o ORDER BY e.o), array_agg(f.stem ORDER BY e.o) INTO fresh, family
        FROM (SELECT u.o, u.h, u.k, u.o = min(u.o) OVER (PARTITION BY u.h) AS first_of_hash
              FROM unnest(hashes, keys) WITH ORDINALITY u(h, k, o)) e
        LEFT JOIN LATERAL (
            SELECT a.stem FROM lamin.artifact a
            WHERE e.k IS NOT NULL AND a.storage_id = sid AND a.key = e.k AND a.branch_id <> -1
            ORDER BY a.id DESC LIMIT 1) f ON true
        WHERE e.first_of_hash AND e.h <> ALL (coalesce(old_hash, '{}'));
        SELECT f.stem, array_agg(f.o ORDER BY f.o) AS os INTO bad FROM unnest(fresh, family) f(o, stem)
        WHERE f.stem IS NOT NULL GROUP BY f.stem HAVING count(*) > 1 ORDER BY min(f.o) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'entries % would all be the next version of family % (their keys name versions of it)',
                array_to_string(bad.os, ', '), bad.stem
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'save them in separate calls: each call makes one next version of a family';
        END IF;
        -- Their uids. Up to 64 entries: as lamin.save_artifact makes them,
        -- each next version under its family's lock. More: under the storage's
        -- saves lock, each family's newest counter read at once, and the new
        -- versions vouched for as their families' heads below (a lock per
        -- family would fill the shared lock table for thousands of versions).
        IF n <= 64 THEN
            planned := ARRAY(SELECT CASE WHEN f.stem IS NULL THEN lamin.new_family_uid(20)
                                         ELSE lamin.next_version_uid('lamin.artifact', f.stem) END
                             FROM unnest(fresh, family) WITH ORDINALITY f(o, stem, i) ORDER BY f.i);
        ELSE
            planned := ARRAY(SELECT CASE WHEN f.stem IS NULL THEN lamin.new_family_uid(20)
                                         ELSE f.stem || lamin.version_suffix(lamin.version_number(t.top) + 1) END
                             FROM unnest(fresh, family) WITH ORDINALITY f(o, stem, i)
                             LEFT JOIN (SELECT a.stem, max(right(a.uid, 4) COLLATE "C") AS top FROM lamin.artifact a
                                        WHERE a.stem = ANY (family) GROUP BY a.stem) t ON t.stem = f.stem
                             ORDER BY f.i);
        END IF;
        -- The families' heads step down in one statement, before the new
        -- versions arrive (from the versioning trigger, each new version would
        -- demote its head in an UPDATE of its own, with the registry's
        -- statement triggers each time).
        IF EXISTS (SELECT FROM unnest(family) x WHERE x IS NOT NULL) THEN
            UPDATE lamin.artifact a SET is_latest = false
            WHERE a.is_latest AND a.stem = ANY (ARRAY(SELECT DISTINCT x FROM unnest(family) x WHERE x IS NOT NULL));
            IF n > 64 THEN
                PERFORM lamin.vouch_heads(ARRAY(SELECT x FROM unnest(planned) x WHERE right(x, 4) <> '0000'));
            END IF;
        END IF;
        WITH saved AS (
            INSERT INTO lamin.artifact AS a (uid, key, description, storage_id, suffix, kind, otype, size, hash, hash_type,
                                             n_files, n_observations, run_id, created_by, space_id)
            SELECT f.uid, e.k, e.description, sid, coalesce(e.suffix, lamin.suffix_from_key(e.k), ''), e.kind, e.otype, e.s, e.h,
                   CASE WHEN e.n_files IS NULL THEN 'sha256' ELSE 'sha256-dir' END, e.n_files, e.n_observations,
                   run, me, here
            FROM unnest(fresh, planned) f(o, uid)
            JOIN unnest(hashes, sizes, keys, suffixes, descriptions, kinds, otypes, n_files, n_observations)
                 WITH ORDINALITY e(h, s, k, suffix, description, kind, otype, n_files, n_observations, o) ON e.o = f.o
            ORDER BY e.o
            RETURNING a.hash, a.uid
        )
        SELECT array_agg(s.hash), array_agg(s.uid) INTO new_hash, new_uid FROM saved s;
    END IF;

    -- Say once what came back instead of being stored (every artifact made
    -- is one entry's).
    n_existing := n - coalesce(cardinality(new_uid), 0);
    IF n_existing > 0 THEN
        SELECT count(*) INTO n_keys_dropped
        FROM unnest(hashes, keys) x(h, k)
        LEFT JOIN unnest(new_hash, new_uid) nw(h, uid) ON nw.h = x.h
        LEFT JOIN unnest(old_hash, old_uid) ex(h, uid) ON ex.h = x.h
        JOIN lamin.artifact a ON a.uid = coalesce(nw.uid, ex.uid)
        WHERE x.k IS NOT NULL AND x.k IS DISTINCT FROM a.key;
        RAISE NOTICE '%', format('%s of %s entries have content saved before (or earlier in this call): their artifacts are returned, nothing new is stored%s',
            n_existing, n, CASE WHEN n_keys_dropped > 0
                                THEN format('; %s of them name a key that is not recorded (save different content there, or use lamin.save_artifact with revises)', n_keys_dropped)
                                ELSE '' END)
            USING HINT = 'the current run (if any) is recorded as re-creating them: lamin.describe(uid) -> lineage -> recreating_runs';
    END IF;

    RETURN QUERY
    SELECT u.o::int, coalesce(nw.uid, ex.uid),
           CASE WHEN nw.uid IS NOT NULL AND u.first_of_hash THEN
                     CASE WHEN right(nw.uid, 4) = '0000' THEN 'saved' ELSE 'new version' END
                WHEN ex.trashed AND u.first_of_hash THEN 'restored'
                ELSE 'existing' END
    FROM (SELECT x.h, x.o, x.o = min(x.o) OVER (PARTITION BY x.h) AS first_of_hash
          FROM unnest(hashes) WITH ORDINALITY x(h, o)) u
    LEFT JOIN unnest(new_hash, new_uid) nw(h, uid) ON nw.h = u.h
    LEFT JOIN unnest(old_hash, old_uid, old_trashed) ex(h, uid, trashed) ON ex.h = u.h
    ORDER BY u.o;
END
$$;
COMMENT ON FUNCTION lamin.save_artifacts(text[], bigint[], text[], text[], text[], text, text[], text[], bigint[], bigint[]) IS
    'Register up to 10,000 artifacts by content hash in one call, with save_artifact''s rules (de-duplication, key => next version, run, space); one row per entry: ord, uid, outcome (saved, new version, existing, restored).';

-- == reads that stay fast at 100M artifacts (sql/04_artifact_collection.sql, sql/11_lineage.sql, sql/26_find.sql) ==
-- Listing by key prefix (lamin ls PREFIX: starts_with(key, …) in key order,
-- then id): a prefix is a range of keys only in byte order, so this index is
-- in the "C" collation whatever the database's. Without it a listing read
-- every artifact (0.3 s at 400,000).
CREATE INDEX artifact_key_prefix ON lamin.artifact (key COLLATE "C", id);

-- The producers of one node (lamin.lineage_edge's rows with this target),
-- each found by an index. lamin.lineage walks the graph through this, one
-- node at a time: joined to the view instead, the planner hashed every
-- artifact's edge at each step of the walk (2.3 s for 17 edges among 400,000
-- artifacts, linear in the registry's size).
CREATE FUNCTION lamin.lineage_sources(node_type text, node_id bigint, OUT source_type text, OUT source_id bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
ROWS 4
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'run'::text, a.run_id FROM lamin.artifact a
    WHERE node_type = 'artifact' AND a.id = node_id AND a.run_id IS NOT NULL
    UNION ALL
    SELECT 'run', c.run_id FROM lamin.collection c
    WHERE node_type = 'collection' AND c.id = node_id AND c.run_id IS NOT NULL
    UNION ALL
    SELECT 'transform', r.transform_id FROM lamin.run r WHERE node_type = 'run' AND r.id = node_id
    UNION ALL
    SELECT 'artifact', i.artifact_id FROM lamin.run_input_artifact i WHERE node_type = 'run' AND i.run_id = node_id
    UNION ALL
    SELECT 'collection', i.collection_id FROM lamin.run_input_collection i WHERE node_type = 'run' AND i.run_id = node_id
    UNION ALL
    SELECT 'artifact', m.artifact_id FROM lamin.collection_artifact m WHERE node_type = 'collection' AND m.collection_id = node_id
$$;
COMMENT ON FUNCTION lamin.lineage_sources(text, bigint) IS
    'The direct producers of one node of the provenance graph (a run for an artifact or collection; the transform and the input artifacts and collections for a run; the artifacts of a collection), by internal id.';

-- The upstream lineage of a record as edges (producer -> product), with the
-- distance from the record (1 = direct producer).
CREATE OR REPLACE FUNCTION lamin.lineage(uid text)
RETURNS TABLE (depth int, source_type text, source_uid text, source_label text,
               target_type text, target_uid text, target_label text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- Index probes, one node at a time: compiling them (the planner guesses
-- large costs for a recursive walk) would take longer than running them.
SET jit = off
AS $$
    WITH RECURSIVE start AS (
        SELECT * FROM lamin.resolve_uid($1)
    ), walk(depth, source_type, source_id, target_type, target_id) AS (
        SELECT 1, e.source_type, e.source_id, s.node_type, s.node_id
        FROM start s CROSS JOIN LATERAL lamin.lineage_sources(s.node_type, s.node_id) e
        UNION
        SELECT w.depth + 1, e.source_type, e.source_id, w.source_type, w.source_id
        FROM walk w CROSS JOIN LATERAL lamin.lineage_sources(w.source_type, w.source_id) e
        WHERE w.depth < 100
    ), edges AS (
        SELECT min(depth) AS depth, source_type, source_id, target_type, target_id
        FROM walk GROUP BY source_type, source_id, target_type, target_id
    )
    SELECT e.depth, e.source_type, s.uid, s.label, e.target_type, t.uid, t.label
    FROM edges e
    CROSS JOIN LATERAL lamin.lineage_node(e.source_type, e.source_id) s
    CROSS JOIN LATERAL lamin.lineage_node(e.target_type, e.target_id) t
    ORDER BY e.depth, e.source_type, s.uid, t.uid
$$;

-- find_artifacts gains max_rows (a new signature: the old one goes).
DROP FUNCTION lamin.find_artifacts(jsonb);
-- Two settings for its own statements: no JIT (these are index probes; the
-- planner's high cost guesses, inflated by the row-level-security checks,
-- would otherwise spend 50-500 ms compiling them), and a small work_mem, so
-- that a security check "is the owning artifact readable?" is an index
-- probe per row, never a hash of every artifact built to answer a few
-- thousand rows.
-- max_rows: a function's rows are all made before a LIMIT around the call
-- sees any, so the limit is passed in (the first 100 artifacts with a label
-- of 10,000 artifacts took 167 ms at 10M artifacts as LIMIT 100 outside).
CREATE FUNCTION lamin.find_artifacts(filters jsonb, max_rows bigint DEFAULT NULL) RETURNS SETOF lamin.artifact
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
    vconds text;            -- the current feature's value conditions, as SQL over $2 (vargs)
    vargs text[];
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
    IF max_rows IS NOT NULL AND max_rows < 0 THEN
        RAISE EXCEPTION 'find_artifacts: max_rows is a number of artifacts (or NULL for all), not %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
        vconds := '';
        vargs := '{}';
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
                -- Collected, and asked below in one scan with the feature's other conditions.
                vconds := vconds || CASE WHEN c.op = 'in'
                    THEN format(' AND v.%I = ANY ($2[%s:%s]::%s[])', col, cardinality(vargs) + 1, cardinality(vargs) + cardinality(operands), typ)
                    ELSE format(' AND v.%I %s $2[%s]::%s', col, c.op, cardinality(vargs) + 1, typ) END;
                vargs := vargs || operands;
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
        END LOOP;
        IF registry IS NULL THEN
            -- All of a feature's value conditions in one range scan of its
            -- typed index: {">=": 10, "<": 20} reads what lies between, not
            -- every value above 10 and every value below 20.
            EXECUTE format('SELECT array_agg(DISTINCT v.artifact_id) FROM lamin.artifact_feature_value v
                            WHERE v.feature_id = $1%s', vconds)
            INTO ids USING item.feature_id, vargs;
            cand := CASE WHEN cand IS NULL THEN coalesce(ids, '{}')
                         ELSE ARRAY(SELECT unnest(cand) INTERSECT SELECT unnest(ids)) END;
            IF cand = '{}' THEN
                RETURN;
            END IF;
        END IF;
    END LOOP;
    -- $1 is planned as the constant it is: the planner sees how many candidates there are.
    RETURN QUERY EXECUTE 'SELECT a.* FROM lamin.artifact a WHERE a.branch_id <> -1'
        || CASE WHEN cand IS NOT NULL THEN ' AND a.id = ANY ($1)' ELSE '' END || probes
        || CASE WHEN max_rows IS NOT NULL THEN ' LIMIT $2' ELSE '' END
        USING cand, max_rows;
END
$$;
COMMENT ON FUNCTION lamin.find_artifacts(jsonb, bigint) IS
    'Artifacts (not in the trash) whose feature values and labels meet every condition, e.g. lamin.find_artifacts(''{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}, "assay": ["10x 3'''' v3"]}''): per feature a value (=), a list (in) or an object of operators: =, >, >=, <, <=, in for values; =, in and under (the term and every term below it) for labels. max_rows: at most that many of them (any; NULL: all). Fast at any size: see sql/26_find.sql.';
