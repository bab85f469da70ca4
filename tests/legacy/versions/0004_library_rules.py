"""Library rules: read-only synced rows, step_library_entries, visibility, forks, search, grants (SPEC §6).

Installs the frozen copies in db/migrations/sql/0004/: _sync and _retire that
mark the sync as writing, the guard triggers on step_library, the view
public.step_library_entries, visible_steps, fork_step, search_steps with its
full-text index, and USAGE on schema stepsync for clients.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op

from stepsync import frozen

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.install(
        op,
        "0004",
        "_sync.sql",
        "_retire.sql",
        "tg_step_library__guard.sql",
        "tg_step_library__check_marker.sql",
        "step_library__t04_check_marker.sql",
        "step_library__t05_guard_insert.sql",
        "step_library__t05_guard_update.sql",
        "step_library__t05_guard_delete.sql",
        "step_library_entries.sql",
        "visible_steps.sql",
        "fork_step.sql",
        "_search_document.sql",
        "search_index.sql",
        "search_steps.sql",
        "grants.sql",
    )


def downgrade() -> None:
    frozen.execute(
        op,
        """
        REVOKE USAGE ON SCHEMA stepsync FROM PUBLIC;
        DROP FUNCTION stepsync.search_steps(uuid, text, text, text, uuid, integer);
        DROP INDEX public.step_library_search_idx;
        DROP FUNCTION stepsync._search_document(text, jsonb);
        DROP FUNCTION stepsync.fork_step(uuid, uuid);
        DROP FUNCTION stepsync.visible_steps(uuid);
        DROP VIEW public.step_library_entries;
        DROP TRIGGER t05_guard_delete ON public.step_library;
        DROP TRIGGER t05_guard_update ON public.step_library;
        DROP TRIGGER t05_guard_insert ON public.step_library;
        DROP TRIGGER t04_check_marker ON public.step_library;
        DROP FUNCTION stepsync.tg_step_library__check_marker();
        DROP FUNCTION stepsync.tg_step_library__guard();
        """,
    )
    frozen.install(op, "0003", "_sync.sql", "_retire.sql")
