-- stepsync._stepsync_policies: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._stepsync_policies()
RETURNS SETOF jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._stepsync_policies(): stepsync's policies (named stepsync_*) on the four tables as the
-- catalog holds them, one JSON object each: table, policy, command, permissive, roles, using, check.
-- stepsync.restore_policies records them in stepsync.row_security after making them;
-- stepsync.check_row_security compares the record with what this returns now; the uninstall drops
-- what it lists (db/install/policies_drop.sql).
SELECT pg_catalog.jsonb_build_object(
           'table', p.polrelid::pg_catalog.regclass::text, 'policy', p.polname, 'command', p.polcmd,
           'permissive', p.polpermissive, 'roles', p.polroles::text,
           'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
           'check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pg_catalog.pg_policy AS p
 WHERE p.polname LIKE 'stepsync\_%'
   AND p.polrelid IN ('public.trees'::pg_catalog.regclass, 'public.step_library'::pg_catalog.regclass,
                      pg_catalog.to_regclass('public.users'), pg_catalog.to_regclass('public.accounts'))
 ORDER BY p.polrelid::pg_catalog.regclass::text, p.polname
$function$;

COMMENT ON FUNCTION stepsync._stepsync_policies() IS
    'Internal: stepsync''s policies on the four tables as the catalog holds them, one JSON object each (docs/contract.md §12).';
