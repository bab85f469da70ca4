-- Trigger t05_guard_delete on public.step_library: an active synced step
-- cannot be deleted; its flow retires it (docs/contract.md §6.1). Retired synced steps,
-- hand-made rows and forks skip it in the WHEN clause.
-- The sync's own write is one made with its marker (stepsync.sync_writing = 'on') by a role that
-- holds CREATE on schema stepsync (the sync's SECURITY DEFINER functions run as its owner):
-- both are tested for every row, so a marker a client sets inside its own statement does not
-- get past (stepsync.tg_step_library__guard explains it).
CREATE OR REPLACE TRIGGER t05_guard_delete
    BEFORE DELETE ON public.step_library
    FOR EACH ROW
    WHEN (OLD.is_flow_synced AND OLD.is_active
          AND (pg_catalog.current_setting('stepsync.sync_writing', true) IS DISTINCT FROM 'on'
               OR NOT pg_catalog.has_schema_privilege('stepsync'::pg_catalog.regnamespace, 'CREATE')))
    EXECUTE FUNCTION stepsync.tg_step_library__guard();

COMMENT ON TRIGGER t05_guard_delete ON public.step_library IS
    'Refuses (42501) deleting an active synced step (docs/contract.md §6.1).';
