-- Search, phase 3: fills search_vector for up to 5,000 existing rows that have
-- none and returns how many it filled (one row, column filled). Run it again,
-- each time in its own short transaction, until it returns 0; it is
-- idempotent and safe next to live traffic (it skips rows other sessions hold
-- locked; those get their vector from their own write, or from the next run).
--
-- Setting search_vector to '' makes t21_search_vector_update compute the real
-- value. t10_set_updated_at is switched off for the statement, inside its
-- transaction only, so that the fill leaves updated_at alone (filling the
-- search column is not a change of the step); that takes a SHARE ROW
-- EXCLUSIVE lock on step_library until the transaction ends, so keep batches
-- short (5,000 rows: about 0.1 s). Uses step_library_search_fill_idx when
-- phase 2 made it, and works without it (slower on big tables).
ALTER TABLE public.step_library DISABLE TRIGGER t10_set_updated_at;
-- statement
WITH todo AS (
    SELECT s.id
      FROM public.step_library AS s
     WHERE s.search_vector IS NULL
     ORDER BY s.id
     LIMIT 5000
       FOR UPDATE SKIP LOCKED
), filled AS (
    UPDATE public.step_library AS s
       SET search_vector = ''::pg_catalog.tsvector
      FROM todo
     WHERE s.id = todo.id
    RETURNING 1
)
SELECT pg_catalog.count(*) AS filled FROM filled;
-- statement
ALTER TABLE public.step_library ENABLE TRIGGER t10_set_updated_at;
