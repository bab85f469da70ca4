"""`stepsync demo`: the example flows published, edited, deactivated, with the
library shown after each step.

Everything here is an ordinary client write to `trees` or a usage increment on
`step_library`; the library follows because PostgreSQL keeps it in sync. The
demo is re-runnable: each run resets the example flows to their files.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.table import Table

from stepsync.paths import EXAMPLES_DIR

DEMO_ACCOUNT = "Demo Co"
DEMO_EMAIL = "demo@stepsync.example"

console = Console()


def load_examples(conn: psycopg.Connection, examples_dir: Path = EXAMPLES_DIR) -> dict[str, str]:
    """Insert (or reset to draft) one flow a file of EXAMPLES_DIR; return {file stem: tree id}."""
    account = conn.execute(
        "SELECT id FROM public.accounts WHERE name = %s ORDER BY created_at LIMIT 1", (DEMO_ACCOUNT,)
    ).fetchone()
    if account is None:
        account = conn.execute(
            "INSERT INTO public.accounts (name) VALUES (%s) RETURNING id", (DEMO_ACCOUNT,)
        ).fetchone()
    author = conn.execute(
        "INSERT INTO public.users (email, display_name, account_id) VALUES (%s, 'Demo Engineer', %s)"
        " ON CONFLICT (email) DO UPDATE SET account_id = EXCLUDED.account_id RETURNING id",
        (DEMO_EMAIL, account[0]),
    ).fetchone()[0]
    ids: dict[str, str] = {}
    for path in sorted(examples_dir.glob("*.json")):
        flow = json.loads(path.read_text(encoding="utf-8"))
        existing = conn.execute(
            "SELECT id FROM public.trees WHERE name = %s AND author_id = %s ORDER BY created_at LIMIT 1",
            (flow["name"], author),
        ).fetchone()
        values = (flow["name"], flow.get("description"), flow["tree_type"], Jsonb(flow["tree_structure"]),
                  flow.get("is_public", False), account[0])
        if existing is None:
            tree_id = conn.execute(
                "INSERT INTO public.trees (name, description, tree_type, tree_structure, is_public,"
                " account_id, author_id) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (*values, author),
            ).fetchone()[0]
        else:
            tree_id = existing[0]
            conn.execute(
                "UPDATE public.trees SET name = %s, description = %s, tree_type = %s, tree_structure = %s,"
                " is_public = %s, account_id = %s, status = 'draft', is_active = true WHERE id = %s",
                (*values, tree_id),
            )
        ids[path.stem] = str(tree_id)
    return ids


LIBRARY_SQL = """
SELECT t.name, s.content ->> 'group_label', s.title, s.step_type, s.visibility,
       jsonb_array_length(s.content -> 'commands'), s.usage_count, s.is_active,
       to_char(s.last_synced_at, 'HH24:MI:SS.MS')
  FROM public.step_library s
  LEFT JOIN public.trees t ON t.id = s.source_tree_id
 WHERE s.source_tree_id = ANY(%s)
 ORDER BY t.name, s.is_active DESC, s.source_node_id
"""


def show_library(conn: psycopg.Connection, tree_ids: list[str], caption: str) -> None:
    """Print the library entries of TREE_IDS as a table."""
    rows = conn.execute(LIBRARY_SQL, (tree_ids,)).fetchall()
    table = Table(title=caption, title_justify="left", show_lines=False, header_style="bold")
    for column, kwargs in [
        ("flow", {"max_width": 28, "overflow": "ellipsis", "no_wrap": True}),
        ("section", {"max_width": 22, "overflow": "ellipsis", "no_wrap": True}),
        ("step", {"max_width": 46, "overflow": "ellipsis", "no_wrap": True}),
        ("type", {}), ("visibility", {}), ("cmds", {"justify": "right"}),
        ("uses", {"justify": "right"}), ("active", {}), ("synced at", {}),
    ]:
        table.add_column(column, **kwargs)
    for name, group, title, step_type, visibility, commands, uses, active, synced in rows:
        style = None if active else "dim strike"
        table.add_row(name or "(deleted flow)", group or "", title, step_type, visibility, str(commands),
                      str(uses), "yes" if active else "retired", synced or "", style=style)
    active = sum(1 for row in rows if row[7])
    table.caption = f"{active} active, {len(rows) - active} retired"
    console.print(table)
    console.print()


def run(conn: psycopg.Connection) -> None:
    """The whole demo on CONN (autocommit)."""
    ids = load_examples(conn)
    all_ids = list(ids.values())
    procedural = ids["procedural-db-failover"]
    troubleshooting = ids["troubleshooting-wifi"]
    console.print(f"[bold]Loaded {len(ids)} example flows as drafts.[/bold] Drafts are not in the library.\n")
    show_library(conn, all_ids, "1. Drafts loaded")

    conn.execute("UPDATE public.trees SET status = 'published' WHERE id = ANY(%s)", (all_ids,))
    show_library(conn, all_ids, "2. All three flows published (one UPDATE ... WHERE id = ANY(...))")

    promote = conn.execute(
        "UPDATE public.step_library SET usage_count = usage_count + 7"
        " WHERE source_tree_id = %s AND source_node_id = 'step-promote-replica' RETURNING title",
        (procedural,),
    ).fetchone()
    structure = conn.execute("SELECT tree_structure FROM public.trees WHERE id = %s", (procedural,)).fetchone()[0]
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
    show_library(conn, all_ids, "3. Re-published with an edit: one row rewritten, one retired, usage kept")

    conn.execute("UPDATE public.trees SET is_active = false WHERE id = %s", (troubleshooting,))
    show_library(conn, all_ids, "4. Troubleshooting flow deactivated: its entries are retired")
