-- The backfill (docs/contract.md §5.6): every listed flow synced, and the entries of deactivated or
-- archived flows retired, by stepsync.backfill_batch over consecutive ranges of 50 flow ids,
-- each range one statement outside a transaction block, so each commits on its own: the
-- application's writes wait at most for one batch, and an interrupted backfill keeps what it did.
-- A generator (see unique_key.gexec.sql). A flow published while it runs is synced by its trigger.
WITH needing AS (
    SELECT t.id, pg_catalog.row_number() OVER (ORDER BY t.id) AS n
      FROM public.trees AS t
     WHERE (t.status = 'published' AND t.is_active)
        OR ((NOT t.is_active OR t.status = 'archived')
            AND EXISTS (SELECT FROM public.step_library AS s
                         WHERE s.source_tree_id = t.id AND s.is_flow_synced AND s.is_active))
),
bounds AS (             -- the last id of every 50th flow ends a range (50 flows of any size commit well under a second)
    SELECT n.id FROM needing AS n WHERE n.n % 50 = 0
),
ranges AS (
    SELECT pg_catalog.lag(b.id) OVER (ORDER BY b.id) AS after_id, b.id AS through_id FROM bounds AS b
    UNION ALL
    SELECT (SELECT max(b.id::text)::uuid FROM bounds AS b), NULL
)
SELECT 'SELECT * FROM stepsync.backfill_batch(' || pg_catalog.quote_nullable(r.after_id) || ', NULL, '
       || pg_catalog.quote_nullable(r.through_id) || ')'
  FROM ranges AS r
 ORDER BY r.through_id NULLS LAST
