"""Measure how a corpus of ComfyUI workflows imports: clean, approximated or failed, by file and by class.

    .venv/bin/python scripts/comfy_corpus.py [DIR ...] [--format ui|api|both] [--json]

``DIR`` (default ``tests/data/comfy/official``, the official SD-family workflows) is searched
for ``*.json`` and ``*.png`` files; a file whose name ends in ``_api.json`` is the API-format
twin of the UI-format file beside it (``--format`` picks which are counted; ``both`` counts
each separately). Every file is imported against this project's plugins (their blocks and
ComfyUI mappings), with no model map: model names that are not mapped (``unmapped_model``) are
set aside, as the measure of issue 21 says. A file is

- ``clean``: no other problem at all;
- ``approximated``: warnings only (an approximation: what runs is not exactly what ComfyUI runs);
- ``failed``: at least one error (a node left out, a class without a mapping, a graph that does
  not validate).

The report lists each file with its status and its problems, then the ComfyUI classes that
failed or were approximated, with the files each one costs. It needs no tests and no models.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from graphs.comfy import import_result, is_error  # noqa: E402
from graphs.errors import GraphError  # noqa: E402

SET_ASIDE = frozenset({"unmapped_model"})
DEFAULT_DIR = ROOT / "tests" / "data" / "comfy" / "official"


@dataclass
class FileResult:
    """One workflow file's import."""

    path: str
    format: str
    status: str  # clean, approximated, failed
    problems: list[dict[str, Any]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # the ComfyUI classes its problems name


def workflow_files(dirs: list[Path], fmt: str) -> list[Path]:
    """The workflow files under ``dirs`` of format ``fmt`` (``ui``, ``api`` or ``both``), sorted."""
    found: list[Path] = []
    for d in dirs:
        paths = [d] if d.is_file() else sorted([*d.rglob("*.json"), *d.rglob("*.png")])
        for p in paths:
            api = p.name.endswith("_api.json")
            if fmt == "both" or (fmt == "api") == api or p.suffix == ".png":
                found.append(p)
    return found


def _class_of(problem: GraphError, prompt: dict[str, Any]) -> str | None:
    """The ComfyUI class a problem is about; None for a node left out only because its input was."""
    d = problem.to_dict()
    if d.get("type") == "dropped_node" and d.get("upstream"):
        return None
    if d.get("type") == "unsupported_node" and d.get("value"):
        return str(d["value"])
    node = d.get("node")
    if node is not None and str(node) in prompt:
        return prompt[str(node)].class_type
    return None


def measure_file(path: Path, catalog: Any, mappings: list[Any] | None = None) -> FileResult:
    """Import ``path`` against ``catalog`` (with the plugins' ComfyUI ``mappings``) and classify it."""
    fmt = "api" if path.name.endswith("_api.json") else "ui"
    try:
        result = import_result(path, catalog, extra_mappings=mappings)
    except (GraphError, ValueError, OSError) as exc:  # not a workflow at all, or not readable
        problem = {"type": type(exc).__name__, "message": str(exc), "severity": "error"}
        return FileResult(str(path), fmt, "failed", [problem], ["<file>"])
    problems = [p for p in result.problems if p.to_dict().get("type") not in SET_ASIDE]
    status = "clean"
    if any(is_error(p) for p in problems):
        status = "failed"
    elif problems:
        status = "approximated"
    classes = sorted({c for p in problems if (c := _class_of(p, result.prompt)) is not None})
    dicts = [{**p.to_dict(), "severity": "error" if is_error(p) else "warning"} for p in problems]
    return FileResult(str(path), result.format, status, dicts, classes)


def measure(dirs: list[Path], fmt: str = "ui") -> list[FileResult]:
    """Every workflow under ``dirs``, measured against this project's plugins (blocks and mappings)."""
    from orchestrator.plugins import comfy_mappings, load_plugins

    host = load_plugins(entry_points=False)
    mappings = comfy_mappings(host)
    return [measure_file(p, host.catalog, mappings) for p in workflow_files(dirs, fmt)]


def summary(results: list[FileResult]) -> dict[str, Any]:
    """Counts by status, the share that is clean, and the files each ComfyUI class costs."""
    counts = {s: sum(r.status == s for r in results) for s in ("clean", "approximated", "failed")}
    by_class: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"failed": [], "approximated": []})
    for r in results:
        if r.status == "clean":
            continue
        for c in r.classes:
            worst = "failed" if any(p["severity"] == "error" and _names(p, c) for p in r.problems) \
                else "approximated"
            by_class[c][worst].append(r.path)
    total = len(results)
    return {"files": total, **counts, "clean_share": round(counts["clean"] / total, 4) if total else 0.0,
            "classes": {c: v for c, v in sorted(by_class.items(), key=lambda kv: (-len(kv[1]["failed"]),
                                                                                 -len(kv[1]["approximated"]),
                                                                                 kv[0]))}}


def _names(problem: dict[str, Any], cls: str) -> bool:
    return problem.get("value") == cls or f"({cls})" in str(problem.get("message", ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=[DEFAULT_DIR], help="folders or files of workflows")
    ap.add_argument("--format", choices=("ui", "api", "both"), default="ui",
                    help="which files count: UI format, API format (*_api.json), or both")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every problem of every file")
    args = ap.parse_args(argv)
    for d in args.dirs:
        if not d.exists():
            ap.error(f"{d}: no such file or folder")
    results = measure(list(args.dirs), args.format)
    report = summary(results)
    if args.json:
        print(json.dumps({"summary": report, "files": [asdict(r) for r in results]}, indent=1))
        return 0
    base = args.dirs[0] if args.dirs[0].is_dir() else args.dirs[0].parent
    for r in results:
        name = str(Path(r.path).relative_to(base)) if Path(r.path).is_relative_to(base) else r.path
        print(f"{r.status:<13} {name}" + (f"  [{', '.join(r.classes)}]" if r.classes else ""))
        if args.verbose:
            for p in r.problems:
                print(f"    {p['severity']}: {p.get('type')}: {p.get('message')}")
    print(f"\n{report['clean']}/{report['files']} clean ({report['clean_share']:.1%}), "
          f"{report['approximated']} approximated, {report['failed']} failed")
    if report["classes"]:
        print("\nclasses (files failed / approximated):")
        for cls, v in report["classes"].items():
            print(f"  {cls:<32} {len(v['failed']):>3} / {len(v['approximated'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
