-- Importing a source version into a bionty registry, and walking hierarchies.
--
-- An importer (the `lamin import` CLI) does, in ONE transaction:
--   1. SELECT bionty.start_import();            -- temp staging tables
--   2. COPY pg_temp.import_term / import_gene FROM STDIN (BINARY)
--   3. SELECT * FROM bionty.finish_import(…) / bionty.finish_gene_import(…)
-- so a failed import leaves the previous version intact. Re-importing a
-- version with the same checksum is refused up front (bionty.imported_source).

CREATE FUNCTION bionty.start_import() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('pg_temp.import_term') IS NOT NULL THEN
        TRUNCATE pg_temp.import_term, pg_temp.import_gene;
        RETURN;
    END IF;
    CREATE TEMP TABLE import_term (
        ontology_id text NOT NULL,
        name        text,
        synonyms    text[],
        description text,
        abbr        text,
        deprecated  boolean,
        replaced_by text,
        parents     text[],  -- direct parents' ontology ids …
        relations   text[]   -- … and the relation to each
    ) ON COMMIT DROP;
    CREATE TEMP TABLE import_gene (
        ensembl_gene_id text NOT NULL,
        symbol          text,
        ncbi_gene_ids   text[],
        hgnc_id         text,
        mgi_id          text,
        biotype         text,
        synonyms        text[],
        description     text
    ) ON COMMIT DROP;
END
$$;
COMMENT ON FUNCTION bionty.start_import() IS 'Create the temporary staging tables import_term and import_gene for one import transaction.';

-- The source row of an earlier import of exactly this file, if any.
CREATE FUNCTION bionty.imported_source(entity text, source_name text, source_version text, checksum text, organism text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.id FROM bionty.source s
    WHERE s.entity = $1 AND s.name = $2 AND s.version = $3 AND s.checksum = $4 AND s.organism IS NOT DISTINCT FROM $5
$$;
COMMENT ON FUNCTION bionty.imported_source(text, text, text, text, text) IS 'The id of the source row if this exact file (same checksum) was already imported as this version, else NULL.';

-- Record the source version and make it the registry's current one.
CREATE FUNCTION bionty.register_source(entity text, organism text, source_name text, source_version text,
                                       url text, checksum text, description text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src bigint;
BEGIN
    -- Serialise imports into one registry: two at once would fight over currently_used.
    PERFORM pg_advisory_xact_lock(hashtextextended('bionty import ' || entity, 0));
    INSERT INTO bionty.source AS s (entity, organism, name, version, url, checksum, description)
    VALUES (entity, organism, source_name, source_version, url, checksum, description)
    ON CONFLICT ON CONSTRAINT source_version_once DO UPDATE
        SET url = excluded.url, checksum = excluded.checksum, description = coalesce(excluded.description, s.description)
    RETURNING s.id INTO src;
    UPDATE bionty.source s SET currently_used = false
    WHERE s.entity = register_source.entity AND s.organism IS NOT DISTINCT FROM register_source.organism
      AND s.name = source_name AND s.currently_used;
    UPDATE bionty.source s SET currently_used = true WHERE s.id = src;
    RETURN src;
END
$$;
COMMENT ON FUNCTION bionty.register_source(text, text, text, text, text, text, text) IS 'Insert (or refresh) a source version row and make it the current source of its registry.';

-- Merge pg_temp.import_term into an ontology registry.
CREATE FUNCTION bionty.finish_import(entity text, source_name text, source_version text, url text, checksum text,
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
COMMENT ON FUNCTION bionty.finish_import(text, text, text, text, text, text) IS
    'Merge the staged terms (pg_temp.import_term) into an ontology registry: update changed terms, add new ones, deprecate terms the source dropped, replace edges; records the source version as current.';

-- Merge pg_temp.import_gene into bionty.gene for one organism.
CREATE FUNCTION bionty.finish_gene_import(organism text, source_name text, source_version text, url text, checksum text,
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
COMMENT ON FUNCTION bionty.finish_gene_import(text, text, text, text, text, text) IS
    'Merge the staged genes (pg_temp.import_gene) into bionty.gene for one organism: update changed genes, add new ones, deprecate genes the source dropped; records the source version as current.';

-- ------------------------------------------------------------ hierarchies

-- The registry holding an ontology id: by its prefix first, else any registry that has it.
CREATE FUNCTION bionty.registry_of(term_id text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    found boolean;
BEGIN
    FOR o IN SELECT b.entity FROM bionty.ontology b
             ORDER BY split_part(term_id, ':', 1) = ANY (b.id_prefixes) DESC, b.entity LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM bionty.%I t WHERE t.ontology_id = $1)', split_part(o.entity, '.', 2))
        INTO found USING term_id;
        IF found THEN
            RETURN o.entity;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION bionty.registry_of(text) IS 'The ontology registry that holds a term (e.g. CL:0000084 -> bionty.cell_type), or NULL.';

-- Walk the edges up (ancestors) or down (descendants) from a term; each
-- reached term once, at its shortest distance.
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

-- The currently used sources, for a quick look at what is loaded.
CREATE VIEW bionty.sources AS
SELECT s.entity, s.organism, s.name, s.version, s.n_terms, s.n_deprecated, s.url, s.created_at AS imported_at
FROM bionty.source s WHERE s.currently_used;
COMMENT ON VIEW bionty.sources IS 'The current version of each source of the bionty registries.';
COMMENT ON COLUMN bionty.sources.entity IS 'The registry.';
COMMENT ON COLUMN bionty.sources.organism IS 'Organism (genes), or NULL.';
COMMENT ON COLUMN bionty.sources.name IS 'Source name.';
COMMENT ON COLUMN bionty.sources.version IS 'Source version.';
COMMENT ON COLUMN bionty.sources.n_terms IS 'Terms in that version.';
COMMENT ON COLUMN bionty.sources.n_deprecated IS 'Records that import deprecated.';
COMMENT ON COLUMN bionty.sources.url IS 'Where the file came from.';
COMMENT ON COLUMN bionty.sources.imported_at IS 'When it was imported.';
