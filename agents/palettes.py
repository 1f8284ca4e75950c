"""A palette the user gives, told from colours only described.

"colourise it with the colours of the attached swatch" names a palette picture; "a snowy palette" or
"natural colours" only say how to colour, and no picture of colours is asked for.
"""

from __future__ import annotations

import re

from agents import lexicon

_PALETTE_STEM = re.compile(r"palet|paleta|палит|паліт|παλέτ|פלט|پالت|باليت|لوحة|팔레트|"
                           r"パレット|调色|調色|配色|swatch|skala|scheme|schema|esquema|sch[ée]ma",
                           re.IGNORECASE)


_PALETTE_NAMED = re.compile(r"palett|paleta|tavolozza|палитр|παλέτα|bảng màu|パレット|调色板|配色|swatch|"
                            r"\bcolou?r (?:chart|card|scheme)s?\b|\bcolou?rs? (?:of|from)\b", re.IGNORECASE)


# an English palette described by its colours, no picture of them: "snowy palette", "a warm muted colour
# palette"; one pointed at ("this palette", "the colour palette in the attached image") or named as a
# picture ("palette image") is given
_PALETTE_WORD = re.compile(r"\bpalettes?\b", re.IGNORECASE)


_POINTED_PALETTE = re.compile(r"\b(?:this|that|these|my|our|your|the|attached|given|uploaded|provided|same|"
                              r"reference|brand|using|use|with|from|of|in)\b", re.IGNORECASE)


_PALETTE_PICTURE = re.compile(r"^\s*(?:image|photo|picture|pic|file|swatch|reference|card|chart|in|from|of|"
                              r"that|i|we|attached|below|above)\b", re.IGNORECASE)


def _described_palettes(prompt: str) -> str:
    """``prompt`` without the palettes it only describes ("snowy palette")."""
    for m in reversed(list(_PALETTE_WORD.finditer(prompt))):
        before = prompt[:m.start()].split()[-3:]
        if any(_POINTED_PALETTE.fullmatch(w.strip(",;:")) for w in before) \
                or _PALETTE_PICTURE.match(prompt[m.end():]) or not before:
            continue
        prompt = prompt[:m.start()] + " " + prompt[m.end():]
    return prompt


def names_palette(prompt: str) -> bool:
    """Whether ``prompt`` names a palette (a swatch, a colour chart, "the colours of ...", a palette
    or colour scheme in a language of the lexicon), not only a verb of colouring ("colourise it
    naturally") or colours ("natürliche Farben": how to colour it, no picture of colours; "snowy
    palette": a description of the colours)."""
    prompt = _described_palettes(prompt)
    return bool(_PALETTE_NAMED.search(prompt)) or any(
        " " in m.group(0).strip() or _PALETTE_STEM.search(m.group(0))
        for m in lexicon.words_of("palette").finditer(prompt))
