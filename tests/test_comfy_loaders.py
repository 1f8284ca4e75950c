"""ComfyUI's DiffControlNetLoader: a difference ControlNet file (original ``control_model.*`` layout with a
``difference`` key, built at test time) plus the model's UNet gives back the ControlNet it was made from,
as ComfyUI's ``load_controlnet(path, model)`` computes it; refusals; API and UI workflows run on tiny-sd."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from graphs import check
from graphs.comfy import import_result
from graphs.comfy.ui_export import api_to_ui
from orchestrator.models import ModelError, ModelFolders, ModelManager, ModelRegistry
from orchestrator.models.merge import ldm_key
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread
COMFY_MAPPINGS = builtin_comfy_mappings()


def ldm_controlnet(net) -> dict[str, torch.Tensor]:
    """A diffusers ControlNet's weights in the original layout (``control_model.*``), as the published
    ControlNet files have them (the layout diffusers' single-file converter reads)."""
    out = {}
    for k, v in net.state_dict().items():
        head, _, rest = k.partition(".")
        if head == "controlnet_cond_embedding":
            part, _, leaf = rest.partition(".")
            if part == "conv_in":
                new = f"input_hint_block.0.{leaf}"
            elif part == "conv_out":
                new = f"input_hint_block.14.{leaf}"
            else:  # blocks.i.weight
                i, leaf = leaf.split(".")
                new = f"input_hint_block.{2 * (int(i) + 1)}.{leaf}"
        elif head == "controlnet_down_blocks":
            i, leaf = rest.split(".")
            new = f"zero_convs.{i}.0.{leaf}"
        elif head == "controlnet_mid_block":
            new = f"middle_block_out.0.{rest}"
        else:
            new = ldm_key(k, dict(net.config))
        out[f"control_model.{new}"] = v.detach().clone().contiguous()
    return out


def write_controlnet(root: Path, name: str, state: dict[str, torch.Tensor], config: Path) -> Path:
    path = root / "controlnet" / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    side = root / "controlnet" / f"{name}.config"
    side.mkdir(exist_ok=True)
    shutil.copyfile(config, side / "config.json")
    return path


@pytest.fixture(scope="module")
def nets(models, tmp_path_factory):
    """A models folder with tiny-controlnet as a plain file and as a difference file (against tiny-sd)."""
    root = tmp_path_factory.mktemp("loaders") / "models"
    net = models.load("tiny-controlnet", "controlnet")
    unet = {f"diffusion_model.{ldm_key(k, models.info('tiny-sd').unet)}": v
            for k, v in models.load("tiny-sd", "unet").state_dict().items()}
    plain = ldm_controlnet(net)
    diff = {k: (v - unet[f"diffusion_model.{k[len('control_model.'):]}"]
                if f"diffusion_model.{k[len('control_model.'):]}" in unet else v) for k, v in plain.items()}
    shared = sum(f"diffusion_model.{k[len('control_model.'):]}" in unet for k in plain)
    assert shared > 50  # time embedding, conv_in, down and middle blocks
    diff["difference"] = torch.zeros(1)
    config = models.resolve("tiny-controlnet", "controlnet").path / "controlnet" / "config.json"
    write_controlnet(root, "plain", plain, config)
    write_controlnet(root, "diff_depth", diff, config)
    reg = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                        allow_paths=False)
    return ModelManager(reg), root


def _same(a, b, atol: float = 1e-6) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=atol) for k in sa)


def test_a_difference_controlnet_plus_the_unet_is_the_controlnet(nets, models):
    m, _ = nets
    original = models.load("tiny-controlnet", "controlnet")
    assert _same(m.load("plain", "controlnet"), original)  # the original layout loads as the diffusers one
    alone = m.load("diff_depth", "controlnet")
    assert not _same(alone, original)  # without its model a difference file is not the ControlNet
    restored = m.load({"name": "diff_depth", "diff_base": "tiny-sd"}, "controlnet")
    assert _same(restored, original, atol=1e-5)
    assert m.load({"name": "diff_depth", "diff_base": "tiny-sd"}, "controlnet") is restored  # cached by key
    assert not _same(m.load("diff_depth", "controlnet"), original)  # the plain load is untouched
    # a file without the difference key loads as it is, whatever model is named (as in ComfyUI)
    assert _same(m.load({"name": "plain", "diff_base": "tiny-sd"}, "controlnet"), original)


def test_the_base_model_is_the_model_as_the_workflow_has_it(nets, models, tmp_path):
    m, _ = nets
    g = torch.Generator().manual_seed(0)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    lora = tmp_path / "l.safetensors"
    save_file({f"{key}.lora_down.weight": torch.randn(4, 32, generator=g),
               f"{key}.lora_up.weight": torch.randn(64, 4, generator=g)}, str(lora))
    reg = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=m.registry.folders, allow_paths=True)
    mm = ModelManager(reg)
    with_lora = {"name": "tiny-sd", "loras": [{"path": str(lora), "weight": 1.0}]}
    restored = mm.load({"name": "diff_depth", "diff_base": with_lora}, "controlnet").state_dict()
    unet = mm.load(with_lora, "unet").state_dict()
    plain_unet = mm.load("tiny-sd", "unet").state_dict()
    original = models.load("tiny-controlnet", "controlnet").state_dict()
    k = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    assert torch.allclose(restored[k], original[k] + unet[k] - plain_unet[k], atol=1e-5)


def test_a_difference_controlnet_of_another_family_is_a_structured_error(nets):
    m, _ = nets
    with pytest.raises(ModelError) as exc:
        m.load({"name": "diff_depth", "diff_base": "tiny-sdxl"}, "controlnet")
    d = exc.value.to_dict()
    assert (d["reason"], d["field"], d["a"], d["b"]) == ("merge", "params.model.diff_base", "diff_depth",
                                                           "tiny-sdxl")


@pytest.mark.parametrize(("ref", "field", "reason"), [
    ({"name": "diff_depth", "diff_base": "/etc/passwd"}, "params.model.diff_base", "path"),
    ({"name": "diff_depth", "diff_base": "nobody"}, "params.model.diff_base", "unknown"),
    ({"name": "../controlnet/plain", "diff_base": "tiny-sd"}, "params.model", "path"),
])
def test_difference_controlnet_names_are_names(nets, ref, field, reason):
    m, _ = nets
    with pytest.raises(ModelError) as exc:
        m.check(ref, "controlnet")
    d = exc.value.to_dict()
    assert (d["field"], d["reason"]) == (field, reason), d
    assert "root:" not in d["message"]


def _workflow(loader: dict) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.ckpt"}},
        "33": loader,
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a room", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "20": {"class_type": "LoadImage", "inputs": {"image": "depth.png"}},
        "23": {"class_type": "ControlNetApply", "inputs": {"conditioning": ["6", 0], "control_net": ["33", 0],
                                                           "image": ["20", 0], "strength": 1.0}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 9, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["23", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "depth", "images": ["8", 0]}},
    }


def test_diff_controlnet_workflow_imports_clean_and_gives_the_controlnets_image(nets, catalog, tmp_path):
    m, _ = nets
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    sd_fixtures.write_png(inputs / "depth.png", sd_fixtures.noise_image(64, seed=5))
    names = {"v1-5-pruned-emaonly.ckpt": "tiny-sd", "diff_depth.safetensors": "diff_depth",
             "cn.safetensors": "tiny-controlnet"}
    diff = _workflow({"class_type": "DiffControlNetLoader",
                      "inputs": {"model": ["4", 0], "control_net_name": "diff_depth.safetensors"}})
    plain = _workflow({"class_type": "ControlNetLoader", "inputs": {"control_net_name": "cn.safetensors"}})
    unrestored = _workflow({"class_type": "ControlNetLoader",
                            "inputs": {"control_net_name": "diff_depth.safetensors"}})
    ui, why = api_to_ui(diff)
    assert ui is not None, why
    images = []
    for i, workflow in enumerate((diff, ui, plain, unrestored)):
        result = import_result(workflow, catalog=catalog, model_map=names, extra_mappings=COMFY_MAPPINGS)
        assert result.problems == [], [p.to_dict() for p in result.problems]
        assert check(result.graph, catalog) == []
        ex = LocalExecutor(catalog, models=m, input_root=inputs, outputs_dir=tmp_path / str(i))
        run = ex.run(result.graph)
        images.append(np.asarray(Image.open(run.files[0]["path"])).astype(int))
    assert np.array_equal(images[0], images[1])
    assert np.abs(images[0] - images[2]).max() <= 1  # diff + UNet is the ControlNet (float rounding aside)
    assert np.abs(images[3] - images[2]).max() > 1  # the difference file alone is not


# -- UNETLoader, CLIPLoader, DualCLIPLoader: models of parts ----------------------------------------------


def _configs(src: Path, dest: Path) -> None:
    """``src``'s diffusers configs and tokenizers (no weights) as the sidecar folder ``dest``."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))


@pytest.fixture(scope="module")
def part_files(models, tmp_path_factory):
    """tiny-sdxl's UNet (original layout, no prefix) and text encoders (CLIP-L under a prefix, CLIP-G bare) as
    separate files in unet/ and clip/, tiny-sd's UNet in diffusers' layout; each with its configs sidecar."""
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("parts") / "models"
    (root / "unet").mkdir(parents=True)
    (root / "clip").mkdir()
    xl = models.resolve("tiny-sdxl").folder
    ldm = sd_fixtures.to_ldm_checkpoint(xl)
    prefix = "model.diffusion_model."
    save_file({k[len(prefix):]: v.contiguous() for k, v in ldm.items() if k.startswith(prefix)},
              str(root / "unet" / "xl_unet.safetensors"))
    te = load_file(str(xl / "text_encoder" / "model.safetensors"))
    save_file({f"conditioner.embedders.0.transformer.{k}": v for k, v in te.items()},
              str(root / "clip" / "clip_l.safetensors"))
    shutil.copyfile(xl / "text_encoder_2" / "model.safetensors", root / "clip" / "clip_g.safetensors")
    sd1 = models.resolve("tiny-sd").folder
    shutil.copyfile(sd1 / "unet" / "diffusion_pytorch_model.safetensors",
                    root / "unet" / "sd1_unet.safetensors")
    save_file({"transformer.resblocks.0.attn.in_proj_weight": torch.zeros(3, 1)},
              str(root / "clip" / "open_clip.safetensors"))
    for stem, src in (("unet/xl_unet", xl), ("clip/clip_l", xl), ("clip/clip_g", xl), ("unet/sd1_unet", sd1)):
        _configs(src, root / f"{stem}.config")
    shutil.copyfile(root / "unet" / "sd1_unet.safetensors", root / "unet" / "no_sidecar.safetensors")
    reg = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                        allow_paths=False)
    return ModelManager(reg), root


UNET_XL = {"name": "@auto", "parts": [["unet", "xl_unet.safetensors"]]}
CLIP_XL = {"name": "@sdxl", "parts": [["text_encoder", "clip_g.safetensors"],  # either order, as ComfyUI
                                      ["text_encoder_2", "clip_l.safetensors"]]}


def test_a_unet_and_text_encoders_from_their_own_files_are_the_checkpoints(part_files, models):
    m, _ = part_files
    assert _same(m.load(UNET_XL, "unet"), models.load("tiny-sdxl", "unet"), atol=0)
    assert _same(m.load({"name": "@auto", "parts": [["unet", "sd1_unet"]]}, "unet"),
                 models.load("tiny-sd", "unet"), atol=0)  # diffusers' layout, named without the extension
    for component in ("text_encoder", "text_encoder_2"):
        assert _same(m.load(CLIP_XL, component), models.load("tiny-sdxl", component), atol=0)
    info = m.info(CLIP_XL)
    assert info.family == "sdxl" and len(m.load(CLIP_XL, "tokenizer_2")) > 0
    assert m.info(UNET_XL).unet == models.info("tiny-sdxl").unet


@pytest.mark.parametrize(("ref", "component", "reason", "words"), [
    (CLIP_XL, "vae", "component", "VAELoader"),
    (UNET_XL, "text_encoder", "component", "CLIPLoader"),
    ({"name": "@auto", "parts": [["unet", "no_sidecar"]]}, "unet", "config", "cannot be read"),
    ({"name": "@sd1", "parts": [["text_encoder", "open_clip"]]}, "text_encoder", "format", "OpenCLIP"),
    ({"name": "@auto", "parts": [["unet", "../unet/xl_unet.safetensors"]]}, "unet", "path", "never paths"),
    ({"name": "@auto", "parts": [["unet", "missing.safetensors"]]}, "unet", "unknown", "not configured"),
    ({"name": "@auto"}, "unet", "reference", "parts"),
    ({"name": "@x", "parts": [["vae", "v.safetensors"]]}, "unet", "reference", "vae"),
])
def test_models_of_parts_refuse_clearly(part_files, ref, component, reason, words):
    m, _ = part_files
    with pytest.raises(ModelError) as exc:
        m.load(ref, component)
    d = exc.value.to_dict()
    assert d["reason"] == reason and words in d["message"], d
    if reason in ("path", "unknown"):
        assert d["field"] == "params.model.parts[0]"


def _parts_workflow(loaders: dict, model: list, clip: list) -> dict:
    return {
        **loaders,
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": clip}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": clip}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 4, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0,
            "model": model, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["12", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "parts", "images": ["8", 0]}},
    }


def test_unet_and_dual_clip_loader_workflow_gives_the_checkpoints_image(part_files, catalog, tmp_path):
    m, _ = part_files
    parts = _parts_workflow({
        "10": {"class_type": "UNETLoader",
               "inputs": {"unet_name": "xl_unet.safetensors", "weight_dtype": "default"}},
        "11": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "clip_l.safetensors",
                                                          "clip_name2": "clip_g.safetensors", "type": "sdxl",
                                                          "device": "default"}},
        "12": {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}},
    }, ["10", 0], ["11", 0])
    whole = _parts_workflow({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "12": {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}},
    }, ["4", 0], ["4", 1])
    names = {"xl_unet.safetensors": "xl_unet.safetensors", "clip_l.safetensors": "clip_l.safetensors",
             "clip_g.safetensors": "clip_g.safetensors", "sdxl_vae.safetensors": "tiny-sdxl",
             "sd_xl_base_1.0.safetensors": "tiny-sdxl"}
    ui, why = api_to_ui(parts)
    assert ui is not None, why
    images = []
    for i, workflow in enumerate((parts, ui, whole)):
        result = import_result(workflow, catalog=catalog, model_map=names, extra_mappings=COMFY_MAPPINGS)
        assert result.problems == [], [p.to_dict() for p in result.problems]
        assert check(result.graph, catalog) == []
        run = LocalExecutor(catalog, models=m, outputs_dir=tmp_path / str(i)).run(result.graph)
        images.append(np.asarray(Image.open(run.files[0]["path"])))
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


@pytest.mark.parametrize(("node", "field"), [
    ({"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "a", "clip_name2": "b", "type": "flux"}},
     "type"),
    ({"class_type": "CLIPLoader", "inputs": {"clip_name": "t5xxl.safetensors", "type": "sd3"}}, "type"),
])
def test_clip_loaders_of_other_model_families_are_reported(catalog, node, field):
    wf = _parts_workflow({"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}},
                          "11": node, "12": {"class_type": "VAELoader", "inputs": {"vae_name": "v"}}},
                         ["4", 0], ["11", 0])
    result = import_result(wf, catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    errors = [e.to_dict() for e in result.errors]
    assert any(e["node"] == "11" and e["field"] == field for e in errors), errors


@pytest.mark.parametrize(("files", "family"), [
    ({"unet": {"input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
               "input_blocks.0.0.weight": (320, 4, 3, 3)}}, "sd1"),
    ({"unet": {"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
               "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}}, "sdxl"),
    ({"unet": {"input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
               "input_blocks.0.0.weight": (320, 9, 3, 3)}}, "sd2-inpaint"),
    ({"text_encoder": {"text_model.final_layer_norm.weight": (1024,)}}, "sd2"),
    ({"text_encoder": {"clip_l.text_model.final_layer_norm.weight": (768,)},
      "text_encoder_2": {"text_model.final_layer_norm.weight": (1280,)}}, "sdxl"),
])
def test_a_published_shape_is_told_from_the_headers_and_gets_the_shipped_configs(tmp_path, files, family):
    """Real-size part files (headers only matter: small zero tensors of the real shapes) need no sidecar: the
    family is read from the cross-attention or text widths and the shipped configs of that family are used."""
    from orchestrator.models.parts import detect_family

    root = tmp_path / "models"
    parts = []
    for component, tensors in files.items():
        folder = root / ("unet" if component == "unet" else "clip")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{component}.safetensors"
        save_file({k: torch.zeros(shape, dtype=torch.float16) for k, shape in tensors.items()}, str(path))
        parts.append([component, path.name])
    paths = {c: (root / ("unet" if c == "unet" else "clip") / f"{c}.safetensors") for c in files}
    assert detect_family(paths, {c: c for c in files}) == family
    reg = ModelRegistry(cache_dir=tmp_path / "cache", folders=ModelFolders([root]), allow_paths=False)
    info = ModelManager(reg).info({"name": "@auto", "parts": parts})
    assert info.family == ("sdxl" if family.startswith("sdxl") else "sd")
    assert info.folder.parent.name == "configs"  # the shipped configs, no weights loaded
