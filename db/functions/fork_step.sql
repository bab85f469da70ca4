-- stepsync.fork_step: the explanation is the comment at the top of its body (\sf stepsync.fork_step shows it).
CREATE OR REPLACE FUNCTION stepsync.fork_step(p_step_id uuid, p_user_id uuid)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.fork_step(p_step_id, p_user_id): a personal, editable copy of a
-- library step (docs/contract.md §6.4). The copy is hand-made (is_flow_synced = false, no
-- source), private, owned by the user and their account, remembers its
-- original in forked_from_id, and starts with no usage and no rating.
-- A step that does not exist, is retired or is not visible to the user, or a
-- user that does not exist, is P0002 with one message for all, so that the
-- error reveals nothing about steps the user may not see.
-- Takes the application's word for who the user is; runs with the caller's
-- rights (reading the step and the user takes SELECT on step_library and
-- users; inserting the copy, INSERT on step_library).
-- It looks at the one row it copies (by its primary key) with the rule of
-- stepsync._may_see, the same rule stepsync.visible_steps applies, rather
-- than list every step the user may see to find it.
DECLARE
    v_fork uuid;
BEGIN
    INSERT INTO public.step_library AS s
           (title, step_type, content, visibility, created_by, account_id, forked_from_id,
            usage_count, rating, rating_count, is_flow_synced)
    SELECT o.title, o.step_type, o.content, 'private', u.id, u.account_id, o.id, 0, NULL, 0, false
      FROM public.users AS u
      JOIN public.step_library AS o ON o.id = p_step_id
     WHERE u.id = p_user_id
       AND o.is_active
       AND stepsync._may_see(o.visibility, o.account_id, o.created_by, u.id, u.account_id)
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
    'Creates a private, editable copy of a visible step for a user and returns its id; P0002 when the step or user is not there or not visible (docs/contract.md §6.4).';
