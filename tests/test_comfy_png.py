"""PNGs the daemon writes open in ComfyUI: its ``prompt`` and ``workflow`` chunks beside our graph.

Imported ComfyUI workflows run on tiny-sd; their PNGs carry ComfyUI's API prompt and UI
workflow (tEXt chunks, as ComfyUI writes them) whenever every node maps back, and
importing the PNG gives the graph back unchanged, by our chunk and by ComfyUI's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from graphs import GraphBuilder
from graphs.comfy import import_result, ui_to_api
from graphs.comfy.chunks import comfy_chunks
from graphs.comfy.nodes import CORE_NODES
from graphs.errors import GraphValidationError
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.state.outputs import GRAPH_CHUNK

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from tests_comfy_helpers import text_workflow

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
MODELS = {"sd15": "tiny-sd"}


def area_workflow() -> dict:
    wf = text_workflow("a fox in the snow")
    wf["10"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a red barn", "clip": ["4", 1]}}
    wf["11"] = {"class_type": "ConditioningSetArea", "inputs": {
        "width": 32, "height": 64, "x": 32, "y": 0, "strength": 0.9, "conditioning": ["10", 0]}}
    wf["12"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0],
                                                               "conditioning_2": ["11", 0]}}
    wf["13"] = {"class_type": "LatentUpscale", "inputs": {
        "upscale_method": "bislerp", "width": 96, "height": 64, "crop": "disabled", "samples": ["3", 0]}}
    wf["8"]["inputs"]["samples"] = ["13", 0]
    wf["3"]["inputs"]["positive"] = ["12", 0]
    return wf


@pytest.mark.parametrize("workflow", [text_workflow("a fox"), area_workflow()], ids=["txt2img", "area"])
def test_daemon_pngs_carry_comfyui_chunks_and_import_back(workflow, catalog, models, tmp_path):
    imported = import_result(workflow, catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert imported.errors == []
    run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(imported.graph)
    [saved] = [Path(f["path"]) for f in run.files]
    chunks = Image.open(saved).text
    assert set(chunks) == {"prompt", "workflow", GRAPH_CHUNK}
    raw = saved.read_bytes()
    assert b"tEXtprompt\x00" in raw and b"tEXtworkflow\x00" in raw  # as ComfyUI's SaveImage writes them
    # the PNG imports to the graph that made it, exactly
    again = import_result(saved, catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    assert again.origin == "png:orchestrator" and again.errors == []
    assert again.graph == imported.graph
    # ComfyUI's prompt alone imports to the same graph, and the workflow is the same prompt in the UI format
    prompt = json.loads(chunks["prompt"])
    assert import_result(prompt, catalog=catalog, model_map=MODELS,
                         extra_mappings=COMFY_MAPPINGS).graph == imported.graph
    workflow_ui = json.loads(chunks["workflow"])
    names = {k: v.widget_names() for k, v in CORE_NODES.items()}
    from graphs.comfy.ui_export import KNOWN

    names |= {k: v.widget_names() for k, v in KNOWN.items()}
    api, problems = ui_to_api(workflow_ui, names.get)
    assert problems == []
    assert {k: (v["class_type"], v["inputs"]) for k, v in api.items()} == \
        {k: (v["class_type"], v["inputs"]) for k, v in prompt.items()}
    assert import_result(workflow_ui, catalog=catalog, model_map=MODELS,
                         extra_mappings=COMFY_MAPPINGS).graph == imported.graph


def test_graphs_that_do_not_map_back_carry_only_ours(catalog, tmp_path):
    b = GraphBuilder()
    img = b.add("image.solid", width=8, height=8, color=[0.2, 0.4, 0.6])
    b.add("image.save", image=img.image, name="solid")
    graph = b.build()
    assert comfy_chunks(graph) == {}
    run = LocalExecutor(catalog, outputs_dir=tmp_path).run(graph)
    assert set(Image.open(run.files[0]["path"]).text) == {GRAPH_CHUNK}


def test_hostile_pngs_give_structured_errors(tmp_path):
    from PIL import PngImagePlugin

    for text, match in (("{nope", "not valid JSON"), ('{"nodes": {"1 bad": {"block": "x"}}}', "node id")):
        info = PngImagePlugin.PngInfo()
        info.add_text(GRAPH_CHUNK, text)
        path = tmp_path / "x.png"
        Image.new("RGB", (4, 4)).save(path, pnginfo=info)
        with pytest.raises(GraphValidationError, match=match) as err:
            import_result(path, extra_mappings=COMFY_MAPPINGS)
        assert all(set(e) >= {"type", "message", "node", "field"} for e in err.value.to_dict()["errors"])
