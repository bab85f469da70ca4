-- The sync columns of public.step_library on a Citus coordinator (docs/contract.md §11.2), added or
-- adopted: the distributed variant of db/install/columns.sql and search.sql.
--
-- What differs from one node, because Citus requires it (docs/scaling.md §2.2, §2.5):
--  * the key the sync upserts on is step_library_source_key UNIQUE (tree_key, source_node_id):
--    a unique key must contain the distribution column, tree_key;
--  * no foreign key on source_tree_id (Citus refuses ON DELETE SET NULL with the distribution column
--    in the key, and a hand-made row has no flow): stepsync.tg_trees__retire_on_delete retires a
--    deleted flow's entries and sets their source_tree_id to null itself, and stepsync.check_library
--    reports an active entry whose flow is gone;
--  * no foreign key on forked_from_id (a fork and its original live on different shards): a fork whose
--    original is deleted keeps forked_from_id, and readers treat an id they cannot find as "original gone".
-- Columns the application already has are adopted as they are (the preflight checked their types);
-- what stepsync adds carries a comment starting with "stepsync:", as on one node. Distributed DDL
-- reaches every shard in this transaction (Citus propagates it from the coordinator).
DO $stepsync$
DECLARE
    v_lib constant pg_catalog.regclass := 'public.step_library'::pg_catalog.regclass;
    v_col record;
BEGIN
    FOR v_col IN
        SELECT x.attname, x.definition, x.comment
          FROM (VALUES
                (1, 'source_tree_id', 'uuid',
                 'stepsync: the flow this entry is synced from; set to null when the flow is deleted.'),
                (2, 'source_node_id', 'varchar(255)',
                 'stepsync: the node''s "id" within the flow''s tree_structure.'),
                (3, 'is_flow_synced', 'boolean NOT NULL DEFAULT false',
                 'stepsync: true for entries owned by a flow (read-only, maintained by the sync); false for hand-made rows and forks.'),
                (4, 'last_synced_at', 'timestamptz',
                 'stepsync: when a publish last changed or revived this entry.'),
                (5, 'forked_from_id', 'uuid',
                 'stepsync: the entry this one was forked from (stepsync.fork_step), if any; not a foreign key on Citus (docs/contract.md §11).'),
                (6, 'search_vector', 'tsvector',
                 'stepsync: what stepsync.search_steps searches: the weighted text of the step and its audience,'
                 ' popularity and group-label keys, stored by stepsync.tg_step_library__search_vector (never write'
                 ' it yourself: it is recomputed).')
               ) AS x (ord, attname, definition, comment)
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid = v_lib AND a.attname = x.attname AND NOT a.attisdropped)
         ORDER BY x.ord
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE public.step_library ADD COLUMN %I %s', v_col.attname, v_col.definition);
        EXECUTE pg_catalog.format('COMMENT ON COLUMN public.step_library.%I IS %L', v_col.attname, v_col.comment);
    END LOOP;
    -- An adopted is_flow_synced: hand-made rows that the application inserts without it are hand-made.
    ALTER TABLE public.step_library ALTER COLUMN is_flow_synced SET DEFAULT false;

    -- The invariants of synced rows, as on one node.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_source_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_source_check
            CHECK (is_flow_synced OR (source_tree_id IS NULL AND source_node_id IS NULL));
    END IF;
    COMMENT ON CONSTRAINT step_library_source_check ON public.step_library IS
        'stepsync: only synced entries have a source flow or node.';
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_synced_node_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_synced_node_check
            CHECK (NOT is_flow_synced OR source_node_id IS NOT NULL);
    END IF;
    COMMENT ON CONSTRAINT step_library_synced_node_check ON public.step_library IS
        'stepsync: a synced entry always knows its node.';
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_synced_active_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_synced_active_check
            CHECK (NOT (is_flow_synced AND is_active) OR source_tree_id IS NOT NULL);
    END IF;
    COMMENT ON CONSTRAINT step_library_synced_active_check ON public.step_library IS
        'stepsync: an active synced entry always has its flow: deleting the flow retires its entries first.';
    -- A synced entry lives on its flow's shard: its tree_key is its flow's id while it has one.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_tree_key_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_tree_key_check
            CHECK (source_tree_id IS NULL OR tree_key = source_tree_id);
    END IF;
    COMMENT ON CONSTRAINT step_library_tree_key_check ON public.step_library IS
        'stepsync: a synced entry lives on its flow''s shard (tree_key is the flow''s id; docs/contract.md §11.1).';

    -- The key the sync upserts on. An application's own unique key on the same two columns is adopted.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.contype = 'u'
                      AND ARRAY(SELECT k FROM pg_catalog.unnest(c.conkey) AS k ORDER BY k) = ARRAY(
                          SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                           WHERE a.attrelid = v_lib AND a.attname IN ('tree_key', 'source_node_id')
                           ORDER BY a.attnum)) THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_source_key UNIQUE (tree_key, source_node_id);
        COMMENT ON CONSTRAINT step_library_source_key ON public.step_library IS
            'stepsync: one entry per node of a flow: the key the sync upserts on (with tree_key, the distribution column).';
    END IF;

    -- The indexes: look-ups by id alone (the primary key starts with tree_key, so without this every shard
    -- would scan it: stepsync.search_steps reads its rows by id, and so may the application's usage
    -- bumps), lineage look-ups, and the full-text index behind stepsync.search_steps (one per shard).
    IF pg_catalog.to_regclass('public.step_library_id_idx') IS NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i
                        WHERE i.indrelid = v_lib AND i.indpred IS NULL AND i.indexprs IS NULL
                          AND i.indkey[0] = (SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                                              WHERE a.attrelid = v_lib AND a.attname = 'id')) THEN
        CREATE INDEX step_library_id_idx ON public.step_library (id);
        COMMENT ON INDEX public.step_library_id_idx IS
            'stepsync: look-ups by id alone on Citus, where the primary key is (tree_key, id).';
    END IF;
    IF pg_catalog.to_regclass('public.step_library_forked_from_id_idx') IS NULL THEN
        CREATE INDEX step_library_forked_from_id_idx ON public.step_library (forked_from_id)
            WHERE forked_from_id IS NOT NULL;
        COMMENT ON INDEX public.step_library_forked_from_id_idx IS 'stepsync: lineage look-ups (forks of a step).';
    END IF;
    IF pg_catalog.to_regclass('public.step_library_search_vector_idx') IS NULL THEN
        CREATE INDEX step_library_search_vector_idx ON public.step_library USING gin (search_vector)
            WHERE is_active;
        COMMENT ON INDEX public.step_library_search_vector_idx IS
            'stepsync: the search vectors of active steps, for stepsync.search_steps.';
    END IF;
END;
$stepsync$;
