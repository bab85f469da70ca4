-- Schema stepsync, owned by the owner of the application's tables (the sync runs as that role).
-- Created by the installing role (which needs CREATE on the database) with AUTHORIZATION, so the
-- owner needs no database privilege of its own. Kept when it is already stepsync's.
-- stepsync's version table, public.stepsync_version, which alembic created as the installing role,
-- is given to the owner too: otherwise the owner (or another deploy role) could not upgrade or
-- uninstall what a superuser or a deploy role installed. Only when the installing role keeps the
-- owner's rights (it must still write the version row), and only that table: an application that
-- carries stepsync in its own alembic keeps its own version table as it is.
DO $stepsync$
DECLARE
    v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                      WHERE c.oid = 'public.step_library'::pg_catalog.regclass);
    v_owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c
                         WHERE c.oid = 'public.step_library'::pg_catalog.regclass);
    v_version_owner oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c
                             WHERE c.oid = pg_catalog.to_regclass('public.stepsync_version'));
BEGIN
    IF pg_catalog.to_regnamespace('stepsync') IS NULL THEN
        EXECUTE pg_catalog.format('CREATE SCHEMA stepsync AUTHORIZATION %I', v_owner);
        REVOKE ALL ON SCHEMA stepsync FROM PUBLIC;
    END IF;
    IF v_version_owner IS NOT NULL AND v_version_owner <> v_owner_oid
       AND pg_catalog.pg_has_role(current_user, v_version_owner, 'USAGE')
       AND pg_catalog.pg_has_role(current_user, v_owner_oid, 'USAGE') THEN
        EXECUTE pg_catalog.format('ALTER TABLE public.stepsync_version OWNER TO %I', v_owner);
    END IF;
    COMMENT ON SCHEMA stepsync IS
        'stepsync: the functions, triggers and views that keep public.step_library in sync with published flows.';
END;
$stepsync$;
