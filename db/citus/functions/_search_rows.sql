-- stepsync._search_rows (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_rows(p_anchor uuid, p_keys uuid[], p_ids uuid[])
RETURNS stepsync.search_row[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- prepared statements of Citus's connection, planned once (stepsync._prepared)
SET plan_cache_mode = force_generic_plan
AS $function$
-- stepsync._search_rows(p_anchor, p_keys, p_ids): the rows of public.step_library whose (tree_key, id)
-- are among p_keys and p_ids, each with its flow's name (public.trees by tree_key), as stepsync.search_steps
-- returns them (its columns as declared: text for varchar, timestamptz for timestamp), for
-- stepsync.search_steps on Citus (docs/contract.md §11.3), which calls it on one row p_anchor of
-- stepsync.search_anchors a worker: each worker reads them from its own shards, by their primary key, one
-- command a worker (a read of the distributed table sends a command to every shard holding one of the keys,
-- about 0.4 ms each). With p_anchor null, on the coordinator: through the distributed tables.
--
-- With the caller's rights: the shards have the tables' grants and row-level security policies, so it
-- returns what a query of the tables would. Each shard's statement is prepared once in the session
-- (stepsync._prepared).
DECLARE
    c_sql constant text := $sql$
        SELECT pg_catalog.array_agg(ROW(s.id, s.title::text, s.step_type::text, s.content, s.visibility::text,
                   s.created_by, s.account_id, s.usage_count, s.rating, s.rating_count, s.is_active,
                   s.created_at::timestamptz, s.updated_at::timestamptz, s.source_tree_id,
                   s.source_node_id::varchar, s.is_flow_synced, s.last_synced_at::timestamptz, s.forked_from_id,
                   t.name::text)::stepsync.search_row)
          FROM %1$s AS s
          LEFT JOIN %2$s AS t ON t.id = s.tree_key AND s.source_tree_id IS NOT NULL
         WHERE s.tree_key = ANY ($1) AND s.id = ANY ($2)$sql$;
    v_rows stepsync.search_row[] := '{}';
    v_part stepsync.search_row[];
    v_library text;
    v_trees text;
BEGIN
    IF p_anchor IS NULL THEN
        EXECUTE pg_catalog.format(c_sql, 'public.step_library', 'public.trees') INTO v_part USING p_keys, p_ids;
        RETURN COALESCE(v_part, '{}');
    END IF;
    FOR v_library, v_trees IN
        SELECT DISTINCT pg_catalog.format('public.%I', 'step_library_' || k.library),
                        pg_catalog.format('public.%I', 'trees_' || k.trees)
          FROM (SELECT pg_catalog.get_shard_id_for_distribution_column('public.step_library', u.key) AS library,
                       pg_catalog.get_shard_id_for_distribution_column('public.trees', u.key) AS trees
                  FROM pg_catalog.unnest(p_keys) AS u (key)) AS k
          JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = k.library
         WHERE p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group AS g)
    LOOP
        EXECUTE pg_catalog.format('EXECUTE %I (%L, %L)',
                                  stepsync._prepared(pg_catalog.format(c_sql, v_library, v_trees), 'uuid[], uuid[]'),
                                  p_keys, p_ids)
           INTO v_part;
        v_rows := v_rows || COALESCE(v_part, '{}');
    END LOOP;
    RETURN v_rows;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_rows(uuid, uuid[], uuid[]) IS
    'Internal (Citus): the rows of public.step_library with the given (tree_key, id), with their flow''s name, as stepsync.search_steps returns them, read from this worker''s own shards with the caller''s rights (through the distributed tables when the anchor is null); stepsync.search_steps calls it once a worker (docs/contract.md §11.3).';
