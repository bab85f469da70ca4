"""`stepsync demo`: the example flows published, edited, deactivated, with the
library shown after each step.

Everything here is an ordinary client write to `trees` or a usage increment on
`step_library`; the library follows because PostgreSQL keeps it in sync. The
demo is re-runnable: each run resets the example flows to their files
(stepsync.demo.load_examples).
"""

from __future__ import annotations

import sys

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.table import Table

from stepsync import database
from stepsync.citus import is_citus
from stepsync.database import one_row
from stepsync.demo import load_examples
from stepsync.paths import EXAMPLES_DIR

console = Console(width=None if sys.stdout.isatty() else 132)

# What marks a library entry as changed between two views: title, step type, visibility, is_active, content.
Fingerprint = tuple[str, str, str, bool, object]


LIBRARY_SQL = """
SELECT t.id, t.name, t.status, t.is_active, s.id, s.content ->> 'group_label', s.title, s.step_type, s.visibility,
       jsonb_array_length(s.content -> 'commands'), s.usage_count, s.is_active, s.content
  FROM public.trees t
  LEFT JOIN public.step_library s ON {join} AND s.is_flow_synced
  LEFT JOIN LATERAL (
        SELECT p.i FROM jsonb_path_query(t.tree_structure, 'strict $.**.id') WITH ORDINALITY AS p (node_id, i)
         WHERE p.node_id #>> '{}' = s.source_node_id LIMIT 1) AS pos ON true
 WHERE t.id = ANY(%s)
 ORDER BY t.name, s.is_active DESC, pos.i, s.source_node_id
"""


class LibraryView:
    """Prints the library of some flows as one table a flow, marking what changed since last time."""

    def __init__(self, conn: psycopg.Connection, tree_ids: list[str]) -> None:
        self.conn = conn
        self.tree_ids = tree_ids
        # On Citus a flow's entries are joined on its shard (docs/contract.md §11): by tree_key too.
        self.sql = LIBRARY_SQL.replace("{join}", "s.tree_key = t.id AND s.source_tree_id = t.id" if is_citus(conn)
                                       else "s.source_tree_id = t.id")
        self.seen: dict[str, Fingerprint] | None = None

    def show(self, caption: str) -> None:
        rows = self.conn.execute(self.sql, (self.tree_ids,)).fetchall()
        console.rule(f"[bold]{caption}")
        flows: dict[str, list[TupleRow]] = {}
        for row in rows:
            flows.setdefault(row[0], []).append(row)
        now: dict[str, Fingerprint] = {}
        for flow_rows in flows.values():
            _, name, status, flow_active, *_ = flow_rows[0]
            state = status if flow_active else f"{status}, deactivated"
            table = Table(title=f"{name}  [dim]({state})[/dim]", title_justify="left", header_style="bold",
                          expand=False, pad_edge=False)
            table.add_column("section", max_width=20, overflow="ellipsis", no_wrap=True)
            table.add_column("step", max_width=40, overflow="ellipsis", no_wrap=True)
            table.add_column("type", min_width=8)
            table.add_column("visibility", min_width=10)
            table.add_column("cmds", justify="right", min_width=4)
            table.add_column("uses", justify="right", min_width=4)
            table.add_column("state", min_width=7)
            table.add_column("change", style="bold", min_width=7)
            entries = [r for r in flow_rows if r[4] is not None]
            for *_, step_id, group, title, step_type, visibility, commands, uses, active, content in entries:
                fingerprint: Fingerprint = (title, step_type, visibility, active, content)
                now[step_id] = fingerprint
                before = None if self.seen is None else self.seen.get(step_id)
                if self.seen is None:
                    change = ""
                elif before is None:
                    change = "new"
                elif before == fingerprint:
                    change = ""
                elif before[3] and not active:
                    change = "retired"
                elif active and not before[3]:
                    change = "revived"
                else:
                    change = "updated"
                table.add_row(group or "", title, step_type, visibility, str(commands), str(uses),
                              "active" if active else "retired", change,
                              style=None if active else "dim")
            active_count = sum(1 for r in entries if r[11])
            table.caption = f"{active_count} active, {len(entries) - active_count} retired"
            if not entries:
                table.caption = "no library entries"
            console.print(table)
        self.seen = now
        console.print()


def run(url: str) -> None:
    """Migrate the database at URL (on a Citus coordinator as `stepsync migrate` does there), then the whole
    demo on it."""
    with database.connect(url) as conn:
        on_citus = is_citus(conn)
    if on_citus:
        from stepsync.commands import migrate

        migrate.run(url)
    else:
        database.migrate(url)
    with database.connect(url, autocommit=True) as conn:
        walkthrough(conn)


def walkthrough(conn: psycopg.Connection) -> None:
    """The whole demo on CONN (autocommit)."""
    ids = load_examples(conn)
    all_ids = list(ids.values())
    procedural = ids["procedural-db-failover"]
    troubleshooting = ids["troubleshooting-wifi"]
    view = LibraryView(conn, all_ids)
    console.print(f"Loaded {len(ids)} example flows from {EXAMPLES_DIR} as drafts: drafts are not in the library.\n")
    view.show("1. Drafts loaded")

    conn.execute("UPDATE public.trees SET status = 'published' WHERE id = ANY(%s)", (all_ids,))
    view.show("2. All three flows published (one UPDATE ... SET status = 'published' WHERE id = ANY(...))")

    promote = conn.execute(
        "UPDATE public.step_library SET usage_count = usage_count + 7"
        " WHERE source_tree_id = %s AND source_node_id = 'step-promote-replica' RETURNING title",
        (procedural,),
    ).fetchone()
    structure = one_row(conn.execute("SELECT tree_structure FROM public.trees WHERE id = %s", (procedural,)))[0]
    steps = structure["steps"]
    edited = next(s for s in steps if s.get("id") == "step-promote-replica")
    edited["title"] = edited["title"] + " (pg_promote, wait for it)"
    removed = next(s for s in steps if s.get("type") == "procedure_step" and s.get("id") != edited["id"])
    steps.remove(removed)
    conn.execute("UPDATE public.trees SET tree_structure = %s WHERE id = %s", (Jsonb(structure), procedural))
    console.print(
        f"Engineers used [bold]{promote[0] if promote else 'a step'}[/bold] 7 times. Then the failover flow was"
        f" re-published with that step retitled and [bold]{removed['title']}[/bold] removed.\n"
    )
    view.show("3. Re-published with an edit: one entry rewritten, one retired, the usage count kept")

    conn.execute("UPDATE public.trees SET is_active = false WHERE id = %s", (troubleshooting,))
    view.show("4. Troubleshooting flow deactivated: its entries are retired, counts kept")
