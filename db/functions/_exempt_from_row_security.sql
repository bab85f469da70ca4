-- stepsync._exempt_from_row_security: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._exempt_from_row_security(p_role name)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._exempt_from_row_security(role): whether stepsync's row-level security (docs/contract.md
-- §12.2) leaves ROLE out: a superuser or BYPASSRLS role (no policy binds them at all), or a role with
-- the rights of the owner of public.step_library (it, or a member of it). The rule holds for every
-- other role; its policies let the owner through even when the application forces row-level
-- security on the table, so that the sync (which runs as the owner) and the application's own
-- server keep seeing the whole library. Written once: the policies ask it of current_user (as an
-- initplan, once a statement), stepsync._search_ranked of the role that called search_steps.
SELECT a.rolsuper OR a.rolbypassrls
       OR pg_catalog.pg_has_role(p_role, (SELECT c.relowner FROM pg_catalog.pg_class AS c
                                           WHERE c.oid OPERATOR(pg_catalog.=) 'public.step_library'::pg_catalog.regclass),
                                 'USAGE')
  FROM pg_catalog.pg_roles AS a
 WHERE a.rolname OPERATOR(pg_catalog.=) p_role
$function$;

COMMENT ON FUNCTION stepsync._exempt_from_row_security(name) IS
    'Whether stepsync''s row-level security leaves a role out: a superuser, a BYPASSRLS role, or one with the rights of step_library''s owner (docs/contract.md §12.2).';
