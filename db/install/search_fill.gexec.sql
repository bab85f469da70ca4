-- The search vector of the rows that were there before the install (hand-made rows, forks, rows an
-- application synced itself), in ranges of 5,000 rows, each range one statement that commits on its
-- own (a generator: see unique_key.gexec.sql). Setting the vector to '' makes trigger
-- t21_search_vector_update compute it; t10_set_updated_at is off for that statement only, inside its
-- own transaction, so that filling a derived column does not count as a change of the step (it takes
-- a SHARE ROW EXCLUSIVE lock on step_library for the ~0.1 s the range takes). Rows written while it
-- runs get their vector from their own write. First, active synced rows whose flow is gone (left by an
-- application that synced itself) are retired: the fill rewrites rows, and step_library_synced_active_check,
-- though not validated yet, holds for every row written.
WITH todo AS (
    SELECT s.id, pg_catalog.row_number() OVER (ORDER BY s.id) AS n
      FROM public.step_library AS s
     WHERE s.search_vector IS NULL
),
bounds AS (
    SELECT t.id FROM todo AS t WHERE t.n % 5000 = 0
),
ranges AS (
    SELECT pg_catalog.lag(b.id) OVER (ORDER BY b.id) AS after_id, b.id AS through_id FROM bounds AS b
    UNION ALL
    SELECT (SELECT max(b.id::text)::uuid FROM bounds AS b), NULL
     WHERE EXISTS (SELECT FROM todo)
)
SELECT q.statement FROM (
SELECT 0 AS ord, NULL::uuid AS through_id, 'SELECT stepsync._retire_orphans()' AS statement
UNION ALL
SELECT 1, r.through_id, 'ALTER TABLE public.step_library DISABLE TRIGGER t10_set_updated_at; '
       || 'UPDATE public.step_library SET search_vector = '''' WHERE search_vector IS NULL'
       || COALESCE(' AND id > ' || pg_catalog.quote_literal(r.after_id), '')
       || COALESCE(' AND id <= ' || pg_catalog.quote_literal(r.through_id), '')
       || '; ALTER TABLE public.step_library ENABLE TRIGGER t10_set_updated_at'
  FROM ranges AS r
) AS q
 ORDER BY q.ord, q.through_id NULLS LAST
