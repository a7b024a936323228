-- search / validate / standardize / inspect: ranking tiers, typo tolerance,
-- standardize tiers and ambiguity, safeguards, and hostile input.
BEGIN;
SELECT plan(68);

INSERT INTO lamin.ulabel (name, synonyms) VALUES
    ('T cell', '{T lymphocyte}'),
    ('thymus-derived lymphoid cell', '{T cell}'),          -- exact synonym
    ('T cell receptor complex', '{}'),                    -- name prefix
    ('activated T cell', '{}'),                           -- whole words in name
    ('lymphoid cell of thymus', '{T cell-like cell}'),    -- synonym prefix
    ('NKT cell', '{}'),                                   -- contains
    ('nodal myocyte', '{cardiac pacemaker cell,myocytus nodalis,P cell}'),
    ('PP cell', '{pancreatic polypeptide cell}'),
    ('B cell', '{B lymphocyte}'),
    ('macrophage', '{}'),
    ('alveolar macrophage', '{}'),
    ('hepatocyte', '{}'),
    ('CD8-positive, alpha-beta T cell', '{CD8-positive, alpha-beta T lymphocyte}');

-- Ranking tiers, in order.
SELECT is((SELECT array_agg(name) FROM lamin.search('T cell', 'lamin.ulabel', 6)),
          ARRAY['T cell', 'thymus-derived lymphoid cell', 'T cell receptor complex', 'activated T cell',
                'CD8-positive, alpha-beta T cell', 'lymphoid cell of thymus'],
          'exact name > exact synonym > name prefix > whole words in name (shorter first) > synonym prefix');
SELECT is((SELECT matched FROM lamin.search('T cell', 'lamin.ulabel') WHERE name = 'thymus-derived lymphoid cell'),
          'synonym: T cell', 'matched names the synonym');
SELECT ok((SELECT score FROM lamin.search('T cell', 'lamin.ulabel') WHERE name = 'NKT cell') IS NOT NULL, 'contains matches are found');
SELECT is((SELECT array_agg(name) FROM lamin.search('P cell', 'lamin.ulabel', 2)), ARRAY['nodal myocyte', 'PP cell'],
          'LaminDB vector: P cell finds nodal myocyte (synonym) first, PP cell second');
SELECT is((SELECT name FROM lamin.search('b cell') LIMIT 1), 'B cell', 'LaminDB vector: b cell finds B cell first, across registries');
SELECT is((SELECT name FROM lamin.search('CD8', 'lamin.ulabel') LIMIT 1), 'CD8-positive, alpha-beta T cell', 'short token CD8 finds the CD8 T cell');
SELECT is((SELECT name FROM lamin.search('macrophge', 'lamin.ulabel') LIMIT 1), 'macrophage', 'misspelt macrophge still finds macrophage');
SELECT is((SELECT name FROM lamin.search('hepatocite') LIMIT 1), 'hepatocyte', 'misspelt hepatocite still finds hepatocyte');
SELECT is((SELECT count(*)::int FROM lamin.search('P cell', 'lamin.ulabel') WHERE name IN ('T cell', 'B cell')), 0,
          'one-letter words are not fuzzed: P cell does not find T cell');
SELECT is((SELECT array_agg(name) FROM lamin.search('cell', 'lamin.ulabel', 3)), (SELECT array_agg(name) FROM lamin.search('cell', 'lamin.ulabel', 3)),
          'results are deterministic');

-- Real ontology terms (UBERON 2026-04-01, MONDO 2026-05-05, with their edges).
SELECT bionty.start_import();
INSERT INTO import_term VALUES
    ('UBERON:0002097', 'skin of body', '{entire skin,skin organ}', NULL, NULL, false, NULL, NULL, NULL),
    ('UBERON:0000014', 'zone of skin', '{portion of skin,region of skin,skin,skin region,skin zone}', NULL, NULL, false, NULL,
     '{UBERON:0002097}', '{part_of}'),
    ('UBERON:0002419', 'skin gland', '{glandulae cutis}', NULL, NULL, false, NULL, '{UBERON:0002097}', '{part_of}'),
    ('UBERON:0001003', 'skin epidermis', '{vertebrate epidermis}', NULL, NULL, false, NULL, '{UBERON:0002097}', '{part_of}'),
    ('UBERON:0001085', 'skin of trunk', '{torso zone of skin,trunk skin,trunk zone of skin,zone of skin of torso,zone of skin of trunk}',
     NULL, NULL, false, NULL, '{UBERON:0000014}', '{is_a}'),
    ('UBERON:0001068', 'skin of back', '{back skin,back zone of skin,"skin, dorsal region",zone of skin of back}', NULL, NULL, false, NULL,
     '{UBERON:0001085}', '{part_of}'),
    ('UBERON:0000178', 'blood', '{portion of blood,vertebrate blood}', NULL, NULL, false, NULL, NULL, NULL),
    ('UBERON:0001981', 'blood vessel', '{vas sanguineum}', NULL, NULL, false, NULL, NULL, NULL);
SELECT ok((SELECT terms FROM bionty.finish_import('bionty.tissue', 'uberon', 'test', 'test', repeat('c', 64))) = 8, 'UBERON terms imported');
SELECT bionty.start_import();
INSERT INTO import_term VALUES
    ('MONDO:0100096', 'COVID-19', '{2019 novel coronavirus infection,2019-nCoV infection,coronavirus disease 2019,severe acute respiratory syndrome coronavirus 2 infectious disease}',
     NULL, NULL, false, NULL, NULL, NULL),
    ('MONDO:0100319', 'COVID-19–associated multisystem inflammatory syndrome in adults', '{MIS-A}', NULL, NULL, false, NULL, NULL, NULL),
    ('MONDO:0005148', 'type 2 diabetes mellitus', '{NIDDM,type 2 diabetes,type II diabetes mellitus}', NULL, NULL, false, NULL, NULL, NULL),
    ('MONDO:0005015', 'diabetes mellitus', '{diabetes}', NULL, NULL, false, NULL, NULL, NULL);
SELECT ok((SELECT terms FROM bionty.finish_import('bionty.disease', 'mondo', 'test', 'test', repeat('d', 64))) = 4, 'MONDO terms imported');
-- Letters and digits fused in the query, written with a hyphen or a space in the ontology (and back).
SELECT is((SELECT name FROM lamin.search('covid19', 'bionty.disease') LIMIT 1), 'COVID-19', 'covid19 finds COVID-19');
SELECT is((SELECT matched FROM lamin.search('covid19', 'bionty.disease') LIMIT 1), 'name: COVID-19', '… as its name');
SELECT is((SELECT name FROM lamin.search('type2 diabetes', 'bionty.disease') LIMIT 1), 'type 2 diabetes mellitus', 'type2 diabetes finds type 2 diabetes mellitus');
SELECT is((SELECT name FROM lamin.search('covid19') LIMIT 1), 'COVID-19', 'across registries too');
INSERT INTO lamin.ulabel (name) VALUES ('IL6 knockout'), ('CD8a high');
SELECT is((SELECT name FROM lamin.search('IL-6', 'lamin.ulabel') LIMIT 1), 'IL6 knockout', 'IL-6 finds the fused IL6 …');
SELECT is((SELECT name FROM lamin.search('cd8 a', 'lamin.ulabel') LIMIT 1), 'CD8a high', '… and cd8 a finds CD8a');
SELECT is((SELECT name FROM lamin.search('COVID-19', 'bionty.disease') LIMIT 1), 'COVID-19', 'the query as typed still comes first');
-- General terms first: "skin" names skin of body; zone of skin (a part of it) only has "skin" as a synonym.
SELECT is((SELECT array_agg(name) FROM lamin.search('skin', 'bionty.tissue', 2)), ARRAY['skin of body', 'zone of skin'],
          'skin finds skin of body, the general term, before zone of skin (exact synonym, narrower)');
SELECT is((SELECT array_agg(name ORDER BY name) FROM (SELECT name FROM lamin.search('skin', 'bionty.tissue', 6) OFFSET 2) x),
          ARRAY['skin epidermis', 'skin gland', 'skin of back', 'skin of trunk'], 'the narrower skin terms follow');
SELECT is((SELECT name FROM lamin.search('skin zone', 'bionty.tissue') LIMIT 1), 'zone of skin', 'a synonym with no broader name keeps its place');
SELECT is((SELECT name FROM lamin.search('blood', 'bionty.tissue') LIMIT 1), 'blood', 'an exact name stays first');
SELECT is((SELECT name FROM lamin.search('diabetes', 'bionty.disease') LIMIT 1), 'diabetes mellitus',
          'diabetes finds diabetes mellitus by its exact synonym: no broader name begins with diabetes');

-- Trashed records are not found; restoring brings them back.
SELECT lamin.delete(uid) AS trashed FROM lamin.ulabel WHERE name = 'hepatocyte' \gset
SELECT is((SELECT count(*)::int FROM lamin.search('hepatocyte', 'lamin.ulabel') WHERE name = 'hepatocyte'), 0, 'trashed records are excluded');
SELECT lamin.restore(uid) AS restored FROM lamin.ulabel WHERE name = 'hepatocyte' \gset
SELECT is((SELECT name FROM lamin.search('hepatocyte', 'lamin.ulabel') LIMIT 1), 'hepatocyte', 'restored records are found again');

-- validate: exact and case-sensitive; NULL stays NULL.
SELECT is(lamin.validate('lamin.ulabel', ARRAY['B cell', 'b cell', NULL, 'nope']), ARRAY[true, false, NULL, false]::boolean[], 'validate');
SELECT is(lamin.validate('lamin.ulabel', NULL), NULL::boolean[], 'validate(NULL) is NULL');
SELECT is(lamin.validate('lamin.ulabel', ARRAY['hC7JGYhS'], 'uid'), ARRAY[false], 'validate against another field');

-- standardize: exact, case-insensitive, synonym; unmapped unchanged.
SELECT is(lamin.standardize('lamin.ulabel', ARRAY['B cell', 'b CELL', 'B lymphocyte', 'b lymphocyte', 'nope', NULL]),
          ARRAY['B cell', 'B cell', 'B cell', 'B cell', 'nope', NULL], 'standardize tiers');
-- Ambiguity: a synonym claimed by two records comes back unchanged unless keep_first.
INSERT INTO lamin.ulabel (name, synonyms) VALUES ('ambiguous one', '{shared syn}'), ('ambiguous two', '{shared syn}');
SELECT is(lamin.standardize('lamin.ulabel', ARRAY['shared syn']), ARRAY['shared syn'], 'an ambiguous synonym stays unchanged');
SELECT is(lamin.standardize('lamin.ulabel', ARRAY['shared syn'], keep_first => true), ARRAY['ambiguous one'], 'keep_first picks the first-created');
SELECT is((SELECT suggestion FROM lamin.inspect('lamin.ulabel', ARRAY['shared syn'])), 'ambiguous: ''ambiguous one'' or ''ambiguous two''',
          'inspect names both candidates');

-- inspect: one row per distinct value with did-you-mean suggestions.
SELECT results_eq(
    $$SELECT value, validated, standardized, suggestion FROM lamin.inspect('lamin.ulabel', ARRAY['B cell', 'b cell', 'B cell', 'macrophge', 'zzzzzz'])$$,
    $$VALUES ('B cell', true, 'B cell', NULL), ('b cell', false, 'B cell', NULL), ('macrophge', false, NULL, 'macrophage'),
             ('zzzzzz', false, NULL::text, NULL::text)$$,
    'inspect rows');

-- The LaminDB gene vector on a small registry made searchable here (HGNC symbols and aliases).
CREATE TABLE public.test_gene (id bigserial PRIMARY KEY, uid text NOT NULL, symbol text NOT NULL, synonyms text[] NOT NULL DEFAULT '{}');
INSERT INTO public.test_gene (uid, symbol, synonyms) VALUES
    ('g1', 'A1CF', '{ACF,ASP,ACF64,ACF65,APOBEC1CF}'), ('g2', 'A1BG', '{}'),
    ('g3', 'BRCA2', '{FANCD1,FAD,FAD1,BRCC2,FACD,XRCC11}'), ('g4', 'GCLC', '{GCS,GLCL,GLCLC}');
SELECT lives_ok($$SELECT lamin.make_searchable('public.test_gene', 'symbol', 'synonyms')$$, 'a custom table becomes searchable');
SELECT is(lamin.standardize('public.test_gene', ARRAY['A1CF', 'A1BG', 'FANCD1', 'FANCD20', 'GCS'], keep_first => true),
          ARRAY['A1CF', 'A1BG', 'BRCA2', 'FANCD20', 'GCLC'], 'LaminDB vector: A1CF A1BG FANCD1 FANCD20 GCS');
INSERT INTO public.test_gene (uid, symbol) VALUES ('g5', 'CD4');
SELECT is((SELECT name FROM lamin.search('cd4', 'public.test_gene') LIMIT 1), 'CD4', 'rows added later are indexed by the trigger');

-- The organism filter, on a registry that carries an organism.
CREATE TABLE public.test_org_gene (id bigserial PRIMARY KEY, uid text NOT NULL, symbol text NOT NULL,
                                   synonyms text[] NOT NULL DEFAULT '{}', organism text NOT NULL);
INSERT INTO public.test_org_gene (uid, symbol, synonyms, organism) VALUES
    ('h1', 'CD4', '{T4,Leu-3}', 'human'), ('m1', 'Cd4', '{L3T4}', 'mouse');
SELECT lamin.make_searchable('public.test_org_gene', 'symbol', 'synonyms', organism_field => 'organism', guard => false) AS made \gset
SELECT is(lamin.validate('public.test_org_gene', ARRAY['CD4', 'Cd4'], organism => 'mouse'), ARRAY[false, true], 'validate with an organism');
SELECT is(lamin.standardize('public.test_org_gene', ARRAY['T4', 'Leu-3', 'L3T4'], organism => 'human'), ARRAY['CD4', 'CD4', 'L3T4'],
          'standardize with an organism maps only that organism''s synonyms');
SELECT is((SELECT array_agg(uid) FROM lamin.search('cd4', 'public.test_org_gene', organism => 'mouse')), ARRAY['m1'], 'search with an organism');
SELECT throws_like($$SELECT lamin.validate('lamin.ulabel', ARRAY['x'], organism => 'human')$$, 'registry lamin.ulabel has no organism%',
                   'an organism on a registry without one is an error');

-- NUL bytes never reach the functions: Postgres refuses them in text.
SELECT throws_ok($$SELECT * FROM lamin.search(E'a\x00b')$$, '22021', NULL, 'a NUL byte is refused before search runs');
SELECT lives_ok($$SELECT lamin.validate('lamin.ulabel', ARRAY[repeat('x', 100000), '🧬'])$$, 'huge and emoji values validate');

-- Safeguards: exact (case-insensitive) names and synonyms are refused, with an override.
SELECT throws_like($$INSERT INTO lamin.ulabel (name) VALUES ('b CELL')$$, '%''b CELL'' already exists as the name of record%''B cell''%',
                   'a case-insensitive duplicate name is refused, naming the existing record');
SELECT throws_like($$INSERT INTO lamin.ulabel (name) VALUES ('B lymphocyte')$$, '%already exists as the synonym of record%',
                   'a name equal to an existing synonym is refused');
SELECT throws_like($$INSERT INTO lamin.ulabel (name) VALUES ('new one'), ('New One')$$, '%added twice in one statement%',
                   'duplicates within one statement are refused');
SELECT throws_like($$UPDATE lamin.ulabel SET name = 'MACROPHAGE' WHERE name = 'alveolar macrophage'$$, '%already exists%',
                   'renaming onto an existing name is refused');
SET LOCAL lamin.allow_duplicates = on;
SELECT lives_ok($$INSERT INTO lamin.feature (name, dtype) VALUES ('B cell', 'int')$$, 'other registries are separate namespaces');
SELECT lives_ok($$INSERT INTO lamin.ulabel (name) VALUES ('b CELL')$$, 'SET lamin.allow_duplicates = on allows it');
SELECT is((SELECT count(*)::int FROM lamin.ulabel WHERE lower(name) = 'b cell'), 2, 'and the duplicate is there');
RESET lamin.allow_duplicates;

-- Restores: what pg_dump keeps of a searchable registry is armed again.
SELECT lamin.make_searchable('lamin.transform', 'key', guard => false);
SELECT is((SELECT guard FROM lamin.registry WHERE name = 'lamin.transform'), false, 'make_searchable records the guard setting');
-- A registry row arriving on its own (as pg_restore loads it) for one of lamin's tables.
CREATE TEMP TABLE saved_registry AS SELECT * FROM lamin.registry WHERE name = 'lamin.transform';
DROP TRIGGER search_b_terms_insert ON lamin.transform;
DROP TRIGGER search_b_terms_update ON lamin.transform;
DROP TRIGGER search_b_terms_delete ON lamin.transform;
DELETE FROM lamin.registry WHERE name = 'lamin.transform';
DELETE FROM lamin.search_term WHERE registry = 'lamin.transform';
INSERT INTO lamin.transform (key) VALUES ('restored/pipeline.py');
INSERT INTO lamin.registry SELECT * FROM saved_registry;
SELECT is((SELECT name FROM lamin.search('restored/pipeline', 'lamin.transform') LIMIT 1), 'restored/pipeline.py',
          'a restored registry row for a lamin table re-creates its triggers and index');
INSERT INTO lamin.transform (key) VALUES ('later/pipeline.py');
SELECT is((SELECT count(*)::int FROM lamin.search('later/pipeline', 'lamin.transform')), 1, '… and keeps it in step');
-- A user's table: pg_restore loads its rows, then creates its triggers.
CREATE TABLE public.pgtap_sample (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, uid text NOT NULL DEFAULT lamin.uid(10), name text);
SELECT lamin.make_searchable('public.pgtap_sample');
DROP TRIGGER search_b_terms_insert ON public.pgtap_sample;
DELETE FROM lamin.search_term WHERE registry = 'public.pgtap_sample';
INSERT INTO public.pgtap_sample (name) VALUES ('restored sample');
SELECT is((SELECT count(*)::int FROM lamin.search('restored sample', 'public.pgtap_sample')), 0, 'rows loaded before the triggers are not indexed yet');
CREATE TRIGGER search_b_terms_insert AFTER INSERT ON public.pgtap_sample REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lamin.search_public__pgtap_sample();
SELECT is((SELECT name FROM lamin.search('restored sample', 'public.pgtap_sample') LIMIT 1), 'restored sample',
          'creating the search trigger indexes the rows already there');

-- Neither hook nor the generated (SECURITY DEFINER) trigger functions serve other roles.
CREATE ROLE t_owner;
CREATE SCHEMA t_own AUTHORIZATION t_owner;
SET LOCAL ROLE t_owner;
CREATE TABLE t_own.x (id bigint, uid text, name text);
CREATE FUNCTION t_own.noop() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$;
SELECT throws_ok($$CREATE TRIGGER t AFTER INSERT ON t_own.x REFERENCING NEW TABLE AS new_rows
                   FOR EACH STATEMENT EXECUTE FUNCTION lamin.search_lamin__ulabel()$$, '42501', NULL,
                 'a role cannot attach lamin''s search trigger functions to a table of its own');
RESET ROLE;
INSERT INTO lamin.registry (name, name_field) VALUES ('t_own.x', 'name');
SET LOCAL ROLE t_owner;
INSERT INTO t_own.x VALUES (1, 'abcdefghij', 'owner row');
SELECT lives_ok($$CREATE TRIGGER search_b_terms_insert AFTER INSERT ON t_own.x FOR EACH STATEMENT EXECUTE FUNCTION t_own.noop()$$,
                'a table owner may name a trigger like lamin''s');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM lamin.search_term WHERE registry = 't_own.x'), 0,
          '… and the restore hook indexes nothing for them (superusers only)');

-- Bad input.
SELECT throws_like($$SELECT * FROM lamin.search(NULL)$$, 'search query must not be NULL', 'NULL query is an error');
SELECT throws_like($$SELECT * FROM lamin.search('   ')$$, 'search query must not be empty', 'empty query is an error');
SELECT throws_like($$SELECT * FROM lamin.search('x', 'lamin.ulabel; drop table lamin.artifact')$$,
                   'unknown registry ''lamin.ulabel; drop table lamin.artifact'': searchable registries are %lamin.ulabel%',
                   'an injected registry name is refused and the valid ones listed');
SELECT throws_like($$SELECT lamin.validate('lamin.ulabel', ARRAY['x'], 'name"; drop table lamin.artifact; --')$$,
                   'unknown field %: its text fields are uid, name, %', 'an injected field name is refused');
SELECT has_table('lamin', 'artifact', 'and nothing was dropped');
SELECT lives_ok($$SELECT * FROM lamin.search(repeat('CD8 T cell ', 10000))$$, 'a 100 kB query does not crash');
SELECT lives_ok($$SELECT * FROM lamin.search('Т-клетка 细胞 🧬 T cell')$$, 'mixed scripts and emoji');
SELECT throws_like($$SELECT * FROM lamin.search('T cell', 'lamin.ulabel', 0)$$, 'lim must be between 1 and 10000, got 0', 'a zero limit is refused');

-- The vocabulary's trigram index takes new words through its pending list
-- (fastupdate); a write that brought many merges the list into the index.
-- gin_clean_pending_list returns the pending pages it merged.
SELECT gin_clean_pending_list('lamin.search_vocab_trgm'::regclass);
INSERT INTO lamin.ulabel (name) VALUES ('zqxvocabsmall');
SELECT cmp_ok(gin_clean_pending_list('lamin.search_vocab_trgm'::regclass), '>', 0::bigint,
              'a small write leaves its new word in the pending list of the trigram index');
INSERT INTO lamin.ulabel (name) SELECT 'zqxvocabbulk' || i FROM generate_series(1, 1500) i;
SELECT is(gin_clean_pending_list('lamin.search_vocab_trgm'::regclass), 0::bigint,
          'a write that brought 1,500 new words left none pending: the trigger merged them');

SELECT * FROM finish();
ROLLBACK;
