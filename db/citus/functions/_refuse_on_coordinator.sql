-- stepsync._refuse_on_coordinator(): on Citus, the sync's writes happen on the worker that holds the
-- flow (docs/contract.md §11.3); called first by stepsync._sync and stepsync._retire. The explanation
-- is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync._refuse_on_coordinator()
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- Refuses (0A000) to run the sync on the Citus coordinator. The read-only guards on a shard trust the
-- sync's marker only in the backend that writes the shard, and the coordinator's marker never reaches a
-- worker (citus.propagate_set_commands), so the sync must run where the flow's shard is: in the
-- triggers on public.trees (they fire there), or in stepsync_citus.sync_tree, the tables' owner's
-- delegated function, called as a statement of its own (Citus sends it to that worker);
-- `stepsync resync` does that. stepsync.sync_tree, called on the coordinator, would run here: this
-- says so in one line instead of a planner error.
BEGIN
    IF pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'stepsync: on Citus the sync runs on the worker that holds the flow, not on the coordinator'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Run `stepsync resync TREE_ID`, or, as the tables'' owner, SELECT stepsync_citus.sync_tree(''...'')'
                         ' as a statement of its own: Citus runs it on that worker.';
    END IF;
END;
$function$;

COMMENT ON FUNCTION stepsync._refuse_on_coordinator() IS
    'Internal (Citus): refuses, 0A000, to run the sync on the coordinator; it runs on the worker that holds the flow (docs/contract.md §11.3).';

REVOKE ALL ON FUNCTION stepsync._refuse_on_coordinator() FROM PUBLIC;
