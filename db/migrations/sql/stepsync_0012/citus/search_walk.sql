-- stepsync.search_walk (Citus): what stepsync._search_walk found (docs/contract.md §6.8): the visible matches it
-- fetched, as parallel arrays, and how far they reach; since stepsync_0012 also the node that walked and how
-- many shards it walked (stepsync._search_local fills them in, stepsync._search_gather checks them). Created
-- once; kept when it exists, the attributes of stepsync_0012 added to it when it lacks them.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regtype('stepsync.search_walk') IS NULL THEN
        CREATE TYPE stepsync.search_walk AS (
            ids uuid[],
            tree_keys uuid[],
            tiers integer[],
            usage_counts integer[],
            ratings numeric[],
            classes integer[],
            done integer,
            all_matches boolean,
            sampled boolean,
            node_group integer,
            shards integer
        );
    ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type AS t
                        JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.typrelid
                       WHERE t.oid = 'stepsync.search_walk'::pg_catalog.regtype
                         AND a.attname = 'node_group' AND NOT a.attisdropped) THEN
        ALTER TYPE stepsync.search_walk ADD ATTRIBUTE node_group integer, ADD ATTRIBUTE shards integer;
    END IF;
    COMMENT ON TYPE stepsync.search_walk IS
        'Internal: the visible matches stepsync._search_walk fetched (id, tree_key, tier, usage_count, rating and popularity class, as parallel arrays); every match of the popularity classes 1 to done is among them (all_matches: every match at all), and of class 13 too when sampled; on a worker, the node''s group (pg_dist_local_group) and the number of its shards walked (node_group, shards).';
END;
$stepsync$;
