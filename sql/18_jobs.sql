-- The durable job queue between SQL and the sidecar.
--
-- A job row is the truth; NOTIFY lamin_job (sent at commit, so an aborted
-- transaction enqueues nothing) only wakes sidecars, which also sweep for
-- work they missed. A sidecar claims a job with FOR UPDATE SKIP LOCKED and a
-- lease; a job whose lease ran out (its sidecar died) is claimed again.
-- Failed attempts are retried with exponential back-off up to max_attempts.

-- Every job kind, in one place. Kinds need an instance role to be enqueued
-- (needs_role; roles: sql/21_access.sql); what a job may touch is then
-- decided by row-level security, as the sidecar runs it as its requester.
-- Internal kinds act on storage as the sidecar itself, on what lamin derived
-- from the database: the delete of a committed delete's bytes, storage sweeps.
-- Only lamin's own code enqueues them (SECURITY DEFINER trigger and function).
CREATE TABLE lamin.job_kind (
    kind        text PRIMARY KEY CONSTRAINT job_kind_name CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    description text NOT NULL,
    needs_role  name NOT NULL DEFAULT 'lamin_reader',
    internal    boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lamin.job_kind IS 'The kinds of job the sidecar knows how to run.';
COMMENT ON COLUMN lamin.job_kind.kind IS 'Name of the kind, e.g. import_ontology.';
COMMENT ON COLUMN lamin.job_kind.description IS 'What a job of this kind does.';
COMMENT ON COLUMN lamin.job_kind.needs_role IS 'The role a requester must have to enqueue jobs of this kind.';
COMMENT ON COLUMN lamin.job_kind.internal IS 'Enqueued by lamin itself only (never by users): the job acts as the sidecar, not as a requester.';
INSERT INTO lamin.job_kind (kind, description, needs_role, internal) VALUES
    ('noop', 'Does nothing and succeeds: for health checks and queue benchmarks.', 'lamin_reader', false),
    ('sleep', 'Sleeps args.seconds, reporting progress each second: for tests of leases, cancellation and shutdown.', 'lamin_reader', false),
    ('fail', 'Fails with args.message: for tests of retries.', 'lamin_reader', false),
    ('import_ontology', 'Imports an ontology file from the sidecar''s import folder into a bionty registry (lamin.import_ontology).', 'lamin_writer', false),
    ('import_genes', 'Imports gene tables from the sidecar''s import folder into bionty.gene (lamin.import_genes).', 'lamin_writer', false),
    -- Storage jobs (sql/20_storage_jobs.sql).
    ('register', 'Hashes an object already in a storage (lamin.register) and makes its pending artifact ready.', 'lamin_reader', false),
    ('stage', 'Copies an artifact into the sidecar''s cache folder (lamin.stage); result.path is the local copy.', 'lamin_reader', false),
    ('verify', 'Re-reads stored objects and compares their sha256 with the registered one (lamin.verify).', 'lamin_reader', false),
    ('delete_object', 'Deletes the object of an artifact whose deletion committed.', 'lamin_reader', true),
    ('sweep_storage', 'Finds what interrupted saves left in a storage: recovers or fails stale pending uploads, removes orphan objects.', 'lamin_admin', true),
    -- Tables (sql/22_tables.sql).
    ('load', 'Loads a parquet artifact into a new table with binary COPY, in one transaction (lamin.load).', 'lamin_reader', false),
    ('export', 'Runs a query as its requester (read-only) and saves the rows as a parquet artifact (lamin.export).', 'lamin_reader', false),
    ('curate', 'Reads the distinct values of a column of a tabular artifact and checks them against a registry (lamin.curate).', 'lamin_reader', false);

CREATE TABLE lamin.job (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text NOT NULL REFERENCES lamin.job_kind,
    args           jsonb NOT NULL DEFAULT '{}' CONSTRAINT job_args_object CHECK (jsonb_typeof(args) = 'object'),
    requested_by   name NOT NULL DEFAULT current_user,
    status         text NOT NULL DEFAULT 'queued'
                   CONSTRAINT job_status_known CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts       int NOT NULL DEFAULT 0,
    max_attempts   int NOT NULL DEFAULT 5 CONSTRAINT job_max_attempts_positive CHECK (max_attempts BETWEEN 1 AND 100),
    run_after      timestamptz NOT NULL DEFAULT now(),
    worker         text,
    lease_until    timestamptz,
    progress_done  bigint,
    progress_total bigint,
    error          text,
    result         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Last: added in 0.11.0 (an upgrade appends it).
    progress_stage text
);
-- Jobs are kept by pg_dump: a restored instance still knows what was queued
-- (and runs it) and what ran.
SELECT pg_catalog.pg_extension_config_dump('lamin.job', '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.job', 'id')::regclass, '');
-- Claim order: the oldest ready job first.
CREATE INDEX job_ready ON lamin.job (id) WHERE status = 'queued';
CREATE INDEX job_running_lease ON lamin.job (lease_until) WHERE status = 'running';
CREATE INDEX job_requested_by ON lamin.job (requested_by, id);
COMMENT ON TABLE lamin.job IS 'Durable jobs for the sidecar (the truth; NOTIFY lamin_job only wakes sidecars). Enqueue with lamin.enqueue or the functions that do byte work.';
COMMENT ON COLUMN lamin.job.id IS 'Job id (what lamin.await_job and lamin.cancel_job take).';
COMMENT ON COLUMN lamin.job.kind IS 'What to do (lamin.job_kind).';
COMMENT ON COLUMN lamin.job.args IS 'Arguments of the job, a JSON object.';
COMMENT ON COLUMN lamin.job.requested_by IS 'The database role that enqueued the job.';
COMMENT ON COLUMN lamin.job.status IS 'queued, running, done, failed or cancelled.';
COMMENT ON COLUMN lamin.job.attempts IS 'How many times a sidecar has started the job.';
COMMENT ON COLUMN lamin.job.max_attempts IS 'Attempts before the job is failed for good.';
COMMENT ON COLUMN lamin.job.run_after IS 'Not before this time (back-off after a failed attempt).';
COMMENT ON COLUMN lamin.job.worker IS 'The sidecar running (or that last ran) the job.';
COMMENT ON COLUMN lamin.job.lease_until IS 'The running sidecar''s lease; once past, another sidecar may take the job over.';
COMMENT ON COLUMN lamin.job.progress_done IS 'Work done so far (bytes or rows), as the sidecar reports it.';
COMMENT ON COLUMN lamin.job.progress_total IS 'Total work (bytes or rows), when known.';
COMMENT ON COLUMN lamin.job.progress_stage IS 'What the running job is doing now (e.g. reading a file, then merging it), as the sidecar reports it; progress_done and progress_total count that stage.';
COMMENT ON COLUMN lamin.job.error IS 'Error of the last failed attempt.';
COMMENT ON COLUMN lamin.job.result IS 'What the job produced (a JSON object), once done.';
COMMENT ON COLUMN lamin.job.created_at IS 'When the job was enqueued.';
COMMENT ON COLUMN lamin.job.started_at IS 'When the last attempt started.';
COMMENT ON COLUMN lamin.job.finished_at IS 'When the job reached done, failed or cancelled.';
COMMENT ON COLUMN lamin.job.updated_at IS 'Last change of the row.';

-- Wake sidecars at commit with the job id only.
CREATE FUNCTION lamin.tg_job_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('lamin_job', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER job_notify AFTER INSERT ON lamin.job FOR EACH ROW EXECUTE FUNCTION lamin.tg_job_notify();

CREATE FUNCTION lamin.enqueue(kind text, args jsonb DEFAULT '{}', max_attempts int DEFAULT 5) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lamin.job_kind k WHERE k.kind = enqueue.kind) THEN
        RAISE EXCEPTION 'unknown job kind %: known kinds are %', quote_literal(kind),
            (SELECT string_agg(k.kind, ', ' ORDER BY k.kind) FROM lamin.job_kind k)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Work asked of a standby (validate_artifact, stage, verify, …) says
    -- where it can be queued, instead of failing inside the INSERT.
    PERFORM lamin.refuse_read_only(format('queuing a %s job', kind));
    INSERT INTO lamin.job (kind, args, max_attempts) VALUES (kind, coalesce(args, '{}'), max_attempts)
    RETURNING id INTO job_id;
    RETURN job_id;
END
$$;
COMMENT ON FUNCTION lamin.enqueue(text, jsonb, int) IS 'Enqueue a job for the sidecar; returns its id. The sidecar is woken when the transaction commits.';

-- Sidecar side ------------------------------------------------------------

-- Claim up to n of the oldest ready jobs, taking over first those whose lease ran out.
-- A worker names the extension version it speaks: once ALTER EXTENSION lamin
-- UPDATE has moved the schema on under a running sidecar, its next claim fails
-- here, in the same statement, before it takes a job it might run wrongly.
CREATE FUNCTION lamin.claim_job(worker text, sidecar_version text, lease_s int DEFAULT 30, kinds text[] DEFAULT NULL,
                                n int DEFAULT 1)
RETURNS SETOF lamin.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    picked bigint[];
    installed text;
BEGIN
    SELECT e.extversion INTO installed FROM pg_extension e WHERE e.extname = 'lamin';
    IF sidecar_version IS DISTINCT FROM installed THEN
        RAISE EXCEPTION 'sidecar % speaks lamin %, but the database''s lamin extension is now %', worker,
            coalesce(sidecar_version, '(not said)'), installed
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('run a sidecar of release %s (it claims no job until then)', installed);
    END IF;
    -- Two index probes rather than one OR: jobs whose sidecar died first,
    -- then the oldest queued ones. SKIP LOCKED: concurrent claimers never wait
    -- for each other and never get the same job.
    picked := ARRAY(
        SELECT j.id FROM lamin.job j
        WHERE j.status = 'running' AND j.lease_until < now() AND (kinds IS NULL OR j.kind = ANY (kinds))
        ORDER BY j.lease_until
        LIMIT greatest(n, 1)
        FOR UPDATE SKIP LOCKED);
    IF cardinality(picked) < greatest(n, 1) THEN
        picked := picked || ARRAY(
            SELECT j.id FROM lamin.job j
            WHERE j.status = 'queued' AND j.run_after <= now() AND (kinds IS NULL OR j.kind = ANY (kinds))
            ORDER BY j.id
            LIMIT greatest(n, 1) - cardinality(picked)
            FOR UPDATE SKIP LOCKED);
    END IF;
    IF cardinality(picked) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE lamin.job j SET status = 'running', attempts = j.attempts + 1, worker = claim_job.worker,
                           lease_until = now() + make_interval(secs => lease_s), started_at = now(), updated_at = now(),
                           progress_done = NULL, progress_total = NULL, progress_stage = NULL
    WHERE j.id = ANY (picked)
    RETURNING j.*;
END
$$;
COMMENT ON FUNCTION lamin.claim_job(text, text, int, text[], int) IS 'Sidecar: claim up to n of the oldest ready jobs (FOR UPDATE SKIP LOCKED) with a lease, taking over running jobs whose lease expired first; refuses a worker whose version (sidecar_version) is not the installed extension''s.';

-- The signature of 0.1.0, whose sidecars do not say which release they speak:
-- they claim nothing from a newer schema.
CREATE FUNCTION lamin.claim_job(worker text, lease_s int DEFAULT 30, kinds text[] DEFAULT NULL, n int DEFAULT 1)
RETURNS SETOF lamin.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'worker % does not say which lamin release it speaks (a sidecar older than 0.2.0?), and the database''s lamin extension is %',
        worker, (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'lamin')
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'run a sidecar of that release; workers claim with lamin.claim_job(worker, sidecar_version, …)';
END
$$;
COMMENT ON FUNCTION lamin.claim_job(text, int, text[], int) IS 'Refuses workers that do not name the lamin release they speak (the claim_job of 0.1.0); claim with lamin.claim_job(worker, sidecar_version, …).';

-- Extend the lease and report progress; false when the job is no longer
-- this worker's (cancelled, or taken over after the lease ran out).
-- `attempt` (when given) pins the call to one attempt: a sidecar that took
-- its own job over after a stall must not keep the stalled attempt alive.
-- A stage starts its counts afresh: a heartbeat that names one sets done
-- and total as given, NULL included (a merge has no total).
CREATE FUNCTION lamin.heartbeat_job(job_id bigint, worker text, lease_s int DEFAULT 30,
                                    progress_done bigint DEFAULT NULL, progress_total bigint DEFAULT NULL,
                                    attempt int DEFAULT NULL, progress_stage text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE lamin.job j SET lease_until = now() + make_interval(secs => $3), updated_at = now(),
                           progress_done = CASE WHEN $7 IS NULL THEN coalesce($4, j.progress_done) ELSE $4 END,
                           progress_total = CASE WHEN $7 IS NULL THEN coalesce($5, j.progress_total) ELSE $5 END,
                           progress_stage = coalesce($7, j.progress_stage)
    WHERE j.id = $1 AND j.worker = $2 AND j.status = 'running' AND ($6 IS NULL OR j.attempts = $6);
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION lamin.heartbeat_job(bigint, text, int, bigint, bigint, int, text) IS 'Sidecar: extend a running job''s lease and record progress (and the stage it counts); false if the job is no longer this worker''s.';

CREATE FUNCTION lamin.complete_job(job_id bigint, worker text, result jsonb DEFAULT '{}', attempt int DEFAULT NULL) RETURNS boolean
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
COMMENT ON FUNCTION lamin.complete_job(bigint, text, jsonb, int) IS 'Sidecar: mark a job done with its result; false if it was not this worker''s running job.';

-- Several completions in one statement (a sidecar batches the jobs that
-- finished while its previous batch was being recorded). Returns the ids
-- that were this worker's running attempt and are now done.
-- The queue's functions are plpgsql, not sql: plpgsql keeps their plans for
-- the session, while an sql function with a SET clause is parsed and planned
-- again in every transaction (a third of a busy sidecar's database time).
CREATE FUNCTION lamin.complete_jobs(worker text, ids bigint[], attempts int[], results jsonb[]) RETURNS SETOF bigint
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
COMMENT ON FUNCTION lamin.complete_jobs(text, bigint[], int[], jsonb[]) IS 'Sidecar: mark several jobs done in one statement; returns the ids that were this worker''s running attempts.';

-- A failed attempt: queued again after 2^attempts seconds (at most 10 min),
-- or failed for good when attempts are used up or the error is permanent.
CREATE FUNCTION lamin.fail_job(job_id bigint, worker text, error text, permanent boolean DEFAULT false,
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
COMMENT ON FUNCTION lamin.fail_job(bigint, text, text, boolean, int) IS 'Sidecar: record a failed attempt; the job is retried with back-off, or failed when attempts are used up or the error is permanent. Returns the new status.';

-- A stopping sidecar hands its unfinished jobs back (attempts stay counted).
CREATE FUNCTION lamin.release_jobs(worker text) RETURNS int
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH released AS (
        UPDATE lamin.job j SET status = 'queued', lease_until = NULL, run_after = now(), updated_at = now()
        WHERE j.worker = $1 AND j.status = 'running'
        RETURNING 1)
    SELECT count(*)::int FROM released
$$;
COMMENT ON FUNCTION lamin.release_jobs(text) IS 'Sidecar: put this worker''s running jobs back in the queue (on shutdown).';

-- User side ----------------------------------------------------------------

CREATE FUNCTION lamin.cancel_job(job_id bigint) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
BEGIN
    UPDATE lamin.job j SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_until = NULL
    WHERE j.id = job_id AND j.status IN ('queued', 'running')
    RETURNING j.status INTO st;
    IF st IS NULL THEN
        SELECT j.status INTO st FROM lamin.job j WHERE j.id = job_id;
        IF st IS NULL THEN
            RAISE EXCEPTION 'no job %', job_id USING ERRCODE = 'no_data_found';
        END IF;
    END IF;
    RETURN st;
END
$$;
COMMENT ON FUNCTION lamin.cancel_job(bigint) IS 'Cancel a queued or running job (a running one stops at its next heartbeat); returns the job''s status.';

-- Wait for a job to finish. Each check is its own statement with a fresh
-- snapshot, and no lock is taken: the wait holds no row, no lock and no old
-- snapshot (call it outside an explicit transaction block to hold nothing at all).
CREATE FUNCTION lamin.await_job_outcome(job_id bigint, timeout_s int DEFAULT 60)
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
COMMENT ON FUNCTION lamin.await_job_outcome(bigint, int) IS 'Wait up to timeout_s seconds for a job to finish; returns its status (done, failed, cancelled, or still queued/running at the timeout), result and error in one row, never raising for a failed job.';

-- Wait for a job and return its status; a job that failed raises its error
-- (a psql script or a driver sees why at once). await_job_outcome returns
-- the status, result and error without raising.
CREATE FUNCTION lamin.await_job(job_id bigint, timeout_s int DEFAULT 60) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
BEGIN
    SELECT * INTO o FROM lamin.await_job_outcome(job_id, timeout_s);
    IF o.status = 'failed' THEN
        RAISE EXCEPTION 'job % (%) failed: %', job_id, (SELECT j.kind FROM lamin.job j WHERE j.id = job_id),
            coalesce(o.error, 'no error recorded')
            USING ERRCODE = 'external_routine_exception',
                  HINT = 'lamin.await_job_outcome(job_id) returns the status, result and error without raising; lamin.jobs lists the job';
    END IF;
    RETURN o.status;
END
$$;
COMMENT ON FUNCTION lamin.await_job(bigint, int) IS 'Wait up to timeout_s seconds for a job to finish; returns its status (done, cancelled, or still queued/running at the timeout) and raises the job''s error when it failed.';

CREATE VIEW lamin.jobs AS
SELECT j.id, j.kind, j.status, j.args, j.attempts, j.max_attempts,
       CASE WHEN j.progress_total > 0 THEN round(100.0 * j.progress_done / j.progress_total, 1) END AS progress_pct,
       j.progress_done, j.progress_total, j.error, j.result, j.worker, j.created_at, j.started_at, j.finished_at,
       j.requested_by, CASE WHEN j.status = 'running' THEN j.progress_stage END AS progress_stage
FROM lamin.job j
WHERE j.requested_by = current_user
   OR pg_has_role(current_user, 'pg_monitor', 'USAGE');
COMMENT ON VIEW lamin.jobs IS 'Your jobs (all jobs for pg_monitor members), with progress in percent.';
COMMENT ON COLUMN lamin.jobs.id IS 'Job id.';
COMMENT ON COLUMN lamin.jobs.kind IS 'Job kind.';
COMMENT ON COLUMN lamin.jobs.status IS 'queued, running, done, failed or cancelled.';
COMMENT ON COLUMN lamin.jobs.args IS 'Arguments.';
COMMENT ON COLUMN lamin.jobs.attempts IS 'Attempts so far.';
COMMENT ON COLUMN lamin.jobs.max_attempts IS 'Attempts allowed.';
COMMENT ON COLUMN lamin.jobs.progress_pct IS 'Percent done, when the total is known.';
COMMENT ON COLUMN lamin.jobs.progress_done IS 'Work done (bytes or rows).';
COMMENT ON COLUMN lamin.jobs.progress_total IS 'Total work.';
COMMENT ON COLUMN lamin.jobs.progress_stage IS 'What a running job is doing now (progress_pct counts this stage; none while a stage has no total).';
COMMENT ON COLUMN lamin.jobs.error IS 'Last error.';
COMMENT ON COLUMN lamin.jobs.result IS 'Result once done.';
COMMENT ON COLUMN lamin.jobs.worker IS 'The sidecar that ran it.';
COMMENT ON COLUMN lamin.jobs.created_at IS 'Enqueued at.';
COMMENT ON COLUMN lamin.jobs.started_at IS 'Last attempt started at.';
COMMENT ON COLUMN lamin.jobs.finished_at IS 'Finished at.';
COMMENT ON COLUMN lamin.jobs.requested_by IS 'Role that enqueued it.';

-- Imports as jobs: the sidecar reads the file from its import folder
-- (LAMIN_IMPORT_DIR), never from a path outside it.
CREATE FUNCTION lamin.import_ontology(entity text, file text, source text DEFAULT NULL, version text DEFAULT NULL,
                                      description text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM lamin.check_import_file(file);
    IF NOT EXISTS (SELECT 1 FROM bionty.ontology o WHERE o.entity = 'bionty.' || regexp_replace(import_ontology.entity, '^bionty\.', '')) THEN
        RAISE EXCEPTION 'unknown ontology registry %: known are %', quote_literal(entity),
            (SELECT string_agg(o.entity, ', ' ORDER BY o.entity) FROM bionty.ontology o)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN lamin.enqueue('import_ontology', jsonb_strip_nulls(jsonb_build_object(
        'entity', entity, 'file', file, 'source', source, 'version', version, 'description', description)), max_attempts => 1);
END
$$;
COMMENT ON FUNCTION lamin.import_ontology(text, text, text, text, text) IS
    'Enqueue an ontology import by the sidecar from a file in its import folder (a relative path); description: of the source (e.g. its license and attribution), as lamin import ontology --description; returns the job id.';

CREATE FUNCTION lamin.import_genes(organism text, files text[], source text DEFAULT 'ensembl', version text DEFAULT NULL,
                                   description text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text;
BEGIN
    IF files IS NULL OR cardinality(files) = 0 THEN
        RAISE EXCEPTION 'import_genes: no files given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF version IS NULL THEN
        RAISE EXCEPTION 'import_genes: the source version must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH f IN ARRAY files LOOP
        PERFORM lamin.check_import_file(f);
    END LOOP;
    RETURN lamin.enqueue('import_genes', jsonb_build_object(
        'organism', organism, 'files', to_jsonb(files), 'source', source, 'version', version, 'description', description), max_attempts => 1);
END
$$;
COMMENT ON FUNCTION lamin.import_genes(text, text[], text, text, text) IS
    'Enqueue a gene import by the sidecar from files in its import folder; description: of the source, as lamin import genes --description; returns the job id.';

-- Import file names are relative paths inside the sidecar's import folder.
CREATE FUNCTION lamin.check_import_file(file text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF file IS NULL OR file = '' OR file ~ '^/' OR file ~ '(^|/)\.\.(/|$)' OR file ~ '[\x01-\x1f\\]' THEN
        RAISE EXCEPTION 'import file % must be a relative path inside the sidecar''s import folder (no leading /, no ..)',
            coalesce(quote_literal(file), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.check_import_file(text) IS 'Refuse import file names that could leave the sidecar''s import folder.';
