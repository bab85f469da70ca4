-- stepsync._search_local (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_local(p_anchor uuid, p_request stepsync.search_request)
RETURNS stepsync.search_walk
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the walk's statements as prepared statements of Citus's connection, planned once (stepsync._search_fetch)
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $function$
-- stepsync._search_local(p_anchor, p_request): stepsync._search_walk over the shards of
-- public.step_library that Citus's metadata places on this node (pg_dist_placement in this node's group,
-- pg_dist_local_group), for stepsync._search_gather (docs/contract.md §11.4), which calls it on the row
-- p_anchor of stepsync.search_anchors so that Citus runs it on one worker. The walk estimates from this
-- node's share of the library's rows (its shards of all), and prepares its statements once in the
-- session (Citus keeps its connections to the workers) with generic plans: over sixteen shards, planning
-- is most of a statement's cost. Not granted to PUBLIC.
DECLARE
    v_shards pg_catalog.regclass[];
    v_all bigint;
BEGIN
    SELECT pg_catalog.array_agg(pg_catalog.format('public.%I', 'step_library_' || s.shardid)::pg_catalog.regclass
                                ORDER BY s.shardid) FILTER (WHERE p.groupid = g.groupid),
           pg_catalog.count(*)
      INTO v_shards, v_all
      FROM pg_catalog.pg_dist_shard AS s
      JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
     CROSS JOIN pg_catalog.pg_dist_local_group AS g
     WHERE s.logicalrelid = 'public.step_library'::pg_catalog.regclass;
    IF v_shards IS NULL THEN
        RETURN ROW('{}', '{}', '{}', '{}', '{}', '{}', 76, true, true)::stepsync.search_walk;
    END IF;
    RETURN stepsync._search_walk(v_shards, pg_catalog.jsonb_populate_record(p_request, pg_catalog.jsonb_build_object(
               'reltuples', p_request.reltuples * pg_catalog.cardinality(v_shards) / v_all)), true);
END;
$function$;

COMMENT ON FUNCTION stepsync._search_local(uuid, stepsync.search_request) IS
    'Internal (Citus): stepsync._search_walk over the shards of public.step_library on this node, for stepsync._search_gather, which reaches each worker through one row of stepsync.search_anchors (docs/contract.md §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_local(uuid, stepsync.search_request) FROM PUBLIC;
