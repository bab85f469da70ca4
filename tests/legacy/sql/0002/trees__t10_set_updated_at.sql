-- Trigger t10_set_updated_at on public.trees: keeps trees.updated_at current
-- (SPEC §5.9). BEFORE UPDATE, so the new value is written with the row.
-- The t10 prefix orders it before the sync triggers on the same table.
CREATE OR REPLACE TRIGGER t10_set_updated_at
    BEFORE UPDATE ON public.trees
    FOR EACH ROW
    EXECUTE FUNCTION stepsync.tg_set_updated_at();

COMMENT ON TRIGGER t10_set_updated_at ON public.trees IS
    'Sets updated_at = now() on every UPDATE that changes the flow (SPEC §5.9).';
