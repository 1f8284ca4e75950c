"""The ``register_comfy_mappings`` hook: a block plugin maps the ComfyUI nodes it reimplements.

This module is itself such a plugin (``ORCHESTRATOR_PLUGINS__EXTRA=test_comfy_plugin``, the
tests folder being on ``sys.path``): it reimplements ComfyUI's core ``ImageInvert`` and a
custom ``ImageInvertPlus`` as one block, ``comfytest.invert``.
"""

from __future__ import annotations

import sys

import numpy as np
from pydantic import Field

from graphs import check
from graphs.comfy import import_result
from orchestrator import Block, Context, Params, block, hookimpl
from orchestrator.cli.comfy import comfy_mappings
from orchestrator.plugins import builtin_comfy_mappings, load_plugins
from orchestrator.runtime.executor import LocalExecutor

MAPPINGS = [
    {"class_type": "ImageInvert", "block": "comfytest.invert", "inputs": {"image": "image"},
     "outputs": ["image"]},
    {"class_type": "ImageInvertPlus", "block": "comfytest.invert", "inputs": {"image": "image"},
     "params": {"amount": "strength"}, "outputs": ["image"], "widgets": ["strength", "mode"]},
]


@block("comfytest.invert", version="1.0.0")
class Invert(Block):
    """Invert an image, by ``amount`` (1: fully)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        amount: float = Field(1.0, ge=0.0, le=1.0, description="how much to invert")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        return {"image": image + self.params.amount * (1.0 - 2.0 * image)}


@hookimpl
def register_blocks() -> list:
    return [Invert]


@hookimpl
def register_comfy_mappings() -> list:
    return list(MAPPINGS)


def workflow_ui() -> dict:
    """LoadImage -> ImageInvertPlus -> ImageInvert -> SaveImage, in the UI format.

    ``ImageInvertPlus`` is a custom node: its widget values are named by the mapping's order.
    """
    def node(id_, type_, inputs=(), outputs=(), widgets=None, **kw):
        out = {"id": id_, "type": type_, "mode": 0, "inputs": [{"name": n, "type": t, "link": link}
                                                               for n, t, link in inputs],
               "outputs": [{"name": t, "type": t, "links": links} for t, links in outputs], **kw}
        if widgets is not None:
            out["widgets_values"] = widgets
        return out

    return {"nodes": [
        node(1, "LoadImage", outputs=[("IMAGE", [1]), ("MASK", [])], widgets=["cat.png", "image"]),
        node(2, "ImageInvertPlus", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", [2])],
             widgets=[0.25, "luma"]),
        node(3, "ImageInvert", inputs=[("image", "IMAGE", 2)], outputs=[("IMAGE", [3])]),
        node(4, "SaveImage", inputs=[("images", "IMAGE", 3)], widgets=["inverted"]),
    ], "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 4, 0, "IMAGE"]]}


def test_plugin_mappings_import_and_run_its_nodes(tmp_path):
    host = load_plugins(entry_points=False, extra=[("comfytest", sys.modules[__name__])])
    assert host.problems == []
    mappings = comfy_mappings(host)
    assert mappings[:2] == MAPPINGS  # the plugin's first, then the built-in plugins' it does not replace
    assert [getattr(m, "class_type", None) for m in mappings].count("ImageInvert") == 0
    assert "LoadImage" in [getattr(m, "class_type", None) for m in mappings]
    result = import_result(workflow_ui(), catalog=host.catalog, extra_mappings=mappings)
    assert result.problems == []
    nodes = result.graph.nodes
    assert nodes["image_invert_plus_2"].block == "comfytest.invert"
    assert nodes["image_invert_plus_2"].params == {"amount": 0.25}
    assert nodes["image_invert_3"].inputs == {"image": "image_invert_plus_2.image"}
    assert check(result.graph, host.catalog) == []

    from PIL import Image

    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "cat.png")
    run = LocalExecutor(host.catalog, input_root=tmp_path, outputs_dir=tmp_path / "out").run(result.graph)
    pixel = np.asarray(Image.open(run.files[0]["path"]))[0, 0]
    assert pixel.tolist() == [64, 191, 191]  # red 1.0 -> 0.75 (a quarter inverted) -> 0.25 (inverted)


def test_without_the_plugin_its_nodes_are_unsupported(catalog):
    result = import_result(workflow_ui(), catalog=catalog, extra_mappings=builtin_comfy_mappings())
    unsupported = [(p.node, p.details["value"]) for p in result.problems if p.type == "unsupported_node"]
    assert unsupported == [("2", "ImageInvertPlus")]  # ImageInvert is a core class: image.invert maps it
    # it is passed through: ImageInvert reads the loaded image
    assert result.graph.nodes["image_invert_3"].inputs == {"image": "load_image_1.image"}
    assert result.graph.nodes["save_image_4"].inputs == {"image": "image_invert_3.image"}


def test_a_plugin_mapping_is_not_used_when_its_block_is_missing(catalog):
    result = import_result(workflow_ui(), catalog=catalog, extra_mappings=builtin_comfy_mappings(MAPPINGS))
    [p, _] = [p for p in result.problems if p.type == "unsupported_node"]
    assert "needs block 'comfytest.invert'" in p.message


def test_a_widget_the_workflow_does_not_set_leaves_the_block_default(catalog):
    extended = load_plugins(entry_points=False, extra=[("comfytest", sys.modules[__name__])]).catalog
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
              "2": {"class_type": "ImageInvertPlus", "inputs": {"image": ["1", 0]}},
              "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    result = import_result(prompt, catalog=extended, extra_mappings=builtin_comfy_mappings(MAPPINGS))
    assert result.problems == []
    assert result.graph.nodes["image_invert_plus_2"].params == {}
    assert result.graph.nodes["preview_image_3"].params == {"name": "preview"}
