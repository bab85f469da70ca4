"""Helpers for tests that write flows and read the library, the way a client would."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

LIBRARY_COLUMNS = (
    "id, title, step_type, content, visibility, created_by, account_id, usage_count, rating, rating_count,"
    " is_active, created_at, updated_at, source_tree_id, source_node_id, is_flow_synced, last_synced_at,"
    " forked_from_id, xmin::text AS xmin"
)


def step(node_id: str, title: str, **fields) -> dict:
    return {"id": node_id, "type": "procedure_step", "title": title, **fields}


def header(title, node_id: str | None = None) -> dict:
    return {"id": node_id or f"hdr-{title}", "type": "section_header", "title": title}


def content(instructions: str, help_text=None, commands=(), group_label=None) -> dict:
    return {"instructions": instructions, "help_text": help_text, "commands": list(commands),
            "group_label": group_label}


def cmd(command: str, label: str = "", command_type=None) -> dict:
    return {"label": label, "command": command, "command_type": command_type}


@dataclass
class Actors:
    account: uuid.UUID
    author: uuid.UUID
    other_account: uuid.UUID
    outsider: uuid.UUID


class Flows:
    """Writes to trees and reads step_library through one autocommit connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        account = conn.execute("INSERT INTO accounts (name) VALUES ('Acme') RETURNING id").fetchone()[0]
        other = conn.execute("INSERT INTO accounts (name) VALUES ('Other') RETURNING id").fetchone()[0]
        author = conn.execute(
            "INSERT INTO users (email, account_id) VALUES ('author@acme.test', %s) RETURNING id", (account,)
        ).fetchone()[0]
        outsider = conn.execute(
            "INSERT INTO users (email, account_id) VALUES ('someone@other.test', %s) RETURNING id", (other,)
        ).fetchone()[0]
        self.actors = Actors(account, author, other, outsider)

    def create(self, structure, tree_type: str = "procedural", status: str = "draft", *, is_public=False,
               is_active=True, account="default", name="Flow") -> uuid.UUID:
        account_id = self.actors.account if account == "default" else account
        return self.conn.execute(
            "INSERT INTO trees (name, tree_type, tree_structure, status, is_public, is_active, account_id, author_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (name, tree_type, as_json(structure), status, is_public, is_active, account_id, self.actors.author),
        ).fetchone()[0]

    def update(self, tree_id, **values) -> None:
        sets = ", ".join(f"{column} = %s" for column in values)
        params = [as_json(v) if column == "tree_structure" else v for column, v in values.items()]
        self.conn.execute(f"UPDATE trees SET {sets} WHERE id = %s", (*params, tree_id))

    def publish(self, tree_id, structure=None) -> None:
        if structure is None:
            self.update(tree_id, status="published")
        else:
            self.update(tree_id, status="published", tree_structure=structure)

    def library(self, tree_id=None, *, where: str = "true") -> list[dict]:
        """Library rows (all columns plus xmin), of one flow or all, ordered by node id then id."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            if tree_id is None:
                cur.execute(f"SELECT {LIBRARY_COLUMNS} FROM step_library WHERE {where} ORDER BY source_node_id, id")
            else:
                cur.execute(
                    f"SELECT {LIBRARY_COLUMNS} FROM step_library WHERE source_tree_id = %s AND {where}"
                    " ORDER BY source_node_id, id", (tree_id,))
            return cur.fetchall()

    def entries(self, tree_id) -> dict[str, tuple]:
        """{node id: (title, step_type, content, visibility, is_active)} of a flow's entries."""
        return {
            r["source_node_id"]: (r["title"], r["step_type"], r["content"], r["visibility"], r["is_active"])
            for r in self.library(tree_id)
        }

    def snapshot(self) -> list[tuple]:
        """Everything a failed statement must leave unchanged: trees and the library, row versions included."""
        return self.conn.execute(
            "SELECT 'tree', t.id::text, t.xmin::text, t::text FROM trees t"
            " UNION ALL SELECT 'step', s.id::text, s.xmin::text, s::text FROM step_library s ORDER BY 1, 2"
        ).fetchall()


def as_json(value):
    """A structure for a jsonb parameter: raw JSON text stays text (deep documents), the rest is adapted."""
    if isinstance(value, RawJson):
        return value.text
    return Jsonb(value)


class RawJson:
    """JSON given as text, for documents Python's json cannot build (nesting beyond its recursion limit)."""

    def __init__(self, text: str) -> None:
        self.text = text


def chain_json(depth: int, *, synced_every: int = 2, prefix: str = "n") -> str:
    """A troubleshooting chain DEPTH nodes deep, each holding the next in a "children" array, as text.

    Every SYNCED_EVERY-th node (counting from 1) is an action, the others questions.
    """
    opens = []
    for i in range(depth):
        kind = "action" if (i + 1) % synced_every == 0 else "question"
        opens.append(json.dumps({"id": f"{prefix}{i}", "type": kind, "title": f"Node {i}"})[:-1] + ', "children": [')
    return "".join(opens) + "]}" * depth
