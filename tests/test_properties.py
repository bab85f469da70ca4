"""Property-based tests (hypothesis) of the sync, against a real database.

1. ``test_sync_state_machine``: a RuleBasedStateMachine writes random flows of
   every kind (procedural and maintenance steps with headers, procedure_end,
   notes and per-step library_visibility; troubleshooting trees nested under
   ``children`` and other keys, some deep enough for the band walk) and drives
   them through every write a client makes: create (draft or published),
   publish, structural edits, republish, deactivate, reactivate, archive, back
   to draft, delete, is_public / account / author changes, renames, bulk
   statements, usage and rating bumps, forks, hand-made rows, deletes of
   retired rows, refused direct writes, sync_tree and preview. Node ids come
   from a small pool, so they repeat across flows and come back after removal.

   The machine keeps its own model of the library, built from docs/contract.md §2-§5 in
   Python (``reference``), independent of the SQL. After every write it
   compares every row of step_library with the model: values, which rows the
   statement wrote (row versions), ``updated_at`` / ``last_synced_at`` against
   the statement's ``now()``, and that rows it did not expect to be written
   (forks, hand-made rows, unchanged entries) kept their row version. A write
   the model predicts to fail §4 must fail with 23514 and change nothing.
   Invariants after every step: ``stepsync.check_library()`` is empty and the
   sum of ``usage_count`` equals what the machine added (minus the rows it
   deleted itself).

2. ``test_damaged_flows_*``: flows close to valid with random damage (wrong JSON
   types anywhere, missing keys, duplicate ids, blank strings, nested garbage,
   commands of every shape, chains a few hundred levels deep), published as an
   UPDATE of a draft, as an INSERT ... status = 'published', and as a
   re-publish of a listed flow. The outcome must be the one the Python
   reference predicts: success (the oracle is clean, preview equals the
   library rows and the reference, in walk order), or 23514 with a message
   starting ``flow <id> cannot be published: `` and the database exactly as
   before. Any other error (21000, 54001, XX000, a lost connection) fails.
   Most examples carry a near miss: a value just on one side of a §4 line
   (NEAR_MISSES); ``test_every_near_miss_publishes_or_fails_like_the_reference``
   also walks that whole catalog once, deterministically.

Runs derandomized and without an example database, so CI sees the same
examples every time. For a long run by hand, STEPSYNC_HYPOTHESIS_EXAMPLES=N
(max_examples of every test, random seeds, examples saved in .hypothesis/) and
STEPSYNC_HYPOTHESIS_STEPS=M (steps per state machine run).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import note as _note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from flows import Flows

# --------------------------------------------------------------------------------------------------------------
# Settings

_LONG_EXAMPLES = os.environ.get("STEPSYNC_HYPOTHESIS_EXAMPLES")
_LONG_STEPS = os.environ.get("STEPSYNC_HYPOTHESIS_STEPS")


def prop_settings(examples: int, steps: int | None = None) -> settings:
    """Short and reproducible by default; the environment makes it long and random."""
    kwargs = dict(
        max_examples=int(_LONG_EXAMPLES) if _LONG_EXAMPLES else examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    if not _LONG_EXAMPLES:
        kwargs.update(derandomize=True, database=None)
    if steps is not None:
        kwargs["stateful_step_count"] = int(_LONG_STEPS) if _LONG_STEPS else steps
    return settings(**kwargs)


def note(message: str) -> None:
    """hypothesis' note(), printed with a failing example; outside hypothesis (the sweep), nothing."""
    if currently_in_test_context():
        _note(message)


# --------------------------------------------------------------------------------------------------------------
# The reference: docs/contract.md §2-§4 in Python, written from the spec, not from the SQL.

BLANK = " \t\r\n"
TS_SYNCED = ("action", "solution")


class Unpublishable(Exception):
    """The structure fails a §4 check."""


def nonblank(value) -> bool:
    return isinstance(value, str) and value.strip(BLANK) != ""


def jsonb_key_order(obj: dict) -> list[str]:
    """jsonb's own member order: shorter keys (in bytes) first, then bytewise."""
    return sorted(obj, key=lambda k: (len(k.encode()), k.encode()))


def walk_objects(value) -> Iterator[dict]:
    """Every JSON object in VALUE (itself included), depth first, members in jsonb order. No recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item[k] for k in reversed(jsonb_key_order(item)))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def json_depth(value) -> int:
    """Nesting levels of objects and arrays below VALUE (a scalar or {} at the top is 0)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def normalize_commands(commands) -> list[dict]:
    if commands is None:
        return []
    if isinstance(commands, str):
        return [{"label": "", "command": commands, "command_type": None}] if nonblank(commands) else []
    if not isinstance(commands, list):
        raise Unpublishable("commands is neither a string nor an array")
    out = []
    for item in commands:
        if isinstance(item, str):
            if nonblank(item):
                out.append({"label": "", "command": item, "command_type": None})
        elif isinstance(item, dict) and nonblank(item.get("code")):
            label, language = item.get("label"), item.get("language")
            if label is not None and not isinstance(label, str):
                raise Unpublishable("command label is not a string")
            if language is not None and not isinstance(language, str):
                raise Unpublishable("command language is not a string")
            out.append({"label": "" if label is None else label, "command": item["code"],
                        "command_type": language if nonblank(language) else None})
        else:
            raise Unpublishable("a command is neither a string nor an object with a non-blank code")
    return out


def reference(tree_type: str, structure, is_public: bool) -> list[tuple]:
    """The entries a publish writes, in preview order: (node id, title, step_type, content, visibility).

    Raises Unpublishable when the structure fails §4."""
    if not isinstance(structure, dict):
        raise Unpublishable("tree_structure is not an object")
    flow_visibility = "public" if is_public else "team"
    procedural = tree_type != "troubleshooting"
    found = []  # (node, step_type, group label)
    if procedural:
        steps = structure.get("steps")
        if steps is not None and not isinstance(steps, list):
            raise Unpublishable("steps is not an array")
        label = None
        for element in steps or []:
            if not isinstance(element, dict):
                raise Unpublishable("an element of steps is not an object")
            kind = element.get("type")
            if kind == "section_header":
                label = element.get("title") if nonblank(element.get("title")) else None
            elif kind == "procedure_step":
                found.append((element, "action", label))
    else:
        for obj in walk_objects(structure):
            kind = obj.get("type")
            if isinstance(kind, str) and kind in TS_SYNCED:
                found.append((obj, kind, None))
    entries, seen = [], set()
    for node, step_type, label in found:
        node_id, title = node.get("id"), node.get("title")
        if not (isinstance(node_id, str) and 0 < len(node_id) <= 255):
            raise Unpublishable("no usable id")
        if not nonblank(title):
            raise Unpublishable(f"node {node_id!r}: no usable title")
        visibility = flow_visibility
        if procedural and node.get("library_visibility") is not None:
            visibility = node["library_visibility"]
            if not (isinstance(visibility, str) and visibility in ("team", "public")):
                raise Unpublishable(f"node {node_id!r}: bad library_visibility")
        for field in ("description", "expected_outcome"):
            if node.get(field) is not None and not isinstance(node[field], str):
                raise Unpublishable(f"node {node_id!r}: {field} is not a string")
        commands = normalize_commands(node.get("commands"))
        if node_id in seen:
            raise Unpublishable(f"node {node_id!r} appears twice")
        seen.add(node_id)
        description, outcome = node.get("description"), node.get("expected_outcome")
        content = {"instructions": description if nonblank(description) else title,
                   "help_text": outcome if nonblank(outcome) else None,
                   "commands": commands,
                   "group_label": label}
        entries.append((node_id, title, step_type, content, visibility))
    return entries


def verdict(tree_type: str, structure, is_public: bool) -> list[tuple] | None:
    """reference(), or None when the flow cannot be published."""
    try:
        return reference(tree_type, structure, is_public)
    except Unpublishable:
        return None


def dumps(value) -> str:
    """JSON text of VALUE, without recursion (Python's json gives up near 1,000 levels)."""
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            out.append("{")
            stack.append(_Text("}"))
            keys = list(item)
            for i in reversed(range(len(keys))):
                stack.append(item[keys[i]])
                stack.append(_Text(("," if i else "") + json.dumps(keys[i], ensure_ascii=False) + ":"))
        elif isinstance(item, list):
            out.append("[")
            stack.append(_Text("]"))
            for i in reversed(range(len(item))):
                stack.append(item[i])
                if i:
                    stack.append(_Text(","))
        else:
            out.append(json.dumps(item, ensure_ascii=False, allow_nan=False))
    return "".join(out)


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def containers(root) -> list[tuple]:
    """(parent, key, value) for every object and array in ROOT, the root first (parent None). No recursion."""
    out, stack = [], [(None, None, root)]
    while stack:
        parent, key, value = stack.pop()
        if isinstance(value, (dict, list)):
            out.append((parent, key, value))
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for k, v in reversed(items):
                if isinstance(v, (dict, list)):
                    stack.append((value, k, v))
    return out


def synced_nodes(tree_type: str, structure) -> list[dict]:
    """The objects that would sync (valid or not), in walk order."""
    if tree_type == "troubleshooting":
        return [o for o in walk_objects(structure) if isinstance(o.get("type"), str) and o["type"] in TS_SYNCED]
    if isinstance(structure, dict) and isinstance(structure.get("steps"), list):
        return [e for e in structure["steps"] if isinstance(e, dict) and e.get("type") == "procedure_step"]
    return []


# --------------------------------------------------------------------------------------------------------------
# Strategies

SAFE_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")  # jsonb refuses both
IDS = ("a", "b", "c", "d", "e", "ü-ñ", "with space", "x" * 255)
TITLES = st.one_of(
    st.sampled_from(["Restart the service", "Check the logs", "  padded  ", "Ünïcödé ✓", "tab\tinside",
                     "\fform feed", "\u00a0", "line\nbreak"]),
    st.text(SAFE_CHARS, min_size=1, max_size=16).filter(nonblank),
)
SPECIAL_STRINGS = ("", " ", "\t", " \t\r\n", "\n\n", "\u00a0", "\f", "x", "team", "public", "private", "Team",
                   "action", "solution", "question", "procedure_step", "section_header", "procedure_end",
                   "x" * 255, "x" * 256, "é" * 255, "é" * 256, "🙂" * 256, "null", "{}", "[]")
STRINGS = st.one_of(st.sampled_from(SPECIAL_STRINGS), st.text(SAFE_CHARS, max_size=20))
ANY_TEXT = st.one_of(st.sampled_from(["", " ", " \t\r\n", "\u00a0"]), st.text(SAFE_CHARS, max_size=16))
OPT_TEXT = st.one_of(st.none(), ANY_TEXT)
LANGUAGES = st.one_of(st.none(), st.sampled_from(["bash", "sql", "  ", ""]), ANY_TEXT)
VALID_COMMANDS = st.one_of(
    st.none(), ANY_TEXT,
    st.lists(st.one_of(ANY_TEXT, st.fixed_dictionaries({"code": TITLES},
                                                       optional={"label": OPT_TEXT, "language": LANGUAGES})),
             max_size=3),
)
# Garbage that holds no object with a "type" (so it never adds a synced node).
INERT_KEYS = st.sampled_from(["k", "n", "x y", "ü", "id", "title", "children", "steps"])
INERT_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), ANY_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(INERT_KEYS, inner, max_size=3),
    max_leaves=6,
)
# Anything JSON, with keys and values that look like flows.
FIELD_KEYS = ("id", "type", "title", "description", "expected_outcome", "commands", "library_visibility",
              "children", "steps", "code", "label", "language", "yes", "no")
TYPES = ("action", "solution", "question", "procedure_step", "section_header", "procedure_end", "note", "Action", "")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63),
                    st.floats(allow_nan=False, allow_infinity=False), STRINGS)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.one_of(st.sampled_from(FIELD_KEYS), st.text(SAFE_CHARS, max_size=6)), inner, max_size=4),
    max_leaves=10,
)
COMMANDS_ANY = st.one_of(
    VALID_COMMANDS, JSON,
    st.lists(st.one_of(STRINGS, JSON, st.fixed_dictionaries({}, optional={
        "code": st.one_of(TITLES, JSON), "label": st.one_of(OPT_TEXT, JSON), "language": st.one_of(LANGUAGES, JSON)})),
        max_size=4),
)
BAD_VALUES = {  # what §4 refuses, field by field (for nodes that sync)
    "id": [None, "", 7, 1.5, True, [], {}, ["a"], "x" * 256, "é" * 256, "🙂" * 256],
    "type": list(TYPES),
    "title": ["", " ", " \t\r\n", None, 12, True, [], {"t": "x"}, ["T"]],
    "description": [5, True, [], {}, ["x"], {"text": "x"}],
    "expected_outcome": [5, False, [], {}, ["ok"], 0],
    "commands": [3, True, {"code": "ls"}, [None], [42], [["ls"]], [{"language": "bash"}], [{"code": " "}],
                 [{"code": 5}], [{"code": "ls", "label": 5}], [{"code": "ls", "language": ["sh"]}],
                 ["ok", {"code": ""}]],
    "library_visibility": ["private", "Team", "", " public", 1, True, [], {}],
}
GOOD_VALUES = {
    "id": st.sampled_from(IDS), "type": st.sampled_from(TYPES), "title": TITLES, "description": OPT_TEXT,
    "expected_outcome": OPT_TEXT, "commands": VALID_COMMANDS,
    "library_visibility": st.sampled_from([None, "team", "public"]),
}
FIELD_VALUES = {field: st.one_of(st.sampled_from(BAD_VALUES[field]).map(copy.deepcopy),  # damage edits in place:
                                 st.sampled_from(BAD_VALUES[field]).map(copy.deepcopy),  # no shared constants
                                 GOOD_VALUES[field], COMMANDS_ANY if field == "commands" else JSON)
                for field in BAD_VALUES}
NODE_LIKE = st.fixed_dictionaries({}, optional=FIELD_VALUES)

MISSING = object()  # a key left out
COMMAND_SHAPES = [
    MISSING, None, "", " ", "ls", 3, True, {}, {"code": "ls"}, [], [""], [" \t"], ["ls"], [None], [1], [True], [[]],
    [["ls"]], [{}], [{"code": None}], [{"code": ""}], [{"code": " \t"}], [{"code": 5}], [{"code": ["ls"]}],
    [{"code": "ls"}], [{"code": "ls", "label": None}], [{"code": "ls", "label": ""}], [{"code": "ls", "label": 5}],
    [{"code": "ls", "label": []}], [{"code": "ls", "language": None}], [{"code": "ls", "language": " "}],
    [{"code": "ls", "language": 1}], [{"code": "ls", "language": {}}], [{"language": "sh", "label": "x"}],
    ["ls", {"code": "x"}, " ", {"code": "y", "language": "sh", "label": "L"}], ["ls", {"code": "x", "label": False}],
    [{"code": "ls", "label": " "}], [{"code": "ls", "label": "\t", "language": "\n"}], [{"code": "\f"}], "\f",
    [{"code": " ls ", "language": " sh "}], ["", " ", "\r\n"],
]
NEAR_MISSES = {  # per §4 rule, values on both sides of the line, for one node that syncs
    "id": [MISSING, None, 7, 1.5, True, "", " ", "x" * 256, "é" * 256, "🙂" * 256, "x" * 255, "🙂" * 255,
           [], ["a"], {}],
    "title": [MISSING, None, "", " ", "\t", "\r\n", " \t\r\n", 0, False, [], ["T"], {}, "\f", "\u00a0", "\v", "x"],
    "library_visibility": [MISSING, None, "team", "public", "private", "Team", "PUBLIC", "", " team", 1, True, [], {}],
    "description": [MISSING, None, "", " ", "ok", 5, 0, 1.5, True, [], {}, ["x"]],
    "expected_outcome": [MISSING, None, "", " \n", "ok", 5, -1, False, [], {}, {"text": "x"}],
    "commands": COMMAND_SHAPES,
    "type": [MISSING, None, "action", "solution", "question", "Action", "procedure_step", "section_header",
             ["action"], 1],
}
STRUCTURE_MISSES = {  # the structure itself (§4.1)
    "root": [[], "flow", 1, None, True, [{"steps": []}]],
    "steps": [MISSING, None, [], {}, "x", 1, True, {"0": {"id": "a", "type": "procedure_step", "title": "A"}}],
    "element": [None, "step", 1, True, [], [{"id": "a", "type": "procedure_step", "title": "A"}]],
}


def near_miss_rules(tree_type: str) -> list[str]:
    structural = ["steps", "element"] if tree_type != "troubleshooting" else []
    return [*sorted(NEAR_MISSES), "duplicate", "root", *structural]


def near_miss_values(rule: str) -> list:
    return STRUCTURE_MISSES.get(rule) or NEAR_MISSES.get(rule) or [None]


def near_miss(data, tree_type: str, structure):
    """One change exactly on a §4 line (a value that must fail, or one that must pass): a field of a
    synced node, a duplicate id, or the structure itself. Returns the (new) root."""
    rule = data.draw(st.sampled_from(near_miss_rules(tree_type)), label="near miss")
    value = data.draw(st.sampled_from(near_miss_values(rule)), label=rule)
    return apply_near_miss(tree_type, structure, rule, value, data.draw(st.integers(0, 20), label="at"))


def apply_near_miss(tree_type: str, structure, rule: str, value, at: int):
    """Set RULE's VALUE (MISSING: remove the key) on the AT-th synced node (modulo), adding a fine node to
    break when there is none; "duplicate" copies another node's id; "root", "steps" and "element" change
    the structure. Returns the (new) root."""
    procedural = tree_type != "troubleshooting"
    if rule == "root":
        return copy.deepcopy(value)
    if not isinstance(structure, dict):
        return structure
    if rule == "steps" or (rule == "element" and not isinstance(structure.get("steps"), list)):
        if value is MISSING:
            structure.pop("steps", None)
        else:
            structure["steps"] = copy.deepcopy(value)
        return structure
    if rule == "element":
        structure["steps"].insert(at % (len(structure["steps"]) + 1), copy.deepcopy(value))
        return structure
    nodes = synced_nodes(tree_type, structure)
    if len(nodes) < (2 if rule == "duplicate" else 1):  # add a fine node to break
        fine = {"id": "added", "type": "procedure_step" if procedural else "action", "title": "Added"}
        if procedural:
            structure.setdefault("steps", [])
            if isinstance(structure["steps"], list):
                structure["steps"].append(fine)
        elif isinstance(structure.setdefault("children", []), list):
            structure["children"].append(fine)
        nodes = synced_nodes(tree_type, structure)
        if not nodes:
            return structure
    node = nodes[at % len(nodes)]
    if rule == "duplicate":
        others = [n for n in nodes if n is not node]
        if others:
            node["id"] = copy.deepcopy(others[at % len(others)].get("id"))
    elif value is MISSING:
        node.pop(rule, None)
    else:
        node[rule] = copy.deepcopy(value)
    return structure


def step_fields(procedural: bool):
    """The fields of a valid synced node, title included."""
    optional = {"description": OPT_TEXT, "expected_outcome": OPT_TEXT, "commands": VALID_COMMANDS, "extra": INERT_JSON,
                "library_visibility": st.sampled_from([None, "team", "public"]) if procedural
                else st.one_of(st.sampled_from(["private", "team", "public"]), INERT_JSON)}  # ignored there
    return st.fixed_dictionaries({"title": TITLES}, optional=optional)


def draw_step(data, node_id: str) -> dict:
    return {"id": node_id, "type": "procedure_step", **data.draw(step_fields(True))}


def draw_other_element(data) -> dict:
    kind = data.draw(st.sampled_from(["header", "header", "end", "note"]))
    if kind == "header":
        return {"id": data.draw(st.sampled_from(IDS)), "type": "section_header",
                "title": data.draw(st.one_of(TITLES, st.sampled_from(["", "  ", None, 7])))}
    if kind == "end":
        return {"id": data.draw(st.sampled_from(IDS)), "type": "procedure_end"}
    return {"id": data.draw(st.one_of(st.sampled_from(IDS), INERT_JSON)),
            "type": data.draw(st.sampled_from(["note", "Procedure_step", "action"])),
            "title": data.draw(st.one_of(TITLES, INERT_JSON)), "body": data.draw(INERT_JSON)}


def draw_procedure(data) -> dict:
    elements, used = [], set()
    for _ in range(data.draw(st.integers(0, 6), label="elements")):
        free = [i for i in IDS if i not in used]
        if data.draw(st.integers(0, 3)) and free:
            node_id = data.draw(st.sampled_from(free))
            used.add(node_id)
            elements.append(draw_step(data, node_id))
        else:
            elements.append(draw_other_element(data))
    shape = data.draw(st.sampled_from(["steps", "steps", "steps", "extra", "missing", "null"]))
    if shape == "missing" and not elements:
        return {}
    if shape == "null" and not elements:
        return {"steps": None, "title": "nothing yet"}
    if shape == "extra":
        return {"steps": elements, "meta": data.draw(INERT_JSON)}
    return {"steps": elements}


def draw_ts_node(data, used: set, depth: int) -> dict:
    free = [i for i in IDS if i not in used]
    kind = data.draw(st.sampled_from(["question", "action", "solution", "action", "info", "Action"]))
    if kind in TS_SYNCED and free:
        node_id = data.draw(st.sampled_from(free))
        used.add(node_id)
        node = {"id": node_id, "type": kind, **data.draw(step_fields(False))}
    else:
        node = {"id": data.draw(st.one_of(st.sampled_from(IDS), INERT_JSON)),
                "type": "question" if kind in TS_SYNCED else kind,
                "title": data.draw(st.one_of(TITLES, INERT_JSON))}
    if depth > 0:
        for _ in range(data.draw(st.integers(0, 3 if depth > 1 else 2))):
            child = draw_ts_node(data, used, depth - 1)
            where = data.draw(st.sampled_from(["children", "children", "children", "yes", "no", "options", "meta"]))
            if where in ("yes", "no", "meta") and where not in node:
                node[where] = child if where != "meta" else {"owner": child}
            elif where == "options":
                node.setdefault("options", []).append([child])
            else:
                node.setdefault("children", []).append(child)
    return node


def draw_chain(data, used: set) -> dict:
    """A troubleshooting chain, sometimes deeper than the 64 levels where the band walk starts."""
    depth = data.draw(st.integers(20, 45), label="chain depth")
    marks = {}
    for node_id in [i for i in IDS if i not in used]:
        if data.draw(st.booleans()):
            marks[data.draw(st.integers(0, depth - 1))] = node_id
    used.update(marks.values())
    child = None
    for level in reversed(range(depth)):
        if level in marks:
            node = {"id": marks[level], "type": "action", "title": f"Deep {level}"}
        else:
            node = {"id": f"q{level}", "type": "question", "title": f"Level {level}"}
        if child is not None:
            node["children"] = [child]
        child = node
    return child


def draw_troubleshooting(data) -> dict:
    used = set()
    if data.draw(st.integers(0, 5), label="chain?") == 0:
        return draw_chain(data, used)
    return draw_ts_node(data, used, data.draw(st.integers(0, 3), label="depth"))


def draw_structure(data, tree_type: str) -> dict:
    return draw_troubleshooting(data) if tree_type == "troubleshooting" else draw_procedure(data)


def free_ids(tree_type: str, structure) -> list[str]:
    taken = {n.get("id") for n in synced_nodes(tree_type, structure) if isinstance(n.get("id"), str)}
    return [i for i in IDS if i not in taken]


def draw_edit(data, tree_type: str, structure):
    """A structural edit of a copy of STRUCTURE: add, remove, move, rename, retitle, change fields, toggle
    a node in or out of the synced types, wrap deeper, replace, or (rarely) damage. Returns the new structure."""
    new = copy.deepcopy(structure)
    edit = data.draw(st.sampled_from(["add", "add", "remove", "remove", "move", "rename", "retitle", "fields",
                                      "toggle", "wrap", "replace", "damage"]), label="edit")
    if edit == "replace" or not isinstance(new, dict):
        return draw_structure(data, tree_type)
    if edit == "damage":
        return damage_for_machine(data, tree_type, new)
    nodes = synced_nodes(tree_type, new)
    if tree_type != "troubleshooting":
        if not isinstance(new.get("steps"), list):
            new["steps"] = []
        steps = new["steps"]
        free = free_ids(tree_type, new)
        if edit == "add" or not steps:
            if free and data.draw(st.booleans()):
                element = draw_step(data, data.draw(st.sampled_from(free)))
            else:
                element = draw_other_element(data)
            steps.insert(data.draw(st.integers(0, len(steps))), element)
        elif edit == "remove":
            steps.pop(data.draw(st.integers(0, len(steps) - 1)))
        elif edit in ("move", "wrap"):
            element = steps.pop(data.draw(st.integers(0, len(steps) - 1)))
            steps.insert(data.draw(st.integers(0, len(steps))), element)
        elif edit == "toggle":
            element = steps[data.draw(st.integers(0, len(steps) - 1))]
            if isinstance(element, dict) and element.get("type") == "procedure_step":
                element["type"] = data.draw(st.sampled_from(["note", "section_header", "procedure_end"]))
            elif isinstance(element, dict) and free:
                element.clear()
                element.update(draw_step(data, data.draw(st.sampled_from(free))))
        elif nodes:
            edit_node(data, edit, nodes[data.draw(st.integers(0, len(nodes) - 1))], free, procedural=True)
        return new
    # troubleshooting
    slots = containers(new)
    free = free_ids(tree_type, new)
    if edit == "add":
        _, _, target = slots[data.draw(st.integers(0, len(slots) - 1))]
        child = draw_ts_node(data, set(IDS) - set(free), data.draw(st.integers(0, 2)))
        if isinstance(target, list):
            target.insert(data.draw(st.integers(0, len(target))), child)
        else:
            key = data.draw(st.sampled_from(["children", "yes", "no", "next", "odd key"]))
            if isinstance(target.get(key), list):
                target[key].append(child)
            elif key not in target:
                target[key] = [child] if key == "children" else child
    elif edit in ("remove", "move", "wrap") and len(slots) > 1:
        parent, key, value = slots[data.draw(st.integers(1, len(slots) - 1))]
        if edit == "wrap":
            parent[key] = [[value]] if data.draw(st.booleans(), label="in arrays") else {"inner": value}
        else:
            del parent[key]
            if edit == "move":
                rest = containers(new)
                _, _, target = rest[data.draw(st.integers(0, len(rest) - 1))]
                if isinstance(target, list):
                    target.append(value)
                elif "moved" not in target:
                    target["moved"] = value
    elif edit == "toggle":
        objects = list(walk_objects(new))
        node = objects[data.draw(st.integers(0, len(objects) - 1))]
        if node.get("type") in TS_SYNCED:
            other = "solution" if node["type"] == "action" else "action"
            node["type"] = data.draw(st.sampled_from(["question", other]))
        elif free:
            fields = data.draw(step_fields(False))
            for field in ("description", "expected_outcome", "commands"):
                node.pop(field, None)
            node.update({"id": data.draw(st.sampled_from(free)), "type": data.draw(st.sampled_from(TS_SYNCED)),
                         **fields})
    elif nodes:
        edit_node(data, edit, nodes[data.draw(st.integers(0, len(nodes) - 1))], free, procedural=False)
    return new


def edit_node(data, edit: str, node: dict, free: list[str], *, procedural: bool) -> None:
    if edit == "rename" and free:
        node["id"] = data.draw(st.sampled_from(free))
    elif edit == "retitle":
        node["title"] = data.draw(TITLES)
    else:
        fields = data.draw(step_fields(procedural))
        for field in ("description", "expected_outcome", "commands", "library_visibility"):
            node.pop(field, None)
            if field in fields and data.draw(st.booleans()):
                node[field] = fields[field]


def damage_for_machine(data, tree_type: str, structure: dict):
    """One change on a §4 line (the reference decides whether the flow still publishes)."""
    return near_miss(data, tree_type, structure)


# --------------------------------------------------------------------------------------------------------------
# The database: one for the whole module, emptied by TRUNCATE (which fires no row trigger) between runs.


class PropDb:
    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def reset(self) -> Flows:
        self.conn.execute("TRUNCATE step_library, trees, users, accounts CASCADE")
        return Flows(self.conn)


@pytest.fixture(scope="module")
def prop(server, template) -> Iterator[PropDb]:
    name = server.new_name("prop")
    db = PropDb(server.create_database(name, template))
    try:
        yield db
    finally:
        db.conn.close()
        server.drop_database(name)


def oracle(conn) -> list[tuple]:
    return conn.execute("SELECT * FROM stepsync.check_library()").fetchall()


def preview(conn, tree_id) -> list[tuple]:
    return conn.execute("SELECT * FROM stepsync.preview(%s)", (tree_id,)).fetchall()


# --------------------------------------------------------------------------------------------------------------
# 1. The state machine

LOGICAL = ("title", "step_type", "content", "visibility", "created_by", "account_id", "usage_count", "rating",
           "rating_count", "is_active", "source_tree_id", "source_node_id", "is_flow_synced", "forked_from_id")
OBSERVED = ("xmin", "created_at", "updated_at", "last_synced_at")


@dataclasses.dataclass(frozen=True)
class Flow:
    label: str
    id: uuid.UUID
    tree_type: str
    structure: object
    status: str
    is_active: bool
    is_public: bool
    account: uuid.UUID | None
    author: uuid.UUID

    @property
    def listed(self) -> bool:
        return self.status == "published" and self.is_active


def canonical(structure) -> str:
    return json.dumps(structure, sort_keys=True, ensure_ascii=False)


def library_work(old: Flow | None, new: Flow | None) -> str | None:
    """What docs/contract.md §5 says a write from OLD to NEW does to the library: 'sync', 'retire', 'delete'
    or nothing."""
    if new is None:
        return "delete"
    if old is None:
        return "sync" if new.listed else None
    if new.listed and (not old.listed or old.tree_type != new.tree_type or old.is_public != new.is_public
                       or old.account != new.account or canonical(old.structure) != canonical(new.structure)):
        return "sync"
    if (old.is_active and not new.is_active) or (new.status == "archived" and old.status != "archived"):
        return "retire"
    return None


class Plan:
    """What one statement is expected to do to step_library."""

    def __init__(self) -> None:
        self.changes: dict[uuid.UUID, tuple[dict, str]] = {}  # row id -> (expected row after, kind of write)
        self.inserts: dict[tuple, dict] = {}  # (tree id, node id) -> expected new synced row
        self.created: dict[uuid.UUID, dict] = {}  # ids returned by the statement (forks, hand-made rows)
        self.deleted: set[uuid.UUID] = set()
        self.forget_trees: set[uuid.UUID] = set()  # deleted flows


class SyncMachine(RuleBasedStateMachine):
    def __init__(self, prop_db: PropDb) -> None:
        super().__init__()
        self.conn = prop_db.conn
        self.flows = prop_db.reset()
        a = self.flows.actors
        colleague = self.conn.execute("INSERT INTO users (email, account_id) VALUES ('colleague@acme.test', %s)"
                                      " RETURNING id", (a.account,)).fetchone()[0]
        loner = self.conn.execute("INSERT INTO users (email) VALUES ('loner@nowhere.test') RETURNING id").fetchone()[0]
        self.accounts = {"acme": a.account, "other": a.other_account, "none": None}
        self.users = {"author": (a.author, a.account), "colleague": (colleague, a.account),
                      "outsider": (a.outsider, a.other_account), "loner": (loner, None)}
        self.trees: dict[str, Flow] = {}
        self.rows: dict[uuid.UUID, dict] = {}
        self.order: list[uuid.UUID] = []  # row ids in creation order, for reproducible draws
        self.by_key: dict[tuple, uuid.UUID] = {}
        self.usage = 0
        self.labels = 0

    # -- helpers ------------------------------------------------------------------------------------------------

    def pick_tree(self, data) -> Flow:
        return self.trees[data.draw(st.sampled_from(sorted(self.trees, key=lambda k: int(k[1:]))), label="flow")]

    def pick_row(self, data, where=lambda row: True) -> uuid.UUID | None:
        ids = [rid for rid in self.order if where(self.rows[rid])]
        return data.draw(st.sampled_from(ids), label="row") if ids else None

    def execute(self, sql: str, params=()):
        """Run one statement in its own transaction; returns its rows (if any) and its now()."""
        with self.conn.transaction():
            cur = self.conn.execute(sql, params)
            rows = cur.fetchall() if cur.description else None
            ts = self.conn.execute("SELECT now()").fetchone()[0]
        note(f"{sql} {params!r}")
        return rows, ts

    def refused(self, sql: str, params, sqlstate: str, prefixes=()) -> psycopg.Error:
        before = self.flows.snapshot()
        with pytest.raises(psycopg.Error) as info:
            self.execute(sql, params)
        error = info.value
        note(f"refused as expected: {sql} {params!r}: {error.sqlstate} {error.diag.message_primary}")
        assert error.sqlstate == sqlstate, (error.sqlstate, str(error))
        if prefixes:
            assert any(error.diag.message_primary.startswith(p) for p in prefixes), error.diag.message_primary
        assert self.flows.snapshot() == before
        return error

    def rows_of(self, tree_id) -> list[uuid.UUID]:
        return [rid for rid in self.order if self.rows[rid]["source_tree_id"] == tree_id]

    def plan_tree_writes(self, changes: list[tuple[Flow | None, Flow | None]]) -> tuple[Plan, list[Flow]]:
        """The library work of a statement writing these flows, and the flows whose publish must fail."""
        plan, failing = Plan(), []
        for old, new in changes:
            work = library_work(old, new)
            if work == "sync":
                entries = verdict(new.tree_type, new.structure, new.is_public)
                if entries is None:
                    failing.append(new)
                else:
                    self.plan_sync(plan, new, entries)
            elif work == "retire":
                for rid in self.rows_of(old.id):
                    if self.rows[rid]["is_active"]:
                        plan.changes[rid] = ({**self.rows[rid], "is_active": False}, "retire")
            elif work == "delete":
                for rid in self.rows_of(old.id):  # retired first, then the foreign key nulls the source
                    plan.changes[rid] = ({**self.rows[rid], "is_active": False, "source_tree_id": None}, "orphan")
                plan.forget_trees.add(old.id)
        return plan, failing

    def plan_sync(self, plan: Plan, flow: Flow, entries: list[tuple]) -> None:
        seen = set()
        for node_id, title, step_type, content, visibility in entries:
            seen.add(node_id)
            values = {"title": title, "step_type": step_type, "content": content, "visibility": visibility,
                      "account_id": flow.account, "is_active": True}
            rid = self.by_key.get((flow.id, node_id))
            if rid is None:
                plan.inserts[(flow.id, node_id)] = {
                    **values, "created_by": flow.author, "usage_count": 0, "rating": None, "rating_count": 0,
                    "source_tree_id": flow.id, "source_node_id": node_id, "is_flow_synced": True,
                    "forked_from_id": None}
            elif any(self.rows[rid][k] != v for k, v in values.items()):
                plan.changes[rid] = ({**self.rows[rid], **values}, "sync")
        for rid in self.rows_of(flow.id):
            row = self.rows[rid]
            if row["is_active"] and row["source_node_id"] not in seen:
                plan.changes[rid] = ({**row, "is_active": False}, "retire")

    def write_trees(self, sql: str, params, changes: list[tuple[Flow | None, Flow | None]]):
        """Run a statement on trees; check it did what the model says (or failed §4 and changed nothing)."""
        plan, failing = self.plan_tree_writes(changes)
        if failing:
            for flow in failing:
                note(f"expect 23514 for {flow.label}: {dumps(flow.structure)[:500]}")
            self.refused(sql, params, "23514", [f"flow {f.id} cannot be published: " for f in failing])
            return None
        rows, ts = self.execute(sql, params)
        for old, new in changes:
            if new is None:
                del self.trees[old.label]
            else:
                self.trees[new.label] = new
        self.verify(plan, ts)
        return rows

    def verify(self, plan: Plan, ts) -> None:
        """Compare every library row with the model, and the statement's writes with the plan."""
        actual = {r["id"]: r for r in self.flows.library()}
        kinds = {}
        for rid, (row, kind) in plan.changes.items():
            self.rows[rid] = row
            kinds[rid] = kind
        for rid in plan.deleted:
            del self.rows[rid]
            self.order.remove(rid)
            self.by_key = {k: v for k, v in self.by_key.items() if v != rid}
        self.by_key = {k: v for k, v in self.by_key.items() if k[0] not in plan.forget_trees}
        for key, row in plan.inserts.items():
            found = [r["id"] for r in actual.values()
                     if (r["source_tree_id"], r["source_node_id"]) == key and r["id"] not in self.rows]
            assert len(found) == 1, f"expected one new entry for {key}, found {found}"
            self.rows[found[0]] = row
            self.order.append(found[0])
            self.by_key[key] = found[0]
            kinds[found[0]] = "insert"
        for rid, row in plan.created.items():
            self.rows[rid] = row
            self.order.append(rid)
            kinds[rid] = "create"
        assert set(actual) == set(self.rows), (
            f"unexpected rows {set(actual) - set(self.rows)}, missing rows {set(self.rows) - set(actual)}")
        for rid, row in self.rows.items():
            got = actual[rid]
            for column in LOGICAL:
                assert got[column] == row[column], (rid, column, got[column], row[column], kinds.get(rid))
            kind = kinds.get(rid)
            if kind is None:
                for column in OBSERVED:
                    assert got[column] == row[column], f"row {rid} was written ({column}) but should not have been"
            elif kind in ("insert", "create"):
                assert got["created_at"] == got["updated_at"] == ts
                assert got["last_synced_at"] == (ts if kind == "insert" else None)
            else:
                assert got["xmin"] != row["xmin"], (rid, kind, "expected a write")
                assert got["created_at"] == row["created_at"]
                assert got["updated_at"] == (row["updated_at"] if kind == "unchanged" else ts), (rid, kind)
                assert got["last_synced_at"] == (ts if kind == "sync" else row["last_synced_at"]), (rid, kind)
            for column in OBSERVED:
                row[column] = got[column]

    def new_flow(self, data, tree_type=None) -> Flow:
        self.labels += 1
        tree_type = tree_type or data.draw(st.sampled_from(["procedural", "maintenance", "troubleshooting"]),
                                           label="tree_type")
        return Flow(
            label=f"t{self.labels}", id=uuid.uuid4(), tree_type=tree_type,
            structure=draw_structure(data, tree_type),
            status=data.draw(st.sampled_from(["draft", "published"]), label="status"),
            is_active=data.draw(st.sampled_from([True, True, True, False]), label="is_active"),
            is_public=data.draw(st.booleans(), label="is_public"),
            account=self.accounts[data.draw(st.sampled_from(["acme", "acme", "other", "none"]), label="account")],
            author=self.users[data.draw(st.sampled_from(["author", "colleague"]), label="author")][0])

    def update_tree(self, old: Flow, **values) -> None:
        new = dataclasses.replace(old, **values)
        columns = {"tree_structure" if k == "structure" else "account_id" if k == "account"
                   else "author_id" if k == "author" else k: v for k, v in values.items()}
        sets = ", ".join(f"{c} = %s::jsonb" if c == "tree_structure" else f"{c} = %s" for c in columns)
        params = [dumps(v) if c == "tree_structure" else v for c, v in columns.items()]
        self.write_trees(f"UPDATE trees SET {sets} WHERE id = %s", (*params, old.id), [(old, new)])

    # -- flows --------------------------------------------------------------------------------------------------

    @initialize(data=st.data())
    def first_flows(self, data):
        for _ in range(data.draw(st.integers(1, 3), label="first flows")):
            self.create_flow(data)

    @precondition(lambda self: len(self.trees) < 8)
    @rule(data=st.data())
    def create_flow(self, data):
        flow = self.new_flow(data)
        self.write_trees(
            "INSERT INTO trees (id, name, tree_type, tree_structure, status, is_active, is_public, account_id,"
            " author_id) VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)",
            (flow.id, flow.label, flow.tree_type, dumps(flow.structure), flow.status, flow.is_active,
             flow.is_public, flow.account, flow.author), [(None, flow)])

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def publish(self, data):
        flow = self.pick_tree(data)
        if data.draw(st.booleans(), label="and activate"):
            self.update_tree(flow, status="published", is_active=True)
        else:
            self.update_tree(flow, status="published")

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def edit_structure(self, data):
        flow = self.pick_tree(data)
        structure = draw_edit(data, flow.tree_type, flow.structure)
        if data.draw(st.booleans(), label="and publish"):
            self.update_tree(flow, structure=structure, status="published")
        else:
            self.update_tree(flow, structure=structure)

    def pick_listed(self, data) -> Flow:
        labels = sorted((k for k, f in self.trees.items() if f.listed), key=lambda k: int(k[1:]))
        return self.trees[data.draw(st.sampled_from(labels), label="listed flow")]

    @precondition(lambda self: any(f.listed for f in self.trees.values()))
    @rule(data=st.data())
    def edit_listed_flow(self, data):
        """The common case: a published flow edited and saved, so the sync rewrites what changed."""
        flow = self.pick_listed(data)
        self.update_tree(flow, structure=draw_edit(data, flow.tree_type, flow.structure))

    @precondition(lambda self: any(f.listed for f in self.trees.values()))
    @rule(data=st.data())
    def damage_listed_flow(self, data):
        """A broken re-publish (usually): 23514 and the flow and its library stay as they were."""
        flow = self.pick_listed(data)
        self.update_tree(flow, structure=damage_for_machine(data, flow.tree_type, copy.deepcopy(flow.structure)))

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def resave(self, data):
        """Re-set values a flow already has, as ORMs do: no library work (§5.8)."""
        flow = self.pick_tree(data)
        how = data.draw(st.sampled_from(["structure", "status", "everything"]), label="resave")
        if how == "structure":
            self.update_tree(flow, structure=copy.deepcopy(flow.structure))
        elif how == "status":
            self.update_tree(flow, status=flow.status)
        else:
            self.update_tree(flow, structure=copy.deepcopy(flow.structure), status=flow.status,
                             is_active=flow.is_active, is_public=flow.is_public, account=flow.account,
                             tree_type=flow.tree_type, author=flow.author)

    @precondition(lambda self: self.trees)
    @rule(data=st.data(), active=st.booleans())
    def set_active(self, data, active):
        self.update_tree(self.pick_tree(data), is_active=active)

    @precondition(lambda self: self.trees)
    @rule(data=st.data(), status=st.sampled_from(["draft", "archived", "published"]))
    def set_status(self, data, status):
        self.update_tree(self.pick_tree(data), status=status)

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def set_public(self, data):
        flow = self.pick_tree(data)
        self.update_tree(flow, is_public=not flow.is_public)

    @precondition(lambda self: self.trees)
    @rule(data=st.data(), account=st.sampled_from(["acme", "other", "none"]))
    def set_account(self, data, account):
        self.update_tree(self.pick_tree(data), account=self.accounts[account])

    @precondition(lambda self: self.trees)
    @rule(data=st.data(), author=st.sampled_from(["author", "colleague", "outsider"]))
    def set_author(self, data, author):
        """Not a library column: later inserts take the new author, existing entries keep theirs."""
        self.update_tree(self.pick_tree(data), author=self.users[author][0])

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def change_type(self, data):
        """procedural <-> maintenance keeps the structure; to or from troubleshooting replaces it."""
        flow = self.pick_tree(data)
        tree_type = data.draw(st.sampled_from(["procedural", "maintenance", "troubleshooting"]), label="new type")
        if (tree_type == "troubleshooting") != (flow.tree_type == "troubleshooting"):
            self.update_tree(flow, tree_type=tree_type, structure=draw_structure(data, tree_type))
        else:
            self.update_tree(flow, tree_type=tree_type)

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def rename(self, data):
        flow = self.pick_tree(data)
        self.write_trees("UPDATE trees SET name = %s, description = %s WHERE id = %s",
                         (data.draw(TITLES, label="name"), "edited", flow.id), [(flow, flow)])

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def delete_flow(self, data):
        flow = self.pick_tree(data)
        self.write_trees("DELETE FROM trees WHERE id = %s", (flow.id,), [(flow, None)])

    @precondition(lambda self: len(self.trees) > 1)
    @rule(how=st.sampled_from(["publish drafts", "flip public", "reactivate all", "archive team flows",
                               "delete archived"]))
    def bulk(self, how):
        """One statement writing many flows: each row's trigger does its own work; one bad flow fails all."""
        flows = list(self.trees.values())
        if how == "delete archived":
            self.write_trees("DELETE FROM trees WHERE status = 'archived'", (),
                             [(f, None) for f in flows if f.status == "archived"])
            return
        if how == "publish drafts":
            sql, change = ("UPDATE trees SET status = 'published' WHERE status = 'draft' AND is_active",
                           lambda f: dataclasses.replace(f, status="published") if f.status == "draft" and f.is_active
                           else None)
        elif how == "flip public":
            sql, change = "UPDATE trees SET is_public = NOT is_public", lambda f: dataclasses.replace(
                f, is_public=not f.is_public)
        elif how == "reactivate all":
            sql, change = "UPDATE trees SET is_active = true", lambda f: dataclasses.replace(f, is_active=True)
        else:
            sql, change = ("UPDATE trees SET status = 'archived' WHERE NOT is_public",
                           lambda f: None if f.is_public else dataclasses.replace(f, status="archived"))
        changes = [(f, change(f)) for f in flows if change(f) is not None]
        self.write_trees(sql, (), changes)

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def sync_tree_is_a_no_op(self, data):
        """The library is in step, so a repair writes nothing (§6.6)."""
        flow = self.pick_tree(data)
        rows, ts = self.execute("SELECT stepsync.sync_tree(%s)", (flow.id,))
        assert rows == [(0,)]
        self.verify(Plan(), ts)

    @precondition(lambda self: self.trees)
    @rule(data=st.data())
    def preview_matches_the_reference(self, data):
        flow = self.pick_tree(data)
        entries = verdict(flow.tree_type, flow.structure, flow.is_public)
        if entries is None:
            with pytest.raises(psycopg.Error) as info:
                preview(self.conn, flow.id)
            assert info.value.sqlstate == "23514"
            assert info.value.diag.message_primary.startswith(f"flow {flow.id} cannot be published: ")
        else:
            assert preview(self.conn, flow.id) == [tuple(e) for e in entries]

    # -- the library ----------------------------------------------------------------------------------------------

    @precondition(lambda self: self.trees and any(r["source_tree_id"] is not None for r in self.rows.values()))
    @rule(data=st.data(), k=st.integers(1, 5), everything=st.booleans())
    def bump_usage_of_a_flow(self, data, k, everything):
        """One statement counting a use of every entry of a flow (or of the whole library)."""
        if everything:
            sql, params, ids = "UPDATE step_library SET usage_count = usage_count + %s", (k,), list(self.order)
        else:
            flow = self.pick_tree(data)
            sql, params = "UPDATE step_library SET usage_count = usage_count + %s WHERE source_tree_id = %s", (
                k, flow.id)
            ids = self.rows_of(flow.id)
        _, ts = self.execute(sql, params)
        plan = Plan()
        for rid in ids:
            plan.changes[rid] = ({**self.rows[rid], "usage_count": self.rows[rid]["usage_count"] + k}, "client")
            self.usage += k
        self.verify(plan, ts)

    @precondition(lambda self: self.rows)
    @rule(data=st.data(), k=st.integers(0, 5), rate=st.booleans())
    def bump_usage(self, data, k, rate):
        rid = self.pick_row(data)
        row = self.rows[rid]
        if rate:
            rating = Decimal(data.draw(st.integers(0, 500), label="rating")) / 100
            _, ts = self.execute("UPDATE step_library SET usage_count = usage_count + %s, rating = %s,"
                                 " rating_count = rating_count + 1 WHERE id = %s", (k, rating, rid))
            new = {**row, "usage_count": row["usage_count"] + k, "rating": rating,
                   "rating_count": row["rating_count"] + 1}
        else:
            _, ts = self.execute("UPDATE step_library SET usage_count = usage_count + %s WHERE id = %s", (k, rid))
            new = {**row, "usage_count": row["usage_count"] + k}
        self.usage += k
        plan = Plan()
        plan.changes[rid] = (new, "client" if new != row else "unchanged")
        self.verify(plan, ts)

    def visible(self, row: dict, user: str) -> bool:
        user_id, account = self.users[user]
        return row["is_active"] and (row["visibility"] == "public" or row["created_by"] == user_id
                                     or (row["visibility"] == "team" and account is not None
                                         and row["account_id"] == account))

    @precondition(lambda self: self.rows)
    @rule(data=st.data(), user=st.sampled_from(["author", "colleague", "outsider", "loner"]))
    def fork(self, data, user):
        rid = self.pick_row(data)
        user_id, account = self.users[user]
        expected = {r for r in self.order if self.visible(self.rows[r], user)}
        assert {r[0] for r in self.conn.execute("SELECT id FROM stepsync.visible_steps(%s)", (user_id,))} == expected
        if not self.visible(self.rows[rid], user):
            self.refused("SELECT stepsync.fork_step(%s, %s)", (rid, user_id), "P0002")
            return
        rows, ts = self.execute("SELECT stepsync.fork_step(%s, %s)", (rid, user_id))
        original = self.rows[rid]
        plan = Plan()
        plan.created[rows[0][0]] = {
            "title": original["title"], "step_type": original["step_type"], "content": original["content"],
            "visibility": "private", "created_by": user_id, "account_id": account, "usage_count": 0, "rating": None,
            "rating_count": 0, "is_active": True, "source_tree_id": None, "source_node_id": None,
            "is_flow_synced": False, "forked_from_id": rid}
        self.verify(plan, ts)

    @precondition(lambda self: sum(not r["is_flow_synced"] for r in self.rows.values()) < 6)
    @rule(data=st.data())
    def hand_made(self, data):
        user = data.draw(st.sampled_from([None, "author", "outsider", "loner"]), label="created_by")
        row = {"title": data.draw(TITLES, label="title"), "step_type": data.draw(st.sampled_from(TS_SYNCED)),
               "content": data.draw(st.dictionaries(INERT_KEYS, INERT_JSON, max_size=3), label="content"),
               "visibility": data.draw(st.sampled_from(["private", "team", "public"]), label="visibility"),
               "created_by": self.users[user][0] if user else None,
               "account_id": self.accounts[data.draw(st.sampled_from(["acme", "other", "none"]), label="account")],
               "usage_count": 0, "rating": None, "rating_count": 0,
               "is_active": data.draw(st.sampled_from([True, True, False]), label="is_active"),
               "source_tree_id": None, "source_node_id": None, "is_flow_synced": False, "forked_from_id": None}
        rows, ts = self.execute(
            "INSERT INTO step_library (title, step_type, content, visibility, created_by, account_id, is_active)"
            " VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s) RETURNING id",
            (row["title"], row["step_type"], dumps(row["content"]), row["visibility"], row["created_by"],
             row["account_id"], row["is_active"]))
        plan = Plan()
        plan.created[rows[0][0]] = row
        self.verify(plan, ts)

    @precondition(lambda self: any(not r["is_flow_synced"] for r in self.rows.values()))
    @rule(data=st.data())
    def edit_hand_made(self, data):
        rid = self.pick_row(data, lambda r: not r["is_flow_synced"])
        row = self.rows[rid]
        new = {**row, "title": data.draw(st.one_of(st.just(row["title"]), TITLES), label="title"),
               "visibility": data.draw(st.sampled_from(["private", "team", "public"]), label="visibility"),
               "is_active": data.draw(st.booleans(), label="is_active")}
        _, ts = self.execute("UPDATE step_library SET title = %s, visibility = %s, is_active = %s WHERE id = %s",
                             (new["title"], new["visibility"], new["is_active"], rid))
        plan = Plan()
        plan.changes[rid] = (new, "client" if new != row else "unchanged")
        self.verify(plan, ts)

    @precondition(lambda self: any(r["is_flow_synced"] and not r["is_active"] for r in self.rows.values()))
    @rule(data=st.data())
    def delete_retired_entry(self, data):
        """Retired synced rows may be deleted (§6.1); a node that comes back gets a new entry."""
        rid = self.pick_row(data, lambda r: r["is_flow_synced"] and not r["is_active"])
        _, ts = self.execute("DELETE FROM step_library WHERE id = %s", (rid,))
        self.usage -= self.rows[rid]["usage_count"]
        plan = Plan()
        plan.deleted.add(rid)
        for other in self.order:
            if self.rows[other]["forked_from_id"] == rid:
                plan.changes[other] = ({**self.rows[other], "forked_from_id": None}, "client")
        self.verify(plan, ts)

    @precondition(lambda self: any(r["is_flow_synced"] and r["is_active"] for r in self.rows.values()))
    @rule(data=st.data(), what=st.sampled_from(["title", "content", "is_active", "delete", "source"]))
    def forbidden_write(self, data, what):
        """Synced rows are read-only but for counts (§6.1): 42501, nothing changes."""
        rid = self.pick_row(data, lambda r: r["is_flow_synced"] and r["is_active"])
        sql = {"title": "UPDATE step_library SET title = title || '!' WHERE id = %s",
               "content": "UPDATE step_library SET content = content || '{\"x\": 1}' WHERE id = %s",
               "is_active": "UPDATE step_library SET is_active = false WHERE id = %s",
               "delete": "DELETE FROM step_library WHERE id = %s",
               "source": "UPDATE step_library SET source_node_id = 'elsewhere' WHERE id = %s"}[what]
        self.refused(sql, (rid,), "42501")

    # -- invariants ---------------------------------------------------------------------------------------------

    @invariant()
    def oracle_is_clean(self):
        assert oracle(self.conn) == []

    @invariant()
    def usage_is_never_lost(self):
        assert self.conn.execute("SELECT COALESCE(sum(usage_count), 0) FROM step_library").fetchone()[0] == self.usage


def test_sync_state_machine(prop):
    run_state_machine_as_test(lambda: SyncMachine(prop), settings=prop_settings(examples=40, steps=40))


# --------------------------------------------------------------------------------------------------------------
# 2. Damaged flows


def build_chain(data, depth: int) -> object:
    """A chain DEPTH wrappers deep (nodes in children arrays, bare arrays, bare objects, or a mix), with a few
    synced nodes (ids from the pool, so they may clash) and something at the bottom. Built bottom up."""
    style = data.draw(st.sampled_from(["children", "arrays", "objects", "mixed"]), label="chain style")
    marks = dict(data.draw(st.lists(st.tuples(st.integers(0, depth - 1), st.sampled_from(IDS)), max_size=3),
                           label="synced levels"))
    value = data.draw(st.one_of(st.none(), NODE_LIKE, JSON), label="bottom")
    for level in reversed(range(depth)):
        shape = style if style != "mixed" else ("children", "arrays", "objects")[level % 3]
        if level in marks:
            value = {"id": marks[level], "type": "action", "title": f"Deep {level}", "children": [value]}
        elif shape == "children":
            value = {"id": f"q{level}", "type": "question", "title": "Q", "children": [value]}
        elif shape == "arrays":
            value = [value]
        else:
            value = {"next": value}
    return value


def damage(data, tree_type: str, structure):
    """Apply one random damage to STRUCTURE (in place where possible); returns the (new) root."""
    what = data.draw(st.sampled_from(["set", "set", "delete", "field", "field", "field", "duplicate", "retype",
                                      "wrap", "commands", "deep", "root"]), label="damage")
    slots = containers(structure)
    if what == "root" or not slots:
        return data.draw(st.one_of(JSON, NODE_LIKE, st.builds(lambda s: {"steps": s}, JSON)), label="new root")
    objects = [v for _, _, v in slots if isinstance(v, dict)]
    nodes = [o for o in objects if "type" in o] or objects
    synced = synced_nodes(tree_type, structure)
    if synced and data.draw(st.sampled_from([True, True, True, False]), label="aim at synced nodes"):
        # most damage lands where §4 looks: the synced nodes and what their commands hold
        aimed = {id(n) for n in synced}
        for n in synced:
            if isinstance(n.get("commands"), (dict, list)):
                aimed.update(id(v) for _, _, v in containers(n["commands"]))
        slots = [slot for slot in slots if id(slot[2]) in aimed]
        nodes = synced
    if what in ("field", "commands", "retype") and nodes:
        node = nodes[data.draw(st.integers(0, len(nodes) - 1), label="node")]
        field = {"commands": "commands", "retype": "type"}.get(what) or data.draw(
            st.sampled_from(sorted(FIELD_VALUES)), label="field")
        if data.draw(st.sampled_from([True, False, False, False, False]), label="delete the field"):
            node.pop(field, None)
        else:
            node[field] = data.draw(FIELD_VALUES[field], label=field)
        return structure
    if what == "duplicate":
        with_ids = [n for n in synced if "id" in n]
        if len(with_ids) > 1:
            i, j = data.draw(st.lists(st.integers(0, len(with_ids) - 1), min_size=2, max_size=2, unique=True))
            with_ids[j]["id"] = with_ids[i]["id"]
        return structure
    parent, key, target = slots[data.draw(st.integers(0, len(slots) - 1), label="slot")]
    if what == "wrap" and parent is not None:
        parent[key] = data.draw(st.sampled_from([[target], [[target]], {"inner": target}, "scalar", None]),
                                label="wrapped")
        return structure
    if what == "delete":
        if isinstance(target, dict) and target:
            del target[data.draw(st.sampled_from(sorted(target)), label="key")]
        elif isinstance(target, list) and target:
            target.pop(data.draw(st.integers(0, len(target) - 1)))
        return structure
    value = build_chain(data, data.draw(st.integers(1, 300), label="deep")) if what == "deep" else data.draw(
        st.one_of(JSON, NODE_LIKE), label="value")
    if isinstance(target, list):
        target.insert(data.draw(st.integers(0, len(target))), value)
    else:
        target[data.draw(st.one_of(st.sampled_from(FIELD_KEYS), st.text(SAFE_CHARS, max_size=4)), label="key")] = value
    return structure


def draw_damaged(data, tree_type: str, base, *, near: bool = False):
    """BASE with (when NEAR, most of the time) a near miss on a §4 line, then 0-3 random damages; sometimes
    more, until the reference refuses it (many random damages are harmless: garbage where nothing syncs,
    a missing optional key, ...)."""
    structure = base
    if near and data.draw(st.sampled_from([True, True, True, False]), label="with a near miss"):
        structure = near_miss(data, tree_type, structure)
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3] if near else [0, 1, 1, 2, 2, 3]), label="damages")):
        structure = damage(data, tree_type, structure)
    if data.draw(st.sampled_from([True, False, False]), label="damage until refused"):
        for _ in range(6):
            if verdict(tree_type, structure, False) is None:
                break
            structure = damage(data, tree_type, structure)
    return structure


def check_publish(flows: Flows, tree_id, tree_type: str, structure, is_public: bool, publish, *,
                  previous=None) -> bool:
    """Run PUBLISH and check its outcome against the reference. Returns whether it published."""
    conn = flows.conn
    text = dumps(structure)
    expected = verdict(tree_type, structure, is_public)
    note(f"{tree_type} ({len(text)} chars, {json_depth(structure)} levels): {text[:3000]}")
    note(f"reference: {'publishes ' + str(len(expected)) + ' entries' if expected is not None else 'refuses'}")
    before = flows.snapshot()
    try:
        publish(text)
    except psycopg.Error as error:
        note(f"{error.sqlstate}: {error.diag.message_primary}")
        assert error.sqlstate == "23514", f"{error.sqlstate}: {error}"
        assert error.diag.message_primary.startswith(f"flow {tree_id} cannot be published: ")
        assert (error.diag.message_detail or "").startswith("JSON path: $"), error.diag.message_detail
        assert flows.snapshot() == before, "a refused publish changed the database"
        assert expected is None, "the reference publishes this flow, the database refused it"
        return False
    assert expected is not None, "the database published a flow that fails §4"
    assert oracle(conn) == []
    got = preview(conn, tree_id)
    active = sorted((r["source_node_id"], r["title"], r["step_type"], r["content"], r["visibility"])
                    for r in flows.library(tree_id, where="is_active"))
    assert sorted(got) == active
    if json_depth(structure) < 1000:  # beyond, preview orders deep nodes band by band (see preview.sql)
        assert got == expected
    else:
        assert sorted(got) == sorted(expected)
    if previous is not None:  # a re-publish retires what is gone, keeping it
        retired = {r["source_node_id"] for r in flows.library(tree_id, where="NOT is_active")}
        assert retired == {e[0] for e in previous} - {e[0] for e in expected}
    return True


MODES = ("update draft", "insert published", "republish listed")


def publish_damaged(flows: Flows, data, tree_type: str, base, damaged_from_base) -> None:
    publish_as(flows, data.draw(st.sampled_from(MODES), label="mode"), data.draw(st.booleans(), label="is_public"),
               tree_type, base, damaged_from_base)


def publish_as(flows: Flows, mode: str, is_public: bool, tree_type: str, base, damaged_from_base) -> bool:
    author, account = flows.actors.author, flows.actors.account
    conn = flows.conn
    tree_id = uuid.uuid4()

    def insert(text, status):
        conn.execute("INSERT INTO trees (id, name, tree_type, tree_structure, status, is_public, account_id,"
                     " author_id) VALUES (%s, 'damaged', %s, %s::jsonb, %s, %s, %s, %s)",
                     (tree_id, tree_type, text, status, is_public, account, author))

    def update(text, status="published"):
        conn.execute("UPDATE trees SET tree_structure = %s::jsonb, status = %s WHERE id = %s", (text, status, tree_id))

    previous = None
    if mode == "republish listed":
        previous = reference(tree_type, base, is_public)
        insert(dumps(base), "published")
    structure = damaged_from_base(base)
    if mode == "insert published":
        return check_publish(flows, tree_id, tree_type, structure, is_public, lambda text: insert(text, "published"))
    if mode == "update draft":
        insert(dumps(structure), "draft")  # drafts hold anything
        return check_publish(flows, tree_id, tree_type, structure, is_public,
                             lambda text: conn.execute("UPDATE trees SET status = 'published' WHERE id = %s",
                                                       (tree_id,)))
    return check_publish(flows, tree_id, tree_type, structure, is_public, update, previous=previous)


def test_damaged_flows_publish_or_fail_cleanly(prop):
    """Shallow flows close to valid, 0-3 random damages each (one damage in twelve is a chain up to 300 deep)."""
    flows = prop.reset()

    @prop_settings(examples=250)
    @given(data=st.data())
    def run(data):
        tree_type = data.draw(st.sampled_from(["procedural", "maintenance", "troubleshooting"]), label="tree_type")
        base = draw_structure(data, tree_type)
        assert verdict(tree_type, base, False) is not None
        publish_damaged(flows, data, tree_type, base, lambda b: draw_damaged(data, tree_type, copy.deepcopy(b),
                                                                             near=True))

    run()


SWEEP_BASES = {
    "procedural": {"steps": [
        {"id": "h1", "type": "section_header", "title": "Prepare"},
        {"id": "s1", "type": "procedure_step", "title": "Check", "description": "Look", "commands": ["ls"]},
        {"id": "n1", "type": "note", "title": 5, "commands": 7},
        {"id": "s2", "type": "procedure_step", "title": "Fix", "expected_outcome": "Fixed",
         "library_visibility": "public", "commands": [{"code": "fix", "language": "sh", "label": "Fix it"}]},
        {"id": "e", "type": "procedure_end"},
    ]},
    "troubleshooting": {"id": "q", "type": "question", "title": "Broken?", "children": [
        {"id": "a1", "type": "action", "title": "Restart", "commands": "restart", "children": [
            {"id": "s1", "type": "solution", "title": "Done", "description": "It works"}]},
        {"id": "q2", "type": "question", "title": None, "yes": {"id": "s2", "type": "solution", "title": "Swap"}},
    ]},
}


def test_every_near_miss_publishes_or_fails_like_the_reference(prop):
    """Not random: every value of the near-miss catalog, on every node in turn, for both families of flows,
    through the three ways of publishing (maintenance flows take every third procedural case)."""
    flows = prop.reset()
    published = refused = 0
    for family, base in SWEEP_BASES.items():
        for miss_rule in near_miss_rules(family):
            for i, value in enumerate(near_miss_values(miss_rule)):
                tree_type = "maintenance" if family == "procedural" and i % 3 == 2 else family
                with_miss = apply_near_miss(tree_type, copy.deepcopy(base), miss_rule, value, i)
                shown = "(missing)" if value is MISSING else dumps(value)[:80]
                case = f"{tree_type}, {MODES[i % 3]}: {miss_rule} = {shown}"
                try:
                    ok = publish_as(flows, MODES[i % 3], i % 2 == 0, tree_type, copy.deepcopy(base),
                                    lambda _base, s=with_miss: s)
                except AssertionError as error:
                    raise AssertionError(f"{case}: {error}") from error
                published, refused = published + ok, refused + (not ok)
    assert published > 100 and refused > 120, (published, refused)


STRIDES = {"next": 1, "children": 2, "options": 3}  # levels from a node to the node it holds


def deep_chain(levels: int, links: list[str], every: int, siblings: bool) -> dict:
    """A troubleshooting root holding a chain of nodes down to LEVELS levels: node i holds node i+1 under
    links[i % len(links)] ("next": {...}, "children": [{...}], "options": [[{...}]]); every EVERY-th node
    is an action, the others questions; with SIBLINGS, every 7th node also holds a shallow solution after
    its deep subtree (walk order then differs from depth order). Built bottom up, no recursion."""
    chain, level, i = [], 2, 0  # the first node sits at $.children[0]: level 2
    while level <= levels:
        chain.append((i, level, links[i % len(links)]))
        level += STRIDES[links[i % len(links)]]
        i += 1
    node = None
    for i, level, link in reversed(chain):
        current = {"id": f"n{i}", "type": "action" if i % every == 0 else "question", "title": f"Level {level}"}
        if node is not None:
            current[link] = {"next": node, "children": [node], "options": [[node]]}[link]
        if siblings and i % 7 == 0:
            current.setdefault("side", []).append({"id": f"s{i}", "type": "solution", "title": f"Side {i}"})
        node = current
    return {"id": "root", "type": "question", "title": "Root", "children": [node] if node else []}


def test_damaged_deep_flows_publish_or_fail_cleanly(prop):
    """Troubleshooting chains 10 to 1,100 levels deep (the shallow walk, the band walk from 64 levels, the
    band boundary at 1,000), nodes 1, 2 or 3 levels apart so that synced nodes land on every level
    around the boundaries, with 0-3 random damages at any depth."""
    flows = prop.reset()

    @prop_settings(examples=40)
    @given(data=st.data())
    def run(data):
        low, high = data.draw(st.sampled_from([(10, 63), (64, 300), (300, 990), (990, 1010), (1010, 1100)]),
                              label="level range")
        base = deep_chain(data.draw(st.integers(low, high), label="levels"),
                          data.draw(st.lists(st.sampled_from(sorted(STRIDES)), min_size=1, max_size=3), label="links"),
                          data.draw(st.integers(1, 4), label="synced every"),
                          data.draw(st.booleans(), label="siblings"))
        assert verdict("troubleshooting", base, False) is not None
        publish_damaged(flows, data, "troubleshooting", base, lambda b: draw_damaged(data, "troubleshooting",
                                                                                     _rebuild(b)))

    run()


def _rebuild(value):
    """copy.deepcopy without recursion (it gives up near 1,000 levels)."""
    root_holder = [None]
    stack = [(value, root_holder, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict):
            new = {}
            for k, v in item.items():
                stack.append((v, new, k))
        elif isinstance(item, list):
            new = [None] * len(item)
            for i, v in enumerate(item):
                stack.append((v, new, i))
        else:
            new = item
        parent[key] = new
    return root_holder[0]
