-- stepsync.search_walk (Citus): what stepsync._search_walk found (docs/contract.md §6.8): the visible matches it
-- fetched, as parallel arrays, and how far they reach. Created once; kept when it exists.
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
            sampled boolean
        );
    END IF;
    COMMENT ON TYPE stepsync.search_walk IS
        'Internal: the visible matches stepsync._search_walk fetched (id, tree_key, tier, usage_count, rating and popularity class, as parallel arrays); every match of the popularity classes 1 to done is among them (all_matches: every match at all), and of class 13 too when sampled.';
END;
$stepsync$;
