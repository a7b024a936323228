-- lamin 0.1.0 → 0.2.0: the version handshake between extension, sidecar and CLI.
-- Run by ALTER EXTENSION lamin UPDATE, in one transaction with the rest of the
-- update (all or nothing). Nothing here rewrites a table.
\echo Use "ALTER EXTENSION lamin UPDATE TO '0.2.0'" to load this file. \quit

-- lamin.version() reports the installed SQL version (it read the library's
-- before, which runs ahead of the SQL until this update has run).
CREATE OR REPLACE FUNCTION lamin."version"() RETURNS TEXT
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'version_wrapper';

CREATE FUNCTION lamin."library_version"() RETURNS TEXT
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'library_version_wrapper';

COMMENT ON FUNCTION lamin.version() IS 'The installed version of lamin''s SQL objects (pg_extension.extversion). The sidecar and the CLI refuse a version they do not speak; lamin status shows it.';
COMMENT ON FUNCTION lamin.library_version() IS 'The version of the lamin shared library this session has loaded: ahead of version() while ALTER EXTENSION lamin UPDATE is pending.';

-- claim_job takes the sidecar's version and refuses a sidecar that does not
-- speak the installed schema. A new parameter means a new signature: drop the
-- old one (nothing else in the extension depends on it).
DROP FUNCTION lamin.claim_job(text, int, text[], int);

-- Claim up to n of the oldest ready jobs, taking over first those whose lease ran out.
-- A sidecar passes the extension version it speaks: once ALTER EXTENSION lamin
-- UPDATE has moved the schema on under a running sidecar, its next claim fails
-- here, in the same statement, before it takes a job it might run wrongly.
CREATE FUNCTION lamin.claim_job(worker text, lease_s int DEFAULT 30, kinds text[] DEFAULT NULL, n int DEFAULT 1,
                                sidecar_version text DEFAULT NULL)
RETURNS SETOF lamin.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    picked bigint[];
    installed text;
BEGIN
    IF sidecar_version IS NOT NULL THEN
        SELECT e.extversion INTO installed FROM pg_extension e WHERE e.extname = 'lamin';
        IF installed IS DISTINCT FROM sidecar_version THEN
            RAISE EXCEPTION 'sidecar % speaks lamin %, but the database''s lamin extension is now %', worker, sidecar_version, installed
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('run a sidecar of release %s (it claims no job until then)', installed);
        END IF;
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
                           progress_done = NULL, progress_total = NULL
    WHERE j.id = ANY (picked)
    RETURNING j.*;
END
$$;
COMMENT ON FUNCTION lamin.claim_job(text, int, text[], int, text) IS 'Sidecar: claim up to n of the oldest ready jobs (FOR UPDATE SKIP LOCKED) with a lease, taking over running jobs whose lease expired first; refuses a sidecar whose version (sidecar_version) is not the installed extension''s.';
