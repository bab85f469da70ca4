-- The backfill (docs/contract.md §5.6): every listed flow synced, batch after batch, each batch
-- committed (stepsync.backfill). A generator with one statement (see unique_key.gexec.sql), because
-- a procedure that commits must be called outside a transaction block.
SELECT 'CALL stepsync.backfill()'
