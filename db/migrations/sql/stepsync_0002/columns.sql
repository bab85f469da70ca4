-- The sync columns of public.step_library and their constraints (docs/contract.md §1), added or adopted.
--
-- A column, foreign key or unique key that is already there with a compatible
-- type (the seed design's migration 030, or an earlier install) is adopted as
-- it is: its rows keep their ids, usage counts and ratings. What stepsync adds
-- carries a comment starting with "stepsync:", which is how
-- `stepsync uninstall --drop-columns` later knows what is its to drop; an
-- adopted object keeps the application's comment.
--
-- Everything here is quick under the table lock: new columns are nullable or
-- have a constant default (no rewrite), and constraints are added NOT VALID;
-- they are validated later, outside this transaction (validate.gexec.sql),
-- with a lock that does not block the application's reads and writes.
DO $stepsync$
DECLARE
    v_lib constant pg_catalog.regclass := 'public.step_library'::pg_catalog.regclass;
    v_col record;
BEGIN
    -- Comments written by the stepsync revisions 0001-0005 (before the "stepsync:" prefix) mark objects
    -- that stepsync added too.
    FOR v_col IN
        SELECT a.attname, x.old, x.new
          FROM (VALUES
                ('source_tree_id', 'Sync: the flow this entry is synced from; set to null when the flow is deleted.',
                 'stepsync: the flow this entry is synced from; set to null when the flow is deleted.'),
                ('source_node_id', 'Sync: the node''s "id" within the flow''s tree_structure.',
                 'stepsync: the node''s "id" within the flow''s tree_structure.'),
                ('is_flow_synced', 'Sync: true for entries owned by a flow (read-only, maintained by the sync); false for hand-made rows and forks.',
                 'stepsync: true for entries owned by a flow (read-only, maintained by the sync); false for hand-made rows and forks.'),
                ('last_synced_at', 'Sync: when a publish last changed or revived this entry.',
                 'stepsync: when a publish last changed or revived this entry.'),
                ('forked_from_id', 'The entry this one was forked from (stepsync.fork_step), if any.',
                 'stepsync: the entry this one was forked from (stepsync.fork_step), if any.')
               ) AS x (attname, old, new)
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = v_lib AND a.attname = x.attname AND NOT a.attisdropped
         WHERE pg_catalog.col_description(v_lib, a.attnum) = x.old
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN public.step_library.%I IS %L', v_col.attname, v_col.new);
    END LOOP;

    -- The five columns.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = v_lib AND a.attname = 'source_tree_id' AND NOT a.attisdropped) THEN
        ALTER TABLE public.step_library ADD COLUMN source_tree_id uuid;
        COMMENT ON COLUMN public.step_library.source_tree_id IS
            'stepsync: the flow this entry is synced from; set to null when the flow is deleted.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = v_lib AND a.attname = 'source_node_id' AND NOT a.attisdropped) THEN
        ALTER TABLE public.step_library ADD COLUMN source_node_id varchar(255);
        COMMENT ON COLUMN public.step_library.source_node_id IS
            'stepsync: the node''s "id" within the flow''s tree_structure.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = v_lib AND a.attname = 'is_flow_synced' AND NOT a.attisdropped) THEN
        ALTER TABLE public.step_library ADD COLUMN is_flow_synced boolean NOT NULL DEFAULT false;
        COMMENT ON COLUMN public.step_library.is_flow_synced IS
            'stepsync: true for entries owned by a flow (read-only, maintained by the sync); false for hand-made rows and forks.';
    ELSE
        -- Adopted: hand-made rows that the application inserts without the column are hand-made.
        ALTER TABLE public.step_library ALTER COLUMN is_flow_synced SET DEFAULT false;
        IF NOT (SELECT a.attnotnull FROM pg_catalog.pg_attribute AS a
                 WHERE a.attrelid = v_lib AND a.attname = 'is_flow_synced')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                            WHERE c.conrelid = v_lib AND c.conname = 'step_library_is_flow_synced_not_null') THEN
            -- NOT NULL without a scan under the table lock: a CHECK validated later, then SET NOT NULL
            -- (which trusts the validated CHECK; validate.gexec.sql). The CHECK stays, as the record that
            -- the column was nullable: `stepsync uninstall --drop-columns` makes it nullable again.
            ALTER TABLE public.step_library ADD CONSTRAINT step_library_is_flow_synced_not_null
                CHECK (is_flow_synced IS NOT NULL) NOT VALID;
            COMMENT ON CONSTRAINT step_library_is_flow_synced_not_null ON public.step_library IS
                'stepsync: is_flow_synced was nullable before stepsync made it NOT NULL; uninstall --drop-columns makes it nullable again.';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = v_lib AND a.attname = 'last_synced_at' AND NOT a.attisdropped) THEN
        ALTER TABLE public.step_library ADD COLUMN last_synced_at timestamptz;
        COMMENT ON COLUMN public.step_library.last_synced_at IS
            'stepsync: when a publish last changed or revived this entry.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = v_lib AND a.attname = 'forked_from_id' AND NOT a.attisdropped) THEN
        ALTER TABLE public.step_library ADD COLUMN forked_from_id uuid;
        COMMENT ON COLUMN public.step_library.forked_from_id IS
            'stepsync: the entry this one was forked from (stepsync.fork_step), if any.';
    END IF;

    -- Foreign keys, unless one on the same column to the same table exists (the preflight refused
    -- one without ON DELETE SET NULL).
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.contype = 'f'
                      AND c.confrelid = 'public.trees'::pg_catalog.regclass
                      AND c.conkey = ARRAY[(SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                                             WHERE a.attrelid = v_lib AND a.attname = 'source_tree_id')]) THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_source_tree_id_fkey
            FOREIGN KEY (source_tree_id) REFERENCES public.trees (id) ON DELETE SET NULL NOT VALID;
        COMMENT ON CONSTRAINT step_library_source_tree_id_fkey ON public.step_library IS
            'stepsync: an entry''s source flow; deleting the flow keeps the (retired) entry.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.contype = 'f' AND c.confrelid = v_lib
                      AND c.conkey = ARRAY[(SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                                             WHERE a.attrelid = v_lib AND a.attname = 'forked_from_id')]) THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_forked_from_id_fkey
            FOREIGN KEY (forked_from_id) REFERENCES public.step_library (id) ON DELETE SET NULL NOT VALID;
        COMMENT ON CONSTRAINT step_library_forked_from_id_fkey ON public.step_library IS
            'stepsync: a fork''s original; deleting the original keeps the fork.';
    END IF;

    -- The invariants of synced rows.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_source_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_source_check
            CHECK (is_flow_synced OR (source_tree_id IS NULL AND source_node_id IS NULL)) NOT VALID;
    END IF;
    COMMENT ON CONSTRAINT step_library_source_check ON public.step_library IS
        'stepsync: only synced entries have a source flow or node.';
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_synced_node_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_synced_node_check
            CHECK (NOT is_flow_synced OR source_node_id IS NOT NULL) NOT VALID;
    END IF;
    COMMENT ON CONSTRAINT step_library_synced_node_check ON public.step_library IS
        'stepsync: a synced entry always knows its node.';
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_synced_active_check') THEN
        ALTER TABLE public.step_library ADD CONSTRAINT step_library_synced_active_check
            CHECK (NOT (is_flow_synced AND is_active) OR source_tree_id IS NOT NULL) NOT VALID;
    END IF;
    COMMENT ON CONSTRAINT step_library_synced_active_check ON public.step_library IS
        'stepsync: an active synced entry always has its flow: deleting the flow retires its entries first.';

    -- Legacy comments on the key and the index stepsync created.
    IF pg_catalog.obj_description((SELECT c.oid FROM pg_catalog.pg_constraint AS c
                                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_source_key'),
                                   'pg_constraint') = 'One entry per node of a flow: the key the sync upserts on.' THEN
        COMMENT ON CONSTRAINT step_library_source_key ON public.step_library IS
            'stepsync: one entry per node of a flow: the key the sync upserts on.';
    END IF;
    IF pg_catalog.obj_description(pg_catalog.to_regclass('public.step_library_forked_from_id_idx'), 'pg_class')
       = 'Serves the forked_from_id foreign key (ON DELETE SET NULL) and lineage look-ups.' THEN
        COMMENT ON INDEX public.step_library_forked_from_id_idx IS
            'stepsync: serves the forked_from_id foreign key (ON DELETE SET NULL) and lineage look-ups.';
    END IF;
END;
$stepsync$;
