-- public.step_library: the step library. The application's table, with what stepsync adds to it
-- (every object whose comment starts with "stepsync:"; `stepsync uninstall --drop-columns` removes
-- exactly those): the sync columns, the unique key the sync upserts on, the invariants of synced
-- rows, the fork lineage and the stored search vector. As it stands at head of the standalone path
-- (`stepsync migrate`); an adopted database keeps its own columns, types and names, and stepsync adds
-- or adopts these (db/install/columns.sql, search.sql).
--
-- Synced rows (is_flow_synced) belong to their flow: only the sync writes them, clients may change
-- usage_count, rating and rating_count (db/functions/tg_step_library__guard.sql). Triggers:
-- db/triggers/step_library__*.sql.
CREATE TABLE public.step_library (
    id              uuid          NOT NULL DEFAULT gen_random_uuid(),
    title           text          NOT NULL,
    step_type       text          NOT NULL,
    content         jsonb         NOT NULL,
    visibility      text          NOT NULL DEFAULT 'private',
    created_by      uuid,
    account_id      uuid,
    usage_count     integer       NOT NULL DEFAULT 0,
    rating          numeric(3,2),
    rating_count    integer       NOT NULL DEFAULT 0,
    is_active       boolean       NOT NULL DEFAULT true,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    -- added by stepsync
    source_tree_id  uuid,
    source_node_id  varchar(255),
    is_flow_synced  boolean       NOT NULL DEFAULT false,
    last_synced_at  timestamptz,
    forked_from_id  uuid,
    search_vector   tsvector,
    CONSTRAINT step_library_pkey PRIMARY KEY (id),
    CONSTRAINT step_library_step_type_check CHECK (step_type IN ('action', 'solution')),
    CONSTRAINT step_library_visibility_check CHECK (visibility IN ('private', 'team', 'public')),
    CONSTRAINT step_library_content_check CHECK (jsonb_typeof(content) = 'object'),
    CONSTRAINT step_library_usage_count_check CHECK (usage_count >= 0),
    CONSTRAINT step_library_rating_check CHECK (rating BETWEEN 0 AND 5),
    CONSTRAINT step_library_rating_count_check CHECK (rating_count >= 0),
    CONSTRAINT step_library_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users (id),
    CONSTRAINT step_library_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts (id),
    -- added by stepsync
    CONSTRAINT step_library_source_key UNIQUE (source_tree_id, source_node_id),
    CONSTRAINT step_library_source_tree_id_fkey
        FOREIGN KEY (source_tree_id) REFERENCES public.trees (id) ON DELETE SET NULL,
    CONSTRAINT step_library_forked_from_id_fkey
        FOREIGN KEY (forked_from_id) REFERENCES public.step_library (id) ON DELETE SET NULL,
    CONSTRAINT step_library_source_check
        CHECK (is_flow_synced OR (source_tree_id IS NULL AND source_node_id IS NULL)),
    CONSTRAINT step_library_synced_node_check
        CHECK (NOT is_flow_synced OR source_node_id IS NOT NULL),
    CONSTRAINT step_library_synced_active_check
        CHECK (NOT (is_flow_synced AND is_active) OR source_tree_id IS NOT NULL)
)
-- added by stepsync on the standalone path (db/install/fillfactor.sql): room for HOT usage bumps
WITH (fillfactor = 80);

CREATE INDEX step_library_forked_from_id_idx ON public.step_library (forked_from_id)
    WHERE forked_from_id IS NOT NULL;
CREATE INDEX step_library_search_vector_idx ON public.step_library USING gin (search_vector)
    WHERE is_active;

COMMENT ON TABLE public.step_library IS 'Reusable steps that engineers find and insert into flows or live sessions.';
COMMENT ON COLUMN public.step_library.id IS 'Primary key.';
COMMENT ON COLUMN public.step_library.title IS 'Short title of the step.';
COMMENT ON COLUMN public.step_library.step_type IS 'action or solution.';
COMMENT ON COLUMN public.step_library.content IS 'A StepContent object: {"instructions", "help_text", "commands", "group_label"}.';
COMMENT ON COLUMN public.step_library.visibility IS 'private (creator only), team (creator''s account) or public.';
COMMENT ON COLUMN public.step_library.created_by IS 'The user who created (owns) the step.';
COMMENT ON COLUMN public.step_library.account_id IS 'The account whose team may see a team step.';
COMMENT ON COLUMN public.step_library.usage_count IS 'How often the step was used; clients increment it.';
COMMENT ON COLUMN public.step_library.rating IS 'Average rating, 0 to 5; null when never rated.';
COMMENT ON COLUMN public.step_library.rating_count IS 'How many ratings the average is made of.';
COMMENT ON COLUMN public.step_library.is_active IS 'false = soft-deleted (retired).';
COMMENT ON COLUMN public.step_library.created_at IS 'When the step was created.';
COMMENT ON COLUMN public.step_library.updated_at IS 'When the step was last changed.';
COMMENT ON COLUMN public.step_library.source_tree_id IS
    'stepsync: the flow this entry is synced from; set to null when the flow is deleted.';
COMMENT ON COLUMN public.step_library.source_node_id IS
    'stepsync: the node''s "id" within the flow''s tree_structure.';
COMMENT ON COLUMN public.step_library.is_flow_synced IS
    'stepsync: true for entries owned by a flow (read-only, maintained by the sync); false for hand-made rows and forks.';
COMMENT ON COLUMN public.step_library.last_synced_at IS
    'stepsync: when a publish last changed or revived this entry.';
COMMENT ON COLUMN public.step_library.forked_from_id IS
    'stepsync: the entry this one was forked from (stepsync.fork_step), if any.';
COMMENT ON COLUMN public.step_library.search_vector IS
    'stepsync: what stepsync.search_steps searches: the weighted text of the step and its audience, popularity and group-label keys, stored by stepsync.tg_step_library__search_vector (never write it yourself: it is recomputed).';
COMMENT ON CONSTRAINT step_library_source_key ON public.step_library IS
    'stepsync: one entry per node of a flow: the key the sync upserts on.';
COMMENT ON CONSTRAINT step_library_source_tree_id_fkey ON public.step_library IS
    'stepsync: an entry''s source flow; deleting the flow keeps the (retired) entry.';
COMMENT ON CONSTRAINT step_library_forked_from_id_fkey ON public.step_library IS
    'stepsync: a fork''s original; deleting the original keeps the fork.';
COMMENT ON CONSTRAINT step_library_source_check ON public.step_library IS
    'stepsync: only synced entries have a source flow or node.';
COMMENT ON CONSTRAINT step_library_synced_node_check ON public.step_library IS
    'stepsync: a synced entry always knows its node.';
COMMENT ON CONSTRAINT step_library_synced_active_check ON public.step_library IS
    'stepsync: an active synced entry always has its flow: deleting the flow retires its entries first.';
COMMENT ON INDEX public.step_library_forked_from_id_idx IS
    'stepsync: serves the forked_from_id foreign key (ON DELETE SET NULL) and lineage look-ups.';
COMMENT ON INDEX public.step_library_search_vector_idx IS
    'stepsync: the search vectors of active steps, for stepsync.search_steps.';
