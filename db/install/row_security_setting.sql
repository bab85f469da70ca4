-- stepsync.row_security: stepsync's row-level security setting (docs/contract.md §12), one row.
-- viewer: the VIEWER expression of `stepsync install --row-security VIEWER` (null: the library's rule is
-- not enforced as row-level security); enabled_rls: stepsync turned row-level security on for
-- public.step_library (it was off), so it turns it off again when the setting goes; policies: the
-- definitions of stepsync's policies as stepsync.restore_policies last made them, which
-- stepsync.check_row_security compares with what the catalog holds now.
-- Readable by every role: stepsync.current_viewer (run by clients, in the policies) reads viewer.
CREATE TABLE IF NOT EXISTS stepsync.row_security (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    viewer text,
    enabled_rls boolean NOT NULL DEFAULT false,
    policies jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO stepsync.row_security (singleton) VALUES (true) ON CONFLICT (singleton) DO NOTHING;
GRANT SELECT ON stepsync.row_security TO PUBLIC;

COMMENT ON TABLE stepsync.row_security IS
    'stepsync''s row-level security setting, one row (docs/contract.md §12): the VIEWER in force, if any.';
COMMENT ON COLUMN stepsync.row_security.singleton IS 'Always true: one row.';
COMMENT ON COLUMN stepsync.row_security.viewer IS
    'The SQL expression giving the current user''s uuid (stepsync install --row-security); null: not enforced.';
COMMENT ON COLUMN stepsync.row_security.enabled_rls IS
    'stepsync enabled row-level security on public.step_library, and disables it when the setting goes.';
COMMENT ON COLUMN stepsync.row_security.policies IS
    'stepsync''s policies as stepsync.restore_policies made them: what stepsync.check_row_security expects.';
COMMENT ON COLUMN stepsync.row_security.updated_at IS 'When the setting or the policies were last made.';
