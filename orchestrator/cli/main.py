"""The ``orchestrator`` command line.

Every command exits 0 on success, 1 when the input is bad or a run fails (with the
structured errors, as JSON with ``--json``), 2 on usage errors; never with a traceback
unless ``--debug`` is given.

Commands from other modules plug in through ``COMMAND_MODULES``: each module has a
``register(subparsers)`` that adds its parsers with ``set_defaults(handler=fn)``, where
``fn(args, settings) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphs import Graph, GraphError, GraphValidationError, check_document
from orchestrator import __version__
from orchestrator.cli.progress import Progress
from orchestrator.client import ClientError
from orchestrator.config import ConfigError, Settings, load_settings
from orchestrator.errors import BlockError, JobError
from orchestrator.plugins import PluginHost, plugin_host_from_settings

# modules that add sub-commands: each has register(subparsers)
COMMAND_MODULES: tuple[str, ...] = (
    "orchestrator.cli.daemon",
    "orchestrator.cli.agent",
    "orchestrator.cli.models",
    "orchestrator.cli.comfy",
    "orchestrator.cli.inputs",
    "orchestrator.cli.bench",
)


class CliError(Exception):
    """A bad command line or input file: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.code = code
        self.errors = errors or []


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def plugin_host(settings: Settings) -> PluginHost:
    """The plugin host ``settings`` describe (see :func:`orchestrator.plugins.plugin_host_from_settings`)."""
    return plugin_host_from_settings(settings)[0]


def _report_plugin_problems(host: Any) -> None:
    for p in host.problems:
        print(f"warning: {p.message}", file=sys.stderr)


def _read_graph_file(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{path}: no such file", code=1)
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}", code=1) from None


# -- commands --------------------------------------------------------------------------------


def cmd_blocks(args: argparse.Namespace, settings: Settings) -> int:
    host = plugin_host(settings)
    _report_plugin_problems(host)
    if args.json:
        _print_json(host.catalog.to_json())
        return 0
    for spec in host.catalog.values():
        ins = ", ".join(f"{p.name}:{p.type}{'?' if p.optional else ''}" for p in spec.inputs)
        outs = ", ".join(f"{p.name}:{p.type}" for p in spec.outputs)
        first = spec.description.splitlines()[0] if spec.description else ""
        print(f"{spec.id:<24} {spec.version:<8} ({ins}) -> ({outs})  [{spec.plugin}]")
        if first:
            print(f"{'':<24} {first}")
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    host = plugin_host(settings)
    _report_plugin_problems(host)
    graph, errors = check_document(_read_graph_file(args.file), host.catalog)
    if errors:
        if args.json or not sys.stdout.isatty():
            _print_json({"valid": False, "errors": [e.to_dict() for e in errors]})
        else:
            print(f"{args.file}: {len(errors)} problem(s)")
            for e in errors:
                print(f"  [{e.type}] {e.message}")
        return 1
    assert graph is not None
    if args.json:
        _print_json({"valid": True, "nodes": len(graph.nodes), "errors": []})
    else:
        print(f"{args.file}: valid ({len(graph.nodes)} nodes)")
    return 0


def _apply_overrides(graph: Graph, sets: Sequence[str]) -> None:
    for item in sets:
        target, sep, raw = item.partition("=")
        node_id, dot, param = target.partition(".")
        if not sep or not dot or not param:
            raise CliError(f"--set {item!r}: expected NODE.PARAM=VALUE", code=2)
        if node_id not in graph.nodes:
            raise CliError(f"--set {item!r}: no node {node_id!r} in the graph", code=1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        graph.nodes[node_id].params[param] = value


def _graph_from_png(path: str) -> str:
    from PIL import Image, UnidentifiedImageError

    from orchestrator.state.outputs import GRAPH_CHUNK

    try:
        with Image.open(path) as img:
            text = getattr(img, "text", {}).get(GRAPH_CHUNK)
    except (OSError, UnidentifiedImageError) as exc:
        raise CliError(f"{path}: not a readable image: {exc}") from None
    if not text:
        raise CliError(f"{path}: carries no orchestrator graph (no {GRAPH_CHUNK!r} text chunk)")
    return str(text)


def _plan_prompt(args: argparse.Namespace, settings: Settings, host: Any) -> Graph:
    """Plan a graph for a prompt with the agent (offline unless --llm), reporting on stderr."""
    from agents.daemon import make_planner
    from orchestrator.agent_context import image_size_reader, input_files, limits_check, model_library

    try:
        inputs = input_files(args.input)
    except ValueError as exc:
        raise CliError(str(exc), code=2) from None
    options = {"llm": args.llm, "seed": args.seed, "width": args.width, "height": args.height,
               "inputs": inputs or None}
    planner = make_planner(settings, host, models=model_library(settings, trusted=True),
                           limits=limits_check(settings, host.catalog),
                           image_size=image_size_reader(settings, confined=False))
    doc, rounds = planner(args.prompt, {k: v for k, v in options.items() if v is not None})
    meta = doc.get("meta", {}).get("agent", {})
    if not args.quiet:
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels = sorted({v for vs in labels.values() for v in (vs if isinstance(vs, list) else [vs])})
        print(f"planned: template {meta.get('template')!r}, labels {labels}, "
              f"{len(rounds)} round(s)", file=sys.stderr)
    return Graph.from_dict(doc)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.runtime.engine import model_provider
    from orchestrator.runtime.executor import LocalExecutor

    host = plugin_host(settings)
    _report_plugin_problems(host)
    if sum(x is not None for x in (args.prompt, args.graph, args.from_png)) != 1:
        raise CliError("give a PROMPT, --graph FILE or --from-png FILE", code=2)
    out_dir = Path(args.output)
    if args.prompt is not None:
        graph = _plan_prompt(args, settings, host)
        out_dir.mkdir(parents=True, exist_ok=True)
        graph.dump(out_dir / "graph.json")
    else:
        source = _read_graph_file(args.graph) if args.graph else _graph_from_png(args.from_png)
        graph = Graph.from_json(source)
    _apply_overrides(graph, args.set or [])
    if settings.model_files.allow_paths is None:  # the user's own graph, in process: model paths are fine
        files = settings.model_files.model_copy(update={"allow_paths": True})
        settings = settings.model_copy(update={"model_files": files})
    input_root = settings.input_dir or Path(args.graph or args.from_png or ".").resolve().parent
    if args.variations < 1:
        raise CliError(f"--variations must be at least 1, got {args.variations}", code=2)
    if args.variations > 1:
        return _run_variations(args, settings, host, graph, out_dir, input_root)
    executor = LocalExecutor(
        host.catalog,
        models=model_provider(settings),
        outputs_dir=out_dir,
        input_root=input_root,
        device=settings.resolved_device(),
    )

    progress = Progress()

    def on_event(event: dict[str, Any]) -> None:
        if not args.quiet:
            progress.show(event)

    result = executor.run(graph, on_event=on_event)
    if args.json:
        _print_json({"files": result.files, "timings": result.timings})
    else:
        for f in result.files:
            print(f["path"])
    return 0


def _run_variations(args: argparse.Namespace, settings: Settings, host: Any, graph: Graph, out_dir: Path,
                    input_root: Path) -> int:
    """``run --variations N``: N copies of the graph with seeds s, s+1, ... (``--seed`` or each
    node's own), run at once in this process so that their denoise steps batch ([batching]);
    each one's outputs in ``OUT/variation-K``."""
    import threading

    from orchestrator.client import seed_variations
    from orchestrator.runtime.batching import Batching
    from orchestrator.runtime.engine import model_provider
    from orchestrator.runtime.executor import LocalExecutor

    seeded = {b for b in host.catalog if "seed" in host.catalog[b].params_schema().get("properties", {})}
    docs = seed_variations(graph, args.variations, seeded, args.seed)
    models, batching = model_provider(settings), Batching.from_settings(settings)
    results: list[Any] = [None] * len(docs)

    def one(k: int) -> None:
        executor = LocalExecutor(host.catalog, models=models, outputs_dir=out_dir / f"variation-{k + 1}",
                                 input_root=input_root, device=settings.resolved_device(), batching=batching)
        try:
            results[k] = executor.run(Graph.from_dict(docs[k]))
        except Exception as exc:  # noqa: BLE001 - reported below, with the variation's number
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,), name=f"variation-{k + 1}") for k in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [(k, r) for k, r in enumerate(results) if isinstance(r, BaseException)]
    if args.json:
        _print_json([{"variation": k + 1, "error": r.to_dict() if hasattr(r, "to_dict") else str(r)}
                     if isinstance(r, BaseException) else
                     {"variation": k + 1, "files": r.files, "timings": r.timings}
                     for k, r in enumerate(results)])
    else:
        for r in results:
            if not isinstance(r, BaseException):
                for f in r.files:
                    print(f["path"])
    for k, exc in failed:
        print(f"variation {k + 1}: {exc}", file=sys.stderr)
    if not args.quiet:
        stats = batching.stats()
        print(f"{len(docs) - len(failed)}/{len(docs)} variations; {stats['calls']} UNet calls ran as "
              f"{stats['batches']}", file=sys.stderr)
    return 1 if failed else 0


def cmd_plugins(args: argparse.Namespace, settings: Settings) -> int:
    host = plugin_host(settings)
    if args.json:
        _print_json({"plugins": [p.to_dict() for p in host.plugins.values()],
                     "problems": [p.to_dict() for p in host.problems]})
        return 0
    for info in host.plugins.values():
        state = "ok" if info.loaded else "FAILED"
        print(f"{info.name:<24} {state:<7} {len(info.blocks):>3} blocks  ({info.source}: {info.module})")
    for p in host.problems:
        print(f"problem: {p.message}")
    return 0


def cmd_templates(args: argparse.Namespace, settings: Settings) -> int:
    host = plugin_host(settings)
    if args.json:
        _print_json([t.summary() for t in host.templates.values()])
        return 0
    for t in host.templates.values():
        labels = ", ".join(v for vs in t.labels.values() for v in vs)
        print(f"{t.name:<16} {t.description.split('.')[0]}.  [{labels}]")
    return 0


def cmd_graph_render(args: argparse.Namespace, settings: Settings) -> int:
    from graphs.render import to_png, to_svg

    host = plugin_host(settings)
    graph = Graph.from_json(_read_graph_file(args.file))
    out = Path(args.output)
    title = args.title or graph.meta.get("name") or Path(args.file).stem
    if out.suffix.lower() == ".svg":
        out.write_text(to_svg(graph, host.catalog, title=title), encoding="utf-8")
    elif out.suffix.lower() == ".png":
        out.write_bytes(to_png(graph, host.catalog, title=title))
    else:
        raise CliError(f"-o {args.output}: the picture must be .svg or .png", code=2)
    print(out)
    return 0


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(settings.show())
    return 0


# -- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Local orchestration daemon for generative-image workflows.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    parser.add_argument("--state-dir", metavar="DIR", help="state directory")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("blocks", help="list the block catalog")
    p.add_argument("--json", action="store_true", help="the catalog as JSON")
    p.set_defaults(handler=cmd_blocks)

    p = sub.add_parser("validate", help="check a graph file; exit 1 with every problem")
    p.add_argument("file", help="graph JSON file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("run", help="run a prompt or a graph in this process and write its outputs")
    p.add_argument("prompt", nargs="?", help="a text prompt: the agent plans the graph")
    p.add_argument("--graph", metavar="FILE", help="graph JSON file")
    p.add_argument("--llm", help="litellm model string for planning (default: the offline planner)")
    p.add_argument("--seed", type=int, help="seed for a planned graph")
    p.add_argument("--width", type=int, help="width for a planned graph")
    p.add_argument("--height", type=int, help="height for a planned graph")
    p.add_argument("--input", action="append", metavar="ROLE=FILE",
                   help="a planned graph's input by role: image, mask, style, palette, reference, control")
    p.add_argument("--from-png", dest="from_png", metavar="FILE",
                   help="re-run the graph embedded in a PNG this project wrote")
    p.add_argument("-o", "--output", default="outputs", metavar="DIR", help="output folder")
    p.add_argument("--set", action="append", metavar="NODE.PARAM=VALUE",
                   help="override a param (VALUE is JSON, else a string); repeatable")
    p.add_argument("--json", action="store_true", help="print files and timings as JSON")
    p.add_argument("--variations", type=int, default=1, metavar="N",
                   help="run N copies that differ in their seeds (--seed or each node's own, +1 each) "
                        "at once, their denoise steps batched; outputs in OUT/variation-K")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("plugins", help="list plugins and their problems")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("templates", help="list workflow templates")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_templates)

    p = sub.add_parser("graph", help="work with graph files")
    gsub = p.add_subparsers(dest="graph_command", metavar="ACTION")
    g = gsub.add_parser("render", help="draw a graph as SVG or PNG, left to right")
    g.add_argument("file", help="graph JSON file")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="graph.svg or graph.png")
    g.add_argument("--title", help="a title above the picture")
    g.set_defaults(handler=cmd_graph_render)

    p = sub.add_parser("config", help="settings")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    c = csub.add_parser("show", help="print the effective settings")
    c.set_defaults(handler=cmd_config_show)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        overrides = {"state_dir": args.state_dir} if args.state_dir else {}
        settings = load_settings(config_file=args.config or True, overrides=overrides)
        return int(handler(args, settings) or 0)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except (GraphValidationError, BlockError, JobError, GraphError, ConfigError, ClientError) as exc:
        if args.debug:
            traceback.print_exc()
        errors = getattr(exc, "errors", None) or getattr(exc, "problems", None) or [exc]
        dicts = [e if isinstance(e, dict) else e.to_dict() for e in errors]
        print(f"error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            _print_json({"errors": dicts})
        elif len(dicts) > 1:
            for d in dicts:
                print(f"  [{d['type']}] {d['message']}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback by default
        if args.debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
