"""The demo's data: the example flows (tools/examples/*.json) loaded as drafts of a demo account.

`stepsync demo` (stepsync.commands.demo) publishes, edits and deactivates them; the tests load
them too. Loading is re-runnable: each run resets the example flows to their files.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from stepsync.database import one_row
from stepsync.paths import EXAMPLES_DIR

DEMO_ACCOUNT = "Demo Co"
DEMO_EMAIL = "demo@stepsync.example"


def load_examples(conn: psycopg.Connection, examples_dir: Path = EXAMPLES_DIR) -> dict[str, str]:
    """Insert one draft flow a file of EXAMPLES_DIR (replacing an earlier run's); return {file stem: tree id}."""
    account = conn.execute(
        "SELECT id FROM public.accounts WHERE name = %s ORDER BY created_at LIMIT 1", (DEMO_ACCOUNT,)
    ).fetchone()
    if account is None:
        account = one_row(conn.execute("INSERT INTO public.accounts (name) VALUES (%s) RETURNING id", (DEMO_ACCOUNT,)))
    author = one_row(conn.execute(
        "INSERT INTO public.users (email, display_name, account_id) VALUES (%s, 'Demo Engineer', %s)"
        " ON CONFLICT (email) DO UPDATE SET account_id = EXCLUDED.account_id RETURNING id",
        (DEMO_EMAIL, account[0]),
    ))[0]
    # Start from scratch on a re-run: retire the previous run's entries (a client may delete
    # retired synced rows, never active ones), then remove those flows.
    previous = [row[0] for row in conn.execute(
        "SELECT id FROM public.trees WHERE author_id = %s", (author,)).fetchall()]
    if previous:
        conn.execute("UPDATE public.trees SET is_active = false WHERE id = ANY(%s)", (previous,))
        conn.execute("DELETE FROM public.step_library WHERE source_tree_id = ANY(%s) AND NOT is_active", (previous,))
        conn.execute("DELETE FROM public.trees WHERE id = ANY(%s)", (previous,))
    ids: dict[str, str] = {}
    for path in sorted(examples_dir.glob("*.json")):
        flow = json.loads(path.read_text(encoding="utf-8"))
        tree_id = one_row(conn.execute(
            "INSERT INTO public.trees (name, description, tree_type, tree_structure, is_public,"
            " account_id, author_id) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (flow["name"], flow.get("description"), flow["tree_type"], Jsonb(flow["tree_structure"]),
             flow.get("is_public", False), account[0], author),
        ))[0]
        ids[path.stem] = str(tree_id)
    return ids
