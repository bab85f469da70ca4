-- stepsync._search_rows (Citus only): the explanation is the comment at the top of its body (\sf shows it).
-- stepsync_0010 types its empty arrays (plpgsql_check's warning); the rest is as in stepsync_0009.
CREATE OR REPLACE FUNCTION stepsync._search_rows(p_anchor uuid, p_keys uuid[], p_ids uuid[])
RETURNS stepsync.search_row[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- prepared statements of Citus's connection, planned once (stepsync._prepared)
SET plan_cache_mode = force_generic_plan
AS $function$
-- stepsync._search_rows(p_anchor, p_keys, p_ids): the rows of public.step_library whose (tree_key, id)
-- is one of the pairs (p_keys[i], p_ids[i]), each with its flow's name (public.trees by tree_key), as stepsync.search_steps
-- returns them (its columns as declared: text for varchar, timestamptz for timestamp), for
-- stepsync.search_steps on Citus (docs/contract.md §11.4), which calls it on one row p_anchor of
-- stepsync.search_anchors a worker: each worker reads them from its own shards, by their primary key, one
-- command a worker (a read of the distributed table sends a command to every shard holding one of the keys,
-- about 0.4 ms each). With p_anchor null, on the coordinator: through the distributed tables.
--
-- With the caller's rights: the shards have the tables' grants and row-level security policies, so it
-- returns what a query of the tables would. One statement over all of the node's shards, prepared once
-- in the session (stepsync._prepared): each shard answers from its primary key.
-- Its statements are built from shard names and %L-quoted values only, so plpgsql_check's check of
-- EXECUTE's text is off here:
-- @plpgsql_check_options: security_warnings = false
DECLARE
    -- The rows, from a FROM item that has step_library's columns and the flow's name (source_tree_name).
    c_sql constant text := $sql$
        SELECT pg_catalog.array_agg(ROW(r.id, r.title::text, r.step_type::text, r.content, r.visibility::text,
                   r.created_by, r.account_id, r.usage_count, r.rating, r.rating_count, r.is_active,
                   r.created_at::timestamptz, r.updated_at::timestamptz, r.source_tree_id,
                   r.source_node_id::varchar, r.is_flow_synced, r.last_synced_at::timestamptz, r.forked_from_id,
                   r.source_tree_name::text)::stepsync.search_row)
          FROM %s AS r$sql$;
    -- One pair of co-located tables: the entries of the keys and ids given (parameters %3$s and %4$s) with
    -- their flow (by tree_key).
    c_pair constant text := 'SELECT s.*, t.name AS source_tree_name FROM %1$s AS s'
                            ' LEFT JOIN %2$s AS t ON t.id = s.tree_key AND s.source_tree_id IS NOT NULL'
                            ' WHERE s.tree_key = ANY (%3$s) AND s.id = ANY (%4$s)';
    v_from text;
    v_types text;
    v_args text;
    v_rows stepsync.search_row[];
BEGIN
    IF p_anchor IS NULL THEN
        EXECUTE pg_catalog.format(c_sql, '(' || pg_catalog.format(c_pair, 'public.step_library', 'public.trees', '$1', '$2')
                                         || ')')
           INTO v_rows USING p_keys, p_ids;
        RETURN COALESCE(v_rows, '{}'::stepsync.search_row[]);
    END IF;
    -- This node's shards of step_library, each with the shard of trees that holds the same hash range, and
    -- the keys and ids given that are in it: two parameters a shard, so that each shard looks up its own
    -- rows only (by its primary key), and one statement serves every search.
    WITH k AS (SELECT u.key, u.id, pg_catalog.get_shard_id_for_distribution_column('public.step_library', u.key) AS shard
                 FROM ROWS FROM (pg_catalog.unnest(p_keys), pg_catalog.unnest(p_ids)) AS u (key, id))
    SELECT '(' || pg_catalog.string_agg(pg_catalog.format(c_pair, pg_catalog.format('public.%I', 'step_library_' || x.library),
                                                          pg_catalog.format('public.%I', 'trees_' || x.trees),
                                                          '$' || (2 * x.n - 1), '$' || (2 * x.n)),
                                        ' UNION ALL ' ORDER BY x.n) || ')',
           pg_catalog.string_agg('uuid[], uuid[]', ', ' ORDER BY x.n),
           pg_catalog.string_agg(pg_catalog.format('%L, %L', COALESCE(x.keys, '{}'), COALESCE(x.ids, '{}')), ', '
                                 ORDER BY x.n)
      INTO v_from, v_types, v_args
      FROM (SELECT l.shardid AS library, t.shardid AS trees,
                   pg_catalog.row_number() OVER (ORDER BY l.shardid) AS n,
                   (SELECT pg_catalog.array_agg(k.key) FROM k WHERE k.shard = l.shardid) AS keys,
                   (SELECT pg_catalog.array_agg(k.id) FROM k WHERE k.shard = l.shardid) AS ids
              FROM pg_catalog.pg_dist_shard AS l
              JOIN pg_catalog.pg_dist_shard AS t
                ON t.logicalrelid = 'public.trees'::pg_catalog.regclass AND t.shardminvalue = l.shardminvalue
              JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = l.shardid
             WHERE l.logicalrelid = 'public.step_library'::pg_catalog.regclass
               AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g)) AS x;
    IF v_from IS NULL THEN
        RETURN '{}'::stepsync.search_row[];
    END IF;
    EXECUTE pg_catalog.format('EXECUTE %I (%s)', stepsync._prepared(pg_catalog.format(c_sql, v_from), v_types), v_args)
       INTO v_rows;
    RETURN COALESCE(v_rows, '{}'::stepsync.search_row[]);
END;
$function$;

COMMENT ON FUNCTION stepsync._search_rows(uuid, uuid[], uuid[]) IS
    'Internal (Citus): the rows of public.step_library with the given (tree_key, id), with their flow''s name, as stepsync.search_steps returns them, read from this worker''s own shards with the caller''s rights (through the distributed tables when the anchor is null); stepsync.search_steps calls it once a worker (docs/contract.md §11.4).';
