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
    WHEN ((OLD.title, OLD.step_type, OLD.visibility, OLD.account_id, OLD.created_by, OLD.id, OLD.content,
           OLD.search_vector)
          IS DISTINCT FROM
          (NEW.title, NEW.step_type, NEW.visibility, NEW.account_id, NEW.created_by, NEW.id, NEW.content,
           NEW.search_vector))
    EXECUTE FUNCTION stepsync.tg_step_library__search_vector();

COMMENT ON TRIGGER t21_search_vector_update ON public.step_library IS
    'Recomputes search_vector when the title, content, kind, audience or id of a step changes (stepsync.search_steps).';
