"""Single-file checkpoints (the original Stable Diffusion layout), converted offline.

A checkpoint's family is read from its tensor names and shapes (see
:mod:`orchestrator.models.detect`): SD 1.x, SD 2.x (512 epsilon and 768 v-prediction), SDXL
base, SDXL refiner and their inpainting variants. The diffusers component configs of each
family ship with this package (``configs/<family>/``, the same JSON as the published
diffusers repos named in each ``source.json``); the CLIP tokenizer's vocabulary and merges
are derived, deterministically, from the BPE file in ``configs/clip/`` (OpenAI's, as pip
installs it with open_clip). So nothing is looked up on the Hugging Face hub or in its cache:
diffusers is given a complete local config folder and ``local_files_only``, and the hub
library is held offline while it converts, whatever the environment says.

A conversion is written once into the cache, keyed on the file's identity (resolved path,
size, mtime), the config and the dtype, whatever name the file is used under; it is built
in a temporary folder and renamed into place only when complete, so a failed or partial
conversion is never cached. An fp16 (or bf16) file stays fp16 (bf16) in the converted copy.

Legacy pickles (``.ckpt``, ``.pt``, ``.pth``) are read only with torch's weights-only loader
(never a full unpickle), weights under ``state_dict`` included, or refused outright when
``model_files.legacy = "refuse"``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError

CONFIGS = Path(__file__).resolve().parent / "configs"
BPE_FILE = CONFIGS / "clip" / "bpe_simple_vocab_16e6.txt.gz"
FAMILIES = ("sd1", "sd1-inpaint", "sd2", "sd2-v", "sd2-inpaint", "sdxl", "sdxl-refiner", "sdxl-inpaint",
            "sd2-unclip-h", "sd2-unclip-l", "sd1-ip2p", "sdxl-ip2p")
PIPELINES = {"sd1": "StableDiffusionPipeline", "sd2": "StableDiffusionPipeline",
             "sd2-v": "StableDiffusionPipeline", "sd1-inpaint": "StableDiffusionInpaintPipeline",
             "sd2-inpaint": "StableDiffusionInpaintPipeline", "sdxl": "StableDiffusionXLPipeline",
             "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
             "sdxl-inpaint": "StableDiffusionXLInpaintPipeline",
             "sd2-unclip-h": "StableDiffusionPipeline", "sd2-unclip-l": "StableDiffusionPipeline",
             "sd1-ip2p": "StableDiffusionPipeline", "sdxl-ip2p": "StableDiffusionXLPipeline"}
# names older entries used for ``family``
ALIASES = {"sd": "sd1", "inpaint": "sd1-inpaint"}
UNCLIP_VISION = "embedder.model.visual."  # where an SD 2.1 unCLIP checkpoint keeps its CLIP vision tower
CONVERSION_VERSION = 2  # bump when what a conversion writes changes
_LOCK = threading.Lock()


# -- the CLIP tokenizer, built from the BPE file ---------------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI CLIP's byte -> printable character table (the same as GPT-2's)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


@lru_cache(maxsize=1)
def clip_vocab() -> tuple[dict[str, int], tuple[str, ...]]:
    """CLIP's vocabulary (49408 entries) and merges, derived from the BPE file as HF's files are:
    the byte characters, the same with ``</w>``, one token per merge, then the two specials."""
    with gzip.open(BPE_FILE, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    merges = tuple(lines[1:49152 - 256 - 2 + 1])
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer_files(folder: Path) -> None:
    """``vocab.json`` and ``merges.txt`` of the CLIP tokenizer into ``folder``."""
    vocab, merges = clip_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


# -- the config folders ------------------------------------------------------------------------------


def family_key(family: str) -> str:
    fam = ALIASES.get(family, family)
    if fam not in FAMILIES:
        raise ModelError(f"no shipped config for family {family!r}; families: {', '.join(FAMILIES)}",
                         reason="config")
    return fam


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(CONFIGS)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def config_folder(family: str, cache_dir: str | Path) -> Path:
    """A complete diffusers config folder for ``family`` (configs and tokenizers, no weights),
    built once in ``cache_dir/configs`` from the package's files; rebuilt when they change."""
    fam = family_key(family)
    src = CONFIGS / fam
    files = [p for p in src.rglob("*.json") if p.name != "source.json"]
    dest = Path(cache_dir) / "configs" / f"{fam}-{_digest([*files, BPE_FILE])}"
    if (dest / "model_index.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        for f in files:
            target = tmp / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
        for sub in ("tokenizer", "tokenizer_2"):
            if (tmp / sub).is_dir():
                write_tokenizer_files(tmp / sub)
        with contextlib.suppress(OSError):
            os.rename(tmp, dest)  # a concurrent builder may have won: its folder is the same
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# -- offline -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """The Hugging Face hub library held offline (its constants are read at import time, so the
    environment variable alone is not enough once it is imported)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in names}
    patched: list[tuple[Any, str, Any]] = []
    with _LOCK:
        for k in saved_env:
            os.environ[k] = "1"
        for mod_name, attr in (("huggingface_hub.constants", "HF_HUB_OFFLINE"),
                               ("diffusers.utils.constants", "HF_HUB_OFFLINE"),
                               ("diffusers.utils.hub_utils", "HF_HUB_OFFLINE"),
                               ("transformers.utils.hub", "_is_offline_mode")):
            import importlib

            try:
                mod = importlib.import_module(mod_name)
            except ImportError:
                continue
            if hasattr(mod, attr):
                patched.append((mod, attr, getattr(mod, attr)))
                setattr(mod, attr, True)
        try:
            yield
        finally:
            for mod, attr, value in patched:
                setattr(mod, attr, value)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# -- reading checkpoints -----------------------------------------------------------------------------


def checkpoint_family(path: str | Path, display: str | None = None) -> str:
    """The family of a safetensors checkpoint in the original layout (reads its header only)."""
    from orchestrator.models.detect import UNET, read_header
    from orchestrator.models.detect import checkpoint_family as fam_of

    header = read_header(path, display)
    if not any(k.startswith(UNET) for k in header.keys):
        raise ModelError(f"model file {display or Path(path).name!r} is not a Stable Diffusion checkpoint "
                         f"(no model.diffusion_model.* tensors)", reason="format", file=display)
    return fam_of(header, path)[0]


def legacy_state_dict(path: str | Path, display: str, legacy: str = "weights_only") -> dict[str, Any]:
    """The tensors of a ``.ckpt``/``.pt``/``.pth`` file, read with torch's weights-only loader.

    Weights under ``state_dict`` (Lightning checkpoints, as most LDM ones are) are taken from
    there; anything that is not a tensor is dropped. ``legacy="refuse"`` refuses the file.
    """
    import pickle

    import torch

    if legacy == "refuse":
        raise ModelError(f"model file {display!r} is a legacy pickle (.ckpt/.pt); model_files.legacy is "
                         f"'refuse': convert it once with `orchestrator models convert`", reason="pickle",
                         file=display)
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model file {display!r} cannot be read with torch's weights-only loader (it "
                         f"holds more than tensors, or it is damaged): {first[:200]}", reason="pickle",
                         file=display) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelError(f"model file {display!r} holds no state dict", reason="format", file=display)
    tensors = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelError(f"model file {display!r} holds no tensors", reason="format", file=display)
    return tensors


def legacy_to_safetensors(path: str | Path, out: str | Path, display: str,
                          legacy: str = "weights_only") -> Path:
    """Write the tensors of a legacy pickle to ``out`` as safetensors (shared storage resolved)."""
    from safetensors.torch import save_file

    tensors = legacy_state_dict(path, display, legacy)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file({k: v.contiguous().clone() for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def dtype_of(path: str | Path) -> str:
    """``float16``, ``bfloat16`` or ``float32``: what most of a safetensors file's bytes are."""
    from orchestrator.models.detect import read_header

    main = read_header(path).main_dtype
    return {"F16": "float16", "BF16": "bfloat16"}.get(main or "", "float32")


# -- converting ----------------------------------------------------------------------------------------


def conversion_key(path: str | Path, config: str | Path | None, family: str, dtype: str) -> str:
    """The cache key of a conversion: the file's identity, the config and the dtype."""
    p = Path(path).resolve()
    st = p.stat()
    cfg = str(Path(config).resolve()) if config is not None else f"shipped:{family}"
    stamp = json.dumps([str(p), st.st_size, st.st_mtime_ns, cfg, dtype, CONVERSION_VERSION])
    return hashlib.sha256(stamp.encode()).hexdigest()[:20]


def convert_checkpoint(path: str | Path, dest: str | Path, *, name: str, config: str | Path | None = None,
                       family: str = "auto", cache_dir: str | Path | None = None,
                       dtype: str | None = None) -> Path:
    """Convert the safetensors checkpoint at ``path`` into the diffusers folder ``dest``.

    ``config`` is a diffusers folder with the component configs; without one the shipped
    configs of the detected ``family`` are used (built under ``cache_dir``). ``dtype``
    defaults to the file's own. The network is never touched.
    """
    import diffusers
    import torch

    from orchestrator.models.safety import require_safetensors

    require_safetensors(path, f"model {name!r}:")
    detected = checkpoint_family(path, name)
    fam = detected if family == "auto" else family_key(family)
    if family != "auto" and detected.endswith("-inpaint") and not fam.endswith("-inpaint"):
        fam = f"{fam}-inpaint" if f"{fam}-inpaint" in FAMILIES else fam
    if config is None:
        config = config_folder(fam, cache_dir or Path(dest).parent)
    cls = getattr(diffusers, PIPELINES[fam])
    kwargs: dict[str, Any] = {"local_files_only": True, "config": str(config),
                              "torch_dtype": getattr(torch, dtype or dtype_of(path))}
    if "XL" not in cls.__name__:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    from orchestrator.models.quiet import quiet_progress

    try:
        with hub_offline(), quiet_progress():
            pipe = cls.from_single_file(str(path), **kwargs)
    except Exception as exc:  # diffusers raises many kinds; all mean "cannot convert"
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {name!r}: cannot convert the single-file checkpoint ({fam}): "
                         f"{type(exc).__name__}: {first}", reason="load", model=name) from exc
    with quiet_progress():
        pipe.save_pretrained(str(dest), safe_serialization=True)
    add_image_encoder(path, Path(dest), name, kwargs["torch_dtype"])
    edm_scheduler(path, Path(dest), name)
    (Path(dest) / "orchestrator_source.json").write_text(json.dumps({"family": fam, "dtype": str(kwargs[
        "torch_dtype"]).replace("torch.", "")}))
    return Path(dest)


def add_image_encoder(path: str | Path, dest: Path, name: str, dtype: Any) -> bool:
    """An unCLIP checkpoint's CLIP vision tower (open_clip's, under ``embedder.model.visual.``) saved as the
    converted folder's ``image_encoder``, as ComfyUI's unCLIPCheckpointLoader gives it; False without one."""
    from safetensors import safe_open

    from orchestrator.models import clip_vision
    from orchestrator.models.detect import read_header

    prefix = UNCLIP_VISION
    if f"{prefix}transformer.resblocks.0.attn.in_proj_weight" not in read_header(path, name).keys:
        return False
    with safe_open(str(path), "pt") as f:
        sd = {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    encoder = clip_vision.build(sd, name, dtype)
    from orchestrator.models.quiet import quiet_progress

    with quiet_progress():
        encoder.save_pretrained(str(dest / "image_encoder"), safe_serialization=True)
    index = json.loads((dest / "model_index.json").read_text())
    index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
    (dest / "model_index.json").write_text(json.dumps(index, indent=2))
    return True


def edm_scheduler(path: str | Path, dest: Path, name: str) -> bool:
    """A checkpoint with ``edm_vpred.sigma_min``/``sigma_max`` (CosXL, CosXL edit) samples as ComfyUI's
    ModelSamplingContinuousEDM (v_prediction, sigma_data 1.0) between those sigmas: the converted folder
    gets that EDM scheduler config. False without them."""
    from orchestrator.models.detect import read_header, read_tensor

    header = read_header(path, name)
    if not {"edm_vpred.sigma_min", "edm_vpred.sigma_max"} <= header.keys:
        return False
    lo, hi = (read_tensor(path, header, f"edm_vpred.{k}") for k in ("sigma_min", "sigma_max"))
    if lo is None or hi is None or lo.size != 1 or hi.size != 1 or not 0 < float(lo) < float(hi):
        raise ModelError(f"model {name!r}: its edm_vpred sigmas are not 0 < sigma_min < sigma_max",
                         reason="format", model=name)
    config = {"_class_name": "EDMEulerScheduler", "sigma_min": float(lo), "sigma_max": float(hi),
              "sigma_data": 1.0, "prediction_type": "v_prediction", "comfyui_sampling": "v_prediction",
              "num_train_timesteps": 1000}
    (dest / "scheduler" / "scheduler_config.json").write_text(json.dumps(config, indent=2))
    index = json.loads((dest / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "EDMEulerScheduler"]
    (dest / "model_index.json").write_text(json.dumps(index, indent=2))
    return True


def ensure_converted(path: str | Path, dest: str | Path, *, name: str, config: str | Path | None = None,
                     family: str = "auto", cache_dir: str | Path | None = None) -> Path:
    """``dest`` holding the conversion of ``path``: built in a temporary folder and renamed into
    place when complete; a failure leaves nothing behind."""
    dest = Path(dest)
    if (dest / "model_index.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        convert_checkpoint(path, tmp, name=name, config=config, family=family, cache_dir=cache_dir)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "model_index.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


# -- ControlNets -------------------------------------------------------------------------------------------


def controlnet_config_folder(family: str, cache_dir: str | Path) -> Path:
    """A ``config.json`` folder for a ControlNet of ``family``: its base UNet's config, as diffusers'
    ``ControlNetModel.from_unet`` derives it (the published ControlNets are made that way)."""
    import inspect

    from diffusers import ControlNetModel

    base = config_folder(family.replace("-inpaint", ""), cache_dir)
    unet = json.loads((base / "unet" / "config.json").read_text())
    params = set(inspect.signature(ControlNetModel.__init__).parameters)
    cfg = {k: v for k, v in unet.items() if k in params}
    cfg.update(_class_name="ControlNetModel", in_channels=4, conditioning_channels=3,
               conditioning_embedding_out_channels=[16, 32, 96, 256],
               controlnet_conditioning_channel_order="rgb", global_pool_conditions=False)
    text = json.dumps(dict(sorted(cfg.items())), indent=2)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    dest = Path(cache_dir) / "configs" / f"controlnet-{family}-{digest}"
    if not (dest / "config.json").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        tmp = dest / f".config.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(text)
        os.replace(tmp, dest / "config.json")
    return dest


def load_controlnet(path: str | Path, *, name: str, config: str | Path | None, cache_dir: str | Path,
                    dtype: str) -> Any:
    """A ControlNet from one safetensors file (original ``control_model.*`` or diffusers layout), with
    ``config`` (a folder with ``config.json``) or the config its family's UNet implies."""
    import diffusers
    import torch

    from orchestrator.models.detect import detect_file
    from orchestrator.models.quiet import quiet_progress
    from orchestrator.models.safety import require_safetensors

    require_safetensors(path, f"ControlNet {name!r}:")
    if config is None:
        found = detect_file(path, "controlnet", name)
        if found.kind != "controlnet" or found.family is None:
            raise ModelError(f"ControlNet {name!r}: the file is not a ControlNet of a known family "
                             f"({found.kind or 'unknown'}); give it a config folder "
                             f"('{Path(path).stem}.config/' with config.json next to it)", reason="format",
                             model=name)
        config = controlnet_config_folder(found.family, cache_dir)
    try:
        with hub_offline(), quiet_progress():
            return diffusers.ControlNetModel.from_single_file(str(path), config=str(config),
                                                              local_files_only=True,
                                                              torch_dtype=getattr(torch, dtype))
    except Exception as exc:  # diffusers raises many kinds; all mean "cannot load this file"
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ControlNet {name!r}: cannot load it ({type(exc).__name__}: {first})",
                         reason="load", model=name) from exc
