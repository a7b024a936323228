-- Registry rules enforced by the database itself: uid formats, keys, hashes,
-- storage, dtypes, and hierarchies without cycles.
BEGIN;
SELECT plan(24);

SELECT lamin.add_storage('/tmp/lamin-pgtap-storage') AS storage_uid \gset

-- Every registry and link table exists.
SELECT is((SELECT count(*)::int FROM pg_tables WHERE schemaname = 'lamin' AND tablename = ANY (ARRAY[
    'storage', 'user', 'space', 'branch', 'transform', 'run', 'artifact', 'collection', 'collection_artifact',
    'feature', 'schema', 'schema_feature', 'ulabel', 'ulabel_parent', 'artifact_ulabel', 'artifact_feature_value',
    'artifact_schema', 'run_input_artifact', 'run_input_collection', 'artifact_recreating_run',
    'collection_recreating_run'])), 21, 'all 21 registry and link tables exist');

-- DEFAULT uids have LaminDB's lengths.
INSERT INTO lamin.ulabel (name) VALUES ('label-default-uid');
INSERT INTO lamin.feature (name, dtype) VALUES ('feature-default-uid', 'int');
SELECT matches((SELECT uid FROM lamin.ulabel WHERE name = 'label-default-uid'), '^[0-9A-Za-z]{8}$', 'ulabel uid: 8 base62');
SELECT matches((SELECT uid FROM lamin.feature WHERE name = 'feature-default-uid'), '^[0-9A-Za-z]{12}$', 'feature uid: 12 base62');
SELECT matches(lamin.save_artifact(repeat('a', 64), 1), '^[0-9A-Za-z]{16}0000$', 'artifact uid: 16-character stem + 0000');
SELECT matches(lamin.track('constraints/uid.py'), '^[0-9A-Za-z]{20}$', 'run uid: 20 base62');
SELECT matches((SELECT uid FROM lamin.transform WHERE key = 'constraints/uid.py'), '^[0-9A-Za-z]{12}0000$', 'transform uid: 12 + 0000');
SELECT lamin.finish() AS finished_run \gset

-- Wrong uid length or alphabet.
SELECT throws_ok($$INSERT INTO lamin.ulabel (uid, name) VALUES ('abc', 'x')$$, '23514', NULL, 'a 3-character ulabel uid violates ulabel_uid_format');
SELECT throws_ok($$INSERT INTO lamin.ulabel (uid, name) VALUES ('abcd-fgh', 'x')$$, '23514', NULL, 'a non-base62 uid is refused');
SELECT throws_like($$SELECT lamin.get('short')$$, '%invalid artifact uid ''short''%20 base62%', 'get() names the malformed uid and the rule');
SELECT throws_like($$SELECT lamin.get('ZZZZZZZZZZZZZZZZZZZZ')$$, 'no artifact with uid ''ZZZZZZZZZZZZZZZZZZZZ''', 'get() of an unknown uid names it');

-- Keys.
SELECT throws_like($$SELECT lamin.save_artifact(repeat('b', 64), 1, key => 'a/../b.csv')$$, '%''..'' path segment%', 'key with .. is refused');
SELECT throws_like($$SELECT lamin.save_artifact(repeat('b', 64), 1, key => '/abs.csv')$$, '%starts with ''/''%', 'absolute key is refused');
SELECT throws_like($$SELECT lamin.save_artifact(repeat('b', 64), 1, key => 'a\b.csv')$$, '%backslash%', 'backslash key is refused');
SELECT throws_like($$SELECT lamin.save_artifact(repeat('b', 64), 1, key => repeat('k', 1025))$$, '%1025 bytes long%', 'a key over 1024 bytes is refused');
SELECT throws_like($$INSERT INTO lamin.artifact (storage_id, key, hash, hash_type, size) SELECT id, './x', repeat('c', 64), 'sha256', 1 FROM lamin.storage LIMIT 1$$,
                   '%''.'' path segment%', 'raw INSERT with a bad key is refused too');

-- Hashes and sizes.
SELECT throws_like($$SELECT lamin.save_artifact('DMF1ucDxtqgxw5niaXcmYQ', 1)$$, '%invalid hash%sha256%', 'an md5-style hash is refused');
SELECT throws_like($$SELECT lamin.save_artifact(repeat('d', 64), -5)$$, '%invalid size -5%', 'a negative size is refused');
SELECT throws_ok($$INSERT INTO lamin.artifact (storage_id, size) SELECT id, 1 FROM lamin.storage LIMIT 1$$, '23514', NULL,
                 'a ready artifact without hash violates artifact_ready_has_hash');

-- Storage.
SELECT throws_like($$SELECT lamin.save_artifact(repeat('e', 64), 1, storage => 's3://nowhere')$$, 'unknown storage ''s3://nowhere''%', 'unknown storage is named');

-- Features: dtype syntax and registry.
SELECT throws_ok($$INSERT INTO lamin.feature (name, dtype) VALUES ('f1', 'integer')$$, '23514', NULL, 'unknown dtype is refused');
SELECT throws_like($$SELECT lamin.create_feature('f2', 'cat[lamin.nosuch]')$$, '%names unknown registry lamin.nosuch%', 'categorical dtype must name an existing registry');

-- Hierarchies without cycles.
INSERT INTO lamin.ulabel (name, is_type) VALUES ('TypeA', true), ('TypeB', true);
UPDATE lamin.ulabel SET type_id = (SELECT id FROM lamin.ulabel WHERE name = 'TypeA') WHERE name = 'TypeB';
SELECT throws_like($$UPDATE lamin.ulabel SET type_id = (SELECT id FROM lamin.ulabel WHERE name = 'TypeB') WHERE name = 'TypeA'$$,
                   '%type chain would form a cycle%', 'a type cycle is refused');
INSERT INTO lamin.ulabel (name) VALUES ('p1'), ('p2'), ('p3');
INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
SELECT c.id, p.id FROM lamin.ulabel c, lamin.ulabel p WHERE (c.name, p.name) IN (('p2', 'p1'), ('p3', 'p2'));
SELECT throws_like($$INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
                     SELECT c.id, p.id FROM lamin.ulabel c, lamin.ulabel p WHERE c.name = 'p1' AND p.name = 'p3'$$,
                   '%would form a cycle%', 'a parent cycle p1 -> p3 -> p2 -> p1 is refused');
SELECT throws_like($$INSERT INTO lamin.ulabel (name, type_id) SELECT 'x', id FROM lamin.ulabel WHERE name = 'p1'$$,
                   '%is not a type%', 'type_id must point at an is_type label');

SELECT * FROM finish();
ROLLBACK;
