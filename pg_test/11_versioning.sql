-- Version families: same key or revises => next version; one head per family;
-- head promotion on trash and delete; version tags unique; lookup by stem.
BEGIN;
SELECT plan(17);

SELECT lamin.add_storage('/tmp/lamin-pgtap-storage') AS storage_uid \gset
SELECT lamin.save_artifact(encode(sha256('v0'), 'hex'), 2, key => 'ver/data.csv', version => '1') AS v0 \gset
SELECT lamin.save_artifact(encode(sha256('v1'), 'hex'), 2, key => 'ver/data.csv', version => '2') AS v1 \gset
SELECT lamin.save_artifact(encode(sha256('v2'), 'hex'), 2, revises => :'v1') AS v2 \gset

SELECT is(left(:'v1', 16), left(:'v0', 16), 'saving under the same key continues the family');
SELECT is(right(:'v0', 4) || ',' || right(:'v1', 4) || ',' || right(:'v2', 4), '0000,0001,0002', 'version counters 0000, 0001, 0002');
SELECT is(left(:'v2', 16), left(:'v0', 16), 'revises continues the family without a key');
SELECT is((SELECT string_agg(is_latest::text, ',' ORDER BY id) FROM lamin.artifact WHERE stem = left(:'v0', 16)),
          'false,false,true', 'only the newest version is_latest');
SELECT is((lamin.get(left(:'v0', 16))).uid, :'v2', 'get(stem) resolves to the latest version');
SELECT is((lamin.get(:'v0')).uid, :'v0', 'get(full uid) returns that exact version');

-- Duplicate version tags are refused, with a message naming the tag and its owner.
SELECT throws_like(format($$SELECT lamin.save_artifact(encode(sha256('v3'), 'hex'), 2, revises => %L, version => '1')$$, :'v2'),
                   'version tag ''1'' is already used by ' || :'v0' || '%', 'a reused version tag is an error naming the owner');
SELECT throws_like(format($$UPDATE lamin.artifact SET version = '2' WHERE uid = %L$$, :'v2'),
                   'version tag ''2'' is already used%', 'renaming a version onto a used tag is refused too');
SELECT is((SELECT count(*)::int FROM lamin.artifact WHERE stem = left(:'v0', 16)), 3, 'the refused saves left nothing behind');

-- Trashing the head promotes the newest remaining version; restoring makes it head again.
SELECT is(lamin.delete(:'v2'), 'trashed', 'first delete moves to trash');
SELECT is((SELECT uid FROM lamin.artifact WHERE stem = left(:'v0', 16) AND is_latest), :'v1', 'the newest remaining version became head');
SELECT is(lamin.restore(:'v2'), 'restored', 'restore from trash');
SELECT is((SELECT uid FROM lamin.artifact WHERE stem = left(:'v0', 16) AND is_latest), :'v2', 'the restored newest version is head again');

-- Permanent delete of the head.
SELECT is(lamin.delete(:'v2', permanent => true), 'deleted', 'permanent delete');
SELECT is((SELECT uid FROM lamin.artifact WHERE stem = left(:'v0', 16) AND is_latest), :'v1', 'after deleting the head, v1 is head');

-- The partial unique index backs up the one-head rule even for raw updates.
SELECT throws_ok(format($$UPDATE lamin.artifact SET is_latest = true WHERE uid = %L$$, :'v0'), '23505', NULL,
                 'two heads in one family violate artifact_one_latest');

-- Transforms and collections version the same way.
SELECT lamin.track('ver/pipe.py', 'v = 1') AS r1 \gset
SELECT lamin.finish() AS f1 \gset
SELECT lamin.track('ver/pipe.py', 'v = 2') AS r2 \gset
SELECT lamin.finish() AS f2 \gset
SELECT is((SELECT string_agg(right(uid, 4) || ':' || is_latest, ',' ORDER BY id) FROM lamin.transform WHERE key = 'ver/pipe.py'),
          '0000:false,0001:true', 'changed source makes the next transform version');

SELECT * FROM finish();
ROLLBACK;
