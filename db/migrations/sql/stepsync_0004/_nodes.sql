-- stepsync._nodes(...): the one extraction of a flow (docs/contract.md §2, §3) and its
-- publish-time checks (§4), with the rule table of those checks. Everything
-- that reads a flow goes through it: stepsync._sync (the sync trigger,
-- stepsync.sync_tree, the backfill), stepsync.preview, stepsync.check_library
-- and `stepsync check`. Troubleshooting flows are walked by
-- stepsync._walk_troubleshooting; error messages describe values with
-- stepsync._json_kind. The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync._nodes(
    p_tree_id uuid,
    p_tree_type text,
    p_structure jsonb,
    p_is_public boolean,
    p_raise boolean DEFAULT true,
    p_exact boolean DEFAULT false,
    p_previous jsonb DEFAULT NULL
)
RETURNS SETOF stepsync.library_node
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling these plans costs more than running them (measured: 30-80 ms)
SET plan_cache_mode = force_generic_plan  -- one plan a session; planning each call cost ~1 ms
AS $function$
-- The one extraction of a flow (docs/contract.md §2, §3) and its publish-time checks (§4).
-- Returns one stepsync.library_node per node of the flow that would sync (ord
-- gives the walk order; rows are not sorted here, callers that need the order
-- sort): procedural and maintenance steps from the "steps" array, with the
-- group label of the nearest section_header before them; troubleshooting
-- nodes from stepsync._walk_troubleshooting. Each row carries the entry's
-- title, step_type, content (always exactly instructions, help_text,
-- commands, group_label) and visibility, and, when the node breaks a rule of
-- docs/contract.md §4, the problem, the JSON path of the offending value and a hint.
-- Structure-level problems (not an object, "steps" not an array) come back as
-- a single row with ord 0.
--
-- The checks are rule tables, each rule one branch that holds its condition
-- and, side by side, its problem, JSON path and hint, in the order docs/contract.md §4
-- lists them: the structure rules (the two IF blocks below), the node rules
-- (the CASE in "failed"), and the element rules of an array "commands" (the
-- CASE in "command_problems", applied to every element; the node rule §4.6
-- reports an element's problem). A node's problem is the first rule it breaks;
-- the flow's is the first problem in walk order. Adding a check is adding one
-- branch.
--
-- With p_raise (the default) that first problem is raised as SQLSTATE 23514
-- naming the flow and the node (its id, or its JSON path when it has no usable
-- id), with DETAIL (the path) and HINT; for troubleshooting flows the problem
-- is located by the exact walk (p_exact). Its rows carry marks instead of
-- paths (their problems too); only the marks of the problem raised become JSON
-- paths, at the end of this function.
-- Duplicate ids are reported here, never as ON CONFLICT's 21000.
--
-- p_previous (stepsync._sync passes it for a structure edit of a flow that
-- stays listed): the structure the library was last synced from. A procedural
-- or maintenance step that it has unchanged (the same JSON at the same
-- position of "steps", under the same section header) is still checked, but
-- not shaped: its row has content null and the sync keeps its entry as it is.
-- A step inserted or removed shifts the later ones, which are then shaped
-- again (correct, only slower). Troubleshooting flows ignore p_previous.
--
-- Set-based: one query shapes every node; nothing loops per node, and nothing
-- sorts the wide rows (the section-header window sorts positions only).
-- Subqueries marked "fence" (OFFSET 0) are evaluated once per row instead of
-- once per reference. Pure: it reads no table and writes nothing, so EXECUTE
-- stays with PUBLIC (stepsync.preview runs with the caller's rights and calls
-- it); the same holds for stepsync._walk_troubleshooting and _json_kind.
DECLARE
    v_flow_visibility text := CASE WHEN p_is_public THEN 'public' ELSE 'team' END;
    v_steps jsonb;
    v_previous_steps jsonb;
    v_rows stepsync.library_node[];
    v_bad stepsync.library_node;
    v_mark text;
    v_problem text;
    v_problem_path text;
    v_encoding name;
    v_prefix bytea;
    v_path text;
    v_node jsonb;
    v_rank bigint;
    v_step text;
    v_key text;
    v_index integer;
BEGIN
    -- Structure rules (docs/contract.md §4.1): the document itself, then "steps".
    IF pg_catalog.jsonb_typeof(p_structure) IS DISTINCT FROM 'object' THEN
        v_bad := ROW(0, '$', NULL, NULL, NULL, NULL, NULL,
                     'tree_structure is ' || stepsync._json_kind(p_structure) || ', not a JSON object',
                     '$',
                     'Store the flow as a JSON object, for example {"steps": [...]}.')::stepsync.library_node;
    ELSIF p_tree_type <> 'troubleshooting'
          AND pg_catalog.jsonb_typeof(p_structure -> 'steps') NOT IN ('array', 'null') THEN
        v_bad := ROW(0, '$.steps', NULL, NULL, NULL, NULL, NULL,
                     '"steps" is ' || stepsync._json_kind(p_structure -> 'steps') || ', not an array',
                     '$.steps',
                     'Make "steps" an array of step objects, or remove it.')::stepsync.library_node;
    END IF;
    IF v_bad.problem IS NOT NULL THEN
        IF p_raise THEN
            RAISE EXCEPTION 'flow % cannot be published: %', p_tree_id, v_bad.problem
                USING ERRCODE = 'check_violation', DETAIL = 'JSON path: ' || v_bad.problem_path,
                      HINT = v_bad.hint, SCHEMA = 'public', TABLE = 'trees', COLUMN = 'tree_structure';
        END IF;
        RETURN NEXT v_bad;
        RETURN;
    END IF;
    IF p_tree_type <> 'troubleshooting' THEN
        v_steps := p_structure -> 'steps';
        IF pg_catalog.jsonb_typeof(v_steps) <> 'array' THEN
            v_steps := NULL;   -- missing or null: no steps
        END IF;
        IF pg_catalog.jsonb_typeof(p_previous -> 'steps') = 'array' THEN
            v_previous_steps := p_previous -> 'steps';
        END IF;
    END IF;

    v_rows := ARRAY(
        WITH positions AS (   -- procedural and maintenance: every element of "steps", by position (0-based)
            SELECT h.i, h.is_node,
                   NULLIF(pg_catalog.substr(h.header, 20), '') AS group_label,
                   h.same AND COALESCE(pg_catalog.right(h.last_header, 1) = 't', true) AS unchanged
              FROM (SELECT k.i, k.is_node, k.same,
                           pg_catalog.max(k.header) OVER w AS header,            -- the nearest section_header before
                           pg_catalog.max(k.header_change) OVER w AS last_header -- the nearest header, either side
                      FROM (SELECT e.i,
                                   pg_catalog.jsonb_typeof(e.v) <> 'object' OR e.type = 'procedure_step' AS is_node,
                                   -- the previous steps have the same element here
                                   COALESCE(e.v = e.previous, false) AS same,
                                   CASE WHEN e.type = 'section_header'
                                        THEN pg_catalog.lpad(e.i::text, 19, '0')
                                             || CASE WHEN pg_catalog.jsonb_typeof(e.v -> 'title') = 'string'
                                                      AND pg_catalog.btrim(e.v ->> 'title', E' \t\r\n') <> ''
                                                     THEN e.v ->> 'title' ELSE '' END
                                   END COLLATE "C" AS header,
                                   -- a header on either side, and whether both sides have the same one
                                   CASE WHEN e.type = 'section_header' OR e.previous ->> 'type' = 'section_header'
                                        THEN pg_catalog.lpad(e.i::text, 19, '0')
                                             || CASE WHEN e.v = e.previous THEN 't' ELSE 'f' END
                                   END COLLATE "C" AS header_change
                              FROM (SELECT d.i, d.v, d.previous, d.v ->> 'type' AS type
                                      FROM (SELECT g.i, v_steps -> g.i AS v, v_previous_steps -> g.i AS previous
                                              FROM pg_catalog.generate_series(0, pg_catalog.jsonb_array_length(v_steps) - 1)
                                                   AS g (i)
                                            OFFSET 0) AS d   -- fence: each element is read once
                                    OFFSET 0) AS e
                            OFFSET 0) AS k   -- fence: the window sorts these narrow rows, not the elements
                    WINDOW w AS (ORDER BY k.i)) AS h
        ),
        raw AS MATERIALIZED (   -- every node that would sync, with the fields the rules and the entry read
            SELECT x.ord, x.path, x.kind, x.node_id,
                   CASE WHEN pg_catalog.jsonb_typeof(x.node_id) = 'string' AND x.node_id #>> '{}' <> ''
                             AND pg_catalog.char_length(x.node_id #>> '{}') <= 255
                        THEN x.node_id #>> '{}' END AS id_text,
                   x.step_type, x.title, x.description, x.expected_outcome, x.commands, x.library_visibility,
                   x.group_label, x.unchanged
              FROM (
                SELECT p.i + 1 AS ord, '$.steps[' || p.i || ']' AS path,
                       pg_catalog.jsonb_typeof(p.v) AS kind, p.v -> 'id' AS node_id, 'action'::text AS step_type,
                       p.v -> 'title' AS title, p.v -> 'description' AS description,
                       p.v -> 'expected_outcome' AS expected_outcome, p.v -> 'commands' AS commands,
                       p.v -> 'library_visibility' AS library_visibility, p.group_label, p.unchanged
                  FROM (SELECT n.i, n.group_label, n.unchanged, v_steps -> n.i AS v
                          FROM positions AS n
                         WHERE n.is_node
                        OFFSET 0) AS p   -- fence: each element is read once
                UNION ALL
                SELECT w.ord, w.path, 'object', w.node_id, w.node_type, w.title, w.description, w.expected_outcome,
                       w.commands, NULL::jsonb, NULL::text, false
                  FROM stepsync._walk_troubleshooting(p_structure, p_exact) AS w
                 WHERE p_tree_type = 'troubleshooting'
              ) AS x
        ),
        duplicates AS (   -- §4.3: ids that more than one node has, and where each first occurs
            SELECT DISTINCT ON (r.id_text) r.id_text, r.ord AS first_ord, r.path AS first_path
              FROM raw AS r
             WHERE r.id_text IN (SELECT d.id_text FROM raw AS d WHERE d.id_text IS NOT NULL
                                  GROUP BY d.id_text HAVING pg_catalog.count(*) > 1)
             ORDER BY r.id_text, r.ord
        ),
        command_problems AS (   -- per node: the first element of an array "commands" that breaks an element rule
            SELECT DISTINCT ON (x.ord) x.ord, x.problem
              FROM (SELECT r.ord, e.i,
                           -- The element rules (docs/contract.md §4.6), in order: the first one an element breaks. Each
                           -- problem starts with the JSON path of the offending value, relative to the node.
                           CASE
                             WHEN pg_catalog.jsonb_typeof(e.v) = 'string'
                               THEN NULL   -- any string is fine: blank ones are dropped
                             WHEN pg_catalog.jsonb_typeof(e.v) <> 'object'
                               THEN 'commands[' || (e.i - 1) || '] is ' || stepsync._json_kind(e.v)
                                    || ', not a string or an object with a "code"'
                             WHEN pg_catalog.jsonb_typeof(e.v -> 'code') IS DISTINCT FROM 'string'
                                  OR pg_catalog.btrim(e.v ->> 'code', E' \t\r\n') = ''
                               THEN 'commands[' || (e.i - 1) || '].code is ' || stepsync._json_kind(e.v -> 'code')
                                    || ', not a non-blank string'
                             WHEN COALESCE(pg_catalog.jsonb_typeof(e.v -> 'label'), 'null') NOT IN ('null', 'string')
                               THEN 'commands[' || (e.i - 1) || '].label is ' || stepsync._json_kind(e.v -> 'label')
                                    || ', not a string'
                             WHEN COALESCE(pg_catalog.jsonb_typeof(e.v -> 'language'), 'null') NOT IN ('null', 'string')
                               THEN 'commands[' || (e.i - 1) || '].language is '
                                    || stepsync._json_kind(e.v -> 'language') || ', not a string'
                           END AS problem
                      FROM raw AS r,
                           pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(r.commands) = 'array'
                                                                THEN r.commands END) WITH ORDINALITY AS e (v, i)
                    OFFSET 0) AS x   -- fence: each element's rules are evaluated once, and only bad ones sorted
             WHERE x.problem IS NOT NULL
             ORDER BY x.ord, x.i
        ),
        checked AS (
            SELECT r.*,
                   COALESCE(pg_catalog.jsonb_typeof(r.title) = 'string'
                       AND pg_catalog.btrim(r.title #>> '{}', E' \t\r\n') <> '', false) AS title_ok,
                   pg_catalog.jsonb_typeof(r.description) = 'string'
                       AND pg_catalog.btrim(r.description #>> '{}', E' \t\r\n') <> '' AS has_description,
                   pg_catalog.jsonb_typeof(r.expected_outcome) = 'string'
                       AND pg_catalog.btrim(r.expected_outcome #>> '{}', E' \t\r\n') <> '' AS has_outcome,
                   d.first_ord, d.first_path, cp.problem AS command_problem
              FROM raw AS r
              LEFT JOIN duplicates AS d ON d.id_text = r.id_text
              LEFT JOIN command_problems AS cp ON cp.ord = r.ord
            OFFSET 0   -- fence
        ),
        judged AS (
            SELECT k.*,
                   CASE WHEN k.id_text IS NOT NULL THEN 'node ' || pg_catalog.to_json(k.id_text)::text
                        ELSE 'the node at ' || COALESCE(k.path, '(path not computed)') END AS node_ref
              FROM checked AS k
        ),
        failed AS (
            SELECT j.*,
                   -- The node rules (docs/contract.md §4.1 to §4.6, in that order): the first one a node breaks is its
                   -- problem, as ARRAY[problem, JSON path of the offending value, hint].
                   CASE
                     -- §4.1: an element of "steps" that is not an object
                     WHEN j.kind <> 'object' THEN ARRAY[
                         'the element at ' || j.path || ' is a JSON ' || j.kind || ', not an object',
                         j.path,
                         'Every element of "steps" must be an object with a "type".']
                     -- §4.2: an id that is not a non-empty string
                     WHEN j.id_text IS NULL
                          AND NOT COALESCE(pg_catalog.jsonb_typeof(j.node_id) = 'string' AND j.node_id #>> '{}' <> '', false)
                       THEN ARRAY[
                         j.node_ref || ' has no usable "id": it is ' || stepsync._json_kind(j.node_id),
                         j.path || '.id',
                         'Give every node that syncs a unique, non-empty string "id" of at most 255 characters.']
                     -- §4.2: an id longer than 255 characters
                     WHEN j.id_text IS NULL THEN ARRAY[
                         j.node_ref || ' has no usable "id": it is ' || stepsync._json_kind(j.node_id)
                             || ' of ' || pg_catalog.char_length(j.node_id #>> '{}') || ' characters, more than 255',
                         j.path || '.id',
                         'Give every node that syncs a unique, non-empty string "id" of at most 255 characters.']
                     -- §4.2: a title that is not a non-blank string
                     WHEN NOT j.title_ok THEN ARRAY[
                         j.node_ref || ' has no usable "title": it is ' || stepsync._json_kind(j.title),
                         j.path || '.title',
                         'Give the node a non-blank string "title".']
                     -- §4.3: an id that an earlier node has
                     WHEN j.first_ord < j.ord THEN ARRAY[
                         'node ' || pg_catalog.to_json(j.id_text)::text || ' appears more than once in the flow (first at '
                             || COALESCE(j.first_path, '(path not computed)') || ')',
                         j.path || '.id',
                         'Node ids must be unique within a flow: rename one of the nodes.']
                     -- §4.4: library_visibility other than "team" or "public" (procedural and maintenance only)
                     WHEN p_tree_type <> 'troubleshooting'
                          AND COALESCE(pg_catalog.jsonb_typeof(j.library_visibility), 'null') <> 'null'
                          AND (pg_catalog.jsonb_typeof(j.library_visibility) <> 'string'
                               OR j.library_visibility #>> '{}' NOT IN ('team', 'public')) THEN ARRAY[
                         j.node_ref || ' has "library_visibility" ' || pg_catalog.left(j.library_visibility::text, 40)
                             || ', but only "team" or "public" are allowed',
                         j.path || '.library_visibility',
                         'Set "library_visibility" to "team" or "public", or remove it to inherit the flow''s visibility.']
                     -- §4.5: a description that is not a string
                     WHEN COALESCE(pg_catalog.jsonb_typeof(j.description), 'null') NOT IN ('null', 'string') THEN ARRAY[
                         j.node_ref || ' has a "description" that is ' || stepsync._json_kind(j.description)
                             || ', not a string',
                         j.path || '.description',
                         'Make "description" a string, or remove it.']
                     -- §4.5: an expected_outcome that is not a string
                     WHEN COALESCE(pg_catalog.jsonb_typeof(j.expected_outcome), 'null') NOT IN ('null', 'string') THEN ARRAY[
                         j.node_ref || ' has an "expected_outcome" that is ' || stepsync._json_kind(j.expected_outcome)
                             || ', not a string',
                         j.path || '.expected_outcome',
                         'Make "expected_outcome" a string, or remove it.']
                     -- §4.6: commands that are neither a string nor an array
                     WHEN COALESCE(pg_catalog.jsonb_typeof(j.commands), 'null') NOT IN ('null', 'string', 'array') THEN ARRAY[
                         j.node_ref || ' has "commands" that is ' || stepsync._json_kind(j.commands)
                             || ', not a string or an array',
                         j.path || '.commands',
                         'Make "commands" a string, or an array of strings and {"code", "language", "label"} objects.']
                     -- §4.6: an element of commands that breaks an element rule (above, in checked)
                     WHEN j.command_problem IS NOT NULL THEN ARRAY[
                         j.node_ref || ': ' || j.command_problem,
                         j.path || '.' || pg_catalog.split_part(j.command_problem, ' ', 1),
                         'Each command is a non-blank string, or an object with a non-blank string "code" and optional'
                             || ' string "label" and "language".']
                   END AS failure
              FROM judged AS j
            OFFSET 0   -- fence: the rules are evaluated once per node
        )
        SELECT ROW(
            f.ord,
            f.path,
            f.id_text,
            f.title #>> '{}',
            f.step_type,
            CASE WHEN NOT f.unchanged THEN pg_catalog.jsonb_build_object(
                'instructions', CASE WHEN f.has_description THEN f.description ELSE f.title END,
                'help_text', CASE WHEN f.has_outcome THEN f.expected_outcome END,
                'commands', CASE pg_catalog.jsonb_typeof(f.commands)
                                WHEN 'array' THEN (   -- §3: each element's entry form, blank strings dropped
                                    SELECT COALESCE(pg_catalog.jsonb_agg(x.cmd ORDER BY x.i), '[]')
                                      FROM (SELECT e.i,
                                                   CASE
                                                     WHEN pg_catalog.jsonb_typeof(e.v) = 'string'
                                                       THEN CASE WHEN pg_catalog.btrim(e.v #>> '{}', E' \t\r\n') <> ''
                                                                 THEN pg_catalog.jsonb_build_object(
                                                                          'label', '', 'command', e.v, 'command_type', NULL)
                                                            END
                                                     WHEN pg_catalog.jsonb_typeof(e.v) = 'object'
                                                       THEN pg_catalog.jsonb_build_object(
                                                                'label', CASE WHEN pg_catalog.jsonb_typeof(e.v -> 'label') = 'string'
                                                                              THEN e.v -> 'label' ELSE '""'::jsonb END,
                                                                'command', e.v -> 'code',
                                                                'command_type',
                                                                CASE WHEN pg_catalog.jsonb_typeof(e.v -> 'language') = 'string'
                                                                          AND pg_catalog.btrim(e.v ->> 'language', E' \t\r\n') <> ''
                                                                     THEN e.v -> 'language' END)
                                                   END AS cmd
                                              FROM pg_catalog.jsonb_array_elements(f.commands) WITH ORDINALITY AS e (v, i)
                                            OFFSET 0) AS x   -- fence: each form is built once
                                     WHERE x.cmd IS NOT NULL)
                                WHEN 'string' THEN
                                    CASE WHEN pg_catalog.btrim(f.commands #>> '{}', E' \t\r\n') <> ''
                                         THEN pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                                  'label', '', 'command', f.commands, 'command_type', NULL))
                                         ELSE '[]'::jsonb END
                                ELSE '[]'::jsonb END,
                'group_label', f.group_label) END,
            CASE WHEN p_tree_type <> 'troubleshooting' AND pg_catalog.jsonb_typeof(f.library_visibility) = 'string'
                      AND f.library_visibility #>> '{}' IN ('team', 'public')
                 THEN f.library_visibility #>> '{}' ELSE v_flow_visibility END,
            f.failure[1],
            f.failure[2],
            f.failure[3]
        )::stepsync.library_node
          FROM failed AS f
    );

    IF p_raise THEN
        SELECT * INTO v_bad FROM pg_catalog.unnest(v_rows) AS r WHERE r.problem IS NOT NULL ORDER BY r.ord LIMIT 1;
        IF FOUND THEN
            IF p_tree_type = 'troubleshooting' AND NOT p_exact
               AND NOT pg_catalog.jsonb_path_exists(p_structure, 'strict $.**{1000}') THEN
                -- The fast walks carry no paths, and the deep one zips fields by id: locate the
                -- first problem in exact walk order. Trees nested 1,000 levels or deeper report
                -- the first problem in band order, its path given as the band's level range (see
                -- stepsync._walk_troubleshooting).
                SELECT * INTO v_bad
                  FROM stepsync._nodes(p_tree_id, p_tree_type, p_structure, p_is_public, false, true) AS r
                 WHERE r.problem IS NOT NULL
                 ORDER BY r.ord
                 LIMIT 1;
            END IF;
            -- The exact walk marks each node's path (see stepsync._walk_troubleshooting):
            -- E'\x01#' || rank || E'\x02' in shallow trees, E'\x01@' || byte offset of its "{" in
            -- p_structure::text || E'\x02' deeper. Only the marks this problem names (its node, and
            -- for a duplicate id the node first holding it) become JSON paths: a path for every
            -- node would cost depth x nodes. Problems quote JSON values as JSON text, which escapes
            -- control characters, so these bytes come from marks only.
            v_problem := v_bad.problem;
            v_problem_path := v_bad.problem_path;
            FOR v_mark IN
                SELECT DISTINCT m.v[1]
                  FROM pg_catalog.regexp_matches(v_problem || v_problem_path, E'\x01([#@][0-9]+)\x02', 'g') AS m (v)
            LOOP
                IF pg_catalog.left(v_mark, 1) = '#' THEN
                    -- A rank (under 64 levels): from the root down, the child whose subtree holds the
                    -- node of that rank, counting each child's synced nodes by a path query that
                    -- returns only their "type". Each level reads its container once.
                    v_node := p_structure;
                    v_path := '$';
                    v_rank := pg_catalog.substr(v_mark, 2)::bigint;
                    LOOP
                        IF pg_catalog.jsonb_typeof(v_node -> 'type') = 'string'
                           AND v_node ->> 'type' IN ('action', 'solution') THEN
                            v_rank := v_rank - 1;
                            EXIT WHEN v_rank = 0;
                        END IF;
                        SELECT c.step, c.key, c.i, v_rank - (c.upto - c.n)
                          INTO v_step, v_key, v_index, v_rank
                          FROM (SELECT x.i, x.key, x.step, x.n, pg_catalog.sum(x.n) OVER (ORDER BY x.i) AS upto
                                  FROM (SELECT k.i - 1 AS i, k.key,
                                               CASE WHEN k.key ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || k.key
                                                    ELSE '.' || pg_catalog.to_json(k.key)::text END AS step,
                                               pg_catalog.jsonb_array_length(pg_catalog.jsonb_path_query_array(
                                                   v_node -> k.key,
                                                   'strict $.** ? (@.type == "action" || @.type == "solution").type')) AS n
                                          FROM pg_catalog.jsonb_object_keys(
                                                   CASE WHEN pg_catalog.jsonb_typeof(v_node) = 'object' THEN v_node END)
                                               WITH ORDINALITY AS k (key, i)
                                        UNION ALL
                                        SELECT g.i, NULL, '[' || g.i || ']',
                                               pg_catalog.jsonb_array_length(pg_catalog.jsonb_path_query_array(
                                                   v_node -> g.i,
                                                   'strict $.** ? (@.type == "action" || @.type == "solution").type'))
                                          FROM pg_catalog.generate_series(
                                                   0, CASE WHEN pg_catalog.jsonb_typeof(v_node) = 'array'
                                                           THEN pg_catalog.jsonb_array_length(v_node) - 1 END) AS g (i)
                                       ) AS x
                               ) AS c
                         WHERE c.upto >= v_rank
                         ORDER BY c.i
                         LIMIT 1;
                        EXIT WHEN NOT FOUND;
                        v_node := CASE WHEN v_key IS NULL THEN v_node -> v_index ELSE v_node -> v_key END;
                        v_path := v_path || v_step;
                    END LOOP;
                ELSE
                    -- A byte offset (deeper trees): the text before the node writes, in order, every
                    -- container open at the node; at each depth the last one opened is the one still
                    -- open, and its step is the key written last in it (an object) or the number of
                    -- elements before (an array; each element but the last is followed by ", "). One
                    -- pass over that text, whatever the depth.
                    v_encoding := pg_catalog.getdatabaseencoding();
                    v_prefix := pg_catalog.substring(pg_catalog.convert_to(p_structure::text, v_encoding), 1,
                                                     pg_catalog.substr(v_mark, 2)::integer);
                    WITH tokens AS (   -- in text order: byte offset, containers open before the token
                        SELECT k.at, k.len, k.depth, k.step, k.kind, k.tail
                          FROM stepsync._json_tokens(pg_catalog.convert_from(v_prefix, v_encoding)) AS k
                    ),
                    marks AS (   -- at the level of the container they are in: each "{" or "[" (heading its own
                                 -- level), each key, and each ", " (after a value, or after the bracket closing one)
                        SELECT s.level, s.at, s.len, s.kind, s.tail,
                               pg_catalog.max(s.at) FILTER (WHERE s.kind IN ('{', '[')) OVER (PARTITION BY s.level)
                                   AS opened,
                               pg_catalog.sum(s.step) OVER () AS node_depth
                          FROM (SELECT CASE WHEN k.kind IN ('{', '[') THEN k.depth
                                            WHEN k.kind IN ('}', ']') THEN k.depth - 2
                                            ELSE k.depth - 1 END AS level,
                                       k.at, k.len, k.kind, k.tail, k.step
                                  FROM tokens AS k
                                 WHERE k.kind IN ('{', '[', '}', ']') OR k.tail IN (': ', ', ')) AS s
                    ),
                    steps AS (   -- one row a level above the node
                        SELECT x.level,
                               pg_catalog.max(x.kind) FILTER (WHERE x.at = x.opened) AS kind,
                               pg_catalog.max(x.at) FILTER (WHERE x.kind = '"' AND x.tail = ': ') AS key_at,
                               pg_catalog.max(x.at + x.len - 2) FILTER (WHERE x.kind = '"' AND x.tail = ': ')
                                   AS key_end,
                               pg_catalog.count(*) FILTER (WHERE x.tail = ', ' AND x.at > x.opened) AS i
                          FROM marks AS x
                         WHERE x.level >= 0 AND x.level < x.node_depth
                         GROUP BY x.level
                    )
                    SELECT '$' || COALESCE(pg_catalog.string_agg(
                               CASE WHEN st.kind = '[' THEN '[' || st.i || ']'
                                    WHEN st.key ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || st.key
                                    ELSE '.' || pg_catalog.to_json(st.key)::text END, '' ORDER BY st.level), '')
                      INTO v_path
                      FROM (SELECT y.level, y.kind, y.i,
                                   pg_catalog.convert_from(pg_catalog.substring(v_prefix, y.key_at::integer + 1,
                                                                                (y.key_end - y.key_at)::integer),
                                                           v_encoding)::jsonb #>> '{}' AS key
                              FROM steps AS y) AS st;
                END IF;
                v_problem := pg_catalog.replace(v_problem, E'\x01' || v_mark || E'\x02', v_path);
                v_problem_path := pg_catalog.replace(v_problem_path, E'\x01' || v_mark || E'\x02', v_path);
            END LOOP;
            RAISE EXCEPTION 'flow % cannot be published: %', p_tree_id, v_problem
                USING ERRCODE = 'check_violation', DETAIL = 'JSON path: ' || v_problem_path,
                      HINT = v_bad.hint, SCHEMA = 'public', TABLE = 'trees', COLUMN = 'tree_structure';
        END IF;
    END IF;

    RETURN QUERY SELECT * FROM pg_catalog.unnest(v_rows);
END;
$function$;

COMMENT ON FUNCTION stepsync._nodes(uuid, text, jsonb, boolean, boolean, boolean, jsonb) IS
    'Internal: the library entries a flow''s structure yields (docs/contract.md §2, §3), checked against the rule table of §4; raises 23514 on the first problem unless p_raise is false. The one extraction shared by the sync, sync_tree, preview and the checks.';
