-- Idempotent saves (artifacts, transforms, collections), track/finish, run
-- inputs (but not the run's own outputs), lineage rows and DOT.
BEGIN;
SELECT plan(25);

SELECT lamin.add_storage('/tmp/lamin-pgtap-storage') AS storage_uid \gset

-- Run 1 creates raw data.
SELECT lamin.track('lin/ingest.py', 'ingest()', params => '{"batch": 7}') AS run1 \gset
SELECT is(lamin.track('lin/ingest.py', 'ingest()'), :'run1', 're-calling track in the same session keeps the run');
SELECT is(current_setting('lamin.run_uid'), :'run1', 'the run uid is held in the session setting lamin.run_uid');
SELECT lamin.save_artifact(encode(sha256('raw'), 'hex'), 3, key => 'lin/raw.csv') AS raw \gset
SELECT is((SELECT r.uid FROM lamin.artifact a JOIN lamin.run r ON r.id = a.run_id WHERE a.uid = :'raw'), :'run1',
          'an artifact saved during a run records the run');
-- Reading its own output does not make it an input.
SELECT is((lamin.get(:'raw')).uid, :'raw', 'the run reads its own output');
SELECT is((SELECT count(*)::int FROM lamin.run_input_artifact), 0, 'own outputs are not recorded as inputs');
SELECT is(lamin.finish(), :'run1', 'finish returns the run uid');
SELECT is((SELECT status FROM lamin.run WHERE uid = :'run1'), 'completed', 'finish marks the run completed');
SELECT throws_like($$SELECT lamin.finish()$$, 'no run is tracked%', 'finish without a tracked run is an error');

-- Run 2 reads the raw data and writes a model; saving raw content again returns the same artifact.
SELECT lamin.track('lin/train.py', 'train()') AS run2 \gset
SELECT isnt(:'run2'::text, :'run1'::text, 'a new track after finish starts a new run');
SELECT is((lamin.get(:'raw')).uid, :'raw', 'run 2 reads the raw data');
SELECT is((SELECT count(*)::int FROM lamin.run_input_artifact i JOIN lamin.run r ON r.id = i.run_id WHERE r.uid = :'run2'), 1,
          'the read is recorded as an input of run 2');
SELECT is(lamin.save_artifact(encode(sha256('raw'), 'hex'), 3, key => 'lin/raw.csv'), :'raw', 'saving the same content returns the existing artifact');
SELECT is(lamin.save_artifact(encode(sha256('raw'), 'hex'), 3, key => 'lin/other-name.csv'), :'raw', 'also under another key');
SELECT is((SELECT count(*)::int FROM lamin.artifact WHERE hash = encode(sha256('raw'), 'hex')), 1, 'one record for that content');
SELECT is((SELECT string_agg(r.uid, ',') FROM lamin.artifact_recreating_run x JOIN lamin.run r ON r.id = x.run_id
           JOIN lamin.artifact a ON a.id = x.artifact_id WHERE a.uid = :'raw'), :'run2', 'run 2 is recorded as re-creating it');
SELECT lamin.save_artifact(encode(sha256('model'), 'hex'), 5, key => 'lin/model.pt', kind => 'model') AS model \gset
SELECT lamin.finish() AS f2 \gset

-- Transforms: the same source is the same transform.
SELECT lamin.track('lin/ingest.py', 'ingest()') AS run3 \gset
SELECT is((SELECT count(*)::int FROM lamin.transform WHERE key = 'lin/ingest.py'), 1, 'same source, same transform');
SELECT lamin.finish() AS f3 \gset

-- Collections: the same members are the same collection, whatever their order.
SELECT lamin.save_collection('lin/all', ARRAY[:'raw', :'model']) AS coll \gset
SELECT is(lamin.save_collection('lin/all-again', ARRAY[:'model', :'raw']), :'coll', 'a collection of the same artifacts is the same collection');
SELECT is((SELECT string_agg(a.uid, ',' ORDER BY m.position) FROM lamin.collection_artifact m JOIN lamin.artifact a ON a.id = m.artifact_id
           JOIN lamin.collection c ON c.id = m.collection_id WHERE c.uid = :'coll'), :'raw' || ',' || :'model', 'members keep their order');

-- Lineage of the model: run2 <- (transform train, raw) ; raw <- run1 <- transform ingest.
SELECT set_eq(
    format($$SELECT depth, source_type, source_uid, target_type, target_uid FROM lamin.lineage(%L)$$, :'model'),
    format($$VALUES (1, 'run', %L, 'artifact', %L),
                    (2, 'artifact', %L, 'run', %L),
                    (2, 'transform', (SELECT uid FROM lamin.transform WHERE key = 'lin/train.py'), 'run', %L),
                    (3, 'run', %L, 'artifact', %L),
                    (4, 'transform', (SELECT uid FROM lamin.transform WHERE key = 'lin/ingest.py'), 'run', %L)$$,
           :'run2', :'model', :'raw', :'run2', :'run2', :'run1', :'raw', :'run1'),
    'lineage(model) is the full upstream graph with depths');
SELECT matches(lamin.lineage_dot(:'model'), '^digraph lineage \{', 'lineage_dot is a DOT digraph');
SELECT ok(strpos(lamin.lineage_dot(:'model'), format('"artifact:%s" -> "run:%s";', :'raw', :'run2')) > 0,
          'the DOT text has the edge raw -> run2');
SELECT is((SELECT count(*)::int FROM lamin.lineage(:'raw')), 2, 'lineage(raw) stops at its run and transform');

-- A READ ONLY transaction (what a hot standby allows) still reads, but a
-- get that would record an input names that write instead of failing inside
-- its INSERT ("cannot execute INSERT in a read-only transaction").
SELECT lamin.track('lin/read-only.py') AS run4 \gset
-- (Last in the file: a transaction cannot turn read-write again, and a
-- savepoint rolled back would take pgTAP's results with it.)
SET TRANSACTION READ ONLY;
SELECT throws_ok(format('SELECT lamin.get(%L)', :'raw'), '25006',
    format('recording artifact %s as an input of the current run needs a writable transaction, and this one is READ ONLY', :'raw'),
    'get with a run in a READ ONLY transaction names the input it cannot record');
SELECT is((SELECT count(*)::int FROM lamin.lineage(:'raw')), 2, 'lineage answers in a READ ONLY transaction');
SELECT throws_ok(format('SELECT lamin.stage(%L)', :'raw'), '25006',
    'queuing a stage job needs a writable transaction, and this one is READ ONLY',
    'work queued in a READ ONLY transaction (stage) names the job it cannot queue');

SELECT * FROM finish();
ROLLBACK;
