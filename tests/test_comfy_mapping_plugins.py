"""The ComfyUI mappings live beside their blocks (issue 21): each built-in plugin registers its own
through ``register_comfy_mappings``, as a third party would, and ``graphs.comfy`` keeps the format.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from graphs.comfy import import_result
from graphs.comfy.importer import OWN_MAPPINGS, mapping_table
from orchestrator import ComfyMapping, Data, NodeContext, hookimpl
from orchestrator.plugins import PluginHost, builtin_comfy_mappings, comfy_mappings, load_plugins

ROOT = Path(__file__).resolve().parents[1]
OURS = ("orchestrator", "plugins", "graphs", "agents")

TXT2IMG = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 2, "cfg": 8, "sampler_name": "euler",
                                               "scheduler": "normal", "denoise": 1, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0],
                                               "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "fox", "images": ["8", 0]}}}
MODELS = {"sd15": "tiny-sd"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.split(".")[0] in OURS}


def test_plugin_mapping_modules_import_only_orchestrator_and_their_own_plugin():
    modules = sorted(ROOT.glob("plugins/*/comfy_*.py"))
    assert len(modules) >= 9
    for path in modules:
        own = f"plugins.{path.parent.name}"
        bad = {m for m in _imports(path) if m != "orchestrator" and not m.startswith(own)}
        assert bad == set(), f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_graphs_comfy_imports_nothing_of_orchestrator_or_plugins():
    for path in sorted(ROOT.glob("graphs/comfy/*.py")):
        bad = {m for m in _imports(path) if not m.startswith("graphs")}
        assert bad == set(), f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_without_the_plugins_mappings_the_core_classes_are_unmapped():
    table, problems = mapping_table()
    assert problems == [] and set(table) == {m.class_type for m in OWN_MAPPINGS}
    assert {"KSampler", "CheckpointLoaderSimple", "CLIPTextEncode", "SaveImage"}.isdisjoint(table)
    assert {"PrimitiveInt", "StringConcatenate", "ComfyMathExpression"} <= set(table)  # computed at import
    assert all(not m.requires and m.block is None for m in OWN_MAPPINGS)  # graphs maps nothing onto a block
    result = import_result(TXT2IMG, model_map=MODELS)
    unmapped = {p.details["value"] for p in result.problems if p.type == "unsupported_node"}
    assert unmapped == {"CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "KSampler",
                        "VAEDecode", "SaveImage"}
    assert all("register_comfy_mappings" in p.message for p in result.problems)


def test_each_builtin_plugin_registers_the_mappings_of_its_own_blocks():
    host = load_plugins(entry_points=False)
    assert host.problems == []
    per_plugin = dict(host.call_hook("register_comfy_mappings"))
    assert set(per_plugin) == {"builtin.image", "builtin.sd", "builtin.upscale"}
    for plugin, mappings in per_plugin.items():
        assert mappings and all(isinstance(m, ComfyMapping) for m in mappings)
        own = set(host.plugins[plugin].blocks)
        for m in mappings:  # every required block: one of this plugin's, at least as the first choice
            for requirement in m.requires or ():
                first = requirement.split("|")[0].split(":")[0]
                options = {r.split(":")[0] for r in requirement.split("|")}
                assert first in own or options & own, (plugin, m.class_type, requirement)
    classes = [m.class_type for ms in per_plugin.values() for m in ms]
    assert len(classes) == len(set(classes))  # no class mapped by two built-in plugins
    assert {"KSampler", "CLIPTextEncode", "VAEDecode"} <= {m.class_type for m in per_plugin["builtin.sd"]}
    assert {"LoadImage", "SaveImage"} <= {m.class_type for m in per_plugin["builtin.image"]}
    assert {"ImageUpscaleWithModel"} <= {m.class_type for m in per_plugin["builtin.upscale"]}
    assert [getattr(m, "class_type", None) for m in builtin_comfy_mappings()] == classes


def test_builtin_mappings_import_a_workflow_as_before(catalog):
    result = import_result(TXT2IMG, catalog=catalog, model_map=MODELS,
                           extra_mappings=builtin_comfy_mappings())
    assert result.problems == []
    nodes = result.graph.nodes
    assert [n.block for n in nodes.values()] == ["sd.encode_prompt", "sd.empty_latent", "sd.ksampler",
                                                 "sd.vae_decode", "image.save"]
    assert nodes["clip_text_encode_6"].params["negative_prompt"] == "blurry"
    assert nodes["save_image_9"].params == {"name": "fox"}


def test_a_plugin_without_its_builtin_peers_maps_only_its_own_classes(catalog):
    host = PluginHost(builtins=("plugins.image",), entry_points=False)
    mappings = comfy_mappings(host)
    assert {m.class_type for m in mappings} >= {"LoadImage", "SaveImage"}
    assert not {"KSampler", "ImageUpscaleWithModel"} & {m.class_type for m in mappings}
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
              "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}},
              "3": {"class_type": "ImageUpscaleWithModel",
                    "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
              "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "up", "images": ["3", 0]}}}
    result = import_result(prompt, catalog=host.catalog, extra_mappings=mappings)
    unmapped = sorted(p.details["value"] for p in result.problems if p.type == "unsupported_node")
    assert unmapped == ["ImageUpscaleWithModel", "UpscaleModelLoader"]
    assert result.graph.nodes["save_image_4"].inputs == {"image": "load_image_1.image"}  # passed through


class _Sampler:
    """A third-party plugin that maps ComfyUI's own KSampler onto sd.denoise, its way."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    @hookimpl
    def register_comfy_mappings(self) -> list:
        def convert(nc: NodeContext) -> list:
            latent = nc.data("latent_image")
            node = nc.add("sd.denoise", inputs={"latent": latent}, params={"model": self.tag})
            return [Data(f"{node}.latent", "LATENT")]

        return [ComfyMapping("KSampler", convert=convert, requires=("sd.denoise",))]


def test_a_plugin_mapping_replaces_the_builtin_one_and_the_first_plugin_wins():
    host = load_plugins(entry_points=False,
                        extra=[("first", _Sampler("first")), ("second", _Sampler("second"))])
    mappings = comfy_mappings(host)
    ksamplers = [m for m in mappings if m.class_type == "KSampler"]
    assert len(ksamplers) == 2  # the two plugins' (the built-in one is replaced), the first one first
    result = import_result(TXT2IMG, model_map=MODELS, extra_mappings=mappings)
    assert result.graph.nodes["ksampler_3"].block == "sd.denoise"
    assert result.graph.nodes["ksampler_3"].params == {"model": "first"}
    [twice] = [p for p in result.problems if p.type == "bad_mapping"]
    assert (twice.details["severity"], twice.details["value"]) == ("warning", "KSampler")
    # with one plugin only: the built-in KSampler is replaced without a word
    one = load_plugins(entry_points=False, extra=[("first", _Sampler("first"))])
    mine = comfy_mappings(one)
    result = import_result(TXT2IMG, model_map=MODELS, extra_mappings=mine)
    assert not [p for p in result.problems if p.type == "bad_mapping"]
    assert result.graph.nodes["ksampler_3"].params == {"model": "first"}
    assert builtin_comfy_mappings(mine) == mine  # the same merge, without a host


class _Broken:
    @hookimpl
    def register_comfy_mappings(self) -> object:
        return 42


class _Malformed:
    @hookimpl
    def register_comfy_mappings(self) -> list:
        return [{"class_type": ["KSampler"], "block": "x.y"}, {"block": "x.y"}, "KSampler"]


@pytest.mark.parametrize("plugin, messages", [
    (_Broken(), ["got int"]),
    (_Malformed(), ["class_type", "class_type", "got str"]),
])
def test_a_plugin_returning_bad_mappings_is_reported_and_spares_the_builtins(plugin, messages):
    host = load_plugins(entry_points=False, extra=[("bad", plugin)])
    result = import_result(TXT2IMG, model_map=MODELS, extra_mappings=comfy_mappings(host))
    bad = [p for p in result.problems if p.type == "bad_mapping"]
    assert len(bad) == len(messages)
    for problem, text in zip(bad, messages, strict=True):
        assert problem.details["severity"] == "error" and text in problem.message
    assert result.graph.nodes["ksampler_3"].block == "sd.ksampler"  # the built-ins still import it
    assert not [p for p in result.problems if p.type == "unsupported_node"]



def test_object_info_lists_the_builtin_classes_when_loading_the_plugins_fails(catalog):
    from orchestrator.server.comfy import _plugin_mappings
    from orchestrator.server.comfy.object_info import ObjectInfo

    def failing() -> list:
        raise RuntimeError("a plugin's settings are broken")

    names = ObjectInfo(catalog, _plugin_mappings(failing)).names()
    assert {"KSampler", "CheckpointLoaderSimple", "SaveImage", "ImageUpscaleWithModel"} <= set(names)
    assert set(ObjectInfo(catalog, builtin_comfy_mappings()).names()) == set(names)
