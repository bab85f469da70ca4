-- Trigger t31_sync_on_update on public.trees: a flow update that changes
-- whether the flow is published or active (docs/contract.md §5.1, §5.3, §5.4); with
-- t32_sync_on_structure and t33_sync_on_settings, the only paths from a flow
-- update to the library. Calls stepsync.tg_trees__sync, which decides what
-- the change means: a full sync when the flow is listed now, retirement when
-- it was deactivated or archived, nothing when it went back to draft.
--
-- UPDATE OF status, is_active: a statement that sets neither (a rename, a
-- structure edit) does not even evaluate the WHEN, and the WHEN lets through
-- only a row where one of the two changed, so re-setting status = 'published'
-- does nothing at all (§5.8). The WHEN is kept small on purpose: PostgreSQL
-- reads and prepares a trigger's WHEN anew for every statement, and a status
-- re-set is a statement that must stay as cheap as the bare UPDATE.
-- The three sync triggers' WHEN clauses exclude each other (t32 wants a flow
-- listed before and after with the same settings, t33 a flow whose status and
-- is_active did not change), so one statement never syncs a flow twice.
CREATE OR REPLACE TRIGGER t31_sync_on_update
    AFTER UPDATE OF status, is_active ON public.trees
    FOR EACH ROW
    WHEN ((NEW.status, NEW.is_active) IS DISTINCT FROM (OLD.status, OLD.is_active))
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t31_sync_on_update ON public.trees IS
    'Syncs a flow that became listed, retires its entries when it was deactivated or archived (docs/contract.md §5.1, §5.3).';
