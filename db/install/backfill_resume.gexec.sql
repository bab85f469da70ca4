-- The backfill, resumed from stepsync.backfill_progress (docs/contract.md §5.6): PLACEHOLDER, written next.
SELECT 'SELECT 1' WHERE false
