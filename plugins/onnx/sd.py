"""Stable Diffusion parts on onnxruntime: drop-in replacements for the torch SD blocks.

Each reads the parts exported by ``orchestrator export-onnx MODEL`` (through
``ctx.models.onnx(model, part)``) and takes and gives the same values as its torch
twin, so ``onnx.vae_decode`` can replace ``sd.vae_decode`` in any graph. They run on the
CUDA (or TensorRT) execution provider when the block's device is a GPU, else on the CPU.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block, model_name
from plugins.sd.common import (
    MODEL_FIELD_DESCRIPTION,
    ModelParam,
    check_cond,
    device_of,
    generator,
    make_scheduler,
    model_ref,
    randn,
    schedule,
)
from plugins.sd.denoise import SamplingParams
from plugins.sd.prompt import padded_ids
from plugins.sd.sampling import sample
from plugins.sd.vae import image_processor, rgb, to_image


def _part(ctx: Context, ref: Any, part: str, device: str) -> Any:
    return ctx.models.onnx(ref, part, device=device)


def unscale(latents: Any, vae: dict[str, Any]) -> Any:
    """Scaled latents -> what the VAE decoder takes (as the pipelines do before decoding)."""
    import torch

    mean, std = vae.get("latents_mean"), vae.get("latents_std")
    sf = vae.get("scaling_factor", 0.18215)
    if mean is not None and std is not None:
        c = latents.shape[1]
        m = torch.tensor(mean).view(1, c, 1, 1).to(latents)
        s = torch.tensor(std).view(1, c, 1, 1).to(latents)
        return latents * s / sf + m
    return latents / sf


def scale(latents: Any, vae: dict[str, Any]) -> Any:
    import torch

    mean, std = vae.get("latents_mean"), vae.get("latents_std")
    sf = vae.get("scaling_factor", 0.18215)
    if mean is not None and std is not None:
        c = latents.shape[1]
        m = torch.tensor(mean).view(1, c, 1, 1).to(latents)
        s = torch.tensor(std).view(1, c, 1, 1).to(latents)
        return (latents - m) * sf / s
    return latents * sf


@block("onnx.vae_decode", version="1.0.0")
class OnnxVaeDecode(Block):
    """Decode a latent with the model's exported ONNX VAE decoder (replaces ``sd.vae_decode``).

    Matches the torch decode within 1e-4 (on the 0..1 pixel scale) in fp32.
    """

    inputs = {"latent": "LATENT"}
    outputs = {"image": Out("IMAGE", "[B, H, W, 3] in 0..1")}
    resources = Resources(device="gpu", memory_mb=1024)

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)

    def run(self, ctx: Context, latent: Any) -> dict:
        ref = model_ref(self.params.model)
        info = ctx.models.info(ref)
        dec = _part(ctx, ref, "vae_decoder", device_of(ctx))
        pixels = dec.run({"latent": unscale(latent.float(), info.vae)})["sample"]
        return {"image": to_image(pixels)}


@block("onnx.vae_encode", version="1.0.0")
class OnnxVaeEncode(Block):
    """Encode an image with the exported ONNX VAE encoder (replaces ``sd.vae_encode``)."""

    inputs = {"image": In("IMAGE", "image [B, H, W, C] in 0..1, sides multiples of 8")}
    outputs = {"latent": Out("LATENT", "scaled latent"),
               "rng": Out("RNG", "random state after the posterior sample")}
    resources = Resources(device="gpu", memory_mb=1024)

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        mode: Literal["sample", "mean"] = Field("sample", description="posterior sample or its mean")
        seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed; null: derived from the node")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        p = self.params
        ref = model_ref(p.model)
        info = ctx.models.info(ref)
        enc = _part(ctx, ref, "vae_encoder", device_of(ctx))
        pixels = image_processor(info.vae_scale_factor).preprocess(rgb(image, ctx.node))
        moments = enc.run({"sample": pixels})["moments"]
        dist = DiagonalGaussianDistribution(moments)
        gen = generator(None, ctx.seed if p.seed is None else p.seed)
        latents = dist.sample(gen) if p.mode == "sample" else dist.mode()
        return {"latent": scale(latents, info.vae).float().cpu(), "rng": gen.get_state()}


def _encode(model: Any, tok: Any, text: str, max_length: int) -> dict[str, Any]:
    ids = padded_ids(tok, text, max_length)
    return model.run({"input_ids": ids})


@block("onnx.encode_prompt", version="1.0.0")
class OnnxEncodePrompt(Block):
    """Encode prompts with the exported ONNX text encoder(s) (replaces ``sd.encode_prompt``)."""

    outputs = {"cond": Out("CONDITIONING", "prompt and negative-prompt embeddings")}
    resources = Resources(device="gpu", memory_mb=1024)

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        prompt: str = Field("", max_length=10000, description="what to draw")
        negative_prompt: str | None = Field(None, max_length=10000, description="what to avoid")
        clip_skip: int | None = Field(None, ge=0, le=24, description="use an earlier CLIP layer")

    def run(self, ctx: Context) -> dict:
        import torch

        p = self.params
        ref = model_ref(p.model)
        device = device_of(ctx)
        info = ctx.models.info(ref)
        skip = p.clip_skip or None
        if ref_has_embeddings(p.model):
            raise BlockError(f"node {ctx.node!r}: textual-inversion embeddings need the torch text encoder "
                             f"(sd.encode_prompt)", type="input", node=ctx.node, field="params.model")
        if info.family == "sdxl":
            toks = ctx.models.tokenizers(ref)
            encs = [_part(ctx, ref, "text_encoder", device), _part(ctx, ref, "text_encoder_2", device)]
            outs = [_encode(e, t, p.prompt, t.model_max_length) for e, t in zip(encs, toks, strict=True)]
            embeds = torch.cat([o["hidden_states"][-2 if skip is None else -(skip + 2)] for o in outs], -1)
            pooled = outs[1]["pooled"]
            if p.negative_prompt is None and info.force_zeros_for_empty_prompt:
                neg, neg_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
            else:
                nouts = [_encode(e, t, p.negative_prompt or "", embeds.shape[1])
                         for e, t in zip(encs, toks, strict=True)]
                neg = torch.cat([o["hidden_states"][-2] for o in nouts], -1)
                neg_pooled = nouts[1]["pooled"]
            cond = {"prompt_embeds": embeds, "negative_prompt_embeds": neg, "pooled_prompt_embeds": pooled,
                    "negative_pooled_prompt_embeds": neg_pooled}
        else:
            tok = ctx.models.tokenizer(ref)
            enc = _part(ctx, ref, "text_encoder", device)
            out = _encode(enc, tok, p.prompt, tok.model_max_length)
            embeds = out["last_hidden_state"] if skip is None else out["normed_hidden_states"][-(skip + 1)]
            neg = _encode(enc, tok, p.negative_prompt or "", embeds.shape[1])["last_hidden_state"]
            cond = {"prompt_embeds": embeds, "negative_prompt_embeds": neg}
        cond = {k: v.float().cpu() for k, v in cond.items()}
        cond.update(family=info.family, model=model_name(p.model))
        return {"cond": cond}


def ref_has_embeddings(model: ModelParam) -> bool:
    return not isinstance(model, str) and bool(model.embeddings)


def onnx_unet(model: Any) -> Any:
    """The ONNX UNet as :func:`plugins.sd.sampling.sample` calls it."""
    import torch

    def call(sample_in: Any, t: Any, encoder_hidden_states: Any, timestep_cond: Any = None,
             added_cond_kwargs: Any = None) -> Any:
        feeds = {"sample": sample_in, "timestep": torch.as_tensor(t, dtype=torch.float32).reshape(1),
                 "encoder_hidden_states": encoder_hidden_states}
        if added_cond_kwargs:
            feeds.update(added_cond_kwargs)
        return model.run(feeds)["noise_pred"].to(sample_in.device)

    return call


@block("onnx.denoise", version="1.0.0")
class OnnxDenoise(Block):
    """Denoise with the exported ONNX UNet (replaces ``sd.denoise``; same params and semantics)."""

    inputs = {"cond": In("CONDITIONING", "from an encode-prompt block"),
              "latent": In("LATENT", "an empty latent (size) or an image latent (img2img)"),
              "rng": In("RNG", "continue this random stream instead of seeding", optional=True)}
    outputs = {"latent": Out("LATENT", "the denoised latent")}
    resources = Resources(device="gpu", memory_mb=4096)
    Params = SamplingParams

    def run(self, ctx: Context, cond: Any, latent: Any, rng: Any = None) -> dict:
        import torch

        p = self.params
        if not isinstance(p.model, str) and p.model.loras:
            raise BlockError(f"node {ctx.node!r}: LoRAs need the torch UNet (sd.denoise); export a "
                             f"merged model for ONNX", type="input", node=ctx.node, field="params.model")
        ref = model_ref(p.model)
        info = ctx.models.info(ref)
        check_cond(cond, info.family, ctx.node)
        unet = _part(ctx, ref, "unet", device_of(ctx))
        device = unet.device
        dtype = torch.float32
        scheduler = make_scheduler(info.scheduler, p.sampler)
        timesteps, _n = schedule(scheduler, p.steps, p.strength, device, ctx.node)
        gen = generator(rng, ctx.seed if p.seed is None else p.seed)
        init = latent.to(device=device, dtype=dtype)
        noise = randn(tuple(init.shape), gen, device, dtype)
        if p.strength >= 1.0 and not bool(torch.any(init)):
            latents = noise * scheduler.init_noise_sigma
        else:
            latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(init.shape[0]))
        f = info.vae_scale_factor
        out = sample(ctx=ctx, unet=onnx_unet(unet), unet_config=info.unet, scheduler=scheduler,
                     timesteps=timesteps, latents=latents, cond=cond, cfg=p.cfg, gen=gen, device=device,
                     dtype=dtype, pixel_size=(init.shape[-2] * f, init.shape[-1] * f), eta=p.eta,
                     guidance_rescale=p.guidance_rescale)
        return {"latent": out.float().cpu()}


BLOCKS = [OnnxEncodePrompt, OnnxDenoise, OnnxVaeEncode, OnnxVaeDecode]
