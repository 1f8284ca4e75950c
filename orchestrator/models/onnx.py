"""ONNX: exporting a model's parts, and running ONNX files with onnxruntime.

``export_onnx(manager, "tiny-sd")`` writes ``<cache>/onnx/tiny-sd/<part>/model.onnx`` for
the parts ``text_encoder`` (and ``text_encoder_2`` for SDXL), ``unet``, ``vae_encoder`` and
``vae_decoder`` (what ``orchestrator export-onnx`` runs). Inputs and outputs:

==================  =======================================================================
part                inputs -> outputs
==================  =======================================================================
text_encoder(_2)    ``input_ids`` int64 [B, T] -> ``last_hidden_state``, ``pooled`` (pooled or
                    projected text embeds), ``hidden_states`` [L+1, B, T, D],
                    ``normed_hidden_states`` (each through the final layer norm, for clip skip)
unet                ``sample``, ``timestep`` float32 [1], ``encoder_hidden_states`` (SDXL also
                    ``text_embeds``, ``time_ids``) -> ``noise_pred``
vae_encoder         ``sample`` [B, 3, H, W] in [-1, 1] -> ``moments`` (mean and log-variance)
vae_decoder         ``latent`` (already divided by the scaling factor) -> ``sample`` in [-1, 1]
==================  =======================================================================

:func:`make_session` picks the execution provider: TensorRT (when
``ORCHESTRATOR_ONNX_TENSORRT=1``) and CUDA on a CUDA device, CPU otherwise. On a GPU,
:class:`OnnxModel` binds torch CUDA tensors to the session's inputs and outputs (I/O
binding), so nothing goes through host memory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import torch

from orchestrator.models.errors import ModelError

PARTS = ("text_encoder", "text_encoder_2", "unet", "vae_encoder", "vae_decoder")
OPSET = 17

_NP_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
             "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8",
             "tensor(bool)": "bool"}


# -- sessions ---------------------------------------------------------------------------------


def providers_for(device: str) -> list[Any]:
    """Execution providers for ``device``, best first (only those this onnxruntime has)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    idx = int(device.split(":")[1]) if ":" in device else 0
    out: list[Any] = []
    if os.environ.get("ORCHESTRATOR_ONNX_TENSORRT") == "1" and "TensorrtExecutionProvider" in available:
        cache = os.environ.get("ORCHESTRATOR_ONNX_TRT_CACHE", "")
        opts: dict[str, Any] = {"device_id": idx, "trt_fp16_enable": True}
        if cache:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache)
        out.append(("TensorrtExecutionProvider", opts))
    if "CUDAExecutionProvider" in available:
        out.append(("CUDAExecutionProvider", {"device_id": idx}))
    out.append("CPUExecutionProvider")
    return out


def make_session(path: str | Path, device: str = "cpu", *, providers: Any = None) -> OnnxModel:
    """An :class:`OnnxModel` for the ONNX file ``path`` on ``device``."""
    import onnxruntime as ort

    from orchestrator.models.safety import sniff

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"ONNX file {str(p)!r} does not exist", reason="missing", path=str(p))
    kind = sniff(p)
    if kind == "pickle":
        from orchestrator.models.safety import pickle_refusal

        raise pickle_refusal(p, "ONNX file")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(p), sess_options=opts,
                                       providers=list(providers) if providers else providers_for(device))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot open ONNX file {str(p)!r}: {exc}", reason="load", path=str(p)) from exc
    return OnnxModel(session, device, p)


class OnnxModel:
    """An onnxruntime session with torch tensors in and out.

    ``run({"name": tensor, ...})`` returns ``{output name: tensor}`` on the session's device.
    On CUDA (CUDA or TensorRT provider) inputs and outputs are bound in device memory.
    """

    def __init__(self, session: Any, device: str, path: Path) -> None:
        self.session = session
        self.path = path
        self.providers = list(session.get_providers())
        on_gpu = self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.device = (device if device.startswith("cuda") else "cuda") if on_gpu else "cpu"
        self.inputs = {i.name: (list(i.shape), _NP_TYPES.get(i.type, "float32"))
                       for i in session.get_inputs()}
        self.outputs = [o.name for o in session.get_outputs()]

    def __repr__(self) -> str:
        return f"OnnxModel({self.path.name}, {self.providers[0]})"

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Any]:
        import numpy as np
        import torch

        names = outputs or self.outputs
        feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        if self.device == "cpu":
            arrays = {k: _to_numpy(v, self.inputs[k][1]) for k, v in feeds.items()}
            res = self.session.run(names, arrays)
            return {n: torch.from_numpy(np.ascontiguousarray(r)) for n, r in zip(names, res, strict=True)}
        binding = self.session.io_binding()
        dev = torch.device(self.device)
        keep = []
        for k, v in feeds.items():
            t = v if torch.is_tensor(v) else torch.as_tensor(v)
            t = t.to(device=dev, dtype=getattr(torch, self.inputs[k][1])).contiguous()
            keep.append(t)
            binding.bind_input(k, "cuda", dev.index or 0, _np_dtype(t), tuple(t.shape), t.data_ptr())
        for n in names:
            binding.bind_output(n, "cuda", dev.index or 0)
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        out = {}
        for n, v in zip(names, values, strict=True):
            out[n] = _ortvalue_to_torch(v, dev)
        return out


def _to_numpy(v: Any, dtype: str) -> Any:
    import numpy as np

    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.ascontiguousarray(v, dtype=dtype)


def _np_dtype(t: Any) -> Any:
    import numpy as np

    return {"torch.float32": np.float32, "torch.float16": np.float16, "torch.int64": np.int64,
            "torch.int32": np.int32, "torch.uint8": np.uint8, "torch.bool": np.bool_}[str(t.dtype)]


def _ortvalue_to_torch(v: Any, dev: Any) -> Any:
    import torch

    to_dlpack = getattr(v, "to_dlpack", None)
    if to_dlpack is not None:
        try:
            return torch.from_dlpack(to_dlpack())
        except Exception:  # noqa: BLE001 - fall back to a host copy
            pass
    return torch.from_numpy(v.numpy()).to(dev)


# -- export -----------------------------------------------------------------------------------


def _wrappers(manager: Any, name: str, parts: tuple[str, ...]) -> dict[str, tuple[Any, tuple, dict]]:
    """``{part: (module, example args, export kwargs)}`` for the parts of ``name``."""
    import torch

    info = manager.info(name)
    out: dict[str, tuple[Any, tuple, dict]] = {}
    f = info.vae_scale_factor
    h = w = 8
    ch = info.latent_channels
    for part in parts:
        if part in ("text_encoder", "text_encoder_2"):
            if part not in info.components:
                continue
            enc = manager.load(name, part, device="cpu")
            tok = manager.load(name, "tokenizer_2" if part.endswith("_2") else "tokenizer")
            ids = torch.zeros(1, tok.model_max_length, dtype=torch.int64)
            out[part] = (_TextEncoder(enc), (ids,), {
                "input_names": ["input_ids"],
                "output_names": ["last_hidden_state", "pooled", "hidden_states", "normed_hidden_states"],
                "dynamic_axes": {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"},
                                 "pooled": {0: "batch"}, "hidden_states": {1: "batch"},
                                 "normed_hidden_states": {1: "batch"}}})
        elif part == "unet":
            unet = manager.load(name, "unet", device="cpu")
            cfg = unet.config
            args: tuple = (torch.randn(2, cfg.in_channels, h, w), torch.tensor([999.0]),
                           torch.randn(2, 77, cfg.cross_attention_dim))
            names = ["sample", "timestep", "encoder_hidden_states"]
            axes = {"sample": {0: "batch", 2: "height", 3: "width"}, "encoder_hidden_states": {0: "batch"},
                    "noise_pred": {0: "batch", 2: "height", 3: "width"}}
            if cfg.addition_embed_type == "text_time":
                pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
                args += (torch.randn(2, pooled), torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2))
                names += ["text_embeds", "time_ids"]
                axes.update(text_embeds={0: "batch"}, time_ids={0: "batch"})
            out[part] = (_UNet(unet), args, {"input_names": names, "output_names": ["noise_pred"],
                                              "dynamic_axes": axes})
        elif part == "vae_encoder":
            vae = manager.load(name, "vae", device="cpu")
            out[part] = (_VaeEncoder(vae), (torch.randn(1, 3, h * f, w * f),), {
                "input_names": ["sample"], "output_names": ["moments"],
                "dynamic_axes": {"sample": {0: "batch", 2: "height", 3: "width"},
                                 "moments": {0: "batch", 2: "latent_height", 3: "latent_width"}}})
        elif part == "vae_decoder":
            vae = manager.load(name, "vae", device="cpu")
            out[part] = (_VaeDecoder(vae), (torch.randn(1, ch, h, w),), {
                "input_names": ["latent"], "output_names": ["sample"],
                "dynamic_axes": {"latent": {0: "batch", 2: "height", 3: "width"},
                                 "sample": {0: "batch", 2: "image_height", 3: "image_width"}}})
        else:
            raise ModelError(f"no ONNX part {part!r}; parts: {', '.join(PARTS)}", reason="component")
    return out


def export_onnx(manager: Any, name: str, *, parts: tuple[str, ...] | None = None, opset: int = OPSET,
                force: bool = False) -> dict[str, Path]:
    """Export the parts of model ``name`` to ONNX under ``manager.registry.onnx_dir(name)``.

    Parts already exported are kept unless ``force``. Returns ``{part: path}``.
    """
    import torch

    root = manager.registry.onnx_dir(name)
    wanted = tuple(parts or PARTS)
    todo = {p: v for p, v in _wrappers(manager, name, wanted).items()
            if force or not (root / p / "model.onnx").is_file()}
    for part, (module, args, kwargs) in todo.items():
        dest = root / part
        tmp = root / f".{part}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module.eval(), args, str(tmp / "model.onnx"), opset_version=opset,
                                  dynamo=False, do_constant_folding=True, **kwargs)
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    found = {p: root / p / "model.onnx" for p in PARTS if (root / p / "model.onnx").is_file()}
    (root / "export.json").write_text(json.dumps({
        "model": name, "family": manager.info(name).family, "opset": opset, "parts": sorted(found),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__}, indent=2))
    return {p: found[p] for p in wanted if p in found}


class _TextEncoder(torch.nn.Module):
    def __init__(self, enc: Any) -> None:
        super().__init__()
        self.enc = enc
        self.norm = getattr(enc, "text_model", enc).final_layer_norm

    def forward(self, input_ids: Any) -> Any:
        import torch

        out = self.enc(input_ids, output_hidden_states=True, return_dict=True)
        pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
        last = out.last_hidden_state
        hidden = torch.stack(tuple(out.hidden_states))
        return last, pooled, hidden, self.norm(hidden)


class _UNet(torch.nn.Module):
    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, text_embeds: Any = None,
                time_ids: Any = None) -> Any:
        added = {"text_embeds": text_embeds, "time_ids": time_ids} if text_embeds is not None else None
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         added_cond_kwargs=added, return_dict=False)[0]


class _VaeEncoder(torch.nn.Module):
    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, sample: Any) -> Any:
        h = self.vae.encoder(sample)
        return self.vae.quant_conv(h) if self.vae.quant_conv is not None else h


class _VaeDecoder(torch.nn.Module):
    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent: Any) -> Any:
        return self.vae.decode(latent, return_dict=False)[0]
