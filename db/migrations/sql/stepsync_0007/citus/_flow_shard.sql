-- stepsync._flow_shard (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._flow_shard(p_tree_id uuid)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._flow_shard(p_tree_id): the shard of public.step_library that holds tree_key = p_tree_id,
-- as text to put in a statement (public.step_library_<shard id>, Citus's name for it), when its
-- placement is on this node; otherwise it refuses, 0A000 (docs/contract.md §11.3).
--
-- Why: the sync runs on the worker that holds the flow (its trigger fires on the flow's shard of
-- trees; stepsync_citus.sync_tree is delegated there), and the co-located shard of step_library is
-- on the same worker. A statement on the distributed table goes through Citus's planner even there,
-- and an INSERT ... SELECT from an array goes through intermediate results: measured in one UPDATE
-- publishing 100 flows of 10 steps, 5 ms a flow for the upsert alone. On the shard, the same
-- statements are plain PostgreSQL: the shard has the table's columns, keys, indexes, triggers and
-- grants (Citus creates it so), and its rows are the flow's rows.
--
-- A shard is taken only when Citus's metadata places it on this node (pg_dist_placement in this
-- node's group, pg_dist_local_group): a copy left behind by a shard move, waiting to be cleaned
-- up, is never written. Anywhere else the sync could not write either way: its marker
-- (stepsync.sync_writing) is set in this backend only, and the guards on a shard of another node
-- would refuse its rows; so it refuses here, before anything is written, as on the coordinator.
DECLARE
    v_shard bigint := pg_catalog.get_shard_id_for_distribution_column('public.step_library', p_tree_id);
    v_name text := pg_catalog.format('public.%I', 'step_library_' || v_shard);
BEGIN
    IF NOT EXISTS (SELECT 1
                     FROM pg_catalog.pg_dist_placement AS p
                    WHERE p.shardid = v_shard
                      AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g))
       OR pg_catalog.to_regclass(v_name) IS NULL THEN
        RAISE EXCEPTION 'stepsync: on Citus the sync of flow % runs on the worker that holds its shard, not on this node',
            p_tree_id
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Run `stepsync resync TREE_ID`, or, as the tables'' owner, SELECT stepsync_citus.sync_tree(''...'')'
                         ' as a statement of its own: Citus runs it on that worker.';
    END IF;
    RETURN v_name;
END;
$function$;

COMMENT ON FUNCTION stepsync._flow_shard(uuid) IS
    'Internal (Citus): the shard of public.step_library that holds a flow''s tree_key, placed on this node, which the sync reads and writes; refuses (0A000) on any other node (docs/contract.md §11.3).';

REVOKE ALL ON FUNCTION stepsync._flow_shard(uuid) FROM PUBLIC;
