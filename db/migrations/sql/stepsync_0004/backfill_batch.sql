-- stepsync.backfill_batch(p_after, p_limit, p_through): one batch of the backfill (docs/contract.md
-- §5.6, §9.4). Called by the install (backfill.gexec.sql: one call per range of flow ids, each in its
-- own transaction), `stepsync install` and `stepsync resync --all` (batch after batch, keyset).
CREATE OR REPLACE FUNCTION stepsync.backfill_batch(p_after uuid, p_limit integer DEFAULT 200,
                                                   p_through uuid DEFAULT NULL)
RETURNS TABLE (last_tree_id uuid, flows integer, written integer, skipped integer)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- Brings the next p_limit flows (null: all) after p_after (in id order; null: from the start) and
-- up to p_through (null: to the end) that need it to
-- what their rows call for, with stepsync.sync_tree: listed flows are synced, deactivated or
-- archived flows that still have active entries are retired. Drafts are left alone (the library
-- keeps their last published content).
--
-- Each flow is locked as a publish locks it (sync_tree takes its row FOR NO KEY UPDATE), so a
-- publish racing with the backfill waits for this batch or is waited for, and is never lost; the
-- unique key (source_tree_id, source_node_id) means nothing is ever synced twice. A flow whose
-- structure fails the publish checks is skipped with a WARNING naming it (its own
-- subtransaction: nothing of the others is lost).
--
-- Returns the last flow id it looked at (pass it as p_after for the next batch; null when there
-- was nothing left), how many flows it looked at, library rows written or retired, and flows
-- skipped, and says the same in a NOTICE. One batch is one short transaction of the caller:
-- commit between batches.
DECLARE
    v_tree record;
    v_message text;
    v_detail text;
BEGIN
    flows := 0;
    written := 0;
    skipped := 0;
    FOR v_tree IN
        SELECT t.id, t.name
          FROM public.trees AS t
         WHERE t.id > COALESCE(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
           AND (p_through IS NULL OR t.id <= p_through)
           AND ((t.status = 'published' AND t.is_active)
                OR ((NOT t.is_active OR t.status = 'archived')
                    AND EXISTS (SELECT FROM public.step_library AS s
                                 WHERE s.source_tree_id = t.id AND s.is_flow_synced AND s.is_active)))
         ORDER BY t.id
         LIMIT p_limit
    LOOP
        BEGIN
            written := written + stepsync.sync_tree(v_tree.id);
        EXCEPTION WHEN check_violation THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
            skipped := skipped + 1;
            RAISE WARNING 'stepsync backfill skipped flow % (%): %', v_tree.id, v_tree.name, v_message
                USING DETAIL = v_detail;
        END;
        flows := flows + 1;
        last_tree_id := v_tree.id;
    END LOOP;
    IF flows > 0 THEN
        RAISE NOTICE 'stepsync backfill: % flows brought in step (% library rows written or retired), % skipped',
            flows - skipped, written, skipped;
    END IF;
    RETURN NEXT;
END;
$function$;

COMMENT ON FUNCTION stepsync.backfill_batch(uuid, integer, uuid) IS
    'Syncs or retires the next p_limit flows after p_after (up to p_through) that need it: one backfill batch. Returns the last id, flows, rows written, flows skipped.';

REVOKE ALL ON FUNCTION stepsync.backfill_batch(uuid, integer, uuid) FROM PUBLIC;
