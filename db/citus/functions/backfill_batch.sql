-- stepsync.backfill_batch on Citus: the distributed variant of db/functions/backfill_batch.sql
-- (docs/contract.md §5.6, §11.3): the same signature, refusing with what to run instead. The
-- explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.backfill_batch(p_after uuid, p_limit integer DEFAULT 200,
                                                   p_through uuid DEFAULT NULL)
RETURNS TABLE (last_tree_id uuid, flows integer, written integer, skipped integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- On one node a backfill batch syncs many flows from one function call. On Citus the sync of a flow
-- runs on the worker that holds it (stepsync._refuse_on_coordinator says why), and Citus sends a call
-- there only when it is a statement of its own: a function on the coordinator cannot. So on Citus the
-- backfill is driven from outside, one `SELECT stepsync_citus.sync_tree(id)` a flow, with the record of
-- stepsync.backfill_progress moved on each batch: `stepsync install` and `stepsync resync --all` do it
-- (tools/stepsync/citus.py, resync.py). This function only says so (0A000).
BEGIN
    RAISE EXCEPTION 'stepsync: on Citus the backfill runs flow by flow on the workers, not in one call'
        USING ERRCODE = 'feature_not_supported',
              HINT = 'Run `stepsync install` (it resumes an unfinished backfill) or `stepsync resync --all`,'
                     ' or, as the tables'' owner, SELECT stepsync_citus.sync_tree(id) for each flow, one statement each.';
END;
$function$;

COMMENT ON FUNCTION stepsync.backfill_batch(uuid, integer, uuid) IS
    'On Citus: refuses (0A000); the backfill runs flow by flow through stepsync_citus.sync_tree (stepsync install, stepsync resync --all; docs/contract.md §11.3).';

REVOKE ALL ON FUNCTION stepsync.backfill_batch(uuid, integer, uuid) FROM PUBLIC;
