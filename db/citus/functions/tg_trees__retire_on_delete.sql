-- stepsync.tg_trees__retire_on_delete() on Citus: BEFORE DELETE row trigger function on public.trees
-- (docs/contract.md §5.5, §11.2), fired by t20_retire_on_delete on the flow's shard; the distributed
-- variant of db/functions/tg_trees__retire_on_delete.sql. The explanation is in the body, so that
-- \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.tg_trees__retire_on_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.tg_trees__retire_on_delete() on Citus: BEFORE DELETE row trigger function on public.trees
-- (docs/contract.md §5.5). On one node a foreign key ON DELETE SET NULL nulls the deleted flow's
-- entries' source_tree_id; Citus refuses that key (the distribution column is in it), so this trigger
-- does its work: it retires the flow's active entries (stepsync._retire), then sets source_tree_id to
-- null on every entry of the flow, retired ones too. Their tree_key stays the flow's id: an entry never
-- moves between shards. Each statement reads step_library through tree_key = OLD.id only, so all of it
-- runs on the flow's shard; the entries are locked first, in node-id order, like the sync does.
-- SECURITY DEFINER, and marked as the sync while it writes (restored afterwards), like
-- stepsync.tg_trees__sync.
DECLARE
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP <> 'DELETE' THEN
        RAISE EXCEPTION 'stepsync.tg_trees__retire_on_delete must be a BEFORE DELETE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    PERFORM 1
       FROM public.step_library AS s
      WHERE s.tree_key = OLD.id AND s.source_tree_id = OLD.id
      ORDER BY s.source_node_id
        FOR NO KEY UPDATE;
    PERFORM stepsync._retire(OLD.id);
    UPDATE public.step_library AS s
       SET source_tree_id = NULL
     WHERE s.tree_key = OLD.id AND s.source_tree_id = OLD.id;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN OLD;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_trees__retire_on_delete() IS
    'Trigger function: retires a deleted flow''s entries and sets their source_tree_id to null, on the flow''s shard (the work of the ON DELETE SET NULL key Citus refuses; docs/contract.md §5.5, §11.2).';

REVOKE ALL ON FUNCTION stepsync.tg_trees__retire_on_delete() FROM PUBLIC;
