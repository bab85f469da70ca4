-- Trigger t10_set_updated_at on public.step_library: keeps
-- step_library.updated_at current (docs/contract.md §5.9), for client updates and for the
-- sync's own rewrites and retirements alike.
CREATE OR REPLACE TRIGGER t10_set_updated_at
    BEFORE UPDATE ON public.step_library
    FOR EACH ROW
    EXECUTE FUNCTION stepsync.tg_set_updated_at();

COMMENT ON TRIGGER t10_set_updated_at ON public.step_library IS
    'Sets updated_at = now() on every UPDATE that changes the entry (docs/contract.md §5.9).';
