-- Search: the statements that must run outside a transaction (CONCURRENTLY),
-- one per group below a "-- statement" line. Each is idempotent. Where each
-- runs in the sequence is in README.md (the phase named in its first line).
-- statement
-- phase 2, before the fill: finds the rows still to fill (dropped in phase 4).
CREATE INDEX CONCURRENTLY IF NOT EXISTS step_library_search_fill_idx
    ON public.step_library (id) WHERE search_vector IS NULL;
-- statement
-- phase 4, after the fill: the index stepsync.search_steps walks (active steps only).
CREATE INDEX CONCURRENTLY IF NOT EXISTS step_library_search_vector_idx
    ON public.step_library USING gin (search_vector) WHERE is_active;
-- statement
-- phase 4: the fill is done.
DROP INDEX CONCURRENTLY IF EXISTS public.step_library_search_fill_idx;
-- statement
-- phase 6, after the switch: the old expression index (stepsync._search_document) serves nothing any more.
DROP INDEX CONCURRENTLY IF EXISTS public.step_library_search_idx;
