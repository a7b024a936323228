-- Hostile input: SQL injection through every text argument that reaches
-- dynamic SQL, path traversal, URIs outside storages, oversized arrays,
-- deeply nested JSON, NUL bytes. Each is refused with a clear error and
-- changes nothing.
BEGIN;
SELECT plan(29);
SELECT lamin.add_storage('/tmp/lamin-pgtap-hostile');
INSERT INTO lamin.ulabel (name) VALUES ('T cell');
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM lamin.artifact) AS artifacts, (SELECT count(*) FROM lamin.ulabel) AS ulabels,
       (SELECT count(*) FROM lamin.job) AS jobs, (SELECT count(*) FROM pg_roles) AS roles;

-- Registry and field names are looked up, never pasted into SQL.
SELECT throws_like($$SELECT * FROM lamin.search('x', 'lamin.ulabel; DROP TABLE lamin.artifact --')$$,
                   '%unknown registry%', 'search: a registry name with SQL in it is an unknown registry');
SELECT throws_like($$SELECT lamin.validate('lamin.ulabel'' OR 1=1 --', ARRAY['x'])$$, '%unknown registry%', 'validate: registry');
SELECT throws_like($$SELECT lamin.validate('lamin.ulabel', ARRAY['x'], field => 'name; DELETE FROM lamin.ulabel')$$,
                   '%field%', 'validate: field');
SELECT throws_like($$SELECT lamin.standardize('lamin.ulabel', ARRAY['x'], field => 'name" FROM lamin.artifact --')$$,
                   '%field%', 'standardize: field');
SELECT throws_like($$SELECT * FROM lamin.inspect('bionty.cell_type"; DROP SCHEMA lamin CASCADE; --', ARRAY['x'])$$,
                   '%unknown registry%', 'inspect: registry');
SELECT throws_like($$SELECT * FROM bionty.descendants('CL:0000084', registry => 'cell_type; DROP TABLE bionty.cell_type')$$,
                   '%registry%', 'descendants: registry');
SELECT throws_like($$SELECT lamin.delete('x''; DROP TABLE lamin.artifact; --')$$, '%invalid uid%', 'delete: uid');
SELECT throws_like($$SELECT lamin.get('AAAA'' OR ''1''=''1')$$, '%invalid artifact uid%', 'get: uid');
SELECT throws_like($$SELECT lamin.grant('all', 'x"; DROP ROLE lamin_admin; --', 'read')$$, '%no role named%', 'grant: role name');
SELECT throws_like($$SELECT lamin.grant('all', 'lamin_reader', 'read''); DROP TABLE lamin.artifact; --')$$, '%invalid level%',
                   'grant: level');
SELECT throws_like($$SELECT lamin.use_space('all''; DROP TABLE lamin.space; --')$$, '%no space named%', 'use_space: space');
SELECT throws_like($$SELECT lamin.enqueue('noop''; DROP TABLE lamin.job; --')$$, '%unknown job kind%', 'enqueue: kind');
SELECT throws_like($$SELECT lamin.stage('$$ || repeat('A', 19) || $$'''); DROP TABLE lamin.job; --')$$, '%invalid artifact uid%',
                   'stage: uid');
SELECT lamin.create_space('lab''); DROP TABLE lamin.space; --');
SELECT is((SELECT count(*)::int FROM lamin.space WHERE name = 'lab''); DROP TABLE lamin.space; --'), 1,
          'a space name with SQL in it is just a name');

-- Paths: keys, URIs and import files stay where they belong.
SELECT throws_like($$SELECT lamin.save_artifact(repeat('a', 64), 1, key => '../../etc/passwd')$$, '%..%', 'keys: no ..');
SELECT throws_like($$SELECT lamin.save_artifact(repeat('a', 64), 1, key => '/etc/passwd')$$, '%invalid key%', 'keys: not absolute');
SELECT throws_like($$SELECT lamin.register('/etc/passwd')$$, '%outside every registered storage%', 'register: a server file');
SELECT throws_like($$SELECT lamin.register('/tmp/lamin-pgtap-hostile/../../etc/passwd')$$, '%..%', 'register: .. out of a storage');
SELECT throws_like($$SELECT lamin.register('file:///etc/passwd')$$, '%outside every registered storage%', 'register: file:// URI');
SELECT throws_like($$SELECT lamin.import_ontology('cell_type', '../../../etc/passwd')$$, '%must be a relative path inside%', 'import: .. refused');
SELECT throws_like($$SELECT lamin.import_ontology('cell_type', '/etc/passwd')$$, '%must be a relative path inside%', 'import: absolute path refused');

-- Sizes and shapes.
SELECT throws_like($$SELECT lamin.validate('lamin.ulabel', array_fill('x'::text, ARRAY[10000000]))$$, '%too many values: 10000000%',
                   'validate: 10M values are refused');
SELECT throws_like($$SELECT lamin.enqueue('noop', jsonb_build_object('blob', repeat('x', 2000000)))$$, '%at most 1 MB%',
                   'job arguments over 1 MB are refused');
SELECT throws_like($$SELECT lamin.enqueue('noop', (repeat('[', 100000) || repeat(']', 100000))::jsonb)$$, '%stack depth%',
                   'JSON nested 100k deep is refused by the parser');
SELECT throws_like($$SELECT lamin.enqueue('noop', '[1]')$$, '%job_args_object%', 'job arguments must be an object');
SELECT throws_like($$SELECT lamin.save_artifact(repeat('a', 64), 1, key => convert_from('\x610062'::bytea, 'UTF8'))$$, '%0x00%',
                   'a NUL byte cannot reach a key');

-- The catalog: RLS everywhere, pinned search paths on definer functions.
SELECT is((SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY 1) FROM pg_class c
           WHERE c.relkind = 'r' AND c.relnamespace IN ('lamin'::regnamespace, 'bionty'::regnamespace) AND NOT c.relrowsecurity),
          'lamin.branch, lamin.job_kind', 'row-level security is on for every table but the two fixed lookup tables');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.prosecdef AND p.pronamespace IN ('lamin'::regnamespace, 'bionty'::regnamespace)
             AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false)), NULL,
          'every SECURITY DEFINER function pins its search_path');

-- Nothing changed.
SELECT is((SELECT row(
              (SELECT count(*) FROM lamin.artifact), (SELECT count(*) FROM lamin.ulabel),
              (SELECT count(*) FROM lamin.job), (SELECT count(*) FROM pg_roles))::text),
          (SELECT row(artifacts, ulabels, jobs, roles)::text FROM before), 'no artifact, label, job or role came or went');

SELECT * FROM finish();
ROLLBACK;
