"""Draws docs/write-path.svg, the picture of the write path in docs/how-it-works.md.

Run it from the repository root after changing the picture: `python docs/write_path_svg.py`.
It uses the standard library only. Boxes are laid out by hand below; their heights
follow from their lines, and a line too long for its box stops the script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

OUT = Path(__file__).with_name("write-path.svg")
WIDTH = 1320
SANS = "DejaVu Sans, Verdana, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
# Style of a line: (font family, size, weight, colour, approximate character width in px)
STYLES = {
    "title": (SANS, 14, "bold", "#111", 8.6),
    "text": (SANS, 13, "normal", "#222", 7.5),
    "code": (MONO, 12, "normal", "#0b3d91", 7.3),
    "file": (MONO, 11.5, "normal", "#555", 7.0),
    "error": (SANS, 12.5, "bold", "#b00020", 7.6),
}
LINE_GAP = 5
PAD = 10
FILLS = {
    "client": ("#fff8e1", "#c79a00"),
    "trees": ("#e3f2fd", "#1565c0"),
    "sync": ("#ede7f6", "#5e35b1"),
    "library": ("#e8f5e9", "#2e7d32"),
    "step": ("#ffffff", "#7e57c2"),
    "guard": ("#ffffff", "#2e7d32"),
}


@dataclass
class Box:
    x: float
    y: float
    w: float
    lines: list[tuple[str, str]]
    kind: str
    dashed: bool = False
    children: list[Box] = field(default_factory=list)
    child_gap: float = 8

    @property
    def text_height(self) -> float:
        return sum(STYLES[style][1] + LINE_GAP for style, _ in self.lines)

    @property
    def h(self) -> float:
        height = PAD + self.text_height + PAD
        if self.children:
            height += sum(c.h for c in self.children) + self.child_gap * len(self.children)
        return height

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def layout_children(self) -> None:
        y = self.y + PAD + self.text_height + 2
        for child in self.children:
            child.x = self.x + 12
            child.w = self.w - 24
            child.y = y
            child.layout_children()
            y += child.h + self.child_gap

    def check(self) -> None:
        for style, text in self.lines:
            width = len(text) * STYLES[style][4]
            if width > self.w - 2 * PAD:
                raise SystemExit(f"line too long for its box ({width:.0f} > {self.w - 2 * PAD:.0f} px): {text}")
        for child in self.children:
            child.check()

    def svg(self) -> list[str]:
        fill, stroke = FILLS[self.kind]
        dash = ' stroke-dasharray="6 4"' if self.dashed else ""
        out = [(f'<rect x="{self.x:.0f}" y="{self.y:.0f}" width="{self.w:.0f}" height="{self.h:.0f}" rx="8" '
               f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>')]
        y = self.y + PAD
        for style, text in self.lines:
            family, size, weight, colour, _ = STYLES[style]
            y += size
            out.append(f'<text x="{self.x + PAD:.0f}" y="{y:.0f}" font-family="{family}" font-size="{size}" '
                       f'font-weight="{weight}" fill="{colour}">{escape(text)}</text>')
            y += LINE_GAP
        for child in self.children:
            out.extend(child.svg())
        return out


def arrow(points: list[tuple[float, float]], label: str = "", dashed: bool = False, colour: str = "#444",
          label_at: tuple[float, float] | None = None) -> list[str]:
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    path = " ".join(f"{'M' if i == 0 else 'L'} {x:.0f} {y:.0f}" for i, (x, y) in enumerate(points))
    out = [f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"{dash} marker-end="url(#head)"/>']
    if label:
        lx, ly = label_at or ((points[0][0] + points[-1][0]) / 2 + 6, (points[0][1] + points[-1][1]) / 2)
        out.append(f'<text x="{lx:.0f}" y="{ly:.0f}" font-family="{SANS}" font-size="12" fill="#333" '
                   f'font-style="italic">{escape(label)}</text>')
    return out


def build() -> str:
    L, LW = 30, 640      # left lane: the flow's side
    R, RW = 780, 500     # right lane: the library's side

    client = Box(L, 60, LW, [
        ("title", "1  A client writes the flow (ORM, psql, REST layer, batch job)"),
        ("code", "UPDATE public.trees SET status = 'published' WHERE id = $1;"),
    ], "client")
    updated = Box(L, 0, LW, [
        ("title", "2  BEFORE UPDATE row triggers t10 and t11: updated_at (§5.9)"),
        ("text", "stepsync.tg_set_updated_at(): t10 compares the row without tree_structure;"),
        ("text", "t11 (UPDATE OF tree_structure) compares the document only when nothing else"),
        ("text", "changed. A rename or a status change never reads the document."),
        ("file", "trees__t10_set_updated_at.sql, trees__t11_set_updated_at_structure.sql,"),
        ("file", "tg_set_updated_at.sql"),
    ], "trees")
    written = Box(L, 0, LW, [
        ("title", "3  PostgreSQL writes the new row of public.trees"),
    ], "trees")
    when = Box(L, 0, LW, [
        ("title", "4  AFTER UPDATE row triggers t31, t33, t32 (on INSERT: t30)"),
        ("code", "t31: AFTER UPDATE OF status, is_active"),
        ("text", "WHEN status or is_active changed (step 5 decides what it means)."),
        ("code", "t33: AFTER UPDATE OF tree_type, is_public, account_id"),
        ("text", "WHEN a listed flow stays listed with a new type, visibility or account."),
        ("code", "t32: AFTER UPDATE OF tree_structure"),
        ("text", "WHEN still listed, same type, visibility, account, structure changed."),
        ("text", "The WHEN clauses exclude each other. A rename, the same structure re-saved"),
        ("text", "or status re-set to 'published' stops here, with no function call (§5.8)."),
        ("file", "trees__t31_sync_on_update.sql, trees__t33_sync_on_settings.sql,"),
        ("file", "trees__t32_sync_on_structure.sql, trees__t30_sync_on_insert.sql"),
    ], "trees")
    dispatch = Box(L, 0, LW, [
        ("title", "5  stepsync.tg_trees__sync()   SECURITY DEFINER"),
        ("text", "Runs with the rights of the tables' owner, search_path pinned, so a client"),
        ("text", "with only UPDATE on trees still gets a synced library (§6.7)."),
        ("text", "Listed now: stepsync._sync(...), with the old structure after a t32 edit."),
        ("text", "Deactivated or archived: stepsync._retire(tree_id). Else (back to draft): nothing."),
        ("file", "tg_trees__sync.sql"),
    ], "trees")

    nodes = Box(0, 0, 0, [
        ("title", "b  nodes: stepsync._nodes(...), the one extraction and the checks"),
        ("text", "§2 which nodes sync, §3 what each entry holds, §4 publish checks"),
        ("text", "(one rule table). Given the old structure: checks every step, shapes"),
        ("text", "only the changed ones."),
        ("error", "A check fails: 23514 with the node and its JSON path;"),
        ("error", "the client's whole statement rolls back, nothing is written."),
        ("file", "_nodes.sql, _walk_troubleshooting.sql, _json_kind.sql"),
    ], "step")
    sync = Box(L, 0, LW, [
        ("title", "6  stepsync._sync(...): one statement of CTEs"),
        ("file", "_sync.sql"),
    ], "sync", children=[
        Box(0, 0, 0, [
            ("title", "a  set stepsync.sync_writing = 'on' (transaction-local marker)"),
        ], "step"),
        nodes,
        Box(0, 0, 0, [
            ("title", "c  entries and pairs"),
            ("text", "the flow's current entries, FULL JOIN the nodes on source_node_id;"),
            ("text", "kept: new entries, differing ones, active ones whose node is gone."),
            ("text", "An unchanged step's entry not as expected: rerun as a full sync."),
        ], "step"),
        Box(0, 0, 0, [
            ("title", "d  locked: SELECT ... FOR NO KEY UPDATE, in source_node_id order"),
            ("text", "every entry to rewrite or retire, before the first write (no deadlocks)"),
        ], "step"),
        Box(0, 0, 0, [
            ("title", "e  upserted: new and differing entries only"),
            ("code", "INSERT ... ON CONFLICT (source_tree_id, source_node_id)"),
            ("code", "DO UPDATE SET title, step_type, content, visibility, ..."),
            ("code", "WHERE (old values) IS DISTINCT FROM (new values)"),
        ], "step"),
        Box(0, 0, 0, [
            ("title", "f  retired: entries whose node is gone"),
            ("code", "UPDATE public.step_library SET is_active = false WHERE id = ANY (...)"),
        ], "step"),
        Box(0, 0, 0, [
            ("title", "g  restore the marker; return the number of rows written"),
        ], "step"),
    ])

    y = client.bottom + 34
    for box in (updated, written, when, dispatch, sync):
        box.y = y
        y = box.bottom + 34
    sync.layout_children()

    direct = Box(R, 60, RW, [
        ("title", "Any client writing step_library directly"),
        ("code", "UPDATE step_library SET usage_count = usage_count + 1"),
        ("text", "allowed: usage_count, rating, rating_count stay writable"),
        ("code", "UPDATE step_library SET title = '...'  -- a synced row"),
        ("error", "42501: the row is read-only, fork it (§6.1)"),
        ("code", "SET stepsync.sync_writing = 'on'; UPDATE ..."),
        ("error", "42501: the marker is reserved for the sync"),
    ], "client", dashed=True)
    retire = Box(R, dispatch.y - 10, RW, [
        ("title", "stepsync._retire(tree_id)"),
        ("text", "Deactivated or archived (§5.3), or deleted (§5.5, from"),
        ("text", "BEFORE DELETE trigger t20_retire_on_delete): sets the"),
        ("text", "marker, locks the active entries in source_node_id order:"),
        ("code", "UPDATE ... SET is_active = false"),
        ("file", "_retire.sql, tg_trees__retire_on_delete.sql,"),
        ("file", "trees__t20_retire_on_delete.sql"),
    ], "sync")
    guards = Box(R, 0, RW, [
        ("title", "7  Triggers on public.step_library, for every write"),
    ], "library", children=[
        Box(0, 0, 0, [
            ("title", "t04_check_marker   BEFORE ... FOR EACH STATEMENT"),
            ("text", "WHEN the marker is 'on': current_user must own"),
            ("text", "step_library (true inside the SECURITY DEFINER sync),"),
            ("text", "else 42501."),
            ("file", "step_library__t04_check_marker.sql,"),
            ("file", "tg_step_library__check_marker.sql"),
        ], "guard"),
        Box(0, 0, 0, [
            ("title", "t05_guard_insert / _update / _delete   FOR EACH ROW"),
            ("text", "WHEN the marker is not 'on' and the row is synced:"),
            ("text", "the read-only rule (§6.1), 42501 with a hint to fork."),
            ("text", "The sync's own writes skip it: no call per row."),
            ("file", "step_library__t05_guard_*.sql, tg_step_library__guard.sql"),
        ], "guard"),
        Box(0, 0, 0, [
            ("title", "t10_set_updated_at   BEFORE UPDATE, FOR EACH ROW"),
            ("text", "updated_at = now() on rewrites and retirements (§5.9)"),
            ("file", "step_library__t10_set_updated_at.sql"),
        ], "guard"),
        Box(0, 0, 0, [
            ("title", "t20 / t21 / t22 search vector   BEFORE, FOR EACH ROW"),
            ("text", "stores search_vector (text, audience and popularity keys)"),
            ("text", "for search_steps; only when what it is made of changes"),
            ("file", "step_library__t2*_search_vector_*.sql,"),
            ("file", "tg_step_library__search_vector.sql"),
        ], "guard"),
    ])
    upsert, retired = sync.children[4], sync.children[5]
    guards.y = max(retire.bottom + 40, retired.y + retired.h / 2 + 30 - guards.h)
    guards.layout_children()
    rows = Box(R, guards.bottom + 34, RW, [
        ("title", "8  The rows of public.step_library after the publish"),
        ("text", "New nodes: inserted (is_flow_synced, source columns,"),
        ("text", "created_by = the flow's author, last_synced_at = now())."),
        ("text", "Changed nodes: rewritten; id, usage_count, rating,"),
        ("text", "rating_count, created_by and created_at kept."),
        ("text", "Unchanged nodes: not written (same row version)."),
        ("text", "Nodes gone: is_active = false, everything else kept."),
        ("text", "Hand-made rows and forks: never touched (§5.7)."),
    ], "library")

    height = max(sync.bottom, rows.bottom) + 60
    boxes = [client, updated, written, when, dispatch, sync, direct, retire, guards, rows]
    for box in boxes:
        box.check()

    mid = L + LW / 2
    parts: list[str] = []
    for upper, lower in ((client, updated), (updated, written), (written, when), (when, dispatch), (dispatch, sync)):
        parts += arrow([(mid, upper.bottom), (mid, lower.y - 2)])
    parts += arrow([(L + LW, dispatch.y + 40), (R - 2, dispatch.y + 40)], "retire",
                   label_at=(L + LW + 36, dispatch.y + 32))
    parts += arrow([(L + LW - 12, upsert.y + upsert.h / 2), (R - 2, upsert.y + upsert.h / 2)], "upsert",
                   label_at=(L + LW + 36, upsert.y + upsert.h / 2 - 8))
    parts += arrow([(L + LW - 12, retired.y + retired.h / 2), (R - 2, retired.y + retired.h / 2)], "retire",
                   label_at=(L + LW + 36, retired.y + retired.h / 2 - 8))
    parts += arrow([(R + RW / 2, retire.bottom), (R + RW / 2, guards.y - 2)])
    parts += arrow([(R + RW, direct.y + direct.h / 2), (R + RW + 16, direct.y + direct.h / 2),
                    (R + RW + 16, guards.y + 30), (R + RW + 2, guards.y + 30)], dashed=True)
    parts += arrow([(R + RW / 2, guards.bottom), (R + RW / 2, rows.y - 2)])

    head = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-labelledby="title desc">'),
        '<title id="title">stepsync write path</title>',
        ('<desc id="desc">A client UPDATE of public.trees fires t10_set_updated_at and t11_set_updated_at_structure, '
        'then the AFTER triggers t31_sync_on_update, t33_sync_on_settings and t32_sync_on_structure, whose WHEN '
        'clauses decide whether '
        'the write matters; stepsync.tg_trees__sync calls '
        'stepsync._sync (extraction and checks in stepsync._nodes, locks, upsert, retirement) or stepsync._retire; '
        'every write to public.step_library passes t04_check_marker, the t05 guards, t10_set_updated_at '
        'and the search vector triggers.</desc>'),
        ('<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>'),
        f'<rect x="0" y="0" width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>',
        (f'<text x="{L}" y="34" font-family="{SANS}" font-size="18" font-weight="bold" fill="#111">'
        'One publish, from the client\'s UPDATE to the written rows</text>'),
        (f'<text x="{R}" y="34" font-family="{SANS}" font-size="12" fill="#555">'
        'File names are in db/functions/. § numbers: docs/contract.md.</text>'),
    ]
    body = [line for box in boxes for line in box.svg()] + parts
    legend_y = height - 24
    legend = [
        (f'<text x="{L}" y="{legend_y:.0f}" font-family="{SANS}" font-size="12" fill="#555">'
        'Blue: public.trees and its triggers. Violet: the sync, running as the tables\' owner. '
        'Green: public.step_library and its triggers. Dashed: a client writing the library directly.</text>'),
    ]
    return "\n".join(head + body + legend + ["</svg>", ""])


if __name__ == "__main__":
    OUT.write_text(build(), encoding="utf-8")
    print(f"wrote {OUT}")
