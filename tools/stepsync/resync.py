"""Resync: stepsync.sync_tree over many flows, in batches that never lock all of trees.

Each batch is one transaction that syncs up to BATCH flows (sync_tree locks
each flow row it syncs, FOR NO KEY UPDATE), so writers elsewhere in trees are
never blocked by the whole run, and a failure loses at most one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stepsync import database


def resync(url: str, tree_ids: Sequence, batch: int = 100,
           progress: Callable[[int, int], None] | None = None) -> int:
    """sync_tree every flow of TREE_IDS; returns the library rows written or retired."""
    written = 0
    with database.connect(url, autocommit=True) as conn:
        for start in range(0, len(tree_ids), batch):
            chunk = list(tree_ids[start:start + batch])
            with conn.transaction():
                written += conn.execute(
                    "SELECT COALESCE(sum(stepsync.sync_tree(t.id)), 0)"
                    " FROM unnest(%s::uuid[]) WITH ORDINALITY AS t (id, i)", (chunk,)).fetchone()[0]
            if progress is not None:
                progress(start + len(chunk), len(tree_ids))
    return written
