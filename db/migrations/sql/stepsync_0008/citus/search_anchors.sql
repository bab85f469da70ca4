-- What stepsync._search_gather reaches every worker through, on a Citus coordinator (docs/contract.md
-- §11.4): a search walks the library on each worker at once, over that worker's own shards
-- (stepsync._search_local), one command a worker. Citus sends a query to the workers that hold the shards
-- its filter on the distribution column selects; this table, co-located with public.step_library, has a
-- row for each key stepsync._search_anchor(0 .. 4095) gives, so that a filter on one such key a worker
-- reaches that worker. Rows are only keys; nothing else writes them. Every role may read them: a search
-- reads the rows it returns through them with its caller's rights (stepsync._search_rows).
CREATE TABLE IF NOT EXISTS stepsync.search_anchors (
    tree_key uuid PRIMARY KEY
);
COMMENT ON TABLE stepsync.search_anchors IS
    'stepsync (Citus): one row for each key stepsync._search_anchor(0 .. 4095) gives, co-located with public.step_library, through which stepsync._search_gather sends a search to every worker (docs/contract.md §11.4).';
COMMENT ON COLUMN stepsync.search_anchors.tree_key IS 'stepsync._search_anchor(n) for one n in 0 .. 4095.';
SELECT pg_catalog.create_distributed_table('stepsync.search_anchors', 'tree_key', colocate_with => 'public.step_library')
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition AS p
                    WHERE p.logicalrelid = 'stepsync.search_anchors'::pg_catalog.regclass);
GRANT SELECT ON stepsync.search_anchors TO PUBLIC;
