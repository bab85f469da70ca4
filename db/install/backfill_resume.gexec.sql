-- The backfill, resumed from stepsync.backfill_progress (docs/contract.md §5.6, §9.2): when the row
-- says a backfill is unfinished, every flow after its cursor that needs it is synced or retired by
-- stepsync.backfill_batch over consecutive ranges of 50 flow ids, each range one statement outside
-- a transaction block, so each commits on its own and moves the cursor on with it (the
-- application's writes wait at most for one batch; an interrupted backfill keeps what it did, and
-- the next run goes on from the cursor). The last range runs to the end and clears the row. With
-- no row, it generates nothing. A generator (see unique_key.gexec.sql). A flow published while it
-- runs is synced by its trigger.
WITH progress AS (
    SELECT p.after_tree_id FROM stepsync.backfill_progress AS p
),
needing AS (
    SELECT t.id, pg_catalog.row_number() OVER (ORDER BY t.id) AS n
      FROM public.trees AS t CROSS JOIN progress AS p
     WHERE (p.after_tree_id IS NULL OR t.id > p.after_tree_id)
       AND ((t.status = 'published' AND t.is_active)
            OR ((NOT t.is_active OR t.status = 'archived')
                AND EXISTS (SELECT FROM public.step_library AS s
                             WHERE s.source_tree_id = t.id AND s.is_flow_synced AND s.is_active)))
),
bounds AS (             -- the last id of every 50th flow ends a range (50 flows of any size commit well under a second)
    SELECT n.id FROM needing AS n WHERE n.n % 50 = 0
),
ranges AS (             -- the first range starts at the cursor, each next one where the one before ended
    SELECT COALESCE(pg_catalog.lag(b.id) OVER (ORDER BY b.id), (SELECT p.after_tree_id FROM progress AS p))
               AS after_id,
           b.id AS through_id
      FROM bounds AS b
    UNION ALL
    SELECT COALESCE((SELECT pg_catalog.max(b.id::text)::uuid FROM bounds AS b), p.after_tree_id), NULL
      FROM progress AS p
)
SELECT 'SELECT * FROM stepsync.backfill_batch(' || pg_catalog.quote_nullable(r.after_id) || ', NULL, '
       || pg_catalog.quote_nullable(r.through_id) || ')'
  FROM ranges AS r
 ORDER BY r.through_id NULLS LAST
