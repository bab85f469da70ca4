-- Search, phase 1 (in a transaction; idempotent): the stored search vector.
-- After this file, create from db/functions (in this order):
--   tg_step_library__search_vector.sql,
--   step_library__t20_search_vector_insert.sql,
--   step_library__t21_search_vector_update.sql,
--   step_library__t22_search_vector_usage.sql
-- From then on every write keeps search_vector current; the old search_steps
-- and its expression index go on serving searches until phase 5 (README.md).
ALTER TABLE public.step_library ADD COLUMN IF NOT EXISTS search_vector tsvector;

COMMENT ON COLUMN public.step_library.search_vector IS
    'What stepsync.search_steps searches: the weighted text of the step and its audience, popularity and title'
    ' keys, stored by stepsync.tg_step_library__search_vector (never write it yourself: it is recomputed).';
