"""What a model file is, from its safetensors header: kind and family, without loading tensors.

:func:`read_header` reads the JSON header of a ``.safetensors`` file (tensor names, dtypes,
shapes, offsets) and checks that the data it describes is really in the file, so a
truncated download is caught before anything is loaded. :func:`classify` turns the
header into a :class:`Detected`: its ``kind`` (``checkpoint``, ``lora``, ``embedding``,
``controlnet``, ``vae``, ``upscaler``, ``clip_vision``, ``ip_adapter``) and ``family``:

- checkpoints: ``sd1``, ``sd2``, ``sd2-v`` (768 px v-prediction), ``sdxl``,
  ``sdxl-refiner``, and ``sd1-inpaint``, ``sd2-inpaint``, ``sdxl-inpaint`` (a 9-channel
  ``conv_in``). SD 2 v-prediction is not visible in the weights' shapes; it is read from a
  sidecar ``.yaml`` (``parameterization: "v"``, as A1111 does), a ``v_pred`` tensor, or
  else the heuristic ComfyUI uses (the spread of one small bias tensor, read alone).
- LoRAs, embeddings and ControlNets: the family their text-embedding width says
  (768: ``sd1``, 1024: ``sd2``, 2048 or two encoders: ``sdxl``).

>>> import tempfile, os, json, struct
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "e.safetensors")
>>> head = json.dumps({"emb_params": {"dtype": "F32", "shape": [2, 768], "data_offsets": [0, 6144]}})
>>> with open(p, "wb") as fh:
...     _ = fh.write(struct.pack("<Q", len(head)) + head.encode() + bytes(6144))
>>> d = classify(read_header(p), p); (d.kind, d.family)
('embedding', 'sd1')
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
MAX_HEADER = 100 * 1024 * 1024

UNET = "model.diffusion_model."
CONV_IN = UNET + "input_blocks.0.0.weight"
V2_ATTN = UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
XL_BASE = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
UNCLIP_ADM = {2048: "sd2-unclip-h", 1536: "sd2-unclip-l"}  # the adm width: image embedding + its noise level
XL_REFINER = "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"
V_PRED_PROBE = UNET + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
WIDTH_FAMILY = {768: "sd1", 1024: "sd2", 1280: "sdxl-refiner", 2048: "sdxl"}


@dataclass(frozen=True)
class Header:
    """A safetensors header: ``tensors`` maps names to (dtype, shape, (start, end))."""

    tensors: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]]
    metadata: dict[str, str]
    data_start: int
    size: int

    @property
    def keys(self) -> set[str]:
        return set(self.tensors)

    def shape(self, key: str) -> tuple[int, ...] | None:
        t = self.tensors.get(key)
        return t[1] if t else None

    def dtypes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for dtype, _shape, (a, b) in self.tensors.values():
            out[dtype] = out.get(dtype, 0) + (b - a)
        return out

    @property
    def main_dtype(self) -> str | None:
        d = self.dtypes()
        return max(d, key=lambda k: d[k]) if d else None


@dataclass(frozen=True)
class Detected:
    """What a file is: ``kind``, ``family`` (or ``None`` when it cannot be told), and details."""

    kind: str | None
    family: str | None
    dtype: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def bad_file(display: str, why: str, **details: Any) -> ModelError:
    return ModelError(f"model file {display!r} {why}", reason="format", file=display, **details)


def read_header(path: str | Path, display: str | None = None) -> Header:
    """The header of a safetensors file; a :class:`ModelError` naming ``display`` when it is not one.

    Checks that every tensor's bytes lie inside the file (a truncated file is refused here).
    """
    p = Path(path)
    name = display or p.name
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise bad_file(name, "is not a safetensors file (shorter than a header)")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > MAX_HEADER or n > size - 8:
            raise bad_file(name, "is not a safetensors file (or it is truncated: its header does not fit)")
        raw = fh.read(n)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_file(name, "is not a safetensors file (its header is not JSON)") from None
    if not isinstance(doc, dict):
        raise bad_file(name, "is not a safetensors file (its header is not a JSON object)")
    meta = doc.pop("__metadata__", None) or {}
    tensors: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]] = {}
    end = 0
    for key, t in doc.items():
        try:
            dtype, shape, (a, b) = t["dtype"], tuple(int(x) for x in t["shape"]), t["data_offsets"]
            a, b = int(a), int(b)
        except (TypeError, KeyError, ValueError):
            raise bad_file(name, "is not a safetensors file (a tensor entry is malformed)") from None
        if not 0 <= a <= b:
            raise bad_file(name, "is not a safetensors file (bad tensor offsets)")
        tensors[key] = (str(dtype), shape, (a, b))
        end = max(end, b)
    if 8 + n + end > size:
        raise bad_file(name, f"is truncated: its header describes {8 + n + end} bytes, the file has {size}",
                       expected_bytes=8 + n + end, actual_bytes=size)
    return Header(tensors, {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
                  8 + n, size)


def read_tensor(path: str | Path, header: Header, key: str) -> Any:
    """One tensor as a float64 numpy array, read alone (for small probes only)."""
    import numpy as np

    dtype, shape, (a, b) = header.tensors[key]
    np_dtype = {"F32": np.float32, "F16": np.float16, "F64": np.float64}.get(dtype)
    with Path(path).open("rb") as fh:
        fh.seek(header.data_start + a)
        data = fh.read(b - a)
    if np_dtype is None:  # BF16: the high half of a float32
        if dtype != "BF16":
            return None
        raw = np.frombuffer(data, dtype=np.uint16).astype(np.uint32) << 16
        return raw.view(np.float32).astype(np.float64).reshape(shape)
    return np.frombuffer(data, dtype=np_dtype).astype(np.float64).reshape(shape)


def _sidecar_v(path: Path) -> bool | None:
    """True/False from an A1111-style sidecar ``<name>.yaml`` (``parameterization: "v"``)."""
    for cand in (path.with_suffix(".yaml"), path.with_suffix(".yml")):
        if cand.is_file() and cand.stat().st_size < 1_000_000:
            text = cand.read_text(errors="replace")
            return "parameterization" in text and any(
                line.split(":", 1)[1].strip().strip("'\"") == "v"
                for line in text.splitlines() if line.strip().startswith("parameterization:"))
    return None


def checkpoint_family(header: Header, path: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """The family of a whole checkpoint in the original layout, and how it was told."""
    keys = header.keys
    conv = header.shape(CONV_IN)
    inpaint = conv is not None and len(conv) > 1 and conv[1] == 9
    edit = conv is not None and len(conv) > 1 and conv[1] == 8  # InstructPix2Pix: the image latent beside
    attn = header.shape(V2_ATTN)
    if attn is not None and attn[-1] == 1024:
        base = "sd2"
    elif XL_BASE in keys or any(k.startswith("conditioner.embedders.1.") for k in keys):
        base = "sdxl"
    elif XL_REFINER in keys or any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        base = "sdxl-refiner"
    elif any(k.startswith("cond_stage_model.model.") for k in keys):
        base = "sd2"  # OpenCLIP text encoder at an unusual width
    else:
        base = "sd1"
    how: dict[str, Any] = {}
    if base == "sd2" and not inpaint:
        v = _sidecar_v(Path(path)) if path is not None else None
        if v is not None:
            how["prediction"] = "sidecar yaml"
        elif "v_pred" in keys:
            v, how["prediction"] = True, "v_pred tensor"
        elif path is not None and V_PRED_PROBE in keys:
            t = read_tensor(path, header, V_PRED_PROBE)
            v = bool(t is not None and float(t.std()) > 0.09)
            how["prediction"] = "bias spread heuristic"
        else:
            v = False
        if v:
            base = "sd2-v"
        adm = header.shape(UNET + "label_emb.0.0.weight")
        if adm is not None and len(adm) == 2 and adm[1] in UNCLIP_ADM:  # SD 2.1 unCLIP (v-prediction)
            base, how["unclip"] = UNCLIP_ADM[adm[1]], "label_emb width"
    if edit:
        how["edit"] = "conv_in of 8 channels"
        return base + "-ip2p", how
    return (base + "-inpaint" if inpaint else base), how


def _lora_family(header: Header) -> str | None:
    keys = header.keys
    if any(k.startswith(("lora_te2_", "lora_te1_text_model")) or ".text_encoder_2." in k or
           k.startswith("text_encoder_2.") for k in keys):
        return "sdxl"
    for k, (_d, shape, _o) in header.tensors.items():
        if ("attn2_to_k" in k or "attn2.to_k" in k) and k.endswith(("lora_down.weight", "lora_A.weight",
                                                                      "lora.down.weight")):
            return WIDTH_FAMILY.get(shape[-1])
    return None


def classify(header: Header, path: str | Path | None = None, *, hint: str | None = None) -> Detected:
    """Kind and family from a header; ``hint`` is the kind the file's folder suggests."""
    keys = header.keys
    dtype = header.main_dtype
    if any(k.startswith(UNET) for k in keys):
        fam, how = checkpoint_family(header, path)
        return Detected("checkpoint", fam, dtype, how)
    if any(k.startswith(("control_model.", "controlnet_cond_embedding.")) for k in keys) or \
            "input_hint_block.0.weight" in keys:
        width = None
        for k, (_d, shape, _o) in header.tensors.items():
            if k.endswith("attn2.to_k.weight"):
                width = shape[-1]
                break
        return Detected("controlnet", WIDTH_FAMILY.get(width or 0), dtype)
    if any(k.startswith(("lora_unet_", "lora_te")) or ".lora_down." in k or ".lora_A." in k or
           ".lora_up." in k or ".lora.down." in k or k.endswith((".hada_w1_a", ".lokr_w1", ".alpha"))
           for k in keys):
        return Detected("lora", _lora_family(header), dtype)
    if "emb_params" in keys:
        shape = header.shape("emb_params") or ()
        return Detected("embedding", WIDTH_FAMILY.get(shape[-1] if shape else 0), dtype)
    if {"clip_l", "clip_g"} <= keys:
        return Detected("embedding", "sdxl", dtype)
    if any(k.startswith(("image_proj.", "ip_adapter.")) for k in keys):
        return Detected("ip_adapter", None, dtype)
    if any(k.startswith("vision_model.") for k in keys):
        return Detected("clip_vision", None, dtype)
    if ("encoder.conv_in.weight" in keys and "decoder.conv_out.weight" in keys) or \
            any(k.startswith("first_stage_model.decoder.") for k in keys):
        return Detected("vae", None, dtype)
    if any(k.startswith(("model.0.", "conv_first.", "RRDB_trunk.", "body.0.rdb", "layers.0.residual_group",
                         "conv_body.")) for k in keys) or hint == "upscaler":
        return Detected("upscaler", None, dtype)
    if len(keys) == 1 and hint in (None, "embedding"):
        (_d, shape, _o), = header.tensors.values()
        return Detected("embedding", WIDTH_FAMILY.get(shape[-1] if shape else 0), dtype)
    return Detected(hint, None, dtype)


def folder_family(folder: str | Path) -> str | None:
    """The family of a diffusers folder, from its UNet and scheduler configs (no weights read)."""
    f = Path(folder)
    try:
        unet = json.loads((f / "unet" / "config.json").read_text())
    except (OSError, ValueError):
        return None
    width = unet.get("cross_attention_dim")
    width = width[0] if isinstance(width, list) and width else width
    fam = WIDTH_FAMILY.get(width if isinstance(width, int) else 0)
    if fam is None:  # an unusual width (the tiny built-ins): the pipeline's shape decides
        index = f / "model_index.json"
        if not index.is_file():
            return None
        fam = "sdxl" if "text_encoder_2" in index.read_text() else "sd1"
    if fam == "sd2":
        try:
            sched = json.loads((f / "scheduler" / "scheduler_config.json").read_text())
        except (OSError, ValueError):
            sched = {}
        if sched.get("prediction_type") == "v_prediction":
            fam = "sd2-v"
    return fam + "-inpaint" if unet.get("in_channels") == 9 else fam


def detect_file(path: str | Path, hint: str | None = None, display: str | None = None) -> Detected:
    """Kind and family of a model file or diffusers folder; ``hint`` is its folder's kind.

    Legacy pickles (``.ckpt``, ``.pt``, ...) are not opened here: their kind is the folder's.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "model_index.json").is_file():
            return Detected("checkpoint", folder_family(p), None, {"format": "diffusers"})
        return Detected(hint, None, None, {"format": "diffusers"})
    if p.suffix.lower() == ".onnx":
        return Detected(hint or "onnx", None, None, {"format": "onnx"})
    if p.suffix.lower() not in (".safetensors", ".sft"):
        return Detected(hint, None, None, {"format": "legacy"})
    header = read_header(p, display)
    d = classify(header, p, hint=hint)
    return Detected(d.kind, d.family, d.dtype, {**d.details, "format": "safetensors"})
