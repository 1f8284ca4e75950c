"""Single-file checkpoints offline: shipped configs, the CLIP tokenizer, conversion, legacy pickles.

The checkpoints are built here in the original CompVis/LDM key layout (SD 1.x and SDXL, base
and refiner, at tiny shapes) from diffusers pipelines, then loaded through the model folders
by name and compared pixel for pixel with diffusers' own ``from_single_file`` given the same
configs. One slow test does it at the full SD-1.5 shape with the shipped configs only.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.models import ModelError, ModelFolders, ModelManager, ModelRegistry
from orchestrator.models.detect import detect_file, read_header
from orchestrator.models.single_file import FAMILIES, clip_vocab, config_folder

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread


# -- the CLIP tokenizer and the shipped configs -------------------------------------------------------


def test_clip_tokenizer_is_derived_from_the_bpe_file(tmp_path):
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    assert len(vocab) == 49408 and len(merges) == 48894
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    sd1 = CLIPTokenizer.from_pretrained(str(config_folder("sd1", tmp_path) / "tokenizer"))
    # the ids OpenAI's CLIP (and every SD checkpoint's text encoder) was trained with
    assert sd1("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert sd1.pad_token == "<|endoftext|>"
    assert CLIPTokenizer.from_pretrained(str(config_folder("sd2", tmp_path) / "tokenizer")).pad_token == "!"
    xl = config_folder("sdxl", tmp_path)
    assert CLIPTokenizer.from_pretrained(str(xl / "tokenizer_2")).pad_token == "!"
    assert CLIPTokenizer.from_pretrained(str(xl / "tokenizer")).pad_token == "<|endoftext|>"


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_configs_are_complete_diffusers_folders(family, tmp_path):
    import diffusers
    from transformers import CLIPTextConfig

    folder = config_folder(family, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    assert hasattr(diffusers, index["_class_name"])
    unet = diffusers.UNet2DConditionModel.load_config(str(folder / "unet"))
    width = {"sd1": 768, "sd2": 1024, "sdxl": 2048}[family.split("-")[0]] if "refiner" not in family else 1280
    assert unet["cross_attention_dim"] == width
    assert unet["in_channels"] == {"inpaint": 9, "ip2p": 8}.get(family.rsplit("-", 1)[-1], 4)
    vae = diffusers.AutoencoderKL.load_config(str(folder / "vae"))
    assert vae["scaling_factor"] == (0.13025 if family.startswith("sdxl") else 0.18215)
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    v_prediction = family in ("sd2-v", "sd2-unclip-h", "sd2-unclip-l")
    assert (sched.get("prediction_type") == "v_prediction") == v_prediction
    if "unclip" in family:  # the image embedding and its noise level's embedding as class labels
        assert (unet["class_embed_type"], unet["projection_class_embeddings_input_dim"]) == \
            ("projection", {"h": 2048, "l": 1536}[family[-1]])
    for sub in ("text_encoder", "text_encoder_2"):
        if isinstance(index.get(sub), list) and index[sub][0]:
            CLIPTextConfig.from_pretrained(str(folder / sub))
    assert index.get("text_encoder", [None])[0] is None if family == "sdxl-refiner" else True


# -- tiny checkpoints in the original layout -----------------------------------------------------------


def tiny_xl_folder(dest: Path, refiner: bool = False) -> Path:
    """A tiny SDXL base (or refiner) whose two text encoders differ in width, as the real ones do."""
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from orchestrator.models import tiny

    if (dest / "model_index.json").is_file():
        return dest
    torch.manual_seed(0)
    tok, tok2 = tiny.make_tokenizer(), tiny.make_tokenizer(pad_token="!")
    bos, eos = tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    big = CLIPTextConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, projection_dim=48,
                         hidden_act="gelu", bos_token_id=bos, eos_token_id=eos, pad_token_id=eos)
    cross = 48 if refiner else 32 + 48
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(32, 64), layers_per_block=1,
        attention_head_dim=(2, 4), cross_attention_dim=cross, norm_num_groups=32,
        addition_embed_type="text_time", addition_time_embed_dim=8, use_linear_projection=True,
        projection_class_embeddings_input_dim=(5 if refiner else 6) * 8 + 48)
    common = dict(vae=tiny._vae(0.13025), text_encoder_2=CLIPTextModelWithProjection(big), tokenizer_2=tok2,
                  unet=unet, scheduler=EulerDiscreteScheduler(**tiny._SD_SCHEDULER))
    if refiner:
        pipe = StableDiffusionXLImg2ImgPipeline(text_encoder=None, tokenizer=None,
                                                requires_aesthetics_score=True,
                                                force_zeros_for_empty_prompt=False, **common)
    else:
        pipe = StableDiffusionXLPipeline(text_encoder=CLIPTextModel(tiny._clip_config(len(tok), bos, eos)),
                                         tokenizer=tok, **common)
    pipe.save_pretrained(str(dest), safe_serialization=True)
    return dest


def write_checkpoint(folder: Path, dest: Path, dtype: torch.dtype = torch.float16,
                     open_clip: bool = False) -> Path:
    """``folder`` (a diffusers pipeline) as one LDM-layout safetensors file at ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    state = sd_fixtures.to_ldm_checkpoint(folder, open_clip=open_clip)
    save_file({k: v.to(dtype).contiguous() for k, v in state.items()}, str(dest))
    return dest


def sidecar(folder: Path, checkpoint: Path) -> Path:
    """The configs of ``folder`` (no weights) as ``<stem>.config/`` next to ``checkpoint``."""
    side = checkpoint.with_name(checkpoint.name.rsplit(".", 1)[0] + ".config")
    shutil.copytree(folder, side, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return side


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """No network (any connection attempt fails the test) and an empty Hugging Face home."""
    attempts: list = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError(f"network is off in this test ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # ours must hold it offline by itself
    return attempts


def _manager(root: Path, cache: Path, entries=()) -> ModelManager:
    reg = ModelRegistry(list(entries), cache_dir=cache, folders=ModelFolders([root]), allow_paths=False)
    return ModelManager(reg)


def _pipe_image(pipe, **kw) -> np.ndarray:
    out = pipe(generator=torch.Generator().manual_seed(3), num_inference_steps=2, output_type="np", **kw)
    return out.images


def test_sd1_checkpoint_from_the_model_folder_equals_diffusers_pixel_for_pixel(models, tmp_path, offline):
    import diffusers

    folder = models.resolve("tiny-sd").folder
    root = tmp_path / "ComfyUI" / "models"
    ckpt = write_checkpoint(folder, root / "checkpoints" / "sd15" / "tiny.safetensors")
    side = sidecar(folder, ckpt)
    assert detect_file(ckpt).family == "sd1" and read_header(ckpt).main_dtype == "F16"
    cache = tmp_path / "cache"
    # one configured entry and the folder name point at the same file: one conversion
    mm = _manager(root, cache, [{"name": "alias", "source": str(ckpt), "config": str(side)}])
    ours = _pipe_image(mm.pipeline("sd15/tiny.safetensors"), prompt="a red fox", height=64, width=64)
    assert mm.resolve("sd15/tiny").converted == mm.resolve("alias").converted
    assert len(list((cache / "converted").iterdir())) == 1
    unet_file = mm.resolve("alias").converted / "unet" / "diffusion_pytorch_model.safetensors"
    assert read_header(unet_file).main_dtype == "F16"  # the fp16 file stays fp16 in the cache
    ref = diffusers.StableDiffusionPipeline.from_single_file(
        str(ckpt), config=str(folder), local_files_only=True, safety_checker=None,
        requires_safety_checker=False, torch_dtype=torch.float32)
    ref.set_progress_bar_config(disable=True)
    theirs = _pipe_image(ref, prompt="a red fox", height=64, width=64)
    assert np.array_equal(ours, theirs)
    assert offline == []  # not one connection attempted


def test_sd1_inpainting_checkpoint_is_told_apart_and_converts(models, tmp_path, offline):
    folder = models.resolve("tiny-sd-inpaint").folder
    root = tmp_path / "models"
    ckpt = write_checkpoint(folder, root / "checkpoints" / "inpaint.safetensors")
    sidecar(folder, ckpt)
    assert detect_file(ckpt).family == "sd1-inpaint"
    mm = _manager(root, tmp_path / "cache")
    ours, ref = mm.load("inpaint", "unet").state_dict(), models.load("tiny-sd-inpaint", "unet").state_dict()
    assert ours.keys() == ref.keys()
    assert all(torch.equal(ours[k], ref[k].half().float()) for k in ref)
    assert mm.info("inpaint").is_inpaint


def test_sd2_v_prediction_checkpoint_equals_diffusers_pixel_for_pixel(models, tmp_path, offline):
    """SD 2.x layout (OpenCLIP text encoder), v-prediction said by an A1111-style sidecar yaml."""
    import diffusers

    folder = tmp_path / "sd2v"
    shutil.copytree(models.resolve("tiny-sd").folder, folder)
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    sched["prediction_type"] = "v_prediction"
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched))
    root = tmp_path / "models"
    ckpt = write_checkpoint(folder, root / "checkpoints" / "v2.safetensors", open_clip=True)
    assert detect_file(ckpt).family == "sd2"
    ckpt.with_suffix(".yaml").write_text("model:\n  params:\n    parameterization: \"v\"\n")
    assert detect_file(ckpt).family == "sd2-v"
    sidecar(folder, ckpt)
    mm = _manager(root, tmp_path / "cache")
    assert mm.info("v2").scheduler["prediction_type"] == "v_prediction"
    ref = diffusers.StableDiffusionPipeline.from_single_file(
        str(ckpt), config=str(folder), local_files_only=True, safety_checker=None,
        requires_safety_checker=False, torch_dtype=torch.float32)
    ref.set_progress_bar_config(disable=True)
    kw = {"prompt": "a snowy peak", "height": 64, "width": 64}
    assert np.array_equal(_pipe_image(mm.pipeline("v2"), **kw), _pipe_image(ref, **kw))
    assert offline == []


@pytest.mark.parametrize("refiner", [False, True], ids=["sdxl", "sdxl-refiner"])
def test_sdxl_checkpoints_equal_diffusers_pixel_for_pixel(tmp_path, offline, refiner):
    import diffusers

    folder = tiny_xl_folder(tmp_path / "pipe", refiner=refiner)
    root = tmp_path / "models"
    ckpt = write_checkpoint(folder, root / "checkpoints" / "xl.safetensors", torch.float32)
    sidecar(folder, ckpt)
    assert detect_file(ckpt).family == ("sdxl-refiner" if refiner else "sdxl")
    mm = _manager(root, tmp_path / "cache")
    cls = diffusers.StableDiffusionXLImg2ImgPipeline if refiner else diffusers.StableDiffusionXLPipeline
    ref = cls.from_single_file(str(ckpt), config=str(folder), local_files_only=True)
    ref.set_progress_bar_config(disable=True)
    kw: dict = {"prompt": "a lighthouse"}
    if refiner:
        kw["image"] = np.random.default_rng(0).random((1, 64, 64, 3)).astype(np.float32)
        kw["strength"] = 0.6
    else:
        kw.update(height=64, width=64)
    assert np.array_equal(_pipe_image(mm.pipeline("xl"), **kw), _pipe_image(ref, **kw))
    assert offline == []


# -- bad files ------------------------------------------------------------------------------------------


def test_bad_files_give_one_clear_error_naming_the_file_and_cache_nothing(models, tmp_path):
    folder = models.resolve("tiny-sd").folder
    root = tmp_path / "models"
    good = write_checkpoint(folder, root / "checkpoints" / "good.safetensors")
    cut = root / "checkpoints" / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    disguised = root / "checkpoints" / "disguised.safetensors"
    disguised.write_bytes(pickle.dumps({"state_dict": {"w": [1.0] * 64}}))
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32)},
              str(root / "checkpoints" / "a-lora.safetensors"))
    xl = write_checkpoint(tiny_xl_folder(tmp_path / "xl"),
                          root / "checkpoints" / "xl-with-sd1-config.safetensors")
    sidecar(folder, xl)  # the wrong family's configs
    cache = tmp_path / "cache"
    mm = _manager(root, cache)
    expect = {"cut.safetensors": "truncated", "disguised.safetensors": "pickle",
              "a-lora.safetensors": "not a Stable Diffusion checkpoint",
              "xl-with-sd1-config.safetensors": "cannot convert"}
    for name, words in expect.items():
        with pytest.raises(ModelError) as info:
            mm.load(name, "unet")
        message = info.value.message
        assert words in message and name.rsplit(".", 1)[0] in message, message
        assert str(root) not in message and str(tmp_path) not in message, message
    converted = cache / "converted"
    assert not converted.exists() or [p.name for p in converted.iterdir()] == []


# -- legacy pickles -------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_legacy_checkpoints_load_weights_only_and_can_be_refused(models, tmp_path, capsys):
    from orchestrator.cli.main import main

    folder = models.resolve("tiny-sd").folder
    root = tmp_path / "models"
    state = {k: v.contiguous() for k, v in sd_fixtures.to_ldm_checkpoint(folder).items()}
    ckpt = root / "checkpoints" / "old.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": state, "global_step": 470000, "epoch": 3}, ckpt)  # a Lightning checkpoint
    sidecar(folder, ckpt)
    mm = _manager(root, tmp_path / "cache")
    ours, ref = mm.load("old.ckpt", "unet").state_dict(), models.load("tiny-sd", "unet").state_dict()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    # a pickle that would run code is refused by the weights-only loader, and runs nothing
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Evil(marker)}, root / "checkpoints" / "evil.ckpt")
    with pytest.raises(ModelError, match="weights-only") as info:
        _manager(root, tmp_path / "cache2").load("evil", "unet")
    assert not marker.exists() and str(root) not in info.value.message
    # model_files.legacy = "refuse": no pickle is opened at all
    reg = ModelRegistry(cache_dir=tmp_path / "c3", folders=ModelFolders([root]), allow_paths=False,
                        legacy="refuse")
    with pytest.raises(ModelError, match="pickle"):
        ModelManager(reg).load("old", "unet")
    # the conversion command writes the tensors under state_dict as safetensors
    assert main(["--state-dir", str(tmp_path / "s"), "models", "convert", str(ckpt),
                 "-o", str(tmp_path / "old.safetensors")]) == 0
    header = read_header(tmp_path / "old.safetensors")
    assert header.keys == set(state) and detect_file(tmp_path / "old.safetensors").family == "sd1"
    evil = root / "checkpoints" / "evil.ckpt"
    assert main(["--state-dir", str(tmp_path / "s"), "models", "convert", str(evil),
                 "-o", str(tmp_path / "evil.safetensors")]) == 1
    assert not marker.exists() and not (tmp_path / "evil.safetensors").exists()
    capsys.readouterr()


# -- an imported ComfyUI workflow, by file name, through the daemon ----------------------------------------


def test_comfyui_workflow_names_its_checkpoint_by_file_name_through_the_daemon(models, tmp_path):
    import httpx
    from daemon_process import Daemon

    folder = models.resolve("tiny-sd").folder
    base = tmp_path / "ComfyUI"
    ckpt = write_checkpoint(folder, base / "models" / "checkpoints" / "SD1.5" / "tiny_v1.safetensors")
    sidecar(folder, ckpt)
    workflow = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "SD1.5/tiny_v1.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                                                   "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                   "positive": ["6", 0], "negative": ["7", 0],
                                                   "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "fox", "images": ["8", 0]}},
    }
    state = tmp_path / "state"
    state.mkdir()
    d = Daemon(state, env={"ORCHESTRATOR_MODEL_FILES__ROOTS": str(base),
                           "ORCHESTRATOR_CACHE_DIR": str(tmp_path / "cache")}).start()
    try:
        with httpx.Client(base_url=d.url, timeout=120) as c:
            imported = c.post("/import/comfy", json=workflow).json()
            assert imported["valid"], imported["errors"]
            job = c.post("/jobs", json={"graph": imported["graph"]}).json()
            deadline = time.monotonic() + 600
            while (info := c.get(f"/jobs/{job['id']}").json())["state"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.25)
            assert info["state"] == "succeeded", info.get("errors")
            rows = {r["name"]: r for r in c.get("/models").json()}
            row = rows["SD1.5/tiny_v1.safetensors"]
            assert (row["kind"], row["family"], row["loaded"]) == ("checkpoint", "sd1", True)
    finally:
        d.kill()


# -- the full SD-1.5 shape, shipped configs only -------------------------------------------------------------


@pytest.mark.slow
def test_full_size_sd15_single_file_offline_load_times_cache_and_memory(tmp_path, offline):
    """A random-weight SD-1.5 pipeline at its real shape, saved as one fp16 LDM file, loaded by name
    with no config, an empty HF_HOME and no network: first (converting) and second load times,
    the cache's disk use, peak memory."""
    import resource

    import diffusers
    from transformers import CLIPTextModel, CLIPTokenizer

    cfg = config_folder("sd1", tmp_path / "cfg")
    torch.manual_seed(0)
    pipe_dir = tmp_path / "sd15"
    from transformers import CLIPTextConfig

    with torch.no_grad():
        pipe = diffusers.StableDiffusionPipeline(
            vae=diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(str(cfg / "vae"))),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(cfg / "text_encoder"))),
            tokenizer=CLIPTokenizer.from_pretrained(str(cfg / "tokenizer")),
            unet=diffusers.UNet2DConditionModel.from_config(
                diffusers.UNet2DConditionModel.load_config(str(cfg / "unet"))),
            scheduler=diffusers.PNDMScheduler.from_pretrained(str(cfg / "scheduler")), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(str(pipe_dir), safe_serialization=True)
        del pipe
    root = tmp_path / "models"
    ckpt = write_checkpoint(pipe_dir, root / "checkpoints" / "sd15-random.safetensors")
    shutil.rmtree(pipe_dir)
    cache = tmp_path / "cache"
    size = ckpt.stat().st_size
    components = ("unet", "vae", "text_encoder")
    t0 = time.perf_counter()
    first = _manager(root, cache)
    for comp in components:
        first.load("sd15-random", comp)
    t1 = time.perf_counter()
    del first
    t1b = time.perf_counter()
    second = _manager(root, cache)
    for comp in components:
        second.load("sd15-random", comp)
    t2 = time.perf_counter()
    held = second.report()["bytes_used"]
    del second
    # diffusers' own loader on the same file and configs: what loading it directly each time costs
    t2b = time.perf_counter()
    direct = diffusers.StableDiffusionPipeline.from_single_file(
        str(ckpt), config=str(config_folder("sd1", cache)), local_files_only=True, safety_checker=None,
        requires_safety_checker=False, torch_dtype=torch.float32)
    t3 = time.perf_counter()
    del direct
    used = sum(p.stat().st_size for p in (cache / "converted").rglob("*") if p.is_file())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nSD-1.5 fp16 single file {size / 2**30:.2f} GiB: first load (convert + load) {t1 - t0:.1f} s, "
          f"second load {t2 - t1b:.1f} s, diffusers from_single_file each time {t3 - t2b:.1f} s; "
          f"cache {used / 2**30:.2f} GiB; resident {held / 2**30:.2f} GiB (float32 on CPU); "
          f"peak RSS {peak / 1024:.2f} GiB")
    assert used < 1.2 * size  # one fp16 copy
    assert offline == []


# -- a VAE per model --------------------------------------------------------------------------------------


def test_a_model_entry_can_name_its_vae_from_the_vae_folder(models, tmp_path):
    folder = models.resolve("tiny-sd").folder
    root = tmp_path / "models"
    (root / "vae").mkdir(parents=True)
    ldm = sd_fixtures.to_ldm_checkpoint(folder)
    prefix = "first_stage_model."
    vae_ldm = {k[len(prefix):]: v.clone() for k, v in ldm.items() if k.startswith(prefix)}
    vae_ldm["decoder.conv_out.bias"] += 0.25  # a different VAE of the same architecture
    save_file({k: v.contiguous() for k, v in vae_ldm.items()}, str(root / "vae" / "alt.safetensors"))
    base = models.load("tiny-sd", "vae")
    shutil.copytree(folder / "vae", root / "vae" / "same-as-diffusers")
    entries = [{"name": "with-alt", "source": str(folder), "vae": "alt.safetensors"},
               {"name": "with-dir", "source": str(folder), "vae": "same-as-diffusers"},
               {"name": "with-path", "source": str(folder), "vae": str(root / "vae" / "alt.safetensors")}]
    mm = _manager(root, tmp_path / "cache", entries)
    alt = mm.load("with-alt", "vae")
    assert torch.equal(alt.decoder.conv_out.bias, base.decoder.conv_out.bias + 0.25)
    assert torch.equal(alt.encoder.conv_in.weight, base.encoder.conv_in.weight)
    same = mm.load("with-dir", "vae").state_dict()
    assert all(torch.equal(same[k], v) for k, v in base.state_dict().items())
    unet = mm.load("with-alt", "unet")
    assert torch.equal(unet.conv_in.weight, models.load("tiny-sd", "unet").conv_in.weight)
    with pytest.raises(ModelError) as info:  # the daemon's registry takes names, never paths, here too
        mm.load("with-path", "vae")
    assert info.value.details["reason"] == "path" and info.value.field == "vae"


# -- ControlNets and CLIP vision encoders kept alone in their folders ---------------------------------------


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sb)


def test_controlnets_and_clip_vision_from_their_folders_by_name(models, tmp_path):
    import diffusers

    from orchestrator.models.single_file import controlnet_config_folder

    cn, vit = models.resolve("tiny-controlnet").folder, models.resolve("tiny-clip-vision").folder
    root = tmp_path / "models"
    shutil.copytree(cn / "controlnet", root / "controlnet" / "as-folder")
    (root / "controlnet" / "sub").mkdir(parents=True)
    shutil.copyfile(cn / "controlnet" / "diffusion_pytorch_model.safetensors",
                    root / "controlnet" / "sub" / "as-file.safetensors")
    (root / "controlnet" / "sub" / "as-file.config").mkdir()
    shutil.copyfile(cn / "controlnet" / "config.json",
                    root / "controlnet" / "sub" / "as-file.config" / "config.json")
    shutil.copyfile(cn / "controlnet" / "diffusion_pytorch_model.safetensors",
                    root / "controlnet" / "no-config.safetensors")
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)},
              str(root / "controlnet" / "a-lora.safetensors"))
    shutil.copytree(vit / "image_encoder", root / "controlnet" / "wrong-class")
    shutil.copytree(vit / "image_encoder", root / "clip_vision" / "vit")
    mm = _manager(root, tmp_path / "cache")
    ref = models.load("tiny-controlnet", "controlnet")
    assert _same(mm.load("as-folder", "controlnet"), ref)
    assert _same(mm.load("sub/as-file.safetensors", "controlnet"), ref)
    assert _same(mm.load("vit", "image_encoder"), models.load("tiny-clip-vision", "image_encoder"))
    for name, words in (("no-config", "not a ControlNet of a known family"), ("a-lora", "not a ControlNet"),
                        ("wrong-class", "not a ControlNetModel")):
        with pytest.raises(ModelError, match=words) as info:
            mm.load(name, "controlnet")
        assert str(root) not in info.value.message
    # a full-size SD-1 ControlNet gets the config its base UNet implies (as lllyasviel's are made)
    cfg = diffusers.ControlNetModel.load_config(str(controlnet_config_folder("sd1", tmp_path / "c")))
    assert (cfg["cross_attention_dim"], cfg["attention_head_dim"], cfg["in_channels"]) == (768, 8, 4)
    assert cfg["block_out_channels"] == [320, 640, 1280, 1280]
    assert cfg["conditioning_embedding_out_channels"] == [16, 32, 96, 256]


def test_the_memory_budget_counts_the_real_dtype_sizes(models):
    import copy as copy_module

    from orchestrator.models.manager import module_bytes

    unet = models.load("tiny-sd", "unet")
    params = sum(p.numel() for p in unet.parameters()) + sum(b.numel() for b in unet.buffers())
    assert module_bytes(unet) == 4 * params
    half = copy_module.deepcopy(unet).half()
    assert module_bytes(half) == 2 * params and module_bytes(half.to(torch.bfloat16)) == 2 * params


def test_the_hub_library_is_held_offline_while_converting_and_restored_after(monkeypatch):
    import huggingface_hub.constants as hub_constants

    from orchestrator.models.single_file import hub_offline

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with hub_offline():
        assert hub_constants.is_offline_mode() and os.environ["HF_HUB_OFFLINE"] == "1"
    assert not hub_constants.HF_HUB_OFFLINE and "HF_HUB_OFFLINE" not in os.environ
