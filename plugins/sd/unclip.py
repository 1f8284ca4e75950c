"""unCLIP and SDXL revision: an image's CLIP embedding as the model's class conditioning.

``sd.unclip_conditioning`` (ComfyUI's unCLIPConditioning) adds an image embedding, a
``strength`` and a ``noise_augmentation`` to a conditioning (several stack). The sampling
loop turns them into the model's *adm* input as ComfyUI's ``model_base.unclip_adm`` does:

- each image embedding is noised to level ``round(999 * noise_augmentation)`` of a cosine
  (``squaredcos_cap_v2``) schedule of 1000 steps, with noise drawn from the sampler's seed
  minus 10, and followed by the sinusoidal embedding of that level; the pair is scaled by
  ``strength``;
- several are summed and the sum's embedding part noised again at ``noise_augment_merge``
  (0.05 for SD 2.1 unCLIP, 0 for SDXL: ComfyUI draws that second noise from torch's global
  generator, which no seed reproduces; here it comes from the seed minus 10 too);
- an **unCLIP UNet** (diffusers' ``class_embed_type='projection'``, SD 2.1 unCLIP, whose
  ``label_emb`` a single-file checkpoint converts to ``class_embedding``) takes the adm as
  ``class_labels``; a prompt without an image (the negative) gets zeros, as ComfyUI's
  ``SD21UNCLIP.encode_adm``;
- an **SDXL** UNet (revision) takes the adm's first ``pooled width`` values in place of the
  pooled text embedding of the prompt that carries the image (ComfyUI's ``sdxl_pooled``).

ComfyUI normalises the embedding by mean 0 and std 1 (it does not load a checkpoint's CLIP
statistics), so no normalisation happens here either.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.clip_vision import CLIP_VISION_OUTPUT, check_output
from plugins.sd.common import UNetPrompt
from plugins.sd.cond_types import check_conditioning

MAX_NOISE_LEVEL = 1000
SEED_OFFSET = -10  # ComfyUI seeds the noise augmentation with the sampler's seed minus 10
MERGE_NOISE = {"unclip": 0.05, "sdxl": 0.0}  # unclip_noise_augment_merge / sdxl_pooled's default


def alphas_cumprod(steps: int = MAX_NOISE_LEVEL) -> Any:
    """The cosine schedule's cumulative alphas (``make_beta_schedule('squaredcos_cap_v2')``), float64."""
    import numpy as np

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = np.array([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999)
                      for i in range(steps)])
    return np.cumprod(1.0 - betas, axis=0)


def level_embedding(level: int, dim: int) -> Any:
    """The sinusoidal embedding ``[1, dim]`` of a noise level (cos first; ComfyUI's ``Timestep``)."""
    import torch

    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
    args = torch.tensor([level], dtype=torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def noise_augment(x: Any, augmentation: float, seed: int) -> Any:
    """``(noised x, level embedding)``: ``CLIPEmbeddingNoiseAugmentation`` of ``x`` ``[1, D]``."""
    import torch

    level = round((MAX_NOISE_LEVEL - 1) * augmentation)
    ac = alphas_cumprod()
    a = torch.tensor(math.sqrt(ac[level]), dtype=torch.float32)
    b = torch.tensor(math.sqrt(1.0 - ac[level]), dtype=torch.float32)
    noise = torch.randn(tuple(x.shape), dtype=torch.float32, generator=torch.Generator().manual_seed(seed))
    return a * x + b * noise, level_embedding(level, x.shape[-1])


def unclip_adm(items: list[dict[str, Any]], seed: int, merge_noise: float) -> Any:
    """ComfyUI's ``unclip_adm``: ``[1, 2 D]`` from the stacked unCLIP conditionings."""
    import torch

    outs = []
    for item in items:
        for embed in item["image_embeds"]:
            z, emb = noise_augment(embed.float().reshape(1, -1), float(item["noise_augmentation"]), seed)
            outs.append(torch.cat([z, emb], dim=1) * float(item["strength"]))
    if len(outs) == 1:
        return outs[0]
    total = torch.stack(outs).sum(0)
    dim = total.shape[1] // 2
    z, emb = noise_augment(total[:, :dim], merge_noise, seed)
    return torch.cat([z, emb], dim=1)


class Adm:
    """The adm of one sampling run: applied to each prompt the loop builds (:meth:`apply`)."""

    def __init__(self, kind: str, width: int, seed: int, batch: int, do_cfg: bool, node: str) -> None:
        self.kind, self.width, self.seed = kind, width, seed + SEED_OFFSET
        self.batch, self.do_cfg, self.node = batch, do_cfg, node

    @classmethod
    def build(cls, cond: dict[str, Any], unet_config: dict[str, Any], family: str, *, seed: int, batch: int,
              do_cfg: bool, node: str) -> Adm | None:
        """``None`` unless the UNet is an unCLIP one or the conditioning carries unCLIP images."""
        needed = unet_config.get("class_embed_type") == "projection" or _has_unclip(cond)
        if needed and cond.get("entries"):
            raise BlockError(f"node {node!r}: unCLIP (image embeddings, or an unCLIP model) with area, mask "
                             f"or combined (list) conditioning is not supported yet", type="input", node=node,
                             field="inputs.cond")
        if unet_config.get("class_embed_type") == "projection":
            width = int(unet_config.get("projection_class_embeddings_input_dim") or 0)
            return cls("unclip", width, seed, batch, do_cfg, node)
        if not _has_unclip(cond):
            return None
        if family == "sdxl" or unet_config.get("addition_embed_type") == "text_time":
            width = int(cond["pooled_prompt_embeds"].shape[-1])
            return cls("sdxl", width, seed, batch, do_cfg, node)
        raise BlockError(f"node {node!r}: the conditioning carries unCLIP image embeddings, but the model is "
                         f"neither an unCLIP model (SD 2.1 unCLIP) nor SDXL (revision)", type="input",
                         node=node, field="inputs.cond")

    def vector(self, cond: dict[str, Any]) -> Any:
        """The adm of one conditioning (its images'; zeros without, for an unCLIP UNet)."""
        import torch

        items = cond.get("unclip") or []
        dim = self.width // 2 if self.kind == "unclip" else self.width
        for item in items:
            got = item["image_embeds"].shape[-1]
            if got != dim:
                raise BlockError(f"node {self.node!r}: the unCLIP image embedding has {got} values; this "
                                 f"model takes {dim} (a CLIP vision model of another size)", type="input",
                                 node=self.node, field="inputs.cond", value=got, bound=dim)
        if not items:
            return torch.zeros(1, self.width)
        adm = unclip_adm(items, self.seed, MERGE_NOISE[self.kind])
        return adm if self.kind == "unclip" else adm[:, :self.width]

    def apply(self, prompt: UNetPrompt, cond: dict[str, Any]) -> UNetPrompt:
        """``prompt`` (negative rows first under CFG) with ``cond``'s adm put where the model reads it.

        The negative side never carries images (zeros for an unCLIP UNet, its own pooled text for SDXL).
        """
        import torch

        added = dict(prompt.added or {})
        if self.kind == "unclip":
            rows = [self.vector(cond).repeat(self.batch, 1)]
            if self.do_cfg:
                rows.insert(0, torch.zeros(self.batch, self.width))
            ref = prompt.embeds
            added["class_labels"] = torch.cat(rows).to(device=ref.device, dtype=ref.dtype)
            return replace(prompt, added=added)
        if not _has_unclip(cond):
            return prompt
        text = added["text_embeds"]
        pooled = self.vector(cond).to(device=text.device, dtype=text.dtype).repeat(self.batch, 1)
        added["text_embeds"] = torch.cat([text[:self.batch], pooled]) if self.do_cfg else pooled
        return replace(prompt, added=added)


def _has_unclip(cond: dict[str, Any]) -> bool:
    return bool(cond.get("unclip"))


@block("sd.unclip_conditioning", version="1.0.0")
class UnclipConditioning(Block):
    """Add an image's CLIP embedding to a conditioning (ComfyUI's unCLIPConditioning).

    For SD 2.1 unCLIP models (the image's variations) and SDXL (revision: the embedding takes the
    place of the pooled text embedding). Chain several to mix images; ``strength`` 0 adds nothing.
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt (or another conditioning block)"),
              "clip_vision_output": In(CLIP_VISION_OUTPUT.name, "from sd.clip_vision_encode")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with this image added")}

    class Params(Params):
        strength: float = Field(1.0, ge=-10.0, le=10.0, description="weight of the image embedding")
        noise_augmentation: float = Field(0.0, ge=0.0, le=1.0,
                                          description="how far the embedding is noised (0: not at all)")

    def run(self, ctx: Context, cond: Any, clip_vision_output: Any) -> dict:
        cond = check_conditioning(cond, ctx.node)
        out = check_output(clip_vision_output, ctx.node)
        p = self.params
        if p.strength == 0:
            return {"cond": cond}
        item = {"image_embeds": out.image_embeds.float().cpu(), "strength": float(p.strength),
                "noise_augmentation": float(p.noise_augmentation)}
        return {"cond": {**cond, "unclip": [*cond.get("unclip", []), item]}}


BLOCKS = [UnclipConditioning]
