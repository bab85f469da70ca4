-- Trigger t31_sync_on_update on public.trees: the only path from a flow
-- update to the library (SPEC §5).
--
-- UPDATE OF lists the columns the library depends on: a statement that sets
-- none of them (a rename, a description edit) does not even evaluate the WHEN.
-- The WHEN clause lets through exactly the writes §5 names:
--  * the flow is listed now and was not before, or its type, visibility,
--    account or structure changed (§5.1); the structure comparison, the only
--    costly one, comes last, so re-saving the same structure does no library
--    work but the comparison (§5.8);
--  * is_active turned false, or status turned 'archived' (§5.3).
-- Back to draft (§5.4) and re-setting status = 'published' (§5.8) fall through.
CREATE OR REPLACE TRIGGER t31_sync_on_update
    AFTER UPDATE OF status, is_active, tree_structure, tree_type, is_public, account_id ON public.trees
    FOR EACH ROW
    WHEN (
        (NEW.status = 'published' AND NEW.is_active
         AND (OLD.status <> 'published' OR NOT OLD.is_active
              OR OLD.tree_type <> NEW.tree_type
              OR OLD.is_public <> NEW.is_public
              OR OLD.account_id IS DISTINCT FROM NEW.account_id
              OR OLD.tree_structure <> NEW.tree_structure))
        OR (OLD.is_active AND NOT NEW.is_active)
        OR (NEW.status = 'archived' AND OLD.status <> 'archived')
    )
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t31_sync_on_update ON public.trees IS
    'Syncs a flow that became listed or whose content changed; retires its entries when deactivated or archived (SPEC §5).';
