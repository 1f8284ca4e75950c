"""ComfyUI's latent utility nodes, mapped to the blocks that compute what they do.

LatentCrop/Flip/Rotate, LatentAdd/Subtract/Multiply/Interpolate and LatentCompositeMasked
(``plugins/sd/latent_transform.py``, ``latent_math.py``). A latent's noise mask rides along through
them to the next sampler (the import does that for every latent node: ``graphs/comfy/noise_mask.py``).
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Data, NodeContext, Unresolved


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


def _latent_in(nc: NodeContext, name: str) -> Data:
    value = nc.data(name)
    if value is None or value.type != "LATENT":
        raise Unresolved(f"input {name!r} is not a latent", field=name)
    return value


def _latent_block(block: str, ins: tuple[str, ...], ours: tuple[str, ...], widgets: dict[str, str],
                  fixed: dict[str, Any] | None = None) -> Any:
    """A convert giving one latent ``block`` node from latent inputs ``ins`` (and an optional ``mask``)."""

    def convert(nc: NodeContext) -> list[Any]:
        inputs: dict[str, Any] = {}
        for theirs, mine in zip(ins, ours, strict=True):
            if theirs == "mask":
                mask = nc.data("mask", optional=True)
                if mask is not None:
                    inputs[mine] = mask
            else:
                inputs[mine] = _latent_in(nc, theirs)
        params = {mine: nc.widget(theirs) for mine, theirs in widgets.items()
                  if nc.widget(theirs) is not None}
        params.update(fixed or {})
        return [_out(nc.add(block, inputs=inputs, params=params), "latent", "LATENT")]

    return convert


def _m(class_type: str, fn: Any, block: str, widgets: tuple[str, ...] = (), **defaults: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=(block,), widgets=widgets, defaults=defaults)


def _lat(class_type: str, block: str, ins: tuple[str, ...], ours: tuple[str, ...],
         widgets: tuple[str, ...] = (), **fixed: Any) -> ComfyMapping:
    """A latent node: ComfyUI's inputs ``ins`` are the block's ``ours``; widgets are same-named params."""
    return _m(class_type, _latent_block(block, ins, ours, {w: w for w in widgets}, fixed), block, widgets)


_ONE = ("samples",), ("latent",)
_PAIR = ("samples1", "samples2"), ("latent", "other")
_PASTE = ("destination", "source", "mask")

MAPPINGS: tuple[ComfyMapping, ...] = (
    _lat("LatentCrop", "sd.latent_crop", *_ONE, ("width", "height", "x", "y")),
    _lat("LatentFlip", "sd.latent_flip", *_ONE, ("flip_method",)),
    _lat("LatentRotate", "sd.latent_rotate", *_ONE, ("rotation",)),
    _lat("LatentAdd", "sd.latent_add", *_PAIR, op="add"),
    _lat("LatentSubtract", "sd.latent_add", *_PAIR, op="subtract"),
    _lat("LatentMultiply", "sd.latent_multiply", *_ONE, ("multiplier",)),
    _lat("LatentInterpolate", "sd.latent_interpolate", *_PAIR, ("ratio",)),
    _lat("LatentCompositeMasked", "sd.latent_composite_masked", _PASTE, _PASTE, ("x", "y", "resize_source")),
    _lat("LatentBatch", "sd.latent_concat", *_PAIR),
    _lat("LatentBatchSeedBehavior", "sd.latent_seed_behavior", *_ONE, ("seed_behavior",)),
)
