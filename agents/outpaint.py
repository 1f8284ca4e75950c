"""Outpainting with the inpaint template: extend a given picture to the sides, up or down.

"extend this photo to 16:9", "uncrop it", "expand the canvas upward, more sky", "erweitere das
Bild nach links", "dorysuj boki": the library has no outpainting template, so the planner makes
the ``inpaint`` template do it, as a ComfyUI user wires ImagePadForOutpaint before an inpaint
sampler. The given image is brought to a working size at the model's native area
(``image.resize``, its own aspect when its size is known, else a native square cut from its
middle), padded by ``sd.outpaint_pad`` (ComfyUI's ImagePadForOutpaint: a grey border and a mask
that is 1 there and fades into the picture over ``feathering`` pixels) on the sides the text
names by the amounts it implies (to the aspect it asks, else ``DEFAULT_SHARE`` of the picture per
named side, every side when it names none), and the padded area is inpainted with the pad's mask:
``image`` is the only input needed. A mask the user gives is used too: padded with the picture
(white on the new border), so the border and the masked part are both repainted.

>>> sides_of("extend this photo to the left and upward")
['left', 'top']
>>> outpaint_pads(512, 512, ["left", "right"], None)
{'left': 128, 'top': 0, 'right': 128, 'bottom': 0}
>>> outpaint_pads(512, 384, [], 16 / 9)
{'left': 80, 'top': 0, 'right': 88, 'bottom': 0}
"""

from __future__ import annotations

import math
import re
from typing import Any

from agents.sizes import round8
from graphs import Graph, Node

DEFAULT_SHARE = 0.25  # of the picture's side, per side named, when no aspect is asked
FEATHERING = 40  # ComfyUI's default
MAX_SHARE = 2.0  # at most this much of the picture is added per side (a 1000:1 ask is held)

# an outpainting asked for: the verbs of extending the picture, in English and other languages
OUTPAINT = re.compile(
    r"\bout-?paint\w*|\bun-?crop\w*|"
    r"\b(?:extend|expand|widen|continue)(?:s|ed|ing)? (?:out )?"
    r"(?:this|the|my|our|it|that)?\s?(?:[a-z]+ )?"
    r"(?:photo|image|picture|pic|shot|painting|canvas|frame|scene|background|borders?|edges?|view|it|sides?)?\s?(?:to|into|towards?|on|at|by|up|down|upwards?|downwards?|left|right|sideways|horizontally|"
    r"vertically|beyond|outwards?|past)\b|"
    r"\b(?:extend|expand|widen|continue)(?:s|ed|ing)?\b[^.;]{0,40}?\b(?:to|towards?|on|at|along) "
    r"(?:the |both |each |all |its )?(?:left|right|sides?|top|bottom|edges?)\b|"
    r"\bexpand (?:the )?canvas\b|\bzoom(?:ed|ing)? out\b|\bmore (?:sky|ground|space|room|background|floor) "
    r"(?:above|below|around|on)\b|\badd (?:more )?(?:sky|ground|space|room) (?:above|below|around|on|to)\b|"
    r"\bmake (?:it|this|the (?:[a-z]+ )?(?:photo|image|picture|pic|shot)) "
    r"(?:a (?:little |tiny )?bit |a little |a tad |slightly |much |way )?(?:wider|taller)\b|"
    # "extend it so the whole bench fits", "adding more sky and ice on both sides"
    r"\bextend (?:it|this|them)\s+(?:so|until|till|enough)\b|"
    r"\bstretch(?:ed|ing)? (?:it|this|my|the|our)\b[^.;!?]{0,30}?\b(?:upwards?|downwards?|sideways|"
    r"to the (?:left|right|sides?|top|bottom))\b|"
    r"\b(?:just )?add(?:ing)? (?:more|some|extra) (?:sky|ground|floor|background|space|room)\b|"
    r"\badd(?:ing|s)? (?:more |some |extra )?(?:[a-z]+ ){1,3}?(?:on|at|to) (?:both|each|the) sides?\b|"
    # "make the uploaded label image taller", "need this photo taller", "extend the sky above the dogs",
    # "add more dark background on top and bottom"
    r"\b(?:the|this|my|our) (?:[a-z]+ ){0,2}(?:photo|image|picture|pic|shot) "
    r"(?:of (?:the |my |our )?[a-z'-]+ )?(?:a bit |much )?(?:wider|taller)\b|"
    r"\bextend (?:the |more )?(?:sky|background|sea|ground|floor|sand|grass|wall|water|scene|space)\b|"
    r"\bextend (?:the |da |both |each )?(?:top|bottom|sides?|left|right|edges?)\b|"
    # "agrandir la photo ci-jointe sur les côtés", "enlarge it on both sides": enlarged by adding to the sides
    r"\b(?:enlarge|agrandi[rs]?|agrandisse[zr]?|ampl[ií]a|ampliar|vergr[öo](?:ß|ss)er\w*)\b[^.;!?]{0,40}?"
    r"\b(?:on|to|sur|vers|hacia|por|nach|an) (?:the |both |les |la |le |los |ambos |beiden )?"
    r"(?:sides|c[ôo]t[ée]s|lados|seiten)\b|"
    r"\badd (?:more |some )?(?:[a-z]+ )?(?:sky|background|sea|ground|floor|sand|space|room|scenery|guests|"
    r"people|crowd) (?:on|at|to|above|below|around) (?:the )?(?:top|bottom|sides?|left|right|both sides|"
    r"each side|edges?|above|below)\b|"
    r"\berweiter\w*|\bdorysuj\w*|\brozszerz\w*|\bagrandi[rs] (?:le|la) (?:cadre|toile)\b|\b[ée]tend\w*|"
    r"\bprolong\w*|\bestend\w*|\bampl[ií]a(?:r)? (?:el|o|a) (?:lienzo|encuadre|tela)\b|\bextend(?:er|e|a)\b|"
    r"\bexpand(?:ir|e|a)\b|\buitbreid\w*|\bbreid\w* (?:\w+ )?uit\b|\brozšiř\w*|"
    r"扩展画面|扩图|外扩|向外扩展|扩展(?:这张|图片|图像|照片)|拡張して|外側を描|アウトペイント|확장|늘려",
    re.IGNORECASE)
_SIDES = {
    "left": r"\bleft\b|\blinks\b|\bgauche\b|\bsinistra\b|\bizquierda\b|\besquerda\b|\blewo\b|左|왼쪽",
    "right": r"\bright\b|\brechts\b|\bdroite\b|\bdestra\b|\bderecha\b|\bdireita\b|\bprawo\b|右|오른쪽",
    "top": r"\bup(?:wards?)?\b|\btop\b|\babove\b|\bsky\b|\bceiling\b|\boben\b|\bnach oben\b|"
           r"\bhaut\b|\bverso l'alto\b|\bhacia arriba\b|\bpara cima\b|\bomhoog\b|\bw g[óo]r[ęe]\b|上|위",
    "bottom": r"\bdown(?:wards?)?\b|\bbottom\b|\bbelow\b|\bground\b|\bfloor\b|\bfeet\b|\bunten\b|"
              r"\bnach unten\b|\bvers le bas\b|\bverso il basso\b|\bhacia abajo\b|\bpara baixo\b|"
              r"\bomlaag\b|\bw d[óo][łl]\b|下|아래",
}
_BOTH = {("left", "right"): r"\bsides\b|\bsideways\b|\bhorizontal(?:ly)?\b|\bwider\b|\bboth sides\b|"
                            r"\bseiten\b|"
                            r"\bc[ôo]t[ée]s\b|\blati\b|\blados\b|\bboki\b|\bzijkanten\b|两边|两侧|左右|양옆",
         ("top", "bottom"): r"\bvertical(?:ly)?\b|\btaller\b|\babove and below\b"}


def asks_outpaint(prompt: str) -> bool:
    """Whether ``prompt`` asks to extend a picture beyond its borders."""
    return bool(OUTPAINT.search(prompt))


def sides_of(prompt: str) -> list[str]:
    """The sides ``prompt`` names to extend (left, top, right, bottom order); none: every side."""
    found = {side for side, rx in _SIDES.items() if re.search(rx, prompt, re.IGNORECASE)}
    for pair, rx in _BOTH.items():
        if re.search(rx, prompt, re.IGNORECASE):
            found.update(pair)
    return [s for s in ("left", "top", "right", "bottom") if s in found]


def working_size(native: int, size: tuple[int, int] | None) -> tuple[int, int]:
    """The size the picture is brought to: its aspect at the model's native area (multiples of
    8), or the native square when its size is not known."""
    if not size or size[0] <= 0 or size[1] <= 0:
        return native, native
    aspect = size[0] / size[1]
    return max(8, round8(native * math.sqrt(aspect))), max(8, round8(native / math.sqrt(aspect)))


def outpaint_pads(width: int, height: int, sides: list[str], aspect: float | None) -> dict[str, int]:
    """Pixels to add on each side of a ``width`` x ``height`` picture: to reach ``aspect`` (on
    the named sides of the axis that grows, split evenly, both when none is named), else
    ``DEFAULT_SHARE`` of the picture on each named side (every side when none is named)."""
    pads = {"left": 0, "top": 0, "right": 0, "bottom": 0}
    if aspect and aspect > 0 and abs(math.log(aspect * height / width)) > 0.01:
        if aspect > width / height:  # wider
            grow = min(round8(aspect * height) - width, int(MAX_SHARE * width) * 2)
            named = [s for s in ("left", "right") if s in sides] or ["left", "right"]
        else:
            grow = min(round8(width / aspect) - height, int(MAX_SHARE * height) * 2)
            named = [s for s in ("top", "bottom") if s in sides] or ["top", "bottom"]
        first = round8(grow / len(named)) if len(named) > 1 else round8(grow)
        pads[named[0]] = max(8, first)
        if len(named) > 1:  # the other side takes the rest, so the sum is the growth asked
            pads[named[1]] = max(8, round8(grow) - pads[named[0]])
        return pads
    for s in sides or ["left", "top", "right", "bottom"]:
        pads[s] = max(8, round8((width if s in ("left", "right") else height) * DEFAULT_SHARE))
    return pads


def outpaint_graph(graph: Graph, *, native: int, sides: list[str], aspect: float | None,
                   size: tuple[int, int] | None, mask_given: bool) -> tuple[Graph, dict[str, Any]]:
    """A copy of the inpaint ``graph`` (an ``image.load`` feeding an ``sd.inpaint``) that extends
    its picture: resize, pad with a feathered mask, inpaint the padded picture with the pad's
    mask (or, with ``mask_given``, the given mask padded with white). Returns the graph and
    what was done (working size, pads) for the trace."""
    out = graph.model_copy(deep=True)
    sampler = next((n for n, node in out.nodes.items() if node.block == "sd.inpaint"), None)
    if sampler is None:
        return out, {}
    image_ref = out.nodes[sampler].inputs.get("image")
    mask_ref = out.nodes[sampler].inputs.get("mask")
    if not isinstance(image_ref, str):
        return out, {}
    width, height = working_size(native, size)
    pads = outpaint_pads(width, height, sides, aspect)
    fit, pad = _free(out, "fit"), _free(out, "outpaint_pad")
    out.nodes[fit] = Node(block="image.resize", inputs={"image": image_ref},
                          params={"width": width, "height": height, "aspect": "crop"})
    feather = min(FEATHERING, max(0, min(width, height) // 2 - 1))
    out.nodes[pad] = Node(block="sd.outpaint_pad", inputs={"image": f"{fit}.image"},
                          params={**pads, "feathering": feather})
    out.nodes[sampler].inputs["image"] = f"{pad}.image"
    if mask_given and isinstance(mask_ref, str):  # the given mask, on the padded canvas, white on the border
        as_image, fit_mask = _free(out, "mask_image"), _free(out, "fit_mask")
        padded, to_mask = _free(out, "pad_mask"), _free(out, "outpaint_mask")
        out.nodes[as_image] = Node(block="image.mask_to_image", inputs={"mask": mask_ref})
        out.nodes[fit_mask] = Node(block="image.resize", inputs={"image": f"{as_image}.image"},
                                   params={"width": width, "height": height, "aspect": "crop"})
        out.nodes[padded] = Node(block="image.pad", inputs={"image": f"{fit_mask}.image"},
                                 params={**pads, "mode": "constant", "color": [1.0]})
        out.nodes[to_mask] = Node(block="image.image_to_mask", inputs={"image": f"{padded}.image"})
        out.nodes[sampler].inputs["mask"] = f"{to_mask}.mask"
    else:
        out.nodes[sampler].inputs["mask"] = f"{pad}.mask"
        loader = mask_ref.split(".")[0] if isinstance(mask_ref, str) else None
        if loader in out.nodes and not any(mask_ref in _refs(node) for n, node in out.nodes.items()):
            del out.nodes[loader]  # the template's mask loader feeds nothing now
        out.meta["inputs"] = [i for i in out.meta.get("inputs", [])
                              if not (isinstance(i, dict) and i.get("role") == "mask")]
    done = {"working_size": [width, height], "pads": pads, "feathering": feather,
            "size_known": bool(size), "mask": "given" if mask_given else "the pad's"}
    out.meta["outpaint"] = done
    return out, done


def _refs(node: Node) -> list[str]:
    refs: list[str] = []
    for value in node.inputs.values():
        refs.extend(value if isinstance(value, list) else [value])
    return refs


def _free(graph: Graph, name: str) -> str:
    out, n = name, 2
    while out in graph.nodes:
        out, n = f"{name}_{n}", n + 1
    return out
