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
-- stepsync_viewer_update's WITH CHECK, with the new row; true for a row it cannot find (a new key:
-- the other policies decide).
--
-- SECURITY DEFINER, so that it reads the stored row whatever the caller may read, and a policy may
-- read the table it guards without recursing; it tells the caller nothing but yes or no about a
-- row the caller is updating. It reads as the sync (stepsync.sync_writing = 'on', restored), so the
-- stepsync_sync policies let it past the application's row-level security (§12.1).
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
     WHERE o.id = p_new.id;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN COALESCE(v_allowed, NOT FOUND);
END;
$function$;

COMMENT ON FUNCTION stepsync._may_change(public.step_library) IS
    'Internal: under stepsync''s row-level security, whether an update of a step changes only its counters, or is by the step''s creator (docs/contract.md §12.2).';
