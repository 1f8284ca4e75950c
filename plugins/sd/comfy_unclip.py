"""ComfyUI's CLIP vision and unCLIP nodes, mapped to ``sd.clip_vision_encode`` and ``sd.unclip_conditioning``.

==================================  ===========================================================
ComfyUI                             ours
==================================  ===========================================================
CLIPVisionLoader                    the ``model`` param of ``sd.clip_vision_encode`` (a file in
                                    ``clip_vision/``, through the model map)
CLIPVisionEncode                    ``sd.clip_vision_encode`` (``crop`` center / none)
unCLIPConditioning                  ``sd.unclip_conditioning`` on the conditioning it reads (SD 2.1
                                    unCLIP models; SDXL revision: the image in the pooled slot)
unCLIPCheckpointLoader              a checkpoint (MODEL, CLIP, VAE) whose ``image_encoder`` part is
                                    the CLIP_VISION output (a diffusers unCLIP folder, as
                                    ``StableUnCLIPImg2ImgPipeline`` has it)
==================================  ===========================================================
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Cond, Data, Model, NodeContext, Resource, Unresolved

ENCODE, UNCLIP = "sd.clip_vision_encode", "sd.unclip_conditioning"


def clip_vision_loader(nc: NodeContext) -> list[Any]:
    name, _ = nc.model_name(str(nc.widget("clip_name") or ""), "clip_name")
    return [Resource("CLIP_VISION", name)]


def unclip_checkpoint(nc: NodeContext) -> list[Any]:
    comfy = str(nc.widget("ckpt_name") or "")
    name, mapped = nc.model_name(comfy, "ckpt_name")
    return [*(Model(t, name, mapped=mapped, comfy_name=comfy) for t in ("MODEL", "CLIP", "VAE")),
            Resource("CLIP_VISION", name)]


def clip_vision_encode(nc: NodeContext) -> list[Any]:
    encoder = nc.input("clip_vision")
    if not isinstance(encoder, Resource) or encoder.type != "CLIP_VISION":
        raise Unresolved("input 'clip_vision' is not a CLIP vision model", field="clip_vision")
    crop = str(nc.widget("crop", "center"))
    if crop not in ("center", "none"):
        raise Unresolved(f"crop {crop!r} is not 'center' or 'none'", field="crop")
    node = nc.add(ENCODE, inputs={"image": nc.data("image")}, params={"model": encoder.name, "crop": crop})
    return [Data(f"{node}.clip_vision_output", "CLIP_VISION_OUTPUT")]


def unclip_conditioning(nc: NodeContext) -> list[Any]:
    cond = nc.conditioning("conditioning")
    vision = nc.data("clip_vision_output")
    params = {"strength": float(nc.widget("strength", 1.0)),
              "noise_augmentation": float(nc.widget("noise_augmentation", 0.0))}

    def build(imp: Any, refs: list[Data]) -> Data:
        node = nc.add(UNCLIP, inputs={"cond": refs[0], "clip_vision_output": vision}, params=params,
                      suffix=nc.next_suffix())
        return Data(f"{node}.cond", "CONDITIONING")

    return [Cond(nc.id, "op", args=(cond,), build=build)]


MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("CLIPVisionLoader", convert=clip_vision_loader, requires=(ENCODE,)),
    ComfyMapping("unCLIPCheckpointLoader", convert=unclip_checkpoint, requires=(ENCODE,)),
    ComfyMapping("CLIPVisionEncode", convert=clip_vision_encode, requires=(ENCODE,)),
    ComfyMapping("unCLIPConditioning", convert=unclip_conditioning, requires=(UNCLIP,)),
)
