-- stepsync_citus.sync_tree(p_tree_id): stepsync.sync_tree, sent by Citus to the worker that holds the
-- flow (docs/contract.md §11.3). The sync's statements must run there: there they reach the flow's
-- shard, and the read-only guards see the sync's marker. Citus sends a call of a distributed function
-- (co-located with public.trees, distributed by its flow id) to that worker when it is a statement of
-- its own, `SELECT stepsync_citus.sync_tree('...')`; force_delegation sends it there inside a
-- transaction block too. `stepsync install` (the backfill) and `stepsync resync` call it flow by flow.
--
-- Why a schema of its own, for the tables' owner only: Citus 13.2.2 crashes the coordinator (a
-- segmentation fault, and every session restarts) when any role plans a call of any distributed
-- function in certain forms, `SELECT f(x) FROM (VALUES (...)) AS v (x)` for one, whatever that role's
-- privileges on the function. A role that may not use the schema cannot name the function, so it
-- never reaches the planner: no client can use stepsync's delegated function to crash the coordinator.
-- stepsync.sync_tree itself stays a plain function: called on the coordinator it says, in one line,
-- how to run it (stepsync._refuse_on_coordinator).
DO $stepsync$
DECLARE
    v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                      WHERE c.oid = 'public.step_library'::pg_catalog.regclass);
BEGIN
    IF pg_catalog.to_regnamespace('stepsync_citus') IS NULL THEN
        EXECUTE pg_catalog.format('CREATE SCHEMA stepsync_citus AUTHORIZATION %I', v_owner);
    END IF;
END;
$stepsync$;
REVOKE ALL ON SCHEMA stepsync_citus FROM PUBLIC;
COMMENT ON SCHEMA stepsync_citus IS
    'stepsync (Citus): the function Citus sends to the worker that holds a flow; for the tables'' owner only (docs/contract.md §11.3).';

CREATE OR REPLACE FUNCTION stepsync_citus.sync_tree(p_tree_id uuid)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.sync_tree(p_tree_id), run where Citus sends this call: on the worker that holds the flow
-- (this function is distributed by p_tree_id, co-located with public.trees). Called on the coordinator
-- in any other way it runs there, and the sync refuses (0A000, stepsync._refuse_on_coordinator).
BEGIN
    RETURN stepsync.sync_tree(p_tree_id);
END;
$function$;

COMMENT ON FUNCTION stepsync_citus.sync_tree(uuid) IS
    'Citus: stepsync.sync_tree on the worker that holds the flow, for the tables'' owner; call it as a statement of its own (docs/contract.md §11.3).';

REVOKE ALL ON FUNCTION stepsync_citus.sync_tree(uuid) FROM PUBLIC;

SELECT pg_catalog.create_distributed_function('stepsync_citus.sync_tree(uuid)', 'p_tree_id',
                                              colocate_with := 'public.trees', force_delegation := true);
