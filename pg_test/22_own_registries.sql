-- Registries of one's own: lamin.create_registry gives a user's table a uid,
-- spaces with row-level security (also for its owner), lock, audit, search
-- and the typo guard, and a link table for cat[schema.table] features;
-- ALTER TABLE migrations keep all of it working, and what would break it
-- is refused.
BEGIN;
SELECT plan(40);

SELECT lamin.add_storage('/tmp/lamin-pgtap-own') AS storage_uid \gset
SELECT lamin.save_artifact(encode(sha256('own a'), 'hex'), 10, key => 'own/a.parquet') AS a \gset
CREATE SCHEMA lab;
CREATE ROLE ownreg_owner IN ROLE lamin_writer;
CREATE ROLE ownreg_member IN ROLE lamin_writer;
CREATE ROLE ownreg_guest IN ROLE lamin_writer;
GRANT CREATE, USAGE ON SCHEMA lab TO ownreg_owner;
SELECT lamin.create_space('lab_private');
SELECT lamin.grant('lab_private', 'ownreg_member', 'write');

-- A new table, made by its future owner.
SET ROLE ownreg_owner;
SELECT is(lamin.create_registry('lab.sample', synonyms_field => NULL), 'lab.sample', 'create_registry makes a new table a registry');
RESET ROLE;
SELECT is((SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'lab.sample'::regclass), 'ownreg_owner', 'the table is its creator''s');
SELECT columns_are('lab', 'sample', ARRAY['id', 'name', 'description', 'uid', 'branch_id', 'space_id', 'is_locked', 'created_at',
                                          'created_by', 'updated_at'], 'it has lamin''s columns');
SELECT ok((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'lab.sample'::regclass),
    'row-level security is on, also for its owner');
SELECT has_table('lab', 'artifact_sample', 'its link table for annotations exists');
SELECT is((SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'lab.artifact_sample'::regclass),
    (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'lamin.artifact'::regclass), 'the link table is lamin''s');
SET ROLE ownreg_owner;
SELECT is(lamin.create_registry('lab.sample'), 'lab.sample', 'create_registry is idempotent');
RESET ROLE;

-- Records: uid, space, audit, search, guard.
SET ROLE ownreg_member;
INSERT INTO lab.sample (name, description) VALUES ('S-001 liver', 'first biopsy'), ('S-002 lung', NULL);
SELECT lamin.use_space('lab_private');
INSERT INTO lab.sample (name) VALUES ('S-003 secret');
SELECT lamin.use_space('all');
SELECT matches((SELECT uid FROM lab.sample WHERE name = 'S-001 liver'), '^[0-9A-Za-z]{12}$', 'a record gets a uid');
SELECT is((SELECT count(*)::int FROM lamin.audit WHERE registry = 'lab.sample' AND operation = 'insert'), 3, 'inserts are audited');
SELECT is((SELECT name FROM lamin.search('liver', 'lab.sample') LIMIT 1), 'S-001 liver', 'records are found by search');
SELECT throws_like($$INSERT INTO lab.sample (name) VALUES ('s-001  LIVER')$$, '%already exists%', 'the typo guard refuses a near duplicate');
SELECT throws_like($$INSERT INTO lab.sample (name, uid) VALUES ('forged', 'abcdefghijkl')$$, '%uids are handed out by lamin%',
    'uids are lamin''s to hand out');
RESET ROLE;
SET ROLE ownreg_guest;
SELECT is((SELECT count(*)::int FROM lab.sample), 2, 'a role without the space sees only the records of spaces it reads');
SELECT is((SELECT count(*)::int FROM lamin.search('secret', 'lab.sample')), 0, 'and does not find the others by search');
RESET ROLE;
SET ROLE ownreg_owner;
SELECT is((SELECT count(*)::int FROM lab.sample), 2, 'nor does the table''s owner without a grant (forced row-level security)');
RESET ROLE;

-- A categorical feature over it: annotation and validation.
SELECT lamin.create_feature('sample', 'cat[lab.sample]');
SELECT is(lamin.annotate(:'a', 'sample', ARRAY['S-001 liver']), 1, 'an artifact is annotated with a record of the registry');
SELECT is((SELECT s.name FROM lab.artifact_sample l JOIN lab.sample s ON s.id = l.sample_id), 'S-001 liver', 'through lab.artifact_sample');
SELECT throws_like(format($$SELECT lamin.annotate(%L, 'sample', ARRAY['S-009'])$$, :'a'), '%values not in lab.sample%',
    'a value the registry does not hold is refused');
SELECT is(lamin.validate('lab.sample', ARRAY['S-002 lung', 'S-009']), ARRAY[true, false], 'lamin.validate checks values against it');
SELECT is(lamin.add_values('collection', lamin.save_collection('own/coll', ARRAY[:'a']), '{"sample": "S-002 lung"}'), 1,
    'collections hold its records as values');

-- Migrations with ALTER TABLE.
SET ROLE ownreg_owner;
ALTER TABLE lab.sample ADD COLUMN tissue text;
RESET ROLE;
SET ROLE ownreg_member;
SELECT lives_ok($$INSERT INTO lab.sample (name, tissue) VALUES ('S-004 kidney', 'kidney')$$, 'after ADD COLUMN, inserts work');
SELECT is((SELECT name FROM lamin.search('kidney', 'lab.sample') LIMIT 1), 'S-004 kidney', 'and search indexes them');
RESET ROLE;
SET ROLE ownreg_owner;
ALTER TABLE lab.sample RENAME COLUMN name TO label;
RESET ROLE;
SELECT is((SELECT name_field FROM lamin.registry WHERE name = 'lab.sample'), 'label', 'a renamed name column is followed');
SET ROLE ownreg_member;
SELECT lives_ok($$INSERT INTO lab.sample (label) VALUES ('S-005 heart')$$, 'after RENAME COLUMN, inserts work');
SELECT is((SELECT name FROM lamin.search('heart', 'lab.sample') LIMIT 1), 'S-005 heart', 'search finds the new record');
SELECT throws_like($$INSERT INTO lab.sample (label) VALUES ('S-005 HEART')$$, '%already exists%', 'the guard compares the renamed column');
SELECT lives_ok($$UPDATE lab.sample SET label = 'S-001 liver (left)' WHERE label = 'S-001 liver'$$, 'a record is renamed');
SELECT is((SELECT name FROM lamin.search('left', 'lab.sample') LIMIT 1), 'S-001 liver (left)', 'search follows the rename of the record');
RESET ROLE;
SELECT is(lamin.annotate(:'a', 'sample', ARRAY['S-005 heart']), 1, 'annotation matches on the renamed column');
SET ROLE ownreg_owner;
SELECT throws_like($$ALTER TABLE lab.sample RENAME COLUMN space_id TO room$$, '%columns space_id are lamin''s and cannot be renamed or dropped%',
    'lamin''s columns are not renamed');
SELECT throws_like($$ALTER TABLE lab.sample DROP COLUMN label$$, '%is its registry''s name and cannot be dropped%',
    'the column search uses is not dropped');
SELECT throws_like($$ALTER TABLE lab.sample RENAME TO specimen$$, '%is a lamin registry: it keeps its name%', 'the table keeps its name');
SELECT lives_ok($$ALTER TABLE lab.sample DROP COLUMN tissue$$, 'other columns come and go');
-- Switching row-level security off stops lamin recording (and so writing) it.
ALTER TABLE lab.sample NO FORCE ROW LEVEL SECURITY;
SELECT throws_like($$INSERT INTO lab.sample (label) VALUES ('S-006 skin')$$, '%row-level security is off, so lamin does not record changes%',
    'with its spaces not enforced, the table takes no writes that lamin would audit');
SELECT lives_ok($$SELECT lamin.create_registry('lab.sample', name_field => 'label')$$, 'create_registry switches it on again');
RESET ROLE;

-- An existing table with rows, and one of somebody else.
CREATE TABLE lab.reagent (code text PRIMARY KEY, name text NOT NULL);
INSERT INTO lab.reagent VALUES ('R1', 'Trypsin'), ('R2', 'Collagenase IV');
ALTER TABLE lab.reagent OWNER TO ownreg_owner;
SET ROLE ownreg_guest;
SELECT throws_like($$SELECT lamin.create_registry('lab.reagent')$$, '%only the owner of lab.reagent makes it a registry%',
    'only a table''s owner makes it a registry');
RESET ROLE;
SET ROLE ownreg_owner;
SELECT lives_ok($$SELECT lamin.create_registry('lab.reagent', abbr_field => 'code')$$, 'an existing table with rows becomes a registry');
RESET ROLE;
SELECT is((SELECT count(DISTINCT uid)::int FROM lab.reagent), 2, 'its rows got a uid each');
SELECT is((SELECT name FROM lamin.search('R2', 'lab.reagent') LIMIT 1), 'Collagenase IV', 'and are searchable');
SELECT throws_like($$SELECT lamin.create_registry('lamin.thing')$$, '%schema lamin is lamin''s or the system''s%',
    'registries live in schemas of their own');

SELECT * FROM finish();
ROLLBACK;
