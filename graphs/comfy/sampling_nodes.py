"""ComfyUI's declarations of its custom-sampling classes (``comfy_extras/nodes_custom_sampler.py``).

Their link inputs, widgets in order (what a UI-format ``widgets_values`` list holds; a seed
is followed by its ``control_after_generate`` value there) and outputs: the UI -> API
conversion names widget values by them, and the API -> UI export lays nodes out by them.
"""

from __future__ import annotations

from graphs.comfy.nodes import NodeInfo

_SIGMA_RANGE = (("sigma_max", 14.614642), ("sigma_min", 0.0291675))
_SPLIT = ("SIGMAS", "SIGMAS")

SAMPLING_NODES: dict[str, NodeInfo] = {
    "BasicScheduler": NodeInfo(inputs={"model": "MODEL"},
                               widgets=(("scheduler", "normal"), ("steps", 20), ("denoise", 1.0)),
                               outputs=("SIGMAS",)),
    "KarrasScheduler": NodeInfo(widgets=(("steps", 20), *_SIGMA_RANGE, ("rho", 7.0)), outputs=("SIGMAS",)),
    "ExponentialScheduler": NodeInfo(widgets=(("steps", 20), *_SIGMA_RANGE), outputs=("SIGMAS",)),
    "PolyexponentialScheduler": NodeInfo(widgets=(("steps", 20), *_SIGMA_RANGE, ("rho", 1.0)),
                                         outputs=("SIGMAS",)),
    "SDTurboScheduler": NodeInfo(inputs={"model": "MODEL"}, widgets=(("steps", 1), ("denoise", 1.0)),
                                 outputs=("SIGMAS",)),
    "BetaSamplingScheduler": NodeInfo(inputs={"model": "MODEL"},
                                      widgets=(("steps", 20), ("alpha", 0.6), ("beta", 0.6)),
                                      outputs=("SIGMAS",)),
    "SplitSigmas": NodeInfo(inputs={"sigmas": "SIGMAS"}, widgets=(("step", 0),), outputs=_SPLIT),
    "SplitSigmasDenoise": NodeInfo(inputs={"sigmas": "SIGMAS"}, widgets=(("denoise", 1.0),), outputs=_SPLIT),
    "KSamplerSelect": NodeInfo(widgets=(("sampler_name", "euler"),), outputs=("SAMPLER",)),
    "SamplerEulerAncestral": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0)), outputs=("SAMPLER",)),
    "SamplerDPMPP_SDE": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0), ("r", 0.5),
                                          ("noise_device", "gpu")), outputs=("SAMPLER",)),
    "SamplerDPMPP_2M_SDE": NodeInfo(widgets=(("solver_type", "midpoint"), ("eta", 1.0), ("s_noise", 1.0),
                                             ("noise_device", "gpu")), outputs=("SAMPLER",)),
    "SamplerDPMPP_3M_SDE": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0), ("noise_device", "gpu")),
                                    outputs=("SAMPLER",)),
    "RandomNoise": NodeInfo(widgets=(("noise_seed", 0),), outputs=("NOISE",)),
    "DisableNoise": NodeInfo(outputs=("NOISE",)),
    "CFGGuider": NodeInfo(inputs={"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING"},
                          widgets=(("cfg", 8.0),), outputs=("GUIDER",)),
    "BasicGuider": NodeInfo(inputs={"model": "MODEL", "conditioning": "CONDITIONING"}, outputs=("GUIDER",)),
    "SamplerCustom": NodeInfo(
        inputs={"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                "sampler": "SAMPLER", "sigmas": "SIGMAS", "latent_image": "LATENT"},
        widgets=(("add_noise", True), ("noise_seed", 0), ("cfg", 8.0)), outputs=("LATENT", "LATENT")),
    "SamplerCustomAdvanced": NodeInfo(
        inputs={"noise": "NOISE", "guider": "GUIDER", "sampler": "SAMPLER", "sigmas": "SIGMAS",
                "latent_image": "LATENT"}, outputs=("LATENT", "LATENT")),
}
