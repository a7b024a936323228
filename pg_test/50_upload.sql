-- The upload protocol of lamin save: pending until the bytes are confirmed,
-- no ready artifact with the wrong hash, failed uploads can be retried.
BEGIN;
SELECT plan(7);
SELECT lamin.add_storage('/tmp/lamin-pgtap-upload');

SELECT * FROM lamin.begin_upload(encode(sha256('upload me'), 'hex'), 9, key => 'u/a.txt', storage => '/tmp/lamin-pgtap-upload') \gset first_
SELECT ok(:'first_upload'::boolean, 'new content is to be uploaded');
SELECT is(:'first_status'::text, 'pending', '… and is pending until then');
SELECT is(:'first_path'::text, '/tmp/lamin-pgtap-upload/.lamindb/' || :'first_uid' || '.txt', 'the path to write is {root}/.lamindb/{uid}{suffix}');
SELECT throws_like(format($$SELECT lamin.finish_upload(%L, %L)$$, :'first_uid', repeat('0', 64)),
                   '%not the registered%', 'bytes with another hash cannot make it ready');
SELECT lamin.fail_upload(:'first_uid', 'disk full');
SELECT is((SELECT status FROM lamin.artifact WHERE uid = :'first_uid'), 'failed', 'a failed upload marks the artifact failed');
SELECT ok((SELECT upload FROM lamin.begin_upload(encode(sha256('upload me'), 'hex'), 9, storage => '/tmp/lamin-pgtap-upload')), 'saving the content again retries the upload');
SELECT is(lamin.finish_upload(:'first_uid', encode(sha256('upload me'), 'hex')), 'ready', 'the right hash makes it ready');

SELECT * FROM finish();
ROLLBACK;
