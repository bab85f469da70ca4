-- stepsync._retire(p_tree_id): retire every active synced entry of a flow
-- (SPEC §5.3 deactivate or archive, §5.5 delete). Retired entries keep all
-- their values (usage, ratings, content) and come back when the flow is
-- listed again. Hand-made rows and forks are never touched. Returns how many
-- entries it retired. Marks the sync as writing like stepsync._sync does, and
-- like it locks the entries in source_node_id order before writing any.
-- Called by the sync trigger, the delete trigger and stepsync.sync_tree.
CREATE OR REPLACE FUNCTION stepsync._retire(p_tree_id uuid)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_retired integer;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    -- Lock first, in node-id order, like stepsync._sync: a client incrementing
    -- several entries in that order then waits instead of deadlocking.
    PERFORM 1
       FROM public.step_library AS s
      WHERE s.source_tree_id = p_tree_id AND s.is_flow_synced AND s.is_active
      ORDER BY s.source_node_id
        FOR NO KEY UPDATE;
    UPDATE public.step_library AS s
       SET is_active = false
     WHERE s.source_tree_id = p_tree_id
       AND s.is_flow_synced
       AND s.is_active;
    GET DIAGNOSTICS v_retired = ROW_COUNT;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_retired;
END;
$function$;

COMMENT ON FUNCTION stepsync._retire(uuid) IS
    'Internal: retires (is_active = false) every active synced entry of a flow (SPEC §5.3, §5.5). Returns rows retired.';

REVOKE ALL ON FUNCTION stepsync._retire(uuid) FROM PUBLIC;
