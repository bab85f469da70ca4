-- Trigger t03_guard_truncate on public.step_library: TRUNCATE fires no row trigger, so the read-only
-- rule on synced steps needs a statement trigger of its own (stepsync.tg_step_library__guard_truncate).
CREATE OR REPLACE TRIGGER t03_guard_truncate
    BEFORE TRUNCATE ON public.step_library
    FOR EACH STATEMENT
    EXECUTE FUNCTION stepsync.tg_step_library__guard_truncate();

COMMENT ON TRIGGER t03_guard_truncate ON public.step_library IS
    'Refuses (42501) TRUNCATE while synced steps are in the table, for every role but the owner (docs/contract.md §6.1).';
