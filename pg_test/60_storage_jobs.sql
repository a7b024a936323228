-- Storage jobs, database side: register by URI, the register/verify outcomes,
-- stage and sweep de-duplication, deletion jobs only for lamin's own objects,
-- and job calls pinned to one attempt.
BEGIN;
SELECT plan(30);
SELECT lamin.add_storage('/tmp/lamin-pgtap-st');
SELECT lamin.add_storage('s3://pgtap-bucket/pre');

-- Where a URI is.
SELECT is((SELECT key FROM lamin.storage_of_uri('s3://pgtap-bucket/pre/raw/x.csv')), 'raw/x.csv', 'a URI''s key is its path under the root');
SELECT throws_like($$SELECT lamin.storage_of_uri('s3://pgtap-bucket/other/x.csv')$$, '%outside every registered storage%',
                   'a URI outside every storage is refused');
SELECT throws_like($$SELECT lamin.storage_of_uri('s3://pgtap-bucket/prefix/x.csv')$$, '%outside every registered storage%',
                   'a root is a folder, not a string prefix (pre ≠ prefix)');
SELECT throws_like($$SELECT lamin.storage_of_uri('/tmp/lamin-pgtap-st/a/../../../etc/passwd')$$, '%..%', 'no .. in keys');
SELECT throws_like($$SELECT lamin.storage_of_uri('/tmp/lamin-pgtap-st/.lamindb/abc')$$, '%managed by lamin%',
                   '.lamindb/ is lamin''s own');
SELECT throws_like($$SELECT lamin.storage_of_uri('/tmp/lamin-pgtap-st')$$, '%outside every registered storage%',
                   'the root itself is not an object');

-- register: a pending artifact and a job; the same URI again is the same artifact.
SELECT lamin.register('s3://pgtap-bucket/pre/raw/cells.parquet', description => 'from the lab') AS reg \gset
SELECT is((SELECT row(status, key, key_is_virtual, suffix, hash IS NULL)::text FROM lamin.artifact WHERE uid = :'reg'),
          '(pending,raw/cells.parquet,f,.parquet,t)', 'registered: pending, real key, no hash yet');
SELECT is((SELECT count(*)::int FROM lamin.job WHERE kind = 'register' AND args ->> 'uid' = :'reg'), 1, 'a register job is queued');
SELECT is(lamin.register('s3://pgtap-bucket/pre/raw/cells.parquet/'), :'reg', 'registering the same URI again returns it');
SELECT is((SELECT count(*)::int FROM lamin.job WHERE kind = 'register'), 1, '… without another job');
SELECT throws_like($$SELECT lamin.register('s3://pgtap-bucket/pre/raw/cells.parquet', key => 'other.parquet')$$,
                   '%conflicts with the object''s place%', 'a key other than the object''s path is refused');
SELECT is(lamin.artifact_path(a), 's3://pgtap-bucket/pre/raw/cells.parquet', 'a registered object''s path is its URI')
FROM lamin.artifact a WHERE uid = :'reg';

-- finish_register: ready with hash and size; the same content twice fails the second.
SELECT is(lamin.finish_register(:'reg', repeat('a', 64), 1000), 'ready', 'hashed: ready');
SELECT is((SELECT row(size, hash_type, checked_at IS NOT NULL)::text FROM lamin.artifact WHERE uid = :'reg'),
          '(1000,sha256,t)', '… with its size and hash');
SELECT lamin.register('s3://pgtap-bucket/pre/copy/cells.parquet') AS twin \gset
SELECT is(lamin.finish_register(:'twin', repeat('a', 64), 1000), 'failed', 'the same content registered twice: failed');
SELECT matches((SELECT status_detail FROM lamin.artifact WHERE uid = :'twin'), 'same content as artifact ' || :'reg',
               '… naming the artifact that has it');
-- A register job that fails for good fails its artifact.
SELECT lamin.register('/tmp/lamin-pgtap-st/gone.csv') AS gone \gset
UPDATE lamin.job SET status = 'running', worker = 'w', attempts = 1 WHERE kind = 'register' AND args ->> 'uid' = :'gone';
SELECT lamin.fail_job(id, 'w', 'no object at /tmp/lamin-pgtap-st/gone.csv', true) FROM lamin.job WHERE args ->> 'uid' = :'gone';
SELECT is((SELECT status || ': ' || status_detail FROM lamin.artifact WHERE uid = :'gone'),
          'failed: register failed: no object at /tmp/lamin-pgtap-st/gone.csv', 'a failed register job fails the artifact');
SELECT lamin.register('/tmp/lamin-pgtap-st/gone.csv');
SELECT is((SELECT status FROM lamin.artifact WHERE uid = :'gone'), 'pending', 'registering a failed URI again retries it');

-- verify outcomes: corrupt with the reason, and back.
SELECT is(lamin.record_check(:'reg', 'object missing at s3://pgtap-bucket/pre/raw/cells.parquet'), 'corrupt', 'a problem: corrupt');
SELECT throws_like(format('SELECT lamin.stage(%L)', :'reg'), '%is corrupt%object missing%', 'a corrupt artifact cannot be staged');
SELECT is(lamin.record_check(:'reg', NULL), 'ready', 'bytes back: ready');
SELECT throws_like(format('SELECT lamin.verify(%L)', :'twin'), '%no stored bytes to verify%', 'a failed artifact has nothing to verify');

-- stage: one job per artifact at a time.
SELECT is(lamin.stage(:'reg'), lamin.stage(:'reg'), 'a stage under way is reused');

-- Deleting: lamin's own objects get a delete job, registered objects do not.
SELECT uid AS saved FROM lamin.begin_upload(repeat('b', 64), 5, suffix => '.txt') \gset
SELECT lamin.finish_upload(:'saved', repeat('b', 64));
SAVEPOINT before_delete;
SELECT lamin.delete(:'saved', permanent => true);
SELECT is((SELECT args ->> 'object' FROM lamin.job WHERE kind = 'delete_object'), '.lamindb/' || :'saved' || '.txt',
          'a permanent delete queues the deletion of the object');
ROLLBACK TO SAVEPOINT before_delete;
SELECT is((SELECT count(*)::int FROM lamin.job WHERE kind = 'delete_object'), 0, 'a rolled-back delete queues nothing');
SELECT lamin.delete(:'reg', permanent => true);
SELECT is((SELECT count(*)::int FROM lamin.job WHERE kind = 'delete_object'), 0, 'a registered object is not lamin''s to delete');

-- sweep: one job per storage, reused while queued.
SELECT is((SELECT count(*)::int FROM lamin.sweep_storage()), 2, 'a sweep job per storage');
SELECT is((SELECT array_agg(x ORDER BY x) FROM lamin.sweep_storage() x),
          (SELECT array_agg(id ORDER BY id) FROM lamin.job WHERE kind = 'sweep_storage'), 'queued sweeps are reused');

-- Job calls pinned to an attempt: a stalled attempt cannot finish a job taken over.
SELECT lamin.enqueue('noop') AS j \gset
SELECT lamin.claim_job('w1', lamin.version(), 30, '{noop}', 1);
UPDATE lamin.job SET lease_until = now() - interval '1 second' WHERE id = :j;
SELECT lamin.claim_job('w1', lamin.version(), 30, '{noop}', 1);
SELECT ok(NOT lamin.heartbeat_job(:j, 'w1', 30, attempt => 1), 'the stalled first attempt hears it lost the job');
SELECT ok(NOT lamin.complete_job(:j, 'w1', '{}', 1), '… and cannot complete it');

SELECT * FROM finish();
ROLLBACK;
