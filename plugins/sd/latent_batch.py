"""``sd.latent_batch``: ComfyUI's LatentFromBatch and RepeatLatentBatch.

``from_batch`` takes ``length`` latents from ``start`` (both clamped to the batch, as
ComfyUI does); ``repeat`` repeats the batch ``amount`` times. In ComfyUI both also record
each latent's index in the batch its noise is drawn for (``batch_index``); the importer
follows that record and hands it to the sampler (``sd.ksampler``'s ``batch_index``), so
the latents get the noise they had in the whole batch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block


@block("sd.latent_batch", version="1.0.0")
class LatentBatch(Block):
    """Take latents out of a batch, or repeat a batch (ComfyUI's LatentFromBatch, RepeatLatentBatch)."""

    inputs = {"latent": In("LATENT", "a batch of latents")}
    outputs = {"latent": Out("LATENT", "the latents taken, or the batch repeated")}

    class Params(Params):
        mode: Literal["from_batch", "repeat"] = Field("from_batch", description="take a slice, or repeat")
        start: int = Field(0, ge=0, le=4095, description="from_batch: the first latent taken")
        length: int = Field(1, ge=1, le=4096, description="from_batch: how many")
        amount: int = Field(1, ge=1, le=64, description="repeat: how many times")

    def run(self, ctx: Context, latent: Any) -> dict:
        import torch

        if not isinstance(latent, torch.Tensor) or latent.ndim != 4:
            raise BlockError(f"node {ctx.node!r}: inputs.latent is not a latent [batch, channels, height, "
                             f"width]", type="input", node=ctx.node, field="inputs.latent")
        p = self.params
        if p.mode == "repeat":
            if latent.shape[0] * p.amount > 4096:
                raise BlockError(f"node {ctx.node!r}: {latent.shape[0]} latents repeated {p.amount} times "
                                 f"exceed 4096", type="limit", node=ctx.node, field="params.amount",
                                 value=p.amount)
            return {"latent": latent.repeat((p.amount, 1, 1, 1))}
        start = min(latent.shape[0] - 1, p.start)
        length = min(latent.shape[0] - start, p.length)
        return {"latent": latent[start:start + length].clone()}


BLOCKS = [LatentBatch]
