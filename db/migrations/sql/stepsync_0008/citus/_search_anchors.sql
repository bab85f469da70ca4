-- stepsync._search_anchors (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_anchors()
RETURNS uuid[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_anchors(): one key of stepsync.search_anchors for every node that holds shards of
-- public.step_library (docs/contract.md §11.4), in the order stepsync._search_anchor gives them: a query
-- on stepsync.search_anchors filtered on these keys runs on each such node once. Null when the library
-- has no shards. The keys hash into shards at random, so the first few reach every node.
DECLARE
    v_groups integer[];             -- the groups (nodes) that hold shards of public.step_library
    v_reached integer[] := '{}';
    v_anchors uuid[] := '{}';
    v_key uuid;
    v_shard bigint;
    v_group integer;
BEGIN
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
    'Internal (Citus): one key of stepsync.search_anchors for every node that holds shards of public.step_library, through which a search reaches each node once (docs/contract.md §11.4).';
