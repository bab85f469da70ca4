-- Trigger t21_search_vector_update on public.step_library: recomputes
-- search_vector when the statement sets a column it is made of and that
-- column changes (see stepsync.tg_step_library__search_vector). A statement
-- that sets none of them (a usage_count increment, a rating) does not fire it
-- at all; one that re-sends unchanged values (an ORM) stops at the WHEN clause.
-- A client that writes search_vector itself gets it recomputed, so the column
-- always matches the row.
CREATE OR REPLACE TRIGGER t21_search_vector_update
    BEFORE UPDATE OF title, content, step_type, visibility, account_id, created_by, id, search_vector
    ON public.step_library
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.step_type IS DISTINCT FROM NEW.step_type
          OR OLD.visibility IS DISTINCT FROM NEW.visibility OR OLD.account_id IS DISTINCT FROM NEW.account_id
          OR OLD.created_by IS DISTINCT FROM NEW.created_by OR OLD.id IS DISTINCT FROM NEW.id
          OR OLD.content IS DISTINCT FROM NEW.content OR OLD.search_vector IS DISTINCT FROM NEW.search_vector)
    EXECUTE FUNCTION stepsync.tg_step_library__search_vector();

COMMENT ON TRIGGER t21_search_vector_update ON public.step_library IS
    'Recomputes search_vector when the title, content, kind, audience or id of a step changes (stepsync.search_steps).';
