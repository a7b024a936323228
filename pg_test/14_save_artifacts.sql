-- Many artifacts in one call (lamin.save_artifacts) with save_artifact's
-- rules, and the first version of a new family skipping the versioning
-- trigger (lamin.new_family_uid) without a family ever losing its one head.
BEGIN;
SELECT plan(39);

SELECT lamin.add_storage('/tmp/lamin-pgtap-storage') AS storage_uid \gset
CREATE TEMP TABLE h AS SELECT g, encode(sha256(('bulk ' || g)::bytea), 'hex') AS hash FROM generate_series(1, 200) g;

-- == new families ==
SELECT lamin.new_family_uid(20) AS fam \gset
SELECT ok(:'fam' ~ '^[0-9A-Za-z]{16}0000$', 'a new family''s uid is a random stem and the counter 0000');
SELECT ok(lamin.is_vouched_head(:'fam') AND NOT lamin.is_vouched_head(lamin.uid(20)), 'only new_family_uid''s uids are vouched heads');
SELECT is(lamin.vouch_heads(ARRAY['zzzzzzzzzzzzzzzz0001']), 1, 'vouch_heads remembers next versions');
SELECT ok(lamin.is_vouched_head('zzzzzzzzzzzzzzzz0001') AND NOT lamin.uid_was_issued('zzzzzzzzzzzzzzzz0001'),
          'a vouched next version is not a uid one may insert (the uid check still asks for a readable family)');
INSERT INTO lamin.artifact (uid, storage_id, size, hash, hash_type, version)
VALUES (:'fam', lamin.storage_id(NULL), 1, (SELECT hash FROM h WHERE g = 200), 'sha256', 'v1');
SELECT is((SELECT is_latest FROM lamin.artifact WHERE uid = :'fam'), true, 'a new family''s first record is its head');
SELECT lamin.save_artifact(encode(sha256('next of fam'), 'hex'), 1, revises => :'fam') AS fam1 \gset
SELECT is((SELECT string_agg(right(uid, 4) || ':' || is_latest, ',' ORDER BY id) FROM lamin.artifact WHERE stem = left(:'fam', 16)),
          '0000:false,0001:true', 'its next version goes through the trigger and becomes the one head');
SELECT throws_like(format($$INSERT INTO lamin.artifact (uid, storage_id, size, hash, hash_type, version) VALUES (%L || '0002', lamin.storage_id(NULL), 1, %L, 'sha256', 'v1')$$,
                          left(:'fam', 16), encode(sha256('tag clash'), 'hex')),
                   'version tag ''v1'' is already used%', 'a version tag of the family is still checked for later versions');
SELECT lamin.new_family_uid(20) AS trashed_fam \gset
INSERT INTO lamin.artifact (uid, storage_id, size, hash, hash_type, branch_id)
VALUES (:'trashed_fam', lamin.storage_id(NULL), 1, encode(sha256('born in trash'), 'hex'), 'sha256', -1);
SELECT is((SELECT is_latest FROM lamin.artifact WHERE uid = :'trashed_fam'), false,
          'a new family inserted into the trash goes through the trigger: not a head');
SELECT throws_ok($$SELECT lamin.new_family_uid(4)$$, '22023', NULL, 'a family uid needs room for a stem and the counter');

-- == save_artifacts: new content ==
SELECT lamin.track('bulk/ingest.py', 'ingest()') AS run1 \gset
CREATE TEMP TABLE s1 AS
SELECT * FROM lamin.save_artifacts(ARRAY(SELECT hash FROM h WHERE g <= 3 ORDER BY g), '{10,20,30}',
                                   keys => '{bulk/a.csv,NULL,bulk/c.parquet}', descriptions => '{first,second,third}');
SELECT is((SELECT string_agg(ord || ':' || outcome || ':' || right(uid, 4), ',' ORDER BY ord) FROM s1),
          '1:saved:0000,2:saved:0000,3:saved:0000', 'one row per entry, in order: three new families');
SELECT is((SELECT string_agg(a.size || '/' || coalesce(a.key, '-') || '/' || a.suffix || '/' || a.description || '/' || a.hash_type, ',' ORDER BY s.ord)
           FROM s1 s JOIN lamin.artifact a ON a.uid = s.uid),
          '10/bulk/a.csv/.csv/first/sha256,20/-//second/sha256,30/bulk/c.parquet/.parquet/third/sha256',
          'sizes, keys, suffixes from the keys and descriptions are stored per entry');
SELECT is((SELECT count(*)::int FROM s1 s JOIN lamin.artifact a ON a.uid = s.uid JOIN lamin.run r ON r.id = a.run_id WHERE r.uid = :'run1'), 3,
          'the tracked run is recorded as their creator');
SELECT is((SELECT count(*)::int FROM s1 s JOIN lamin.artifact a ON a.uid = s.uid WHERE a.is_latest AND a.status = 'ready'), 3,
          'each is the ready head of its family');
SELECT is((SELECT count(*)::int FROM lamin.audit x JOIN s1 s ON s.uid = x.uid WHERE x.operation = 'insert' AND 'hash' = ANY (x.fields)
             AND x.fields = ARRAY(SELECT f FROM unnest(x.fields) f ORDER BY f)), 3,
          'each is audited with the fields it set, in name order');

-- == save_artifacts: content saved before, twice in one call, and trashed ==
CREATE TEMP TABLE s2 AS
SELECT * FROM lamin.save_artifacts(ARRAY(SELECT hash FROM h WHERE g IN (1, 2, 4) ORDER BY g) || (SELECT hash FROM h WHERE g = 4), '{10,20,40,40}',
                                   keys => '{elsewhere.csv,NULL,NULL,NULL}');
SELECT is((SELECT string_agg(s.ord || ':' || s.outcome, ',' ORDER BY s.ord) FROM s2 s), '1:existing,2:existing,3:saved,4:existing',
          'known content comes back, and so does content given twice in one call');
SELECT is((SELECT count(*)::int FROM s2 JOIN s1 USING (uid)), 2, 'the known entries return the artifacts saved before');
SELECT is((SELECT count(DISTINCT uid)::int FROM s2 WHERE ord IN (3, 4)), 1, 'both entries of one content get one artifact');
SELECT is((SELECT key FROM lamin.artifact WHERE uid = (SELECT uid FROM s1 WHERE ord = 1)), 'bulk/a.csv',
          'a key given with known content is not recorded');
SELECT lamin.finish();
SELECT lamin.track('bulk/again.py', 'again()') AS run2 \gset
SELECT lamin.save_artifacts(ARRAY(SELECT hash FROM h WHERE g = 1), '{10}');
SELECT is((SELECT string_agg(r.uid, ',') FROM lamin.artifact_recreating_run x JOIN lamin.run r ON r.id = x.run_id
           WHERE x.artifact_id = (SELECT a.id FROM lamin.artifact a JOIN s1 USING (uid) WHERE s1.ord = 1)), :'run2',
          'another run saving known content is recorded as re-creating it');
SELECT lamin.finish();
SELECT is(lamin.delete((SELECT uid FROM s1 WHERE ord = 2)), 'trashed', 'an artifact goes to the trash');
SELECT is((SELECT outcome || ':' || (uid = (SELECT uid FROM s1 WHERE ord = 2)) FROM lamin.save_artifacts(ARRAY(SELECT hash FROM h WHERE g = 2), '{20}')),
          'restored:true', 'saving its content again brings it back');

-- == save_artifacts: existing keys make new versions ==
CREATE TEMP TABLE s3 AS
SELECT * FROM lamin.save_artifacts(ARRAY(SELECT hash FROM h WHERE g IN (5, 6) ORDER BY g), '{50,60}', keys => '{bulk/a.csv,bulk/new.csv}');
SELECT is((SELECT string_agg(ord || ':' || outcome || ':' || right(uid, 4), ',' ORDER BY ord) FROM s3),
          '1:new version:0001,2:saved:0000', 'an existing key makes the next version of its family, a new key a new family');
SELECT is((SELECT string_agg(right(uid, 4) || ':' || is_latest, ',' ORDER BY id) FROM lamin.artifact
           WHERE stem = left((SELECT uid FROM s1 WHERE ord = 1), 16)),
          '0000:false,0001:true', 'the new version is the family''s one head');
SELECT is((SELECT string_agg(array_to_string(x.fields, ','), ';') FROM lamin.audit x
           WHERE x.operation = 'update' AND x.uid = (SELECT uid FROM s1 WHERE ord = 1)),
          'is_latest', 'the old head''s step down is audited as a change of is_latest alone');

-- == save_artifacts: many entries (one lock over the storage's saves) ==
SELECT is((SELECT count(*)::int FROM lamin.save_artifacts(ARRAY(SELECT hash FROM h WHERE g BETWEEN 101 AND 199 ORDER BY g),
                                                            ARRAY(SELECT g::bigint FROM h WHERE g BETWEEN 101 AND 199 ORDER BY g),
                                                            keys => ARRAY(SELECT 'many/' || g || '.txt' FROM h WHERE g BETWEEN 101 AND 199 ORDER BY g))
           WHERE outcome = 'saved'), 99, '99 entries in one call are saved');
SELECT is((SELECT count(*)::int FROM lamin.artifact WHERE key LIKE 'many/%' AND is_latest), 99, 'each under its key, each a head');
SELECT count(*) AS locks_before FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() \gset
SELECT is((SELECT string_agg(DISTINCT outcome, ',') FROM lamin.save_artifacts(ARRAY(SELECT encode(sha256(('v2 ' || g)::bytea), 'hex') FROM h WHERE g BETWEEN 101 AND 199 ORDER BY g),
                                                                      ARRAY(SELECT g::bigint FROM h WHERE g BETWEEN 101 AND 199 ORDER BY g),
                                                                      keys => ARRAY(SELECT 'many/' || g || '.txt' FROM h WHERE g BETWEEN 101 AND 199 ORDER BY g))),
          'new version', '99 new versions in one call');
SELECT is((SELECT string_agg(DISTINCT x, ',') FROM (SELECT string_agg(right(uid, 4) || ':' || is_latest, ',' ORDER BY id) AS x
                                                     FROM lamin.artifact WHERE key LIKE 'many/%' GROUP BY stem) f),
          '0000:false,0001:true', 'each family has its next version as its one head');
SELECT cmp_ok((SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) - :'locks_before'::bigint, '<=', 1::bigint,
              'a bulk call takes no lock per family (one over the storage''s saves)');
SELECT lamin.save_artifact(encode(sha256('fam a'), 'hex'), 1, key => 'fam/a.csv') AS fa \gset
SELECT lamin.save_artifact(encode(sha256('fam b'), 'hex'), 1, key => 'fam/b.csv', revises => :'fa') AS fb \gset
SELECT throws_like($$SELECT lamin.save_artifacts(ARRAY[encode(sha256('fam a2'), 'hex'), encode(sha256('fam b2'), 'hex')], '{1,1}', keys => '{fam/a.csv,fam/b.csv}')$$,
                   'entries 1, 2 would all be the next version of family %', 'two keys of one family in a call are refused');

-- == the insert's foreign-key checks run with plan_cache_mode auto, inside only ==
SET plan_cache_mode = force_generic_plan;
SELECT is((SELECT count(*)::int FROM lamin.save_artifacts(ARRAY(SELECT encode(sha256(('pcm ' || g)::bytea), 'hex') FROM generate_series(1, 70) g),
                                                          array_fill(1::bigint, ARRAY[70]))), 70, 'a call of 70 new artifacts');
SELECT is(current_setting('plan_cache_mode'), 'force_generic_plan', 'save_artifacts leaves the caller''s plan_cache_mode as it was');
RESET plan_cache_mode;

-- == refusals: a clear error, and nothing stored ==
SELECT count(*) AS before FROM lamin.artifact \gset
SELECT throws_ok($$SELECT lamin.save_artifacts(ARRAY[encode(sha256('ok'), 'hex'), 'not-a-hash'], '{1,2}')$$, '22023',
                 'entry 2: invalid hash ''not-a-hash'': expected the sha256 of the full content as 64 lowercase hex characters',
                 'a bad hash is refused, naming its entry');
SELECT throws_ok($$SELECT lamin.save_artifacts(ARRAY[encode(sha256('x1'), 'hex'), encode(sha256('x2'), 'hex')], '{1,-2}')$$, '22023',
                 'entry 2: invalid size -2: expected a byte count >= 0', 'a negative size is refused, naming its entry');
SELECT throws_ok($$SELECT lamin.save_artifacts(ARRAY[encode(sha256('x1'), 'hex'), encode(sha256('x2'), 'hex')], '{1}')$$, '22023',
                 'save_artifacts: sizes has 1 entries, hashes has 2', 'arrays of different lengths are refused');
SELECT throws_like($$SELECT lamin.save_artifacts(ARRAY[encode(sha256('x1'), 'hex'), encode(sha256('x2'), 'hex')], '{1,2}', keys => '{same.csv,same.csv}')$$,
                   'key ''same.csv'' is given to entries 1, 2 in one call', 'one key twice in a call is refused');
SELECT throws_ok($$SELECT lamin.save_artifacts(array_fill(encode(sha256('x'), 'hex'), ARRAY[10001]), array_fill(1::bigint, ARRAY[10001]))$$,
                 '54000', NULL, 'more than 10000 entries are refused');
SELECT is((SELECT count(*) FROM lamin.artifact), :'before'::bigint, 'the refused calls stored nothing');
SELECT is((SELECT count(*)::int FROM lamin.save_artifacts('{}', '{}')), 0, 'no entries, no rows');

SELECT * FROM finish();
ROLLBACK;
