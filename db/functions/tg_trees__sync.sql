-- stepsync.tg_trees__sync(): AFTER INSERT / UPDATE row trigger function on
-- public.trees that keeps the library in step with the flow (docs/contract.md §5).
-- Fired by t30_sync_on_insert, t31_sync_on_update, t32_sync_on_structure and
-- t33_sync_on_settings;
-- calls stepsync._sync or stepsync._retire. The explanation is in the body, so
-- that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.tg_trees__sync()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- What a write means for the library (docs/contract.md §5), decided from the row before
-- and after it; the triggers' WHEN clauses already let through only writes
-- that may matter (a rename or a re-save of the same structure never gets
-- here, §5.8):
--  * the flow is listed now (published and active): it is synced. When it was
--    listed before with the same type, visibility and account, the write was a
--    structure edit (t32_sync_on_structure) and the old structure is passed
--    on: the library holds what the sync of that structure wrote, so
--    stepsync._sync re-extracts only the steps that changed (it checks all of
--    them, and falls back to a full sync when the library is not as
--    expected). Otherwise (an insert, a publish, a change of type, visibility
--    or account: t30, t31, t33) it is a full sync;
--  * it was deactivated, or archived: its entries are retired (§5.3);
--  * anything else (back to draft, §5.4; a draft's visibility changed, ...):
--    the library stays as it is.
--
-- SECURITY DEFINER: clients that may only write trees must still get a synced
-- library, so the sync runs with the rights of the role that installed it
-- (the migration role); search_path is pinned and every name is qualified.
DECLARE
    v_previous jsonb;
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'ROW' OR TG_OP NOT IN ('INSERT', 'UPDATE') THEN
        RAISE EXCEPTION 'stepsync.tg_trees__sync must be an AFTER INSERT or UPDATE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF NEW.status = 'published' AND NEW.is_active THEN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.status = 'published' AND OLD.is_active AND OLD.tree_type = NEW.tree_type
               AND OLD.is_public = NEW.is_public AND OLD.account_id IS NOT DISTINCT FROM NEW.account_id THEN
                v_previous := OLD.tree_structure;
            END IF;
        END IF;
        PERFORM stepsync._sync(NEW.id, NEW.tree_type, NEW.tree_structure, NEW.is_public, NEW.account_id,
                               NEW.author_id, v_previous);
    ELSIF TG_OP = 'UPDATE' THEN
        IF (OLD.is_active AND NOT NEW.is_active) OR (NEW.status = 'archived' AND OLD.status <> 'archived') THEN
            PERFORM stepsync._retire(NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_trees__sync() IS
    'Trigger function: syncs a listed flow into step_library (incrementally after a structure edit), or retires its entries when it was deactivated or archived (docs/contract.md §5).';

REVOKE ALL ON FUNCTION stepsync.tg_trees__sync() FROM PUBLIC;
