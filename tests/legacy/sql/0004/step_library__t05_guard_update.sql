-- Trigger t05_guard_update on public.step_library: synced steps are read-only
-- but for usage_count, rating and rating_count, and hand-made steps cannot be
-- made synced (SPEC §6.1). Updates that leave hand-made rows hand-made, and the
-- sync's own (stepsync.sync_writing = 'on'), skip it in the WHEN clause.
-- t05 fires before t10_set_updated_at.
CREATE OR REPLACE TRIGGER t05_guard_update
    BEFORE UPDATE ON public.step_library
    FOR EACH ROW
    WHEN (pg_catalog.current_setting('stepsync.sync_writing', true) IS DISTINCT FROM 'on'
          AND (OLD.is_flow_synced OR NEW.is_flow_synced OR NEW.source_tree_id IS NOT NULL
               OR NEW.source_node_id IS NOT NULL))
    EXECUTE FUNCTION stepsync.tg_step_library__guard();

COMMENT ON TRIGGER t05_guard_update ON public.step_library IS
    'Refuses (42501) changes to synced steps other than usage_count, rating and rating_count (SPEC §6.1).';
