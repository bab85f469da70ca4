-- Search, downgrade (in a transaction): back to the expression index of the
-- previous revision. Run after the previous revision's search_steps and
-- _search_document are restored (DROP FUNCTION stepsync.search_steps first:
-- the return type differs); the index build is not concurrent here (a
-- downgrade is maintenance).
DROP TRIGGER IF EXISTS t22_search_vector_usage ON public.step_library;
DROP TRIGGER IF EXISTS t21_search_vector_update ON public.step_library;
DROP TRIGGER IF EXISTS t20_search_vector_insert ON public.step_library;
DROP FUNCTION IF EXISTS stepsync.tg_step_library__search_vector();
DROP INDEX IF EXISTS public.step_library_search_vector_idx;
DROP INDEX IF EXISTS public.step_library_search_fill_idx;
ALTER TABLE public.step_library DROP COLUMN IF EXISTS search_vector;
CREATE INDEX IF NOT EXISTS step_library_search_idx ON public.step_library
    USING gin (stepsync._search_document(title, content))
    WHERE is_active;
COMMENT ON INDEX public.step_library_search_idx IS
    'Full-text index of active steps (stepsync._search_document) for stepsync.search_steps.';
