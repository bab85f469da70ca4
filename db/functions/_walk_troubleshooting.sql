-- stepsync._walk_troubleshooting(p_structure, p_exact): the nodes of a
-- troubleshooting flow that would sync (docs/contract.md §2): every JSON object at any
-- depth, under any key or in any array, whose "type" is "action" or
-- "solution". Called by stepsync._nodes. The explanation is in the body, so
-- that \sf shows it.
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
-- The nodes of a troubleshooting flow that would sync (docs/contract.md §2): every JSON
-- object at any depth, under any key or in any array, whose "type" is
-- "action" or "solution". Returns their raw fields; stepsync._nodes checks and
-- shapes them.
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
--  * exact (p_exact, used to report a problem): exact order, exact fields, and
--    in place of each node's path a mark, which stepsync._nodes turns into a
--    JSON path for the one or two nodes the problem it raises names (a path for
--    every node would cost depth x nodes). Under 64 levels that is the shallow
--    walk, each node marked by its rank: E'\x01#' || rank || E'\x02'. Deeper,
--    one pass over the text form (p_structure::text), which writes every
--    container's members in walk order: stepsync._json_tokens cuts it into
--    tokens, each with its byte offset and the number of containers open
--    before it; then, at each level, each key gets its object (the last "{" or
--    "[" of the level above) and the end of its value (where the next key or
--    the closing bracket starts). Objects whose "type" is "action" or
--    "solution" are the nodes, in the order of their "{" (exact walk order);
--    each field is cut from the text and read back as jsonb; the mark is
--    E'\x01@' || byte offset of the "{" || E'\x02'. Nothing is copied per
--    level: linear in the document's size, whatever its depth.
-- No PL/pgSQL recursion anywhere (a function calling itself per level runs
-- out of stack at 600-800 levels). Called by stepsync._nodes.
DECLARE
    v_docs jsonb[];
    v_offset bigint := 0;
    v_level_nodes bigint;
    v_band integer := 0;
    v_text text;
    v_bytes bytea;
    v_encoding name;
BEGIN
    IF p_structure IS NULL OR pg_catalog.jsonb_typeof(p_structure) NOT IN ('object', 'array') THEN
        RETURN;
    END IF;

    IF p_exact AND NOT pg_catalog.jsonb_path_exists(p_structure, 'strict $.**{64}') THEN
        -- Exact, under 64 levels: the shallow walk (below), each node marked by its rank.
        RETURN QUERY
        SELECT q.i, E'\x01#' || q.i || E'\x02', q.n -> 'id', q.n ->> 'type', q.n -> 'title', q.n -> 'description',
               q.n -> 'expected_outcome', q.n -> 'commands'
          FROM pg_catalog.jsonb_path_query(
                   p_structure, 'strict $.** ? (@.type == "action" || @.type == "solution")')
               WITH ORDINALITY AS q (n, i);
        RETURN;
    END IF;

    IF p_exact THEN
        -- Exact, deeper: one pass over the text form (see above).
        v_text := p_structure::text;
        v_encoding := pg_catalog.getdatabaseencoding();
        v_bytes := pg_catalog.convert_to(v_text, v_encoding);
        RETURN QUERY
        WITH tokens AS (   -- in text order (stepsync._json_tokens): byte offset, containers open before it, kind
            SELECT k.at, k.depth, k.len, k.kind, k.kind = '"' AND k.tail = ': ' AS key, k.txt, k.next_txt
              FROM stepsync._json_tokens(v_text) AS k
        ),
        members AS (   -- brackets and keys at their container's level: an object's keys follow its "{", and
                       -- a value ends where the next key or the closing bracket starts
            SELECT s.key, s.txt, s.next_txt, s.at + s.len AS value_at,
                   pg_catalog.max(s.at) FILTER (WHERE s.kind IN ('{', '[')) OVER w AS container,
                   pg_catalog.lead(s.at) OVER w
                       - CASE WHEN pg_catalog.lead(s.kind) OVER w IN ('}', ']') THEN 0 ELSE 2 END AS value_end
              FROM (SELECT k.at, k.len, k.kind, k.key, k.txt, k.next_txt,
                           CASE WHEN k.kind IN ('{', '[') THEN k.depth ELSE k.depth - 1 END AS level
                      FROM tokens AS k
                     WHERE k.kind IN ('{', '[', '}', ']') OR k.key) AS s
            WINDOW w AS (PARTITION BY s.level ORDER BY s.at)
        ),
        nodes AS (   -- objects whose "type" syncs, with where each field's value starts and ends
            SELECT m.container,
                   pg_catalog.max(m.next_txt) FILTER (WHERE m.txt = '"type": ') AS type_txt,
                   pg_catalog.max(m.value_at) FILTER (WHERE m.txt = '"id": ') AS id_at,
                   pg_catalog.max(m.value_end) FILTER (WHERE m.txt = '"id": ') AS id_end,
                   pg_catalog.max(m.value_at) FILTER (WHERE m.txt = '"title": ') AS title_at,
                   pg_catalog.max(m.value_end) FILTER (WHERE m.txt = '"title": ') AS title_end,
                   pg_catalog.max(m.value_at) FILTER (WHERE m.txt = '"description": ') AS description_at,
                   pg_catalog.max(m.value_end) FILTER (WHERE m.txt = '"description": ') AS description_end,
                   pg_catalog.max(m.value_at) FILTER (WHERE m.txt = '"expected_outcome": ') AS outcome_at,
                   pg_catalog.max(m.value_end) FILTER (WHERE m.txt = '"expected_outcome": ') AS outcome_end,
                   pg_catalog.max(m.value_at) FILTER (WHERE m.txt = '"commands": ') AS commands_at,
                   pg_catalog.max(m.value_end) FILTER (WHERE m.txt = '"commands": ') AS commands_end
              FROM members AS m
             WHERE m.key
               AND m.txt IN ('"type": ', '"id": ', '"title": ', '"description": ', '"expected_outcome": ',
                             '"commands": ')
             GROUP BY m.container
            HAVING pg_catalog.rtrim(pg_catalog.max(m.next_txt) FILTER (WHERE m.txt = '"type": '), ', ')
                   IN ('"action"', '"solution"')
        )
        SELECT o.ord, E'\x01@' || o.container || E'\x02',   -- the mark: where the node's "{" is
               pg_catalog.convert_from(pg_catalog.substring(v_bytes, o.id_at::integer + 1,
                                                            (o.id_end - o.id_at)::integer), v_encoding)::jsonb,
               pg_catalog.btrim(pg_catalog.rtrim(o.type_txt, ', '), '"'),
               pg_catalog.convert_from(pg_catalog.substring(v_bytes, o.title_at::integer + 1,
                                                            (o.title_end - o.title_at)::integer), v_encoding)::jsonb,
               pg_catalog.convert_from(pg_catalog.substring(v_bytes, o.description_at::integer + 1,
                                                            (o.description_end - o.description_at)::integer),
                                       v_encoding)::jsonb,
               pg_catalog.convert_from(pg_catalog.substring(v_bytes, o.outcome_at::integer + 1,
                                                            (o.outcome_end - o.outcome_at)::integer),
                                       v_encoding)::jsonb,
               pg_catalog.convert_from(pg_catalog.substring(v_bytes, o.commands_at::integer + 1,
                                                            (o.commands_end - o.commands_at)::integer),
                                       v_encoding)::jsonb
          FROM (SELECT pg_catalog.row_number() OVER (ORDER BY n.container) AS ord, n.*
                  FROM nodes AS n
                OFFSET 0) AS o;   -- fence: values are cut from the text after the nodes are numbered
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
    'Internal: the raw action and solution nodes of a troubleshooting tree_structure, at any depth, in walk order (docs/contract.md §2). Used by stepsync._nodes.';
