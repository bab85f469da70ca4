-- stepsync.visible_steps(p_user_id): the active library entries a user may
-- see (SPEC §6.3): public ones, team ones of the user's (non-null) account,
-- and every one the user created. Rows of public.step_library_entries.
-- It takes the application's word for who the user is, and runs with the
-- caller's rights (SELECT on step_library and trees). An unknown user sees
-- the public entries only.
CREATE OR REPLACE FUNCTION stepsync.visible_steps(p_user_id uuid)
RETURNS SETOF public.step_library_entries
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT e.*
      FROM public.step_library_entries AS e
     WHERE e.is_active
       AND (e.visibility = 'public'
            OR e.created_by = p_user_id
            OR (e.visibility = 'team'
                AND e.account_id = (SELECT u.account_id FROM public.users AS u WHERE u.id = p_user_id)))
$function$;

COMMENT ON FUNCTION stepsync.visible_steps(uuid) IS
    'The active step_library_entries a user may see: public ones, team ones of the user''s account, and their own (SPEC §6.3).';
