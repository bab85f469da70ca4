-- Trigger t05_guard_insert on public.step_library: only the sync may insert
-- synced steps (SPEC §6.1). Hand-made rows and forks, and the sync's own
-- inserts (stepsync.sync_writing = 'on'), skip it in the WHEN clause.
CREATE OR REPLACE TRIGGER t05_guard_insert
    BEFORE INSERT ON public.step_library
    FOR EACH ROW
    WHEN (pg_catalog.current_setting('stepsync.sync_writing', true) IS DISTINCT FROM 'on'
          AND (NEW.is_flow_synced OR NEW.source_tree_id IS NOT NULL OR NEW.source_node_id IS NOT NULL))
    EXECUTE FUNCTION stepsync.tg_step_library__guard();

COMMENT ON TRIGGER t05_guard_insert ON public.step_library IS
    'Refuses (42501) inserts of synced steps by anyone but the sync (SPEC §6.1).';
