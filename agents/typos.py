"""Typos in the words the planner's rules read: "potrait", "widescren", "anmie", "remvoe".

A word is read as one of the rules' key words (:data:`KEY_WORDS`) when it is one edit away
from it (a letter added, dropped, changed, or two neighbours swapped) and is no word of its
own. What counts as a word of its own: a whole-word token of CLIP's BPE vocabulary (the
text encoder's, shipped in ``orchestrator/models/configs/clip``; about 34,000 English words
and names), so "printed" stays "printed" although it is one letter from "painted". Short
key words (five letters or fewer) take only a swap of two neighbours ("anmie" -> "anime"),
since one changed letter there makes too many real words ("house", "horse").

>>> fix_typos("a potrait of a samurai, widescren 16:9")
('a portrait of a samurai, widescreen 16:9', [('potrait', 'portrait'), ('widescren', 'widescreen')])
>>> fix_typos("a printed poster of a house, then a face detailer")[1]
[]
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

# the words the label, intent, format and task rules key on (what a typo there would lose)
KEY_WORDS = (
    # formats and orientation
    "portrait", "landscape", "vertical", "horizontal", "widescreen", "orientation", "wallpaper",
    "panorama", "panoramic", "banner", "poster", "format", "square",
    # tasks and intents
    "remove", "replace", "erase", "delete", "inpaint", "inpainting", "upscale", "upscaled",
    "colorize", "colourize", "recolor", "recolour", "palette", "reference", "style", "sketch",
    "outline", "scribble", "lineart", "canny", "depth", "openpose", "skeleton", "controlnet",
    "masked", "region", "restore", "detail", "details", "enhance", "photo", "photograph", "picture",
    "image", "attached", "uploaded", "background",
    # styles and subjects the rules name
    "anime", "manga", "illustration", "painting", "watercolor", "watercolour", "realistic",
    "photorealistic", "cinematic", "detailed", "intricate", "cartoon", "pixel", "isometric",
    "person", "people", "woman", "women", "children", "teenager", "grandmother", "grandfather",
    "samurai", "warrior", "knight", "princess", "astronaut", "detective", "fisherman",
    "animal", "kitten", "puppy", "elephant", "giraffe", "penguin", "dolphin", "leopard", "cheetah",
    "forest", "flower", "flowers", "garden", "meadow", "waterfall", "jungle", "mountain", "mountains",
    "valley", "canyon", "desert", "ocean", "beach", "sunset", "sunrise", "horizon", "glacier",
    "island", "volcano", "countryside", "scenery", "city", "street", "skyline", "building",
    "skyscraper", "cityscape", "architecture", "bridge", "product", "bottle", "furniture",
    "perfume", "jewelry", "jewellery", "helmet", "backpack", "breakfast", "dessert", "chocolate",
    "croissant", "pancake", "cupcake", "noodle", "noodles",
)
# words of other languages one letter from a key word, never corrected ("Maske" is no "masked")
NOT_TYPOS = frozenset(("formato", "formatos", "formati",  # es/pt/it "format"
                       "maske", "masken", "maskeli", "maskou", "maskel", "bilden", "fotot", "fotce", "fotka",
                       "fotku", "fotky", "formaat", "liggend", "liggande"))
# the short words that point at a given picture, as typed in a hurry ("cn u make teh uploaded photo"):
# too short for the edit-distance rule, so listed
CHAT_TYPOS = {"teh": "the", "hte": "the", "thsi": "this", "tihs": "this", "thsi's": "this", "yuor": "your",
              "ths": "this", "tis": "this", "dis": "this",
              "fotoo": "photo", "enhanse": "enhance", "uplaoded": "uploaded", "uploded": "uploaded",
              "atached": "attached", "attatched": "attached",
              "imge": "image", "imgae": "image", "phtoo": "photo", "poto": "photo",
              # chat abbreviations of the verbs that give a picture
              "attchd": "attached", "attachd": "attached", "atchd": "attached", "attd": "attached",
              "uplded": "uploaded", "upld": "uploaded", "resolutin": "resolution", "resoltion": "resolution",
              "resoluton": "resolution", "resoultion": "resolution",
              "higer": "higher", "sharpr": "sharper", "biger": "bigger", "screenshoot": "screenshot",
              "screenshoots": "screenshots"}
_WORD = re.compile(r"[^\W\d_]+")  # whole words in any script; only ASCII ones are corrected


def _vocab_file() -> Path | None:
    spec = importlib.util.find_spec("orchestrator")  # finds the package without importing it
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "models" / "configs" / "clip" / "bpe_simple_vocab_16e6.txt.gz"
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """CLIP's whole-word tokens (lower case); empty when the vocabulary file is not there."""
    path = _vocab_file()
    if path is None:
        return frozenset()
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")[1:49152 - 256 - 2 + 1]
    except (OSError, EOFError, UnicodeDecodeError):
        return frozenset()
    words = set()
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].endswith("</w>"):
            words.add((parts[0] + parts[1])[:-4])
    return frozenset(words)


def _one_edit(word: str, key: str, swap_only: bool) -> bool:
    """Whether ``word`` is one edit from ``key`` (with ``swap_only``: two neighbours swapped)."""
    if word == key or abs(len(word) - len(key)) > 1:
        return False
    if len(word) == len(key):
        diff = [i for i, (a, b) in enumerate(zip(word, key, strict=True)) if a != b]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and word[diff[0]] == key[diff[1]] \
                and word[diff[1]] == key[diff[0]]:
            return True
        return not swap_only and len(diff) == 1
    if swap_only:
        return False
    short, long_ = (word, key) if len(word) < len(key) else (key, word)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


_SUFFIX = re.compile(r"(?:ers|er|ed|ing|es|s|ly)$")


def _stem(word: str) -> str:
    return _SUFFIX.sub("", word)


@lru_cache(maxsize=1)
def lexicon_words() -> frozenset[str]:
    """Every word of :mod:`agents.lexicon_data` (any language, any field): a word of another language
    is no English typo ("fformat tirlun", "formato stories")."""
    from agents.lexicon_data import LEXICON

    return frozenset(w for entry in LEXICON.values() for words in entry.values() for phrase in words
                     for w in phrase.split())


def correction(word: str) -> str | None:
    """The key word ``word`` is a typo of, or ``None``. Another form of the same word
    ("detailer", "upscaler") is no typo of it."""
    low = word.lower()
    if low in CHAT_TYPOS:
        return CHAT_TYPOS[low]
    if not low.isascii() or len(low) < 5 or low in KEY_WORDS or low in NOT_TYPOS\
            or low in known_words() or low in lexicon_words():
        return None
    found = [k for k in KEY_WORDS if k[0] == low[0] or k[1:2] == low[1:2]
             if _one_edit(low, k, swap_only=len(k) <= 5) and _stem(low) != _stem(k)]
    return found[0] if len(found) == 1 else None


def fix_typos(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with the typos of key words corrected, and ``(typo, word)`` for each one."""
    fixed: list[tuple[str, str]] = []

    def sub(m: re.Match[str]) -> str:
        right = correction(m.group(0))
        if right is None:
            return m.group(0)
        if (m.group(0), right) not in fixed:
            fixed.append((m.group(0), right))
        return right.capitalize() if m.group(0)[:1].isupper() else right

    return _WORD.sub(sub, text), fixed
