-- stepsync._search_local (Citus only): the explanation is the comment at the top of its body (\sf shows it).
-- Since stepsync_0009 it returns rows (the matches, and the rows read with them) and takes p_rows: the old
-- signature goes.
DROP FUNCTION IF EXISTS stepsync._search_local(uuid, stepsync.search_request);
CREATE OR REPLACE FUNCTION stepsync._search_local(p_anchor uuid, p_request stepsync.search_request, p_rows integer)
RETURNS TABLE (walk stepsync.search_walk, found stepsync.search_row)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the walk's statements as prepared statements of Citus's connection, planned once (stepsync._search_fetch);
-- the walk sets enable_seqscan and jit itself (here, with sequential scans off, a catalog query would pass JIT's
-- threshold: measured 6.2 ms for the walk and its rows against 1.2 ms)
SET plan_cache_mode = force_generic_plan
ROWS 21
AS $function$
-- stepsync._search_local(p_anchor, p_request, p_rows): stepsync._search_walk over the shards of
-- public.step_library that Citus's metadata places on this node (pg_dist_placement in this node's group,
-- pg_dist_local_group), for stepsync._search_gather (docs/contract.md §11.4), which calls it on the row
-- p_anchor of stepsync.search_anchors so that Citus runs it on one worker. The walk estimates from this
-- node's share of the library's rows (its shards of all), and prepares its statements once in the
-- session (Citus keeps its connections to the workers) with generic plans: over sixteen shards, planning
-- is most of a statement's cost. Not granted to PUBLIC.
--
-- Its first row is what the walk found (walk; found null). With p_rows (stepsync._search_ranked passes
-- its limit when the rows may be read as its owner reads them), it also reads, in the same command, the
-- rows of its best p_rows matches in the search's order (tier, usage_count, rating, id) among those the
-- merge keeps whatever the other workers found: all of them when it has every match, else those of the
-- classes up to where it stopped (done); one more row each (found; walk null). Rows, not one value
-- holding them: a value of row types within arrays within row types travels as text with its quotes
-- doubled at every level (measured: 2 ms more a rare word). The search's rows come from there whenever
-- they are all among them (always when every match is at hand, as for a rare word); search_steps reads
-- any other with the caller's rights.
#variable_conflict use_column
DECLARE
    v_shards pg_catalog.regclass[];
    v_all bigint;
    w stepsync.search_walk;
    v_ids uuid[];
    v_keys uuid[];
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
        RETURN QUERY SELECT ROW('{}', '{}', '{}', '{}', '{}', '{}', 76, true, true)::stepsync.search_walk,
                            NULL::stepsync.search_row;
        RETURN;
    END IF;
    w := stepsync._search_walk(v_shards, pg_catalog.jsonb_populate_record(p_request, pg_catalog.jsonb_build_object(
             'reltuples', p_request.reltuples * pg_catalog.cardinality(v_shards) / v_all)), true);
    RETURN QUERY SELECT w, NULL::stepsync.search_row;
    IF COALESCE(p_rows, 0) > 0 THEN
        SELECT pg_catalog.array_agg(b.id), pg_catalog.array_agg(b.tree_key)
          INTO v_ids, v_keys
          FROM (SELECT u.id, u.tree_key
                  FROM ROWS FROM (pg_catalog.unnest(w.ids), pg_catalog.unnest(w.tree_keys), pg_catalog.unnest(w.tiers),
                                  pg_catalog.unnest(w.usage_counts), pg_catalog.unnest(w.ratings),
                                  pg_catalog.unnest(w.classes)) AS u (id, tree_key, tier, usage_count, rating, class)
                 WHERE w.all_matches OR w.done IS NULL OR u.class <= w.done
                 ORDER BY u.tier DESC, u.usage_count DESC, u.rating DESC NULLS LAST, u.id
                 LIMIT p_rows) AS b;
        IF v_ids IS NOT NULL THEN
            RETURN QUERY SELECT NULL::stepsync.search_walk, r
                           FROM pg_catalog.unnest(stepsync._search_rows(p_anchor, v_keys, v_ids)) AS r;
        END IF;
    END IF;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_local(uuid, stepsync.search_request, integer) IS
    'Internal (Citus): stepsync._search_walk over the shards of public.step_library on this node (its first row), and the rows of its best matches when asked (one row each), for stepsync._search_gather, which reaches each worker through one row of stepsync.search_anchors (docs/contract.md §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_local(uuid, stepsync.search_request, integer) FROM PUBLIC;
