-- Trigger t22_search_vector_usage on public.step_library: a usage_count change
-- that moves a step to another popularity class (the highest set bit of
-- GREATEST(usage_count, 3) changes: 3 -> 4, 7 -> 8, 15 -> 16, ...) recomputes
-- search_vector, whose audience keys carry the class (see
-- stepsync.tg_step_library__search_vector). Every other increment leaves the
-- vector, and so every index, alone: it stays a HOT update. The test is plain
-- integer arithmetic in the WHEN clause, so such an increment calls no function.
CREATE OR REPLACE TRIGGER t22_search_vector_usage
    BEFORE UPDATE OF usage_count ON public.step_library
    FOR EACH ROW
    WHEN ((GREATEST(OLD.usage_count, 3) # GREATEST(NEW.usage_count, 3))
          > LEAST(GREATEST(OLD.usage_count, 3), GREATEST(NEW.usage_count, 3)))
    EXECUTE FUNCTION stepsync.tg_step_library__search_vector();

COMMENT ON TRIGGER t22_search_vector_usage ON public.step_library IS
    'Recomputes search_vector when a usage_count change moves the step to another popularity class (stepsync.search_steps).';
