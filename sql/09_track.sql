-- Tracking: lamin.track(key, ...) finds or creates the transform and starts a
-- run held in the session setting lamin.run_uid; lamin.finish(...) ends it.

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
COMMENT ON FUNCTION lamin.track(text, text, text, text, jsonb, text, text) IS
    'Find or create the transform (new version when its source changes) and start a run for this session; returns the run uid. Idempotent within a session. params whose key names a feature must fit its dtype and are also stored as the run''s feature values; other keys stay in run.params only. project (uid or name) links the run, its transform and what the run creates to that project.';

-- Make an existing, unfinished run this session's current run: how a
-- client that did not call track() itself (the lamin CLI with --run, a
-- second connection of a pipeline) records its saves and reads in that run.
CREATE FUNCTION lamin.use_run(uid text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    r record;
BEGIN
    SELECT x.uid, x.finished_at INTO r FROM lamin.run x WHERE x.uid = use_run.uid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no run with uid %', coalesce(quote_literal(left(uid, 80)), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'a run started by lamin.track in another session is seen only once that transaction commits (psycopg: conn.commit() after lamin.track, or autocommit=True); from a shell, start one with `run=$(lamin track KEY)`; or start one here with lamin.track(key)';
    END IF;
    IF r.finished_at IS NOT NULL THEN
        RAISE EXCEPTION 'run % finished at %: its outputs are closed', r.uid, r.finished_at
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM set_config('lamin.run_uid', r.uid, false);
    RETURN r.uid;
END
$$;
COMMENT ON FUNCTION lamin.use_run(text) IS 'Make an existing unfinished run the current run of this session (as track() does for a new one).';

CREATE FUNCTION lamin.finish(status text DEFAULT 'completed') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    run_uid text;
BEGIN
    IF status NOT IN ('completed', 'errored', 'aborted') THEN
        RAISE EXCEPTION 'invalid run status %: expected completed, errored or aborted', quote_literal(status)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE lamin.run r SET finished_at = greatest(now(), r.started_at), status = status
    WHERE r.id = lamin.current_run_id()
    RETURNING r.uid INTO run_uid;
    IF run_uid IS NULL THEN
        RAISE EXCEPTION 'no run is tracked in this session: call lamin.track(key) first'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM set_config('lamin.run_uid', '', false);
    RETURN run_uid;
END
$$;
COMMENT ON FUNCTION lamin.finish(text) IS 'Finish the run tracked in this session (completed, errored or aborted); returns its uid.';
