"""The official SD-family ComfyUI workflows (tests/data/comfy/official: ComfyUI_examples, UI and API
format as their PNGs carry them) import with no error and no approximation, and run on tiny models.

Model names are set aside at import (``unmapped_model``: a name is only a name); for the runs they
map to the tiny models, and the LoRAs, embedding, upscalers and input images the workflows name are
built here at test time. A workflow that does not import clean yet is an ``xfail(strict=True)`` with
the class it lacks, so the figure stays honest and the test turns red the day it is fixed
(``scripts/comfy_corpus.py`` prints the same figure).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graphs import check
from graphs.comfy import import_result
from orchestrator.models import ModelRegistry
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from model_builders import (
    SRVGGNetCompact,
    a1111_pt,
    kohya_sd1,
    kohya_sdxl,
    randomised,
    tiny_gligen,
    tiny_sdxl_refiner,
)

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread
MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

OFFICIAL = Path(__file__).parent / "data" / "comfy" / "official"
FILES = sorted(p.relative_to(OFFICIAL).as_posix() for p in OFFICIAL.rglob("*.json"))
UI_FILES = [f for f in FILES if not f.endswith("_api.json")]
SET_ASIDE = {"unmapped_model"}

# what still does not import clean, and why (the ComfyUI classes it lacks); keys are file stems, both formats
NOT_YET = {
}


def _stem(name: str) -> str:
    return name.removesuffix(".json").removesuffix("_api")


def _marks(name: str) -> list:
    reason = NOT_YET.get(_stem(name))
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


def test_the_corpus_is_the_46_sd_family_examples_in_both_formats():
    assert len(UI_FILES) == 46 and len(FILES) == 92
    for name in UI_FILES:
        ui = json.loads((OFFICIAL / name).read_text())
        api = json.loads((OFFICIAL / name.replace(".json", "_api.json")).read_text())
        assert "nodes" in ui and "links" in ui  # the UI (litegraph) format
        assert all("class_type" in n for n in api.values())  # the API format


@pytest.mark.parametrize("name", [pytest.param(f, marks=_marks(f)) for f in FILES])
def test_official_workflow_imports_with_no_error_and_no_approximation(name, catalog):
    result = import_result(OFFICIAL / name, catalog=catalog, extra_mappings=MAPPINGS)
    assert result.format == ("api" if name.endswith("_api.json") else "ui")
    problems = [p.to_dict() for p in result.problems if p.to_dict()["type"] not in SET_ASIDE]
    assert problems == []
    assert check(result.graph, catalog) == []
    assert result.graph.nodes


UPLOAD_WIDGETS = {"upload", "choose file to upload"}  # LoadImage's upload button (UI only; named by version)


@pytest.mark.parametrize("name", UI_FILES)
def test_each_ui_workflow_converts_to_the_prompt_comfyui_ran_beside_it(name):
    """The UI -> API conversion (Reroutes, PrimitiveNodes, muted and bypassed nodes, group nodes, seed
    controls) gives the very prompt the PNG carries: node ids, classes, links and widget values."""
    from graphs.comfy import read_workflow

    ours, fmt, _origin, problems = read_workflow(OFFICIAL / name, MAPPINGS)
    theirs = json.loads((OFFICIAL / name.replace(".json", "_api.json")).read_text())
    assert fmt == "ui" and problems == []
    assert sorted(ours) == sorted(theirs)
    for node_id, node in theirs.items():
        mine = ours[node_id]
        assert mine.class_type == node["class_type"], node_id
        got = {k: list(v) if isinstance(v, tuple) else v for k, v in mine.inputs.items()
               if k not in UPLOAD_WIDGETS}
        assert got == {k: v for k, v in node["inputs"].items() if k not in UPLOAD_WIDGETS}, node_id


def test_a_legacy_group_node_converts_to_the_prompt_comfyui_ran():
    """sdxl_edit_model.json holds a group node (``workflow/IP2PSampler``, ``extra.groupNodes``): its inner
    nodes become ``37:0`` ... ``37:8`` with the links and widget values of the prompt ComfyUI saved."""
    from graphs.comfy import read_workflow

    ours, fmt, _origin, problems = read_workflow(OFFICIAL / "edit_models" / "sdxl_edit_model.json")
    assert fmt == "ui" and problems == []
    theirs = json.loads((OFFICIAL / "edit_models" / "sdxl_edit_model_api.json").read_text())
    assert sorted(ours) == sorted(theirs)
    for node_id, node in theirs.items():
        mine = ours[node_id]
        assert mine.class_type == node["class_type"]
        links = {k: v for k, v in node["inputs"].items() if isinstance(v, list)}
        assert {k: list(v) for k, v in mine.inputs.items() if isinstance(v, (list, tuple))} == links
        widgets = {k: v for k, v in node["inputs"].items() if not isinstance(v, list)}
        mine_w = {k: v for k, v in mine.inputs.items() if not isinstance(v, (list, tuple))}
        if any(k.startswith("widget_") for k in mine_w):  # a class the import does not know yet: by value
            assert sorted(map(float, mine_w.values())) == sorted(map(float, widgets.values()))
        else:
            assert mine_w == widgets


@pytest.mark.parametrize("group", [
    {"nodes": "x", "links": 5, "external": None},
    {"nodes": [{"index": "0", "type": "KSamplerSelect"}, 7, {"type": "X"}], "links": [[None, "a", 0, 0]]},
    {"nodes": [{"index": 0, "type": "KSamplerSelect", "inputs": [{"name": "a"}], "outputs": 3}],
     "links": [[None, 0, 0, 9, 0, "MODEL"], [0, 5, 0, 0, 0, "X"]], "external": [[{"index": "q"}, 0]]},
])
def test_a_malformed_group_node_definition_is_no_crash(group):
    from graphs.comfy import read_workflow

    ui = {"extra": {"groupNodes": {"G": group}}, "links": [],
          "nodes": [{"id": 3, "type": "workflow>G", "widgets_values": [1, 2], "inputs": [], "outputs": []}]}
    nodes, fmt, _origin, _problems = read_workflow(ui)
    assert fmt == "ui" and all(":" in k or k == "3" for k in nodes)


def test_the_measurement_tool_counts_clean_approximated_and_failed_files(tmp_path, capsys):
    """scripts/comfy_corpus.py on a folder of four files: one clean, one approximated (a sampler name
    ComfyUI has and we do not), one failed (a custom node), one that is no workflow at all."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
    import comfy_corpus

    clean = json.loads((OFFICIAL / "lora" / "lora_api.json").read_text())
    approximated = json.loads(json.dumps(clean))
    sampler = next(n for n in approximated.values() if n["class_type"] == "KSampler")
    sampler["inputs"]["sampler_name"] = "my_own"
    failed = json.loads(json.dumps(clean))
    failed["99"] = {"class_type": "FaceDetailer|impact", "inputs": {"image": ["8", 0]}}
    for name, data in [("a_api.json", clean), ("b_api.json", approximated), ("c_api.json", failed)]:
        (tmp_path / name).write_text(json.dumps(data))
    (tmp_path / "d_api.json").write_text('{"not": "a workflow"}')
    assert comfy_corpus.main([str(tmp_path), "--format", "api", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["status"] for f in report["files"]] == ["clean", "approximated", "failed", "failed"]
    assert {k: report["summary"][k] for k in ("files", "clean", "approximated", "failed")} == \
        {"files": 4, "clean": 1, "approximated": 1, "failed": 2}
    assert report["summary"]["classes"]["KSampler"]["approximated"] == [str(tmp_path / "b_api.json")]
    assert report["summary"]["classes"]["FaceDetailer|impact"]["failed"] == [str(tmp_path / "c_api.json")]
    assert comfy_corpus.main([str(tmp_path), "--format", "api"]) == 0
    assert "1/4 clean (25.0%), 1 approximated, 2 failed" in capsys.readouterr().out


# -- running them on tiny models ------------------------------------------------------------------

SDXL = ("sd_xl", "albedobaseXL", "cosxl")
INPAINT = ("inpainting",)
LORAS_SDXL = ("lcm_lora_sdxl",)
PIXEL_KEYS = ("width", "height", "x", "y", "left", "top", "right", "bottom", "feathering", "crop_w", "crop_h",
              "target_width", "target_height")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files the workflows name, built here: input images, LoRAs, an embedding, upscalers."""
    d = tmp_path_factory.mktemp("corpus")
    for name in ("example.png", "house_scribble.png", "input_scribble_example.png", "mountains.png",
                 "pose_present.png", "pose_worship.png", "shark_depthmap.png", "sunset.png"):
        sd_fixtures.write_png(d / name, sd_fixtures.noise_image(64, seed=len(name)))
    for name in ("yosemite_inpaint_example.png", "yosemite_outpaint_example.png"):  # alpha 0: to repaint
        rgba = np.dstack([sd_fixtures.noise_image(64, seed=9), 255 - sd_fixtures.rect_mask(64)])
        Image.fromarray(rgba, "RGBA").save(d / name)
    kohya_sd1(d / "lora_sd1.safetensors")
    kohya_sdxl(d / "lora_sdxl.safetensors")
    a1111_pt(d / "SDA768.pt", torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    a1111_hypernetwork(d / "hypernetwork.pt", (32, 64))
    for scale in (2, 4):
        torch.save(randomised(SRVGGNetCompact(upscale=scale), scale).state_dict(), d / f"esrgan_x{scale}.pth")
    tiny_unclip(d / "tiny-unclip")
    xl = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir()).resolve("tiny-sdxl", build=True).path
    tiny_sdxl_refiner(d / "tiny-sdxl-refiner", xl)
    tiny_gligen(d / "gligen.safetensors")  # a GLIGEN textbox file for tiny-sd (tests/test_gligen.py)
    return d


def tiny_unclip(dest: Path) -> Path:
    """An SD unCLIP model folder: tiny-sd with a UNet taking the image embedding as class labels, and
    tiny-clip-vision as its image encoder (built as tests/test_comfy_unclip.py builds it)."""
    import shutil

    from diffusers import UNet2DConditionModel

    from orchestrator.models import ModelRegistry
    from orchestrator.models.tiny import init_weights

    base = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir())
    sd, vision = base.resolve("tiny-sd", build=True).path, base.resolve("tiny-clip-vision", build=True).path
    shutil.copytree(sd, dest)
    config = json.loads((sd / "unet" / "config.json").read_text())
    config.update(class_embed_type="projection", projection_class_embeddings_input_dim=64)
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    init_weights(unet, "tiny-unclip.unet")
    shutil.rmtree(dest / "unet")
    unet.save_pretrained(str(dest / "unet"), safe_serialization=True)
    shutil.copytree(vision / "image_encoder", dest / "image_encoder")
    index = json.loads((dest / "model_index.json").read_text())
    index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
    (dest / "model_index.json").write_text(json.dumps(index))
    return dest


def a1111_hypernetwork(path: Path, dims: tuple[int, ...], seed: int = 0) -> Path:
    """An A1111 hypernetwork (``torch.save`` of plain containers): per attention width, a key and a
    value MLP ``dim -> 2 dim -> dim`` (``linear.0``, ReLU, ``linear.2``)."""
    g = torch.Generator().manual_seed(seed)

    def mlp(dim: int) -> dict[str, torch.Tensor]:
        return {"linear.0.weight": torch.randn(2 * dim, dim, generator=g) * 0.05,
                "linear.0.bias": torch.zeros(2 * dim),
                "linear.2.weight": torch.randn(dim, 2 * dim, generator=g) * 0.05,
                "linear.2.bias": torch.zeros(dim)}

    data: dict = {dim: [mlp(dim), mlp(dim)] for dim in dims}
    data.update(activation_func="relu", is_layer_norm=False, use_dropout=False, activate_output=False,
                last_layer_dropout=False, name="tiny", step=100)
    torch.save(data, path)
    return path


def model_map(result, files: Path) -> dict[str, str]:
    """Each model name the workflow uses -> a tiny model, or a file built by the ``files`` fixture."""
    out = {}
    for comfy in result.graph.meta.get("comfy_models", {}):
        stem = comfy.rsplit(".", 1)[0]
        if any(s in comfy for s in LORAS_SDXL):
            out[comfy] = str(files / "lora_sdxl.safetensors")
        elif stem in ("epiNoiseoffset_v2", "theovercomer8sContrastFix_sd15"):
            out[comfy] = str(files / "lora_sd1.safetensors")
        elif stem == "dantionMarbleStatues_10":
            out[comfy] = str(files / "hypernetwork.pt")
        elif stem == "SDA768":
            out[comfy] = str(files / "SDA768.pt")
        elif stem.startswith("RealESRGAN"):
            out[comfy] = str(files / ("esrgan_x2.pth" if "x2" in stem else "esrgan_x4.pth"))
        elif stem.startswith("gligen"):
            out[comfy] = str(files / "gligen.safetensors")
        elif stem.startswith("clip_vision"):
            out[comfy] = "tiny-clip-vision"
        elif "refiner" in stem:
            out[comfy] = str(files / "tiny-sdxl-refiner")
        elif "unclip" in stem:
            out[comfy] = str(files / "tiny-unclip")
        elif stem.startswith(("control_", "t2iadapter", "diff_control")):
            out[comfy] = "tiny-controlnet"
        elif any(s in comfy for s in SDXL):
            out[comfy] = "tiny-sdxl"
        elif any(s in comfy for s in INPAINT):
            out[comfy] = "tiny-sd-inpaint"
        else:
            out[comfy] = "tiny-sd"
    return out


def shrink(graph, side: int = 64):
    """Pixel sizes scaled so the largest empty latent's short side is ``side`` (multiples of 8), 2 steps
    (4 where a step window is set, the window scaled), batches of at most 2."""
    latents = [n for n in graph.nodes.values() if n.block == "sd.empty_latent"]
    base = max(latents, key=lambda n: n.params.get("width", 512) * n.params.get("height", 512), default=None)
    f = side / min(base.params.get("width", 512), base.params.get("height", 512)) if base else 1.0
    for node in graph.nodes.values():
        p = node.params
        if node.block not in ("cond.sdxl_size",) and p.get("unit") != "fraction":
            for key in PIXEL_KEYS:
                if isinstance(p.get(key), int) and not isinstance(p.get(key), bool) and p[key] > 0:
                    low = 16 if key in ("width", "height") else 0
                    p[key] = max(low, round(p[key] * f / 8) * 8)
        if "batch" in p:
            p["batch"] = min(2, p["batch"])
        if isinstance(p.get("steps"), int):
            old = p["steps"]
            new = 4 if "start_step" in p or "end_step" in p else min(2, old)
            for key in ("start_step", "end_step"):
                if key in p:
                    p[key] = math.floor(min(p[key], old) * new / old + 0.5)
            p["steps"] = new
    return graph


# runs that fail where the import is clean, and why
RUN_NOT_YET: dict[str, str] = {}  # (model_merging_inpaint ran only once merges padded conv_in as ComfyUI)


def _run_marks(name: str) -> list:
    reason = RUN_NOT_YET.get(_stem(name))
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else _marks(name)


@pytest.mark.parametrize("name", [pytest.param(f, marks=_run_marks(f)) for f in UI_FILES])
def test_official_workflow_runs_on_tiny_models(name, catalog, models, files, tmp_path):
    first = import_result(OFFICIAL / name, catalog=catalog, extra_mappings=MAPPINGS)
    result = import_result(OFFICIAL / name, catalog=catalog, extra_mappings=MAPPINGS,
                           model_map=model_map(first, files))
    assert [p.to_dict() for p in result.problems] == []  # every name mapped: no problem at all
    graph = shrink(result.graph)
    assert check(graph, catalog) == []
    run = LocalExecutor(catalog, models=models, input_root=files, outputs_dir=tmp_path).run(graph)
    saved = [np.asarray(Image.open(f["path"])) for f in run.files]
    assert saved and all(im.size > 0 for im in saved)
    assert any(im.std() > 0 for im in saved)  # images, not all blank
