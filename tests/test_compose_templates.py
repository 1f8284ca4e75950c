"""The composition templates: each validates, and runs on tiny-sd from the command line.

The templates read their input files by relative path (``input.png``, ``palette.png``,
``style.png``, ``reference.png``, ``mask.png``, ``control.png``, ``depth.onnx``); the
fixture writes them next to a copy of each template, as a user would.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from graphs import load_template, validate
from graphs.library import LIBRARY_DIR
from graphs.splice import insert
from orchestrator.cli.main import main
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry

COMPOSITION = ["palette_colorization", "style_transfer", "image_translation", "depth_translation",
               "regional_composition", "masked_regions", "inpaint_reference", "controlnet_guided",
               "detail_pass"]


def depth_onnx(path: Path) -> None:
    """A random 1x1 convolution RGB -> 1 channel: a stand-in depth estimator."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.uniform(0.1, 1, (1, 3, 1, 1)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "depth", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])],
                              initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("template-inputs")
    sd_fixtures.write_png(d / "input.png", sd_fixtures.noise_image(64, seed=1))
    sd_fixtures.write_png(d / "style.png", sd_fixtures.noise_image(48, seed=2))
    sd_fixtures.write_png(d / "reference.png", sd_fixtures.noise_image(32, seed=3))
    sd_fixtures.write_png(d / "mask.png", sd_fixtures.rect_mask(64))
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, :16] = (230, 120, 20)
    stripes[:, 16:] = (20, 40, 120)
    sd_fixtures.write_png(d / "palette.png", stripes)
    control = np.zeros((64, 64, 3), np.uint8)
    control[16:48, 16] = control[16:48, 47] = control[16, 16:48] = control[47, 16:48] = 255
    sd_fixtures.write_png(d / "control.png", control)
    depth_onnx(d / "depth.onnx")
    return d


@pytest.fixture()
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(sd_fixtures.tiny_cache_dir()))
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_INPUT_DIR", raising=False)


def test_composition_templates_validate_and_describe_themselves(catalog):
    for name in COMPOSITION:
        g = load_template(name)
        validate(g, catalog)
        assert g.meta["name"] == name and len(g.meta["description"]) > 80
        assert g.meta["labels"]["subjects"] and g.meta["labels"]["styles"]
        models_used = {n.params.get("model") for n in g.nodes.values() if "model" in n.params}
        assert models_used <= {"tiny-sd", "tiny-controlnet", "tiny-clip-vision", "tiny-ip-adapter",
                               "depth.onnx"}


@pytest.mark.parametrize("name", COMPOSITION)
def test_composition_template_runs_from_the_cli(name, inputs, cli_env, tmp_path, capsys):
    work = tmp_path / "work"
    shutil.copytree(inputs, work)
    graph = work / f"{name}.json"
    shutil.copy(LIBRARY_DIR / f"{name}.json", graph)
    assert main(["validate", str(graph)]) == 0
    out = tmp_path / "out"
    sets = ["--set", f"save.name=\"{name}-cli\""]
    doc = json.loads(graph.read_text())
    for node_id, node in doc["nodes"].items():
        if node["block"] in ("sd.denoise", "sd.inpaint"):
            sets += ["--set", f"{node_id}.steps=2"]
    code = main(["run", "--graph", str(graph), "-o", str(out), "--quiet", *sets])
    assert code == 0, capsys.readouterr().err
    pngs = sorted(out.glob(f"{name}-cli*.png"))
    assert len(pngs) == 1
    img = Image.open(pngs[0])
    assert img.width >= 64 and "orchestrator.graph" in img.text


def test_the_detail_pass_splices_after_another_generation(catalog, models, inputs):
    host = load_template("img2img")
    piece = load_template("detail_pass")
    out = insert(host, piece, prefix="detail", bind={"decode.image": "decode.image"})
    # the piece's own generator is left out: it was only there to feed decode.image
    assert {"detail_cond", "detail_latent", "detail_denoise", "detail_decode"}.isdisjoint(out.nodes)
    assert out.nodes["detail_crop"].inputs["image"] == "decode.image"
    assert out.nodes["detail_paste"].meta["group"] == "detail"
    validate(out, catalog)
    result = LocalExecutor(catalog, models=models, input_root=inputs).run(out)
    before, after = result.outputs["decode"]["image"], result.outputs["detail_paste"]["image"]
    changed = np.abs(after - before).max(-1)[0] > 1e-4
    assert changed.any() and not changed[48:].any() and not changed[:, :8].any()  # around the region only


def test_combined_condition_branches_run_in_one_denoise(catalog, models, inputs):
    from graphs.splice_conditions import combine_conditions

    regional, guided = load_template("regional_composition"), load_template("controlnet_guided")
    out = combine_conditions(regional, guided, prefix="guide")
    assert out.nodes["denoise"].inputs["cond"] == "guide_combine.cond"
    assert {"guide_control_map", "guide_cond", "guide_control"} <= set(out.nodes)
    validate(out, catalog)
    ex = LocalExecutor(catalog, models=models, input_root=inputs)
    both = ex.run(out).outputs["denoise"]["latent"]
    alone = ex.run(regional).outputs["denoise"]["latent"]
    assert both.shape == alone.shape and not torch.equal(both, alone)  # the ControlNet now acts too


def _planner(catalog):
    from agents.context import PlanningContext
    from agents.planner import Planner
    from graphs.library import builtin_templates

    return Planner(PlanningContext.build(catalog, builtin_templates()))


def _fast(graph):
    for node in graph.nodes.values():
        if node.block in ("sd.denoise", "sd.inpaint"):
            node.params["steps"] = 2
    return graph


def test_a_planned_detail_pass_fixes_a_given_picture_in_place(catalog, models, inputs):
    """'fix the face in this photo' with a photo and no mask: the detail pass of that photo runs
    on tiny-sd, and only the face box (with its margin and feather) changes."""
    plan = _planner(catalog).plan("fix the face in this photo", images={"image": "input.png"})
    assert plan.template == "detail_pass"
    graph = _fast(plan.graph)
    validate(graph, catalog)
    result = LocalExecutor(catalog, models=models, input_root=inputs).run(graph)
    before = np.asarray(Image.open(inputs / "input.png"), np.float32) / 255.0
    after = result.outputs["paste"]["image"][0]
    assert after.shape == before.shape
    changed = np.abs(after - before).max(-1) > 2 / 255
    assert changed[10:30, 22:42].mean() > 0.5  # the face box was redrawn
    assert not changed[56:].any() and not changed[:, :4].any() and not changed[:, 60:].any()


def test_a_planned_three_region_composition_runs(catalog, models, inputs):
    plan = _planner(catalog).plan("a red apple on the left, a pear in the middle and a plum on the right")
    graph = _fast(plan.graph)
    assert sum(1 for n in graph.nodes.values() if n.block == "sd.regional_prompt") == 3
    validate(graph, catalog)
    image = LocalExecutor(catalog, models=models, input_root=inputs).run(graph).outputs["decode"]["image"]
    assert image.shape[0] == 1 and image.shape[-1] == 3


@pytest.mark.parametrize(("prompt", "aspect"), [("extend this photo to 16:9", 16 / 9),
                                                ("expand the canvas upward, more sky", None)])
def test_an_outpainting_extends_the_given_picture_on_tiny_sd(catalog, models, inputs, tmp_path, prompt,
                                                            aspect):
    """The inpaint template extends a picture: resized, padded by sd.outpaint_pad on the sides the
    text names, the padded border inpainted with the pad's mask; only the image is given."""
    from agents.context import PlanningContext
    from agents.planner import Planner
    from orchestrator.plugins import load_plugins

    wide = tmp_path / "wide.png"
    rng = np.random.default_rng(4)  # a 3:2 picture of noise
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(wide)
    ctx = PlanningContext.build(catalog, load_plugins().templates)
    ctx.image_size = lambda path: Image.open(path).size  # the test's own file: its size is known
    plan = Planner(ctx).plan(prompt, images={"image": str(wide)})
    assert plan.template == "inpaint" and "outpaint" in plan.labels
    nodes = plan.graph.nodes
    pad = next(n for n in nodes.values() if n.block == "sd.outpaint_pad")
    assert "mask" not in nodes and nodes["inpaint"].inputs["mask"].endswith(".mask")
    if aspect is None:
        assert pad.params["top"] > 0
        assert pad.params["left"] == pad.params["right"] == pad.params["bottom"] == 0
    validate(plan.graph, catalog)
    for node in nodes.values():
        if node.block == "sd.inpaint":
            node.params["steps"] = 2
    result = LocalExecutor(catalog, models=models, input_root=tmp_path).run(plan.graph)
    image = result.outputs["decode"]["image"]
    h, w = image.shape[1:3]
    fit = next(n for n in nodes.values() if n.block == "image.resize").params
    assert (w, h) == (fit["width"] + pad.params["left"] + pad.params["right"],
                      fit["height"] + pad.params["top"] + pad.params["bottom"])
    if aspect is not None:
        assert abs(w / h - aspect) / aspect < 0.05, (w, h)
    else:
        assert h > fit["height"] and w == fit["width"]  # taller: sky added above
