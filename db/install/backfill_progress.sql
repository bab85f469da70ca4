-- stepsync.backfill_progress: a row while a backfill is unfinished (docs/contract.md §5.6, §9.2).
-- The install marks the backfill pending in the same transaction that installs the triggers, so an
-- install cut off anywhere after it (the server crashed, the client was killed, Ctrl-C) leaves the
-- row behind; stepsync.backfill_batch moves its cursor on as batches commit and deletes it when no
-- flow is left. `stepsync install` (and stepsync's own alembic environment) resume from the cursor;
-- `stepsync status` and `stepsync doctor` show it.
CREATE TABLE IF NOT EXISTS stepsync.backfill_progress (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    after_tree_id uuid,
    flows_done bigint NOT NULL DEFAULT 0,
    rows_written bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE stepsync.backfill_progress IS
    'One row while the backfill of the install is unfinished; stepsync install resumes it (docs/contract.md §5.6).';
COMMENT ON COLUMN stepsync.backfill_progress.singleton IS 'Always true: at most one row.';
COMMENT ON COLUMN stepsync.backfill_progress.revision IS 'The revision whose install started the backfill.';
COMMENT ON COLUMN stepsync.backfill_progress.started_at IS 'When the backfill was marked pending.';
COMMENT ON COLUMN stepsync.backfill_progress.after_tree_id IS
    'Every flow up to this id (in id order) is done; null: none yet.';
COMMENT ON COLUMN stepsync.backfill_progress.flows_done IS 'Flows looked at so far (synced, retired or skipped).';
COMMENT ON COLUMN stepsync.backfill_progress.rows_written IS 'Library rows written or retired so far.';
COMMENT ON COLUMN stepsync.backfill_progress.updated_at IS 'When a batch last moved the cursor.';
-- No grant: only its owner (the tables' owner, as whom the install and the sync run) reads or writes it.
