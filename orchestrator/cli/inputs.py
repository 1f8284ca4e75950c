"""``orchestrator upload FILE...``: put images and masks in the daemon's input folder.

Prints one stored name per file (what a graph's ``image.load`` ``path`` takes); the
names derive from the content, so uploading the same file again prints the same name.
:func:`upload_graph_inputs` is what ``orchestrator submit --graph g.json`` uses to upload
the files a graph names relative to its own file and point the graph at them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.state.input_paths import INPUT_FILE_KEY


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli.main import CliError
    from orchestrator.client import Client

    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise CliError(f"no such file: {', '.join(missing)}")
    out = []
    with Client(args.url, token=settings.effective_token(), state_dir=settings.state_dir) as client:
        for f in args.files:
            info = client.upload_info(f, subfolder=args.subfolder)
            out.append({"file": f, **info})
            if not args.json:
                print(info["name"])
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


def input_params(blocks: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``{block id: [params that name input files]}`` from the daemon's block catalog."""
    out: dict[str, list[str]] = {}
    for b in blocks:
        props = (b.get("params") or {}).get("properties") or {}
        names = [k for k, v in props.items() if isinstance(v, dict) and v.get(INPUT_FILE_KEY)]
        if names:
            out[b["id"]] = names
    return out


def upload_graph_inputs(client: Any, graph: dict[str, Any], base: Path) -> list[dict[str, str]]:
    """Upload the files ``graph`` names relative to ``base`` (its file's folder) and point the
    params at the stored names, in place; returns ``{node, field, file, name}`` per upload.

    The files are the user's own (read by this client, relative to the graph or absolute);
    the daemon only ever sees the stored names. A name that is not such a file is left as
    it is (it may already be in the input folder); the daemon checks it either way.
    """
    files = input_params(client.blocks())
    done: dict[Path, str] = {}
    out = []
    for node_id, node in (graph.get("nodes") or {}).items():
        if not isinstance(node, dict):
            continue
        params = node.get("params") or {}
        for param in files.get(node.get("block", ""), []):
            value = params.get(param)
            if not isinstance(value, str) or not value or "\x00" in value:
                continue
            local = (base / Path(value).expanduser()).resolve()  # the user's own files
            if not local.is_file():
                continue
            if local not in done:
                done[local] = client.upload(local)
            params[param] = done[local]
            out.append({"node": node_id, "field": f"params.{param}", "file": value,
                        "name": done[local]})
    return out


def register(subparsers: Any) -> None:
    """Add ``upload``."""
    p = subparsers.add_parser("upload", help="put images or masks in the daemon's input folder; "
                                             "prints the stored names")
    p.add_argument("files", nargs="+", metavar="FILE", help="image or mask files (PNG, JPEG, WebP, ...)")
    p.add_argument("--subfolder", help="store them in this folder of the input folder")
    p.add_argument("--json", action="store_true", help="print name, size, width, height, format")
    p.add_argument("--url", help="daemon URL (default: from the state directory)")
    p.set_defaults(handler=cmd_upload)


def report_uploads(uploads: list[dict[str, str]]) -> None:
    """One line per file ``submit`` uploaded, on stderr."""
    for u in uploads:
        print(f"uploaded {u['file']} for {u['node']}.{u['field']}: {u['name']}", file=sys.stderr)
