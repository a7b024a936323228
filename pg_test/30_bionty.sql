-- bionty: deterministic uids, the import merge (new version, removed terms,
-- failed imports), hierarchies, search under a term, and genes.
BEGIN;
SELECT plan(41);

-- Every table, view and column of schema bionty is documented.
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE n.nspname = 'bionty' AND c.relkind IN ('r', 'v')
             AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)), 0,
          'every bionty table, view and column has a COMMENT');
SELECT is(bionty.ontology_uid('CL:0000625'), '6IC9NGJEv2Y4TD', 'uid = base62(md5(ontology id))[:14], as Python computes it');
SELECT is((SELECT count(*)::int FROM lamin.registry WHERE name LIKE 'bionty.%'), 13, 'all 13 bionty registries are searchable');

-- Version 1 of a small ontology.
SELECT bionty.start_import();
INSERT INTO import_term VALUES
    ('CL:0000000', 'cell', NULL, 'A material entity.', NULL, false, NULL, NULL, NULL),
    ('CL:0000542', 'lymphocyte', '{lymphocytic cell}', NULL, NULL, false, NULL, '{CL:0000000}', '{is_a}'),
    ('CL:0000084', 'T cell', '{T lymphocyte,T-cell}', NULL, NULL, false, NULL, '{CL:0000542}', '{is_a}'),
    ('CL:0000625', 'CD8-positive, alpha-beta T cell', '{CD8-positive, alpha-beta T lymphocyte}', NULL, NULL, false, NULL,
     '{CL:0000084,UBERON:0002405}', '{is_a,part_of}'),
    ('CL:0000236', 'B cell', '{B lymphocyte}', NULL, NULL, false, NULL, '{CL:0000542}', '{is_a}'),
    ('CL:0000002', 'obsolete immortal cell line cell', NULL, NULL, NULL, true, 'CLO:0000019', NULL, NULL);
SELECT results_eq($$SELECT terms, inserted, updated, deprecated, edges, edges_outside
                    FROM bionty.finish_import('bionty.cell_type', 'cl', 'v1', 'test', repeat('a', 64))$$,
                  $$VALUES (6::bigint, 6::bigint, 0::bigint, 0::bigint, 4::bigint, 1::bigint)$$,
                  'first import: 6 terms, 4 edges inside the registry, 1 to UBERON counted and left out');
SELECT is((SELECT uid FROM bionty.cell_type WHERE ontology_id = 'CL:0000625'), bionty.ontology_uid('CL:0000625'), 'imported uid is derived from the id');
SELECT ok(bionty.imported_source('bionty.cell_type', 'cl', 'v1', repeat('a', 64)) IS NOT NULL, 'the same file as the same version is known as imported');
SELECT ok(bionty.imported_source('bionty.cell_type', 'cl', 'v1', repeat('b', 64)) IS NULL, 'another file is not');

-- Hierarchy.
SELECT results_eq($$SELECT ontology_id, distance FROM bionty.ancestors('CL:0000625')$$,
                  $$VALUES ('CL:0000084', 1), ('CL:0000542', 2), ('CL:0000000', 3)$$, 'ancestors, nearest first');
SELECT results_eq($$SELECT ontology_id FROM bionty.descendants('CL:0000542')$$,
                  $$VALUES ('CL:0000084'), ('CL:0000236'), ('CL:0000625')$$, 'descendants, nearest first');
SELECT is((SELECT relation FROM bionty.cell_type_parent e JOIN bionty.cell_type c ON c.id = e.child_id WHERE c.ontology_id = 'CL:0000084'),
          'is_a', 'relation kind kept');
SELECT throws_like($$SELECT * FROM bionty.descendants('CL:9999999')$$, '%unknown term ''CL:9999999''%', 'unknown term is an error');
SELECT throws_like($$SELECT * FROM bionty.ancestors(NULL)$$, '%must not be NULL%', 'NULL term is an error');
SELECT throws_like($$SELECT * FROM bionty.descendants('CL:0000084', 'lamin.ulabel')$$, '%registry ''lamin.ulabel'' has no hierarchy%',
                   'a registry without parent edges is named as such');
SELECT is(coalesce(current_setting('lamin.allow_duplicates', true), ''), '', 'the import left the typo guard as it was');

-- Search, validate, standardize on the registry.
SELECT is((SELECT name FROM lamin.search('CD8', 'bionty.cell_type') LIMIT 1), 'CD8-positive, alpha-beta T cell', 'search finds CD8 T cells');
SELECT is((SELECT array_agg(name ORDER BY name) FROM lamin.search('cell', under => 'CL:0000084')),
          ARRAY['CD8-positive, alpha-beta T cell', 'T cell'], 'search under T cell keeps T cell and its descendants');
SELECT is((SELECT count(*)::int FROM lamin.search('B cell', under => 'CL:0000084') WHERE name = 'B cell'), 0, 'B cell is not under T cell');
SELECT throws_like($$SELECT * FROM lamin.search('x', under => 'CL:9999999')$$, '%unknown term%', 'search under an unknown term is an error');
SELECT is(lamin.standardize('bionty.cell_type', ARRAY['T lymphocyte', 'CL:0000236', 'b cell', 'nothing'], field => 'ontology_id'),
          ARRAY['CL:0000084', 'CL:0000236', 'CL:0000236', 'nothing'], 'names, synonyms and ids standardize to ids');
SELECT is(lamin.standardize('bionty.cell_type', ARRAY['CL:0000084', 'T-cell']), ARRAY['T cell', 'T cell'], '… and to names');
SELECT is(lamin.validate('bionty.cell_type', ARRAY['T cell', 't cell']), ARRAY[true, false], 'validate is exact');

-- Version 2 drops B cell and renames lymphocyte.
SELECT bionty.start_import();
INSERT INTO import_term VALUES
    ('CL:0000000', 'cell', NULL, 'A material entity.', NULL, false, NULL, NULL, NULL),
    ('CL:0000542', 'lymphocyte cell', NULL, NULL, NULL, false, NULL, '{CL:0000000}', '{is_a}'),
    ('CL:0000084', 'T cell', '{T lymphocyte,T-cell}', NULL, NULL, false, NULL, '{CL:0000542}', '{is_a}'),
    ('CL:0000625', 'CD8-positive, alpha-beta T cell', '{CD8-positive, alpha-beta T lymphocyte}', NULL, NULL, false, NULL,
     '{CL:0000084,UBERON:0002405}', '{is_a,part_of}'),
    ('CL:0000002', 'obsolete immortal cell line cell', NULL, NULL, NULL, true, 'CLO:0000019', NULL, NULL);
SELECT results_eq($$SELECT inserted, updated, deprecated FROM bionty.finish_import('bionty.cell_type', 'cl', 'v2', 'test', repeat('c', 64))$$,
                  $$VALUES (0::bigint, 5::bigint, 1::bigint)$$, 'new version: terms updated in place, the dropped one deprecated');
SELECT is((SELECT deprecated FROM bionty.cell_type WHERE ontology_id = 'CL:0000236'), true, 'B cell is deprecated, not deleted');
SELECT is((SELECT name FROM bionty.cell_type WHERE ontology_id = 'CL:0000542'), 'lymphocyte cell', 'renamed in place');
SELECT results_eq($$SELECT version, currently_used FROM bionty.source WHERE entity = 'bionty.cell_type' ORDER BY version$$,
                  $$VALUES ('v1', false), ('v2', true)$$, 'the new version is the current source');
SELECT is((SELECT name FROM lamin.search('lymphocyte cell', 'bionty.cell_type') LIMIT 1), 'lymphocyte cell', 'the search index follows the rename');

-- A failed import changes nothing.
SELECT bionty.start_import();
INSERT INTO import_term VALUES ('CL:0000084', 'T cell v3', NULL, NULL, NULL, false, NULL, NULL, NULL),
                               ('CL:0000084', 'T cell again', NULL, NULL, NULL, false, NULL, NULL, NULL);
SELECT throws_like($$SELECT * FROM bionty.finish_import('bionty.cell_type', 'cl', 'v3', 'test', repeat('d', 64))$$,
                   '%CL:0000084 appears twice%', 'a source with a repeated id is refused');
SELECT is((SELECT name FROM bionty.cell_type WHERE ontology_id = 'CL:0000084'), 'T cell', '… and nothing changed');
SELECT throws_like($$SELECT * FROM bionty.finish_import('bionty.cell_types', 'cl', 'v3', 'test', repeat('d', 64))$$,
                   '%unknown ontology registry ''bionty.cell_types''%', 'unknown registry is named');

-- Genes: aliases as synonyms, the organism filter.
SELECT bionty.start_import();
INSERT INTO import_gene VALUES
    ('ENSG00000010610', 'CD4', '{920}', 'HGNC:1678', NULL, 'protein_coding', '{T4,Leu-3}', 'CD4 molecule'),
    ('ENSG00000153563', 'CD8A', '{925}', 'HGNC:1706', NULL, 'protein_coding', '{CD8}', 'CD8 subunit alpha');
SELECT results_eq($$SELECT inserted FROM bionty.finish_gene_import('human', 'hgnc', '2024', 'test', repeat('e', 64))$$,
                  $$VALUES (2::bigint)$$, 'genes imported');
SELECT is(lamin.standardize('bionty.gene', ARRAY['T4', 'Leu-3', 'cd8a'], organism => 'human'), ARRAY['CD4', 'CD4', 'CD8A'],
          'aliases standardize to the symbol');
SELECT is(lamin.validate('bionty.gene', ARRAY['CD4'], organism => 'mouse'), ARRAY[false], 'the organism filter applies');
-- The imports give created_by once per statement, not through the column's
-- per-row default: the same user either way.
SELECT is((SELECT array_agg(DISTINCT created_by) FROM bionty.gene), ARRAY[lamin.current_user_id()],
          'imported genes are created by the importing user');
SELECT is((SELECT array_agg(DISTINCT created_by) FROM bionty.cell_type), ARRAY[lamin.current_user_id()],
          'imported terms are created by the importing user');

-- Annotating artifacts with bionty records through a feature.
SELECT lamin.add_storage('/tmp/lamin-pgtap-bionty');
SELECT lamin.create_feature('cell_type', 'cat[bionty.cell_type]');
SELECT lamin.save_artifact(encode(sha256('bionty annotated'), 'hex'), 16, key => 'bionty/annotated.h5ad') AS art \gset
SELECT is(lamin.annotate(:'art', 'cell_type', ARRAY['T cell', 'CD8-positive, alpha-beta T cell']), 2, 'annotate links cell types');
SELECT is((SELECT array_agg(name ORDER BY name) FROM bionty.artifact_terms WHERE artifact_id = lamin.artifact_id(:'art')),
          ARRAY['CD8-positive, alpha-beta T cell', 'T cell'], 'the links show in bionty.artifact_terms');
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'cell_type', ARRAY['T cell', 'T lymphocyte', 'nope'])$$, :'art'),
                   '%values not in bionty.cell_type: ''T lymphocyte'', ''nope''%', 'values must be names: the missing ones are listed');
SELECT is((SELECT count(*)::int FROM bionty.artifact_cell_type WHERE artifact_id = lamin.artifact_id(:'art')), 2, '… and nothing more was linked');
SELECT lamin.create_feature('marker_gene', 'cat[bionty.gene]');
SELECT is(lamin.annotate(:'art', 'marker_gene', ARRAY['CD4']), 1, 'genes annotate by symbol');
SELECT is(lamin.describe(:'art') -> 'features', '{"cell_type": ["CD8-positive, alpha-beta T cell", "T cell"], "marker_gene": ["CD4"]}'::jsonb,
          'describe lists bionty annotations under their features');

-- plan_cache_mode = force_custom_plan on an import function would hold for
-- the foreign-key checks of every row it inserts, re-planning each.
SELECT is((SELECT count(*)::int FROM pg_proc
           WHERE oid IN ('bionty.finish_import'::regproc, 'bionty.finish_gene_import'::regproc)
             AND array_to_string(proconfig, ',') LIKE '%plan_cache_mode%'), 0,
          'the import functions keep the session''s plan_cache_mode');

SELECT * FROM finish();
ROLLBACK;
