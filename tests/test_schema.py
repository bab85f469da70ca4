"""The schema refuses bad rows with the SQLSTATE and constraint a client can act on,
and keeps updated_at current (docs/contract.md §1, §5.9)."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def author(db):
    account = db.value("INSERT INTO accounts (name) VALUES ('Acme') RETURNING id")
    user = db.value(
        "INSERT INTO users (email, account_id) VALUES ('ada@example.com', %s) RETURNING id", (account,)
    )
    return {"account": account, "user": user}


def refused(db, sql, params=None) -> tuple[str, str | None]:
    """Run SQL that must fail; return (SQLSTATE, constraint name)."""
    with pytest.raises(psycopg.Error) as info:
        db.conn.execute(sql, params)
    return info.value.sqlstate, info.value.diag.constraint_name


def table_counts(db) -> tuple:
    return db.rows(
        "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM users),"
        " (SELECT count(*) FROM trees), (SELECT count(*) FROM step_library)"
    )[0]


TREE_INSERT = (
    "INSERT INTO trees (name, tree_type, status, author_id, account_id) VALUES (%s, %s, %s, %s, %s)"
)


@pytest.mark.parametrize(
    "values, expected",
    [
        (("F", "flowchart", "draft"), ("23514", "trees_tree_type_check")),
        (("F", "procedural", "live"), ("23514", "trees_status_check")),
        (("F", "PROCEDURAL", "draft"), ("23514", "trees_tree_type_check")),
        ((None, "procedural", "draft"), ("23502", None)),
    ],
)
def test_trees_refuse_bad_rows(db, author, values, expected):
    before = table_counts(db)
    assert refused(db, TREE_INSERT, (*values, author["user"], author["account"])) == expected
    assert table_counts(db) == before


def test_trees_refuse_unknown_author_and_account(db, author):
    import uuid

    assert refused(db, TREE_INSERT, ("F", "procedural", "draft", uuid.uuid4(), None)) == (
        "23503", "trees_author_id_fkey")
    assert refused(db, TREE_INSERT, ("F", "procedural", "draft", author["user"], uuid.uuid4())) == (
        "23503", "trees_account_id_fkey")


def test_tree_defaults(db, author):
    row = db.rows(
        "INSERT INTO trees (name, tree_type, author_id) VALUES ('F', 'maintenance', %s)"
        " RETURNING tree_structure, status, is_active, is_public, account_id, created_at = updated_at",
        (author["user"],),
    )
    assert row == [({}, "draft", True, False, None, True)]


def test_users_email_is_unique(db, author):
    assert refused(db, "INSERT INTO users (email) VALUES ('ada@example.com')") == ("23505", "users_email_key")


LIB_INSERT = (
    "INSERT INTO step_library (title, step_type, content, visibility, usage_count, rating, rating_count)"
    " VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s)"
)
GOOD = ("Restart", "action", '{"instructions": "Restart it"}', "team", 0, None, 0)


@pytest.mark.parametrize(
    "index, bad, constraint",
    [
        (1, "question", "step_library_step_type_check"),
        (3, "everyone", "step_library_visibility_check"),
        (2, '["not", "an", "object"]', "step_library_content_check"),
        (4, -1, "step_library_usage_count_check"),
        (5, 5.01, "step_library_rating_check"),
        (5, -0.5, "step_library_rating_check"),
        (6, -2, "step_library_rating_count_check"),
    ],
)
def test_step_library_refuses_bad_rows(db, index, bad, constraint):
    values = list(GOOD)
    values[index] = bad
    before = table_counts(db)
    assert refused(db, LIB_INSERT, values) == ("23514", constraint)
    assert table_counts(db) == before


def test_step_library_accepts_a_good_row_with_defaults(db):
    db.conn.execute(LIB_INSERT, GOOD)
    row = db.rows("SELECT visibility, usage_count, rating, rating_count, is_active FROM step_library")
    assert row == [("team", 0, None, 0, True)]


def test_rating_has_two_decimals(db):
    values = list(GOOD)
    values[5] = 4.256
    db.conn.execute(LIB_INSERT, values)
    assert str(db.value("SELECT rating FROM step_library")) == "4.26"


@pytest.mark.parametrize("table", ["trees", "step_library"])
def test_updated_at_moves_on_a_real_change_only(db, author, table):
    old = "2000-01-01 00:00:00+00"
    if table == "trees":
        row_id = db.value(
            "INSERT INTO trees (name, tree_type, author_id, updated_at) VALUES ('F', 'procedural', %s, %s)"
            " RETURNING id", (author["user"], old))
        change, noop = "name = 'G'", "name = name, tree_structure = tree_structure"
    else:
        row_id = db.value(
            "INSERT INTO step_library (title, step_type, content, updated_at)"
            " VALUES ('S', 'action', '{}', %s) RETURNING id", (old,))
        change, noop = "usage_count = usage_count + 1", "title = title, content = content"

    db.conn.execute(f"UPDATE {table} SET {noop} WHERE id = %s", (row_id,))
    assert str(db.value(f"SELECT updated_at FROM {table} WHERE id = %s", (row_id,))) == "2000-01-01 00:00:00+00:00"

    with db.connect(autocommit=False) as conn:
        conn.execute(f"UPDATE {table} SET {change} WHERE id = %s", (row_id,))
        now = conn.execute("SELECT now()").fetchone()[0]
        conn.commit()
    assert db.value(f"SELECT updated_at FROM {table} WHERE id = %s", (row_id,)) == now
