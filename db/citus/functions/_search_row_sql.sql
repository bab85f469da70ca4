-- stepsync._search_row_sql (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_row_sql(p_steps text, p_trees text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_row_sql(p_steps, p_trees): the text of a query that returns, for each row s of the FROM
-- item p_steps (which names rows of public.step_library, or of its shards, s), its id and the row as
-- stepsync.search_steps returns it (its columns as declared: text for varchar, timestamptz for timestamp),
-- with its flow's name from the table p_trees (public.trees, or the shard of it, or the union of this node's
-- shards of it, holding the flow by tree_key; only for a row synced from a flow): as the text of a
-- stepsync.search_row, the form in which a worker's rows travel to the coordinator (docs/contract.md
-- §11.4). The one place where a search's row is made from the tables on Citus: stepsync._search_read
-- (rows by their keys) and stepsync._search_walk (the rows of its best matches, in the statement that
-- finds them) both build their statements from it. The flow's name is a look-up by the flow's key for
-- each row (a statement prepared once is planned without knowing how few rows there are: a join could
-- read every flow of the shards).
SELECT pg_catalog.format($sql$
    SELECT s.id AS found_id,
           ROW(s.id, s.title::text, s.step_type::text, s.content, s.visibility::text, s.created_by, s.account_id,
               s.usage_count, s.rating, s.rating_count, s.is_active, s.created_at::timestamptz,
               s.updated_at::timestamptz, s.source_tree_id, s.source_node_id::varchar, s.is_flow_synced,
               s.last_synced_at::timestamptz, s.forked_from_id,
               CASE WHEN s.source_tree_id IS NOT NULL
                    THEN (SELECT t.name::text FROM %2$s AS t WHERE t.id = s.tree_key) END
           )::stepsync.search_row::text AS found_row
      FROM %1$s$sql$, p_steps, p_trees)
$function$;

COMMENT ON FUNCTION stepsync._search_row_sql(text, text) IS
    'Internal (Citus): the text of the query that makes each row a search returns, with its flow''s name, as the text of a stepsync.search_row, from rows of public.step_library or of its shards; stepsync._search_read and stepsync._search_walk build their statements from it (docs/contract.md §11.4).';
