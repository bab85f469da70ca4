-- stepsync._sync(...) on a Citus coordinator and its workers: publish one listed flow into the
-- library (docs/contract.md §5.1, §5.2, §11.3). The distributed variant of db/functions/_sync.sql:
-- the same inputs, checks, writes and result, as separate statements that each stay on the flow's
-- shard. The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync._sync(
    p_tree_id uuid,
    p_tree_type text,
    p_structure jsonb,
    p_is_public boolean,
    p_account_id uuid,
    p_author_id uuid,
    p_previous jsonb DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling these plans costs more than running them (measured on one node: 30-80 ms)
AS $function$
-- Publishes one listed flow into the library on Citus (docs/contract.md §5.1, §5.2, §11.3): writes
-- the entries its structure yields and retires those whose node is gone, exactly as on one node.
--
-- On Citus the sync trigger fires on the worker that holds the flow's row, and a statement run
-- there may only reach the co-located shard of the same distribution value. One statement of CTEs
-- (the one-node form) is planned as several subplans whose results travel between nodes, and
-- breaks when one UPDATE publishes several flows. So the work is split into statements that each
-- read or write step_library only through tree_key = p_tree_id (the flow's shard), or read no
-- distributed table at all:
--  1. the flow's synced entries, read into an array (one shard, no lock);
--  2. nodes and entries paired in memory (stepsync._nodes, which raises 23514 before anything is
--     written when the structure fails docs/contract.md §4, FULL JOIN the array: no table);
--  3. every entry to rewrite or retire locked, in source_node_id order (one shard), so that two
--     writers that take a flow's entries in that order never deadlock;
--  4. new and differing entries upserted on (tree_key, source_node_id) (one shard: every row carries
--     tree_key = p_tree_id); an entry whose values would not change is not written and keeps its row
--     version and last_synced_at; the WHERE repeats the comparison, for safety's sake. The upsert also
--     sets source_tree_id, which on one node never changes: a flow deleted (its entries' source_tree_id
--     nulled by stepsync.tg_trees__retire_on_delete) and inserted again with the same id finds its
--     old entries under the same key and takes them back;
--  5. entries whose node is gone retired (is_active = false; one shard).
-- Steps 1, 3, 4 and 5 run on the flow's shard of step_library itself, on this worker, by EXECUTE
-- with the values as parameters (stepsync._flow_shard names it, and says why: on the distributed
-- table Citus plans each statement again, and routes the upsert's rows through intermediate
-- results); on a node that does not hold the shard the sync refuses, 0A000, before any write.
--
-- Reading without a lock in 1 is safe: the values compared change only through the sync of this
-- flow, which the flow's row lock (the client's UPDATE, or stepsync.sync_tree) serialises; clients'
-- usage and rating writes do not enter the comparison. now() is taken once and passed as a value.
--
-- p_previous: as on one node, the structure the library was last synced from, when the caller knows
-- it; stepsync._nodes then shapes only the nodes that changed. If an unchanged node's entry is
-- missing or differs, nothing is written and the steps run again as a full sync.
--
-- While it writes, stepsync.sync_writing = 'on' (restored afterwards), set in this worker's backend:
-- the guards on the shard see it; a client's SET on the coordinator never reaches them unless
-- citus.propagate_set_commands = 'local', and then stepsync.tg_step_library__check_marker refuses a
-- role that is not the owner (docs/contract.md §11.3).
DECLARE
    v_now constant timestamptz := pg_catalog.now();
    v_previous jsonb := p_previous;
    v_library text;                 -- the flow's shard of step_library (stepsync._flow_shard)
    v_entries public.step_library[];
    v_write stepsync.library_node[];
    v_lock uuid[];
    v_retire uuid[];
    v_incomplete boolean;
    v_upserted integer;
    v_retired integer;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    PERFORM stepsync._refuse_on_coordinator();
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);
    v_library := stepsync._flow_shard(p_tree_id);
    -- 1. What the library holds for this flow now (the flow's shard; a shard's row has the table's columns).
    EXECUTE pg_catalog.format('SELECT ARRAY(SELECT ROW(s.*)::public.step_library FROM %s AS s
                                             WHERE s.tree_key = $1 AND s.is_flow_synced)', v_library)
       INTO v_entries
      USING p_tree_id;
    LOOP
        -- 2. Node and entry side by side; kept where the entry is new or differs, or is to retire.
        WITH nodes AS (
            SELECT n.* FROM stepsync._nodes(p_tree_id, p_tree_type, p_structure, p_is_public, true, false,
                                            v_previous) AS n
        ),
        pairs AS MATERIALIZED (
            SELECT x.*
              FROM (SELECT n AS node, n.source_node_id AS node_id, n.content AS node_content,
                           e.id AS entry_id, e.is_active AS entry_active,
                           e.id IS NULL
                             OR (e.title, e.step_type, e.visibility, e.account_id, e.is_active)
                                IS DISTINCT FROM (n.title, n.step_type, n.visibility, p_account_id, true)
                             OR (n.content IS NOT NULL AND e.content IS DISTINCT FROM n.content) AS differs
                      FROM nodes AS n
                      FULL JOIN pg_catalog.unnest(v_entries) AS e
                        ON e.source_node_id::text = n.source_node_id) AS x
             WHERE (x.node_id IS NOT NULL AND x.differs) OR (x.node_id IS NULL AND x.entry_active)
        )
        SELECT EXISTS (SELECT 1 FROM pairs AS p WHERE p.node_id IS NOT NULL AND p.node_content IS NULL),
               ARRAY(SELECT p.node FROM pairs AS p WHERE p.node_id IS NOT NULL),
               ARRAY(SELECT p.entry_id FROM pairs AS p WHERE p.entry_id IS NOT NULL),
               ARRAY(SELECT p.entry_id FROM pairs AS p WHERE p.node_id IS NULL)
          INTO v_incomplete, v_write, v_lock, v_retire;
        EXIT WHEN NOT v_incomplete;
        v_previous := NULL;   -- once more, as a full sync: every node shaped and compared
    END LOOP;

    -- 3. Lock what will change, in node-id order (the flow's shard).
    IF pg_catalog.cardinality(v_lock) > 0 THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM (SELECT 1 FROM %s AS s
                                    WHERE s.tree_key = $1 AND s.id = ANY ($2)
                                    ORDER BY s.source_node_id
                                      FOR NO KEY UPDATE) AS l', v_library)
          USING p_tree_id, v_lock;
    END IF;
    -- 4. New and differing entries (the flow's shard).
    v_upserted := 0;
    IF pg_catalog.cardinality(v_write) > 0 THEN
        EXECUTE pg_catalog.format($upsert$
            INSERT INTO %s AS s
                   (tree_key, title, step_type, content, visibility, created_by, account_id,
                    is_flow_synced, source_tree_id, source_node_id, last_synced_at, is_active)
            SELECT $1, w.title, w.step_type, w.content, w.visibility, $2, $3,
                   true, $1, w.source_node_id, $4, true
              FROM pg_catalog.unnest($5) AS w
            ON CONFLICT (tree_key, source_node_id) DO UPDATE
               SET title = EXCLUDED.title,
                   step_type = EXCLUDED.step_type,
                   content = EXCLUDED.content,
                   visibility = EXCLUDED.visibility,
                   account_id = EXCLUDED.account_id,
                   source_tree_id = EXCLUDED.source_tree_id,
                   last_synced_at = EXCLUDED.last_synced_at,
                   is_active = true
             WHERE s.is_flow_synced
               AND (s.title, s.step_type, s.content, s.visibility, s.account_id, s.is_active, s.source_tree_id)
                   IS DISTINCT FROM
                   (EXCLUDED.title, EXCLUDED.step_type, EXCLUDED.content, EXCLUDED.visibility, EXCLUDED.account_id,
                    true, EXCLUDED.source_tree_id)$upsert$, v_library)
          USING p_tree_id, p_author_id, p_account_id, v_now, v_write;
        GET DIAGNOSTICS v_upserted = ROW_COUNT;
    END IF;
    -- 5. Entries whose node is gone (the flow's shard).
    v_retired := 0;
    IF pg_catalog.cardinality(v_retire) > 0 THEN
        EXECUTE pg_catalog.format('UPDATE %s AS s
                                      SET is_active = false
                                    WHERE s.tree_key = $1 AND s.id = ANY ($2) AND s.is_active', v_library)
          USING p_tree_id, v_retire;
        GET DIAGNOSTICS v_retired = ROW_COUNT;
    END IF;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN v_upserted + v_retired;
END;
$function$;

COMMENT ON FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid, jsonb) IS
    'Internal: upserts a listed flow''s entries and retires those whose node is gone, as statements that stay on the flow''s shard (docs/contract.md §5.1, §5.2, §11.3); with the previously synced structure, shapes only the steps that changed. Returns rows written.';

REVOKE ALL ON FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid, jsonb) FROM PUBLIC;
