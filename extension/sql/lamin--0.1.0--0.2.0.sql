-- lamin 0.1.0 → 0.2.0: the version handshake between extension, sidecar and CLI.
-- Also: backups keep jobs and the registries users made searchable. Run by
-- ALTER EXTENSION lamin UPDATE in one transaction (all or nothing); nothing
-- here rewrites a table.
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

-- Backups keep what 0.1.0 lost on pg_dump / pg_restore.

-- Jobs: a restored instance still knows what was queued (and runs it) and what ran.
SELECT pg_catalog.pg_extension_config_dump('lamin.job', '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.job', 'id')::regclass, '');

-- Restoring jobs of roles the cluster lacks must not stop the restore.
CREATE OR REPLACE FUNCTION lamin.tg_job_check_kind() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    needed name;
BEGIN
    IF pg_column_size(NEW.args) > 1048576 THEN
        RAISE EXCEPTION 'job arguments of % bytes: at most 1 MB (pass names of files or records, not data)',
            pg_column_size(NEW.args) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT k.needs_role INTO needed FROM lamin.job_kind k WHERE k.kind = NEW.kind;
    IF NOT (pg_has_role(needed, 'USAGE') OR lamin.is_unrestricted()
            OR (NEW.kind = 'sweep_storage' AND current_user = 'lamin_sidecar')) THEN
        RAISE EXCEPTION 'permission denied: jobs of kind % need role %', NEW.kind, needed
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The sidecar will run the job as its requester: let it (ordinary lamin roles only).
    -- A superuser may load jobs of roles this cluster lacks (a restore): the
    -- sidecar then fails them naming the role.
    IF NEW.requested_by <> current_user AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = NEW.requested_by)
       AND lamin.is_unrestricted() THEN
        RETURN NEW;
    END IF;
    IF NOT pg_has_role('lamin_sidecar', NEW.requested_by, 'MEMBER') THEN
        PERFORM lamin.let_sidecar_act_as(NEW.requested_by);
    END IF;
    RETURN NEW;
END
$$;

-- Searchable registries: the guard setting is recorded (a restore re-arms a
-- table with it); registries made searchable before kept theirs only in
-- their triggers.
ALTER TABLE lamin.registry ADD COLUMN guard boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN lamin.registry.guard IS 'Whether new and renamed records are checked against existing names and synonyms (make_searchable''s guard).';
UPDATE lamin.registry r SET guard = EXISTS (
    SELECT FROM pg_trigger t WHERE t.tgrelid = to_regclass(r.name) AND t.tgname = 'search_a_guard_insert');

-- Index every row of a registry afresh (trash excluded).
CREATE FUNCTION lamin.index_registry(reg lamin.registry) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM lamin.search_word w WHERE w.registry = reg.name;
    DELETE FROM lamin.search_term t WHERE t.registry = reg.name;
    EXECUTE lamin.search_add_terms_sql(reg, reg.name::regclass::text);
END
$$;
COMMENT ON FUNCTION lamin.index_registry(lamin.registry) IS 'Rebuild the search index rows of one registry from its table.';

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

-- Restores. pg_dump keeps the rows of lamin.registry that users added (the
-- built-in ones come with CREATE EXTENSION), not what make_searchable built
-- around them: the search index is derived and not dumped, and triggers on
-- lamin's own tables are not dumped either (the tables belong to the
-- extension). Two hooks rebuild both, whoever restores:
--  * a registry row that arrives on its own for one of lamin's own tables
--    (pg_restore, or an INSERT by an admin) arms that table: triggers, index;
--  * a search trigger that arrives on its own on a user's table (pg_restore
--    creates triggers after it loaded the table's rows) indexes those rows.
-- make_searchable sets lamin.making_searchable, so neither runs inside it.
CREATE FUNCTION lamin.tg_registry_arm() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('lamin.making_searchable', true) = 'on' THEN
        RETURN NULL;
    END IF;
    -- A user's table brings its triggers along in a dump (after its rows):
    -- arming it here would collide with them.
    IF EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE d.classid = 'pg_class'::regclass AND d.objid = to_regclass(NEW.name)
                 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'lamin') THEN
        PERFORM lamin.make_searchable(NEW.name::regclass, NEW.name_field, NEW.synonyms_field, NEW.abbr_field, NEW.id_field,
                                      NEW.organism_field, NEW.deprecated_field, NEW.guard);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.tg_registry_arm() IS 'A registry row added outside make_searchable (a restore) for one of lamin''s own tables makes that table searchable again.';
CREATE TRIGGER registry_arm AFTER INSERT ON lamin.registry FOR EACH ROW EXECUTE FUNCTION lamin.tg_registry_arm();

-- SECURITY DEFINER: whoever restores a user's table indexes its rows, with
-- no right on the index; only tables listed in lamin.registry are indexed.
CREATE FUNCTION lamin.tg_search_trigger_created() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg lamin.registry;
BEGIN
    IF current_setting('lamin.making_searchable', true) = 'on' THEN
        RETURN;
    END IF;
    FOR reg IN
        SELECT r.* FROM pg_event_trigger_ddl_commands() c
        JOIN pg_trigger t ON t.oid = c.objid
        JOIN lamin.registry r ON to_regclass(r.name) = t.tgrelid
        WHERE c.classid = 'pg_trigger'::regclass AND t.tgname = 'search_b_terms_insert'
    LOOP
        PERFORM lamin.index_registry(reg);
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.tg_search_trigger_created() IS 'A search trigger created outside make_searchable (a restore of a user''s searchable table) indexes the table''s rows.';
CREATE EVENT TRIGGER lamin_search_trigger_created ON ddl_command_end WHEN TAG IN ('CREATE TRIGGER')
EXECUTE FUNCTION lamin.tg_search_trigger_created();
COMMENT ON EVENT TRIGGER lamin_search_trigger_created IS 'Indexes a searchable user table whose search triggers a restore re-creates (see lamin.tg_search_trigger_created).';

-- Registries users add are dumped (and re-armed on restore, see above); the
-- built-in ones are re-created by CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('lamin.registry', $$WHERE name !~ '^bionty\.' AND name NOT IN ('lamin.ulabel', 'lamin.feature')$$);
