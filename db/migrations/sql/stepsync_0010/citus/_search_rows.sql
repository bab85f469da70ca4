-- stepsync._search_rows (Citus only): the explanation is the comment at the top of its body (\sf shows it).
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
-- in the session (stepsync._prepared), with the pairs as its two parameters: each shard answers from its
-- primary key, for the pairs whose key hashes into its range (pg_catalog.worker_hash: as Citus places
-- rows). Since stepsync_0010; before, a statement with two parameters a shard, each shard's pairs
-- sorted out here at every call.
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
    -- One pair of co-located tables: the entries of the pairs given (parameters $1 and $2) with their flow
    -- (by tree_key), as the condition %3$s picks them.
    c_pair constant text := 'SELECT s.*, t.name AS source_tree_name FROM %1$s AS s'
                            ' LEFT JOIN %2$s AS t ON t.id = s.tree_key AND s.source_tree_id IS NOT NULL'
                            ' WHERE %3$s';
    -- Through the distributed tables, which Citus prunes to the shards of the keys.
    c_any constant text := 's.tree_key = ANY ($1) AND s.id = ANY ($2)';
    -- On a worker's shards: each pair, by the primary key, in the shard whose range (%s to %s) holds the hash
    -- of its key (as Citus places it).
    c_range constant text := '(s.tree_key, s.id) IN (SELECT k.key, k.id'
                             ' FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS k (key, id)'
                             ' WHERE pg_catalog.worker_hash(k.key) BETWEEN %s AND %s)';
    v_from text;
    v_rows stepsync.search_row[];
BEGIN
    IF p_anchor IS NULL THEN
        EXECUTE pg_catalog.format(c_sql, '(' || pg_catalog.format(c_pair, 'public.step_library', 'public.trees', c_any)
                                         || ')')
           INTO v_rows USING p_keys, p_ids;
        RETURN COALESCE(v_rows, '{}'::stepsync.search_row[]);
    END IF;
    -- This node's shards of step_library, each with the shard of trees that holds the same range of keys.
    SELECT '(' || pg_catalog.string_agg(pg_catalog.format(c_pair, pg_catalog.format('public.%I', 'step_library_' || l.shardid),
                                                          pg_catalog.format('public.%I', 'trees_' || t.shardid),
                                                          pg_catalog.format(c_range, l.shardminvalue, l.shardmaxvalue)),
                                        ' UNION ALL ' ORDER BY l.shardid) || ')'
      INTO v_from
      FROM pg_catalog.pg_dist_shard AS l
      JOIN pg_catalog.pg_dist_shard AS t
        ON t.logicalrelid = 'public.trees'::pg_catalog.regclass AND t.shardminvalue = l.shardminvalue
      JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = l.shardid
     WHERE l.logicalrelid = 'public.step_library'::pg_catalog.regclass
       AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g);
    IF v_from IS NULL THEN
        RETURN '{}'::stepsync.search_row[];
    END IF;
    EXECUTE pg_catalog.format('EXECUTE %I (%L, %L)', stepsync._prepared(pg_catalog.format(c_sql, v_from), 'uuid[], uuid[]'),
                              p_keys, p_ids)
       INTO v_rows;
    RETURN COALESCE(v_rows, '{}'::stepsync.search_row[]);
END;
$function$;

COMMENT ON FUNCTION stepsync._search_rows(uuid, uuid[], uuid[]) IS
    'Internal (Citus): the rows of public.step_library with the given (tree_key, id), with their flow''s name, as stepsync.search_steps returns them, read from this worker''s own shards with the caller''s rights (through the distributed tables when the anchor is null); stepsync.search_steps calls it once a worker (docs/contract.md §11.4).';
