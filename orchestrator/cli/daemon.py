"""CLI commands that talk to (or run) the daemon: ``daemon``, ``submit``, ``jobs``, ``cancel``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli.progress import Progress
from orchestrator.config import Settings


def _client(args: argparse.Namespace, settings: Settings) -> Any:
    from orchestrator.client import Client

    return Client(getattr(args, "url", None), token=settings.effective_token(), state_dir=settings.state_dir)


FLAGS = ("host", "port", "token_file", "ray_address", "engine", "workers")


def _apply_flags(args: argparse.Namespace, settings: Settings) -> Settings:
    from orchestrator.cli.main import CliError

    if getattr(args, "token", None) is not None:
        raise CliError("the token is never given on the command line (every local user can read "
                       "it there): set ORCHESTRATOR_TOKEN, or --token-file FILE (mode 0600)", code=2)
    updates: dict[str, Any] = {}
    for flag in FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            updates[flag] = value
    return settings.model_copy(update=updates) if updates else settings


def cmd_daemon_start(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.server import daemon

    settings = _apply_flags(args, settings)
    daemon.check_exposure(settings)
    if args.detach:
        argv = ["--state-dir", str(settings.state_dir)]
        if args.config:
            argv += ["--config", args.config]
        argv += ["daemon", "start"]
        for flag in FLAGS:  # never the token: the child reads the environment or the file
            value = getattr(args, flag, None)
            if value is not None:
                argv += [f"--{flag.replace('_', '-')}", str(value)]
        info = daemon.start_detached(settings, argv)
        print(f"daemon started (pid {info['pid']}) at {info['url']}")
        return 0
    return daemon.serve(settings)


def cmd_daemon_stop(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.server import daemon

    if daemon.stop(settings, timeout=args.timeout):
        print("daemon stopped")
        return 0
    print("no daemon is running", file=sys.stderr)
    return 1


def cmd_daemon_status(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.client import ClientError
    from orchestrator.server import daemon

    info = daemon.read_info(settings)
    if not info or not daemon.pid_alive(int(info["pid"])):
        print("not running")
        return 1
    try:
        with _client(args, settings) as client:
            status = {"pid": info["pid"], "url": info["url"], **client.health(),
                      "metrics": client.metrics()}
    except ClientError as exc:
        print(f"pid {info['pid']} at {info['url']} does not answer: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2))
    return 0


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from graphs import Graph
    from orchestrator.cli.main import CliError

    if (args.prompt is None) == (args.graph is None):
        raise CliError("give a prompt or --graph FILE (not both)", code=2)
    graph = None
    if args.graph:
        path = Path(args.graph)
        if not path.is_file():
            raise CliError(f"{args.graph}: no such file")
        graph = Graph.from_json(path.read_text()).to_dict()
    agent: dict[str, Any] | None = {"llm": args.llm} if args.llm else None
    inputs = None
    if getattr(args, "input", None):
        from orchestrator.agent_context import input_files

        if args.prompt is None:
            raise CliError("--input is for a prompt (a graph names its own files)", code=2)
        try:
            inputs = input_files(args.input)
        except ValueError as exc:
            raise CliError(str(exc), code=2) from None
    with _client(args, settings) as client:
        if inputs:  # a prompt's inputs go to the input folder; the job names them by role
            agent = {**(agent or {}), "inputs": {role: client.upload(path) for role, path in inputs.items()}}
        if graph is not None:  # files the graph names next to it go to the input folder first
            from orchestrator.cli.inputs import report_uploads, upload_graph_inputs

            report_uploads(upload_graph_inputs(client, graph, Path(args.graph).resolve().parent))
        variations = getattr(args, "variations", 1)
        if variations < 1:
            raise CliError(f"--variations must be at least 1, got {variations}", code=2)
        if variations > 1:
            if args.idempotency_key:
                raise CliError("--idempotency-key names one job; not with --variations", code=2)
            return _submit_variations(client, args, graph, agent, variations)
        job = client.submit(prompt=args.prompt, graph=graph, priority=args.priority,
                            idempotency_key=args.idempotency_key, agent=agent)
        print(job.id)
        if not (args.wait or args.output):
            return 0
        progress = Progress()
        for event in job.events():
            if not args.quiet:
                progress.show(event)
        info = job.status()
        if info["state"] != "succeeded":
            for e in info["errors"]:
                print(f"  [{e['type']}] {e['message']}", file=sys.stderr)
            return 1
        if args.output:
            for path in job.save(args.output):
                print(path)
    return 0


def _submit_variations(client: Any, args: argparse.Namespace, graph: Any, agent: dict[str, Any] | None,
                       n: int) -> int:
    """``submit --variations N``: N jobs with seeds seed, seed + 1, ... submitted back to back (the
    daemon batches their denoise steps); with --wait or -o, wait for all, outputs in variation-K/."""
    from orchestrator.client import submit_variations

    jobs = submit_variations(client, n, prompt=args.prompt, graph=graph, seed=args.seed,
                             priority=args.priority, agent=agent)
    for job in jobs:
        print(job.id)
    if not (args.wait or args.output):
        return 0
    failed = 0
    for k, job in enumerate(jobs):
        info = job.wait()
        if info["state"] != "succeeded":
            failed += 1
            for e in info["errors"]:
                print(f"  variation {k + 1} [{e['type']}] {e['message']}", file=sys.stderr)
        elif args.output:
            for path in job.save(Path(args.output) / f"variation-{k + 1}"):
                print(path)
        elif not args.quiet:
            print(f"variation {k + 1}: {job.id} succeeded", file=sys.stderr)
    return 1 if failed else 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        jobs = client.jobs(state=args.state, limit=args.limit)
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    for j in jobs:
        what = j["prompt"] or j["name"] or f"graph ({len((j['graph'] or {}).get('nodes', {}))} nodes)"
        print(f"{j['id']}  {j['state']:<10} p{j['priority']:<4} {what[:60]}")
    return 0


def cmd_jobs_prune(args: argparse.Namespace, settings: Settings) -> int:
    """Prune through the running daemon (``POST /jobs/prune``), else directly on the state dir."""
    from orchestrator.cli.main import CliError
    from orchestrator.server import daemon
    from orchestrator.state.retention import parse_duration, parse_size, prune_state_dir

    try:
        older = parse_duration(args.older_than) if args.older_than is not None else None
        max_bytes = parse_size(args.max_bytes) if args.max_bytes is not None else None
    except ValueError as exc:
        raise CliError(str(exc), code=2) from None
    for flag, value in (("--max-jobs", args.max_jobs), ("--keep", args.keep)):
        if value is not None and value < 0:
            raise CliError(f"{flag} must be 0 or more (got {value})", code=2)
    criteria = {"older_than_s": older, "max_jobs": args.max_jobs, "max_output_bytes": max_bytes,
                "keep_latest": args.keep}
    info = daemon.read_info(settings)
    narrower = any(v is not None for v in criteria.values())
    # the API accepts a narrower policy only with the token; without one the state directory's
    # owner (the only user who can write it) prunes it directly, beside the running daemon
    through_api = args.url or (info and daemon.pid_alive(int(info["pid"])))
    if through_api and (not narrower or settings.effective_token() or args.url):
        with _client(args, settings) as client:
            report = client.prune(dry_run=args.dry_run, **criteria)
        where = "daemon"
    else:
        report = prune_state_dir(settings, dry_run=args.dry_run, **criteria).to_dict()
        where = str(settings.state_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    verb = "would prune" if report["dry_run"] else "pruned"
    print(f"{verb} {report['pruned']} jobs ({_size(report['freed_bytes'])}) and {report['orphans']} "
          f"orphan folders ({_size(report['orphan_bytes'])}) [{where}]; kept {report['kept_jobs']} "
          f"jobs, {_size(report['kept_output_bytes'])} of outputs")
    if report["dry_run"]:
        for job_id in report["jobs"]:
            print(f"  {job_id}")
    return 0


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args, settings) as client:
        info = client.job(args.id).cancel()
    print(f"{info['id']} {info['state']}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("daemon", help="run or control the daemon")
    dsub = p.add_subparsers(dest="daemon_command", metavar="ACTION")
    s = dsub.add_parser("start", help="start the daemon (foreground unless --detach)")
    s.add_argument("--detach", action="store_true", help="run in the background, log to the state dir")
    s.add_argument("--host", help="bind address (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (0: any free port)")
    s.add_argument("--token", help=argparse.SUPPRESS)  # refused: a token on a command line leaks
    s.add_argument("--token-file", dest="token_file", metavar="FILE",
                   help="require the bearer token in FILE (mode 0600); or set ORCHESTRATOR_TOKEN")
    s.add_argument("--ray-address", dest="ray_address", help="join this Ray cluster")
    s.add_argument("--engine", choices=["ray", "local"], help="run jobs on Ray or in-process")
    s.add_argument("--workers", type=int, help="CPU workers where there is no GPU")
    s.set_defaults(handler=cmd_daemon_start)
    s = dsub.add_parser("stop", help="stop the daemon gracefully")
    s.add_argument("--timeout", type=float, default=60.0)
    s.set_defaults(handler=cmd_daemon_stop)
    s = dsub.add_parser("status", help="is it running, and what is it doing")
    s.add_argument("--url", help="daemon URL (default: from the state directory)")
    s.set_defaults(handler=cmd_daemon_status)

    p = sub.add_parser("submit", help="submit a prompt or a graph to the daemon")
    p.add_argument("prompt", nargs="?", help="a text prompt")
    p.add_argument("--graph", metavar="FILE", help="a graph JSON file instead of a prompt")
    p.add_argument("--input", action="append", metavar="ROLE=FILE",
                   help="a prompt's input by role (image, mask, style, palette, reference, control): "
                        "uploaded to the input folder first")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--variations", type=int, default=1, metavar="N",
                   help="submit N jobs that differ in their seeds (seed, seed+1, ...), together so "
                        "that their denoise steps batch")
    p.add_argument("--seed", type=int, help="with --variations: the first seed (default: a graph's "
                                            "own, or 0)")
    p.add_argument("--idempotency-key", dest="idempotency_key")
    p.add_argument("--llm", help="the LLM that plans a prompt: a name the daemon allows ('offline', its "
                                 "[agent] llm, or one of [agent] allowed_llms)")
    p.add_argument("--wait", action="store_true", help="follow progress until the job ends")
    p.add_argument("-o", "--output", metavar="DIR", help="wait, then save the outputs here")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--url", help="daemon URL (default: from the state directory)")
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--state", choices=["queued", "planning", "running", "succeeded", "failed",
                                       "cancelled"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.add_argument("--url")
    p.set_defaults(handler=cmd_jobs)
    jsub = p.add_subparsers(dest="jobs_command", metavar="ACTION")
    s = jsub.add_parser("prune", help="remove finished jobs and their outputs by the retention "
                                      "policy, or by the criteria given")
    s.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    s.add_argument("--older-than", metavar="AGE", help="finished longer ago than AGE (90s, 30m, 12h, "
                                                       "7d, 2w; a bare number is days)")
    s.add_argument("--max-jobs", type=int, metavar="N", help="keep at most N jobs")
    s.add_argument("--max-bytes", metavar="SIZE", help="keep at most SIZE of outputs (500M, 20G)")
    s.add_argument("--keep", type=int, metavar="N", help="the N newest finished jobs stay whatever "
                                                        "the criteria (default: retention.keep_latest)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--url", help="daemon URL (default: the state directory's running daemon)")
    s.set_defaults(handler=cmd_jobs_prune)

    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("id")
    p.add_argument("--url")
    p.set_defaults(handler=cmd_cancel)
