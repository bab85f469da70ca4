-- stepsync._exempt_from_row_security: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._exempt_from_row_security()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._exempt_from_row_security(): whether the current role has the rights of the owner of
-- public.step_library (is it, or a member of it). The library's rule as row-level security
-- (docs/contract.md §12.2) holds for every role but the owner: its policies let the owner through
-- even when the application forces row-level security on the table, so that the sync (which runs as
-- the owner) and the application's own server keep seeing the whole library. Superusers and roles
-- with BYPASSRLS never meet a policy at all.
-- The policies call it as an initplan, once a statement.
SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE')
  FROM pg_catalog.pg_class AS c
 WHERE c.oid OPERATOR(pg_catalog.=) 'public.step_library'::pg_catalog.regclass
$function$;

COMMENT ON FUNCTION stepsync._exempt_from_row_security() IS
    'Whether the current role has the rights of step_library''s owner, whom stepsync''s row-level security leaves out (docs/contract.md §12.2).';
