"""Ask the lineage store what a version is made of and where it came from (``./factory lineage``, or
``python -m image_factory.lineage.cli``).

It reads the store every factory component writes (``--store`` else ``store_url()``), so an
answer here is the answer the tasks recorded. Every command prints text for people or, with
``--json``, the same facts for scripts; a version it does not know exits 2 with one line on stderr.

There is deliberately no ``lineage/__main__.py``: Airflow's plugin loader imports every module under
plugins/ by its file stem, so a ``__main__.py`` there runs as ``__main__`` inside the scheduler.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from image_factory.lineage.record import FAILED, parent_tag, source_label
from image_factory.lineage.store import LineageError, LineageStore, split_package, summarize

USAGE_ERROR, STORE_ERROR = 2, 1


def label(rec: Mapping[str, Any]) -> str:
    """``image@version``, or the artifact id of a parent the store never recorded."""
    return f"{rec['image']}@{rec['version']}" if rec.get("image") else str(rec["artifact_id"])


def marks(rec: Mapping[str, Any]) -> list[str]:
    """The life-cycle marks of a record (``store.get``) or of a summary row (``summarize``)."""
    out = []
    revoked = rec.get("revoked")
    if isinstance(revoked, Mapping):
        out.append(f"REVOKED {revoked['at']}: {revoked['reason']}")
    elif revoked:
        out.append("REVOKED")
    if rec.get("source_revoked_by"):
        out.append(f"SOURCE REVOKED (by {parent_tag(rec['source_revoked_by'])})")
    if rec.get("deleted_at"):
        out.append(f"DELETED {rec['deleted_at']}")
    elif rec.get("deleted") is True:
        out.append("DELETED")
    return out


def _status(rec: Mapping[str, Any]) -> str:
    return f"{rec['status']} at {rec['failed_task']}" if rec["status"] == FAILED and rec.get("failed_task") else rec["status"]


def _pairs(mapping: Mapping[str, Any], show: Callable[[Any], str]) -> str:
    return ",".join(f"{k}={show(v)}" for k, v in mapping.items()) or "-"


def summary_line(row: Mapping[str, Any]) -> str:
    """One ``summarize`` row: version, status, trigger, regions, smoke, marks."""
    parts = [label(row), row["status"], f"trigger={row['trigger']}",
             f"regions={_pairs(row['regions'], str)}", f"smoke={_pairs(row['smoke'], lambda p: 'pass' if p else 'fail')}"]
    return "  ".join(parts + marks(row))


def source_text(rec: Mapping[str, Any], parent: Mapping[str, Any] | None = None) -> str:
    """The Marketplace image (the concrete version and what was asked for), or the parent version."""
    source = rec.get("source") or {}
    requested = f" (requested {source['requested']})" if source.get("requested") else ""
    if source.get("publisher"):
        return (f"Marketplace {source['publisher']}:{source['offer']}:{source['sku']} "
                f"version {source.get('version')}{requested}")
    if source.get("disk"):
        return f"imported {source_label(source)} from {source.get('host') or 'a worker'}"
    kind = str(source.get("kind") or "image").replace("_", " ")
    known = f"{label(parent)} " if parent and parent.get("image") else ""
    return f"{kind} {known}{rec.get('parent_id') or source.get('id')}{requested}"


def show_text(rec: Mapping[str, Any], ancestors: Sequence[Mapping[str, Any]]) -> list[str]:
    """A version's whole lineage, for people."""
    run = rec["run"]
    lines = [f"{label(rec)}  {_status(rec)}", f"  artifact    {rec['artifact_id']}"]
    lines += [f"  mark        {m}" for m in marks(rec)]
    who = f" by {run['triggered_by']}" if run.get("triggered_by") else ""
    lines.append(f"  run         {run['dag_id']} {run['run_id']} (trigger {run['trigger']}{who})")
    if run.get("reason"):
        lines.append(f"  reason      {run['reason']}")
    lines.append(f"  source      {source_text(rec, ancestors[0] if ancestors else None)}")
    lines.append(f"  git commit  {rec['git_commit']}")
    lines.append(f"  scripts     {len(rec['scripts'])}")
    lines += [f"    {s['path']}  sha256 {s['sha256']}" for s in rec["scripts"]]
    lines.append(f"  packages    {len(rec['packages'])}")
    lines.append(f"  regions     {len(rec['regions'])}")
    for r in rec["regions"]:
        lines.append(f"    {r['name']}  replicas {r.get('replicas')}  {r.get('storage_account_type') or '-'}  "
                     f"{r['state']} {r.get('progress', 0)}%")
    lines.append(f"  smoke       {len(rec['smoke'])} region(s)")
    for s in rec["smoke"]:
        lines.append(f"    {s['region']}  {'pass' if s['passed'] else 'FAIL'}")
        lines += [f"      {'pass' if c['passed'] else 'FAIL'}  {c['name']}" + (f": {' '.join(c['detail'].split())}" if c["detail"] else "")
                  for c in s["checks"]]
    lines.append("  stages      " + (", ".join(f"{name} {seconds:g}s" for name, seconds in rec["stage_seconds"].items())
                                     or "-"))
    chain = " <- ".join([label(rec)] + [label(a) + ("" if a.get("image") else " (not recorded)") for a in ancestors])
    lines.append(f"  ancestors   {chain if ancestors else 'none'}")
    return lines


def tree_item(rec: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """An ancestor or descendant for --json: its summary and depth (a parent never recorded: just its id)."""
    if not rec.get("image"):
        return {"artifact_id": rec["artifact_id"], "recorded": False, "depth": depth}
    return {**summarize([dict(rec)])[0], "recorded": True, "depth": depth}


def tree_line(item: Mapping[str, Any]) -> str:
    indent = "  " * (item["depth"] - 1)
    if not item["recorded"]:
        return f"{indent}{item['artifact_id']}  (not recorded)"
    return f"{indent}{label(item)}  {item['status']}  {item['artifact_id']}" + "".join(f"  {m}" for m in marks(item))


def marketplace_ref(text: str) -> tuple[str, str, str, str | None]:
    parts = text.split(":")
    if len(parts) not in (3, 4) or not all(parts):
        raise LineageError(f"{text!r}: name the Marketplace image as PUBLISHER:OFFER:SKU or PUBLISHER:OFFER:SKU:VERSION")
    return parts[0], parts[1], parts[2], (parts[3] if len(parts) == 4 else None)


# commands: each returns (the --json value, the text lines) ------------------------------------
Result = tuple[Any, list[str]]


def cmd_show(store: LineageStore, args: argparse.Namespace) -> Result:
    rec = store.get(args.ref)
    return rec, show_text(rec, store.ancestors(args.ref))


def cmd_diff(store: LineageStore, args: argparse.Namespace) -> Result:
    a, b = store.get(args.a), store.get(args.b)
    d = store.package_diff(a["artifact_id"], b["artifact_id"])
    out = {"a": a["artifact_id"], "b": b["artifact_id"],
           "added": [{"name": n, "version": v} for n, v in d["added"]],
           "removed": [{"name": n, "version": v} for n, v in d["removed"]],
           "changed": [{"name": n, "old": o, "new": v} for n, o, v in d["changed"]]}
    lines = [f"packages {label(a)} -> {label(b)}: {len(d['added'])} added, {len(d['removed'])} removed, "
             f"{len(d['changed'])} changed"]
    lines += [f"+ {n} {v}" for n, v in d["added"]]
    lines += [f"- {n} {v}" for n, v in d["removed"]]
    lines += [f"~ {n} {o} -> {v}" for n, o, v in d["changed"]]
    return out, lines


def cmd_ancestors(store: LineageStore, args: argparse.Namespace) -> Result:
    items = [tree_item(a, depth) for depth, a in enumerate(store.ancestors(args.ref), start=1)]
    return items, [tree_line(i) for i in items] or [f"{args.ref}: no ancestors (built from a Marketplace image)"]


def cmd_descendants(store: LineageStore, args: argparse.Namespace) -> Result:
    items = [tree_item(d, d["depth"]) for d in store.descendants(args.ref)]
    if not items:
        store.get(args.ref)  # an id neither recorded nor any version's parent is unknown (a parent alone is known)
    return items, [tree_line(i) for i in items] or [f"{args.ref}: no version was built from it"]


def _rows(records: Iterable[dict[str, Any]], empty: str) -> Result:
    rows = summarize(records)
    return rows, [summary_line(r) for r in rows] or [empty]


def cmd_list(store: LineageStore, args: argparse.Namespace) -> Result:
    return _rows(store.versions(args.image), f"no versions recorded{f' for {args.image}' if args.image else ''}")


def cmd_from_marketplace(store: LineageStore, args: argparse.Namespace) -> Result:
    publisher, offer, sku, version = marketplace_ref(args.image)
    return _rows(store.built_from_marketplace(publisher, offer, sku, version), f"no versions built from {args.image}")


def cmd_containing(store: LineageStore, args: argparse.Namespace) -> Result:
    name, version = split_package(args.package)
    if not name:
        raise LineageError(f"{args.package!r}: name the package as PACKAGE or PACKAGE=VERSION")
    found = store.containing(name, version or None)
    rows = summarize(found)
    for row, rec in zip(rows, found, strict=True):
        row["package"] = next(p for p in rec["packages"] if split_package(p)[0] == name)
    return rows, [f"{summary_line(r)}  {r['package']}" for r in rows] or [f"no version contains {args.package}"]


def cmd_revoke(store: LineageStore, args: argparse.Namespace) -> Result:
    """Revoke in Azure and in the store (the same as the revoke_image_version DAG): needs the Azure connection."""
    from image_factory.revocation import check_reason, report_lines, revoke

    check_reason(args.reason)  # before anything is looked up
    report = revoke(args.ref, args.reason, args.conn, store)
    return report, report_lines(report)


COMMANDS: dict[str, Callable[[LineageStore, argparse.Namespace], Result]] = {
    "show": cmd_show, "diff": cmd_diff, "ancestors": cmd_ancestors, "descendants": cmd_descendants,
    "list": cmd_list, "from-marketplace": cmd_from_marketplace, "containing": cmd_containing, "revoke": cmd_revoke,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m image_factory.lineage.cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", metavar="URL", help="SQLAlchemy URL of the lineage store (default: the factory's)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine output")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ref = "IMAGE@VERSION or the version's ARM resource id"
    sub.add_parser("show", parents=[common], help="a version's whole lineage").add_argument("ref", help=ref)
    diff = sub.add_parser("diff", parents=[common], help="package manifest changes from A to B")
    diff.add_argument("a", help=ref)
    diff.add_argument("b", help=ref)
    sub.add_parser("ancestors", parents=[common], help="parent, grandparent, ...").add_argument("ref", help=ref)
    sub.add_parser("descendants", parents=[common], help="every version built from it").add_argument("ref", help=ref)
    sub.add_parser("list", parents=[common], help="one line per version").add_argument("image", nargs="?")
    sub.add_parser("from-marketplace", parents=[common], help="versions built from a Marketplace image").add_argument(
        "image", metavar="PUBLISHER:OFFER:SKU[:VERSION]")
    sub.add_parser("containing", parents=[common], help="versions whose manifest holds a package").add_argument(
        "package", metavar="PACKAGE[=VERSION]")
    revoke = sub.add_parser("revoke", parents=[common], help="exclude from latest, end of life now, flag descendants")
    revoke.add_argument("ref", help=ref)
    revoke.add_argument("--reason", required=True, help="why (recorded on the version and in the store)")
    revoke.add_argument("--conn", default="image_factory_azure",
                        help="Airflow connection id of the Azure subscription (e.g. from AIRFLOW_CONN_IMAGE_FACTORY_AZURE)")
    return p


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from image_factory.hooks.lineage import redacted, store_url

    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    url = args.store or store_url()
    try:
        store = LineageStore(url)
    except (NoSuchModuleError, ImportError) as exc:
        print(f"lineage: the store {redacted(url)} needs a database driver this Python lacks: {exc}", file=err)
        return USAGE_ERROR
    except ArgumentError as exc:  # unparsed: the URL is not echoed, it may hold a password
        print(f"lineage: the store URL is not a SQLAlchemy URL: {exc}", file=err)
        return USAGE_ERROR
    except OperationalError as exc:
        print(f"lineage: cannot open the store {redacted(url)}: {str(exc.orig).strip().splitlines()[0]}", file=err)
        return STORE_ERROR
    try:
        value, lines = COMMANDS[args.command](store, args)
    except (LineageError, ValueError) as exc:  # unknown versions; bad input (revoke: RevocationError)
        print(f"lineage: {exc}", file=err)
        return USAGE_ERROR
    finally:
        store.close()
    if args.json:
        json.dump(value, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
