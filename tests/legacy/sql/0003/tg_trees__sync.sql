-- stepsync.tg_trees__sync(): AFTER INSERT / UPDATE row trigger function on
-- public.trees that keeps the library in step with the flow (SPEC §5).
--
-- The triggers' WHEN clauses already decided that this write matters (§5.8: a
-- rename or a re-save of the same structure never gets here). A listed flow
-- (published and active) is synced; any other flow that got here was
-- deactivated or archived and has its entries retired (§5.3). A draft keeps
-- the library as it was (§5.4): no WHEN clause lets it through.
--
-- SECURITY DEFINER: clients that may only write trees must still get a synced
-- library, so the sync runs with the rights of the role that installed it
-- (the migration role); search_path is pinned and every name is qualified.
CREATE OR REPLACE FUNCTION stepsync.tg_trees__sync()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'ROW' OR TG_OP NOT IN ('INSERT', 'UPDATE') THEN
        RAISE EXCEPTION 'stepsync.tg_trees__sync must be an AFTER INSERT or UPDATE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF NEW.status = 'published' AND NEW.is_active THEN
        PERFORM stepsync._sync(NEW.id, NEW.tree_type, NEW.tree_structure, NEW.is_public, NEW.account_id, NEW.author_id);
    ELSE
        PERFORM stepsync._retire(NEW.id);
    END IF;
    RETURN NULL;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_trees__sync() IS
    'Trigger function: syncs a listed flow into step_library, or retires its entries when it was deactivated or archived (SPEC §5).';

REVOKE ALL ON FUNCTION stepsync.tg_trees__sync() FROM PUBLIC;
