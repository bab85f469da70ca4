-- The unique key the sync upserts on, (source_tree_id, source_node_id), built without blocking writers.
-- A generator: each row is a statement to run outside a transaction block, in order (psql's \gexec;
-- stepsync.frozen.outside_transaction online). Nothing when a valid unique index on exactly these two
-- columns exists already (the application's own key is adopted, under its own name); an invalid
-- index left by an interrupted build is dropped and built again.
SELECT q.statement
  FROM (SELECT 1 AS ord, 'DROP INDEX CONCURRENTLY public.step_library_source_key' AS statement
          FROM pg_catalog.pg_index AS i
         WHERE i.indexrelid = pg_catalog.to_regclass('public.step_library_source_key') AND NOT i.indisvalid
        UNION ALL
        SELECT 2, 'CREATE UNIQUE INDEX CONCURRENTLY step_library_source_key'
                  ' ON public.step_library (source_tree_id, source_node_id)'
         WHERE NOT EXISTS (
               SELECT FROM pg_catalog.pg_index AS i
                WHERE i.indrelid = 'public.step_library'::pg_catalog.regclass
                  AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                  -- the same two columns, in either order (indkey's subscripts start at 0)
                  AND ARRAY(SELECT k FROM pg_catalog.unnest(i.indkey::int2[]) AS k ORDER BY k) = ARRAY(
                      SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                       WHERE a.attrelid = 'public.step_library'::pg_catalog.regclass
                         AND a.attname IN ('source_tree_id', 'source_node_id')
                       ORDER BY a.attnum))
       ) AS q
 ORDER BY q.ord
