-- Schema stepsync, owned by the owner of the application's tables (the sync runs as that role).
-- Created by the installing role (which needs CREATE on the database) with AUTHORIZATION, so the
-- owner needs no database privilege of its own. Kept when it is already stepsync's.
DO $stepsync$
DECLARE
    v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                      WHERE c.oid = 'public.step_library'::pg_catalog.regclass);
BEGIN
    IF pg_catalog.to_regnamespace('stepsync') IS NULL THEN
        EXECUTE pg_catalog.format('CREATE SCHEMA stepsync AUTHORIZATION %I', v_owner);
        REVOKE ALL ON SCHEMA stepsync FROM PUBLIC;
    END IF;
    COMMENT ON SCHEMA stepsync IS
        'stepsync: the functions, triggers and views that keep public.step_library in sync with published flows.';
END;
$stepsync$;
