-- Trigger t31_sync_on_update on public.trees: a flow update that changes
-- whether the flow is listed, or its type, visibility or account (SPEC §5.1,
-- §5.3). With t32_sync_on_structure, the only path from a flow update to the
-- library.
--
-- UPDATE OF lists the columns it reads (not tree_structure): a statement that
-- sets none of them (a rename, a structure edit) does not even evaluate the
-- WHEN, and the WHEN never compares the document. It lets through:
--  * the flow is listed now and was not before, or its type, visibility or
--    account changed (§5.1): a full sync of its current structure;
--  * is_active turned false, or status turned 'archived' (§5.3): retirement.
-- Back to draft (§5.4) and re-setting status = 'published' (§5.8) fall
-- through. The structure edit of a flow that stays listed with the same type,
-- visibility and account is t32_sync_on_structure's: the two WHEN clauses
-- exclude each other, so one statement never syncs a flow twice.
CREATE OR REPLACE TRIGGER t31_sync_on_update
    AFTER UPDATE OF status, is_active, tree_type, is_public, account_id ON public.trees
    FOR EACH ROW
    WHEN (
        (NEW.status = 'published' AND NEW.is_active
         AND (OLD.status <> 'published' OR NOT OLD.is_active
              OR OLD.tree_type <> NEW.tree_type
              OR OLD.is_public <> NEW.is_public
              OR OLD.account_id IS DISTINCT FROM NEW.account_id))
        OR (OLD.is_active AND NOT NEW.is_active)
        OR (NEW.status = 'archived' AND OLD.status <> 'archived')
    )
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t31_sync_on_update ON public.trees IS
    'Syncs a flow that became listed or changed type, visibility or account; retires its entries when deactivated or archived (SPEC §5.1, §5.3).';
