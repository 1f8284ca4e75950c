"""Single-file checkpoints (``.safetensors`` in the original Stable Diffusion layout).

A checkpoint is converted once into a diffusers folder in the cache, then loaded like any
other diffusers model. The component configs come from ``config`` (a diffusers folder or a
repo in the local Hugging Face cache) or, without one, from the default repo diffusers
associates with the checkpoint's family, which must then be in the local cache: nothing is
downloaded.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.models.errors import ModelError
from orchestrator.models.safety import require_safetensors

PIPELINES = {"sd": "StableDiffusionPipeline", "sd1": "StableDiffusionPipeline",
             "sd2": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
             "inpaint": "StableDiffusionInpaintPipeline", "sdxl-inpaint": "StableDiffusionXLInpaintPipeline"}


def checkpoint_family(path: str | Path) -> str:
    """``sd1``, ``sd2``, ``sdxl``, ``inpaint`` or ``sdxl-inpaint`` from a checkpoint's tensor names."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as st:
        keys = set(st.keys())
        conv_in = "model.diffusion_model.input_blocks.0.0.weight"
        inpaint = conv_in in keys and st.get_slice(conv_in).get_shape()[1] == 9
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl-inpaint" if inpaint else "sdxl"
    if inpaint:
        return "inpaint"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "sd1"
    raise ModelError(f"{str(path)!r} is not a Stable Diffusion checkpoint (no model.diffusion_model.* "
                     f"tensors)", reason="format", path=str(path))


def convert_checkpoint(path: str | Path, dest: str | Path, *, name: str, config: str | Path | None = None,
                       family: str = "auto") -> Path:
    """Convert the checkpoint at ``path`` into the diffusers folder ``dest``."""
    import diffusers

    require_safetensors(path, f"model {name!r}:")
    fam = checkpoint_family(path) if family == "auto" else family
    if family != "auto":
        detected = checkpoint_family(path)
        if detected.startswith("inpaint") or detected.endswith("inpaint"):
            fam = "inpaint" if family != "sdxl" else "sdxl-inpaint"
    cls = getattr(diffusers, PIPELINES[fam])
    kwargs: dict[str, object] = {"local_files_only": True}
    if config is not None:
        kwargs["config"] = str(config)
    if "XL" not in cls.__name__:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    from orchestrator.models.quiet import quiet_progress

    try:
        with quiet_progress():
            pipe = cls.from_single_file(str(path), **kwargs)
    except Exception as exc:  # diffusers and the hub raise many kinds; all mean "cannot convert"
        hint = ("" if config is not None else
                " Set `config` on the model entry to a diffusers folder (or hf:org/repo in the local "
                "cache) of the same architecture.")
        raise ModelError(f"model {name!r}: cannot convert single-file checkpoint {str(path)!r} "
                         f"({fam}): {exc}.{hint}", reason="load", model=name, path=str(path)) from exc
    with quiet_progress():
        pipe.save_pretrained(str(dest), safe_serialization=True)
    return Path(dest)
