"""Model commands: ``orchestrator models``, ``orchestrator models path NAME``,
``orchestrator export-onnx NAME``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.models import ModelError, ModelManager, registry_from_settings
from orchestrator.models.manager import ONNX_PARTS as PARTS


def _daemon_loaded(settings: Any) -> set[str] | None:
    """Names the running daemon holds (from its ``GET /models``), or None when none answers."""
    try:
        from orchestrator.client import Client
        from orchestrator.server.daemon import read_info

        if not read_info(settings):
            return None
        with Client(None, token=settings.effective_token(), state_dir=settings.state_dir, timeout=5) as c:
            return {r["name"] for r in c.models() if r.get("loaded")}
    except Exception:  # noqa: BLE001 - the listing works without a daemon
        return None


def size_text(n: int | None) -> str:
    """``1.9 GiB``, ``320 MiB``, ``12 KiB``, ``-``."""
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def cmd_models(args: argparse.Namespace, settings: Any) -> int:
    loaded = _daemon_loaded(settings)
    rows = registry_from_settings(settings).describe(loaded=loaded or ())
    for r in rows:
        if loaded is None:
            r["loaded"] = None  # no daemon answered: nothing is loaded anywhere we can see
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = min(max((len(r["name"]) for r in rows), default=4), 48)
    print(f"{'name':<{width}}  {'kind':<11}  {'family':<13}  {'size':>9}  {'loaded':<6}  "
          f"{'format':<11}  {'status':<22}  where")
    for r in rows:
        where = r.get("path") or "?"
        status = r["status"] if r["status"] != "error" else f"error: {r.get('error')}"
        loaded_text = "-" if r.get("loaded") is None else ("yes" if r["loaded"] else "no")
        print(f"{r['name']:<{width}}  {r.get('kind') or '-':<11}  {r.get('family') or '-':<13}  "
              f"{size_text(r.get('size')):>9}  {loaded_text:<6}  {r.get('format') or '-':<11}  "
              f"{status:<22}  {where}")
        if r.get("converted"):
            print(f"{'':<{width}}  {'':<11}  {'':<13}  {'':>9}  {'':<6}  {'':<11}  {'converted copy':<22}  "
                  f"{r['converted']}")
        if r.get("onnx"):
            print(f"{'':<{width}}  {'':<11}  {'':<13}  {'':>9}  {'':<6}  {'':<11}  {'onnx export':<22}  "
                  f"{r['onnx']}")
    return 0


def cmd_models_path(args: argparse.Namespace, settings: Any) -> int:
    reg = registry_from_settings(settings)
    if args.no_build:
        print(reg.resolve(args.name).path)
    else:
        print(ModelManager(reg).resolve(args.name).folder)
    return 0


def cmd_models_convert(args: argparse.Namespace, settings: Any) -> int:
    """A legacy .ckpt/.pt/.pth file's tensors as .safetensors, read with torch's weights-only loader."""
    from pathlib import Path

    from orchestrator.models.safety import sniff
    from orchestrator.models.single_file import legacy_to_safetensors

    src = Path(args.file).expanduser()
    out = Path(args.output).expanduser() if args.output else src.with_suffix(".safetensors")
    if not src.is_file():
        raise ModelError(f"{str(src)!r} does not exist", reason="missing", path=str(src))
    if out.exists() and not args.force:
        raise ModelError(f"{str(out)!r} exists; pass --force to replace it", reason="exists", path=str(out))
    if sniff(src) == "safetensors":
        raise ModelError(f"{str(src)!r} is already a safetensors file", reason="format", path=str(src))
    legacy_to_safetensors(src, out, src.name, "weights_only")
    print(out)
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
    p = sub.add_parser("models", help="list the configured models and the model-folder files: kind, family, "
                                      "size, whether the daemon holds it, where each lives")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_models)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    s = msub.add_parser("path", help="print the folder a model is loaded from (building a built-in)")
    s.add_argument("name", help="model name, e.g. tiny-sd")
    s.add_argument("--no-build", action="store_true", help="do not build or convert it, just say where")
    s.set_defaults(handler=cmd_models_path)
    s = msub.add_parser("convert", help="write a .ckpt/.pt/.pth checkpoint's tensors as .safetensors, read "
                                         "with torch's weights-only loader (never a full unpickle)")
    s.add_argument("file", help="the legacy checkpoint (weights under state_dict are found)")
    s.add_argument("-o", "--output", help="where to write it (default: FILE with .safetensors)")
    s.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    s.set_defaults(handler=cmd_models_convert)

    p = sub.add_parser("export-onnx", help="export a model's text encoder, UNet and VAE to ONNX in the cache")
    p.add_argument("name", help="model name, e.g. tiny-sd")
    p.add_argument("--parts", nargs="+", choices=PARTS, help="only these parts (default: all it has)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--force", action="store_true", help="export again even if the files exist")
    p.set_defaults(handler=cmd_export_onnx)
