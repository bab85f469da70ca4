-- stepsync.current_viewer_account: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.current_viewer_account()
RETURNS uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.current_viewer_account(): the account of the user the current request acts for
-- (stepsync.current_viewer), whose team steps that user may see (docs/contract.md §6.3); null for
-- no user, an unknown one, or one without an account.
--
-- SECURITY DEFINER, so that a client needs no grant on public.users and the application's policies
-- on it do not hide the user's own row; it takes no argument, so it tells a caller its own account
-- only, never another user's.
-- It reads as the sync: stepsync.sync_writing = 'on' while it runs (restored afterwards), so that the
-- stepsync_sync policies let it past the application's row-level security (docs/contract.md §12.1).
DECLARE
    v_viewer uuid := stepsync.current_viewer();
    v_account uuid;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);   -- reads as the sync (docs/contract.md §12.1)
    v_account := (SELECT u.account_id FROM public.users AS u WHERE u.id = v_viewer);
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_account;
END;
$function$;

COMMENT ON FUNCTION stepsync.current_viewer_account() IS
    'The account of the user the current request acts for (stepsync.current_viewer), or null (docs/contract.md §12.2).';
