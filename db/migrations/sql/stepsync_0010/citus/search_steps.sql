-- stepsync.search_steps on Citus: the distributed variant of db/functions/search_steps.sql (docs/contract.md
-- §6.8, §11.3): the same rows in the same order, in PL/pgSQL, with the flows' names found by tree_key.
-- stepsync.search_steps: the explanation is the comment at the top of its body (\sf stepsync.search_steps shows it).
CREATE OR REPLACE FUNCTION stepsync.search_steps(
    p_user_id uuid,
    p_query text,
    p_step_type text DEFAULT NULL,
    p_group_label text DEFAULT NULL,
    p_source_tree_id uuid DEFAULT NULL,
    p_limit integer DEFAULT 20
)
RETURNS TABLE (
    id uuid,
    title text,
    step_type text,
    content jsonb,
    visibility text,
    created_by uuid,
    account_id uuid,
    usage_count integer,
    rating numeric,
    rating_count integer,
    is_active boolean,
    created_at timestamptz,
    updated_at timestamptz,
    source_tree_id uuid,
    source_node_id varchar,
    is_flow_synced boolean,
    last_synced_at timestamptz,
    forked_from_id uuid,
    source_tree_name text,
    rank real,
    complete boolean
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
-- one connection a worker for each of the search's small queries (measured: half the time of the default)
SET citus.max_adaptive_executor_pool_size = 1
AS $function$
-- stepsync.search_steps(p_user_id, p_query, ...): full-text search over the
-- steps a user may see (docs/contract.md §6.8), best match first, each with its rank and
-- whether the ranking saw every match (complete).
--
-- p_query is web-search syntax (words, "quoted phrases", -excluded, or);
-- optional filters narrow to one step_type, one group label (exact) or one
-- source flow; p_limit caps the rows (default 20, null for all). Only active
-- steps visible to the user (stepsync._may_see, the rule of stepsync.visible_steps) come back.
-- An empty or stop-word-only query returns no rows. A query of more than 256
-- characters or 16 terms (words, those of phrases and excluded words
-- included) fails with 54000 (program_limit_exceeded). Runs with the caller's
-- rights.
--
-- Order: the tier of the match first (the query holds on the title alone:
-- rank 1.0; on title and group label: 0.4; with the instructions too: 0.2;
-- anywhere, help text and commands included: 0.1), then usage_count
-- descending, rating descending (none last), id.
--
-- Candidates (the rule; the COMMENT says it in short). The visible matches
-- fall into popularity classes (stepsync._popularity_class), in this order: 12
-- classes by usage_count (8,192 and more; 4,096 to 8,191; ... ; 4 to 7), then
-- the steps used fewer than 4 times, in 64 parts by the first 6 bits of their
-- id (part 0 first). Whole classes are taken in that
-- order until more than T = max(B, p_limit) matches are in hand (B = 200; the
-- setting stepsync.search_candidates changes it, for tests; the setting
-- stepsync.search_estimate replaces the estimate below, so tests can take
-- each way through; neither changes what the rule returns for a given B). If fewer than
-- p_limit of those in the first 12 classes hold in the title alone, every
-- visible match that holds in the title alone is a candidate too (not for a
-- query that has an OR and an excluded term, or only excluded terms). The
-- candidates are ranked exactly, and complete is false on every row. When
-- there are at most T visible matches (with p_limit null: always) they are all
-- ranked and complete is true; with p_source_tree_id every match of that flow
-- is ranked (complete). So the order is exact when at most B entries match;
-- there are never fewer rows than the smaller of p_limit and the number of
-- visible matches; and the first p_limit rows are exact whenever at least
-- p_limit visible matches hold in the title alone (but for that exception).
--
--
-- How: stepsync._search_ranked finds and ranks the matches (its body says how, and why it runs as
-- the owner); this reads their rows with the caller's rights, so the caller needs SELECT on
-- step_library and on trees (id, name), and every row-level security policy on them holds. Under
-- stepsync's row-level security (docs/contract.md §12.2) a row comes back only if the user the
-- request acts for may see it, whatever p_user_id says.
-- The columns as declared: an application's table may have varchar where the result says text, or
-- timestamp where it says timestamptz (the install accepts both).
-- On Citus (docs/contract.md §11.3), this is PL/pgSQL, not SQL: Citus cannot plan a distributed
-- query that uses an SQL function's parameters. The ranked ids are taken first (stepsync._search_ranked
-- has every worker search its own shards at once), with the rows the workers read with them when that is
-- what the caller's read gives (its body says when); any other row, with its flow's name, is then read by
-- its primary key (tree_key, id) on every worker at once, from its own shards, with the caller's rights
-- (stepsync._search_rows); all are returned in the ranked order.
-- The search's queries are many and small (index look-ups, each sent to every shard): one connection a
-- worker runs them faster than the several Citus opens by default (citus.max_adaptive_executor_pool_size,
-- set on this function: on 100,000 entries, 46-66 ms against 110-160 ms for the same queries).
#variable_conflict use_column
DECLARE
    v_ids uuid[];
    v_tiers integer[];
    v_complete boolean[];
    v_rows stepsync.search_row[];
    v_keys uuid[];                  -- the matches whose rows are still to read: (tree_key, id)
    v_unread uuid[];
    v_anchors uuid[];
    v_found stepsync.search_row[];
    v_more stepsync.search_row[] := '{}'::stepsync.search_row[];
    v_reads integer := 0;
BEGIN
    SELECT pg_catalog.array_agg(c.id ORDER BY c.position), pg_catalog.array_agg(c.tier ORDER BY c.position),
           pg_catalog.array_agg(c.complete ORDER BY c.position),
           COALESCE(pg_catalog.array_agg(c.found) FILTER (WHERE (c.found).id IS NOT NULL), '{}'),
           pg_catalog.array_agg(c.tree_key) FILTER (WHERE (c.found).id IS NULL),
           pg_catalog.array_agg(c.id) FILTER (WHERE (c.found).id IS NULL)
      INTO v_ids, v_tiers, v_complete, v_rows, v_keys, v_unread
      FROM stepsync._search_ranked(p_user_id, p_query, p_step_type, p_group_label, p_source_tree_id, p_limit)
           WITH ORDINALITY AS c (id, tier, usage_count, rating, complete, tree_key, found, position);
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    IF v_unread IS NOT NULL THEN
        -- The other rows, read on each worker from its own shards (stepsync._search_rows), or through the
        -- distributed tables when a worker's anchor is missing.
        v_anchors := stepsync._search_anchors();
        FOR v_found IN SELECT stepsync._search_rows(a.tree_key, v_keys, v_unread)
                         FROM stepsync.search_anchors AS a
                        WHERE a.tree_key = ANY (v_anchors) LOOP
            v_reads := v_reads + 1;
            v_more := v_more || v_found;
        END LOOP;
        IF v_reads < pg_catalog.cardinality(v_anchors) THEN
            v_more := stepsync._search_rows(NULL, v_keys, v_unread);
        END IF;
        v_rows := v_rows || v_more;
    END IF;
    RETURN QUERY
    SELECT r.id, r.title, r.step_type, r.content, r.visibility, r.created_by, r.account_id, r.usage_count,
           r.rating, r.rating_count, r.is_active, r.created_at, r.updated_at, r.source_tree_id, r.source_node_id,
           r.is_flow_synced, r.last_synced_at, r.forked_from_id, r.source_tree_name,
           (CASE v_tiers[o.position] WHEN 4 THEN 1.0 WHEN 3 THEN 0.4 WHEN 2 THEN 0.2 ELSE 0.1 END)::real,
           v_complete[o.position]
      FROM pg_catalog.unnest(v_rows) AS r,
           LATERAL (SELECT pg_catalog.array_position(v_ids, r.id) AS position) AS o
     ORDER BY o.position;
END;
$function$;

COMMENT ON FUNCTION stepsync.search_steps(uuid, text, text, text, uuid, integer) IS
    'Full-text search over the active steps a user may see (docs/contract.md §6.8), best match first: tier (the'
    ' query holds on the title alone 1.0, on title and group label 0.4, with the instructions 0.2, anywhere 0.1),'
    ' then usage_count desc, rating desc nulls last, id. Candidates, by popularity class (usage_count >= 8192,'
    ' 4096-8191, ..., 4-7, then the steps used fewer than 4 times in 64 parts by the first 6 bits of the id):'
    ' whole classes of visible matches in that order until more than max(200, limit) are taken; if fewer than'
    ' limit of those used 4 times or more hold in the title alone, also every visible match that does (not for a'
    ' query with an OR and an excluded term). They are ranked exactly and complete = false. When there are no'
    ' more matches than max(200, limit), all are ranked and complete = true; with a source flow, every match of'
    ' the flow is ranked. Limits: a query of more than 256 characters, or of more than 16 terms (words, those of'
    ' phrases and excluded words included, stop words not), fails with 54000.';
