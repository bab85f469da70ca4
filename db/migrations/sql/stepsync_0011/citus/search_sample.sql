-- What stepsync._search_statistics reads on a Citus coordinator (docs/contract.md §11): on Citus the
-- table public.step_library on the coordinator holds no rows, so it has no planner statistics; its rows
-- and statistics are on the workers' shards. stepsync.refresh_search_statistics() keeps here a sample
-- of the library's search vectors (ANALYZEd: its statistics stand for the library's) and the library's
-- row count, and (since stepsync_0010) the sample's statistics as a search reads them: reading them from
-- pg_stats cost about 0.5 ms a search (a view of several joins, and 1,000 elements turned to text and back).
-- Local tables of the coordinator, where stepsync.search_steps runs.
CREATE TABLE IF NOT EXISTS stepsync.search_sample (
    search_vector tsvector
);
CREATE TABLE IF NOT EXISTS stepsync.search_sample_size (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    library_rows double precision NOT NULL,
    sampled_rows bigint NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER TABLE stepsync.search_sample_size
    ADD COLUMN IF NOT EXISTS most_common_elems text[],
    ADD COLUMN IF NOT EXISTS most_common_elem_freqs real[];
ALTER TABLE stepsync.search_sample_size
    ADD COLUMN IF NOT EXISTS anchors uuid[];
COMMENT ON TABLE stepsync.search_sample IS
    'stepsync (Citus): a sample of step_library''s search vectors, whose statistics stepsync._search_statistics reads; stepsync.refresh_search_statistics() makes it.';
COMMENT ON COLUMN stepsync.search_sample.search_vector IS 'A sampled row''s search_vector.';
COMMENT ON TABLE stepsync.search_sample_size IS
    'stepsync (Citus): the library''s row count when stepsync.refresh_search_statistics() last sampled it.';
COMMENT ON COLUMN stepsync.search_sample_size.singleton IS 'Always true: one row.';
COMMENT ON COLUMN stepsync.search_sample_size.library_rows IS 'Rows of public.step_library, all shards.';
COMMENT ON COLUMN stepsync.search_sample_size.sampled_rows IS 'Rows in stepsync.search_sample.';
COMMENT ON COLUMN stepsync.search_sample_size.refreshed_at IS 'When the sample was taken.';
COMMENT ON COLUMN stepsync.search_sample_size.most_common_elems IS
    'pg_stats.most_common_elems of stepsync.search_sample.search_vector when it was last ANALYZEd (stepsync._search_statistics_keep).';
COMMENT ON COLUMN stepsync.search_sample_size.most_common_elem_freqs IS
    'pg_stats.most_common_elem_freqs of stepsync.search_sample.search_vector when it was last ANALYZEd (stepsync._search_statistics_keep).';
COMMENT ON COLUMN stepsync.search_sample_size.anchors IS
    'The keys of stepsync.search_anchors through which a search reaches each worker, as stepsync._search_anchors() found them (stepsync._search_statistics_keep); used while they still hold.';
