-- Projects, references and records (sheets): types, parents, links, typed
-- values, record types constrained by a schema, search, audit, track's
-- project, and row-level security (a role that cannot read a space learns
-- nothing of its projects, references or records).
BEGIN;
SELECT plan(55);

SELECT lamin.add_storage('/tmp/lamin-pgtap-records') AS storage_uid \gset
SELECT lamin.save_artifact(encode(sha256('rec a'), 'hex'), 10, key => 'rec/a.parquet') AS a \gset
SELECT lamin.save_collection('rec/coll', ARRAY[:'a']) AS c \gset

-- == projects ==
INSERT INTO lamin.project (name, is_type) VALUES ('Grant', true);
INSERT INTO lamin.project (name, abbr, type_id, start_date) VALUES ('Cell Atlas', 'ATL', (SELECT id FROM lamin.project WHERE name = 'Grant'), '2025-01-01');
INSERT INTO lamin.project (name) VALUES ('Atlas pilot');
SELECT matches((SELECT uid FROM lamin.project WHERE name = 'Cell Atlas'), '^[0-9A-Za-z]{12}$', 'a project gets a 12-character uid');
SELECT throws_like($$INSERT INTO lamin.project (name, type_id) VALUES ('x', (SELECT id FROM lamin.project WHERE name = 'Atlas pilot'))$$,
    '%its type ''Atlas pilot'' is not a type%', 'a project''s type must be a type');
SELECT throws_like($$INSERT INTO lamin.project (name, start_date, end_date) VALUES ('backwards', '2025-02-01', '2025-01-01')$$,
    '%project_dates_in_order%', 'a project does not end before it starts');
INSERT INTO lamin.project_parent (project_id, parent_id)
SELECT c.id, p.id FROM lamin.project c, lamin.project p WHERE c.name = 'Atlas pilot' AND p.name = 'Cell Atlas';
SELECT throws_like($$INSERT INTO lamin.project_parent (project_id, parent_id)
                     SELECT c.id, p.id FROM lamin.project c, lamin.project p WHERE c.name = 'Cell Atlas' AND p.name = 'Atlas pilot'$$,
    '%would form a cycle%', 'project parents do not form a cycle');
SELECT throws_like($$INSERT INTO lamin.project (name) VALUES ('cell  atlas')$$, '%already exists%',
    'the guard refuses a project name that differs only in case and blanks');
SELECT is((SELECT name FROM lamin.search('ATL', 'lamin.project') LIMIT 1), 'Cell Atlas', 'projects are found by their abbreviation');
SELECT ok(EXISTS (SELECT FROM lamin.audit WHERE registry = 'lamin.project' AND operation = 'insert'
                  AND uid = (SELECT uid FROM lamin.project WHERE name = 'Cell Atlas')), 'creating a project is audited');

-- Links to a project, by uid or name, all or nothing.
SELECT is(lamin.link('artifact', ARRAY[:'a'], 'project', 'Cell Atlas'), 1, 'lamin.link links an artifact to a project by name');
SELECT is(lamin.link('artifact', ARRAY[:'a'], 'project', 'Cell Atlas'), 0, 'linking again changes nothing');
SELECT is(lamin.link('collection', ARRAY[:'c'], 'project', (SELECT uid FROM lamin.project WHERE name = 'Cell Atlas')), 1,
    'a collection is linked by the project''s uid');
SELECT throws_like(format($$SELECT lamin.link('artifact', ARRAY[%L, 'nosuchuid0000000'], 'project', 'Cell Atlas')$$, :'a'),
    '%nosuchuid0000000%', 'a uid that names nothing fails the whole call');
SELECT throws_like($$SELECT lamin.link('artifact', ARRAY['x'], 'ulabel', 'x')$$, '%cannot link a artifact to a ulabel%',
    'only projects, references and records are link targets');
SELECT throws_like($$SELECT lamin.link('artifact', ARRAY['x'], 'project', 'No such project')$$, 'no project ''No such project''',
    'an unknown project is named');

-- == references ==
INSERT INTO lamin.reference (name, abbr, doi, date) VALUES ('A cell atlas of the lung', 'Lung 2024', 'https://doi.org/10.1038/s41586-024-0001-x', '2024-03-01');
SELECT throws_like($$INSERT INTO lamin.reference (name, doi) VALUES ('bad', 'not a doi')$$, '%reference_doi_format%',
    'a reference''s doi must look like a DOI');
SELECT is((SELECT name FROM lamin.search('10.1038/s41586-024-0001-x', 'lamin.reference') LIMIT 1), 'A cell atlas of the lung',
    'references are found by their DOI');
SELECT is(lamin.link('project', ARRAY[(SELECT uid FROM lamin.project WHERE name = 'Cell Atlas')], 'reference',
    'A cell atlas of the lung'), 1, 'a project cites a reference');

-- == typed values on projects and references ==
SELECT lamin.create_feature('budget_eur', 'int'), lamin.create_feature('donor_age', 'int'),
       lamin.create_feature('sex', 'cat'), lamin.create_feature('notes', 'str'), lamin.create_feature('donor', 'cat[lamin.record]');
INSERT INTO lamin.ulabel (name) VALUES ('female'), ('male');
SELECT is(lamin.add_values('project', 'Cell Atlas', '{"budget_eur": 250000}'), 1, 'a project holds typed values');
SELECT is((SELECT value_number FROM lamin.project_feature_value), 250000::float8, 'typed into value_number');
SELECT throws_like($$SELECT lamin.add_values('reference', 'A cell atlas of the lung', '{"budget_eur": "lots"}')$$,
    '%is not an integer%', 'a reference''s value must fit the feature''s dtype');

-- == records: a sheet of donors constrained by a schema ==
SELECT lamin.create_schema(ARRAY['donor_age', 'sex', 'notes'], name => 'donor sheet', optionals => ARRAY['notes']) AS donor_schema \gset
INSERT INTO lamin.record (name, is_type, schema_id) VALUES ('Donor', true, lamin.schema_id('donor sheet'));
INSERT INTO lamin.record (name, is_type) VALUES ('Sample', true);
INSERT INTO lamin.record (name, type_id) SELECT n, (SELECT id FROM lamin.record WHERE name = 'Donor') FROM unnest(ARRAY['D1', 'D2']) n;
SELECT matches((SELECT uid FROM lamin.record WHERE name = 'D1'), '^[0-9A-Za-z]{16}$', 'a record gets a 16-character uid');
SELECT is(lamin.add_values('record', 'D1', '{"donor_age": 54, "sex": "female"}'), 2, 'a donor gets its values');
SELECT throws_like($$SELECT lamin.add_values('record', 'D2', '{"budget_eur": 3}')$$,
    '%feature ''budget_eur'' is not in the schema of record type ''Donor''%', 'a record holds only the features of its type''s schema');
SELECT throws_like($$SELECT lamin.add_values('record', 'D2', '{"sex": "divers"}')$$, '%''divers'' is not in lamin.ulabel%',
    'a categorical value of a record must be in its registry');
SELECT throws_like($$SELECT lamin.add_values('record', 'D2', '{"donor_age": "old"}')$$, '%is not an integer%',
    'a record''s value must fit its dtype');
-- Required features are checked at commit (here: made immediate).
SELECT lamin.add_values('record', 'D2', '{"sex": "male"}');
SELECT throws_like($$SET CONSTRAINTS lamin.record_complete IMMEDIATE$$, '%record ''D2'' of type ''Donor'' lacks required feature(s) donor_age%',
    'a record with values holds every feature its type requires, by commit');
SET CONSTRAINTS lamin.record_complete DEFERRED;
SELECT lamin.add_values('record', 'D2', '{"donor_age": 61}');
SELECT lives_ok($$SET CONSTRAINTS lamin.record_complete IMMEDIATE$$, 'complete records pass');
SET CONSTRAINTS lamin.record_complete DEFERRED;
SELECT throws_like($$INSERT INTO lamin.record (name, is_type, type_id) VALUES ('Sub', true, (SELECT id FROM lamin.record WHERE name = 'Donor'))$$,
    '%type ''Donor'' has a schema, so it holds records, not record types%', 'a record type with a schema has no sub-types');
SELECT throws_like($$INSERT INTO lamin.record (name, schema_id) VALUES ('loose', (SELECT id FROM lamin.schema WHERE name = 'donor sheet'))$$,
    '%record_schema_on_types%', 'only record types have a schema');
SELECT throws_like($$INSERT INTO lamin.record (name, type_id) VALUES ('D1', (SELECT id FROM lamin.record WHERE name = 'Donor'))$$,
    '%record_name_in_type%', 'a record name is unique within its type');
INSERT INTO lamin.record (name, type_id) VALUES ('D1', (SELECT id FROM lamin.record WHERE name = 'Sample'));
SELECT throws_like($$SELECT lamin.entity_id('record', 'D1')$$, '%record name ''D1'' is shared by several records%',
    'a name shared by records of two types is refused, with the uids to choose from');
SELECT results_eq($$SELECT feature, value FROM lamin.record_values WHERE record_name = 'D1' ORDER BY feature$$,
    $$VALUES ('donor_age', '54'::jsonb), ('sex', '"female"'::jsonb)$$, 'lamin.record_values lists a record''s values');

-- Sheets in bulk: lamin.import_records (the CLI's records import), record_columns, record_rows.
SELECT results_eq($$SELECT name, created FROM lamin.import_records('Donor', '[{"name": "D3", "donor_age": 40, "sex": "male"},
                                                                           {"name": "D1", "donor_age": 55}]')$$,
    $$VALUES ('D3', true), ('D1', false)$$, 'import_records creates new records and updates known ones by name');
SELECT is((SELECT value FROM lamin.record_values WHERE record_name = 'D1' AND record_type = 'Donor' AND feature = 'donor_age'), '55'::jsonb,
    'an update replaces the values of the features a row gives');
SELECT is((SELECT "values" FROM lamin.record_rows('Donor') WHERE name = 'D1'), '{"donor_age": 55, "sex": "female"}'::jsonb,
    'record_rows gives each record''s values as one object');
SELECT results_eq($$SELECT feature FROM lamin.record_columns('Donor')$$, $$VALUES ('donor_age'), ('sex'), ('notes')$$,
    'record_columns lists the schema''s features in order');
SELECT throws_like($$SELECT lamin.import_records('Donor', '[{"name": "D4", "donor_age": 1, "sex": "male"}, {"name": "D5", "donor_age": "x"}]')$$,
    'import_records: row 2: feature ''donor_age'' (dtype int): "x" is not an integer%', 'a misfit names its row; nothing is imported');
SELECT is((SELECT count(*)::int FROM lamin.record WHERE name = 'D4'), 0, 'not even the rows before it');
SELECT throws_like($$SELECT lamin.import_records('D2', '[]')$$, 'record ''D2'' is not a record type', 'only record types take rows');

-- An artifact annotated with a record (cat[lamin.record]) and a project.
SELECT is(lamin.annotate(:'a', 'donor', ARRAY['D2']), 1, 'an artifact is annotated with a record through cat[lamin.record]');
SELECT is((SELECT r.name FROM lamin.artifact_record l JOIN lamin.record r ON r.id = l.record_id), 'D2', 'the link names the record');

-- describe, annotations, trash.
SELECT lamin.describe(uid) AS d2 FROM lamin.record WHERE name = 'D2' AND type_id = (SELECT id FROM lamin.record WHERE name = 'Donor') \gset
SELECT is(jsonb_build_object('kind', :'d2'::jsonb ->> 'record_kind', 'type', :'d2'::jsonb ->> 'type', 'features', :'d2'::jsonb -> 'features'),
    '{"kind": "record", "type": "Donor", "features": {"donor_age": [61], "sex": ["male"]}}'::jsonb,
    'lamin.describe shows a record with its type and values');
SELECT is(lamin.describe((SELECT uid FROM lamin.project WHERE name = 'Cell Atlas')) -> 'links',
    '{"artifacts": 1, "collections": 1, "transforms": 0, "runs": 0, "records": 0}'::jsonb, 'a project''s description counts what links to it');
SELECT results_eq(format($$SELECT registry, name FROM lamin.annotations WHERE artifact_uid = %L ORDER BY 1, 2$$, :'a'),
    $$VALUES ('lamin.project', 'Cell Atlas'), ('lamin.record', 'D2')$$, 'lamin.annotations lists projects and records');
SELECT ok(lamin.describe(:'a') -> 'labels' @> '[{"registry": "lamin.record", "name": "D2", "feature": "donor"}]',
    'an artifact''s description lists the record it is annotated with');
SELECT lamin.delete((SELECT uid FROM lamin.project WHERE name = 'Atlas pilot'));
SELECT is((SELECT branch_id FROM lamin.project WHERE name = 'Atlas pilot'), -1::smallint, 'lamin.delete trashes a project');
SELECT lamin.restore((SELECT uid FROM lamin.project WHERE name = 'Atlas pilot'));

-- lamin.track(..., project => ...) links the run, its transform and what it saves.
SELECT lamin.track('pipelines/atlas.py', project => 'Cell Atlas') AS run \gset
SELECT lamin.save_artifact(encode(sha256('rec made'), 'hex'), 10, key => 'rec/made.parquet') AS made \gset
INSERT INTO lamin.record (name, type_id) VALUES ('S1', (SELECT id FROM lamin.record WHERE name = 'Sample'));
SELECT is((SELECT count(*)::int FROM lamin.run_project l JOIN lamin.run r ON r.id = l.run_id WHERE r.uid = :'run'), 1, 'the run is in the project');
SELECT is((SELECT count(*)::int FROM lamin.transform_project l JOIN lamin.transform t ON t.id = l.transform_id WHERE t.key = 'pipelines/atlas.py'), 1,
    'its transform is in the project');
SELECT is((SELECT count(*)::int FROM lamin.artifact_project l WHERE l.artifact_id = lamin.artifact_id(:'made')), 1,
    'an artifact the run saves is in the project');
SELECT is((SELECT count(*)::int FROM lamin.record_project l JOIN lamin.record r ON r.id = l.record_id WHERE r.name = 'S1'), 1,
    'a record made in the run is in the project, and remembers the run');
SELECT lamin.finish();

-- == row-level security ==
SELECT lamin.create_space('rec_private');
SELECT lamin.use_space('rec_private');
INSERT INTO lamin.project (name) VALUES ('Secret project');
INSERT INTO lamin.record (name, type_id) VALUES ('Secret donor', (SELECT id FROM lamin.record WHERE name = 'Sample'));
SELECT lamin.add_values('project', 'Secret project', '{"budget_eur": 7}');
SELECT lamin.link('artifact', ARRAY[:'a'], 'project', 'Secret project');
SELECT lamin.use_space('all');
CREATE ROLE rec_outsider IN ROLE lamin_writer;
SET ROLE rec_outsider;
SELECT is((SELECT count(*)::int FROM lamin.project WHERE name LIKE 'Secret%'), 0, 'an outsider sees no project of a space it cannot read');
SELECT is((SELECT count(*)::int FROM lamin.project_feature_value), 1, 'nor its values');
SELECT is((SELECT count(*)::int FROM lamin.artifact_project), 2, 'nor its links');
SELECT is((SELECT count(*)::int FROM lamin.search('Secret', 'lamin.record')), 0, 'nor finds its records by search');
SELECT throws_like($$SELECT lamin.link('artifact', ARRAY['x'], 'project', 'Secret project')$$, 'no project ''Secret project''',
    'naming it is "no such project", as for one that does not exist');
SELECT lives_ok($$INSERT INTO lamin.project (name) VALUES ('Secret project')$$,
    'the outsider may use the name in its own space (names are unique per space)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
