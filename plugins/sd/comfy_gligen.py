"""ComfyUI's GLIGEN nodes on ``sd.gligen_textbox`` (:mod:`plugins.sd.gligen`).

==================================  ===========================================================
ComfyUI                             ours
==================================  ===========================================================
GLIGENLoader                        the ``gligen`` param of ``sd.gligen_textbox`` (a file in
                                    ``gligen/``, through the model map)
GLIGENTextBoxApply                  ``sd.gligen_textbox`` on the conditioning it reads (text, box in
                                    pixels; its CLIP is the ``model`` that encodes the text)
==================================  ===========================================================
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Cond, Data, NodeContext, Resource, Unresolved
from plugins.sd.comfy_conditioning import embeddings

Importer = Any  # graphs.comfy's importer (NodeContext.importer), which mapping modules do not import

BLOCK = "sd.gligen_textbox"
BOX_WIDGETS = ("text", "width", "height", "x", "y")


def gligen_loader(nc: NodeContext) -> list[Any]:
    name, _ = nc.model_name(str(nc.widget("gligen_name") or ""), "gligen_name")
    return [Resource("GLIGEN", name)]


def gligen_textbox_apply(nc: NodeContext) -> list[Any]:
    cond = nc.conditioning("conditioning_to")
    gligen = nc.input("gligen_textbox_model")
    if not isinstance(gligen, Resource) or gligen.type != "GLIGEN":
        raise Unresolved("input 'gligen_textbox_model' is not a GLIGEN model", field="gligen_textbox_model")
    text, embs = embeddings(str(nc.widget("text", "")), nc.importer, nc.id)
    params = {"gligen": gligen.name, "model": nc.model("clip").ref(embs), "text": text,
              **{k: int(nc.widget(k, 64 if k in ("width", "height") else 0)) for k in BOX_WIDGETS[1:]}}

    def build(imp: Importer, refs: list[Data]) -> Data:
        node = nc.add(BLOCK, inputs={"cond": refs[0]}, params=params, suffix=nc.next_suffix())
        return Data(f"{node}.cond", "CONDITIONING")

    return [Cond(nc.id, "op", args=(cond,), build=build)]


MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("GLIGENLoader", convert=gligen_loader, requires=(BLOCK,), widgets=("gligen_name",),
                 output_types=("GLIGEN",)),
    ComfyMapping("GLIGENTextBoxApply", convert=gligen_textbox_apply, requires=(BLOCK,), widgets=BOX_WIDGETS,
                 defaults={"width": 64, "height": 64, "x": 0, "y": 0},
                 input_types={"conditioning_to": "CONDITIONING", "clip": "CLIP",
                              "gligen_textbox_model": "GLIGEN"},
                 output_types=("CONDITIONING",)),
)
