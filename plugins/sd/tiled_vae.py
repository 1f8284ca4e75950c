"""Tiled VAE decode and encode: tiles with overlap, blended at the seams, spread over workers.

``sd.vae_decode`` and ``sd.vae_encode`` with a ``tile`` annotation (strategy ``vae``) run
here. The image is cut as diffusers' ``AutoencoderKL`` cuts it with tiling enabled
(``enable_tiling()``, ``tile_sample_min_size = tile.size``, ``tile_latent_min_size =
tile.size / 8``, ``tile_overlap_factor = tile.overlap / tile.size``): tiles every
``tile.size - tile.overlap`` pixels, each decoded (or encoded) on its own by whichever worker
gets it (:func:`decode_tile`, :func:`encode_tile`), then blended with the tile above and the
tile to the left over ``tile.overlap`` pixels and put together here, in diffusers' order and
arithmetic, so the image equals ``AutoencoderKL``'s tiled decode for the same sizes.

A worker holds one tile at a time on its device (tiles come back to the CPU at once), so
its peak memory follows the tile size, not the image size. An image no larger than one
tile is decoded (or encoded) whole, as diffusers does.

Encoding blends the tiles' posterior moments; the posterior is then sampled (or its mean
taken) once, for the whole image, with the block's generator, as diffusers does.
"""

from __future__ import annotations

from typing import Any

from orchestrator import BlockError, Context
from plugins.sd.common import device_of
from plugins.sd.latent_scaling import unscale


def blend_v(a: Any, b: Any, extent: int) -> Any:
    """``AutoencoderKL.blend_v``: ``b``'s top ``extent`` rows ramp from ``a``'s bottom ones (in place)."""
    extent = min(a.shape[2], b.shape[2], extent)
    for y in range(extent):
        b[:, :, y, :] = a[:, :, -extent + y, :] * (1 - y / extent) + b[:, :, y, :] * (y / extent)
    return b


def blend_h(a: Any, b: Any, extent: int) -> Any:
    """``AutoencoderKL.blend_h``: ``b``'s left ``extent`` columns ramp from ``a``'s right ones (in place)."""
    extent = min(a.shape[3], b.shape[3], extent)
    for x in range(extent):
        b[:, :, :, x] = a[:, :, :, -extent + x] * (1 - x / extent) + b[:, :, :, x] * (x / extent)
    return b


def _assemble(rows: list[list[Any]], extent: int, limit: int) -> Any:
    """Blend each tile with the one above and the one to the left, crop to ``limit``, concatenate."""
    import torch

    out_rows = []
    for i, row in enumerate(rows):
        parts = []
        for j, tile in enumerate(row):
            if i > 0:
                tile = blend_v(rows[i - 1][j], tile, extent)
            if j > 0:
                tile = blend_h(row[j - 1], tile, extent)
            parts.append(tile[:, :, :limit, :limit])
        out_rows.append(torch.cat(parts, dim=3))
    return torch.cat(out_rows, dim=2)


def _grid(x: Any, size: int, stride: int) -> list[list[Any]]:
    return [[x[:, :, i:i + size, j:j + size] for j in range(0, x.shape[3], stride)]
            for i in range(0, x.shape[2], stride)]


def _sizes(ctx: Context, tiling: Any, f: int) -> tuple[int, int, float]:
    if tiling.size % f:
        raise BlockError(f"node {ctx.node!r}: tile size {tiling.size} is not a multiple of the VAE's "
                         f"{f} pixels per latent cell", type="input", node=ctx.node, field="tile.size",
                         value=tiling.size)
    return tiling.size, tiling.size // f, tiling.overlap / tiling.size


def decode(ctx: Context, tiling: Any, model: Any, latent: Any, f: int) -> Any:
    """Scaled latents -> pixels in [-1, 1] (the VAE's dtype, on the CPU), decoded in tiles."""
    sample, lat, factor = _sizes(ctx, tiling, f)
    shared = {"model": model}
    if latent.shape[-1] <= lat and latent.shape[-2] <= lat:
        return ctx.tiles.map(decode_tile, [latent], shared=shared)[0]
    stride = int(lat * (1 - factor))
    extent = int(sample * factor)
    grid = _grid(latent, lat, stride)
    flat = ctx.tiles.map(decode_tile, [t.contiguous() for row in grid for t in row], shared=shared)
    cols = len(grid[0])
    rows = [flat[i * cols:(i + 1) * cols] for i in range(len(grid))]
    return _assemble(rows, extent, sample - extent)


def decode_tile(tctx: Context, latent: Any, shared: dict[str, Any]) -> Any:
    """Tile function: one latent tile -> its pixels (``post_quant_conv`` and the decoder)."""
    import torch

    device = device_of(tctx)
    vae = tctx.models.vae(shared["model"], device=device)
    with torch.no_grad():
        z = unscale(vae, latent.to(device=device, dtype=vae.dtype))
        if vae.config.use_post_quant_conv:
            z = vae.post_quant_conv(z)
        return vae.decoder(z).cpu()


def encode(ctx: Context, tiling: Any, model: Any, pixels: Any, f: int) -> Any:
    """Pixels in [-1, 1] -> the posterior's moments (mean and log-variance), encoded in tiles."""
    sample, lat, factor = _sizes(ctx, tiling, f)
    shared = {"model": model}
    if pixels.shape[-1] <= sample and pixels.shape[-2] <= sample:
        return ctx.tiles.map(encode_tile, [pixels], shared=shared)[0]
    stride = int(sample * (1 - factor))
    extent = int(lat * factor)
    grid = _grid(pixels, sample, stride)
    flat = ctx.tiles.map(encode_tile, [t.contiguous() for row in grid for t in row], shared=shared)
    cols = len(grid[0])
    rows = [flat[i * cols:(i + 1) * cols] for i in range(len(grid))]
    return _assemble(rows, extent, lat - extent)


def encode_tile(tctx: Context, pixels: Any, shared: dict[str, Any]) -> Any:
    """Tile function: one pixel tile -> its posterior moments (the encoder and ``quant_conv``)."""
    import torch

    device = device_of(tctx)
    vae = tctx.models.vae(shared["model"], device=device)
    with torch.no_grad():
        h = vae.encoder(pixels.to(device=device, dtype=vae.dtype))
        if vae.config.use_quant_conv:
            h = vae.quant_conv(h)
        return h.cpu()
