-- stepsync._may_change: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._may_change(p_new public.step_library)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._may_change(new row): under stepsync's row-level security (docs/contract.md §12.2), what
-- an UPDATE by a user may change in a step it sees: anything in a step the user created; in anyone
-- else's step only usage_count, rating and rating_count (counting and rating). Compared with the row
-- as it is stored, every column but those three, updated_at and search_vector (which stepsync's
-- triggers write), the application's own columns included. Called by the policy
-- stepsync_viewer_update's WITH CHECK, with the new row. False when no row with the new row's id
-- is stored and visible to the user: an UPDATE that changes the id is refused (it would otherwise
-- compare with nothing), and called directly it tells a caller nothing about a row it may not see.
--
-- SECURITY DEFINER, so that it reads the stored row whatever the application's policies let the
-- caller read, and a policy may read the table it guards without recursing. It reads as the sync
-- (stepsync.sync_writing = 'on', restored), so the stepsync_sync policies let it past the
-- application's row-level security (§12.1).
DECLARE
    c_free constant text[] := ARRAY['usage_count', 'rating', 'rating_count', 'updated_at', 'search_vector'];
    v_allowed boolean;
    v_viewer uuid := stepsync.current_viewer();
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    SELECT o.created_by = v_viewer
           OR (pg_catalog.to_jsonb(o) OPERATOR(pg_catalog.-) c_free) = (pg_catalog.to_jsonb(p_new) OPERATOR(pg_catalog.-) c_free)
      INTO v_allowed
      FROM public.step_library AS o
     WHERE o.id = p_new.id
       AND stepsync._may_see(o.visibility, o.account_id, o.created_by, v_viewer, stepsync.current_viewer_account());
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN COALESCE(v_allowed, false);
END;
$function$;

COMMENT ON FUNCTION stepsync._may_change(public.step_library) IS
    'Internal: under stepsync''s row-level security, whether an update of a step changes only its counters, or is by the step''s creator (docs/contract.md §12.2).';
