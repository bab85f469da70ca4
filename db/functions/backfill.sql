-- stepsync.backfill(p_batch_size): the install's backfill, batch after batch, each committed
-- (docs/contract.md §5.6, §9.4). `CALL stepsync.backfill();` outside a transaction block.
--
-- No SET search_path clause: PostgreSQL refuses COMMIT inside a procedure that has one. Every
-- name below is schema-qualified, and pg_temp is never searched for functions or operators.
CREATE OR REPLACE PROCEDURE stepsync.backfill(p_batch_size integer DEFAULT 200)
LANGUAGE plpgsql
AS $procedure$
-- Runs stepsync.backfill_batch until no flow is left, committing after each batch, so that the
-- application's writes never wait for more than one batch (each flow is locked only while its
-- batch runs) and an interrupted backfill keeps what it did: call it again to go on, it skips
-- nothing and rewrites nothing that is already in step. Reports progress and the totals as
-- NOTICEs; skipped flows as WARNINGs (see backfill_batch).
DECLARE
    v_after uuid;
    v_batch record;
    v_flows bigint := 0;
    v_written bigint := 0;
    v_skipped bigint := 0;
BEGIN
    LOOP
        SELECT b.last_tree_id, b.flows, b.written, b.skipped INTO v_batch
          FROM stepsync.backfill_batch(v_after, p_batch_size) AS b;
        EXIT WHEN v_batch.flows OPERATOR(pg_catalog.=) 0;
        v_after := v_batch.last_tree_id;
        v_flows := v_flows OPERATOR(pg_catalog.+) v_batch.flows;
        v_written := v_written OPERATOR(pg_catalog.+) v_batch.written;
        v_skipped := v_skipped OPERATOR(pg_catalog.+) v_batch.skipped;
        COMMIT;
    END LOOP;
    RAISE NOTICE 'stepsync backfill: % flows brought in step (% library rows written or retired), % skipped',
        v_flows OPERATOR(pg_catalog.-) v_skipped, v_written, v_skipped;
END;
$procedure$;

COMMENT ON PROCEDURE stepsync.backfill(integer) IS
    'Syncs every listed flow and retires the entries of deactivated or archived ones, committing batch by batch (CALL outside a transaction).';

REVOKE ALL ON PROCEDURE stepsync.backfill(integer) FROM PUBLIC;
