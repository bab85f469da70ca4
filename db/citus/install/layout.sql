-- The Citus part of the preflight (docs/contract.md §11.1, §11.2): on a database with the citus
-- extension, every reason the distributed variant cannot be installed as the tables are now, one row
-- (object, message) each; no row: go ahead. It reads the catalogs, Citus's metadata and each worker's
-- setting, plus one count over step_library when its sync columns exist; it changes nothing. `stepsync install` prints the
-- statements that would lay the tables out beneath (stepsync.distribute), and `stepsync distribute`
-- runs them.
WITH
wanted (tbl, kind, column_name, what) AS (
    VALUES ('accounts', 'reference', NULL, 'a reference table'),
           ('users', 'reference', NULL, 'a reference table'),
           ('trees', 'distributed', 'id', 'distributed by id'),
           ('step_library', 'distributed', 'tree_key', 'distributed by tree_key, co-located with trees')
),
now AS (
    SELECT w.*, c.oid,
           CASE WHEN c.oid IS NULL THEN 'missing'
                WHEN t.table_name IS NULL THEN 'a local table'
                WHEN t.citus_table_type = 'distributed'
                     THEN 'distributed by ' || t.distribution_column
                ELSE 'a ' || t.citus_table_type || ' table' END AS is_now,
           t.citus_table_type::text AS citus_kind, t.distribution_column::text AS dist_column,
           t.colocation_id
      FROM wanted AS w
      LEFT JOIN pg_catalog.pg_class AS c
        ON c.relname = w.tbl AND c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')
      LEFT JOIN public.citus_tables AS t ON t.table_name = c.oid
),
key_column AS (
    SELECT a.atttypid, a.attnotnull
      FROM now AS n
      JOIN pg_catalog.pg_attribute AS a ON a.attrelid = n.oid AND a.attname = 'tree_key' AND NOT a.attisdropped
     WHERE n.tbl = 'step_library'
),
problems (object, message) AS (
    SELECT 'database ' || pg_catalog.current_database(),
           'is not the Citus coordinator: run stepsync on the coordinator (docs/contract.md §11.2)'
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node AS d WHERE d.groupid = 0)
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node AS d)
    UNION ALL
    SELECT 'table public.' || n.tbl,
           'is ' || n.is_now || '; docs/contract.md §11.1 lays it out as ' || n.what
      FROM now AS n
     WHERE n.citus_kind IS DISTINCT FROM n.kind
        OR (n.kind = 'distributed' AND n.dist_column IS DISTINCT FROM n.column_name)
    UNION ALL
    SELECT 'table public.step_library',
           'is not co-located with public.trees (co-location groups ' || l.colocation_id || ' and '
           || t.colocation_id || '); docs/contract.md §11.1 lays it out as ' || l.what
      FROM now AS l, now AS t
     WHERE l.tbl = 'step_library' AND t.tbl = 'trees'
       AND l.citus_kind = 'distributed' AND l.dist_column = 'tree_key'
       AND t.citus_kind = 'distributed' AND t.dist_column = 'id'
       AND l.colocation_id <> t.colocation_id
    UNION ALL
    SELECT 'public.step_library.tree_key', 'column must be uuid NOT NULL (docs/contract.md §11.1)'
      FROM key_column AS k
     WHERE k.atttypid <> 'uuid'::pg_catalog.regtype OR NOT k.attnotnull
    UNION ALL
    SELECT 'setting citus.enable_unsafe_triggers',
           'is off on the coordinator: stepsync''s triggers on distributed tables need it on every node'
           || ' (ALTER SYSTEM SET citus.enable_unsafe_triggers = on, on each node, then reload)'
     WHERE NOT COALESCE(pg_catalog.current_setting('citus.enable_unsafe_triggers', true), 'off')::boolean
    UNION ALL
    SELECT 'worker ' || w.nodename || ':' || w.nodeport,
           'citus.enable_unsafe_triggers is not on (' || COALESCE(w.result, 'no answer') || '): stepsync''s triggers'
           || ' on distributed tables need it on every node (ALTER SYSTEM SET citus.enable_unsafe_triggers = on,'
           || ' then reload)'
      FROM pg_catalog.run_command_on_workers('SHOW citus.enable_unsafe_triggers') AS w
     WHERE NOT w.success OR w.result <> 'on'
    UNION ALL
    -- A synced entry lives on its flow's shard. The count runs only when step_library has both columns
    -- (the query is text, parsed when it runs: see the one-node preflight's data checks).
    SELECT 'public.step_library.tree_key',
           x.n || ' synced rows live under another tree_key than their flow''s id: a synced entry''s tree_key'
           || ' must be its flow''s (docs/contract.md §11.1): UPDATE is not allowed on a distribution column, so'
           || ' copy them under the right key or lay the table out again (stepsync distribute)'
      FROM (SELECT COALESCE((SELECT s.ndoc FROM pg_catalog.ts_stat(
                     'SELECT ''n''::pg_catalog.tsvector FROM public.step_library'
                     ' WHERE source_tree_id IS NOT NULL AND tree_key <> source_tree_id') AS s
                     WHERE s.word = 'n'), 0) AS n
             WHERE (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute AS a
                     WHERE a.attrelid = pg_catalog.to_regclass('public.step_library') AND NOT a.attisdropped
                       AND a.attname IN ('tree_key', 'source_tree_id')) = 2) AS x
     WHERE x.n > 0
)
SELECT p.object, p.message FROM problems AS p ORDER BY p.object, p.message
