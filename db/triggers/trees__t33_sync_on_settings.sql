-- Trigger t33_sync_on_settings on public.trees: a listed flow's update that
-- changes its type, visibility or account while it stays listed (docs/contract.md §5.1):
-- it is synced in full (its entries' step_type, visibility and account_id
-- follow the flow). An unlisted flow's settings do not matter to the library.
-- Calls stepsync.tg_trees__sync.
--
-- UPDATE OF tree_type, is_public, account_id: a statement that sets none of
-- them does not evaluate the WHEN. A row whose status or is_active changed
-- too is t31_sync_on_update's, and a structure edit of a flow that stays
-- listed with the same settings is t32_sync_on_structure's: the WHEN clauses
-- exclude each other, so one statement never syncs a flow twice. (Plain ORs, not a row comparison:
-- PostgreSQL prints a row comparison's nested ORs back differently after a dump and restore.)
CREATE OR REPLACE TRIGGER t33_sync_on_settings
    AFTER UPDATE OF tree_type, is_public, account_id ON public.trees
    FOR EACH ROW
    WHEN (NEW.status = 'published' AND NEW.is_active
          AND NOT (NEW.status IS DISTINCT FROM OLD.status OR NEW.is_active IS DISTINCT FROM OLD.is_active)
          AND (NEW.tree_type IS DISTINCT FROM OLD.tree_type OR NEW.is_public IS DISTINCT FROM OLD.is_public
               OR NEW.account_id IS DISTINCT FROM OLD.account_id))
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t33_sync_on_settings ON public.trees IS
    'Syncs a listed flow again when its type, visibility or account changed (docs/contract.md §5.1).';
