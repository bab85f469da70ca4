"""Big and deep flows: a 5,000-deep chain, a 10,000-step publish, and the three walks agreeing."""

from __future__ import annotations

import json

import pytest

from flows import Flows, RawJson, chain_json, step


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


@pytest.mark.parametrize("depth", [5000, 6000])
def test_a_deep_chain_syncs_like_a_flat_one(db, flows, depth):
    tree = flows.create(RawJson(chain_json(depth)), tree_type="troubleshooting")
    flows.publish(tree)
    rows = db.rows(
        "SELECT source_node_id, title, step_type, content FROM step_library WHERE source_tree_id = %s"
        " ORDER BY substr(source_node_id, 2)::int", (tree,))
    expected = [(f"n{i}", f"Node {i}", "action",
                 {"instructions": f"Node {i}", "help_text": None, "commands": [], "group_label": None})
                for i in range(1, depth, 2)]
    assert rows == expected
    preview = [r[0] for r in db.rows("SELECT source_node_id FROM stepsync.preview(%s)", (tree,))]
    assert preview == [f"n{i}" for i in range(1, depth, 2)]

    # re-publishing the same deep chain with one node removed retires exactly that one
    shorter = chain_json(depth).replace('"type": "action", "title": "Node 4001"', '"type": "question", "title": "x"')
    flows.update(tree, tree_structure=RawJson(shorter))
    assert db.rows("SELECT source_node_id FROM step_library WHERE source_tree_id = %s AND NOT is_active",
                   (tree,)) == [("n4001",)]


def test_a_ten_thousand_step_publish_is_one_statement(db, flows):
    steps = []
    for i in range(10_000):
        if i % 10 == 0:
            steps.append({"id": f"h{i // 10}", "type": "section_header", "title": f"Section {i // 10}"})
        steps.append(step(f"s{i:05}", f"Step {i}", description=f"Do {i}", expected_outcome="Done",
                          commands=[{"code": f"run {i}", "language": "bash"}, f"check {i}"]))
    tree = flows.create({"steps": steps})
    with db.connect(autocommit=False) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        calls = dict(conn.execute(
            "SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE schemaname = 'stepsync'").fetchall())
        inserted = conn.execute(
            "SELECT n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = 'step_library'").fetchone()[0]
        conn.commit()
    assert (calls["_sync"], calls["_nodes"], inserted) == (1, 1, 10_000)
    rows = db.rows("SELECT source_node_id, content FROM step_library WHERE source_tree_id = %s"
                   " ORDER BY source_node_id", (tree,))
    assert len(rows) == 10_000
    assert rows[1234] == ("s01234", {
        "instructions": "Do 1234", "help_text": "Done", "group_label": "Section 123",
        "commands": [{"label": "", "command": "run 1234", "command_type": "bash"},
                     {"label": "", "command": "check 1234", "command_type": None}]})


def bushy(n: int, depth_pad: int = 0) -> str:
    """A troubleshooting tree of N nodes, branching 4, optionally hung under DEPTH_PAD questions."""
    nodes = [{"id": f"n{i}", "type": ["question", "action", "solution"][i % 3], "title": f"Node {i}",
              "description": f"Do {i}", "commands": [f"cmd {i}"] if i % 2 else "single", "children": []}
             for i in range(n)]
    for i in range(1, n):
        nodes[(i - 1) // 4]["children"].append(nodes[i])
    text = json.dumps(nodes[0])
    for level in range(depth_pad):
        text = f'{{"id": "pad{level}", "type": "question", "yes": {text}}}'
    return text


WALK = "SELECT ord, node_id, node_type, title, description, expected_outcome, commands" \
       " FROM stepsync._walk_troubleshooting(%s::jsonb, %s) ORDER BY ord"


@pytest.mark.parametrize("tree, mode", [
    (bushy(400), "shallow"),
    (bushy(400, depth_pad=100), "deep (one band)"),
    (chain_json(400, synced_every=3), "deep (one band)"),
    (bushy(300, depth_pad=700), "deep (two bands)"),
])
def test_the_fast_walks_agree_with_the_exact_walk(db, tree, mode):
    fast = db.rows(WALK, (tree, False))
    exact = db.rows(WALK, (tree, True))
    assert len(fast) > 100
    if mode == "deep (two bands)":  # nodes come band by band: same nodes, exact order within each band
        assert sorted(fast, key=lambda r: r[1]) == sorted(exact, key=lambda r: r[1])
    else:
        assert fast == exact
    depth = db.value("SELECT jsonb_path_exists(%s::jsonb, 'strict $.**{64}')", (tree,))
    assert depth == (mode != "shallow")
