-- stepsync.sync_tree(p_tree_id): repairs one flow's library entries (docs/contract.md §6.6);
-- calls stepsync._sync or stepsync._retire. Used by `stepsync resync` and DBAs.
-- The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.sync_tree(p_tree_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.sync_tree(p_tree_id): bring one flow's library entries to the state
-- docs/contract.md §5 gives for its current row (§6.6), for repair and backfill: a listed
-- flow is synced (§5.1, §5.2), a deactivated or archived one has its entries
-- retired (§5.3), a draft keeps the library as it is (§5.4). Returns how many
-- library rows it wrote or retired (0 when everything was already in step).
--
-- It always syncs in full (every node shaped and compared with its entry,
-- never from a previous structure), so it also repairs a library that was
-- changed behind the triggers' back. Locks the flow row (FOR NO KEY UPDATE)
-- so that it serialises with a concurrent publish of the same flow. Unknown
-- flow: P0002.
-- SECURITY DEFINER like the sync trigger, whose work it repeats; EXECUTE is
-- not granted to PUBLIC: it is a tool for the owner and DBAs.
-- It reads as the sync: stepsync.sync_writing = 'on' while it runs (restored afterwards), so that the
-- stepsync_sync policies let it past the application's row-level security (docs/contract.md §12.1).
DECLARE
    v_tree public.trees;
    v_written integer := 0;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);   -- reads as the sync (docs/contract.md §12.1)
    SELECT * INTO v_tree FROM public.trees AS t WHERE t.id = p_tree_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no flow with id %', p_tree_id
            USING ERRCODE = 'no_data_found', HINT = 'Check the id against public.trees.';
    END IF;
    IF v_tree.status = 'published' AND v_tree.is_active THEN
        v_written := stepsync._sync(v_tree.id, v_tree.tree_type, v_tree.tree_structure, v_tree.is_public,
                                    v_tree.account_id, v_tree.author_id);
    ELSIF NOT v_tree.is_active OR v_tree.status = 'archived' THEN
        v_written := stepsync._retire(v_tree.id);
    END IF;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_written;
END;
$function$;

COMMENT ON FUNCTION stepsync.sync_tree(uuid) IS
    'Brings one flow''s step_library entries to the state its current row calls for (docs/contract.md §6.6); returns rows written or retired. P0002 for an unknown flow.';

REVOKE ALL ON FUNCTION stepsync.sync_tree(uuid) FROM PUBLIC;
