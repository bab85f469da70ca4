-- Revision 0004: the full-text index behind stepsync.search_steps. Partial:
-- only active steps are ever searched.
CREATE INDEX step_library_search_idx ON public.step_library
    USING gin (stepsync._search_document(title, content))
    WHERE is_active;
COMMENT ON INDEX public.step_library_search_idx IS
    'Full-text index of active steps (stepsync._search_document) for stepsync.search_steps.';
