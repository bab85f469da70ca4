-- Trigger t11_set_updated_at_structure on public.trees: sets trees.updated_at
-- when a statement that sets tree_structure changes it and nothing else
-- (docs/contract.md §5.9). UPDATE OF tree_structure: a statement that does not set the
-- column never fires it, so a rename or a status re-set never reads the
-- document. The WHEN clause skips it when t10_set_updated_at already set
-- updated_at (another column changed): the document is then not compared at
-- all. A document equal to the stored one is replaced by the stored value, so
-- that the update writes no new TOAST copy of it. Fires after t10 (name order).
CREATE OR REPLACE TRIGGER t11_set_updated_at_structure
    BEFORE UPDATE OF tree_structure ON public.trees
    FOR EACH ROW
    WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION stepsync.tg_set_updated_at('tree_structure');

COMMENT ON TRIGGER t11_set_updated_at_structure ON public.trees IS
    'Sets updated_at = now() when a statement sets tree_structure to a different value and changes nothing else (docs/contract.md §5.9); an equal document keeps the stored value.';
