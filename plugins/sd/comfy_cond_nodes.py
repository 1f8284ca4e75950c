"""ComfyUI's text encode and conditioning nodes, mapped to ``sd.encode_prompt``, the ``cond.*`` blocks
(:mod:`plugins.sd.area`) and ``sd.cond_combine``.

ComfyUI's conditioning is a list of prompts with attributes; the ``cond.*`` blocks keep that
list and the sampler composes it as ComfyUI does, so each node maps one to one:

==================================  ===========================================
ComfyUI                             ours
==================================  ===========================================
CLIPTextEncode (positive+negative)  ``sd.encode_prompt`` (:mod:`.comfy_conditioning`)
CLIPTextEncodeSDXL                  ``sd.encode_prompt`` (``prompt_2``) + ``cond.sdxl_size``
CLIPTextEncodeSDXLRefiner           ``sd.encode_prompt`` + ``cond.sdxl_size`` (``aesthetic_score``)
ConditioningCombine                 ``sd.cond_combine`` (``prompts='list'``)
ConditioningSetArea                 ``cond.set_area`` (pixels)
ConditioningSetAreaPercentage       ``cond.set_area`` (``unit='fraction'``)
ConditioningSetAreaStrength         ``cond.set_strength``
ConditioningSetMask                 ``cond.set_mask``
ConditioningSetTimestepRange        ``cond.timestep_range``
ConditioningAverage                 ``cond.average``
ConditioningConcat                  ``cond.concat``
ConditioningZeroOut                 ``cond.zero_out`` (on a negative: of the negative)
==================================  ===========================================

Conditioning stays symbolic until a sampler pairs it with its negative
(:mod:`plugins.sd.comfy_conditioning`); each node here gives a :class:`~orchestrator.Cond` whose
``build`` adds its block once the inputs are built.
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Cond, Data, NodeContext, Unresolved


def clip_text_encode(nc: NodeContext) -> list[Any]:
    return [Cond(nc.id, "text", text=str(nc.widget("text", "")), clip=nc.model("clip"))]


def _op(nc: NodeContext, block: str, args: tuple[str, ...], values: dict[tuple[str, ...], Any],
        ports: tuple[str, ...] | None = None) -> list[Any]:
    """A node that applies ``block`` to the conditionings at inputs ``args``, with params ``values``."""
    conds = tuple(nc.conditioning(a) for a in args)

    def build(imp: Any, refs: list[Data]) -> Data:
        names = list(ports or ()) or imp.ports(block, "CONDITIONING", "input") or ["cond"]
        node = nc.add(block, inputs=dict(zip(names, refs, strict=False)),
                      params=imp.params_for(block, values), suffix=nc.next_suffix())
        return Data(f"{node}.{imp.port(block, 'CONDITIONING', 'output')}", "CONDITIONING")

    return [Cond(nc.id, "op", args=conds, build=build)]


def combine(nc: NodeContext) -> list[Any]:
    block = "sd.cond_combine"
    conds = (nc.conditioning("conditioning_1"), nc.conditioning("conditioning_2"))

    def build(imp: Any, refs: list[Data]) -> Data:
        port = imp.port(block, "CONDITIONING", "input")
        spec = imp.spec(block)
        multiple = spec is None or bool(getattr(spec.input(port), "multiple", False))
        inputs = {port: refs} if multiple else dict(zip(imp.ports(block, "CONDITIONING", "input"), refs,
                                                        strict=False))
        node = nc.add(block, inputs=inputs, params=imp.params_for(block, {("prompts",): "list"}),
                      suffix=nc.next_suffix())
        return Data(f"{node}.{imp.port(block, 'CONDITIONING', 'output')}", "CONDITIONING")

    return [Cond(nc.id, "op", args=conds, build=build)]


def set_area(nc: NodeContext) -> list[Any]:
    fraction = nc.node.class_type == "ConditioningSetAreaPercentage"
    default = 1.0 if fraction else 64
    values: dict[tuple[str, ...], Any] = {
        ("width",): nc.widget("width", default), ("height",): nc.widget("height", default),
        ("x",): nc.widget("x", 0), ("y",): nc.widget("y", 0),
        ("strength", "weight", "scale"): nc.widget("strength", 1.0)}
    if fraction:
        values[("unit",)] = "fraction"
        if not nc.has("cond.set_area:unit"):
            raise Unresolved("block cond.set_area takes no 'unit' param, which a percentage area needs",
                             field="width")
    return _op(nc, "cond.set_area", ("conditioning",), values)


def set_strength(nc: NodeContext) -> list[Any]:
    return _op(nc, "cond.set_strength", ("conditioning",), {("strength",): nc.widget("strength", 1.0)})


def set_mask(nc: NodeContext) -> list[Any]:
    block = "cond.set_mask"
    mask = nc.data("mask")
    assert mask is not None
    bounds = "mask" if nc.widget("set_cond_area", "default") == "mask bounds" else "default"
    values = {("strength",): nc.widget("strength", 1.0), ("bounds",): bounds}
    cond = nc.conditioning("conditioning")

    def build(imp: Any, refs: list[Data]) -> Data:
        inputs = {imp.port(block, "CONDITIONING", "input"): refs[0], imp.port(block, "MASK", "input"): mask}
        node = nc.add(block, inputs=inputs, params=imp.params_for(block, values), suffix=nc.next_suffix())
        return Data(f"{node}.{imp.port(block, 'CONDITIONING', 'output')}", "CONDITIONING")

    return [Cond(nc.id, "op", args=(cond,), build=build)]


def timestep_range(nc: NodeContext) -> list[Any]:
    return _op(nc, "cond.timestep_range", ("conditioning",),
               {("start",): float(nc.widget("start", 0.0)), ("end",): float(nc.widget("end", 1.0))})


def average(nc: NodeContext) -> list[Any]:
    return _op(nc, "cond.average", ("conditioning_to", "conditioning_from"),
               {("weight",): float(nc.widget("conditioning_to_strength", 1.0))}, ("to", "source"))


def concat(nc: NodeContext) -> list[Any]:
    return _op(nc, "cond.concat", ("conditioning_to", "conditioning_from"), {}, ("to", "source"))


SIZE_WIDGETS = ("width", "height", "crop_w", "crop_h", "target_width", "target_height")


def clip_text_encode_sdxl(nc: NodeContext) -> list[Any]:
    """text_l for SDXL's first text encoder (CLIP-L), text_g for the second (CLIP-G), and the size."""
    size = {k: int(nc.widget(k, 0 if k.startswith("crop") else 1024)) for k in SIZE_WIDGETS}
    params = {"prompt_2": str(nc.widget("text_g", "")), "size": size}
    return [Cond(nc.id, "text", text=str(nc.widget("text_l", "")), clip=nc.model("clip"), params=params)]


def clip_text_encode_sdxl_refiner(nc: NodeContext) -> list[Any]:
    """The SDXL refiner's prompt (its CLIP-G alone) and its size conditioning: width, height, no crop, and
    the aesthetic score ``ascore``."""
    size = {"width": int(nc.widget("width", 1024)), "height": int(nc.widget("height", 1024)), "crop_w": 0,
            "crop_h": 0, "aesthetic_score": float(nc.widget("ascore", 6.0))}
    text = str(nc.widget("text", ""))
    return [Cond(nc.id, "text", text=text, clip=nc.model("clip"), params={"size": size})]


def zero_out(nc: NodeContext) -> list[Any]:
    return [Cond(nc.id, "zero", args=(nc.conditioning("conditioning"),))]


def _m(class_type: str, fn: Any, block: str, widgets: tuple[str, ...] = (), **defaults: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=(block,), widgets=widgets, defaults=defaults)


MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("CLIPTextEncode", convert=clip_text_encode, requires=("sd.encode_prompt",)),
    _m("ConditioningCombine", combine, "sd.cond_combine"),
    _m("ConditioningSetArea", set_area, "cond.set_area", ("width", "height", "x", "y", "strength"),
       width=64, height=64, x=0, y=0, strength=1.0),
    _m("ConditioningSetAreaPercentage", set_area, "cond.set_area", ("width", "height", "x", "y", "strength"),
       width=1.0, height=1.0, x=0.0, y=0.0, strength=1.0),
    _m("ConditioningSetAreaStrength", set_strength, "cond.set_strength", ("strength",), strength=1.0),
    _m("ConditioningSetMask", set_mask, "cond.set_mask", ("strength", "set_cond_area"), strength=1.0,
       set_cond_area="default"),
    _m("ConditioningSetTimestepRange", timestep_range, "cond.timestep_range", ("start", "end"), start=0.0,
       end=1.0),
    _m("ConditioningAverage", average, "cond.average", ("conditioning_to_strength",),
       conditioning_to_strength=1.0),
    _m("ConditioningConcat", concat, "cond.concat"),
    ComfyMapping("CLIPTextEncodeSDXL", convert=clip_text_encode_sdxl,
                 requires=("sd.encode_prompt", "cond.sdxl_size"),
                 widgets=(*SIZE_WIDGETS, "text_g", "text_l")),
    ComfyMapping("CLIPTextEncodeSDXLRefiner", convert=clip_text_encode_sdxl_refiner,
                 requires=("sd.encode_prompt", "cond.sdxl_size:aesthetic_score"),
                 widgets=("ascore", "width", "height", "text"), input_types={"clip": "CLIP"},
                 defaults={"ascore": 6.0, "width": 1024, "height": 1024, "text": ""}),
    ComfyMapping("ConditioningZeroOut", convert=zero_out, requires=()),
)
