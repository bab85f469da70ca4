-- public.trees: the flows. The application's table; stepsync adds only triggers to it
-- (db/triggers/trees__*.sql: updated_at, the sync, retire on delete). A write that publishes,
-- re-publishes, deactivates, archives or deletes a flow changes the library through them.
CREATE TABLE public.trees (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    name            text        NOT NULL,
    description     text,
    tree_type       text        NOT NULL,
    tree_structure  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        NOT NULL DEFAULT 'draft',
    is_active       boolean     NOT NULL DEFAULT true,
    is_public       boolean     NOT NULL DEFAULT false,
    account_id      uuid,
    author_id       uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trees_pkey PRIMARY KEY (id),
    CONSTRAINT trees_tree_type_check CHECK (tree_type IN ('troubleshooting', 'procedural', 'maintenance')),
    CONSTRAINT trees_status_check CHECK (status IN ('draft', 'published', 'archived')),
    CONSTRAINT trees_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts (id),
    CONSTRAINT trees_author_id_fkey FOREIGN KEY (author_id) REFERENCES public.users (id)
);
COMMENT ON TABLE public.trees IS 'A flow: a procedural or maintenance procedure, or a troubleshooting tree.';
COMMENT ON COLUMN public.trees.id IS 'Primary key.';
COMMENT ON COLUMN public.trees.name IS 'Title of the flow.';
COMMENT ON COLUMN public.trees.description IS 'Free-text description of the flow.';
COMMENT ON COLUMN public.trees.tree_type IS 'troubleshooting, procedural or maintenance.';
COMMENT ON COLUMN public.trees.tree_structure IS 'The flow itself as JSON: {"steps": [...]} for procedures, a tree of nodes for troubleshooting. Anything while a draft.';
COMMENT ON COLUMN public.trees.status IS 'draft, published or archived.';
COMMENT ON COLUMN public.trees.is_active IS 'false when the flow has been deactivated.';
COMMENT ON COLUMN public.trees.is_public IS 'true when the flow is visible outside its account.';
COMMENT ON COLUMN public.trees.account_id IS 'The account that owns the flow, if any.';
COMMENT ON COLUMN public.trees.author_id IS 'The user who wrote the flow.';
COMMENT ON COLUMN public.trees.created_at IS 'When the flow was created.';
COMMENT ON COLUMN public.trees.updated_at IS 'When the flow was last changed.';
