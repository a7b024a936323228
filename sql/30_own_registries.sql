-- Your own registries: lamin.create_registry('lab.sample') gives a table of
-- one's own what lamin's registries have — a uid, a space with row-level
-- security, the lock, the audit trail, search with the typo guard, and a
-- link table lab.artifact_sample, so that features of dtype cat[lab.sample]
-- annotate artifacts and validate datasets against it.
--
-- The table stays the user's: its owner evolves it with ordinary ALTER TABLE
-- (columns added, renamed, dropped), and an event trigger keeps lamin's view
-- of it in step — a renamed name, synonyms, abbreviation or id column is
-- followed (search, validation and annotation keep working), while
-- renaming or dropping lamin's own columns, renaming or moving the table,
-- and dropping a column search uses are refused with what to do instead.

CREATE TABLE lamin.own_registry (
    name       text PRIMARY KEY REFERENCES lamin.registry ON UPDATE CASCADE ON DELETE CASCADE,
    relid      oid NOT NULL,
    fields     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lamin.own_registry IS 'Registries users made of their own tables (lamin.create_registry): what lamin follows when the table is altered.';
COMMENT ON COLUMN lamin.own_registry.name IS 'The table, e.g. lab.sample (lamin.registry.name).';
COMMENT ON COLUMN lamin.own_registry.relid IS 'The table''s oid when lamin last looked (refreshed on every ALTER TABLE; a restore changes it).';
COMMENT ON COLUMN lamin.own_registry.fields IS 'The column numbers of the fields search uses ({"name_field": 2, ...}): how a renamed column is recognised.';
COMMENT ON COLUMN lamin.own_registry.created_at IS 'When the table became a registry.';
-- Rows are the users'; dumped and restored with their tables.
SELECT pg_catalog.pg_extension_config_dump('lamin.own_registry', '');
SELECT lamin.secure_table('lamin.own_registry', 'shared');
REVOKE INSERT, UPDATE, DELETE ON lamin.own_registry FROM lamin_writer;

-- lamin's columns of a registry of one's own: added when missing, never
-- renamed or dropped.
CREATE FUNCTION lamin.own_registry_system_columns() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['id', 'uid', 'branch_id', 'space_id', 'is_locked', 'created_at', 'created_by', 'updated_at'] $$;
COMMENT ON FUNCTION lamin.own_registry_system_columns() IS 'The columns lamin.create_registry adds to a table and keeps: never renamed or dropped.';

-- The field roles of lamin.registry and their column numbers in a table.
CREATE FUNCTION lamin.registry_field_numbers(reg lamin.registry) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(f.role, a.attnum), '{}')
    FROM (VALUES ('name_field', reg.name_field), ('synonyms_field', reg.synonyms_field), ('abbr_field', reg.abbr_field),
                 ('id_field', reg.id_field), ('organism_field', reg.organism_field), ('deprecated_field', reg.deprecated_field)) f(role, col)
    JOIN pg_attribute a ON a.attrelid = to_regclass(reg.name) AND a.attname = f.col AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION lamin.registry_field_numbers(lamin.registry) IS 'The column numbers of a registry''s search fields, by role.';

-- Make a table a registry (idempotent). A table that does not exist is
-- created with id, name and description (then ALTER TABLE it as you like)
-- and owned by the caller; an existing one must be the caller's. SECURITY
-- DEFINER: triggers that write lamin's audit and search index are attached
-- by lamin, and only to tables whose spaces it enforces.
CREATE FUNCTION lamin.create_registry(
    registry       text,
    name_field     text DEFAULT 'name',
    synonyms_field text DEFAULT NULL,
    abbr_field     text DEFAULT NULL,
    id_field       text DEFAULT NULL,
    guard          boolean DEFAULT true
) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (Quiet: re-arming drops triggers "IF EXISTS", which would say so for each.)
SET client_min_messages = warning
AS $$
#variable_conflict use_variable
DECLARE
    caller name := lamin.acting_role();
    nsp text := split_part(registry, '.', 1);
    rel text := split_part(registry, '.', 2);
    tbl regclass;
    qualified text;
    link text;
    col record;
    reg lamin.registry;
    has_pk boolean;
BEGIN
    IF registry IS NULL OR registry !~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'create_registry: % is not a table name of the form schema.table (lower case, digits, _)',
            coalesce(quote_literal(registry), 'NULL')
            USING ERRCODE = 'invalid_name', HINT = 'e.g. lamin.create_registry(''lab.sample'')';
    END IF;
    IF nsp IN ('lamin', 'bionty', 'pg_catalog', 'information_schema') OR nsp LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'create_registry: schema % is lamin''s or the system''s; keep your registries in a schema of your own', nsp
            USING ERRCODE = 'invalid_schema_name', HINT = 'CREATE SCHEMA lab; SELECT lamin.create_registry(''lab.sample'')';
    END IF;
    IF length('artifact_' || rel) > 63 THEN
        RAISE EXCEPTION 'create_registry: table name % is too long for its link table artifact_% (at most 54 characters)', rel, rel
            USING ERRCODE = 'name_too_long';
    END IF;
    tbl := to_regclass(format('%I.%I', nsp, rel));
    IF tbl IS NULL THEN
        IF to_regnamespace(quote_ident(nsp)) IS NULL THEN
            RAISE EXCEPTION 'create_registry: no schema %', nsp
                USING ERRCODE = 'invalid_schema_name', HINT = format('CREATE SCHEMA %I first', nsp);
        END IF;
        IF NOT has_schema_privilege(caller, to_regnamespace(quote_ident(nsp)), 'CREATE') THEN
            RAISE EXCEPTION 'permission denied: role % may not create tables in schema %', caller, nsp
                USING ERRCODE = 'insufficient_privilege', HINT = format('the schema''s owner grants it: GRANT CREATE ON SCHEMA %I TO %I', nsp, caller);
        END IF;
        EXECUTE format($t$CREATE TABLE %I.%I (
                            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                            %I          text NOT NULL CHECK (btrim(%I) <> ''),
                            description text)$t$, nsp, rel, name_field, name_field);
        tbl := to_regclass(format('%I.%I', nsp, rel));
        EXECUTE format('ALTER TABLE %s OWNER TO %I', tbl, caller);
    ELSIF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r') THEN
        RAISE EXCEPTION 'create_registry: % is not a plain table', registry USING ERRCODE = 'wrong_object_type';
    ELSIF NOT pg_has_role(caller, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: only the owner of % makes it a registry', registry
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    qualified := nsp || '.' || rel;
    IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = name_field AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)) THEN
        RAISE EXCEPTION 'create_registry: % has no text column % to name its records', qualified, quote_literal(name_field)
            USING ERRCODE = 'undefined_column',
                  HINT = 'pass name_field => the column that names a record, or ALTER TABLE ' || qualified || ' ADD COLUMN name text';
    END IF;
    -- lamin's columns, where missing. Existing rows get a uid each, the
    -- default space and the caller as creator.
    has_pk := EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = tbl AND k.contype = 'p');
    FOR col IN SELECT * FROM (VALUES
        ('id', 'bigint GENERATED BY DEFAULT AS IDENTITY ' || CASE WHEN has_pk THEN 'UNIQUE' ELSE 'PRIMARY KEY' END, NULL::text, 'int8'),
        ('uid', 'text NOT NULL DEFAULT lamin.uid(12) UNIQUE CHECK (uid ~ ''^[0-9A-Za-z]{12}$'')', NULL, 'text'),
        ('branch_id', 'smallint NOT NULL DEFAULT 1 REFERENCES lamin.branch', NULL, 'int2'),
        ('space_id', 'bigint NOT NULL DEFAULT 1 REFERENCES lamin.space', 'lamin.current_space_id()', 'int8'),
        ('is_locked', 'boolean NOT NULL DEFAULT false', NULL, 'bool'),
        ('created_at', 'timestamptz NOT NULL DEFAULT now()', NULL, 'timestamptz'),
        ('created_by', 'bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user"', NULL, 'int8'),
        ('updated_at', 'timestamptz NOT NULL DEFAULT now()', NULL, 'timestamptz')) x(name, def, later_default, typ)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', tbl, col.name, col.def);
            IF col.later_default IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, col.name, col.later_default);
            END IF;
        ELSIF (SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               WHERE a.attrelid = tbl AND a.attname = col.name AND NOT a.attisdropped) NOT IN (col.typ, CASE col.typ WHEN 'int8' THEN 'int4' END) THEN
            RAISE EXCEPTION 'create_registry: %.% is lamin''s column and must be of type %', qualified, col.name, col.typ
                USING ERRCODE = 'datatype_mismatch', HINT = 'rename your column first: ALTER TABLE ' || qualified || ' RENAME COLUMN ' || col.name || ' TO ...';
        END IF;
    END LOOP;
    -- Links and search refer to records by id: it must be unique.
    IF NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = tbl AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
                   AND i.indkey[0] = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'id')) THEN
        EXECUTE format('ALTER TABLE %s ADD UNIQUE (id)', tbl);
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS touch ON %s', tbl);
    EXECUTE format('CREATE TRIGGER touch BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at()', tbl);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (%I)', left(rel || '_' || name_field, 55) || '_lookup', tbl, name_field);
    -- Spaces, also for the table's owner (FORCE): a record in a space one
    -- cannot read stays unknown to everyone but superusers.
    PERFORM lamin.secure_table(tbl, 'space', true);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO lamin_reader, lamin_sidecar', nsp);
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO lamin_reader', pg_get_serial_sequence(tbl::text, 'id'));
    PERFORM lamin.make_searchable(tbl, name_field, synonyms_field => synonyms_field, abbr_field => abbr_field,
                                  id_field => id_field, guard => guard);
    -- The link table of annotations: lamin's (so that no owner can read
    -- around its policies), in the registry's schema, named as annotate expects.
    link := format('%I.%I', nsp, 'artifact_' || rel);
    IF to_regclass(link) IS NULL THEN
        EXECUTE format($t$CREATE TABLE %s (
                            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                            artifact_id bigint NOT NULL REFERENCES lamin.artifact ON DELETE CASCADE,
                            %I          bigint NOT NULL REFERENCES %s (id) ON DELETE RESTRICT,
                            feature_id  bigint REFERENCES lamin.feature ON DELETE RESTRICT,
                            created_at  timestamptz NOT NULL DEFAULT now(),
                            created_by  bigint NOT NULL DEFAULT lamin.current_user_id() REFERENCES lamin."user")$t$,
                       link, rel || '_id', tbl);
        EXECUTE format('CREATE UNIQUE INDEX %I ON %s (artifact_id, %I, coalesce(feature_id, 0))', left('artifact_' || rel, 56) || '_unique', link, rel || '_id');
        EXECUTE format('CREATE INDEX %I ON %s (%I)', left('artifact_' || rel, 56) || '_target', link, rel || '_id');
        EXECUTE format('COMMENT ON TABLE %s IS %L', link, format('Annotations of artifacts with records of %s (lamin.create_registry).', qualified));
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO lamin_reader', pg_get_serial_sequence(link, 'id'));
    END IF;
    PERFORM lamin.secure_table(link::regclass, format('link:lamin.artifact:artifact_id|%s:%s|lamin.feature:feature_id', tbl, rel || '_id'));
    -- Seen only when the record is too (as lamin's links to projects and records).
    EXECUTE format('ALTER POLICY link_read ON %s USING (EXISTS (SELECT FROM lamin.artifact o WHERE o.id = artifact_id)
                                                        AND EXISTS (SELECT FROM %s t WHERE t.id = %I))', link, tbl, rel || '_id');
    SELECT * INTO reg FROM lamin.registry r WHERE r.name = qualified;
    INSERT INTO lamin.own_registry AS o (name, relid, fields) VALUES (qualified, tbl, lamin.registry_field_numbers(reg))
    ON CONFLICT (name) DO UPDATE SET relid = excluded.relid, fields = excluded.fields;
    RETURN qualified;
END
$$;
COMMENT ON FUNCTION lamin.create_registry(text, text, text, text, text, boolean) IS
    'Make a table of your own (schema.table; created with id, name, description when missing) a lamin registry: uid, space with row-level security (forced, also for its owner), lock, audit, search and typo guard, and the link table schema.artifact_<table> for features of dtype cat[schema.table]. Idempotent; returns the table''s name.';
REVOKE EXECUTE ON FUNCTION lamin.create_registry(text, text, text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lamin.create_registry(text, text, text, text, text, boolean) TO lamin_writer;

-- Follow an ALTER TABLE of a registry of one's own: the fields search uses
-- keep their meaning under new names; what would break lamin is refused
-- (the whole ALTER TABLE is rolled back). Reads only the catalog, so anyone
-- may call it: it brings lamin's view in line with the table as it is.
CREATE FUNCTION lamin.own_registry_altered(table_oid oid) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lamin.making_searchable = 'on'
AS $$
DECLARE
    o lamin.own_registry;
    reg lamin.registry;
    role_name text;
    num text;
    now_named text;
    missing text;
    changed boolean := false;
BEGIN
    FOR o IN SELECT * FROM lamin.own_registry x WHERE x.relid = table_oid OR to_regclass(x.name) = table_oid LOOP
        IF to_regclass(o.name) IS DISTINCT FROM table_oid THEN
            RAISE EXCEPTION 'table % is a lamin registry: it keeps its name and schema (features name it as cat[%])', o.name, o.name
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'create a new registry under the new name and move the records, or leave the name as it is';
        END IF;
        SELECT string_agg(c, ', ') INTO missing FROM unnest(lamin.own_registry_system_columns()) c
        WHERE NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = table_oid AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'table %: columns % are lamin''s and cannot be renamed or dropped', o.name, missing
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'the columns ' || array_to_string(lamin.own_registry_system_columns(), ', ') || ' carry the record''s identity, space, lock and history';
        END IF;
        SELECT * INTO reg FROM lamin.registry r WHERE r.name = o.name;
        -- Names win: a field whose column still has its name stays; a field
        -- whose name is gone is found by its column number, if that column
        -- is still there (a rename), else the change is refused (a drop).
        FOR role_name, num IN SELECT k, v FROM jsonb_each_text(o.fields) e(k, v) LOOP
            IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = table_oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND a.attname = (to_jsonb(reg) ->> role_name)) THEN
                CONTINUE;
            END IF;
            SELECT a.attname INTO now_named FROM pg_attribute a
            WHERE a.attrelid = table_oid AND a.attnum = num::int AND NOT a.attisdropped;
            IF now_named IS NULL THEN
                RAISE EXCEPTION 'table %: column % is its registry''s % and cannot be dropped', o.name,
                    quote_literal(to_jsonb(reg) ->> role_name), replace(role_name, '_field', '')
                    USING ERRCODE = 'feature_not_supported',
                          HINT = format('first point search at another column: SELECT lamin.create_registry(%L, ...)', o.name);
            END IF;
            reg := jsonb_populate_record(reg, jsonb_build_object(role_name, now_named));
            changed := true;
        END LOOP;
        IF changed THEN
            PERFORM lamin.make_searchable(to_regclass(o.name), reg.name_field, reg.synonyms_field, reg.abbr_field, reg.id_field,
                                          reg.organism_field, reg.deprecated_field, reg.guard);
        END IF;
        UPDATE lamin.own_registry x SET relid = table_oid, fields = lamin.registry_field_numbers(reg) WHERE x.name = o.name;
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.own_registry_altered(oid) IS
    'After an ALTER TABLE of a registry of one''s own: follow renamed search fields (regenerating its search triggers), refuse renaming or moving the table and renaming or dropping lamin''s columns or a search field.';
-- (Called by the event trigger below, which runs as lamin's owner; not by users.)
REVOKE EXECUTE ON FUNCTION lamin.own_registry_altered(oid) FROM PUBLIC;

-- SECURITY DEFINER: it runs for every ALTER TABLE in the database, also by
-- roles that have nothing to do with lamin and cannot read its tables.
CREATE FUNCTION lamin.tg_own_registry_altered() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t oid;
BEGIN
    -- Only tables lamin follows: other DDL pays one look-up of a tiny table.
    FOR t IN SELECT DISTINCT c.objid FROM pg_event_trigger_ddl_commands() c
             WHERE c.classid = 'pg_class'::regclass
               AND EXISTS (SELECT FROM lamin.own_registry o WHERE o.relid = c.objid OR to_regclass(o.name) = c.objid)
    LOOP
        PERFORM lamin.own_registry_altered(t);
    END LOOP;
END
$$;
COMMENT ON FUNCTION lamin.tg_own_registry_altered() IS 'Event trigger: an ALTER TABLE of a registry of one''s own is followed by lamin.own_registry_altered.';
CREATE EVENT TRIGGER lamin_own_registry_altered ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
EXECUTE FUNCTION lamin.tg_own_registry_altered();
COMMENT ON EVENT TRIGGER lamin_own_registry_altered IS 'Keeps lamin in step with ALTER TABLE of registries users made (see lamin.own_registry_altered).';
