-- Revision 0003, part 1: the sync columns of step_library (SPEC §1) and the
-- row type of stepsync._nodes.
ALTER TABLE public.step_library
    ADD COLUMN source_tree_id uuid,
    ADD COLUMN source_node_id varchar(255),
    ADD COLUMN is_flow_synced boolean NOT NULL DEFAULT false,
    ADD COLUMN last_synced_at timestamptz,
    ADD COLUMN forked_from_id uuid,
    ADD CONSTRAINT step_library_source_tree_id_fkey
        FOREIGN KEY (source_tree_id) REFERENCES public.trees (id) ON DELETE SET NULL,
    ADD CONSTRAINT step_library_forked_from_id_fkey
        FOREIGN KEY (forked_from_id) REFERENCES public.step_library (id) ON DELETE SET NULL,
    ADD CONSTRAINT step_library_source_key UNIQUE (source_tree_id, source_node_id),
    ADD CONSTRAINT step_library_source_check
        CHECK (is_flow_synced OR (source_tree_id IS NULL AND source_node_id IS NULL)),
    ADD CONSTRAINT step_library_synced_node_check
        CHECK (NOT is_flow_synced OR source_node_id IS NOT NULL),
    ADD CONSTRAINT step_library_synced_active_check
        CHECK (NOT (is_flow_synced AND is_active) OR source_tree_id IS NOT NULL);

-- The self-referencing foreign key needs an index, or deleting a step scans the table.
CREATE INDEX step_library_forked_from_id_idx ON public.step_library (forked_from_id)
    WHERE forked_from_id IS NOT NULL;

COMMENT ON COLUMN public.step_library.source_tree_id IS
    'Sync: the flow this entry is synced from; set to null when the flow is deleted.';
COMMENT ON COLUMN public.step_library.source_node_id IS
    'Sync: the node''s "id" within the flow''s tree_structure.';
COMMENT ON COLUMN public.step_library.is_flow_synced IS
    'Sync: true for entries owned by a flow (read-only, maintained by the sync); false for hand-made rows and forks.';
COMMENT ON COLUMN public.step_library.last_synced_at IS
    'Sync: when a publish last changed or revived this entry.';
COMMENT ON COLUMN public.step_library.forked_from_id IS
    'The entry this one was forked from (stepsync.fork_step), if any.';
COMMENT ON CONSTRAINT step_library_source_key ON public.step_library IS
    'One entry per node of a flow: the key the sync upserts on.';
COMMENT ON CONSTRAINT step_library_source_check ON public.step_library IS
    'Only synced entries have a source flow or node.';
COMMENT ON CONSTRAINT step_library_synced_node_check ON public.step_library IS
    'A synced entry always knows its node.';
COMMENT ON CONSTRAINT step_library_synced_active_check ON public.step_library IS
    'An active synced entry always has its flow: deleting the flow retires its entries first.';
COMMENT ON INDEX public.step_library_forked_from_id_idx IS
    'Serves the forked_from_id foreign key (ON DELETE SET NULL) and lineage look-ups.';

CREATE TYPE stepsync.library_node AS (
    ord bigint,
    path text,
    source_node_id text,
    title text,
    step_type text,
    content jsonb,
    visibility text,
    problem text,
    problem_path text,
    hint text
);
COMMENT ON TYPE stepsync.library_node IS
    'Internal: one node of a flow as stepsync._nodes returns it: the entry it yields, or the §4 problem it has.';
