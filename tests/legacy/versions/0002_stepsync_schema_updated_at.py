"""Schema stepsync and the updated_at maintenance triggers (SPEC §5.9).

Installs the frozen copies in db/migrations/sql/0002/ of
stepsync.tg_set_updated_at() and its triggers on trees and step_library.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

from stepsync import frozen

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.execute(
        op,
        """
        CREATE SCHEMA stepsync;
        COMMENT ON SCHEMA stepsync IS
            'stepsync: the functions, triggers and views that keep public.step_library in sync with published flows.';
        REVOKE ALL ON SCHEMA stepsync FROM PUBLIC;
        """,
    )
    frozen.install(
        op,
        "0002",
        "tg_set_updated_at.sql",
        "trees__t10_set_updated_at.sql",
        "step_library__t10_set_updated_at.sql",
    )


def downgrade() -> None:
    frozen.execute(
        op,
        """
        DROP TRIGGER t10_set_updated_at ON public.step_library;
        DROP TRIGGER t10_set_updated_at ON public.trees;
        DROP FUNCTION stepsync.tg_set_updated_at();
        DROP SCHEMA stepsync;
        """,
    )
