-- Trigger t31_sync_on_update on public.trees: a flow update that changes
-- whether the flow is listed, or its type, visibility or account (SPEC §5.1,
-- §5.3); with t32_sync_on_structure, the only path from a flow update to the
-- library. Calls stepsync.tg_trees__sync, which decides what the change
-- means: a full sync when the flow is listed now, retirement when it was
-- deactivated or archived, nothing when it went back to draft (§5.4).
--
-- UPDATE OF lists the columns that decision reads (not tree_structure): a
-- statement that sets none of them (a rename, a structure edit) does not even
-- evaluate the WHEN, and the WHEN lets through only a row where one of them
-- changed, so re-setting status = 'published' does nothing at all (§5.8). It
-- compares the five values as one row: a small expression is cheap to set up
-- for each statement. A structure edit of a flow that stays listed with the
-- same type, visibility and account is t32_sync_on_structure's, and such a
-- row changes none of the five: the two WHEN clauses exclude each other, so
-- one statement never syncs a flow twice.
CREATE OR REPLACE TRIGGER t31_sync_on_update
    AFTER UPDATE OF status, is_active, tree_type, is_public, account_id ON public.trees
    FOR EACH ROW
    WHEN ((NEW.status, NEW.is_active, NEW.tree_type, NEW.is_public, NEW.account_id)
          IS DISTINCT FROM (OLD.status, OLD.is_active, OLD.tree_type, OLD.is_public, OLD.account_id))
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t31_sync_on_update ON public.trees IS
    'Syncs a flow that became listed or changed type, visibility or account; retires its entries when deactivated or archived (SPEC §5.1, §5.3).';
