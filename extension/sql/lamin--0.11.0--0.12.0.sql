\echo Use "ALTER EXTENSION lamin UPDATE TO '0.12.0'" to load this file. \quit
-- lamin 0.11.0 → 0.12.0. Run by ALTER EXTENSION lamin UPDATE in one
-- transaction (all or nothing). Definitions are copied verbatim from sql/
-- (the upgrade test compares the result with a fresh install object by
-- object).

-- == issue 21: read replicas — what needs a write says so on a standby (sql/08_save.sql, sql/31_instances.sql) ==
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
CREATE OR REPLACE FUNCTION lamin.get(uid text) RETURNS lamin.artifact
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

CREATE OR REPLACE FUNCTION lamin.get_collection(uid text) RETURNS lamin.collection
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

CREATE OR REPLACE FUNCTION lamin.instance() RETURNS lamin.instance
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me lamin.instance;
BEGIN
    SELECT * INTO me FROM lamin.instance;
    IF NOT FOUND THEN
        -- (A standby cannot make it: its uid must be the primary's.)
        PERFORM lamin.refuse_read_only('giving this instance its identity (its first lamin.instance() call)');
        INSERT INTO lamin.instance (name)
        VALUES (CASE WHEN current_database() ~ '^[a-z][a-z0-9_]{0,62}$' THEN current_database() ELSE 'instance' END)
        ON CONFLICT (one) DO NOTHING;
        SELECT * INTO me FROM lamin.instance;
    END IF;
    RETURN me;
END
$$;

-- == issue 21: a job asked of a standby says where it can be queued (sql/18_jobs.sql) ==
CREATE OR REPLACE FUNCTION lamin.enqueue(kind text, args jsonb DEFAULT '{}', max_attempts int DEFAULT 5) RETURNS bigint
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
