-- stepsync._search_anchors (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_anchors()
RETURNS uuid[]
LANGUAGE plpgsql
STABLE
SECURITY DEFINER    -- reads the kept keys (stepsync.search_sample_size), which a search's caller may not
SET search_path = pg_catalog, pg_temp
SET jit = off       -- Citus's catalogs are estimated at 1,000 rows and more: a plan's cost passes JIT's threshold
AS $function$
-- stepsync._search_anchors(): one key of stepsync.search_anchors for every node that holds shards of
-- public.step_library (docs/contract.md §11.4), in the order stepsync._search_anchor gives them: a query
-- on stepsync.search_anchors filtered on these keys runs on each such node once. Null when the library
-- has no shards. The keys hash into shards at random, so the first few reach every node.
--
-- The keys found last are kept (stepsync.search_sample_size.anchors, by stepsync._search_statistics_keep:
-- at each stepsync.refresh_search_statistics() and install) and returned while they still hold: each
-- key's shard has one placement, on a node of its own, and they are as many as the nodes that hold
-- shards of the library. A shard keeps its hash range for as long as it exists, so a kept key reaches
-- the same shard until that shard is split or moved, and then the check fails. Checking them is one
-- query; finding them again, one query a key tried (measured: about 0.25 ms a search, twice when
-- search_steps reads rows after the walk). Runs as the owner, who reads the kept keys; it returns only
-- keys that are fixed and public (stepsync._search_anchor).
DECLARE
    v_groups integer[];             -- the groups (nodes) that hold shards of public.step_library
    v_reached integer[] := '{}'::integer[];
    v_anchors uuid[] := '{}'::uuid[];
    v_key uuid;
    v_shard bigint;
    v_group integer;
BEGIN
    SELECT z.anchors INTO v_anchors
      FROM stepsync.search_sample_size AS z
     WHERE pg_catalog.cardinality(z.anchors) > 0
       AND (SELECT pg_catalog.count(*) = pg_catalog.cardinality(z.anchors)
                   AND pg_catalog.count(DISTINCT p.groupid) = pg_catalog.cardinality(z.anchors)
              FROM pg_catalog.pg_dist_placement AS p
             WHERE p.shardid = ANY (ARRAY(SELECT pg_catalog.get_shard_id_for_distribution_column('public.step_library',
                                                                                                 a.key)
                                            FROM pg_catalog.unnest(z.anchors) AS a (key))))
       AND pg_catalog.cardinality(z.anchors)
           = (SELECT pg_catalog.count(DISTINCT p.groupid)
                FROM pg_catalog.pg_dist_shard AS s
                JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
               WHERE s.logicalrelid = 'public.step_library'::pg_catalog.regclass);
    IF v_anchors IS NOT NULL THEN
        RETURN v_anchors;           -- the kept keys, which still hold
    END IF;
    v_anchors := '{}'::uuid[];
    SELECT pg_catalog.array_agg(DISTINCT p.groupid) INTO v_groups
      FROM pg_catalog.pg_dist_shard AS s
      JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
     WHERE s.logicalrelid = 'public.step_library'::pg_catalog.regclass;
    IF v_groups IS NULL THEN
        RETURN NULL;
    END IF;
    FOR n IN 0..4095 LOOP
        v_key := stepsync._search_anchor(n);
        v_shard := pg_catalog.get_shard_id_for_distribution_column('public.step_library', v_key);
        v_group := (SELECT p.groupid FROM pg_catalog.pg_dist_placement AS p WHERE p.shardid = v_shard);
        IF v_group <> ALL (v_reached) THEN
            v_reached := v_reached || v_group;
            v_anchors := v_anchors || v_key;
            EXIT WHEN pg_catalog.cardinality(v_reached) >= pg_catalog.cardinality(v_groups);
        END IF;
    END LOOP;
    RETURN v_anchors;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_anchors() IS
    'Internal (Citus): one key of stepsync.search_anchors for every node that holds shards of public.step_library, through which a search reaches each node once; the keys kept in stepsync.search_sample_size while they still hold (docs/contract.md §11.4).';
