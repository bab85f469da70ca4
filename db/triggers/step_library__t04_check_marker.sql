-- Trigger t04_check_marker on public.step_library: a statement made with
-- stepsync.sync_writing = 'on' must come from the sync (the owner): see
-- stepsync.tg_step_library__check_marker. Fires once per statement, before
-- the row guards, and only when the marker is set.
CREATE OR REPLACE TRIGGER t04_check_marker
    BEFORE INSERT OR UPDATE OR DELETE ON public.step_library
    FOR EACH STATEMENT
    WHEN (pg_catalog.current_setting('stepsync.sync_writing', true) = 'on')
    EXECUTE FUNCTION stepsync.tg_step_library__check_marker();

COMMENT ON TRIGGER t04_check_marker ON public.step_library IS
    'Refuses (42501) writes made under stepsync.sync_writing = on by anyone but the sync.';
