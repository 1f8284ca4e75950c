"""How much bigger an upscale of a given picture should come out: the factor or the size the
prompt asks for ("2x is enough", "twice as big", "from 480x270 to 1920x1080", "to 256x256").

>>> upscale_target("upscale this 64x64 sprite to 256x256, keep it crisp")
(None, (256, 256))
>>> upscale_target("make it twice as big plz")
(2.0, None)
>>> upscale_target("4x upscale of the title card, it's 480x270 and I need it at 1920x1080")
(None, (1920, 1080))
>>> upscale_target("upscale it") == (None, None)
True
"""

from __future__ import annotations

import re
from typing import Any

from agents.orientation import normalize

# a size: "1920x1080", "1920 by 1080" (or with a multiplication sign)
_SIZE = re.compile(r"(?<![\d.])(\d{2,5})\s*(?:px\s*)?(?:x|\u00d7|by|\*)\s*(\d{2,5})(?:\s*px)?(?![\d.])",
                   re.IGNORECASE)
# the size it should become: after "to", "at", "into", "->", "need it (at)"
TO_SIZE = re.compile(r"(?:\bto|\bat|\binto|\bas|->|→|\bneed it(?: at)?|\bmake it)\s*$", re.IGNORECASE)
# a factor: "2x", "x4", "4 times", "twice", "double the size", "3-fold"
_FACTOR = re.compile(r"(?<![\w.])(?:x\s?(\d(?:\.\d)?)|(\d(?:\.\d)?)\s?(?:x|\u00d7|times|fold|-fold)|"
                     r"(\d(?:\.\d)?)\s?(?:mal|fois|veces|vezes|volte|keer|kertaa|kat|razy|krát|раза?|倍|배))(?![\w.])|"
                     r"\b(twice|double|doubled|doubling|triple|quadruple)\b", re.IGNORECASE)
_WORDS = {"twice": 2.0, "double": 2.0, "doubled": 2.0, "doubling": 2.0, "triple": 3.0, "quadruple": 4.0}
MAX_FACTOR = 8.0


def upscale_target(prompt: str) -> tuple[float | None, tuple[int, int] | None]:
    """``(factor, None)``, ``(None, (width, height))`` or ``(None, None)`` for an upscale prompt: a
    size said as the one to reach wins over a factor; of several sizes without one, the largest."""
    text = normalize(prompt)
    sizes = [(m, (int(m.group(1)), int(m.group(2)))) for m in _SIZE.finditer(text)]
    sizes = [(m, s) for m, s in sizes if 64 <= s[0] <= 16384 and 64 <= s[1] <= 16384]
    aimed = [s for m, s in sizes if TO_SIZE.search(text[:m.start()])]
    if aimed:
        return None, aimed[-1]
    if len(sizes) >= 2:  # "480x270 ... 1920x1080": from the small one to the large one
        return None, max((s for _m, s in sizes), key=lambda s: s[0] * s[1])
    for m in _FACTOR.finditer(text):
        if m.group(4):
            return _WORDS[m.group(4).lower()], None
        value = float(m.group(1) or m.group(2) or m.group(3))
        if 1.0 < value <= MAX_FACTOR:
            return value, None
    return None, None


def apply_upscale_target(params: dict[str, Any], prompt: str) -> dict[str, Any] | None:
    """The params of an ``image.resize`` node that upscales the given picture (``scale``), changed to
    the factor or size ``prompt`` asks for; ``None`` when it asks for neither."""
    factor, size = upscale_target(prompt)
    if size is not None:
        new = {k: v for k, v in params.items() if k != "scale"}
        new.update(width=size[0], height=size[1], aspect="fit")
        return new
    if factor is not None and params.get("scale") != factor:
        return {**params, "scale": factor}
    return None
