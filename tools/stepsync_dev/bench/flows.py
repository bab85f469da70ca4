"""Flow generators and the app-side extraction used by `stepsync bench`.

The app-side variant is the original design's approach (read the tree,
extract in the application, upsert with executemany); it lives here, in the
benchmark only, to be measured against: the product itself holds no sync logic
in Python.
"""

from __future__ import annotations

import json
from typing import Any


def procedural(steps: int, *, tag: str = "") -> dict[str, Any]:
    """A procedure of STEPS steps: each with description, expected outcome and two commands; a header every 10."""
    elements: list[dict[str, Any]] = []
    for i in range(steps):
        if i % 10 == 0:
            elements.append({"id": f"hdr-{i // 10}", "type": "section_header", "title": f"Section {i // 10}{tag}"})
        elements.append({
            "id": f"step-{i:05d}", "type": "procedure_step", "title": f"Step {i}{tag}",
            "description": f"Do the thing number {i} carefully, then check the result.{tag}",
            "expected_outcome": f"Thing {i} is done.",
            "commands": [{"code": f"run --item {i}", "language": "bash", "label": "Run"}, f"check {i}"],
        })
    elements.append({"id": "end", "type": "procedure_end"})
    return {"steps": elements}


def troubleshooting(nodes: int) -> dict[str, Any]:
    """A troubleshooting tree of NODES nodes, branching 4: questions, actions and solutions in turn."""
    kinds = ("question", "action", "solution")
    items: list[dict[str, Any]] = [{"id": f"n{i}", "type": kinds[i % 3], "title": f"Node {i}",
              "description": f"Look at part {i} and act.", "commands": [f"inspect {i}"], "children": []}
             for i in range(nodes)]
    for i in range(1, nodes):
        items[(i - 1) // 4]["children"].append(items[i])
    return items[0]


def chain_text(depth: int) -> str:
    """A chain DEPTH nodes deep (each node holds the next in "children"), every other node an action, as text."""
    opens = []
    for i in range(depth):
        kind = "action" if i % 2 else "question"
        opens.append(json.dumps({"id": f"c{i}", "type": kind, "title": f"Node {i}"})[:-1] + ', "children": [')
    return "".join(opens) + "]}" * depth


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or value.strip(" \t\r\n") == ""


def _commands(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [] if _blank(raw) else [{"label": "", "command": raw, "command_type": None}]
    out = []
    for item in raw:
        if isinstance(item, str):
            if not _blank(item):
                out.append({"label": "", "command": item, "command_type": None})
        else:
            language = item.get("language")
            out.append({"label": item.get("label") or "", "command": item["code"],
                        "command_type": None if _blank(language) else language})
    return out


def app_side_entries(tree_type: str, structure: dict[str, Any], is_public: bool) -> list[tuple[Any, ...]]:
    """What the original design's application extracts: (node id, title, step_type, content, visibility)."""
    flow_visibility = "public" if is_public else "team"
    entries: list[tuple[Any, ...]] = []
    if tree_type in ("procedural", "maintenance"):
        group = None
        for node in structure.get("steps") or []:
            if node.get("type") == "section_header":
                title = node.get("title")
                group = None if _blank(title) else title
            elif node.get("type") == "procedure_step":
                content = {
                    "instructions": node["description"] if not _blank(node.get("description")) else node["title"],
                    "help_text": None if _blank(node.get("expected_outcome")) else node["expected_outcome"],
                    "commands": _commands(node.get("commands")),
                    "group_label": group,
                }
                entries.append((node["id"], node["title"], "action", content,
                                node.get("library_visibility") or flow_visibility))
    else:
        stack: list[Any] = [structure]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("type") in ("action", "solution"):
                    content = {
                        "instructions": node["description"] if not _blank(node.get("description")) else node["title"],
                        "help_text": None if _blank(node.get("expected_outcome")) else node["expected_outcome"],
                        "commands": _commands(node.get("commands")), "group_label": None,
                    }
                    entries.append((node["id"], node["title"], node["type"], content, flow_visibility))
                stack.extend(reversed(list(node.values())))
            elif isinstance(node, list):
                stack.extend(reversed(node))
    return entries
