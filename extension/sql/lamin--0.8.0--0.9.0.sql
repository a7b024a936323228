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
