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
