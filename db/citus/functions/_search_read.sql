-- stepsync._search_read (Citus only): the explanation is the comment at the top of its body (\sf shows it).
-- stepsync_0012: the row is made as stepsync._search_row_sql says, which stepsync._search_walk shares.
CREATE OR REPLACE FUNCTION stepsync._search_read(p_keys uuid[], p_ids uuid[], p_here boolean)
RETURNS TABLE (walk stepsync.search_walk, found_id uuid, found_row text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- prepared statements of Citus's connection, planned once (stepsync._prepared)
SET plan_cache_mode = force_generic_plan
ROWS 20
AS $function$
-- stepsync._search_read(p_keys, p_ids, p_here): the rows of public.step_library whose (tree_key, id) is
-- one of the pairs (p_keys[i], p_ids[i]), each with its flow's name (public.trees by tree_key), as
-- stepsync.search_steps returns them, made as stepsync._search_row_sql says:
-- each as the text of a stepsync.search_row (found_row) with its id (found_id); walk is null on every row,
-- so that stepsync._search_local returns them as they come after its walk (docs/contract.md §11.4).
-- stepsync._search_rows turns them back into rows. With p_here, from this node's own shards (on a worker);
-- else through the distributed tables (on the coordinator).
--
-- With the caller's rights (search_steps calls it through stepsync._search_rows as its caller, so it is
-- PUBLIC's to run): the shards have the tables' grants and row-level security policies, so it returns what
-- a query of the tables would. Here: one statement over the node's shards, each answering
-- the pairs in its hash range (the third parameter: each key's shard) from its primary key, and the
-- flow's name from the shard of trees with the same range. Its text depends only on which shards the
-- node holds, so it is prepared once in the session (stepsync._prepared) and planned once: a plan of it
-- costs about 0.9 ms, a run 0.3 ms for 15 rows. The rows' text is made in the statement: no array of rows
-- is built, taken apart and written out again (measured: 0.95 ms of a worker's search for 15 rows
-- before, with two parameters a shard and a statement built anew from the catalog at every call).
-- Its statements are built from shard names and %L-quoted values only, so plpgsql_check's check of
-- EXECUTE's text is off here:
-- @plpgsql_check_options: security_warnings = false
DECLARE
    -- The rows of one pair of co-located tables (%1$s, %2$s) whose pairs are in the shard %3$s (null: every
    -- pair), as (walk, found_id, found_row): each pair's row by its primary key, made as
    -- stepsync._search_row_sql says.
    c_pair constant text := pg_catalog.format($sql$
        SELECT NULL::stepsync.search_walk, r.found_id, r.found_row
          FROM (%s) AS r$sql$,
        stepsync._search_row_sql($sql$ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::uuid[]),
                                                pg_catalog.unnest($3::bigint[])) AS p (key, id, shard)
          JOIN %1$s AS s ON s.tree_key = p.key AND s.id = p.id AND p.shard IS NOT DISTINCT FROM %3$s$sql$, '%2$s'));
    v_sql text;
BEGIN
    IF NOT p_here THEN
        RETURN QUERY EXECUTE pg_catalog.format(c_pair, 'public.step_library', 'public.trees', 'NULL')
                       USING p_keys, p_ids, NULL::bigint[];
        RETURN;
    END IF;
    -- This node's shards of step_library, each with the shard of trees that holds the same hash range.
    SELECT pg_catalog.string_agg(pg_catalog.format(c_pair, pg_catalog.format('public.%I', 'step_library_' || l.shardid),
                                                   pg_catalog.format('public.%I', 'trees_' || t.shardid), l.shardid),
                                 ' UNION ALL ' ORDER BY l.shardid)
      INTO v_sql
      FROM pg_catalog.pg_dist_shard AS l
      JOIN pg_catalog.pg_dist_shard AS t
        ON t.logicalrelid = 'public.trees'::pg_catalog.regclass AND t.shardminvalue = l.shardminvalue
      JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = l.shardid
     WHERE l.logicalrelid = 'public.step_library'::pg_catalog.regclass
       AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g);
    IF v_sql IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format('EXECUTE %I (%L, %L, %L)',
                                           stepsync._prepared(v_sql, 'uuid[], uuid[], bigint[]'), p_keys, p_ids,
                                           ARRAY(SELECT pg_catalog.get_shard_id_for_distribution_column(
                                                            'public.step_library', k.key)
                                                   FROM pg_catalog.unnest(p_keys) WITH ORDINALITY AS k (key, n)
                                                  ORDER BY k.n));
END;
$function$;

COMMENT ON FUNCTION stepsync._search_read(uuid[], uuid[], boolean) IS
    'Internal (Citus): the rows of public.step_library with the given (tree_key, id), with their flow''s name, as the text of a stepsync.search_row with their ids, read with the caller''s rights from this node''s own shards (one prepared statement of the session), or through the distributed tables; for stepsync._search_local and stepsync._search_rows (docs/contract.md §11.4).';
