\echo Use "ALTER EXTENSION lamin UPDATE TO '0.11.0'" to load this file. \quit
-- lamin 0.10.0 → 0.11.0. Run by ALTER EXTENSION lamin UPDATE in one
-- transaction (all or nothing). Definitions are copied verbatim from sql/
-- (the upgrade test compares the result with a fresh install object by
-- object).

-- == issue 23: the foreign-key checks of bulk writes keep their plans (sql/17_bionty_import.sql, sql/35_save_artifacts.sql) ==
-- (and, later in 0.11.0: no JIT in the imports, created_by looked up once)
-- Merge pg_temp.import_term into an ontology registry.
CREATE OR REPLACE FUNCTION bionty.finish_import(entity text, source_name text, source_version text, url text, checksum text,
                                     description text DEFAULT NULL)
RETURNS TABLE (source_id bigint, terms bigint, inserted bigint, updated bigint, deprecated bigint,
               edges bigint, edges_outside bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- No plan_cache_mode = force_custom_plan here: the merge's statements are
-- EXECUTEd (planned for what they get) or read the staging tables, which are
-- new in each import; and the setting would hold for the foreign-key checks
-- of every inserted row too, re-planning each (NCBITaxon: six checks per
-- term, about 90 s of its import).
-- Sorting and hashing a million terms (and their search words) in memory.
SET work_mem = '256MB'
SET lamin.audit_summary = 'on'
-- No JIT: the merge's big statements (and the search triggers they fire)
-- cost enough to be compiled with inlining and optimisation, seconds each,
-- for a single pass whose time goes to index inserts that JIT does not speed.
SET jit = off
AS $$
DECLARE
    tbl text;
    edges_tbl text;
    src bigint;
    -- created_by of every new term, looked up once: the column's default
    -- (lamin.current_user_id()) is a query per row, about 5 µs each.
    me bigint := lamin.current_user_id();
    v_terms bigint;
    v_inserted bigint;
    v_updated bigint;
    v_deprecated bigint;
    v_edges bigint;
    v_outside bigint;
    dup text;
    guard_setting text;
BEGIN
    SELECT format('bionty.%I', split_part(o.entity, '.', 2)), format('bionty.%I', split_part(o.entity, '.', 2) || '_parent')
    INTO tbl, edges_tbl FROM bionty.ontology o WHERE o.entity = finish_import.entity;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'unknown ontology registry %: known are %', quote_literal(entity),
            (SELECT string_agg(o.entity, ', ' ORDER BY o.entity) FROM bionty.ontology o)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.ontology_id INTO dup FROM pg_temp.import_term i GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'import into %: term % appears twice in the source', entity, dup USING ERRCODE = 'unique_violation';
    END IF;
    SELECT i.ontology_id INTO dup FROM pg_temp.import_term i WHERE i.name IS NULL OR btrim(i.name) = '' LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'import into %: term % has no name', entity, dup USING ERRCODE = 'not_null_violation';
    END IF;
    ANALYZE pg_temp.import_term;
    src := bionty.register_source(entity, NULL, source_name, source_version, url, checksum, description);
    SELECT count(*) INTO v_terms FROM pg_temp.import_term;
    -- Sources carry duplicate labels (obsolete terms, homonyms across branches):
    -- the typo guard is for hand-made records. Restored before returning.
    guard_setting := current_setting('lamin.allow_duplicates', true);
    PERFORM set_config('lamin.allow_duplicates', 'on', true);

    -- Update changed terms in place, then add new ones.
    EXECUTE format($q$
        UPDATE %1$s t SET name = i.name, synonyms = coalesce(i.synonyms, '{}'), description = i.description,
                          abbr = i.abbr, deprecated = coalesce(i.deprecated, false), replaced_by = i.replaced_by,
                          source_id = $1, updated_at = now() %2$s
        FROM pg_temp.import_term i
        WHERE t.ontology_id = i.ontology_id
          AND (t.name, t.synonyms, t.description, t.abbr, t.deprecated, t.replaced_by, t.source_id)
              IS DISTINCT FROM (i.name, coalesce(i.synonyms, '{}'), i.description, i.abbr, coalesce(i.deprecated, false), i.replaced_by, $1)$q$,
        tbl, CASE WHEN entity = 'bionty.organism' THEN ', scientific_name = i.name' ELSE '' END)
    USING src;
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    EXECUTE format($q$
        INSERT INTO %1$s (uid, ontology_id, name, synonyms, description, abbr, deprecated, replaced_by, source_id, created_by %2$s)
        SELECT bionty.ontology_uid(i.ontology_id), i.ontology_id, i.name, coalesce(i.synonyms, '{}'), i.description, i.abbr,
               coalesce(i.deprecated, false), i.replaced_by, $1, $2 %3$s
        FROM pg_temp.import_term i
        WHERE NOT EXISTS (SELECT 1 FROM %1$s t WHERE t.ontology_id = i.ontology_id)$q$,
        tbl, CASE WHEN entity = 'bionty.organism' THEN ', scientific_name' ELSE '' END,
             CASE WHEN entity = 'bionty.organism' THEN ', i.name' ELSE '' END)
    USING src, me;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;

    -- Terms an earlier version of this source had and this one has not: deprecated, not deleted
    -- (artifacts may be annotated with them).
    EXECUTE format($q$
        UPDATE %1$s t SET deprecated = true, updated_at = now()
        FROM bionty.source s
        WHERE s.id = t.source_id AND s.entity = $2 AND s.name = $3 AND s.organism IS NULL AND t.source_id <> $1
          AND NOT t.deprecated
          AND NOT EXISTS (SELECT 1 FROM pg_temp.import_term i WHERE i.ontology_id = t.ontology_id)$q$, tbl)
    USING src, entity, source_name;
    GET DIAGNOSTICS v_deprecated = ROW_COUNT;

    -- The imported terms' edges are replaced by the source's. Edges to terms
    -- that are not in this registry (e.g. CL part_of UBERON) are counted, not kept.
    EXECUTE format($q$
        DELETE FROM %1$s e USING %2$s c, pg_temp.import_term i
        WHERE e.child_id = c.id AND c.ontology_id = i.ontology_id$q$, edges_tbl, tbl);
    EXECUTE format($q$
        WITH wanted AS (
            SELECT i.ontology_id AS child, x.parent, coalesce(nullif(x.relation, ''), 'is_a') AS relation
            FROM pg_temp.import_term i
            CROSS JOIN LATERAL unnest(i.parents, i.relations) AS x(parent, relation)
            WHERE x.parent IS NOT NULL AND x.parent <> i.ontology_id
        ), resolved AS (
            SELECT c.id AS child_id, p.id AS parent_id, w.relation
            FROM wanted w JOIN %2$s c ON c.ontology_id = w.child LEFT JOIN %2$s p ON p.ontology_id = w.parent
        ), added AS (
            INSERT INTO %1$s (child_id, parent_id, relation)
            SELECT DISTINCT child_id, parent_id, relation FROM resolved WHERE parent_id IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM resolved WHERE parent_id IS NULL)$q$, edges_tbl, tbl)
    INTO v_edges, v_outside;

    UPDATE bionty.source s SET n_terms = v_terms, n_deprecated = v_deprecated WHERE s.id = src;
    PERFORM set_config('lamin.allow_duplicates', coalesce(guard_setting, ''), true);
    RETURN QUERY SELECT src, v_terms, v_inserted, v_updated, v_deprecated, v_edges, v_outside;
END
$$;

-- Merge pg_temp.import_gene into bionty.gene for one organism.
CREATE OR REPLACE FUNCTION bionty.finish_gene_import(organism text, source_name text, source_version text, url text, checksum text,
                                          description text DEFAULT NULL)
RETURNS TABLE (source_id bigint, terms bigint, inserted bigint, updated bigint, deprecated bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- No force_custom_plan, no JIT: see bionty.finish_import.
SET work_mem = '256MB'
SET lamin.audit_summary = 'on'
SET jit = off
AS $$
DECLARE
    src bigint;
    me bigint := lamin.current_user_id();  -- once, not per gene (see bionty.finish_import)
    v_terms bigint;
    v_inserted bigint;
    v_updated bigint;
    v_deprecated bigint;
    dup text;
    guard_setting text;
    org text := organism;
BEGIN
    IF org IS NULL OR btrim(org) = '' THEN
        RAISE EXCEPTION 'gene import: the organism must be named (e.g. human)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.ensembl_gene_id INTO dup FROM pg_temp.import_gene i GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'gene import: % appears twice in the source', dup USING ERRCODE = 'unique_violation';
    END IF;
    SELECT g.ensembl_gene_id INTO dup FROM bionty.gene g JOIN pg_temp.import_gene i USING (ensembl_gene_id)
    WHERE g.organism <> org LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'gene import: % is already a gene of another organism', dup USING ERRCODE = 'unique_violation';
    END IF;
    ANALYZE pg_temp.import_gene;
    src := bionty.register_source('bionty.gene', org, source_name, source_version, url, checksum, description);
    SELECT count(*) INTO v_terms FROM pg_temp.import_gene;
    guard_setting := current_setting('lamin.allow_duplicates', true);
    PERFORM set_config('lamin.allow_duplicates', 'on', true);

    UPDATE bionty.gene g SET symbol = i.symbol, ncbi_gene_ids = coalesce(i.ncbi_gene_ids, '{}'), hgnc_id = i.hgnc_id,
                             mgi_id = i.mgi_id, biotype = i.biotype, synonyms = coalesce(i.synonyms, '{}'),
                             description = i.description, deprecated = false, source_id = src, updated_at = now()
    FROM pg_temp.import_gene i
    WHERE g.ensembl_gene_id = i.ensembl_gene_id
      AND (g.symbol, g.ncbi_gene_ids, g.hgnc_id, g.mgi_id, g.biotype, g.synonyms, g.description, g.deprecated, g.source_id)
          IS DISTINCT FROM (i.symbol, coalesce(i.ncbi_gene_ids, '{}'), i.hgnc_id, i.mgi_id, i.biotype, coalesce(i.synonyms, '{}'), i.description, false, src);
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    INSERT INTO bionty.gene (uid, ensembl_gene_id, symbol, ncbi_gene_ids, hgnc_id, mgi_id, biotype, organism, synonyms, description, source_id,
                             created_by)
    SELECT bionty.ontology_uid(i.ensembl_gene_id), i.ensembl_gene_id, i.symbol, coalesce(i.ncbi_gene_ids, '{}'), i.hgnc_id, i.mgi_id,
           i.biotype, org, coalesce(i.synonyms, '{}'), i.description, src, me
    FROM pg_temp.import_gene i
    WHERE NOT EXISTS (SELECT 1 FROM bionty.gene g WHERE g.ensembl_gene_id = i.ensembl_gene_id);
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    UPDATE bionty.gene g SET deprecated = true, updated_at = now()
    FROM bionty.source s
    WHERE s.id = g.source_id AND s.entity = 'bionty.gene' AND s.name = source_name AND s.organism = org AND g.source_id <> src
      AND NOT g.deprecated
      AND NOT EXISTS (SELECT 1 FROM pg_temp.import_gene i WHERE i.ensembl_gene_id = g.ensembl_gene_id);
    GET DIAGNOSTICS v_deprecated = ROW_COUNT;

    UPDATE bionty.source s SET n_terms = v_terms, n_deprecated = v_deprecated WHERE s.id = src;
    PERFORM set_config('lamin.allow_duplicates', coalesce(guard_setting, ''), true);
    RETURN QUERY SELECT src, v_terms, v_inserted, v_updated, v_deprecated;
END
$$;
-- Register artifacts whose bytes are (or will be) in one storage, one entry
-- per position of the arrays (NULL arrays: NULL for every entry). Returns one
-- row per entry, in order: its artifact's uid and what happened:
--   saved        a new artifact (a new family, or the first version of its key);
--   new version  a new artifact: the next version of the family of its key;
--   existing     the content was saved before (or earlier in this call): that
--                artifact is returned and the current run recorded as re-creating it;
--   restored     as existing, and the artifact came back from the trash.
-- Within one call a key may appear once (which of two files would be the
-- newer version is not said); version tags and `revises` are
-- lamin.save_artifact's.
CREATE OR REPLACE FUNCTION lamin.save_artifacts(
    hashes         text[],
    sizes          bigint[],
    keys           text[] DEFAULT NULL,
    suffixes       text[] DEFAULT NULL,
    descriptions   text[] DEFAULT NULL,
    storage        text DEFAULT NULL,
    kinds          text[] DEFAULT NULL,
    otypes         text[] DEFAULT NULL,
    n_files        bigint[] DEFAULT NULL,
    n_observations bigint[] DEFAULT NULL
) RETURNS TABLE (ord int, uid text, outcome text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Each statement below is planned for the arrays it gets (a generic plan
-- would not know how many entries a call has).
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_variable
DECLARE
    n int := coalesce(cardinality(hashes), 0);
    sid bigint;
    here bigint;
    run bigint := lamin.current_run_id();
    me bigint;
    bad record;
    -- Content saved before, one element per distinct hash that has a record.
    old_hash text[];
    old_id bigint[];
    old_uid text[];
    old_trashed boolean[];
    -- Artifacts this call made.
    new_hash text[];
    new_uid text[];
    fresh bigint[];
    family text[];
    planned text[];
    n_existing int;
    n_keys_dropped int;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF n > 10000 THEN
        RAISE EXCEPTION 'save_artifacts: % entries, at most 10000 a call', n
            USING ERRCODE = 'program_limit_exceeded', HINT = 'split the entries into calls of up to 10000';
    END IF;
    SELECT x.name, x.len INTO bad
    FROM (VALUES ('sizes', cardinality(sizes)), ('keys', cardinality(keys)), ('suffixes', cardinality(suffixes)),
                 ('descriptions', cardinality(descriptions)), ('kinds', cardinality(kinds)), ('otypes', cardinality(otypes)),
                 ('n_files', cardinality(n_files)), ('n_observations', cardinality(n_observations))) x(name, len)
    WHERE x.len IS DISTINCT FROM n AND (x.len IS NOT NULL OR x.name = 'sizes')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'save_artifacts: % has % entries, hashes has %', bad.name, coalesce(bad.len, 0), n
            USING ERRCODE = 'invalid_parameter_value', HINT = 'pass one element per artifact in every array (or NULL for none)';
    END IF;
    SELECT u.o, u.h INTO bad FROM unnest(hashes) WITH ORDINALITY u(h, o)
    WHERE u.h IS NULL OR NOT lamin.is_sha256_hex(u.h) ORDER BY u.o LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry %: invalid hash %: expected the sha256 of the full content as 64 lowercase hex characters',
            bad.o, coalesce(quote_literal(left(bad.h, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT u.o, u.s INTO bad FROM unnest(sizes) WITH ORDINALITY u(s, o)
    WHERE u.s IS NULL OR u.s < 0 ORDER BY u.o LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry %: invalid size %: expected a byte count >= 0', bad.o, coalesce(bad.s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keys IS NOT NULL THEN
        PERFORM lamin.check_key(k) FROM unnest(keys) k WHERE k IS NOT NULL;
        SELECT u.k, array_agg(u.o ORDER BY u.o) AS os INTO bad FROM unnest(keys) WITH ORDINALITY u(k, o)
        WHERE u.k IS NOT NULL GROUP BY u.k HAVING count(*) > 1 ORDER BY min(u.o) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'key % is given to entries % in one call', quote_literal(bad.k), array_to_string(bad.os, ', ')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'save them in separate calls: the later call makes the next version of the key';
        END IF;
    END IF;
    sid := lamin.storage_id(storage);
    here := lamin.current_space_id();

    -- The same locks as lamin.save_artifact's, so that concurrent savers of
    -- one content or one key wait for each other and then find each other's
    -- records: for a few entries one per hash and per key (sorted: no two
    -- calls take them in opposite orders); for more, the storage's lock over
    -- all saves (advisory locks live in a shared table of bounded size).
    IF n > 64 THEN
        PERFORM pg_advisory_xact_lock(lamin.artifact_saves_lock_key(sid));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(lamin.artifact_saves_lock_key(sid));
        PERFORM pg_advisory_xact_lock(l.k)
        FROM (SELECT DISTINCT lamin.artifact_hash_lock_key(sid, h) AS k FROM unnest(hashes) h ORDER BY 1) l;
        PERFORM pg_advisory_xact_lock(l.k)
        FROM (SELECT DISTINCT lamin.artifact_key_lock_key(sid, k) AS k
              FROM unnest(keys) k WHERE k IS NOT NULL ORDER BY 1) l;
    END IF;

    -- Content saved before, within what the caller can read (as in
    -- lamin.save_artifact: row-level security hides the rest; the copy in the
    -- current space first, then one not in the trash).
    SELECT array_agg(d.h), array_agg(e.id), array_agg(e.uid), array_agg(e.branch_id = -1)
    INTO old_hash, old_id, old_uid, old_trashed
    FROM (SELECT DISTINCT h FROM unnest(hashes) h) d
    CROSS JOIN LATERAL (
        SELECT a.id, a.uid, a.branch_id FROM lamin.artifact a
        WHERE a.storage_id = sid AND a.hash = d.h
        ORDER BY a.space_id = here DESC, a.branch_id = -1, a.id
        LIMIT 1) e;
    IF old_id IS NOT NULL THEN
        UPDATE lamin.artifact a SET branch_id = 1
        FROM unnest(old_id, old_trashed) t(id, trashed) WHERE a.id = t.id AND t.trashed;
        INSERT INTO lamin.artifact_recreating_run (artifact_id, run_id)
        SELECT a.id, run FROM lamin.artifact a
        WHERE run IS NOT NULL AND a.id = ANY (old_id) AND a.run_id IS DISTINCT FROM run
        ON CONFLICT DO NOTHING;
    END IF;

    -- New content: the first entry of each hash not saved before, in order.
    IF EXISTS (SELECT FROM unnest(hashes) h WHERE h <> ALL (coalesce(old_hash, '{}'))) THEN
        PERFORM lamin.require_write('saving artifacts');
        me := lamin.current_user_id();
        -- The entries to store, each with the family of its key (saving under
        -- an existing key makes a new version of that key's family).
        SELECT array_agg(e.o ORDER BY e.o), array_agg(f.stem ORDER BY e.o) INTO fresh, family
        FROM (SELECT u.o, u.h, u.k, u.o = min(u.o) OVER (PARTITION BY u.h) AS first_of_hash
              FROM unnest(hashes, keys) WITH ORDINALITY u(h, k, o)) e
        LEFT JOIN LATERAL (
            SELECT a.stem FROM lamin.artifact a
            WHERE e.k IS NOT NULL AND a.storage_id = sid AND a.key = e.k AND a.branch_id <> -1
            ORDER BY a.id DESC LIMIT 1) f ON true
        WHERE e.first_of_hash AND e.h <> ALL (coalesce(old_hash, '{}'));
        SELECT f.stem, array_agg(f.o ORDER BY f.o) AS os INTO bad FROM unnest(fresh, family) f(o, stem)
        WHERE f.stem IS NOT NULL GROUP BY f.stem HAVING count(*) > 1 ORDER BY min(f.o) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'entries % would all be the next version of family % (their keys name versions of it)',
                array_to_string(bad.os, ', '), bad.stem
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'save them in separate calls: each call makes one next version of a family';
        END IF;
        -- Their uids. Up to 64 entries: as lamin.save_artifact makes them,
        -- each next version under its family's lock. More: under the storage's
        -- saves lock, each family's newest counter read at once, and the new
        -- versions vouched for as their families' heads below (a lock per
        -- family would fill the shared lock table for thousands of versions).
        IF n <= 64 THEN
            planned := ARRAY(SELECT CASE WHEN f.stem IS NULL THEN lamin.new_family_uid(20)
                                         ELSE lamin.next_version_uid('lamin.artifact', f.stem) END
                             FROM unnest(fresh, family) WITH ORDINALITY f(o, stem, i) ORDER BY f.i);
        ELSE
            planned := ARRAY(SELECT CASE WHEN f.stem IS NULL THEN lamin.new_family_uid(20)
                                         ELSE f.stem || lamin.version_suffix(lamin.version_number(t.top) + 1) END
                             FROM unnest(fresh, family) WITH ORDINALITY f(o, stem, i)
                             LEFT JOIN (SELECT a.stem, max(right(a.uid, 4) COLLATE "C") AS top FROM lamin.artifact a
                                        WHERE a.stem = ANY (family) GROUP BY a.stem) t ON t.stem = f.stem
                             ORDER BY f.i);
        END IF;
        -- The families' heads step down in one statement, before the new
        -- versions arrive (from the versioning trigger, each new version would
        -- demote its head in an UPDATE of its own, with the registry's
        -- statement triggers each time).
        IF EXISTS (SELECT FROM unnest(family) x WHERE x IS NOT NULL) THEN
            UPDATE lamin.artifact a SET is_latest = false
            WHERE a.is_latest AND a.stem = ANY (ARRAY(SELECT DISTINCT x FROM unnest(family) x WHERE x IS NOT NULL));
            IF n > 64 THEN
                PERFORM lamin.vouch_heads(ARRAY(SELECT x FROM unnest(planned) x WHERE right(x, 4) <> '0000'));
            END IF;
        END IF;
        -- The insert's foreign-key checks (one per reference of each row) run
        -- with plan_cache_mode auto, which keeps their plans, not under this
        -- function's force_custom_plan, which would re-plan each check of
        -- each row; the insert itself is EXECUTEd, so it is still planned for
        -- the arrays it gets. (Only until the function returns: its SET
        -- clause restores the caller's setting.)
        PERFORM set_config('plan_cache_mode', 'auto', true);
        EXECUTE $q$
            WITH saved AS (
                INSERT INTO lamin.artifact AS a (uid, key, description, storage_id, suffix, kind, otype, size, hash, hash_type,
                                                 n_files, n_observations, run_id, created_by, space_id)
                SELECT f.uid, e.k, e.description, $12, coalesce(e.suffix, lamin.suffix_from_key(e.k), ''), e.kind, e.otype, e.s, e.h,
                       CASE WHEN e.n_files IS NULL THEN 'sha256' ELSE 'sha256-dir' END, e.n_files, e.n_observations,
                       $13, $14, $15
                FROM unnest($1, $2) f(o, uid)
                JOIN unnest($3, $4, $5, $6, $7, $8, $9, $10, $11)
                     WITH ORDINALITY e(h, s, k, suffix, description, kind, otype, n_files, n_observations, o) ON e.o = f.o
                ORDER BY e.o
                RETURNING a.hash, a.uid
            )
            SELECT array_agg(s.hash), array_agg(s.uid) FROM saved s$q$
        INTO new_hash, new_uid
        USING fresh, planned, hashes, sizes, keys, suffixes, descriptions, kinds, otypes, n_files, n_observations, sid, run, me, here;
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;

    -- Say once what came back instead of being stored (every artifact made
    -- is one entry's).
    n_existing := n - coalesce(cardinality(new_uid), 0);
    IF n_existing > 0 THEN
        SELECT count(*) INTO n_keys_dropped
        FROM unnest(hashes, keys) x(h, k)
        LEFT JOIN unnest(new_hash, new_uid) nw(h, uid) ON nw.h = x.h
        LEFT JOIN unnest(old_hash, old_uid) ex(h, uid) ON ex.h = x.h
        JOIN lamin.artifact a ON a.uid = coalesce(nw.uid, ex.uid)
        WHERE x.k IS NOT NULL AND x.k IS DISTINCT FROM a.key;
        RAISE NOTICE '%', format('%s of %s entries have content saved before (or earlier in this call): their artifacts are returned, nothing new is stored%s',
            n_existing, n, CASE WHEN n_keys_dropped > 0
                                THEN format('; %s of them name a key that is not recorded (save different content there, or use lamin.save_artifact with revises)', n_keys_dropped)
                                ELSE '' END)
            USING HINT = 'the current run (if any) is recorded as re-creating them: lamin.describe(uid) -> lineage -> recreating_runs';
    END IF;

    RETURN QUERY
    SELECT u.o::int, coalesce(nw.uid, ex.uid),
           CASE WHEN nw.uid IS NOT NULL AND u.first_of_hash THEN
                     CASE WHEN right(nw.uid, 4) = '0000' THEN 'saved' ELSE 'new version' END
                WHEN ex.trashed AND u.first_of_hash THEN 'restored'
                ELSE 'existing' END
    FROM (SELECT x.h, x.o, x.o = min(x.o) OVER (PARTITION BY x.h) AS first_of_hash
          FROM unnest(hashes) WITH ORDINALITY x(h, o)) u
    LEFT JOIN unnest(new_hash, new_uid) nw(h, uid) ON nw.h = u.h
    LEFT JOIN unnest(old_hash, old_uid, old_trashed) ex(h, uid, trashed) ON ex.h = u.h
    ORDER BY u.o;
END
$$;

-- == the spelling vocabulary without a unique key (sql/15_search.sql) ==
-- Its primary key made a writer wait for any other transaction that had
-- added the same new word (mouse genes waited 90 s for NCBITaxon's import).
ALTER TABLE lamin.search_vocab DROP CONSTRAINT search_vocab_pkey;
CREATE INDEX search_vocab_word ON lamin.search_vocab (word);

-- The statement that indexes the terms of the rows of `source` (a table or a
-- subquery with the registry's columns). Returned as text and run by the
-- caller: transition tables are only visible in the trigger function itself.
-- The kind of ids (lamin.term_kind) is written into it as a constant.
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
           -- Spelling correction needs words with letters, not numbers. The
           -- words not there yet (see lamin.search_vocab: no unique key to wait on).
           INSERT INTO lamin.search_vocab (word)
           SELECT DISTINCT w.word FROM words w
           WHERE w.word ~ '[[:alpha:]]' AND NOT EXISTS (SELECT FROM lamin.search_vocab v WHERE v.word = w.word)
           ORDER BY 1$q$,
        lamin.search_terms_sql(reg, source), lamin.term_kind('id'))
$$;

-- The vocabulary's trigram index takes new words through its pending list
-- (fastupdate): 500k new words went in 4.7 s instead of 32 s one by one; the
-- search triggers merge the list after a write that brought many.
ALTER INDEX lamin.search_vocab_trgm SET (fastupdate = on);

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

-- The trigger functions of lamin's own registries take the new statement.
-- Those of registries users made searchable are theirs: their old text
-- (ON CONFLICT DO NOTHING, which no longer meets a conflict) still works and
-- may add a word twice; lamin.refresh_search_triggers() (scripts/up, the
-- README's upgrade steps) regenerates them right after this update.
SELECT lamin.create_search_trigger_functions(r, r.guard) FROM lamin.registry r
WHERE EXISTS (
    SELECT FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
    WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND p.pronamespace = 'lamin'::regnamespace AND p.proname = 'search_' || replace(r.name, '.', '__'));

-- One helper for each rule of a value comparison (both lamin.find_artifacts and
-- lamin.annotated_artifact_ids had their own copies).
-- The SQL type of a typed value column, to cast the operands of a
-- comparison to (they travel as text, in one array per statement).
CREATE FUNCTION lamin.value_column_type(col text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE col WHEN 'value_number' THEN 'double precision' WHEN 'value_text' THEN 'text'
                    WHEN 'value_boolean' THEN 'boolean' WHEN 'value_date' THEN 'date'
                    WHEN 'value_timestamp' THEN 'timestamptz' END
$$;
COMMENT ON FUNCTION lamin.value_column_type(text) IS
    'The SQL type of a typed column of lamin.artifact_feature_value (lamin.value_column): double precision, text, boolean, date or timestamptz; NULL for any other name.';

-- An operand made to fit a dtype, as the text of the typed column it is
-- compared in (cast back with lamin.value_column_type). Numbers of every
-- numeric dtype compare as numbers (an int feature with 2.5, "3" finds
-- 3.0); NULL when the operand does not fit the dtype, or the dtype has no
-- typed column.
CREATE FUNCTION lamin.comparable_value(dtype text, operand jsonb) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE c.col WHEN 'value_number' THEN fv.value_number::text WHEN 'value_text' THEN fv.value_text
                      WHEN 'value_boolean' THEN fv.value_boolean::text WHEN 'value_date' THEN fv.value_date::text
                      WHEN 'value_timestamp' THEN fv.value_timestamp::text END
    FROM (SELECT lamin.value_column(dtype) AS col) c
    CROSS JOIN LATERAL lamin.fit_value(CASE WHEN c.col = 'value_number' THEN 'num' ELSE lamin.dtype_base(dtype) END, operand, true) fv
$$;
COMMENT ON FUNCTION lamin.comparable_value(text, jsonb) IS
    'An operand made to fit a dtype (lamin.fit_value, numbers of any numeric dtype as numbers, numbers and booleans written as strings accepted), as the text of the typed column it is compared in, e.g. lamin.comparable_value(''int'', ''"3"'') = ''3''; NULL when it does not fit or the dtype has no typed column.';

-- Two settings for its own statements: no JIT (these are index probes; the
-- planner's high cost guesses, inflated by the row-level-security checks,
-- would otherwise spend 50-500 ms compiling them), and a small work_mem, so
-- that a security check "is the owning artifact readable?" is an index
-- probe per row, never a hash of every artifact built to answer a few
-- thousand rows.
-- max_rows: a function's rows are all made before a LIMIT around the call
-- sees any, so the limit is passed in (the first 100 artifacts with a label
-- of 10,000 artifacts took 167 ms at 10M artifacts as LIMIT 100 outside).
CREATE OR REPLACE FUNCTION lamin.find_artifacts(filters jsonb, max_rows bigint DEFAULT NULL) RETURNS SETOF lamin.artifact
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '1MB'
AS $$
#variable_conflict use_variable
DECLARE
    cand bigint[];          -- the artifacts every value condition so far holds for; NULL: none yet
    probes text := '';      -- one EXISTS per label condition
    item record;
    f record;
    ops jsonb;
    c record;
    vconds text;            -- the current feature's value conditions, as SQL over $2 (vargs)
    vargs text[];
    col text;
    typ text;
    operands text[];
    ids bigint[];
    registry text;
    link regclass;
    reg record;
    root_id bigint;
    misfit jsonb;
    example constant text := '{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}, "assay": ["10x 3'' v3"]}';
BEGIN
    IF max_rows IS NOT NULL AND max_rows < 0 THEN
        RAISE EXCEPTION 'find_artifacts: max_rows is a number of artifacts (or NULL for all), not %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF filters IS NULL OR jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'find_artifacts: filters are a JSON object of feature names and conditions, not %',
            coalesce(left(filters::text, 200), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ' || example;
    END IF;
    -- Value conditions first (each gives an exact set of artifacts), then labels.
    FOR item IN
        SELECT j.key, j.value, x.id AS feature_id, x.name, x.dtype
        FROM jsonb_each(filters) j
        CROSS JOIN LATERAL (SELECT x.id, x.name, x.dtype FROM lamin.feature x WHERE x.id = lamin.feature_id(j.key)) x
        ORDER BY lamin.dtype_registry(x.dtype) IS NOT NULL, j.key
    LOOP
        -- A bare value is equality, a bare list membership: {"assay": "x"}, {"assay": ["x", "y"]}.
        ops := CASE jsonb_typeof(item.value)
                   WHEN 'object' THEN item.value
                   WHEN 'array' THEN jsonb_build_object('in', item.value)
                   ELSE jsonb_build_object('=', item.value) END;
        IF ops = '{}' THEN
            RAISE EXCEPTION 'find_artifacts: feature % has an empty condition', quote_literal(item.name)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ' || example;
        END IF;
        registry := lamin.dtype_registry(item.dtype);
        vconds := '';
        vargs := '{}';
        FOR c IN SELECT o.key AS op, o.value AS operand FROM jsonb_each(ops) o ORDER BY o.key LOOP
            IF jsonb_typeof(c.operand) = 'null' THEN
                RAISE EXCEPTION 'find_artifacts: feature %: NULL is no value to compare with', quote_literal(item.name)
                    USING ERRCODE = 'null_value_not_allowed';
            END IF;
            IF c.op = 'in' AND (jsonb_typeof(c.operand) <> 'array' OR jsonb_array_length(c.operand) = 0) THEN
                RAISE EXCEPTION 'find_artifacts: feature %: "in" takes a non-empty list, not %', quote_literal(item.name), left(c.operand::text, 200)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF c.op <> 'in' AND jsonb_typeof(c.operand) = 'array' THEN
                RAISE EXCEPTION 'find_artifacts: feature %: % takes one value, not the list %', quote_literal(item.name), c.op, left(c.operand::text, 200)
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'for any of several values: {"in": [...]}';
            END IF;
            IF registry IS NULL THEN
                -- A value condition: one range scan of the typed index.
                col := lamin.value_column(item.dtype);
                IF col IS NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %) cannot be compared', quote_literal(item.name), item.dtype
                        USING ERRCODE = 'feature_not_supported',
                              HINT = 'query its values in lamin.artifact_values (column value, jsonb)';
                END IF;
                IF c.op NOT IN ('=', '>', '>=', '<', '<=', 'in') THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): unknown operator %', quote_literal(item.name), item.dtype, quote_literal(c.op)
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'the operators are =, >, >=, <, <= and in';
                END IF;
                typ := lamin.value_column_type(col);
                -- Each operand made to fit the dtype (a comparison of an int
                -- feature with 2.5 is fine: numbers are compared as numbers).
                SELECT array_agg(x.v), (array_agg(x.e) FILTER (WHERE x.v IS NULL))[1]
                INTO operands, misfit
                FROM (SELECT e, lamin.comparable_value(item.dtype, e) AS v
                      FROM jsonb_array_elements(CASE WHEN c.op = 'in' THEN c.operand ELSE jsonb_build_array(c.operand) END) e) x;
                IF misfit IS NOT NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): % is no % to compare with', quote_literal(item.name), item.dtype,
                        left(misfit::text, 200), lamin.dtype_base(item.dtype)
                        USING ERRCODE = 'datatype_mismatch';
                END IF;
                -- Collected, and asked below in one scan with the feature's other conditions.
                vconds := vconds || CASE WHEN c.op = 'in'
                    THEN format(' AND v.%I = ANY ($2[%s:%s]::%s[])', col, cardinality(vargs) + 1, cardinality(vargs) + cardinality(operands), typ)
                    ELSE format(' AND v.%I %s $2[%s]::%s', col, c.op, cardinality(vargs) + 1, typ) END;
                vargs := vargs || operands;
            ELSE
                -- A label condition: the registry records it accepts.
                link := to_regclass(format('%I.%I', split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2)));
                SELECT r.name_field, r.id_field INTO reg FROM lamin.registry r WHERE r.name = registry;
                IF link IS NULL OR reg IS NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): artifacts are not annotated with records of %', quote_literal(item.name), item.dtype, registry
                        USING ERRCODE = 'feature_not_supported', HINT = 'annotatable registries have a link table <schema>.artifact_<table>';
                END IF;
                IF c.op IN ('=', 'in') THEN
                    EXECUTE format('SELECT array_agg(t.id) FROM %s t WHERE t.%I = ANY ($1) AND t.branch_id <> -1',
                                   registry, coalesce(lamin.dtype_field(item.dtype), reg.name_field))
                    INTO ids
                    USING ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(CASE WHEN c.op = 'in' THEN c.operand ELSE jsonb_build_array(c.operand) END) e);
                ELSIF c.op = 'under' THEN
                    -- The term itself (by its id, e.g. CL:0000084, or its name) and everything below it.
                    EXECUTE format('SELECT t.id FROM %s t WHERE (t.%I = $1%s) AND t.branch_id <> -1 ORDER BY t.%I = $1 DESC LIMIT 1',
                                   registry, reg.name_field,
                                   CASE WHEN reg.id_field IS NOT NULL THEN format(' OR t.%I = $1', reg.id_field) ELSE '' END,
                                   coalesce(reg.id_field, reg.name_field))
                    INTO root_id USING c.operand #>> '{}';
                    IF root_id IS NULL THEN
                        RAISE EXCEPTION 'find_artifacts: feature %: % holds no record %', quote_literal(item.name), registry, quote_literal(c.operand #>> '{}')
                            USING ERRCODE = 'no_data_found',
                                  HINT = CASE WHEN registry LIKE 'bionty.%' THEN 'give an ontology id or name, e.g. CL:0000084 or ''T cell''; import the ontology first' END;
                    END IF;
                    ids := lamin.subtree_ids(registry, root_id);
                ELSE
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): unknown operator %', quote_literal(item.name), item.dtype, quote_literal(c.op)
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'labels are matched with =, in and under (a term and every term below it)';
                END IF;
                IF ids IS NULL THEN
                    RETURN;  -- no record matches: neither does any artifact
                END IF;
                -- IN (SELECT unnest(...)): a hash of the records, built once and
                -- probed by each link (= ANY would compare with every element).
                probes := probes || format(' AND EXISTS (SELECT FROM %s l WHERE l.artifact_id = a.id AND l.feature_id = %s AND l.%I IN (SELECT unnest(%L::bigint[])))',
                                           link, item.feature_id, split_part(registry, '.', 2) || '_id', ids);
            END IF;
        END LOOP;
        IF registry IS NULL THEN
            -- All of a feature's value conditions in one range scan of its
            -- typed index: {">=": 10, "<": 20} reads what lies between, not
            -- every value above 10 and every value below 20.
            EXECUTE format('SELECT array_agg(DISTINCT v.artifact_id) FROM lamin.artifact_feature_value v
                            WHERE v.feature_id = $1%s', vconds)
            INTO ids USING item.feature_id, vargs;
            cand := CASE WHEN cand IS NULL THEN coalesce(ids, '{}')
                         ELSE ARRAY(SELECT unnest(cand) INTERSECT SELECT unnest(ids)) END;
            IF cand = '{}' THEN
                RETURN;
            END IF;
        END IF;
    END LOOP;
    -- $1 is planned as the constant it is: the planner sees how many candidates there are.
    RETURN QUERY EXECUTE 'SELECT a.* FROM lamin.artifact a WHERE a.branch_id <> -1'
        || CASE WHEN cand IS NOT NULL THEN ' AND a.id = ANY ($1)' ELSE '' END || probes
        || CASE WHEN max_rows IS NOT NULL THEN ' LIMIT $2' ELSE '' END
        USING cand, max_rows;
END
$$;

-- The artifacts annotated with `value`: with a record of that name in any
-- registry that annotates artifacts (ulabels, ontology terms, projects,
-- references, records, registries of one's own), and, when a feature is
-- named, only through that feature, or with that typed value of it. What
-- `lamin ls --label` and `--feature name=value` select.
-- Why a set and not a per-artifact test: a listing walks the artifacts in
-- key order, and asking each one for its annotations (registry_annotations,
-- about 1 ms a call) took 111 s to find the first 100 artifacts with a label
-- of 1 artifact in 1,000 at 1M artifacts. Here each registry is one indexed
-- look-up of the name and one of its links, so the cost is what the matches
-- cost, and the caller filters by the set before it sorts (lamin ls hands it
-- to its listing as an array, so that the planner sees the set's size).
-- It runs as the caller: row-level security applies to every table read.
CREATE OR REPLACE FUNCTION lamin.annotated_artifact_ids(value text, feature text DEFAULT NULL) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_variable
DECLARE
    fid bigint;
    dtype text;
    reg record;
    parts text[] := '{}';
    col text;
    typed text;
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'annotated_artifact_ids: NULL is no label or value to look for'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF feature IS NOT NULL THEN
        SELECT x.id, x.dtype INTO fid, dtype FROM lamin.feature x WHERE x.name = feature;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no feature named %', to_json(feature)
                USING ERRCODE = 'no_data_found', HINT = 'see SELECT name, dtype FROM lamin.features';
        END IF;
    END IF;
    -- A record of that name, in every registry with a link table
    -- <schema>.artifact_<table> (registry records by their name field).
    FOR reg IN
        SELECT r.name, r.name_field,
               to_regclass(format('%I.%I', split_part(r.name, '.', 1), 'artifact_' || split_part(r.name, '.', 2))) AS link
        FROM lamin.registry r ORDER BY r.name
    LOOP
        CONTINUE WHEN reg.link IS NULL;
        parts := parts || format('SELECT l.artifact_id FROM %s l WHERE l.%I IN (SELECT t.id FROM %s t WHERE t.%I = $1)%s',
                                 reg.link, split_part(reg.name, '.', 2) || '_id', reg.name, reg.name_field,
                                 CASE WHEN feature IS NOT NULL THEN ' AND l.feature_id = $2' ELSE '' END);
    END LOOP;
    IF feature IS NOT NULL THEN
        -- A typed value, compared as the feature's dtype compares (a number
        -- as a number: "3" finds 3.0), on the typed index; a value that does
        -- not fit the dtype finds none. Dict values: by their text.
        col := lamin.value_column(dtype);
        IF col IS NULL THEN
            parts := parts || 'SELECT v.artifact_id FROM lamin.artifact_feature_value v WHERE v.feature_id = $2 AND v.value #>> ''{}'' = $1'::text;
        ELSE
            typed := lamin.comparable_value(dtype, to_jsonb(value));
            IF typed IS NOT NULL THEN
                parts := parts || format('SELECT v.artifact_id FROM lamin.artifact_feature_value v WHERE v.feature_id = $2 AND v.%I = $3::%s',
                                         col, lamin.value_column_type(col));
            END IF;
        END IF;
    END IF;
    IF parts <> '{}' THEN
        RETURN QUERY EXECUTE array_to_string(parts, ' UNION ') USING value, fid, typed;
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.annotated_artifact_ids(text, text) IS
    'Ids of the artifacts annotated with value: a record of that name in any registry that annotates artifacts (ulabels, ontology terms, projects, references, records, your own registries); with feature, only annotations through that feature, or that typed value of it (compared as its dtype compares). Each id once; artifacts in the trash too. Fast at any size (see sql/26_find.sql); with the lamin.artifacts view pass the set as an array: WHERE a.id = ANY (ARRAY(SELECT lamin.annotated_artifact_ids(''T cell''))).';

-- Import jobs take the source's description (its license and attribution), as
-- the CLI does: scripts/up's first start enqueues the default imports as jobs.
DROP FUNCTION lamin.import_ontology(text, text, text, text);
DROP FUNCTION lamin.import_genes(text, text[], text, text);
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

-- lamin.job.progress_stage: what a running job is doing now (an import reads, then merges).
ALTER TABLE lamin.job ADD COLUMN progress_stage text;
COMMENT ON COLUMN lamin.job.progress_stage IS 'What the running job is doing now (e.g. reading a file, then merging it), as the sidecar reports it; progress_done and progress_total count that stage.';

-- Claim up to n of the oldest ready jobs, taking over first those whose lease ran out.
-- A worker names the extension version it speaks: once ALTER EXTENSION lamin
-- UPDATE has moved the schema on under a running sidecar, its next claim fails
-- here, in the same statement, before it takes a job it might run wrongly.
CREATE OR REPLACE FUNCTION lamin.claim_job(worker text, sidecar_version text, lease_s int DEFAULT 30, kinds text[] DEFAULT NULL,
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

DROP FUNCTION lamin.heartbeat_job(bigint, text, int, bigint, bigint, int);
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

-- (security_invoker as 21_access.sql gives every view; a replaced view loses it otherwise)
CREATE OR REPLACE VIEW lamin.jobs WITH (security_invoker = true) AS
SELECT j.id, j.kind, j.status, j.args, j.attempts, j.max_attempts,
       CASE WHEN j.progress_total > 0 THEN round(100.0 * j.progress_done / j.progress_total, 1) END AS progress_pct,
       j.progress_done, j.progress_total, j.error, j.result, j.worker, j.created_at, j.started_at, j.finished_at,
       j.requested_by, CASE WHEN j.status = 'running' THEN j.progress_stage END AS progress_stage
FROM lamin.job j
WHERE j.requested_by = current_user
   OR pg_has_role(current_user, 'pg_monitor', 'USAGE');
COMMENT ON COLUMN lamin.jobs.progress_stage IS 'What a running job is doing now (progress_pct counts this stage; none while a stage has no total).';

-- == lamin.current_user_id() in Rust (extension/src/users.rs): it remembers each role's
-- user id, so that created_by's default costs a hash lookup per row instead of a query. ==
CREATE OR REPLACE FUNCTION lamin."current_user_id"() RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'current_user_id_wrapper';
