"""UI-format workflows with subgraphs import whole: flattened, with ComfyUI's ``48:33`` node ids.

The workflows are built with ``comfy_ui_builder`` in the shapes the current ComfyUI front
end saves (``definitions.subgraphs``, instances whose ``type`` is a definition id, links
from the input node -10 and to the output node -20, promoted widgets in the instance's
``widgets_values`` or ``properties.proxyWidgets``), and checked against the API-format
prompt ComfyUI itself would queue for them, written out by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from graphs import check
from graphs.comfy import import_result
from graphs.comfy.subgraphs import MAX_DEPTH, MAX_NODES, flatten
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from comfy_ui_builder import INPUT_NODE, OUTPUT_NODE, UIGraph, sub

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
CKPT = "v1-5-pruned-emaonly-fp16.safetensors"
MODELS = {"v1-5-pruned-emaonly-fp16": "tiny-sd"}


def latent_definition() -> UIGraph:
    """A nested subgraph: an empty latent through a reroute to its one output."""
    d = sub("Latent", [], [("LATENT", "LATENT")])
    d.node(5, "EmptyLatentImage", [512, 512, 1], outputs=["LATENT"])
    d.node(6, "Reroute", inputs=[("", "*")], outputs=["LATENT"])
    d.link(5, 0, 6, "")
    d.link(6, 0, OUTPUT_NODE, 0)
    return d


def t2i_definition(latent: UIGraph) -> UIGraph:
    """Text to image: prompts, a nested latent subgraph and a sampler; prompt and seed promoted."""
    d = sub("Text to image", [("model", "MODEL"), ("clip", "CLIP"), ("positive", "STRING"), ("seed", "INT")],
            [("LATENT", "LATENT")])
    d.node(6, "CLIPTextEncode", ["(set by the instance)"], [("clip", "CLIP"), ("text", "STRING", True)],
           ["CONDITIONING"])
    d.node(7, "CLIPTextEncode", ["blurry, watermark"], [("clip", "CLIP")], ["CONDITIONING"])
    d.instance(12, latent, [64, 96], proxy=[["5", "width"], ["5", "height"]])
    d.node(3, "KSampler", [0, "fixed", 20, 8, "euler", "normal", 1],
           [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"), ("seed", "INT", True)], ["LATENT"])
    d.link(INPUT_NODE, 1, 6, "clip")
    d.link(INPUT_NODE, 2, 6, "text")
    d.link(INPUT_NODE, 1, 7, "clip")
    d.link(INPUT_NODE, 0, 3, "model")
    d.link(INPUT_NODE, 3, 3, "seed")
    d.link(6, 0, 3, "positive")
    d.link(7, 0, 3, "negative")
    d.link(12, 0, 3, "latent_image")
    d.link(3, 0, OUTPUT_NODE, 0)
    return d


def two_instances() -> dict:
    """One definition used twice: widgets promoted as inputs (48) and through proxyWidgets (49)."""
    latent = latent_definition()
    t2i = t2i_definition(latent)
    g = UIGraph()
    g.definitions = [t2i, latent]
    g.node(4, "CheckpointLoaderSimple", [CKPT], outputs=["MODEL", "CLIP", "VAE"])
    g.instance(48, t2i, ["a red fox in the snow", 42, "randomize"], widget_inputs=("positive", "seed"))
    g.instance(49, t2i, ["a blue bird", 7, 3, 128],
               proxy=[["-1", "positive"], ["-1", "seed"], ["3", "steps"], ["12", "width"]])
    for inst, decode, save in ((48, 8, 9), (49, 10, 11)):
        g.link(4, 0, inst, "model")
        g.link(4, 1, inst, "clip")
        g.node(decode, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
        g.link(inst, 0, decode, "samples")
        g.link(4, 2, decode, "vae")
        g.node(save, "SaveImage", [f"fox_{inst}"], [("images", "IMAGE")])
        g.link(decode, 0, save, "images")
    return g.workflow()


def expected_prompt() -> dict:
    """What ComfyUI's front end queues for :func:`two_instances` (API format, execution ids)."""
    out: dict = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}}}
    for inst, text, seed, steps, width, decode, save in ((48, "a red fox in the snow", 42, 20, 64, 8, 9),
                                                         (49, "a blue bird", 7, 3, 128, 10, 11)):
        out |= {
            f"{inst}:6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
            f"{inst}:7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, watermark",
                                                                     "clip": ["4", 1]}},
            f"{inst}:12:5": {"class_type": "EmptyLatentImage",
                             "inputs": {"width": width, "height": 96, "batch_size": 1}},
            f"{inst}:3": {"class_type": "KSampler", "inputs": {
                "seed": seed, "steps": steps, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 1, "model": ["4", 0], "positive": [f"{inst}:6", 0], "negative": [f"{inst}:7", 0],
                "latent_image": [f"{inst}:12:5", 0]}},
            str(decode): {"class_type": "VAEDecode",
                          "inputs": {"samples": [f"{inst}:3", 0], "vae": ["4", 2]}},
            str(save): {"class_type": "SaveImage", "inputs": {"filename_prefix": f"fox_{inst}",
                                                              "images": [str(decode), 0]}}}
    return out


def test_subgraph_instances_flatten_to_what_comfyui_queues(catalog):
    ui = import_result(two_instances(), catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    api = import_result(expected_prompt(), catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in ui.errors] == []
    assert {k: (n.class_type, n.inputs) for k, n in ui.prompt.items()} == \
        {k: (v["class_type"], v["inputs"]) for k, v in expected_prompt().items()}
    assert ui.graph == api.graph
    sampler = ui.graph.nodes["ksampler_48_3"]
    assert sampler.meta["comfy"]["id"] == "48:3"  # ComfyUI's execution id, for errors and progress
    assert (sampler.params["seed"], sampler.params["steps"]) == (42, 20)
    assert ui.graph.nodes["ksampler_49_3"].params["steps"] == 3
    assert ui.graph.nodes["empty_latent_image_49_12_5"].params["width"] == 128
    assert ui.graph.nodes["clip_text_encode_49_6"].params["prompt"] == "a blue bird"


def test_flatten_leaves_the_workflow_alone_and_a_flat_one_as_it_is():
    wf = two_instances()
    before = repr(wf)
    flat, problems = flatten(wf)
    assert problems == [] and repr(wf) == before
    assert not any(n["type"].count("-") == 4 for n in flat["nodes"])  # no instance node is left
    plain = {"nodes": [{"id": 1, "type": "EmptyLatentImage"}], "links": []}
    assert flatten(plain) == (plain, [])


def test_bypassed_and_muted_instances_follow_comfyui_modes(catalog):
    latent = latent_definition()
    g = UIGraph()
    g.definitions = [latent]
    # a subgraph "Upscale" passing a LATENT through: bypassed, its input goes straight on
    up = sub("Upscale", [("samples", "LATENT")], [("LATENT", "LATENT")])
    up.node(2, "LatentUpscaleBy", ["nearest-exact", 1.5], [("samples", "LATENT")], ["LATENT"])
    up.link(INPUT_NODE, 0, 2, "samples")
    up.link(2, 0, OUTPUT_NODE, 0)
    g.definitions.append(up)
    g.node(4, "CheckpointLoaderSimple", [CKPT], outputs=["MODEL", "CLIP", "VAE"])
    g.instance(20, latent)
    g.instance(21, up, mode=4)
    g.instance(22, up, mode=2)
    g.link(20, 0, 21, "samples")
    g.link(21, 0, 22, "samples")
    g.node(8, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
    g.link(21, 0, 8, "samples")
    g.link(4, 2, 8, "vae")
    g.node(9, "SaveImage", ["x"], [("images", "IMAGE")])
    g.link(8, 0, 9, "images")
    result = import_result(g.workflow(), catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    assert set(result.prompt) == {"4", "20:5", "8", "9"}
    assert result.prompt["8"].inputs["samples"] == ["20:5", 0]


def test_a_subgraph_output_fed_straight_from_its_input(catalog):
    """A definition that links an input to an output (a pass-through) and a link left dangling."""
    through = sub("Through", [("image", "IMAGE")], [("IMAGE", "IMAGE"), ("unused", "IMAGE")])
    through.link(INPUT_NODE, 0, OUTPUT_NODE, 0)
    g = UIGraph()
    g.definitions = [through]
    g.node(1, "LoadImage", ["example.png", "image"], outputs=["IMAGE", "MASK"])
    g.instance(2, through)
    g.link(1, 0, 2, "image")
    g.node(3, "SaveImage", ["passed"], [("images", "IMAGE")])
    g.link(2, 0, 3, "images")
    g.node(5, "SaveImage", ["dangling"], [("images", "IMAGE")])
    g.link(2, 1, 5, "images")
    result = import_result(g.workflow(), catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    assert result.prompt["3"].inputs["images"] == ["1", 0]
    assert "images" not in result.prompt["5"].inputs
    assert [e.to_dict()["node"] for e in result.errors] == ["5"]  # the save with nothing to save


def _nest(depth: int, width: int = 1) -> dict:
    """``depth`` definitions, each holding ``width`` instances of the next; the last an EmptyLatentImage."""
    defs = [sub(f"level {i}", [], [("LATENT", "LATENT")]) for i in range(depth)]
    for i, d in enumerate(defs):
        if i + 1 < depth:
            for k in range(width):
                d.instance(k + 1, defs[i + 1])
            d.link(1, 0, OUTPUT_NODE, 0)
        else:
            d.node(1, "EmptyLatentImage", [64, 64, 1], outputs=["LATENT"])
            d.link(1, 0, OUTPUT_NODE, 0)
    g = UIGraph()
    g.definitions = defs
    g.instance(1, defs[0])
    return g.workflow()


def test_nesting_at_any_reasonable_depth_and_the_refusals():
    flat, problems = flatten(_nest(6))
    assert problems == [] and [n["id"] for n in flat["nodes"]] == ["1:1:1:1:1:1:1"]
    flat, problems = flatten(_nest(MAX_DEPTH + 3))
    assert [p.to_dict()["type"] for p in problems] == ["subgraph"]
    assert problems[0].to_dict()["bound"] == MAX_DEPTH and flat["nodes"] == []
    flat, problems = flatten(_nest(6, width=10))  # 10**5 nodes: refused at the bound, quickly
    assert [p.to_dict()["bound"] for p in problems] == [MAX_NODES] and len(flat["nodes"]) <= MAX_NODES


def test_hostile_subgraph_workflows_give_structured_errors(catalog):
    loop = sub("Loop", [], [("LATENT", "LATENT")])
    loop.instance(1, loop)  # a definition holding an instance of itself
    loop.link(1, 0, OUTPUT_NODE, 0)
    g = UIGraph()
    g.definitions = [loop]
    g.instance(7, loop)
    wf = g.workflow()
    wf["definitions"]["subgraphs"] += [{"name": "no id"}, "not an object"]
    wf["definitions"]["subgraphs"][0]["links"] += [["x"], {"id": 9}]
    wf["definitions"]["subgraphs"][0]["nodes"] += [{"id": 3}, 17]
    wf["nodes"][0]["inputs"] = [{"name": "ghost", "link": 999}, "junk"]
    wf["nodes"][0]["properties"]["proxyWidgets"] = [["1"], "x", [None, 3], ["-1", "ghost"]]
    result = import_result(wf, catalog=catalog, extra_mappings=COMFY_MAPPINGS)  # never raises
    kinds = sorted({(p.to_dict()["type"], p.to_dict().get("field")) for p in result.problems})
    assert ("subgraph", "type") in kinds and ("format", "definitions.subgraphs") in kinds
    assert ("format", "links") in kinds and ("format", "nodes") in kinds
    for p in result.problems:
        d = p.to_dict()
        assert set(d) >= {"type", "message", "node", "field"}
    loop_error = next(p.to_dict() for p in result.problems if p.to_dict()["type"] == "subgraph")
    assert loop_error["node"] == "7:1" and "inside its own definition" in loop_error["message"]


def test_subgraph_workflow_runs_on_tiny_sd(catalog, models, tmp_path):
    result = import_result(two_instances(), catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    graph = result.graph
    for node in graph.nodes.values():
        for key in ("width", "height"):
            if key in node.params:
                node.params[key] = 64
        if "steps" in node.params:
            node.params["steps"] = 2
    assert check(graph, catalog) == []
    run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(graph)
    saved = sorted(Path(f["path"]).name for f in run.files)
    assert saved == ["fox_48.png", "fox_49.png"]
    images = [np.asarray(Image.open(tmp_path / name)) for name in saved]
    assert all(im.shape == (64, 64, 3) and im.std() > 0 for im in images)
    assert not np.array_equal(images[0], images[1])  # other prompt, other seed
