"""Search (docs/contract.md §6.8, issue 11): the stored search vector and stepsync.search_steps.

The ``sdb`` fixture checks that the migrated test database has the search vector
(``stepsync_dev.bench.search.ensure_search_schema``: the install revision put it
there) and creates the search functions of db/functions as they are, should the
frozen copies lag behind.

The property test builds small random libraries and checks search_steps, with a
small candidate bound (the setting stepsync.search_candidates) and with each way
through the function forced (stepsync.search_estimate), against an oracle: the
matches and their tiers by brute force in plain SQL (the text document of every
row, filtered by weight), visibility, filters, popularity classes and the
candidate rule of the function's COMMENT in Python.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from psycopg.types.json import Jsonb

from flows import Flows, step
from stepsync.paths import FROZEN_SQL_DIR
from stepsync_dev.bench.search import ensure_search_schema, install_checkout_functions

INF = 2**31 - 1
RANKS = {4: 1.0, 3: 0.4, 2: 0.2, 1: 0.1}


@pytest.fixture
def sdb(db):
    ensure_search_schema(db.conn)
    install_checkout_functions(db.conn)    # the files as they are, should the frozen copies lag behind
    return db


@pytest.fixture
def flows(sdb) -> Flows:
    return Flows(sdb.conn)


def insert_step(conn, *, title, content=None, visibility="public", created_by=None, account_id=None,
                usage_count=0, rating=None, step_type="action", is_active=True, step_id=None) -> uuid.UUID:
    return conn.execute(
        "INSERT INTO step_library (id, title, step_type, content, visibility, created_by, account_id, usage_count,"
        " rating, is_active) VALUES (coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (step_id, title, step_type, Jsonb(content if content is not None else {"instructions": title}), visibility,
         created_by, account_id, usage_count, rating, is_active)).fetchone()[0]


def keys(conn, step_id) -> list[str]:
    """The keys in a step's search_vector (the lexemes that start with a space), sorted."""
    return [r[0] for r in conn.execute(
        "SELECT lexeme FROM unnest((SELECT search_vector FROM step_library WHERE id = %s)) WHERE lexeme LIKE ' %%'"
        " ORDER BY 1", (step_id,))]


def search(conn, user, query, **kw) -> list[tuple]:
    args = "".join(f", p_{k} => %({k})s" for k in kw)
    return conn.execute(f"SELECT id, round(rank::numeric, 1)::float8, complete"
                        f" FROM stepsync.search_steps(%(user)s, %(query)s{args})",
                        {"user": user, "query": query, **kw}).fetchall()


# --- the stored vector ----------------------------------------------------------------------------------------------

def test_the_vector_holds_the_document_and_the_keys(sdb):
    conn = sdb.conn
    account = conn.execute("INSERT INTO accounts (name) VALUES ('A') RETURNING id").fetchone()[0]
    user = conn.execute("INSERT INTO users (email, account_id) VALUES ('u@a', %s) RETURNING id", (account,)
                        ).fetchone()[0]
    content = {"instructions": "Restart the web server", "help_text": "It comes back",
               "commands": [{"label": "", "command": "systemctl restart nginx", "command_type": "bash"}],
               "group_label": "Networking"}
    public = insert_step(conn, title="Restart nginx", content=content, usage_count=5,
                         step_id="00000000-0000-4000-8000-000000000001")
    team = insert_step(conn, title="Flush caches", visibility="team", account_id=account, created_by=user,
                       step_type="solution", usage_count=3, step_id="fc000000-0000-4000-8000-000000000002")
    private = insert_step(conn, title="Mine", visibility="private", created_by=user, usage_count=20000,
                          step_id="05000000-0000-4000-8000-000000000003")
    assert keys(conn, public) == [" p c1 action", " tnginx", " trestart"]
    assert keys(conn, team) == [f" a{account} n63 solution", " tcach", " tflush", f" u{user} n63 solution"]
    assert keys(conn, private) == [" tmine", f" u{user} c12 action"]
    # The text part is exactly stepsync._search_document(title, content).
    for step_id in (public, team, private):
        assert conn.execute(
            "SELECT ts_delete(search_vector, ARRAY(SELECT lexeme FROM unnest(search_vector) WHERE lexeme LIKE ' %%'))"
            "       = stepsync._search_document(title, content) FROM step_library WHERE id = %s",
            (step_id,)).fetchone() == (True,)


@pytest.mark.parametrize("title, content", [
    ("Only a title", {}),
    ("Nulls", {"instructions": None, "help_text": None, "commands": None, "group_label": None}),
    ("Strings", {"instructions": "it's a test", "commands": "not a list"}),
    ("Quote ' and backslash \\ here", {"instructions": "x\\'y", "group_label": "a'b"}),
])
def test_the_text_part_equals_search_document_for_odd_content(sdb, title, content):
    step_id = insert_step(sdb.conn, title=title, content=content)
    assert sdb.value(
        "SELECT ts_delete(search_vector, ARRAY(SELECT lexeme FROM unnest(search_vector) WHERE lexeme LIKE ' %%'))"
        "       = stepsync._search_document(title, content) FROM step_library WHERE id = %s", (step_id,)) is True


def test_the_vector_follows_writes_and_cannot_be_forged(sdb):
    conn = sdb.conn
    step_id = insert_step(conn, title="Restart nginx", usage_count=2, step_id="40000000-0000-4000-8000-000000000000")
    assert " p n16 action" in keys(conn, step_id)
    conn.execute("UPDATE step_library SET title = 'Reload haproxy' WHERE id = %s", (step_id,))
    assert [k for k in keys(conn, step_id) if k.startswith(" t")] == [" thaproxi", " treload"]
    conn.execute("UPDATE step_library SET search_vector = 'garbage'::tsvector WHERE id = %s", (step_id,))
    assert " p n16 action" in keys(conn, step_id)
    assert sdb.value("SELECT search_vector @@ 'garbage'::tsquery FROM step_library WHERE id = %s", (step_id,)) is False
    conn.execute("UPDATE step_library SET visibility = 'private', created_by = NULL WHERE id = %s", (step_id,))
    assert [k for k in keys(conn, step_id) if not k.startswith(" t")] == []
    conn.execute("UPDATE step_library SET visibility = 'public', usage_count = 4 WHERE id = %s", (step_id,))
    assert " p c1 action" in keys(conn, step_id)


def test_usage_increments_leave_the_vector_alone_until_the_class_changes(sdb):
    conn = sdb.conn
    step_id = insert_step(conn, title="Restart nginx", step_id="40000000-0000-4000-8000-000000000000")

    def vector_and_updated():
        return conn.execute("SELECT search_vector::text, updated_at FROM step_library WHERE id = %s",
                            (step_id,)).fetchone()

    def hot_updates() -> tuple[int, int]:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                            " WHERE relid = 'step_library'::regclass").fetchone()

    seen = []
    before = hot_updates()
    for expected_class in ("n16", "n16", "n16", "c1", "c1", "c1", "c1", "c2"):   # usage 1, 2, 3, 4, ..., 8
        conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (step_id,))
        vector, _ = vector_and_updated()
        assert f"' p {expected_class} action'" in vector
        seen.append(vector)
    after = hot_updates()
    assert after[0] - before[0] == 8
    # 8 increments, 2 of them change the class (3 -> 4, 7 -> 8): the other 6 are HOT (the page has room).
    assert after[1] - before[1] == 6
    assert len(set(seen)) == 3


def test_the_install_fills_missing_vectors_and_keeps_updated_at(sdb):
    # The search vector of the rows that were there before the install: the frozen search_fill.gexec.sql
    # the install revision runs, a query whose rows are statements, each run on its own in autocommit,
    # as stepsync.frozen.outside_transaction runs them.
    conn = sdb.conn
    ids = [insert_step(conn, title=f"Restart {i}") for i in range(7)]
    conn.execute("SET session_replication_role = replica")     # writes that bypass the triggers
    conn.execute("UPDATE step_library SET updated_at = '2020-01-01' WHERE true")
    conn.execute("UPDATE step_library SET search_vector = NULL WHERE id = ANY(%s)", (ids[:5],))
    conn.execute("RESET session_replication_role")
    fill = sorted(FROZEN_SQL_DIR.glob("stepsync_*/search_fill.gexec.sql"))[-1]
    query = fill.read_text(encoding="utf-8").rstrip().rstrip(";")
    statements = [row[0] for row in conn.execute(query).fetchall()]
    assert statements[0] == "SELECT stepsync._retire_orphans()"
    assert len(statements) == 2     # the orphans, then one range: fewer than 5,000 rows to fill
    for statement in statements:
        conn.execute(statement)
    assert [row[0] for row in conn.execute(query).fetchall()] == ["SELECT stepsync._retire_orphans()"]
    assert conn.execute("SELECT count(*) FILTER (WHERE search_vector IS NULL),"
                        " count(*) FILTER (WHERE updated_at <> '2020-01-01') FROM step_library").fetchone() == (0, 0)
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 't10_set_updated_at' AND tgenabled = 'O'"
                        " AND tgrelid = 'step_library'::regclass").fetchone() == (1,)
    assert [r[0] for r in search(conn, None, "restart")]


def test_a_huge_step_publishes_and_is_found(flows):
    words = " ".join(f"w{i:07d}x" for i in range(120_000))
    tree = flows.create({"steps": [step("big", "Huge step", description="needle " + words,
                                        commands=["cmd " + words])]}, is_public=True)
    flows.publish(tree)
    hits = flows.conn.execute("SELECT source_node_id, complete FROM stepsync.search_steps(%s, 'needle')",
                              (flows.actors.outsider,)).fetchall()
    assert hits == [("big", True)]


def test_the_walk_uses_the_index(sdb):
    conn = sdb.conn
    for i in range(300):
        insert_step(conn, title=f"Step {i}", content={"instructions": f"do {i}"})
    conn.execute("ANALYZE step_library")
    with sdb.connect(autocommit=False) as c:
        c.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in c.execute(
            "EXPLAIN SELECT id FROM step_library s WHERE s.is_active"
            " AND s.search_vector @@ ('''restart'' & '' p c1 action'''::tsquery)"))
    assert "step_library_search_vector_idx" in plan


# --- search_steps: examples -----------------------------------------------------------------------------------------

def test_search_ranks_tiers_filters_and_visibility(flows):
    a = flows.actors
    web = flows.create({"steps": [
        {"id": "hdr", "type": "section_header", "title": "Networking"},
        step("r1", "Restart nginx", description="Reload the web server configuration",
             commands=[{"code": "systemctl restart nginx", "language": "bash"}]),
        step("r2", "Check disk space", description="Before you restart anything", commands="df -h"),
        step("r3", "Flush DNS cache", expected_outcome="Names resolve after the restart"),
        step("r4", "Look around", description="Then go on"),
    ]}, name="Web runbook", is_public=True)
    secret = flows.create({"steps": [step("p1", "Restart the secret service")]}, name="Secret",
                          account=a.account, is_public=False)
    flows.publish(web)
    flows.publish(secret)
    conn = flows.conn
    rows = conn.execute("SELECT source_node_id, source_tree_name, round(rank::numeric, 1)::float8, complete"
                        " FROM stepsync.search_steps(%s, 'restart')", (a.outsider,)).fetchall()
    assert rows == [("r1", "Web runbook", 1.0, True), ("r2", "Web runbook", 0.2, True),
                    ("r3", "Web runbook", 0.1, True)]
    assert {r[0] for r in conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'restart')",
                                       (a.author,))} == {"r1", "r2", "r3", "p1"}
    assert conn.execute("SELECT source_node_id, round(rank::numeric, 1)::float8"
                        " FROM stepsync.search_steps(%s, 'networking')"
                        " ORDER BY source_node_id", (a.outsider,)).fetchall() == [
        ("r1", 0.4), ("r2", 0.4), ("r3", 0.4), ("r4", 0.4)]
    assert conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'systemctl')",
                        (a.outsider,)).fetchall() == [("r1",)]
    assert conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, '\"web server\" -disk')",
                        (a.outsider,)).fetchall() == [("r1",)]
    assert sorted(conn.execute("SELECT source_node_id, round(rank::numeric, 1)::float8"
                               " FROM stepsync.search_steps(%s, 'nginx or dns')",
                               (a.outsider,)).fetchall()) == [("r1", 1.0), ("r3", 1.0)]
    filtered = conn.execute(
        "SELECT source_node_id FROM stepsync.search_steps(%s, 'restart', p_group_label => 'Networking',"
        " p_source_tree_id => %s, p_step_type => 'action', p_limit => 2)", (a.author, web)).fetchall()
    assert filtered == [("r1",), ("r2",)]
    assert search(conn, a.author, "restart", step_type="solution") == []
    assert search(conn, a.author, "restart", limit=0) == []
    assert len(search(conn, a.author, "restart", limit=None)) == 4
    for empty in ("", "   ", "the and of", "!!!", None):
        assert search(conn, a.author, empty) == []
    with pytest.raises(psycopg.Error) as info:
        search(conn, a.author, "restart", limit=-1)
    assert info.value.sqlstate == "2201W"
    flows.update(web, is_active=False)
    assert [r[0] for r in conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'restart')",
                                       (a.author,))] == ["p1"]
    unknown = uuid.uuid4()
    assert search(conn, unknown, "secret") == []
    assert search(conn, None, "secret") == []


def test_ties_go_to_usage_then_rating_then_id(sdb):
    conn = sdb.conn
    ids = [insert_step(conn, title="Restart", usage_count=u, rating=r, step_id=i) for u, r, i in [
        (5, None, "00000000-0000-4000-8000-00000000000b"), (5, 4.5, "00000000-0000-4000-8000-00000000000c"),
        (9, None, "00000000-0000-4000-8000-00000000000d"), (5, None, "00000000-0000-4000-8000-00000000000a"),
        (5, 4.5, "00000000-0000-4000-8000-000000000001")]]
    assert [r[0] for r in search(conn, None, "restart")] == [ids[2], ids[4], ids[1], ids[3], ids[0]]


def test_more_matches_than_the_bound_take_whole_classes_most_used_first(sdb):
    conn = sdb.conn
    popular = [insert_step(conn, title="Deploy", content={"instructions": "restart it"}, usage_count=100 + i)
               for i in range(5)]
    for i in range(300):
        insert_step(conn, title="Deploy", content={"instructions": "restart it"}, usage_count=i % 3)
    in_title = insert_step(conn, title="Restart", step_id="ff000000-0000-4000-8000-000000000000")
    conn.execute("ANALYZE step_library")
    rows = search(conn, None, "restart")
    assert len(rows) == 20 and all(not r[2] for r in rows)
    # The title match of the last part comes first (every title match is a candidate when the classes used 4
    # times or more hold fewer than 20), then the most used.
    assert [r[0] for r in rows[:6]] == [in_title, *reversed(popular)]
    assert len(search(conn, None, "restart", limit=None)) == 306
    assert all(r[2] for r in search(conn, None, "restart", limit=None))


# --- search_steps: the property test --------------------------------------------------------------------------------

WORDS = ["restart", "server", "backup", "disk", "network", "cache", "queue", "logs"]
USAGES = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 100, 8191, 8192, 20000]
PREFIXES = ["0", "3", "7", "c", "f"]


@dataclass
class World:
    accounts: list[uuid.UUID]
    users: list[uuid.UUID]      # users[0], [1] in accounts[0]; users[2] in accounts[1]; users[3] without account
    tree: uuid.UUID


@pytest.fixture
def world(sdb) -> World:
    conn = sdb.conn
    accounts = [conn.execute("INSERT INTO accounts (name) VALUES (%s) RETURNING id", (n,)).fetchone()[0]
                for n in ("A", "B")]
    users = [conn.execute("INSERT INTO users (email, account_id) VALUES (%s, %s) RETURNING id", (e, a)).fetchone()[0]
             for e, a in (("a1@x", accounts[0]), ("a2@x", accounts[0]), ("b1@x", accounts[1]), ("solo@x", None))]
    tree = conn.execute("INSERT INTO trees (name, tree_type, author_id) VALUES ('T', 'procedural', %s) RETURNING id",
                        (users[0],)).fetchone()[0]
    return World(accounts, users, tree)


texts = st.lists(st.sampled_from([*WORDS, "the", "a"]), min_size=0, max_size=4).map(" ".join)


@st.composite
def libraries(draw):
    rows = []
    for n in range(draw(st.integers(min_value=1, max_value=45))):
        prefix = draw(st.sampled_from(PREFIXES))
        rows.append({   # the first 6 bits (the part) from PREFIXES, the rest random but unique
            "id": uuid.UUID(prefix + uuid.UUID(int=draw(st.integers(0, 2**124 - 1))).hex[1:28] + f"{n:04x}"),
            "title": draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)),
            "instructions": draw(st.none() | texts),
            "help_text": draw(st.none() | texts),
            "command": draw(st.none() | texts),
            "group_label": draw(st.sampled_from([None, None, "Prepare", "disk checks"])),
            "visibility": draw(st.sampled_from(["public", "team", "private"])),
            "account": draw(st.sampled_from([None, 0, 1])),
            "creator": draw(st.sampled_from([None, 0, 1, 2, 3])),
            "usage_count": draw(st.sampled_from(USAGES)),
            "rating": draw(st.sampled_from([None, None, 1.5, 4.0, 5.0])),
            "step_type": draw(st.sampled_from(["action", "action", "solution"])),
            "is_active": draw(st.booleans() | st.just(True)),
            "in_tree": draw(st.booleans()),
        })
    return rows


term = st.sampled_from(WORDS)
queries = st.one_of(
    term, st.tuples(term, term).map(" ".join), st.tuples(term, term).map(lambda t: f'"{t[0]} {t[1]}"'),
    st.tuples(term, term).map(lambda t: f"{t[0]} or {t[1]}"), st.tuples(term, term).map(lambda t: f"{t[0]} -{t[1]}"),
    term.map(lambda t: f"-{t}"), st.tuples(term, term).map(lambda t: f"{t[0]} or -{t[1]}"),
    st.sampled_from(["the", "", "restart the server", '"disk the cache"', "logs or queue or cache"]))


def popularity_class(usage: int, step_id: uuid.UUID) -> int:
    if usage >= 4:
        return 13 - min(usage.bit_length() - 2, 12)
    return 13 + int(step_id.hex[0], 16) * 4 + int(step_id.hex[1], 16) // 4


def _note(text: str) -> None:
    """hypothesis.event, for the property test's statistics; the oracle also serves plain tests."""
    with contextlib.suppress(InvalidArgument):
        event(text)


def oracle(conn, world: World, viewer, query, kind, group, tree, limit, bound):
    """What the COMMENT's rule gives: (rows as (id, rank, complete)) or [] for an empty query."""
    q_text = conn.execute("SELECT websearch_to_tsquery('english', coalesce(%s, ''))::text", (query,)).fetchone()[0]
    if not q_text.strip():
        return []
    viewer_account = None
    if viewer is not None:
        found = conn.execute("SELECT account_id FROM users WHERE id = %s", (viewer,)).fetchone()
        viewer_account = found[0] if found else None
    matches = conn.execute(
        """
        WITH q AS (SELECT websearch_to_tsquery('english', %(q)s) AS q)
        SELECT s.id, s.usage_count, s.rating, s.visibility, s.created_by, s.account_id, s.step_type,
               s.content ->> 'group_label', s.source_tree_id,
               CASE WHEN ts_filter(d.doc, '{a}') @@ q.q THEN 4 WHEN ts_filter(d.doc, '{a,b}') @@ q.q THEN 3
                    WHEN ts_filter(d.doc, '{a,b,c}') @@ q.q THEN 2 ELSE 1 END
          FROM step_library AS s, q, LATERAL (SELECT stepsync._search_document(s.title, s.content) AS doc) AS d
         WHERE s.is_active AND d.doc @@ q.q
        """, {"q": query}).fetchall()
    visible = []
    for sid, usage, rating, visibility, creator, account, step_type, label, source, tier in matches:
        seen = visibility == "public" or (viewer is not None and creator == viewer) or (
            visibility == "team" and account is not None and account == viewer_account)
        if seen and kind in (None, step_type) and group in (None, label) and tree in (None, source):
            visible.append((sid, tier, usage, rating, popularity_class(usage, sid)))
    cap = INF if limit is None else limit
    target = max(bound, cap)
    if tree is not None or len(visible) <= target:
        candidates, complete = visible, True
    else:
        complete = False
        counts: dict[int, int] = {}
        for m in visible:
            counts[m[4]] = counts.get(m[4], 0) + 1
        running, cut = 0, None
        for cls in sorted(counts):
            running += counts[cls]
            if running > target:
                cut = cls
                break
        candidates = [m for m in visible if m[4] <= cut]
        items = q_text.split(" & ")
        titles_ok = (" | " not in q_text and any(not i.startswith("!") for i in items)) or (
            " | " in q_text and "!" not in q_text)
        if titles_ok and sum(1 for m in candidates if m[1] == 4 and m[4] <= min(cut, 12)) < cap:
            extra = [m for m in visible if m[1] == 4 and m[4] > cut]
            _note("every title match added" if extra else "title matches wanted, none beyond the cut")
            candidates += extra
    candidates.sort(key=lambda m: (-m[1], -m[2], m[3] is None, -(m[3] or 0), m[0]))
    _note("complete" if complete else "bounded")
    return [(m[0], RANKS[m[1]], complete) for m in candidates[:cap]]


_LONG = os.environ.get("STEPSYNC_HYPOTHESIS_EXAMPLES")
PROP = dict(max_examples=int(_LONG) if _LONG else 200, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                   HealthCheck.data_too_large])
if not _LONG:
    PROP.update(derandomize=True, database=None)


@settings(**PROP)
@given(library=libraries(), query=queries, viewer=st.sampled_from([0, 1, 2, 3, "unknown", None]),
       kind=st.sampled_from([None, None, "action", "solution"]), group=st.sampled_from([None, None, "Prepare"]),
       in_tree=st.sampled_from([False, False, False, True]), limit=st.sampled_from([None, 1, 3, 5, 20]),
       bound=st.sampled_from([1, 2, 3, 5, 10, 200]), analyze=st.booleans())
def test_search_matches_the_oracle(sdb, world, library, query, viewer, kind, group, in_tree, limit, bound, analyze):
    conn = sdb.conn
    conn.execute("TRUNCATE step_library")
    for r in library:
        content = {"instructions": r["instructions"], "help_text": r["help_text"],
                   "commands": [] if r["command"] is None else [{"label": "", "command": r["command"],
                                                                 "command_type": None}],
                   "group_label": r["group_label"]}
        conn.execute(
            "INSERT INTO step_library (id, title, step_type, content, visibility, created_by, account_id, usage_count,"
            " rating, is_active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (r["id"], r["title"], r["step_type"], Jsonb(content), r["visibility"],
             None if r["creator"] is None else world.users[r["creator"]],
             None if r["account"] is None else world.accounts[r["account"]], r["usage_count"], r["rating"],
             r["is_active"]))
    # source_tree_id may only be set by the sync: set it with the guards off, as the sync would.
    tree_ids = [r["id"] for r in library if r["in_tree"]]
    conn.execute("SET session_replication_role = replica")
    try:
        conn.execute("UPDATE step_library SET source_tree_id = %s, source_node_id = id::text, is_flow_synced = true"
                     " WHERE id = ANY(%s)", (world.tree, tree_ids))
    finally:
        conn.execute("RESET session_replication_role")
    if analyze:
        conn.execute("ANALYZE step_library")
    user = {"unknown": uuid.uuid4(), None: None}.get(viewer, world.users[viewer] if isinstance(viewer, int) else None)
    tree = world.tree if in_tree else None
    expected = oracle(conn, world, user, query, kind, group, tree, limit, bound)
    conn.execute("SELECT set_config('stepsync.search_candidates', %s, false)", (str(bound),))
    try:
        for estimate in ("", "0", "5000", "1000000000"):   # as estimated; path A; the sample first; the plain walk
            conn.execute("SELECT set_config('stepsync.search_estimate', %s, false)", (estimate,))
            got = [(i, round(r, 6), c) for i, r, c in conn.execute(
                "SELECT id, rank, complete FROM stepsync.search_steps(%s, %s, %s, %s, %s, %s)",
                (user, query, kind, group, tree, limit)).fetchall()]
            assert got == expected, (estimate, query)
    finally:
        conn.execute("RESET stepsync.search_candidates")
        conn.execute("RESET stepsync.search_estimate")
    # The contract's own properties, as a second statement of the same thing.
    visible_matches = len(oracle(conn, world, user, query, kind, group, tree, None, INF))
    assert len(got) >= min(INF if limit is None else limit, visible_matches)
    if visible_matches <= bound:
        assert all(r[2] for r in got)
        assert got == oracle(conn, world, user, query, kind, group, tree, limit, INF)
    elif tree is None and limit is not None and limit <= bound:
        assert all(not r[2] for r in got)


def test_a_phrase_of_common_words_walks_with_its_words_in_the_index(sdb, world):
    """The words of a phrase join every batch's index condition however common they are (stepsync_0003): with
    both words in most rows and the phrase in a few, the result is still the rule's."""
    import random

    conn = sdb.conn
    rng = random.Random(5)
    for n in range(600):
        words = [rng.choice(WORDS) for _ in range(6)] + [w for w in ("disk", "cache") if rng.random() < 0.7]
        if n % 7 == 0:
            words.insert(rng.randrange(len(words)), "disk cache")
        account = rng.choice([None, 0, 1])
        insert_step(conn, step_id=uuid.UUID(int=rng.getrandbits(128)), title=" ".join(rng.sample(WORDS, 2)),
                    step_type=rng.choice(["action", "solution"]), content={"instructions": " ".join(words)},
                    visibility="public" if account is None else rng.choice(["team", "private"]),
                    created_by=rng.choice(world.users), account_id=None if account is None else world.accounts[account],
                    usage_count=rng.choice(USAGES))
    conn.execute("ANALYZE step_library")
    shares = dict(conn.execute(
        "SELECT e, f FROM pg_stats, unnest(most_common_elems::text::text[], most_common_elem_freqs) AS u (e, f)"
        " WHERE tablename = 'step_library' AND attname = 'search_vector' AND e IN ('disk', 'cach')").fetchall())
    assert len(shares) == 2 and all(0.5 < f < 0.95 for f in shares.values())    # dense: else left out
    for query in ('"disk cache"', '"cache disk" restart', '"disk cache" -queue'):
        for viewer in (world.users[0], world.users[3], None):
            for kind in (None, "solution"):
                for bound in (3, 40, 200):
                    expected = oracle(conn, world, viewer, query, kind, None, None, 20, bound)
                    assert expected, query
                    conn.execute("SELECT set_config('stepsync.search_candidates', %s, false)", (str(bound),))
                    for estimate in ("", "1000000000"):
                        conn.execute("SELECT set_config('stepsync.search_estimate', %s, false)", (estimate,))
                        got = [(i, round(r, 6), c) for i, r, c in conn.execute(
                            "SELECT id, rank, complete FROM stepsync.search_steps(%s, %s, %s)",
                            (viewer, query, kind)).fetchall()]
                        assert got == expected, (query, viewer, kind, bound, estimate)
    conn.execute("RESET stepsync.search_candidates")
    conn.execute("RESET stepsync.search_estimate")
