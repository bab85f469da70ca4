"""The application's schema before the step-sync feature (SPEC §1).

accounts, users, trees and step_library as the web application had them:
no sync columns, no functions, no triggers. Constraints are named so that
errors and later revisions can refer to them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE public.accounts (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE public.accounts IS 'A customer organisation; users and flows may belong to one (team visibility is per account).';
COMMENT ON COLUMN public.accounts.id IS 'Primary key.';
COMMENT ON COLUMN public.accounts.name IS 'Display name of the account.';
COMMENT ON COLUMN public.accounts.created_at IS 'When the account was created.';

CREATE TABLE public.users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    email         text        NOT NULL,
    display_name  text,
    account_id    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts (id)
);
COMMENT ON TABLE public.users IS 'An engineer who writes flows and uses the step library.';
COMMENT ON COLUMN public.users.id IS 'Primary key.';
COMMENT ON COLUMN public.users.email IS 'Login e-mail address, unique.';
COMMENT ON COLUMN public.users.display_name IS 'Name shown in the application.';
COMMENT ON COLUMN public.users.account_id IS 'The account (team) the user belongs to, if any.';
COMMENT ON COLUMN public.users.created_at IS 'When the user was created.';

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

CREATE TABLE public.step_library (
    id            uuid          NOT NULL DEFAULT gen_random_uuid(),
    title         text          NOT NULL,
    step_type     text          NOT NULL,
    content       jsonb         NOT NULL,
    visibility    text          NOT NULL DEFAULT 'private',
    created_by    uuid,
    account_id    uuid,
    usage_count   integer       NOT NULL DEFAULT 0,
    rating        numeric(3,2),
    rating_count  integer       NOT NULL DEFAULT 0,
    is_active     boolean       NOT NULL DEFAULT true,
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT step_library_pkey PRIMARY KEY (id),
    CONSTRAINT step_library_step_type_check CHECK (step_type IN ('action', 'solution')),
    CONSTRAINT step_library_visibility_check CHECK (visibility IN ('private', 'team', 'public')),
    CONSTRAINT step_library_content_check CHECK (jsonb_typeof(content) = 'object'),
    CONSTRAINT step_library_usage_count_check CHECK (usage_count >= 0),
    CONSTRAINT step_library_rating_check CHECK (rating BETWEEN 0 AND 5),
    CONSTRAINT step_library_rating_count_check CHECK (rating_count >= 0),
    CONSTRAINT step_library_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users (id),
    CONSTRAINT step_library_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts (id)
);
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
"""

DOWNGRADE = r"""
DROP TABLE public.step_library;
DROP TABLE public.trees;
DROP TABLE public.users;
DROP TABLE public.accounts;
"""


def upgrade() -> None:
    op.get_bind().exec_driver_sql(UPGRADE)


def downgrade() -> None:
    op.get_bind().exec_driver_sql(DOWNGRADE)
