-- stepsync._sync(...): publish one listed flow into the library (SPEC §5.1, §5.2).
--
-- One statement does the whole work: the flow's nodes (stepsync._nodes, which
-- raises 23514 before anything is written when the structure fails §4) are
-- upserted on (source_tree_id, source_node_id) in source_node_id order (so that
-- concurrent publishers lock rows in the same order and cannot deadlock), and
-- the flow's active entries whose node is gone are retired in the same
-- statement. An entry whose values would not change is not written at all: it
-- keeps its row version and last_synced_at. id, usage_count, rating,
-- rating_count, created_by and created_at are never touched on update.
-- Hand-made rows and forks (is_flow_synced = false) are never touched.
-- Returns how many rows were written (inserted, updated or retired).
-- Called by the sync trigger, stepsync.sync_tree and the backfill.
CREATE OR REPLACE FUNCTION stepsync._sync(
    p_tree_id uuid,
    p_tree_type text,
    p_structure jsonb,
    p_is_public boolean,
    p_account_id uuid,
    p_author_id uuid
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_written integer;
BEGIN
    WITH nodes AS MATERIALIZED (
        SELECT n.source_node_id, n.title, n.step_type, n.content, n.visibility
          FROM stepsync._nodes(p_tree_id, p_tree_type, p_structure, p_is_public) AS n
    ),
    upserted AS (
        INSERT INTO public.step_library AS s
               (title, step_type, content, visibility, created_by, account_id,
                is_flow_synced, source_tree_id, source_node_id, last_synced_at, is_active)
        SELECT n.title, n.step_type, n.content, n.visibility, p_author_id, p_account_id,
               true, p_tree_id, n.source_node_id, pg_catalog.now(), true
          FROM nodes n
         ORDER BY n.source_node_id
        ON CONFLICT (source_tree_id, source_node_id) DO UPDATE
           SET title = EXCLUDED.title,
               step_type = EXCLUDED.step_type,
               content = EXCLUDED.content,
               visibility = EXCLUDED.visibility,
               account_id = EXCLUDED.account_id,
               last_synced_at = EXCLUDED.last_synced_at,
               is_active = true
         WHERE s.is_flow_synced
           AND (s.title, s.step_type, s.content, s.visibility, s.account_id, s.is_active)
               IS DISTINCT FROM
               (EXCLUDED.title, EXCLUDED.step_type, EXCLUDED.content, EXCLUDED.visibility, EXCLUDED.account_id, true)
        RETURNING 1
    ),
    retired AS (
        UPDATE public.step_library AS s
           SET is_active = false
         WHERE s.source_tree_id = p_tree_id
           AND s.is_flow_synced
           AND s.is_active
           AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.source_node_id = s.source_node_id)
        RETURNING 1
    )
    SELECT (SELECT pg_catalog.count(*) FROM upserted) + (SELECT pg_catalog.count(*) FROM retired)
      INTO v_written;
    RETURN v_written;
END;
$function$;

COMMENT ON FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid) IS
    'Internal: upserts a listed flow''s entries and retires those whose node is gone, in one statement (SPEC §5.1, §5.2). Returns rows written.';

REVOKE ALL ON FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid) FROM PUBLIC;
