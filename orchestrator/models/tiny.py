"""The built-in tiny models: Stable Diffusion shapes with random weights, built locally.

``tiny-sd`` has the SD 1.x layout (UNet with cross-attention, a VAE that scales by 8, a
CLIP text encoder and its tokenizer); ``tiny-sd-inpaint`` is the same with a 9-channel
inpainting UNet; ``tiny-sdxl`` has the SDXL layout (two text encoders, pooled text
embeddings and added time ids). ``tiny-controlnet`` is a ControlNet for ``tiny-sd``,
``tiny-clip-vision`` a CLIP vision encoder with projection (image embeddings for style and
semantics) and ``tiny-ip-adapter`` an IP-Adapter for ``tiny-sd`` with that encoder. They
are built from configs on first use, with weights drawn from a counter-based generator
seeded by each parameter's name, and saved as ordinary diffusers folders under
``<cache_dir>/builtin/``: the same weights on every machine (:func:`weights_checksum`),
nothing downloaded. The tokenizer's vocabulary and
merges are built here too (byte-level BPE learnt from a fixed word list).

They are as small as the architectures allow: the UNet works on 8x8 latents for a 64x64
image (``sample_size=8``). Where time goes for a "small" UNet is mostly the image size a
pipeline picks by default, ``unet.config.sample_size * vae_scale_factor``: with
``sample_size=64`` and an 8x VAE that is 512x512, i.e. self-attention over 4096 latent
tokens and a VAE decode at full size; the channel counts hardly matter.

>>> sorted(TINY_MODELS)
['tiny-clip-vision', 'tiny-controlnet', 'tiny-ip-adapter', 'tiny-sd', 'tiny-sd-inpaint', 'tiny-sdxl']
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

TINY_VERSION = 1
SEED = 20240607
MAX_LENGTH = 77
CLIP_HIDDEN = 32
CLIP_LAYERS = 3

# -- tokenizer ---------------------------------------------------------------------------------

# words the BPE merges are learnt from: common prompt vocabulary
_CORPUS = """
a an the of in on at with and or by for to from under over near beside behind
photo photograph painting drawing illustration sketch render portrait landscape
red orange yellow green blue purple pink brown black white gray grey golden silver
fox dog cat bird horse lion tiger bear wolf deer rabbit owl eagle fish whale dragon
man woman girl boy child person people face hands eyes hair smile
tree forest mountain mountains lake river sea ocean beach sky cloud clouds sun sunset
sunrise dawn dusk night moon star stars snow rain fog storm winter summer spring autumn
city street house castle tower bridge harbour harbor garden park bench road car boat
highly detailed realistic photorealistic cinematic lighting soft light dramatic
sharp focus beautiful colorful vibrant dark bright moody epic fantasy science fiction
oil watercolor acrylic digital art concept anime style studio masterpiece best quality
wooden stone glass metal old new small large tiny huge little big
blurry ugly deformed low quality noisy bad text watermark signature
standing sitting running flying walking sleeping looking holding wearing
""".split()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def learn_merges(words: Iterable[str], max_merges: int) -> list[tuple[str, str]]:
    """Byte-level BPE merges learnt from ``words`` (deterministic: ties go to the smaller pair)."""
    b2u = bytes_to_unicode()
    seqs = []
    for w in words:
        chars = [b2u[b] for b in w.lower().encode("utf-8")]
        chars[-1] = chars[-1] + "</w>"
        seqs.append(chars)
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        counts: dict[tuple[str, str], int] = {}
        for s in seqs:
            for pair in itertools.pairwise(s):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        joined = best[0] + best[1]
        for k, s in enumerate(seqs):
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[k] = out
    return merges


def tokenizer_files(max_merges: int = 480) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The CLIP-style vocabulary and merges of the tiny tokenizer."""
    chars = list(bytes_to_unicode().values())
    merges = learn_merges(_CORPUS, max_merges)
    tokens = chars + [c + "</w>" for c in chars] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab: dict[str, int] = {}
    for t in tokens:
        vocab.setdefault(t, len(vocab))
    return vocab, merges


def make_tokenizer(pad_token: str = "<|endoftext|>") -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_files()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_LENGTH, pad_token=pad_token)


# -- configs -----------------------------------------------------------------------------------


def _clip_config(vocab_size: int, bos: int, eos: int, projection_dim: int = CLIP_HIDDEN) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=CLIP_HIDDEN, intermediate_size=64,
        num_hidden_layers=CLIP_LAYERS, num_attention_heads=4, max_position_embeddings=MAX_LENGTH,
        projection_dim=projection_dim, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )


def _vae(scaling_factor: float) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8,
        sample_size=64, scaling_factor=scaling_factor,
    )


def _unet(in_channels: int, cross_attention_dim: int, sdxl: bool) -> Any:
    from diffusers import UNet2DConditionModel

    extra: dict[str, Any] = {}
    if sdxl:
        extra = dict(addition_embed_type="text_time", addition_time_embed_dim=8,
                     projection_class_embeddings_input_dim=6 * 8 + CLIP_HIDDEN,
                     use_linear_projection=True)
    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64), layers_per_block=1, attention_head_dim=(2, 4),
        cross_attention_dim=cross_attention_dim, norm_num_groups=32, **extra,
    )


_SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                     num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")


def _components(name: str) -> tuple[str, dict[str, Any]]:
    from diffusers import DDIMScheduler, EulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tok = make_tokenizer()
    bos, eos = tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    clip = _clip_config(len(tok), bos, eos)
    if name in ("tiny-sd", "tiny-sd-inpaint"):
        comps = {
            "unet": _unet(9 if name == "tiny-sd-inpaint" else 4, CLIP_HIDDEN, sdxl=False),
            "vae": _vae(0.18215),
            "text_encoder": CLIPTextModel(clip),
            "tokenizer": tok,
            "scheduler": DDIMScheduler(**_SD_SCHEDULER, clip_sample=False, set_alpha_to_one=False),
            "safety_checker": None, "feature_extractor": None,
        }
        cls = "StableDiffusionInpaintPipeline" if name == "tiny-sd-inpaint" else "StableDiffusionPipeline"
        return cls, comps
    if name == "tiny-sdxl":
        comps = {
            "unet": _unet(4, 2 * CLIP_HIDDEN, sdxl=True),
            "vae": _vae(0.13025),
            "text_encoder": CLIPTextModel(clip),
            "text_encoder_2": CLIPTextModelWithProjection(clip),
            "tokenizer": tok,
            "tokenizer_2": make_tokenizer(pad_token="!"),
            "scheduler": EulerDiscreteScheduler(**_SD_SCHEDULER),
        }
        return "StableDiffusionXLPipeline", comps
    raise KeyError(f"no built-in model {name!r}; built-ins: {', '.join(sorted(TINY_MODELS))}")


TINY_MODELS: dict[str, str] = {
    "tiny-sd": "SD 1.x layout, random weights, 64x64 images (built locally)",
    "tiny-sd-inpaint": "tiny-sd with a 9-channel inpainting UNet (built locally)",
    "tiny-sdxl": "SDXL layout, two text encoders, random weights (built locally)",
    "tiny-controlnet": "a ControlNet for tiny-sd, random weights (built locally)",
    "tiny-clip-vision": "a CLIP vision encoder with projection, random weights (built locally)",
    "tiny-ip-adapter": "an IP-Adapter for tiny-sd with its image encoder (tiny-clip-vision), random "
                       "weights (built locally)",
}


# -- single-part models: a ControlNet, an image encoder, an IP-Adapter --------------------------
#
# Each is a folder with a ``model_index.json`` naming its part(s), so the model manager loads
# them like the parts of a pipeline (``load("tiny-controlnet", "controlnet")``). An IP-Adapter
# folder holds ``ip_adapter.safetensors`` in the layout of the published IP-Adapter files
# (``image_proj.*`` and ``ip_adapter.<n>.to_k_ip/to_v_ip.weight``) next to its image encoder.

IP_ADAPTER_FILE = "ip_adapter.safetensors"
IMAGE_TOKENS = 4  # image tokens an IP-Adapter adds to the prompt's (ImageProjection)


def _controlnet() -> Any:
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(_unet(4, CLIP_HIDDEN, sdxl=False), load_weights_from_unet=False,
                                     conditioning_embedding_out_channels=(8, 16, 16, 32))


def _clip_vision() -> Any:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(hidden_size=CLIP_HIDDEN, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, image_size=32, patch_size=8, projection_dim=CLIP_HIDDEN,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5)
    return CLIPVisionModelWithProjection(config)


def ip_adapter_state_dict(unet: Any, image_embed_dim: int, prefix: str) -> dict[str, Any]:
    """Seeded IP-Adapter weights for ``unet`` in the published file layout (flat keys)."""
    import torch

    cross = unet.config.cross_attention_dim
    proj = torch.nn.ModuleDict({"proj": torch.nn.Linear(image_embed_dim, IMAGE_TOKENS * cross),
                                "norm": torch.nn.LayerNorm(cross)})
    init_weights(proj, f"{prefix}.image_proj")
    out = {f"image_proj.{k}": v.detach().clone() for k, v in proj.state_dict().items()}
    key_id = 1
    blocks = list(unet.config.block_out_channels)
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = blocks[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(blocks))[int(name[len("up_blocks.")])]
        else:
            hidden = blocks[int(name[len("down_blocks.")])]
        layers = torch.nn.ModuleDict({kind: torch.nn.Linear(cross, hidden, bias=False)
                                      for kind in ("to_k_ip", "to_v_ip")})
        init_weights(layers, f"{prefix}.ip_adapter.{key_id}")
        for kind, layer in layers.items():
            out[f"ip_adapter.{key_id}.{kind}.weight"] = layer.weight.detach().clone()
        key_id += 2
    return out


def _build_parts(name: str, dest: Path) -> None:
    import diffusers
    from safetensors.torch import save_file

    dest.mkdir(parents=True)
    index: dict[str, Any] = {"_diffusers_version": diffusers.__version__}
    if name == "tiny-controlnet":
        net = _controlnet()
        init_weights(net, f"{name}.controlnet")
        net.save_pretrained(str(dest / "controlnet"), safe_serialization=True)
        index.update(_class_name="ControlNetModel", controlnet=["diffusers", "ControlNetModel"])
    else:
        encoder = _clip_vision()
        init_weights(encoder, "tiny-clip-vision.image_encoder")  # the same encoder in both
        from orchestrator.models.quiet import quiet_progress

        with quiet_progress():
            encoder.eval().save_pretrained(str(dest / "image_encoder"), safe_serialization=True)
        index.update(_class_name="CLIPVisionModelWithProjection",
                     image_encoder=["transformers", "CLIPVisionModelWithProjection"])
        if name == "tiny-ip-adapter":
            weights = ip_adapter_state_dict(_unet(4, CLIP_HIDDEN, sdxl=False),
                                            encoder.config.projection_dim, name)
            save_file({k: v.contiguous() for k, v in weights.items()}, str(dest / IP_ADAPTER_FILE))
            index["_class_name"] = "IPAdapter"
    (dest / "model_index.json").write_text(json.dumps(index, indent=2))


# -- weights -----------------------------------------------------------------------------------


def _uniform(key: str, n: int) -> np.ndarray:
    """``n`` floats in [-1, 1) from PCG64 raw output seeded by ``key`` (stable across versions)."""
    seed = np.random.SeedSequence([SEED, zlib.crc32(key.encode())])
    raw = np.random.PCG64(seed).random_raw(n)
    return ((raw >> np.uint64(40)).astype(np.float64) / float(1 << 24) * 2.0 - 1.0).astype(np.float32)


def init_weights(module: Any, prefix: str) -> None:
    """Overwrite every parameter of ``module`` with values that depend only on its name.

    Matrices and kernels get U(-1/sqrt(fan_in), 1/sqrt(fan_in)); vectors named ``weight``
    (norm scales) 1 + U(-0.1, 0.1); biases U(-0.05, 0.05). ``conv_out`` of the UNet is
    scaled down so that the predicted noise has about unit size.
    """
    import torch

    with torch.no_grad():
        for pname, p in module.named_parameters():
            u = torch.from_numpy(_uniform(f"{prefix}.{pname}", p.numel())).reshape(p.shape)
            if p.ndim >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                value = u / np.sqrt(fan_in)
            elif pname.endswith("weight"):
                value = 1.0 + 0.1 * u
            else:
                value = 0.05 * u
            p.copy_(value.to(p.dtype))


def weights_checksum(folder: str | Path) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes) of the model's safetensors files.

    Text-encoder tensor names are taken without transformers 4's ``text_model.`` level, so the
    figure is the same under transformers 4 and 5.
    """
    from safetensors import safe_open

    h = hashlib.sha256()
    root = Path(folder)
    for f in sorted(root.rglob("*.safetensors")):
        with safe_open(str(f), framework="np") as st:
            for key in sorted(st.keys()):
                arr = st.get_tensor(key)
                name = key.removeprefix("text_model.")  # transformers 5 dropped that level
                h.update(f"{f.relative_to(root).as_posix()}:{name}:{arr.dtype}:{arr.shape}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# -- building ----------------------------------------------------------------------------------


def build(name: str, dest: str | Path) -> Path:
    """Build the tiny model ``name`` into the folder ``dest`` (which must not exist)."""
    import diffusers
    import torch

    if name in ("tiny-controlnet", "tiny-clip-vision", "tiny-ip-adapter"):
        _build_parts(name, Path(dest))
        _stamp(name, Path(dest))
        return Path(dest)
    cls_name, comps = _components(name)
    for key, comp in comps.items():
        if isinstance(comp, torch.nn.Module):
            init_weights(comp, f"{name.replace('-inpaint', '')}.{key}" if key != "unet" else f"{name}.unet")
            comp.eval()
    pipe_cls = getattr(diffusers, cls_name)
    kwargs = dict(comps)
    if cls_name == "StableDiffusionXLPipeline":
        pipe = pipe_cls(**kwargs, force_zeros_for_empty_prompt=True, add_watermarker=False)
    else:
        pipe = pipe_cls(**kwargs, requires_safety_checker=False)
    from orchestrator.models.quiet import quiet_progress

    with quiet_progress():
        pipe.save_pretrained(str(dest), safe_serialization=True)
    vocab, merges = tokenizer_files()
    for sub in ("tokenizer", "tokenizer_2"):
        if (Path(dest) / sub).is_dir():  # the slow-tokenizer files too, for older transformers
            (Path(dest) / sub / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False),
                                                         encoding="utf-8")
            (Path(dest) / sub / "merges.txt").write_text(
                "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    _stamp(name, Path(dest))
    return Path(dest)


def _stamp(name: str, dest: Path) -> None:
    import diffusers
    import torch

    info = {"name": name, "version": TINY_VERSION, "seed": SEED, "built_with": {
        "diffusers": diffusers.__version__, "torch": torch.__version__}}
    (dest / "orchestrator_builtin.json").write_text(json.dumps(info, indent=2))


def tiny_path(name: str, cache_dir: str | Path) -> Path:
    """Where the built-in ``name`` lives (or will live) under ``cache_dir``."""
    if name not in TINY_MODELS:
        raise KeyError(f"no built-in model {name!r}; built-ins: {', '.join(sorted(TINY_MODELS))}")
    return Path(cache_dir) / "builtin" / f"{name}-v{TINY_VERSION}"


def ensure_tiny(name: str, cache_dir: str | Path) -> Path:
    """The folder of the built-in ``name``, building it first if it is not there yet.

    Safe when several processes race: each builds into its own temporary folder and the
    first atomic rename wins.
    """
    dest = tiny_path(name, cache_dir)
    if (dest / "model_index.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        build(name, tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "model_index.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
