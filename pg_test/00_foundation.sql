-- The extension's skeleton: schema, version, uids, key checks, storage roots.
BEGIN;
SELECT plan(16);

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

SELECT * FROM finish();
ROLLBACK;
