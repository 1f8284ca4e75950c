"""``orchestrator import-comfy`` and ``orchestrator export-comfy``: ComfyUI workflows in and out.

::

    orchestrator import-comfy workflow.json -o graph.json --model-map v1-5-pruned-emaonly=tiny-sd
    orchestrator import-comfy ComfyUI_00001_.png -o graph.json        # the workflow a PNG carries
    orchestrator export-comfy graph.json -o prompt.json                # back to ComfyUI's API format

``import-comfy`` writes the graph even when some nodes could not be imported, prints
every problem (``[type] message``; warnings too) on stderr and exits 1 when any is an
error. Custom-node mappings come from plugins' ``register_comfy_mappings`` hook.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from graphs import Graph
from graphs.comfy import export_api, import_result, is_error, parse_model_map
from orchestrator.cli.main import CliError, plugin_host
from orchestrator.config import Settings
from orchestrator.plugins import comfy_mappings


def _model_map(items: list[str] | None) -> dict[str, str]:
    try:
        return parse_model_map(items or [])
    except ValueError as exc:
        raise CliError(f"--model-map: {exc}", code=2) from None


def _write(text: str, output: str) -> None:
    if output == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(output).write_text(text + "\n", encoding="utf-8")


def cmd_import_comfy(args: argparse.Namespace, settings: Settings) -> int:
    if not Path(args.file).is_file():
        raise CliError(f"{args.file}: no such file")
    model_map = _model_map(args.model_map)
    host = plugin_host(settings)
    for p in host.problems:
        print(f"warning: {p.message}", file=sys.stderr)
    result = import_result(Path(args.file), catalog=host.catalog, model_map=model_map,
                           extra_mappings=comfy_mappings(host))
    _write(result.graph.to_json(), args.output)
    errors, warnings = result.errors, result.warnings
    where = "stdout" if args.output == "-" else args.output
    print(f"{args.file}: {result.format.upper()}-format workflow ({result.origin}), "
          f"{len(result.prompt)} ComfyUI nodes -> {len(result.graph.nodes)} nodes in {where}; "
          f"{len(errors)} error(s), {len(warnings)} warning(s)", file=sys.stderr)
    if args.json and args.output != "-":
        print(json.dumps({"graph": args.output, "format": result.format, "origin": result.origin,
                          "nodes": len(result.graph.nodes), "valid": not errors,
                          "errors": [e.to_dict() for e in errors],
                          "warnings": [w.to_dict() for w in warnings]}, indent=2))
    else:
        for p in result.problems:
            print(f"  [{p.type}] {p.message}", file=sys.stderr)
    return 1 if any(is_error(p) for p in result.problems) else 0


def cmd_export_comfy(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{args.file}: no such file")
    graph = Graph.from_json(path.read_text(encoding="utf-8"))
    prompt, problems = export_api(graph, _model_map(args.model_map))
    _write(json.dumps(prompt, indent=2), args.output)
    for p in problems:
        print(f"  [{p.type}] {p.message}", file=sys.stderr)
    return 1 if problems else 0


def register(subparsers: Any) -> None:
    """Add ``import-comfy`` and ``export-comfy`` to the ``orchestrator`` command line."""
    p = subparsers.add_parser("import-comfy", help="import a ComfyUI workflow (API or UI JSON, or a PNG)")
    p.add_argument("file", help="ComfyUI workflow: API- or UI-format JSON, or a PNG that carries one")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="graph JSON to write ('-': stdout)")
    p.add_argument("--model-map", action="append", metavar="NAME=OURS",
                   help="map a ComfyUI model/LoRA/embedding file name (or its stem) to ours; repeatable")
    p.add_argument("--json", action="store_true", help="print the result (errors, warnings) as JSON")
    p.set_defaults(handler=cmd_import_comfy)

    p = subparsers.add_parser("export-comfy", help="write a graph as a ComfyUI API-format prompt")
    p.add_argument("file", help="graph JSON file")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="prompt JSON to write ('-': stdout)")
    p.add_argument("--model-map", action="append", metavar="NAME=OURS",
                   help="ComfyUI file name for one of our model names; repeatable")
    p.set_defaults(handler=cmd_export_comfy)
