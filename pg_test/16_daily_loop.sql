-- The daily loop's seams (issue 16): content de-duplication within what the
-- caller can read, the run that re-creates known content, annotation by the
-- field a curation used, await_job's error in one step, counts that hide
-- unreadable members, the query views, describe of any record, errors that
-- name the problem (dtypes, write access, typos), layouts of container files.
BEGIN;
SELECT plan(44);

SELECT lamin.add_storage('/tmp/lamin-pgtap-daily');
SELECT lamin.create_space('lab') IS NOT NULL AS made_lab;
CREATE ROLE d_outsider IN ROLE lamin_writer;       -- writes in "all", cannot read "lab"
CREATE ROLE d_reader IN ROLE lamin_reader;         -- reads "all" only
CREATE ROLE d_member IN ROLE lamin_writer;         -- writes in "all", reads "lab"
SELECT lamin.grant('lab', 'd_member', 'read');

-- Content stored in a space the caller cannot read: a record of their own.
SELECT lamin.use_space('lab');
SELECT lamin.save_artifact(repeat('1', 64), 5, key => 'lab/secret.txt') AS lab_art \gset
SELECT lamin.use_space('all');
SET ROLE d_outsider;
SELECT lamin.save_artifact(repeat('1', 64), 5, key => 'mine.txt') AS own_art \gset
SELECT isnt(:'own_art'::text, :'lab_art'::text, 'the same bytes saved by a role that cannot read their space make a new record');
SELECT is((SELECT space FROM lamin.artifacts WHERE uid = :'own_art'), 'all', '… in the caller''s space');
SELECT is((SELECT count(*)::int FROM lamin.artifacts WHERE hash = repeat('1', 64)), 1, '… and the other record stays invisible');
SELECT is(lamin.save_artifact(repeat('1', 64), 5, key => 'again.txt'), :'own_art', 'saving it again returns the caller''s record');
RESET ROLE;

-- A role that reads both copies gets the one in its current space back.
SET ROLE d_member;
SELECT is(lamin.save_artifact(repeat('1', 64), 5, key => 'x.txt'), :'own_art', 'of two readable copies, the current space''s returns');
RESET ROLE;

-- Known content under a new key returns the existing artifact and records
-- the current run as re-creating it: in describe and in the lineage.
SELECT lamin.save_artifact(repeat('2', 64), 7, key => 'raw/a.csv') AS first_art \gset
SELECT lamin.track('pipelines/redo.py') AS redo_run \gset
SELECT is(lamin.save_artifact(repeat('2', 64), 7, key => 'raw/b.csv'), :'first_art', 'known content under a new key returns the existing artifact');
SELECT is(lamin.describe(:'first_art') #>> '{lineage,recreating_runs,0}', :'redo_run', 'describe lists the run that re-created it');
SELECT is(lamin.describe(:'redo_run') #>> '{recreated,0,uid}', :'first_art', 'describe(run) lists what it re-created');
SELECT is((SELECT key FROM lamin.artifacts WHERE uid = :'first_art'), 'raw/a.csv', 'the key given with known content is not recorded');
SELECT is((SELECT direction || ' ' || key FROM lamin.run_artifacts WHERE run_uid = :'redo_run'), 'recreated raw/a.csv',
          'lamin.run_artifacts lists what a run re-created');
SELECT lamin.finish();

-- Content is looked up by hash in every readable space: the content-hash
-- indexes put the hash before the space, so each lookup is one probe (with
-- the space first, every save walked its storage's whole index).
SELECT is((SELECT array_agg(pg_get_indexdef(i.indexrelid, k, false) ORDER BY i.indexrelid::regclass::text, k)
           FROM pg_index i CROSS JOIN generate_series(1, 3) k
           WHERE i.indexrelid IN ('lamin.artifact_hash_unique'::regclass, 'lamin.collection_hash_unique'::regclass,
                                  'lamin.transform_hash_unique'::regclass, 'lamin.schema_hash_unique'::regclass)
             AND k <= i.indnkeyatts),
          ARRAY['storage_id', 'hash', 'space_id', 'hash', 'space_id', 'hash', 'space_id', 'hash', 'space_id'],
          'content-hash indexes: hash before space');

-- Write access: the space and the missing grant are named.
SET ROLE d_reader;
SELECT throws_like($$SELECT lamin.save_artifact(repeat('3', 64), 1, key => 'r.txt')$$,
                   '%saving an artifact needs write in space ''all'', and role d_reader can only read there%',
                   'a reader saving is told which space and which grant');
SELECT throws_like($$SELECT lamin.track('p.py')$$, '%tracking a run needs write in space ''all''%', '… as is a reader tracking a run');
SELECT is(lamin.save_artifact(repeat('2', 64), 7), :'first_art', 'a reader saving known content gets the existing record back');
RESET ROLE;

-- Feature dtypes: unknown ones are named, with the known ones and a guess.
SELECT throws_like($$SELECT lamin.create_feature('age', 'integer')$$, '%unknown dtype ''integer'' (did you mean ''int''?)%',
                   'create_feature(''age'', ''integer'') suggests int');
SELECT throws_like($$INSERT INTO lamin.feature (name, dtype) VALUES ('when', 'timestamp')$$, '%did you mean ''datetime''%',
                   'a plain INSERT gets the same message');

-- Annotation: a value with a typo gets the suggestion inspect has.
INSERT INTO lamin.ulabel (name) VALUES ('treated'), ('control');
SELECT lamin.create_feature('condition', 'cat');
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'condition', ARRAY['treatd'])$$, :'first_art'),
                   '%values not in lamin.ulabel: ''treatd''; did you mean ''treated'' for ''treatd''%',
                   'an annotate value with a typo gets a suggestion');

-- Curation to annotation of genes: by the field the curation matched on.
INSERT INTO bionty.gene (symbol, ensembl_gene_id, organism) VALUES
    ('CD4', 'ENSG00000010610', 'human'), ('CD8A', 'ENSG00000153563', 'human'), ('TP53', 'ENSG00000141510', 'human');
SELECT lamin.record_curation(:'first_art', 'var.index', 'bionty.gene', 'ensembl_gene_id',
    '[{"value": "ENSG00000010610", "validated": true}, {"value": "ENSG00000153563", "validated": true}]');
SELECT is(lamin.annotate_curated(:'first_art', 'var.index'), 2, 'annotate_curated links the Ensembl ids a gene curation validated');
SELECT is((SELECT array_agg(ontology_id ORDER BY ontology_id) FROM lamin.annotations
           WHERE artifact_uid = :'first_art' AND registry = 'bionty.gene'),
          ARRAY['ENSG00000010610', 'ENSG00000153563'], 'lamin.annotations shows the genes with their Ensembl ids');
SELECT is(lamin.annotate(:'first_art', 'var_index', ARRAY['ENSG00000141510'], 'ensembl_gene_id'), 1,
          'annotate takes the field its values are of');
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'var_index', ARRAY['x'], 'no_such_field')$$, :'first_art'),
                   '%bionty.gene has no field ''no_such_field''%', 'an unknown field is named');

-- The curation report counts each value's rows and the column's NULLs.
SELECT lamin.record_curation(:'first_art', 'obs.cell_type', 'lamin.ulabel', 'name',
    '[{"value": "treated", "n": 40, "validated": true}, {"value": "treatd", "n": 2, "validated": false, "suggestion": "treated"}]', 5);
SELECT results_eq(format($$SELECT value, n, validated, suggestion FROM lamin.curation_report(%L) WHERE column_name = 'obs.cell_type'$$, :'first_art'),
                  $$VALUES (NULL::text, 5::bigint, NULL::boolean, 'missing values: not checked, not annotated'),
                           ('treatd', 2, false, 'treated'), ('treated', 40, true, NULL)$$,
                  'curation_report: rows per value, and a row counting the NULLs');

-- Typed feature values in one view.
SELECT lamin.create_feature('n_genes', 'int');
SELECT lamin.create_feature('sampled_on', 'date');
SELECT lamin.annotate(:'first_art', 'n_genes', ARRAY['150']);
SELECT lamin.annotate(:'first_art', 'sampled_on', ARRAY['2026-03-01']);
SELECT lamin.annotate(:'first_art', 'condition', ARRAY['treated']);
SELECT is((SELECT value_number FROM lamin.feature_values WHERE artifact_uid = :'first_art' AND feature = 'n_genes'), 150::numeric,
          'feature_values: a number in value_number');
SELECT is((SELECT value_date FROM lamin.feature_values WHERE artifact_uid = :'first_art' AND feature = 'sampled_on'), '2026-03-01'::date,
          'feature_values: a date in value_date');
SELECT is((SELECT value_text FROM lamin.feature_values WHERE artifact_uid = :'first_art' AND feature = 'condition'), 'treated',
          'feature_values: a label by name in value_text');
SELECT is((SELECT count(*)::int FROM lamin.feature_values f1 JOIN lamin.feature_values f2 USING (artifact_uid)
           WHERE f1.feature = 'n_genes' AND f1.value_number > 100 AND f2.feature = 'condition' AND f2.value_text = 'treated'), 1,
          'one query: artifacts where n_genes > 100 and condition is treated');

-- AnnData's categorical columns fit text features (and integers fit floats):
-- no conflict; a bool column against a text feature still is one.
SELECT lamin.create_feature('tissue', 'str');
SELECT lamin.create_feature('score', 'float');
SELECT lamin.create_feature('flag', 'str');
SELECT is(lamin.record_columns(:'first_art', 10,
              '[{"name": "tissue", "dtype": "cat"}, {"name": "score", "dtype": "int"}, {"name": "flag", "dtype": "bool"}]',
              slot => 'obs', otype => 'AnnData') -> 'conflicts',
          '[{"column": "flag", "column_dtype": "bool", "feature_dtype": "str"}]'::jsonb,
          'a categorical column fits a str feature, an int column a float one; bool against str is reported');

-- A collection's count hides members the reader cannot see.
SELECT lamin.save_collection('c/mixed', ARRAY[:'lab_art', :'first_art']) AS coll \gset
SET ROLE d_outsider;
SELECT is((SELECT n_artifacts FROM lamin.collections WHERE uid = :'coll'), 1::bigint, 'n_artifacts counts only readable members');
RESET ROLE;
SELECT is((SELECT n_artifacts FROM lamin.collections WHERE uid = :'coll'), 2::bigint, '… and all of them for who reads all');

-- describe of any record kind.
SELECT is(lamin.describe(:'redo_run') ->> 'record_kind', 'run', 'describe(run uid) describes the run');
SELECT is(lamin.describe(:'redo_run') #>> '{transform,key}', 'pipelines/redo.py', '… with its transform');
SELECT is(lamin.describe(:'coll') -> 'artifacts' -> 1 ->> 'uid', :'first_art', 'describe(collection uid) lists the members');
SELECT is(lamin.describe((SELECT uid FROM lamin.feature WHERE name = 'n_genes')) ->> 'dtype', 'int', 'describe(feature uid) shows its dtype');
SELECT throws_like($$SELECT lamin.describe('zzzzzzzzzzzzzzzzzzzz')$$, '%no record with uid%', 'an unknown uid is no record');

-- The trash view.
SELECT lamin.delete(:'own_art');
SELECT is((SELECT registry FROM lamin.trash WHERE uid = :'own_art'), 'lamin.artifact', 'a trashed artifact is listed in lamin.trash');

-- await_job: the job's error in one step.
SELECT lamin.enqueue('noop') AS job \gset
SELECT id FROM lamin.claim_job('w-daily', lamin.version(), 30) \gset
SELECT lamin.fail_job(:job, 'w-daily', 'the bucket is gone', permanent => true);
SELECT throws_like(format('SELECT lamin.await_job(%s, 0)', :job), '%job % (noop) failed: the bucket is gone%',
                   'await_job raises the error of a failed job');
SELECT results_eq(format('SELECT status, error FROM lamin.await_job_outcome(%s, 0)', :job),
                  $$VALUES ('failed', 'the bucket is gone')$$, 'await_job_outcome returns status and error together');

-- The layout of a container file (HDF5, SpatialData): stored, shown by
-- describe, replaced when read again, hidden with its artifact.
SELECT lamin.save_artifact(repeat('5', 64), 9, key => 'scans/a.h5') AS h5_art \gset
SELECT is(lamin.record_layout(:'h5_art', 'hdf5', '{"n_datasets": 2, "datasets": []}') ->> 'n_datasets', '2',
          'record_layout stores a layout');
SELECT is(lamin.describe(:'h5_art') #>> '{layout,format}', 'hdf5', 'describe shows it with its format');
SELECT lamin.record_layout(:'h5_art', 'spatialdata', '{"elements": {}}', 'SpatialData');
SELECT results_eq(format($$SELECT l.format, a.otype FROM lamin.artifact_layout l JOIN lamin.artifact a ON a.id = l.artifact_id
                           WHERE a.uid = %L$$, :'h5_art'),
                  $$VALUES ('spatialdata', 'SpatialData')$$, 'a layout read again replaces the first, with the otype given');
SELECT throws_ok(format($$SELECT lamin.record_layout(%L, 'tiff', '{}')$$, :'h5_art'), '23514', NULL,
                 'an unknown container format is refused');
SELECT throws_ok(format($$SELECT lamin.record_layout(%L, 'hdf5', '[1, 2]')$$, :'h5_art'), '23514', NULL,
                 'a layout is a JSON object');
SELECT lamin.record_layout(:'lab_art', 'hdf5', '{"n_datasets": 1}');
SET ROLE d_outsider;
SELECT is((SELECT count(*)::int FROM lamin.artifact_layout), 1, 'the layout of an artifact in an unreadable space is hidden');
SELECT throws_like(format($$SELECT lamin.record_layout(%L, 'hdf5', '{}')$$, :'lab_art'), '%no artifact%',
                   '… and cannot be written');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
