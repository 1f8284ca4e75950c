"""The image latent an InstructPix2Pix UNet takes beside the noisy latent (ComfyUI's ``IP2P.concat_cond``).

Kept apart from :mod:`plugins.sd.ip2p` (the blocks) so that the sampler can read it without
importing the blocks that build on the sampler.
"""

from __future__ import annotations

from typing import Any

CONCAT_KEY = "concat_latent_image"  # ComfyUI's name: the VAE's own (unscaled) latent of the image
SCALE_KEY = "concat_latent_scale"  # the VAE's scaling factor (what CosXL's EDM edit model scales it by)


def center_crop(pixels: Any, multiple: int) -> Any:
    """``[B, H, W, C]`` cut to multiples of ``multiple`` around the centre (ComfyUI's IP2P encode)."""
    h, w = (pixels.shape[1] // multiple) * multiple, (pixels.shape[2] // multiple) * multiple
    if (h, w) == tuple(pixels.shape[1:3]):
        return pixels
    top, left = (pixels.shape[1] % multiple) // 2, (pixels.shape[2] % multiple) // 2
    return pixels[:, top:top + h, left:left + w]


def ip2p_concat(cond: dict[str, Any], shape: tuple[int, ...], device: Any, edm: bool = False) -> Any:
    """The image latent an InstructPix2Pix UNet takes beside the latent of ``shape`` (zeros without).

    ``edm``: an SDXL edit model with continuous EDM sampling (CosXL edit), which ComfyUI gives the
    latent scaled as SDXL's latents (``SDXL_instructpix2pix``); other IP2P models take it unscaled.
    """
    import torch

    image = cond.get(CONCAT_KEY)
    if image is None:
        return torch.zeros(shape, device=device)
    image = image.to(device=device, dtype=torch.float32)
    if edm:
        image = image * float(cond.get(SCALE_KEY, 0.13025))
    if tuple(image.shape[1:]) != tuple(shape[1:]):
        image = _center_upscale(image, shape[-1], shape[-2])
    if image.shape[0] < shape[0]:
        image = image.repeat((shape[0] + image.shape[0] - 1) // image.shape[0], 1, 1, 1)
    return image[:shape[0]]


def _center_upscale(x: Any, width: int, height: int) -> Any:
    """ComfyUI's ``common_upscale(x, width, height, 'bilinear', 'center')``."""
    import torch

    old_w, old_h = x.shape[-1], x.shape[-2]
    old_aspect, new_aspect = old_w / old_h, width / height
    if old_aspect > new_aspect:
        cut = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        x = x[..., :, cut:old_w - cut]
    elif old_aspect < new_aspect:
        cut = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        x = x[..., cut:old_h - cut, :]
    return torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear")
