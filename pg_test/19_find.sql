-- lamin.find_artifacts: artifacts by feature values and labels (a term and
-- everything below it), lamin.annotated_artifact_ids (lamin ls --label and
-- --feature name=value), the errors of a bad filter, the trash, and
-- row-level security (nobody finds an artifact of a space they cannot read).
-- Also the link policies: one per writing command, so that reading a link
-- checks its owner once.
BEGIN;
SELECT plan(51);

SELECT lamin.add_storage('/tmp/lamin-pgtap-find') AS storage_uid \gset
SELECT lamin.create_feature('temperature', 'float'), lamin.create_feature('n_cells', 'int'),
       lamin.create_feature('assay', 'str'), lamin.create_feature('tags', 'list[str]'),
       lamin.create_feature('measured_on', 'date'), lamin.create_feature('ok', 'bool'),
       lamin.create_feature('meta', 'dict'), lamin.create_feature('cell_type', 'cat[bionty.cell_type]'),
       lamin.create_feature('experiment', 'cat'), lamin.create_feature('cell_type_id', 'cat[bionty.cell_type.ontology_id]');
-- A small hierarchy: cell > T cell > CD4 T cell, CD8 T cell; cell > B cell.
INSERT INTO bionty.cell_type (name, ontology_id) VALUES
    ('find cell', 'CL:9100000'), ('find T cell', 'CL:9100001'), ('find CD4 T cell', 'CL:9100002'),
    ('find CD8 T cell', 'CL:9100003'), ('find B cell', 'CL:9100004');
INSERT INTO bionty.cell_type_parent (child_id, parent_id)
SELECT c.id, p.id FROM (VALUES ('CL:9100001', 'CL:9100000'), ('CL:9100002', 'CL:9100001'),
                               ('CL:9100003', 'CL:9100001'), ('CL:9100004', 'CL:9100000')) e(c, p)
JOIN bionty.cell_type c ON c.ontology_id = e.c JOIN bionty.cell_type p ON p.ontology_id = e.p;
INSERT INTO lamin.ulabel (name) VALUES ('Exp A'), ('Exp B'), ('Exp A.1');
INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
SELECT c.id, p.id FROM lamin.ulabel c, lamin.ulabel p WHERE c.name = 'Exp A.1' AND p.name = 'Exp A';

SELECT lamin.save_artifact(encode(sha256('find 1'), 'hex'), 10, key => 'find/1.parquet') AS a1 \gset
SELECT lamin.save_artifact(encode(sha256('find 2'), 'hex'), 10, key => 'find/2.parquet') AS a2 \gset
SELECT lamin.save_artifact(encode(sha256('find 3'), 'hex'), 10, key => 'find/3.parquet') AS a3 \gset
SELECT lamin.save_artifact(encode(sha256('find 4'), 'hex'), 10, key => 'find/4.parquet') AS a4 \gset
SELECT lamin.add_values('artifact', :'a1', '{"temperature": 21.5, "n_cells": 1000, "assay": "10x", "tags": ["qc", "raw"],
    "measured_on": "2024-05-01", "ok": true, "cell_type": ["find CD4 T cell"], "experiment": "Exp A.1"}');
SELECT lamin.add_values('artifact', :'a2', '{"temperature": 37.0, "n_cells": 5000, "assay": "smart-seq", "tags": ["raw"],
    "measured_on": "2024-06-01", "ok": false, "cell_type": ["find B cell", "find CD8 T cell"], "experiment": "Exp B"}');
SELECT lamin.add_values('artifact', :'a3', '{"temperature": 37.5, "n_cells": 20, "assay": "10x", "cell_type": ["find B cell"]}');
SELECT lamin.add_values('artifact', :'a4', '{"temperature": 40}');

CREATE FUNCTION pg_temp.found(filters text) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(a.key ORDER BY a.key), '{}') FROM lamin.find_artifacts(filters::jsonb) a
$$;

-- Values: each operator, several conditions, several operators on one feature.
SELECT is(pg_temp.found('{"temperature": {">": 30}}'), ARRAY['find/2.parquet', 'find/3.parquet', 'find/4.parquet'], '> on a float');
SELECT is(pg_temp.found('{"temperature": {">=": 37, "<": 40}}'), ARRAY['find/2.parquet', 'find/3.parquet'], 'two operators on one feature: both hold');
SELECT is(pg_temp.found('{"temperature": {"in": [21.5, 37, 40], "<": 39, ">": 30}}'), ARRAY['find/2.parquet'],
    'a list and two bounds on one feature: all hold (one scan, each operand in its place)');
SELECT is(pg_temp.found('{"temperature": 37}'), ARRAY['find/2.parquet'], 'a bare value is equality');
SELECT is(pg_temp.found('{"n_cells": {"<=": 1000}}'), ARRAY['find/1.parquet', 'find/3.parquet'], '<= on an int');
SELECT is(pg_temp.found('{"n_cells": {">": 999.5}}'), ARRAY['find/1.parquet', 'find/2.parquet'], 'an int compared with a fraction');
SELECT is(pg_temp.found('{"assay": ["10x", "plate"]}'), ARRAY['find/1.parquet', 'find/3.parquet'], 'a bare list is membership');
SELECT is(pg_temp.found('{"tags": "raw"}'), ARRAY['find/1.parquet', 'find/2.parquet'], 'a list feature: has the element');
SELECT is(pg_temp.found('{"measured_on": {"<": "2024-05-15"}}'), ARRAY['find/1.parquet'], 'dates compare as dates');
SELECT is(pg_temp.found('{"ok": false}'), ARRAY['find/2.parquet'], 'booleans');
SELECT is(pg_temp.found('{"temperature": {">": 30}, "assay": "10x"}'), ARRAY['find/3.parquet'], 'conditions on two features: both hold');
SELECT is(pg_temp.found('{"temperature": {">": 100}}'), '{}'::text[], 'nothing matches: no rows');
SELECT is((SELECT count(*) FROM lamin.find_artifacts('{"temperature": {">": 30}}', max_rows => 2)), 2::bigint,
    'max_rows: at most that many of the matches');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"temperature": {">": 30}}', max_rows => -1)$$,
    'find_artifacts: max_rows is a number of artifacts%', 'a negative max_rows is refused');

-- Labels: a name, a list of names, a term and everything below it.
SELECT is(pg_temp.found('{"cell_type": "find B cell"}'), ARRAY['find/2.parquet', 'find/3.parquet'], 'a label by name');
SELECT is(pg_temp.found('{"cell_type": {"under": "CL:9100001"}}'), ARRAY['find/1.parquet', 'find/2.parquet'],
          'under: the term and every term below it (by ontology id)');
SELECT is(pg_temp.found('{"cell_type": {"under": "find cell"}}'), ARRAY['find/1.parquet', 'find/2.parquet', 'find/3.parquet'],
          'under, by name, from the root');
SELECT is(pg_temp.found('{"cell_type": {"under": "CL:9100003"}}'), ARRAY['find/2.parquet'], 'under a leaf: the leaf');
SELECT is(pg_temp.found('{"experiment": {"under": "Exp A"}}'), ARRAY['find/1.parquet'], 'under works for ulabels too');
SELECT is(pg_temp.found('{"temperature": {">": 30}, "cell_type": {"under": "CL:9100001"}}'), ARRAY['find/2.parquet'],
          'the benchmark''s question: a value range and a subtree');
SELECT is(pg_temp.found('{"cell_type": "no such cell"}'), '{}'::text[], 'a label no record has: no rows');

-- lamin.annotated_artifact_ids: a label of any registry by name; through a
-- feature, its labels and its typed values (compared as the dtype compares).
CREATE FUNCTION pg_temp.annotated(val text, feature text DEFAULT NULL) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(a.key ORDER BY a.key), '{}') FROM lamin.artifact a
    WHERE a.id IN (SELECT lamin.annotated_artifact_ids(val, feature))
$$;
-- The same name in a second registry, on an artifact that has it already.
INSERT INTO lamin.ulabel (name) VALUES ('find B cell');
INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id)
SELECT a.id, u.id FROM lamin.artifact a, lamin.ulabel u WHERE a.uid = :'a2' AND u.name = 'find B cell';
SELECT is(pg_temp.annotated('find B cell'), ARRAY['find/2.parquet', 'find/3.parquet'], 'a label by name, whatever its registry');
SELECT is((SELECT count(*) FROM lamin.annotated_artifact_ids('find B cell')), 2::bigint,
          'an artifact with the name in two registries comes once');
SELECT is(pg_temp.annotated('Exp B'), ARRAY['find/2.parquet'], 'a ulabel by name');
SELECT is(pg_temp.annotated('Exp A.1', 'experiment'), ARRAY['find/1.parquet'], 'a label through its feature');
SELECT is(pg_temp.annotated('find B cell', 'experiment'), '{}'::text[], 'a label not through that feature: none');
SELECT is(pg_temp.annotated('37', 'temperature'), ARRAY['find/2.parquet'], 'a number given as text finds the number (37 = 37.0)');
SELECT is(pg_temp.annotated('10x', 'assay'), ARRAY['find/1.parquet', 'find/3.parquet'], 'a string value');
SELECT is(pg_temp.annotated('2024-06-01', 'measured_on'), ARRAY['find/2.parquet'], 'a date value');
SELECT is(pg_temp.annotated('true', 'ok'), ARRAY['find/1.parquet'], 'a boolean value');
SELECT is(pg_temp.annotated('warm', 'temperature'), '{}'::text[], 'a value that does not fit the dtype finds none');
SELECT throws_like($$SELECT lamin.annotated_artifact_ids('x', 'nope')$$, 'no feature named "nope"', 'an unknown feature is named');

-- The trash.
SELECT lamin.delete(:'a3');
SELECT is(pg_temp.found('{"assay": "10x"}'), ARRAY['find/1.parquet'], 'an artifact in the trash is not found');

-- Bad filters: clear errors.
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('[1]')$$, 'find_artifacts: filters are a JSON object%', 'filters must be an object');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"nope": 1}')$$, 'unknown feature ''nope''', 'an unknown feature is named');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"temperature": {"~": 1}}')$$,
                   '%unknown operator ''~''%', 'an unknown operator is named');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"temperature": {">": "warm"}}')$$,
                   '%feature ''temperature'' (dtype float): "warm" is no float to compare with%', 'an operand that does not fit the dtype is named');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"meta": {"=": 1}}')$$, '%feature ''meta'' (dtype dict) cannot be compared%',
                   'a dict cannot be compared');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"cell_type": {"under": "CL:0000000"}}')$$,
                   '%bionty.cell_type holds no record ''CL:0000000''%', 'an unknown term is named');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"temperature": {"in": []}}')$$, '%"in" takes a non-empty list%', 'in needs a list');
SELECT throws_like($$SELECT * FROM lamin.find_artifacts('{"temperature": null}')$$, '%NULL is no value to compare with%', 'NULL is refused');

-- The comparison rules both functions share: an operand as the text of its typed column.
SELECT is(lamin.comparable_value('int', '"3"'), '3', 'comparable_value: a number written as a string fits an int');
SELECT is(lamin.comparable_value('int', '2.5'), '2.5', 'comparable_value: an int feature is compared as a number, 2.5 included');
SELECT is(lamin.comparable_value('float', '"warm"'), NULL, 'comparable_value: NULL for what does not fit');
SELECT is(lamin.comparable_value('dict', '{"a": 1}'), NULL, 'comparable_value: NULL for a dtype without a typed column');
SELECT is(ARRAY[lamin.value_column_type('value_number'), lamin.value_column_type('value_date'), lamin.value_column_type('value')],
          ARRAY['double precision', 'date', NULL], 'value_column_type: the SQL type of each typed column, NULL for others');

-- Row-level security: a role that cannot read a space finds none of its artifacts.
SELECT lamin.create_space('find_private') IS NOT NULL;
UPDATE lamin.artifact SET space_id = lamin.space_id('find_private') WHERE uid = :'a2';
CREATE ROLE find_outsider IN ROLE lamin_reader;
SET ROLE find_outsider;
SELECT is(pg_temp.found('{"temperature": {">": 30}}'), ARRAY['find/4.parquet'], 'an outsider finds only what it can read');
SELECT is(pg_temp.found('{"cell_type": {"under": "CL:9100001"}}'), ARRAY['find/1.parquet'], 'labels too');
SELECT is((SELECT array_agg(x) FROM lamin.annotated_artifact_ids('find B cell') x)
          = ARRAY(SELECT id FROM lamin.artifact WHERE key = 'find/3.parquet'), true,
          'annotated_artifact_ids: an outsider learns of no artifact it cannot read');
RESET ROLE;

-- Link policies: link_read for reading, one policy per writing command.
SELECT is((SELECT array_agg(polname::text ORDER BY polname) FROM pg_policy WHERE polrelid = 'bionty.artifact_cell_type'::regclass),
          ARRAY['link_delete', 'link_insert', 'link_read', 'link_update'], 'a link table has a reading policy and one per writing command');
SELECT is((SELECT count(*)::int FROM pg_policy WHERE polname = 'link_write' OR (polname LIKE 'link_%' AND polcmd = '*')), 0,
          'no link policy applies to every command (it would be checked on reads too)');

SELECT * FROM finish();
ROLLBACK;
