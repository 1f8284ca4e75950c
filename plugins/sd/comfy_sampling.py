"""ComfyUI's sampler nodes, mapped to the native sampler family (``sd.ksampler``, custom sampling).

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
KSampler, KSamplerAdvanced              ``sd.ksampler`` (every sampler, scheduler, denoise,
                                        step window, add_noise, leftover noise); a latent
                                        with a ``SetLatentNoiseMask`` mask: its ``mask``
VAEEncodeForInpaint (read by a sampler)  ``sd.vae_encode_for_inpaint`` (latent and noise mask)
BasicScheduler, KarrasScheduler,        ``sd.sigmas``, ``sd.sigmas_karras``,
ExponentialScheduler,                   ``sd.sigmas_exponential``,
PolyexponentialScheduler,               ``sd.sigmas_polyexponential``,
SDTurboScheduler, BetaSamplingScheduler ``sd.sigmas_turbo``, ``sd.sigmas_beta``
AlignYourStepsScheduler, FlipSigmas     ``sd.sigmas_ays``, ``sd.flip_sigmas``
SplitSigmas, SplitSigmasDenoise         ``sd.split_sigmas``, ``sd.split_sigmas_denoise``
KSamplerSelect, SamplerEulerAncestral,  ``sd.sampler_select`` (with ``eta``, ``s_noise``,
SamplerDPMPP_2S_Ancestral, SamplerLMS,  ``r``, ``solver_type``, ``order``; ``noise_device``
SamplerDPMPP_SDE, SamplerDPMPP_2M_SDE,  gpu picks the ``_gpu`` sampler)
SamplerDPMPP_3M_SDE
RandomNoise, DisableNoise               ``sd.noise``
CFGGuider, BasicGuider                  ``sd.guider``
SamplerCustomAdvanced                   ``sd.sample_custom``
SamplerCustom                           ``sd.noise`` + ``sd.guider`` + ``sd.sample_custom``
ModelSamplingDiscrete                   ``model_sampling``/``zsnr`` params of the blocks above
LatentFromBatch, RepeatLatentBatch      ``sd.latent_batch``; their ``batch_index`` record goes
                                        to the sampler's ``batch_index`` (the noise of the
                                        whole batch, as ComfyUI draws it)
======================================  =====================================================

A ComfyUI sampler or scheduler name ours does not have (a custom node's) is reported as
an approximation and replaced by ``euler`` / ``normal``. Without ``sd.ksampler`` in the
catalog, KSampler falls back to :func:`plugins.sd.comfy_diffusers_sampling.ksampler` (``sd.denoise``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from weakref import WeakKeyDictionary

from orchestrator import ComfyMapping, Cond, Data, MaskedLatent, NodeContext, Unresolved
from plugins.sd import comfy_conditioning as conditioning
from plugins.sd import comfy_diffusers_sampling

Importer = Any  # graphs.comfy's importer (NodeContext.importer)

# ComfyUI's names that sd.ksampler runs exactly (plugins/sd/ksampling/catalog.py, schedules.py)
NATIVE_SAMPLERS = frozenset({
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ddim",
    "uni_pc", "uni_pc_bh2"})
NATIVE_SCHEDULERS = frozenset({"normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform",
                               "beta", "linear_quadratic", "kl_optimal"})
MAX_SEED = 2 ** 64 - 1


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


def _sampler_name(nc: NodeContext, name: Any, widget: str = "sampler_name") -> str:
    name = str(name)
    if name in NATIVE_SAMPLERS:
        return name
    nc.warn(f"ComfyUI sampler {name!r} is not available; using 'euler'", field=widget, value=name,
            used="euler")
    return "euler"


def _scheduler_name(nc: NodeContext, name: Any) -> str:
    name = str(name)
    if name in NATIVE_SCHEDULERS:
        return name
    nc.warn(f"ComfyUI scheduler {name!r} is not available; using 'normal'", field="scheduler", value=name,
            used="normal")
    return "normal"


def _seed(nc: NodeContext, widget: str) -> int:
    seed = int(nc.widget(widget, 0))
    if not 0 <= seed <= MAX_SEED:
        nc.warn(f"seed {seed} is outside 0..2**64-1; using it modulo 2**64", field=widget, value=seed)
        seed %= 2 ** 64
    return seed


def _inpaint_encoded(nc: NodeContext, latent: Any) -> bool:
    """Whether a masked latent is VAEEncodeForInpaint's (greyed pixels; an inpainting model's input)."""
    if not isinstance(latent, MaskedLatent):
        return False
    source = nc.importer.nodes.get(latent.node)  # (a mask carried on through other nodes: its latent as is)
    return source is None or source.class_type == "VAEEncodeForInpaint"


_INPAINT: WeakKeyDictionary[Importer, dict[str, tuple[Data, Data]]] = WeakKeyDictionary()


def native_inpaint(nc: NodeContext, latent: MaskedLatent) -> tuple[Data, Data] | None:
    """VAEEncodeForInpaint's latent and noise mask as ``sd.vae_encode_for_inpaint`` makes them (one node
    per ComfyUI node, whatever reads it); None when the catalog lacks the block."""
    if not nc.has_block("sd.vae_encode_for_inpaint"):
        return None
    built = _INPAINT.setdefault(nc.importer, {})
    if latent.node not in built:
        src = nc.importer.nodes[latent.node]
        src_nc = NodeContext(nc.importer, src, nc.importer.mapping_for(src.class_type))
        pixels, mask, vae = src_nc.data("pixels"), src_nc.data("mask"), src_nc.model("vae")
        node = nc.importer.add_node(src, "sd.vae_encode_for_inpaint", {"image": pixels, "mask": mask},
                                    {"model": vae.ref(loras=False),
                                     "grow_mask_by": int(src_nc.widget("grow_mask_by", 6))})
        size = None if latent.size is None else (latent.size[0] // 8 * 8, latent.size[1] // 8 * 8)
        built[latent.node] = (Data(f"{node}.latent", "LATENT", size=size),
                              Data(f"{node}.mask", "MASK", size=size))
    return built[latent.node]


# our latent blocks whose output keeps the batch record of this input (ComfyUI's latent.copy())
KEEP_RECORD = {"sd.latent_resize": "latent", "sd.latent_upscale": "latent", "sd.latent_composite": "latent",
               "sd.latent_blend": "latent", "sd.latent_crop": "latent", "sd.latent_flip": "latent",
               "sd.latent_rotate": "latent", "sd.latent_add": "latent", "sd.latent_multiply": "latent",
               "sd.latent_interpolate": "latent", "sd.latent_composite_masked": "destination"}


def batch_record(importer: Importer, ref: str | None, depth: int = 0) -> tuple[int | None, list[int] | None]:
    """``(batch size or None, ComfyUI's batch_index record or None)`` of a latent built so far.

    ComfyUI records each latent's index in its batch only after LatentFromBatch or RepeatLatentBatch
    (``sd.latent_batch``), and samplers pass the record on; an EmptyLatentImage gives the size.
    """
    node = importer.graph_nodes.get(str(ref).split(".")[0]) if isinstance(ref, str) else None
    if node is None or depth > 256:
        return None, None
    if node.block == "sd.empty_latent":
        return int(node.params.get("batch", 1)), None
    if node.block in KEEP_RECORD:  # ComfyUI's latent nodes copy the latent's dict: the record rides along
        return batch_record(importer, node.inputs.get(KEEP_RECORD[node.block]), depth + 1)
    if node.block == "sd.latent_seed_behavior":  # LatentBatchSeedBehavior
        size, index = batch_record(importer, node.inputs.get("latent"), depth + 1)
        if node.params.get("seed_behavior", "fixed") == "random":
            return size, None
        first = index[0] if index else 0
        return size, ([first] * size if size is not None else None)
    if node.block == "sd.latent_concat":  # LatentBatch: each part's record, or its own indices
        (n1, i1), (n2, i2) = (batch_record(importer, node.inputs.get(k), depth + 1)
                              for k in ("latent", "other"))
        if (i1 is None and n1 is None) or (i2 is None and n2 is None):
            return None, None
        i1 = i1 if i1 is not None else list(range(n1 or 0))
        i2 = i2 if i2 is not None else list(range(n2 or 0))
        return len(i1) + len(i2), i1 + i2
    if node.block in ("sd.ksampler", "sd.sample_custom") and str(ref).endswith(".latent"):
        size, _ = batch_record(importer, node.inputs.get("latent"), depth + 1)
        index = node.params.get("batch_index")
        return size, (list(index) if index is not None else None)
    if node.block != "sd.latent_batch":
        return None, None
    size, index = batch_record(importer, node.inputs.get("latent"), depth + 1)
    p = node.params
    if p.get("mode") == "repeat":
        amount = int(p.get("amount", 1))
        if index is not None:
            offset = max(index) - min(index) + 1
            index = index + [x + i * offset for i in range(1, amount) for x in index]
        return (size * amount if size is not None else None), index
    start, length = int(p.get("start", 0)), int(p.get("length", 1))
    if size is not None:
        start = min(size - 1, start)
        length = min(size - start, length)
    index = index[start:start + length] if index is not None else list(range(start, start + length))
    return len(index), index


def latent_batch(nc: NodeContext) -> list[Any]:
    """LatentFromBatch / RepeatLatentBatch -> ``sd.latent_batch`` (their batch_index reaches the sampler)."""
    samples = nc.data("samples")
    assert samples is not None
    if nc.node.class_type == "LatentFromBatch":
        params: dict[str, Any] = {"mode": "from_batch", "start": int(nc.widget("batch_index", 0)),
                                  "length": int(nc.widget("length", 1))}
    else:
        params = {"mode": "repeat", "amount": int(nc.widget("amount", 1))}
    node = nc.add("sd.latent_batch", inputs={"latent": samples}, params=params)
    return [_out(node, "latent", "LATENT", size=samples.size)]


def _latent_and_mask(nc: NodeContext, name: str = "latent_image") -> tuple[Data, Data | None]:
    """The latent a sampler reads, and its noise mask (``SetLatentNoiseMask``, ``VAEEncodeForInpaint``)."""
    latent = nc.input(name)
    if isinstance(latent, MaskedLatent):
        native = native_inpaint(nc, latent) if _inpaint_encoded(nc, latent) else None
        if native is not None:
            return native
        if _inpaint_encoded(nc, latent):
            nc.warn("the inpainting latent of VAEEncodeForInpaint is sampled as its plain latent with the "
                    "mask as noise mask (the masked pixels are not greyed before encoding)", field=name)
        return latent.plain(), latent.mask
    if not isinstance(latent, Data) or latent.type != "LATENT":
        raise Unresolved(f"input {name!r} is not a latent", field=name)
    return latent, None


def ksampler(nc: NodeContext) -> list[Any]:
    """KSampler / KSamplerAdvanced -> ``sd.ksampler`` (``sd.denoise`` when the catalog lacks it)."""
    if not nc.has_block("sd.ksampler"):
        return comfy_diffusers_sampling.ksampler(nc)
    advanced = nc.node.class_type == "KSamplerAdvanced"
    model = nc.model("model")
    cond = conditioning.build(nc.importer, nc, nc.input("positive"), nc.input("negative"))
    latent_value = nc.input("latent_image")
    if _inpaint_encoded(nc, latent_value) and not nc.has_block("sd.vae_encode_for_inpaint") \
            and nc.has_block("sd.inpaint"):
        # VAEEncodeForInpaint: sd.inpaint (the conditioning built above is memoized: built once)
        return comfy_diffusers_sampling.ksampler(nc)
    latent, mask = _latent_and_mask(nc)
    params: dict[str, Any] = {
        "model": model.ref(), **model.sampling_params(),
        "seed": _seed(nc, "noise_seed" if advanced else "seed"),
        "steps": int(nc.widget("steps", 20)), "cfg": float(nc.widget("cfg", 8.0)),
        "sampler": _sampler_name(nc, nc.widget("sampler_name", "euler")),
        "scheduler": _scheduler_name(nc, nc.widget("scheduler", "normal"))}
    if advanced:
        params.update(start_step=max(0, int(nc.widget("start_at_step", 0))),
                      end_step=max(0, int(nc.widget("end_at_step", 10000))),
                      add_noise=nc.widget("add_noise", "enable") != "disable",
                      return_with_leftover_noise=nc.widget("return_with_leftover_noise",
                                                           "disable") == "enable")
    else:
        params["denoise"] = float(nc.widget("denoise", 1.0))
    inputs: dict[str, Any] = {"cond": cond, "latent": latent}
    if mask is not None:
        inputs["mask"] = mask
    _, index = batch_record(nc.importer, latent.ref)
    if index is not None:
        params["batch_index"] = index
    node = nc.add("sd.ksampler", inputs=inputs, params=params)
    return [_out(node, "latent", "LATENT", size=latent.size)]


# -- sigmas ---------------------------------------------------------------------------------


def _sigmas_node(block: str, widgets: dict[str, str], with_model: bool = False,
                 fixed: Callable[[NodeContext], dict[str, Any]] | None = None) -> Callable[..., list[Any]]:
    def convert(nc: NodeContext) -> list[Any]:
        params = {ours: nc.widget(theirs) for ours, theirs in widgets.items()
                  if nc.widget(theirs) is not None}
        if with_model:
            model = nc.model("model")
            params.update(model=model.ref(), **model.sampling_params())
        if fixed is not None:
            params.update(fixed(nc))
        return [_out(nc.add(block, params=params), "sigmas", "SIGMAS")]

    return convert


def _basic_scheduler(nc: NodeContext) -> dict[str, Any]:
    return {"scheduler": _scheduler_name(nc, nc.widget("scheduler", "normal"))}


def flip_sigmas(nc: NodeContext) -> list[Any]:
    return [_out(nc.add("sd.flip_sigmas", inputs={"sigmas": nc.data("sigmas")}), "sigmas", "SIGMAS")]


def split_sigmas(nc: NodeContext) -> list[Any]:
    sigmas = nc.data("sigmas")
    if nc.node.class_type == "SplitSigmas":
        node = nc.add("sd.split_sigmas", inputs={"sigmas": sigmas},
                      params={"step": int(nc.widget("step", 0))})
    else:
        node = nc.add("sd.split_sigmas_denoise", inputs={"sigmas": sigmas},
                      params={"denoise": float(nc.widget("denoise", 1.0))})
    return [_out(node, "high", "SIGMAS"), _out(node, "low", "SIGMAS")]


# -- samplers, noise, guiders ---------------------------------------------------------------------

_OPTION_NODES = {
    "SamplerEulerAncestral": ("euler_ancestral", ("eta", "s_noise")),
    "SamplerDPMPP_2S_Ancestral": ("dpmpp_2s_ancestral", ("eta", "s_noise")),
    "SamplerLMS": ("lms", ("order",)),
    "SamplerDPMPP_SDE": ("dpmpp_sde", ("eta", "s_noise", "r")),
    "SamplerDPMPP_2M_SDE": ("dpmpp_2m_sde", ("eta", "s_noise", "solver_type")),
    "SamplerDPMPP_3M_SDE": ("dpmpp_3m_sde", ("eta", "s_noise")),
}


def sampler_select(nc: NodeContext) -> list[Any]:
    if nc.node.class_type == "KSamplerSelect":
        params: dict[str, Any] = {"sampler": _sampler_name(nc, nc.widget("sampler_name", "euler"))}
    else:
        name, options = _OPTION_NODES[nc.node.class_type]
        if nc.widget("noise_device", "cpu") == "gpu":
            name += "_gpu"
        params = {"sampler": name}
        params.update({k: nc.widget(k) for k in options if nc.widget(k) is not None})
    return [_out(nc.add("sd.sampler_select", params=params), "sampler", "SAMPLER")]


def noise(nc: NodeContext) -> list[Any]:
    if nc.node.class_type == "DisableNoise":
        params: dict[str, Any] = {"seed": 0, "add": False}
    else:
        params = {"seed": _seed(nc, "noise_seed"), "add": True}
    return [_out(nc.add("sd.noise", params=params), "noise", "NOISE")]


def _guider_cond(nc: NodeContext, positive: Any, negative: Any) -> Data:
    if negative is None:  # BasicGuider: no negative; at cfg 1 ours never runs one, any will do
        negative = positive if isinstance(positive, Cond) and positive.kind == "text" else None
        if negative is None:
            leaf = conditioning._first_text(positive)
            negative = Cond(nc.id, "text", text="", clip=leaf.clip) if leaf is not None else positive
    return conditioning.build(nc.importer, nc, positive, negative)


def guider(nc: NodeContext) -> list[Any]:
    model = nc.model("model")
    if nc.node.class_type == "BasicGuider":
        cond, cfg = _guider_cond(nc, nc.input("conditioning"), None), 1.0
    else:
        cond, cfg = _guider_cond(nc, nc.input("positive"), nc.input("negative")), float(nc.widget("cfg", 8.0))
    node = nc.add("sd.guider", inputs={"cond": cond},
                  params={"model": model.ref(), **model.sampling_params(), "cfg": cfg})
    return [_out(node, "guider", "GUIDER")]


def _sample(nc: NodeContext, noise_ref: Data, guider_ref: Data, suffix: str = "") -> list[Any]:
    latent, mask = _latent_and_mask(nc)
    inputs: dict[str, Any] = {"noise": noise_ref, "guider": guider_ref, "sampler": nc.data("sampler"),
                              "sigmas": nc.data("sigmas"), "latent": latent}
    if mask is not None:
        inputs["mask"] = mask
    _, index = batch_record(nc.importer, latent.ref)
    node = nc.add("sd.sample_custom", inputs=inputs, suffix=suffix,
                  params={"batch_index": index} if index is not None else None)
    return [_out(node, "latent", "LATENT", size=latent.size),
            _out(node, "denoised", "LATENT", size=latent.size)]


def sampler_custom_advanced(nc: NodeContext) -> list[Any]:
    return _sample(nc, nc.data("noise"), nc.data("guider"))


def sampler_custom(nc: NodeContext) -> list[Any]:
    """SamplerCustom is RandomNoise/DisableNoise + CFGGuider + SamplerCustomAdvanced in one node."""
    add = nc.widget("add_noise", True)
    add = add if isinstance(add, bool) else str(add).lower() not in ("false", "disable", "0")
    noise_node = nc.add("sd.noise", params={"seed": _seed(nc, "noise_seed"), "add": bool(add)},
                        suffix="_noise")
    cond = _guider_cond(nc, nc.input("positive"), nc.input("negative"))
    model = nc.model("model")
    guider_node = nc.add("sd.guider", inputs={"cond": cond},
                         params={"model": model.ref(), **model.sampling_params(),
                                 "cfg": float(nc.widget("cfg", 8.0))}, suffix="_guider")
    return _sample(nc, _out(noise_node, "noise", "NOISE"), _out(guider_node, "guider", "GUIDER"))


def model_sampling_discrete(nc: NodeContext) -> list[Any]:
    """ModelSamplingDiscrete: the MODEL with its prediction (and zero-SNR) overridden; the samplers and
    schedulers that read it get ``model_sampling``/``zsnr`` params."""
    sampling = str(nc.widget("sampling", "eps"))
    if sampling not in ("eps", "v_prediction", "lcm", "x0"):
        raise Unresolved(f"sampling {sampling!r} is not supported (eps, v_prediction, lcm, x0)",
                         field="sampling")
    return [replace(nc.model("model"), sampling=sampling, zsnr=bool(nc.widget("zsnr", False)))]


def _c(class_type: str, fn: Any, requires: tuple[str, ...]) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=requires)


SIGMA_WIDGETS = {"steps": "steps", "sigma_max": "sigma_max", "sigma_min": "sigma_min"}

MAPPINGS: tuple[ComfyMapping, ...] = (
    _c("ModelSamplingDiscrete", model_sampling_discrete, ("sd.ksampler",)),
    _c("KSampler", ksampler, ("sd.ksampler|sd.denoise",)),
    _c("KSamplerAdvanced", ksampler, ("sd.ksampler|sd.denoise",)),
    _c("BasicScheduler", _sigmas_node("sd.sigmas", {"steps": "steps", "denoise": "denoise"}, True,
                                      _basic_scheduler), ("sd.sigmas",)),
    _c("KarrasScheduler", _sigmas_node("sd.sigmas_karras", {**SIGMA_WIDGETS, "rho": "rho"}),
       ("sd.sigmas_karras",)),
    _c("ExponentialScheduler", _sigmas_node("sd.sigmas_exponential", SIGMA_WIDGETS),
       ("sd.sigmas_exponential",)),
    _c("PolyexponentialScheduler", _sigmas_node("sd.sigmas_polyexponential", {**SIGMA_WIDGETS, "rho": "rho"}),
       ("sd.sigmas_polyexponential",)),
    _c("SDTurboScheduler", _sigmas_node("sd.sigmas_turbo", {"steps": "steps", "denoise": "denoise"}, True),
       ("sd.sigmas_turbo",)),
    _c("BetaSamplingScheduler", _sigmas_node("sd.sigmas_beta", {"steps": "steps", "alpha": "alpha",
                                                                "beta": "beta"}, True), ("sd.sigmas_beta",)),
    _c("AlignYourStepsScheduler", _sigmas_node("sd.sigmas_ays", {"model_type": "model_type", "steps": "steps",
                                                                 "denoise": "denoise"}), ("sd.sigmas_ays",)),
    _c("FlipSigmas", flip_sigmas, ("sd.flip_sigmas",)),
    _c("SplitSigmas", split_sigmas, ("sd.split_sigmas",)),
    _c("SplitSigmasDenoise", split_sigmas, ("sd.split_sigmas_denoise",)),
    _c("KSamplerSelect", sampler_select, ("sd.sampler_select",)),
    *(_c(name, sampler_select, ("sd.sampler_select",)) for name in _OPTION_NODES),
    _c("RandomNoise", noise, ("sd.noise",)),
    _c("DisableNoise", noise, ("sd.noise",)),
    _c("CFGGuider", guider, ("sd.guider",)),
    _c("BasicGuider", guider, ("sd.guider",)),
    _c("SamplerCustomAdvanced", sampler_custom_advanced, ("sd.sample_custom",)),
    _c("SamplerCustom", sampler_custom, ("sd.sample_custom", "sd.noise", "sd.guider")),
    _c("LatentFromBatch", latent_batch, ("sd.latent_batch",)),
    _c("RepeatLatentBatch", latent_batch, ("sd.latent_batch",)),
)
