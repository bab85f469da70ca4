-- stepsync.backfill_batch(p_after, p_limit, p_through): one batch of the backfill (docs/contract.md
-- §5.6, §9.4). Called by the install (backfill_resume.gexec.sql: one call per range of flow ids,
-- each in its own transaction), `stepsync install` and `stepsync resync --all` (batch after batch,
-- keyset). It also keeps stepsync.backfill_progress, the record of an unfinished backfill.
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
-- unique key (source_tree_id, source_node_id) means nothing is ever synced twice. The batch runs
-- in one subtransaction; when a flow's structure fails the publish checks, that subtransaction is
-- rolled back and the batch is done again one flow a subtransaction, the failing flows skipped with
-- a WARNING naming them (nothing of the others is lost). So a batch adds one subtransaction to
-- the caller's, not one a flow (more than 64 in a transaction make every session's snapshots
-- slower), and all the rows it writes carry one xmin.
--
-- The record of an unfinished backfill (stepsync.backfill_progress, one row while there is one):
-- every flow up to its cursor, after_tree_id, is done. In the same transaction as its work, a
-- batch that starts at or before the cursor (p_after null, or at most after_tree_id) moves the
-- cursor on to where it stopped: the last flow it looked at when it stopped at p_limit, else
-- p_through; when it ran to the end (p_limit and p_through not reached, p_through null) nothing
-- is left and the row goes. It adds the flows beyond the old cursor and their rows to the counts.
-- A batch that starts beyond the cursor (`stepsync resync --all --after X`) leaves the row alone,
-- so that the flows up to the cursor are always all done.
--
-- Returns the last flow id it looked at (pass it as p_after for the next batch; null when there
-- was nothing left), how many flows it looked at, library rows written or retired, and flows
-- skipped, and says the same in a NOTICE. One batch is one short transaction of the caller:
-- commit between batches.
-- It reads as the sync: stepsync.sync_writing = 'on' while it runs (restored afterwards), so that the
-- stepsync_sync policies let it past the application's row-level security (docs/contract.md §12.1).
DECLARE
    v_ids uuid[];
    v_id uuid;
    v_name text;
    v_rows integer;
    v_message text;
    v_detail text;
    v_cursor uuid;          -- the progress row's cursor when the batch started
    v_pending boolean;      -- there is a progress row
    v_new_flows integer := 0;
    v_new_rows integer := 0;
    v_full boolean;         -- the batch stopped at p_limit
    v_through uuid;         -- every flow after p_after up to this id is done by this batch
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);   -- reads as the sync (docs/contract.md §12.1)
    SELECT true, p.after_tree_id INTO v_pending, v_cursor FROM stepsync.backfill_progress AS p;
    v_pending := COALESCE(v_pending, false);
    -- The flows of the batch, in id order; locked one by one by sync_tree.
    SELECT pg_catalog.array_agg(n.id ORDER BY n.id) INTO v_ids
      FROM (SELECT t.id
              FROM public.trees AS t
             WHERE t.id > COALESCE(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
               AND (p_through IS NULL OR t.id <= p_through)
               AND ((t.status = 'published' AND t.is_active)
                    OR ((NOT t.is_active OR t.status = 'archived')
                        AND EXISTS (SELECT FROM public.step_library AS s
                                     WHERE s.source_tree_id = t.id AND s.is_flow_synced AND s.is_active)))
             ORDER BY t.id
             LIMIT p_limit) AS n;
    flows := COALESCE(pg_catalog.cardinality(v_ids), 0);
    written := 0;
    skipped := 0;
    last_tree_id := v_ids[flows];
    BEGIN
        FOREACH v_id IN ARRAY COALESCE(v_ids, '{}') LOOP
            v_rows := stepsync.sync_tree(v_id);
            written := written + v_rows;
            IF v_cursor IS NULL OR v_id > v_cursor THEN
                v_new_flows := v_new_flows + 1;
                v_new_rows := v_new_rows + v_rows;
            END IF;
        END LOOP;
    EXCEPTION WHEN check_violation THEN
        -- A flow fails the publish checks: the whole batch was rolled back; again, flow by flow.
        written := 0;
        v_new_flows := 0;
        v_new_rows := 0;
        FOREACH v_id IN ARRAY v_ids LOOP
            v_rows := 0;
            BEGIN
                v_rows := stepsync.sync_tree(v_id);
                written := written + v_rows;
            EXCEPTION WHEN check_violation THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                skipped := skipped + 1;
                SELECT t.name INTO v_name FROM public.trees AS t WHERE t.id = v_id;
                RAISE WARNING 'stepsync backfill skipped flow % (%): %', v_id, v_name, v_message
                    USING DETAIL = v_detail;
            END;
            IF v_cursor IS NULL OR v_id > v_cursor THEN
                v_new_flows := v_new_flows + 1;
                v_new_rows := v_new_rows + v_rows;
            END IF;
        END LOOP;
    END;
    IF flows > 0 THEN
        RAISE NOTICE 'stepsync backfill: % flows brought in step (% library rows written or retired), % skipped',
            flows - skipped, written, skipped;
    END IF;

    IF v_pending AND (p_after IS NULL OR p_after <= v_cursor) THEN
        v_full := p_limit IS NOT NULL AND flows >= p_limit;     -- stopped at its limit: more may follow
        IF NOT v_full AND p_through IS NULL THEN
            DELETE FROM stepsync.backfill_progress AS p
             WHERE p_after IS NULL OR p_after <= p.after_tree_id;
        ELSE
            v_through := CASE WHEN v_full THEN last_tree_id ELSE p_through END;
            -- The condition is checked again on the row as it is now (a concurrent batch may have
            -- moved the cursor meanwhile); GREATEST never moves it back.
            UPDATE stepsync.backfill_progress AS p
               SET after_tree_id = GREATEST(p.after_tree_id, v_through),
                   flows_done = p.flows_done + v_new_flows,
                   rows_written = p.rows_written + v_new_rows,
                   updated_at = pg_catalog.clock_timestamp()
             WHERE (p_after IS NULL OR p_after <= p.after_tree_id) AND v_through IS NOT NULL;
        END IF;
    END IF;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN NEXT;
END;
$function$;

COMMENT ON FUNCTION stepsync.backfill_batch(uuid, integer, uuid) IS
    'Syncs or retires the next p_limit flows after p_after (up to p_through) that need it: one backfill batch; moves stepsync.backfill_progress on. Returns the last id, flows, rows written, flows skipped.';

REVOKE ALL ON FUNCTION stepsync.backfill_batch(uuid, integer, uuid) FROM PUBLIC;
