-- Trigger t32_sync_on_structure on public.trees: a structure edit of a flow
-- that was listed and stays listed with the same type, visibility and account
-- (docs/contract.md §5.1, §5.2): the common republish.
--
-- UPDATE OF tree_structure: only statements that set the column fire it, so
-- only they pay for comparing the document, which comes last in the WHEN (a
-- re-save of the same structure does no library work but that comparison,
-- §5.8). Its WHEN clause excludes those of t31_sync_on_update (a flow whose
-- status or is_active changed) and t33_sync_on_settings (a flow whose type,
-- visibility or account changed), so one statement never syncs a flow twice.
-- stepsync.tg_trees__sync passes the old structure to the sync, which then
-- re-extracts only the steps that changed.
CREATE OR REPLACE TRIGGER t32_sync_on_structure
    AFTER UPDATE OF tree_structure ON public.trees
    FOR EACH ROW
    WHEN (
        NEW.status = 'published' AND NEW.is_active
        AND OLD.status = 'published' AND OLD.is_active
        AND OLD.tree_type = NEW.tree_type
        AND OLD.is_public = NEW.is_public
        AND OLD.account_id IS NOT DISTINCT FROM NEW.account_id
        AND OLD.tree_structure <> NEW.tree_structure
    )
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t32_sync_on_structure ON public.trees IS
    'Syncs a listed flow whose structure changed while it stayed listed with the same type, visibility and account (docs/contract.md §5.1, §5.2).';
