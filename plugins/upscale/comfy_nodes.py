"""ComfyUI's upscale-model nodes: ``UpscaleModelLoader`` + ``ImageUpscaleWithModel`` on
``image.upscale_model``.

ESRGAN-family files, loaded as ComfyUI loads them, in ComfyUI's 512 px tiles overlapping by
32 (memory-bounded, spread over the workers); ``onnx.image_model`` or ``onnx.run`` where a
catalog has no such block.
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Data, NodeContext, Resource, Unresolved

UPSCALE_BLOCKS = ("image.upscale_model", "onnx.image_model", "onnx.run")  # the first the catalog has
UPSCALE_TILE, UPSCALE_OVERLAP = 512, 32  # ImageUpscaleWithModel's tiles


def upscale_model_loader(nc: NodeContext) -> list[Any]:
    name, _ = nc.model_name(str(nc.widget("model_name") or ""), "model_name")
    return [Resource("UPSCALE_MODEL", name)]


def image_upscale_with_model(nc: NodeContext) -> list[Any]:
    model = nc.input("upscale_model")
    if not isinstance(model, Resource):
        raise Unresolved("input 'upscale_model' is not an upscale model", field="upscale_model")
    block = next(b for b in UPSCALE_BLOCKS if nc.has_block(b))
    tile = {"size": UPSCALE_TILE, "overlap": UPSCALE_OVERLAP} if block == "image.upscale_model" else None
    node = nc.add(block, inputs={"image": nc.data("image")},
                  params=nc.importer.params_for(block, {("model", "path", "file"): model.name}), tile=tile)
    return [Data(f"{node}.image", "IMAGE")]


MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("UpscaleModelLoader", convert=upscale_model_loader, requires=("|".join(UPSCALE_BLOCKS),)),
    ComfyMapping("ImageUpscaleWithModel", convert=image_upscale_with_model,
                 requires=("|".join(UPSCALE_BLOCKS),)),
)
