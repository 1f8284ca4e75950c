"""Which language a prompt is in, roughly: enough for the planner to say in its trace that its
keyword rules read English (and a few words of other languages) and that it planned with the
plain template of the task where they recognised nothing.

By script (Japanese kana, Chinese, Korean, Cyrillic, Greek, Arabic, Hebrew, Thai, Devanagari),
else by common function words of German, French, Spanish, Italian, Portuguese and Dutch.

>>> language("Ein Porträt einer alten Bäuerin im Stil von Rembrandt")
'German'
>>> language("a red fox in the snow") is None
True
"""

from __future__ import annotations

import re

_SCRIPTS = (
    ("Japanese", re.compile(r"[\u3040-\u30ff]")),
    ("Korean", re.compile(r"[\uac00-\ud7af]")),
    ("Chinese", re.compile(r"[\u4e00-\u9fff]")),
    ("Russian", re.compile(r"[\u0400-\u04ff]")),
    ("Greek", re.compile(r"[\u0370-\u03ff]")),
    ("Arabic", re.compile(r"[\u0600-\u06ff]")),
    ("Hebrew", re.compile(r"[\u0590-\u05ff]")),
    ("Thai", re.compile(r"[\u0e00-\u0e7f]")),
    ("Hindi", re.compile(r"[\u0900-\u097f]")),
)
# function words that English prompts do not use
_WORDS = {
    "German": "der die das ein eine einer einem einen und mit im von auf unter über ist nicht sehr bei "
              "zum zur",
    "French": "le la les un une des du de et avec dans sur sous est très au aux pour cette ce",
    "Spanish": "el la los las un una unos y con en de del al sobre bajo muy esta este para",
    "Italian": "il lo la gli le un una uno e di con nel nella della delle degli dei del sul alla all "
               "sotto molto questa questo per",
    "Portuguese": "o a os as um uma e de com no na do da dos das em sobre sob muito esta este para",
    "Dutch": "de het een en met in op van onder zeer deze dit voor",
}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
_ENGLISH = set("a an the and with in on of at by for to is are from under over this that very".split())


def language(text: str) -> str | None:
    """The language ``text`` seems to be in, when it is not English; ``None`` for English (or
    too little to tell)."""
    for name, rx in _SCRIPTS:
        if rx.search(text):
            return name
    words = [w.lower() for w in _TOKEN.findall(text)]
    if not words:
        return None
    english = sum(w in _ENGLISH for w in words)
    best, hits = None, 0
    for name, vocab in _WORDS.items():
        known = set(vocab.split()) - _ENGLISH
        n = sum(w in known for w in words)
        if n > hits:
            best, hits = name, n
    return best if hits >= 2 and hits > english else None
