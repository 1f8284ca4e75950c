"""Model commands: ``orchestrator models``, ``orchestrator models path NAME``,
``orchestrator export-onnx NAME``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.models import ModelManager, registry_from_settings
from orchestrator.models.manager import ONNX_PARTS as PARTS


def cmd_models(args: argparse.Namespace, settings: Any) -> int:
    rows = registry_from_settings(settings).describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        where = r.get("path") or "?"
        status = r["status"] if r["status"] != "error" else f"error: {r.get('error')}"
        print(f"{r['name']:<{width}}  {r.get('format') or '-':<11}  {status:<22}  {where}")
        if r.get("converted"):
            print(f"{'':<{width}}  {'':<11}  {'converted copy':<22}  {r['converted']}")
        if r.get("onnx"):
            print(f"{'':<{width}}  {'':<11}  {'onnx export':<22}  {r['onnx']}")
    return 0


def cmd_models_path(args: argparse.Namespace, settings: Any) -> int:
    reg = registry_from_settings(settings)
    if args.no_build:
        print(reg.resolve(args.name).path)
    else:
        print(ModelManager(reg).resolve(args.name).folder)
    return 0


def cmd_export_onnx(args: argparse.Namespace, settings: Any) -> int:
    from orchestrator.models.onnx import export_onnx

    manager = ModelManager(registry_from_settings(settings))
    parts = tuple(args.parts) if args.parts else None
    out = export_onnx(manager, args.name, parts=parts, opset=args.opset, force=args.force)
    for part, path in out.items():
        print(f"{part:<15} {path}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list the configured models and where each lives")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_models)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    s = msub.add_parser("path", help="print the folder a model is loaded from (building a built-in)")
    s.add_argument("name", help="model name, e.g. tiny-sd")
    s.add_argument("--no-build", action="store_true", help="do not build or convert it, just say where")
    s.set_defaults(handler=cmd_models_path)

    p = sub.add_parser("export-onnx", help="export a model's text encoder, UNet and VAE to ONNX in the cache")
    p.add_argument("name", help="model name, e.g. tiny-sd")
    p.add_argument("--parts", nargs="+", choices=PARTS, help="only these parts (default: all it has)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--force", action="store_true", help="export again even if the files exist")
    p.set_defaults(handler=cmd_export_onnx)
