"""The plugin host: built-ins, in-process and installed plugins, and every way one can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from graphs import GraphBuilder, Template, load_template
from orchestrator import Block, Out, block, hookimpl
from orchestrator.errors import PluginError
from orchestrator.plugins import load_plugins
from orchestrator.runtime.executor import LocalExecutor

ROOT = Path(__file__).resolve().parents[1]


@block("ext.const", version="0.1.0")
class Const(Block):
    """A constant number."""

    outputs = {"value": Out("INT")}

    def run(self, ctx):
        return {"value": 42}


def plugin(name, **hooks):
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def test_builtins_load_cleanly_and_are_plugins(catalog):
    host = load_plugins(entry_points=False)
    assert host.problems == []
    assert host.plugins["builtin.image"].loaded
    assert "image.grayscale" in host.plugins["builtin.image"].blocks
    assert catalog["image.grayscale"].plugin == "builtin.image"
    assert {"txt2img", "img2img", "inpaint", "hires_fix"} <= set(host.templates)


def test_in_process_plugin_adds_a_block_that_runs():
    host = load_plugins(entry_points=False,
                        extra=[("ext", plugin("ext", register_blocks=lambda: [Const]))])
    assert host.problems == [] and host.catalog["ext.const"].plugin == "ext"
    b = GraphBuilder()
    b.add("ext.const", id="c")
    assert LocalExecutor(host.catalog).run(b.build()).outputs["c"]["value"] == 42


def test_a_raising_plugin_is_reported_and_the_rest_still_loads():
    def boom():
        raise RuntimeError("no GPU driver")

    host = load_plugins(entry_points=False, extra=[
        ("broken", plugin("broken", register_blocks=boom)),
        ("ext", plugin("ext", register_blocks=lambda: [Const])),
    ])
    [problem] = host.problems
    assert problem.to_dict()["plugin"] == "broken"
    assert "register_blocks() raised RuntimeError: no GPU driver" in problem.message
    assert "ext.const" in host.catalog and "image.load" in host.catalog


def test_a_bad_block_is_skipped_and_its_siblings_load():
    class NotDecorated(Block):
        pass

    host = load_plugins(entry_points=False, extra=[
        ("mixed", plugin("mixed", register_blocks=lambda: [NotDecorated, Const, "junk"]))])
    assert "ext.const" in host.catalog
    assert [p.type for p in host.problems] == ["declaration", "declaration"]
    assert "NotDecorated" in host.problems[0].message


def test_duplicate_block_ids_are_refused_naming_both_plugins():
    host = load_plugins(entry_points=False, extra=[
        ("first", plugin("first", register_blocks=lambda: [Const])),
        ("second", plugin("second", register_blocks=lambda: [Const])),
    ])
    [problem] = host.problems
    d = problem.to_dict()
    assert d["type"] == "duplicate_block" and d["plugins"] == ["first", "second"]
    assert "'first'" in problem.message and "'second'" in problem.message
    assert host.catalog["ext.const"].plugin == "first"


def test_a_misspelt_hook_fails_that_plugin_only():
    host = load_plugins(entry_points=False, extra=[
        ("typo", plugin("typo", register_blockz=lambda: [Const]))])
    [problem] = host.problems
    assert "hook that does not exist" in problem.message and "register_blockz" in problem.message
    assert not host.plugins["typo"].loaded and "ext.const" not in host.catalog


def test_strict_mode_stops_start_up():
    def boom():
        raise ValueError("bad")

    with pytest.raises(PluginError) as info:
        load_plugins(entry_points=False, strict=True,
                     extra=[("broken", plugin("broken", register_blocks=boom))])
    assert info.value.to_dict()["errors"][0]["plugin"] == "broken"


def test_templates_hook(tmp_path):
    graph = load_template("txt2img")
    graph.meta["name"] = "my_txt2img"
    (tmp_path / "mine.json").write_text(graph.to_json())
    obj = Template("obj_t", "from an object", {"styles": ["x"]}, graph)
    host = load_plugins(entry_points=False, extra=[
        ("tpl", plugin("tpl", register_templates=lambda: [str(tmp_path), obj])),
        ("dup", plugin("dup", register_templates=lambda: [obj])),
    ])
    assert {"my_txt2img", "obj_t"} <= set(host.templates)
    assert [p.type for p in host.problems] == ["duplicate_template"]


# -- plugins in separately installed packages -------------------------------------------------

GOOD_PKG = '''
from pydantic import Field
from orchestrator import Block, In, Out, Params, block, hookimpl

@block("thirdparty.invert", version="2.1.0")
class Invert(Block):
    """Invert an image."""
    inputs = {"image": In("IMAGE")}
    outputs = {"image": Out("IMAGE")}
    class Params(Params):
        amount: float = Field(1.0, ge=0.0, le=1.0, description="how much")
    def run(self, ctx, image):
        return {"image": image * (1 - self.params.amount) + (1 - image) * self.params.amount}

@hookimpl
def register_blocks():
    return [Invert]
'''


def _package(root: Path, name: str, module_code: str) -> Path:
    src = root / name
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text(textwrap.dedent(module_code))
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.1.0"
        [project.entry-points."orchestrator.plugins"]
        {name} = "{name}"
        [tool.setuptools]
        packages = ["{name}"]
    """))
    return src


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Two real packages installed with pip into a folder: one good plugin, one broken."""
    root = tmp_path_factory.mktemp("pkgs")
    good = _package(root, "thirdparty_blocks", GOOD_PKG)
    bad = _package(root, "broken_blocks", "import does_not_exist_anywhere\n")
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(good), str(bad)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _cli(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "ORCHESTRATOR_STATE_DIR": str(site / "state")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or site, timeout=300)


def test_installed_plugin_appears_runs_and_broken_one_is_reported(installed, tmp_path):
    out = _cli(installed, "blocks", "--json")
    assert out.returncode == 0, out.stderr
    blocks = {b["id"]: b for b in json.loads(out.stdout)}
    assert blocks["thirdparty.invert"]["plugin"] == "thirdparty_blocks"
    assert blocks["thirdparty.invert"]["params"]["properties"]["amount"]["maximum"] == 1.0
    assert "image.load" in blocks
    assert "broken_blocks" in out.stderr and "does_not_exist_anywhere" in out.stderr

    plugins = json.loads(_cli(installed, "plugins", "--json").stdout)
    states = {p["name"]: p["loaded"] for p in plugins["plugins"]}
    assert states["thirdparty_blocks"] is True and states["broken_blocks"] is False

    b = GraphBuilder()
    img = b.add("image.solid", width=8, height=4, color=[0.25, 0.5, 1.0])
    inv = b.add("thirdparty.invert", image=img.image)
    b.add("image.save", image=inv.image, name="inverted")
    graph_file = tmp_path / "g.json"
    b.build().dump(graph_file)
    run = _cli(installed, "run", "--graph", str(graph_file), "-o", str(tmp_path / "out"), "-q")
    assert run.returncode == 0, run.stderr
    from PIL import Image

    pixel = Image.open(tmp_path / "out" / "inverted.png").getpixel((0, 0))
    assert pixel == (191, 128, 0)


def test_allow_list_limits_third_party_plugins(installed):
    env_allow = "ORCHESTRATOR_PLUGINS__ALLOW"
    os.environ[env_allow] = "nothing_listed"
    try:
        out = _cli(installed, "blocks", "--json")
    finally:
        del os.environ[env_allow]
    ids = {b["id"] for b in json.loads(out.stdout)}
    assert "thirdparty.invert" not in ids and "image.load" in ids
    assert "broken_blocks" not in out.stderr


def test_plugin_host_from_settings_reports_a_broken_extra_and_leaves_it_out(tmp_path, monkeypatch):
    """The one builder (CLI, daemon, ComfyUI routes): a broken ``plugins.extra`` module is a problem."""
    from orchestrator.config import ConfigError, load_settings
    from orchestrator.plugins import import_extra_plugins, plugin_host_from_settings

    (tmp_path / "extra_good_r2.py").write_text(textwrap.dedent("""
        from orchestrator import Block, Out, block, hookimpl

        @block("test.extra_good", version="0.1.0")
        class Good(Block):
            # a constant

            outputs = {"value": Out("INT")}

            def run(self, ctx):
                return {"value": 1}

        @hookimpl
        def register_blocks():
            return [Good]
    """), encoding="utf-8")
    (tmp_path / "extra_bad_r2.py").write_text("import does_not_exist_r2\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    specs = ["extra_good_r2", "bad=extra_bad_r2"]
    extra = import_extra_plugins(specs)
    assert [name for name, _ in extra.imported] == ["extra_good_r2"] and extra.kept == ["extra_good_r2"]
    assert extra.broken[0].to_dict()["plugin"] == "bad"
    assert isinstance(extra.broken[0].__cause__, ImportError)

    settings = load_settings(config_file=False, env={}, overrides={"plugins": {"extra": specs}})
    host, kept = plugin_host_from_settings(settings)
    assert host.catalog["test.extra_good"].plugin == "extra_good_r2"
    assert kept.plugins.extra == ["extra_good_r2"]
    assert any("does_not_exist_r2" in p.message for p in host.problems)
    strict = load_settings(config_file=False, env={},
                           overrides={"plugins": {"extra": specs, "strict": True}})
    with pytest.raises(ConfigError, match="extra_bad_r2"):
        plugin_host_from_settings(strict)
