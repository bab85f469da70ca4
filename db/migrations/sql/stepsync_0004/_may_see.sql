-- stepsync._may_see: the explanation is the comment at the top of its body (\sf stepsync._may_see shows it).
CREATE OR REPLACE FUNCTION stepsync._may_see(
    p_visibility text,
    p_account_id uuid,
    p_created_by uuid,
    p_user_id uuid,
    p_user_account_id uuid
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $function$
-- stepsync._may_see(visibility, account_id, created_by, user_id, user's account_id): who may see a
-- library step (docs/contract.md §6.3), written once: a public step; a team step of the user's
-- (non-null) account; any step the user created. Null (not false) when it cannot be told, which a
-- WHERE clause reads as "no". Whether the step is active is the caller's to check.
-- Used by stepsync.visible_steps, stepsync.fork_step and stepsync.search_steps.
--
-- One expression with no table and no SET clause, so that PostgreSQL inlines it into the calling
-- query (EXPLAIN shows the expression, never a call): it costs nothing per row, and an index on the
-- columns stays usable. That is also why it has no pinned search_path, unlike every other function
-- of stepsync; instead it names nothing that a search_path could resolve: its operators are written
-- OPERATOR(pg_catalog.=), so a caller's own `=` earlier on its search_path is never picked up.
SELECT p_visibility OPERATOR(pg_catalog.=) 'public'
       OR p_created_by OPERATOR(pg_catalog.=) p_user_id
       OR (p_visibility OPERATOR(pg_catalog.=) 'team' AND p_account_id OPERATOR(pg_catalog.=) p_user_account_id)
$function$;

COMMENT ON FUNCTION stepsync._may_see(text, uuid, uuid, uuid, uuid) IS
    'Whether a user (and their account) may see a step of this visibility, account and creator (docs/contract.md §6.3); inlined into its callers.';
