"""Publish-time checks (docs/contract.md §4): every failure is 23514 naming the flow and the node,
with DETAIL (the JSON path) and HINT, and changes nothing at all."""

from __future__ import annotations

import psycopg
import pytest

from flows import Flows, RawJson, chain_json, step


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


def S(*elements) -> dict:
    return {"steps": list(elements)}


OK = step("ok", "A fine step")
LONG_ID = "x" * 256

# (name, tree_type, structure, problem after "cannot be published: ", JSON path, start of the hint)
CASES = [
    ("structure-array", "procedural", [OK], "tree_structure is a JSON array, not a JSON object", "$", "Store the flow"),
    ("structure-string", "procedural", "steps", 'tree_structure is a JSON string ("steps"), not a JSON object', "$",
     "Store the flow"),
    ("structure-null", "procedural", None, "tree_structure is null, not a JSON object", "$", "Store the flow"),
    ("steps-object", "procedural", {"steps": {"a": OK}}, '"steps" is a JSON object, not an array', "$.steps",
     'Make "steps" an array'),
    ("steps-string", "maintenance", {"steps": "do it"}, '"steps" is a JSON string ("do it"), not an array',
     "$.steps", 'Make "steps" an array'),
    ("element-string", "procedural", S(OK, "step two"),
     "the element at $.steps[1] is a JSON string, not an object", "$.steps[1]", "Every element"),
    ("element-null", "procedural", S(None, OK), "the element at $.steps[0] is a JSON null, not an object",
     "$.steps[0]", "Every element"),
    ("element-array", "maintenance", S(OK, [OK]), "the element at $.steps[1] is a JSON array, not an object",
     "$.steps[1]", "Every element"),
    ("id-missing", "procedural", S(OK, {"type": "procedure_step", "title": "No id"}),
     'the node at $.steps[1] has no usable "id": it is missing', "$.steps[1].id", "Give every node"),
    ("id-number", "procedural", S(step(7, "Numbered")),
     'the node at $.steps[0] has no usable "id": it is a JSON number (7)', "$.steps[0].id", "Give every node"),
    ("id-empty", "procedural", S(step("", "Empty id")),
     'the node at $.steps[0] has no usable "id": it is an empty string', "$.steps[0].id", "Give every node"),
    ("id-null", "procedural", S(step(None, "Null id")),
     'the node at $.steps[0] has no usable "id": it is null', "$.steps[0].id", "Give every node"),
    ("id-too-long", "procedural", S(step(LONG_ID, "Long id")),
     f'the node at $.steps[0] has no usable "id": it is a JSON string ("{"x" * 36}...) of 256 characters,'
     ' more than 255',
     "$.steps[0].id", "Give every node"),
    ("title-missing", "procedural", S({"id": "s1", "type": "procedure_step"}),
     'node "s1" has no usable "title": it is missing', "$.steps[0].title", "Give the node"),
    ("title-blank", "procedural", S(step("s1", " \t\r\n")),
     'node "s1" has no usable "title": it is a blank string', "$.steps[0].title", "Give the node"),
    ("title-empty", "procedural", S(step("s1", "")),
     'node "s1" has no usable "title": it is an empty string', "$.steps[0].title", "Give the node"),
    ("title-number", "maintenance", S(step("s1", 12)),
     'node "s1" has no usable "title": it is a JSON number (12)', "$.steps[0].title", "Give the node"),
    ("title-null", "procedural", S(step("s1", None)),
     'node "s1" has no usable "title": it is null', "$.steps[0].title", "Give the node"),
    ("visibility-private", "procedural", S(step("s1", "T", library_visibility="private")),
     'node "s1" has "library_visibility" "private", but only "team" or "public" are allowed',
     "$.steps[0].library_visibility", 'Set "library_visibility"'),
    ("visibility-number", "procedural", S(step("s1", "T", library_visibility=1)),
     'node "s1" has "library_visibility" 1, but only "team" or "public" are allowed',
     "$.steps[0].library_visibility", 'Set "library_visibility"'),
    ("visibility-case", "maintenance", S(step("s1", "T", library_visibility="Public")),
     'node "s1" has "library_visibility" "Public", but only "team" or "public" are allowed',
     "$.steps[0].library_visibility", 'Set "library_visibility"'),
    ("description-number", "procedural", S(step("s1", "T", description=5)),
     'node "s1" has a "description" that is a JSON number (5), not a string', "$.steps[0].description",
     'Make "description"'),
    ("description-object", "procedural", S(step("s1", "T", description={"text": "x"})),
     'node "s1" has a "description" that is a JSON object, not a string', "$.steps[0].description",
     'Make "description"'),
    ("outcome-array", "procedural", S(step("s1", "T", expected_outcome=["ok"])),
     'node "s1" has an "expected_outcome" that is a JSON array, not a string', "$.steps[0].expected_outcome",
     'Make "expected_outcome"'),
    ("outcome-boolean", "maintenance", S(step("s1", "T", expected_outcome=True)),
     'node "s1" has an "expected_outcome" that is a JSON boolean (true), not a string',
     "$.steps[0].expected_outcome", 'Make "expected_outcome"'),
    ("commands-number", "procedural", S(step("s1", "T", commands=3)),
     'node "s1" has "commands" that is a JSON number (3), not a string or an array', "$.steps[0].commands",
     'Make "commands"'),
    ("commands-object", "procedural", S(step("s1", "T", commands={"code": "ls"})),
     'node "s1" has "commands" that is a JSON object, not a string or an array', "$.steps[0].commands",
     'Make "commands"'),
    ("command-null", "procedural", S(step("s1", "T", commands=["ls", None])),
     'node "s1": commands[1] is null, not a string or an object with a "code"', "$.steps[0].commands[1]",
     "Each command"),
    ("command-number", "procedural", S(step("s1", "T", commands=[42])),
     'node "s1": commands[0] is a JSON number (42), not a string or an object with a "code"',
     "$.steps[0].commands[0]", "Each command"),
    ("command-nested-array", "procedural", S(step("s1", "T", commands=[["ls"]])),
     'node "s1": commands[0] is a JSON array, not a string or an object with a "code"',
     "$.steps[0].commands[0]", "Each command"),
    ("command-no-code", "procedural", S(step("s1", "T", commands=[{"language": "bash", "label": "x"}])),
     'node "s1": commands[0].code is missing, not a non-blank string', "$.steps[0].commands[0].code",
     "Each command"),
    ("command-blank-code", "maintenance", S(step("s1", "T", commands=[{"code": "  "}])),
     'node "s1": commands[0].code is a blank string, not a non-blank string', "$.steps[0].commands[0].code",
     "Each command"),
    ("command-code-number", "procedural", S(step("s1", "T", commands=[{"code": 5}])),
     'node "s1": commands[0].code is a JSON number (5), not a non-blank string', "$.steps[0].commands[0].code",
     "Each command"),
    ("command-label-number", "procedural", S(step("s1", "T", commands=["a", {"code": "ls", "label": 5}])),
     'node "s1": commands[1].label is a JSON number (5), not a string', "$.steps[0].commands[1].label",
     "Each command"),
    ("command-language-array", "procedural", S(step("s1", "T", commands=[{"code": "ls", "language": ["sh"]}])),
     'node "s1": commands[0].language is a JSON array, not a string', "$.steps[0].commands[0].language",
     "Each command"),
    ("duplicate-ids", "procedural", S(step("s1", "One"), OK, step("s1", "Two")),
     'node "s1" appears more than once in the flow (first at $.steps[0])', "$.steps[2].id", "Node ids must be unique"),
    ("first-problem-wins", "procedural", S(OK, step("s2", None), step(None, "x")),
     'node "s2" has no usable "title": it is null', "$.steps[1].title", "Give the node"),
    ("ts-structure-array", "troubleshooting", [{"id": "a", "type": "action", "title": "A"}],
     "tree_structure is a JSON array, not a JSON object", "$", "Store the flow"),
    ("ts-id-missing", "troubleshooting",
     {"id": "q", "type": "question", "children": [{"type": "action", "title": "No id"}]},
     'the node at $.children[0] has no usable "id": it is missing', "$.children[0].id", "Give every node"),
    ("ts-title-blank-under-yes", "troubleshooting",
     {"id": "q", "type": "question", "yes": {"id": "s-x", "type": "solution", "title": "   "}},
     'node "s-x" has no usable "title": it is a blank string', "$.yes.title", "Give the node"),
    ("ts-duplicate-ids", "troubleshooting",
     {"id": "q", "type": "question", "children": [
         {"id": "a", "type": "action", "title": "A"}, {"id": "a", "type": "solution", "title": "B"}]},
     'node "a" appears more than once in the flow (first at $.children[0])', "$.children[1].id",
     "Node ids must be unique"),
    ("ts-description-number", "troubleshooting",
     {"id": "q", "type": "question", "odd key": [{"id": "a", "type": "action", "title": "A", "description": 1}]},
     'node "a" has a "description" that is a JSON number (1), not a string', '$."odd key"[0].description',
     'Make "description"'),
    ("ts-command-bad", "troubleshooting",
     {"id": "q", "type": "question", "children": [{"id": "a", "type": "action", "title": "A", "commands": [True]}]},
     'node "a": commands[0] is a JSON boolean (true), not a string or an object with a "code"',
     "$.children[0].commands[0]", "Each command"),
]


@pytest.mark.parametrize("name, tree_type, structure, problem, path, hint", CASES, ids=[c[0] for c in CASES])
def test_bad_structure_fails_the_publish_and_changes_nothing(flows, name, tree_type, structure, problem, path, hint):
    tree = flows.create(structure, tree_type=tree_type)  # drafts may hold anything
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.publish(tree)
    error = info.value
    assert error.sqlstate == "23514"
    assert error.diag.message_primary == f"flow {tree} cannot be published: {problem}"
    assert error.diag.message_detail == f"JSON path: {path}"
    assert error.diag.message_hint.startswith(hint)
    assert (error.diag.table_name, error.diag.column_name) == ("trees", "tree_structure")
    assert flows.snapshot() == before


def test_enough_named_malformed_inputs():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name, tree_type, structure, problem, path, hint", CASES[:12],
                         ids=[c[0] for c in CASES[:12]])
def test_bad_structure_in_an_insert_as_published_inserts_nothing(flows, name, tree_type, structure, problem, path,
                                                                 hint):
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.create(structure, tree_type=tree_type, status="published")
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary.endswith(f"cannot be published: {problem}")
    assert flows.snapshot() == before


def test_a_bad_republish_keeps_the_flow_and_its_library(flows):
    tree = flows.create(S(step("a", "A"), step("b", "B")))
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 4")
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.update(tree, tree_structure=S(step("a", "A"), step("a", "B")))
    assert info.value.sqlstate == "23514"
    assert flows.snapshot() == before


def test_a_bad_row_in_a_multi_row_publish_fails_the_whole_statement(flows):
    good = flows.create(S(step("a", "A")), name="good")
    bad = flows.create(S(step("a", None)), name="bad")
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.conn.execute("UPDATE trees SET status = 'published' WHERE id IN (%s, %s)", (good, bad))
    assert info.value.sqlstate == "23514"
    assert str(bad) in info.value.diag.message_primary
    assert flows.snapshot() == before


def test_only_nodes_that_would_sync_are_checked(flows):
    procedural = flows.create(S(
        {"type": "note", "id": 5, "title": None, "commands": 7, "description": []},
        {"type": "section_header", "title": 3},
        {"id": "s1", "type": "procedure_step", "title": "Fine", "extra": {"anything": [None, 1]}},
        {"type": "procedure_end"},
    ), name="procedural")
    troubleshooting = flows.create({
        "id": 1, "type": "question", "title": None,
        "children": [{"id": "a", "type": "action", "title": "A", "library_visibility": "private"},
                     {"type": "Action", "id": None}, {"type": ["action"], "title": 5}, "stray", 3, None],
    }, tree_type="troubleshooting", name="troubleshooting")
    flows.publish(procedural)
    flows.publish(troubleshooting)
    assert {n: e[3] for n, e in flows.entries(procedural).items()} == {"s1": "team"}
    assert flows.entries(procedural)["s1"][2]["group_label"] is None
    assert {n: e[3] for n, e in flows.entries(troubleshooting).items()} == {"a": "team"}


def test_drafts_may_hold_anything_and_retiring_needs_no_check(flows):
    tree = flows.create(S(step("a", "A")))
    flows.publish(tree)
    flows.update(tree, status="draft")
    flows.update(tree, tree_structure="not even an object")
    flows.update(tree, status="archived")
    assert [r["is_active"] for r in flows.library(tree)] == [False]


def test_preview_applies_the_checks(flows):
    tree = flows.create(S(step("a", "A"), step("a", "B")))
    with pytest.raises(psycopg.Error) as info:
        flows.conn.execute("SELECT * FROM stepsync.preview(%s)", (tree,))
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: node "a" appears more than once in the flow (first at $.steps[0])')


def test_a_problem_deep_in_a_chain_is_23514_never_a_stack_overflow(flows):
    good = chain_json(3000)
    bad = good.replace('{"id": "n2499", "type": "action", "title": "Node 2499"',
                       '{"id": "n2499", "type": "action", "title": "  "', 1)
    assert bad != good
    tree = flows.create(RawJson(bad), tree_type="troubleshooting")
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.publish(tree)
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: node "n2499" has no usable "title": it is a blank string')
    # 2,499 nodes down, each two levels (object, then its children array): the band of levels 4000-4999
    assert info.value.diag.message_detail == "JSON path: $.**{4000 to 4999}.title"
    assert flows.snapshot() == before


def test_a_missing_id_deep_in_a_chain_is_named_by_its_band(flows):
    good = chain_json(2600)
    bad = good.replace('{"id": "n2001", "type": "action", ', '{"type": "action", ', 1)
    assert bad != good
    tree = flows.create(RawJson(bad), tree_type="troubleshooting")
    with pytest.raises(psycopg.Error) as info:
        flows.publish(tree)
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: the node at $.**{{4000 to 4999}} has no usable "id": it is missing')


def test_a_problem_in_a_moderately_deep_tree_gets_its_exact_path(flows):
    bad = chain_json(300).replace('"id": "n199", "type": "action", "title": "Node 199"',
                                  '"id": "n199", "type": "action", "title": 5', 1)
    tree = flows.create(RawJson(bad), tree_type="troubleshooting")
    with pytest.raises(psycopg.Error) as info:
        flows.publish(tree)
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: node "n199" has no usable "title": it is a JSON number (5)')
    assert info.value.diag.message_detail == "JSON path: $" + ".children[0]" * 199 + ".title"
