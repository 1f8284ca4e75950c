"""The model manager: loads model components on demand and keeps them resident under a budget.

It implements the :class:`~orchestrator.model_access.ModelProvider` protocol that blocks see
through ``ctx.models`` (:class:`~orchestrator.model_access.Models`, one typed method per
component below). A Ray worker owns one; so can a test or the in-process executor. It holds
no Ray state and pickles without its weights (a copy starts empty).

Components a block may ask for (``load(ref, component, device=...)``):

==================================  ======================================================
``"unet"``, ``"vae"``               diffusers models, on ``device`` in its dtype
``"text_encoder"``, ``"text_encoder_2"``  transformers CLIP text models
``"controlnet"``, ``"image_encoder"``  a ControlNet, a CLIP vision encoder (their own folders)
``"tokenizer"``, ``"tokenizer_2"``  tokenizers (no device)
``"scheduler"``                     a *fresh* scheduler built from the model's config
``"info"``                          :class:`ModelInfo`: family, folder, configs (no weights)
``"file:<kind>"``                   the path of a model file of ``kind`` (``lora``, ``onnx``,
                                    ``ip_adapter``, ...), by name: see
                                    :meth:`~orchestrator.models.registry.ModelRegistry.resolve_file`
``"onnx:<part>"``                   an onnxruntime session for an exported part
                                    (``vae_decoder``, ``vae_encoder``, ``text_encoder``, ``unet``)
``"upscaler"``                      an upscale model file by name (ESRGAN, SwinIR, ...: an
                                    :class:`~orchestrator.models.upscalers.Upscaler`)
``None``                            a diffusers pipeline assembled from the resident parts
==================================  ======================================================

Dtypes are explicit: float32 on CPU, float16 (or ``cuda_dtype``) on CUDA, except an SDXL VAE
that asks to be upcast (``force_upcast``), which stays float32. LoRAs and textual-inversion
embeddings of a :class:`~orchestrator.models.ref.ModelRef` are merged into copies of the
base components; the base stays resident for other references.

>>> from orchestrator.models.registry import ModelRegistry
>>> m = ModelManager(ModelRegistry(cache_dir="/tmp/orchestrator-doctest"), budget_bytes=10**9)
>>> m.report()["bytes_used"], m.report()["held"]
(0, [])
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.model_access import ModelInfo
from orchestrator.models.errors import ModelError
from orchestrator.models.quiet import quiet_progress
from orchestrator.models.ref import ModelRef
from orchestrator.models.registry import COMPONENT_KIND, ModelRegistry, ResolvedModel, family_of
from orchestrator.runtime.devices import resolve_device

DEVICE_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "controlnet", "image_encoder")
HOST_COMPONENTS = ("tokenizer", "tokenizer_2")
ALLOWED_LIBRARIES = ("diffusers", "transformers")
ONNX_PARTS = ("text_encoder", "text_encoder_2", "unet", "vae_encoder", "vae_decoder")


@dataclass
class _Resident:
    value: Any
    bytes: int
    model: str
    component: str
    device: str
    dtype: str
    loads: int = 1


def module_bytes(obj: Any) -> int:
    """Bytes held by a torch module's parameters and buffers (0 for anything else)."""
    import torch

    if not isinstance(obj, torch.nn.Module):
        return 0
    seen: set[int] = set()
    total = 0
    for t in list(obj.parameters()) + list(obj.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


class ModelManager:
    """Loads model components by reference and keeps them resident, least recently used first out.

    ``budget_bytes`` bounds what stays resident (``None``: no bound); ``cuda_dtype`` is
    ``"float16"`` or ``"bfloat16"``.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        budget_bytes: int | None = None,
        cuda_dtype: str = "float16",
        onnx_providers: tuple[str, ...] | None = None,
    ) -> None:
        if cuda_dtype not in ("float16", "bfloat16", "float32"):
            raise ValueError(f"cuda_dtype must be float16, bfloat16 or float32, got {cuda_dtype!r}")
        self.registry = registry
        self.budget_bytes = budget_bytes
        self.cuda_dtype = cuda_dtype
        self.onnx_providers = onnx_providers
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._resident: OrderedDict[tuple[str, ...], _Resident] = OrderedDict()
        self._infos: dict[str, ModelInfo] = {}
        self._issued: dict[str, str] = {}
        self.load_counts: Counter[str] = Counter()
        self.hits = 0
        self.evictions = 0

    # -- pickling: settings only, never weights --------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"registry": self.registry, "budget_bytes": self.budget_bytes,
                "cuda_dtype": self.cuda_dtype, "onnx_providers": self.onnx_providers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    # -- the ModelProvider protocol ----------------------------------------------------------

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        """The component ``component`` of the model ``ref`` on ``device`` (see the module doc).

        A name nobody knows, or a raw path, is a :class:`ModelError` with ``field``
        ``params.model`` (the param every model block names its model in) unless it says
        otherwise (a LoRA's ``params.model.loras[0].path``).
        """
        try:
            return self._load(ref, component, device)
        except ModelError as exc:
            if exc.field is None and exc.details.get("reason") in ("path", "unknown", "reference"):
                exc.field = "params.model"
            raise

    def check(self, ref: Any, component: str | None = None) -> None:
        """Resolve ``ref`` (its LoRAs, embeddings, hypernetworks and the models it merges) by name for
        ``component``, loading nothing."""
        from orchestrator.models.parts import PART_KIND, is_parts_name

        mref = self._ref(ref)
        for where, r in mref.refs():
            kind = COMPONENT_KIND.get(component or "", "checkpoint") if r is mref else "checkpoint"
            if is_parts_name(r.name):
                for i, (comp, name) in enumerate(r.parts):
                    self.registry.resolve_file(name, PART_KIND[comp], field=f"{where}.parts[{i}]")
                continue
            try:
                self.registry.entry(r.name, kind)
            except ModelError as exc:
                exc.field = exc.field or where
                raise
        self.check_files(mref)

    def _load(self, ref: Any, component: str | None, device: str) -> Any:
        mref = self._ref(ref)
        if component == "info":
            return self.info(mref)
        if component.startswith("file:") if component else False:
            return self.registry.resolve_file(mref.name, component[5:])
        if component is None:
            return self.pipeline(mref, device=device)
        if component == "scheduler":
            return self._scheduler(mref)
        if component.startswith("onnx:") or component == "onnx":
            return self._onnx(mref, component, device)
        if component == "upscaler":
            return self._upscaler(mref, device)
        if component not in DEVICE_COMPONENTS + HOST_COMPONENTS:
            raise ModelError(
                f"model {mref.name!r} has no component {component!r}; components: "
                f"{', '.join(DEVICE_COMPONENTS + HOST_COMPONENTS)}, scheduler, info, onnx:<part>, upscaler",
                reason="component", model=mref.name)
        with self._lock:
            return self._get(mref, component, device)

    # -- info --------------------------------------------------------------------------------

    def resolve(self, ref: Any, kind: str = "checkpoint") -> ResolvedModel:
        """Where the model lives (building a built-in or converting a checkpoint if needed); a model of
        parts lives in its config folder (:mod:`orchestrator.models.parts`)."""
        mref = self._ref(ref)
        if mref.parts:
            from orchestrator.models.parts import base_folder
            from orchestrator.models.registry import ModelEntry

            paths, shown = self._part_paths(mref)
            folder = base_folder(mref.name, paths, shown, self.registry.cache_dir)
            entry = ModelEntry.model_construct(name=mref.name, source="parts", family="auto", config=None,
                                               revision=None, description="a model of parts", vae=None)
            return ResolvedModel(mref.name, "diffusers", folder, entry)
        resolved = self.registry.resolve(mref.name, build=True, kind=kind)
        if resolved.format == "single_file":
            self._ensure_converted(resolved)
        elif kind in ("controlnet", "clip_vision") and resolved.format in ("file", "component"):
            return resolved  # one model in one file or folder: loaded by _load_component
        elif resolved.format != "diffusers":
            shown = self.registry._display(resolved.entry, resolved.path)
            what = {"file": "a LoRA, embedding or other weights file", "onnx": "an ONNX file"}.get(
                resolved.format, f"a {resolved.format} file")
            raise ModelError(f"model {mref.name!r} ({shown}) is {what}, not a Stable Diffusion checkpoint "
                             f"(no model.diffusion_model.* tensors)", reason="format", model=mref.name,
                             path=shown)
        return resolved

    def info(self, ref: Any) -> ModelInfo:
        """Family, folder and component configs of a model (reads JSON, loads no weights)."""
        mref = self._ref(ref)
        if mref.sampling is not None:  # ModelSamplingContinuousEDM: the samplers read these sigmas
            own = self.info(mref.model_copy(update={"sampling": None}))
            edm = {**mref.sampling.scheduler_config(), "discrete": dict(own.scheduler)}
            return dataclasses.replace(own, scheduler=edm)
        cache = ModelRef(name=mref.name, parts=mref.parts).key() if mref.parts else mref.name
        with self._lock:
            if cache in self._infos:
                return self._infos[cache]
            folder = self.resolve(mref).folder
            index = json.loads((folder / "model_index.json").read_text())
            comps = tuple(k for k, v in index.items()
                          if not k.startswith("_") and isinstance(v, list) and v[0] is not None)

            def cfg(sub: str, fname: str) -> dict[str, Any]:
                p = folder / sub / fname
                return json.loads(p.read_text()) if p.is_file() else {}

            info = ModelInfo(
                name=mref.name, family=family_of(folder), folder=folder,
                pipeline_class=index.get("_class_name", ""), components=comps,
                unet=cfg("unet", "config.json"), vae=cfg("vae", "config.json"),
                scheduler=cfg("scheduler", "scheduler_config.json"),
                text_encoder=cfg("text_encoder", "config.json"),
                force_zeros_for_empty_prompt=bool(index.get("force_zeros_for_empty_prompt", False)),
            )
            if mref.parts:  # the parts' own configs (their sidecars), where they have them
                from orchestrator.models.parts import component_config

                paths, _ = self._part_paths(mref)
                own = {c: component_config(p, folder, c) for c, p in paths.items()
                       if c in ("unet", "text_encoder")}
                info = dataclasses.replace(info, **own)
            self._infos[cache] = info
            return info

    # -- resident components -----------------------------------------------------------------

    def dtype_for(self, ref: Any, component: str, device: str) -> str:
        """The dtype ``component`` is kept in on ``device`` (see the module doc)."""
        if not device.startswith("cuda") or component in HOST_COMPONENTS:
            return "float32"
        if component == "vae" and self.cuda_dtype == "float16":
            info = self.info(ref)
            if info.family == "sdxl" and info.vae.get("force_upcast", True):
                return "float32"
        return self.cuda_dtype

    def _get(self, mref: ModelRef, component: str, device: str) -> Any:
        import torch

        mref = self._relevant(mref, component)
        dev = "host" if component in HOST_COMPONENTS else str(torch.device(device))
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"model {mref.name!r}: {component} was asked for on {dev}, but this machine "
                             f"has no CUDA device", reason="device", model=mref.name)
        dtype = self.dtype_for(mref, component, dev)
        key = (mref.key(), component, dev, dtype)
        hit = self._resident.get(key)
        if hit is not None:
            self._resident.move_to_end(key)
            self.hits += 1
            return hit.value
        if mref.personalised:
            base = self._get(mref.base(), component, device)
            value = self._personalise(mref, component, base, device)
        elif mref.merge is not None:
            value = self._merged(mref, component, device)
        elif mref.diff_base is not None:
            value = self._difference_controlnet(mref, device)
        elif component in dict(mref.parts):
            value = self._load_part(mref, component, dev, dtype)
            self.load_counts[mref.name] += 1
        elif mref.parts and component in DEVICE_COMPONENTS:
            from orchestrator.models.parts import LOADER

            names = ", ".join(n for _, n in mref.parts)
            raise ModelError(f"model {mref.key()!r} is made of parts ({names}) and has no {component}; "
                             f"in ComfyUI it comes from a {LOADER.get(component, 'loader')} node",
                             reason="component", model=mref.name)
        else:
            value = self._load_from_disk(mref.base(), component, dev, dtype)
            self.load_counts[mref.name] += 1
        self._resident[key] = _Resident(value, module_bytes(value), mref.key(), component, dev, dtype)
        self._evict(keep=key)
        return value

    def _relevant(self, mref: ModelRef, component: str) -> ModelRef:
        """The simplest reference that gives ``component`` of ``mref``: without the LoRAs,
        embeddings and hypernetworks that do not change it, and, where a merge does not touch it,
        the first merged model's (with this reference's own personalisation on top)."""
        from orchestrator.models.merge import MERGE_TARGETS

        if mref.sampling is not None:  # changes no weights
            mref = mref.model_copy(update={"sampling": None})
        if mref.diff_base is not None and component != "controlnet":
            mref = mref.model_copy(update={"diff_base": None})
        if mref.personalised and not self._touches(mref, component):
            mref = mref.base()
        merge = mref.merge
        if merge is not None and component not in MERGE_TARGETS[merge.target]:
            a = merge.a
            mref = ModelRef(name=a.name, merge=a.merge, hypernetworks=a.hypernetworks + mref.hypernetworks,
                            loras=a.loras + mref.loras, embeddings=a.embeddings + mref.embeddings)
            return self._relevant(mref, component)
        return mref

    def _merged(self, mref: ModelRef, component: str, device: str) -> Any:
        """``component`` of a merged reference: its two models' merged as ComfyUI merges them."""
        from orchestrator.models.merge import merge_modules, tolerated_mismatches

        merge = mref.merge
        assert merge is not None
        a, b = merge.a, merge.b
        with _nested("params.model.merge.a"):
            info_a = self.info(a)
        with _nested("params.model.merge.b"):
            info_b = self.info(b)
        if info_a.family != info_b.family:
            raise ModelError(f"cannot merge {b.key()!r} ({info_b.family}) into {a.key()!r} "
                             f"({info_a.family}): models of different families", reason="merge",
                             model=a.name, field="params.model.merge.b", a=a.key(), b=b.key())
        with _nested("params.model.merge.a"):
            first = self._get(a, component, device)
        with _nested("params.model.merge.b"):
            second = self._get(b, component, device)
        tolerated = tolerated_mismatches(info_a.unet, info_b.unet) if component == "unet" else frozenset()
        return merge_modules(first, second, merge, component, unet_config=info_a.unet or None,
                             names=(a.key(), b.key()), tolerated=tolerated)

    def _part_paths(self, mref: ModelRef) -> tuple[dict[str, Path], dict[str, str]]:
        """The files of a model of parts by component (SDXL's text encoders in their places), and
        their names as errors show them."""
        from orchestrator.models.parts import PART_KIND, ordered_text_encoders

        paths, shown = {}, {}
        for i, (comp, name) in enumerate(mref.parts):
            paths[comp] = self.registry.resolve_file(name, PART_KIND[comp], field=f"params.model.parts[{i}]")
            shown[comp] = name
        return ordered_text_encoders(paths, shown)

    def _load_part(self, mref: ModelRef, component: str, device: str, dtype: str) -> Any:
        """One component of a model of parts, from its file."""
        from orchestrator.models import parts

        paths, shown = self._part_paths(mref)
        path, display = paths[component], shown[component]
        folder = self.resolve(mref).folder
        config = parts.component_config(path, folder, component)
        if component == "unet":
            value = parts.load_unet(path, display, config, dtype, self.registry.legacy)
        else:
            value = parts.load_text_encoder(path, display, config, component, dtype, self.registry.legacy)
        value.requires_grad_(False)
        value.eval()
        return _aligned(value.to(device=device))

    def _difference_controlnet(self, mref: ModelRef, device: str) -> Any:
        """A difference ControlNet (ComfyUI's ``DiffControlNetLoader``): a file holding a ``difference``
        key stores its ControlNet minus the UNet it was trained on; the model's UNet weights are added
        back on the weights the two share (time embedding, input, down and middle blocks). A file
        without that key loads as it is, as in ComfyUI."""
        import torch

        from orchestrator.models.detect import read_header

        plain = mref.model_copy(update={"diff_base": None})
        net = self._get(plain, "controlnet", device)
        resolved = self.registry.resolve(plain.name, build=True, kind="controlnet")
        shown = self.registry._display(resolved.entry, resolved.path)
        if not (resolved.path.is_file() and "difference" in read_header(resolved.path, shown).keys):
            return net
        base = mref.diff_base
        assert base is not None
        from orchestrator.models.merge import model_weights

        with _nested("params.model.diff_base"):
            unet_module = self._get(self._relevant(base, "unet"), "unet", device)
        unet = {k: t for k, (_, t) in model_weights(unet_module).items()}  # hypernetworks are no weights
        out = copy.deepcopy(net)
        params = dict(out.named_parameters())
        added = 0
        with torch.no_grad():
            for k, target in params.items():
                w = unet.get(k)
                if w is None:
                    continue
                if w.shape != target.shape:
                    raise ModelError(
                        f"difference ControlNet {plain.name!r} does not fit model {base.key()!r}: weight "
                        f"{k!r} is {tuple(target.shape)} in the ControlNet and {tuple(w.shape)} in the UNet "
                        f"(a ControlNet of another family)", reason="merge", model=plain.name,
                        field="params.model.diff_base", a=plain.name, b=base.key(), weight=k)
                target.copy_((target.float() + w.float().to(target.device)).to(target.dtype))
                added += 1
        if not added:
            raise ModelError(f"difference ControlNet {plain.name!r} shares no weights with model "
                             f"{base.key()!r}", reason="merge", model=plain.name,
                             field="params.model.diff_base")
        return out

    @staticmethod
    def _touches(mref: ModelRef, component: str) -> bool:
        """Whether the LoRAs / embeddings / hypernetworks of ``mref`` change ``component``."""
        if component == "unet":
            return bool(mref.loras or mref.hypernetworks)
        if component in ("text_encoder", "text_encoder_2"):
            return bool(mref.loras or mref.embeddings)
        if component in HOST_COMPONENTS:
            return bool(mref.embeddings)
        return False

    def _load_from_disk(self, mref: ModelRef, component: str, device: str, dtype: str) -> Any:
        import torch

        resolved = self.resolve(mref, COMPONENT_KIND.get(component, "checkpoint"))
        folder = resolved.folder
        if resolved.format in ("file", "component"):
            return _aligned(self._load_component(mref.name, resolved, component, dtype).to(device=device))
        if component == "vae" and resolved.entry.vae:
            value = self._vae_override(mref.name, resolved.entry.vae, folder, dtype)
            value.requires_grad_(False)
            value.eval()
            return _aligned(value.to(device=device))
        index = json.loads((folder / "model_index.json").read_text())
        spec = index.get(component)
        if not (isinstance(spec, list) and len(spec) == 2 and spec[0] is not None):
            raise ModelError(f"model {mref.name!r} ({folder}) has no {component!r}", reason="component",
                             model=mref.name, path=str(folder))
        library, cls_name = spec
        if library not in ALLOWED_LIBRARIES:
            raise ModelError(f"model {mref.name!r}: component {component!r} comes from {library!r}; only "
                             f"diffusers and transformers classes are loaded", reason="format",
                             model=mref.name)
        cls = getattr(importlib.import_module(library), cls_name, None)
        if cls is None:
            raise ModelError(f"model {mref.name!r}: {library} has no class {cls_name!r}", reason="format",
                             model=mref.name)
        sub = folder / component
        from orchestrator.models.safety import check_weights_folder

        try:
            with quiet_progress():
                if component in HOST_COMPONENTS:
                    return cls.from_pretrained(str(sub), local_files_only=True)
                check_weights_folder(sub, f"model {mref.name!r} {component}")
                dtype_kw = "torch_dtype" if library == "diffusers" else _transformers_dtype_kw()
                value = cls.from_pretrained(str(sub), local_files_only=True, use_safetensors=True,
                                            **{dtype_kw: getattr(torch, dtype)})
        except ModelError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"model {mref.name!r}: cannot load {component} from {sub}: {exc}",
                             reason="load", model=mref.name, path=str(sub)) from exc
        value.requires_grad_(False)
        value.eval()
        return _aligned(value.to(device=device))

    def _load_component(self, name: str, resolved: ResolvedModel, component: str, dtype: str) -> Any:
        """A ControlNet or CLIP vision encoder kept alone: a diffusers/transformers folder (its
        ``config.json``), or one safetensors file (a ControlNet in either layout, with its sidecar or
        family config; a CLIP vision encoder in transformers' or open_clip's layout, its config read off
        the weights unless a sidecar gives it: :mod:`orchestrator.models.clip_vision`)."""
        import torch

        from orchestrator.models.safety import check_weights_folder
        from orchestrator.models.single_file import load_controlnet

        shown = self.registry._display(resolved.entry, resolved.path)
        config = self.registry.resolve_config(resolved.entry) if resolved.entry.config else None
        if component == "controlnet" and resolved.format == "file":
            value = load_controlnet(resolved.path, name=name, config=config,
                                    cache_dir=self.registry.cache_dir, dtype=dtype)
        elif component == "image_encoder" and resolved.format == "file" and config is None:
            from orchestrator.models import clip_vision  # ComfyUI's files: the config read off the weights

            value = clip_vision.load_file(resolved.path, name, getattr(torch, dtype))
        else:
            folder = resolved.path if resolved.format == "component" else config
            if folder is None:
                raise ModelError(f"model {name!r} ({shown}): a single-file {component} needs its config: put "
                                 f"its config.json in '{Path(shown).stem}.config/' next to it",
                                 reason="config", model=name)
            cfg = json.loads((Path(folder) / "config.json").read_text())
            cls_name = cfg.get("_class_name") or (cfg.get("architectures") or [None])[0]
            library = "diffusers" if "_class_name" in cfg else "transformers"
            cls = getattr(importlib.import_module(library), str(cls_name), None)
            wanted = {"controlnet": "ControlNetModel", "image_encoder": "CLIPVisionModelWithProjection"}
            if cls is None or cls_name != wanted.get(component, cls_name):
                raise ModelError(f"model {name!r} ({shown}) is a {cls_name or 'model of unknown class'}, "
                                 f"not a {wanted.get(component, component)}", reason="format", model=name)
            dtype_kw = "torch_dtype" if library == "diffusers" else _transformers_dtype_kw()
            try:
                with quiet_progress():
                    if resolved.format == "component":
                        check_weights_folder(resolved.path, f"model {name!r}")
                        value = cls.from_pretrained(str(resolved.path), local_files_only=True,
                                                    use_safetensors=True, **{dtype_kw: getattr(torch, dtype)})
                    else:
                        from safetensors.torch import load_file

                        from orchestrator.models.safety import require_safetensors

                        require_safetensors(resolved.path, f"model {name!r}:")
                        value = cls(cls.config_class.from_pretrained(str(folder), local_files_only=True))
                        value.load_state_dict(load_file(str(resolved.path)), strict=True)
                        value.to(dtype=getattr(torch, dtype))
            except ModelError:
                raise
            except (OSError, ValueError, RuntimeError) as exc:
                raise ModelError(f"model {name!r} ({shown}): cannot load it as a {cls_name}: "
                                 f"{type(exc).__name__}", reason="load", model=name) from exc
        value.requires_grad_(False)
        value.eval()
        return value

    def _vae_override(self, model: str, vae: str, folder: Path, dtype: str) -> Any:
        """The VAE named by a model entry's ``vae`` (a file in the model folders' vae/, or a configured
        entry): a diffusers VAE folder, or a single file (original or diffusers layout) read with the
        model's own VAE config."""
        import diffusers
        import torch

        from orchestrator.models.safety import require_safetensors
        from orchestrator.models.single_file import hub_offline

        path = self.registry.resolve_file(vae, "vae", field="vae")
        try:
            with quiet_progress():
                if path.is_dir():
                    return diffusers.AutoencoderKL.from_pretrained(str(path), local_files_only=True,
                                                                   use_safetensors=True,
                                                                   torch_dtype=getattr(torch, dtype))
                require_safetensors(path, f"VAE {vae!r} of model {model!r}:")
                with hub_offline():
                    return diffusers.AutoencoderKL.from_single_file(
                        str(path), config=str(folder), subfolder="vae", local_files_only=True,
                        torch_dtype=getattr(torch, dtype))
        except ModelError:
            raise
        except Exception as exc:  # diffusers raises many kinds; all mean "cannot load this VAE"
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"model {model!r}: cannot load its VAE {vae!r} ({type(exc).__name__}: {first}); "
                             f"it must fit the model's VAE architecture", reason="load", model=model,
                             field="vae") from exc

    def _personalise(self, mref: ModelRef, component: str, base: Any, device: str) -> Any:
        from orchestrator.models import lora

        value = copy.deepcopy(base)
        info = self.info(mref)
        if component in ("unet", "text_encoder", "text_encoder_2"):
            for i, lr in enumerate(mref.loras):
                path = self._file(lr.path, "lora", f"params.model.loras[{i}].path")
                with _field(f"params.model.loras[{i}]"):
                    layers = lora.read_lora(path, info.family, info.unet or None, component=component)
                    lora.merge_lora(value, layers, component, lr.weight)
        if component == "unet" and mref.hypernetworks:
            from orchestrator.models import hypernetwork

            for i, h in enumerate(mref.hypernetworks):
                path = self._file(h.path, "hypernetwork", f"params.model.hypernetworks[{i}].path")
                with _field(f"params.model.hypernetworks[{i}]"):
                    net = hypernetwork.read_hypernetwork(path, self.registry.legacy)
                    hypernetwork.apply_hypernetwork(value, net, h.strength)
        if not mref.embeddings or component == "unet":
            return value
        if component in HOST_COMPONENTS:
            for i, e in enumerate(mref.embeddings):
                path = self._file(e.path, "embedding", f"params.model.embeddings[{i}].path")
                with _field(f"params.model.embeddings[{i}]"):
                    emb = lora.read_embedding(path, self.registry.legacy)
                    lora.add_embedding_tokens(value, emb, component, e.token or emb.get("token") or path.stem)
            return value
        tokenizer = self._get(mref, "tokenizer_2" if component.endswith("_2") else "tokenizer", device)
        for i, e in enumerate(mref.embeddings):
            path = self._file(e.path, "embedding", f"params.model.embeddings[{i}].path")
            with _field(f"params.model.embeddings[{i}]"):
                emb = lora.read_embedding(path, self.registry.legacy)
                lora.set_embedding_vectors(value, tokenizer, emb, component,
                                           e.token or emb.get("token") or path.stem)
        return value

    def resolve_file(self, name: str, kind: str, *, field: str | None = None,
                     base: str | Path | None = None) -> Path:
        """A model file of ``kind`` by name (see ``ModelRegistry.resolve_file``); what blocks
        that read model files themselves (ONNX, IP-Adapters) call. ``base`` anchors relative
        paths where paths are allowed (the in-process CLI), and is ignored everywhere else.
        """
        path = self.registry.resolve_file(name, kind, field=field, base=base)
        with self._lock:
            self._issued[str(path)] = kind  # a path this manager handed out may come back as a name
        return path

    def _file(self, name: str, kind: str, field: str) -> Path:
        """A LoRA / embedding file by name (see ``ModelRegistry.resolve_file``)."""
        return self.registry.resolve_file(name, kind, field=field)

    def check_files(self, ref: Any) -> None:
        """Resolve every LoRA and embedding of ``ref`` now (errors name the param), loading nothing."""
        for where, r in self._ref(ref).refs():
            for i, lr in enumerate(r.loras):
                self._file(lr.path, "lora", f"{where}.loras[{i}].path")
            for i, e in enumerate(r.embeddings):
                self._file(e.path, "embedding", f"{where}.embeddings[{i}].path")
            for i, h in enumerate(r.hypernetworks):
                self._file(h.path, "hypernetwork", f"{where}.hypernetworks[{i}].path")

    def _evict(self, keep: tuple[str, ...]) -> None:
        if self.budget_bytes is None:
            return
        while self.bytes_used > self.budget_bytes and len(self._resident) > 1:
            key = next(iter(self._resident))
            if key == keep:
                self._resident.move_to_end(key)
                key = next(iter(self._resident))
                if key == keep:
                    break
            del self._resident[key]
            self.evictions += 1
        _empty_cuda_cache()

    def evict(self, name: str | None = None) -> int:
        """Drop resident components (of model ``name``, or all); returns how many."""
        with self._lock:
            keys = [k for k, v in self._resident.items() if name is None or v.model.split("+")[0] == name]
            for k in keys:
                del self._resident[k]
            _empty_cuda_cache()
            return len(keys)

    # -- schedulers, pipelines, ONNX ---------------------------------------------------------

    def _scheduler(self, mref: ModelRef) -> Any:
        import diffusers

        info = self.info(mref)
        cls = getattr(diffusers, info.scheduler.get("_class_name", "DDIMScheduler"), None)
        if cls is None:
            raise ModelError(f"model {mref.name!r}: unknown scheduler class "
                             f"{info.scheduler.get('_class_name')!r}", reason="format", model=mref.name)
        return cls.from_config(info.scheduler)

    def pipeline(self, ref: Any, *, device: str = "cpu") -> Any:
        """A diffusers pipeline of the model's class, assembled from resident components."""
        import diffusers

        mref = self._ref(ref)
        info = self.info(mref)
        cls = getattr(diffusers, info.pipeline_class, None)
        if cls is None:
            raise ModelError(f"model {mref.name!r}: unknown pipeline class {info.pipeline_class!r}",
                             reason="format", model=mref.name)
        params = inspect.signature(cls.__init__).parameters
        kwargs: dict[str, Any] = {}
        for name in params:
            if name in DEVICE_COMPONENTS + HOST_COMPONENTS:
                kwargs[name] = self.load(mref, name, device=device) if name in info.components else None
            elif name == "scheduler":
                kwargs[name] = self._scheduler(mref)
            elif name in ("safety_checker", "feature_extractor"):
                kwargs[name] = None
        if "requires_safety_checker" in params:
            kwargs["requires_safety_checker"] = False
        if "add_watermarker" in params:
            kwargs["add_watermarker"] = False
        if "force_zeros_for_empty_prompt" in params:
            kwargs["force_zeros_for_empty_prompt"] = info.force_zeros_for_empty_prompt
        index = json.loads((info.folder / "model_index.json").read_text())
        for name in ("requires_aesthetics_score",):  # the refiner's micro-conditioning
            if name in params and isinstance(index.get(name), bool):
                kwargs[name] = index[name]
        pipe = cls(**kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _onnx(self, mref: ModelRef, component: str, device: str) -> Any:

        if component == "onnx":
            if self._issued.get(mref.name) == "onnx":
                path = Path(mref.name)
            else:
                path = self.registry.resolve_file(mref.name, "onnx", field="params.model")
            from orchestrator.models.safety import sniff

            if sniff(path) == "pickle":
                from orchestrator.models.safety import pickle_refusal

                raise pickle_refusal(mref.name, "ONNX model")
            return self._onnx_session(path, device, mref.name, component)
        part = component.split(":", 1)[1]
        if part not in ONNX_PARTS:
            raise ModelError(f"no ONNX part {part!r}; parts: {', '.join(ONNX_PARTS)}",
                             reason="component", model=mref.name)
        path = self.registry.onnx_dir(mref.name) / part / "model.onnx"
        if not path.is_file():
            raise ModelError(
                f"model {mref.name!r} has no ONNX {part} at {path}; export it first with "
                f"`orchestrator export-onnx {mref.name}`", reason="missing", model=mref.name, path=str(path))
        return self._onnx_session(path, device, mref.name, component)

    def _onnx_session(self, path: Path, device: str, model: str, component: str) -> Any:
        from orchestrator.models.onnx import make_session

        dev = resolve_device(device)
        st = path.stat()
        key = (model, component, dev, f"onnx@{st.st_mtime_ns}")
        with self._lock:
            hit = self._resident.get(key)
            if hit is not None:
                self._resident.move_to_end(key)
                self.hits += 1
                return hit.value
            session = make_session(path, dev, providers=self.onnx_providers)
            self.load_counts[model] += 1
            size = sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file()) \
                if component != "onnx" else st.st_size
            self._resident[key] = _Resident(session, size, model, component, dev, "onnx")
            self._evict(keep=key)
            return session

    def _upscaler(self, mref: ModelRef, device: str) -> Any:
        """An upscale model file by name (:mod:`orchestrator.models.upscalers`), resident like the rest."""
        from orchestrator.models.upscalers import load_upscaler

        path = self.registry.resolve_file(mref.name, "upscaler", field="params.model")
        dev = resolve_device(device)
        st = path.stat()
        key = (str(path), "upscaler", dev, f"file@{st.st_mtime_ns}:{st.st_size}")  # one copy per file
        with self._lock:
            hit = self._resident.get(key)
            if hit is not None:
                self._resident.move_to_end(key)
                self.hits += 1
                return hit.value
            up = load_upscaler(path, display=mref.name, legacy=self.registry.legacy)
            up.net.to(dev)
            self.load_counts[mref.name] += 1
            size = module_bytes(up.module)
            self._resident[key] = _Resident(up, size, mref.name, "upscaler", dev, "float32")
            self._evict(keep=key)
            return up

    # -- single-file checkpoints ---------------------------------------------------------------

    def _ensure_converted(self, resolved: ResolvedModel) -> Path:
        dest = resolved.converted
        assert dest is not None
        if (dest / "model_index.json").is_file():
            return dest
        from orchestrator.models.single_file import ensure_converted, legacy_to_safetensors

        source = resolved.path
        display = self.registry._display(resolved.entry, resolved.path)
        if resolved.legacy:  # a pickle: its tensors, read weights-only, as a safetensors file first
            source = dest.with_name(dest.name + ".safetensors")
            if not source.is_file():
                legacy_to_safetensors(resolved.path, source, display, self.registry.legacy)
        config = self.registry.resolve_config(resolved.entry) if resolved.entry.config else None
        try:
            return ensure_converted(source, dest, name=resolved.name, config=config,
                                    family=resolved.entry.family, cache_dir=self.registry.cache_dir)
        except ModelError as exc:
            if config is None and exc.details.get("reason") == "load":
                exc.message += (" The shipped configs fit the published architectures; for a model of "
                                "another shape, set `config` on the model entry to a diffusers folder "
                                "(or hf:org/repo in the local cache) of the same architecture.")
                exc.args = (exc.message,)
            raise
        finally:
            if resolved.legacy and source != resolved.path:
                source.unlink(missing_ok=True)

    # -- reporting -----------------------------------------------------------------------------

    @property
    def bytes_used(self) -> int:
        return sum(r.bytes for r in self._resident.values())

    def held(self) -> list[dict[str, Any]]:
        """What is resident, least recently used first."""
        with self._lock:
            return [{"model": r.model, "component": r.component, "device": r.device, "dtype": r.dtype,
                     "bytes": r.bytes} for r in self._resident.values()]

    def holds(self, ref: Any) -> bool:
        """Whether any component of ``ref`` is resident (what a scheduler's affinity asks)."""
        k = self._ref(ref).key()
        return any(r.model == k for r in self._resident.values())

    def report(self) -> dict[str, Any]:
        """Resident components, bytes used and the budget, load counts per model, hits, evictions."""
        with self._lock:
            return {"held": self.held(), "bytes_used": self.bytes_used, "budget_bytes": self.budget_bytes,
                    "load_counts": dict(self.load_counts), "hits": self.hits, "evictions": self.evictions}

    @staticmethod
    def _ref(ref: Any) -> ModelRef:
        try:
            return ModelRef.parse(ref)
        except Exception as exc:  # noqa: BLE001 - any bad reference becomes one clear error
            raise ModelError(f"bad model reference {ref!r}: {exc}", reason="reference") from None


@contextmanager
def _nested(prefix: str) -> Iterator[None]:
    """Errors about a reference inside another (a merge's ``a``/``b``, a ControlNet's ``diff_base``) name
    its place: ``params.model...`` becomes ``prefix...``; a name nobody knows gets ``prefix`` itself."""
    try:
        yield
    except ModelError as exc:
        if exc.field is None:
            exc.field = prefix
        elif exc.field.startswith("params.model"):
            exc.field = prefix + exc.field[len("params.model"):]
        raise


@contextmanager
def _field(field: str) -> Iterator[None]:
    """Errors from reading or applying a LoRA / embedding name the param it came from."""
    try:
        yield
    except ModelError as exc:
        exc.field = exc.field or field
        raise


def _aligned(module: Any, alignment: int = 64) -> Any:
    """``module`` with every CPU tensor on an ``alignment``-byte boundary.

    Weights read from a safetensors file can sit at any offset of the mapped file; BLAS takes
    another code path for unaligned operands, so the same weights would give results that
    differ in the last bit from a freshly allocated copy (what diffusers' own loaders hold).
    Copying the few unaligned tensors makes a model loaded here compute exactly as theirs.
    """
    for t in list(module.parameters()) + list(module.buffers()):
        if t.device.type == "cpu" and t.numel() and t.data_ptr() % alignment:
            t.data = t.data.clone()
    return module


def _transformers_dtype_kw() -> str:
    """transformers renamed ``torch_dtype`` to ``dtype`` in 4.56."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
