"""What a CONDITIONING carries beyond its prompt, and how the sampling loop applies it.

``sd.encode_prompt`` makes a conditioning: a dict of prompt tensors plus ``family`` and
``model``. Blocks downstream return a *copy* with one of these lists extended (never
touching their input), and :func:`plugins.sd.sampling.sample` applies them:

=================  =====================  =============================================
key                added by               applied in the loop
=================  =====================  =============================================
``controlnets``    ``sd.controlnet``      ControlNet residuals for every UNet call
                                          inside each one's step range, summed
``regions``        ``sd.regional_prompt`` more text conditions, each with an area or a
                                          mask and a strength, composed at every step
``image_prompts``  ``sd.ip_adapter``      IP-Adapter image tokens beside the text's
``gligen``         ``sd.gligen_textbox``  GLIGEN boxes: the file's gated self-attention
                                          layers on the rows of the prompt with boxes
=================  =====================  =============================================

``unclip`` (``sd.unclip_conditioning``) and ``concat_latent_image`` (``sd.ip2p_conditioning``)
are read by ComfyUI's samplers (:func:`plugins.sd.ksampler.native_sample`): an image embedding
as the model's adm (:mod:`plugins.sd.unclip`), an image latent beside the noisy one
(:mod:`plugins.sd.ip2p_latent`).

``sd.cond_combine`` merges several conditionings into one (the first one's prompt, every
one's extras). A conditioning with none of these keys samples exactly as before: the
extras below then change nothing.

A conditioning may also carry ``entries``: ComfyUI's list of prompts, each with an area, a
mask, a strength or a timestep range (``cond.set_area`` and the other blocks of
:mod:`plugins.sd.area`, ``sd.cond_combine`` with ``prompts='list'``); the loop then
composes their predictions as ComfyUI does (:class:`plugins.sd.area.Areas`), through
the UNet it calls (:meth:`StepConditioning.unet`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd import area, controlnet, gligen, ip_adapter, regional
from plugins.sd.cond_types import (
    EMBEDDING,
    EXTRA_KEYS,
    Sampling,
    UNetFn,
    UNetPrompt,
    Window,
    check_conditioning,
    with_extra,
)

# what a conditioning is (plugins.sd.cond_types) is re-exported: blocks import it from here too
__all__ = ["BLOCKS", "EMBEDDING", "EXTRA_KEYS", "CondCombine", "StepConditioning", "check_conditioning",
           "with_extra"]


class StepConditioning:
    """The extras of one conditioning, ready for one run of the sampling loop.

    Three hooks, each a no-op when the conditioning has no extra of its kind:
    :meth:`unet` may swap the UNet (IP-Adapters), :meth:`unet_kwargs` adds arguments to a
    UNet call (ControlNet residuals), :meth:`predict` computes a step's noise prediction
    from the loop's ``predict`` (regional prompts call it once per region).
    """

    def __init__(self, controls: Any = None, regions: Any = None, images: Any = None,
                 areas: Any = None, gligen: Any = None) -> None:
        self.controls = controls
        self.gligen = gligen  # GLIGEN boxes (plugins.sd.gligen)
        self.regions = regions
        self.images = images
        self.areas = areas

    @classmethod
    def build(cls, cond: dict[str, Any], run: Sampling) -> StepConditioning:
        if not any(cond.get(k) for k in (*EXTRA_KEYS, "entries", "gligen")):
            return cls()
        if cond.get("entries") and cond.get("regions"):
            raise BlockError(f"node {run.ctx.node!r}: a conditioning has both ComfyUI-style entries (areas, "
                             "masks) and sd.regional_prompt regions; use one of the two", type="input",
                             node=run.ctx.node, field="inputs.cond")
        return cls(
            controls=controlnet.Controls(cond["controlnets"], run) if cond.get("controlnets") else None,
            regions=regional.Regions(cond["regions"], run) if cond.get("regions") else None,
            images=ip_adapter.ImagePrompts(cond["image_prompts"], run) if cond.get("image_prompts") else None,
            areas=area.Areas(cond, run) if cond.get("entries") else None,
            gligen=gligen.Gligen(cond["gligen"], run, cond) if cond.get("gligen") else None,
        )

    def unet(self, unet: UNetFn, node: str = "") -> UNetFn:
        if self.controls is not None and getattr(unet, "module", None) is None:
            raise BlockError(f"node {node!r}: ControlNets need the torch UNet (sd.denoise, sd.inpaint), not "
                             f"this one", type="input", node=node, field="inputs.cond")
        unet = self.gligen.wrap(unet) if self.gligen is not None else unet
        unet = self.images.wrap(unet) if self.images is not None else unet
        return self.areas.wrap(unet) if self.areas is not None else unet

    def unet_kwargs(self, model_in: Any, t: Any, i: int, prompt: UNetPrompt, window: Window | None) -> dict:
        if self.controls is None:
            return {}
        return self.controls.kwargs(model_in, t, i, prompt, window)

    def predict(self, predict: Callable[..., Any], latents: Any, t: Any, i: int) -> tuple[Any, Any]:
        """``(latents, noise prediction)`` of step ``i``; regions may replace the latents first."""
        if self.regions is None:
            return latents, predict(latents, t, i)
        return self.regions.predict(predict, latents, t, i)


@block("sd.cond_combine", version="1.0.0")
class CondCombine(Block):
    """Combine several conditionings into one: the ControlNets, regions and image prompts of all.

    The text prompt is the first conditioning's (``prompts='first'``), or every
    conditioning's averaged (``prompts='average'``: the others become full-frame regional
    prompts sharing the weight equally), or every conditioning's prompts as one list
    (``prompts='list'``, ComfyUI's Conditioning Combine: each keeps its area, mask, strength
    and timestep range, see :mod:`plugins.sd.area`). The conditionings must be for models
    of one family.
    """

    inputs = {"conds": In("CONDITIONING", "conditionings to combine, the first is the base", multiple=True)}
    outputs = {"cond": Out("CONDITIONING", "the combined conditioning")}

    class Params(Params):
        prompts: Literal["first", "average", "list"] = Field(
            "first", description="first: the first conditioning's prompt; average: all prompts, equally; "
                                 "list: all prompts with their areas and masks, composed as ComfyUI does")

    def run(self, ctx: Context, conds: list[Any]) -> dict:
        if not conds:
            raise BlockError(f"node {ctx.node!r}: inputs.conds is empty", type="input", node=ctx.node,
                             field="inputs.conds")
        for k, c in enumerate(conds):
            check_conditioning(c, ctx.node, f"inputs.conds[{k}]")
        families = {c.get("family") for c in conds}
        if len(families) > 1:
            raise BlockError(f"node {ctx.node!r}: conditionings of different model families "
                             f"({', '.join(sorted(map(str, families)))}) cannot be combined", type="input",
                             node=ctx.node, field="inputs.conds")
        out = dict(conds[0])
        for key in EXTRA_KEYS:
            items = [item for c in conds for item in c.get(key, [])]
            if items:
                out[key] = items
        if self.params.prompts == "list":
            out["entries"] = [e for c in conds for e in area.entries_of(c)]
        elif self.params.prompts == "average" and len(conds) > 1:
            share = 1.0 / len(conds)
            whole = [{"prompt_embeds": c["prompt_embeds"], "family": c.get("family"),
                      "pooled_prompt_embeds": c.get("pooled_prompt_embeds"), "mask": None, "area": None,
                      "strength": share, "method": "area", "feather": 0, "until": 0.0, "seed": 0}
                     for c in conds[1:]]
            out["regions"] = [*out.get("regions", []), *whole]
        return {"cond": out}


BLOCKS = [CondCombine]
