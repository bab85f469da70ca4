-- Trigger t05_guard_update on public.step_library: synced steps are read-only
-- but for usage_count, rating and rating_count, and hand-made steps cannot be
-- made synced (docs/contract.md §6.1). Updates that leave hand-made rows hand-made, and the
-- sync's own, skip it in the WHEN clause.
-- t05 fires before t10_set_updated_at.
-- The sync's own write is one made with its marker (stepsync.sync_writing = 'on') by a role that
-- holds CREATE on schema stepsync (the sync's SECURITY DEFINER functions run as its owner):
-- both are tested for every row, so a marker a client sets inside its own statement does not
-- get past (stepsync.tg_step_library__guard explains it).
CREATE OR REPLACE TRIGGER t05_guard_update
    BEFORE UPDATE ON public.step_library
    FOR EACH ROW
    WHEN ((OLD.is_flow_synced OR NEW.is_flow_synced OR NEW.source_tree_id IS NOT NULL
               OR NEW.source_node_id IS NOT NULL)
          AND (pg_catalog.current_setting('stepsync.sync_writing', true) IS DISTINCT FROM 'on'
               OR NOT pg_catalog.has_schema_privilege('stepsync'::pg_catalog.regnamespace, 'CREATE')))
    EXECUTE FUNCTION stepsync.tg_step_library__guard();

COMMENT ON TRIGGER t05_guard_update ON public.step_library IS
    'Refuses (42501) changes to synced steps other than usage_count, rating and rating_count (docs/contract.md §6.1).';
