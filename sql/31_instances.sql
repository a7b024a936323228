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
        -- (A standby cannot make it: its uid must be the primary's.)
        PERFORM lamin.refuse_read_only('giving this instance its identity (its first lamin.instance() call)');
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
