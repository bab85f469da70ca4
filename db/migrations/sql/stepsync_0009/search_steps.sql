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
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
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
SELECT s.id, s.title::text, s.step_type::text, s.content, s.visibility::text, s.created_by, s.account_id,
       s.usage_count, s.rating, s.rating_count, s.is_active, s.created_at::timestamptz,
       s.updated_at::timestamptz, s.source_tree_id, s.source_node_id::varchar, s.is_flow_synced,
       s.last_synced_at::timestamptz, s.forked_from_id, t.name::text,
       (CASE c.tier WHEN 4 THEN 1.0 WHEN 3 THEN 0.4 WHEN 2 THEN 0.2 ELSE 0.1 END)::real,
       c.complete
  FROM stepsync._search_ranked(p_user_id, p_query, p_step_type, p_group_label, p_source_tree_id, p_limit)
       WITH ORDINALITY AS c (id, tier, usage_count, rating, complete, position)
  JOIN public.step_library AS s ON s.id = c.id
  LEFT JOIN public.trees AS t ON t.id = s.source_tree_id
 ORDER BY c.position
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
