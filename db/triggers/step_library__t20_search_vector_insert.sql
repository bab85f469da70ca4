-- Trigger t20_search_vector_insert on public.step_library: every new step gets
-- its search_vector (see stepsync.tg_step_library__search_vector), whoever
-- inserts it (the sync, a client, a fork). Fires after the t05 guard.
CREATE OR REPLACE TRIGGER t20_search_vector_insert
    BEFORE INSERT ON public.step_library
    FOR EACH ROW
    EXECUTE FUNCTION stepsync.tg_step_library__search_vector();

COMMENT ON TRIGGER t20_search_vector_insert ON public.step_library IS
    'Stores search_vector for every new step (stepsync.search_steps).';
