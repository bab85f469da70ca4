"""Resync: stepsync.sync_tree over many flows, in batches, for databases of any size.

* Batched: each batch is one short transaction over up to BATCH flows, taken in
  id order (keyset pagination, so the ids are never all loaded at once). It
  locks its flows first, in id order (FOR NO KEY UPDATE, as a publish does), so
  a concurrent publish of one of them waits for the batch and is never lost;
  writers elsewhere in trees are never blocked by the run. Never one giant
  transaction: a failure or an interruption loses at most the batch in
  progress.
* Safe to re-run: sync_tree writes nothing for a flow already in step, so a
  second run changes nothing; `--after ID` skips the flows an interrupted run
  finished.
* Interruptible: the caller's `stop()` is asked between batches (the command
  line sets it on the first Ctrl-C); a KeyboardInterrupt inside a batch (the
  second Ctrl-C) cancels the statement and rolls that batch back. Either way
  the result says how far it got.
* It says what it changed: per flow, entries inserted, updated (rewritten or
  revived) and retired, counted inside each batch's transaction: inserted is
  the growth of the flow's entry count (its row is locked, so only this batch
  writes its entries), retired the entries this transaction made inactive
  (their xmin is its xid), updated the rest of what sync_tree reports.
* A flow whose structure fails the publish checks (only possible while the
  triggers were off) makes its batch fail with 23514; that batch is then redone
  one flow a transaction, and the failing flows are skipped and reported.
* `--all` syncs each batch with stepsync.backfill_batch (over the batch's range
  of ids, after locking its flows), the install's backfill: so a run to the end
  also finishes a backfill an install left unfinished (stepsync.backfill_progress
  moves on with every batch that starts at or before its cursor; a run started
  with `--after` beyond the cursor leaves it alone). Its changes are counted
  from the entries before and after, in the batch's transaction: inserted the
  new ones, retired the ones it made inactive, updated those it synced
  (last_synced_at is the transaction's time); a flow failing the checks is
  skipped inside the batch (backfill_batch's WARNING names it). A role that may
  run sync_tree but not backfill_batch (or not write stepsync.backfill_progress)
  gets the sync_tree batches above instead, and the record stays as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from stepsync import database
from stepsync.citus import is_citus
from stepsync.database import StepsyncError, scalar

RETRIES = 3   # a batch that deadlocks or times out on a lock is retried this many times


@dataclass
class FlowChange:
    tree_id: Any
    name: str
    inserted: int
    updated: int
    retired: int

    def as_json(self) -> dict[str, Any]:
        return {"tree_id": self.tree_id, "name": self.name, "inserted": self.inserted, "updated": self.updated,
                "retired": self.retired}


@dataclass
class Result:
    total: int
    done: int = 0
    written: int = 0
    inserted: int = 0
    updated: int = 0
    retired: int = 0
    batches: int = 0
    last_tree_id: Any = None
    changed: list[FlowChange] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    rolled_back: bool = False   # an interruption cancelled a batch in progress
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def as_json(self) -> dict[str, Any]:
        return {"flows": self.total, "done": self.done, "written": self.written, "inserted": self.inserted,
                "updated": self.updated, "retired": self.retired, "batches": self.batches,
                "last_tree_id": self.last_tree_id, "changed": [c.as_json() for c in self.changed],
                "skipped": self.skipped, "interrupted": self.interrupted, "seconds": round(self.elapsed, 3)}


class ResyncStopped(Exception):
    """A database error stopped the run; `result` says how far it got."""

    def __init__(self, result: Result, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.result = result
        self.error = error


# --all (and the install's count of the backfill's flows) looks at the flows that can need work, as
# stepsync.backfill_batch does: listed flows, and deactivated or archived ones that still have active
# entries (drafts keep their last publish, docs/contract.md §5.4).
NEEDS_WORK = ("((t.status = 'published' AND t.is_active)"
              " OR ((NOT t.is_active OR t.status = 'archived')"
              "     AND EXISTS (SELECT FROM public.step_library AS s"
              "                  WHERE s.source_tree_id = t.id AND s.is_flow_synced AND s.is_active)))")
# On Citus (docs/contract.md §11.3) the entries of a flow are found on its shard: by tree_key, which Citus
# joins with trees.id (their distribution columns); source_tree_id alone would not be.
NEEDS_WORK_CITUS = NEEDS_WORK.replace("s.source_tree_id = t.id", "s.tree_key = t.id AND s.source_tree_id = t.id")
_LOCK_ALL = ("SELECT t.id, t.name FROM public.trees AS t WHERE (%(after)s::uuid IS NULL OR t.id > %(after)s::uuid)"
             f" AND {NEEDS_WORK} ORDER BY t.id LIMIT %(batch)s FOR NO KEY UPDATE OF t")
_LOCK_IDS = ("SELECT t.id, t.name FROM public.trees AS t WHERE t.id = ANY (%(ids)s::uuid[])"
             " ORDER BY t.id FOR NO KEY UPDATE")
_COUNT = ("SELECT s.source_tree_id, count(*) FROM public.step_library AS s"
          " WHERE s.source_tree_id = ANY (%s::uuid[]) GROUP BY 1")
_SYNC = ("SELECT t.id, stepsync.sync_tree(t.id) FROM unnest(%s::uuid[]) WITH ORDINALITY AS t (id, i) ORDER BY t.i")
_AFTER = ("SELECT s.source_tree_id, count(*),"
          "       count(*) FILTER (WHERE NOT s.is_active AND s.xmin = pg_catalog.pg_current_xact_id_if_assigned()::xid)"
          "  FROM public.step_library AS s WHERE s.source_tree_id = ANY (%s::uuid[]) GROUP BY 1")


# --all through stepsync.backfill_batch: the flows' entries before and after, and the batch itself.
_ENTRIES = ("SELECT s.source_tree_id, s.id, s.is_active, s.last_synced_at IS NOT DISTINCT FROM pg_catalog.now()"
            "  FROM public.step_library AS s WHERE s.source_tree_id = ANY (%s::uuid[])")
_BACKFILL = "SELECT * FROM stepsync.backfill_batch(%(after)s::uuid, NULL, %(through)s::uuid)"
_CAN_BACKFILL = (
    "SELECT CASE WHEN pg_catalog.to_regprocedure('stepsync.backfill_batch(uuid, integer, uuid)') IS NULL THEN false"
    "            WHEN NOT pg_catalog.has_function_privilege('stepsync.backfill_batch(uuid, integer, uuid)',"
    "                                                       'EXECUTE') THEN false"
    "            WHEN pg_catalog.to_regclass('stepsync.backfill_progress') IS NULL THEN true"
    "            ELSE pg_catalog.has_table_privilege('stepsync.backfill_progress', 'SELECT')"
    "                 AND pg_catalog.has_table_privilege('stepsync.backfill_progress', 'UPDATE')"
    "                 AND pg_catalog.has_table_privilege('stepsync.backfill_progress', 'DELETE') END")
_SKIPPED = "stepsync backfill skipped flow "


def count_flows(conn: psycopg.Connection[Any], tree_ids: Sequence[Any] | None, after: Any = None) -> int:
    """How many flows a run over TREE_IDS (None: every flow after AFTER that needs work) looks at."""
    if tree_ids is not None:
        return len(tree_ids)
    needs_work = NEEDS_WORK_CITUS if is_citus(conn) else NEEDS_WORK
    return int(scalar(conn, "SELECT count(*) FROM public.trees AS t WHERE (%s::uuid IS NULL OR t.id > %s::uuid)"
                            f" AND {needs_work}", (after, after)))


def _sync_locked(conn: psycopg.Connection[Any], flows: list[tuple[Any, ...]]) -> list[FlowChange]:
    """Inside a transaction that holds FLOWS' row locks: sync them and count what changed."""
    ids = [tree for tree, _ in flows]
    before: dict[Any, int] = dict(conn.execute(_COUNT, (ids,)).fetchall())
    written: dict[Any, int] = dict(conn.execute(_SYNC, (ids,)).fetchall())
    after = {tree: (total, retired) for tree, total, retired in conn.execute(_AFTER, (ids,)).fetchall()}
    changes = []
    for tree, name in flows:
        n = written.get(tree) or 0
        if not n:
            continue
        total, retired = after.get(tree, (0, 0))
        inserted = max(total - before.get(tree, 0), 0)
        updated = max(n - inserted - retired, 0)
        changes.append(FlowChange(tree, name, inserted, updated, retired))
    return changes


Flows = list[tuple[Any, ...]]   # (id, name) rows of trees


def _one_batch(conn: psycopg.Connection[Any], lock_sql: str, params: dict[str, Any], result: Result) -> Flows | None:
    """Lock and sync one batch in one transaction; returns the batch's flows (empty when none are left)."""
    for attempt in range(RETRIES + 1):
        try:
            with conn.transaction():
                flows = conn.execute(lock_sql, params).fetchall()
                if not flows:
                    return []
                changes = _sync_locked(conn, flows)
            _account(result, flows, changes)
            return flows
        except psycopg.errors.CheckViolation:
            return None   # redo flow by flow
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable,
                psycopg.errors.SerializationFailure):
            if attempt == RETRIES:
                raise
            time.sleep(0.2 * (attempt + 1))
    return []


def _entries(conn: psycopg.Connection[Any], ids: list[Any]) -> dict[Any, dict[Any, tuple[bool, bool]]]:
    """flow -> {entry id: (is_active, synced by this transaction)}."""
    entries: dict[Any, dict[Any, tuple[bool, bool]]] = {}
    for tree, entry, active, synced_now in conn.execute(_ENTRIES, (ids,)).fetchall():
        entries.setdefault(tree, {})[entry] = (active, synced_now)
    return entries


def _changes(flows: Flows, before: dict[Any, dict[Any, tuple[bool, bool]]],
             after: dict[Any, dict[Any, tuple[bool, bool]]]) -> list[FlowChange]:
    """What the batch changed, flow by flow, from the entries before and after it."""
    changes = []
    for tree, name in flows:
        old, new = before.get(tree, {}), after.get(tree, {})
        inserted = sum(1 for entry in new if entry not in old)
        retired = sum(1 for entry, (active, _) in new.items() if not active and old.get(entry, (False, False))[0])
        updated = sum(1 for entry, (_, synced_now) in new.items() if synced_now and entry in old)
        if inserted or retired or updated:
            changes.append(FlowChange(tree, name, inserted, updated, retired))
    return changes


def _backfill_batch(conn: psycopg.Connection[Any], params: dict[str, Any], result: Result,
                    warnings: list[str]) -> Flows:
    """Lock one batch and sync it with stepsync.backfill_batch, in one transaction; returns its flows.

    The range is (after, the last flow locked]; a batch shorter than BATCH runs to the end (so that it
    also clears the record of an unfinished backfill), and so does the empty one after the last.
    """
    for attempt in range(RETRIES + 1):
        warnings.clear()
        try:
            with conn.transaction():
                flows = conn.execute(_LOCK_ALL, params).fetchall()
                ids = [tree for tree, _ in flows]
                through = ids[-1] if len(flows) >= params["batch"] else None
                before = _entries(conn, ids) if ids else {}
                conn.execute(_BACKFILL, {"after": params["after"], "through": through})
                after = _entries(conn, ids) if ids else {}
            if not flows:
                return []
            _account(result, flows, _changes(flows, before, after))
            for tree, name in flows:
                prefix = f"{_SKIPPED}{tree} ({name}): "
                for warning in warnings:
                    if warning.startswith(prefix):
                        result.skipped.append({"tree_id": tree, "name": name, "message": warning[len(prefix):]})
            return flows
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable,
                psycopg.errors.SerializationFailure):
            if attempt == RETRIES:
                raise
            time.sleep(0.2 * (attempt + 1))
    return []


def _account(result: Result, flows: list[tuple[Any, ...]], changes: list[FlowChange]) -> None:
    result.done += len(flows)
    result.batches += 1
    result.last_tree_id = flows[-1][0]
    for c in changes:
        result.inserted += c.inserted
        result.updated += c.updated
        result.retired += c.retired
        result.written += c.inserted + c.updated + c.retired
        result.changed.append(c)


def _flow_by_flow(conn: psycopg.Connection[Any], lock_sql: str, params: dict[str, Any], result: Result) -> Flows:
    """The batch that failed the publish checks, one flow a transaction; failing flows are skipped."""
    with conn.transaction():
        flows = conn.execute(lock_sql.replace(" FOR NO KEY UPDATE OF t", "").replace(" FOR NO KEY UPDATE", ""),
                             params).fetchall()
    for tree, name in flows:
        try:
            with conn.transaction():
                locked = conn.execute(_LOCK_IDS, {"ids": [tree]}).fetchall()
                changes = _sync_locked(conn, locked) if locked else []
            _account(result, locked or [(tree, name)], changes)
        except psycopg.errors.CheckViolation as exc:
            result.skipped.append({"tree_id": tree, "name": name, "message": exc.diag.message_primary or str(exc)})
            result.done += 1
            result.last_tree_id = tree
    return flows


# On Citus: no lock from the coordinator (Citus locks rows only in a query on one shard);
# stepsync_citus.sync_tree, a distributed function, runs stepsync.sync_tree on the worker that holds the
# flow, which locks the flow's row there, and Citus sends it there only when it is called as a statement
# of its own: so one call a flow, each behind a savepoint
# (a flow failing the publish checks is skipped, the batch goes on). Changes are counted from the entries
# before and after (each worker's clock is its own, so not from last_synced_at = now()).
_CITUS_ALL = ("SELECT t.id, t.name FROM public.trees AS t WHERE (%(after)s::uuid IS NULL OR t.id > %(after)s::uuid)"
              f" AND {NEEDS_WORK_CITUS} ORDER BY t.id LIMIT %(batch)s")
_CITUS_IDS = "SELECT t.id, t.name FROM public.trees AS t WHERE t.id = ANY (%(ids)s::uuid[]) ORDER BY t.id"
_CITUS_ENTRIES = ("SELECT s.tree_key, s.id, s.is_active, s.last_synced_at FROM public.step_library AS s"
                  " WHERE s.tree_key = ANY (%s::uuid[]) AND s.source_tree_id = s.tree_key")
_CITUS_PROGRESS = ("UPDATE stepsync.backfill_progress AS p"
                   " SET after_tree_id = GREATEST(p.after_tree_id, %(through)s::uuid),"
                   " flows_done = p.flows_done + %(flows)s, rows_written = p.rows_written + %(rows)s,"
                   " updated_at = pg_catalog.clock_timestamp()"
                   " WHERE p.after_tree_id IS NULL OR p.after_tree_id < %(through)s::uuid")


# The batch acts as the tables' owner when the role may (a member of it): stepsync_citus.sync_tree is the
# owner's alone (db/citus/install/delegate.sql says why).
_CITUS_AS_OWNER = """DO $stepsync$
DECLARE
    v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                      WHERE c.oid = 'public.step_library'::pg_catalog.regclass);
BEGIN
    IF v_owner <> current_user AND pg_catalog.pg_has_role(current_user, v_owner, 'MEMBER') THEN
        EXECUTE pg_catalog.format('SET LOCAL ROLE %I', v_owner);
    END IF;
END;
$stepsync$"""


def _citus_entries(conn: psycopg.Connection[Any], ids: list[Any]) -> dict[Any, dict[Any, tuple[bool, Any]]]:
    entries: dict[Any, dict[Any, tuple[bool, Any]]] = {}
    for tree, entry, active, synced in conn.execute(_CITUS_ENTRIES, (ids,)).fetchall():
        entries.setdefault(tree, {})[entry] = (active, synced)
    return entries


def citus_batch(conn: psycopg.Connection[Any], select_sql: str, params: dict[str, Any], result: Result,
                *, move_backfill: bool = False) -> Flows:
    """One batch on Citus in one transaction (see _CITUS_ALL): its flows, synced one call each; with
    MOVE_BACKFILL the record of an unfinished backfill moves on past them in the same transaction."""
    with conn.transaction():
        conn.execute(_CITUS_AS_OWNER)
        if not scalar(conn, "SELECT pg_catalog.has_function_privilege('stepsync_citus.sync_tree(uuid)', 'EXECUTE')"):
            raise StepsyncError("on Citus the sync of a flow runs through stepsync_citus.sync_tree, which only the"
                                " tables' owner may call: run this as the owner, or as a role that may SET ROLE to it")
        flows = conn.execute(select_sql, params).fetchall()
        if not flows:
            return []
        ids = [tree for tree, _ in flows]
        before = _citus_entries(conn, ids)
        skipped = []
        for tree, name in flows:
            try:
                with conn.transaction():
                    conn.execute("SELECT stepsync_citus.sync_tree(%s)", (tree,))
            except psycopg.errors.CheckViolation as exc:
                skipped.append({"tree_id": tree, "name": name, "message": exc.diag.message_primary or str(exc)})
        after = _citus_entries(conn, ids)
        changes = []
        for tree, name in flows:
            old, new = before.get(tree, {}), after.get(tree, {})
            inserted = sum(1 for entry in new if entry not in old)
            retired = sum(1 for entry, (active, _) in new.items() if not active and old.get(entry, (False, None))[0])
            updated = sum(1 for entry, (active, synced) in new.items()
                          if entry in old and active and (not old[entry][0] or synced != old[entry][1]))
            if inserted or retired or updated:
                changes.append(FlowChange(tree, name, inserted, updated, retired))
        if move_backfill:
            conn.execute(_CITUS_PROGRESS, {"through": ids[-1], "flows": len(ids),
                                           "rows": sum(c.inserted + c.updated + c.retired for c in changes)})
    _account(result, flows, changes)
    result.skipped.extend(skipped)
    return flows


def run(conn: psycopg.Connection[Any], tree_ids: Sequence[Any] | None = None, batch: int = 100, after: Any = None,
        progress: Callable[[Result], None] | None = None, stop: Callable[[], bool] | None = None,
        total: int | None = None) -> Result:
    """sync_tree every flow (TREE_IDS, or all flows after AFTER in id order), BATCH flows a transaction.

    CONN must be in autocommit mode. Raises ResyncStopped on a database error.
    """
    citus = is_citus(conn)
    result = Result(total=total if total is not None else count_flows(conn, tree_ids, after))
    pending = sorted(set(tree_ids), key=str) if tree_ids is not None else None
    through_backfill = pending is None and bool(scalar(conn, _CAN_BACKFILL)) and not citus
    warnings: list[str] = []

    def on_notice(diag: Any) -> None:
        if (diag.severity_nonlocalized or diag.severity) == "WARNING" and (diag.message_primary or "").startswith(
                _SKIPPED):
            warnings.append(diag.message_primary)

    if through_backfill:
        conn.add_notice_handler(on_notice)
    try:
        while not (stop and stop()):
            if pending is not None:
                if not pending:
                    break
                chunk, pending = pending[:batch], pending[batch:]
                lock_sql, params = _LOCK_IDS, dict[str, Any](ids=chunk)
            else:
                lock_sql, params = _LOCK_ALL, dict[str, Any](after=result.last_tree_id or after, batch=batch)
            try:
                flows: Flows | None
                if citus:
                    flows = citus_batch(conn, _CITUS_IDS if pending is not None else _CITUS_ALL, params, result,
                                        move_backfill=pending is None and bool(scalar(conn, _CAN_BACKFILL)))
                elif through_backfill:
                    flows = _backfill_batch(conn, params, result, warnings)
                else:
                    flows = _one_batch(conn, lock_sql, params, result)
                if flows is None:
                    flows = _flow_by_flow(conn, lock_sql, params, result)
            except psycopg.Error as exc:
                raise ResyncStopped(result, exc) from None
            if progress is not None:
                progress(result)
            if not flows and pending is None:
                break
        else:
            result.interrupted = True
    except KeyboardInterrupt:
        result.interrupted = True
        result.rolled_back = True
    finally:
        if through_backfill:
            conn.remove_notice_handler(on_notice)
    result.total = max(result.total, result.done)
    return result


def resync(url: str, tree_ids: Sequence[Any], batch: int = 100,
           progress: Callable[[int, int], None] | None = None) -> int:
    """sync_tree every flow of TREE_IDS, BATCH a transaction; returns the library rows written or retired.

    The library call the benchmark uses (and older callers): `run` without the per-flow report's cost
    is not needed here, so it is `run` on its own connection.
    """
    with database.connect(url, autocommit=True) as conn:
        result = run(conn, list(tree_ids), batch=batch,
                     progress=(lambda r: progress(r.done, r.total)) if progress else None)
    return result.written
