-- stepsync._nodes(...): the one extraction of a flow (SPEC §2, §3) and its
-- publish-time checks (§4). Everything that reads a flow goes through it: the
-- sync trigger, stepsync.sync_tree, stepsync.preview and the checker.
--
-- Returns one stepsync.library_node per node that would sync (ord gives the
-- walk order; rows are not sorted here, callers that need the order sort):
-- procedural and maintenance steps from the "steps" array with the group label
-- of the nearest section_header before them; troubleshooting nodes from
-- stepsync._walk_troubleshooting. Each row carries the entry's title,
-- step_type, content (always exactly instructions, help_text, commands,
-- group_label) and visibility, or, when the node fails §4, a problem, the JSON
-- path of the offending value and a hint. Structure-level problems (not an
-- object, "steps" not an array) come back as a single row with ord 0.
--
-- With p_raise (the default) the first problem in walk order is raised as
-- SQLSTATE 23514 naming the flow and the node (its id, or its JSON path when
-- it has no usable id), with DETAIL and HINT; for troubleshooting flows the
-- problem is located by the exact walk, which also gives its path. Duplicate
-- ids are reported here, never as ON CONFLICT's 21000.
-- Set-based: one query shapes every node; nothing loops per node, and nothing
-- sorts the wide rows (at 10,000 nodes such a sort would spill out of work_mem).
-- Pure: it reads no table and writes nothing, so EXECUTE stays with PUBLIC
-- (stepsync.preview runs with the caller's rights and calls it); the same holds
-- for stepsync._walk_troubleshooting and stepsync._json_kind.
CREATE OR REPLACE FUNCTION stepsync._nodes(
    p_tree_id uuid,
    p_tree_type text,
    p_structure jsonb,
    p_is_public boolean,
    p_raise boolean DEFAULT true,
    p_exact boolean DEFAULT false
)
RETURNS SETOF stepsync.library_node
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling these plans costs more than running them (measured: 30-80 ms)
SET plan_cache_mode = force_generic_plan  -- one plan a session; planning each call cost ~1 ms
AS $function$
DECLARE
    v_flow_visibility text := CASE WHEN p_is_public THEN 'public' ELSE 'team' END;
    v_steps jsonb;
    v_rows stepsync.library_node[];
    v_bad stepsync.library_node;
BEGIN
    -- §4.1: the structure itself.
    IF pg_catalog.jsonb_typeof(p_structure) IS DISTINCT FROM 'object' THEN
        v_bad := ROW(0, '$', NULL, NULL, NULL, NULL, NULL,
                     'tree_structure is ' || stepsync._json_kind(p_structure) || ', not a JSON object', '$',
                     'Store the flow as a JSON object, for example {"steps": [...]}.')::stepsync.library_node;
    ELSIF p_tree_type <> 'troubleshooting' THEN
        v_steps := p_structure -> 'steps';
        IF pg_catalog.jsonb_typeof(v_steps) NOT IN ('array', 'null') THEN
            v_bad := ROW(0, '$.steps', NULL, NULL, NULL, NULL, NULL,
                         '"steps" is ' || stepsync._json_kind(v_steps) || ', not an array', '$.steps',
                         'Make "steps" an array of step objects, or remove it.')::stepsync.library_node;
        ELSIF pg_catalog.jsonb_typeof(v_steps) = 'null' THEN
            v_steps := NULL;
        END IF;
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

    v_rows := ARRAY(
        WITH elements AS (   -- procedural and maintenance: the steps array, with the running section header
            SELECT e.i, e.v,
                   pg_catalog.max(CASE WHEN e.v ->> 'type' = 'section_header'
                                       THEN pg_catalog.lpad(e.i::text, 19, '0')
                                            || CASE WHEN pg_catalog.jsonb_typeof(e.v -> 'title') = 'string'
                                                     AND pg_catalog.btrim(e.v ->> 'title', E' \t\r\n') <> ''
                                                    THEN e.v ->> 'title' ELSE '' END
                                  END COLLATE "C") OVER (ORDER BY e.i) AS header
              FROM pg_catalog.jsonb_array_elements(v_steps) WITH ORDINALITY AS e (v, i)
        ),
        raw AS (
            SELECT e.i AS ord, '$.steps[' || (e.i - 1) || ']' AS path,
                   pg_catalog.jsonb_typeof(e.v) AS kind,
                   e.v -> 'id' AS node_id, 'action'::text AS step_type, e.v -> 'title' AS title,
                   e.v -> 'description' AS description, e.v -> 'expected_outcome' AS expected_outcome,
                   e.v -> 'commands' AS commands, e.v -> 'library_visibility' AS library_visibility,
                   NULLIF(pg_catalog.substr(e.header, 20), '') AS group_label
              FROM elements e
             WHERE p_tree_type <> 'troubleshooting'
               AND (pg_catalog.jsonb_typeof(e.v) <> 'object' OR e.v ->> 'type' = 'procedure_step')
            UNION ALL
            SELECT w.ord, w.path, 'object', w.node_id, w.node_type, w.title, w.description, w.expected_outcome,
                   w.commands, NULL::jsonb, NULL::text
              FROM stepsync._walk_troubleshooting(p_structure, p_exact) AS w
             WHERE p_tree_type = 'troubleshooting'
        ),
        checked AS (
            SELECT r.*,
                   CASE WHEN pg_catalog.jsonb_typeof(r.node_id) = 'string' AND r.node_id #>> '{}' <> ''
                             AND pg_catalog.char_length(r.node_id #>> '{}') <= 255
                        THEN r.node_id #>> '{}' END AS id_text,
                   COALESCE(pg_catalog.jsonb_typeof(r.title) = 'string'
                       AND pg_catalog.btrim(r.title #>> '{}', E' \t\r\n') <> '', false) AS title_ok,
                   pg_catalog.jsonb_typeof(r.description) = 'string'
                       AND pg_catalog.btrim(r.description #>> '{}', E' \t\r\n') <> '' AS has_description,
                   pg_catalog.jsonb_typeof(r.expected_outcome) = 'string'
                       AND pg_catalog.btrim(r.expected_outcome #>> '{}', E' \t\r\n') <> '' AS has_outcome,
                   c.normalized AS command_list, c.bad AS command_problem
              FROM raw r
              LEFT JOIN LATERAL (   -- §3 commands: the array form, element by element
                    SELECT COALESCE(
                               pg_catalog.jsonb_agg(x.cmd ORDER BY x.i) FILTER (WHERE x.cmd IS NOT NULL), '[]') AS normalized,
                           (pg_catalog.array_agg(x.bad ORDER BY x.i) FILTER (WHERE x.bad IS NOT NULL))[1] AS bad
                      FROM (
                        SELECT e.i,
                               CASE
                                 WHEN pg_catalog.jsonb_typeof(e.v) = 'string' THEN NULL
                                 WHEN pg_catalog.jsonb_typeof(e.v) <> 'object'
                                   THEN 'commands[' || (e.i - 1) || '] is ' || stepsync._json_kind(e.v)
                                        || ', not a string or an object with a "code"'
                                 WHEN pg_catalog.jsonb_typeof(e.v -> 'code') IS DISTINCT FROM 'string'
                                      OR pg_catalog.btrim(e.v ->> 'code', E' \t\r\n') = ''
                                   THEN 'commands[' || (e.i - 1) || '].code is ' || stepsync._json_kind(e.v -> 'code')
                                        || ', not a non-blank string'
                                 WHEN COALESCE(pg_catalog.jsonb_typeof(e.v -> 'label'), 'null') <> ALL (ARRAY['null', 'string'])
                                   THEN 'commands[' || (e.i - 1) || '].label is ' || stepsync._json_kind(e.v -> 'label')
                                        || ', not a string'
                                 WHEN COALESCE(pg_catalog.jsonb_typeof(e.v -> 'language'), 'null') <> ALL (ARRAY['null', 'string'])
                                   THEN 'commands[' || (e.i - 1) || '].language is ' || stepsync._json_kind(e.v -> 'language')
                                        || ', not a string'
                               END AS bad,
                               CASE
                                 WHEN pg_catalog.jsonb_typeof(e.v) = 'string'
                                   THEN CASE WHEN pg_catalog.btrim(e.v #>> '{}', E' \t\r\n') <> ''
                                             THEN pg_catalog.jsonb_build_object('label', '', 'command', e.v, 'command_type', NULL) END
                                 WHEN pg_catalog.jsonb_typeof(e.v) = 'object'
                                   THEN pg_catalog.jsonb_build_object(
                                            'label', CASE WHEN pg_catalog.jsonb_typeof(e.v -> 'label') = 'string'
                                                          THEN e.v -> 'label' ELSE '""'::jsonb END,
                                            'command', e.v -> 'code',
                                            'command_type', CASE WHEN pg_catalog.jsonb_typeof(e.v -> 'language') = 'string'
                                                                      AND pg_catalog.btrim(e.v ->> 'language', E' \t\r\n') <> ''
                                                                 THEN e.v -> 'language' END)
                               END AS cmd
                          FROM pg_catalog.jsonb_array_elements(
                                   CASE WHEN pg_catalog.jsonb_typeof(r.commands) = 'array' THEN r.commands END)
                               WITH ORDINALITY AS e (v, i)
                      ) AS x
                   ) AS c ON true
        ),
        judged AS (
            SELECT k.*,
                   CASE WHEN k.id_text IS NOT NULL THEN 'node ' || pg_catalog.to_json(k.id_text)::text
                        ELSE 'the node at ' || COALESCE(k.path, '(path not computed)') END AS node_ref
              FROM checked k
        ),
        coded AS (   -- the first §4 rule each node fails, in the order the spec lists them
            SELECT j.*,
                   CASE
                     WHEN j.kind <> 'object' THEN 1
                     WHEN j.id_text IS NULL THEN 2
                     WHEN NOT j.title_ok THEN 3
                     WHEN p_tree_type <> 'troubleshooting'
                          AND COALESCE(pg_catalog.jsonb_typeof(j.library_visibility), 'null') <> 'null'
                          AND (pg_catalog.jsonb_typeof(j.library_visibility) <> 'string'
                               OR j.library_visibility #>> '{}' NOT IN ('team', 'public')) THEN 4
                     WHEN COALESCE(pg_catalog.jsonb_typeof(j.description), 'null') NOT IN ('null', 'string') THEN 5
                     WHEN COALESCE(pg_catalog.jsonb_typeof(j.expected_outcome), 'null') NOT IN ('null', 'string') THEN 6
                     WHEN COALESCE(pg_catalog.jsonb_typeof(j.commands), 'null') NOT IN ('null', 'string', 'array') THEN 7
                     WHEN j.command_problem IS NOT NULL THEN 8
                   END AS code
              FROM judged j
        )
        SELECT ROW(
            c.ord,
            c.path,
            c.id_text,
            c.title #>> '{}',
            c.step_type,
            pg_catalog.jsonb_build_object(
                'instructions', CASE WHEN c.has_description THEN c.description ELSE c.title END,
                'help_text', CASE WHEN c.has_outcome THEN c.expected_outcome END,
                'commands', CASE pg_catalog.jsonb_typeof(c.commands)
                                WHEN 'array' THEN c.command_list
                                WHEN 'string' THEN
                                    CASE WHEN pg_catalog.btrim(c.commands #>> '{}', E' \t\r\n') <> ''
                                         THEN pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                                  'label', '', 'command', c.commands, 'command_type', NULL))
                                         ELSE '[]'::jsonb END
                                ELSE '[]'::jsonb END,
                'group_label', c.group_label),
            CASE WHEN p_tree_type <> 'troubleshooting' AND pg_catalog.jsonb_typeof(c.library_visibility) = 'string'
                      AND c.library_visibility #>> '{}' IN ('team', 'public')
                 THEN c.library_visibility #>> '{}' ELSE v_flow_visibility END,
            CASE c.code
              WHEN 1 THEN 'the element at ' || c.path || ' is a JSON ' || c.kind || ', not an object'
              WHEN 2 THEN c.node_ref || ' has no usable "id": it is ' || stepsync._json_kind(c.node_id)
                          || CASE WHEN pg_catalog.jsonb_typeof(c.node_id) = 'string' AND c.node_id #>> '{}' <> ''
                                  THEN ' of ' || pg_catalog.char_length(c.node_id #>> '{}') || ' characters, more than 255'
                                  ELSE '' END
              WHEN 3 THEN c.node_ref || ' has no usable "title": it is ' || stepsync._json_kind(c.title)
              WHEN 4 THEN c.node_ref || ' has "library_visibility" ' || pg_catalog.left(c.library_visibility::text, 40)
                          || ', but only "team" or "public" are allowed'
              WHEN 5 THEN c.node_ref || ' has a "description" that is ' || stepsync._json_kind(c.description)
                          || ', not a string'
              WHEN 6 THEN c.node_ref || ' has an "expected_outcome" that is ' || stepsync._json_kind(c.expected_outcome)
                          || ', not a string'
              WHEN 7 THEN c.node_ref || ' has "commands" that is ' || stepsync._json_kind(c.commands)
                          || ', not a string or an array'
              WHEN 8 THEN c.node_ref || ': ' || c.command_problem
            END,
            c.path || CASE c.code
              WHEN 1 THEN '' WHEN 2 THEN '.id' WHEN 3 THEN '.title' WHEN 4 THEN '.library_visibility'
              WHEN 5 THEN '.description' WHEN 6 THEN '.expected_outcome' WHEN 7 THEN '.commands'
              WHEN 8 THEN '.' || pg_catalog.split_part(c.command_problem, ' ', 1)
            END,
            CASE c.code
              WHEN 1 THEN 'Every element of "steps" must be an object with a "type".'
              WHEN 2 THEN 'Give every node that syncs a unique, non-empty string "id" of at most 255 characters.'
              WHEN 3 THEN 'Give the node a non-blank string "title".'
              WHEN 4 THEN 'Set "library_visibility" to "team" or "public", or remove it to inherit the flow''s visibility.'
              WHEN 5 THEN 'Make "description" a string, or remove it.'
              WHEN 6 THEN 'Make "expected_outcome" a string, or remove it.'
              WHEN 7 THEN 'Make "commands" a string, or an array of strings and {"code", "language", "label"} objects.'
              WHEN 8 THEN 'Each command is a non-blank string, or an object with a non-blank string "code" and optional string "label" and "language".'
            END
        )::stepsync.library_node
          FROM coded c
    );

    -- §4.3: two nodes with one id. Found by hashing the ids (no sort of the wide rows); only
    -- when there are duplicates are the later occurrences marked, with the path of the first.
    IF EXISTS (SELECT 1 FROM pg_catalog.unnest(v_rows) AS r WHERE r.source_node_id IS NOT NULL
                GROUP BY r.source_node_id HAVING pg_catalog.count(*) > 1) THEN
        v_rows := ARRAY(
            SELECT CASE WHEN d.problem IS NULL AND d.occurrence > 1
                        THEN ROW(d.ord, d.path, d.source_node_id, d.title, d.step_type, d.content, d.visibility,
                                 'node ' || pg_catalog.to_json(d.source_node_id)::text
                                     || ' appears more than once in the flow (first at '
                                     || COALESCE(d.first_path, '(path not computed)') || ')',
                                 d.path || '.id',
                                 'Node ids must be unique within a flow: rename one of the nodes.')::stepsync.library_node
                        ELSE ROW(d.ord, d.path, d.source_node_id, d.title, d.step_type, d.content, d.visibility,
                                 d.problem, d.problem_path, d.hint)::stepsync.library_node
                   END
              FROM (SELECT r.*,
                           pg_catalog.row_number() OVER (PARTITION BY r.source_node_id ORDER BY r.ord) AS occurrence,
                           pg_catalog.first_value(r.path) OVER (PARTITION BY r.source_node_id ORDER BY r.ord) AS first_path
                      FROM pg_catalog.unnest(v_rows) AS r) AS d);
    END IF;

    IF p_raise THEN
        SELECT * INTO v_bad FROM pg_catalog.unnest(v_rows) AS r WHERE r.problem IS NOT NULL ORDER BY r.ord LIMIT 1;
        IF FOUND THEN
            IF p_tree_type = 'troubleshooting' AND NOT p_exact
               AND NOT pg_catalog.jsonb_path_exists(p_structure, 'strict $.**{1000}') THEN
                -- The fast walks carry no paths: locate the first problem in exact walk order,
                -- with its path. The exact walk copies subtrees (cost depth x size), so trees
                -- nested deeper than 1,000 levels report the first problem in band order, its
                -- path given as the band's level range (see stepsync._walk_troubleshooting).
                SELECT * INTO v_bad
                  FROM stepsync._nodes(p_tree_id, p_tree_type, p_structure, p_is_public, false, true) AS r
                 WHERE r.problem IS NOT NULL
                 ORDER BY r.ord
                 LIMIT 1;
            END IF;
            RAISE EXCEPTION 'flow % cannot be published: %', p_tree_id, v_bad.problem
                USING ERRCODE = 'check_violation', DETAIL = 'JSON path: ' || v_bad.problem_path,
                      HINT = v_bad.hint, SCHEMA = 'public', TABLE = 'trees', COLUMN = 'tree_structure';
        END IF;
    END IF;

    RETURN QUERY SELECT * FROM pg_catalog.unnest(v_rows);
END;
$function$;

COMMENT ON FUNCTION stepsync._nodes(uuid, text, jsonb, boolean, boolean, boolean) IS
    'Internal: the library entries a flow''s structure yields (SPEC §2, §3), checked against §4; raises 23514 on the first problem unless p_raise is false. The one extraction shared by the sync, sync_tree, preview and check.';
