"""What a conditioning is, and what the sampling loop hands the extras it carries.

The shared types of :mod:`plugins.sd.conditioning` (which applies a conditioning's extras,
:class:`~plugins.sd.conditioning.StepConditioning`), of the extras themselves (ControlNets,
regional prompts, IP-Adapters, areas, GLIGEN boxes) and of the sampling loops that call them
(:mod:`plugins.sd.sampling`, :mod:`plugins.sd.ksampler`): a conditioning is a dict from
``sd.encode_prompt`` (:func:`check_conditioning`) whose extras are lists under
:data:`EXTRA_KEYS` (:func:`with_extra`); a run of a loop is a :class:`Sampling`; a prompt as
the UNet takes it is a :class:`UNetPrompt`; the UNet is a :data:`UNetFn`.

Nothing here imports another module of this plugin, so every module may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator import BlockError, Context, register_port_type

EXTRA_KEYS = ("controlnets", "regions", "image_prompts")


EMBEDDING = register_port_type(
    "EMBEDDING", description="image embeddings [B, D] (a CLIP vision encoder's projected output), "
                             "a torch tensor; for IP-Adapters and similarity")


def with_extra(cond: dict[str, Any], key: str, item: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``cond`` whose list ``key`` has ``item`` appended (the input is left alone)."""
    if key not in EXTRA_KEYS:
        raise KeyError(f"{key!r} is not a conditioning extra; extras: {', '.join(EXTRA_KEYS)}")
    out = dict(cond)
    out[key] = [*cond.get(key, []), item]
    return out


def check_conditioning(cond: Any, node: str, field: str = "inputs.cond") -> dict[str, Any]:
    """``cond`` if it is a conditioning from ``sd.encode_prompt`` (or built on one), else an error."""
    if not isinstance(cond, dict) or "prompt_embeds" not in cond:
        raise BlockError(f"node {node!r}: {field} is not a conditioning from sd.encode_prompt",
                         type="input", node=node, field=field)
    return cond


def repeat_batch(t: Any, batch: int, what: str, node: str) -> Any:
    if t is None or t.shape[0] == batch:
        return t
    if t.shape[0] == 1:
        return t.repeat(batch, *([1] * (t.ndim - 1)))
    raise BlockError(f"node {node!r}: {what} has batch {t.shape[0]}, the latent {batch}", type="input",
                     node=node, field="inputs.cond")


UNetFn = Callable[..., Any]


@dataclass
class UNetPrompt:
    """One text condition as the UNet takes it: ``embeds`` (negative first under CFG) and, for
    SDXL, ``added`` (pooled text embeddings and time ids)."""

    embeds: Any
    added: dict[str, Any] | None = None


def unet_prompt(cond: dict[str, Any], *, batch: int, do_cfg: bool, pixel_size: tuple[int, int], device: str,
                dtype: Any, node: str, negative: dict[str, Any] | None = None) -> UNetPrompt:
    """The UNet inputs of a conditioning's prompt, as the diffusers pipelines build them.

    ``negative`` takes the negative side from another conditioning (regions share the base's).
    SDXL's size conditioning is ``[h, w, 0, 0, h, w]`` of the image, or the conditioning's
    ``time_ids`` / ``negative_time_ids`` (``cond.sdxl_size``, ComfyUI's CLIPTextEncodeSDXL).
    """
    import torch

    neg_src = cond if negative is None else negative
    sdxl = cond.get("family") == "sdxl"
    embeds = repeat_batch(cond["prompt_embeds"], batch, "the prompt", node).to(device=device, dtype=dtype)
    if do_cfg:
        neg = repeat_batch(neg_src.get("negative_prompt_embeds"), batch, "the negative prompt", node)
        embeds = torch.cat([neg.to(device=device, dtype=dtype), embeds])
    added = None
    if sdxl:
        h, w = pixel_size
        # SDXL's default size conditioning; the refiner's: [h, w, 0, 0, aesthetic score 6 (negative 2.5)]
        default, neg_default = ([h, w, 0, 0, 6.0], [h, w, 0, 0, 2.5]) if cond.get("aesthetic") else \
            ([h, w, 0, 0, h, w], [h, w, 0, 0, h, w])
        time_ids = torch.tensor([cond.get("time_ids") or default], dtype=dtype).repeat(batch, 1)
        text = repeat_batch(cond["pooled_prompt_embeds"], batch, "the prompt", node).to(dtype=dtype)
        if do_cfg:
            neg_text = repeat_batch(neg_src["negative_pooled_prompt_embeds"], batch, "the negative prompt",
                                    node).to(dtype=dtype)
            text = torch.cat([neg_text, text])
            neg_ids = torch.tensor([neg_src.get("negative_time_ids") or neg_default], dtype=dtype)
            time_ids = torch.cat([neg_ids.repeat(batch, 1), time_ids])  # in the order of the embeds
        added = {"text_embeds": text.to(device), "time_ids": time_ids.to(device)}
    return UNetPrompt(embeds, added)


Window = tuple[int, int, int, int]  # top, left, height, width of a latent region


def crop(x: Any, window: Window | None) -> Any:
    """``x[..., top:top + height, left:left + width]``, or ``x`` itself without a window."""
    if window is None:
        return x
    top, left, h, w = window
    return x[..., top:top + h, left:left + w]


@dataclass
class Sampling:
    """What a run of :func:`sample` is: handed to the extras a conditioning carries."""

    ctx: Context
    device: str
    dtype: Any
    do_cfg: bool
    batch: int
    timesteps: Any
    pixel_size: tuple[int, int]
    latent_size: tuple[int, int]
    unet_config: dict[str, Any]
    scheduler: Any
    step_kwargs: dict[str, Any]
    base: UNetPrompt
    make_prompt: Callable[[dict[str, Any]], UNetPrompt]

    @property
    def total(self) -> int:
        return len(self.timesteps)

    @property
    def scale_factor(self) -> int:
        """Pixels per latent cell (the VAE's scale factor)."""
        return max(1, self.pixel_size[0] // self.latent_size[0])

    @property
    def latent_multiple(self) -> int:
        """What the sides of a latent window must be multiples of for the UNet (its downsamplings)."""
        return 2 ** max(0, len(self.unet_config.get("block_out_channels", [0])) - 1)


def torch_unet(unet: Any) -> UNetFn:
    """The diffusers UNet as :func:`sample` calls it."""

    def call(sample_in: Any, t: Any, **kwargs: Any) -> Any:
        added = kwargs.get("added_cond_kwargs")
        if added and "class_labels" in added:  # an unCLIP UNet's image embedding (plugins.sd.unclip)
            added = dict(added)
            kwargs["class_labels"] = added.pop("class_labels")
            kwargs["added_cond_kwargs"] = added or None
        return unet(sample_in, t, cross_attention_kwargs=None, return_dict=False, **kwargs)[0]

    call.module = unet  # type: ignore[attr-defined]  # what extras that change the UNet work on
    return call
