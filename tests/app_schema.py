"""Application databases as adopting teams have them, for the adoption tests (docs/contract.md §9).

The seed application's tables, made the way SQLAlchemy and its own alembic made them: more columns
than stepsync needs, `varchar(n)` types from `String(n)`, its own constraint names, owned by its own
role, its own alembic_version (at '046_add_ratings'), and a trigger of its own on trees. With
`with_030=True` they also have the seed design's migration 030: the four sync columns and a unique
key of its own name, filled by application code.
"""

from __future__ import annotations

APP_OWNER = "app_owner"

APP_SCHEMA = """
CREATE TABLE public.accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(200) NOT NULL,
    plan varchar(20) NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar(320) NOT NULL CONSTRAINT uq_users_email UNIQUE,
    display_name varchar(120),
    account_id uuid CONSTRAINT fk_users_account REFERENCES public.accounts (id),
    is_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.trees (
    id uuid CONSTRAINT pk_trees PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(255) NOT NULL,
    description text,
    tree_type varchar(50) NOT NULL,
    tree_structure jsonb NOT NULL DEFAULT '{}',
    status varchar(20) NOT NULL DEFAULT 'draft',
    is_active boolean NOT NULL DEFAULT true,
    is_public boolean NOT NULL DEFAULT false,
    account_id uuid CONSTRAINT fk_trees_account REFERENCES public.accounts (id),
    author_id uuid NOT NULL CONSTRAINT fk_trees_author REFERENCES public.users (id),
    version integer NOT NULL DEFAULT 1,
    tags varchar(50)[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_trees_author ON public.trees (author_id);
CREATE TABLE public.step_library (
    id uuid CONSTRAINT pk_step_library PRIMARY KEY DEFAULT gen_random_uuid(),
    title varchar(255) NOT NULL,
    step_type varchar(20) NOT NULL,
    content jsonb NOT NULL,
    visibility varchar(20) NOT NULL DEFAULT 'private',
    created_by uuid CONSTRAINT fk_step_library_creator REFERENCES public.users (id),
    account_id uuid CONSTRAINT fk_step_library_account REFERENCES public.accounts (id),
    usage_count integer NOT NULL DEFAULT 0,
    rating numeric(3,2),
    rating_count integer NOT NULL DEFAULT 0,
    is_active boolean NOT NULL DEFAULT true,
    category varchar(40) DEFAULT 'general',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_step_library_title ON public.step_library (title);
-- The application's own trigger: an audit counter on trees.
CREATE TABLE public.tree_audit (tree_id uuid, changed_at timestamptz DEFAULT now());
CREATE FUNCTION public.audit_tree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tree_audit (tree_id) VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER trg_trees_audit AFTER UPDATE ON public.trees FOR EACH ROW EXECUTE FUNCTION public.audit_tree();
-- Its own alembic history.
CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL CONSTRAINT alembic_version_pkc PRIMARY KEY);
INSERT INTO public.alembic_version VALUES ('046_add_ratings');
"""

MIGRATION_030 = """
ALTER TABLE public.step_library
    ADD COLUMN source_tree_id uuid,
    ADD COLUMN source_node_id varchar(255),
    ADD COLUMN is_flow_synced boolean DEFAULT false,
    ADD COLUMN last_synced_at timestamptz;
ALTER TABLE public.step_library
    ADD CONSTRAINT step_library_source_tree_id_fkey FOREIGN KEY (source_tree_id)
        REFERENCES public.trees (id) ON DELETE SET NULL,
    ADD CONSTRAINT uq_step_library_source UNIQUE (source_tree_id, source_node_id);
"""

OWN_ALL = """
ALTER TABLE public.accounts OWNER TO {owner};
ALTER TABLE public.users OWNER TO {owner};
ALTER TABLE public.trees OWNER TO {owner};
ALTER TABLE public.step_library OWNER TO {owner};
ALTER TABLE public.tree_audit OWNER TO {owner};
ALTER TABLE public.alembic_version OWNER TO {owner};
ALTER FUNCTION public.audit_tree() OWNER TO {owner};
"""


def create_app_roles(conn) -> None:
    """The application's roles (cluster-wide, so created once and kept): its owner and a client."""
    for role, options in ((APP_OWNER, "LOGIN"), ("app_client", "LOGIN"), ("deployer", "LOGIN CREATEDB")):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {role} {options}")
    conn.execute(f"GRANT {APP_OWNER} TO deployer")


def build_app_database(conn, *, with_030: bool = False) -> None:
    """Make CONN's (empty) database the seed application's, owned by app_owner."""
    create_app_roles(conn)
    conn.execute(APP_SCHEMA)
    if with_030:
        conn.execute(MIGRATION_030)
    conn.execute(OWN_ALL.format(owner=APP_OWNER))
    conn.execute("GRANT CREATE ON DATABASE " + conn.info.dbname + " TO deployer")
    conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_client")
