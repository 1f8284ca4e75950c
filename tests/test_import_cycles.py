"""No module of the runtime core or of ``plugins/sd`` imports one of ours inside a function
to dodge an import cycle (issue 19). Optional heavy dependencies (torch, diffusers, ray) may
stay lazy; the imports still made in functions are listed here with why.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("orchestrator", "plugins", "graphs", "agents")
CHECKED = ["orchestrator/context.py", "orchestrator/runtime/tiling.py", "orchestrator/runtime/tiling_ray.py",
           "orchestrator/runtime/tile_serving.py", "orchestrator/plugins.py", "orchestrator/errors.py",
           "plugins/sd/*.py", "plugins/sd/ksampling/*.py"]
# (path, imported module) still imported in a function, and why
REMAINING = {
    # common (the sampling loop) -> conditioning -> its extras (ControlNets, IP-Adapters,
    # regional prompts, areas) -> common (crop, randn, unet_prompt, torch_unet, and vae's
    # model params): breaking it needs common split into a base and the loop (left for later)
    ("plugins/sd/conditioning.py", "plugins.sd"),
    ("plugins/sd/conditioning.py", "plugins.sd.area"),
}


def imports_in_functions(path: Path) -> set[tuple[str, str]]:
    found = set()
    rel = path.relative_to(ROOT).as_posix()
    for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {(rel, name) for name in names if name.split(".")[0] in OURS}
    return found


def test_no_import_of_ours_inside_a_function_beyond_the_listed_ones():
    found: set[tuple[str, str]] = set()
    for pattern in CHECKED:
        paths = sorted(ROOT.glob(pattern))
        assert paths, pattern
        for path in paths:
            found |= imports_in_functions(path)
    assert found - REMAINING == set(), "import it at module top, or say here why it cannot be"
    assert REMAINING - found == set(), "no longer imported in a function: drop it from REMAINING"
