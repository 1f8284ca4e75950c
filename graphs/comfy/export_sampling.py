"""Exporting the native sampler family's custom-sampling blocks back to ComfyUI's nodes.

Mixed into the exporter (:mod:`graphs.comfy.export`), one method per block, as its own:
``sd.sigmas*`` -> the scheduler nodes, ``sd.split_sigmas(_denoise)`` -> SplitSigmas(Denoise),
``sd.sampler_select`` -> KSamplerSelect (or the sampler node that carries its options),
``sd.noise`` -> RandomNoise / DisableNoise, ``sd.guider`` -> CFGGuider (BasicGuider at cfg 1),
``sd.sample_custom`` -> SamplerCustomAdvanced. ``sd.ksampler`` is exported beside ``sd.denoise``.
"""

from __future__ import annotations

from typing import Any

from graphs.model import Node

# our sampler -> (ComfyUI sampler node that sets its options, its options, noise_device)
_OPTION_NODES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "euler_ancestral": ("SamplerEulerAncestral", ("eta", "s_noise"), None),
    "dpmpp_2s_ancestral": ("SamplerDPMPP_2S_Ancestral", ("eta", "s_noise"), None),
    "lms": ("SamplerLMS", ("order",), None),
    "dpmpp_sde": ("SamplerDPMPP_SDE", ("eta", "s_noise", "r"), "cpu"),
    "dpmpp_sde_gpu": ("SamplerDPMPP_SDE", ("eta", "s_noise", "r"), "gpu"),
    "dpmpp_2m_sde": ("SamplerDPMPP_2M_SDE", ("solver_type", "eta", "s_noise"), "cpu"),
    "dpmpp_2m_sde_gpu": ("SamplerDPMPP_2M_SDE", ("solver_type", "eta", "s_noise"), "gpu"),
    "dpmpp_3m_sde": ("SamplerDPMPP_3M_SDE", ("eta", "s_noise"), "cpu"),
    "dpmpp_3m_sde_gpu": ("SamplerDPMPP_3M_SDE", ("eta", "s_noise"), "gpu"),
}
_OPTION_DEFAULTS = {"eta": 1.0, "s_noise": 1.0, "r": 0.5, "solver_type": "midpoint", "order": 4}
_SIGMA_NODES = {
    "sd.sigmas_karras": ("KarrasScheduler", ("steps", "sigma_max", "sigma_min", "rho")),
    "sd.sigmas_exponential": ("ExponentialScheduler", ("steps", "sigma_max", "sigma_min")),
    "sd.sigmas_polyexponential": ("PolyexponentialScheduler", ("steps", "sigma_max", "sigma_min", "rho")),
}
_SIGMA_DEFAULTS = {"steps": 20, "sigma_max": 14.614642, "sigma_min": 0.0291675}


class SamplingExport:
    """The export methods of the custom-sampling blocks (``self`` is the exporter: it provides
    ``ports``, ``_new``, ``_link``, ``_cond`` and ``_loras``)."""

    ports: dict[str, Any]
    graph: Any
    cache: dict[Any, str]
    _new: Any
    _vae: Any
    _link: Any
    _cond: Any
    _loras: Any

    def _sampled_model(self, p: dict[str, Any]) -> Any:
        """The MODEL link for ``p['model']``, through ModelSamplingDiscrete when the params override it."""
        model = self._loras(p.get("model", "tiny-sd"), 0)
        if p.get("model_sampling") is None and p.get("zsnr") is None:
            return model
        key = ("model_sampling", tuple(model), p.get("model_sampling"), p.get("zsnr"))
        if key not in self.cache:
            self.cache[key] = self._new("ModelSamplingDiscrete", {
                "sampling": p.get("model_sampling") or "eps", "zsnr": bool(p.get("zsnr")), "model": model})
        return [self.cache[key], 0]

    def _id(self, node: Node) -> Any:
        info = node.meta.get("comfy")
        return info.get("id") if isinstance(info, dict) else None

    def _sigma_params(self, node: Node, names: tuple[str, ...], rho: float) -> dict[str, Any]:
        p = node.params
        return {n: p.get(n, rho if n == "rho" else _SIGMA_DEFAULTS.get(n)) for n in names}

    def _sd_sigmas_karras(self, node_id: str, node: Node) -> None:
        self._sigmas_node(node_id, node, *_SIGMA_NODES["sd.sigmas_karras"], rho=7.0)

    def _sd_sigmas_exponential(self, node_id: str, node: Node) -> None:
        self._sigmas_node(node_id, node, *_SIGMA_NODES["sd.sigmas_exponential"], rho=1.0)

    def _sd_sigmas_polyexponential(self, node_id: str, node: Node) -> None:
        self._sigmas_node(node_id, node, *_SIGMA_NODES["sd.sigmas_polyexponential"], rho=1.0)

    def _sigmas_node(self, node_id: str, node: Node, class_type: str, names: tuple[str, ...],
                     rho: float) -> None:
        new = self._new(class_type, self._sigma_params(node, names, rho), self._id(node))
        self.ports[f"{node_id}.sigmas"] = [new, 0]

    def _model_sigmas(self, node_id: str, node: Node, class_type: str, inputs: dict[str, Any]) -> None:
        new = self._new(class_type, {**inputs, "model": self._sampled_model(node.params)}, self._id(node))
        self.ports[f"{node_id}.sigmas"] = [new, 0]

    def _sd_sigmas(self, node_id: str, node: Node) -> None:
        p = node.params
        self._model_sigmas(node_id, node, "BasicScheduler", {
            "scheduler": p.get("scheduler", "normal"), "steps": int(p.get("steps", 20)),
            "denoise": float(p.get("denoise", 1.0))})

    def _sd_sigmas_turbo(self, node_id: str, node: Node) -> None:
        p = node.params
        self._model_sigmas(node_id, node, "SDTurboScheduler", {"steps": int(p.get("steps", 1)),
                                                               "denoise": float(p.get("denoise", 1.0))})

    def _sd_sigmas_beta(self, node_id: str, node: Node) -> None:
        p = node.params
        self._model_sigmas(node_id, node, "BetaSamplingScheduler", {
            "steps": int(p.get("steps", 20)), "alpha": float(p.get("alpha", 0.6)),
            "beta": float(p.get("beta", 0.6))})

    def _sd_sigmas_ays(self, node_id: str, node: Node) -> None:
        p = node.params
        inputs = {"model_type": p.get("model_type", "SD1"), "steps": int(p.get("steps", 10)),
                  "denoise": float(p.get("denoise", 1.0))}
        self.ports[f"{node_id}.sigmas"] = [self._new("AlignYourStepsScheduler", inputs, self._id(node)), 0]

    def _sd_flip_sigmas(self, node_id: str, node: Node) -> None:
        new = self._new("FlipSigmas", {"sigmas": self._link(node, "sigmas")}, self._id(node))
        self.ports[f"{node_id}.sigmas"] = [new, 0]

    def _split(self, node_id: str, node: Node, class_type: str, widget: dict[str, Any]) -> None:
        new = self._new(class_type, {**widget, "sigmas": self._link(node, "sigmas")},
                        self._id(node))
        self.ports[f"{node_id}.high"] = [new, 0]
        self.ports[f"{node_id}.low"] = [new, 1]

    def _sd_split_sigmas(self, node_id: str, node: Node) -> None:
        self._split(node_id, node, "SplitSigmas", {"step": int(node.params.get("step", 0))})

    def _sd_split_sigmas_denoise(self, node_id: str, node: Node) -> None:
        self._split(node_id, node, "SplitSigmasDenoise", {"denoise": float(node.params.get("denoise", 1.0))})

    def _sd_sampler_select(self, node_id: str, node: Node) -> None:
        p = node.params
        name = p.get("sampler", "euler")
        options = {k: p[k] for k in ("eta", "s_noise", "r", "solver_type", "order") if p.get(k) is not None}
        if name in _OPTION_NODES and (options or name.endswith("_gpu")):
            class_type, names, device = _OPTION_NODES[name]
            inputs = {k: options.get(k, _OPTION_DEFAULTS[k]) for k in names}
            if device is not None:
                inputs["noise_device"] = device
            new = self._new(class_type, inputs, self._id(node))
        else:
            new = self._new("KSamplerSelect", {"sampler_name": name}, self._id(node))
        self.ports[f"{node_id}.sampler"] = [new, 0]

    def _sd_noise(self, node_id: str, node: Node) -> None:
        p = node.params
        if p.get("add", True):
            new = self._new("RandomNoise", {"noise_seed": int(p.get("seed") or 0)}, self._id(node))
        else:
            new = self._new("DisableNoise", {}, self._id(node))
        self.ports[f"{node_id}.noise"] = [new, 0]

    def _sd_guider(self, node_id: str, node: Node) -> None:
        p = node.params
        pos, neg = self._cond(node)
        model = self._sampled_model(p)
        cfg = float(p.get("cfg", 8.0))
        if cfg == 1.0:
            new = self._new("BasicGuider", {"model": model, "conditioning": pos}, self._id(node))
        else:
            new = self._new("CFGGuider", {"cfg": cfg, "model": model, "positive": pos, "negative": neg},
                            self._id(node))
        self.ports[f"{node_id}.guider"] = [new, 0]

    def _sd_sample_custom(self, node_id: str, node: Node) -> None:
        latent = self._noise_masked(node, self._link(node, "latent"))
        inputs = {port: self._link(node, port) for port in ("noise", "guider", "sampler", "sigmas")}
        new = self._new("SamplerCustomAdvanced", {**inputs, "latent_image": latent}, self._id(node))
        self.ports[f"{node_id}.latent"] = [new, 0]
        self.ports[f"{node_id}.denoised"] = [new, 1]

    def _sd_vae_encode_for_inpaint(self, node_id: str, node: Node) -> None:
        """VAEEncodeForInpaint: one LATENT carrying its noise mask (a sampler reading both takes it as is)."""
        p = node.params
        inputs = {"grow_mask_by": int(p.get("grow_mask_by", 6)), "pixels": self._link(node, "image"),
                  "vae": self._vae(p.get("model", "tiny-sd")), "mask": self._link(node, "mask")}
        new = self._new("VAEEncodeForInpaint", inputs, self._id(node))
        self.ports[f"{node_id}.latent"] = [new, 0]

    def _noise_masked(self, node: Node, latent: Any) -> Any:
        """The latent a sampler reads, under its ``mask`` (SetLatentNoiseMask) unless the mask is the one
        VAEEncodeForInpaint's latent already carries."""
        mask = node.inputs.get("mask")
        if not mask:
            return latent
        source = str(mask).split(".")[0]
        if source == str(node.inputs.get("latent", "")).split(".")[0] and \
                self.graph.nodes[source].block == "sd.vae_encode_for_inpaint":
            return latent
        return [self._new("SetLatentNoiseMask", {"samples": latent, "mask": self._link(node, "mask")}), 0]

    def _sd_latent_batch(self, node_id: str, node: Node) -> None:
        p, samples = node.params, self._link(node, "latent")
        if p.get("mode") == "repeat":
            new = self._new("RepeatLatentBatch", {"amount": int(p.get("amount", 1)), "samples": samples},
                            self._id(node))
        else:
            new = self._new("LatentFromBatch", {"batch_index": int(p.get("start", 0)),
                                                "length": int(p.get("length", 1)), "samples": samples},
                            self._id(node))
        self.ports[f"{node_id}.latent"] = [new, 0]
