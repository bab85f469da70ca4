-- stepsync._search_rows (Citus only): the explanation is the comment at the top of its body (\sf shows it).
-- stepsync_0011: the rows are read by stepsync._search_read, which stepsync._search_local shares.
CREATE OR REPLACE FUNCTION stepsync._search_rows(p_anchor uuid, p_keys uuid[], p_ids uuid[])
RETURNS stepsync.search_row[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
-- returns what a query of the tables would. The rows are stepsync._search_read's (its body says how),
-- turned back into rows.
BEGIN
    RETURN COALESCE((SELECT pg_catalog.array_agg(r.found_row::stepsync.search_row)
                       FROM stepsync._search_read(p_keys, p_ids, p_anchor IS NOT NULL) AS r),
                    '{}'::stepsync.search_row[]);
END;
$function$;

COMMENT ON FUNCTION stepsync._search_rows(uuid, uuid[], uuid[]) IS
    'Internal (Citus): the rows of public.step_library with the given (tree_key, id), with their flow''s name, as stepsync.search_steps returns them, read from this worker''s own shards with the caller''s rights (through the distributed tables when the anchor is null); stepsync.search_steps calls it once a worker (docs/contract.md §11.4).';
