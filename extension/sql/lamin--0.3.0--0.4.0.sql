\echo Use "ALTER EXTENSION lamin UPDATE TO '0.4.0'" to load this file. \quit
-- lamin 0.3.0 → 0.4.0. Run by ALTER EXTENSION lamin UPDATE in one transaction
-- (all or nothing). Definitions are copied verbatim from sql/ and from what
-- `cargo pgrx schema` prints (the upgrade test compares the result with a
-- fresh install object by object).

-- Term kinds (0 name, 1 synonym, 2 abbreviation, 3 id) have one definition,
-- in Rust (lamin_core::rank::TermKind); SQL reads the codes and names through
-- these two functions instead of writing the numbers.
CREATE FUNCTION lamin."term_kind"(
	"name" TEXT
) RETURNS smallint
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'term_kind_wrapper';

CREATE FUNCTION lamin."term_kind_name"(
	"kind" smallint
) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'term_kind_name_wrapper';

-- The constraint on the stored kinds names them through lamin.term_kind (the
-- same codes: every stored row still passes; the check reads the table once).
ALTER TABLE lamin.search_term DROP CONSTRAINT search_term_kind_known;
ALTER TABLE lamin.search_term ADD CONSTRAINT search_term_kind_known CHECK (kind BETWEEN lamin.term_kind('name') AND lamin.term_kind('id'));
COMMENT ON COLUMN lamin.search_term.kind IS 'Which field of the record the term is: lamin.term_kind_name(kind) names it (name, synonym, abbreviation, id), lamin.term_kind(name) gives the code.';

-- The templates of the search index write the kinds' codes from
-- lamin.term_kind (the generated search_* trigger functions come out as
-- before); the duplicate guard names a clashing term's kind with
-- lamin.term_kind_name.
CREATE OR REPLACE FUNCTION lamin.search_terms_sql(reg lamin.registry, source text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        $f$SELECT %L, n.id, n.uid, %s, t.kind, t.term, lower(t.term), lamin.normalize_term(t.term), %s, %s, %s
           FROM %s n
           CROSS JOIN LATERAL (
               SELECT %s::smallint, n.%I::text
               %s %s %s
           ) AS t(kind, term)
           WHERE t.term IS NOT NULL AND btrim(t.term) <> '' %s$f$,
        -- Records without a name (genes known only by id) are shown by their id.
        reg.name, format('coalesce(n.%I::text, %s n.uid)', reg.name_field,
                         CASE WHEN reg.id_field IS NULL THEN '' ELSE format('n.%I::text,', reg.id_field) END),
        CASE WHEN reg.organism_field IS NULL THEN 'NULL' ELSE format('n.%I::text', reg.organism_field) END,
        CASE WHEN reg.deprecated_field IS NULL THEN 'false' ELSE format('coalesce(n.%I, false)', reg.deprecated_field) END,
        CASE WHEN has_space THEN 'n.space_id' ELSE '1' END,
        source, lamin.term_kind('name'), reg.name_field,
        CASE WHEN reg.synonyms_field IS NULL THEN '' ELSE format('UNION ALL SELECT %s::smallint, s FROM unnest(n.%I) s', lamin.term_kind('synonym'), reg.synonyms_field) END,
        CASE WHEN reg.abbr_field IS NULL THEN '' ELSE format('UNION ALL SELECT %s::smallint, n.%I::text', lamin.term_kind('abbreviation'), reg.abbr_field) END,
        CASE WHEN reg.id_field IS NULL THEN '' ELSE format('UNION ALL SELECT %s::smallint, n.%I::text', lamin.term_kind('id'), reg.id_field) END,
        CASE WHEN has_branch THEN 'AND n.branch_id <> -1' ELSE '' END)
    FROM (SELECT
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = reg.name::regclass AND attname = 'branch_id' AND NOT attisdropped) AS has_branch,
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = reg.name::regclass AND attname = 'space_id' AND NOT attisdropped) AS has_space
         ) cols
$$;

CREATE OR REPLACE FUNCTION lamin.search_add_terms_sql(reg lamin.registry, source text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        $q$WITH terms AS (
               INSERT INTO lamin.search_term (registry, record_id, uid, name, kind, term, term_fold, term_norm, organism, deprecated, space_id)
               %1$s
               RETURNING id, registry, term_norm, kind, space_id
           ), words AS (
               -- Ids (kind %2$s) are found whole or by prefix; their parts ("cl",
               -- "0000084") would only crowd the word index.
               INSERT INTO lamin.search_word (registry, word, term_len, term_id, space_id)
               SELECT t.registry, w.word, length(t.term_norm), t.id, t.space_id
               FROM terms t, LATERAL (SELECT DISTINCT x AS word FROM unnest(string_to_array(t.term_norm, ' ')) x) w
               WHERE t.kind <> %2$s AND w.word <> '' AND NOT lamin.is_stop_word(w.word)
               RETURNING word
           )
           -- Spelling correction needs words with letters, not numbers.
           INSERT INTO lamin.search_vocab (word)
           SELECT DISTINCT word FROM words WHERE word ~ '[[:alpha:]]' ORDER BY 1
           ON CONFLICT DO NOTHING$q$,
        lamin.search_terms_sql(reg, source), lamin.term_kind('id'))
$$;

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

-- The guard triggers of lamin's own registries take the new template. Those
-- of registries users made searchable are theirs (not the extension's): an
-- extension script cannot replace them; their old text behaves the same, and
-- scripts/up (and the README's upgrade steps) regenerate them right after
-- this update with lamin.refresh_search_triggers().
SELECT lamin.create_search_trigger_functions(r, r.guard) FROM lamin.registry r
WHERE EXISTS (
    SELECT FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
    WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND p.pronamespace = 'lamin'::regnamespace AND p.proname = 'search_' || replace(r.name, '.', '__'));
