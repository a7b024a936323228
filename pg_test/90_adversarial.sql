-- The adversarial suite: each attack class a hostile low-privilege role tried
-- (issue "security and integrity hardening"), tried again here as that role,
-- asserting it is refused and nothing changed. Bytes (sidecar jobs, exports)
-- and concurrency are tried end to end in tests/tests/adversarial.rs.
--   alice  writer of space lab-x (a lamin_reader otherwise)
--   bob    lamin_writer (writes space "all" and the ontologies)
--   carol  lamin_reader only
BEGIN;
SELECT plan(74);

CREATE ROLE alice IN ROLE lamin_reader;
CREATE ROLE bob IN ROLE lamin_writer;
CREATE ROLE carol IN ROLE lamin_reader;
CREATE ROLE t_space_admin IN ROLE lamin_admin;
CREATE ROLE t_monitor IN ROLE pg_monitor;
SELECT lamin.create_space('lab-x') IS NOT NULL AS made;
SELECT lamin.grant('lab-x', 'alice', 'write');
SELECT lamin.space_id('lab-x') AS x \gset
SELECT lamin.add_storage('/tmp/lamin-pgtap-adversarial') IS NOT NULL AS made;
SELECT id AS sid FROM lamin.storage WHERE root = '/tmp/lamin-pgtap-adversarial' \gset

-- Records of alice (lab-x) and bob ("all"), with fixed uids (as a superuser
-- loads them: users take uids from lamin).
INSERT INTO lamin.ulabel (uid, name, space_id) VALUES ('AliceLb1', 'alice label', :x), ('BobLabl1', 'bob label', 1);
INSERT INTO lamin.feature (uid, name, dtype, space_id) VALUES ('AliceFeat001', 'alice_feature', 'int', :x);
INSERT INTO lamin.artifact (uid, storage_id, hash, hash_type, size, status, space_id)
VALUES ('AliceArtifact0000000', :sid, repeat('a', 64), 'sha256', 1, 'ready', :x),
       ('BobArtifact000000000', :sid, repeat('b', 64), 'sha256', 1, 'ready', 1);
INSERT INTO lamin.transform (key, hash, space_id) VALUES ('same/source.py', repeat('9', 64), :x);

-- 1. Byte jobs name records; jobs that act as the sidecar are lamin's own.
SET LOCAL ROLE carol;
SELECT throws_like($$SELECT lamin.enqueue('delete_object', '{"root": "/tmp/lamin-pgtap-adversarial", "object": ".lamindb/AliceArtifact0000000.parquet"}')$$,
                   '%enqueued by lamin itself%', '1: a reader cannot enqueue delete_object');
SELECT throws_like($$INSERT INTO lamin.job (kind, args) VALUES ('delete_object', '{"root": "/", "object": ".lamindb/x", "folder": true}')$$,
                   '%enqueued by lamin itself%', '1: nor insert one');
SELECT throws_like($$INSERT INTO lamin.job (kind, args) VALUES ('sweep_storage', '{"storage_id": 1}')$$,
                   '%enqueued by lamin itself%', '1: nor a sweep');
SELECT throws_ok($$SELECT lamin.enqueue_sweep(1, 0)$$, '42501', NULL, '1: the sweep enqueuer is not executable by users');
SELECT throws_like($$SELECT * FROM lamin.sweep_storage()$$, '%needs lamin_admin%', '1: sweeping needs lamin_admin');
RESET ROLE;
SET LOCAL ROLE bob;
SELECT throws_like($$SELECT * FROM lamin.sweep_storage()$$, '%needs lamin_admin%', '1: also for writers');
SELECT lives_ok($$SELECT lamin.delete('BobArtifact000000000', true)$$, '1: bob deletes his artifact');
RESET ROLE;
SELECT is((SELECT jsonb_build_object('by', requested_by, 'storage', args -> 'storage_id', 'root', args -> 'root')
           FROM lamin.job WHERE kind = 'delete_object' AND args ->> 'uid' = 'BobArtifact000000000'),
          jsonb_build_object('by', 'lamin_sidecar', 'storage', :sid, 'root', NULL),
          '1: the delete job is the sidecar''s and names a storage, not a root');
SELECT is((SELECT count(*)::int FROM lamin.job WHERE kind IN ('delete_object', 'sweep_storage') AND requested_by <> 'lamin_sidecar'), 0,
          '1: no internal job of a user was queued');

-- 2. Job owners cancel their jobs and change nothing else of them.
SET LOCAL ROLE carol;
SELECT lamin.enqueue('noop') AS carol_job \gset
SELECT throws_ok(format($$UPDATE lamin.job SET kind = 'sweep_storage' WHERE id = %s$$, :carol_job), '42501', NULL,
                 '2: a job''s kind cannot be changed');
SELECT throws_ok(format($$UPDATE lamin.job SET args = jsonb_build_object('x', repeat('y', 5000000)) WHERE id = %s$$, :carol_job),
                 '42501', NULL, '2: nor its arguments');
SELECT throws_like(format($$UPDATE lamin.job SET status = 'done' WHERE id = %s$$, :carol_job), '%may only cancel%',
                   '2: nor its status, except to cancel it');
SELECT throws_ok(format($$UPDATE lamin.job SET result = '{"forged": true}' WHERE id = %s$$, :carol_job), '42501', NULL,
                 '2: nor its result');
SELECT throws_ok($$INSERT INTO lamin.job (kind, requested_by) VALUES ('noop', 'bob')$$, '42501', NULL,
                 '2: nor the requester of a new job');
SELECT is(lamin.cancel_job(:carol_job), 'cancelled', '2: cancelling works');
SELECT throws_like(format($$UPDATE lamin.job SET status = 'queued' WHERE id = %s$$, :carol_job), '%may only cancel%',
                   '2: a cancelled job stays cancelled');
SELECT lamin.enqueue('noop') AS carol_job2 \gset
UPDATE lamin.job SET status = 'cancelled', finished_at = '2001-01-01', lease_until = '2999-01-01' WHERE id = :carol_job2;
RESET ROLE;
SELECT is((SELECT row(kind, status, result)::text FROM lamin.job WHERE id = :carol_job), '(noop,cancelled,)',
          '2: the job row is as lamin left it');
SELECT ok((SELECT finished_at > now() - interval '1 hour' AND lease_until IS NULL FROM lamin.job WHERE id = :carol_job2),
          '2: a cancel sets its own times, not the user''s');

-- 3. Only lamin decides which roles the sidecar acts as; never an instance role.
SET LOCAL ROLE carol;
SELECT throws_ok($$SELECT lamin.let_sidecar_act_as('lamin_admin')$$, '42501', NULL, '3: users cannot make the sidecar act as a role');
RESET ROLE;
SELECT lamin.let_sidecar_act_as('lamin_admin');
SELECT lamin.let_sidecar_act_as('lamin_writer');
SELECT ok(NOT pg_has_role('lamin_sidecar', 'lamin_admin', 'MEMBER') AND NOT pg_has_role('lamin_sidecar', 'lamin_writer', 'MEMBER'),
          '3: the sidecar never becomes a member of an instance role');
SET LOCAL ROLE lamin_admin;
SELECT throws_like($$SELECT lamin.enqueue('noop')$$, '%a person''s role%', '3: an instance role enqueues no job (the sidecar would act as it)');
RESET ROLE;
SELECT ok(NOT pg_has_role('lamin_sidecar', 'lamin_admin', 'MEMBER'), '3: and the sidecar is no member of it');

-- 4. Grants name existing lamin roles; a vanished role locks nobody out.
SET LOCAL ROLE t_space_admin;
SELECT throws_like(format($$INSERT INTO lamin.space_access (space_id, role_name, level) VALUES (%s, 'nobody_here', 'read')$$, :x),
                   '%no role named%', '4: a grant to a role that does not exist is refused');
RESET ROLE;
CREATE ROLE t_leaver IN ROLE lamin_reader;
SELECT lamin.grant('lab-x', 't_leaver', 'read');
DROP ROLE t_leaver;
SET LOCAL ROLE carol;
SELECT lives_ok($$SELECT count(*) FROM lamin.artifact$$, '4: a grant of a dropped role does not break anyone''s queries');
RESET ROLE;

-- 5. The audit log cannot be switched off, summarised or forged by users.
SET LOCAL ROLE bob;
SET LOCAL application_name = 'pg_restore';
INSERT INTO lamin.ulabel (name) VALUES ('restore pretender');
SET LOCAL application_name = 'pgtap';
SET LOCAL lamin.audit_summary = 'on';
INSERT INTO lamin.ulabel (name) VALUES ('summary pretender');
SET LOCAL lamin.audit_summary = 'off';
RESET ROLE;
SELECT is((SELECT count(*)::int FROM lamin.audit
           WHERE uid IN (SELECT uid FROM lamin.ulabel WHERE name IN ('restore pretender', 'summary pretender'))
             AND role_name = 'bob' AND record_id IS NOT NULL), 2,
          '5: application_name pg_restore and audit_summary do not hide a user''s changes');
SET LOCAL ROLE carol;
SELECT throws_ok($$INSERT INTO lamin.audit (registry, operation, uid, space_id) VALUES ('lamin.artifact', 'delete', 'AliceArtifact0000000', 2)$$,
                 '42501', NULL, '5: users cannot write audit rows');
CREATE TEMP TABLE t_relay (x int);
CREATE FUNCTION pg_temp.t_forge() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO lamin.audit (registry, operation, uid, space_id) VALUES ('lamin.artifact', 'delete', 'AliceArtifact0000000', 2);
    RETURN NULL;
END $f$;
CREATE TRIGGER t_forge AFTER INSERT ON t_relay FOR EACH ROW EXECUTE FUNCTION pg_temp.t_forge();
SELECT throws_ok($$INSERT INTO t_relay VALUES (1)$$, '42501', NULL, '5: not through a nested trigger either');
RESET ROLE;
CREATE TABLE public.t_mine (id bigint, uid text, space_id bigint);
GRANT ALL ON public.t_mine TO carol;
SET LOCAL ROLE carol;
SELECT throws_ok($$CREATE TRIGGER t_borrow AFTER INSERT ON public.t_mine REFERENCING NEW TABLE AS new_rows
                   FOR EACH STATEMENT EXECUTE FUNCTION lamin.tg_audit()$$, '42501', NULL,
                 '5: nor by attaching lamin''s audit trigger to a table of one''s own');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM lamin.audit WHERE uid = 'AliceArtifact0000000' AND operation = 'delete'), 0, '5: nothing was forged');
SET LOCAL ROLE bob;
SET LOCAL ROLE lamin_writer;
INSERT INTO lamin.ulabel (name) VALUES ('group role label');
RESET ROLE;
SELECT is((SELECT role_name::text FROM lamin.audit WHERE uid = (SELECT uid FROM lamin.ulabel WHERE name = 'group role label')),
          session_user::text, '5: a change made under a shared instance role is audited as the person''s login');

-- 6. A link needs read on both ends; hierarchy checks see every edge.
SELECT id AS alice_label FROM lamin.ulabel WHERE uid = 'AliceLb1' \gset
SELECT id AS alice_feature FROM lamin.feature WHERE uid = 'AliceFeat001' \gset
SELECT id AS bob_label FROM lamin.ulabel WHERE uid = 'BobLabl1' \gset
-- (In a subtransaction: to the rules it is a record made earlier, not one
-- this transaction is still making.)
SAVEPOINT made_earlier;
INSERT INTO lamin.artifact (uid, storage_id, hash, hash_type, size, status)
VALUES ('BobArtifact000000002', :sid, repeat('c', 64), 'sha256', 1, 'ready');
RELEASE SAVEPOINT made_earlier;
SET LOCAL ROLE bob;
SELECT throws_like(format($$INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id) SELECT id, %s FROM lamin.artifact WHERE uid = 'BobArtifact000000002'$$, :alice_label),
                   '%row-level security%', '6: a link to a label of a space one cannot read is refused');
SELECT throws_like(format($$INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) SELECT id, %s, '1' FROM lamin.artifact WHERE uid = 'BobArtifact000000002'$$, :alice_feature),
                   '%row-level security%', '6: so is one to such a feature');
SELECT throws_like(format($$INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id) VALUES (%s, %s)$$, :bob_label, :alice_label),
                   '%row-level security%', '6: and a parent edge to such a label');
RESET ROLE;
-- A cycle through an edge bob cannot read: q1 -> p (lab-x, hidden) -> q2, then bob adds q2 -> q1.
INSERT INTO lamin.ulabel (uid, name, space_id) VALUES ('CycleQ1a', 'cycle q1', 1), ('CycleQ2a', 'cycle q2', 1), ('CyclePxa', 'cycle p', :x);
INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
SELECT c.id, p.id FROM lamin.ulabel c, lamin.ulabel p WHERE (c.uid, p.uid) IN (('CycleQ1a', 'CyclePxa'), ('CyclePxa', 'CycleQ2a'));
SET LOCAL ROLE bob;
SELECT throws_like($$INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
                     SELECT c.id, p.id FROM lamin.ulabel c, lamin.ulabel p WHERE c.uid = 'CycleQ2a' AND p.uid = 'CycleQ1a'$$,
                   '%would form a cycle%', '6: an edge closing a cycle through unreadable edges is refused');
RESET ROLE;

-- 7. Spaces one cannot read leave no trace: audit rows, search words, the
-- spelling vocabulary, unique keys.
SET LOCAL ROLE carol;
SELECT is((SELECT count(*)::int FROM lamin.audit WHERE registry = 'lamin.space'), 0,
          '7: creating space lab-x left no audit row a reader of "all" sees');
SELECT is((SELECT count(*)::int FROM lamin.search_word WHERE word = 'alice'), 0,
          '7: the words of alice''s label are not readable');
SELECT throws_ok($$SELECT count(*) FROM lamin.search_vocab$$, '42501', NULL, '7: nor is the spelling vocabulary');
SELECT is(lamin.search_closest_word('alise', ARRAY['lamin.ulabel']), NULL, '7: spelling correction suggests no word of lab-x');
SELECT is((SELECT count(*)::int FROM lamin.search('alise', 'lamin.ulabel')), 0, '7: nor does search find it');
RESET ROLE;
SET LOCAL ROLE alice;
SELECT is(lamin.search_closest_word('alise', ARRAY['lamin.ulabel']), 'alice', '7: alice gets her word suggested');
RESET ROLE;
SET LOCAL ROLE bob;
SELECT throws_like($$INSERT INTO lamin.ulabel (uid, name) VALUES ('AliceLb1', 'probe')$$, '%uids are handed out by lamin%',
                   '7: a uid of lab-x is no unique-key error to bob: he cannot choose uids');
SELECT throws_like($$INSERT INTO lamin.artifact (uid, storage_id) SELECT 'AliceArtifact0000000', id FROM lamin.storage LIMIT 1$$,
                   '%uids are handed out by lamin%', '7: nor artifact uids (a version of a family he cannot read)');
SELECT lives_ok($$INSERT INTO lamin.ulabel (uid, name) SELECT lamin.uid(8), 'fresh label'$$, '7: a uid lamin handed out is his');
SELECT lives_ok($$INSERT INTO lamin.ulabel (name) VALUES ('alice label')$$, '7: a label name taken in lab-x is no unique-key error to bob');
SELECT lives_ok($$SELECT lamin.create_feature('alice_feature', 'int')$$, '7: nor a feature name');
SELECT lives_ok(format($$INSERT INTO lamin.artifact (storage_id, hash, hash_type, size, status) VALUES (%s, repeat('a', 64), 'sha256', 1, 'ready')$$, :sid),
                '7: content stored in a space bob cannot read is no unique-key error to him');
SELECT lives_ok($$INSERT INTO lamin.transform (key, hash) SELECT 'same/source.py', hash FROM (VALUES (repeat('9', 64))) v(hash)$$,
                '7: a transform hash of another space neither');
RESET ROLE;

-- 8. Fields the system owns are set by the system.
SET LOCAL ROLE bob;
SELECT throws_like($$INSERT INTO lamin.ulabel (name, created_by) SELECT 'forged creator', id FROM lamin."user" WHERE handle <> 'bob' LIMIT 1$$,
                   '%set by lamin%', '8: created_by cannot be forged');
SELECT throws_like($$INSERT INTO lamin.ulabel (name, created_at) VALUES ('backdated', '2001-01-01')$$,
                   '%set by lamin%', '8: nor created_at');
SELECT throws_like($$UPDATE lamin.ulabel SET created_at = '2001-01-01' WHERE uid = 'BobLabl1'$$,
                   '%set by lamin%', '8: not later either');
SELECT throws_like($$INSERT INTO lamin.ulabel (name, is_locked) VALUES ('self-locked', true)$$,
                   '%only admins%', '8: only admins lock records');
SELECT throws_like($$UPDATE lamin.artifact SET hash = repeat('f', 64), size = 99 WHERE uid = 'BobArtifact000000002'$$,
                   '%fixed%', '8: the hash and size of a ready artifact are fixed');
SELECT throws_like($$UPDATE lamin.artifact SET status = 'pending' WHERE uid = 'BobArtifact000000002'$$,
                   '%fixed%', '8: and it does not go back to pending (to change them there)');
SELECT throws_like($$UPDATE lamin.ulabel SET uid = 'AliceLb1' WHERE uid = 'BobLabl1'$$,
                   '%never changes%', '8: a uid never changes (an UPDATE to another space''s uid is no oracle either)');
SELECT throws_like(format($$INSERT INTO bionty.cell_type (name, ontology_id, space_id) VALUES ('planted cell', 'CL:7777777', %s)$$, :x),
                   '%row-level security%', '8: an ontology record goes only into a space its writer may write');
RESET ROLE;

-- 9. A delete that did nothing says so.
SET LOCAL ROLE carol;
SELECT throws_like($$SELECT lamin.delete('BobLabl1')$$, 'permission denied%', '9: a reader''s trash is refused');
SELECT throws_like($$SELECT lamin.delete('BobLabl1', true)$$, 'permission denied%', '9: so is a reader''s delete');
SELECT is(lamin.restore('BobLabl1'), 'not in trash', '9: restore of a record not in the trash changes nothing');
RESET ROLE;
SELECT is((SELECT branch_id::int FROM lamin.ulabel WHERE uid = 'BobLabl1'), 1, '9: the record is unchanged');

-- 10. Builders that write names into DDL are not for users.
SET LOCAL ROLE bob;
SELECT throws_ok($$SELECT bionty.create_registry('x; DROP TABLE lamin.artifact', 'x', 'y text')$$, '42501', NULL,
                 '10: bionty.create_registry is not executable by users');
SELECT throws_ok($$SELECT bionty.comment_common_columns('bionty.cell_type', 'x')$$, '42501', NULL,
                 '10: nor bionty.comment_common_columns');
RESET ROLE;

-- Integrity: duplicate names with blanks, NULL arguments, keys, monitors.
SET LOCAL ROLE bob;
SELECT throws_like($$INSERT INTO lamin.ulabel (name) VALUES ('bob label ')$$, '%already exists%', 'a trailing blank does not make a new name');
SELECT throws_like($$INSERT INTO lamin.ulabel (name) VALUES ('BOB   label')$$, '%already exists%', 'nor do runs of blanks or case');
RESET ROLE;
SELECT throws_ok($$SELECT lamin.validate(NULL, ARRAY['x'])$$, '22004', NULL, 'validate: a NULL registry is a clear error');
SELECT throws_ok($$SELECT * FROM lamin.inspect(NULL, ARRAY['x'])$$, '22004', NULL, 'inspect: likewise');
SELECT throws_ok($$SELECT lamin.refresh_family_head(NULL, 'x')$$, '22004', NULL, 'refresh_family_head: a NULL registry');
SELECT throws_ok($$SELECT lamin.secure_table(NULL, 'space')$$, '22004', NULL, 'secure_table: a NULL table');
SELECT throws_like(format('SELECT lamin.check_key(%L)', E'a\nb.txt'), '%control%', 'keys: no newline');
SELECT throws_like(format('SELECT lamin.check_key(%L)', 'a' || chr(8238) || 'txt.exe'), '%control%', 'keys: no right-to-left override');
SELECT throws_like($$SELECT lamin.check_key(' padded.txt ')$$, '%blank%', 'keys: no leading or trailing blanks');
SET LOCAL ROLE carol;
SELECT throws_like($$SELECT lamin.finish_upload('BobArtifact000000002', repeat('c', 64))$$, 'permission denied%',
                   'finish_upload without write says permission denied');
RESET ROLE;
SELECT throws_like($$SELECT lamin.make_searchable('lamin.search_term')$$, '%lamin''s own tables%',
                   'the search index cannot be made searchable');
SELECT is(jsonb_array_length(lamin.record_columns('BobArtifact000000002', 1,
              (SELECT jsonb_agg(jsonb_build_object('name', 'wide_' || i, 'dtype', 'int')) FROM generate_series(1, 5000) i)) -> 'created'),
          5000, 'a table of 5000 columns makes its 5000 features in one call');
SET LOCAL ROLE t_monitor;
SELECT ok((SELECT count(*) FROM lamin.jobs) >= 2, 'pg_monitor members see every job in lamin.jobs');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
