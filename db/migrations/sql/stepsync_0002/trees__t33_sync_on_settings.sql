-- Trigger t33_sync_on_settings on public.trees: a listed flow's update that
-- changes its type, visibility or account while it stays listed (SPEC §5.1):
-- it is synced in full (its entries' step_type, visibility and account_id
-- follow the flow). An unlisted flow's settings do not matter to the library.
-- Calls stepsync.tg_trees__sync.
--
-- UPDATE OF tree_type, is_public, account_id: a statement that sets none of
-- them does not evaluate the WHEN. A row whose status or is_active changed
-- too is t31_sync_on_update's, and a structure edit of a flow that stays
-- listed with the same settings is t32_sync_on_structure's: the WHEN clauses
-- exclude each other, so one statement never syncs a flow twice.
CREATE OR REPLACE TRIGGER t33_sync_on_settings
    AFTER UPDATE OF tree_type, is_public, account_id ON public.trees
    FOR EACH ROW
    WHEN (NEW.status = 'published' AND NEW.is_active
          AND (NEW.status, NEW.is_active) IS NOT DISTINCT FROM (OLD.status, OLD.is_active)
          AND (NEW.tree_type, NEW.is_public, NEW.account_id) IS DISTINCT FROM (OLD.tree_type, OLD.is_public, OLD.account_id))
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t33_sync_on_settings ON public.trees IS
    'Syncs a listed flow again when its type, visibility or account changed (SPEC §5.1).';
