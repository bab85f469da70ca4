-- Trigger t05_guard_delete on public.step_library: an active synced step
-- cannot be deleted; its flow retires it (SPEC §6.1). Retired synced steps,
-- hand-made rows and forks skip it in the WHEN clause.
CREATE OR REPLACE TRIGGER t05_guard_delete
    BEFORE DELETE ON public.step_library
    FOR EACH ROW
    WHEN (pg_catalog.current_setting('stepsync.sync_writing', true) IS DISTINCT FROM 'on'
          AND OLD.is_flow_synced AND OLD.is_active)
    EXECUTE FUNCTION stepsync.tg_step_library__guard();

COMMENT ON TRIGGER t05_guard_delete ON public.step_library IS
    'Refuses (42501) deleting an active synced step (SPEC §6.1).';
