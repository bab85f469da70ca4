-- stepsync._sync(...): publish one listed flow into the library (SPEC §5.1, §5.2).
--
-- One statement does the whole work:
--  * the flow's nodes come from stepsync._nodes, which raises 23514 before
--    anything is written when the structure fails §4;
--  * nodes and the flow's entries are paired by a FULL JOIN (hashed or merged
--    whatever the estimates, never a nested loop of nodes x entries);
--  * every entry to rewrite (its values differ) or retire (its node is gone)
--    is locked first, in source_node_id order, so that two writers that take
--    a flow's entries in that order never deadlock (clients incrementing
--    several entries in one transaction should do likewise);
--  * new and differing entries are upserted on (source_tree_id,
--    source_node_id); an entry whose values would not change is not written at
--    all and keeps its row version and last_synced_at, so a republish with one
--    edit rewrites one row. The existing rows it writes are already locked, in
--    key order, and new keys of a flow are only ever inserted by the sync of
--    that flow, which the flow's row lock serialises: so the upsert needs no
--    ORDER BY of its own (sorting 10,000 wide rows would spill out of
--    work_mem). Its WHERE repeats the comparison, for safety's sake;
--  * entries whose node is gone are retired (is_active = false).
-- id, usage_count, rating, rating_count, created_by and created_at are never
-- touched on update; hand-made rows and forks (is_flow_synced = false) never
-- at all. Returns how many rows were written (inserted, updated or retired).
-- While it writes, stepsync.sync_writing = 'on' (restored afterwards): the
-- read-only guards on step_library let such writes through, and
-- stepsync.tg_step_library__check_marker makes sure only the owner, that is
-- the sync's SECURITY DEFINER callers, writes under that marker.
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
SET jit = off  -- compiling these plans costs more than running them (measured: 30-80 ms)
-- (custom plans, planned at each call: they see how big step_library is now, so they look
-- rows up by index; a generic plan made while the table was small would scan it)
AS $function$
DECLARE
    v_written integer;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    WITH nodes AS MATERIALIZED (
        SELECT n.source_node_id, n.title, n.step_type, n.content, n.visibility
          FROM stepsync._nodes(p_tree_id, p_tree_type, p_structure, p_is_public) AS n
    ),
    entries AS MATERIALIZED (   -- what the library holds for this flow now
        SELECT s.id, s.source_node_id::text AS source_node_id, s.title, s.step_type, s.content, s.visibility,
               s.account_id, s.is_active
          FROM public.step_library AS s
         WHERE s.source_tree_id = p_tree_id AND s.is_flow_synced
    ),
    pairs AS MATERIALIZED (     -- node and entry side by side; a FULL JOIN is always hashed or merged
        SELECT n.source_node_id AS node_id, n.title, n.step_type, n.content, n.visibility,
               e.id AS entry_id, e.is_active AS entry_active,
               e.id IS NULL
                 OR (e.title, e.step_type, e.content, e.visibility, e.account_id, e.is_active)
                    IS DISTINCT FROM (n.title, n.step_type, n.content, n.visibility, p_account_id, true) AS differs
          FROM nodes AS n
          FULL JOIN entries AS e ON e.source_node_id = n.source_node_id
    ),
    locked AS (                 -- every entry this publish will rewrite or retire, locked in node-id order first
        SELECT s.id
          FROM public.step_library AS s
         WHERE s.id = ANY (ARRAY(SELECT p.entry_id FROM pairs AS p
                                  WHERE p.entry_id IS NOT NULL
                                    AND ((p.node_id IS NOT NULL AND p.differs) OR (p.node_id IS NULL AND p.entry_active))))
         ORDER BY s.source_node_id
           FOR NO KEY UPDATE
    ),
    upserted AS (               -- new entries and entries whose values differ; unchanged ones are not written
        INSERT INTO public.step_library AS s
               (title, step_type, content, visibility, created_by, account_id,
                is_flow_synced, source_tree_id, source_node_id, last_synced_at, is_active)
        SELECT p.title, p.step_type, p.content, p.visibility, p_author_id, p_account_id,
               true, p_tree_id, p.node_id, pg_catalog.now(), true
          FROM pairs AS p
         WHERE p.node_id IS NOT NULL AND p.differs
           AND (SELECT pg_catalog.count(*) FROM locked) >= 0   -- takes the locks before the first write
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
    retired AS (                -- active entries whose node is gone
        UPDATE public.step_library AS s
           SET is_active = false
         WHERE s.id = ANY (ARRAY(SELECT p.entry_id FROM pairs AS p
                                  WHERE p.entry_id IS NOT NULL AND p.node_id IS NULL AND p.entry_active))
           AND (SELECT pg_catalog.count(*) FROM locked) >= 0
        RETURNING 1
    )
    SELECT (SELECT pg_catalog.count(*) FROM upserted) + (SELECT pg_catalog.count(*) FROM retired)
      INTO v_written;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_written;
END;
$function$;

COMMENT ON FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid) IS
    'Internal: upserts a listed flow''s entries and retires those whose node is gone, in one statement (SPEC §5.1, §5.2). Returns rows written.';

REVOKE ALL ON FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid) FROM PUBLIC;
