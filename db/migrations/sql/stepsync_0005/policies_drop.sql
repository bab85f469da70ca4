-- stepsync's row-level security goes (docs/contract.md §12; the downgrade of stepsync_0005, run by
-- `stepsync uninstall`): every stepsync_* policy on the four tables, and row-level security on
-- public.step_library if stepsync turned it on. The application's own policies and flags stay.
DO $do$
DECLARE
    v_policy record;
BEGIN
    FOR v_policy IN
        SELECT d.def ->> 'policy' AS polname, d.def ->> 'table' AS tbl FROM stepsync._stepsync_policies() AS d (def)
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', v_policy.polname, v_policy.tbl::pg_catalog.regclass);
    END LOOP;
    IF pg_catalog.to_regclass('stepsync.row_security') IS NOT NULL
       AND (SELECT r.enabled_rls FROM stepsync.row_security AS r) THEN
        ALTER TABLE public.step_library DISABLE ROW LEVEL SECURITY;
    END IF;
END;
$do$;
