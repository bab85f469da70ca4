-- stepsync._retire_orphans(): retire active synced entries that have no flow any more.
-- Called once by the install, before it validates step_library_synced_active_check.
CREATE OR REPLACE FUNCTION stepsync._retire_orphans()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- An application that synced the library itself (before adopting stepsync) may have left
-- synced rows active after deleting their flow: the foreign key set source_tree_id to null
-- and nothing retired them. stepsync keeps active synced rows tied to a flow
-- (step_library_synced_active_check), so the install retires these first, keeping
-- everything else of them (ids, usage counts, ratings). Returns how many it retired.
-- Runs as the tables' owner (the install acts as that role); writes under the
-- stepsync.sync_writing marker like stepsync._retire.
DECLARE
    v_retired integer;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    UPDATE public.step_library AS s
       SET is_active = false
     WHERE s.is_flow_synced AND s.is_active AND s.source_tree_id IS NULL;
    GET DIAGNOSTICS v_retired = ROW_COUNT;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_retired;
END;
$function$;

COMMENT ON FUNCTION stepsync._retire_orphans() IS
    'Internal (install): retires active synced entries whose flow is gone; returns how many.';

REVOKE ALL ON FUNCTION stepsync._retire_orphans() FROM PUBLIC;
