-- stepsync.tg_trees__retire_on_delete(): BEFORE DELETE row trigger function on
-- public.trees (docs/contract.md §5.5), fired by t20_retire_on_delete; calls stepsync._retire.
-- The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.tg_trees__retire_on_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.tg_trees__retire_on_delete(): BEFORE DELETE row trigger function on
-- public.trees (docs/contract.md §5.5). It retires the flow's entries before the row goes,
-- so that when the foreign key then sets their source_tree_id to null they are
-- already inactive (step_library_synced_active_check holds them to that).
-- SECURITY DEFINER for the same reason as stepsync.tg_trees__sync.
-- It reads as the sync: stepsync.sync_writing = 'on' while it runs (restored afterwards), so that the
-- stepsync_sync policies let it past the application's row-level security (docs/contract.md §12.1).
DECLARE
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP <> 'DELETE' THEN
        RAISE EXCEPTION 'stepsync.tg_trees__retire_on_delete must be a BEFORE DELETE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    -- The foreign key will then set source_tree_id to null on every entry of the flow, retired
    -- ones too: a key update, which takes FOR UPDATE locks in whatever order it finds the rows.
    -- Take them all now, in node-id order, so that it never deadlocks with a client.
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);   -- reads as the sync (docs/contract.md §12.1)
    PERFORM 1
       FROM public.step_library AS s
      WHERE s.source_tree_id = OLD.id
      ORDER BY s.source_node_id
        FOR UPDATE;
    PERFORM stepsync._retire(OLD.id);
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN OLD;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_trees__retire_on_delete() IS
    'Trigger function: retires a deleted flow''s entries before the foreign key nulls their source_tree_id (docs/contract.md §5.5).';

REVOKE ALL ON FUNCTION stepsync.tg_trees__retire_on_delete() FROM PUBLIC;
