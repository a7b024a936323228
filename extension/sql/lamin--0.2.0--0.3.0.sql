-- lamin 0.2.0 → 0.3.0: security and integrity hardening. Jobs that act on
-- storage as the sidecar are lamin's own; users cancel their jobs and change
-- nothing else of them; the sidecar never acts as an instance role; grants
-- name existing roles; audit rows are written by lamin only; links need read
-- on both ends; fields the system owns are set by it; delete/restore say when
-- they did nothing; duplicate names are refused under concurrency. Run by
-- ALTER EXTENSION lamin UPDATE in one transaction (all or nothing); it
-- rewrites no table. Definitions are copied verbatim from sql/ (the upgrade
-- test compares the result with a fresh install object by object).
\echo Use "ALTER EXTENSION lamin UPDATE TO '0.3.0'" to load this file. \quit

-- Keys now refuse control and text-direction characters and blanks around a
-- path segment (lamin.check_key, in the CHECK constraints of artifact,
-- collection and transform keys). A key stored under 0.2.0 that breaks these
-- rules would make its record impossible to update: the update stops first,
-- naming them, and changes nothing.
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(format('%s %s (key %L)', k.registry, k.uid, left(k.key, 80)), '; ') INTO bad
    FROM (SELECT 'artifact' AS registry, a.uid, a.key FROM lamin.artifact a
          UNION ALL SELECT 'collection', c.uid, c.key FROM lamin.collection c
          UNION ALL SELECT 'transform', t.uid, t.key FROM lamin.transform t) k
    WHERE k.key ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\ufeff\u202a-\u202e\u2066-\u2069]'
       OR k.key ~ '(^|/)[[:space:]]|[[:space:]]($|/)';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'lamin 0.3.0 refuses these keys (control or text-direction characters, or a blank around a path segment): %', bad
            USING ERRCODE = 'check_violation',
                  HINT = 'rename them under 0.2.0 first (UPDATE … SET key = …), then run ALTER EXTENSION lamin UPDATE again';
    END IF;
END
$$;

-- Jobs ---------------------------------------------------------------------

ALTER TABLE lamin.job_kind ADD COLUMN internal boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN lamin.job_kind.internal IS 'Enqueued by lamin itself only (never by users): the job acts as the sidecar, not as a requester.';
UPDATE lamin.job_kind SET internal = true WHERE kind IN ('delete_object', 'sweep_storage');

CREATE OR REPLACE FUNCTION lamin.tg_job_check_kind() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k record;
BEGIN
    IF pg_column_size(NEW.args) > 1048576 THEN
        RAISE EXCEPTION 'job arguments of % bytes: at most 1 MB (pass names of files or records, not data)',
            pg_column_size(NEW.args) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT x.needs_role, x.internal INTO k FROM lamin.job_kind x WHERE x.kind = NEW.kind;
    -- Unrestricted here means lamin's own SECURITY DEFINER code (or a superuser).
    IF k.internal AND NOT lamin.is_unrestricted() THEN
        RAISE EXCEPTION 'permission denied: jobs of kind % are enqueued by lamin itself, not by users', NEW.kind
            USING ERRCODE = 'insufficient_privilege',
                  HINT = CASE NEW.kind WHEN 'sweep_storage' THEN 'call lamin.sweep_storage() (needs lamin_admin)'
                         ELSE 'delete the artifact with lamin.delete(uid, true): its bytes follow once the delete commits' END;
    END IF;
    IF NOT (pg_has_role(k.needs_role, 'USAGE') OR lamin.is_unrestricted()) THEN
        RAISE EXCEPTION 'permission denied: jobs of kind % need role %', NEW.kind, k.needs_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The sidecar acts as personal roles only, never as a shared instance role.
    IF NEW.requested_by IN ('lamin_reader', 'lamin_writer', 'lamin_admin') THEN
        RAISE EXCEPTION 'permission denied: jobs are enqueued by a person''s role, not by %', NEW.requested_by
            USING ERRCODE = 'insufficient_privilege', HINT = 'RESET ROLE first';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION lamin.tg_job_let_sidecar_act() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles r WHERE r.rolname = NEW.requested_by)
       AND NOT pg_has_role('lamin_sidecar', NEW.requested_by, 'MEMBER') THEN
        PERFORM lamin.let_sidecar_act_as(NEW.requested_by);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_let_sidecar_act AFTER INSERT ON lamin.job FOR EACH ROW EXECUTE FUNCTION lamin.tg_job_let_sidecar_act();
REVOKE EXECUTE ON FUNCTION lamin.tg_job_let_sidecar_act() FROM PUBLIC;

CREATE FUNCTION lamin.tg_job_user_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lamin.is_unrestricted() THEN
        RETURN NEW;
    END IF;
    IF NOT (NEW.status = 'cancelled' AND OLD.status IN ('queued', 'running')) THEN
        RAISE EXCEPTION 'permission denied: a job''s requester may only cancel it (job % is %)', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege', HINT = 'use lamin.cancel_job(id)';
    END IF;
    NEW.finished_at := now();
    NEW.updated_at := now();
    NEW.lease_until := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER job_user_update BEFORE UPDATE ON lamin.job FOR EACH ROW WHEN (current_user <> 'lamin_sidecar')
EXECUTE FUNCTION lamin.tg_job_user_update();

-- Users name what to do; the rest of a job row is the queue's.
REVOKE INSERT, UPDATE ON lamin.job FROM lamin_reader;
GRANT INSERT (kind, args, max_attempts) ON lamin.job TO lamin_reader;
GRANT UPDATE (status, finished_at, updated_at, lease_until) ON lamin.job TO lamin_reader;
REVOKE INSERT ON lamin.job FROM lamin_sidecar;
GRANT INSERT (kind, args, max_attempts) ON lamin.job TO lamin_sidecar;
CREATE POLICY job_monitor ON lamin.job FOR SELECT TO pg_monitor USING (true);
CREATE POLICY job_internal ON lamin.job FOR SELECT TO lamin_admin USING (requested_by = 'lamin_sidecar');
GRANT USAGE ON SCHEMA lamin TO pg_monitor;
GRANT SELECT ON lamin.job TO pg_monitor;
GRANT SELECT ON lamin.jobs TO pg_monitor;

CREATE OR REPLACE FUNCTION lamin.let_sidecar_act_as(role_name name) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM pg_roles x WHERE x.rolname = role_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no role named %', quote_ident(role_name) USING ERRCODE = 'undefined_object';
    END IF;
    -- Never the instance roles themselves (lamin_admin would make every
    -- space reachable from a sidecar connection), nor roles above the rules.
    IF r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR role_name LIKE 'pg\_%'
       OR role_name IN ('lamin_sidecar', 'lamin_reader', 'lamin_writer', 'lamin_admin')
       OR NOT pg_has_role(role_name, 'lamin_reader', 'MEMBER') THEN
        RETURN;  -- not an ordinary lamin role: the sidecar does not act as it
    END IF;
    IF NOT pg_has_role('lamin_sidecar', role_name, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO lamin_sidecar', role_name);
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION lamin.let_sidecar_act_as(name) FROM lamin_reader;
COMMENT ON FUNCTION lamin.let_sidecar_act_as(name) IS 'Let the sidecar run jobs as this (ordinary, personal) role; called when the role enqueues a job (not executable by users).';
-- An instance role the sidecar was let act as by 0.2.0 (any reader could ask).
DO $$
DECLARE
    r name;
BEGIN
    FOREACH r IN ARRAY ARRAY['lamin_admin', 'lamin_writer', 'lamin_reader']::name[] LOOP
        IF EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid = r::regrole AND m.member = 'lamin_sidecar'::regrole) THEN
            EXECUTE format('REVOKE %I FROM lamin_sidecar', r);
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION lamin.grant(space text, role_name name, level text DEFAULT 'read') RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    sid bigint := lamin.space_id(space);
BEGIN
    IF level IS NULL OR level NOT IN ('read', 'write', 'admin') THEN
        RAISE EXCEPTION 'invalid level %: expected read, write or admin', coalesce(quote_literal(left(level, 40)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'no role named %', coalesce(quote_ident(role_name), 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'create it first: CREATE ROLE … LOGIN IN ROLE lamin_reader';
    END IF;
    IF NOT pg_has_role(role_name, 'lamin_reader', 'MEMBER') THEN
        RAISE EXCEPTION 'role % is not a lamin role', quote_ident(role_name)
            USING ERRCODE = 'invalid_parameter_value', HINT = format('GRANT lamin_reader TO %I first', role_name);
    END IF;
    IF NOT lamin.has_space_level(sid, 'admin') THEN
        RAISE EXCEPTION 'permission denied: granting in space % needs admin on it', space USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO lamin.space_access AS a (space_id, role_name, level) VALUES (sid, role_name, level)
    ON CONFLICT ON CONSTRAINT space_access_pkey DO UPDATE SET level = excluded.level, granted_by = current_user, granted_at = now();
    RETURN level;
END
$$;

-- Storage jobs: the bytes of a committed delete and sweeps are internal jobs.
CREATE OR REPLACE FUNCTION lamin.tg_artifact_delete_object() RETURNS trigger
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
REVOKE EXECUTE ON FUNCTION lamin.tg_artifact_delete_object() FROM PUBLIC;

CREATE OR REPLACE FUNCTION lamin.sweep_storage(storage text DEFAULT NULL, grace_s int DEFAULT 3600) RETURNS SETOF bigint
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
    FOR s IN SELECT x.id FROM lamin.storage x
             WHERE storage IS NULL OR x.id = lamin.storage_id(storage) ORDER BY x.id
    LOOP
        RETURN NEXT lamin.enqueue_sweep(s.id, grace_s);
    END LOOP;
END
$$;

COMMENT ON FUNCTION lamin.sweep_storage(text, int) IS
    'Enqueue a sweep of a storage (NULL: all; needs lamin_admin): stale pending uploads are recovered or failed, orphan objects older than grace_s removed. Returns job ids.';

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
GRANT EXECUTE ON FUNCTION lamin.enqueue_sweep(bigint, int) TO lamin_admin, lamin_sidecar;

-- Jobs of 0.2.0 still queued: internal ones become the sidecar's and name their
-- storage (0.3.0 sidecars take the root from the storage's row, not from args).
UPDATE lamin.job j
SET requested_by = 'lamin_sidecar',
    args = (j.args - 'root') || coalesce((SELECT jsonb_build_object('storage_id', s.id) FROM lamin.storage s WHERE s.root = j.args ->> 'root'), '{}')
WHERE j.kind IN ('delete_object', 'sweep_storage') AND j.status IN ('queued', 'running');

-- Spaces and grants -----------------------------------------------------------

CREATE OR REPLACE FUNCTION lamin.spaces_at(min_level text) RETURNS bigint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(DISTINCT s), '{}') FROM (
        -- Through pg_roles: a grant to a role that was dropped since is
        -- ignored (pg_has_role would fail on the missing name, for everyone).
        SELECT a.space_id AS s FROM lamin.space_access a JOIN pg_roles r ON r.rolname = a.role_name
        WHERE pg_has_role(r.oid, 'USAGE')
          AND array_position(ARRAY['read', 'write', 'admin'], a.level) >= array_position(ARRAY['read', 'write', 'admin'], min_level)
        UNION ALL
        SELECT 1 WHERE pg_has_role(CASE min_level WHEN 'read' THEN 'lamin_reader' WHEN 'write' THEN 'lamin_writer'
                                                  ELSE 'lamin_admin' END, 'USAGE')
    ) g
$$;

CREATE FUNCTION lamin.tg_space_access_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A superuser's restore may bring grants of roles this cluster lacks: kept, and ignored.
    IF lamin.is_unrestricted() THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = NEW.role_name) THEN
        RAISE EXCEPTION 'no role named %', coalesce(quote_ident(NEW.role_name), 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'create it first: CREATE ROLE … LOGIN IN ROLE lamin_reader';
    END IF;
    IF NOT pg_has_role(NEW.role_name, 'lamin_reader', 'MEMBER') THEN
        RAISE EXCEPTION 'role % is not a lamin role', quote_ident(NEW.role_name)
            USING ERRCODE = 'invalid_parameter_value', HINT = format('GRANT lamin_reader TO %I first', NEW.role_name);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER space_access_check BEFORE INSERT OR UPDATE OF role_name ON lamin.space_access
FOR EACH ROW EXECUTE FUNCTION lamin.tg_space_access_check();

-- Audit ------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION lamin.tg_audit_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Rows come from lamin.tg_audit, which runs as lamin's owner (SECURITY
    -- DEFINER); no other role may insert (no privilege either), whatever the
    -- nesting of triggers it tries.
    IF TG_OP = 'INSERT' THEN
        IF NOT coalesce(lamin.is_unrestricted(), false) THEN
            RAISE EXCEPTION 'lamin.audit is written by lamin''s triggers only' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'lamin.audit is append-only: % is refused', lower(TG_OP) USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION lamin.acting_role() RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN current_setting('role') IN ('none', 'lamin_reader', 'lamin_writer', 'lamin_admin') THEN session_user
                ELSE current_setting('role') END::name
$$;
COMMENT ON FUNCTION lamin.acting_role() IS 'The role the session acts as (SET ROLE, else the login), also inside SECURITY DEFINER functions.';

CREATE FUNCTION lamin.is_restoring() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT current_setting('application_name') = 'pg_restore'
       AND coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = lamin.acting_role()), false)
$$;
COMMENT ON FUNCTION lamin.is_restoring() IS 'Whether this session is a superuser''s pg_restore (which reloads audit rows and records as they were).';

CREATE FUNCTION lamin.audit_in_summary() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(current_setting('lamin.audit_summary', true), '') = 'on'
       AND (session_user = 'lamin_sidecar'
            OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = lamin.acting_role()), false))
$$;
COMMENT ON FUNCTION lamin.audit_in_summary() IS 'Whether this statement''s audit rows are summarised: a bulk import run by the sidecar or a superuser.';

CREATE OR REPLACE FUNCTION lamin.tg_audit() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
               ARRAY(SELECT k FROM jsonb_each(j) e(k, v) WHERE v <> 'null' ORDER BY k)
        FROM (SELECT to_jsonb(n) AS j FROM new_rows n) x;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id, fields)
        SELECT who, reg, op, (nj ->> 'id')::bigint, nj ->> 'uid',
               CASE WHEN own_space THEN (nj ->> 'id')::bigint ELSE coalesce((nj ->> 'space_id')::bigint, 1) END,
               ARRAY(SELECT k FROM jsonb_each(nj) e(k, v) WHERE v IS DISTINCT FROM oj -> k AND k <> 'updated_at' ORDER BY k)
        FROM (SELECT to_jsonb(n) AS nj FROM new_rows n) n
        JOIN (SELECT to_jsonb(o) AS oj FROM old_rows o) o ON o.oj -> 'id' = n.nj -> 'id';
    ELSE
        INSERT INTO lamin.audit (role_name, registry, operation, record_id, uid, space_id)
        SELECT who, reg, op, (j ->> 'id')::bigint, j ->> 'uid',
               CASE WHEN own_space THEN (j ->> 'id')::bigint ELSE coalesce((j ->> 'space_id')::bigint, 1) END
        FROM (SELECT to_jsonb(o) AS j FROM old_rows o) x;
    END IF;
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION lamin.tg_audit() FROM PUBLIC;
REVOKE INSERT ON lamin.audit FROM lamin_reader, lamin_sidecar;
DROP POLICY audit_write ON lamin.audit;

-- Fields the system owns ---------------------------------------------------------

-- uids that users insert are ones lamin handed out to their session.
CREATE OR REPLACE FUNCTION lamin."uid"(
	"len" INT
) RETURNS TEXT
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'uid_wrapper';

CREATE FUNCTION lamin."uid_was_issued"(
	"uid" TEXT
) RETURNS bool
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'uid_was_issued_wrapper';

CREATE FUNCTION lamin.uid_is_fresh(registry regclass, uid text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    stem_len int := CASE registry WHEN 'lamin.artifact'::regclass THEN 16 WHEN 'lamin.collection'::regclass THEN 16
                                  WHEN 'lamin.transform'::regclass THEN 12 END;
    family boolean;
BEGIN
    IF uid IS NULL OR lamin.uid_was_issued(uid) THEN
        RETURN true;
    END IF;
    IF stem_len IS NULL OR length(uid) <> stem_len + 4 THEN
        RETURN false;
    END IF;
    IF lamin.uid_was_issued(left(uid, stem_len)) THEN
        RETURN true;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s x WHERE x.stem = $1)', registry) INTO family USING left(uid, stem_len);
    RETURN family;
END
$$;
COMMENT ON FUNCTION lamin.uid_is_fresh(regclass, text) IS 'Whether a user may insert a record with this uid: handed out by lamin.uid in this session, or a new version of a family the user can read.';


CREATE FUNCTION lamin.tg_uid_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lamin.is_unrestricted() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'record % of %: a uid never changes', OLD.uid, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF lamin.uid_is_fresh(TG_RELID, NEW.uid) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'record % of %: uids are handed out by lamin (leave uid out, or take one from lamin.uid(%))',
        NEW.uid, TG_TABLE_NAME, length(NEW.uid)
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'a new version of a family takes lamin.next_version_uid(registry, stem)';
END
$$;

CREATE FUNCTION lamin.tg_system_fields() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    me bigint;
BEGIN
    IF lamin.is_unrestricted() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        me := lamin.current_user_id();
        SELECT n.uid, n.created_by IS DISTINCT FROM me OR n.created_at IS DISTINCT FROM now() AS forged,
               n.is_locked AS locked
        INTO bad FROM new_rows n
        WHERE n.created_by IS DISTINCT FROM me OR n.created_at IS DISTINCT FROM now()
           OR (n.is_locked AND NOT lamin.has_space_level(n.space_id, 'admin'))
        LIMIT 1;

    ELSE
        SELECT n.uid, true AS forged, false AS locked INTO bad
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.created_by IS DISTINCT FROM o.created_by OR n.created_at IS DISTINCT FROM o.created_at
        LIMIT 1;
    END IF;
    IF bad.forged THEN
        RAISE EXCEPTION 'record % of %: created_by and created_at are set by lamin, not by users', bad.uid, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = 'leave these columns out';
    ELSIF bad.locked THEN
        RAISE EXCEPTION 'record % of %: only admins of its space may lock it', bad.uid, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION lamin.tg_artifact_content_fixed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lamin.is_unrestricted() THEN
        RETURN NEW;
    END IF;
    -- A record this very transaction made is still being made (begin_upload
    -- registers new content, then marks it pending for its upload).
    IF EXISTS (SELECT FROM lamin.artifact a WHERE a.id = OLD.id AND a.xmin = xid(pg_current_xact_id())) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'artifact % is %: its hash, size, file count and status are fixed (save new content as a new version)',
        OLD.uid, OLD.status USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER artifact_content_fixed BEFORE UPDATE OF hash, size, n_files, hash_type, status ON lamin.artifact
FOR EACH ROW WHEN (OLD.status IN ('ready', 'corrupt')
                   AND ((NEW.hash, NEW.size, NEW.n_files, NEW.hash_type) IS DISTINCT FROM (OLD.hash, OLD.size, OLD.n_files, OLD.hash_type)
                        OR NEW.status NOT IN ('ready', 'corrupt')))
EXECUTE FUNCTION lamin.tg_artifact_content_fixed();

-- Search words carry their term's space (row-level security reads it from
-- the word itself). The words of records outside space "all" get it here;
-- the indexes include it, for index-only scans under row-level security.
ALTER TABLE lamin.search_word ADD COLUMN space_id bigint NOT NULL DEFAULT 1;
COMMENT ON COLUMN lamin.search_word.space_id IS 'Space of the term''s record: who may read the word.';
UPDATE lamin.search_word w SET space_id = t.space_id FROM lamin.search_term t WHERE t.id = w.term_id AND t.space_id <> 1;
DROP INDEX lamin.search_word_lookup;
CREATE INDEX search_word_lookup ON lamin.search_word (registry, word, term_len, term_id) INCLUDE (space_id);
DROP INDEX lamin.search_word_term;
CREATE INDEX search_word_term ON lamin.search_word (term_id, word) INCLUDE (space_id);

-- Row-level security: links need read on both ends, shared records with a
-- space go where their writer may write, system fields (re-applied to every table).
CREATE OR REPLACE FUNCTION lamin.secure_table(tbl regclass, kind text, audited boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner_table text;
    owner_column text;
    -- "the row's space is one the role may read / write", evaluated once per statement.
    readable text := '(space_id = ANY ((SELECT lamin.readable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()))';
    writable text := '(space_id = ANY ((SELECT lamin.writable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()))';
    ends text := '';
    p record;
BEGIN
    IF tbl IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'secure_table needs a table and a kind' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    FOR p IN SELECT polname FROM pg_policy WHERE polrelid = tbl LOOP
        EXECUTE format('DROP POLICY %I ON %s', p.polname, tbl);
    END LOOP;
    EXECUTE format('GRANT SELECT ON %s TO lamin_reader', tbl);
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO lamin_reader', tbl);
    IF kind = 'space' THEN
        EXECUTE format('CREATE POLICY space_read ON %s FOR SELECT USING %s', tbl, readable);
        EXECUTE format('CREATE POLICY space_insert ON %s FOR INSERT WITH CHECK %s', tbl, writable);
        EXECUTE format('CREATE POLICY space_update ON %s FOR UPDATE USING %s WITH CHECK %s', tbl, writable, writable);
        EXECUTE format('CREATE POLICY space_delete ON %s FOR DELETE USING %s', tbl, writable);
    ELSIF kind = 'shared' THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s FROM lamin_reader', tbl);
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO lamin_writer', tbl);
        -- Every lamin role reads; a record with a space goes only where its
        -- writer may write (it would show up in that space's search).
        EXECUTE format('CREATE POLICY shared_all ON %s USING (true) WITH CHECK (%s)', tbl,
                       CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'space_id' AND NOT a.attisdropped)
                            THEN writable ELSE 'true' END);
    ELSIF kind LIKE 'link:%' THEN
        owner_table := split_part(split_part(substr(kind, 6), '|', 1), ':', 1);
        owner_column := split_part(split_part(substr(kind, 6), '|', 1), ':', 2);
        -- The other ends ('|table:column' each) must be readable to be linked
        -- to: nobody links to (and so pins) a record they cannot see.
        FOR p IN SELECT split_part(e, ':', 1)::regclass AS t, split_part(e, ':', 2) AS c
                 FROM unnest((string_to_array(substr(kind, 6), '|'))[2:]) e
        LOOP
            ends := ends || format(' AND (%2$I IS NULL OR EXISTS (SELECT FROM %1$s e WHERE e.id = %2$I))', p.t, p.c);
        END LOOP;
        EXECUTE format('CREATE POLICY link_read ON %s FOR SELECT USING (EXISTS (SELECT FROM %s o WHERE o.id = %I))',
                       tbl, owner_table::regclass, owner_column);
        EXECUTE format('CREATE POLICY link_write ON %s FOR ALL USING (EXISTS (SELECT FROM %s o WHERE o.id = %I AND %s))
                        WITH CHECK (EXISTS (SELECT FROM %s o WHERE o.id = %I AND %s)%s)',
                       tbl, owner_table::regclass, owner_column, replace(writable, 'space_id', 'o.space_id'),
                       owner_table::regclass, owner_column, replace(writable, 'space_id', 'o.space_id'), ends);
    ELSE
        RAISE EXCEPTION 'secure_table: unknown kind %', kind;
    END IF;
    IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'is_locked' AND NOT a.attisdropped) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS check_lock ON %s', tbl);
        EXECUTE format('CREATE TRIGGER check_lock BEFORE UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION lamin.tg_check_lock()', tbl);
    END IF;
    IF (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = tbl AND NOT a.attisdropped
        AND a.attname IN ('created_by', 'created_at', 'is_locked', 'space_id', 'uid')) = 5 THEN
        EXECUTE format('DROP TRIGGER IF EXISTS system_fields_insert ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS system_fields_update ON %s', tbl);
        EXECUTE format('CREATE TRIGGER system_fields_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_system_fields()', tbl);
        EXECUTE format('CREATE TRIGGER system_fields_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_system_fields()', tbl);
    END IF;
    IF kind = 'space' AND audited AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'uid' AND NOT a.attisdropped) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS uid_check ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS uid_fixed ON %s', tbl);
        EXECUTE format('CREATE TRIGGER uid_check BEFORE INSERT ON %s FOR EACH ROW WHEN (NOT lamin.uid_was_issued(NEW.uid))
                        EXECUTE FUNCTION lamin.tg_uid_check()', tbl);
        EXECUTE format('CREATE TRIGGER uid_fixed BEFORE UPDATE OF uid ON %s FOR EACH ROW WHEN (NEW.uid IS DISTINCT FROM OLD.uid)
                        EXECUTE FUNCTION lamin.tg_uid_check()', tbl);
    END IF;
    IF audited THEN
        EXECUTE format('DROP TRIGGER IF EXISTS audit_insert ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_update ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_delete ON %s', tbl);
        EXECUTE format('CREATE TRIGGER audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()', tbl);
        EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()', tbl);
        EXECUTE format('CREATE TRIGGER audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()', tbl);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION lamin.secure_all() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    name text;
BEGIN
    GRANT USAGE ON SCHEMA lamin TO lamin_reader, lamin_sidecar;
    GRANT USAGE ON SCHEMA bionty TO lamin_reader, lamin_sidecar;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA lamin TO lamin_reader;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA bionty TO lamin_reader;
    -- Records of spaces.
    FOREACH name IN ARRAY ARRAY['lamin.artifact', 'lamin.collection', 'lamin.transform', 'lamin.run', 'lamin.feature',
                                'lamin.schema', 'lamin.ulabel'] LOOP
        PERFORM lamin.secure_table(name::regclass, 'space', true);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN space_id SET DEFAULT lamin.current_space_id()', name::regclass);
    END LOOP;
    PERFORM lamin.secure_table('lamin.search_term', 'space');
    -- Storage roots: readable with their space, managed by instance admins.
    PERFORM lamin.secure_table('lamin.storage', 'space', true);
    REVOKE INSERT, UPDATE, DELETE ON lamin.storage FROM lamin_reader;
    GRANT INSERT, UPDATE, DELETE ON lamin.storage TO lamin_admin;
    -- Links, visible and written with their owner.
    PERFORM lamin.secure_table('lamin.artifact_ulabel', 'link:lamin.artifact:artifact_id|lamin.ulabel:ulabel_id|lamin.feature:feature_id');
    PERFORM lamin.secure_table('lamin.artifact_feature_value', 'link:lamin.artifact:artifact_id|lamin.feature:feature_id');
    PERFORM lamin.secure_table('lamin.artifact_schema', 'link:lamin.artifact:artifact_id|lamin.schema:schema_id');
    PERFORM lamin.secure_table('lamin.collection_artifact', 'link:lamin.collection:collection_id|lamin.artifact:artifact_id');
    PERFORM lamin.secure_table('lamin.run_input_artifact', 'link:lamin.run:run_id|lamin.artifact:artifact_id');
    PERFORM lamin.secure_table('lamin.run_input_collection', 'link:lamin.run:run_id|lamin.collection:collection_id');
    PERFORM lamin.secure_table('lamin.artifact_recreating_run', 'link:lamin.run:run_id|lamin.artifact:artifact_id');
    PERFORM lamin.secure_table('lamin.collection_recreating_run', 'link:lamin.run:run_id|lamin.collection:collection_id');
    PERFORM lamin.secure_table('lamin.schema_feature', 'link:lamin.schema:schema_id|lamin.feature:feature_id');
    PERFORM lamin.secure_table('lamin.ulabel_parent', 'link:lamin.ulabel:ulabel_id|lamin.ulabel:parent_id');
    -- Ontologies and reference tables: every lamin role reads, writers write.
    FOR t IN SELECT c.oid::regclass::text AS relname,
                    EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'uid' AND NOT a.attisdropped) AS registry
             FROM pg_class c WHERE c.relnamespace = 'bionty'::regnamespace AND c.relkind = 'r' AND c.relname !~ '^artifact_'
    LOOP
        PERFORM lamin.secure_table(t.relname::regclass, 'shared', t.registry);
    END LOOP;
    FOR t IN SELECT c.oid::regclass::text AS relname FROM pg_class c
             WHERE c.relnamespace = 'bionty'::regnamespace AND c.relkind = 'r' AND c.relname ~ '^artifact_'
    LOOP
        PERFORM lamin.secure_table(t.relname::regclass, 'link:lamin.artifact:artifact_id');
    END LOOP;
    -- The search index is kept by SECURITY DEFINER triggers: roles only read it.
    PERFORM lamin.secure_table('lamin.search_word', 'shared');
    PERFORM lamin.secure_table('lamin.search_vocab', 'shared');
    REVOKE INSERT, UPDATE, DELETE ON lamin.search_term, lamin.search_word, lamin.search_vocab FROM lamin_reader, lamin_writer;
    -- A term's words are seen with the term (its space, copied onto each
    -- word); the vocabulary (every word of every space) by no role: spelling
    -- correction asks lamin.search_closest_word, which answers with words the
    -- caller may read.
    DROP POLICY shared_all ON lamin.search_word;
    CREATE POLICY word_read ON lamin.search_word FOR SELECT
        USING (space_id = ANY ((SELECT lamin.readable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));
    REVOKE SELECT ON lamin.search_vocab FROM lamin_reader;
    PERFORM lamin.secure_table('lamin.registry', 'shared');
    REVOKE INSERT, UPDATE, DELETE ON lamin.registry FROM lamin_writer;
    GRANT SELECT ON lamin.branch, lamin.job_kind TO lamin_reader, lamin_sidecar;
END
$$;

-- What lamin.secure_all does to the tables (its grants on schemas and
-- sequences are unchanged; re-running them would grant sequences made after
-- it in a fresh install), then lamin.curation, secured after it.
DO $$
DECLARE
    t record;
    name text;
BEGIN
    -- Records of spaces.
    FOREACH name IN ARRAY ARRAY['lamin.artifact', 'lamin.collection', 'lamin.transform', 'lamin.run', 'lamin.feature',
                                'lamin.schema', 'lamin.ulabel'] LOOP
        PERFORM lamin.secure_table(name::regclass, 'space', true);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN space_id SET DEFAULT lamin.current_space_id()', name::regclass);
    END LOOP;
    PERFORM lamin.secure_table('lamin.search_term', 'space');
    -- Storage roots: readable with their space, managed by instance admins.
    PERFORM lamin.secure_table('lamin.storage', 'space', true);
    REVOKE INSERT, UPDATE, DELETE ON lamin.storage FROM lamin_reader;
    GRANT INSERT, UPDATE, DELETE ON lamin.storage TO lamin_admin;
    -- Links, visible and written with their owner.
    PERFORM lamin.secure_table('lamin.artifact_ulabel', 'link:lamin.artifact:artifact_id|lamin.ulabel:ulabel_id|lamin.feature:feature_id');
    PERFORM lamin.secure_table('lamin.artifact_feature_value', 'link:lamin.artifact:artifact_id|lamin.feature:feature_id');
    PERFORM lamin.secure_table('lamin.artifact_schema', 'link:lamin.artifact:artifact_id|lamin.schema:schema_id');
    PERFORM lamin.secure_table('lamin.collection_artifact', 'link:lamin.collection:collection_id|lamin.artifact:artifact_id');
    PERFORM lamin.secure_table('lamin.run_input_artifact', 'link:lamin.run:run_id|lamin.artifact:artifact_id');
    PERFORM lamin.secure_table('lamin.run_input_collection', 'link:lamin.run:run_id|lamin.collection:collection_id');
    PERFORM lamin.secure_table('lamin.artifact_recreating_run', 'link:lamin.run:run_id|lamin.artifact:artifact_id');
    PERFORM lamin.secure_table('lamin.collection_recreating_run', 'link:lamin.run:run_id|lamin.collection:collection_id');
    PERFORM lamin.secure_table('lamin.schema_feature', 'link:lamin.schema:schema_id|lamin.feature:feature_id');
    PERFORM lamin.secure_table('lamin.ulabel_parent', 'link:lamin.ulabel:ulabel_id|lamin.ulabel:parent_id');
    -- Ontologies and reference tables: every lamin role reads, writers write.
    FOR t IN SELECT c.oid::regclass::text AS relname,
                    EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'uid' AND NOT a.attisdropped) AS registry
             FROM pg_class c WHERE c.relnamespace = 'bionty'::regnamespace AND c.relkind = 'r' AND c.relname !~ '^artifact_'
    LOOP
        PERFORM lamin.secure_table(t.relname::regclass, 'shared', t.registry);
    END LOOP;
    FOR t IN SELECT c.oid::regclass::text AS relname FROM pg_class c
             WHERE c.relnamespace = 'bionty'::regnamespace AND c.relkind = 'r' AND c.relname ~ '^artifact_'
    LOOP
        PERFORM lamin.secure_table(t.relname::regclass, 'link:lamin.artifact:artifact_id');
    END LOOP;
    -- The search index is kept by SECURITY DEFINER triggers: roles only read it.
    PERFORM lamin.secure_table('lamin.search_word', 'shared');
    PERFORM lamin.secure_table('lamin.search_vocab', 'shared');
    REVOKE INSERT, UPDATE, DELETE ON lamin.search_term, lamin.search_word, lamin.search_vocab FROM lamin_reader, lamin_writer;
    -- A term's words are seen with the term (its space, copied onto each
    -- word); the vocabulary (every word of every space) by no role: spelling
    -- correction asks lamin.search_closest_word, which answers with words the
    -- caller may read.
    DROP POLICY shared_all ON lamin.search_word;
    CREATE POLICY word_read ON lamin.search_word FOR SELECT
        USING (space_id = ANY ((SELECT lamin.readable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));
    REVOKE SELECT ON lamin.search_vocab FROM lamin_reader;
    PERFORM lamin.secure_table('lamin.registry', 'shared');
    REVOKE INSERT, UPDATE, DELETE ON lamin.registry FROM lamin_writer;
    GRANT SELECT ON lamin.branch, lamin.job_kind TO lamin_reader, lamin_sidecar;
END
$$;
SELECT lamin.secure_table('lamin.curation', 'link:lamin.artifact:artifact_id');
-- (secure_table replaces every policy of a table: the sidecar's come back.)
CREATE POLICY storage_sidecar ON lamin.storage FOR SELECT TO lamin_sidecar USING (true);
CREATE POLICY artifact_sidecar_read ON lamin.artifact FOR SELECT TO lamin_sidecar USING (true);
CREATE POLICY artifact_sidecar_sweep ON lamin.artifact FOR UPDATE TO lamin_sidecar USING (status IN ('pending', 'failed')) WITH CHECK (true);

-- Hierarchies: the cycle check sees every edge.
CREATE OR REPLACE FUNCTION lamin.tg_ulabel_parent_acyclic() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    loops boolean;
BEGIN
    -- Serialise edge insertions so two concurrent edges cannot close a cycle together.
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.ulabel_parent', 0));
    WITH RECURSIVE ancestors(id) AS (
        SELECT NEW.parent_id
        UNION
        SELECT p.parent_id FROM ancestors a JOIN lamin.ulabel_parent p ON p.ulabel_id = a.id
    )
    SELECT bool_or(id = NEW.ulabel_id) INTO loops FROM ancestors;
    IF loops THEN
        RAISE EXCEPTION 'ulabel parent edge % -> % would form a cycle',
            (SELECT uid FROM lamin.ulabel WHERE id = NEW.ulabel_id), (SELECT uid FROM lamin.ulabel WHERE id = NEW.parent_id)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER ulabel_parent_acyclic ON lamin.ulabel_parent;
CREATE TRIGGER ulabel_parent_acyclic AFTER INSERT OR UPDATE ON lamin.ulabel_parent
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_ulabel_parent_acyclic();
REVOKE EXECUTE ON FUNCTION lamin.tg_ulabel_parent_acyclic() FROM PUBLIC;

-- Versions, delete and restore ------------------------------------------------------

CREATE OR REPLACE FUNCTION lamin.next_version_uid(registry regclass, stem text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newest_suffix text;
BEGIN
    IF registry IS NULL OR stem IS NULL THEN
        RAISE EXCEPTION 'next_version_uid needs a registry and a uid stem' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(lamin.family_lock_key(registry::text, stem));
    EXECUTE format('SELECT max(right(uid, 4) COLLATE "C") FROM %s WHERE stem = $1', registry)
        INTO newest_suffix USING stem;
    IF newest_suffix IS NULL THEN
        RAISE EXCEPTION 'no % with uid stem %', registry, quote_literal(stem) USING ERRCODE = 'no_data_found';
    END IF;
    RETURN stem || lamin.version_suffix(lamin.version_number(newest_suffix) + 1);
END
$$;

CREATE OR REPLACE FUNCTION lamin.refresh_family_head(registry regclass, family text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head_id bigint;
BEGIN
    IF registry IS NULL OR family IS NULL THEN
        RAISE EXCEPTION 'refresh_family_head needs a registry and a family (uid stem)' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(lamin.family_lock_key(registry::text, family));
    EXECUTE format('SELECT max(id) FROM %s WHERE stem = $1 AND branch_id <> -1', registry) INTO head_id USING family;
    -- Two statements: the partial unique index allows only one head at any moment.
    EXECUTE format('UPDATE %s SET is_latest = false WHERE stem = $1 AND is_latest AND id IS DISTINCT FROM $2', registry)
        USING family, head_id;
    IF head_id IS NOT NULL THEN
        EXECUTE format('UPDATE %s SET is_latest = true WHERE id = $1 AND NOT is_latest', registry) USING head_id;
    END IF;
END
$$;

CREATE FUNCTION lamin.lock_family_of(registry regclass, record_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    family text;
BEGIN
    IF registry IN ('lamin.artifact'::regclass, 'lamin.collection'::regclass, 'lamin.transform'::regclass) THEN
        EXECUTE format('SELECT stem FROM %s WHERE id = $1', registry) INTO family USING record_id;
        IF family IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(lamin.family_lock_key(registry::text, family));
        END IF;
    END IF;
END
$$;

CREATE FUNCTION lamin.refuse_unchanged(registry regclass, uid text, what text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'permission denied: % % % needs write on its space', what, registry, uid
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION lamin.delete(uid text, permanent boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec record;
    blocker text;
    changed int;
BEGIN
    SELECT * INTO rec FROM lamin.find_record(uid);
    PERFORM lamin.lock_family_of(rec.registry, rec.record_id);
    IF rec.branch_id <> -1 AND NOT coalesce(permanent, false) THEN
        EXECUTE format('UPDATE %s SET branch_id = -1 WHERE id = $1', rec.registry) USING rec.record_id;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed = 0 THEN
            PERFORM lamin.refuse_unchanged(rec.registry, uid, 'trashing');
        END IF;
        RETURN 'trashed';
    END IF;
    IF rec.registry = 'lamin.artifact'::regclass THEN
        SELECT string_agg(c.uid, ', ') INTO blocker
        FROM lamin.collection_artifact m JOIN lamin.collection c ON c.id = m.collection_id
        WHERE m.artifact_id = rec.record_id;
        IF blocker IS NOT NULL THEN
            RAISE EXCEPTION 'artifact % is a member of collection(s) %: delete those first', uid, blocker
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    BEGIN
        EXECUTE format('DELETE FROM %s WHERE id = $1', rec.registry) USING rec.record_id;
        GET DIAGNOSTICS changed = ROW_COUNT;
    EXCEPTION WHEN foreign_key_violation THEN
        RAISE EXCEPTION 'cannot delete % %: other records still refer to it (%)', rec.registry, uid, SQLERRM
            USING ERRCODE = 'foreign_key_violation';
    END;
    IF changed = 0 THEN
        PERFORM lamin.refuse_unchanged(rec.registry, uid, 'deleting');
    END IF;
    RETURN 'deleted';
END
$$;

CREATE OR REPLACE FUNCTION lamin.restore(uid text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec record;
    changed int;
BEGIN
    SELECT * INTO rec FROM lamin.find_record(uid);
    IF rec.branch_id <> -1 THEN
        RETURN 'not in trash';
    END IF;
    PERFORM lamin.lock_family_of(rec.registry, rec.record_id);
    EXECUTE format('UPDATE %s SET branch_id = 1 WHERE id = $1', rec.registry) USING rec.record_id;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM lamin.refuse_unchanged(rec.registry, uid, 'restoring');
    END IF;
    RETURN 'restored';
END
$$;

CREATE OR REPLACE FUNCTION lamin.search_add_terms_sql(reg lamin.registry, source text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        $q$WITH terms AS (
               INSERT INTO lamin.search_term (registry, record_id, uid, name, kind, term, term_fold, term_norm, organism, deprecated, space_id)
               %s
               RETURNING id, registry, term_norm, kind, space_id
           ), words AS (
               -- Ids (kind 3) are found whole or by prefix; their parts ("cl",
               -- "0000084") would only crowd the word index.
               INSERT INTO lamin.search_word (registry, word, term_len, term_id, space_id)
               SELECT t.registry, w.word, length(t.term_norm), t.id, t.space_id
               FROM terms t, LATERAL (SELECT DISTINCT x AS word FROM unnest(string_to_array(t.term_norm, ' ')) x) w
               WHERE t.kind <> 3 AND w.word <> '' AND NOT lamin.is_stop_word(w.word)
               RETURNING word
           )
           -- Spelling correction needs words with letters, not numbers.
           INSERT INTO lamin.search_vocab (word)
           SELECT DISTINCT word FROM words WHERE word ~ '[[:alpha:]]' ORDER BY 1
           ON CONFLICT DO NOTHING$q$,
        lamin.search_terms_sql(reg, source))
$$;


-- Spelling correction answers with words the caller may read.
CREATE FUNCTION lamin.search_closest_word(word text, registries text[]) RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me name := lamin.acting_role();
    everywhere boolean;
    spaces bigint[];
    trgm name;
    closest text;
BEGIN
    IF word IS NULL OR registries IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(me, 'lamin_admin', 'USAGE') INTO everywhere
    FROM pg_roles r WHERE r.rolname = me;
    spaces := ARRAY(SELECT a.space_id FROM lamin.space_access a JOIN pg_roles r ON r.rolname = a.role_name
                    WHERE pg_has_role(me, r.oid, 'USAGE')
                    UNION SELECT 1 WHERE pg_has_role(me, 'lamin_reader', 'USAGE'));
    SELECT n.nspname INTO trgm FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    EXECUTE format($q$
        SELECT v.word::text FROM lamin.search_vocab v
        WHERE v.word OPERATOR(%1$I.%%) $1
          AND EXISTS (SELECT FROM lamin.search_word w
                      WHERE w.registry = ANY ($2) AND w.word = v.word AND ($3 OR w.space_id = ANY ($4)))
        ORDER BY %1$I.similarity(v.word, $1) DESC, v.word LIMIT 1$q$, trgm)
    INTO closest USING word, registries, coalesce(everywhere, false), spaces;
    RETURN closest;
END
$$;
COMMENT ON FUNCTION lamin.search_closest_word(text, text[]) IS 'Spelling correction: the closest vocabulary word to word that occurs in a term of these registries the caller may read.';

-- Duplicate names: compared without case and blanks, under a lock.
CREATE FUNCTION lamin.fold_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT lower(regexp_replace(btrim(name, E' \t\n\r'), '[[:space:]]+', ' ', 'g')) $$;
COMMENT ON FUNCTION lamin.fold_name(text) IS 'A name as the duplicate guard compares it: lower case, blanks trimmed and collapsed.';

CREATE FUNCTION lamin.name_variants(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY[lower(name), f, f || ' ', ' ' || f] FROM lamin.fold_name(name) f $$;
COMMENT ON FUNCTION lamin.name_variants(text) IS 'The lower-case spellings a new name clashes with in the duplicate guard (itself, folded, folded with a blank around).';

CREATE OR REPLACE FUNCTION lamin.create_search_trigger_functions(reg lamin.registry, guard boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $gen$
DECLARE
    base text := replace(reg.name, '.', '__');
    changed text := format('(SELECT n.* FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE (%s) IS DISTINCT FROM (%s))',
                           lamin.search_columns(reg, 'n'), lamin.search_columns(reg, 'o'));
BEGIN
    -- SECURITY DEFINER: the index is lamin's, not the writer's; roles that may
    -- write a record keep its terms in step without any right on the index.
    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION lamin.%1$I() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $body$
DECLARE
    -- A variable, not a literal: queries with parameters are planned afresh
    -- each time (force_custom_plan), so plans follow the tables' growth. (The
    -- word delete names it only to be parameterised: filtering words by
    -- registry would tempt the planner onto the (registry, word) index.)
    reg_name text := %2$L;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Rows of this statement may already have terms from an UPDATE nested in
        -- its row triggers (e.g. a version family's head moving).
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.registry = reg_name AND t.record_id = ANY (ARRAY(SELECT n.id FROM new_rows n)) RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
        %3$s;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.registry = reg_name AND t.record_id = ANY (ARRAY(SELECT c.id FROM %4$s c)) RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
        %5$s;
    ELSE
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.registry = reg_name AND t.record_id = ANY (ARRAY(SELECT o.id FROM old_rows o)) RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
    END IF;
    RETURN NULL;
END
$body$
$fn$, 'search_' || base, reg.name, lamin.search_add_terms_sql(reg, 'new_rows'), changed,
      lamin.search_add_terms_sql(reg, changed));
    -- A trigger can only be made with a function one may execute: nobody but
    -- lamin's owner attaches these (SECURITY DEFINER) functions to a table.
    EXECUTE format('REVOKE EXECUTE ON FUNCTION lamin.%I() FROM PUBLIC', 'search_' || base);

    IF NOT guard THEN
        RETURN;
    END IF;
    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION lamin.%1$I() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $body$
DECLARE
    clash record;
    reg_name text := %2$L;
BEGIN
    IF coalesce(current_setting('lamin.allow_duplicates', true), '') IN ('on', 'true', '1') OR lamin.is_restoring() THEN
        RETURN NULL;
    END IF;
    -- Concurrent writers of one name wait for each other, so that the check
    -- below (a fresh snapshot: a new statement) sees what the other committed.
    -- Names are compared without case and with blanks trimmed and collapsed.
    -- A statement of many rows takes the registry's lock instead of one per
    -- name (which the others share): locks are a shared, bounded resource.
    IF (SELECT count(*) FROM (SELECT 1 FROM new_rows LIMIT 65) x) > 64 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('lamin.names:' || reg_name, 0));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(hashtextextended('lamin.names:' || reg_name, 0));
        PERFORM pg_advisory_xact_lock(hashtextextended('lamin.name:' || reg_name || ':' || x.k, 0))
        FROM (SELECT DISTINCT lamin.fold_name(n.%3$I) AS k FROM new_rows n WHERE n.%3$I IS NOT NULL ORDER BY 1) x;
    END IF;
    -- (Two statements: old_rows exists only for UPDATE.)
    IF TG_OP = 'INSERT' THEN
        SELECT n.%3$I AS new_name, t.uid, t.name, t.kind INTO clash
        FROM new_rows n CROSS JOIN LATERAL (
            SELECT t.uid, t.name, t.kind FROM lamin.search_term t
            WHERE t.term_fold = ANY (lamin.name_variants(n.%3$I) COLLATE "C") AND t.registry = reg_name AND t.record_id <> n.id LIMIT 1) t
        LIMIT 1;
    ELSE
        SELECT n.%3$I AS new_name, t.uid, t.name, t.kind INTO clash
        FROM new_rows n JOIN old_rows o ON o.id = n.id CROSS JOIN LATERAL (
            SELECT t.uid, t.name, t.kind FROM lamin.search_term t
            WHERE t.term_fold = ANY (lamin.name_variants(n.%3$I) COLLATE "C") AND t.registry = reg_name AND t.record_id <> n.id LIMIT 1) t
        WHERE n.%3$I IS DISTINCT FROM o.%3$I
        LIMIT 1;
    END IF;
    IF clash.uid IS NOT NULL THEN
        RAISE EXCEPTION '%% %% already exists as the %% of record %% (%%)', %2$L, quote_literal(clash.new_name),
            CASE clash.kind WHEN 0 THEN 'name' WHEN 1 THEN 'synonym' WHEN 2 THEN 'abbreviation' ELSE 'id' END,
            clash.uid, quote_literal(clash.name)
            USING ERRCODE = 'unique_violation',
                  HINT = 'use the existing record, or SET lamin.allow_duplicates = on to add it anyway';
    END IF;
    SELECT lamin.fold_name(n.%3$I) AS dup INTO clash FROM new_rows n GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF clash.dup IS NOT NULL THEN
        RAISE EXCEPTION '%% %% is added twice in one statement', %2$L, quote_literal(clash.dup)
            USING ERRCODE = 'unique_violation', HINT = 'SET lamin.allow_duplicates = on to add it anyway';
    END IF;
    IF (SELECT count(*) FROM (SELECT 1 FROM new_rows LIMIT 21) x) <= 20 THEN
        -- Close but different: a typo-tier match (see lamin.similar_record).
        FOR clash IN
            SELECT n.%3$I AS new_name, s.uid, s.name
            FROM new_rows n
            CROSS JOIN LATERAL lamin.similar_record(reg_name, n.%3$I) s
            WHERE s.uid <> n.uid
        LOOP
            RAISE NOTICE 'similar record exists in %%: %% (%%); did you mean it instead of %%?',
                %2$L, quote_literal(clash.name), clash.uid, quote_literal(clash.new_name);
        END LOOP;
    END IF;
    RETURN NULL;
END
$body$
$fn$, 'guard_' || base, reg.name, reg.name_field);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION lamin.%I() FROM PUBLIC', 'guard_' || base);
END
$gen$;

-- The search and guard triggers of lamin's own registries take the new
-- templates. Those of
-- registries users made searchable are theirs (not the extension's): an
-- extension script cannot replace them; scripts/up (and the README's upgrade
-- steps) regenerate them right after this update with lamin.refresh_search_triggers().
SELECT lamin.create_search_trigger_functions(r, r.guard) FROM lamin.registry r
WHERE EXISTS (
    SELECT FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
    WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND p.pronamespace = 'lamin'::regnamespace AND p.proname = 'search_' || replace(r.name, '.', '__'));


CREATE FUNCTION lamin.refresh_search_triggers() RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r lamin.registry;
    n int := 0;
BEGIN
    FOR r IN SELECT * FROM lamin.registry x ORDER BY x.name LOOP
        PERFORM lamin.create_search_trigger_functions(r, r.guard);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION lamin.refresh_search_triggers() FROM PUBLIC;
COMMENT ON FUNCTION lamin.refresh_search_triggers() IS 'Regenerate every searchable registry''s trigger functions from the current templates (superusers; run after ALTER EXTENSION lamin UPDATE).';

-- Content hashes are unique per space: the index answers nobody about
-- content in a space they cannot read.
DROP INDEX lamin.artifact_hash_unique;
CREATE UNIQUE INDEX artifact_hash_unique ON lamin.artifact (storage_id, space_id, hash) WHERE hash IS NOT NULL;
DROP INDEX lamin.collection_hash_unique;
CREATE UNIQUE INDEX collection_hash_unique ON lamin.collection (space_id, hash) WHERE hash IS NOT NULL;
DROP INDEX lamin.transform_hash_unique;
CREATE UNIQUE INDEX transform_hash_unique ON lamin.transform (space_id, hash) WHERE hash IS NOT NULL;

-- Uploads: a role without write is told so.
CREATE OR REPLACE FUNCTION lamin.finish_upload(uid text, hash text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    a record;
BEGIN
    SELECT x.id, x.hash, x.status INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(uid) FOR UPDATE;
    -- artifact_id found it (the caller reads it); FOR UPDATE did not: no write.
    IF NOT FOUND THEN
        RAISE EXCEPTION 'permission denied: finishing the upload of artifact % needs write on its space', uid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF a.hash IS DISTINCT FROM hash THEN
        RAISE EXCEPTION 'artifact %: the bytes written have sha256 %, not the registered %', uid, hash, a.hash
            USING ERRCODE = 'data_corrupted';
    END IF;
    UPDATE lamin.artifact x SET status = 'ready', status_detail = NULL, updated_at = now()
    WHERE x.id = a.id AND x.status = 'pending';
    RETURN 'ready';
END
$$;

-- lamin's own tables are not registries.
CREATE OR REPLACE FUNCTION lamin.make_searchable(
    registry         regclass,
    name_field       text DEFAULT 'name',
    synonyms_field   text DEFAULT NULL,
    abbr_field       text DEFAULT NULL,
    id_field         text DEFAULT NULL,
    organism_field   text DEFAULT NULL,
    deprecated_field text DEFAULT NULL,
    guard            boolean DEFAULT true
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Keeps the restore hooks below out of the way while it works.
SET lamin.making_searchable = 'on'
AS $$
DECLARE
    qualified text := (SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = registry);
    field text;
    missing text;
    reg lamin.registry;
BEGIN
    IF registry IS NULL THEN
        RAISE EXCEPTION 'make_searchable needs a table' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- lamin's own bookkeeping is no registry: indexing the search index would
    -- index its own rows without end.
    IF qualified IN ('lamin.search_term', 'lamin.search_word', 'lamin.search_vocab', 'lamin.registry', 'lamin.audit',
                     'lamin.job', 'lamin.space_access') THEN
        RAISE EXCEPTION 'make_searchable(%): that is one of lamin''s own tables, not a registry', qualified
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH field IN ARRAY ARRAY['id', 'uid', name_field, synonyms_field, abbr_field, id_field, organism_field, deprecated_field] LOOP
        IF field IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute a WHERE a.attrelid = registry AND a.attname = field AND a.attnum > 0 AND NOT a.attisdropped) THEN
            missing := concat_ws(', ', missing, quote_ident(field));
        END IF;
    END LOOP;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'make_searchable(%): no column(s) % in that table', qualified, missing
            USING ERRCODE = 'undefined_column';
    END IF;
    INSERT INTO lamin.registry AS r (name, name_field, synonyms_field, abbr_field, id_field, organism_field, deprecated_field, guard)
    VALUES (qualified, name_field, synonyms_field, abbr_field, id_field, organism_field, deprecated_field, guard)
    ON CONFLICT ON CONSTRAINT registry_pkey DO UPDATE SET
        name_field = excluded.name_field, synonyms_field = excluded.synonyms_field, abbr_field = excluded.abbr_field,
        id_field = excluded.id_field, organism_field = excluded.organism_field, deprecated_field = excluded.deprecated_field,
        guard = excluded.guard
    RETURNING * INTO reg;

    PERFORM lamin.create_search_trigger_functions(reg, guard);
    EXECUTE format('DROP TRIGGER IF EXISTS search_a_guard_insert ON %s', registry);
    EXECUTE format('DROP TRIGGER IF EXISTS search_a_guard_update ON %s', registry);
    EXECUTE format('DROP TRIGGER IF EXISTS search_b_terms_insert ON %s', registry);
    EXECUTE format('DROP TRIGGER IF EXISTS search_b_terms_update ON %s', registry);
    EXECUTE format('DROP TRIGGER IF EXISTS search_b_terms_delete ON %s', registry);
    -- Triggers fire in name order: the guard (a) sees the terms before this statement's (b).
    IF guard THEN
        EXECUTE format('CREATE TRIGGER search_a_guard_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.%I()', registry, 'guard_' || replace(qualified, '.', '__'));
        EXECUTE format('CREATE TRIGGER search_a_guard_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lamin.%I()', registry, 'guard_' || replace(qualified, '.', '__'));
    END IF;
    EXECUTE format('CREATE TRIGGER search_b_terms_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION lamin.%I()', registry, 'search_' || replace(qualified, '.', '__'));
    EXECUTE format('CREATE TRIGGER search_b_terms_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION lamin.%I()', registry, 'search_' || replace(qualified, '.', '__'));
    EXECUTE format('CREATE TRIGGER search_b_terms_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION lamin.%I()', registry, 'search_' || replace(qualified, '.', '__'));

    PERFORM lamin.index_registry(reg);
END
$$;

-- Wide tables: the missing features of all columns in one statement.
CREATE OR REPLACE FUNCTION lamin.record_columns(artifact_uid text, n_observations bigint, columns jsonb,
                                     slot text DEFAULT 'columns', otype text DEFAULT 'DataFrame') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
    bad record;
    created text[];
    conflicts jsonb;
    names text[];
    schema_uid text;
BEGIN
    IF jsonb_typeof(columns) IS DISTINCT FROM 'array' OR jsonb_array_length(columns) = 0 THEN
        RAISE EXCEPTION 'columns must be a non-empty JSON array of {"name", "dtype"}' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(columns) > 10000 THEN
        RAISE EXCEPTION 'a table of % columns: at most 10000 are recorded as features', jsonb_array_length(columns)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT 1 AS x INTO bad FROM jsonb_array_elements(columns) x WHERE x ->> 'name' IS NULL OR btrim(x ->> 'name') = '' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a column has no name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x ->> 'name' AS name INTO bad FROM jsonb_array_elements(columns) x GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column % appears twice', quote_literal(bad.name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One statement for all columns (a table of thousands of columns makes its
    -- missing features in one INSERT: one pass of the triggers, not one per
    -- column). Conflicts are against the features that existed before.
    WITH cols AS (
        SELECT x ->> 'name' AS name, x ->> 'dtype' AS dtype, x ->> 'arrow' AS arrow, e.ord
        FROM jsonb_array_elements(columns) WITH ORDINALITY AS e(x, ord)
    ), made AS (
        INSERT INTO lamin.feature (name, dtype, description)
        SELECT c.name, c.dtype, 'column of type ' || coalesce(c.arrow, c.dtype) FROM cols c
        WHERE NOT EXISTS (SELECT FROM lamin.feature f WHERE f.name = c.name)
        ORDER BY c.ord
        RETURNING name
    )
    SELECT ARRAY(SELECT c.name FROM cols c ORDER BY c.ord),
           ARRAY(SELECT c.name FROM cols c JOIN made m ON m.name = c.name ORDER BY c.ord),
           coalesce((SELECT jsonb_agg(jsonb_build_object('column', c.name, 'feature_dtype', f.dtype, 'column_dtype', c.dtype) ORDER BY c.ord)
                     FROM cols c CROSS JOIN LATERAL (
                         SELECT x.dtype FROM lamin.feature x WHERE x.name = c.name
                         ORDER BY x.space_id = lamin.current_space_id() DESC, x.id LIMIT 1) f
                     WHERE f.dtype <> c.dtype AND NOT (f.dtype LIKE 'cat%' AND c.dtype IN ('cat', 'str'))), '[]')
    INTO names, created, conflicts;
    schema_uid := lamin.create_schema(names, ordered => true);
    PERFORM lamin.link_schema(artifact_uid, slot, schema_uid);
    UPDATE lamin.artifact a SET n_observations = coalesce(record_columns.n_observations, a.n_observations),
                                otype = record_columns.otype, updated_at = now()
    WHERE a.id = aid;
    RETURN jsonb_build_object('slot', slot, 'schema', schema_uid, 'n_observations', n_observations,
                              'created', to_jsonb(created), 'conflicts', conflicts);
END
$$;

-- Names and feature sets are unique per space too.
ALTER TABLE lamin.feature DROP CONSTRAINT feature_name_unique, ADD CONSTRAINT feature_name_unique UNIQUE (space_id, name);
ALTER TABLE lamin.schema DROP CONSTRAINT schema_hash_unique, ADD CONSTRAINT schema_hash_unique UNIQUE (space_id, hash);
DROP INDEX lamin.ulabel_name_in_type;
CREATE UNIQUE INDEX ulabel_name_in_type ON lamin.ulabel (space_id, coalesce(type_id, 0), name);
CREATE OR REPLACE FUNCTION lamin.create_feature(name text, dtype text, description text DEFAULT NULL, unit text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    existing record;
    new_uid text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.feature.name:' || name, 0));
    -- (Names are unique per space: the current space's feature first.)
    SELECT f.uid, f.dtype INTO existing FROM lamin.feature f WHERE f.name = name
    ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    IF FOUND THEN
        IF existing.dtype <> dtype THEN
            RAISE EXCEPTION 'feature % exists with dtype %, not %', quote_literal(name), existing.dtype, dtype
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN existing.uid;
    END IF;
    INSERT INTO lamin.feature AS f (name, dtype, description, unit)
    VALUES (name, dtype, description, unit) RETURNING f.uid INTO new_uid;
    RETURN new_uid;
END
$$;

CREATE OR REPLACE FUNCTION lamin.feature_id(name text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    found_id bigint;
BEGIN
    SELECT f.id INTO found_id FROM lamin.feature f WHERE f.name = name
    ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'unknown feature %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'create it with lamin.create_feature(name, dtype); existing features: ' ||
                         coalesce((SELECT string_agg(f.name, ', ' ORDER BY f.name) FROM (SELECT f.name FROM lamin.feature f ORDER BY f.name LIMIT 50) f), 'none');
    END IF;
    RETURN found_id;
END
$$;

-- Label and feature names are looked up in the current space first.
CREATE OR REPLACE FUNCTION lamin.annotate(artifact_uid text, feature_name text, vals text[]) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint := lamin.artifact_id(artifact_uid);
    feat record;
    registry text;
    missing text;
    ambiguous text;
    bad text;
    added int;
    name_field text;
    link text;
    tbl text;
BEGIN
    SELECT f.id, f.name, f.dtype INTO feat FROM lamin.feature f WHERE f.id = lamin.feature_id(feature_name);
    IF vals IS NULL OR cardinality(vals) = 0 THEN
        RAISE EXCEPTION 'annotate: no values given for feature %', quote_literal(feat.name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(vals, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'annotate: NULL among the values for feature %', quote_literal(feat.name) USING ERRCODE = 'null_value_not_allowed';
    END IF;
    registry := lamin.dtype_registry(feat.dtype);

    IF registry = 'lamin.ulabel' THEN
        SELECT string_agg(quote_literal(v), ', ' ORDER BY v) INTO missing
        FROM (SELECT DISTINCT v FROM unnest(vals) v) d
        WHERE NOT EXISTS (SELECT 1 FROM lamin.ulabel u WHERE u.name = d.v AND u.branch_id <> -1);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'feature % (dtype %): values not in lamin.ulabel: %', quote_literal(feat.name), feat.dtype, missing
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'create the labels first, e.g. INSERT INTO lamin.ulabel (name) VALUES (...)';
        END IF;
        -- Names are unique per space and type: of the spaces the caller reads
        -- that have a label of a name, the current space's first.
        SELECT string_agg(quote_literal(u.name), ', ') INTO ambiguous
        FROM (SELECT u.name FROM lamin.ulabel u
              WHERE u.name = ANY (vals) AND u.branch_id <> -1
                AND u.space_id = (SELECT x.space_id FROM lamin.ulabel x WHERE x.name = u.name AND x.branch_id <> -1
                                  ORDER BY x.space_id = lamin.current_space_id() DESC, x.space_id LIMIT 1)
              GROUP BY u.name HAVING count(*) > 1) u;
        IF ambiguous IS NOT NULL THEN
            RAISE EXCEPTION 'feature %: label names used by more than one ulabel type: %', quote_literal(feat.name), ambiguous
                USING ERRCODE = 'cardinality_violation';
        END IF;
        INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
        SELECT aid, u.id, feat.id FROM lamin.ulabel u
        WHERE u.name = ANY (vals) AND u.branch_id <> -1
          AND u.space_id = (SELECT x.space_id FROM lamin.ulabel x WHERE x.name = u.name AND x.branch_id <> -1
                            ORDER BY x.space_id = lamin.current_space_id() DESC, x.space_id LIMIT 1)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS added = ROW_COUNT;
        RETURN added;
    ELSIF registry IS NOT NULL THEN
        -- Another registry (bionty.cell_type, …): values are names (genes: symbols)
        -- of its records, linked through <schema>.artifact_<table>.
        SELECT r.name_field INTO name_field FROM lamin.registry r WHERE r.name = registry;
        link := format('%I.%I', split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2));
        IF name_field IS NULL OR to_regclass(link) IS NULL THEN
            RAISE EXCEPTION 'feature % (dtype %): artifacts cannot be annotated with records of %', quote_literal(feat.name), feat.dtype, registry
                USING ERRCODE = 'feature_not_supported', HINT = 'annotatable registries have a link table <schema>.artifact_<table>';
        END IF;
        tbl := format('%I.%I', split_part(registry, '.', 1), split_part(registry, '.', 2));
        EXECUTE format($q$SELECT string_agg(quote_literal(d.v), ', ' ORDER BY d.v)
                          FROM (SELECT DISTINCT v FROM unnest($1) v) d
                          WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE t.%I = d.v AND t.branch_id <> -1)$q$, tbl, name_field)
        INTO missing USING vals;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'feature % (dtype %): values not in %: %', quote_literal(feat.name), feat.dtype, registry, missing
                USING ERRCODE = 'foreign_key_violation',
                      HINT = format('map synonyms and ids first: SELECT lamin.standardize(%L, ARRAY[...])', registry);
        END IF;
        -- A name shared by several live records is ambiguous; a name whose only
        -- other holders are deprecated (obsolete duplicates) links the live one.
        EXECUTE format($q$SELECT string_agg(quote_literal(x.n), ', ') FROM (
                              SELECT t.%2$I AS n FROM %1$s t WHERE t.%2$I = ANY ($1) AND t.branch_id <> -1 AND NOT t.deprecated
                              GROUP BY 1 HAVING count(*) > 1) x$q$, tbl, name_field)
        INTO ambiguous USING vals;
        IF ambiguous IS NOT NULL THEN
            RAISE EXCEPTION 'feature %: names used by more than one record of %: %', quote_literal(feat.name), registry, ambiguous
                USING ERRCODE = 'cardinality_violation';
        END IF;
        EXECUTE format($q$INSERT INTO %1$s (artifact_id, %2$I, feature_id)
                          SELECT $1, t.id, $2 FROM %3$s t
                          WHERE t.%4$I = ANY ($3) AND t.branch_id <> -1
                            AND (NOT t.deprecated OR NOT EXISTS (
                                SELECT 1 FROM %3$s o WHERE o.%4$I = t.%4$I AND o.branch_id <> -1 AND NOT o.deprecated))
                          ON CONFLICT DO NOTHING$q$,
                       link, split_part(registry, '.', 2) || '_id', tbl, name_field)
        USING aid, feat.id, vals;
        GET DIAGNOSTICS added = ROW_COUNT;
        RETURN added;
    END IF;

    -- Non-categorical: check every value casts to the dtype, then store them.
    SELECT string_agg(quote_literal(v), ', ') INTO bad FROM unnest(vals) v WHERE lamin.typed_value(feat.dtype, v) IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'feature % (dtype %): values that are not %: %', quote_literal(feat.name), feat.dtype, feat.dtype, bad
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value)
    SELECT DISTINCT aid, feat.id, lamin.typed_value(feat.dtype, v) FROM unnest(vals) v
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END
$$;

CREATE OR REPLACE FUNCTION lamin.annotate_curated(artifact_uid text, column_name text, registry text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    c record;
    labels text[];
    -- The feature: the column's name (AnnData: without obs./var.).
    feature text := CASE column_name WHEN 'obs.index' THEN 'obs_index' WHEN 'var.index' THEN 'var_index'
                                     ELSE regexp_replace(column_name, '^(obs|var)\.', '') END;
BEGIN
    SELECT x.* INTO c FROM lamin.curation x
    WHERE x.artifact_id = lamin.artifact_id(artifact_uid) AND x.column_name = column_name
      AND (registry IS NULL OR x.registry = registry)
    ORDER BY x.created_at DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no curation of column % of artifact %: run lamin.curate first', quote_literal(column_name), artifact_uid
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT array_agg(DISTINCT coalesce(r ->> 'standardized', r ->> 'value')) INTO labels
    FROM jsonb_array_elements(c.report) r
    WHERE (r ->> 'validated')::boolean OR r ->> 'standardized' IS NOT NULL;
    IF labels IS NULL THEN
        RETURN 0;
    END IF;
    -- A column read from a file got the generic dtype cat; curation names its
    -- registry, as long as no labels are linked through the feature yet.
    UPDATE lamin.feature f SET dtype = 'cat[' || c.registry || ']', updated_at = now()
    WHERE f.id = (SELECT x.id FROM lamin.feature x WHERE x.name = feature
                  ORDER BY x.space_id = lamin.current_space_id() DESC, x.id LIMIT 1)
      AND f.dtype IN ('cat', 'str') AND c.registry <> 'lamin.ulabel'
      AND NOT EXISTS (SELECT FROM lamin.artifact_ulabel l WHERE l.feature_id = f.id)
      AND NOT EXISTS (SELECT FROM lamin.artifact_feature_value v WHERE v.feature_id = f.id);
    PERFORM lamin.create_feature(feature, CASE WHEN c.registry = 'lamin.ulabel' THEN 'cat' ELSE 'cat[' || c.registry || ']' END);
    RETURN lamin.annotate(artifact_uid, feature, labels);
END
$$;

-- Builders that write names into DDL are lamin's own.
REVOKE EXECUTE ON FUNCTION bionty.comment_common_columns(text, text), bionty.create_ontology_registry(text, text, text[], text),
    bionty.create_registry(text, text, text), bionty.create_artifact_link(text), bionty.common_columns() FROM PUBLIC;
