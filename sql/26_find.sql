-- Finding artifacts by their feature values and labels, fast at any size:
-- LaminDB's Artifact.filter(temperature > 30, cell_type=...) as one call,
--   SELECT uid, key FROM lamin.find_artifacts(
--       '{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}}');
--
-- Why a function and not only the views (lamin.artifact_values,
-- lamin.annotations): Postgres keeps one histogram per column, so it cannot
-- know how many values of *one* feature lie above 30 when value_number holds
-- every numeric feature; nor can it probe the UNION ALL of the label tables
-- one artifact at a time. On a million artifacts its plans for the view form
-- read every label link (seconds). This function asks each question in the
-- order that keeps the sets small, with exact sets in hand:
--   1. each feature's value conditions are one range scan of its typed index
--      (feature, value, artifact), giving the exact set of artifacts; the
--      sets of several features are intersected;
--   2. each label condition becomes the set of registry records it accepts
--      (a name, a list of names, or a term and everything below it);
--   3. one statement reads the candidate artifacts and probes, per artifact,
--      its label links by the (artifact, record) index, with every set a
--      constant the planner sees whole.
-- It runs as the caller: row-level security applies to every table it
-- reads, so nobody finds an artifact, a value or a label they cannot read.

-- The records at and below a record of a registry with parents (bionty's
-- ontologies: <table>_parent(child_id, parent_id); ulabels:
-- lamin.ulabel_parent(ulabel_id, parent_id)), as ids. A breadth-first walk by
-- the parent index; UNION keeps each record once, so a DAG with many paths
-- (and even a cycle) stays linear. Hash joins are off for the walk: each
-- level is a handful of index probes, which the planner, not knowing the
-- level's size, would otherwise answer with a scan of every edge per level.
CREATE FUNCTION lamin.subtree_ids(registry text, root_id bigint) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    edges regclass := to_regclass(registry || '_parent');
    child text := CASE WHEN registry = 'lamin.ulabel' THEN 'ulabel_id' ELSE 'child_id' END;
    ids bigint[];
BEGIN
    IF edges IS NULL THEN
        RAISE EXCEPTION 'registry % has no hierarchy', registry
            USING ERRCODE = 'feature_not_supported', HINT = 'match its records by name: = or in';
    END IF;
    EXECUTE format($q$
        WITH RECURSIVE below(id) AS (
            SELECT $1
            UNION
            SELECT e.%1$I FROM below b JOIN %2$s e ON e.parent_id = b.id
        )
        SELECT array_agg(id) FROM below$q$, child, edges)
    INTO ids USING root_id;
    RETURN ids;
END
$$;
COMMENT ON FUNCTION lamin.subtree_ids(text, bigint) IS
    'The ids of a registry record and of every record below it (its children, their children, …), e.g. lamin.subtree_ids(''bionty.cell_type'', id): the registry''s <table>_parent edges walked by their parent index.';

-- The typed column a feature's values are compared in (lamin.fit_value
-- fills them): NULL for dict and categorical dtypes.
CREATE FUNCTION lamin.value_column(dtype text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE lamin.dtype_base(dtype)
        WHEN 'int' THEN 'value_number' WHEN 'float' THEN 'value_number' WHEN 'num' THEN 'value_number'
        WHEN 'str' THEN 'value_text' WHEN 'url' THEN 'value_text' WHEN 'path' THEN 'value_text'
        WHEN 'bool' THEN 'value_boolean' WHEN 'date' THEN 'value_date' WHEN 'datetime' THEN 'value_timestamp'
    END
$$;
COMMENT ON FUNCTION lamin.value_column(text) IS
    'The typed column of lamin.artifact_feature_value (value_number, value_text, value_boolean, value_date, value_timestamp) that holds the values of a dtype; NULL for dict and categorical dtypes.';

-- The SQL type of a typed value column, to cast the operands of a
-- comparison to (they travel as text, in one array per statement).
CREATE FUNCTION lamin.value_column_type(col text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE col WHEN 'value_number' THEN 'double precision' WHEN 'value_text' THEN 'text'
                    WHEN 'value_boolean' THEN 'boolean' WHEN 'value_date' THEN 'date'
                    WHEN 'value_timestamp' THEN 'timestamptz' END
$$;
COMMENT ON FUNCTION lamin.value_column_type(text) IS
    'The SQL type of a typed column of lamin.artifact_feature_value (lamin.value_column): double precision, text, boolean, date or timestamptz; NULL for any other name.';

-- An operand made to fit a dtype, as the text of the typed column it is
-- compared in (cast back with lamin.value_column_type). Numbers of every
-- numeric dtype compare as numbers (an int feature with 2.5, "3" finds
-- 3.0); NULL when the operand does not fit the dtype, or the dtype has no
-- typed column.
CREATE FUNCTION lamin.comparable_value(dtype text, operand jsonb) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE c.col WHEN 'value_number' THEN fv.value_number::text WHEN 'value_text' THEN fv.value_text
                      WHEN 'value_boolean' THEN fv.value_boolean::text WHEN 'value_date' THEN fv.value_date::text
                      WHEN 'value_timestamp' THEN fv.value_timestamp::text END
    FROM (SELECT lamin.value_column(dtype) AS col) c
    CROSS JOIN LATERAL lamin.fit_value(CASE WHEN c.col = 'value_number' THEN 'num' ELSE lamin.dtype_base(dtype) END, operand, true) fv
$$;
COMMENT ON FUNCTION lamin.comparable_value(text, jsonb) IS
    'An operand made to fit a dtype (lamin.fit_value, numbers of any numeric dtype as numbers, numbers and booleans written as strings accepted), as the text of the typed column it is compared in, e.g. lamin.comparable_value(''int'', ''"3"'') = ''3''; NULL when it does not fit or the dtype has no typed column.';

-- Two settings for its own statements: no JIT (these are index probes; the
-- planner's high cost guesses, inflated by the row-level-security checks,
-- would otherwise spend 50-500 ms compiling them), and a small work_mem, so
-- that a security check "is the owning artifact readable?" is an index
-- probe per row, never a hash of every artifact built to answer a few
-- thousand rows.
-- max_rows: a function's rows are all made before a LIMIT around the call
-- sees any, so the limit is passed in (the first 100 artifacts with a label
-- of 10,000 artifacts took 167 ms at 10M artifacts as LIMIT 100 outside).
CREATE FUNCTION lamin.find_artifacts(filters jsonb, max_rows bigint DEFAULT NULL) RETURNS SETOF lamin.artifact
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '1MB'
AS $$
#variable_conflict use_variable
DECLARE
    cand bigint[];          -- the artifacts every value condition so far holds for; NULL: none yet
    probes text := '';      -- one EXISTS per label condition
    item record;
    f record;
    ops jsonb;
    c record;
    vconds text;            -- the current feature's value conditions, as SQL over $2 (vargs)
    vargs text[];
    col text;
    typ text;
    operands text[];
    ids bigint[];
    registry text;
    link regclass;
    reg record;
    root_id bigint;
    misfit jsonb;
    example constant text := '{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}, "assay": ["10x 3'' v3"]}';
BEGIN
    IF max_rows IS NOT NULL AND max_rows < 0 THEN
        RAISE EXCEPTION 'find_artifacts: max_rows is a number of artifacts (or NULL for all), not %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF filters IS NULL OR jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'find_artifacts: filters are a JSON object of feature names and conditions, not %',
            coalesce(left(filters::text, 200), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ' || example;
    END IF;
    -- Value conditions first (each gives an exact set of artifacts), then labels.
    FOR item IN
        SELECT j.key, j.value, x.id AS feature_id, x.name, x.dtype
        FROM jsonb_each(filters) j
        CROSS JOIN LATERAL (SELECT x.id, x.name, x.dtype FROM lamin.feature x WHERE x.id = lamin.feature_id(j.key)) x
        ORDER BY lamin.dtype_registry(x.dtype) IS NOT NULL, j.key
    LOOP
        -- A bare value is equality, a bare list membership: {"assay": "x"}, {"assay": ["x", "y"]}.
        ops := CASE jsonb_typeof(item.value)
                   WHEN 'object' THEN item.value
                   WHEN 'array' THEN jsonb_build_object('in', item.value)
                   ELSE jsonb_build_object('=', item.value) END;
        IF ops = '{}' THEN
            RAISE EXCEPTION 'find_artifacts: feature % has an empty condition', quote_literal(item.name)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. ' || example;
        END IF;
        registry := lamin.dtype_registry(item.dtype);
        vconds := '';
        vargs := '{}';
        FOR c IN SELECT o.key AS op, o.value AS operand FROM jsonb_each(ops) o ORDER BY o.key LOOP
            IF jsonb_typeof(c.operand) = 'null' THEN
                RAISE EXCEPTION 'find_artifacts: feature %: NULL is no value to compare with', quote_literal(item.name)
                    USING ERRCODE = 'null_value_not_allowed';
            END IF;
            IF c.op = 'in' AND (jsonb_typeof(c.operand) <> 'array' OR jsonb_array_length(c.operand) = 0) THEN
                RAISE EXCEPTION 'find_artifacts: feature %: "in" takes a non-empty list, not %', quote_literal(item.name), left(c.operand::text, 200)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF c.op <> 'in' AND jsonb_typeof(c.operand) = 'array' THEN
                RAISE EXCEPTION 'find_artifacts: feature %: % takes one value, not the list %', quote_literal(item.name), c.op, left(c.operand::text, 200)
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'for any of several values: {"in": [...]}';
            END IF;
            IF registry IS NULL THEN
                -- A value condition: one range scan of the typed index.
                col := lamin.value_column(item.dtype);
                IF col IS NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %) cannot be compared', quote_literal(item.name), item.dtype
                        USING ERRCODE = 'feature_not_supported',
                              HINT = 'query its values in lamin.artifact_values (column value, jsonb)';
                END IF;
                IF c.op NOT IN ('=', '>', '>=', '<', '<=', 'in') THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): unknown operator %', quote_literal(item.name), item.dtype, quote_literal(c.op)
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'the operators are =, >, >=, <, <= and in';
                END IF;
                typ := lamin.value_column_type(col);
                -- Each operand made to fit the dtype (a comparison of an int
                -- feature with 2.5 is fine: numbers are compared as numbers).
                SELECT array_agg(x.v), (array_agg(x.e) FILTER (WHERE x.v IS NULL))[1]
                INTO operands, misfit
                FROM (SELECT e, lamin.comparable_value(item.dtype, e) AS v
                      FROM jsonb_array_elements(CASE WHEN c.op = 'in' THEN c.operand ELSE jsonb_build_array(c.operand) END) e) x;
                IF misfit IS NOT NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): % is no % to compare with', quote_literal(item.name), item.dtype,
                        left(misfit::text, 200), lamin.dtype_base(item.dtype)
                        USING ERRCODE = 'datatype_mismatch';
                END IF;
                -- Collected, and asked below in one scan with the feature's other conditions.
                vconds := vconds || CASE WHEN c.op = 'in'
                    THEN format(' AND v.%I = ANY ($2[%s:%s]::%s[])', col, cardinality(vargs) + 1, cardinality(vargs) + cardinality(operands), typ)
                    ELSE format(' AND v.%I %s $2[%s]::%s', col, c.op, cardinality(vargs) + 1, typ) END;
                vargs := vargs || operands;
            ELSE
                -- A label condition: the registry records it accepts.
                link := to_regclass(format('%I.%I', split_part(registry, '.', 1), 'artifact_' || split_part(registry, '.', 2)));
                SELECT r.name_field, r.id_field INTO reg FROM lamin.registry r WHERE r.name = registry;
                IF link IS NULL OR reg IS NULL THEN
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): artifacts are not annotated with records of %', quote_literal(item.name), item.dtype, registry
                        USING ERRCODE = 'feature_not_supported', HINT = 'annotatable registries have a link table <schema>.artifact_<table>';
                END IF;
                IF c.op IN ('=', 'in') THEN
                    EXECUTE format('SELECT array_agg(t.id) FROM %s t WHERE t.%I = ANY ($1) AND t.branch_id <> -1',
                                   registry, coalesce(lamin.dtype_field(item.dtype), reg.name_field))
                    INTO ids
                    USING ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(CASE WHEN c.op = 'in' THEN c.operand ELSE jsonb_build_array(c.operand) END) e);
                ELSIF c.op = 'under' THEN
                    -- The term itself (by its id, e.g. CL:0000084, or its name) and everything below it.
                    EXECUTE format('SELECT t.id FROM %s t WHERE (t.%I = $1%s) AND t.branch_id <> -1 ORDER BY t.%I = $1 DESC LIMIT 1',
                                   registry, reg.name_field,
                                   CASE WHEN reg.id_field IS NOT NULL THEN format(' OR t.%I = $1', reg.id_field) ELSE '' END,
                                   coalesce(reg.id_field, reg.name_field))
                    INTO root_id USING c.operand #>> '{}';
                    IF root_id IS NULL THEN
                        RAISE EXCEPTION 'find_artifacts: feature %: % holds no record %', quote_literal(item.name), registry, quote_literal(c.operand #>> '{}')
                            USING ERRCODE = 'no_data_found',
                                  HINT = CASE WHEN registry LIKE 'bionty.%' THEN 'give an ontology id or name, e.g. CL:0000084 or ''T cell''; import the ontology first' END;
                    END IF;
                    ids := lamin.subtree_ids(registry, root_id);
                ELSE
                    RAISE EXCEPTION 'find_artifacts: feature % (dtype %): unknown operator %', quote_literal(item.name), item.dtype, quote_literal(c.op)
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'labels are matched with =, in and under (a term and every term below it)';
                END IF;
                IF ids IS NULL THEN
                    RETURN;  -- no record matches: neither does any artifact
                END IF;
                -- IN (SELECT unnest(...)): a hash of the records, built once and
                -- probed by each link (= ANY would compare with every element).
                probes := probes || format(' AND EXISTS (SELECT FROM %s l WHERE l.artifact_id = a.id AND l.feature_id = %s AND l.%I IN (SELECT unnest(%L::bigint[])))',
                                           link, item.feature_id, split_part(registry, '.', 2) || '_id', ids);
            END IF;
        END LOOP;
        IF registry IS NULL THEN
            -- All of a feature's value conditions in one range scan of its
            -- typed index: {">=": 10, "<": 20} reads what lies between, not
            -- every value above 10 and every value below 20.
            EXECUTE format('SELECT array_agg(DISTINCT v.artifact_id) FROM lamin.artifact_feature_value v
                            WHERE v.feature_id = $1%s', vconds)
            INTO ids USING item.feature_id, vargs;
            cand := CASE WHEN cand IS NULL THEN coalesce(ids, '{}')
                         ELSE ARRAY(SELECT unnest(cand) INTERSECT SELECT unnest(ids)) END;
            IF cand = '{}' THEN
                RETURN;
            END IF;
        END IF;
    END LOOP;
    -- $1 is planned as the constant it is: the planner sees how many candidates there are.
    RETURN QUERY EXECUTE 'SELECT a.* FROM lamin.artifact a WHERE a.branch_id <> -1'
        || CASE WHEN cand IS NOT NULL THEN ' AND a.id = ANY ($1)' ELSE '' END || probes
        || CASE WHEN max_rows IS NOT NULL THEN ' LIMIT $2' ELSE '' END
        USING cand, max_rows;
END
$$;
COMMENT ON FUNCTION lamin.find_artifacts(jsonb, bigint) IS
    'Artifacts (not in the trash) whose feature values and labels meet every condition, e.g. lamin.find_artifacts(''{"temperature": {">": 30}, "cell_type": {"under": "CL:0000084"}, "assay": ["10x 3'''' v3"]}''): per feature a value (=), a list (in) or an object of operators: =, >, >=, <, <=, in for values; =, in and under (the term and every term below it) for labels. max_rows: at most that many of them (any; NULL: all). Fast at any size: see sql/26_find.sql.';

-- The artifacts annotated with `value`: with a record of that name in any
-- registry that annotates artifacts (ulabels, ontology terms, projects,
-- references, records, registries of one's own), and, when a feature is
-- named, only through that feature, or with that typed value of it. What
-- `lamin ls --label` and `--feature name=value` select.
-- Why a set and not a per-artifact test: a listing walks the artifacts in
-- key order, and asking each one for its annotations (registry_annotations,
-- about 1 ms a call) took 111 s to find the first 100 artifacts with a label
-- of 1 artifact in 1,000 at 1M artifacts. Here each registry is one indexed
-- look-up of the name and one of its links, so the cost is what the matches
-- cost, and the caller filters by the set before it sorts (lamin ls hands it
-- to its listing as an array, so that the planner sees the set's size).
-- It runs as the caller: row-level security applies to every table read.
CREATE FUNCTION lamin.annotated_artifact_ids(value text, feature text DEFAULT NULL) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_variable
DECLARE
    fid bigint;
    dtype text;
    reg record;
    parts text[] := '{}';
    col text;
    typed text;
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'annotated_artifact_ids: NULL is no label or value to look for'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF feature IS NOT NULL THEN
        SELECT x.id, x.dtype INTO fid, dtype FROM lamin.feature x WHERE x.name = feature;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no feature named %', to_json(feature)
                USING ERRCODE = 'no_data_found', HINT = 'see SELECT name, dtype FROM lamin.features';
        END IF;
    END IF;
    -- A record of that name, in every registry with a link table
    -- <schema>.artifact_<table> (registry records by their name field).
    FOR reg IN
        SELECT r.name, r.name_field,
               to_regclass(format('%I.%I', split_part(r.name, '.', 1), 'artifact_' || split_part(r.name, '.', 2))) AS link
        FROM lamin.registry r ORDER BY r.name
    LOOP
        CONTINUE WHEN reg.link IS NULL;
        parts := parts || format('SELECT l.artifact_id FROM %s l WHERE l.%I IN (SELECT t.id FROM %s t WHERE t.%I = $1)%s',
                                 reg.link, split_part(reg.name, '.', 2) || '_id', reg.name, reg.name_field,
                                 CASE WHEN feature IS NOT NULL THEN ' AND l.feature_id = $2' ELSE '' END);
    END LOOP;
    IF feature IS NOT NULL THEN
        -- A typed value, compared as the feature's dtype compares (a number
        -- as a number: "3" finds 3.0), on the typed index; a value that does
        -- not fit the dtype finds none. Dict values: by their text.
        col := lamin.value_column(dtype);
        IF col IS NULL THEN
            parts := parts || 'SELECT v.artifact_id FROM lamin.artifact_feature_value v WHERE v.feature_id = $2 AND v.value #>> ''{}'' = $1'::text;
        ELSE
            typed := lamin.comparable_value(dtype, to_jsonb(value));
            IF typed IS NOT NULL THEN
                parts := parts || format('SELECT v.artifact_id FROM lamin.artifact_feature_value v WHERE v.feature_id = $2 AND v.%I = $3::%s',
                                         col, lamin.value_column_type(col));
            END IF;
        END IF;
    END IF;
    IF parts <> '{}' THEN
        RETURN QUERY EXECUTE array_to_string(parts, ' UNION ') USING value, fid, typed;
    END IF;
END
$$;
COMMENT ON FUNCTION lamin.annotated_artifact_ids(text, text) IS
    'Ids of the artifacts annotated with value: a record of that name in any registry that annotates artifacts (ulabels, ontology terms, projects, references, records, your own registries); with feature, only annotations through that feature, or that typed value of it (compared as its dtype compares). Each id once; artifacts in the trash too. Fast at any size (see sql/26_find.sql); with the lamin.artifacts view pass the set as an array: WHERE a.id = ANY (ARRAY(SELECT lamin.annotated_artifact_ids(''T cell''))).';
