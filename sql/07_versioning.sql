-- Version families for artifacts, collections and transforms.
--
-- A family is the set of records sharing a uid stem (the uid without its
-- 4-character version suffix). Its head (is_latest) is the newest record that
-- is not in the trash. Writers of one family are serialised by an advisory
-- lock, so concurrent writers keep exactly one head; a partial unique index
-- (stem) WHERE is_latest backs this up.

-- The advisory lock key of a family.
CREATE FUNCTION lamin.family_lock_key(registry text, stem text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended('lamin.family:' || registry || ':' || stem, 0) $$;

-- The uid of the next version in a family: the stem plus the next counter.
CREATE FUNCTION lamin.next_version_uid(registry regclass, stem text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newest_suffix text;
BEGIN
    IF registry IS NULL OR stem IS NULL THEN
        RAISE EXCEPTION 'next_version_uid needs a registry and a uid stem' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(lamin.family_lock_key(registry::text, stem));
    EXECUTE format('SELECT max(right(uid, 4) COLLATE "C") FROM %s WHERE stem = $1', registry)
        INTO newest_suffix USING stem;
    IF newest_suffix IS NULL THEN
        RAISE EXCEPTION 'no % with uid stem %', registry, quote_literal(stem) USING ERRCODE = 'no_data_found';
    END IF;
    RETURN stem || lamin.version_suffix(lamin.version_number(newest_suffix) + 1);
END
$$;

-- BEFORE INSERT OR UPDATE: uids are immutable, version tags unique per family,
-- and an inserted record becomes the head when it is the newest in its family.
-- One template, instantiated per registry below: static SQL lets plpgsql cache
-- its plans (dynamic SQL would be planned on every row).
CREATE FUNCTION lamin.create_versioned_trigger_function(registry text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $template$
BEGIN
    EXECUTE replace($fn$
CREATE FUNCTION lamin.tg_@registry@_versioned_before() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Plan each query for the table as it is now: a generic plan made while the
-- table was small would keep scanning it sequentially as it grows.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    family text := left(NEW.uid, -4);
    taken_by text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.uid IS DISTINCT FROM OLD.uid THEN
            RAISE EXCEPTION 'lamin.@registry@.uid is immutable (tried to change % to %)', OLD.uid, NEW.uid
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        -- Moving the head of a family is bookkeeping, not a change of the record.
        -- (stem is generated: still NULL in NEW at this point.)
        IF (to_jsonb(NEW) - '{is_latest,updated_at,stem}'::text[])
           IS DISTINCT FROM (to_jsonb(OLD) - '{is_latest,updated_at,stem}'::text[]) THEN
            NEW.updated_at := now();
        END IF;
        IF NEW.version IS NOT DISTINCT FROM OLD.version THEN
            RETURN NEW;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(lamin.family_lock_key('lamin.@registry@', family));
    IF NEW.version IS NOT NULL THEN
        SELECT r.uid INTO taken_by FROM lamin.@registry@ r WHERE r.stem = family AND r.version = NEW.version AND r.id <> NEW.id;
        IF taken_by IS NOT NULL THEN
            RAISE EXCEPTION 'version tag % is already used by % in the same version family (@registry@)',
                quote_literal(NEW.version), taken_by
                USING ERRCODE = 'unique_violation', HINT = 'choose another version tag, or leave it NULL';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.is_latest := NEW.branch_id <> -1 AND NOT EXISTS (
            SELECT 1 FROM lamin.@registry@ r WHERE r.stem = family AND r.branch_id <> -1 AND r.id > NEW.id);
        -- Only touch the family when it has a head (a new family has none):
        -- an UPDATE, even of no rows, fires the registry's statement triggers.
        IF NEW.is_latest AND EXISTS (SELECT 1 FROM lamin.@registry@ r WHERE r.stem = family AND r.is_latest) THEN
            UPDATE lamin.@registry@ r SET is_latest = false WHERE r.stem = family AND r.is_latest;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
$fn$, '@registry@', registry);
END
$template$;

SELECT lamin.create_versioned_trigger_function('artifact');
SELECT lamin.create_versioned_trigger_function('collection');
SELECT lamin.create_versioned_trigger_function('transform');
DROP FUNCTION lamin.create_versioned_trigger_function(text);

-- Re-elect the head of a family: the newest record not in the trash.
CREATE FUNCTION lamin.refresh_family_head(registry regclass, family text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head_id bigint;
BEGIN
    IF registry IS NULL OR family IS NULL THEN
        RAISE EXCEPTION 'refresh_family_head needs a registry and a family (uid stem)' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(lamin.family_lock_key(registry::text, family));
    EXECUTE format('SELECT max(id) FROM %s WHERE stem = $1 AND branch_id <> -1', registry) INTO head_id USING family;
    -- Two statements: the partial unique index allows only one head at any moment.
    EXECUTE format('UPDATE %s SET is_latest = false WHERE stem = $1 AND is_latest AND id IS DISTINCT FROM $2', registry)
        USING family, head_id;
    IF head_id IS NOT NULL THEN
        EXECUTE format('UPDATE %s SET is_latest = true WHERE id = $1 AND NOT is_latest', registry) USING head_id;
    END IF;
END
$$;

-- AFTER DELETE, or a move into or out of the trash: the family may need a new head.
CREATE FUNCTION lamin.tg_versioned_after() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.is_latest THEN
            PERFORM lamin.refresh_family_head(TG_RELID, OLD.stem);
        END IF;
        RETURN OLD;
    END IF;
    -- UPDATE OF branch_id
    IF (OLD.branch_id = -1) <> (NEW.branch_id = -1) THEN
        PERFORM lamin.refresh_family_head(TG_RELID, NEW.stem);
    END IF;
    RETURN NEW;
END
$$;

-- An inserted head (not in the trash) that lamin vouched for in this session
-- (lamin.is_vouched_head: the first version of a new family, whose random
-- stem nobody else knows, or a next version whose family's head a bulk save
-- has already demoted) skips the trigger: there is nothing to lock, look up
-- or demote. The check runs in the executor (no plpgsql call); the trigger
-- was most of a bulk save's per-row cost. Every other insert, and every
-- update, goes through the trigger.
CREATE TRIGGER artifact_versioned_before BEFORE UPDATE ON lamin.artifact
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_artifact_versioned_before();
CREATE TRIGGER artifact_versioned_insert BEFORE INSERT ON lamin.artifact
    FOR EACH ROW WHEN (NOT (NEW.is_latest AND NEW.branch_id <> -1 AND lamin.is_vouched_head(NEW.uid)))
    EXECUTE FUNCTION lamin.tg_artifact_versioned_before();
CREATE TRIGGER artifact_versioned_after AFTER DELETE OR UPDATE OF branch_id ON lamin.artifact
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_versioned_after();
CREATE TRIGGER collection_versioned_before BEFORE UPDATE ON lamin.collection
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_collection_versioned_before();
CREATE TRIGGER collection_versioned_insert BEFORE INSERT ON lamin.collection
    FOR EACH ROW WHEN (NOT (NEW.is_latest AND NEW.branch_id <> -1 AND lamin.is_vouched_head(NEW.uid)))
    EXECUTE FUNCTION lamin.tg_collection_versioned_before();
CREATE TRIGGER collection_versioned_after AFTER DELETE OR UPDATE OF branch_id ON lamin.collection
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_versioned_after();
CREATE TRIGGER transform_versioned_before BEFORE UPDATE ON lamin.transform
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_transform_versioned_before();
CREATE TRIGGER transform_versioned_insert BEFORE INSERT ON lamin.transform
    FOR EACH ROW WHEN (NOT (NEW.is_latest AND NEW.branch_id <> -1 AND lamin.is_vouched_head(NEW.uid)))
    EXECUTE FUNCTION lamin.tg_transform_versioned_before();
CREATE TRIGGER transform_versioned_after AFTER DELETE OR UPDATE OF branch_id ON lamin.transform
    FOR EACH ROW EXECUTE FUNCTION lamin.tg_versioned_after();

-- Keep updated_at current on the other registries.
CREATE FUNCTION lamin.tg_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER feature_touch BEFORE UPDATE ON lamin.feature FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at();
CREATE TRIGGER schema_touch BEFORE UPDATE ON lamin.schema FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at();
CREATE TRIGGER ulabel_touch BEFORE UPDATE ON lamin.ulabel FOR EACH ROW EXECUTE FUNCTION lamin.tg_touch_updated_at();
