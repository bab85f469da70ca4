-- Trigger t20_retire_on_delete on public.trees: retires a flow's library
-- entries when the flow is deleted (docs/contract.md §5.5), BEFORE the row goes so that
-- the foreign key's ON DELETE SET NULL finds them already retired.
CREATE OR REPLACE TRIGGER t20_retire_on_delete
    BEFORE DELETE ON public.trees
    FOR EACH ROW
    EXECUTE FUNCTION stepsync.tg_trees__retire_on_delete();

COMMENT ON TRIGGER t20_retire_on_delete ON public.trees IS
    'Retires the deleted flow''s step_library entries (docs/contract.md §5.5).';
