"""ComfyUI's KSampler on the diffusers-scheduler samplers: ``sd.denoise``, and ``sd.inpaint`` for a masked
latent.

What KSampler(Advanced) imports onto when the catalog lacks ``sd.ksampler`` (which runs
ComfyUI's samplers natively, :mod:`plugins.sd.comfy_sampling`), and for VAEEncodeForInpaint's
latent when it lacks ``sd.vae_encode_for_inpaint``. ComfyUI names a sampler and a schedule
apart; ours the nearest diffusers scheduler (``NodeContext.sampler``: approximations are
reported). ComfyUI's sampler runs ``steps`` steps of a schedule lengthened by ``1 / denoise``;
ours (as diffusers) runs ``steps * strength`` of ``steps``: ``denoise`` becomes ``strength``
and ``steps`` stays.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator import Data, MaskedLatent, NodeContext, Unresolved
from plugins.sd import comfy_conditioning as conditioning


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


def ksampler(nc: NodeContext) -> list[Any]:
    advanced = nc.node.class_type == "KSamplerAdvanced"
    model = nc.model("model")
    cond = conditioning.build(nc.importer, nc, nc.input("positive"), nc.input("negative"))
    latent = nc.input("latent_image")
    steps = int(nc.widget("steps", 20))
    sampler, why = nc.sampler(str(nc.widget("sampler_name", "euler")), str(nc.widget("scheduler", "normal")))
    if why:
        nc.warn(why, field="sampler_name", value=nc.widget("sampler_name"), used=sampler)
    seed = int(nc.widget("noise_seed" if advanced else "seed", 0))
    if seed > 2**63 - 1 or seed < 0:
        nc.warn(f"seed {seed} is outside 0..2**63-1; using it modulo 2**63", field="seed", value=seed)
        seed %= 2**63
    params: dict[str, Any] = {"model": model.ref(), "steps": steps, "cfg": float(nc.widget("cfg", 8.0)),
                              "sampler": sampler, "seed": seed}
    strength = _advanced_strength(nc, steps) if advanced else float(nc.widget("denoise", 1.0))
    if strength != 1.0:
        params["strength"] = strength
    if isinstance(latent, MaskedLatent):
        node = nc.add("sd.inpaint", inputs={"cond": cond, "image": latent.image, "mask": latent.mask},
                      params=params, meta={"latent_id": latent.node})
        return [_out(node, "latent", "LATENT", size=latent.size)]
    if not isinstance(latent, Data) or latent.type != "LATENT":
        raise Unresolved("input 'latent_image' is not a latent", field="latent_image")
    node = nc.add("sd.denoise", inputs={"cond": cond, "latent": latent}, params=params)
    return [_out(node, "latent", "LATENT", size=latent.size)]


def _advanced_strength(nc: NodeContext, steps: int) -> float:
    start = max(0, int(nc.widget("start_at_step", 0)))
    end = int(nc.widget("end_at_step", 10000))
    if nc.widget("add_noise", "enable") == "disable":
        nc.warn("add_noise 'disable' is not supported; ours adds noise for the steps it runs",
                field="add_noise")
    if end < steps:
        nc.warn(f"end_at_step {end} < steps {steps}: ours runs to the last step", field="end_at_step",
                value=end)
        if nc.widget("return_with_leftover_noise", "disable") == "enable":
            nc.warn("return_with_leftover_noise is not supported; the latent is fully denoised",
                    field="return_with_leftover_noise")
    if start <= 0 or steps <= 0:
        return 1.0
    if start >= steps:
        nc.warn(f"start_at_step {start} >= steps {steps}: no step would run; ours runs one",
                field="start_at_step")
        start = steps - 1
    strength = (steps - start) / steps
    while int(steps * strength) < steps - start:  # so that ours runs exactly steps - start steps
        strength = math.nextafter(strength, 2.0)
    return min(1.0, strength)
