-- stepsync's row-level security goes (docs/contract.md §12; the downgrade of stepsync_0005, run by
-- `stepsync uninstall`): every stepsync_* policy on the four tables, and row-level security on
-- public.step_library if stepsync turned it on. The application's own policies and flags stay.
DO $do$
DECLARE
    v_policy record;
BEGIN
    FOR v_policy IN
        SELECT p.polname, p.polrelid::pg_catalog.regclass AS tbl
          FROM pg_catalog.pg_policy AS p
         WHERE p.polname LIKE 'stepsync\_%'
           AND p.polrelid IN ('public.trees'::pg_catalog.regclass, 'public.step_library'::pg_catalog.regclass,
                              pg_catalog.to_regclass('public.users'), pg_catalog.to_regclass('public.accounts'))
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', v_policy.polname, v_policy.tbl);
    END LOOP;
    IF pg_catalog.to_regclass('stepsync.row_security') IS NOT NULL
       AND (SELECT r.enabled_rls FROM stepsync.row_security AS r) THEN
        ALTER TABLE public.step_library DISABLE ROW LEVEL SECURITY;
    END IF;
END;
$do$;
