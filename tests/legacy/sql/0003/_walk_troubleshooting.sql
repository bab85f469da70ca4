-- stepsync._walk_troubleshooting(p_structure, p_exact): the nodes of a
-- troubleshooting flow that would sync (SPEC §2): every JSON object at any
-- depth, under any key or in any array, whose "type" is "action" or
-- "solution". Returns their raw fields; stepsync._nodes checks and shapes them.
--
-- Three walks, one result (the tests compare them on the same trees):
--  * shallow (nothing 64 levels deep, the normal case): one jsonb_path_query
--    over `strict $.**`, in exact walk order (depth first, members in jsonb key
--    order, array elements in order). It copies each synced node with its
--    subtree, which is cheap when trees are shallow.
--  * deep: jsonb_path_query's `.**` recurses in C and overflows the stack near
--    5,000 nested nodes on PostgreSQL 15, and copying subtrees costs depth x
--    size. So the tree is walked in bands of 1,000 levels, and within a band
--    each field is read by its own path query (`... ? (filter).title`), which
--    returns only that small value. The fields are zipped back together by the
--    node's id, which a valid flow has unique (any irregularity shows up as a
--    problem in _nodes). Nodes are ordered band by band: exact within a band;
--    a deeper band's nodes follow the shallower band's. Paths are not known
--    here: each node's path is its band's level range, "$.**{1000 to 1999}".
--  * exact (p_exact, used to report a problem): level by level with jsonb_each
--    and jsonb_array_elements, carrying each node's JSON path. Exact order,
--    no recursion, but it copies subtrees: only for error reports.
-- No PL/pgSQL recursion anywhere (PITFALLS.md). Called by stepsync._nodes.
CREATE OR REPLACE FUNCTION stepsync._walk_troubleshooting(p_structure jsonb, p_exact boolean DEFAULT false)
RETURNS TABLE (
    ord bigint,
    path text,
    node_id jsonb,
    node_type text,
    title jsonb,
    description jsonb,
    expected_outcome jsonb,
    commands jsonb
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling these plans costs more than running them (measured: 30-80 ms)
SET plan_cache_mode = force_generic_plan  -- one plan a session; planning each call cost ~1 ms
AS $function$
DECLARE
    v_docs jsonb[];
    v_offset bigint := 0;
    v_level_nodes bigint;
    v_band integer := 0;
BEGIN
    IF p_structure IS NULL OR pg_catalog.jsonb_typeof(p_structure) NOT IN ('object', 'array') THEN
        RETURN;
    END IF;

    IF p_exact THEN
        -- Level by level: (value, path, sort key); objects whose type syncs are emitted.
        RETURN QUERY
        WITH RECURSIVE walk (value, path, sort_key) AS (
            SELECT p_structure, '$'::text, ARRAY[]::integer[]
            UNION ALL
            SELECT child.value, child.path, child.sort_key
              FROM walk w
              CROSS JOIN LATERAL (
                    SELECT m.value,
                           w.path || CASE WHEN m.key ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || m.key
                                          ELSE '.' || pg_catalog.to_json(m.key)::text END,
                           w.sort_key || m.i::integer
                      FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(w.value) = 'object' THEN w.value END)
                           WITH ORDINALITY AS m (key, value, i)
                     UNION ALL
                    SELECT e.value, w.path || '[' || (e.i - 1) || ']', w.sort_key || e.i::integer
                      FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(w.value) = 'array' THEN w.value END)
                           WITH ORDINALITY AS e (value, i)
                   ) AS child (value, path, sort_key)
             WHERE pg_catalog.jsonb_typeof(child.value) IN ('object', 'array')
        )
        SELECT pg_catalog.row_number() OVER (ORDER BY w.sort_key), w.path,
               w.value -> 'id', w.value ->> 'type', w.value -> 'title', w.value -> 'description',
               w.value -> 'expected_outcome', w.value -> 'commands'
          FROM walk w
         WHERE pg_catalog.jsonb_typeof(w.value) = 'object'
           AND w.value ->> 'type' IN ('action', 'solution')
           AND pg_catalog.jsonb_typeof(w.value -> 'type') = 'string'
         ORDER BY w.sort_key;
        RETURN;
    END IF;

    IF NOT pg_catalog.jsonb_path_exists(p_structure, 'strict $.**{64}') THEN
        RETURN QUERY
        SELECT q.i, NULL::text, q.n -> 'id', q.n ->> 'type', q.n -> 'title', q.n -> 'description',
               q.n -> 'expected_outcome', q.n -> 'commands'
          FROM pg_catalog.jsonb_path_query(
                   p_structure, 'strict $.** ? (@.type == "action" || @.type == "solution")')
               WITH ORDINALITY AS q (n, i);
        RETURN;
    END IF;

    -- Deep: bands of 1,000 levels; v_docs holds the subtrees that start a band.
    v_docs := ARRAY[p_structure];
    LOOP
        RETURN QUERY
        WITH docs AS (
            SELECT d.doc, d.k FROM pg_catalog.unnest(v_docs) WITH ORDINALITY AS d (doc, k)
        ),
        kinds AS (   -- every synced node of the band, in band order
            SELECT d.k, q.i, q.t #>> '{}' AS node_type
              FROM docs d, pg_catalog.jsonb_path_query(d.doc,
                   'strict $.**{0 to 999} ? (@.type == "action" || @.type == "solution").type') WITH ORDINALITY AS q (t, i)
        ),
        ids AS (     -- the same nodes' ids, when every one of them has an id
            SELECT d.k, q.i, q.v AS node_id
              FROM docs d, pg_catalog.jsonb_path_query(d.doc,
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.id)).id') WITH ORDINALITY AS q (v, i)
        ),
        fields AS (  -- (node id, field, value) for each field a node has: ids and values zipped by position
            SELECT d.k, f.field, i.v AS node_id, v.v AS value
              FROM docs d
              CROSS JOIN (VALUES
                  ('title',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.title) && exists(@.id)).id'::jsonpath,
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.title) && exists(@.id)).title'::jsonpath),
                  ('description',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.description) && exists(@.id)).id',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.description) && exists(@.id)).description'),
                  ('expected_outcome',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.expected_outcome) && exists(@.id)).id',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.expected_outcome) && exists(@.id)).expected_outcome'),
                  ('commands',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.commands) && exists(@.id)).id',
                   'strict $.**{0 to 999} ? ((@.type == "action" || @.type == "solution") && exists(@.commands) && exists(@.id)).commands')
              ) AS f (field, ids_path, values_path)
              CROSS JOIN LATERAL pg_catalog.jsonb_path_query(d.doc, f.ids_path) WITH ORDINALITY AS i (v, n)
              JOIN LATERAL pg_catalog.jsonb_path_query(d.doc, f.values_path) WITH ORDINALITY AS v (v, n) ON v.n = i.n
        ),
        pivot AS (   -- one row per (band subtree, node id) with its fields side by side
            SELECT f.k, f.node_id,
                   (pg_catalog.array_agg(f.value) FILTER (WHERE f.field = 'title'))[1] AS title,
                   (pg_catalog.array_agg(f.value) FILTER (WHERE f.field = 'description'))[1] AS description,
                   (pg_catalog.array_agg(f.value) FILTER (WHERE f.field = 'expected_outcome'))[1] AS expected_outcome,
                   (pg_catalog.array_agg(f.value) FILTER (WHERE f.field = 'commands'))[1] AS commands
              FROM fields f
             GROUP BY f.k, f.node_id
        )
        SELECT v_offset + pg_catalog.row_number() OVER (ORDER BY kd.k, kd.i),
               '$.**{' || (v_band * 1000) || ' to ' || (v_band * 1000 + 999) || '}', ids.node_id, kd.node_type,
               p.title, p.description, p.expected_outcome, p.commands
          FROM kinds kd
          LEFT JOIN ids ON ids.k = kd.k AND ids.i = kd.i
          LEFT JOIN pivot p ON p.k = kd.k AND p.node_id = ids.node_id
         ORDER BY kd.k, kd.i;
        GET DIAGNOSTICS v_level_nodes = ROW_COUNT;
        v_offset := v_offset + v_level_nodes;

        v_docs := ARRAY(
            SELECT b.v
              FROM pg_catalog.unnest(v_docs) WITH ORDINALITY AS d (doc, k),
                   pg_catalog.jsonb_path_query(d.doc, 'strict $.**{1000} ? (@.type() == "object" || @.type() == "array")')
                   WITH ORDINALITY AS b (v, j)
             ORDER BY d.k, b.j);
        EXIT WHEN pg_catalog.cardinality(v_docs) = 0;
        v_band := v_band + 1;
    END LOOP;
END;
$function$;

COMMENT ON FUNCTION stepsync._walk_troubleshooting(jsonb, boolean) IS
    'Internal: the raw action and solution nodes of a troubleshooting tree_structure, at any depth, in walk order (SPEC §2). Used by stepsync._nodes.';
