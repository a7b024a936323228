-- Schemas that validate datasets (issue 17): the dtype grammar, schemas
-- (sets, optionals, itype, composites) idempotent by their definition, the
-- verdict on a dataset's facts, recording it (schema and labels for a
-- passing artifact), the job, and row-level security on the reports.
BEGIN;
SELECT plan(60);

SELECT lamin.add_storage('/tmp/lamin-pgtap-validation');
INSERT INTO bionty.cell_type (name, ontology_id, synonyms) VALUES
    ('T cell', 'CL:0000084', '{T-cell,T lymphocyte}'), ('B cell', 'CL:0000236', '{B-cell,B lymphocyte}'),
    ('CD8-positive, alpha-beta T cell', 'CL:0000625', '{CD8-positive, alpha-beta T-cell}');
INSERT INTO bionty.gene (symbol, ensembl_gene_id, organism) VALUES
    ('CD8A', 'ENSG00000153563', 'human'), ('CD4', 'ENSG00000010610', 'human'), ('CD14', 'ENSG00000170458', 'human');
INSERT INTO lamin.ulabel (name) VALUES ('DMSO'), ('IFNG');

-- The dtype grammar.
SELECT lives_ok($$SELECT lamin.create_feature('gene', 'cat[bionty.gene.ensembl_gene_id]')$$, 'cat[schema.table.field] is a dtype');
SELECT lives_ok($$SELECT lamin.create_feature('tissues', 'list[cat[bionty.tissue]]')$$, 'list[cat[...]] is a dtype');
SELECT throws_like($$SELECT lamin.create_feature('bad', 'list[list[int]]')$$, '%unknown dtype ''list[list[int]]''%', 'lists of lists are not');
SELECT throws_like($$SELECT lamin.create_feature('bad', 'cat[bionty.gene.ensembl]')$$,
                   '%names field ''ensembl'', which bionty.gene does not have%', 'a field the registry lacks is named');
SELECT is(ARRAY[lamin.dtype_registry('list[cat[bionty.gene.symbol]]'), lamin.dtype_field('cat[bionty.gene.symbol]'),
                lamin.dtype_base('list[int]'), lamin.dtype_base('cat[bionty.cell_type]'), lamin.dtype_field('cat[bionty.cell_type]')],
          ARRAY['bionty.gene', 'symbol', 'int', 'cat', NULL], 'dtype_registry, dtype_field and dtype_base read the grammar');

SELECT lamin.create_feature('perturbation', 'cat');
SELECT lamin.create_feature('cell_type', 'cat[bionty.cell_type]');
SELECT lamin.create_feature('donor', 'str', nullable => false);
SELECT lamin.create_feature('treatment_time_h', 'int');
SELECT lamin.create_feature('dose', 'float', coerce => true);

-- Schemas: idempotent by definition; the 0.5.0 hash for members only.
SELECT lamin.create_schema(ARRAY['perturbation', 'cell_type', 'donor', 'treatment_time_h'], name => 'cells',
                           optionals => ARRAY['treatment_time_h']) AS cells \gset
SELECT is(lamin.create_schema(ARRAY['perturbation', 'cell_type', 'donor', 'treatment_time_h'], name => 'cells',
                              optionals => ARRAY['treatment_time_h']), :'cells', 'the same definition is the same schema');
SELECT isnt(lamin.create_schema(ARRAY['perturbation', 'cell_type', 'donor', 'treatment_time_h'], name => 'strict cells',
                                maximal_set => true), :'cells', 'another definition (maximal set, no optionals) is another schema');
SELECT lamin.create_schema(ARRAY['donor', 'dose']) AS plain \gset
SELECT is((SELECT hash FROM lamin.schema WHERE uid = :'plain'),
          encode(sha256(convert_to('set:' || (SELECT string_agg(uid, ',' ORDER BY uid) FROM lamin.feature WHERE name IN ('donor', 'dose')), 'UTF8')), 'hex'),
          'a schema of members only keeps the hash of 0.5.0');
SELECT is(lamin.create_schema(ARRAY['donor', 'dose'], name => 'named later'), :'plain', 'naming a definition returns its schema');
SELECT is((SELECT name FROM lamin.schema WHERE uid = :'plain'), 'named later',
          'a name given to an unnamed schema''s definition is recorded');
SELECT is((SELECT array_agg(f.name || ':' || sf.optional ORDER BY sf.position) FROM lamin.schema_feature sf
           JOIN lamin.feature f ON f.id = sf.feature_id WHERE sf.schema_id = lamin.schema_id(:'cells')),
          ARRAY['perturbation:false', 'cell_type:false', 'donor:false', 'treatment_time_h:true'], 'members keep their order and optional flag');
SELECT throws_like($$SELECT lamin.create_schema(ARRAY['donor'], optionals => ARRAY['dose'])$$,
                   '%optionals not among the features: ''dose''%', 'optionals must be members');
SELECT throws_like($$SELECT lamin.create_schema(ARRAY['donor'], otype => 'Matrix')$$, '%unknown otype ''Matrix''%', 'otypes are checked');
SELECT throws_like($$SELECT lamin.create_schema(itype => 'bionty.nothing')$$, '%itype ''bionty.nothing'' names no registry%',
                   'an itype names a registry');
SELECT throws_like($$SELECT lamin.create_schema(ARRAY['donor'], slots => '{"obs": "cells"}')$$,
                   '%slots and features (or itype) exclude each other%', 'a composite has no features of its own');
SELECT lamin.create_schema(itype => 'bionty.gene.ensembl_gene_id', name => 'genes') AS genes \gset
SELECT lamin.create_schema(name => 'scrna', otype => 'AnnData', slots => '{"obs": "cells", "var.T": "genes"}') AS scrna \gset
SELECT is(lamin.create_schema(name => 'scrna', otype => 'AnnData', slots => jsonb_build_object('obs', :'cells', 'var.T', 'genes')),
          :'scrna', 'slots named by uid or name make the same composite');
SELECT is((SELECT array_agg(c.slot || '=' || s.uid ORDER BY c.slot) FROM lamin.schema_component c JOIN lamin.schema s ON s.id = c.component_id
           WHERE c.composite_id = lamin.schema_id('scrna')),
          ARRAY['obs=' || :'cells', 'var.T=' || :'genes'], 'a composite lists its slots');

-- Naming a schema.
SELECT throws_like($$SELECT lamin.schema_id('nope')$$, '%unknown schema ''nope''%', 'an unknown schema is named');
SELECT lamin.create_schema(ARRAY['dose'], name => 'twin') IS NOT NULL AS a, lamin.create_schema(ARRAY['dose', 'donor'], name => 'twin', ordered => true) IS NOT NULL AS b;
SELECT throws_like($$SELECT lamin.schema_id('twin')$$, '%schema name ''twin'' is shared by several schemas%', 'a shared name asks for a uid');

-- The definition validation reads.
SELECT is(lamin.schema_definition('cells', 'AnnData') #>> '{slots,0,slot}', 'obs', 'a schema without slots applies to obs of an AnnData');
SELECT is(lamin.schema_definition('cells', 'DataFrame') #>> '{slots,0,slot}', 'columns', '… and to the columns of a table');
SELECT is((SELECT array_agg(x ->> 'name' || ':' || (x ->> 'required') || ':' || coalesce(x ->> 'field', '-') ORDER BY o)
           FROM jsonb_array_elements(lamin.schema_definition('cells') #> '{slots,0,features}') WITH ORDINALITY AS e(x, o)),
          ARRAY['perturbation:true:name', 'cell_type:true:name', 'donor:true:-', 'treatment_time_h:false:-'],
          'features come with required flags and the fields their values match on');
SELECT is((lamin.schema_definition('scrna') #> '{slots,1}'::text[]) - 'features'::text - 'schema'::text,
          '{"slot": "var.T", "frame": "var", "members": "index", "itype": "bionty.gene.ensembl_gene_id", "registry": "bionty.gene",
            "field": "ensembl_gene_id", "minimal_set": true, "maximal_set": false, "ordered": false, "coerce": false}'::jsonb,
          'a var.T slot reads the var index against a registry field');

-- Verdicts on facts.
CREATE TEMP TABLE facts AS SELECT '{"otype": "AnnData", "frames": {
    "obs": {"n_rows": 3, "columns": [
        {"name": "perturbation", "dtype": "cat", "n_null": 0, "values": {"DMSO": 2, "IFNG": 1}},
        {"name": "cell_type", "dtype": "cat", "n_null": 0, "values": {"B cell": 1, "T cell": 2}},
        {"name": "donor", "dtype": "str", "n_null": 0, "whole": false, "numeric": false},
        {"name": "sample_note", "dtype": "str"}]},
    "var": {"n_rows": 2, "columns": [], "index": ["ENSG00000153563", "ENSG00000010610"]}}}'::jsonb AS good;
GRANT SELECT ON facts TO PUBLIC;
SELECT is(lamin.validation_verdict('scrna', (SELECT good FROM facts)) -> 'passed', 'true'::jsonb,
          'a dataset meeting the schema passes (an optional column missing, an extra one allowed)');
SELECT is(lamin.validation_verdict('scrna', (SELECT good FROM facts)) -> 'labels',
          '[{"feature": "perturbation", "field": "name", "values": ["DMSO", "IFNG"]}, {"feature": "cell_type", "field": "name", "values": ["B cell", "T cell"]}]'::jsonb,
          '… and names the labels its categorical columns hold');
CREATE FUNCTION pg_temp.problems(schema text, facts jsonb) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(concat_ws(' ', p ->> 'slot', p ->> 'column', p ->> 'problem', p ->> 'value', p ->> 'standardized', p ->> 'suggestion') ORDER BY o), '{}')
    FROM jsonb_array_elements(lamin.validation_verdict(schema, facts) -> 'problems') WITH ORDINALITY AS e(p, o)
$$;
SELECT is(pg_temp.problems('scrna', jsonb_set((SELECT good FROM facts), '{frames,obs,columns,2}',
                                              '{"name": "donor", "dtype": "str", "n_null": 1}')),
          ARRAY['obs donor null_values'], 'missing values in a non-nullable column');
SELECT is(pg_temp.problems('scrna', (SELECT good FROM facts) #- '{frames,obs,columns,2}'),
          ARRAY['obs donor missing_column'], 'a required column missing');
SELECT is(pg_temp.problems('strict cells', jsonb_set((SELECT good FROM facts), '{otype}', '"DataFrame"')
                                            #- '{frames,obs}' || '{}') ,
          ARRAY['columns missing_slot'], 'a table without the columns the schema reads');
SELECT is(pg_temp.problems('scrna', jsonb_set((SELECT good FROM facts), '{frames,obs,columns,1,values}', '{"B-cell": 1, "T cel": 2}')),
          ARRAY['obs cell_type invalid_values B-cell B cell', 'obs cell_type invalid_values T cel T cell'],
          'values not in the registry, with their standardized form or a suggestion');
SELECT is(pg_temp.problems('scrna', jsonb_set((SELECT good FROM facts), '{frames,var,index}', '["ENSG00000153563", "GeneTypo"]')),
          ARRAY['var.T invalid_values GeneTypo'], 'var index values not in the registry field');
SELECT is(pg_temp.problems('scrna', jsonb_set((SELECT good FROM facts), '{otype}', '"DataFrame"') #- '{frames,var}'),
          ARRAY['wrong_otype', 'var.T missing_slot'], 'an AnnData schema on a table');
SELECT lamin.create_schema(ARRAY['donor', 'treatment_time_h', 'dose'], name => 'numbers', maximal_set => true);
CREATE TEMP TABLE nums AS SELECT '{"otype": "DataFrame", "frames": {"columns": {"n_rows": 3, "columns": [
    {"name": "donor", "dtype": "str", "n_null": 0},
    {"name": "treatment_time_h", "dtype": "float", "n_null": 0, "whole": true},
    {"name": "dose", "dtype": "str", "n_null": 0, "whole": false, "numeric": true},
    {"name": "extra", "dtype": "int"}]}}}'::jsonb AS f;
SELECT is(pg_temp.problems('numbers', (SELECT f FROM nums)),
          ARRAY['columns extra unexpected_column', 'columns treatment_time_h wrong_dtype'],
          'whole floats for an int feature without coercion; a column a maximal set does not name');
SELECT ok(lamin.validation_verdict('numbers', (SELECT f FROM nums)) #>> '{problems,1,detail}' LIKE '%its values can be coerced: set coerce on the feature%',
          '… the dtype problem says coercion would accept the column');
SELECT is((SELECT array_agg(c ->> 'column' || ':' || (c ->> 'status') ORDER BY o)
           FROM jsonb_array_elements(lamin.validation_verdict('numbers', (SELECT f FROM nums)) -> 'columns') WITH ORDINALITY AS e(c, o)),
          ARRAY['extra:problem', 'donor:ok', 'treatment_time_h:problem', 'dose:coerced'], 'numbers written as text coerce to a coercing float feature');
UPDATE lamin.feature SET coerce = true WHERE name = 'treatment_time_h';
SELECT is(pg_temp.problems('numbers', (SELECT f FROM nums)), ARRAY['columns extra unexpected_column'], 'once the feature coerces, whole floats pass');
SELECT throws_like($$SELECT lamin.validation_verdict('numbers', '[]')$$, '%validation facts must be a JSON object with "frames"%', 'facts are checked');

-- Recording verdicts on artifacts.
SELECT lamin.save_artifact(repeat('a', 64), 10, key => 'data/cells.h5ad') AS good_art \gset
SELECT lamin.save_artifact(repeat('b', 64), 10, key => 'data/typo.h5ad') AS bad_art \gset
SELECT is(lamin.record_validation(:'good_art', 'scrna', (SELECT good FROM facts)) -> 'passed', 'true'::jsonb, 'a passing verdict is recorded');
SELECT is((SELECT s.uid FROM lamin.artifact a JOIN lamin.schema s ON s.id = a.schema_id WHERE a.uid = :'good_art'), :'scrna',
          '… the artifact gets the schema');
SELECT is((SELECT array_agg(feature || '=' || name ORDER BY feature, name) FROM lamin.annotations WHERE artifact_uid = :'good_art'),
          ARRAY['cell_type=B cell', 'cell_type=T cell', 'perturbation=DMSO', 'perturbation=IFNG'], '… and the labels of its categorical columns');
SELECT lamin.record_validation(:'bad_art', 'scrna', jsonb_set((SELECT good FROM facts), '{frames,obs,columns,1,values}', '{"B-cell": 1}'));
SELECT is((SELECT schema_id FROM lamin.artifact WHERE uid = :'bad_art'), NULL, 'a failing artifact gets no schema');
SELECT is((SELECT array_agg(concat_ws(' ', passed, slot, column_name, problem, value, n, standardized)) FROM lamin.validation_report(:'bad_art')),
          ARRAY['f obs cell_type invalid_values B-cell 1 B cell'], 'validation_report: one row per problem');
SELECT is((SELECT count(*)::int FROM lamin.annotations WHERE artifact_uid = :'bad_art'), 0, '… and no labels');
SELECT is(lamin.describe(:'good_art') -> 'validated_by_schema' ->> 'name', 'scrna', 'describe names the schema an artifact passed');
SELECT is(jsonb_path_query_array(lamin.describe(:'bad_art'), '$.validations[*].passed'), '[false]'::jsonb, '… and lists its validations');
SELECT is(lamin.describe(:'scrna') #>> '{slots,var.T,itype}', 'bionty.gene.ensembl_gene_id', 'describe(schema) lists a composite''s slots');
SELECT is((lamin.describe(:'cells') #> '{features,3}'::text[]) - 'dtype'::text, '{"name": "treatment_time_h", "nullable": true, "optional": true}'::jsonb,
          '… and its features with nullability and whether they are optional');

-- A label name two ulabel types share: validated, nothing linked, the verdict says so.
INSERT INTO lamin.ulabel (name, is_type) VALUES ('Donor', true), ('Site', true);
SET lamin.allow_duplicates = on;  -- (the typo guard would refuse the second 'A1')
INSERT INTO lamin.ulabel (name, type_id) SELECT 'A1', id FROM lamin.ulabel WHERE name IN ('Donor', 'Site');
RESET lamin.allow_duplicates;
SELECT lamin.create_feature('batch', 'cat') IS NOT NULL;
SELECT lamin.create_schema(ARRAY['batch'], name => 'batches') IS NOT NULL;
SELECT lamin.save_artifact(repeat('f', 64), 10, key => 'data/batches.parquet') AS batch_art \gset
SELECT is(lamin.record_validation(:'batch_art', 'batches', '{"otype": "DataFrame", "frames": {"columns": {"n_rows": 1,
          "columns": [{"name": "batch", "dtype": "str", "n_null": 0, "values": {"A1": 1}}]}}}') #>> '{not_annotated,0,feature}',
          'batch', 'an ambiguous label leaves the artifact validated and says what was not annotated');
SELECT is((SELECT s.name FROM lamin.artifact a JOIN lamin.schema s ON s.id = a.schema_id WHERE a.uid = :'batch_art'), 'batches',
          '… the artifact has the schema');

-- The job, and who may ask for it.
SELECT lamin.validate_artifact(:'bad_art', 'scrna') AS job \gset
SELECT is((SELECT kind || ' ' || (args ->> 'schema') FROM lamin.job WHERE id = :job),
          'validate ' || :'scrna', 'validate_artifact enqueues a validate job naming the schema by uid');
SELECT lamin.save_artifact(repeat('c', 64), 10, key => 'notes/readme.txt') AS txt_art \gset
SELECT throws_like(format('SELECT lamin.validate_artifact(%L, ''scrna'')', :'txt_art'), '%cannot be validated%',
                   'a text file is not validated');
SELECT lamin.standardize_artifact(:'bad_art', 'scrna') AS std_job \gset
SELECT is((SELECT kind || ' ' || (args ->> 'uid') FROM lamin.job WHERE id = :std_job), 'standardize ' || :'bad_art',
          'standardize_artifact enqueues a standardize job');
SELECT lamin.save_artifact(repeat('e', 64), 10, key => 'data/cells.zarr', n_files => 3) AS zarr_art \gset
SELECT throws_like(format('SELECT lamin.standardize_artifact(%L, ''scrna'')', :'zarr_art'), '%cannot be standardized%',
                   'a zarr store is not standardized in place');
CREATE ROLE v_reader IN ROLE lamin_reader;
CREATE ROLE v_outsider IN ROLE lamin_writer;
SELECT lamin.create_space('lab');
SET ROLE v_reader;
SELECT throws_like(format('SELECT lamin.validate_artifact(%L, ''scrna'')', :'bad_art'), '%permission denied: artifact % can be validated only by a role that writes in its space%',
                   'a reader cannot validate (the outcome is written on the artifact)');
SELECT throws_like(format('SELECT lamin.record_validation(%L, ''scrna'', %L)', :'good_art', (SELECT good FROM facts)),
                   '%permission denied: artifact % can be validated only by a role that writes in its space%', '… nor record a verdict');
SELECT throws_like(format('SELECT lamin.standardize_artifact(%L, ''scrna'')', :'bad_art'),
                   '%permission denied: artifact % can be standardized only%', '… nor standardize');
RESET ROLE;
SELECT lamin.use_space('lab');
SELECT lamin.save_artifact(repeat('d', 64), 10, key => 'lab/cells.h5ad') AS lab_art \gset
SELECT lamin.record_validation(:'lab_art', 'scrna', (SELECT good FROM facts));
SELECT lamin.use_space('all');
SET ROLE v_outsider;
SELECT is((SELECT count(*)::int FROM lamin.validation), 3, 'reports on artifacts of an unreadable space stay invisible (the lab''s of 4)');
SELECT is((SELECT array_agg(schema_name || ':' || passed || ':' || n_problems ORDER BY passed, schema_name) FROM lamin.validations),
          ARRAY['scrna:false:1', 'batches:true:0', 'scrna:true:0'], '… in the view lamin.validations too');
SELECT throws_like(format('SELECT * FROM lamin.validation_report(%L)', :'lab_art'), '%no artifact%', '… and asking for one is told of no such artifact');
RESET ROLE;

-- A schema from a sample file's columns.
SELECT is(lamin.create_schema_from_columns('sample', '{"columns": [{"name": "donor", "dtype": "str"}, {"name": "n_reads", "dtype": "int"}]}') -> 'created',
          '["n_reads"]'::jsonb, 'a schema from columns makes the missing features');
SELECT is((SELECT otype || ' ' || n_members FROM lamin.schema WHERE uid = lamin.schema_id('sample')::text OR id = lamin.schema_id('sample')),
          'DataFrame 2', '… a DataFrame schema of its columns');

SELECT * FROM finish();
ROLLBACK;
