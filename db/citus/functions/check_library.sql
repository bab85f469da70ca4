-- stepsync.check_library on Citus: the distributed variant of db/functions/check_library.sql
-- (docs/contract.md §11.3): the same differences, with the entries' flows found by tree_key (Citus joins
-- two distributed tables only on their distribution columns).
-- stepsync.check_library: the explanation is the comment at the top of its body (\sf stepsync.check_library shows it).
CREATE OR REPLACE FUNCTION stepsync.check_library()
RETURNS TABLE (
    difference text,
    tree_id uuid,
    source_node_id text,
    entry jsonb
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling these plans costs more than running them (measured: 30-80 ms)
AS $function$
-- stepsync.check_library(): the oracle. Derives from scratch, from the flows
-- alone, what step_library must hold, and returns every difference from what
-- it does hold (EXCEPT ALL, both ways). No rows: the library is consistent.
--
-- What must hold (docs/contract.md §5):
--  * a listed flow (published and active): exactly one active synced entry per
--    node its structure yields (stepsync._nodes), with that title, step_type,
--    content and visibility and the flow's account_id; any other active synced
--    entry of the flow is a difference ("unexpected");
--  * a deactivated or archived flow: no active synced entry;
--  * a draft: whatever its last publish left (§5.4), so not compared;
--  * a synced entry whose flow is gone (source_tree_id null): retired;
--  * a listed flow whose structure fails the publish checks: reported with
--    its problem (only reachable with the triggers disabled).
-- Read-only; runs with the caller's rights. A tool for DBAs (stepsync check)
-- and the invariant of the concurrency, property and soak tests.
-- It reads as the sync: stepsync.sync_writing = 'on' while it runs (restored afterwards), so that the
-- stepsync_sync policies let the owner past the application's row-level security (docs/contract.md
-- §12.1); for any other role the marker changes nothing.
#variable_conflict use_column
DECLARE
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    RETURN QUERY
    WITH derived AS (
        SELECT t.id AS tree_id, n.source_node_id, n.problem, n.problem_path,
               pg_catalog.jsonb_build_object('title', n.title, 'step_type', n.step_type, 'content', n.content,
                                             'visibility', n.visibility, 'account_id', t.account_id) AS entry
          FROM public.trees AS t
          CROSS JOIN LATERAL stepsync._nodes(t.id, t.tree_type, t.tree_structure, t.is_public, false) AS n
         WHERE t.status = 'published' AND t.is_active
    ),
    expected AS (
        SELECT d.tree_id, d.source_node_id::text, d.entry FROM derived AS d WHERE d.problem IS NULL
    ),
    actual AS (
        SELECT s.source_tree_id, s.source_node_id::text,
               pg_catalog.jsonb_build_object('title', s.title, 'step_type', s.step_type, 'content', s.content,
                                             'visibility', s.visibility, 'account_id', s.account_id)
          FROM public.step_library AS s
          LEFT JOIN public.trees AS t ON t.id = s.tree_key AND s.source_tree_id IS NOT NULL  -- Citus: the flow's shard
         WHERE s.is_flow_synced AND s.is_active
           AND NOT ((t.status = 'draft' AND t.is_active) IS TRUE)   -- drafts are not compared; orphans are
    )
    SELECT 'missing' AS difference, m.* FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM actual) AS m
    UNION ALL
    SELECT 'unexpected', u.* FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected) AS u
    UNION ALL
    SELECT 'listed flow fails the publish checks', d.tree_id, d.source_node_id,
           pg_catalog.jsonb_build_object('problem', d.problem, 'path', d.problem_path)
      FROM derived AS d
     WHERE d.problem IS NOT NULL
     ORDER BY 2, 3, 1;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
END;
$function$;

COMMENT ON FUNCTION stepsync.check_library() IS
    'The oracle: every difference between step_library and what the flows say it must hold (missing, unexpected, or a listed flow failing the checks). No rows means consistent.';
