-- stepsync.search_steps(p_user_id, p_query, ...): full-text search over the
-- steps a user may see (SPEC §6.8), best match first, with the rank.
--
-- p_query is web-search syntax (words, "quoted phrases", -excluded, or).
-- Matches title, group label, instructions, help text and commands (weighted
-- in that order, see stepsync._search_document); optional filters narrow to
-- one step_type, one group label (exact) or one source flow; p_limit caps the
-- rows (default 20, null for all). Only active steps visible to the user
-- (the rules of stepsync.visible_steps) are returned. Backed by the partial
-- GIN index step_library_search_idx. Runs with the caller's rights.
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
    rank real
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
    WITH query AS (
        SELECT pg_catalog.websearch_to_tsquery('pg_catalog.english', p_query) AS q
    ),
    viewer AS (
        SELECT (SELECT u.account_id FROM public.users AS u WHERE u.id = p_user_id) AS account_id
    ),
    hits AS (
        SELECT s.*, pg_catalog.ts_rank(stepsync._search_document(s.title, s.content), query.q) AS rank
          FROM public.step_library AS s, query, viewer
         WHERE s.is_active
           AND stepsync._search_document(s.title, s.content) @@ query.q
           AND (s.visibility = 'public'
                OR s.created_by = p_user_id
                OR (s.visibility = 'team' AND s.account_id = viewer.account_id))
           AND (p_step_type IS NULL OR s.step_type = p_step_type)
           AND (p_group_label IS NULL OR s.content ->> 'group_label' = p_group_label)
           AND (p_source_tree_id IS NULL OR s.source_tree_id = p_source_tree_id)
         ORDER BY rank DESC, s.id
         LIMIT p_limit
    )
    SELECT h.id, h.title, h.step_type, h.content, h.visibility, h.created_by, h.account_id, h.usage_count,
           h.rating, h.rating_count, h.is_active, h.created_at, h.updated_at, h.source_tree_id, h.source_node_id,
           h.is_flow_synced, h.last_synced_at, h.forked_from_id, t.name, h.rank
      FROM hits AS h
      LEFT JOIN public.trees AS t ON t.id = h.source_tree_id
     ORDER BY h.rank DESC, h.id
$function$;

COMMENT ON FUNCTION stepsync.search_steps(uuid, text, text, text, uuid, integer) IS
    'Full-text search over the active steps a user may see, best match first with its rank; filters by step type, group label and source flow (SPEC §6.8).';
