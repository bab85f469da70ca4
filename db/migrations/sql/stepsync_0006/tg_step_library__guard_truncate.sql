-- stepsync.tg_step_library__guard_truncate: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.tg_step_library__guard_truncate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.tg_step_library__guard_truncate(): BEFORE TRUNCATE statement trigger function on
-- public.step_library (trigger t03_guard_truncate). TRUNCATE fires no row trigger, so the row
-- guards (stepsync.tg_step_library__guard) never see it: without this, a role granted TRUNCATE
-- would empty the library, synced rows and all (docs/contract.md §6.1).
--
-- While the table holds a synced row (active or retired: both are the flows' to keep), TRUNCATE
-- is refused with 42501 for every role but the table's owner (or a member of it, who may act as
-- it), whatever the client's privileges. A TRUNCATE ... CASCADE from another table comes here too.
-- The owner may truncate (it can drop the trigger anyway), and is warned: the synced rows come back
-- with `stepsync resync --all`; `stepsync uninstall --drop-columns` is the way to remove stepsync's
-- rows for good.
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'STATEMENT' OR TG_OP <> 'TRUNCATE' THEN
        RAISE EXCEPTION 'stepsync.tg_step_library__guard_truncate must be a BEFORE TRUNCATE statement trigger,'
                        ' not % % %', TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.step_library AS s WHERE s.is_flow_synced) THEN   -- (1: Citus refuses no column)
        RETURN NULL;   -- hand-made rows and forks only: the client's own business
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user,
                                  (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = TG_RELID),
                                  'USAGE') THEN
        RAISE EXCEPTION 'step_library holds steps synced from flows and cannot be truncated'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('%s does not own public.step_library; synced steps are written by'
                                             ' publishing flows and retired by deactivating them.', current_user),
                  HINT = 'Delete hand-made steps with DELETE. To remove the synced steps, the tables'' owner runs'
                         ' `stepsync uninstall --drop-columns`; to retire a flow''s steps, deactivate the flow.';
    END IF;
    RAISE WARNING 'step_library is being truncated by its owner: the steps synced from flows go too'
        USING HINT = 'Run `stepsync resync --all` afterwards to bring back the steps of the listed flows, or use'
                     ' `stepsync uninstall --drop-columns` to remove stepsync''s rows and columns for good.';
    RETURN NULL;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_step_library__guard_truncate() IS
    'Trigger function: refuses (42501) TRUNCATE of step_library while it holds synced steps, for every role but the owner (docs/contract.md §6.1).';

REVOKE ALL ON FUNCTION stepsync.tg_step_library__guard_truncate() FROM PUBLIC;
