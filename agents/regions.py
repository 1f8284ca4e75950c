"""Regions of a picture named in a prompt, and the regional template fitted to them.

"a fox on the left and an owl on the right", "top half: a stormy sky; bottom half: a calm
sea", "in the top left corner a sun", "a cat on the left, a dog in the middle and a parrot
on the right": each region gets its own prompt (:func:`split_regions`), its own area of the
picture (:func:`region_areas`: halves, thirds with a middle, quarters for corners), and a
region slot in the graph (:func:`fit_region_slots` adds slots when the prompt names more
regions than the template has, so no region is lost).

>>> split_regions("top half: a stormy sky; bottom half: a calm sea")
('', {'top': 'a stormy sky', 'bottom': 'a calm sea'})
>>> region_areas(["left", "center", "right"])["center"]
[0.3333, 0.0, 0.3333, 1.0]
"""

from __future__ import annotations

import itertools
import re

from graphs import Graph

_SIDE = (r"(?:(top|bottom|upper|lower)[- ](left|right)|(left|right|top|bottom|upper|lower)|"
         r"(middle|cent(?:er|re))(?!\s+of\b))")
_REGION = re.compile(
    r"\b(?:(?:on|at|to|in|into|across|along)\s+)?(?:the\s+)?" + _SIDE +
    r"(?:[- ](?:side|half|part|corner|third|portion|area|section))?"
    r"(?:\s+(?:of the (?:image|picture|frame|canvas|scene)))?\s*:?|"
    r"\b(?:in|inside|within|into) the (?:mask(?:ed)?|marked|white)(?: (?:area|region|part))?\b",
    re.IGNORECASE)
_SIDE_BY_SIDE = re.compile(r"\b(?:side[- ]by[- ]side|"
                           r"split(?: image| screen| scene| frame| composition| picture)?|diptych|two halves)"
                           r"(?:\s+(?:comparison|view|portraits?|shot|image))?(?:\s+of)?\s*:?", re.IGNORECASE)
_NAMES = {"upper": "top", "lower": "bottom", "middle": "center", "centre": "center"}
_LEAD = re.compile(r"^(?:(?:the|a|an)\s+)?(?:side|half|part|corner)?\s*(?:is|are|there is|there are|sits|"
                   r"stands|shows?|has|have|holds?|contains?|features?|with)\s+", re.IGNORECASE)

# where each region is, [x, y, width, height] as fractions of the picture
HALVES = {"left": [0.0, 0.0, 0.5, 1.0], "right": [0.5, 0.0, 0.5, 1.0], "top": [0.0, 0.0, 1.0, 0.5],
          "bottom": [0.0, 0.5, 1.0, 0.5], "top-left": [0.0, 0.0, 0.5, 0.5], "top-right": [0.5, 0.0, 0.5, 0.5],
          "bottom-left": [0.0, 0.5, 0.5, 0.5], "bottom-right": [0.5, 0.5, 0.5, 0.5],
          "center": [0.25, 0.25, 0.5, 0.5]}


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;])", r"\1", text)
    return text.strip(" ,;.:")


def _name(m: re.Match[str]) -> str:
    if m.group(1):
        return f"{_NAMES.get(m.group(1).lower(), m.group(1).lower())}-{m.group(2).lower()}"
    word = (m.group(3) or m.group(4) or "mask").lower()
    return _NAMES.get(word, word)


# the sides of a picture in other languages, as the English words the splitter reads (corners first);
# only phrasings that name a place in the picture ("à gauche", "links", "왼쪽에"), not "under the table"
_FOREIGN_SIDES: list[tuple[str, str]] = [
    # corners
    (r"\ben haut (?:à|a) gauche\b|\bin alto a sinistra\b|\barriba a la izquierda\b|\boben links\b|"
     r"\blinksboven\b|\bno canto superior esquerdo\b|왼쪽 위(?:에는|에|는)?|左上(?:に|は|の|角)?|"
     r"左上角", "in the top left corner"),
    (r"\ben haut (?:à|a) droite\b|\bin alto a destra\b|\barriba a la derecha\b|\boben rechts\b|"
     r"\brechtsboven\b|\bno canto superior direito\b|오른쪽 위(?:에는|에|는)?|右上(?:に|は|の|角)?|"
     r"右上角", "in the top right corner"),
    (r"\ben bas (?:à|a) gauche\b|\bin basso a sinistra\b|\babajo a la izquierda\b|\bunten links\b|"
     r"\blinksonder\b|\bno canto inferior esquerdo\b|왼쪽 아래(?:에는|에|는)?|左下(?:に|は|の|角)?|"
     r"左下角", "in the bottom left corner"),
    (r"\ben bas (?:à|a) droite\b|\bin basso a destra\b|\babajo a la derecha\b|\bunten rechts\b|"
     r"\brechtsonder\b|\bno canto inferior direito\b|오른쪽 아래(?:에는|에|는)?|右下(?:に|は|の|角)?|"
     r"右下角", "in the bottom right corner"),
    # sides
    (r"(?:\b(?:sur la|du c[ôo]t[ée]|[àa]) gauche\b|\b(?:a|sulla|alla) sinistra\b|\ba la izquierda\b|"
     r"\b(?:à|a|na) esquerda\b|\bauf der linken seite\b|\blinks\b|\baan de linkerkant\b|"
     r"왼쪽(?:에는|에|은|는)?|왼편(?:에는|에)?|左側?(?:に|は|には)|左边|左側|左侧)", "on the left"),
    (r"(?:\b(?:sur la|du c[ôo]t[ée]|[àa]) droite\b|\b(?:a|sulla|alla) destra\b|\ba la derecha\b|"
     r"\b(?:à|a|na) direita\b|\bauf der rechten seite\b|\brechts\b|\baan de rechterkant\b|"
     r"오른쪽(?:에는|에|은|는)?|오른편(?:에는|에)?|右側?(?:に|は|には)|右边|右側|右侧)", "on the right"),
    (r"(?:\ben haut\b|\bin alto\b|\barriba\b(?! de\b)|\ben la parte (?:de )?(?:superior|arriba)\b|\boben\b|"
     r"\bna parte (?:superior|de cima)\b|\bno (?:topo|alto)\b|\bbovenaan\b|\baan de bovenkant\b|"
     r"위쪽(?:에는|에|은|는)?|상단(?:에는|에)?|"
     r"上部(?:に|は|には)?|上側(?:に|は)?|上半部分?|上方|上面|"
     # at the start of a clause only: "上に空、下に海", "위에는 하늘, 아래에는 바다" (not "テーブルの上に")
     r"(?:^|(?<=[,、\uff0c]\s)|(?<=[,、\uff0c]))(?:上(?:に|は|には)|위(?:에는|에|는)))", "at the top"),
    (r"(?:\ben bas\b|\bin basso\b|\babajo\b(?! de\b)|\ben la parte (?:de )?(?:inferior|abajo)\b|\bunten\b|"
     r"\bna parte (?:inferior|de baixo)\b|\bonderaan\b|\baan de onderkant\b|"
     r"아래쪽(?:에는|에|은|는)?|하단(?:에는|에)?|"
     r"下部(?:に|は|には)?|下側(?:に|は)?|下半部分?|下方|下面|"
     r"(?:^|(?<=[,、\uff0c]\s)|(?<=[,、\uff0c]))(?:下(?:に|は|には)|아래(?:에는|에|는)))", "at the bottom"),
    (r"(?:\bau (?:centre|milieu)\b|\bal centro\b|\ben el (?:centro|medio)\b|\bin der mitte\b|"
     r"\bno (?:centro|meio)\b|\bin het midden\b|가운데(?:에는|에)?|중앙(?:에는|에)?|"
     r"真ん中(?:に|は)?|中央(?:に|は)|中间)",
     "in the center"),
]



def _lexicon_sides() -> list[tuple[str, str]]:
    """The sides in the spaced languages of :mod:`agents.lexicon` ("बाईं तरफ़", "vasemmalla"),
    after the phrasings above (the unspaced scripts' side words need the clause rules above)."""
    from agents.lexicon import words_of

    # a side followed by "of" is a place by something ("abajo de un farol": under a lamp), not a side
    of = r"(?!\s+(?:de|di|del|della|von|vom|des|du|do|da|of|van)\b)"
    return [(f"(?:{words_of(field, spaced_only=True).pattern}){of}", words)
            for field, words in (("left", "on the left"), ("right", "on the right"),
                                 ("top", "at the top"), ("bottom", "at the bottom"))]


_FOREIGN_SIDES += _lexicon_sides()
_FOREIGN_SIDE = re.compile("|".join(f"(?:{rx})" for rx, _ in _FOREIGN_SIDES), re.IGNORECASE)
# the "and" of other languages at the start of a region's clause ("et un chien", "und eine Eule")
_AND_WORDS = r"et|und|y|e|en|och|og|i|и|ja|és|și|ve|và|dan|और|ও|و|그리고|そして"
_FOREIGN_AND = re.compile(r"^(?:" + _AND_WORDS + r"|和|与|及)\s+|"
                          r"^(?:と|和|\uff0c|是|有)", re.IGNORECASE)


def english_sides(text: str) -> str:
    """``text`` with the sides of the picture named in French, Italian, Spanish, German, Portuguese,
    Dutch, Korean, Japanese or Chinese written as the English words :func:`split_regions` reads, each
    a clause of its own ("un chat à gauche et un chien à droite" -> "un chat on the left et un chien
    on the right"; "左边是一只猫、右边是一只狗" -> "on the left 是一只猫, on the right 是一只狗").

    >>> english_sides("links ein Fuchs, rechts eine Eule")
    'on the left ein Fuchs, on the right eine Eule'
    """
    if not _FOREIGN_SIDE.search(text):
        return text
    text = re.sub("[、。\uff0c\uff1b]", ", ", text)
    for rx, words in _FOREIGN_SIDES:
        text = re.sub(rx, f" {words} ", text, flags=re.IGNORECASE)
    # a side that opens its clause after a colon or an "and" starts a clause of its own ("...: बाईं
    # तरफ़ X और दाईं तरफ़ Y" -> "..., on the left X, on the right Y")
    text = re.sub(r"\s*:\s*(?=(?:on|at|in) the (?:left|right|top|bottom|center)\b)", ", ", text)
    text = re.sub(r"\s+(?:" + _AND_WORDS + r")\s+(?=(?:on|at|in) the (?:left|right|top|bottom|center)\b)",
                  ", ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", re.sub(r"\s+([,;])", r"\1", text)).strip()


def foreign_regions(text: str) -> int:
    """How many regions ``text`` names by the sides of the picture in another language."""
    return len(_FOREIGN_SIDE.findall(text))


def split_regions(text: str) -> tuple[str, dict[str, str]]:
    """The base prompt and one prompt per region named in ``text`` (``left``, ``right``, ``top``,
    ``bottom``, ``center``, corners such as ``top-left``, ``mask``), split at commas, semicolons
    and "and". A middle alone is no region ("a cat in the middle of the road" stays whole).

    >>> split_regions("a fox on the left and an owl on the right, in a meadow at dusk")
    ('in a meadow at dusk', {'left': 'a fox', 'right': 'an owl'})
    >>> split_regions("in the top left corner a sun, in the bottom right corner a house")
    ('', {'top-left': 'a sun', 'bottom-right': 'a house'})
    """
    text = english_sides(text)
    clauses = [c.strip() for c in re.split(r"\s*[;,]\s*|\s+and\s+|\.\s+", text) if c.strip()]
    clauses = [part for clause in clauses for part in _split_markers(clause)]
    regions: dict[str, str] = {}
    base: list[str] = []
    pending: str | None = None
    for clause in clauses:
        m = _REGION.search(clause)
        rest = clause
        region = None
        if m:
            region = _name(m)
            rest = _tidy(clause[:m.start()] + " " + clause[m.end():])
            rest = _LEAD.sub("", _FOREIGN_AND.sub("", rest))
        if region is not None and not rest:
            pending = region
            continue
        if region is None and pending is not None:
            region, pending = pending, None
        if region is not None and region not in regions:
            regions[region] = rest
        else:
            base.append(clause)
    if set(regions) == {"center"}:  # "in the middle" with no other region: part of the scene
        return text, {}
    if not regions and _SIDE_BY_SIDE.search(text):  # "side by side: a cat and a dog": left, then right
        parts = [p for p in (_tidy(_SIDE_BY_SIDE.sub(" ", c)) for c in clauses) if p]
        if len(parts) >= 2:
            return ", ".join(parts[2:]), {"left": parts[0], "right": parts[1]}
    return ", ".join(base), regions


def _split_markers(clause: str) -> list[str]:
    """A clause naming two regions cut between them: "a knight on the left facing a dragon on
    the right" -> "a knight on the left", "facing a dragon on the right" (and "on the left a
    knight, on the right a dragon" style when the clause starts with its marker)."""
    marks = list(_REGION.finditer(clause))
    if len(marks) < 2:
        return [clause]
    if not clause[:marks[0].start()].strip():  # marker first: each part starts at its marker
        cuts = [m.start() for m in marks[1:]]
    else:  # marker after its subject: each part ends with its marker
        cuts = [m.end() for m in marks[:-1]]
    bounds = [0, *cuts, len(clause)]
    return [clause[a:b].strip() for a, b in itertools.pairwise(bounds) if clause[a:b].strip()]


def region_areas(regions: list[str]) -> dict[str, list[float]]:
    """The area of each named region: halves and quarters, thirds when a middle sits between
    left and right (or top and bottom); the mask region has none (its mask is the area)."""
    names = set(regions)
    out = {r: list(HALVES[r]) for r in regions if r in HALVES}
    if "center" in names and names & {"left", "right"}:
        third = round(1 / 3, 4)
        out.update({"left": [0.0, 0.0, third, 1.0], "center": [third, 0.0, third, 1.0],
                    "right": [round(2 / 3, 4), 0.0, third, 1.0]})
    elif "center" in names and names & {"top", "bottom"}:
        third = round(1 / 3, 4)
        out.update({"top": [0.0, 0.0, 1.0, third], "center": [0.0, third, 1.0, third],
                    "bottom": [0.0, round(2 / 3, 4), 1.0, third]})
    return {r: a for r, a in out.items() if r in names}


def region_slots(graph: Graph) -> list[str]:
    """The prompting nodes of ``graph`` that hold one region's prompt (``meta.region``)."""
    return [n for n, node in graph.nodes.items() if node.meta.get("region")
            and isinstance(node.params.get("prompt"), str)]


def _applier(graph: Graph, slot: str) -> str | None:
    """The node that places ``slot``'s conditioning on an area (it has an ``area`` param)."""
    for node_id, node in graph.nodes.items():
        if "area" in node.params and f"{slot}.cond" in node.inputs.values():
            return node_id
    return None


def fit_region_slots(graph: Graph, regions: list[str]) -> Graph:
    """A copy of ``graph`` with a region slot for each of ``regions`` it lacks slots for: the
    last area slot (its prompt node and the node that places it) is copied and chained after
    it, so every region of the prompt gets its own prompt and area."""
    out = graph.model_copy(deep=True)
    slots = [s for s in region_slots(out) if _applier(out, s) is not None]
    extra = len([r for r in regions if r != "mask"]) - len(slots)
    if not slots or extra <= 0:
        return out
    own = {out.nodes[s].meta.get("region") for s in slots}
    wanted = [r for r in regions if r != "mask" and r not in own]
    last_slot = slots[-1]
    last = _applier(out, last_slot)
    assert last is not None
    for i in range(extra):
        region = wanted[-extra + i] if len(wanted) >= extra else f"region{i + 2}"
        slot_id, apply_id = _free(out, f"{region}_prompt"), _free(out, region.replace("-", "_"))
        slot = out.nodes[last_slot].model_copy(deep=True)
        slot.meta = {**slot.meta, "region": region}
        applier = out.nodes[last].model_copy(deep=True)
        applier.inputs = {k: (f"{slot_id}.cond" if v == f"{last_slot}.cond" else
                              f"{last}.cond" if k == "cond" else v) for k, v in applier.inputs.items()}
        if region in HALVES:
            applier.params["area"] = list(HALVES[region])
        for node in out.nodes.values():  # what read the last area's conditioning reads the new one's
            node.inputs = {k: (f"{apply_id}.cond" if v == f"{last}.cond" else v)
                           for k, v in node.inputs.items()}
        out.nodes[slot_id] = slot
        out.nodes[apply_id] = applier
        last_slot, last = slot_id, apply_id
    return out


def _free(graph: Graph, name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    out, n = name, 2
    while out in graph.nodes:
        out, n = f"{name}_{n}", n + 1
    return out
