"""The "Golden images" pages of the Airflow UI, rendered from lineage records (pure: records in, HTML out).

The pages are shown in an iframe of the Airflow UI, so they carry everything they need: inline CSS,
the ancestry graph as inline SVG laid out here (generation by generation, left to right), no
JavaScript and no network. Every value from a record is escaped; links are relative to ``base``,
the path the plugin's app is mounted at, so they stay inside the iframe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from image_factory.lineage.record import source_label

Record = Mapping[str, Any]

NODE_W, NODE_H, GAP_X, GAP_Y, PAD, HEAD = 210, 34, 70, 16, 12, 22
LABEL_CHARS = 28
# node state → (fill, stroke): published green, failed red, revoked dark red, flagged orange, gone and unknown grey
COLOURS = {
    "published": ("#dcfce7", "#15803d"),
    "failed": ("#fee2e2", "#b91c1c"),
    "revoked": ("#7f1d1d", "#450a0a"),
    "source-revoked": ("#ffedd5", "#c2410c"),
    "deleted": ("#f3f4f6", "#6b7280"),
    "unrecorded": ("#ffffff", "#9ca3af"),
}
TEXT_COLOURS = {"revoked": "#ffffff"}
SELECTED_STROKE = "#1d4ed8"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#111827;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:24px 0 8px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:4px 0 12px}th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f9fafb}a{color:#1d4ed8}.muted{color:#6b7280}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;margin:1px 2px;font-size:12px;border:1px solid}
.published,.pass,.Completed{background:#dcfce7;border-color:#15803d}.failed,.fail,.Failed{background:#fee2e2;
border-color:#b91c1c}.revoked{background:#7f1d1d;border-color:#450a0a;color:#fff}.source-revoked{background:#ffedd5;
border-color:#c2410c}.deleted,.NotReplicated{background:#f3f4f6;border-color:#6b7280}.Replicating{background:#dbeafe;
border-color:#1d4ed8}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}dd{margin:0}
.graph{overflow-x:auto;border:1px solid #e5e7eb;padding:4px;margin-bottom:12px}code{font-size:12px}
"""


def esc(value: Any) -> str:
    """Text or attribute value, HTML-escaped; None is empty."""
    return "" if value is None else escape(str(value), quote=True)


def label(rec: Record) -> str:
    return f"{rec['image']}@{rec['version']}"


def short_ref(artifact: str) -> str:
    """``definition@version`` of a gallery version id, else the resource's name: for parents the store never recorded."""
    parts = artifact.rstrip("/").split("/")
    if "versions" in parts[:-1]:
        i = len(parts) - 1 - parts[::-1].index("versions")
        return f"{parts[i - 1]}@{parts[i + 1]}"
    return parts[-1]


def version_href(base: str, rec: Record) -> str:
    return f"{base}versions/{quote(str(rec['image']), safe='')}/{quote(str(rec['version']), safe='')}"


def node_state(rec: Record) -> str:
    """What the graph colours: a revocation or a revoked source outranks the status; deletion outranks nothing."""
    if rec.get("recorded") is False:
        return "unrecorded"
    if rec.get("revoked"):
        return "revoked"
    if rec.get("source_revoked_by"):
        return "source-revoked"
    if rec.get("deleted_at"):
        return "deleted"
    return "failed" if rec.get("status") == "failed" else "published"


def marks(rec: Record, names: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(css class, text) of the life-cycle marks the store added: revoked, source revoked, deleted."""
    out = []
    if revoked := rec.get("revoked"):
        out.append(("revoked", f"revoked {revoked.get('at') or ''}: {revoked.get('reason') or ''}".strip()))
    if by := rec.get("source_revoked_by"):
        out.append(("source-revoked", f"source revoked: {(names or {}).get(by) or short_ref(by)}"))
    if rec.get("deleted_at"):
        out.append(("deleted", f"deleted {rec['deleted_at']}"))
    return out


def badge(css: str, text: str) -> str:
    return f'<span class="badge {esc(css)}">{esc(text)}</span>'


# the ancestry graph --------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    key: str  # artifact id
    label: str
    state: str
    href: str | None
    parent: str | None
    generation: int
    row: int


def family(records: Sequence[Record], key: str) -> list[Record]:
    """The records connected to ``key`` through parent links, either way: one lineage tree."""
    parent_of = {r["artifact_id"]: r.get("parent_id") for r in records}
    linked: dict[str, set[str]] = {k: set() for k in parent_of}
    for child, parent in parent_of.items():
        if parent in linked:
            linked[child].add(parent)
            linked[parent].add(child)
    seen, todo = {key}, [key]
    while todo:
        for other in linked.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return [r for r in records if r["artifact_id"] in seen]


def layout(records: Sequence[Record], base: str) -> list[Node]:
    """Nodes by generation (0: built from the Marketplace or from a parent outside the records, drawn as a stub);
    within a generation, children follow their parents' order, then the order they were recorded in."""
    by_key = {r["artifact_id"]: r for r in records}
    stubs = [p for p in dict.fromkeys(r.get("parent_id") for r in records) if p and p not in by_key]
    entries: dict[str, Record] = {**{s: {"artifact_id": s, "recorded": False} for s in stubs}, **by_key}
    generation: dict[str, int] = {}
    for key in entries:
        chain, at = [], key
        while at not in generation:
            chain.append(at)
            parent = entries[at].get("parent_id")
            if not parent or parent not in entries or parent in chain:
                generation[at] = 0
                chain.pop()
                break
            at = parent
        for k in reversed(chain):
            generation[k] = generation[entries[k]["parent_id"]] + 1
    order = {k: i for i, k in enumerate(entries)}
    rows: dict[str, int] = {}
    for g in sorted(set(generation.values())):
        members = [k for k in entries if generation[k] == g]
        members.sort(key=lambda k: (rows.get(entries[k].get("parent_id") or "", -1), order[k]))
        rows.update((k, i) for i, k in enumerate(members))
    nodes = []
    for key, rec in entries.items():
        recorded = rec.get("recorded") is not False
        nodes.append(Node(key=key, label=label(rec) if recorded else short_ref(key), state=node_state(rec),
                          href=version_href(base, rec) if recorded else None,
                          parent=rec.get("parent_id") if rec.get("parent_id") in entries else None,
                          generation=generation[key], row=rows[key]))
    return nodes


def _fit(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def ancestry_svg(records: Sequence[Record], *, base: str, selected: str | None = None,
                 line: Iterable[str] = ()) -> str:
    """The lineage as inline SVG: a box per version (``image@version``, coloured by state, a link to its page),
    an arrow from each parent to its child. With ``selected``, that version is outlined and everything off
    its line (``line``: its ancestors and descendants) is dimmed."""
    nodes = layout(records, base)
    if not nodes:
        return '<p class="muted">No versions recorded yet.</p>'
    on_line = set(line) | ({selected} if selected else set())
    at = {n.key: n for n in nodes}

    def x(n: Node) -> int:
        return PAD + n.generation * (NODE_W + GAP_X)

    def y(n: Node) -> int:
        return PAD + HEAD + n.row * (NODE_H + GAP_Y)

    def dim(key: str) -> bool:
        return bool(selected) and key not in on_line

    width = PAD * 2 + (max(n.generation for n in nodes) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + HEAD + (max(n.row for n in nodes) + 1) * (NODE_H + GAP_Y) - GAP_Y
    title = f"Ancestry of {at[selected].label}" if selected in at else "Ancestry of every recorded version"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ancestry" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>']
    for g in sorted({n.generation for n in nodes}):
        out.append(f'<text x="{PAD + g * (NODE_W + GAP_X)}" y="{PAD + 12}" font-size="12" fill="#6b7280">'
                   f'generation {g}</text>')
    for n in nodes:
        if n.parent is None:
            continue
        p = at[n.parent]
        x1, y1, x2, y2 = x(p) + NODE_W, y(p) + NODE_H // 2, x(n), y(n) + NODE_H // 2
        mid = (x1 + x2) // 2
        opacity = "0.25" if dim(n.key) or dim(p.key) else "1"
        out.append(f'<path class="edge" data-from="{esc(p.label)}" data-to="{esc(n.label)}" '
                   f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#6b7280" '
                   f'stroke-width="1.5" opacity="{opacity}" marker-end="url(#arrow)"/>')
    for n in nodes:
        fill, stroke = COLOURS[n.state]
        chosen = n.key == selected
        classes = " ".join(["node", n.state] + (["selected"] if chosen else []) + (["dimmed"] if dim(n.key) else []))
        dash = ' stroke-dasharray="5,3"' if n.state in ("unrecorded", "deleted") else ""
        box = (f'<g class="{classes}" data-node="{esc(n.label)}" data-artifact="{esc(n.key)}" data-state="{n.state}" '
               f'opacity="{"0.35" if dim(n.key) else "1"}"><title>{esc(n.label)} ({n.state})</title>'
               f'<rect x="{x(n)}" y="{y(n)}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
               f'stroke="{SELECTED_STROKE if chosen else stroke}" stroke-width="{3 if chosen else 1.5}"{dash}/>'
               f'<text x="{x(n) + NODE_W // 2}" y="{y(n) + NODE_H // 2 + 4}" text-anchor="middle" font-size="12" '
               f'fill="{TEXT_COLOURS.get(n.state, "#111827")}">{esc(_fit(n.label))}</text></g>')
        out.append(f'<a href="{esc(n.href)}" aria-label="{esc(n.label)}">{box}</a>' if n.href else box)
    out.append("</svg>")
    return "".join(out)


# the pages -----------------------------------------------------------------------------------
def document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _regions_cell(rec: Record) -> str:
    return " ".join(badge(str(g.get("state")), f"{g['name']}: {g.get('state')} (replicas {g.get('replicas') or '?'})")
                    for g in rec.get("regions") or []) or '<span class="muted">none</span>'


def _smoke_cell(rec: Record) -> str:
    return " ".join(badge("pass" if s["passed"] else "fail", f"{s['region']}: {'pass' if s['passed'] else 'fail'}")
                    for s in rec.get("smoke") or []) or '<span class="muted">not run</span>'


def _trigger(rec: Record) -> str:
    run = rec.get("run") or {}
    by = f" by {run['triggered_by']}" if run.get("triggered_by") else ""
    return f"{run.get('trigger') or '?'}{by}"


def _names(records: Iterable[Record]) -> dict[str, str]:
    return {r["artifact_id"]: label(r) for r in records}


def _parent_cell(rec: Record, by_key: Mapping[str, Record], base: str) -> str:
    parent = rec.get("parent_id")
    if not parent:
        return esc(source_label(rec.get("source") or {}))
    known = by_key.get(parent)
    if known is None:
        return f'{esc(short_ref(parent))} <span class="muted">(unrecorded)</span>'
    return f'<a href="{esc(version_href(base, known))}">{esc(label(known))}</a>'


def gallery_key(rec: Record) -> tuple[str, str]:
    """(gallery, definition) a version belongs to; a managed image only is grouped under its image name."""
    g = rec.get("gallery") or {}
    if g.get("name"):
        return f"{g.get('resource_group')}/{g['name']}", str(g.get("definition") or rec["image"])
    return "no gallery (managed images)", str(rec["image"])


def versions_table(records: Sequence[Record], by_key: Mapping[str, Record], base: str) -> str:
    names = _names(by_key.values())
    rows = []
    for r in records:
        flags = " ".join(badge(css, text) for css, text in marks(r, names)) or '<span class="muted">—</span>'
        rows.append(
            f'<tr data-version="{esc(label(r))}"><td><a href="{esc(version_href(base, r))}">{esc(r["version"])}</a></td>'
            f'<td>{badge(str(r["status"]), str(r["status"]))}</td><td>{esc(_trigger(r))}</td>'
            f'<td>{esc(r.get("recorded_at"))}</td><td>{_regions_cell(r)}</td><td>{_smoke_cell(r)}</td>'
            f"<td>{flags}</td><td>{_parent_cell(r, by_key, base)}</td></tr>")
    return ('<table class="versions"><thead><tr><th>Version</th><th>Status</th><th>Trigger</th><th>Recorded</th>'
            "<th>Regions</th><th>Smoke</th><th>Marks</th><th>Built from</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def overview_page(records: Sequence[Record], *, base: str) -> str:
    """Galleries → image definitions → their versions, newest first; then the ancestry of every version."""
    by_key = {r["artifact_id"]: r for r in records}
    grouped: dict[str, dict[str, list[Record]]] = {}
    for r in records:
        gallery, definition = gallery_key(r)
        grouped.setdefault(gallery, {}).setdefault(definition, []).append(r)
    parts = ["<h1>Golden images</h1>",
             f'<p class="muted">{len(records)} versions in {len(grouped)} galleries, from the lineage store.</p>']
    for gallery in sorted(grouped):
        parts.append(f'<section class="gallery" data-gallery="{esc(gallery)}"><h2>Gallery {esc(gallery)}</h2>')
        for definition in sorted(grouped[gallery]):
            versions = list(reversed(grouped[gallery][definition]))
            parts.append(f'<h3>Image definition {esc(definition)}</h3>')
            parts.append(versions_table(versions, by_key, base))
        parts.append("</section>")
    if not records:
        parts.append('<p class="muted">No version has been recorded yet: a golden-image run records one as it ends.</p>')
    parts.append(f'<h2>Ancestry</h2><div class="graph">{ancestry_svg(records, base=base)}</div>')
    return document("Golden images", "".join(parts))


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], css: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    heads = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f'<table class="{css}"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>'


def _links(records: Iterable[Record], base: str) -> str:
    items = [f'<li><a href="{esc(version_href(base, r))}">{esc(label(r))}</a>'
             + (f' <span class="muted">(generation +{r["depth"]})</span>' if r.get("depth") else "") + "</li>"
             if r.get("recorded") is not False else
             f'<li>{esc(short_ref(r["artifact_id"]))} <span class="muted">(unrecorded)</span></li>'
             for r in records]
    return f"<ul>{''.join(items)}</ul>" if items else '<p class="muted">none</p>'


def detail_page(rec: Record, *, ancestors: Sequence[Record], descendants: Sequence[Record],
                records: Sequence[Record], base: str) -> str:
    """One version: its facts, marks, ancestry graph (its lineage tree, its line highlighted), regions, smoke
    checks, scripts, package count and stage timings."""
    by_key = {r["artifact_id"]: r for r in records}
    names = _names(records)
    run = rec.get("run") or {}
    source = rec.get("source") or {}
    facts = [
        ("Status", badge(str(rec["status"]), str(rec["status"]))
         + (f' <span class="muted">stopped at {esc(rec["failed_task"])}</span>' if rec.get("failed_task") else "")),
        ("Marks", " ".join(badge(css, text) for css, text in marks(rec, names)) or "—"),
        ("Version id", f'<code>{esc(rec.get("version_id") or rec.get("managed_image_id") or rec["artifact_id"])}</code>'),
        ("Gallery", esc(" / ".join(gallery_key(rec)))),
        ("OS", esc(f"{rec.get('os_type') or '?'} ({rec.get('os_state') or '?'})")),
        ("Built from", _parent_cell(rec, by_key, base)
         + (f' <span class="muted">requested {esc(source["requested"])}</span>' if source.get("requested") else "")),
        ("Trigger", esc(_trigger(rec))),
        ("Run", f'<code>{esc(run.get("dag_id"))} / {esc(run.get("run_id"))}</code>'),
        ("Reason", esc(run.get("reason") or "—")),
        ("Recorded", esc(rec.get("recorded_at"))),
        ("Git commit", f'<code>{esc(rec.get("git_commit"))}</code>'),
        ("End of life", esc(rec.get("end_of_life") or "—")),
        ("Packages", f'<span class="package-count">{len(rec.get("packages") or [])}</span> in the manifest'),
    ]
    tree = family(records, rec["artifact_id"]) or [rec]
    line = [a["artifact_id"] for a in ancestors] + [d["artifact_id"] for d in descendants]
    regions = [(esc(g["name"]), esc(g.get("replicas")), esc(g.get("storage_account_type")),
                badge(str(g.get("state")), str(g.get("state"))), esc(f"{g.get('progress', 0)} %"))
               for g in rec.get("regions") or []]
    smoke = [(esc(s["region"]), badge("pass" if s["passed"] else "fail", "pass" if s["passed"] else "fail"),
              "<br>".join(f'{badge("pass" if c["passed"] else "fail", "pass" if c["passed"] else "fail")} '
                          f'{esc(c["name"])} <span class="muted">{esc(c.get("detail"))}</span>'
                          for c in s.get("checks") or []))
             for s in rec.get("smoke") or []]
    scripts = [(f"<code>{esc(s['path'])}</code>", f"<code>{esc(str(s['sha256'])[:16])}…</code>")
               for s in rec.get("scripts") or []]
    timings = [(esc(name), esc(f"{float(sec):.1f} s")) for name, sec in (rec.get("stage_seconds") or {}).items()]
    body = [
        f'<p><a href="{esc(base)}">← Golden images</a></p><h1>{esc(label(rec))}</h1>',
        "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>",
        f'<h2>Ancestry</h2><div class="graph">{ancestry_svg(tree, base=base, selected=rec["artifact_id"], line=line)}</div>',
        f"<h3>Ancestors</h3>{_links(ancestors, base)}<h3>Descendants</h3>{_links(descendants, base)}",
        "<h2>Regions</h2>" + _table(["Region", "Replicas", "Storage", "Replication", "Progress"], regions, "regions"),
        "<h2>Smoke tests</h2>" + (_table(["Region", "Result", "Checks"], smoke, "smoke") if smoke
                                  else '<p class="muted">No smoke test ran.</p>'),
        "<h2>Scripts</h2>" + (_table(["Script", "sha256"], scripts, "scripts") if scripts
                              else '<p class="muted">No customisation script.</p>'),
        "<h2>Stage timings</h2>" + (_table(["Stage", "Time"], timings, "timings") if timings
                                    else '<p class="muted">No timings recorded.</p>'),
    ]
    return document(f"{label(rec)} — Golden images", "".join(body))


def not_found_page(ref: str, reason: str, *, base: str) -> str:
    return document("Not found — Golden images",
                    f'<p><a href="{esc(base)}">← Golden images</a></p><h1>No such version</h1>'
                    f"<p>{esc(ref)}: {esc(reason)}</p>")
