-- Search, validate, standardize and inspect work on any registry listed in
-- lamin.registry. Each listed registry's names, synonyms, abbreviations and
-- ids are kept by statement-level triggers in three derived tables:
--   lamin.search_term   one row per term: exact (term_fold) and prefix (term_norm) lookups;
--   lamin.search_word   one row per word of a term, ordered by term length: word and
--                       word-prefix lookups that stop after the first few thousand hits,
--                       so common words stay cheap at tens of millions of records;
--   lamin.search_vocab  the distinct words, trigram-indexed: spelling correction.

CREATE TABLE lamin.registry (
    name             text PRIMARY KEY CONSTRAINT registry_name_qualified CHECK (name ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'),
    name_field       text NOT NULL,
    synonyms_field   text,
    abbr_field       text,
    id_field         text,
    organism_field   text,
    deprecated_field text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    guard            boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE lamin.registry IS 'Searchable registries and the columns search/validate/standardize/inspect use; add one with lamin.make_searchable().';
COMMENT ON COLUMN lamin.registry.name IS 'Qualified table name, e.g. lamin.ulabel or bionty.cell_type.';
COMMENT ON COLUMN lamin.registry.name_field IS 'The column holding the canonical name (default field of validate/standardize).';
COMMENT ON COLUMN lamin.registry.synonyms_field IS 'A text[] column of synonyms, or NULL.';
COMMENT ON COLUMN lamin.registry.abbr_field IS 'A text column with an abbreviation, or NULL.';
COMMENT ON COLUMN lamin.registry.id_field IS 'A text column with an external id (e.g. ontology_id), or NULL.';
COMMENT ON COLUMN lamin.registry.organism_field IS 'A column naming the organism of a record, for the organism filter, or NULL.';
COMMENT ON COLUMN lamin.registry.deprecated_field IS 'A boolean column marking deprecated records (ranked last), or NULL.';
COMMENT ON COLUMN lamin.registry.created_at IS 'When the registry was made searchable.';
COMMENT ON COLUMN lamin.registry.guard IS 'Whether new and renamed records are checked against existing names and synonyms (make_searchable''s guard).';

CREATE TABLE lamin.search_term (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry   text NOT NULL,
    record_id  bigint NOT NULL,
    uid        text NOT NULL,
    name       text NOT NULL,
    -- The kinds' codes are lamin.term_kind's (one definition, in Rust): 0 to 3,
    -- computed once per statement (immutable calls on constants fold).
    kind       smallint NOT NULL CONSTRAINT search_term_kind_known CHECK (kind BETWEEN lamin.term_kind('name') AND lamin.term_kind('id')),
    term       text NOT NULL,
    term_fold  text COLLATE "C" NOT NULL,
    term_norm  text COLLATE "C" NOT NULL,
    organism   text,
    deprecated boolean NOT NULL DEFAULT false,
    space_id   bigint NOT NULL DEFAULT 1
);
-- The triggers' per-row probes (a record's terms, a name's clashes) match one
-- index each exactly: the record id or the folded term first, then the
-- registry compared in collation "C" (t.registry COLLATE "C" = reg_name; equal
-- strings are equal in every deterministic collation). Only these two indexes
-- hold the registry in "C", so the registry-leading index cannot serve a probe
-- with the registry alone, and no statistics (a registry the last ANALYZE saw
-- empty) can plan one as a walk over every term of the registry. Prefix
-- search needs term_norm after the registry.
CREATE INDEX search_term_record ON lamin.search_term (record_id, registry COLLATE "C");
CREATE INDEX search_term_fold ON lamin.search_term (term_fold, registry COLLATE "C");
CREATE INDEX search_term_norm ON lamin.search_term (registry, term_norm);
-- The search tables are derived and written only by the generated triggers
-- below; they carry no foreign keys, whose per-row checks would dominate bulk loads.
COMMENT ON TABLE lamin.search_term IS 'Derived search index: one row per name, synonym, abbreviation and id of every record of a searchable registry (trash excluded). Maintained by triggers; not dumped (rebuilt on restore).';
COMMENT ON COLUMN lamin.search_term.id IS 'Internal id of the term.';
COMMENT ON COLUMN lamin.search_term.registry IS 'The registry (lamin.registry.name).';
COMMENT ON COLUMN lamin.search_term.record_id IS 'Internal id of the record in its registry.';
COMMENT ON COLUMN lamin.search_term.uid IS 'uid of the record.';
COMMENT ON COLUMN lamin.search_term.name IS 'Canonical name of the record.';
COMMENT ON COLUMN lamin.search_term.kind IS 'Which field of the record the term is: lamin.term_kind_name(kind) names it (name, synonym, abbreviation, id), lamin.term_kind(name) gives the code.';
COMMENT ON COLUMN lamin.search_term.term IS 'The term as stored in the record.';
COMMENT ON COLUMN lamin.search_term.term_fold IS 'lower(term): case-insensitive exact matching.';
COMMENT ON COLUMN lamin.search_term.term_norm IS 'lamin.normalize_term(term): lower case, punctuation as spaces; prefix and word matching.';
COMMENT ON COLUMN lamin.search_term.organism IS 'The record''s organism (text of the registry''s organism column), or NULL.';
COMMENT ON COLUMN lamin.search_term.deprecated IS 'Whether the record is deprecated.';
COMMENT ON COLUMN lamin.search_term.space_id IS 'Space of the record.';

CREATE TABLE lamin.search_word (
    registry text NOT NULL,
    word     text COLLATE "C" NOT NULL,
    term_len int NOT NULL,
    term_id  bigint NOT NULL,
    -- The term's space (as lamin.search_term's): who may read the word. Kept
    -- here so that reading a word costs one comparison, not a lookup of its term.
    space_id bigint NOT NULL DEFAULT 1
);
-- space_id included: row-level security is checked within index-only scans.
CREATE INDEX search_word_lookup ON lamin.search_word (registry, word, term_len, term_id) INCLUDE (space_id);
CREATE INDEX search_word_term ON lamin.search_word (term_id, word) INCLUDE (space_id);
COMMENT ON TABLE lamin.search_word IS 'Derived search index: the words of each search term (stop words left out), for word and word-prefix lookups, shortest terms first.';
COMMENT ON COLUMN lamin.search_word.registry IS 'The registry of the term.';
COMMENT ON COLUMN lamin.search_word.word IS 'A word of the normalized term.';
COMMENT ON COLUMN lamin.search_word.term_len IS 'Length of the normalized term (shorter terms are fetched first).';
COMMENT ON COLUMN lamin.search_word.space_id IS 'Space of the term''s record: who may read the word.';
COMMENT ON COLUMN lamin.search_word.term_id IS 'The term (lamin.search_term.id).';

-- No unique key: an insert of a word another transaction has inserted and
-- not yet committed would wait for that transaction to end (a unique index
-- must know whether the other row commits). Two writers that bring the same
-- new word, such as an ontology import and a gene import side by side, then
-- ran one after the other: mouse genes waited 90 s for NCBITaxon's import.
-- Writers add the words they do not see yet; two concurrent ones may both
-- add a word, and a word twice changes no answer of spelling correction.
CREATE TABLE lamin.search_vocab (
    word text COLLATE "C" NOT NULL
);
CREATE INDEX search_vocab_word ON lamin.search_vocab (word);
-- fastupdate on: new words go to the index's pending list and are merged
-- into it in sorted batches. Word by word (fastupdate off, until 0.11.0)
-- each word's trigrams were inserted one by one: 500k new words took 32 s
-- against 4.7 s (NCBITaxon brings 523k). Searches read the pending list too,
-- so a long one slows spelling correction: a write that brought many words
-- merges it at once (lamin.flush_search_vocab), small writes leave it to
-- autovacuum or to the list's limit (gin_pending_list_limit, 4 MB).
CREATE INDEX search_vocab_trgm ON lamin.search_vocab USING gin (word gin_trgm_ops) WITH (fastupdate = on);
COMMENT ON TABLE lamin.search_vocab IS 'Derived: every word ever indexed, trigram-indexed for spelling correction of queries.';
COMMENT ON COLUMN lamin.search_vocab.word IS 'A word.';

-- After a write added `added` words to the vocabulary: merge the pending
-- list of its trigram index into the index when they were many (see
-- search_vocab_trgm). Called by the search triggers, which run as lamin's
-- owner: merging needs the index's owner.
CREATE FUNCTION lamin.flush_search_vocab(added bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF added > 1000 THEN
        PERFORM gin_clean_pending_list('lamin.search_vocab_trgm'::regclass);
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.flush_search_vocab(bigint) IS
    'After a write added that many words to lamin.search_vocab: above 1,000, merge the pending list of its trigram index into the index (the search triggers call it; needs the index''s owner).';
REVOKE EXECUTE ON FUNCTION lamin.flush_search_vocab(bigint) FROM PUBLIC;

-- The SELECT that turns rows of `source` (a registry table or a transition
-- table) into search terms, for one registry's configuration. The kind codes
-- (lamin.term_kind) are written into it as constants.
CREATE FUNCTION lamin.search_terms_sql(reg lamin.registry, source text) RETURNS text
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

-- The columns search terms are made of: rows whose other columns change
-- (e.g. is_latest moving to a new version) keep their terms untouched.
CREATE FUNCTION lamin.search_columns(reg lamin.registry, alias text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('%I.%I', alias, c), ', ')
    FROM unnest(ARRAY['uid', reg.name_field, reg.synonyms_field, reg.abbr_field, reg.id_field,
                      reg.organism_field, reg.deprecated_field, 'branch_id', 'space_id']) AS c
    WHERE c IS NOT NULL
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = reg.name::regclass AND a.attname = c AND NOT a.attisdropped)
$$;

-- The statement that indexes the terms of the rows of `source` (a table or a
-- subquery with the registry's columns). Returned as text and run by the
-- caller: transition tables are only visible in the trigger function itself.
-- The kind of ids (lamin.term_kind) is written into it as a constant.
CREATE FUNCTION lamin.search_add_terms_sql(reg lamin.registry, source text) RETURNS text
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
           -- Spelling correction needs words with letters, not numbers. The
           -- words not there yet (see lamin.search_vocab: no unique key to wait on).
           INSERT INTO lamin.search_vocab (word)
           SELECT DISTINCT w.word FROM words w
           WHERE w.word ~ '[[:alpha:]]' AND NOT EXISTS (SELECT FROM lamin.search_vocab v WHERE v.word = w.word)
           ORDER BY 1$q$,
        lamin.search_terms_sql(reg, source), lamin.term_kind('id'))
$$;

-- A name as the duplicate guard compares it: lower case, blanks trimmed and
-- runs of blanks made one ("T cell " and "t  cell" are "t cell").
CREATE FUNCTION lamin.fold_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT lower(regexp_replace(btrim(name, E' \t\n\r'), '[[:space:]]+', ' ', 'g')) $$;
COMMENT ON FUNCTION lamin.fold_name(text) IS 'A name as the duplicate guard compares it: lower case, blanks trimmed and collapsed.';

-- The stored spellings (search_term.term_fold, lower case) a new name clashes
-- with: itself in lower case, its folded form, and that with one blank before
-- or after (names stored before blanks were folded).
CREATE FUNCTION lamin.name_variants(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY[lower(name), f, f || ' ', ' ' || f] FROM lamin.fold_name(name) f $$;
COMMENT ON FUNCTION lamin.name_variants(text) IS 'The lower-case spellings a new name clashes with in the duplicate guard (itself, folded, folded with a blank around).';

-- Spelling correction: the word of the vocabulary closest to `word` (trigram
-- similarity) that occurs in a term of `registries` the session's role may
-- read; NULL if none. SECURITY DEFINER: the vocabulary holds the words of
-- every space and no role reads it; the answer is filtered by the spaces of
-- the acting role (its grants, "all" for lamin roles, everything for admins),
-- so it tells nobody of a word they could not find by searching.
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

-- Each searchable registry gets its own two trigger functions, generated from
-- the templates below with its table and columns written in: static SQL lets
-- plpgsql cache the plans, so even one-row INSERTs stay cheap.
--
-- search_<registry>: keep the search index in step (statement level, with
-- transition tables; rows whose search columns did not change are skipped).
--
-- guard_<registry>: the safeguard against typos and duplicates. A new or
-- renamed record whose name equals an existing name or synonym
-- (case-insensitively) is refused, unless the session says SET
-- lamin.allow_duplicates = on; a close-but-different name raises a NOTICE
-- (checked for statements of up to 20 rows, to keep bulk loads fast).
-- A superuser's pg_restore (lamin.is_restoring) reloads what was accepted before.
CREATE FUNCTION lamin.create_search_trigger_functions(reg lamin.registry, guard boolean) RETURNS void
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
    new_words bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Rows of this statement may already have terms from an UPDATE nested in
        -- its row triggers (e.g. a version family's head moving).
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.record_id = ANY (ARRAY(SELECT n.id FROM new_rows n)) AND t.registry COLLATE "C" = reg_name RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
        %3$s;
        GET DIAGNOSTICS new_words = ROW_COUNT;
        PERFORM lamin.flush_search_vocab(new_words);
    ELSIF TG_OP = 'UPDATE' THEN
        WITH gone AS (DELETE FROM lamin.search_term t WHERE t.record_id = ANY (ARRAY(SELECT c.id FROM %4$s c)) AND t.registry COLLATE "C" = reg_name RETURNING t.id)
        DELETE FROM lamin.search_word w WHERE w.term_id = ANY (ARRAY(SELECT g.id FROM gone g)) AND reg_name IS NOT NULL;
        %5$s;
        GET DIAGNOSTICS new_words = ROW_COUNT;
        PERFORM lamin.flush_search_vocab(new_words);
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

-- Regenerate the trigger functions of every searchable registry from the
-- current templates. An update of the extension regenerates those of lamin's
-- own registries; the ones of registries users made searchable are not the
-- extension's, so scripts/up (or the admin, README "Upgrading") runs this
-- right after ALTER EXTENSION lamin UPDATE. Returns how many registries.
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

-- Make a registry searchable: record its fields, create its triggers, and
-- index its existing rows. Idempotent (re-running updates the configuration).
CREATE FUNCTION lamin.make_searchable(
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
COMMENT ON FUNCTION lamin.make_searchable(regclass, text, text, text, text, text, text, boolean) IS
    'Make a registry table searchable by lamin.search/validate/standardize/inspect: names its fields, adds triggers and indexes its rows.';

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

CREATE VIEW lamin.registries AS
SELECT r.name AS registry, r.name_field, r.synonyms_field, r.abbr_field, r.id_field, r.organism_field, r.deprecated_field,
       (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = r.name::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)) AS text_fields,
       (SELECT count(DISTINCT t.record_id) FROM lamin.search_term t WHERE t.registry = r.name) AS n_records
FROM lamin.registry r;
COMMENT ON VIEW lamin.registries IS 'Searchable registries, their fields (any text field can be passed to validate/standardize/inspect) and indexed record counts.';
COMMENT ON COLUMN lamin.registries.registry IS 'Qualified table name.';
COMMENT ON COLUMN lamin.registries.name_field IS 'Canonical name column.';
COMMENT ON COLUMN lamin.registries.synonyms_field IS 'Synonyms column (text[]).';
COMMENT ON COLUMN lamin.registries.abbr_field IS 'Abbreviation column.';
COMMENT ON COLUMN lamin.registries.id_field IS 'External id column.';
COMMENT ON COLUMN lamin.registries.organism_field IS 'Organism column.';
COMMENT ON COLUMN lamin.registries.deprecated_field IS 'Deprecated flag column.';
COMMENT ON COLUMN lamin.registries.text_fields IS 'Text columns usable as the field argument.';
COMMENT ON COLUMN lamin.registries.n_records IS 'Records in the search index (trash excluded).';

-- Registries users add are dumped (and re-armed on restore, see above); the
-- built-in ones are re-created by CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('lamin.registry', $$WHERE name !~ '^bionty\.' AND name NOT IN ('lamin.ulabel', 'lamin.feature')$$);

-- Labels and features are searchable (and guarded) out of the box. Artifacts,
-- collections, transforms and schemas are not: indexing costs every save a
-- statement trigger; opt in with e.g. SELECT lamin.make_searchable('lamin.artifact', 'key', guard => false).
SELECT lamin.make_searchable('lamin.ulabel', 'name', synonyms_field => 'synonyms');
SELECT lamin.make_searchable('lamin.feature', 'name', synonyms_field => 'synonyms');
