-- Trigger t30_sync_on_insert on public.trees: a flow inserted already listed
-- (published and active) is synced at once (docs/contract.md §5.1). Drafts and inactive
-- flows do no work at all: the WHEN clause filters them out.
CREATE OR REPLACE TRIGGER t30_sync_on_insert
    AFTER INSERT ON public.trees
    FOR EACH ROW
    WHEN (NEW.status = 'published' AND NEW.is_active)
    EXECUTE FUNCTION stepsync.tg_trees__sync();

COMMENT ON TRIGGER t30_sync_on_insert ON public.trees IS
    'Syncs a flow inserted as published and active into step_library (docs/contract.md §5.1).';
