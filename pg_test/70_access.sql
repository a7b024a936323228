-- Access matrix: roles × registries × operations, each cell run as that role
-- and undone, compared with the outcome the access rules give. Extend it by
-- adding rows to `op` (what to try) or `who` (a role and its levels).
--   ok    the statement did its work (or saw the row)
--   none  it ran but touched nothing (row-level security hid the rows)
--   error it was refused
BEGIN;
SELECT plan(17);

-- Roles of the matrix: their level in the default space "all" and in space "x".
CREATE ROLE t_none;
CREATE ROLE t_reader IN ROLE lamin_reader;
CREATE ROLE t_writer IN ROLE lamin_writer;
CREATE ROLE t_admin IN ROLE lamin_admin;
CREATE ROLE t_xwriter IN ROLE lamin_reader;
CREATE ROLE t_xreader IN ROLE lamin_reader;
CREATE TEMP TABLE who (role_name name PRIMARY KEY, in_all text, in_x text, member text);
INSERT INTO who VALUES
    ('t_none', 'none', 'none', 'none'),
    ('t_reader', 'read', 'none', 'reader'),
    ('t_writer', 'write', 'none', 'writer'),
    ('t_admin', 'admin', 'admin', 'admin'),
    ('t_xwriter', 'read', 'write', 'reader'),
    ('t_xreader', 'read', 'read', 'reader');
GRANT SELECT ON who TO PUBLIC;

SELECT lamin.create_space('x') IS NOT NULL AS made_x;
SELECT lamin.grant('x', 't_xwriter', 'write'), lamin.grant('x', 't_xreader', 'read');
SELECT lamin.add_storage('/tmp/lamin-pgtap-access');
SELECT lamin.space_id('x') AS x \gset

-- One record per registry and space ('all' = 1, 'x'), named by a fixed uid.
INSERT INTO lamin.transform (uid, key, space_id) VALUES ('TrAll000000a0000', 'm/all', 1), ('TrXxx000000a0000', 'm/x', :x),
    ('TrHelp00000a0000', 'm/helper', 1);
INSERT INTO lamin.run (uid, transform_id, space_id)
SELECT u, (SELECT id FROM lamin.transform WHERE uid = 'TrHelp00000a0000'), s
FROM (VALUES ('RunAll0000000000000a', 1), ('RunXxx0000000000000a', :x)) v(u, s);
INSERT INTO lamin.artifact (uid, storage_id, space_id, hash, hash_type, size, status)
SELECT u, (SELECT id FROM lamin.storage LIMIT 1), s, h, 'sha256', 1, 'ready'
FROM (VALUES ('ArtAll00000000000000', 1, repeat('a', 64)), ('ArtXxx00000000000000', :x, repeat('b', 64))) v(u, s, h);
INSERT INTO lamin.collection (uid, key, space_id) VALUES ('ColAll00000000000000', 'm/all', 1), ('ColXxx00000000000000', 'm/x', :x);
INSERT INTO lamin.feature (uid, name, dtype, space_id) VALUES ('FeaAll000000', 'm_all', 'int', 1), ('FeaXxx000000', 'm_x', 'int', :x);
INSERT INTO lamin.schema (uid, hash, space_id) VALUES ('SchAll00000a0000', repeat('c', 64), 1), ('SchXxx00000a0000', repeat('d', 64), :x);
INSERT INTO lamin.ulabel (uid, name, space_id) VALUES ('UlbAll0a', 'm_all', 1), ('UlbXxx0a', 'm_x', :x);

-- Registries of spaces: the uid of their record in each space, and how to make one.
CREATE TEMP TABLE reg (name text PRIMARY KEY, uid_all text, uid_x text, make text);
INSERT INTO reg VALUES
    ('lamin.transform', 'TrAll000000a0000', 'TrXxx000000a0000', $$INSERT INTO lamin.transform (key, space_id) VALUES ('m/new', %s)$$),
    ('lamin.run', 'RunAll0000000000000a', 'RunXxx0000000000000a',
     $$INSERT INTO lamin.run (transform_id, space_id) SELECT id, %s FROM lamin.transform WHERE uid = 'TrHelp00000a0000'$$),
    ('lamin.artifact', 'ArtAll00000000000000', 'ArtXxx00000000000000',
     $$INSERT INTO lamin.artifact (storage_id, space_id, status) SELECT id, %s, 'pending' FROM lamin.storage LIMIT 1$$),
    ('lamin.collection', 'ColAll00000000000000', 'ColXxx00000000000000', $$INSERT INTO lamin.collection (key, space_id) VALUES ('m/new', %s)$$),
    ('lamin.feature', 'FeaAll000000', 'FeaXxx000000', $$INSERT INTO lamin.feature (name, dtype, space_id) VALUES ('m_new', 'int', %s)$$),
    ('lamin.schema', 'SchAll00000a0000', 'SchXxx00000a0000', $$INSERT INTO lamin.schema (hash, space_id) VALUES (repeat('e', 64), %s)$$),
    ('lamin.ulabel', 'UlbAll0a', 'UlbXxx0a', $$INSERT INTO lamin.ulabel (name, space_id) VALUES ('m_new', %s)$$);
GRANT SELECT ON reg TO PUBLIC;

-- Run `stmt` as `who` and undo it; report ok / none / error.
CREATE FUNCTION pg_temp.attempt(who name, stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    outcome text;
    n bigint;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', who);
    BEGIN
        EXECUTE stmt;
        GET DIAGNOSTICS n = ROW_COUNT;
        RAISE EXCEPTION 'undo:%', CASE WHEN n = 0 THEN 'none' ELSE 'ok' END;
    EXCEPTION WHEN OTHERS THEN
        outcome := CASE WHEN SQLERRM LIKE 'undo:%' THEN substr(SQLERRM, 6) ELSE 'error' END;
    END;
    RESET ROLE;
    RETURN outcome;
END
$$;

CREATE FUNCTION pg_temp.at_least(level text, wanted text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT array_position(ARRAY['none', 'read', 'write', 'admin'], level) >= array_position(ARRAY['none', 'read', 'write', 'admin'], wanted)
$$;

-- Operations on the registries of spaces, in each space.
CREATE TEMP TABLE cell AS
SELECT w.role_name, r.name AS registry, o.op, sp.space,
       pg_temp.attempt(w.role_name, format(o.stmt, r.name, CASE sp.space WHEN 'all' THEN r.uid_all ELSE r.uid_x END,
                                           CASE sp.space WHEN 'all' THEN '1' ELSE :'x' END, r.make,
                                           CASE sp.space WHEN 'all' THEN :'x' ELSE '1' END)) AS got,
       CASE WHEN w.member = 'none' THEN 'error'
            ELSE (SELECT CASE o.op
                    WHEN 'select' THEN CASE WHEN pg_temp.at_least(lv, 'read') THEN 'ok' ELSE 'none' END
                    WHEN 'insert' THEN CASE WHEN pg_temp.at_least(lv, 'write') THEN 'ok' ELSE 'error' END
                    WHEN 'move' THEN CASE WHEN NOT pg_temp.at_least(lv, 'write') THEN 'none'
                                          WHEN pg_temp.at_least(other, 'write') THEN 'ok' ELSE 'error' END
                    ELSE CASE WHEN pg_temp.at_least(lv, 'write') THEN 'ok' ELSE 'none' END END
                  FROM (SELECT CASE sp.space WHEN 'all' THEN w.in_all ELSE w.in_x END AS lv,
                               CASE sp.space WHEN 'all' THEN w.in_x ELSE w.in_all END AS other) l)
       END AS expected
FROM who w CROSS JOIN reg r CROSS JOIN (VALUES ('all'), ('x')) sp(space)
CROSS JOIN (VALUES
    ('select', 'SELECT 1 FROM %1$s WHERE uid = %2$L'),
    ('update', 'UPDATE %1$s SET is_locked = false WHERE uid = %2$L'),
    ('delete', 'DELETE FROM %1$s WHERE uid = %2$L'),
    ('insert', '%4$s'),
    ('move', 'UPDATE %1$s SET space_id = %5$s WHERE uid = %2$L')
) o(op, stmt);
-- (insert: %4$s is the registry's template, filled with the space below)
UPDATE cell c SET got = pg_temp.attempt(c.role_name, format(r.make, CASE c.space WHEN 'all' THEN '1' ELSE :'x' END))
FROM reg r WHERE r.name = c.registry AND c.op = 'insert';

SELECT is((SELECT count(*)::int FROM cell), 6 * 7 * 2 * 5, 'the matrix has every role × registry × space × operation');
SELECT is((SELECT string_agg(format('%s %s %s in %s: got %s, expected %s', role_name, op, registry, space, got, expected), E'\n')
           FROM cell WHERE got IS DISTINCT FROM expected), NULL,
          'registries of spaces: every cell as expected');

-- Ontologies and the other shared tables: read by lamin roles, written by writers.
CREATE TEMP TABLE shared_cell AS
SELECT w.role_name, o.op, pg_temp.attempt(w.role_name, o.stmt) AS got,
       CASE WHEN w.member = 'none' THEN 'error'
            WHEN o.op = 'select' THEN 'ok'
            WHEN w.member IN ('writer', 'admin') THEN 'ok' ELSE 'error' END AS expected
FROM who w CROSS JOIN (VALUES
    ('select', $$SELECT 1 FROM bionty.cell_type LIMIT 1$$),
    ('insert', $$INSERT INTO bionty.cell_type (name, ontology_id) VALUES ('matrix cell', 'CL:9999999')$$),
    ('update', $$UPDATE bionty.cell_type SET description = 'x' WHERE ontology_id = 'CL:0000001'$$),
    ('delete', $$DELETE FROM bionty.cell_type WHERE ontology_id = 'CL:0000001'$$)
) o(op, stmt);
INSERT INTO bionty.cell_type (name, ontology_id) VALUES ('primordial cell', 'CL:0000001');
UPDATE shared_cell s SET got = pg_temp.attempt(s.role_name, o.stmt)
FROM (VALUES ('update', $$UPDATE bionty.cell_type SET description = 'x' WHERE ontology_id = 'CL:0000001'$$),
             ('delete', $$DELETE FROM bionty.cell_type WHERE ontology_id = 'CL:0000001'$$),
             ('select', $$SELECT 1 FROM bionty.cell_type LIMIT 1$$)) o(op, stmt)
WHERE s.op = o.op;
SELECT is((SELECT string_agg(format('%s %s cell_type: got %s, expected %s', role_name, op, got, expected), E'\n')
           FROM shared_cell WHERE got IS DISTINCT FROM expected), NULL,
          'ontologies: read by every lamin role, written by writers');

-- Grants, jobs and the audit log.
CREATE TEMP TABLE other_cell AS
SELECT w.role_name, o.op, pg_temp.attempt(w.role_name, o.stmt) AS got,
       CASE o.op
           WHEN 'grant in x' THEN CASE WHEN w.in_x = 'admin' THEN 'ok' ELSE 'error' END
           WHEN 'create space' THEN CASE WHEN w.member = 'admin' THEN 'ok' ELSE 'error' END
           WHEN 'stage x' THEN CASE WHEN pg_temp.at_least(w.in_x, 'read') THEN 'ok' ELSE 'error' END
           WHEN 'verify x' THEN CASE WHEN pg_temp.at_least(w.in_x, 'write') THEN 'ok' ELSE 'error' END
           WHEN 'enqueue noop' THEN CASE WHEN w.member = 'none' THEN 'error' ELSE 'ok' END
           WHEN 'import' THEN CASE WHEN w.member IN ('writer', 'admin') THEN 'ok' ELSE 'error' END
           WHEN 'sweep' THEN CASE WHEN w.member = 'admin' THEN 'ok' ELSE 'error' END
           WHEN 'read audit of x' THEN CASE WHEN w.member = 'none' THEN 'error'
                                            WHEN pg_temp.at_least(w.in_x, 'read') THEN 'ok' ELSE 'none' END
           WHEN 'change audit' THEN 'error'
           WHEN 'write audit' THEN 'error'
           WHEN 'register' THEN CASE WHEN pg_temp.at_least(w.in_all, 'write') THEN 'ok' ELSE 'error' END
       END AS expected
FROM who w CROSS JOIN (VALUES
    ('grant in x', $$SELECT lamin.grant('x', 't_reader', 'read')$$),
    ('create space', $$SELECT lamin.create_space('y')$$),
    ('stage x', $$SELECT lamin.stage('ArtXxx00000000000000')$$),
    ('verify x', $$SELECT lamin.verify('ArtXxx00000000000000')$$),
    ('enqueue noop', $$SELECT lamin.enqueue('noop')$$),
    ('import', $$SELECT lamin.import_ontology('cell_type', 'cl.obo')$$),
    ('sweep', $$SELECT lamin.sweep_storage()$$),
    ('read audit of x', $$SELECT 1 FROM lamin.audit WHERE uid = 'ArtXxx00000000000000'$$),
    ('change audit', $$UPDATE lamin.audit SET role_name = 'nobody'$$),
    ('write audit', $$INSERT INTO lamin.audit (registry, operation) VALUES ('lamin.artifact', 'delete')$$),
    ('register', $$SELECT lamin.register('/tmp/lamin-pgtap-access/raw/a.csv')$$)
) o(op, stmt);
SELECT is((SELECT string_agg(format('%s %s: got %s, expected %s', role_name, op, got, expected), E'\n')
           FROM other_cell WHERE got IS DISTINCT FROM expected), NULL,
          'grants, spaces, jobs and the audit log: every cell as expected');

-- Enqueueing each job kind (plain lamin.enqueue): allowed by the kind's
-- needs_role; internal kinds by nobody (lamin enqueues them itself).
SELECT is((SELECT string_agg(format('%s enqueue %s: got %s, expected %s', role_name, kind, got, expected), E'\n')
           FROM (SELECT w.role_name, k.kind,
                        pg_temp.attempt(w.role_name, format('SELECT lamin.enqueue(%L)', k.kind)) AS got,
                        CASE WHEN w.member = 'none' OR k.internal THEN 'error'
                             WHEN k.needs_role = 'lamin_reader' THEN 'ok'
                             WHEN k.needs_role = 'lamin_writer' AND w.member IN ('writer', 'admin') THEN 'ok'
                             WHEN k.needs_role = 'lamin_admin' AND w.member = 'admin' THEN 'ok'
                             ELSE 'error' END AS expected
                 FROM who w CROSS JOIN lamin.job_kind k) c
           WHERE got IS DISTINCT FROM expected), NULL,
          'every job kind × role: enqueued only with the kind''s role');

-- Locked records: only admins of their space change them.
UPDATE lamin.ulabel SET is_locked = true WHERE uid = 'UlbXxx0a';
SELECT is(pg_temp.attempt('t_xwriter', $$UPDATE lamin.ulabel SET name = 'changed' WHERE uid = 'UlbXxx0a'$$), 'error',
          'a writer cannot change a locked record');
SELECT is(pg_temp.attempt('t_xwriter', $$DELETE FROM lamin.ulabel WHERE uid = 'UlbXxx0a'$$), 'error', '… nor delete it');
SELECT is(pg_temp.attempt('t_admin', $$UPDATE lamin.ulabel SET name = 'changed' WHERE uid = 'UlbXxx0a'$$), 'ok', 'an admin can');
SELECT is(pg_temp.attempt('t_xwriter', $$UPDATE lamin.feature SET is_locked = true WHERE uid = 'FeaXxx000000'$$), 'error',
          'only admins lock records');
SET LOCAL ROLE t_xwriter;
SELECT lamin.use_space('x');
SELECT throws_like($$UPDATE lamin.ulabel SET name = 'changed' WHERE uid = 'UlbXxx0a'$$, '%is locked: only admins of its space%',
                   'the refusal names the lock');
RESET ROLE;

-- Records go to the session's space; use_space needs write on it.
SET LOCAL ROLE t_xwriter;
SELECT lamin.use_space('x');
INSERT INTO lamin.ulabel (name) VALUES ('made in x');
RESET ROLE;
SELECT is((SELECT s.name FROM lamin.ulabel u JOIN lamin.space s ON s.id = u.space_id WHERE u.name = 'made in x'), 'x',
          'use_space puts new records into that space');
SET LOCAL ROLE t_xreader;
SELECT throws_like($$SELECT lamin.use_space('x')$$, '%cannot write in space x%', 'use_space needs write on the space');
SELECT is((SELECT count(*)::int FROM lamin.access() WHERE space = 'x' AND can_read AND NOT can_write), 1,
          'access() lists what the role may do');
RESET ROLE;

-- The audit log records who changed what.
SELECT is((SELECT role_name || ' ' || operation FROM lamin.audit WHERE registry = 'lamin.ulabel' AND uid = 'UlbXxx0a'
           AND operation = 'update' ORDER BY id DESC LIMIT 1), current_user || ' update', 'updates are audited with the role');
SELECT is((SELECT fields FROM lamin.audit WHERE registry = 'lamin.ulabel' AND uid = 'UlbXxx0a' AND operation = 'update'
           ORDER BY id DESC LIMIT 1), '{is_locked}', '… and the fields that changed');
SELECT ok(EXISTS (SELECT FROM lamin.audit WHERE registry = 'lamin.ulabel' AND operation = 'insert' AND role_name = 't_xwriter'),
          'the inserting role is recorded (not the superuser)');
SELECT throws_like($$DELETE FROM lamin.audit$$, '%append-only%', 'not even a superuser deletes audit rows');

SELECT * FROM finish();
ROLLBACK;
