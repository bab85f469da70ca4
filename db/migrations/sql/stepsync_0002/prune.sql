-- Last step of the install's first transaction: drop every function of schema stepsync that this
-- transaction did not (re)create. A database that an earlier stepsync installed may hold
-- functions whose signature has changed since (the old one would linger beside the new one, and
-- `stepsync doctor` would report it); CREATE OR REPLACE rewrites the catalog row of every function
-- the install defines, so what still has an older row version is what the install no longer has.
DO $stepsync$
DECLARE
    v_function text;
BEGIN
    FOR v_function IN
        SELECT p.oid::pg_catalog.regprocedure::text
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace
           AND p.xmin::text::bigint <> pg_catalog.pg_current_xact_id()::text::bigint % 4294967296
         ORDER BY 1
    LOOP
        RAISE NOTICE 'stepsync: dropping %, which this version of stepsync no longer has', v_function;
        EXECUTE 'DROP FUNCTION ' || v_function;
    END LOOP;
END;
$stepsync$;
