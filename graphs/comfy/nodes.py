"""What we know of ComfyUI's core node classes: inputs, widgets (in order), outputs.

ComfyUI declares each class's ``INPUT_TYPES``: link inputs (``MODEL``, ``IMAGE``, ...) and
widgets (numbers, strings, combos). The UI format stores widget values as a list in
declaration order (``widgets_values``), so converting it needs the order; the API format
names them. Seed widgets are followed, in the UI list only, by the value of the extra
``control_after_generate`` widget (``"fixed"``, ``"randomize"``, ... or, in old files, a
boolean).

>>> CORE_NODES["KSampler"].widget_names()
('seed', 'steps', 'cfg', 'sampler_name', 'scheduler', 'denoise')
>>> CORE_NODES["CheckpointLoaderSimple"].outputs
('MODEL', 'CLIP', 'VAE')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeInfo:
    """One ComfyUI class: link inputs (name -> type), widgets (name, default), outputs."""

    inputs: Mapping[str, str] = field(default_factory=dict)
    widgets: tuple[tuple[str, Any], ...] = ()
    outputs: tuple[str, ...] = ()
    optional: frozenset[str] = frozenset()  # link inputs that may stay unconnected
    output_node: bool = False  # ComfyUI runs it as a workflow output (SaveImage, ...)

    def widget_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.widgets)

    def default(self, widget: str) -> Any:
        return dict(self.widgets).get(widget)


# widgets followed by ``control_after_generate`` in the UI format
SEED_WIDGETS = frozenset({"seed", "noise_seed"})
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})

# UI-only nodes: never executed, never in the API format
VIRTUAL_NODES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})

_SAMPLER_WIDGETS = (("steps", 20), ("cfg", 8.0), ("sampler_name", "euler"), ("scheduler", "normal"))
_CKPT_OUT = ("MODEL", "CLIP", "VAE")

CORE_NODES: dict[str, NodeInfo] = {
    # loaders: model references, no data
    "CheckpointLoaderSimple": NodeInfo(widgets=(("ckpt_name", ""),), outputs=_CKPT_OUT),
    "CheckpointLoader": NodeInfo(widgets=(("config_name", ""), ("ckpt_name", "")), outputs=_CKPT_OUT),
    "VAELoader": NodeInfo(widgets=(("vae_name", ""),), outputs=("VAE",)),
    "CLIPLoader": NodeInfo(widgets=(("clip_name", ""), ("type", "stable_diffusion"),
                                    ("device", "default")), outputs=("CLIP",)),
    "LoraLoader": NodeInfo(inputs={"model": "MODEL", "clip": "CLIP"},
                           widgets=(("lora_name", ""), ("strength_model", 1.0), ("strength_clip", 1.0)),
                           outputs=("MODEL", "CLIP")),
    "LoraLoaderModelOnly": NodeInfo(inputs={"model": "MODEL"},
                                    widgets=(("lora_name", ""), ("strength_model", 1.0)), outputs=("MODEL",)),
    "CLIPSetLastLayer": NodeInfo(inputs={"clip": "CLIP"}, widgets=(("stop_at_clip_layer", -1),),
                                 outputs=("CLIP",)),
    "ControlNetLoader": NodeInfo(widgets=(("control_net_name", ""),), outputs=("CONTROL_NET",)),
    "UpscaleModelLoader": NodeInfo(widgets=(("model_name", ""),), outputs=("UPSCALE_MODEL",)),
    # conditioning
    "CLIPTextEncode": NodeInfo(inputs={"clip": "CLIP"}, widgets=(("text", ""),), outputs=("CONDITIONING",)),
    "ConditioningCombine": NodeInfo(inputs={"conditioning_1": "CONDITIONING",
                                            "conditioning_2": "CONDITIONING"}, outputs=("CONDITIONING",)),
    "ConditioningSetArea": NodeInfo(inputs={"conditioning": "CONDITIONING"},
                                    widgets=(("width", 64), ("height", 64), ("x", 0), ("y", 0),
                                             ("strength", 1.0)), outputs=("CONDITIONING",)),
    "ConditioningZeroOut": NodeInfo(inputs={"conditioning": "CONDITIONING"}, outputs=("CONDITIONING",)),
    "ControlNetApply": NodeInfo(inputs={"conditioning": "CONDITIONING", "control_net": "CONTROL_NET",
                                        "image": "IMAGE"},
                                widgets=(("strength", 1.0),), outputs=("CONDITIONING",)),
    "ControlNetApplyAdvanced": NodeInfo(
        inputs={"positive": "CONDITIONING", "negative": "CONDITIONING", "control_net": "CONTROL_NET",
                "image": "IMAGE", "vae": "VAE"},
        widgets=(("strength", 1.0), ("start_percent", 0.0), ("end_percent", 1.0)),
        outputs=("CONDITIONING", "CONDITIONING"), optional=frozenset({"vae"})),
    # sampling
    "KSampler": NodeInfo(inputs={"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                                 "latent_image": "LATENT"},
                         widgets=(("seed", 0), *_SAMPLER_WIDGETS, ("denoise", 1.0)), outputs=("LATENT",)),
    "KSamplerAdvanced": NodeInfo(
        inputs={"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                "latent_image": "LATENT"},
        widgets=(("add_noise", "enable"), ("noise_seed", 0), *_SAMPLER_WIDGETS, ("start_at_step", 0),
                 ("end_at_step", 10000), ("return_with_leftover_noise", "disable")),
        outputs=("LATENT",)),
    # custom sampling (comfy_extras/nodes_custom_sampler.py, nodes_align_your_steps.py)
    "ModelSamplingDiscrete": NodeInfo(inputs={"model": "MODEL"},
                                      widgets=(("sampling", "eps"), ("zsnr", False)), outputs=("MODEL",)),
    "KSamplerSelect": NodeInfo(widgets=(("sampler_name", "euler"),), outputs=("SAMPLER",)),
    "SamplerEulerAncestral": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0)), outputs=("SAMPLER",)),
    "SamplerDPMPP_2S_Ancestral": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0)), outputs=("SAMPLER",)),
    "SamplerLMS": NodeInfo(widgets=(("order", 4),), outputs=("SAMPLER",)),
    "SamplerDPMPP_SDE": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0), ("r", 0.5),
                                          ("noise_device", "gpu")), outputs=("SAMPLER",)),
    "SamplerDPMPP_2M_SDE": NodeInfo(widgets=(("solver_type", "midpoint"), ("eta", 1.0), ("s_noise", 1.0),
                                             ("noise_device", "gpu")), outputs=("SAMPLER",)),
    "SamplerDPMPP_3M_SDE": NodeInfo(widgets=(("eta", 1.0), ("s_noise", 1.0), ("noise_device", "gpu")),
                                    outputs=("SAMPLER",)),
    "BasicScheduler": NodeInfo(inputs={"model": "MODEL"},
                               widgets=(("scheduler", "normal"), ("steps", 20), ("denoise", 1.0)),
                               outputs=("SIGMAS",)),
    "KarrasScheduler": NodeInfo(widgets=(("steps", 20), ("sigma_max", 14.614642), ("sigma_min", 0.0291675),
                                         ("rho", 7.0)), outputs=("SIGMAS",)),
    "ExponentialScheduler": NodeInfo(widgets=(("steps", 20), ("sigma_max", 14.614642),
                                              ("sigma_min", 0.0291675)), outputs=("SIGMAS",)),
    "PolyexponentialScheduler": NodeInfo(widgets=(("steps", 20), ("sigma_max", 14.614642),
                                                  ("sigma_min", 0.0291675), ("rho", 1.0)),
                                         outputs=("SIGMAS",)),
    "SDTurboScheduler": NodeInfo(inputs={"model": "MODEL"}, widgets=(("steps", 1), ("denoise", 1.0)),
                                 outputs=("SIGMAS",)),
    "BetaSamplingScheduler": NodeInfo(inputs={"model": "MODEL"},
                                      widgets=(("steps", 20), ("alpha", 0.6), ("beta", 0.6)),
                                      outputs=("SIGMAS",)),
    "AlignYourStepsScheduler": NodeInfo(widgets=(("model_type", "SD1"), ("steps", 10), ("denoise", 1.0)),
                                        outputs=("SIGMAS",)),
    "FlipSigmas": NodeInfo(inputs={"sigmas": "SIGMAS"}, outputs=("SIGMAS",)),
    "SplitSigmas": NodeInfo(inputs={"sigmas": "SIGMAS"}, widgets=(("step", 0),),
                            outputs=("SIGMAS", "SIGMAS")),
    "SplitSigmasDenoise": NodeInfo(inputs={"sigmas": "SIGMAS"}, widgets=(("denoise", 1.0),),
                                   outputs=("SIGMAS", "SIGMAS")),
    "RandomNoise": NodeInfo(widgets=(("noise_seed", 0),), outputs=("NOISE",)),
    "DisableNoise": NodeInfo(outputs=("NOISE",)),
    "CFGGuider": NodeInfo(inputs={"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING"},
                          widgets=(("cfg", 8.0),), outputs=("GUIDER",)),
    "BasicGuider": NodeInfo(inputs={"model": "MODEL", "conditioning": "CONDITIONING"}, outputs=("GUIDER",)),
    "SamplerCustom": NodeInfo(
        inputs={"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                "sampler": "SAMPLER", "sigmas": "SIGMAS", "latent_image": "LATENT"},
        widgets=(("add_noise", True), ("noise_seed", 0), ("cfg", 8.0)), outputs=("LATENT", "LATENT")),
    "SamplerCustomAdvanced": NodeInfo(
        inputs={"noise": "NOISE", "guider": "GUIDER", "sampler": "SAMPLER", "sigmas": "SIGMAS",
                "latent_image": "LATENT"}, outputs=("LATENT", "LATENT")),
    # latents
    "EmptyLatentImage": NodeInfo(widgets=(("width", 512), ("height", 512), ("batch_size", 1)),
                                 outputs=("LATENT",)),
    "VAEEncode": NodeInfo(inputs={"pixels": "IMAGE", "vae": "VAE"}, outputs=("LATENT",)),
    "VAEDecode": NodeInfo(inputs={"samples": "LATENT", "vae": "VAE"}, outputs=("IMAGE",)),
    "VAEEncodeTiled": NodeInfo(inputs={"pixels": "IMAGE", "vae": "VAE"},
                               widgets=(("tile_size", 512), ("overlap", 64), ("temporal_size", 64),
                                        ("temporal_overlap", 8)), outputs=("LATENT",)),
    "VAEDecodeTiled": NodeInfo(inputs={"samples": "LATENT", "vae": "VAE"},
                               widgets=(("tile_size", 512), ("overlap", 64), ("temporal_size", 64),
                                        ("temporal_overlap", 8)), outputs=("IMAGE",)),
    "VAEEncodeForInpaint": NodeInfo(inputs={"pixels": "IMAGE", "vae": "VAE", "mask": "MASK"},
                                    widgets=(("grow_mask_by", 6),), outputs=("LATENT",)),
    "LatentFromBatch": NodeInfo(inputs={"samples": "LATENT"}, widgets=(("batch_index", 0), ("length", 1)),
                                outputs=("LATENT",)),
    "RepeatLatentBatch": NodeInfo(inputs={"samples": "LATENT"}, widgets=(("amount", 1),),
                                  outputs=("LATENT",)),
    "SetLatentNoiseMask": NodeInfo(inputs={"samples": "LATENT", "mask": "MASK"}, outputs=("LATENT",)),
    "LatentUpscale": NodeInfo(inputs={"samples": "LATENT"},
                              widgets=(("upscale_method", "nearest-exact"), ("width", 512), ("height", 512),
                                       ("crop", "disabled")), outputs=("LATENT",)),
    "LatentUpscaleBy": NodeInfo(inputs={"samples": "LATENT"},
                                widgets=(("upscale_method", "nearest-exact"), ("scale_by", 1.5)),
                                outputs=("LATENT",)),
    "LatentComposite": NodeInfo(inputs={"samples_to": "LATENT", "samples_from": "LATENT"},
                                widgets=(("x", 0), ("y", 0), ("feather", 0)), outputs=("LATENT",)),
    # images and masks
    "LoadImage": NodeInfo(widgets=(("image", ""), ("upload", "image")), outputs=("IMAGE", "MASK")),
    "LoadImageMask": NodeInfo(widgets=(("image", ""), ("channel", "alpha"), ("upload", "image")),
                              outputs=("MASK",)),
    "SaveImage": NodeInfo(inputs={"images": "IMAGE"}, widgets=(("filename_prefix", "ComfyUI"),),
                          output_node=True),
    "PreviewImage": NodeInfo(inputs={"images": "IMAGE"}, output_node=True),
    "ImageScale": NodeInfo(inputs={"image": "IMAGE"},
                           widgets=(("upscale_method", "nearest-exact"), ("width", 512), ("height", 512),
                                    ("crop", "disabled")), outputs=("IMAGE",)),
    "ImageScaleBy": NodeInfo(inputs={"image": "IMAGE"},
                             widgets=(("upscale_method", "nearest-exact"), ("scale_by", 1.0)),
                             outputs=("IMAGE",)),
    "ImageScaleToTotalPixels": NodeInfo(inputs={"image": "IMAGE"},
                                        widgets=(("upscale_method", "nearest-exact"), ("megapixels", 1.0),
                                                 ("resolution_steps", 1)), outputs=("IMAGE",)),
    "ImagePadForOutpaint": NodeInfo(inputs={"image": "IMAGE"},
                                    widgets=(("left", 0), ("top", 0), ("right", 0), ("bottom", 0),
                                             ("feathering", 40)), outputs=("IMAGE", "MASK")),
    "ImageCrop": NodeInfo(inputs={"image": "IMAGE"},
                          widgets=(("width", 512), ("height", 512), ("x", 0), ("y", 0)), outputs=("IMAGE",)),
    "ImageBlend": NodeInfo(inputs={"image1": "IMAGE", "image2": "IMAGE"},
                           widgets=(("blend_factor", 0.5), ("blend_mode", "normal")), outputs=("IMAGE",)),
    "Canny": NodeInfo(inputs={"image": "IMAGE"}, widgets=(("low_threshold", 0.4), ("high_threshold", 0.8)),
                      outputs=("IMAGE",)),
    "ImageUpscaleWithModel": NodeInfo(inputs={"upscale_model": "UPSCALE_MODEL", "image": "IMAGE"},
                                      outputs=("IMAGE",)),
    "GrowMask": NodeInfo(inputs={"mask": "MASK"}, widgets=(("expand", 0), ("tapered_corners", True)),
                         outputs=("MASK",)),
    "InvertMask": NodeInfo(inputs={"mask": "MASK"}, outputs=("MASK",)),
    "ImageToMask": NodeInfo(inputs={"image": "IMAGE"}, widgets=(("channel", "red"),), outputs=("MASK",)),
    "MaskToImage": NodeInfo(inputs={"mask": "MASK"}, outputs=("IMAGE",)),
    # constants (comfy_extras/nodes_primitive.py)
    "PrimitiveInt": NodeInfo(widgets=(("value", 0),), outputs=("INT",)),
    "PrimitiveFloat": NodeInfo(widgets=(("value", 0.0),), outputs=("FLOAT",)),
    "PrimitiveString": NodeInfo(widgets=(("value", ""),), outputs=("STRING",)),
    "PrimitiveStringMultiline": NodeInfo(widgets=(("value", ""),), outputs=("STRING",)),
    "PrimitiveBoolean": NodeInfo(widgets=(("value", False),), outputs=("BOOLEAN",)),
}
