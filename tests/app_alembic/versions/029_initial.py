"""The application's tables, as SQLAlchemy made them (tests/app_schema.py, without tags).

Revision ID: 029_initial
Revises:
Create Date: 2025-03-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "029_initial"
down_revision = None
branch_labels = None
depends_on = None

UUID = postgresql.UUID(as_uuid=True)
NEW_ID = sa.text("gen_random_uuid()")
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", UUID, primary_key=True, server_default=NEW_ID),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(20), nullable=False, server_default="free"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "users",
        sa.Column("id", UUID, primary_key=True, server_default=NEW_ID),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(120)),
        sa.Column("account_id", UUID, sa.ForeignKey("accounts.id", name="fk_users_account")),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "trees",
        sa.Column("id", UUID, server_default=NEW_ID),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("tree_type", sa.String(50), nullable=False),
        sa.Column("tree_structure", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(20), nullable=False, server_default="draft"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("account_id", UUID, sa.ForeignKey("accounts.id", name="fk_trees_account")),
        sa.Column("author_id", UUID, sa.ForeignKey("users.id", name="fk_trees_author"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_trees"),
    )
    op.create_index("ix_trees_author", "trees", ["author_id"])
    op.create_table(
        "step_library",
        sa.Column("id", UUID, server_default=NEW_ID),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("step_type", sa.String(20), nullable=False),
        sa.Column("content", postgresql.JSONB, nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False, server_default="private"),
        sa.Column("created_by", UUID, sa.ForeignKey("users.id", name="fk_step_library_creator")),
        sa.Column("account_id", UUID, sa.ForeignKey("accounts.id", name="fk_step_library_account")),
        sa.Column("usage_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rating", sa.Numeric(3, 2)),
        sa.Column("rating_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("category", sa.String(40), server_default="general"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_step_library"),
    )
    op.create_index("ix_step_library_title", "step_library", ["title"])
    # The application's own trigger: an audit row for each change of a flow.
    op.create_table(
        "tree_audit",
        sa.Column("tree_id", UUID),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=NOW),
    )
    op.execute("""
        CREATE FUNCTION public.audit_tree() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.tree_audit (tree_id) VALUES (NEW.id);
            RETURN NEW;
        END $$
    """)
    op.execute("CREATE TRIGGER trg_trees_audit AFTER UPDATE ON public.trees"
               " FOR EACH ROW EXECUTE FUNCTION public.audit_tree()")


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_trees_audit ON public.trees")
    op.execute("DROP FUNCTION public.audit_tree()")
    op.drop_table("tree_audit")
    op.drop_table("step_library")
    op.drop_table("trees")
    op.drop_table("users")
    op.drop_table("accounts")
