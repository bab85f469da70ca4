-- View public.step_library_entries on Citus: the distributed variant of
-- db/views/step_library_entries.sql (docs/contract.md §6.2, §11.3): the same columns and rows.
-- Citus joins two distributed tables only on their distribution columns, so the flow is found by
-- tree_key (an entry's flow lives on its shard, and step_library_tree_key_check holds a synced entry's
-- tree_key to source_tree_id); an entry without a flow (hand-made, a fork, its flow deleted) gets no
-- name, as on one node.
-- security_invoker: reading it takes SELECT on step_library and trees, as
-- reading the tables would; the view grants nothing of its own.
-- Plain CREATE VIEW, not OR REPLACE: in schema public someone else could have
-- created the view first and would keep owning it (pgspot PS015).
CREATE VIEW public.step_library_entries
WITH (security_invoker = true)
AS
SELECT s.id,
       s.title,
       s.step_type,
       s.content,
       s.visibility,
       s.created_by,
       s.account_id,
       s.usage_count,
       s.rating,
       s.rating_count,
       s.is_active,
       s.created_at,
       s.updated_at,
       s.source_tree_id,
       s.source_node_id,
       s.is_flow_synced,
       s.last_synced_at,
       s.forked_from_id,
       t.name AS source_tree_name
  FROM public.step_library AS s
  LEFT JOIN public.trees AS t ON t.id = s.tree_key AND s.source_tree_id IS NOT NULL;

COMMENT ON VIEW public.step_library_entries IS
    'Every column of step_library plus source_tree_name, the source flow''s name (docs/contract.md §6.2).';
COMMENT ON COLUMN public.step_library_entries.id IS 'Primary key of the step.';
COMMENT ON COLUMN public.step_library_entries.title IS 'Short title of the step.';
COMMENT ON COLUMN public.step_library_entries.step_type IS 'action or solution.';
COMMENT ON COLUMN public.step_library_entries.content IS 'A StepContent object: {"instructions", "help_text", "commands", "group_label"}.';
COMMENT ON COLUMN public.step_library_entries.visibility IS 'private, team or public.';
COMMENT ON COLUMN public.step_library_entries.created_by IS 'The user who created (owns) the step.';
COMMENT ON COLUMN public.step_library_entries.account_id IS 'The account whose team may see a team step.';
COMMENT ON COLUMN public.step_library_entries.usage_count IS 'How often the step was used.';
COMMENT ON COLUMN public.step_library_entries.rating IS 'Average rating, 0 to 5.';
COMMENT ON COLUMN public.step_library_entries.rating_count IS 'How many ratings the average is made of.';
COMMENT ON COLUMN public.step_library_entries.is_active IS 'false = retired (soft-deleted).';
COMMENT ON COLUMN public.step_library_entries.created_at IS 'When the step was created.';
COMMENT ON COLUMN public.step_library_entries.updated_at IS 'When the step was last changed.';
COMMENT ON COLUMN public.step_library_entries.source_tree_id IS 'The flow the step is synced from.';
COMMENT ON COLUMN public.step_library_entries.source_node_id IS 'The node id within that flow.';
COMMENT ON COLUMN public.step_library_entries.is_flow_synced IS 'true for flow-owned (read-only) steps.';
COMMENT ON COLUMN public.step_library_entries.last_synced_at IS 'When a publish last changed or revived the step.';
COMMENT ON COLUMN public.step_library_entries.forked_from_id IS 'The step this one was forked from.';
COMMENT ON COLUMN public.step_library_entries.source_tree_name IS 'Name of the source flow; null when there is none.';
