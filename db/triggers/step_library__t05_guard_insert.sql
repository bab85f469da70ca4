-- Trigger t05_guard_insert on public.step_library: only the sync may insert
-- synced steps (docs/contract.md §6.1). Hand-made rows and forks, and the sync's own
-- inserts, skip it in the WHEN clause.
-- The sync's own write is one made with its marker (stepsync.sync_writing = 'on') by a role that
-- holds CREATE on schema stepsync (the sync's SECURITY DEFINER functions run as its owner):
-- both are tested for every row, so a marker a client sets inside its own statement does not
-- get past (stepsync.tg_step_library__guard explains it).
CREATE OR REPLACE TRIGGER t05_guard_insert
    BEFORE INSERT ON public.step_library
    FOR EACH ROW
    WHEN ((NEW.is_flow_synced OR NEW.source_tree_id IS NOT NULL OR NEW.source_node_id IS NOT NULL)
          AND (pg_catalog.current_setting('stepsync.sync_writing', true) IS DISTINCT FROM 'on'
               OR NOT pg_catalog.has_schema_privilege('stepsync'::pg_catalog.regnamespace, 'CREATE')))
    EXECUTE FUNCTION stepsync.tg_step_library__guard();

COMMENT ON TRIGGER t05_guard_insert ON public.step_library IS
    'Refuses (42501) inserts of synced steps by anyone but the sync (docs/contract.md §6.1).';
