-- stepsync.visible_steps on Citus: the distributed variant of db/functions/visible_steps.sql
-- (docs/contract.md §6.3, §11.3), in PL/pgSQL.
-- stepsync.visible_steps: the explanation is the comment at the top of its body (\sf stepsync.visible_steps shows it).
CREATE OR REPLACE FUNCTION stepsync.visible_steps(p_user_id uuid)
RETURNS SETOF public.step_library_entries
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.visible_steps(p_user_id): the active library entries a user may
-- see (docs/contract.md §6.3): public ones, team ones of the user's (non-null) account,
-- and every one the user created. Rows of public.step_library_entries.
-- The rule is stepsync._may_see, inlined here (and in fork_step and
-- search_steps alike). It takes the application's word for who the user is,
-- and runs with the caller's rights (SELECT on step_library, on the view, on
-- users (id, account_id) and on trees (id, name) for source_tree_name). An
-- unknown user sees the public entries only.
-- On Citus (docs/contract.md §11.3) this is PL/pgSQL, not SQL: Citus cannot plan a distributed query
-- that uses an SQL function's parameters. The same rows, from the same view, by the same rule.
DECLARE
    v_account uuid := (SELECT u.account_id FROM public.users AS u WHERE u.id = p_user_id);
BEGIN
    RETURN QUERY
    SELECT e.*
      FROM public.step_library_entries AS e
     WHERE e.is_active
       AND stepsync._may_see(e.visibility, e.account_id, e.created_by, p_user_id, v_account);
END;
$function$;

COMMENT ON FUNCTION stepsync.visible_steps(uuid) IS
    'The active step_library_entries a user may see: public ones, team ones of the user''s account, and their own (docs/contract.md §6.3).';
