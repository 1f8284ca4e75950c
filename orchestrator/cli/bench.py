"""``orchestrator bench``: the benchmark suite of the source checkout (``python -m bench``).

Every argument goes to the suite as is: ``orchestrator bench --quick --only dispatch``,
``orchestrator bench soak --jobs 300``, ``orchestrator bench --help``. The suite lives in
``bench/`` next to this package (it is not installed with it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.cli.main import CliError

    if not (ROOT / "bench" / "suite.py").is_file():
        raise CliError(f"the benchmark suite is not here ({ROOT / 'bench'}): it lives in the source "
                       "checkout, run it from there", code=1)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.suite import main

    return main(list(args.args))


def register(sub: argparse._SubParsersAction) -> None:
    # every argument passes through to the suite's own parser (which has --help)
    p = sub.add_parser("bench", help="run the benchmark suite (python -m bench)", add_help=False,
                       prefix_chars="\0")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_bench)
