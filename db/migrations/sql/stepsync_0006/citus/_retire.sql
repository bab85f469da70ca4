-- stepsync._retire(p_tree_id) on Citus: retires every active synced entry of a flow
-- (docs/contract.md §5.3, §5.5, §11.3); the distributed variant of db/functions/_retire.sql.
-- The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync._retire(p_tree_id uuid)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._retire(p_tree_id) on Citus: retire every active synced entry of a flow (docs/contract.md
-- §5.3 deactivate or archive, §5.5 delete), keeping all their values, as on one node. Both statements
-- read step_library through tree_key = p_tree_id only, so they run on the flow's shard, where the
-- trigger that calls this fires: Citus takes row locks only in a query on one shard. The entries are
-- locked first in source_node_id order, like stepsync._sync does. Returns how many it retired.
DECLARE
    v_retired integer;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM stepsync._refuse_on_coordinator();
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    PERFORM 1
       FROM public.step_library AS s
      WHERE s.tree_key = p_tree_id AND s.source_tree_id = p_tree_id AND s.is_flow_synced AND s.is_active
      ORDER BY s.source_node_id
        FOR NO KEY UPDATE;
    UPDATE public.step_library AS s
       SET is_active = false
     WHERE s.tree_key = p_tree_id
       AND s.source_tree_id = p_tree_id
       AND s.is_flow_synced
       AND s.is_active;
    GET DIAGNOSTICS v_retired = ROW_COUNT;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_retired;
END;
$function$;

COMMENT ON FUNCTION stepsync._retire(uuid) IS
    'Internal: retires (is_active = false) every active synced entry of a flow, on the flow''s shard (docs/contract.md §5.3, §5.5, §11.3). Returns rows retired.';

REVOKE ALL ON FUNCTION stepsync._retire(uuid) FROM PUBLIC;
