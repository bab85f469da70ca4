-- stepsync._retire(p_tree_id): retire every active synced entry of a flow
-- (SPEC §5.3 deactivate or archive, §5.5 delete). Retired entries keep all
-- their values (usage, ratings, content) and come back when the flow is
-- listed again. Hand-made rows and forks are never touched. Returns how many
-- entries it retired. Called by the sync trigger, the delete trigger and
-- stepsync.sync_tree.
CREATE OR REPLACE FUNCTION stepsync._retire(p_tree_id uuid)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $function$
    WITH retired AS (
        UPDATE public.step_library AS s
           SET is_active = false
         WHERE s.source_tree_id = p_tree_id
           AND s.is_flow_synced
           AND s.is_active
        RETURNING 1
    )
    SELECT pg_catalog.count(*)::integer FROM retired
$function$;

COMMENT ON FUNCTION stepsync._retire(uuid) IS
    'Internal: retires (is_active = false) every active synced entry of a flow (SPEC §5.3, §5.5). Returns rows retired.';

REVOKE ALL ON FUNCTION stepsync._retire(uuid) FROM PUBLIC;
