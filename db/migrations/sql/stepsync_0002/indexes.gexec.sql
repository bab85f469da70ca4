-- The indexes stepsync adds to step_library, built without blocking writers (a generator: see
-- unique_key.gexec.sql). An invalid index left by an interrupted build is dropped and built again.
--  * step_library_forked_from_id_idx serves the forked_from_id foreign key (ON DELETE SET NULL:
--    deleting a step would otherwise scan the table) and lineage look-ups;
--  * step_library_search_vector_idx is the full-text index behind stepsync.search_steps (built after
--    the backfill and the fill of the search vector: one build is cheaper than keeping it up row by row);
-- then the table's statistics, which search_steps reads to tell rare terms from common ones.
WITH wanted (ord, name, definition, comment) AS (
    VALUES (1, 'step_library_forked_from_id_idx',
            'ON public.step_library (forked_from_id) WHERE forked_from_id IS NOT NULL',
            'stepsync: serves the forked_from_id foreign key (ON DELETE SET NULL) and lineage look-ups.'),
           (2, 'step_library_search_vector_idx',
            'ON public.step_library USING gin (search_vector) WHERE is_active',
            'stepsync: the search vectors of active steps, for stepsync.search_steps.')
),
state AS (
    SELECT w.*, i.indexrelid IS NOT NULL AS present, COALESCE(i.indisvalid, false) AS valid,
           pg_catalog.obj_description(i.indexrelid, 'pg_class') AS current_comment
      FROM wanted AS w
      LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = pg_catalog.to_regclass('public.' || w.name)
)
SELECT q.statement
  FROM (SELECT s.ord, 1 AS step, 'DROP INDEX CONCURRENTLY public.' || s.name AS statement
          FROM state AS s WHERE s.present AND NOT s.valid
        UNION ALL
        SELECT s.ord, 2, 'CREATE INDEX CONCURRENTLY ' || s.name || ' ' || s.definition
          FROM state AS s WHERE NOT s.valid
        UNION ALL
        SELECT s.ord, 3, 'COMMENT ON INDEX public.' || s.name || ' IS ' || pg_catalog.quote_literal(s.comment)
          FROM state AS s WHERE s.current_comment IS DISTINCT FROM s.comment
        UNION ALL
        SELECT 9, 1, 'ANALYZE public.step_library'
       ) AS q
 ORDER BY q.ord, q.step
