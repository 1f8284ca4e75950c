"""Latents as the UNet takes them <-> the VAE's own latents (``scaling_factor``, SDXL-style
per-channel ``latents_mean``/``latents_std``); used by the VAE blocks and the tiled VAE."""

from __future__ import annotations

from typing import Any


def scaled_latents(vae: Any, dist: Any, gen: Any, mode: str = "sample") -> Any:
    """The posterior ``dist`` sampled (or its mean), scaled as the UNet wants latents."""
    latents = dist.sample(gen) if mode == "sample" else dist.mode()
    cfg = vae.config
    mean, std = getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)
    if mean is not None and std is not None:
        c = latents.shape[1]
        mean_t = _channel(mean, c, latents)
        std_t = _channel(std, c, latents)
        return (latents - mean_t) * cfg.scaling_factor / std_t
    return cfg.scaling_factor * latents


def unscale(vae: Any, latents: Any) -> Any:
    """Scaled latents (the UNet's) -> the VAE's own latents."""
    cfg = vae.config
    mean, std = getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)
    if mean is not None and std is not None:
        c = latents.shape[1]
        return latents * _channel(std, c, latents) / cfg.scaling_factor + _channel(mean, c, latents)
    return latents / cfg.scaling_factor


def _channel(values: Any, c: int, like: Any) -> Any:
    import torch

    return torch.tensor(values).view(1, c, 1, 1).to(like.device, like.dtype)
