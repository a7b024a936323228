-- A mesh of instances, inside one database: the instance's identity, the
-- transfer document (out and back in: what exists is kept, conflicts are
-- listed, unreadable records are unknown), uids kept only through a
-- transfer, roots another instance manages are never swept nor emptied,
-- LaminDB's shared folder objects and 16-character run uids, and the
-- guards of the LaminDB import and of attaching instances.
BEGIN;
SELECT plan(35);

SELECT lamin.add_storage('/tmp/lamin-pgtap-mesh') AS storage_uid \gset
CREATE ROLE mesh_writer IN ROLE lamin_writer;
CREATE ROLE mesh_reader IN ROLE lamin_reader;
SELECT lamin.create_space('mesh_hidden') AS ignored \gset

-- Identity: made on first use, replaced only in a database without records.
SELECT is(length((lamin.instance()).uid), 12, 'an instance has a 12-character uid, made on first use');
SELECT is((lamin.instance()).uid, (lamin.instance()).uid, 'and keeps it');
SELECT is((lamin.init_instance('lab_mesh')).name, 'lab_mesh', 'init_instance names a fresh database');
SELECT is((SELECT count(*) FROM lamin.instance)::int, 1, 'one identity row');
SELECT throws_like($$SELECT lamin.init_instance('Bad Name')$$, '%invalid instance name%', 'instance names are checked');
SET ROLE mesh_writer;
SELECT throws_like($$SELECT lamin.init_instance('x')$$, '%permission denied%', 'only admins make instances');
SELECT is((lamin.instance()).name, 'lab_mesh', 'a writer reads the identity');
RESET ROLE;

-- Records to transfer: two versions, a label of a type, a value.
\o /dev/null
SELECT lamin.create_feature('mesh_temp', 'float');
SELECT lamin.create_feature('mesh_label', 'cat');
INSERT INTO lamin.ulabel (name, is_type) VALUES ('MeshKind', true);
INSERT INTO lamin.ulabel (name, type_id) SELECT 'mesh-a', id FROM lamin.ulabel WHERE name = 'MeshKind';
SELECT lamin.save_artifact(encode(sha256('mesh 1'), 'hex'), 6, key => 'mesh/x.csv') AS v1 \gset
SELECT lamin.save_artifact(encode(sha256('mesh 2'), 'hex'), 6, key => 'mesh/x.csv') AS v2 \gset
SELECT lamin.annotate(:'v2', 'mesh_temp', ARRAY['36.6']);
SELECT lamin.annotate(:'v2', 'mesh_label', ARRAY['mesh-a']);
\o
CREATE TEMP TABLE docs (name text PRIMARY KEY, doc jsonb);
INSERT INTO docs VALUES ('v2', lamin.transfer_out(ARRAY[:'v2']));
SELECT lamin.transfer_out(ARRAY[:'v2']) AS doc \gset

SELECT is(jsonb_array_length(:'doc'::jsonb -> 'artifacts'), 1, 'transfer_out writes the artifact');
SELECT is(:'doc'::jsonb -> 'artifacts' -> 0 -> 'labels' -> 0 ->> 'type', 'MeshKind', 'labels travel by name and type');
SELECT is(:'doc'::jsonb -> 'artifacts' -> 0 -> 'values' -> 0 ->> 'dtype', 'float', 'values travel with their feature''s dtype');
SELECT is(:'doc'::jsonb -> 'instance' ->> 'name', 'lab_mesh', 'the document names its instance');
SELECT results_eq($$SELECT kind, action FROM lamin.transfer_in((SELECT doc FROM docs WHERE name = 'v2'))$$, $$VALUES ('artifact', 'exists')$$,
    'taking a document of records already here changes nothing');
SELECT is((SELECT count(*) FROM lamin.run)::int, 0, 'and makes no transfer run');

-- Unknown and unreadable uids say the same.
SELECT lamin.use_space('mesh_hidden') AS ignored \gset
SELECT lamin.save_artifact(encode(sha256('mesh hidden'), 'hex'), 11) AS hidden \gset
SELECT lamin.use_space('all') AS ignored \gset
SET ROLE mesh_reader;
SELECT throws_ok(format($$SELECT lamin.transfer_out(ARRAY[%L])$$, :'hidden'), 'P0002',
    format('transfer: no artifact or collection with uid %L', :'hidden'), 'a record in an unreadable space is unknown');
SELECT throws_ok($$SELECT lamin.transfer_out(ARRAY['0000000000000000zzzz'])$$, 'P0002',
    'transfer: no artifact or collection with uid ''0000000000000000zzzz''', 'as a uid that does not exist');
SELECT throws_like($$SELECT * FROM lamin.transfer_in(lamin.transfer_out(ARRAY[(SELECT uid FROM lamin.artifact WHERE key = 'mesh/x.csv' AND NOT is_latest)]))$$,
    '%permission denied%', 'a reader cannot take a transfer');
RESET ROLE;

-- A foreign document: conflicts listed before anything is written.
INSERT INTO docs SELECT 'bad', jsonb_set(jsonb_set(:'doc'::jsonb, '{artifacts,0,uid}', '"AAAAAAAAAAAAAAAA0000"'),
                 '{artifacts,0,values,0,dtype}', '"int"');
SELECT throws_like($$SELECT * FROM lamin.transfer_in((SELECT doc FROM docs WHERE name = 'bad'))$$, '%feature ''mesh_temp'': dtype float here, int in the source%',
    'a feature of another dtype is a conflict');
INSERT INTO docs SELECT 'bad2', jsonb_set(jsonb_set(:'doc'::jsonb, '{artifacts,0,uid}', '"AAAAAAAAAAAAAAAA0000"'),
                 '{artifacts,0,terms}', '[{"registry": "bionty.cell_type", "id": "CL:9999999", "name": "x"}]');
SELECT throws_like($$SELECT * FROM lamin.transfer_in((SELECT doc FROM docs WHERE name = 'bad2'))$$, '%bionty.cell_type has no record with ontology_id ''CL:9999999''%',
    'a term the registry lacks is a conflict');
SELECT is((SELECT count(*) FROM lamin.artifact WHERE uid = 'AAAAAAAAAAAAAAAA0000')::int, 0, 'nothing was written');
SELECT throws_like($$SELECT * FROM lamin.transfer_in('{"x": 1}')$$, '%not a transfer document%', 'a document is checked');

-- A new record with its uid kept, in a new storage the source manages.
INSERT INTO docs SELECT 'fresh', jsonb_set(jsonb_set(jsonb_set(:'doc'::jsonb, '{artifacts,0,uid}', '"BBBBBBBBBBBBBBBB0000"'),
                 '{artifacts,0,hash}', to_jsonb(encode(sha256('mesh 3'), 'hex'))),
                 '{artifacts,0,storage}', '{"root": "/tmp/lamin-pgtap-elsewhere", "instance_uid": "OtherInst123"}');
SELECT results_eq($$SELECT uid, action FROM lamin.transfer_in((SELECT doc FROM docs WHERE name = 'fresh'))$$, $$VALUES ('BBBBBBBBBBBBBBBB0000', 'created')$$,
    'a new record keeps its uid');
SELECT results_eq($$SELECT instance_uid, is_default FROM lamin.storage WHERE root = '/tmp/lamin-pgtap-elsewhere'$$,
    $$VALUES ('OtherInst123'::text, false)$$, 'its root is registered as the source''s, not as the default');
SELECT is((SELECT count(*) FROM lamin.sweep_storage())::int, 1, 'sweeps leave a root another instance manages alone');
SELECT is((SELECT t.key FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id), '__lamin_transfer__/lab_mesh',
    'the lineage: a run of the transfer transform');
DELETE FROM lamin.artifact WHERE uid = 'BBBBBBBBBBBBBBBB0000';
SELECT is((SELECT count(*) FROM lamin.job WHERE kind = 'delete_object' AND args ->> 'uid' = 'BBBBBBBBBBBBBBBB0000')::int, 0,
    'deleting it leaves the other instance''s bytes');

-- Uids are admitted only well-formed; a plain insert of a chosen uid stays refused.
SELECT throws_like($$SELECT lamin.admit_uid('short')$$, '%invalid uid%', 'admit_uid checks the uid');
SET ROLE mesh_reader;
SELECT throws_like($$SELECT lamin.admit_uid('CCCCCCCC')$$, '%permission denied%', 'readers may not admit uids');
RESET ROLE;
SET ROLE mesh_writer;
SELECT throws_like($$INSERT INTO lamin.ulabel (uid, name) VALUES ('CCCCCCCC', 'chosen')$$, '%uids are handed out by lamin%',
    'a chosen uid is refused outside a transfer');
RESET ROLE;

-- LaminDB's layouts: a family sharing one folder object; 16-character run uids.
UPDATE lamin.artifact SET overwrite_versions = true WHERE uid = :'v1';
SELECT is((SELECT lamin.object_key(a) FROM lamin.artifact a WHERE uid = :'v1'), '.lamindb/' || left(:'v1', 16) || '.csv',
    'a shared object lies at .lamindb/{stem}{suffix}');
SELECT lives_ok($$INSERT INTO lamin.run (uid, transform_id) SELECT 'AbCdEfGhIjKlMnOp', id FROM lamin.transform LIMIT 1$$,
    'a run may have LaminDB''s 16-character uid');
SELECT throws_like(format($$UPDATE lamin.artifact SET legacy_hash = 'x' WHERE uid = %L$$, :'v1'), '%artifact_legacy_hash_with_type%',
    'a legacy hash has its type');

-- The LaminDB import and attachments are guarded.
SELECT throws_like($$SELECT * FROM lamin.import_lamindb('{"x": 1}')$$, '%not an import document%', 'an import document is checked');
SET ROLE mesh_writer;
SELECT throws_like($$SELECT * FROM lamin.import_lamindb('{"lamindb_import": 1}')$$, '%permission denied%', 'importing needs an admin');
RESET ROLE;
SELECT throws_like($$SELECT lamin.attach_instance('lamin', 'h', 1, 'd')$$, '%exists already%', 'an attachment never takes lamin''s schemas');
SELECT throws_like($$SELECT lamin.detach_instance('nothing')$$, '%no instance ''nothing'' is attached%', 'detaching names what is not attached');

SELECT * FROM finish();
ROLLBACK;
