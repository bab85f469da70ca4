-- stepsync._search_local (Citus only): the explanation is the comment at the top of its body (\sf shows it).
-- Since stepsync_0009 it takes p_rows and returns rows (its walk, then the rows it read); since stepsync_0010
-- each row it read as its id and its text: a function's result type can only be dropped, so the file drops
-- it first (and the signature before stepsync_0009). Since stepsync_0011 the rows come from
-- stepsync._search_read, as they come; since stepsync_0012 from the walk itself when it found every match in
-- one scan.
DROP FUNCTION IF EXISTS stepsync._search_local(uuid, stepsync.search_request);
DROP FUNCTION IF EXISTS stepsync._search_local(uuid, stepsync.search_request, integer);
CREATE OR REPLACE FUNCTION stepsync._search_local(p_anchor uuid, p_request stepsync.search_request, p_rows integer)
RETURNS TABLE (walk stepsync.search_walk, found_id uuid, found_row text)
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
-- Its first row is what the walk found (walk, with this node's group and the number of its shards walked,
-- by which stepsync._search_gather checks its anchors; the others null). With p_rows (stepsync._search_ranked passes
-- its limit when the rows may be read as its owner reads them), it also reads, in the same command, the
-- rows of its best p_rows matches in the search's order (tier, usage_count, rating, id) among those the
-- merge keeps whatever the other workers found: all of them when it has every match, else those of the
-- classes up to where it stopped (done); one more row each (found_id, and found_row: the text of its
-- stepsync.search_row; walk null), made as stepsync._search_row_sql says: by the walk, in the statement that
-- found them, when one scan found every match (a rare word's way: stepsync._search_walk says how), else
-- by stepsync._search_read after the walk. Rows, not one value holding them: a value of row types within arrays
-- within row types travels as text with its quotes doubled at every level (measured: 2 ms more a rare
-- word); and each row as text, which the coordinator keeps as it comes (stepsync._search_gather says why). The search's rows come from there whenever
-- they are all among them (always when every match is at hand, as for a rare word); search_steps reads
-- any other with the caller's rights.
#variable_conflict use_column
DECLARE
    v_shards pg_catalog.regclass[];
    v_trees pg_catalog.regclass[];  -- the shards of public.trees with the same hash ranges
    v_group integer;                -- this node's group
    v_request stepsync.search_request := p_request;
    g stepsync.search_gathered;
    v_all bigint;
    w stepsync.search_walk;
    v_ids uuid[];
    v_keys uuid[];
BEGIN
    SELECT pg_catalog.array_agg(pg_catalog.format('public.%I', 'step_library_' || s.shardid)::pg_catalog.regclass
                                ORDER BY s.shardid) FILTER (WHERE p.groupid = l.groupid),
           pg_catalog.array_agg(pg_catalog.format('public.%I', 'trees_' || t.shardid)::pg_catalog.regclass
                                ORDER BY s.shardid) FILTER (WHERE p.groupid = l.groupid AND t.shardid IS NOT NULL),
           pg_catalog.count(*), pg_catalog.min(l.groupid)
      INTO v_shards, v_trees, v_all, v_group
      FROM pg_catalog.pg_dist_shard AS s
      JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
      LEFT JOIN pg_catalog.pg_dist_shard AS t
        ON t.logicalrelid = 'public.trees'::pg_catalog.regclass AND t.shardminvalue = s.shardminvalue
     CROSS JOIN pg_catalog.pg_dist_local_group AS l
     WHERE s.logicalrelid = 'public.step_library'::pg_catalog.regclass;
    IF pg_catalog.cardinality(v_trees) IS DISTINCT FROM pg_catalog.cardinality(v_shards) THEN
        v_trees := NULL;            -- trees not laid out with the library (docs/contract.md §11.1): no rows with the walk
    END IF;
    IF v_shards IS NULL THEN
        RETURN QUERY SELECT ROW('{}', '{}', '{}', '{}', '{}', '{}', 76, true, true, v_group, 0)::stepsync.search_walk,
                            NULL::uuid, NULL::text;
        RETURN;
    END IF;
    v_request.reltuples := p_request.reltuples * pg_catalog.cardinality(v_shards) / v_all;   -- this node's share
    g := stepsync._search_walk(v_shards, v_request, true, p_rows, v_trees);
    w := g.walk;
    w.node_group := v_group;
    w.shards := pg_catalog.cardinality(v_shards);
    RETURN QUERY SELECT w, NULL::uuid, NULL::text;
    IF g.found_ids IS NOT NULL THEN
        RETURN QUERY SELECT NULL::stepsync.search_walk, u.id, u.found_row
                       FROM ROWS FROM (pg_catalog.unnest(g.found_ids), pg_catalog.unnest(g.found_rows)) AS u (id, found_row);
    ELSIF COALESCE(p_rows, 0) > 0 THEN
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
            RETURN QUERY SELECT r.walk, r.found_id, r.found_row FROM stepsync._search_read(v_keys, v_ids, true) AS r;
        END IF;
    END IF;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_local(uuid, stepsync.search_request, integer) IS
    'Internal (Citus): stepsync._search_walk over the shards of public.step_library on this node (its first row), and the rows of its best matches when asked (one row each), for stepsync._search_gather, which reaches each worker through one row of stepsync.search_anchors (docs/contract.md §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_local(uuid, stepsync.search_request, integer) FROM PUBLIC;
