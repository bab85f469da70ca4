-- Trigger t10_set_updated_at on public.trees: keeps trees.updated_at current
-- (docs/contract.md §5.9) for every change but one to tree_structure alone, which
-- t11_set_updated_at_structure handles. BEFORE UPDATE, so the new value is
-- written with the row; the t10 prefix orders it before t11 and the sync
-- triggers on the same table.
CREATE OR REPLACE TRIGGER t10_set_updated_at
    BEFORE UPDATE ON public.trees
    FOR EACH ROW
    EXECUTE FUNCTION stepsync.tg_set_updated_at('skip tree_structure');

COMMENT ON TRIGGER t10_set_updated_at ON public.trees IS
    'Sets updated_at = now() on every UPDATE that changes the flow''s row apart from tree_structure, without reading the document (docs/contract.md §5.9).';
