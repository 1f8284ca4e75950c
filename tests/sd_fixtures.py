"""Fixtures and helpers for tests that use the built-in tiny models.

Import from a test module (the tests folder is not a package)::

    sys.path.insert(0, str(Path(__file__).parent))
    import sd_fixtures
    models = sd_fixtures.models                      # the fixtures a module uses
    one_torch_thread = sd_fixtures.one_torch_thread  # autouse: one torch thread in the module

The tiny models are built once into a cache shared by test sessions
(``$ORCHESTRATOR_TEST_CACHE``, default ``<tmp>/orchestrator-test-cache-<uid>``); builds are
versioned and atomic, and ``test_models.py`` checks their weights against fixed checksums.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.models import ModelManager, ModelRegistry


def tiny_cache_dir() -> Path:
    named = os.environ.get("ORCHESTRATOR_TEST_CACHE")
    if named:
        return Path(named)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"orchestrator-test-cache-{uid}"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run faster on one thread, and far more steadily on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def model_registry() -> ModelRegistry:
    """The registry with only the built-ins, over the shared test cache."""
    return ModelRegistry(cache_dir=tiny_cache_dir())


@pytest.fixture(scope="session")
def models(model_registry: ModelRegistry) -> ModelManager:
    """One model manager for the session (components stay resident between tests)."""
    return ModelManager(model_registry)


def write_png(path: Path, array: np.ndarray) -> Path:
    """Save a uint8 ``[H, W, 3]`` or ``[H, W]`` array as PNG."""
    Image.fromarray(array).save(path)
    return path


def noise_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth-ish random RGB image, uint8 ``[size, size, 3]``."""
    rng = np.random.default_rng(seed)
    small = rng.random((size // 8, size // 8, 3))
    big = np.kron(small, np.ones((8, 8, 1)))
    return (np.clip(0.7 * big + 0.3 * rng.random((size, size, 3)), 0, 1) * 255).astype(np.uint8)


def rect_mask(size: int = 64, box: tuple[int, int, int, int] = (8, 16, 40, 48)) -> np.ndarray:
    """A uint8 mask, 255 inside ``box`` = (left, top, right, bottom)."""
    m = np.zeros((size, size), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    return m


def to_ldm_checkpoint(folder: Path, open_clip: bool = False) -> dict:
    """A diffusers SD 1.x/2.x or SDXL folder as an original (LDM) single-file state dict (single-file tests).

    ``open_clip``: write the (SD 1.x-shaped) text encoder in OpenCLIP's layout, as SD 2.x files have it.

    The inverse of diffusers' single-file conversion, for any ``layers_per_block`` and number of
    levels (what the tiny model needs; SD 1.5 is the 4-level, 2-layer case).
    """
    import json

    from safetensors.torch import load_file

    out: dict = {}
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    n_layers = unet_cfg["layers_per_block"]
    res = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
    up_has_attn = {i: t.startswith("CrossAttn") for i, t in enumerate(unet_cfg["up_block_types"])}
    for key, value in load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors")).items():
        p = key.split(".")
        if p[0] == "time_embedding":
            new = f"time_embed.{0 if p[1] == 'linear_1' else 2}.{p[2]}"
        elif p[0] == "conv_in":
            new = f"input_blocks.0.0.{p[1]}"
        elif p[0] == "conv_norm_out":
            new = f"out.0.{p[1]}"
        elif p[0] == "conv_out":
            new = f"out.2.{p[1]}"
        elif p[0] in ("add_embedding", "class_embedding"):  # SDXL's micro-conditioning, unCLIP's image
            new = f"label_emb.0.{0 if p[1] == 'linear_1' else 2}.{p[2]}"
        elif p[0] == "down_blocks":
            i, kind, j, rest = int(p[1]), p[2], int(p[3]), p[4:]
            if kind == "downsamplers":
                new = f"input_blocks.{(i + 1) * (n_layers + 1)}.0.op.{rest[-1]}"
            elif kind == "resnets":
                new = f"input_blocks.{1 + i * (n_layers + 1) + j}.0.{res[rest[0]]}.{rest[1]}"
            else:
                new = f"input_blocks.{1 + i * (n_layers + 1) + j}.1.{'.'.join(rest)}"
        elif p[0] == "mid_block":
            kind, j, rest = p[1], int(p[2]), p[3:]
            if kind == "resnets":
                new = f"middle_block.{2 * j}.{res[rest[0]]}.{rest[1]}"
            else:
                new = f"middle_block.1.{'.'.join(rest)}"
        elif p[0] == "up_blocks":
            i, kind, j, rest = int(p[1]), p[2], int(p[3]), p[4:]
            base = i * (n_layers + 1)
            if kind == "upsamplers":
                new = f"output_blocks.{base + n_layers}.{2 if up_has_attn[i] else 1}.conv.{rest[-1]}"
            elif kind == "resnets":
                new = f"output_blocks.{base + j}.0.{res[rest[0]]}.{rest[1]}"
            else:
                new = f"output_blocks.{base + j}.1.{'.'.join(rest)}"
        else:
            raise KeyError(key)
        out[f"model.diffusion_model.{new}"] = value

    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    n_up = len(vae_cfg["up_block_types"])
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
    for key, value in load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors")).items():
        p = key.split(".")
        if p[0] in ("quant_conv", "post_quant_conv"):
            new = key
        else:
            side, rest = p[0], p[1:]
            if rest[0] in ("conv_in", "conv_out"):
                new = f"{side}.{'.'.join(rest)}"
            elif rest[0] == "conv_norm_out":
                new = f"{side}.norm_out.{rest[1]}"
            elif rest[0] == "mid_block":
                if rest[1] == "resnets":
                    new = f"{side}.mid.block_{int(rest[2]) + 1}.{'.'.join(rest[3:])}"
                else:
                    name = attn[rest[3]]
                    new = f"{side}.mid.attn_1.{name}.{rest[-1]}"
                    if name in ("q", "k", "v", "proj_out") and rest[-1] == "weight":
                        value = value[:, :, None, None]
            else:
                i = int(rest[1]) if side == "encoder" else n_up - 1 - int(rest[1])
                level = "down" if side == "encoder" else "up"
                if rest[2] == "resnets":
                    inner = rest[4].replace("conv_shortcut", "nin_shortcut")
                    new = f"{side}.{level}.{i}.block.{rest[3]}.{inner}.{rest[5]}"
                else:
                    sample = "downsample" if side == "encoder" else "upsample"
                    new = f"{side}.{level}.{i}.{sample}.conv.{rest[-1]}"
        out[f"first_stage_model.{new}"] = value

    if (folder / "text_encoder_2").is_dir():  # SDXL: CLIP-L as embedder 0, OpenCLIP bigG as embedder 1
        second = load_file(str(folder / "text_encoder_2" / "model.safetensors"))
        if not (folder / "text_encoder").is_dir():  # the refiner: OpenCLIP bigG alone, as embedder 0
            out.update(_to_open_clip(second, "conditioner.embedders.0.model."))
            return out
        for key, value in load_file(str(folder / "text_encoder" / "model.safetensors")).items():
            name = key if key.startswith("text_model.") else f"text_model.{key}"
            out[f"conditioner.embedders.0.transformer.{name}"] = value
        out.update(_to_open_clip(second, "conditioner.embedders.1.model."))
        return out
    first = load_file(str(folder / "text_encoder" / "model.safetensors"))
    if open_clip:  # SD 2.x: the OpenCLIP text encoder's layout
        out.update(_to_open_clip(first, "cond_stage_model.model."))
        return out
    for key, value in first.items():
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        out[f"cond_stage_model.transformer.{name}"] = value
    return out


def _to_open_clip(sd: dict, prefix: str) -> dict:
    """A transformers CLIP text model (with projection) in OpenCLIP's layout (SDXL's second encoder)."""
    import torch

    out: dict = {}
    fixed = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias"}
    qkv: dict = {}
    for key, value in sd.items():
        if not key.startswith(("text_model.", "text_projection.")):
            key = f"text_model.{key}"  # transformers >= 5.6 saves CLIPTextModel without the prefix
        if key in fixed:
            out[prefix + fixed[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif key.startswith("text_model.encoder.layers."):
            rest = key[len("text_model.encoder.layers."):]
            i, sub = rest.split(".", 1)
            head = f"{prefix}transformer.resblocks.{i}."
            if sub.startswith("self_attn.") and sub.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                proj, kind = sub.split(".")[1], sub.split(".")[2]
                qkv.setdefault((head, kind), {})[proj] = value
                continue
            for ours, theirs in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                                 ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                sub = sub.replace(ours, theirs)
            out[head + sub] = value
    for (head, kind), parts in qkv.items():
        out[f"{head}attn.in_proj_{kind}"] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]])
    return out
