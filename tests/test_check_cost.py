"""A publish that fails the checks (docs/contract.md §4) costs what it costs when it passes, whatever the depth.

Locating the first problem of a troubleshooting flow, and its JSON path, must not copy subtrees: a chain
490 nodes deep with a 1 MB string below its one bad node is refused with 23514 and the same message a
shallow flow gives, under a temp_file_limit far below what copying the subtree at every level would
spill. The messages themselves stay exactly as they are, at every depth: the exact JSON path below
1,000 levels, the band's level range from 1,000 on. Deep documents are built as text (Python's json
cannot nest that deep). Nothing here is timed: the figures are in the change's report.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from flows import Flows, RawJson, chain_json

MISSING = object()

# Link keys, one per node down the chain, cycled: most need quoting in a JSON path.
KEYS = ["children", "next step", "é", "a.b", "", 'say "hi"', "1st", "_ok9"]


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


def path_step(key: str) -> str:
    """How a JSON path names an object member (quoted unless it reads as an identifier)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return "." + key
    return "." + json.dumps(key, ensure_ascii=False)


def chain(depth: int, link: str, changes: dict | None = None, root_extra: str = "") -> tuple[str, list[str], list[int]]:
    """A troubleshooting chain DEPTH nodes deep as JSON text, with each node's exact path and nesting level.

    Node i is {"id": "n<i>", "type": "action", "title": "Node <i>"} with CHANGES[i] applied (a value of
    MISSING removes the field), holding node i + 1 under KEYS[i % len(KEYS)]: directly (LINK "object",
    one level a node) or as element 2 of an array (LINK "array", two levels a node). ROOT_EXTRA is
    added to the root's members as written.
    """
    changes = changes or {}
    opens, paths, levels = [], [], []
    path, level = "$", 0
    for i in range(depth):
        fields = {"id": f"n{i}", "type": "action", "title": f"Node {i}"}
        for field, value in changes.get(i, {}).items():
            if value is MISSING:
                fields.pop(field, None)
            else:
                fields[field] = value
        text = json.dumps(fields)[:-1]
        if i == 0 and root_extra:
            text += ", " + root_extra
        paths.append(path)
        levels.append(level)
        if i == depth - 1:
            opens.append(text + "}")
            break
        key = KEYS[i % len(KEYS)]
        if link == "object":
            opens.append(f"{text}, {json.dumps(key)}: ")
            path, level = path + path_step(key), level + 1
        else:
            opens.append(f'{text}, {json.dumps(key)}: ["see below", {{"type": "note"}}, ')
            path, level = path + path_step(key) + "[2]", level + 2
    closes = ("}" if link == "object" else "]}") * (depth - 1)
    return "".join(opens) + closes, paths, levels


def band(level: int) -> str:
    """The path the deep walk gives a node at LEVEL: its band's level range (stepsync._walk_troubleshooting)."""
    start = level // 1000 * 1000
    return f"$.**{{{start} to {start + 999}}}"


def publish_error(flows: Flows, text: str) -> tuple[object, psycopg.Error]:
    tree = flows.create(RawJson(text), tree_type="troubleshooting")
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.publish(tree)
    assert flows.snapshot() == before   # §4: nothing changed, neither the trees row nor the library
    return tree, info.value


def problem(tree, error: psycopg.Error) -> str:
    prefix = f"flow {tree} cannot be published: "
    assert error.diag.message_primary.startswith(prefix)
    return error.diag.message_primary[len(prefix):]


def bad_bottom_chain(depth: int, size: int) -> str:
    """chain_json(DEPTH) whose bottom node (an action) has an empty title and a SIZE-byte string below it."""
    text = chain_json(depth)
    last = depth - 1
    node = json.dumps({"id": f"n{last}", "type": "action", "title": f"Node {last}"})[:-1] + ', "children": ['
    bad = (json.dumps({"id": f"n{last}", "type": "action", "title": ""})[:-1] + ', "children": ['
           + json.dumps({"type": "note", "body": "x" * size}))
    assert text.count(node) == 1
    return text.replace(node, bad)


def test_a_failing_deep_chain_with_a_large_value_below_fails_cleanly_with_small_temp_files(flows):
    shallow_tree, shallow = publish_error(flows, json.dumps(
        {"id": "root", "type": "question", "children": [{"id": "n489", "type": "action", "title": ""}]}))
    assert shallow.sqlstate == "23514"
    assert shallow.diag.message_detail == "JSON path: $.children[0].title"

    flows.conn.execute("SET work_mem = '64kB'")
    flows.conn.execute("SET temp_file_limit = '16MB'")
    try:
        tree, error = publish_error(flows, bad_bottom_chain(490, 1_000_000))
    finally:
        flows.conn.execute("RESET temp_file_limit")
        flows.conn.execute("RESET work_mem")
    assert error.sqlstate == "23514", (error.sqlstate, str(error)[:300])   # never 53400 (temp_file_limit)
    assert problem(tree, error) == problem(shallow_tree, shallow)
    assert error.diag.message_detail == "JSON path: $" + ".children[0]" * 489 + ".title"
    assert error.diag.message_hint == shallow.diag.message_hint
    assert (error.diag.table_name, error.diag.column_name) == ("trees", "tree_structure")


def test_a_failing_republish_of_a_deep_chain_changes_nothing(flows):
    tree = flows.create(RawJson(chain_json(490)), tree_type="troubleshooting")
    flows.publish(tree)
    assert len(flows.entries(tree)) == 245
    flows.conn.execute("UPDATE step_library SET usage_count = 3 WHERE source_tree_id = %s", (tree,))
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.update(tree, tree_structure=RawJson(bad_bottom_chain(490, 200_000)))
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: node "n489" has no usable "title": it is an empty string')
    assert flows.snapshot() == before


DEPTHS = [10, 63, 64, 65, 999, 1000, 1001, 2500, 5000]


@pytest.mark.parametrize("link", ["object", "array"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_the_first_problem_and_its_path_at_any_depth(flows, depth, link):
    bottom, middle, third = depth - 1, depth // 2, depth // 3

    def expect(text: str, levels: list[int], below: int = 1) -> tuple[bool, str]:
        deep = levels[bottom] + below >= 1000   # BELOW: how far the bottom node's members reach below it
        assert flows.conn.execute("SELECT jsonb_path_exists(%s::jsonb, 'strict $.**{1000}')",
                                  (text,)).fetchone()[0] == deep
        return deep, text

    def where(i: int, paths: list[str], levels: list[int], deep: bool) -> str:
        return band(levels[i]) if deep else paths[i]

    # The bottom node's title is empty.
    text, paths, levels = chain(depth, link, {bottom: {"title": ""}})
    deep, text = expect(text, levels)
    tree, error = publish_error(flows, text)
    assert error.sqlstate == "23514"
    assert problem(tree, error) == f'node "n{bottom}" has no usable "title": it is an empty string'
    assert error.diag.message_detail == f"JSON path: {where(bottom, paths, levels, deep)}.title"
    assert error.diag.message_hint == 'Give the node a non-blank string "title".'

    # The middle node's title is bad, and the bottom node's too: the first in walk order is named.
    text, paths, levels = chain(depth, link, {middle: {"title": 7}, bottom: {"title": None}})
    deep, text = expect(text, levels)
    tree, error = publish_error(flows, text)
    assert problem(tree, error) == f'node "n{middle}" has no usable "title": it is a JSON number (7)'
    assert error.diag.message_detail == f"JSON path: {where(middle, paths, levels, deep)}.title"

    # The bottom node has no id: it is named by its path.
    text, paths, levels = chain(depth, link, {bottom: {"id": MISSING}})
    deep, text = expect(text, levels)
    tree, error = publish_error(flows, text)
    assert problem(tree, error) == (
        f'the node at {where(bottom, paths, levels, deep)} has no usable "id": it is missing')
    assert error.diag.message_detail == f"JSON path: {where(bottom, paths, levels, deep)}.id"
    assert error.diag.message_hint.startswith("Give every node that syncs a unique, non-empty string")

    # Two nodes share an id: the later one is named, with the path of the first.
    text, paths, levels = chain(depth, link, {third: {"id": "dup"}, bottom: {"id": "dup"}})
    deep, text = expect(text, levels)
    tree, error = publish_error(flows, text)
    assert problem(tree, error) == (
        f'node "dup" appears more than once in the flow (first at {where(third, paths, levels, deep)})')
    assert error.diag.message_detail == f"JSON path: {where(bottom, paths, levels, deep)}.id"
    assert error.diag.message_hint == "Node ids must be unique within a flow: rename one of the nodes."

    # A bad node at the bottom and another under a later member of the root: the walk goes depth first,
    # so the bottom one comes first, unless it lies in a deeper band (bands come in order).
    late = '"zzzz later": [1, {"id": "late", "type": "solution", "title": 5, "commands": [{"code": 1}]}]'
    text, paths, levels = chain(depth, link, {bottom: {"commands": ["ls", {"code": "  "}]}}, root_extra=late)
    deep, text = expect(text, levels, below=3)
    tree, error = publish_error(flows, text)
    if levels[bottom] < 1000:
        assert problem(tree, error) == (
            f'node "n{bottom}": commands[1].code is a blank string, not a non-blank string')
        assert error.diag.message_detail == f"JSON path: {where(bottom, paths, levels, deep)}.commands[1].code"
    else:
        assert problem(tree, error) == 'node "late" has no usable "title": it is a JSON number (5)'
        assert error.diag.message_detail == f"JSON path: {band(2)}.title"


def test_quoted_keys_and_array_indexes_in_the_path(flows):
    keys = ["children", "next step", "é", "a.b", "", 'say "hi"', "1st", "_ok9", "tab\there", "back\\slash"]
    opens, path = [], "$"
    for i, key in enumerate(keys):
        opens.append(json.dumps({"id": f"q{i}", "type": "question"})[:-1] + f", {json.dumps(key)}: [0, 1, ")
        path += path_step(key) + "[2]"
    text = "".join(opens) + '{"type": "action", "title": "No id"}' + "]}" * len(keys)
    tree, error = publish_error(flows, text)
    assert problem(tree, error) == f'the node at {path} has no usable "id": it is missing'
    assert error.diag.message_detail == f"JSON path: {path}.id"
    assert '."tab\\there"[2]' in path and '."back\\\\slash"[2]' in path
