-- Typed feature values on artifacts, collections and runs: the trigger that
-- types and refuses values, add / set / remove, list and categorical
-- features, run parameters, the value views, and row-level security (a role
-- that cannot read a space sees none of its values and learns nothing of them).
BEGIN;
SELECT plan(55);

SELECT lamin.add_storage('/tmp/lamin-pgtap-values') AS storage_uid \gset
SELECT lamin.save_artifact(encode(sha256('fv a'), 'hex'), 10, key => 'fv/a.parquet') AS a \gset
SELECT lamin.save_artifact(encode(sha256('fv b'), 'hex'), 10, key => 'fv/b.parquet') AS b \gset
SELECT lamin.save_collection('fv/coll', ARRAY[:'a', :'b']) AS c \gset
SELECT lamin.create_feature('temperature', 'float'), lamin.create_feature('n_cells', 'int'), lamin.create_feature('dose', 'num'),
       lamin.create_feature('tags', 'list[str]'), lamin.create_feature('experiment', 'cat'), lamin.create_feature('measured_on', 'date'),
       lamin.create_feature('acquired_at', 'datetime'), lamin.create_feature('meta', 'dict'), lamin.create_feature('source', 'url'),
       lamin.create_feature('ok', 'bool'), lamin.create_feature('scores', 'list[int]');
INSERT INTO lamin.ulabel (name) VALUES ('Exp 1'), ('Exp 2');

-- Typed storage: every dtype lands in its column, in canonical form.
SELECT is(lamin.add_values('artifact', :'a', '{"temperature": 21.6, "n_cells": 1200.0, "dose": 0.125, "tags": ["qc", "raw"],
    "experiment": "Exp 1", "measured_on": "2024-05-17", "acquired_at": "2024-05-17 10:00:00+02", "meta": {"lane": 3},
    "source": "s3://bucket/run/1", "ok": true}'), 11, 'add_values stores one row per value (a list: one per element), a label as a link');
SELECT results_eq($$SELECT feature, value_number FROM lamin.artifact_values WHERE value_number IS NOT NULL ORDER BY feature$$,
    $$VALUES ('dose', 0.125::float8), ('n_cells', 1200), ('temperature', 21.6)$$, 'numbers are in value_number (double precision)');
SELECT is((SELECT value FROM lamin.artifact_values WHERE feature = 'n_cells'), '1200'::jsonb, 'an integer-valued number is the int');
SELECT results_eq($$SELECT value_text FROM lamin.artifact_values WHERE feature IN ('tags', 'source') ORDER BY 1$$,
    $$VALUES ('qc'), ('raw'), ('s3://bucket/run/1')$$, 'text is in value_text');
SELECT is((SELECT value_date FROM lamin.artifact_values WHERE feature = 'measured_on'), '2024-05-17'::date, 'dates are in value_date');
SELECT is((SELECT value_timestamp FROM lamin.artifact_values WHERE feature = 'acquired_at'), '2024-05-17 08:00:00+00'::timestamptz,
          'datetimes are in value_timestamp');
SELECT is((SELECT value FROM lamin.artifact_values WHERE feature = 'acquired_at'), '"2024-05-17T08:00:00+00:00"'::jsonb,
          'a datetime is stored in UTC (one instant, one form)');
SELECT is((SELECT value_boolean FROM lamin.artifact_values WHERE feature = 'ok'), true, 'booleans are in value_boolean');
SELECT is((SELECT value FROM lamin.artifact_values WHERE feature = 'meta'), '{"lane": 3}'::jsonb, 'a dict stays JSON');
SELECT is((SELECT name FROM lamin.annotations WHERE feature = 'experiment' AND artifact_uid = :'a'), 'Exp 1',
          'a categorical value of an artifact is a label link');
SELECT is((SELECT value_number FROM lamin.feature_values WHERE feature = 'temperature'), 21.6, 'lamin.feature_values reads the typed columns');

-- Direct INSERTs are typed and refused with the message.
SELECT lamin.artifact_id(:'b') AS b_id \gset
SELECT lives_ok(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (%s, lamin.feature_id('temperature'), '37')$$, :b_id),
                'a direct INSERT of a fitting value works');
SELECT is((SELECT value_number FROM lamin.artifact_feature_value WHERE artifact_id = :b_id), 37::float8, 'and the trigger typed it');
SELECT throws_ok(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (%s, lamin.feature_id('n_cells'), '"many"')$$, :b_id),
                 '42804', 'feature ''n_cells'' (dtype int): "many" is not an integer (a JSON number without a fraction)', 'a value that does not fit is refused, naming feature, dtype and value');
SELECT throws_ok(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (%s, lamin.feature_id('n_cells'), '2.5')$$, :b_id),
                 '42804', NULL, 'an int refuses a fraction');
SELECT throws_like(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (%s, lamin.feature_id('measured_on'), '"last tuesday"')$$, :b_id),
                   '%is not a date%', 'a date refuses what does not parse');
SELECT throws_like(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (%s, lamin.feature_id('experiment'), '"Exp 1"')$$, :b_id),
                   'feature ''experiment'' (dtype cat) is categorical: artifacts link its values%', 'categorical values of artifacts are links, not rows');
SELECT throws_like(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (%s, lamin.feature_id('tags'), '["a", "b"]')$$, :b_id),
                   '%is a list; a row holds one value%', 'a row holds one element of a list');
SELECT throws_like(format($$UPDATE lamin.artifact_feature_value SET value = '"warm"' WHERE artifact_id = %s$$, :b_id),
                   '%"warm" is not a number%', 'UPDATEs are checked too');

-- One value per record for a feature that is neither list[...] nor categorical.
SELECT is(lamin.add_values('artifact', :'a', '{"temperature": 21.6}'), 0, 'adding the value it has adds nothing');
SELECT throws_ok(format($$SELECT lamin.add_values('artifact', %L, '{"temperature": 22}')$$, :'a'), '23505',
                 'feature ''temperature'' (dtype float) holds one value per artifact, which has 21.6 already (not also 22)',
                 'a second, different value is refused');
SELECT throws_like(format($$SELECT lamin.add_values('artifact', %L, '{"temperature": [1, 2]}')$$, :'a'),
                   'feature ''temperature'' (dtype float) holds one value, not the list [1, 2]', 'a list for a scalar feature is refused');
SELECT is(lamin.set_values('artifact', :'a', '{"temperature": 22, "experiment": ["Exp 2"]}'), 2, 'set_values replaces');
SELECT results_eq($$SELECT feature, value FROM lamin.feature_values WHERE artifact_uid = $$ || quote_literal(:'a') || $$ AND feature IN ('temperature', 'experiment') ORDER BY 1$$,
    $$VALUES ('experiment', '"Exp 2"'::jsonb), ('temperature', '22'::jsonb)$$, 'the old values (and label links) are gone, the new ones there');
SELECT is(lamin.add_values('artifact', :'a', '{"tags": "filtered", "scores": [1, 2, 2]}'), 3, 'a list feature takes more values (each once)');

-- Clear errors, nothing half-written.
SELECT throws_like(format($$SELECT lamin.add_values('artifact', %L, '{"temprature": 1}')$$, :'a'), 'unknown feature ''temprature''',
                   'an unknown feature is named');
SELECT throws_ok(format($$SELECT lamin.add_values('artifact', %L, '{"dose": 1, "n_cells": "lots"}')$$, :'b'), '42804',
                 'feature ''n_cells'' (dtype int): "lots" is not an integer (a JSON number without a fraction)', 'a type mismatch names feature, dtype and value');
SELECT is((SELECT count(*)::int FROM lamin.artifact_values WHERE artifact_uid = :'b' AND feature = 'dose'), 0, 'and nothing of the call was written');
SELECT throws_ok(format($$SELECT lamin.add_values('artifact', %L, '{"dose": null}')$$, :'b'), '22004', NULL, 'NULL is refused');
SELECT throws_like(format($$SELECT lamin.add_values('artifact', %L, '{"experiment": ["Exp 3"]}')$$, :'b'), '%values not in lamin.ulabel: ''Exp 3''%',
                   'an unknown label is refused');
SELECT throws_like(format($$SELECT lamin.add_values('sample', %L, '{"dose": 1}')$$, :'b'), 'unknown kind ''sample''%', 'an unknown kind is named');

-- remove_values
SELECT is(lamin.remove_values('artifact', :'a', 'scores', '2'), 1, 'remove_values removes one value');
SELECT is(lamin.remove_values('artifact', :'a', 'tags'), 3, 'or all values of a feature');
SELECT is(lamin.remove_values('artifact', :'a', 'experiment', '"Exp 2"'), 1, 'or a label link');
SELECT is(lamin.remove_values('artifact', :'a', 'tags'), 0, 'removing what is not there removes nothing');

-- Collections: categorical values stored as the record's text, checked.
SELECT is(lamin.add_values('collection', :'c', '{"experiment": "Exp 1", "dose": 2}'), 2, 'collections take values, categorical ones too');
SELECT results_eq($$SELECT feature, value_text, value_number FROM lamin.collection_values ORDER BY 1$$,
    $$VALUES ('dose', NULL, 2::float8), ('experiment', 'Exp 1', NULL)$$, 'lamin.collection_values shows them typed');
SELECT throws_like(format($$SELECT lamin.add_values('collection', %L, '{"experiment": "exp 1"}')$$, :'c'),
                   'feature ''experiment'' (dtype cat): ''exp 1'' is not in lamin.ulabel%', 'a categorical value must be in the registry');

-- Runs: parameters that name a feature are typed run values.
SELECT lamin.track('pipelines/fv.py', params => '{"temperature": 4, "experiment": "Exp 2", "batch_size": 32}') AS r \gset
SELECT results_eq($$SELECT feature, value FROM lamin.run_values ORDER BY 1$$,
    $$VALUES ('experiment', '"Exp 2"'::jsonb), ('temperature', '4'::jsonb)$$, 'track stores the parameters that name features');
SELECT is((SELECT params ->> 'batch_size' FROM lamin.run WHERE uid = :'r'), '32', 'other parameters stay in run.params only');
SELECT lamin.finish();
SELECT throws_ok($$SELECT lamin.track('pipelines/fv2.py', params => '{"temperature": "cold"}')$$, '42804',
                 'run parameter ''temperature'' names a feature: feature ''temperature'' (dtype float): "cold" is not a number',
                 'a parameter that does not fit its feature is refused');
SELECT is((SELECT count(*)::int FROM lamin.transform WHERE key = 'pipelines/fv2.py'), 0, 'and no run was started');

-- describe shows the values of collections and runs.
SELECT is(lamin.describe(:'c') -> 'features', '{"dose": [2], "experiment": ["Exp 1"]}'::jsonb, 'describe(collection) lists its values');
SELECT is(lamin.describe(:'r') -> 'features', '{"experiment": ["Exp 2"], "temperature": [4]}'::jsonb, 'describe(run) lists its values');

-- A dtype change retypes the stored values, or is refused naming the misfit.
SELECT lamin.create_feature('lanes', 'int') IS NOT NULL;
SELECT lamin.add_values('artifact', :'b', '{"lanes": 3}');
UPDATE lamin.feature SET dtype = 'str' WHERE name = 'lanes';
SELECT is((SELECT value_text || '/' || coalesce(value_number::text, '-') FROM lamin.artifact_values WHERE artifact_uid = :'b' AND feature = 'lanes'),
          '3/-', 'int → str: the typed copy moves to value_text');
SELECT lamin.add_values('artifact', :'a', '{"lanes": "three"}');
SELECT throws_like($$UPDATE lamin.feature SET dtype = 'int' WHERE name = 'lanes'$$,
                   'feature ''lanes'': dtype int does not fit its stored values (%three%); nothing was changed',
                   'str → int with a value that is no number: refused');
SELECT is((SELECT dtype FROM lamin.feature WHERE name = 'lanes'), 'str', '… and the dtype stays');

-- Row-level security: values are seen and written with their record.
SELECT lamin.create_space('fv_private') IS NOT NULL;
CREATE ROLE fv_outsider IN ROLE lamin_reader;
CREATE ROLE fv_reader IN ROLE lamin_reader;
SELECT lamin.grant('fv_private', 'fv_reader', 'read');
UPDATE lamin.artifact SET space_id = lamin.space_id('fv_private') WHERE uid = :'a';
UPDATE lamin.collection SET space_id = lamin.space_id('fv_private') WHERE uid = :'c';
UPDATE lamin.run SET space_id = lamin.space_id('fv_private') WHERE uid = :'r';
SET ROLE fv_outsider;
SELECT is((SELECT count(*)::int FROM lamin.artifact_values WHERE artifact_uid = :'a') + (SELECT count(*)::int FROM lamin.collection_values)
          + (SELECT count(*)::int FROM lamin.run_values) + (SELECT count(*)::int FROM lamin.feature_values WHERE artifact_uid = :'a'), 0,
          'a role that cannot read the space sees none of its values');
SELECT throws_ok(format($$SELECT lamin.add_values('artifact', %L, '{"dose": 1}')$$, :'a'), 'P0002', format('no artifact with uid %L', :'a'),
                 'nor learns that the record exists when writing');
SELECT throws_ok(format($$SELECT lamin.remove_values('run', %L, 'temperature')$$, :'r'), 'P0002', format('no run with uid %L', :'r'),
                 'nor when removing');
RESET ROLE;
-- A dtype change meets a misfit in a space the writer cannot read: refused, the value not named.
CREATE ROLE fv_writer IN ROLE lamin_writer;
SELECT lamin.create_feature('depth', 'float') IS NOT NULL;
SELECT lamin.add_values('artifact', :'a', '{"depth": 3.5}');
SET ROLE fv_writer;
SELECT throws_matching($$UPDATE lamin.feature SET dtype = 'int' WHERE name = 'depth'$$,
                       '^feature ''depth'': dtype int does not fit a stored value of a record you cannot write; nothing was changed$',
                       'a misfit the writer cannot see refuses the change without naming it');
RESET ROLE;
SET ROLE fv_reader;
SELECT throws_like(format($$SELECT lamin.add_values('collection', %L, '{"dose": 1}')$$, :'c'),
                   'permission denied: writing feature values of collection % needs write in space ''fv_private''%', 'a reader is told it needs write');
RESET ROLE;

-- Many values in one statement: the one-value check locks each record's
-- row, not a slot of the shared lock table per value (an advisory lock per
-- record and feature ran out of them after a few thousand values).
SELECT lamin.create_feature('bulk_temperature', 'float') IS NOT NULL;
INSERT INTO lamin.artifact (storage_id, key, suffix, hash, hash_type, size)
SELECT lamin.storage_id(:'storage_uid'), 'bulk/' || i || '.parquet', '.parquet',
       encode(sha256(convert_to('fv bulk ' || i, 'UTF8')), 'hex'), 'sha256', 10
FROM generate_series(1, 10000) i;
SELECT lives_ok($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value)
                  SELECT a.id, lamin.feature_id('bulk_temperature'), to_jsonb(a.id % 100)
                  FROM lamin.artifact a WHERE a.key LIKE 'bulk/%'$$,
                'one statement writes 10,000 values through the typing trigger');
SELECT is((SELECT count(*)::int FROM lamin.artifact_values WHERE feature = 'bulk_temperature' AND value_number >= 0), 10000,
          'and every one is typed');
SELECT lives_ok($$UPDATE lamin.feature SET dtype = 'num' WHERE name = 'bulk_temperature'$$,
                'a dtype change retypes 10,000 values in one statement');

SELECT * FROM finish();
ROLLBACK;
