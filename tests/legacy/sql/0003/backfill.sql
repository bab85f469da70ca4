-- Revision 0003, part 3: the backfill (SPEC §5.6). Every flow listed now is
-- synced; a flow whose structure fails §4 is skipped with a WARNING that names
-- it and its problem, and the migration goes on. Each flow is synced in its
-- own subtransaction, so one bad flow loses nothing of the others.
DO $backfill$
DECLARE
    v_tree record;
    v_synced integer := 0;
    v_skipped integer := 0;
    v_message text;
    v_detail text;
    v_hint text;
BEGIN
    FOR v_tree IN
        SELECT t.id, t.name FROM public.trees AS t WHERE t.status = 'published' AND t.is_active ORDER BY t.id
    LOOP
        BEGIN
            PERFORM stepsync.sync_tree(v_tree.id);
            v_synced := v_synced + 1;
        EXCEPTION WHEN check_violation THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
            v_skipped := v_skipped + 1;
            RAISE WARNING 'stepsync backfill skipped flow % (%): %', v_tree.id, v_tree.name, v_message
                USING DETAIL = v_detail, HINT = v_hint;
        END;
    END LOOP;
    RAISE NOTICE 'stepsync backfill: % listed flows synced, % skipped', v_synced, v_skipped;
END;
$backfill$;
