-- stepsync.fork_step(p_step_id, p_user_id): a personal, editable copy of a
-- library step (SPEC §6.4). The copy is hand-made (is_flow_synced = false, no
-- source), private, owned by the user and their account, remembers its
-- original in forked_from_id, and starts with no usage and no rating.
-- A step that does not exist, is retired or is not visible to the user, or a
-- user that does not exist, is P0002 with one message for all, so that the
-- error reveals nothing about steps the user may not see.
-- Takes the application's word for who the user is; runs with the caller's
-- rights (inserting the copy takes INSERT on step_library).
CREATE OR REPLACE FUNCTION stepsync.fork_step(p_step_id uuid, p_user_id uuid)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_fork uuid;
BEGIN
    INSERT INTO public.step_library AS s
           (title, step_type, content, visibility, created_by, account_id, forked_from_id,
            usage_count, rating, rating_count, is_flow_synced)
    SELECT v.title, v.step_type, v.content, 'private', u.id, u.account_id, v.id, 0, NULL, 0, false
      FROM public.users AS u
      JOIN stepsync.visible_steps(p_user_id) AS v ON v.id = p_step_id
     WHERE u.id = p_user_id
    RETURNING s.id INTO v_fork;
    IF v_fork IS NULL THEN
        RAISE EXCEPTION 'step % cannot be forked by user %', p_step_id, p_user_id
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'The step does not exist, is retired or is not visible to the user, or the user does not exist.',
                  HINT = 'List what the user may fork with stepsync.visible_steps(user_id).';
    END IF;
    RETURN v_fork;
END;
$function$;

COMMENT ON FUNCTION stepsync.fork_step(uuid, uuid) IS
    'Creates a private, editable copy of a visible step for a user and returns its id; P0002 when the step or user is not there or not visible (SPEC §6.4).';
