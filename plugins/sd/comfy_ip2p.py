"""ComfyUI's InstructPix2Pix and DualCFGGuider nodes on ``sd.ip2p_conditioning`` and ``sd.dual_guider``.

==================================  ===========================================================
ComfyUI                             ours
==================================  ===========================================================
InstructPixToPixConditioning        ``sd.ip2p_conditioning`` on the positive/negative pair (the
                                    image's latent on both, as ComfyUI sets it on both); its
                                    LATENT output: the same block's zeros of the image's size
DualCFGGuider                       ``sd.dual_guider`` (cond1, cond2, negative; ``cfg_conds``,
                                    ``cfg_cond2_negative``, ``style``) for SamplerCustomAdvanced
==================================  ===========================================================
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from orchestrator import ComfyMapping, Cond, Data, Lazy, NodeContext, PairOp
from plugins.sd import comfy_conditioning as conditioning

Importer = Any  # graphs.comfy's importer (NodeContext.importer); plugins import only orchestrator

IP2P, DUAL = "sd.ip2p_conditioning", "sd.dual_guider"


def ip2p_conditioning(nc: NodeContext) -> list[Any]:
    pixels, vae = nc.data("pixels"), nc.model("vae")
    assert pixels is not None
    params = {"model": vae.ref(loras=False)}

    def build(imp: Importer, cond: Data) -> Data:
        node = nc.add(IP2P, inputs={"cond": cond, "image": pixels}, params=params, suffix=nc.next_suffix())
        return Data(f"{node}.cond", "CONDITIONING")

    def latent() -> Data:
        node = nc.add(IP2P, inputs={"image": pixels}, params=params, suffix="_latent")
        size = None if pixels.size is None else (pixels.size[0] // 8 * 8, pixels.size[1] // 8 * 8)
        return Data(f"{node}.latent", "LATENT", size=size)

    pair = PairOp(nc.id, nc.conditioning("positive"), nc.conditioning("negative"), build)
    return [Cond(nc.id, "pair", pair=pair, slot=0), Cond(nc.id, "pair", pair=pair, slot=1), Lazy(latent)]


_PARTNERS: WeakKeyDictionary[Importer, dict[int, Any]] = WeakKeyDictionary()


def _partner(nc: NodeContext, value: Any) -> Any:
    """What to pair ``value`` with so that its prompt is built alone (only its prompt side is read):
    the other side of its own pair (one object per side, so the pair is built once), else its text."""
    if not isinstance(value, Cond):
        return value
    memo = _PARTNERS.setdefault(nc.importer, {})
    if id(value) not in memo:
        if value.kind == "pair":
            other = Cond(value.node, "pair", pair=value.pair, slot=1 - value.slot)
            memo[id(value)], memo[id(other)] = other, value  # the two sides are each other's partners
        else:
            leaf = conditioning._first_text(value)
            memo[id(value)] = leaf if leaf is not None else value
    return memo[id(value)]


def dual_cfg_guider(nc: NodeContext) -> list[Any]:
    model = nc.model("model")
    refs = {}
    for name in ("cond1", "cond2", "negative"):
        value = nc.conditioning(name)
        refs[name] = conditioning.build(nc.importer, nc, value, _partner(nc, value))
    style = str(nc.widget("style", "regular"))
    if style not in ("regular", "nested"):
        nc.warn(f"style {style!r} is not regular or nested; using 'regular'", field="style", value=style)
        style = "regular"
    params = {"model": model.ref(), **model.sampling_params(), "style": style,
              "cfg_conds": float(nc.widget("cfg_conds", 8.0)),
              "cfg_cond2_negative": float(nc.widget("cfg_cond2_negative", 8.0))}
    node = nc.add(DUAL, inputs=refs, params=params)
    return [Data(f"{node}.guider", "GUIDER")]


MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("InstructPixToPixConditioning", convert=ip2p_conditioning, requires=(IP2P,),
                 input_types={"positive": "CONDITIONING", "negative": "CONDITIONING", "vae": "VAE",
                              "pixels": "IMAGE"},
                 output_types=("CONDITIONING", "CONDITIONING", "LATENT")),
    ComfyMapping("DualCFGGuider", convert=dual_cfg_guider, requires=(DUAL,),
                 widgets=("cfg_conds", "cfg_cond2_negative", "style"),
                 defaults={"cfg_conds": 8.0, "cfg_cond2_negative": 8.0, "style": "regular"},
                 input_types={"model": "MODEL", "cond1": "CONDITIONING", "cond2": "CONDITIONING",
                              "negative": "CONDITIONING"}, output_types=("GUIDER",)),
)
