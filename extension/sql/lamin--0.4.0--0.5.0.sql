\echo Use "ALTER EXTENSION lamin UPDATE TO '0.5.0'" to load this file. \quit
-- lamin 0.4.0 → 0.5.0 (issue 16, the daily loop). Run by ALTER EXTENSION lamin
-- UPDATE in one transaction (all or nothing). Definitions are copied verbatim
-- from sql/ and from what `cargo pgrx schema` prints (the upgrade test compares
-- the result with a fresh install object by object). Each concern has its own
-- section below.

-- == search: letter/digit tokens, general terms first, the guard's probe ==

-- The duplicate guard's probe and the index triggers' term lookup were planned
-- on a registry-leading index with only the registry as condition whenever the
-- statistics saw the registry (nearly) empty, e.g. labels loaded in one
-- transaction after the default ontologies: every probe walked all the
-- registry's terms, quadratic in the load. The probed columns now lead their
-- indexes, followed by the registry in collation "C", which the probes compare
-- in "C": each probe matches one index exactly. Rebuilding both indexes reads
-- lamin.search_term once each (a sort of its rows: seconds per million terms).
DROP INDEX lamin.search_term_record;
DROP INDEX lamin.search_term_fold;
CREATE INDEX search_term_record ON lamin.search_term (record_id, registry COLLATE "C");
CREATE INDEX search_term_fold ON lamin.search_term (term_fold, registry COLLATE "C");

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
    -- registry would tempt the planner onto the (registry, word) index; terms
    -- are found by record id and registry in collation "C", see
    -- search_term_record.)
    reg_name text := %2$L;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Rows of this statement may already have terms from an UPDATE nested in
        -- its row triggers (e.g. a version family's head moving).
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.record_id = ANY (ARRAY(SELECT n.id FROM new_rows n)) AND t.registry COLLATE "C" = reg_name RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
        %3$s;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.record_id = ANY (ARRAY(SELECT c.id FROM %4$s c)) AND t.registry COLLATE "C" = reg_name RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
        %5$s;
    ELSE
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.record_id = ANY (ARRAY(SELECT o.id FROM old_rows o)) AND t.registry COLLATE "C" = reg_name RETURNING t.id)
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
            WHERE t.term_fold = ANY (lamin.name_variants(n.%3$I) COLLATE "C") AND t.registry COLLATE "C" = reg_name AND t.record_id <> n.id LIMIT 1) t
        LIMIT 1;
    ELSE
        SELECT n.%3$I AS new_name, t.uid, t.name, t.kind INTO clash
        FROM new_rows n JOIN old_rows o ON o.id = n.id CROSS JOIN LATERAL (
            SELECT t.uid, t.name, t.kind FROM lamin.search_term t
            WHERE t.term_fold = ANY (lamin.name_variants(n.%3$I) COLLATE "C") AND t.registry COLLATE "C" = reg_name AND t.record_id <> n.id LIMIT 1) t
        WHERE n.%3$I IS DISTINCT FROM o.%3$I
        LIMIT 1;
    END IF;
    IF clash.uid IS NOT NULL THEN
        RAISE EXCEPTION '%% %% already exists as the %% of record %% (%%)', %2$L, quote_literal(clash.new_name),
            lamin.term_kind_name(clash.kind),
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

-- make_searchable drops only the triggers that exist (no "does not exist,
-- skipping" NOTICEs).
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
    old_trigger name;
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
    -- Only the triggers that exist are dropped: DROP TRIGGER IF EXISTS would
    -- say "does not exist, skipping" for each one a new registry lacks.
    FOR old_trigger IN
        SELECT t.tgname FROM pg_trigger t
        WHERE t.tgrelid = registry AND NOT t.tgisinternal
          AND t.tgname IN ('search_a_guard_insert', 'search_a_guard_update', 'search_b_terms_insert',
                           'search_b_terms_update', 'search_b_terms_delete')
        ORDER BY t.tgname
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', old_trigger, registry);
    END LOOP;
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

-- The trigger functions of lamin's own registries take the new templates.
-- Those of registries users made searchable are theirs (not the extension's):
-- their old text still works (with the old probes), and scripts/up (and the
-- README's upgrade steps) regenerate them right after this update with
-- lamin.refresh_search_triggers().
SELECT lamin.create_search_trigger_functions(r, r.guard) FROM lamin.registry r
WHERE EXISTS (
    SELECT FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
    WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND p.pronamespace = 'lamin'::regnamespace AND p.proname = 'search_' || replace(r.name, '.', '__'));

-- == saving, curation, annotation, jobs, views and errors ==

-- Feature dtypes: an unknown one is named, with the known ones and a guess
-- (integer -> int), before the check constraint would reject it.
CREATE OR REPLACE FUNCTION lamin.tg_feature_dtype_registry() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    registry text := lamin.dtype_registry(NEW.dtype);
    -- What people write for LaminDB's dtypes (Python, pandas, SQL names).
    alias text := CASE lower(btrim(NEW.dtype))
        WHEN 'integer' THEN 'int' WHEN 'int64' THEN 'int' WHEN 'int32' THEN 'int' WHEN 'bigint' THEN 'int'
        WHEN 'smallint' THEN 'int' WHEN 'float64' THEN 'float' WHEN 'double' THEN 'float' WHEN 'real' THEN 'float'
        WHEN 'double precision' THEN 'float' WHEN 'numeric' THEN 'num' WHEN 'number' THEN 'num' WHEN 'decimal' THEN 'num'
        WHEN 'string' THEN 'str' WHEN 'text' THEN 'str' WHEN 'varchar' THEN 'str' WHEN 'object' THEN 'str'
        WHEN 'boolean' THEN 'bool' WHEN 'timestamp' THEN 'datetime' WHEN 'timestamptz' THEN 'datetime'
        WHEN 'datetime64' THEN 'datetime' WHEN 'json' THEN 'dict' WHEN 'jsonb' THEN 'dict'
        WHEN 'category' THEN 'cat' WHEN 'categorical' THEN 'cat' WHEN 'ulabel' THEN 'cat'
        ELSE CASE WHEN lower(btrim(NEW.dtype)) ~ '^(int|float|num|str|bool|date|datetime|dict|url|path|cat)$'
                  THEN lower(btrim(NEW.dtype)) END END;
BEGIN
    -- Said before the check constraint would reject it with its definition.
    IF NEW.dtype IS NOT NULL AND NEW.dtype !~ '^(int|float|num|str|bool|date|datetime|dict|url|path|cat|cat\[[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\])$' THEN
        RAISE EXCEPTION 'feature %: unknown dtype %', quote_literal(NEW.name),
            quote_literal(NEW.dtype) || CASE WHEN alias IS NOT NULL THEN format(' (did you mean %L?)', alias) ELSE '' END
            USING ERRCODE = 'check_violation',
                  HINT = 'the dtypes are int, float, num, str, bool, date, datetime, dict, url, path, cat (labels of lamin.ulabel) and cat[schema.table] (records of a registry, e.g. cat[bionty.cell_type])';
    END IF;
    IF registry IS NOT NULL AND to_regclass(registry) IS NULL THEN
        RAISE EXCEPTION 'feature %: dtype % names unknown registry %', quote_literal(NEW.name), NEW.dtype, registry
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'use cat[lamin.ulabel] or another existing registry table';
    END IF;
    RETURN NEW;
END
$$;
-- Writes into a space the caller cannot write are refused naming the space and
-- the missing grant (save_artifact, save_collection, track, create_feature).
CREATE OR REPLACE FUNCTION lamin.require_write(what text) RETURNS void
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

-- The content-hash indexes hold the hash before the space: saving looks
-- content up by hash in every space the caller reads, and with the space
-- first each lookup walked the storage's (or the table's) whole index.
-- Rebuilding reads each table once.
DROP INDEX lamin.artifact_hash_unique;
CREATE UNIQUE INDEX artifact_hash_unique ON lamin.artifact (storage_id, hash, space_id) WHERE hash IS NOT NULL;
DROP INDEX lamin.collection_hash_unique;
CREATE UNIQUE INDEX collection_hash_unique ON lamin.collection (hash, space_id) WHERE hash IS NOT NULL;
DROP INDEX lamin.transform_hash_unique;
CREATE UNIQUE INDEX transform_hash_unique ON lamin.transform (hash, space_id) WHERE hash IS NOT NULL;
ALTER TABLE lamin.schema DROP CONSTRAINT schema_hash_unique, ADD CONSTRAINT schema_hash_unique UNIQUE (hash, space_id);

-- De-duplication within what the caller can read; known content names the
-- record it returns (key, space) and says that the key given is not recorded.
CREATE OR REPLACE FUNCTION lamin.save_artifact(
    hash           text,
    size           bigint,
    key            text DEFAULT NULL,
    suffix         text DEFAULT NULL,
    description    text DEFAULT NULL,
    storage        text DEFAULT NULL,
    revises        text DEFAULT NULL,
    version        text DEFAULT NULL,
    kind           text DEFAULT NULL,
    otype          text DEFAULT NULL,
    n_files        bigint DEFAULT NULL,
    n_observations bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    sid bigint;
    existing record;
    family text;
    new_uid text;
    here bigint;
BEGIN
    IF hash IS NULL OR hash !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'invalid hash %: expected the sha256 of the full content as 64 lowercase hex characters',
            coalesce(quote_literal(left(hash, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF size IS NULL OR size < 0 THEN
        RAISE EXCEPTION 'invalid size %: expected a byte count >= 0', coalesce(size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lamin.check_key(key);
    sid := lamin.storage_id(storage);

    -- One writer per content: the second of two concurrent savers waits here
    -- and then finds the first one's record.
    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.artifact.hash:' || sid || ':' || hash, 0));
    -- De-duplication within what the caller can read (row-level security
    -- hides the rest): content stored in a space the caller cannot read is
    -- not found here, and the new record goes to the caller's space (the
    -- unique index is per space), so nobody learns of content they cannot
    -- read. Among readable copies, the one in the current space wins.
    here := lamin.current_space_id();
    SELECT a.id, a.uid, a.run_id, a.branch_id, a.key AS old_key, a.space_id INTO existing
    FROM lamin.artifact a
    WHERE a.storage_id = sid AND a.hash = save_artifact.hash
    ORDER BY a.space_id = here DESC, a.branch_id = -1, a.id
    LIMIT 1;
    IF FOUND THEN
        IF existing.branch_id = -1 THEN
            UPDATE lamin.artifact SET branch_id = 1 WHERE id = existing.id;
        END IF;
        -- Say which record came back, and that the key given is not recorded.
        RAISE NOTICE '%', format('same content already saved as artifact %s (%s, space %s)%s%s: returning it, nothing new is stored',
            existing.uid, coalesce('key ' || quote_literal(existing.old_key), 'no key'),
            quote_literal((SELECT sp.name FROM lamin.space sp WHERE sp.id = existing.space_id)),
            CASE WHEN existing.branch_id = -1 THEN ', restored from the trash' ELSE '' END,
            CASE WHEN key IS DISTINCT FROM existing.old_key AND key IS NOT NULL
                 THEN format('; the key %s you gave is not recorded (save different content there, or use revises)', quote_literal(key))
                 ELSE '' END)
            USING HINT = 'the current run (if any) is recorded as re-creating it: lamin.describe(uid) -> lineage -> recreating_runs';
        PERFORM lamin.note_recreating_run(existing.id, existing.run_id);
        RETURN existing.uid;
    END IF;

    PERFORM lamin.require_write('saving an artifact');
    IF revises IS NOT NULL THEN
        SELECT a.stem INTO family FROM lamin.artifact a WHERE a.uid = revises OR (length(revises) = 16 AND a.stem = revises) LIMIT 1;
        IF family IS NULL THEN
            RAISE EXCEPTION 'revises: no artifact with uid %', quote_literal(revises) USING ERRCODE = 'no_data_found';
        END IF;
    ELSIF key IS NOT NULL THEN
        -- Saving under an existing key makes a new version of that key's family.
        PERFORM pg_advisory_xact_lock(hashtextextended('lamin.artifact.key:' || sid || ':' || key, 0));
        SELECT a.stem INTO family FROM lamin.artifact a
        WHERE a.storage_id = sid AND a.key = save_artifact.key AND a.branch_id <> -1
        ORDER BY a.id DESC LIMIT 1;
    END IF;
    IF family IS NULL THEN
        new_uid := lamin.uid(16) || '0000';
    ELSE
        new_uid := lamin.next_version_uid('lamin.artifact', family);
    END IF;

    INSERT INTO lamin.artifact AS a (uid, key, description, storage_id, suffix, kind, otype, size, hash, hash_type,
                                     n_files, n_observations, run_id, version)
    VALUES (new_uid, key, description, sid, coalesce(suffix, lamin.suffix_from_key(key), ''), kind, otype, size,
            save_artifact.hash, CASE WHEN n_files IS NULL THEN 'sha256' ELSE 'sha256-dir' END,
            n_files, n_observations, lamin.current_run_id(), version)
    RETURNING a.uid INTO new_uid;
    RETURN new_uid;
END
$$;

CREATE OR REPLACE FUNCTION lamin.save_collection(
    key         text,
    artifacts   text[],
    description text DEFAULT NULL,
    revises     text DEFAULT NULL,
    version     text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    member_ids bigint[];
    member_hash text;
    missing text;
    existing record;
    family text;
    new_uid text;
    new_id bigint;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'a collection needs a key (its name)' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM lamin.check_key(key);
    IF artifacts IS NULL OR cardinality(artifacts) = 0 THEN
        RAISE EXCEPTION 'collection %: needs at least one artifact', quote_literal(key) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(artifacts) > 100000 THEN
        RAISE EXCEPTION 'collection %: % artifacts, at most 100000', quote_literal(key), cardinality(artifacts)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT array_agg(lamin.artifact_id(m.u) ORDER BY m.ord) INTO member_ids
    FROM unnest(artifacts) WITH ORDINALITY AS m(u, ord);
    IF (SELECT count(DISTINCT x) FROM unnest(member_ids) x) <> cardinality(member_ids) THEN
        RAISE EXCEPTION 'collection %: an artifact is listed twice', quote_literal(key) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(a.uid, ', ') INTO missing FROM lamin.artifact a WHERE a.id = ANY (member_ids) AND a.hash IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'collection %: artifacts without a content hash yet (pending): %', quote_literal(key), missing
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT encode(sha256(convert_to(string_agg(a.hash, E'\n' ORDER BY a.hash), 'UTF8')), 'hex') INTO member_hash
    FROM lamin.artifact a WHERE a.id = ANY (member_ids);

    PERFORM pg_advisory_xact_lock(hashtextextended('lamin.collection.hash:' || member_hash, 0));
    SELECT c.id, c.uid, c.run_id, c.branch_id INTO existing FROM lamin.collection c WHERE c.hash = member_hash;
    IF FOUND THEN
        IF existing.branch_id = -1 THEN
            UPDATE lamin.collection SET branch_id = 1 WHERE id = existing.id;
        END IF;
        RAISE NOTICE 'returning existing collection with same members: %', existing.uid;
        INSERT INTO lamin.collection_recreating_run (collection_id, run_id)
        SELECT existing.id, r FROM (SELECT lamin.current_run_id() AS r) cur
        WHERE r IS NOT NULL AND r IS DISTINCT FROM existing.run_id
        ON CONFLICT DO NOTHING;
        RETURN existing.uid;
    END IF;

    PERFORM lamin.require_write('saving a collection');
    IF revises IS NOT NULL THEN
        SELECT c.stem INTO family FROM lamin.collection c WHERE c.id = lamin.collection_id(revises);
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('lamin.collection.key:' || key, 0));
        SELECT c.stem INTO family FROM lamin.collection c
        WHERE c.key = save_collection.key AND c.branch_id <> -1 ORDER BY c.id DESC LIMIT 1;
    END IF;
    new_uid := CASE WHEN family IS NULL THEN lamin.uid(16) || '0000'
                    ELSE lamin.next_version_uid('lamin.collection', family) END;
    INSERT INTO lamin.collection AS c (uid, key, description, hash, run_id, version)
    VALUES (new_uid, key, description, member_hash, lamin.current_run_id(), version)
    RETURNING c.id INTO new_id;
    INSERT INTO lamin.collection_artifact (collection_id, artifact_id, position)
    SELECT new_id, m.id, (m.ord - 1)::int FROM unnest(member_ids) WITH ORDINALITY AS m(id, ord);
    RETURN new_uid;
END
$$;

CREATE OR REPLACE FUNCTION lamin.track(
    key         text,
    source_code text DEFAULT NULL,
    kind        text DEFAULT 'pipeline',
    description text DEFAULT NULL,
    params      jsonb DEFAULT NULL,
    version     text DEFAULT NULL
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
            transform_uid := CASE WHEN tf.id IS NULL THEN lamin.uid(12) || '0000'
                                  ELSE lamin.next_version_uid('lamin.transform', tf.stem) END;
            INSERT INTO lamin.transform AS t (uid, key, kind, description, source_code, hash, version)
            VALUES (transform_uid, key, kind, description, source_code, source_hash, version)
            RETURNING t.id, t.uid, t.hash, t.stem INTO tf;
        END IF;
    END IF;

    INSERT INTO lamin.run AS r (transform_id, params, status, initiated_by_run_id)
    VALUES (tf.id, params, 'started', lamin.current_run_id())
    RETURNING r.uid INTO run_uid;
    -- Session-wide (is_local = false); rolled back with the transaction if it aborts.
    PERFORM set_config('lamin.run_uid', run_uid, false);
    RETURN run_uid;
END
$$;

CREATE OR REPLACE FUNCTION lamin.use_run(uid text) RETURNS text
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
    PERFORM lamin.require_write('creating a feature');
    INSERT INTO lamin.feature AS f (name, dtype, description, unit)
    VALUES (name, dtype, description, unit) RETURNING f.uid INTO new_uid;
    RETURN new_uid;
END
$$;
-- annotate takes the field its values are of (annotate_curated passes the
-- field the curation matched on, e.g. bionty.gene's ensembl_gene_id); a value
-- with a typo gets inspect's suggestion.
CREATE OR REPLACE FUNCTION lamin.did_you_mean(registry text, vals text[], field text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    said text;
BEGIN
    SELECT 'did you mean ' || string_agg(format('%L for %L', coalesce(i.standardized, i.suggestion), i.value), ', ' ORDER BY i.value)
           || CASE WHEN bool_or(i.standardized IS NOT NULL)
                   THEN format(' (lamin.standardize(%L, ARRAY[...]) maps synonyms)', registry) ELSE '' END
    INTO said
    FROM lamin.inspect(registry, vals, field) i
    WHERE NOT i.validated AND coalesce(i.standardized, i.suggestion) IS NOT NULL;
    RETURN said;
EXCEPTION WHEN OTHERS THEN
    -- A registry inspect cannot read (not searchable): no suggestion.
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION lamin.did_you_mean(text, text[], text) IS
    'A sentence suggesting registry values (standardized synonyms or closest names) for values the registry does not hold; NULL when there is none.';

DROP FUNCTION lamin.annotate(text, text, text[]);
CREATE FUNCTION lamin.annotate(artifact_uid text, feature_name text, vals text[], field text DEFAULT NULL) RETURNS int
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
    hints text;
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
            hints := lamin.did_you_mean('lamin.ulabel', vals, NULL);
            RAISE EXCEPTION 'feature % (dtype %): values not in lamin.ulabel: %', quote_literal(feat.name), feat.dtype,
                missing || coalesce('; ' || hints, '')
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
        -- of its records, or values of `field` (e.g. ensembl_gene_id, the field
        -- a curation matched on), linked through <schema>.artifact_<table>.
        SELECT r.name_field INTO name_field FROM lamin.registry r WHERE r.name = registry;
        IF field IS NOT NULL AND name_field IS NOT NULL THEN
            IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(registry) AND a.attname = field
                           AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'annotate: % has no field %', registry, quote_literal(field)
                    USING ERRCODE = 'undefined_column',
                          HINT = format('the fields of %s are its text columns, e.g. %s', registry, name_field);
            END IF;
            name_field := field;
        END IF;
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
            hints := lamin.did_you_mean(registry, vals, name_field);
            RAISE EXCEPTION 'feature % (dtype %): values not in %: %', quote_literal(feat.name), feat.dtype,
                registry || CASE WHEN field IS NOT NULL THEN format(' (field %s)', name_field) ELSE '' END,
                missing || coalesce('; ' || hints, '')
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
COMMENT ON FUNCTION lamin.annotate(text, text, text[], text) IS
    'Annotate an artifact with values of a feature; categorical values must exist in the dtype''s registry (all or nothing). Returns the number of new links.';

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
    -- Link by the field the curation matched on (e.g. bionty.gene's
    -- ensembl_gene_id): the values are that field's, not names.
    RETURN lamin.annotate(artifact_uid, feature, labels, c.field);
END
$$;
-- describe of any record kind; the artifact document moved to describe_artifact.
CREATE OR REPLACE FUNCTION lamin.describe_artifact(uid text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'uid', a.uid,
        'key', a.key,
        'description', a.description,
        'version', a.version,
        'is_latest', a.is_latest,
        'suffix', a.suffix,
        'kind', a.kind,
        'otype', a.otype,
        'size', a.size,
        'hash', a.hash,
        'hash_type', a.hash_type,
        'n_files', a.n_files,
        'n_observations', a.n_observations,
        'status', a.status,
        'status_detail', a.status_detail,
        'checked_at', a.checked_at,
        'key_is_virtual', a.key_is_virtual,
        'branch', b.name,
        'space', sp.name,
        'created_at', a.created_at,
        'created_by', u.handle,
        'path', lamin.artifact_path(a),
        'storage', jsonb_build_object('uid', s.uid, 'root', s.root, 'type', s.type),
        'versions', (SELECT jsonb_agg(jsonb_build_object('uid', v.uid, 'version', v.version, 'is_latest', v.is_latest,
                                                         'created_at', v.created_at) ORDER BY v.id)
                     FROM lamin.artifact v WHERE v.stem = a.stem AND v.branch_id <> -1),
        'features', coalesce((
            SELECT jsonb_object_agg(fv.name, fv.vals) FROM (
                SELECT f.name, jsonb_agg(x.val ORDER BY x.val) AS vals FROM (
                    SELECT l.feature_id, to_jsonb(ul.name) AS val
                    FROM lamin.artifact_ulabel l JOIN lamin.ulabel ul ON ul.id = l.ulabel_id
                    WHERE l.artifact_id = a.id AND l.feature_id IS NOT NULL
                    UNION ALL
                    SELECT v.feature_id, v.value FROM lamin.artifact_feature_value v WHERE v.artifact_id = a.id
                    UNION ALL
                    SELECT r.feature_id, to_jsonb(r.name) FROM lamin.registry_annotations(a.id) r WHERE r.feature_id IS NOT NULL
                ) x JOIN lamin.feature f ON f.id = x.feature_id
                GROUP BY f.name
            ) fv), '{}'::jsonb),
        'labels', coalesce((
            SELECT jsonb_agg(jsonb_build_object('uid', x.uid, 'name', x.name, 'registry', x.registry, 'feature', f.name)
                             ORDER BY x.registry, x.name)
            FROM (SELECT l.feature_id, 'lamin.ulabel' AS registry, ul.uid, ul.name
                  FROM lamin.artifact_ulabel l JOIN lamin.ulabel ul ON ul.id = l.ulabel_id
                  WHERE l.artifact_id = a.id
                  UNION ALL
                  SELECT r.feature_id, r.registry, r.uid, r.name FROM lamin.registry_annotations(a.id) r) x
            LEFT JOIN lamin.feature f ON f.id = x.feature_id), '[]'::jsonb),
        'schemas', coalesce((
            SELECT jsonb_object_agg(asch.slot, jsonb_build_object(
                'uid', sc.uid, 'name', sc.name, 'itype', sc.itype, 'n_members', sc.n_members,
                'features', (SELECT jsonb_agg(jsonb_build_object('name', f.name, 'dtype', f.dtype) ORDER BY sf.position)
                             FROM lamin.schema_feature sf JOIN lamin.feature f ON f.id = sf.feature_id
                             WHERE sf.schema_id = sc.id)))
            FROM lamin.artifact_schema asch JOIN lamin.schema sc ON sc.id = asch.schema_id
            WHERE asch.artifact_id = a.id), '{}'::jsonb),
        'lineage', jsonb_build_object(
            'run', (SELECT jsonb_build_object('uid', r.uid, 'status', r.status, 'started_at', r.started_at,
                                              'finished_at', r.finished_at, 'params', r.params)
                    FROM lamin.run r WHERE r.id = a.run_id),
            'transform', (SELECT jsonb_build_object('uid', t.uid, 'key', t.key, 'kind', t.kind, 'version', t.version)
                          FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.id = a.run_id),
            'inputs', coalesce((SELECT jsonb_agg(DISTINCT x.source_uid) FROM lamin.lineage(a.uid) x
                                WHERE x.depth = 2 AND x.source_type IN ('artifact', 'collection')), '[]'::jsonb),
            'n_upstream', (SELECT count(DISTINCT x.source_uid) FROM lamin.lineage(a.uid) x),
            'recreating_runs', (SELECT coalesce(jsonb_agg(r.uid ORDER BY r.id), '[]'::jsonb)
                                FROM lamin.artifact_recreating_run rr JOIN lamin.run r ON r.id = rr.run_id
                                WHERE rr.artifact_id = a.id),
            'used_by_runs', (SELECT count(*) FROM lamin.run_input_artifact i WHERE i.artifact_id = a.id))
    )
    FROM lamin.artifact a
    JOIN lamin.storage s ON s.id = a.storage_id
    JOIN lamin.branch b ON b.id = a.branch_id
    JOIN lamin.space sp ON sp.id = a.space_id
    JOIN lamin."user" u ON u.id = a.created_by
    WHERE a.id = lamin.artifact_id($1)
$$;
COMMENT ON FUNCTION lamin.describe_artifact(text) IS
    'An artifact as one JSON document: fields, storage and path, versions, features and labels, schemas, lineage summary.';

CREATE OR REPLACE FUNCTION lamin.describe(uid text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rec record;
    doc jsonb;
BEGIN
    IF uid IS NOT NULL AND length(uid) IN (16, 20) AND EXISTS (
        SELECT FROM lamin.artifact a WHERE a.uid = uid OR (length(uid) = 16 AND a.stem = uid AND a.is_latest)) THEN
        RETURN lamin.describe_artifact(uid);
    END IF;
    IF uid IS NOT NULL AND length(uid) = 16 THEN
        -- A collection's version stem: its latest version.
        SELECT c.uid INTO rec FROM lamin.collection c WHERE c.stem = uid AND c.is_latest;
        IF FOUND THEN
            uid := rec.uid;
        END IF;
    END IF;
    SELECT * INTO rec FROM lamin.find_record(uid);
    EXECUTE format('SELECT to_jsonb(x) FROM %s x WHERE x.id = $1', rec.registry) INTO doc USING rec.record_id;
    doc := jsonb_build_object('record_kind', split_part(rec.registry::text, '.', 2), 'registry', rec.registry::text)
        || (doc - ARRAY['id', 'space_id', 'branch_id', 'created_by', 'run_id', 'transform_id', 'type_id', 'storage_id'])
        || jsonb_build_object(
            'space', (SELECT sp.name FROM lamin.space sp WHERE sp.id = (doc ->> 'space_id')::bigint),
            'branch', (SELECT b.name FROM lamin.branch b WHERE b.id = (doc ->> 'branch_id')::smallint),
            'created_by', (SELECT u.handle FROM lamin."user" u WHERE u.id = (doc ->> 'created_by')::bigint));
    IF rec.registry = 'lamin.run'::regclass THEN
        doc := (doc - 'initiated_by_run_id') || jsonb_build_object(
            'initiated_by_run', (SELECT p.uid FROM lamin.run r JOIN lamin.run p ON p.id = r.initiated_by_run_id
                                 WHERE r.id = rec.record_id),
            'transform', (SELECT jsonb_build_object('uid', t.uid, 'key', t.key, 'kind', t.kind, 'version', t.version)
                          FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.id = rec.record_id),
            'inputs', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY a.id)
                                FROM lamin.run_input_artifact i JOIN lamin.artifact a ON a.id = i.artifact_id
                                WHERE i.run_id = rec.record_id), '[]'::jsonb),
            'outputs', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY a.id)
                                 FROM lamin.artifact a WHERE a.run_id = rec.record_id AND a.branch_id <> -1), '[]'::jsonb),
            'recreated', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY a.id)
                                   FROM lamin.artifact_recreating_run rr JOIN lamin.artifact a ON a.id = rr.artifact_id
                                   WHERE rr.run_id = rec.record_id), '[]'::jsonb));
    ELSIF rec.registry = 'lamin.transform'::regclass THEN
        doc := doc || jsonb_build_object(
            'runs', (SELECT count(*) FROM lamin.run r WHERE r.transform_id = rec.record_id));
    ELSIF rec.registry = 'lamin.collection'::regclass THEN
        doc := doc || jsonb_build_object(
            'artifacts', coalesce((SELECT jsonb_agg(jsonb_build_object('uid', a.uid, 'key', a.key) ORDER BY m.position, a.id)
                                   FROM lamin.collection_artifact m JOIN lamin.artifact a ON a.id = m.artifact_id
                                   WHERE m.collection_id = rec.record_id), '[]'::jsonb),
            'run', (SELECT r.uid FROM lamin.collection c JOIN lamin.run r ON r.id = c.run_id WHERE c.id = rec.record_id));
    ELSIF rec.registry = 'lamin.schema'::regclass THEN
        doc := doc || jsonb_build_object(
            'features', coalesce((SELECT jsonb_agg(jsonb_build_object('name', f.name, 'dtype', f.dtype) ORDER BY sf.position)
                                  FROM lamin.schema_feature sf JOIN lamin.feature f ON f.id = sf.feature_id
                                  WHERE sf.schema_id = rec.record_id), '[]'::jsonb));
    ELSIF rec.registry = 'lamin.ulabel'::regclass THEN
        doc := doc || jsonb_build_object(
            'type', (SELECT t.name FROM lamin.ulabel l JOIN lamin.ulabel t ON t.id = l.type_id WHERE l.id = rec.record_id),
            'n_artifacts', (SELECT count(*) FROM lamin.artifact_ulabel l JOIN lamin.artifact a ON a.id = l.artifact_id
                            WHERE l.ulabel_id = rec.record_id));
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION lamin.describe(text) IS
    'Any record (artifact, collection, run, transform, schema, feature, label) by uid as one JSON document; artifacts in full (lamin.describe_artifact).';

-- Jobs: the error of a failed job in one step.
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
            RAISE EXCEPTION 'no job %', job_id USING ERRCODE = 'no_data_found';
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

CREATE OR REPLACE FUNCTION lamin.await_job(job_id bigint, timeout_s int DEFAULT 60) RETURNS text
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

-- Counts that hide members the reader cannot see (same columns).
CREATE OR REPLACE VIEW lamin.collections AS
SELECT c.uid, c.key, c.description, c.version, c.is_latest, c.hash,
       -- Members the reader can see (the join applies the artifact's
       -- row-level security): a count never tells of hidden records.
       (SELECT count(*) FROM lamin.collection_artifact m JOIN lamin.artifact a ON a.id = m.artifact_id
        WHERE m.collection_id = c.id) AS n_artifacts,
       r.uid AS run_uid, b.name AS branch, sp.name AS space, u.handle AS created_by, c.created_at
FROM lamin.collection c
JOIN lamin.branch b ON b.id = c.branch_id
JOIN lamin.space sp ON sp.id = c.space_id
JOIN lamin."user" u ON u.id = c.created_by
LEFT JOIN lamin.run r ON r.id = c.run_id
WHERE c.branch_id <> -1;
COMMENT ON COLUMN lamin.collections.n_artifacts IS 'Number of member artifacts the reader can see.';

CREATE OR REPLACE VIEW lamin.runs AS
SELECT r.uid, t.uid AS transform_uid, t.key AS transform_key, r.status, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.params,
       (SELECT count(*) FROM lamin.run_input_artifact i JOIN lamin.artifact a ON a.id = i.artifact_id
        WHERE i.run_id = r.id) AS n_input_artifacts,
       (SELECT count(*) FROM lamin.artifact a WHERE a.run_id = r.id) AS n_output_artifacts,
       b.name AS branch, sp.name AS space, u.handle AS created_by, r.created_at
FROM lamin.run r
JOIN lamin.transform t ON t.id = r.transform_id
JOIN lamin.branch b ON b.id = r.branch_id
JOIN lamin.space sp ON sp.id = r.space_id
JOIN lamin."user" u ON u.id = r.created_by
WHERE r.branch_id <> -1;

-- CREATE OR REPLACE VIEW resets a view's options: read as the caller again.
ALTER VIEW lamin.collections SET (security_invoker = true);
ALTER VIEW lamin.runs SET (security_invoker = true);

-- Hierarchies: the term itself on request (include_self => true).
DROP FUNCTION bionty.ancestors(text, text);
DROP FUNCTION bionty.descendants(text, text);
DROP FUNCTION bionty.walk(text, boolean, text);
CREATE FUNCTION bionty.walk(term_id text, upward boolean, registry text DEFAULT NULL, include_self boolean DEFAULT false)
RETURNS TABLE (ontology_id text, name text, distance int, record_id bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg text := coalesce(registry, bionty.registry_of(term_id));
    tbl text;
    start_id bigint;
BEGIN
    IF term_id IS NULL THEN
        RAISE EXCEPTION 'ontology id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF registry IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bionty.ontology o WHERE o.entity = registry) THEN
        RAISE EXCEPTION 'registry % has no hierarchy: the ontology registries are %', quote_literal(registry),
            (SELECT string_agg(o.entity, ', ' ORDER BY o.entity) FROM bionty.ontology o)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF reg IS NULL THEN
        RAISE EXCEPTION 'unknown term %: no ontology registry holds it', quote_literal(term_id)
            USING ERRCODE = 'no_data_found',
                  HINT = 'import its ontology first, e.g. lamin import ontology --entity cell_type …';
    END IF;
    tbl := split_part(reg, '.', 2);
    EXECUTE format('SELECT t.id FROM bionty.%I t WHERE t.ontology_id = $1', tbl) INTO start_id USING term_id;
    IF start_id IS NULL THEN
        RAISE EXCEPTION 'unknown term % in %', quote_literal(term_id), reg USING ERRCODE = 'no_data_found';
    END IF;
    -- UNION (not UNION ALL) with the visited set folded in by the array keeps
    -- the walk linear in a DAG with many paths; depth is capped against cycles.
    RETURN QUERY EXECUTE format($q$
        WITH RECURSIVE walk(id, distance) AS (
            SELECT e.%1$s, 1 FROM bionty.%3$I e WHERE e.%2$s = $1
            UNION
            SELECT e.%1$s, w.distance + 1 FROM walk w JOIN bionty.%3$I e ON e.%2$s = w.id WHERE w.distance < 200
        )
        SELECT t.ontology_id, t.name, m.distance, t.id
        FROM (SELECT w.id, min(w.distance)::int AS distance FROM walk w GROUP BY w.id
              UNION ALL
              SELECT $1, 0 WHERE $2) m
        JOIN bionty.%4$I t ON t.id = m.id
        ORDER BY m.distance, t.ontology_id$q$,
        CASE WHEN upward THEN 'parent_id' ELSE 'child_id' END,
        CASE WHEN upward THEN 'child_id' ELSE 'parent_id' END,
        tbl || '_parent', tbl)
    USING start_id, coalesce(include_self, false);
END
$$;
COMMENT ON FUNCTION bionty.walk(text, boolean, text, boolean) IS 'Terms reachable from a term along parent edges (upward) or child edges, with their shortest distance (the term itself at distance 0 with include_self).';

CREATE FUNCTION bionty.ancestors(ontology_id text, registry text DEFAULT NULL, include_self boolean DEFAULT false)
RETURNS TABLE (ontology_id text, name text, distance int)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT w.ontology_id, w.name, w.distance FROM bionty.walk($1, true, $2, $3) w $$;
COMMENT ON FUNCTION bionty.ancestors(text, text, boolean) IS 'All ancestors of an ontology term (is_a, part_of, … edges), nearest first; include_self => true adds the term itself at distance 0; e.g. bionty.ancestors(''CL:0000625'').';

CREATE FUNCTION bionty.descendants(ontology_id text, registry text DEFAULT NULL, include_self boolean DEFAULT false)
RETURNS TABLE (ontology_id text, name text, distance int)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT w.ontology_id, w.name, w.distance FROM bionty.walk($1, false, $2, $3) w $$;
COMMENT ON FUNCTION bionty.descendants(text, text, boolean) IS 'All descendants of an ontology term, nearest first; include_self => true adds the term itself at distance 0 ("T cell or below": bionty.descendants(''CL:0000084'', include_self => true)).';

-- bionty.artifact_terms gains ontology_id (a column at the end), for lamin.annotations.
DO $$
DECLARE
    t text;
    parts text[] := '{}';
BEGIN
    FOR t IN SELECT split_part(entity, '.', 2) FROM bionty.ontology
             UNION ALL SELECT unnest(ARRAY['gene', 'protein', 'cell_marker']) ORDER BY 1 LOOP
        parts := parts || format($v$SELECT l.artifact_id, %L::text AS registry, r.uid, %s AS name, l.feature_id,
                                           %s::text AS ontology_id
                                    FROM bionty.%I l JOIN bionty.%I r ON r.id = l.%I$v$,
                                 'bionty.' || t,
                                 CASE t WHEN 'gene' THEN 'coalesce(r.symbol, r.ensembl_gene_id)' ELSE 'r.name' END,
                                 CASE t WHEN 'gene' THEN 'r.ensembl_gene_id' WHEN 'protein' THEN 'r.uniprotkb_id'
                                        WHEN 'cell_marker' THEN 'NULL' ELSE 'r.ontology_id' END,
                                 'artifact_' || t, t, t || '_id');
    END LOOP;
    EXECUTE 'CREATE OR REPLACE VIEW bionty.artifact_terms AS ' || array_to_string(parts, ' UNION ALL ');
END
$$;
COMMENT ON COLUMN bionty.artifact_terms.ontology_id IS 'The record''s public id: ontology id (e.g. CL:0000084), Ensembl gene id, UniProtKB accession; NULL for cell markers.';

ALTER VIEW bionty.artifact_terms SET (security_invoker = true);

-- The query views (sql/23_query_views.sql).
CREATE VIEW lamin.annotations WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature,
       x.registry, x.record_uid, x.name, x.ontology_id, a.id AS artifact_id
FROM (
    SELECT l.artifact_id, l.feature_id, 'lamin.ulabel'::text AS registry, u.uid AS record_uid, u.name,
           NULL::text AS ontology_id
    FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
    UNION ALL
    SELECT t.artifact_id, t.feature_id, t.registry, t.uid, t.name, t.ontology_id
    FROM bionty.artifact_terms t
) x
JOIN lamin.artifact a ON a.id = x.artifact_id
LEFT JOIN lamin.feature f ON f.id = x.feature_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.annotations IS 'Every annotation of an artifact with a label (lamin.ulabel or a bionty registry), by uid: e.g. the latest artifacts annotated with any T cell: WHERE is_latest AND ontology_id IN (SELECT ontology_id FROM bionty.descendants(''CL:0000084'', include_self => true)).';
COMMENT ON COLUMN lamin.annotations.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.annotations.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.annotations.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.annotations.is_latest IS 'Whether the artifact is the newest version of its family.';
COMMENT ON COLUMN lamin.annotations.feature IS 'The feature the label is a value of, or NULL for a label linked without one.';
COMMENT ON COLUMN lamin.annotations.registry IS 'The registry of the label, e.g. lamin.ulabel, bionty.cell_type.';
COMMENT ON COLUMN lamin.annotations.record_uid IS 'uid of the label record.';
COMMENT ON COLUMN lamin.annotations.name IS 'Name of the label (genes: symbol).';
COMMENT ON COLUMN lamin.annotations.ontology_id IS 'Public id of the label: ontology id, Ensembl gene id, UniProtKB accession; NULL for ulabels and cell markers.';
COMMENT ON COLUMN lamin.annotations.artifact_id IS 'Internal id of the artifact (joins lamin.artifact).';

CREATE VIEW lamin.feature_values WITH (security_invoker = true) AS
SELECT a.uid AS artifact_uid, a.key, a.version, a.is_latest, f.name AS feature, f.dtype,
       NULL::text AS registry,
       CASE WHEN jsonb_typeof(v.value) = 'string' THEN v.value #>> '{}' ELSE v.value::text END AS value_text,
       CASE WHEN jsonb_typeof(v.value) = 'number' THEN (v.value #>> '{}')::numeric END AS value_number,
       CASE WHEN jsonb_typeof(v.value) = 'boolean' THEN (v.value #>> '{}')::boolean END AS value_boolean,
       CASE WHEN f.dtype = 'date' THEN (v.value #>> '{}')::date END AS value_date,
       CASE WHEN f.dtype = 'datetime' THEN (v.value #>> '{}')::timestamptz END AS value_timestamp,
       v.value, a.id AS artifact_id
FROM lamin.artifact_feature_value v
JOIN lamin.artifact a ON a.id = v.artifact_id
JOIN lamin.feature f ON f.id = v.feature_id
WHERE a.branch_id <> -1
UNION ALL
SELECT a.uid, a.key, a.version, a.is_latest, f.name, f.dtype, x.registry, x.name, NULL, NULL, NULL, NULL,
       to_jsonb(x.name), a.id
FROM (
    SELECT l.artifact_id, l.feature_id, 'lamin.ulabel'::text AS registry, u.name
    FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
    UNION ALL
    SELECT t.artifact_id, t.feature_id, t.registry, t.name FROM bionty.artifact_terms t
) x
JOIN lamin.artifact a ON a.id = x.artifact_id
JOIN lamin.feature f ON f.id = x.feature_id
WHERE a.branch_id <> -1;
COMMENT ON VIEW lamin.feature_values IS 'Every feature value of an artifact, typed: numbers in value_number, text and labels in value_text, booleans, dates and timestamps in their columns; e.g. artifacts where n_genes > 100: WHERE feature = ''n_genes'' AND value_number > 100.';
COMMENT ON COLUMN lamin.feature_values.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.feature_values.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.feature_values.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.feature_values.is_latest IS 'Whether the artifact is the newest version of its family.';
COMMENT ON COLUMN lamin.feature_values.feature IS 'Name of the feature.';
COMMENT ON COLUMN lamin.feature_values.dtype IS 'dtype of the feature.';
COMMENT ON COLUMN lamin.feature_values.registry IS 'For a label: its registry (see lamin.annotations); NULL for a plain value.';
COMMENT ON COLUMN lamin.feature_values.value_text IS 'The value as text (strings, the names of labels; other values in JSON form).';
COMMENT ON COLUMN lamin.feature_values.value_number IS 'The value of a numeric feature (int, float, num).';
COMMENT ON COLUMN lamin.feature_values.value_boolean IS 'The value of a bool feature.';
COMMENT ON COLUMN lamin.feature_values.value_date IS 'The value of a date feature.';
COMMENT ON COLUMN lamin.feature_values.value_timestamp IS 'The value of a datetime feature.';
COMMENT ON COLUMN lamin.feature_values.value IS 'The value as stored (JSON).';
COMMENT ON COLUMN lamin.feature_values.artifact_id IS 'Internal id of the artifact (joins lamin.artifact).';

CREATE VIEW lamin.run_artifacts WITH (security_invoker = true) AS
SELECT r.uid AS run_uid, t.key AS transform_key, r.status AS run_status, r.started_at, x.direction,
       a.uid AS artifact_uid, a.key, a.version, a.is_latest
FROM (
    SELECT i.run_id, i.artifact_id, 'input'::text AS direction FROM lamin.run_input_artifact i
    UNION ALL
    SELECT o.run_id, o.id, 'output' FROM lamin.artifact o WHERE o.run_id IS NOT NULL
    UNION ALL
    SELECT rr.run_id, rr.artifact_id, 'recreated' FROM lamin.artifact_recreating_run rr
) x
JOIN lamin.run r ON r.id = x.run_id
JOIN lamin.transform t ON t.id = r.transform_id
JOIN lamin.artifact a ON a.id = x.artifact_id
WHERE r.branch_id <> -1 AND a.branch_id <> -1;
COMMENT ON VIEW lamin.run_artifacts IS 'Every run with the artifacts it read (input), wrote (output) and saved again as known content (recreated): e.g. the runs of a transform with their inputs and outputs: WHERE transform_key = ''pipelines/qc.py''.';
COMMENT ON COLUMN lamin.run_artifacts.run_uid IS 'uid of the run.';
COMMENT ON COLUMN lamin.run_artifacts.transform_key IS 'Key of the run''s transform.';
COMMENT ON COLUMN lamin.run_artifacts.run_status IS 'Status of the run: started, completed, errored, aborted.';
COMMENT ON COLUMN lamin.run_artifacts.started_at IS 'When the run started.';
COMMENT ON COLUMN lamin.run_artifacts.direction IS 'input (read by the run), output (created by it) or recreated (saved by it as content already stored).';
COMMENT ON COLUMN lamin.run_artifacts.artifact_uid IS 'uid of the artifact.';
COMMENT ON COLUMN lamin.run_artifacts.key IS 'Key of the artifact.';
COMMENT ON COLUMN lamin.run_artifacts.version IS 'Version tag of the artifact, if one was given.';
COMMENT ON COLUMN lamin.run_artifacts.is_latest IS 'Whether the artifact is the newest version of its family.';

CREATE VIEW lamin.trash WITH (security_invoker = true) AS
SELECT 'lamin.artifact'::text AS registry, a.uid, coalesce(a.key, a.description) AS label, sp.name AS space, a.updated_at
FROM lamin.artifact a JOIN lamin.space sp ON sp.id = a.space_id WHERE a.branch_id = -1
UNION ALL
SELECT 'lamin.collection', c.uid, coalesce(c.key, c.description), sp.name, c.updated_at
FROM lamin.collection c JOIN lamin.space sp ON sp.id = c.space_id WHERE c.branch_id = -1
UNION ALL
SELECT 'lamin.transform', t.uid, coalesce(t.key, t.description), sp.name, t.updated_at
FROM lamin.transform t JOIN lamin.space sp ON sp.id = t.space_id WHERE t.branch_id = -1
UNION ALL
SELECT 'lamin.run', r.uid, r.name, sp.name, coalesce(r.finished_at, r.started_at)
FROM lamin.run r JOIN lamin.space sp ON sp.id = r.space_id WHERE r.branch_id = -1
UNION ALL
SELECT 'lamin.feature', f.uid, f.name, sp.name, f.updated_at
FROM lamin.feature f JOIN lamin.space sp ON sp.id = f.space_id WHERE f.branch_id = -1
UNION ALL
SELECT 'lamin.schema', s.uid, s.name, sp.name, s.updated_at
FROM lamin.schema s JOIN lamin.space sp ON sp.id = s.space_id WHERE s.branch_id = -1
UNION ALL
SELECT 'lamin.ulabel', u.uid, u.name, sp.name, u.updated_at
FROM lamin.ulabel u JOIN lamin.space sp ON sp.id = u.space_id WHERE u.branch_id = -1;
COMMENT ON VIEW lamin.trash IS 'Records in the trash (lamin.delete once): lamin.restore(uid) brings one back, lamin.delete(uid) again deletes it for good.';
COMMENT ON COLUMN lamin.trash.registry IS 'The registry of the record.';
COMMENT ON COLUMN lamin.trash.uid IS 'uid of the record.';
COMMENT ON COLUMN lamin.trash.label IS 'Key, name or description of the record.';
COMMENT ON COLUMN lamin.trash.space IS 'Name of the space of the record.';
COMMENT ON COLUMN lamin.trash.updated_at IS 'Last change (for a record trashed and not changed since: when it was trashed).';

GRANT SELECT ON lamin.annotations, lamin.feature_values, lamin.run_artifacts, lamin.trash TO lamin_reader;

-- A categorical column fits a text feature (and integers fit floats): no conflict.
CREATE FUNCTION lamin.dtype_fits(feature text, col text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT feature = col
        OR (feature LIKE 'cat%' AND col IN ('cat', 'str'))
        OR (feature = 'str' AND col LIKE 'cat%')
        OR (feature IN ('float', 'num') AND col IN ('int', 'float', 'num'))
$$;

COMMENT ON FUNCTION lamin.dtype_fits(text, text) IS
    'Whether a column of dtype col fits a feature of dtype feature (the same; labels and text either way; integers as floats or numbers).';

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
                     WHERE NOT lamin.dtype_fits(f.dtype, c.dtype)), '[]')
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


-- Curation reports count the rows of each value, and the NULLs.
ALTER TABLE lamin.curation ADD COLUMN n_null bigint;
COMMENT ON COLUMN lamin.curation.report IS 'Per value: n (rows holding it), validated, standardized (the registry value a synonym maps to), suggestion.';
COMMENT ON COLUMN lamin.curation.n_null IS 'Rows whose value is NULL (missing); NULL for reports made before 0.5.0.';
DROP FUNCTION lamin.record_curation(text, text, text, text, jsonb);
CREATE FUNCTION lamin.record_curation(artifact_uid text, column_name text, registry text, field text, report jsonb,
                                       n_null bigint DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    n int := jsonb_array_length(report);
    ok int := (SELECT count(*) FROM jsonb_array_elements(report) r WHERE (r ->> 'validated')::boolean);
BEGIN
    INSERT INTO lamin.curation AS c (artifact_id, column_name, registry, field, n_values, n_validated, report, n_null)
    VALUES (lamin.artifact_id(artifact_uid), column_name, registry, field, n, ok, report, n_null)
    ON CONFLICT ON CONSTRAINT curation_one_per_column DO UPDATE
        SET field = excluded.field, n_values = excluded.n_values, n_validated = excluded.n_validated,
            report = excluded.report, n_null = excluded.n_null, created_at = now(), created_by = lamin.current_user_id();
    RETURN jsonb_build_object('column', column_name, 'registry', registry, 'n_values', n, 'n_validated', ok,
                              'validated_pct', CASE WHEN n = 0 THEN 100 ELSE round(100.0 * ok / n, 1) END,
                              'n_null', n_null);
END
$$;
COMMENT ON FUNCTION lamin.record_curation(text, text, text, text, jsonb, bigint) IS
    'Sidecar: store a curation''s outcome (per value: n, validated, standardized, suggestion; and the NULL count), replacing an earlier one of that column and registry.';
DROP FUNCTION lamin.curation_report(text);
CREATE FUNCTION lamin.curation_report(artifact_uid text)
RETURNS TABLE (column_name text, registry text, validated_pct numeric, value text, n bigint, validated boolean,
               standardized text, suggestion text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.column_name, x.registry, x.pct, x.value, x.n, x.validated, x.standardized, x.suggestion
    FROM (
        SELECT c.column_name, c.registry, c.id,
               CASE WHEN c.n_values = 0 THEN 100 ELSE round(100.0 * c.n_validated / c.n_values, 1) END AS pct,
               r ->> 'value' AS value, (r ->> 'n')::bigint AS n, (r ->> 'validated')::boolean AS validated,
               r ->> 'standardized' AS standardized, r ->> 'suggestion' AS suggestion
        FROM lamin.curation c, jsonb_array_elements(c.report) r
        WHERE c.artifact_id = lamin.artifact_id(artifact_uid)
        UNION ALL
        SELECT c.column_name, c.registry, c.id,
               CASE WHEN c.n_values = 0 THEN 100 ELSE round(100.0 * c.n_validated / c.n_values, 1) END,
               NULL, c.n_null, NULL, NULL, 'missing values: not checked, not annotated'
        FROM lamin.curation c
        WHERE c.artifact_id = lamin.artifact_id(artifact_uid) AND c.n_null > 0
    ) x
    ORDER BY x.column_name, x.registry, x.validated NULLS FIRST, x.value
$$;
COMMENT ON FUNCTION lamin.curation_report(text) IS
    'Curation reports of an artifact: per column and registry, the validated share and each value with its row count and its standardized form or suggestion; a row with value NULL counts the missing values.';
