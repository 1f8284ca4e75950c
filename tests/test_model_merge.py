"""Model merging as ComfyUI's merging nodes compute it: the math per weight, the block rule, CLIP merges,
merged references in the model manager (cached by recipe, LoRAs on top), refusals, and ComfyUI merge
workflows (API and UI format) over single-file checkpoints in ComfyUI's key layout, run on tiny models."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from graphs import check
from graphs.comfy import import_result
from graphs.comfy.ui_export import api_to_ui
from orchestrator.models import ModelError, ModelFolders, ModelManager, ModelRef, ModelRegistry
from orchestrator.models.merge import block_ratio, ldm_key
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry


def to_ui(prompt: dict) -> dict:
    """The UI-format (litegraph) workflow of an API-format prompt, as the ComfyUI frontend saves it."""
    ui, why = api_to_ui(prompt)
    assert ui is not None, why
    return ui


def perturbed(src: Path, dest: Path, seed: int, scale: float = 0.05) -> Path:
    """A copy of the diffusers folder ``src`` whose UNet and text encoders have other weights."""
    if (dest / "model_index.json").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    g = torch.Generator().manual_seed(seed)
    files = [tmp / "unet" / "diffusion_pytorch_model.safetensors",
             *tmp.glob("text_encoder*/model.safetensors")]
    for f in files:
        sd = load_file(str(f))
        save_file({k: (v + torch.randn(v.shape, generator=g) * scale).to(v.dtype) if v.is_floating_point()
                   else v for k, v in sd.items()}, str(f))
    tmp.rename(dest)
    return dest


@pytest.fixture(scope="module")
def pair(models, tmp_path_factory):
    """A manager knowing tiny-sd and ``other`` (tiny-sd with other UNet and text-encoder weights)."""
    d = tmp_path_factory.mktemp("merge")
    other = perturbed(models.resolve("tiny-sd").folder, d / "other", seed=1)
    reg = ModelRegistry([{"name": "other", "source": str(other)}], cache_dir=sd_fixtures.tiny_cache_dir())
    return ModelManager(reg)


def _ldm_names(folder: Path) -> dict[str, str]:
    """diffusers UNet weight -> its LDM key, found independently: by tensor identity in the LDM checkpoint
    the test helper writes (random weights are unique)."""
    ldm = sd_fixtures.to_ldm_checkpoint(folder)
    unet = load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    def sig(v: torch.Tensor) -> tuple:
        return tuple(v.shape), v.flatten()[:64].numpy().tobytes(), float(v.sum())

    by_bytes: dict = {}
    for k, v in ldm.items():
        if k.startswith("model.diffusion_model."):
            by_bytes.setdefault(sig(v), []).append(k)
    out = {}
    for k, v in unet.items():
        hits = by_bytes[sig(v)]
        assert len(hits) == 1, (k, hits)
        out[k] = hits[0][len("model.diffusion_model."):]
    return out


@pytest.mark.parametrize("name", ["tiny-sd", "tiny-sdxl"])
def test_every_unet_weight_is_placed_in_the_ldm_block_comfyui_matches(models, name):
    info = models.info(name)
    expected = _ldm_names(info.folder)
    assert {k: ldm_key(k, info.unet) for k in expected} == expected


def test_the_longest_matching_prefix_wins_as_in_model_merge_blocks():
    blocks = (("input", 0.1), ("middle", 0.2), ("out", 0.3), ("input_blocks.4.", 0.9))
    assert block_ratio("input_blocks.4.1.proj_in.weight", 0.5, blocks) == 0.9
    assert block_ratio("input_blocks.1.0.in_layers.0.weight", 0.5, blocks) == 0.1
    assert block_ratio("output_blocks.2.1.conv.weight", 0.5, blocks) == 0.3  # "out" matches output_blocks
    assert block_ratio("time_embed.0.weight", 0.5, blocks) == 0.5


def _sd(m, ref, component="unet"):
    return {k: v.clone() for k, v in m.load(ref, component).state_dict().items()}


@pytest.mark.parametrize(("op", "ratio", "formula"), [
    ("simple", 0.3, lambda a, b: 0.3 * a + 0.7 * b),
    ("add", 1.0, lambda a, b: a + b),
    ("subtract", 0.5, lambda a, b: 0.5 * (a - b)),
])
def test_merge_ops_compute_comfyui_weights(pair, op, ratio, formula):
    a, b = _sd(pair, "tiny-sd"), _sd(pair, "other")
    ref = {"name": "tiny-sd", "merge": {"op": op, "a": "tiny-sd", "b": "other", "ratio": ratio}}
    merged = _sd(pair, ref)
    assert merged.keys() == a.keys()
    for k in a:
        assert torch.allclose(merged[k], formula(a[k].float(), b[k].float()), atol=1e-6), k
    assert not torch.equal(merged["conv_in.weight"], a["conv_in.weight"])


def test_block_merge_gives_each_weight_the_share_of_its_block(pair):
    info = pair.info("tiny-sd")
    names = _ldm_names(info.folder)
    shares = {"time_embed.": 0.1, "input_blocks.1.": 0.2, "middle_block.1.": 0.7, "output_blocks.0.": 0.4,
              "out.": 0.9}
    ref = {"name": "tiny-sd", "merge": {"op": "blocks", "a": "tiny-sd", "b": "other", "ratio": 0.5,
                                         "blocks": shares}}
    a, b, merged = _sd(pair, "tiny-sd"), _sd(pair, "other"), _sd(pair, ref)
    seen = set()
    for k, ldm in names.items():
        r = next((s for p, s in shares.items() if ldm.startswith(p)), 0.5)  # the prefixes do not nest here
        seen.add(r)
        assert torch.allclose(merged[k], r * a[k] + (1 - r) * b[k], atol=1e-6), (k, ldm)
    assert seen == {0.1, 0.2, 0.7, 0.4, 0.9, 0.5}


def test_clip_merge_changes_the_text_encoder_only_and_skips_position_ids(pair):
    ref = {"name": "tiny-sd", "merge": {"op": "simple", "target": "clip", "a": "tiny-sd", "b": "other",
                                         "ratio": 0.25}}
    a, b, merged = _sd(pair, "tiny-sd", "text_encoder"), _sd(pair, "other", "text_encoder"), \
        _sd(pair, ref, "text_encoder")
    for k in a:
        if k.endswith(".position_ids") or not a[k].is_floating_point():
            assert torch.equal(merged[k], a[k])
        else:
            assert torch.allclose(merged[k], 0.25 * a[k] + 0.75 * b[k], atol=1e-6), k
    assert pair.load(ref, "unet") is pair.load("tiny-sd", "unet")  # the UNet is the first model's


def test_merged_weights_are_cached_by_recipe_and_loras_apply_on_top(pair, tmp_path):
    from orchestrator.models import lora as lora_mod

    ref = {"name": "tiny-sd", "merge": {"op": "simple", "a": "tiny-sd", "b": "other", "ratio": 0.5}}
    first = pair.load(ref, "unet")
    assert pair.load(dict(ref), "unet") is first  # same recipe: same resident weights
    assert pair.holds(ref) and ModelRef.parse(ref).key() in {h["model"] for h in pair.held()}
    g = torch.Generator().manual_seed(0)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    path = tmp_path / "l.safetensors"
    save_file({f"{key}.lora_down.weight": torch.randn(4, 32, generator=g),
               f"{key}.lora_up.weight": torch.randn(64, 4, generator=g)}, str(path))
    with_lora = pair.load({**ref, "loras": [{"path": str(path), "weight": 0.7}]}, "unet")
    expected = lora_mod.read_lora(path, "sd", pair.info("tiny-sd").unet)
    target = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    delta = with_lora.state_dict()[target] - first.state_dict()[target]
    assert expected and delta.abs().max() > 0
    assert pair.load(ref, "unet") is first  # the merge itself is untouched by the LoRA copy
    # a merge inside a merge: ratio 1 of (a merged with b at 0.5) gives that merge back
    nested = {"name": "tiny-sd", "merge": {"op": "simple", "a": ref, "b": "other", "ratio": 1.0}}
    got = pair.load(nested, "unet").state_dict()
    assert all(torch.equal(got[k], v) for k, v in first.state_dict().items())


def test_merging_models_of_different_families_is_a_structured_error(pair):
    ref = {"name": "tiny-sd", "merge": {"op": "simple", "a": "tiny-sd", "b": "tiny-sdxl", "ratio": 0.5}}
    with pytest.raises(ModelError) as exc:
        pair.load(ref, "unet")
    d = exc.value.to_dict()
    assert (d["reason"], d["field"]) == ("merge", "params.model.merge.b")
    assert (d["a"], d["b"]) == ("tiny-sd", "tiny-sdxl")
    xl_into_sd = {"name": "tiny-sdxl", "merge": {"op": "add", "a": "tiny-sdxl", "b": "tiny-sd"}}
    with pytest.raises(ModelError) as exc:
        pair.load(xl_into_sd, "unet")
    assert exc.value.to_dict()["b"] == "tiny-sd"


def test_inpainting_merge_recipe_keeps_the_inpainting_input_layer_as_comfyui(pair):
    """ComfyUI's model_merging_inpaint example: inpaint + (other - base). The 9-channel conv_in keeps
    the first model's weight times strength_model (ComfyUI skips a patch of another shape)."""
    diff = {"name": "tiny-sd-inpaint", "merge": {"op": "subtract", "a": "tiny-sd-inpaint", "b": "tiny-sd",
                                                  "ratio": 0.5}}
    recipe = {"name": "tiny-sd-inpaint", "merge": {"op": "add", "a": diff, "b": "other"}}
    inpaint, base, other = _sd(pair, "tiny-sd-inpaint"), _sd(pair, "tiny-sd"), _sd(pair, "other")
    merged = _sd(pair, recipe)
    assert torch.allclose(merged["conv_in.weight"], 0.5 * inpaint["conv_in.weight"], atol=1e-6)
    k = "down_blocks.0.resnets.0.conv1.weight"
    assert torch.allclose(merged[k], 0.5 * (inpaint[k] - base[k]) + other[k], atol=1e-6)
    reverse = _sd(pair, {"name": "tiny-sd", "merge": {"op": "add", "a": "tiny-sd", "b": "tiny-sd-inpaint"}})
    assert torch.equal(reverse["conv_in.weight"], base["conv_in.weight"])  # the other way round: same rule


@pytest.mark.parametrize("bad", [
    {"name": "tiny-sd", "merge": {"op": "average", "a": "tiny-sd", "b": "other"}},
    {"name": "tiny-sd", "merge": {"op": "simple", "a": "tiny-sd", "b": "other", "ratio": 1e9}},
    {"name": "other", "merge": {"op": "simple", "a": "tiny-sd", "b": "other"}},  # not the first's name
    {"name": "tiny-sd", "merge": {"op": "simple", "a": "tiny-sd", "b": "other", "blocks": {"input": 0.5}}},
    {"name": "tiny-sd", "merge": {"op": "blocks", "a": "tiny-sd", "b": "other", "blocks": {"x" * 65: 0.5}}},
])
def test_bad_merge_references_are_refused_before_loading(pair, bad):
    with pytest.raises(ModelError) as exc:
        pair.load(bad, "unet")
    assert exc.value.to_dict()["reason"] == "reference"


def test_deep_merge_recipes_are_refused():
    ref: object = "tiny-sd"
    for _ in range(20):
        ref = {"name": "tiny-sd", "merge": {"op": "add", "a": ref, "b": "tiny-sd"}}
    with pytest.raises(ValueError, match="nest at most"):
        ModelRef.parse(ref)


def test_a_merge_naming_a_path_is_refused_with_the_param_that_named_it(tmp_path):
    reg = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([tmp_path]),
                        allow_paths=False)
    m = ModelManager(reg)
    ref = {"name": "tiny-sd", "merge": {"op": "simple", "a": "tiny-sd", "b": "/etc/passwd"}}
    with pytest.raises(ModelError) as exc:
        m.check(ref)
    d = exc.value.to_dict()
    assert (d["reason"], d["field"]) == ("path", "params.model.merge.b")
    assert "root:" not in d["message"]


# -- ComfyUI merge workflows over checkpoints in the models folder -------------------------------------------


def _checkpoint(folder: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in sd_fixtures.to_ldm_checkpoint(folder).items()}, str(dest))
    side = dest.with_name(dest.name.rsplit(".", 1)[0] + ".config")
    shutil.copytree(folder, side, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return dest


@pytest.fixture(scope="module")
def comfy_models(models, tmp_path_factory):
    """ComfyUI's models folder with two SD1-shaped checkpoints (a.safetensors, b.safetensors), a manager."""
    d = tmp_path_factory.mktemp("comfy_merge")
    root = d / "ComfyUI" / "models"
    src = models.resolve("tiny-sd").folder
    _checkpoint(src, root / "checkpoints" / "a.safetensors")
    _checkpoint(perturbed(src, d / "b_folder", seed=2, scale=0.2), root / "checkpoints" / "b.safetensors")
    reg = ModelRegistry(cache_dir=d / "cache", folders=ModelFolders([root]), allow_paths=False)
    return ModelManager(reg)


def merge_workflow(merge: dict, clip_merge: dict | None = None) -> dict:
    """txt2img where the sampler's MODEL is ``merge`` (node 11) of checkpoints a (4) and b (10)."""
    wf = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
        "10": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "b.safetensors"}},
        "11": {**merge, "inputs": {**merge["inputs"], "model1": ["4", 0], "model2": ["10", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["11", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "merged", "images": ["8", 0]}},
    }
    if clip_merge is not None:
        wf["12"] = {**clip_merge, "inputs": {**clip_merge["inputs"], "clip1": ["4", 1], "clip2": ["10", 1]}}
        wf["6"]["inputs"]["clip"] = ["12", 0]
        wf["7"]["inputs"]["clip"] = ["12", 0]
    return wf


def _run(workflow, catalog, manager, out: Path) -> np.ndarray:
    # the folder's file names, as the daemon maps them
    names = {"a.safetensors": "a.safetensors", "b.safetensors": "b.safetensors"}
    result = import_result(workflow, catalog=catalog, model_map=names, extra_mappings=COMFY_MAPPINGS)
    assert result.problems == [], [p.to_dict() for p in result.problems]
    assert check(result.graph, catalog) == []
    run = LocalExecutor(catalog, models=manager, outputs_dir=out).run(result.graph)
    return np.asarray(Image.open(run.files[0]["path"]))


@pytest.mark.slow
def test_comfyui_merge_workflows_import_clean_and_run(comfy_models, catalog, tmp_path):
    simple = {"class_type": "ModelMergeSimple", "inputs": {"ratio": 1.0}}
    only_a = _run(merge_workflow(simple), catalog, comfy_models, tmp_path / "a")
    plain = merge_workflow(simple)
    plain["3"]["inputs"]["model"] = ["4", 0]
    assert np.array_equal(only_a, _run(plain, catalog, comfy_models, tmp_path / "plain"))  # ratio 1: model1
    half = _run(merge_workflow({"class_type": "ModelMergeSimple", "inputs": {"ratio": 0.5}}), catalog,
                comfy_models, tmp_path / "half")
    assert not np.array_equal(half, only_a)
    # the UI format of a block merge with a CLIP merge, as the ComfyUI frontend saves it
    blocks = {"class_type": "ModelMergeBlocks", "inputs": {"input": 0.2, "middle": 0.8, "out": 0.5}}
    clip = {"class_type": "CLIPMergeSubtract", "inputs": {"multiplier": 0.5}}
    ui = to_ui(merge_workflow(blocks, clip))
    img = _run(ui, catalog, comfy_models, tmp_path / "ui")
    assert img.shape == (64, 64, 3) and img.std() > 0


def test_comfyui_merge_nodes_import_to_merge_recipes(catalog):
    sdxl = {"class_type": "ModelMergeSDXL", "inputs": {
        "time_embed.": 0.1, "label_emb.": 0.2, **{f"input_blocks.{i}": 0.3 for i in range(9)},
        **{f"middle_block.{i}": 0.4 for i in range(3)}, **{f"output_blocks.{i}": 0.5 for i in range(9)},
        "out.": 0.6}}
    wf = merge_workflow(sdxl, {"class_type": "CLIPMergeAdd", "inputs": {}})
    wf["13"] = {"class_type": "HypernetworkLoader", "inputs": {"model": ["11", 0],
                                                               "hypernetwork_name": "h.pt", "strength": 0.5}}
    wf["14"] = {"class_type": "LoraLoaderModelOnly",
                "inputs": {"model": ["13", 0], "lora_name": "l.safetensors", "strength_model": 0.7}}
    wf["3"]["inputs"]["model"] = ["14", 0]
    for workflow in (wf, to_ui(wf)):
        names = {"a.safetensors": "a", "b.safetensors": "b", "h.pt": "h", "l.safetensors": "l"}
        result = import_result(workflow, catalog=catalog, model_map=names, extra_mappings=COMFY_MAPPINGS)
        assert result.errors == []
        nodes = result.graph.nodes
        sampler = next(n for n in nodes.values() if n.block == "sd.ksampler")
        ref = ModelRef.parse(sampler.params["model"])
        assert ref.name == "a" and ref.merge.op == "blocks" and ref.merge.ratio == 0.1
        assert dict(ref.merge.blocks)["input_blocks.8"] == 0.3 and len(ref.merge.blocks) == 24
        assert [(h.path, h.strength) for h in ref.hypernetworks] == [("h", 0.5)]
        assert [(lr.path, lr.weight) for lr in ref.loras] == [("l", 0.7)]
        enc = next(n for n in nodes.values() if n.block == "sd.encode_prompt")
        clip = ModelRef.parse(enc.params["model"])
        assert (clip.merge.op, clip.merge.target, clip.merge.b.name) == ("add", "clip", "b")


def test_a_merge_ratio_out_of_range_is_reported_on_the_merge_node(catalog):
    wf = merge_workflow({"class_type": "ModelMergeSimple", "inputs": {"ratio": 7}})
    result = import_result(wf, catalog=catalog, model_map={"a.safetensors": "a", "b.safetensors": "b"},
                           extra_mappings=COMFY_MAPPINGS)
    errors = [e.to_dict() for e in result.errors]
    assert any(e["node"] == "11" and e["field"] == "ratio" for e in errors), errors


# -- through the daemon ----------------------------------------------------------------------------------


def _wait(c, job_id: str) -> dict:
    import time

    deadline = time.monotonic() + 600  # generous: a loaded 2-core machine
    while (info := c.get(f"/jobs/{job_id}").json())["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.25)
    return info


@pytest.mark.slow
def test_merge_workflow_and_hostile_merge_refs_through_the_daemon(comfy_models, tmp_path):
    """A ComfyUI merge workflow naming folder checkpoints runs through a real daemon; hostile recipes (paths,
    a depth bomb, a bad op, a hypernetwork path) are refused with structured errors showing nothing on
    disk."""
    import httpx
    from daemon_process import Daemon

    root = comfy_models.registry.folders.roots[0]
    state = tmp_path / "state"
    state.mkdir()
    d = Daemon(state, env={"ORCHESTRATOR_MODEL_FILES__ROOTS": str(root.parent),
                           "ORCHESTRATOR_CACHE_DIR": str(tmp_path / "cache")}).start()
    try:
        with httpx.Client(base_url=d.url, timeout=120) as c:
            wf = merge_workflow({"class_type": "ModelMergeSimple", "inputs": {"ratio": 0.5}},
                                {"class_type": "CLIPMergeSimple", "inputs": {"ratio": 0.5}})
            imported = c.post("/import/comfy", json=wf).json()
            assert imported["valid"], imported["errors"]
            job = c.post("/jobs", json={"graph": imported["graph"]}).json()
            info = _wait(c, job["id"])
            assert info["state"] == "succeeded", info.get("errors")
            graph = imported["graph"]
            sampler = next(n for n in graph["nodes"].values() if n["block"] == "sd.ksampler")
            hostile = [
                {"name": "a.safetensors",
                 "merge": {"op": "simple", "a": "a.safetensors", "b": "/etc/passwd"}},
                {"name": "a.safetensors", "merge": {"op": "simple", "a": "a.safetensors",
                                                    "b": "../../../../etc/passwd"}},
                {"name": "a.safetensors", "hypernetworks": [{"path": "/etc/shadow"}]},
                {"name": "a.safetensors",
                 "merge": {"op": "rm -rf", "a": "a.safetensors", "b": "b.safetensors"}},
            ]
            deep: object = "a.safetensors"
            for _ in range(40):
                deep = {"name": "a.safetensors", "merge": {"op": "add", "a": deep, "b": "b.safetensors"}}
            hostile.append(deep)
            seen = []
            for ref in hostile:
                sampler["params"]["model"] = ref
                r = c.post("/jobs", json={"graph": graph})
                if r.status_code < 400:  # accepted: the worker refuses it, the job fails with the error
                    info = _wait(c, r.json()["id"])
                    assert info["state"] == "failed"
                    errors = info["errors"]
                else:
                    assert r.status_code < 500
                    errors = r.json()["errors"]
                text = str(errors)
                seen.append((r.status_code, errors[0].get("field")))
                assert errors and "root:" not in text and "/bin/bash" not in text, errors
                assert all(set(e) >= {"type", "message", "node", "field"} for e in errors)
            assert [f for _, f in seen[:3]] == ["params.model.merge.b", "params.model.merge.b",
                                                 "params.model.hypernetworks[0].path"], seen
            assert c.get("/health").status_code == 200  # still serving
    finally:
        d.kill()
