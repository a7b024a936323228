\echo Use "ALTER EXTENSION lamin UPDATE TO '0.8.0'" to load this file. \quit
-- lamin 0.7.0 → 0.8.0 (issue 19: a mesh of instances, and moving in from
-- LaminDB). Run by ALTER EXTENSION lamin UPDATE in one transaction (all or
-- nothing). Definitions are copied verbatim from sql/ (the upgrade test
-- compares the result with a fresh install object by object): first the
-- changes to existing objects, then sql/31_instances.sql,
-- sql/32_transfer.sql and sql/33_lamindb.sql, whose objects are all new.

-- == a record keeps its uid across instances (extension/src/uid.rs) ==
CREATE FUNCTION lamin."admit_uid"(
	"uid" TEXT
) RETURNS void
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'admit_uid_wrapper';

-- == storages another instance manages (sql/02_storage.sql); runs with
--    LaminDB's 16-character uids (sql/03_transform_run.sql) ==
ALTER TABLE lamin.storage
    ADD COLUMN instance_uid text CONSTRAINT storage_instance_uid_format CHECK (instance_uid ~ '^[0-9A-Za-z_-]{1,64}$');
COMMENT ON COLUMN lamin.storage.instance_uid IS 'The instance that manages the objects under .lamindb/ of this root: NULL for this one; another lamin instance''s or a LaminDB instance''s uid for a root reached through lamin transfer or lamin import-lamindb. lamin never removes bytes from a root another instance manages (no sweep, no deletion of objects); an admin adopts one with UPDATE lamin.storage SET instance_uid = NULL.';
ALTER TABLE lamin.run
    DROP CONSTRAINT run_uid_format,
    ADD CONSTRAINT run_uid_format CHECK (uid ~ '^[0-9A-Za-z]{16}([0-9A-Za-z]{4})?$');

-- == no sweep in a root another instance manages (sql/20_storage_jobs.sql) ==
-- Sweep storages for the leftovers of interrupted saves: one job per storage
-- (a sweep already queued or running is reused). Uploads idle for grace_s are
-- abandoned: recovered if their bytes are complete, else failed and removed.
-- Instance admins and the sidecar sweep; the sweep runs as the sidecar, which
-- sees every artifact (a sweep that saw only some would take the others'
-- objects for orphans).
CREATE OR REPLACE FUNCTION lamin.sweep_storage(storage text DEFAULT NULL, grace_s int DEFAULT 3600) RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    s record;
BEGIN
    IF grace_s IS NULL OR grace_s < 0 THEN
        RAISE EXCEPTION 'grace_s must be >= 0 seconds' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (pg_has_role('lamin_admin', 'USAGE') OR current_user = 'lamin_sidecar' OR lamin.is_unrestricted()) THEN
        RAISE EXCEPTION 'permission denied: sweeping storages needs lamin_admin (role % is not a member)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Never a root another instance manages (lamin.storage.instance_uid):
    -- its objects are not all known here.
    FOR s IN SELECT x.id FROM lamin.storage x
             WHERE (storage IS NULL OR x.id = lamin.storage_id(storage)) AND x.instance_uid IS NULL ORDER BY x.id
    LOOP
        RETURN NEXT lamin.enqueue_sweep(s.id, grace_s);
    END LOOP;
END
$$;

-- == 31_instances.sql ==
-- Instances: each database with the extension is one instance of a mesh.
-- Its identity (a uid and a name) says where transferred records came from
-- (sql/32_transfer.sql); other instances are read without copying through
-- postgres_fdw (lamin.attach_instance).

-- == Records from elsewhere ==
-- Artifacts moved in from LaminDB keep LaminDB's hash beside their sha256,
-- and may lie where LaminDB put them: a family of LaminDB's folder versions
-- shares one object. (Added here, after schema_id of 0.6.0, in the order an
-- upgrade adds them.)
ALTER TABLE lamin.artifact
    ADD COLUMN legacy_hash text,
    ADD COLUMN legacy_hash_type text CONSTRAINT artifact_legacy_hash_type_known CHECK (legacy_hash_type IN ('md5', 'md5-n', 'md5-d', 'sha1-fl')),
    ADD COLUMN overwrite_versions boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT artifact_legacy_hash_with_type CHECK ((legacy_hash IS NULL) = (legacy_hash_type IS NULL));
COMMENT ON COLUMN lamin.artifact.legacy_hash IS 'The hash LaminDB recorded (lamin import-lamindb): base64 of an md5 for small files, of md5s of parts, of a folder''s file hashes, or a sha1 of the first and last 50 MiB; kept beside the full sha256 (hash) the sidecar computes.';
COMMENT ON COLUMN lamin.artifact.legacy_hash_type IS 'LaminDB''s _hash_type of legacy_hash: md5, md5-n (parts), md5-d (folder) or sha1-fl (first and last 50 MiB).';
COMMENT ON COLUMN lamin.artifact.overwrite_versions IS 'LaminDB''s _overwrite_versions: the versions of this family share one object at .lamindb/{stem}{suffix} (folders saved by LaminDB); a new version overwrote the bytes of the previous one.';

-- Where an artifact's bytes are, relative to its storage root (the one rule;
-- sql/12_describe_delete.sql had it before these columns existed).
CREATE OR REPLACE FUNCTION lamin.object_key(a lamin.artifact) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN NOT a.key_is_virtual THEN a.key
                WHEN a.overwrite_versions THEN '.lamindb/' || left(a.uid, 16) || a.suffix
                ELSE '.lamindb/' || a.uid || a.suffix END
$$;
COMMENT ON FUNCTION lamin.object_key(lamin.artifact) IS 'Path of an artifact''s bytes within its storage root: .lamindb/{uid}{suffix}, .lamindb/{stem}{suffix} for a family whose versions share one object (LaminDB''s folders), or the key of a registered object.';

-- A register job that could not read an object fails its artifact: a
-- registered one, or one moved in from LaminDB (which would otherwise stay
-- pending).
CREATE OR REPLACE FUNCTION lamin.fail_register(uid text, error text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE lamin.artifact a SET status = 'failed', updated_at = now(), status_detail = 'register failed: ' || left($2, 1000)
    WHERE a.id = lamin.artifact_id($1) AND a.status = 'pending' AND (NOT a.key_is_virtual OR a.legacy_hash IS NOT NULL)
$$;
COMMENT ON FUNCTION lamin.fail_register(text, text) IS 'Sidecar: a registered object (or one moved in from LaminDB) could not be read; its artifact becomes failed (register the URI, or import, again to retry).';

-- The objects of permanently deleted artifacts are deleted by a job
-- (sql/20_storage_jobs.sql), except those lamin does not own alone: a
-- registered object (a real key), the bytes in a root another instance
-- manages (lamin.storage.instance_uid), and the one object a family of
-- LaminDB's folder versions shares.
CREATE OR REPLACE FUNCTION lamin.tg_artifact_delete_object() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO lamin.job (kind, args, requested_by)
    SELECT 'delete_object', jsonb_build_object('uid', g.uid, 'storage_id', g.storage_id, 'object', lamin.object_key(g),
                                               'folder', g.n_files IS NOT NULL),
           'lamin_sidecar'
    FROM gone g
    WHERE g.key_is_virtual AND NOT g.overwrite_versions
      AND NOT EXISTS (SELECT FROM lamin.storage s WHERE s.id = g.storage_id AND s.instance_uid IS NOT NULL);
    RETURN NULL;
END
$$;

-- == This instance ==
-- The identity, one row. Not made by CREATE EXTENSION: a template database
-- (scripts/up keeps lamin_template) must not pass one identity on to every
-- database cloned from it, and a restore brings its own row back. It is made
-- by lamin.init_instance (lamin init), or on first use by lamin.instance().
CREATE TABLE lamin.instance (
    one         boolean PRIMARY KEY DEFAULT true CONSTRAINT instance_one_row CHECK (one),
    uid         text NOT NULL DEFAULT lamin.uid(12)
                CONSTRAINT instance_uid_format CHECK (uid ~ '^[0-9A-Za-z]{12}$'),
    name        text NOT NULL CONSTRAINT instance_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lamin.instance IS 'This instance''s identity in a mesh of instances (one row): its uid and name travel with the records transferred from it.';
COMMENT ON COLUMN lamin.instance.one IS 'Always true: the table holds one row.';
COMMENT ON COLUMN lamin.instance.uid IS '12 random base62 characters, new for every instance (a clone of a template gets its own from lamin.init_instance).';
COMMENT ON COLUMN lamin.instance.name IS 'The instance''s name: by default its database''s name.';
COMMENT ON COLUMN lamin.instance.description IS 'What the instance holds, for the people it is shared with.';
COMMENT ON COLUMN lamin.instance.created_at IS 'When the identity was made.';
-- A restored instance keeps its identity.
SELECT pg_catalog.pg_extension_config_dump('lamin.instance', '');
SELECT lamin.secure_table('lamin.instance', 'shared');
REVOKE INSERT, UPDATE, DELETE ON lamin.instance FROM lamin_writer;

-- The identity, made on first use (name: the database's, when it fits).
-- SECURITY DEFINER: a reader asking for it may not write the table.
CREATE FUNCTION lamin.instance() RETURNS lamin.instance
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me lamin.instance;
BEGIN
    SELECT * INTO me FROM lamin.instance;
    IF NOT FOUND THEN
        INSERT INTO lamin.instance (name)
        VALUES (CASE WHEN current_database() ~ '^[a-z][a-z0-9_]{0,62}$' THEN current_database() ELSE 'instance' END)
        ON CONFLICT (one) DO NOTHING;
        SELECT * INTO me FROM lamin.instance;
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION lamin.instance() IS 'This instance''s identity (uid, name, description), made on first use.';
GRANT EXECUTE ON FUNCTION lamin.instance() TO lamin_reader;

-- A new identity (used by init_instance after its checks), never where
-- records exist (counted whatever their space). SECURITY DEFINER: the table
-- is written by no role directly.
CREATE FUNCTION lamin.set_instance_identity(name text, description text) RETURNS lamin.instance
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    made lamin.instance;
BEGIN
    IF EXISTS (SELECT FROM lamin.artifact) OR EXISTS (SELECT FROM lamin.collection)
       OR EXISTS (SELECT FROM lamin.transform) OR EXISTS (SELECT FROM lamin.run) THEN
        RAISE EXCEPTION 'database % already holds an instance with records: lamin.init_instance makes a new one only in a fresh database',
            current_database() USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'lamin init NAME makes a new database; lamin.instance() is this one''s identity';
    END IF;
    DELETE FROM lamin.instance;
    INSERT INTO lamin.instance (name, description) VALUES (name, description) RETURNING * INTO made;
    RETURN made;
END
$$;
COMMENT ON FUNCTION lamin.set_instance_identity(text, text) IS 'Replace the identity with a new uid, name and description (lamin.init_instance checks first).';
REVOKE EXECUTE ON FUNCTION lamin.set_instance_identity(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.set_instance_identity(text, text) TO lamin_admin;

-- Make a fresh database a new instance (lamin init runs it after CREATE
-- DATABASE … TEMPLATE lamin_template): a new uid and name, and the default
-- storage. Refused where records exist already: an instance with data keeps
-- its identity (records transferred from it name it).
CREATE FUNCTION lamin.init_instance(name text, storage text DEFAULT NULL, description text DEFAULT NULL)
RETURNS lamin.instance
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    made lamin.instance;
BEGIN
    IF NOT (coalesce(lamin.is_unrestricted(), false) OR lamin.is_instance_admin()) THEN
        RAISE EXCEPTION 'permission denied: making an instance needs lamin_admin (role % is not one)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid instance name %: expected lowercase letters, digits and _ (at most 63, starting with a letter)',
            coalesce(quote_literal(left(name, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    made := lamin.set_instance_identity(name, description);
    IF storage IS NOT NULL THEN
        PERFORM lamin.add_storage(storage, format('default storage of instance %s', name));
    END IF;
    RETURN made;
END
$$;
COMMENT ON FUNCTION lamin.init_instance(text, text, text) IS
    'Make this fresh database (e.g. CREATE DATABASE x TEMPLATE lamin_template) a new instance: a new uid, the name, and the default storage root when given. Instance admins only; refused where records exist.';
REVOKE EXECUTE ON FUNCTION lamin.init_instance(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.init_instance(text, text, text) TO lamin_admin;

-- The documented views another instance is read through (lamin.attach_instance).
CREATE FUNCTION lamin.shared_views() RETURNS TABLE (schema_name text, view_name text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('lamin', 'artifacts'), ('lamin', 'collections'), ('lamin', 'transforms'), ('lamin', 'runs'),
           ('lamin', 'features'), ('lamin', 'schemas'), ('lamin', 'ulabels'), ('lamin', 'annotations'),
           ('lamin', 'feature_values'), ('lamin', 'run_artifacts'), ('lamin', 'lineage_edge'),
           ('bionty', 'artifact_terms'), ('bionty', 'sources')
$$;
COMMENT ON FUNCTION lamin.shared_views() IS 'The documented views lamin.attach_instance makes foreign tables of (schema, view).';

-- Read another instance without copying: a postgres_fdw server, the
-- caller's user mapping, and a schema named after the instance with foreign
-- tables of its documented views (read-only). The other side's row-level
-- security applies to the remote role the mapping logs in as: each local
-- role sees what its remote role may read (give each their own mapping).
CREATE FUNCTION lamin.attach_instance(
    name text, host text, port int, dbname text,
    remote_user text DEFAULT NULL, password text DEFAULT NULL
) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    server text := 'lamin_instance_' || name;
    v record;
    n int;
    detail text;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,40}$' THEN
        RAISE EXCEPTION 'invalid instance name %: expected lowercase letters, digits and _ (at most 41, starting with a letter); it names the schema',
            coalesce(quote_literal(left(name, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name IN ('lamin', 'bionty', 'public', 'pg_catalog', 'information_schema') OR to_regnamespace(name) IS NOT NULL THEN
        RAISE EXCEPTION 'schema % exists already: attach the instance under another name, or lamin.detach_instance(%) first',
            quote_ident(name), quote_literal(name) USING ERRCODE = 'duplicate_schema';
    END IF;
    IF host IS NULL OR port IS NULL OR dbname IS NULL THEN
        RAISE EXCEPTION 'attaching an instance needs its host, port and database name' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'postgres_fdw') THEN
        BEGIN
            CREATE EXTENSION postgres_fdw;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'attaching an instance needs the postgres_fdw extension, and role % may not create it', current_user
                USING ERRCODE = 'insufficient_privilege', HINT = 'a superuser runs once: CREATE EXTENSION postgres_fdw; GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO lamin_admin';
        END;
    END IF;
    EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L, updatable %L)',
                   server, host, port::text, dbname, 'false');
    EXECUTE format('COMMENT ON SERVER %I IS %L', server, format('lamin instance %s (attached read-only by lamin.attach_instance)', name));
    EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS (%s)', server,
                   concat_ws(', ', format('user %L', coalesce(remote_user, current_user)),
                             CASE WHEN password IS NOT NULL THEN format('password %L', password) END));
    EXECUTE format('CREATE SCHEMA %I', name);
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', name,
                   format('Foreign tables of the documented views of lamin instance %s (%s:%s/%s), read-only; drop with lamin.detach_instance(%L).',
                          name, host, port, dbname, name));
    FOR v IN SELECT s.schema_name, array_agg(s.view_name ORDER BY s.view_name) AS views
             FROM lamin.shared_views() s GROUP BY s.schema_name LOOP
        BEGIN
            EXECUTE format('IMPORT FOREIGN SCHEMA %I LIMIT TO (%s) FROM SERVER %I INTO %I', v.schema_name,
                           (SELECT string_agg(quote_ident(x), ', ') FROM unnest(v.views) x), server, name);
        EXCEPTION
            WHEN fdw_schema_not_found THEN
                RAISE EXCEPTION 'database % at %:% is not a lamin instance: it has no schema %', dbname, host, port, v.schema_name
                    USING ERRCODE = 'undefined_table', HINT = 'check the database name';
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
                RAISE EXCEPTION 'cannot read instance % at %:%/%: % %', name, host, port, dbname, SQLERRM,
                    coalesce('(' || nullif(detail, '') || ')', '')
                    USING ERRCODE = 'connection_failure', HINT = 'check the host, port, database, and the remote role and its password';
        END;
    END LOOP;
    SELECT count(*) INTO n FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
    WHERE c.relnamespace = to_regnamespace(name);
    IF n < (SELECT count(*) FROM lamin.shared_views()) THEN
        RAISE EXCEPTION 'database % at %:% is not a lamin instance of a matching release: % of its % documented views were found',
            dbname, host, port, n, (SELECT count(*) FROM lamin.shared_views())
            USING ERRCODE = 'undefined_table', HINT = 'upgrade it (ALTER EXTENSION lamin UPDATE) or check the database name';
    END IF;
    -- The first query proves the connection and the login, now rather than later.
    BEGIN
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I.artifacts LIMIT 1) x', name);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION 'cannot read instance % at %:%/%: % %', name, host, port, dbname, SQLERRM, coalesce('(' || nullif(detail, '') || ')', '')
            USING ERRCODE = 'connection_failure', HINT = 'check the host, port, database, and the remote role and its password';
    END;
    RETURN n;
END
$$;
COMMENT ON FUNCTION lamin.attach_instance(text, text, int, text, text, text) IS
    'Attach another lamin instance read-only: schema NAME with foreign tables (postgres_fdw) of its documented views, read as remote_user (its row-level security applies). Returns the number of foreign tables.';

CREATE FUNCTION lamin.detach_instance(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF NOT EXISTS (SELECT FROM pg_foreign_server s WHERE s.srvname = 'lamin_instance_' || name) THEN
        RAISE EXCEPTION 'no instance % is attached', coalesce(quote_literal(name), 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', name);
    EXECUTE format('DROP SERVER %I CASCADE', 'lamin_instance_' || name);
END
$$;
COMMENT ON FUNCTION lamin.detach_instance(text) IS 'Drop an attached instance: its schema of foreign tables, its server and user mappings. Nothing of the other instance is touched.';

-- The instances attached here.
CREATE VIEW lamin.attached_instances WITH (security_invoker = true) AS
SELECT substr(s.srvname, length('lamin_instance_') + 1) AS name,
       (SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'host') AS host,
       (SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'port') AS port,
       (SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'dbname') AS dbname
FROM pg_foreign_server s
WHERE s.srvname LIKE 'lamin\_instance\_%';
COMMENT ON VIEW lamin.attached_instances IS 'Instances attached read-only (lamin.attach_instance): the schema name and where they are.';
COMMENT ON COLUMN lamin.attached_instances.name IS 'The schema holding the foreign tables.';
COMMENT ON COLUMN lamin.attached_instances.host IS 'The other instance''s host.';
COMMENT ON COLUMN lamin.attached_instances.port IS 'Its port.';
COMMENT ON COLUMN lamin.attached_instances.dbname IS 'Its database.';
GRANT SELECT ON lamin.attached_instances TO lamin_reader;

-- == 32_transfer.sql ==
-- Transfer between instances. The source writes what the caller can read of
-- some artifacts and collections as one JSON document (lamin.transfer_out),
-- with every annotation by meaning, never by internal id: labels by name and
-- type, ontology terms by their public id, features by name and dtype. The
-- target maps it onto its own records (lamin.transfer_in), all or nothing,
-- as the calling role (row-level security holds on both sides). `lamin
-- transfer` connects to both and, with --copy, moves the bytes between them.

COMMENT ON FUNCTION lamin.admit_uid(text) IS 'Let this session insert a record with a uid lamin.uid did not hand out: a record transferred from another instance keeps its uid (lamin.transfer_in). 8 to 20 base62 characters.';
-- Writers only (they transfer): the unique key may refuse an admitted uid,
-- the one hint of a record in an unreadable space a transfer can give.
REVOKE EXECUTE ON FUNCTION lamin.admit_uid(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.admit_uid(text) TO lamin_writer;

-- The public id of a registry's records (what a term is matched by across
-- instances): its id field (ontology_id, ensembl_gene_id, …), else its name.
CREATE FUNCTION lamin.public_id_field(registry text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(r.id_field, r.name_field) FROM lamin.registry r WHERE r.name = registry
$$;
COMMENT ON FUNCTION lamin.public_id_field(text) IS 'The field records of a registry are matched by across instances: its id field (e.g. ontology_id), else its name field.';

-- One artifact as a transfer sees it (the caller's view of it).
CREATE FUNCTION lamin.transfer_artifact_json(a lamin.artifact) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'uid', a.uid, 'key', a.key, 'key_is_virtual', a.key_is_virtual, 'description', a.description,
        'suffix', a.suffix, 'kind', a.kind, 'otype', a.otype, 'size', a.size, 'hash', a.hash,
        'hash_type', a.hash_type, 'n_files', a.n_files, 'n_observations', a.n_observations,
        'version', a.version, 'created_at', a.created_at, 'status', a.status,
        'storage', (SELECT jsonb_build_object('root', s.root, 'region', s.region,
                                              'instance_uid', coalesce(s.instance_uid, (SELECT i.uid FROM lamin.instance i)))
                    FROM lamin.storage s WHERE s.id = a.storage_id),
        'overwrite_versions', a.overwrite_versions,
        'object', lamin.object_key(a),
        'run', (SELECT jsonb_build_object('uid', r.uid, 'transform', jsonb_build_object('uid', t.uid, 'key', t.key, 'kind', t.kind))
                FROM lamin.run r JOIN lamin.transform t ON t.id = r.transform_id WHERE r.id = a.run_id),
        'labels', coalesce((
            SELECT jsonb_agg(jsonb_build_object('name', u.name, 'type', ty.name, 'feature', f.name, 'dtype', f.dtype)
                             ORDER BY u.name, f.name)
            FROM lamin.artifact_ulabel l JOIN lamin.ulabel u ON u.id = l.ulabel_id
            LEFT JOIN lamin.ulabel ty ON ty.id = u.type_id LEFT JOIN lamin.feature f ON f.id = l.feature_id
            WHERE l.artifact_id = a.id), '[]'),
        'terms', coalesce((
            SELECT jsonb_agg(jsonb_build_object('registry', t.registry, 'id', coalesce(t.ontology_id, t.name), 'name', t.name,
                                                'feature', f.name, 'dtype', f.dtype) ORDER BY t.registry, t.name, f.name)
            FROM bionty.artifact_terms t LEFT JOIN lamin.feature f ON f.id = t.feature_id
            WHERE t.artifact_id = a.id), '[]'),
        'values', coalesce((
            SELECT jsonb_agg(jsonb_build_object('feature', f.name, 'dtype', f.dtype, 'value', v.value) ORDER BY f.name, v.value)
            FROM lamin.artifact_feature_value v JOIN lamin.feature f ON f.id = v.feature_id
            WHERE v.artifact_id = a.id), '[]'))
$$;
COMMENT ON FUNCTION lamin.transfer_artifact_json(lamin.artifact) IS 'An artifact with its storage, object, run and annotations by meaning (labels by name and type, terms by public id, values by feature name and dtype), as lamin.transfer_out writes it.';

-- The transfer document of artifacts and collections (by uid, or a 16-char
-- stem for the latest version); a collection brings its members. A uid the
-- caller cannot read is reported as unknown, as one that does not exist.
CREATE FUNCTION lamin.transfer_out(uids text[]) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text;
    aids bigint[] := '{}';
    cids bigint[] := '{}';
    found_id bigint;
    me lamin.instance;
BEGIN
    IF uids IS NULL OR cardinality(uids) = 0 THEN
        RAISE EXCEPTION 'transfer: no uids given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH u IN ARRAY uids LOOP
        PERFORM lamin.check_versioned_uid('artifact or collection', u);
        SELECT a.id INTO found_id FROM lamin.artifact a
        WHERE (a.uid = u OR (length(u) = 16 AND a.stem = u AND a.is_latest)) AND a.branch_id <> -1;
        IF found_id IS NOT NULL THEN
            aids := aids || found_id;
            CONTINUE;
        END IF;
        SELECT c.id INTO found_id FROM lamin.collection c
        WHERE (c.uid = u OR (length(u) = 16 AND c.stem = u AND c.is_latest)) AND c.branch_id <> -1;
        IF found_id IS NULL THEN
            RAISE EXCEPTION 'transfer: no artifact or collection with uid %', quote_literal(u) USING ERRCODE = 'no_data_found';
        END IF;
        cids := cids || found_id;
        aids := aids || ARRAY(SELECT ca.artifact_id FROM lamin.collection_artifact ca
                              JOIN lamin.artifact a ON a.id = ca.artifact_id WHERE ca.collection_id = found_id);
    END LOOP;
    IF EXISTS (SELECT FROM lamin.artifact a WHERE a.id = ANY (aids) AND a.status <> 'ready') THEN
        RAISE EXCEPTION 'transfer: artifact % is %, not ready: only artifacts whose bytes are stored and hashed travel',
            (SELECT a.uid FROM lamin.artifact a WHERE a.id = ANY (aids) AND a.status <> 'ready' ORDER BY a.uid LIMIT 1),
            (SELECT a.status FROM lamin.artifact a WHERE a.id = ANY (aids) AND a.status <> 'ready' ORDER BY a.uid LIMIT 1)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- (STABLE: the identity is read, not made; an instance that never had
    -- one is named by its database.)
    SELECT * INTO me FROM lamin.instance;
    RETURN jsonb_build_object(
        'lamin_transfer', 1,
        'instance', jsonb_build_object('uid', me.uid, 'name', coalesce(me.name, current_database()), 'version', lamin.version()),
        'artifacts', coalesce((SELECT jsonb_agg(lamin.transfer_artifact_json(a) ORDER BY a.uid COLLATE "C")
                               FROM lamin.artifact a WHERE a.id = ANY (aids)), '[]'),
        'collections', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'uid', c.uid, 'key', c.key, 'description', c.description, 'version', c.version, 'hash', c.hash,
                       'members', (SELECT coalesce(jsonb_agg(a.uid ORDER BY ca.position), '[]')
                                   FROM lamin.collection_artifact ca JOIN lamin.artifact a ON a.id = ca.artifact_id
                                   WHERE ca.collection_id = c.id))
                   ORDER BY c.uid COLLATE "C")
            FROM lamin.collection c WHERE c.id = ANY (cids)), '[]'));
END
$$;
COMMENT ON FUNCTION lamin.transfer_out(text[]) IS 'The transfer document (JSON) of artifacts and collections by uid, with what the caller can read of their annotations; lamin.transfer_in of another instance takes it.';
GRANT EXECUTE ON FUNCTION lamin.transfer_out(text[]) TO lamin_reader;

-- The storage of a transferred artifact that stays where it is: its root,
-- registered here when missing as a root the source manages (never swept,
-- never this instance's default).
CREATE FUNCTION lamin.transfer_storage(storage jsonb, source_name text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_id bigint;
    new_uid text;
BEGIN
    SELECT s.id INTO found_id FROM lamin.storage s WHERE s.root = storage ->> 'root';
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    new_uid := lamin.add_storage(storage ->> 'root', format('storage of instance %s (registered by a transfer)', source_name),
                                 storage ->> 'region');
    UPDATE lamin.storage s SET instance_uid = coalesce(storage ->> 'instance_uid', source_name), is_default = false
    WHERE s.uid = new_uid;
    SELECT s.id INTO found_id FROM lamin.storage s WHERE s.uid = new_uid;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION lamin.transfer_storage(jsonb, text) IS 'The id of a transferred artifact''s storage root, registered when missing as one the source instance manages (lamin.storage.instance_uid; not the default).';

-- Insert the new artifacts of a transfer document with their uids, in one
-- statement, as the caller (row-level security, the space and created_by are
-- theirs); returns source uid → id. Records keep their uids across instances
-- (LaminDB's rule, and what keeps the bytes of a shared storage at one path),
-- so each uid is admitted first (lamin.admit_uid). A uid taken by a record
-- the caller cannot read is refused: the one thing a transfer tells of a
-- record the caller cannot read is that a copy of the very record they
-- transfer is already there (README "Transfer"). The head of each family is
-- its newest version (the highest counter), also when an older version
-- arrives after a newer one.
CREATE FUNCTION lamin.insert_transferred_artifacts(artifacts jsonb, storage_ids jsonb, run_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids jsonb;
    taken text;
    detail text;
    family text;
    head text;
BEGIN
    PERFORM lamin.check_versioned_uid('artifact', a ->> 'uid'), lamin.admit_uid(a ->> 'uid')
    FROM jsonb_array_elements(artifacts) a;
    BEGIN
        WITH made AS (
            INSERT INTO lamin.artifact (uid, key, key_is_virtual, description, storage_id, suffix, kind, otype, size, hash,
                                        hash_type, n_files, n_observations, run_id, version, overwrite_versions)
            SELECT a ->> 'uid', a ->> 'key', coalesce((a ->> 'key_is_virtual')::boolean, true), a ->> 'description',
                   (storage_ids ->> (a -> 'storage' ->> 'root'))::bigint, coalesce(a ->> 'suffix', ''), a ->> 'kind',
                   a ->> 'otype', (a ->> 'size')::bigint, a ->> 'hash', a ->> 'hash_type', (a ->> 'n_files')::bigint,
                   (a ->> 'n_observations')::bigint, run_id, a ->> 'version',
                   coalesce((a ->> 'overwrite_versions')::boolean, false)
            FROM jsonb_array_elements(artifacts) a
            ORDER BY a ->> 'uid' COLLATE "C"
            RETURNING uid, id)
        SELECT coalesce(jsonb_object_agg(m.uid, m.id), '{}') INTO ids FROM made m;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS taken = CONSTRAINT_NAME, detail = PG_EXCEPTION_DETAIL;
        IF taken = 'artifact_uid_key' THEN
            RAISE EXCEPTION 'transfer: artifact % cannot keep its uid here: it is taken by a record in a space you cannot read',
                substring(detail FROM '\(uid\)=\(([0-9A-Za-z]+)\)')
                USING ERRCODE = 'insufficient_privilege', HINT = 'an admin of this instance can see it';
        END IF;
        RAISE;
    END;
    FOR family IN SELECT DISTINCT left(k, 16) FROM jsonb_object_keys(ids) k LOOP
        SELECT x.uid INTO head FROM lamin.artifact x
        WHERE x.stem = family AND x.branch_id <> -1 ORDER BY x.uid COLLATE "C" DESC LIMIT 1;
        IF NOT (SELECT x.is_latest FROM lamin.artifact x WHERE x.uid = head) THEN
            UPDATE lamin.artifact x SET is_latest = false WHERE x.stem = family AND x.is_latest;
            UPDATE lamin.artifact x SET is_latest = true WHERE x.uid = head;
        END IF;
    END LOOP;
    RETURN ids;
END
$$;
COMMENT ON FUNCTION lamin.insert_transferred_artifacts(jsonb, jsonb, bigint) IS 'Insert the new artifacts of a transfer document with their uids, as the caller, in one statement; source uid → id (used by lamin.transfer_in).';

-- The same for a collection (its uid kept, as an artifact's).
CREATE FUNCTION lamin.insert_transferred_collection(c jsonb, run_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
    taken text;
BEGIN
    PERFORM lamin.check_versioned_uid('collection', c ->> 'uid');
    PERFORM lamin.admit_uid(c ->> 'uid');
    BEGIN
        INSERT INTO lamin.collection (uid, key, description, version, hash, run_id)
        VALUES (c ->> 'uid', c ->> 'key', c ->> 'description', c ->> 'version', c ->> 'hash', run_id)
        RETURNING id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS taken = CONSTRAINT_NAME;
        IF taken = 'collection_uid_key' THEN
            RAISE EXCEPTION 'transfer: collection % cannot keep its uid here: it is taken by a record in a space you cannot read', c ->> 'uid'
                USING ERRCODE = 'insufficient_privilege', HINT = 'an admin of this instance can see it';
        END IF;
        RAISE;
    END;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION lamin.insert_transferred_collection(jsonb, bigint) IS 'Insert a collection of a transfer document with its uid, as the caller (used by lamin.transfer_in).';

-- What a transfer document asks of this instance that it cannot give: a
-- feature of the same name with another dtype, a term the registry lacks, a
-- storage the caller may not register, an artifact whose uid names other
-- content here. One line each; empty when the document fits.
CREATE FUNCTION lamin.transfer_conflicts(doc jsonb) RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    id_field text;
    have boolean;
BEGIN
    FOR x IN SELECT DISTINCT e ->> 'feature' AS name, e ->> 'dtype' AS dtype
             FROM jsonb_array_elements(doc -> 'artifacts') a,
                  jsonb_array_elements((a -> 'labels') || (a -> 'terms') || (a -> 'values')) e
             WHERE e ->> 'feature' IS NOT NULL ORDER BY 1, 2 LOOP
        RETURN QUERY SELECT format('feature %s: dtype %s here, %s in the source', quote_literal(x.name), f.dtype, x.dtype)
            FROM lamin.feature f WHERE f.name = x.name AND f.dtype <> x.dtype
            ORDER BY f.space_id = lamin.current_space_id() DESC, f.id LIMIT 1;
    END LOOP;
    FOR x IN SELECT DISTINCT e ->> 'registry' AS registry, e ->> 'id' AS id
             FROM jsonb_array_elements(doc -> 'artifacts') a, jsonb_array_elements(a -> 'terms') e ORDER BY 1, 2 LOOP
        id_field := lamin.public_id_field(x.registry);
        IF id_field IS NULL OR to_regclass(x.registry) IS NULL THEN
            RETURN NEXT format('registry %s does not exist here', x.registry);
            CONTINUE;
        END IF;
        EXECUTE format('SELECT EXISTS (SELECT FROM %s t WHERE t.%I = $1 AND t.branch_id <> -1)', x.registry::regclass, id_field)
        INTO have USING x.id;
        IF NOT have THEN
            RETURN NEXT format('%s has no record with %s %s (import its ontology or gene table first)', x.registry, id_field, quote_literal(x.id));
        END IF;
    END LOOP;
    FOR x IN SELECT DISTINCT a -> 'storage' ->> 'root' AS root FROM jsonb_array_elements(doc -> 'artifacts') a ORDER BY 1 LOOP
        IF NOT EXISTS (SELECT FROM lamin.storage s WHERE s.root = x.root)
           AND NOT (coalesce(lamin.is_unrestricted(), false) OR lamin.is_instance_admin()) THEN
            RETURN NEXT format('storage %s is not registered here, and registering it needs lamin_admin (or transfer with --copy into a storage of this instance)', x.root);
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT format('artifact %s holds other content here (hash %s, not %s)', a.uid, left(a.hash, 12), left(d ->> 'hash', 12))
        FROM jsonb_array_elements(doc -> 'artifacts') d JOIN lamin.artifact a ON a.uid = d ->> 'uid'
        WHERE a.hash IS DISTINCT FROM d ->> 'hash' ORDER BY a.uid;
END
$$;
COMMENT ON FUNCTION lamin.transfer_conflicts(jsonb) IS 'What of a transfer document this instance cannot take as it is (conflicting feature dtypes, missing terms, unregistrable storages, uids holding other content), one line each.';

-- Whether this instance can take a transfer document as the caller: its
-- conflicts, all listed, and the caller's write access (lamin transfer
-- --copy asks before it copies any bytes; lamin.transfer_in asks first).
CREATE FUNCTION lamin.transfer_check(doc jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problems text;
BEGIN
    SELECT string_agg('  ' || p, E'\n') INTO problems FROM lamin.transfer_conflicts(doc) p;
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION E'transfer from instance %: this instance''s definitions conflict; nothing was transferred:\n%',
            doc -> 'instance' ->> 'name', problems
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'align the definitions (rename a feature, import the missing ontology terms), then transfer again';
    END IF;
    PERFORM lamin.require_write('transferring records');
END
$$;
COMMENT ON FUNCTION lamin.transfer_check(jsonb) IS 'Raise what keeps this instance from taking a transfer document as the caller (every conflict, listed; or no write access); nothing when it fits.';
GRANT EXECUTE ON FUNCTION lamin.transfer_check(jsonb) TO lamin_reader;

-- Annotate the artifacts of a transfer document (ids: source uid → id
-- here) as it says, idempotently and set-based: labels by name within their
-- type (made when missing), terms by public id, values by feature (features
-- made when missing with the document's dtype).
CREATE FUNCTION lamin.transfer_annotations(artifacts jsonb, ids jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    feature_ids jsonb := '{}';
    label_ids jsonb := '{}';
    found_type bigint;
    found_label bigint;
    registry text;
BEGIN
    FOR x IN SELECT DISTINCT e ->> 'feature' AS name, e ->> 'dtype' AS dtype
             FROM jsonb_array_elements(artifacts) a,
                  jsonb_array_elements((a -> 'labels') || (a -> 'terms') || (a -> 'values')) e
             WHERE e ->> 'feature' IS NOT NULL LOOP
        PERFORM lamin.create_feature(x.name, x.dtype);
        feature_ids := feature_ids || jsonb_build_object(x.name, lamin.feature_id(x.name));
    END LOOP;
    FOR x IN SELECT DISTINCT e ->> 'type' AS type, e ->> 'name' AS name
             FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'labels') e LOOP
        found_type := NULL;
        IF x.type IS NOT NULL THEN
            SELECT u.id INTO found_type FROM lamin.ulabel u WHERE u.name = x.type AND u.is_type AND u.type_id IS NULL
                AND u.branch_id <> -1 ORDER BY u.space_id = lamin.current_space_id() DESC, u.id LIMIT 1;
            IF found_type IS NULL THEN
                INSERT INTO lamin.ulabel (name, is_type) VALUES (x.type, true) RETURNING id INTO found_type;
            END IF;
        END IF;
        SELECT u.id INTO found_label FROM lamin.ulabel u
        WHERE u.name = x.name AND u.type_id IS NOT DISTINCT FROM found_type AND u.branch_id <> -1
        ORDER BY u.space_id = lamin.current_space_id() DESC, u.id LIMIT 1;
        IF found_label IS NULL THEN
            INSERT INTO lamin.ulabel (name, type_id) VALUES (x.name, found_type) RETURNING id INTO found_label;
        END IF;
        label_ids := label_ids || jsonb_build_object(coalesce(x.type, '') || '/' || x.name, found_label);
    END LOOP;

    INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
    SELECT (ids ->> (a ->> 'uid'))::bigint, (label_ids ->> (coalesce(e ->> 'type', '') || '/' || (e ->> 'name')))::bigint,
           (feature_ids ->> (e ->> 'feature'))::bigint
    FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'labels') e
    ON CONFLICT DO NOTHING;
    INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value)
    SELECT (ids ->> (a ->> 'uid'))::bigint, (feature_ids ->> (e ->> 'feature'))::bigint, e -> 'value'
    FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'values') e
    ON CONFLICT DO NOTHING;
    -- Terms: one statement per registry, matched by public id.
    FOR registry IN SELECT DISTINCT e ->> 'registry' FROM jsonb_array_elements(artifacts) a, jsonb_array_elements(a -> 'terms') e LOOP
        EXECUTE format($q$INSERT INTO %1$I.%2$I (artifact_id, %3$I, feature_id)
                          SELECT ($1 ->> (a ->> 'uid'))::bigint, t.id, ($2 ->> (e ->> 'feature'))::bigint
                          FROM jsonb_array_elements($3) a
                          CROSS JOIN LATERAL jsonb_array_elements(a -> 'terms') e
                          JOIN LATERAL (SELECT t.id FROM %4$s t WHERE t.%5$I = e ->> 'id' AND t.branch_id <> -1
                                        ORDER BY t.id LIMIT 1) t ON true
                          WHERE e ->> 'registry' = %6$L
                          ON CONFLICT DO NOTHING$q$,
                       split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2),
                       split_part(registry, '.', 2) || '_id', registry::regclass, lamin.public_id_field(registry), registry)
        USING ids, feature_ids, artifacts;
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.transfer_annotations(jsonb, jsonb) IS 'Link the artifacts of a transfer document (source uid → id here) to their labels, terms and values, by meaning; idempotent.';

-- Take a transfer document: every artifact and collection in it, with its
-- annotations mapped by meaning, into the caller's current space, all or
-- nothing. Idempotent: a record already here (same uid) or the same content
-- already stored here (same storage and hash) is linked to, not duplicated,
-- and gains only annotations it lacks. The lineage is one run of the
-- transform `__lamin_transfer__/<source instance>`, whose params name the
-- source instance and every source uid with the run that made it there.
-- `storage` (when given) is where the bytes now are, for every artifact
-- (lamin transfer --copy copied them there); else each artifact stays in its
-- own storage root, registered here when missing. Set-based: a few
-- statements whatever the number of artifacts.
CREATE FUNCTION lamin.transfer_in(doc jsonb, storage text DEFAULT NULL)
RETURNS TABLE (kind text, source_uid text, uid text, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    src jsonb := doc -> 'instance';
    tid bigint;
    rid bigint;
    sid bigint;
    here bigint := lamin.current_space_id();
    x record;
    c jsonb;
    cid bigint;
    act text;
    storage_ids jsonb := '{}';
    existing jsonb;
    linked jsonb;
    created jsonb := '{}';
    fresh jsonb;
    made_collections jsonb := '[]';
BEGIN
    IF doc IS NULL OR (doc ->> 'lamin_transfer') IS DISTINCT FROM '1' OR jsonb_typeof(doc -> 'artifacts') <> 'array'
       OR jsonb_typeof(doc -> 'collections') <> 'array' OR src ->> 'name' IS NULL THEN
        RAISE EXCEPTION 'transfer: not a transfer document (lamin.transfer_out of another instance makes one)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(doc -> 'artifacts') = 0 AND jsonb_array_length(doc -> 'collections') = 0 THEN
        RETURN;
    END IF;
    PERFORM lamin.transfer_check(doc);
    IF storage IS NOT NULL THEN
        sid := lamin.storage_id(storage);
    END IF;

    -- Where each artifact is here already: the same record (by uid), else
    -- the same content in the storage it would land in (linked).
    SELECT coalesce(jsonb_object_agg(d ->> 'uid', a.id), '{}') INTO existing
    FROM jsonb_array_elements(doc -> 'artifacts') d JOIN lamin.artifact a ON a.uid = d ->> 'uid';
    SELECT coalesce(jsonb_object_agg(d ->> 'uid', m.id), '{}') INTO linked
    FROM jsonb_array_elements(doc -> 'artifacts') d
    LEFT JOIN lamin.storage s ON s.root = d -> 'storage' ->> 'root'
    CROSS JOIN LATERAL (SELECT a.id FROM lamin.artifact a
                        WHERE a.hash = d ->> 'hash' AND a.branch_id <> -1 AND a.storage_id = coalesce(sid, s.id)
                        ORDER BY a.space_id = here DESC, a.id LIMIT 1) m
    WHERE NOT existing ? (d ->> 'uid');
    SELECT coalesce(jsonb_agg(d), '[]') INTO fresh FROM jsonb_array_elements(doc -> 'artifacts') d
    WHERE NOT existing ? (d ->> 'uid') AND NOT linked ? (d ->> 'uid');

    -- The transfer transform of the source instance, and (when anything is
    -- new) this transfer's run.
    IF jsonb_array_length(fresh) > 0 OR EXISTS (
        SELECT FROM jsonb_array_elements(doc -> 'collections') e WHERE NOT EXISTS (SELECT FROM lamin.collection x WHERE x.uid = e ->> 'uid')) THEN
        SELECT t.id INTO tid FROM lamin.transform t
        WHERE t.key = '__lamin_transfer__/' || (src ->> 'name') AND t.kind = 'function' AND t.branch_id <> -1
        ORDER BY t.space_id = here DESC, t.id LIMIT 1;
        IF tid IS NULL THEN
            INSERT INTO lamin.transform (key, kind, description)
            VALUES ('__lamin_transfer__/' || (src ->> 'name'), 'function',
                    format('Transfers from lamin instance %s (uid %s)', src ->> 'name', coalesce(src ->> 'uid', 'unknown')))
            RETURNING id INTO tid;
        END IF;
        INSERT INTO lamin.run (transform_id, name, status, finished_at, params)
        VALUES (tid, 'transfer from ' || (src ->> 'name'), 'completed', now(),
                jsonb_build_object('source_instance', src,
                                   'artifacts', (SELECT coalesce(jsonb_agg(jsonb_build_object('uid', d ->> 'uid', 'run', d -> 'run')
                                                                           ORDER BY d ->> 'uid'), '[]')
                                                 FROM jsonb_array_elements(fresh) d),
                                   'collections', '[]'::jsonb))
        RETURNING id INTO rid;
    END IF;

    IF jsonb_array_length(fresh) > 0 THEN
        FOR x IN SELECT DISTINCT d -> 'storage' AS storage FROM jsonb_array_elements(fresh) d LOOP
            storage_ids := storage_ids || jsonb_build_object(x.storage ->> 'root',
                                                             coalesce(sid, lamin.transfer_storage(x.storage, src ->> 'name')));
        END LOOP;
        created := lamin.insert_transferred_artifacts(fresh, storage_ids, rid);
    END IF;
    PERFORM lamin.transfer_annotations(doc -> 'artifacts', existing || linked || created);
    RETURN QUERY
        SELECT 'artifact', d ->> 'uid', a.uid,
               CASE WHEN existing ? (d ->> 'uid') THEN 'exists' WHEN linked ? (d ->> 'uid') THEN 'linked' ELSE 'created' END
        FROM jsonb_array_elements(doc -> 'artifacts') d
        JOIN lamin.artifact a ON a.id = ((existing || linked || created) ->> (d ->> 'uid'))::bigint
        ORDER BY d ->> 'uid' COLLATE "C";

    FOR c IN SELECT e FROM jsonb_array_elements(doc -> 'collections') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        SELECT x.id INTO cid FROM lamin.collection x WHERE x.uid = c ->> 'uid';
        act := 'exists';
        IF cid IS NULL AND c ->> 'hash' IS NOT NULL THEN
            SELECT x.id INTO cid FROM lamin.collection x WHERE x.hash = c ->> 'hash' AND x.branch_id <> -1
            ORDER BY x.space_id = here DESC, x.id LIMIT 1;
            act := 'linked';
        END IF;
        IF cid IS NULL THEN
            cid := lamin.insert_transferred_collection(c, rid);
            -- Members: the artifacts of this document, wherever they are here.
            INSERT INTO lamin.collection_artifact (collection_id, artifact_id, position)
            SELECT cid, ((existing || linked || created) ->> m.member_uid)::bigint, m.ord - 1
            FROM jsonb_array_elements_text(c -> 'members') WITH ORDINALITY m(member_uid, ord)
            WHERE (existing || linked || created) ? m.member_uid;
            act := 'created';
            made_collections := made_collections || to_jsonb(c ->> 'uid');
        END IF;
        kind := 'collection'; source_uid := c ->> 'uid';
        uid := (SELECT x.uid FROM lamin.collection x WHERE x.id = cid); action := act;
        RETURN NEXT;
    END LOOP;
    IF jsonb_array_length(made_collections) > 0 THEN
        UPDATE lamin.run r SET params = jsonb_set(r.params, '{collections}', made_collections) WHERE r.id = rid;
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.transfer_in(jsonb, text) IS
    'Take a transfer document of another instance (lamin.transfer_out): artifacts and collections with their uids, annotations mapped by meaning, lineage as one run of transform __lamin_transfer__/<source>; all or nothing; idempotent. storage: where the bytes were copied (lamin transfer --copy), else each artifact''s own storage root. Returns what happened to each record: created, linked (same content already here) or exists.';
GRANT EXECUTE ON FUNCTION lamin.transfer_in(jsonb, text) TO lamin_writer;

-- == 33_lamindb.sql ==
-- Moving in from LaminDB. `lamin import-lamindb` reads an existing LaminDB
-- instance (its Django tables, SQLite or Postgres) and hands this function
-- one document of what it holds, with every reference by uid (and ontology
-- terms by their public id); it is written here in one transaction, all or
-- nothing. Records keep their uids; what is already here is taken as it is,
-- so running the import again takes only what is new. Artifacts arrive
-- pending, with LaminDB's hash kept as their legacy hash: a register job per
-- artifact reads the bytes where LaminDB stored them and records their
-- sha256, and only then is an artifact ready.

-- One record of a bionty registry by its public id (ontology_id,
-- ensembl_gene_id, …), made from LaminDB's fields when missing; its id.
CREATE FUNCTION lamin.lamindb_term(registry text, public_id text, fields jsonb) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass := to_regclass(registry);
    id_field text := lamin.public_id_field(registry);
    found_id bigint;
    cols text;
BEGIN
    IF tbl IS NULL OR id_field IS NULL OR registry NOT LIKE 'bionty.%' THEN
        RAISE EXCEPTION 'LaminDB registry % has no counterpart here', registry USING ERRCODE = 'undefined_table';
    END IF;
    EXECUTE format('SELECT t.id FROM %s t WHERE t.%I = $1 ORDER BY t.deprecated, t.id LIMIT 1', tbl, id_field)
    INTO found_id USING public_id;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    -- The fields this registry has (LaminDB's others are left out).
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND fields ? a.attname
      AND a.attname NOT IN ('id', 'uid', 'branch_id', 'space_id', 'is_locked', 'created_at', 'created_by', 'updated_at', 'source_id');
    EXECUTE format('INSERT INTO %1$s (%2$s) SELECT %2$s FROM jsonb_populate_record(NULL::%1$s, $1) RETURNING id', tbl, cols)
    INTO found_id USING fields;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION lamin.lamindb_term(text, text, jsonb) IS 'The id of a bionty record by public id (lamin import-lamindb), made from LaminDB''s fields when this instance lacks it.';

-- Conflicts that stop an import before it writes anything: a feature of the
-- same name with another dtype.
CREATE FUNCTION lamin.lamindb_conflicts(doc jsonb) RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('feature %s: dtype %s here, %s in LaminDB', quote_literal(f.name), f.dtype, d ->> 'dtype')
    FROM jsonb_array_elements(doc -> 'features') d
    JOIN lamin.feature f ON f.name = d ->> 'name' AND f.dtype <> d ->> 'dtype'
    UNION ALL
    SELECT format('artifact %s holds other content here (LaminDB hash %s)', a.uid, d ->> 'legacy_hash')
    FROM jsonb_array_elements(doc -> 'artifacts') d
    JOIN lamin.artifact a ON a.uid = d ->> 'uid'
    WHERE a.legacy_hash IS DISTINCT FROM d ->> 'legacy_hash' AND a.size IS DISTINCT FROM (d ->> 'size')::bigint
    UNION ALL
    SELECT format('LaminDB registry %s has no counterpart here', t ->> 'registry')
    FROM jsonb_array_elements(doc -> 'terms') t
    WHERE lamin.public_id_field(t ->> 'registry') IS NULL OR to_regclass(t ->> 'registry') IS NULL
    ORDER BY 1
$$;
COMMENT ON FUNCTION lamin.lamindb_conflicts(jsonb) IS 'What stops a LaminDB import document from being taken (features with another dtype here, uids holding other content, registries missing), one line each.';

-- The import. Returns, per kind of record, how many were new and how many
-- were here already. Instance admins only: it registers storages and makes
-- records with the uids LaminDB gave them.
CREATE FUNCTION lamin.import_lamindb(doc jsonb)
RETURNS TABLE (kind text, imported int, existing int)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    problems text;
    x jsonb;
    e jsonb;
    n_new int;
    n_old int;
    found_id bigint;
    other_id bigint;
    fid bigint;
    aid bigint;
    storage_ids jsonb := '{}';
    term_ids jsonb := '{}';
    new_terms jsonb := '{}';
    schema_uids jsonb := '{}';
    label_ids jsonb := '{}';
    manager text := coalesce(doc -> 'lamindb' ->> 'instance_uid', 'lamindb');
    new_uid text;
BEGIN
    IF doc IS NULL OR (doc ->> 'lamindb_import') IS DISTINCT FROM '1' THEN
        RAISE EXCEPTION 'import_lamindb: not an import document (lamin import-lamindb makes one)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (coalesce(lamin.is_unrestricted(), false) OR lamin.is_instance_admin()) THEN
        RAISE EXCEPTION 'permission denied: moving a LaminDB instance in needs lamin_admin (role % is not one)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT string_agg('  ' || p, E'\n') INTO problems FROM lamin.lamindb_conflicts(doc) p;
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION E'import from LaminDB: this instance''s definitions conflict; nothing was imported:\n%', problems
            USING ERRCODE = 'integrity_constraint_violation', HINT = 'rename or remove the conflicting records here, then import again';
    END IF;

    -- Storages: LaminDB keeps managing their objects (lamin.storage.instance_uid).
    n_new := 0; n_old := 0;
    FOR x IN SELECT * FROM jsonb_array_elements(doc -> 'storages') LOOP
        SELECT s.id INTO found_id FROM lamin.storage s WHERE s.root = rtrim(x ->> 'root', '/');
        IF found_id IS NULL THEN
            -- (Two statements: a STABLE lookup in the same expression would
            -- not see the storage just registered.)
            new_uid := lamin.add_storage(x ->> 'root', coalesce(x ->> 'description', 'storage of LaminDB instance ' || manager), x ->> 'region');
            UPDATE lamin.storage s SET instance_uid = coalesce(x ->> 'instance_uid', manager), is_default = false
            WHERE s.uid = new_uid RETURNING s.id INTO found_id;
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        storage_ids := storage_ids || jsonb_build_object(x ->> 'root', found_id);
    END LOOP;
    kind := 'storage'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Transforms, in uid order (a family's versions oldest first).
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'transforms') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        IF EXISTS (SELECT FROM lamin.transform t WHERE t.uid = x ->> 'uid') THEN
            n_old := n_old + 1;
            CONTINUE;
        END IF;
        PERFORM lamin.admit_uid(x ->> 'uid');
        INSERT INTO lamin.transform (uid, key, description, kind, source_code, reference, reference_type, version)
        VALUES (x ->> 'uid', x ->> 'key', x ->> 'description',
                CASE WHEN x ->> 'kind' IN ('pipeline', 'notebook', 'script', 'function', 'upload', 'linker') THEN x ->> 'kind' ELSE 'other' END,
                x ->> 'source_code', x ->> 'reference', x ->> 'reference_type', x ->> 'version');
        n_new := n_new + 1;
    END LOOP;
    kind := 'transform'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Runs (who initiated whom: a second pass).
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'runs') e ORDER BY e ->> 'started_at', e ->> 'uid' LOOP
        IF EXISTS (SELECT FROM lamin.run r WHERE r.uid = x ->> 'uid') THEN
            n_old := n_old + 1;
            CONTINUE;
        END IF;
        PERFORM lamin.admit_uid(x ->> 'uid');
        INSERT INTO lamin.run (uid, transform_id, name, started_at, finished_at, params, status, reference)
        SELECT x ->> 'uid', t.id, x ->> 'name', coalesce((x ->> 'started_at')::timestamptz, now()),
               (x ->> 'finished_at')::timestamptz, x -> 'params', x ->> 'status', x ->> 'reference'
        FROM lamin.transform t WHERE t.uid = x ->> 'transform';
        n_new := n_new + 1;
    END LOOP;
    UPDATE lamin.run r SET initiated_by_run_id = i.id
    FROM jsonb_array_elements(doc -> 'runs') d JOIN lamin.run i ON i.uid = d ->> 'initiated_by'
    WHERE r.uid = d ->> 'uid' AND r.initiated_by_run_id IS NULL;
    kind := 'run'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Features by name and dtype.
    n_new := 0; n_old := 0;
    FOR x IN SELECT * FROM jsonb_array_elements(doc -> 'features') LOOP
        IF EXISTS (SELECT FROM lamin.feature f WHERE f.name = x ->> 'name') THEN
            n_old := n_old + 1;
        ELSE
            PERFORM lamin.create_feature(x ->> 'name', x ->> 'dtype', x ->> 'description', x ->> 'unit',
                                         coalesce((x ->> 'nullable')::boolean, true), coalesce((x ->> 'coerce')::boolean, false));
            n_new := n_new + 1;
        END IF;
    END LOOP;
    kind := 'feature'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Labels: by uid, else by name within their type; types first.
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'ulabels') e ORDER BY (e ->> 'is_type')::boolean DESC, e ->> 'type' NULLS FIRST LOOP
        SELECT u.id INTO found_id FROM lamin.ulabel u WHERE u.uid = x ->> 'uid';
        IF found_id IS NULL THEN
            SELECT u.id INTO found_id FROM lamin.ulabel u
            WHERE u.name = x ->> 'name' AND u.type_id IS NOT DISTINCT FROM (label_ids ->> (x ->> 'type'))::bigint
            ORDER BY u.id LIMIT 1;
        END IF;
        IF found_id IS NULL THEN
            PERFORM lamin.admit_uid(x ->> 'uid');
            INSERT INTO lamin.ulabel (uid, name, description, is_type, type_id, reference, reference_type)
            VALUES (x ->> 'uid', x ->> 'name', x ->> 'description', coalesce((x ->> 'is_type')::boolean, false),
                    (label_ids ->> (x ->> 'type'))::bigint, x ->> 'reference', x ->> 'reference_type')
            RETURNING id INTO found_id;
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        label_ids := label_ids || jsonb_build_object(x ->> 'uid', found_id);
    END LOOP;
    INSERT INTO lamin.ulabel_parent (ulabel_id, parent_id)
    SELECT (label_ids ->> (d ->> 'uid'))::bigint, (label_ids ->> p)::bigint
    FROM jsonb_array_elements(doc -> 'ulabels') d, jsonb_array_elements_text(d -> 'parents') p
    WHERE label_ids ? p
    ON CONFLICT DO NOTHING;
    kind := 'ulabel'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Ontology terms and genes by their public id; parents among them.
    n_new := 0; n_old := 0;
    FOR x IN SELECT * FROM jsonb_array_elements(doc -> 'terms') LOOP
        EXECUTE format('SELECT t.id FROM %s t WHERE t.%I = $1 LIMIT 1', (x ->> 'registry')::regclass, lamin.public_id_field(x ->> 'registry'))
        INTO found_id USING x ->> 'id';
        IF found_id IS NULL THEN
            found_id := lamin.lamindb_term(x ->> 'registry', x ->> 'id', x -> 'fields');
            new_terms := new_terms || jsonb_build_object((x ->> 'registry') || ':' || (x ->> 'id'), true);
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        term_ids := term_ids || jsonb_build_object((x ->> 'registry') || ':' || (x ->> 'id'), found_id);
    END LOOP;
    -- (The hierarchy of terms this instance had already is its ontology's.)
    FOR x IN SELECT t FROM jsonb_array_elements(doc -> 'terms') t
             WHERE jsonb_array_length(coalesce(t -> 'parents', '[]')) > 0 AND new_terms ? ((t ->> 'registry') || ':' || (t ->> 'id')) LOOP
        IF to_regclass((x ->> 'registry') || '_parent') IS NOT NULL THEN
            EXECUTE format('INSERT INTO %s (child_id, parent_id) SELECT $1, (($2)->>($3 || '':'' || p))::bigint
                            FROM jsonb_array_elements_text($4) p WHERE ($2) ? ($3 || '':'' || p) ON CONFLICT DO NOTHING',
                           ((x ->> 'registry') || '_parent')::regclass)
            USING (term_ids ->> ((x ->> 'registry') || ':' || (x ->> 'id')))::bigint, term_ids, x ->> 'registry', x -> 'parents';
        END IF;
    END LOOP;
    kind := 'term'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Schemas: made from their features (the same definition is the same schema).
    n_new := 0; n_old := 0;
    FOR x IN SELECT d FROM jsonb_array_elements(doc -> 'schemas') d WHERE jsonb_array_length(coalesce(d -> 'features', '[]')) > 0 LOOP
        SELECT count(*) INTO other_id FROM lamin.schema;
        schema_uids := schema_uids || jsonb_build_object(x ->> 'uid', lamin.create_schema(
            ARRAY(SELECT jsonb_array_elements_text(x -> 'features')), x ->> 'name', coalesce((x ->> 'ordered')::boolean, false),
            x ->> 'description', coalesce((x ->> 'minimal_set')::boolean, true), coalesce((x ->> 'maximal_set')::boolean, false),
            NULL, x ->> 'otype', coalesce((x ->> 'coerce')::boolean, false)));
        IF (SELECT count(*) FROM lamin.schema) > other_id THEN n_new := n_new + 1; ELSE n_old := n_old + 1; END IF;
    END LOOP;
    kind := 'schema'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Artifacts: pending until their bytes are hashed (a register job each).
    -- An older version of a family whose versions share one object (LaminDB's
    -- folders) has no bytes of its own any more: failed, saying so.
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'artifacts') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        SELECT a.id INTO aid FROM lamin.artifact a WHERE a.uid = x ->> 'uid';
        IF aid IS NULL THEN
            PERFORM lamin.admit_uid(x ->> 'uid');
            INSERT INTO lamin.artifact (uid, key, key_is_virtual, description, storage_id, suffix, kind, otype, size,
                                        n_files, n_observations, run_id, version, status, status_detail,
                                        legacy_hash, legacy_hash_type, overwrite_versions)
            VALUES (x ->> 'uid', x ->> 'key', coalesce((x ->> 'key_is_virtual')::boolean, true), x ->> 'description',
                    (storage_ids ->> (x ->> 'storage'))::bigint, coalesce(x ->> 'suffix', ''),
                    CASE WHEN x ->> 'kind' IN ('dataset', 'model', '__lamindb_run__') THEN x ->> 'kind' WHEN x ->> 'kind' IS NULL THEN NULL ELSE 'other' END,
                    CASE WHEN x ->> 'otype' IN ('DataFrame', 'AnnData', 'MuData', 'SpatialData', 'tiledbsoma') THEN x ->> 'otype' END,
                    (x ->> 'size')::bigint, (x ->> 'n_files')::bigint, (x ->> 'n_observations')::bigint,
                    (SELECT r.id FROM lamin.run r WHERE r.uid = x ->> 'run'), x ->> 'version',
                    CASE WHEN (x ->> 'overwrite_versions')::boolean AND NOT coalesce((x ->> 'is_latest')::boolean, true) THEN 'failed' ELSE 'pending' END,
                    CASE WHEN (x ->> 'overwrite_versions')::boolean AND NOT coalesce((x ->> 'is_latest')::boolean, true)
                         THEN 'LaminDB overwrote this version''s bytes with a later version''s (its folders keep one object per family)'
                         ELSE 'moved in from LaminDB: reading and hashing its bytes' END,
                    x ->> 'legacy_hash', x ->> 'legacy_hash_type', coalesce((x ->> 'overwrite_versions')::boolean, false))
            RETURNING id INTO aid;
            IF (SELECT a.status FROM lamin.artifact a WHERE a.id = aid) = 'pending' THEN
                PERFORM lamin.enqueue('register', jsonb_build_object('uid', x ->> 'uid'));
            END IF;
            n_new := n_new + 1;
        ELSE
            n_old := n_old + 1;
        END IF;
        -- Annotations (taken again only where missing).
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(x -> 'labels', '[]')) LOOP
            INSERT INTO lamin.artifact_ulabel (artifact_id, ulabel_id, feature_id)
            VALUES (aid, (label_ids ->> (e ->> 'uid'))::bigint, (SELECT f.id FROM lamin.feature f WHERE f.name = e ->> 'feature' ORDER BY f.id LIMIT 1))
            ON CONFLICT DO NOTHING;
        END LOOP;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(x -> 'terms', '[]')) LOOP
            EXECUTE format('INSERT INTO %I.%I (artifact_id, %I, feature_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
                           split_part(e ->> 'registry', '.', 1), 'artifact_' || split_part(e ->> 'registry', '.', 2),
                           split_part(e ->> 'registry', '.', 2) || '_id')
            USING aid, (term_ids ->> ((e ->> 'registry') || ':' || (e ->> 'id')))::bigint,
                  (SELECT f.id FROM lamin.feature f WHERE f.name = e ->> 'feature' ORDER BY f.id LIMIT 1);
        END LOOP;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(x -> 'values', '[]')) LOOP
            SELECT f.id INTO fid FROM lamin.feature f WHERE f.name = e ->> 'feature' ORDER BY f.id LIMIT 1;
            INSERT INTO lamin.artifact_feature_value (artifact_id, feature_id, value) VALUES (aid, fid, e -> 'value')
            ON CONFLICT DO NOTHING;
        END LOOP;
        INSERT INTO lamin.artifact_schema (artifact_id, schema_id, slot)
        SELECT aid, s.id, e ->> 'slot' FROM jsonb_array_elements(coalesce(x -> 'schemas', '[]')) e
        JOIN lamin.schema s ON s.uid = schema_uids ->> (e ->> 'schema')
        ON CONFLICT DO NOTHING;
    END LOOP;
    -- What runs read.
    INSERT INTO lamin.run_input_artifact (run_id, artifact_id)
    SELECT r.id, a.id
    FROM jsonb_array_elements(doc -> 'runs') d
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(d -> 'inputs', '[]')) i
    JOIN lamin.artifact a ON a.uid = i
    JOIN lamin.run r ON r.uid = d ->> 'uid'
    ON CONFLICT DO NOTHING;
    kind := 'artifact'; imported := n_new; existing := n_old; RETURN NEXT;

    -- Collections with their members in order.
    n_new := 0; n_old := 0;
    FOR x IN SELECT e FROM jsonb_array_elements(doc -> 'collections') e ORDER BY e ->> 'uid' COLLATE "C" LOOP
        IF EXISTS (SELECT FROM lamin.collection c WHERE c.uid = x ->> 'uid') THEN
            n_old := n_old + 1;
            CONTINUE;
        END IF;
        PERFORM lamin.admit_uid(x ->> 'uid');
        INSERT INTO lamin.collection (uid, key, description, version, run_id)
        VALUES (x ->> 'uid', x ->> 'key', x ->> 'description', x ->> 'version', (SELECT r.id FROM lamin.run r WHERE r.uid = x ->> 'run'))
        RETURNING id INTO found_id;
        INSERT INTO lamin.collection_artifact (collection_id, artifact_id, position)
        SELECT found_id, a.id, m.ord - 1 FROM jsonb_array_elements_text(x -> 'members') WITH ORDINALITY m(member_uid, ord)
        JOIN lamin.artifact a ON a.uid = m.member_uid;
        n_new := n_new + 1;
    END LOOP;
    INSERT INTO lamin.run_input_collection (run_id, collection_id)
    SELECT r.id, c.id
    FROM jsonb_array_elements(doc -> 'runs') d
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(d -> 'collection_inputs', '[]')) i
    JOIN lamin.collection c ON c.uid = i
    JOIN lamin.run r ON r.uid = d ->> 'uid'
    ON CONFLICT DO NOTHING;
    kind := 'collection'; imported := n_new; existing := n_old; RETURN NEXT;
END
$$;
COMMENT ON FUNCTION lamin.import_lamindb(jsonb) IS
    'Take the document lamin import-lamindb reads from a LaminDB instance: storages (still managed by LaminDB), transforms, runs and their inputs, features, labels with types and parents, bionty terms by public id, schemas, artifacts (uids, keys and versions kept; pending with LaminDB''s hash as legacy hash until a register job has hashed their bytes) and collections; all or nothing, what exists is kept. Instance admins only. Returns per kind the records new and already here.';
REVOKE EXECUTE ON FUNCTION lamin.import_lamindb(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.import_lamindb(jsonb) TO lamin_admin;

