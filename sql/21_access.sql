-- Access management: collaborator roles, spaces, row-level security on every
-- registry, link and job table, locked records, and an append-only audit log.
--
-- Roles (cluster-wide, created once):
--   lamin_reader  read the default space "all" and every ontology registry
--   lamin_writer  (member of lamin_reader) also write them
--   lamin_admin   (member of lamin_writer) admin of every space
--   lamin_sidecar the sidecar's login: runs jobs, acting as each job's
--                 requester (SET ROLE); NOINHERIT, no superuser, no BYPASSRLS
-- Other spaces are reached through lamin.grant(space, role, level).
-- Superusers and the tables' owner bypass row-level security, as always in
-- Postgres: give people lamin roles, not those.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lamin_reader') THEN
        CREATE ROLE lamin_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lamin_writer') THEN
        CREATE ROLE lamin_writer NOLOGIN IN ROLE lamin_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lamin_admin') THEN
        CREATE ROLE lamin_admin NOLOGIN IN ROLE lamin_writer;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lamin_sidecar') THEN
        CREATE ROLE lamin_sidecar LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
COMMENT ON ROLE lamin_reader IS 'lamin: read the default space and the ontologies.';
COMMENT ON ROLE lamin_writer IS 'lamin: write the default space and the ontologies.';
COMMENT ON ROLE lamin_admin IS 'lamin: admin of every space (grant, revoke, locked records).';
COMMENT ON ROLE lamin_sidecar IS 'lamin: the sidecar''s login; runs each job as the role that enqueued it.';

-- Who may do what in which space (besides the instance roles above).
CREATE TABLE lamin.space_access (
    space_id   bigint NOT NULL REFERENCES lamin.space ON DELETE CASCADE,
    role_name  name NOT NULL,
    level      text NOT NULL CONSTRAINT space_access_level_known CHECK (level IN ('read', 'write', 'admin')),
    granted_by name NOT NULL DEFAULT current_user,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, role_name)
);
COMMENT ON COLUMN lamin.space_access.space_id IS 'The space.';
COMMENT ON COLUMN lamin.space_access.role_name IS 'The database role (a user or a group role) granted access.';
COMMENT ON COLUMN lamin.space_access.level IS 'read, write (includes read) or admin (includes write; grants and locked records).';
COMMENT ON COLUMN lamin.space_access.granted_by IS 'The role that granted it.';
COMMENT ON COLUMN lamin.space_access.granted_at IS 'When it was granted.';
COMMENT ON TABLE lamin.space_access IS 'Grants of spaces to database roles: read, write (includes read) or admin (includes write). Changed through lamin.grant / lamin.revoke.';

-- A grant names an existing lamin role, however it is written (lamin.grant
-- or an admin's INSERT): a grant to a misspelt role is refused, not kept.
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

-- The spaces the current role (directly or through role membership) may
-- read, write or administer through grants, plus the default space "all"
-- through the instance roles. Instance admins (lamin_admin) may do
-- everything everywhere; policies test that separately. Policies call these
-- inside a sub-select, so they run once per statement, not once per row.
CREATE FUNCTION lamin.spaces_at(min_level text) RETURNS bigint[]
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
CREATE FUNCTION lamin.readable_spaces() RETURNS bigint[] LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT lamin.spaces_at('read') $$;
CREATE FUNCTION lamin.writable_spaces() RETURNS bigint[] LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT lamin.spaces_at('write') $$;
CREATE FUNCTION lamin.admin_spaces() RETURNS bigint[] LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT lamin.spaces_at('admin') $$;
CREATE FUNCTION lamin.is_instance_admin() RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_has_role('lamin_admin', 'USAGE') $$;
COMMENT ON FUNCTION lamin.readable_spaces() IS 'Ids of the spaces the current role may read through grants (and "all" for lamin roles).';
COMMENT ON FUNCTION lamin.writable_spaces() IS 'Ids of the spaces the current role may write through grants (and "all" for writers).';
COMMENT ON FUNCTION lamin.admin_spaces() IS 'Ids of the spaces the current role administers through grants.';
COMMENT ON FUNCTION lamin.is_instance_admin() IS 'Whether the current role is a lamin_admin: admin of every space.';

-- Whether the current role bypasses row-level security (superuser, owner):
-- such sessions keep working as before and are not limited by grants.
CREATE FUNCTION lamin.is_unrestricted() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user
$$;

-- Whether the current role has at least `level` on a space (for checks in
-- functions; policies use the arrays above directly).
CREATE FUNCTION lamin.has_space_level(space_id bigint, level text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(lamin.is_unrestricted(), false) OR lamin.is_instance_admin() OR space_id = ANY (lamin.spaces_at(level))
$$;

-- Resolve a space by name or uid.
-- Refuse, with the space and the missing grant named, a write into the
-- current space by a role that cannot write there (instead of row-level
-- security's bare "new row violates row-level security policy"). Called
-- first by the functions that create records (save_artifact, track,
-- create_feature, save_collection); a plain INSERT still meets the policy.
CREATE FUNCTION lamin.require_write(what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid bigint := lamin.current_space_id();
    space_name text;
BEGIN
    IF lamin.has_space_level(sid, 'write') THEN
        RETURN;
    END IF;
    SELECT s.name INTO space_name FROM lamin.space s WHERE s.id = sid;
    RAISE EXCEPTION 'permission denied: % needs write in space %, and role % can only %', what, quote_literal(space_name),
        current_user, CASE WHEN lamin.has_space_level(sid, 'read') THEN 'read there' ELSE 'not read there' END
        USING ERRCODE = 'insufficient_privilege',
              HINT = format('an admin of the space grants it: SELECT lamin.grant(%L, %L, ''write''); or write into a space you can: SELECT lamin.use_space(...) (lamin.access() lists your levels)',
                            space_name, current_user);
END
$$;
COMMENT ON FUNCTION lamin.require_write(text) IS
    'Raise a clear permission error naming the space and the missing grant when the caller cannot write in the current space.';

CREATE FUNCTION lamin.space_id(space text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_id bigint;
BEGIN
    SELECT s.id INTO found_id FROM lamin.space s WHERE s.name = space OR s.uid = space;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'no space named %', coalesce(quote_literal(left(space, 100)), 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'spaces are listed in lamin.space; create one with lamin.create_space(name)';
    END IF;
    RETURN found_id;
END
$$;

-- Spaces are created by instance admins (lamin_admin); the creator becomes
-- the space's admin. These functions run as the caller: the policies below
-- decide, so calling them grants nothing a plain INSERT would not.
CREATE FUNCTION lamin.create_space(name text, description text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    new_space record;
BEGIN
    IF NOT (pg_has_role('lamin_admin', 'USAGE') OR lamin.is_unrestricted()) THEN
        RAISE EXCEPTION 'permission denied: creating a space needs lamin_admin (role % is not a member)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF name IS NULL OR btrim(name) = '' OR length(name) > 100 THEN
        RAISE EXCEPTION 'a space needs a name of 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM lamin.space s WHERE s.name = name) THEN
        RAISE EXCEPTION 'a space named % exists', quote_literal(name) USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO lamin.space AS s (name, description) VALUES (name, description) RETURNING s.id, s.uid INTO new_space;
    INSERT INTO lamin.space_access (space_id, role_name, level) VALUES (new_space.id, current_user, 'admin');
    RETURN new_space.uid;
END
$$;
COMMENT ON FUNCTION lamin.create_space(text, text) IS 'Create a space (needs lamin_admin); the creator becomes its admin. Returns its uid.';

-- The sidecar runs a job as the role that enqueued it (SET ROLE), which
-- needs membership of that role. Given only for ordinary roles: never for
-- superusers or roles that bypass row-level security or create roles.
CREATE FUNCTION lamin.let_sidecar_act_as(role_name name) RETURNS void
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
REVOKE ALL ON FUNCTION lamin.let_sidecar_act_as(name) FROM PUBLIC;
COMMENT ON FUNCTION lamin.let_sidecar_act_as(name) IS 'Let the sidecar run jobs as this (ordinary, personal) role; called when the role enqueues a job (not executable by users).';

-- Grant a role read, write or admin on a space (admins of that space only).
CREATE FUNCTION lamin.grant(space text, role_name name, level text DEFAULT 'read') RETURNS text
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
COMMENT ON FUNCTION lamin.grant(text, name, text) IS 'Give a role read, write or admin on a space (needs admin on that space). Returns the level.';

CREATE FUNCTION lamin.revoke(space text, role_name name) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    sid bigint := lamin.space_id(space);
    gone int;
BEGIN
    IF NOT lamin.has_space_level(sid, 'admin') THEN
        RAISE EXCEPTION 'permission denied: revoking in space % needs admin on it', space USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM lamin.space_access a WHERE a.space_id = sid AND a.role_name = revoke.role_name;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone > 0;
END
$$;
COMMENT ON FUNCTION lamin.revoke(text, name) IS 'Take a role''s grant on a space away (needs admin on that space); true if there was one.';

-- What the current role may do, space by space.
CREATE FUNCTION lamin.access()
RETURNS TABLE (space text, space_uid text, can_read boolean, can_write boolean, can_admin boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.name, s.uid, lamin.has_space_level(s.id, 'read'), lamin.has_space_level(s.id, 'write'),
           lamin.has_space_level(s.id, 'admin')
    FROM lamin.space s
    WHERE lamin.has_space_level(s.id, 'read')
    ORDER BY s.id
$$;
COMMENT ON FUNCTION lamin.access() IS 'The spaces the current role may read, with whether it may also write and administer them.';

-- The space new records go to in this session: lamin.use_space(name), else "all".
CREATE FUNCTION lamin.current_space_id() RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.id FROM lamin.space s WHERE s.uid = nullif(current_setting('lamin.space_uid', true), '')), 1)
$$;
CREATE FUNCTION lamin.use_space(space text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    SELECT x.id, x.uid, x.name INTO s FROM lamin.space x WHERE x.id = lamin.space_id(space);
    IF NOT lamin.has_space_level(s.id, 'write') THEN
        RAISE EXCEPTION 'permission denied: role % cannot write in space %', current_user, s.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('lamin.space_uid', s.uid, false);
    RETURN s.uid;
END
$$;
COMMENT ON FUNCTION lamin.use_space(text) IS 'Put the records this session creates into this space (by name or uid; needs write on it).';

-- Job kinds name the instance role a requester needs (lamin.job_kind.needs_role)
-- and whether only lamin enqueues them (internal); this trigger enforces both.
CREATE FUNCTION lamin.tg_job_check_kind() RETURNS trigger
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
CREATE TRIGGER job_check_kind BEFORE INSERT ON lamin.job FOR EACH ROW EXECUTE FUNCTION lamin.tg_job_check_kind();

-- The sidecar will run the job as its requester: let it (ordinary lamin roles
-- only). After the row passed row-level security, so requested_by is the
-- inserting role (or a superuser's choice); SECURITY DEFINER, as only lamin
-- decides which roles the sidecar acts as. A superuser may load jobs of roles
-- this cluster lacks (a restore): the sidecar then fails them naming the role.
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
-- Triggers fire whatever EXECUTE says; revoked so that nobody attaches this
-- SECURITY DEFINER function to a table of their own.
REVOKE EXECUTE ON FUNCTION lamin.tg_job_let_sidecar_act() FROM PUBLIC;

-- Users cancel their jobs (lamin.cancel_job) and change nothing else of a job
-- row: the columns they may update are limited by privileges, the transition
-- by this trigger. The sidecar (and superusers) run the queue.
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
-- (Not for the sidecar, nor for a superuser's session, e.g. a sidecar logged
-- in as the instance's owner: their queue updates pay nothing. is_superuser
-- follows SET ROLE; a superuser-owned SECURITY DEFINER function called by a
-- user still fires it, and is_unrestricted then lets it pass, as before.)
CREATE TRIGGER job_user_update BEFORE UPDATE ON lamin.job FOR EACH ROW
WHEN (current_user <> 'lamin_sidecar' AND current_setting('is_superuser') <> 'on')
EXECUTE FUNCTION lamin.tg_job_user_update();

-- Locked records change only by admins of their space (and so does the lock).
CREATE FUNCTION lamin.tg_check_lock() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (OLD.is_locked OR (TG_OP = 'UPDATE' AND NEW.is_locked IS DISTINCT FROM OLD.is_locked))
       AND NOT lamin.has_space_level(OLD.space_id, 'admin') THEN
        RAISE EXCEPTION 'record % of % is locked: only admins of its space may % it', OLD.uid, TG_TABLE_NAME,
            CASE WHEN TG_OP = 'DELETE' THEN 'delete' WHEN OLD.is_locked THEN 'change' ELSE 'lock' END
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

-- Whether a user may insert a record with this uid: one lamin.uid handed out
-- in this session (whole, or as the stem of a new family), or a new version
-- of a family the user can read. So a uid of a record in a space the user
-- cannot read is never theirs to try (its unique-key error would tell).
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

-- A record's uid is one lamin handed out (lamin.uid_is_fresh): checked per
-- row before the unique index could answer (the trigger's WHEN lets every
-- uid of lamin.uid through at the cost of one lookup in memory). Superusers
-- (restores, copies between instances) load records as they were.
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

-- Fields the system owns: who created a record and when are set by lamin on
-- insert and never change after; a new record is locked only by an admin of
-- its space. Checked per statement (bulk imports pay one query). Superusers
-- (restores) load records as they were.
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

-- The stored content of an artifact that is ready (or found corrupt) is what
-- its hash says: hash, size, file count and hash type change only while it is
-- pending (new versions hold new content), and it does not go back to pending
-- or failed (verification moves it between ready and corrupt).
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

-- The audit log: who changed which record when, appended by statement-level
-- triggers on every registry; nobody (superusers included) updates or
-- deletes its rows, and no role can insert into it directly.
CREATE TABLE lamin.audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    role_name  name NOT NULL DEFAULT current_user,
    registry   text NOT NULL,
    operation  text NOT NULL CONSTRAINT audit_operation_known CHECK (operation IN ('insert', 'update', 'delete')),
    record_id  bigint,
    uid        text,
    space_id   bigint NOT NULL DEFAULT 1,
    fields     text[],
    n_rows     bigint NOT NULL DEFAULT 1
);
CREATE INDEX audit_record ON lamin.audit (registry, record_id);
CREATE INDEX audit_at ON lamin.audit (at);
COMMENT ON TABLE lamin.audit IS 'Append-only log of inserts, updates and deletes on registries: who, when, which record, which fields.';
COMMENT ON COLUMN lamin.audit.id IS 'Order of the audit rows.';
COMMENT ON COLUMN lamin.audit.at IS 'When the change happened (start of its transaction).';
COMMENT ON COLUMN lamin.audit.role_name IS 'The role that made the change (the requester, for sidecar jobs).';
COMMENT ON COLUMN lamin.audit.registry IS 'The table, e.g. lamin.artifact.';
COMMENT ON COLUMN lamin.audit.operation IS 'insert, update or delete.';
COMMENT ON COLUMN lamin.audit.record_id IS 'The record''s id (NULL in summary rows).';
COMMENT ON COLUMN lamin.audit.uid IS 'The record''s uid, where it has one.';
COMMENT ON COLUMN lamin.audit.space_id IS 'The record''s space: who can read the audit row.';
COMMENT ON COLUMN lamin.audit.fields IS 'insert: the fields set; update: the fields changed; delete: NULL.';
COMMENT ON COLUMN lamin.audit.n_rows IS '1, or the number of rows of a bulk statement summarised in one row (ontology imports).';

CREATE FUNCTION lamin.tg_audit_guard() RETURNS trigger
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
-- Who inserts does not depend on the row: checked once per statement (a
-- bulk statement's audit rows pay nothing each).
CREATE TRIGGER audit_insert_guard BEFORE INSERT ON lamin.audit FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit_guard();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON lamin.audit FOR EACH ROW EXECUTE FUNCTION lamin.tg_audit_guard();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON lamin.audit FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit_guard();

-- The role a session acts as: the one SET ROLE chose (a sidecar connection
-- sets role=<requester> at its start), else the login (also when SET ROLE
-- chose one of the shared instance roles: the person is the login). Unlike current_user it
-- stays the same inside SECURITY DEFINER functions, and no function can
-- forge it.
CREATE FUNCTION lamin.acting_role() RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN current_setting('role') IN ('none', 'lamin_reader', 'lamin_writer', 'lamin_admin') THEN session_user
                ELSE current_setting('role') END::name
$$;
COMMENT ON FUNCTION lamin.acting_role() IS 'The role the session acts as (SET ROLE, else the login), also inside SECURITY DEFINER functions.';

-- Whether this session is a superuser's pg_restore: it reloads the audit rows
-- and records as they were (no new audit rows, no duplicate-name guard). The
-- application name alone is anyone's to set; a superuser could switch the
-- triggers off anyway.
CREATE FUNCTION lamin.is_restoring() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT current_setting('application_name') = 'pg_restore'
       AND coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = lamin.acting_role()), false)
$$;
COMMENT ON FUNCTION lamin.is_restoring() IS 'Whether this session is a superuser''s pg_restore (which reloads audit rows and records as they were).';

-- Whether a bulk import may summarise its audit rows (lamin.audit_summary =
-- on, set by the import functions): only in sessions of the sidecar (which
-- runs lamin's import code for a requester) or of a superuser. A user's own
-- session is audited row by row, whatever it sets.
CREATE FUNCTION lamin.audit_in_summary() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(current_setting('lamin.audit_summary', true), '') = 'on'
       AND (session_user = 'lamin_sidecar'
            OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = lamin.acting_role()), false))
$$;
COMMENT ON FUNCTION lamin.audit_in_summary() IS 'Whether this statement''s audit rows are summarised: a bulk import run by the sidecar or a superuser.';

-- One trigger function for the three events: the rows come from transition
-- tables, so a statement touching many rows writes its audit rows in one go.
-- Bulk imports (lamin.audit_in_summary) write one summary row instead.
-- SECURITY DEFINER: audit rows are lamin's, never written by the roles whose
-- changes they record; the role named is the session's (SET ROLE, or the
-- requester a sidecar connection acts as), which the function cannot forge.
-- A space's own rows are audited in that space (readers of "all" do not
-- learn of spaces they cannot read).
CREATE FUNCTION lamin.tg_audit() RETURNS trigger
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
-- (Nobody attaches it to a table of their own: it writes audit rows as lamin.)
REVOKE EXECUTE ON FUNCTION lamin.tg_audit() FROM PUBLIC;

-- Row-level security for one table, by what kind of table it is:
--   'space'    records of a space: read / write by the space's grants
--   'shared'   ontologies and reference tables: read by lamin roles, written by writers
--   'link:EXPR' link rows: visible with their owner record, written with it;
--              EXPR names the owner, e.g. 'lamin.artifact:artifact_id'
-- plus the privileges that go with it, the lock trigger (where records can
-- be locked) and the audit triggers (registries). Idempotent.
CREATE FUNCTION lamin.secure_table(tbl regclass, kind text, audited boolean DEFAULT false) RETURNS void
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
        -- One policy per writing command, none FOR ALL: a FOR ALL policy
        -- also applies to SELECT, where it is OR-ed with link_read, and a
        -- reader would pay a second look-up of the owner on every row read.
        FOR p IN SELECT x.cmd, x.clauses FROM (VALUES
                     ('INSERT', 'WITH CHECK (%5$s%6$s)'),
                     ('UPDATE', 'USING (%5$s) WITH CHECK (%5$s%6$s)'),
                     ('DELETE', 'USING (%5$s)')) x(cmd, clauses)
        LOOP
            EXECUTE format('CREATE POLICY %1$I ON %2$s FOR %3$s ' || p.clauses, 'link_' || lower(p.cmd), tbl, p.cmd, NULL,
                           format('EXISTS (SELECT FROM %s o WHERE o.id = %I AND %s)', owner_table::regclass, owner_column,
                                  replace(writable, 'space_id', 'o.space_id')),
                           ends);
        END LOOP;
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
COMMENT ON FUNCTION lamin.secure_table(regclass, text, boolean) IS 'Apply lamin''s row-level security, privileges, lock and audit triggers to a table (idempotent).';

-- Every table of lamin and bionty, by kind. Run again after adding a registry.
CREATE FUNCTION lamin.secure_all() RETURNS void
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
COMMENT ON FUNCTION lamin.secure_all() IS 'Apply row-level security, privileges, lock and audit triggers to every lamin and bionty table (idempotent; run after adding a registry).';
SELECT lamin.secure_all();

-- Spaces: visible when readable; created and changed by their admins.
ALTER TABLE lamin.space ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON lamin.space TO lamin_reader, lamin_sidecar;
GRANT INSERT, UPDATE, DELETE ON lamin.space TO lamin_reader;
CREATE POLICY space_read ON lamin.space FOR SELECT
    USING (id = ANY ((SELECT lamin.readable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));
CREATE POLICY space_sidecar ON lamin.space FOR SELECT TO lamin_sidecar USING (true);
CREATE POLICY space_create ON lamin.space FOR INSERT WITH CHECK (pg_has_role('lamin_admin', 'USAGE'));
CREATE POLICY space_change ON lamin.space FOR UPDATE
    USING ((id = ANY ((SELECT lamin.admin_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin())) AND id > 1);
CREATE POLICY space_drop ON lamin.space FOR DELETE
    USING ((id = ANY ((SELECT lamin.admin_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin())) AND id > 1);

-- Grants: every lamin role sees who may access what (as collaborators are
-- listed in LaminDB); only a space's admins change its grants.
ALTER TABLE lamin.space_access ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON lamin.space_access TO lamin_reader;
CREATE POLICY access_read ON lamin.space_access FOR SELECT USING (true);
CREATE POLICY access_grant ON lamin.space_access FOR INSERT
    WITH CHECK (space_id = ANY ((SELECT lamin.admin_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));
CREATE POLICY access_change ON lamin.space_access FOR UPDATE
    USING (space_id = ANY ((SELECT lamin.admin_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()))
    WITH CHECK (space_id = ANY ((SELECT lamin.admin_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));
CREATE POLICY access_revoke ON lamin.space_access FOR DELETE
    USING (space_id = ANY ((SELECT lamin.admin_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));

-- Users: every lamin role sees the handles; each role adds only itself.
ALTER TABLE lamin."user" ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON lamin."user" TO lamin_reader;
GRANT SELECT ON lamin."user" TO lamin_sidecar;
CREATE POLICY user_read ON lamin."user" FOR SELECT USING (true);
CREATE POLICY user_self ON lamin."user" FOR INSERT WITH CHECK (handle = current_user);

-- Audit rows: readable with their space; written only by the audit triggers.
ALTER TABLE lamin.audit ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON lamin.audit TO lamin_reader;
CREATE POLICY audit_read ON lamin.audit FOR SELECT
    USING (space_id = ANY ((SELECT lamin.readable_spaces())::bigint[]) OR (SELECT lamin.is_instance_admin()));
CREATE TRIGGER audit_insert AFTER INSERT ON lamin.space REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit();
CREATE TRIGGER audit_update AFTER UPDATE ON lamin.space REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit();
CREATE TRIGGER audit_delete AFTER DELETE ON lamin.space REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit();

-- Jobs: each role sees, enqueues and cancels its own; the sidecar works them all.
ALTER TABLE lamin.job ENABLE ROW LEVEL SECURITY;
-- Users name what to do (kind, arguments, attempts); everything else of a row
-- is the queue's, and of its columns they may only cancel (see job_user_update).
GRANT SELECT ON lamin.job TO lamin_reader;
GRANT INSERT (kind, args, max_attempts) ON lamin.job TO lamin_reader;
GRANT UPDATE (status, finished_at, updated_at, lease_until) ON lamin.job TO lamin_reader;
GRANT SELECT, UPDATE ON lamin.job TO lamin_sidecar;
GRANT INSERT (kind, args, max_attempts) ON lamin.job TO lamin_sidecar;
CREATE POLICY job_own ON lamin.job USING (requested_by = current_user) WITH CHECK (requested_by = current_user);
CREATE POLICY job_sidecar ON lamin.job TO lamin_sidecar USING (true) WITH CHECK (true);
-- Monitoring roles see every job (lamin.jobs), as the README says; instance
-- admins the sidecar's own (the sweeps they ask for, deletes of bytes).
CREATE POLICY job_monitor ON lamin.job FOR SELECT TO pg_monitor USING (true);
CREATE POLICY job_internal ON lamin.job FOR SELECT TO lamin_admin USING (requested_by = 'lamin_sidecar');
GRANT USAGE ON SCHEMA lamin TO pg_monitor;
GRANT SELECT ON lamin.job TO pg_monitor;
GRANT SELECT ON lamin.jobs TO lamin_reader, pg_monitor;

-- The sidecar's own maintenance (storage sweeps) sees storages and artifacts;
-- everything else it does as the job's requester.
GRANT SELECT ON lamin.storage, lamin.artifact TO lamin_sidecar;
GRANT UPDATE (status, status_detail, updated_at) ON lamin.artifact TO lamin_sidecar;
CREATE POLICY storage_sidecar ON lamin.storage FOR SELECT TO lamin_sidecar USING (true);
CREATE POLICY artifact_sidecar_read ON lamin.artifact FOR SELECT TO lamin_sidecar USING (true);
CREATE POLICY artifact_sidecar_sweep ON lamin.artifact FOR UPDATE TO lamin_sidecar USING (status IN ('pending', 'failed')) WITH CHECK (true);
GRANT SELECT ON lamin.space_access TO lamin_sidecar;
GRANT EXECUTE ON FUNCTION lamin.enqueue_sweep(bigint, int) TO lamin_admin, lamin_sidecar;

-- The views read the tables as the caller (their policies apply).
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT c.oid::regclass AS name FROM pg_class c
             WHERE c.relkind = 'v' AND c.relnamespace IN ('lamin'::regnamespace, 'bionty'::regnamespace)
    LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v.name);
        EXECUTE format('GRANT SELECT ON %s TO lamin_reader', v.name);
    END LOOP;
END
$$;

-- Backups keep the grants and the audit log.
SELECT pg_catalog.pg_extension_config_dump('lamin.space_access', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.audit', '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.audit', 'id')::regclass, '');
