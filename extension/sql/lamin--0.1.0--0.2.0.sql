-- lamin 0.1.0 → 0.2.0: the version handshake between extension, sidecar and
-- CLI; backups that keep jobs and the registries users made searchable; the
-- search trigger functions no longer executable by everyone. Run by ALTER
-- EXTENSION lamin UPDATE in one transaction (all or nothing); it rewrites no
-- table. Definitions are copied verbatim from sql/ (the upgrade test compares
-- the result with a fresh install object by object).
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

-- The queue: a worker names the release it speaks.
-- The signature of 0.1.0, whose sidecars do not say which release they speak:
-- they claim nothing from a newer schema.
CREATE OR REPLACE FUNCTION lamin.claim_job(worker text, lease_s int DEFAULT 30, kinds text[] DEFAULT NULL, n int DEFAULT 1)
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
                           progress_done = NULL, progress_total = NULL
    WHERE j.id = ANY (picked)
    RETURNING j.*;
END
$$;
COMMENT ON FUNCTION lamin.claim_job(text, text, int, text[], int) IS 'Sidecar: claim up to n of the oldest ready jobs (FOR UPDATE SKIP LOCKED) with a lease, taking over running jobs whose lease expired first; refuses a worker whose version (sidecar_version) is not the installed extension''s.';

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

-- The generated trigger functions (search_* is SECURITY DEFINER) could be
-- attached by anyone to a table of their own: only lamin's owner may now.
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
    IF coalesce(current_setting('lamin.allow_duplicates', true), '') IN ('on', 'true', '1')
       OR current_setting('application_name') = 'pg_restore' THEN
        RETURN NULL;
    END IF;
    -- (Two statements: old_rows exists only for UPDATE.)
    IF TG_OP = 'INSERT' THEN
        SELECT n.%3$I AS new_name, t.uid, t.name, t.kind INTO clash
        FROM new_rows n CROSS JOIN LATERAL (
            SELECT t.uid, t.name, t.kind FROM lamin.search_term t
            WHERE t.term_fold = lower(n.%3$I) COLLATE "C" AND t.registry = reg_name AND t.record_id <> n.id LIMIT 1) t
        LIMIT 1;
    ELSE
        SELECT n.%3$I AS new_name, t.uid, t.name, t.kind INTO clash
        FROM new_rows n JOIN old_rows o ON o.id = n.id CROSS JOIN LATERAL (
            SELECT t.uid, t.name, t.kind FROM lamin.search_term t
            WHERE t.term_fold = lower(n.%3$I) COLLATE "C" AND t.registry = reg_name AND t.record_id <> n.id LIMIT 1) t
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
    SELECT lower(n.%3$I) AS dup INTO clash FROM new_rows n GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
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
DO $$
DECLARE
    fn text;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'lamin'::regnamespace AND p.prorettype = 'trigger'::regtype
          AND EXISTS (SELECT FROM lamin.registry r
                      WHERE p.proname IN ('search_' || replace(r.name, '.', '__'), 'guard_' || replace(r.name, '.', '__')))
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;
END
$$;

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

-- Only for superusers (who restore lamin databases), as themselves: indexing
-- reads the table, and nobody else may make lamin read a table of their
-- choosing with rights they do not have. Tables only (not views).
CREATE FUNCTION lamin.tg_search_trigger_created() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg lamin.registry;
BEGIN
    IF current_setting('lamin.making_searchable', true) = 'on'
       OR NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN;
    END IF;
    FOR reg IN
        SELECT r.* FROM pg_event_trigger_ddl_commands() c
        JOIN pg_trigger t ON t.oid = c.objid
        JOIN pg_class k ON k.oid = t.tgrelid AND k.relkind IN ('r', 'p')
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
