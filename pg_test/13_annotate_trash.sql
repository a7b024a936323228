-- Annotation (all or nothing, typed values), schemas, describe(), the trash
-- and the views, and documentation of every table, view and column.
BEGIN;
SELECT plan(24);

SELECT lamin.add_storage('/tmp/lamin-pgtap-storage') AS storage_uid \gset
SELECT lamin.save_artifact(encode(sha256('cells'), 'hex'), 100, key => 'ann/cells.h5ad', otype => 'AnnData') AS art \gset
SELECT lamin.create_feature('cell_type', 'cat[lamin.ulabel]') AS f_ct \gset
SELECT lamin.create_feature('n_cells', 'int') AS f_n \gset
SELECT lamin.create_feature('tissue_note', 'str') AS f_note \gset
INSERT INTO lamin.ulabel (name) VALUES ('T cell'), ('B cell');

SELECT is(lamin.create_feature('cell_type', 'cat[lamin.ulabel]'), :'f_ct', 'create_feature is idempotent');
SELECT throws_like($$SELECT lamin.create_feature('cell_type', 'int')$$, 'feature ''cell_type'' exists with dtype cat[lamin.ulabel], not int',
                   'a feature cannot silently change dtype');

-- Categorical: all values must exist; the error lists the missing ones; nothing is linked.
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'cell_type', ARRAY['T cell', 'NK cell', 'Mono'])$$, :'art'),
                   '%values not in lamin.ulabel: ''Mono'', ''NK cell''%', 'annotate refuses unknown labels and lists them');
SELECT is((SELECT count(*)::int FROM lamin.artifact_ulabel), 0, 'the refused annotation linked nothing');
SELECT is(lamin.annotate(:'art', 'cell_type', ARRAY['T cell', 'B cell', 'T cell']), 2, 'annotate links each label once');
SELECT is(lamin.annotate(:'art', 'cell_type', ARRAY['T cell']), 0, 'annotating again adds nothing');
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'no_such_feature', ARRAY['x'])$$, :'art'), 'unknown feature ''no_such_feature''',
                   'an unknown feature is named');
SELECT throws_like($$SELECT lamin.annotate('ZZZZZZZZZZZZZZZZZZZZ', 'cell_type', ARRAY['T cell'])$$, 'no artifact with uid%', 'an unknown artifact is named');

-- Typed features.
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'n_cells', ARRAY['12', 'twelve'])$$, :'art'),
                   '%values that are not int: ''twelve''%', 'int feature refuses non-integers');
SELECT is(lamin.annotate(:'art', 'n_cells', ARRAY['1200']), 1, 'int value stored');
SELECT is((SELECT value FROM lamin.artifact_feature_value v JOIN lamin.feature f ON f.id = v.feature_id WHERE f.name = 'n_cells'),
          '1200'::jsonb, 'stored as a JSON number');
SELECT is(lamin.annotate(:'art', 'tissue_note', ARRAY['from lung']), 1, 'str value stored');

-- Schemas: idempotent on members; linked per slot.
SELECT lamin.create_schema(ARRAY['cell_type', 'n_cells'], 'obs schema') AS sch \gset
SELECT is(lamin.create_schema(ARRAY['n_cells', 'cell_type']), :'sch', 'the same feature set is the same schema');
SELECT lives_ok(format($$SELECT lamin.link_schema(%L, 'obs', %L)$$, :'art', :'sch'), 'link a schema to slot obs');

-- describe(): one JSON document.
SELECT lamin.describe(:'art') AS doc \gset
SELECT is((:'doc'::jsonb) -> 'features' -> 'cell_type', '["B cell", "T cell"]'::jsonb, 'describe lists the cell_type labels');
SELECT is((:'doc'::jsonb) -> 'features' -> 'n_cells', '[1200]'::jsonb, 'describe lists the n_cells value');
SELECT is((:'doc'::jsonb) #>> '{schemas,obs,uid}', :'sch', 'describe shows the obs schema');
SELECT is((:'doc'::jsonb) ->> 'path', '/tmp/lamin-pgtap-storage/.lamindb/' || :'art' || '.h5ad', 'describe gives the storage path');

-- The trash: hidden from the views, a second delete is permanent.
SELECT is(lamin.delete(:'art'), 'trashed', 'first delete trashes');
SELECT is((SELECT count(*)::int FROM lamin.artifacts WHERE uid = :'art'), 0, 'trashed artifacts are hidden from lamin.artifacts');
SELECT is(lamin.delete(:'art'), 'deleted', 'second delete is permanent');
SELECT is((SELECT count(*)::int FROM lamin.artifact_ulabel) + (SELECT count(*)::int FROM lamin.artifact_feature_value), 0,
          'its annotations went with it');

-- Members of a collection cannot be deleted for good.
SELECT lamin.save_artifact(encode(sha256('member'), 'hex'), 1, key => 'ann/member.csv') AS mem \gset
SELECT lamin.save_collection('ann/coll', ARRAY[:'mem']) AS coll \gset
SELECT throws_like(format($$SELECT lamin.delete(%L, permanent => true)$$, :'mem'), '%is a member of collection(s) ' || :'coll' || '%',
                   'permanent delete of a collection member is refused');

-- Every table, view and column of schema lamin is documented.
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE n.nspname = 'lamin' AND c.relkind IN ('r', 'v')
             AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)), 0,
          'every table, view and column has a COMMENT');

SELECT * FROM finish();
ROLLBACK;
