-- Saving bytes from a client (lamin save): the database side of the upload.
--
--   1. begin_upload(hash, size, …): registers the artifact by content. New
--      content gets a row in status 'pending' and the path to write; content
--      already stored returns the existing uid and nothing is uploaded.
--   2. the client writes the bytes to {root}/.lamindb/{uid}{suffix} (a folder:
--      its files under that prefix), hashing them again as it goes, and calls
--      touch_upload every minute;
--   3. finish_upload(uid, hash) marks the artifact ready, only if the bytes
--      written had the registered hash; fail_upload(uid, error) marks it failed.
-- A crash between 1 and 3 leaves the artifact visibly 'pending', never a
-- 'ready' row without its bytes.

CREATE FUNCTION lamin.begin_upload(hash text, size bigint, key text DEFAULT NULL, suffix text DEFAULT NULL,
                                   description text DEFAULT NULL, storage text DEFAULT NULL,
                                   n_files bigint DEFAULT NULL, revises text DEFAULT NULL)
RETURNS TABLE (uid text, upload boolean, status text, path text, storage_root text, storage_type text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    saved text;
BEGIN
    saved := lamin.save_artifact(hash, size, key => key, suffix => suffix, description => description, storage => storage,
                                 n_files => n_files, revises => revises);
    -- Ours to write: created (or brought back) by this transaction, or an
    -- earlier upload that failed, or one left pending for 10 minutes (its
    -- client died). A pending upload in progress elsewhere is left alone.
    UPDATE lamin.artifact a SET status = 'pending', status_detail = 'uploading', updated_at = now()
    WHERE a.uid = saved
      AND ((a.xmin = xid(pg_current_xact_id()) AND a.status <> 'pending')
           OR a.status = 'failed'
           OR (a.status = 'pending' AND a.updated_at < now() - interval '10 minutes'));
    RETURN QUERY
    SELECT a.uid, a.xmin = xid(pg_current_xact_id()), a.status, lamin.artifact_path(a), s.root, s.type
    FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
    WHERE a.uid = saved;
END
$$;
COMMENT ON FUNCTION lamin.begin_upload(text, bigint, text, text, text, text, bigint, text) IS
    'Client upload, step 1: register content by hash (revises: as a new version of that artifact); new content is pending and gets the path to write (upload = true), known content returns its uid (upload = false).';

CREATE FUNCTION lamin.finish_upload(uid text, hash text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    a record;
BEGIN
    SELECT x.id, x.hash, x.status INTO a FROM lamin.artifact x WHERE x.id = lamin.artifact_id(uid) FOR UPDATE;
    -- artifact_id found it (the caller reads it); FOR UPDATE did not: no write.
    IF NOT FOUND THEN
        RAISE EXCEPTION 'permission denied: finishing the upload of artifact % needs write on its space', uid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF a.hash IS DISTINCT FROM hash THEN
        RAISE EXCEPTION 'artifact %: the bytes written have sha256 %, not the registered %', uid, hash, a.hash
            USING ERRCODE = 'data_corrupted';
    END IF;
    UPDATE lamin.artifact x SET status = 'ready', status_detail = NULL, updated_at = now()
    WHERE x.id = a.id AND x.status = 'pending';
    RETURN 'ready';
END
$$;
COMMENT ON FUNCTION lamin.finish_upload(text, text) IS 'Client upload, step 3: the bytes are in place with the registered hash; the artifact becomes ready.';

CREATE FUNCTION lamin.fail_upload(uid text, error text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE lamin.artifact a SET status = 'failed', updated_at = now(), status_detail = 'upload failed: ' || left($2, 1000)
    WHERE a.id = lamin.artifact_id($1) AND a.status = 'pending'
$$;
COMMENT ON FUNCTION lamin.fail_upload(text, text) IS 'Client upload: the bytes could not be written; the pending artifact becomes failed (saving the content again retries).';

-- A long upload says it is still alive (every minute), so that neither
-- another save nor the storage sweep takes it for abandoned.
CREATE FUNCTION lamin.touch_upload(uid text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE lamin.artifact a SET updated_at = now() WHERE a.id = lamin.artifact_id($1) AND a.status = 'pending'
$$;
COMMENT ON FUNCTION lamin.touch_upload(text) IS 'Client upload in progress: keeps the pending artifact from being taken for abandoned.';
