-- The extension's skeleton: schema, version, uids, key checks, storage roots.
BEGIN;
SELECT plan(21);

SELECT has_schema('lamin');
SELECT has_function('lamin', 'version', ARRAY[]::text[]);
SELECT matches(lamin.version(), '^\d+\.\d+\.\d+$', 'version() is a semantic version');
SELECT is(lamin.version(), (SELECT extversion::text FROM pg_extension WHERE extname = 'lamin'), 'version() is the installed SQL version');
SELECT matches(lamin.library_version(), '^\d+\.\d+\.\d+$', 'library_version() is the loaded library''s');

SELECT matches(lamin.uid(20), '^[0-9A-Za-z]{20}$', 'uid(20) is 20 base62 characters');
SELECT isnt(lamin.uid(16), lamin.uid(16), 'two uids differ');
SELECT throws_ok('SELECT lamin.uid(65)', '22023', 'uid length must be between 1 and 64, got 65');

SELECT is(lamin.check_key('folder/file.parquet'), 'folder/file.parquet', 'a plain key passes');
SELECT throws_like($$SELECT lamin.check_key('/etc/passwd')$$, '%starts with ''/''%', 'absolute keys are refused');
SELECT throws_like($$SELECT lamin.check_key('a\b')$$, '%backslash%', 'backslashes are refused');

-- add_storage normalises and is idempotent.
SELECT lives_ok($$SELECT lamin.add_storage('s3://bucket//prefix/')$$, 'an S3 root registers');
SELECT is(
    (SELECT count(*)::int FROM lamin.storage WHERE root = 's3://bucket/prefix'), 1,
    'the root is stored normalised');
SELECT is(lamin.add_storage('s3://bucket/prefix'),
          (SELECT uid FROM lamin.storage WHERE root = 's3://bucket/prefix'),
          'registering the same root returns the existing uid');
SELECT throws_like($$SELECT lamin.add_storage('relative/path')$$, '%neither an absolute local path%',
                   'relative roots are refused');
SELECT throws_ok($$INSERT INTO lamin.storage (uid, root, type) VALUES ('short', '/x', 'local')$$,
                 '23514', NULL, 'a malformed uid violates a CHECK constraint');

-- current_user_id(): one row per role, made on first use; the answer is
-- remembered per role, but never a row the current transaction made (it
-- goes away with a rollback).
CREATE ROLE t_newcomer IN ROLE lamin_writer;
CREATE ROLE t_other IN ROLE lamin_writer;
SET ROLE t_newcomer;
SAVEPOINT first_use;
SELECT lamin.current_user_id() AS rolled_back_id \gset
SELECT is((SELECT handle FROM lamin."user" WHERE id = :rolled_back_id), 't_newcomer', 'a role''s first use makes its user row');
ROLLBACK TO SAVEPOINT first_use;
SELECT lamin.current_user_id() AS again_id \gset
SELECT is((SELECT handle FROM lamin."user" WHERE id = :again_id), 't_newcomer',
          'after a rollback the row is made again, not an id remembered from the rolled-back one');
SELECT lives_ok($$INSERT INTO lamin.ulabel (name) VALUES ('made by a newcomer')$$, '… and created_by refers to a row that exists');
SET ROLE t_other;
SELECT isnt(lamin.current_user_id(), (SELECT id FROM lamin."user" WHERE handle = 't_newcomer'), 'another role has its own row');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM lamin."user" WHERE handle IN ('t_newcomer', 't_other')), 2, 'one row per role');

SELECT * FROM finish();
ROLLBACK;
