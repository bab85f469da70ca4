"""The sync: columns, extraction, checks, triggers, sync_tree, preview and the backfill (SPEC §1-§5, §6.5, §6.6).

Installs the frozen copies in db/migrations/sql/0003/: the sync columns and the
unique key on step_library, the functions and triggers on trees, then syncs
every flow listed now (a flow that fails the publish checks is skipped with a
WARNING naming it). Downgrading deletes the synced rows (§5.10): hand-made rows
and forks stay.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

from stepsync import frozen

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.install(
        op,
        "0003",
        "schema.sql",
        "_json_kind.sql",
        "_walk_troubleshooting.sql",
        "_nodes.sql",
        "_sync.sql",
        "_retire.sql",
        "tg_trees__sync.sql",
        "tg_trees__retire_on_delete.sql",
        "sync_tree.sql",
        "preview.sql",
        "trees__t20_retire_on_delete.sql",
        "trees__t30_sync_on_insert.sql",
        "trees__t31_sync_on_update.sql",
        "backfill.sql",
    )


def downgrade() -> None:
    frozen.execute(
        op,
        """
        DROP TRIGGER t31_sync_on_update ON public.trees;
        DROP TRIGGER t30_sync_on_insert ON public.trees;
        DROP TRIGGER t20_retire_on_delete ON public.trees;
        DROP FUNCTION stepsync.preview(uuid);
        DROP FUNCTION stepsync.sync_tree(uuid);
        DROP FUNCTION stepsync.tg_trees__retire_on_delete();
        DROP FUNCTION stepsync.tg_trees__sync();
        DROP FUNCTION stepsync._retire(uuid);
        DROP FUNCTION stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid);
        DROP FUNCTION stepsync._nodes(uuid, text, jsonb, boolean, boolean, boolean);
        DROP FUNCTION stepsync._walk_troubleshooting(jsonb, boolean);
        DROP FUNCTION stepsync._json_kind(jsonb);
        DROP TYPE stepsync.library_node;
        -- SPEC §5.10: synced rows would come back as hand-made rows; forks keep their lineage column
        -- until it is dropped below, and a fork of a synced row loses nothing else.
        DELETE FROM public.step_library WHERE is_flow_synced;
        DROP INDEX public.step_library_forked_from_id_idx;
        ALTER TABLE public.step_library
            DROP CONSTRAINT step_library_synced_active_check,
            DROP CONSTRAINT step_library_synced_node_check,
            DROP CONSTRAINT step_library_source_check,
            DROP CONSTRAINT step_library_source_key,
            DROP CONSTRAINT step_library_forked_from_id_fkey,
            DROP CONSTRAINT step_library_source_tree_id_fkey,
            DROP COLUMN forked_from_id,
            DROP COLUMN last_synced_at,
            DROP COLUMN is_flow_synced,
            DROP COLUMN source_node_id,
            DROP COLUMN source_tree_id;
        """,
    )
