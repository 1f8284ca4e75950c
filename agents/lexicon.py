"""A picture the user gives, read from the words of many languages: the keyword rules' fallback
when no embedding model is configured to classify a prompt by meaning.

:data:`agents.lexicon_data.LEXICON` lists, per language, the nouns for a picture, the words that
point at one the user has (a demonstrative or possessive before or after the noun, a form with
the possessive glued on), the verbs and phrases of giving one (attach, send, upload), and the
words for a style, a palette, colouring in and extending. A noun counts only beside a pointing
word of its own language ("dieses Foto", "foto ini", "この写真"), never alone, so "una foto de un
gato" stays a text prompt.

Mentions close together are one picture ("ti allego la mia foto"); two apart are two pictures,
which is what a style or palette of a second picture needs ("la foto del mio outfit nello stile del
dipinto che ti allego").

>>> gives_picture("Verander deze foto in een aquarel")
True
>>> gives_picture("una foto de un gato en la nieve")
False
>>> second_picture_role("Trasforma la mia foto nello stile del dipinto che ti allego")
'style'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from agents.lexicon_data import LEXICON

# languages written without spaces between words: matched by substring
UNSPACED = ("ja", "zh", "th")
# languages that write compounds as one word: a picture noun is also read at a word's end
COMPOUNDING = ("de", "nl", "sv", "no", "da", "fi", "hu", "et", "is")
# languages users often type without their diacritics ("gui tam anh nay"): each entry is also read without
# them (:func:`_entries`)
FOLDED = ("vi",)
# folded words that are other words: "anh" ("ảnh", a photo; also "older brother", "he": "anh ấy"), "day"
# ("đấy"; English "day"); a folded entry starting with one is left out ("tam anh" stays)
FOLD_AMBIGUOUS = frozenset(("anh", "day", "do"))
# articles of the languages that write them apart: one between a pointing word and a noun starts a noun
# phrase of its own
ARTICLES = frozenset(("a", "an", "the", "een", "de", "het", "ein", "eine", "einen", "einem", "der", "die",
                      "das", "un", "une", "le", "la", "les", "des", "una", "el", "los", "las", "il", "lo",
                      "gli", "um", "uma", "os", "as", "en", "ett", "et", "ei"))
# compounds that end in a picture noun but name no picture ("mein Vorbild": my role model)
NOT_PICTURES = frozenset(("leitbild", "sinnbild", "ebenbild", "weltbild", "feindbild", "krankheitsbild",
                          "menschenbild", "spiegelbild", "voorbeeld", "tegenbeeld", "sinnebild", "förebild",
                          "forbilde", "forbillede", "esikuva", "mielikuva", "kuvakuva", "példakép"))
# words of an unspaced script that hold a one-character picture noun and are no picture ("意图": intent,
# "地图": a map, "图案": a pattern, "照明": lighting)
NOT_PICTURES_UNSPACED = frozenset(("意图 地图 试图 企图 蓝图 图案 图标 意圖 地圖 試圖 企圖 "
                                   "藍圖 圖案 圖標 按照 照顾 照顧 照亮 照明 照射 关照 "
                                   "關照 照样 照樣 护照 護照 执照 執照").split())
NEAR = 2  # words (characters x2 for unspaced scripts) between a pointing word and its noun
NEAR_AFTER = 3  # after the noun: its adjectives come first ("ảnh tư liệu cũ này", "foto lama saya ini")
SAME_PICTURE = 4  # mentions closer than this many words are one picture
# words of negation of several languages (short ones that are other words elsewhere left out: "ma", "mat")
NEGATIONS = frozenset((
    "no", "not", "dont", "don't", "never", "without", "jangan", "jgn", "gak", "nggak", "ngga", "tanpa",
    "bukan", "sin", "sans", "ohne", "nicht", "kein", "keine", "keinen", "niet", "zonder", "geen", "bez",
    "без", "не", "нет", "ні", "μην", "χωρίς", "senza", "nie", "nem", "ikke", "inte", "ingen", "sem", "não",
    "nao", "nunca", "nahi", "nahin", "huwag", "wag", "không", "khong", "değil", "ne", "pas", "níl",
    # "no people in the picture": sv, fr, es, it, pt, pl, cs, ru, tr
    "inga", "inget", "intet", "aucun", "aucune", "ningún", "ninguna", "ningun", "nessun", "nessuna",
    "nenhum", "nenhuma", "żadnych", "žádné", "žádní", "никаких", "hiç"))
# English words for a photo that other languages borrow: two of them name one picture
LOAN_PHOTO = frozenset({"photo", "photos", "pic", "pics", "picture", "pictures", "image", "images", "selfie",
                        "screenshot", "snap"})
OTHER_REACH = 12  # characters between a verb of giving and a mask (or map) word it gives
# a word, with the combining marks of Indic, Arabic and Hebrew scripts and Persian's zero-width non-joiner
_WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u0591-\u05c7\u064b-\u065f\u0670\u0900-\u0dff\u200c])+")


@dataclass(frozen=True)
class Mention:
    """A place in the prompt that names a picture the user gives."""

    lang: str
    start: int  # word index (character index in an unspaced script)
    end: int
    kind: str  # "picture" (a pointed-at noun), "second", "form", "inside", "phrase" or "give"


# words in quotes are words to render ("an 'upload your photo' button"), blanked to keep every offset
_QUOTED = re.compile(r"(?<!\w)'[^'\n]{1,60}'(?!\w)|\"[^\"\n]{1,60}\"|"
                     r"[\u201c\u00ab\u300c][^\n]{1,60}?[\u201d\u00bb\u300d]")


def _norm(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    return _QUOTED.sub(lambda m: " " * len(m.group(0)), text)


def _words(text: str) -> list[str]:
    return _WORD.findall(_norm(text))


def fold(text: str) -> str:
    """``text`` without its diacritics ("tấm ảnh cũ" -> "tam anh cu", "đã gửi" -> "da gui")."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@cache
def _entries(lang: str, field: str) -> tuple[tuple[str, ...], ...]:
    """A field of a language as word sequences (unspaced scripts: one string each). For a language
    users often type without its marks (:data:`FOLDED`), each entry also without them, when that is
    two words or more, or one of four letters or more, or a pointing word of three ("tam anh", "hinh",
    "nay"), and not starting with a word of :data:`FOLD_AMBIGUOUS`."""
    values = LEXICON.get(lang, {}).get(field, ())
    if lang in UNSPACED:
        return tuple((_norm(v),) for v in values if v.strip())
    seqs = [w for w in (tuple(_words(v)) for v in values) if w]
    if lang in FOLDED:
        folded = (tuple(fold(w) for w in seq) for seq in seqs)
        pointing = field in ("before", "after")  # "tam anh cu nay": "này" is "nay"
        seqs += [f for f in folded if f[0] not in FOLD_AMBIGUOUS
                 and (len(f) >= 2 or len(f[0]) >= 4 or (pointing and len(f[0]) >= 3))]
    return tuple(dict.fromkeys(seqs))


@cache
def _by_first(seqs: tuple[tuple[str, ...], ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """``seqs`` by their first word (what :func:`_find` looks up per word of the prompt)."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for seq in seqs:
        index.setdefault(seq[0], []).append(seq)
    return {k: tuple(v) for k, v in index.items()}


def _find(words: list[str], seqs: tuple[tuple[str, ...], ...]) -> list[tuple[int, int]]:
    index = _by_first(seqs)
    spans = []
    for i, w in enumerate(words):
        for seq in index.get(w, ()):
            n = len(seq)
            if tuple(words[i:i + n]) == seq:
                spans.append((i, i + n))
    return sorted(spans, key=lambda s: (s[0], s[1]))


def _find_suffix(words: list[str], seqs: tuple[tuple[str, ...], ...]) -> list[tuple[int, int]]:
    """Words that end in a one-word noun of ``seqs`` (of four letters or more) after a stem of four
    or more: the compounds of languages that write them as one word ("Familienfoto", "mökkikuvan")."""
    nouns = [seq[0] for seq in seqs if len(seq) == 1 and len(seq[0]) >= 4]
    return [(i, i + 1) for i, w in enumerate(words) if w not in NOT_PICTURES
            and any(w.endswith(n) and len(w) >= len(n) + 4 for n in nouns)]


def _find_chars(text: str, seqs: tuple[tuple[str, ...], ...]) -> list[tuple[int, int]]:
    spans = []
    for (form,) in seqs:
        start = text.find(form)
        while start >= 0:
            spans.append((start, start + len(form)))
            start = text.find(form, start + 1)
    return spans


def mentions(prompt: str, other: re.Pattern[str] | None = None) -> list[Mention]:
    """Every place ``prompt`` names a picture the user gives (see :func:`_mentions`)."""
    return list(_mentions(prompt, other))


@lru_cache(maxsize=512)
def _mentions(prompt: str, other: re.Pattern[str] | None = None) -> tuple[Mention, ...]:
    """Every place ``prompt`` names a picture the user gives, in any language of the lexicon.
    ``other`` matches the words of the user's other inputs (a mask, a pose skeleton, a map): a
    verb of giving beside one of them gives that input, not a picture ("pakai mask yang aku
    kirim", "蒙版已附上")."""
    found: list[Mention] = []
    text = _norm(prompt)
    located = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
    words = [w for w, _s, _e in located]
    others = [(m.start(), m.end()) for m in other.finditer(text)] if other is not None else []
    if other is not None:  # a mask in any language of the lexicon is no picture either
        others += [(m.start(), m.end()) for m in words_of("mask").finditer(text)]
    for lang in LEXICON:
        unspaced = lang in UNSPACED
        find = (lambda seqs: _find_chars(text, seqs)) if unspaced else (lambda seqs: _find(words, seqs))
        near = NEAR * 2 if unspaced else NEAR
        after_near = NEAR_AFTER * 2 if unspaced else NEAR_AFTER
        nouns = find(_entries(lang, "picture"))
        if unspaced:  # "这个意图": the noun "图" inside another word
            nouns = [(s, e) for s, e in nouns if e - s > 1
                     or not {text[s - 1:e], text[s:e + 1]} & NOT_PICTURES_UNSPACED]
        if lang in COMPOUNDING:  # "dieses Urlaubsfoto", "tän mökkikuvan": a compound ending in the noun
            nouns += _find_suffix(words, _entries(lang, "picture"))
        before = find(_entries(lang, "before"))
        after = find(_entries(lang, "after"))
        # a pointing word points at one noun, the nearest (a word of both lists, sw "hii", at the
        # noun beside it: "picha hii kuwa mchoro" points at "picha" only)
        targets: dict[tuple[int, int], tuple[int, tuple[int, int]]] = {}
        # an article between them starts another noun phrase ("onze veilinghal een schilderij": "onze"
        # points at the hall, not the painting)
        pairs = [(w, n, n[0] - w[1]) for w in before for n in nouns if 0 <= n[0] - w[1] <= near
                 and (unspaced or not ARTICLES.intersection(words[w[1]:n[0]]))]
        pairs += [(w, n, w[0] - n[1]) for w in after for n in nouns if 0 <= w[0] - n[1] <= after_near]
        for word, noun, gap in pairs:
            if word not in targets or gap < targets[word][0]:
                targets[word] = (gap, noun)
        found.extend(Mention(lang, start, end, "picture")
                     for start, end in sorted({noun for _gap, noun in targets.values()}))
        # an ordinal before its noun ("другої картинки", "2nd is a scan"), or right after it ("foto kedua"):
        # a word after the noun and apart from it is another word's ("селфи с другом": with a friend)  # noqa: RUF003
        after_ordinal = near if unspaced else 0
        for w in find(_entries(lang, "second")):
            beside = [n for n in nouns if 0 <= n[0] - w[1] <= near or 0 <= w[0] - n[1] <= after_ordinal]
            if beside:
                noun = min(beside, key=lambda n: min(abs(n[0] - w[1]), abs(w[0] - n[1])))
                found.append(Mention(lang, noun[0], noun[1], "second"))
        for kind, field in (("form", "forms"), ("inside", "inside"), ("phrase", "phrases"), ("give", "give")):
            for start, end in find(_entries(lang, field)):
                if kind == "give" and not unspaced and words[end:end + 1] == ["ready"]:
                    continue  # "upload-ready": a picture to make, fit for uploading
                if kind in ("phrase", "give") and others:
                    chars = (start, end) if unspaced else (located[start][1], located[end - 1][2])
                    reach = OTHER_REACH // 2 if unspaced else OTHER_REACH
                    if any(o_start - chars[1] <= reach and chars[0] - o_end <= reach
                           for o_start, o_end in others):
                        continue
                found.append(Mention(lang, start, end, kind))
    # a picture named after a negation is not given ("jgn pake foto gw": don't use my photo)
    return tuple(m for m in found
                 if m.lang in UNSPACED or not NEGATIONS.intersection(words[max(0, m.start - 3):m.start]))


def gives_input(prompt: str, words: re.Pattern[str]) -> bool:
    """Whether a verb or phrase of giving (any language of the lexicon) stands within reach of a
    match of ``words`` (a mask, a map): the user gives that input ("masku přikládám")."""
    text = _norm(prompt)
    spans = [(m.start(), m.end()) for m in words.finditer(text)]
    if not spans:
        return False
    given = [m for m in mentions(prompt) if m.kind in ("give", "phrase")]
    located = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    for m in given:
        unspaced = m.lang in UNSPACED
        chars = (m.start, m.end) if unspaced else (located[m.start][0], located[m.end - 1][1])
        reach = OTHER_REACH // 2 if unspaced else OTHER_REACH
        if any(o_start - chars[1] <= reach and chars[0] - o_end <= reach for o_start, o_end in spans):
            return True
    return False


def points_at(prompt: str, words: re.Pattern[str]) -> bool:
    """Whether a pointing word of a language of the lexicon (a demonstrative or possessive:
    "мій", "mein", "this") stands right before a match of ``words`` ("мій лайнарт")."""
    text = _norm(prompt)
    for m in words.finditer(text):
        before = _words(text[:m.start()])[-2:]
        for lang in LEXICON:
            if lang in UNSPACED:
                continue
            for seq in _entries(lang, "before"):
                if before[-len(seq):] == list(seq):
                    return True
    return False


def pointed_before(prompt: str, field: str, reach: int = 4) -> bool:
    """Whether a pointing word stands among the ``reach`` words before a word of ``field``, both of one
    language of the lexicon and in one clause: the verb's object is a thing the user has (Kazakh "this
    texture 4 times enlarge", German "dieses Logo bitte vergrößern")."""
    text = _norm(prompt)
    for clause in re.split(r"[.,;:!?()]", text):
        words = _words(clause)
        for lang in LEXICON:
            if lang in UNSPACED:
                continue
            pointing = _entries(lang, "before")
            for start, _end in _find(words, _entries(lang, field)):
                before = words[max(0, start - reach):start]
                if _find(before, pointing):
                    return True
    return False


@cache
def words_of(field: str, spaced_only: bool = False) -> re.Pattern[str]:
    """A pattern of every word of ``field`` in every language (whole words in spaced scripts;
    ``spaced_only``: without the languages written without spaces)."""
    spaced = sorted({" ".join(seq) for lang in LEXICON if lang not in UNSPACED
                     for seq in _entries(lang, field)}, key=len, reverse=True)
    unspaced = [] if spaced_only else sorted({seq[0] for lang in UNSPACED for seq in _entries(lang, field)},
                                              key=len, reverse=True)
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\W+") for w in spaced)
    parts = [r"(?<![^\W_])(?:" + alternatives + r")(?![^\W_])"] if spaced else []
    if unspaced:
        parts.append("|".join(re.escape(w) for w in unspaced))
    return re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)


def gives_picture(prompt: str, other: re.Pattern[str] | None = None) -> bool:
    """Whether ``prompt`` names a picture the user gives, in a language of the lexicon."""
    return bool(mentions(prompt, other))


def pictures(prompt: str, other: re.Pattern[str] | None = None) -> int:
    """How many different pictures the user gives, by the places that name them: a verb or phrase
    of giving within :data:`SAME_PICTURE` words (characters in an unspaced script) of a named
    picture is that picture ("ti allego la mia foto"); two pointed-at nouns are two pictures ("mein
    Foto im Stil des Gemäldes, das ich dir im Anhang schicke")."""
    named = mentions(prompt, other)
    found = sorted({(m.lang in UNSPACED, m.start, m.end, m.kind in ("picture", "second")) for m in named})
    nouns = _noun_places(prompt)
    words = _words(_norm(prompt))
    # a photo named twice by English loanwords ("mukha ko sa pic ... yung face ko dun sa group photo") is one
    # picture, as in English (agents.labels: every word for a photo is one kind)
    loan = [not u and any(w in LOAN_PHOTO for w in words[s:e]) for u, s, e, _n in found]
    count = 0
    last: dict[bool, tuple[int, bool]] = {}  # script kind -> (end of the last group, whether it has a noun)
    for index, (unspaced, start, end, noun) in enumerate(found):
        prev = last.get(unspaced)
        if prev is not None and loan[index] and any(loan[:index]) \
                and not any(m.kind == "second" for m in named):
            last[unspaced] = (max(prev[0], end), True)
            continue
        near = SAME_PICTURE * (2 if unspaced else 1)
        # a verb or phrase of giving far from the named picture, with no picture noun of its own beside
        # it, still gives that picture ("... þessa gömlu mynd ... hún er í viðhenginu": it is attached)
        alone = not noun and prev is not None and prev[1] and not any(
            u == unspaced and s - end <= near and start - e <= near for u, s, e in nouns)
        if prev is not None and (alone or (start - prev[0] <= near and not (noun and prev[1]))):
            last[unspaced] = (max(prev[0], end), prev[1] or noun)
            continue
        count += 1
        last[unspaced] = (end, noun)
    return max(count, 2) if any(m.kind == "second" for m in named) else count


@lru_cache(maxsize=512)
def _noun_places(prompt: str) -> frozenset[tuple[bool, int, int]]:
    """Where ``prompt`` has a picture noun of any language, pointed at or not: ``(unspaced, start,
    end)`` in the units of :func:`mentions`."""
    text = _norm(prompt)
    words = _words(text)
    places: set[tuple[bool, int, int]] = set()
    for lang in LEXICON:
        if lang in UNSPACED:
            places.update((True, a, b) for a, b in _find_chars(text, _entries(lang, "picture")))
        else:
            places.update((False, a, b) for a, b in _find(words, _entries(lang, "picture")))
            if lang in COMPOUNDING:
                places.update((False, a, b) for a, b in _find_suffix(words, _entries(lang, "picture")))
    return frozenset(places)


def has_word(prompt: str, field: str) -> bool:
    """Whether ``prompt`` has a word of ``field`` ("style", "palette", "colorize", "extend") in a
    language of the lexicon."""
    words = _words(prompt)
    text = _norm(prompt)
    return any(_find_chars(text, _entries(lang, field)) if lang in UNSPACED
               else _find(words, _entries(lang, field)) for lang in LEXICON)


_LOOK_LIKE = re.compile(r"\blook(?:s|ing)? (?:like|at|as|more|less|better|good|real)\b", re.IGNORECASE)


def second_picture_role(prompt: str, other: re.Pattern[str] | None = None) -> str | None:
    """What a second given picture is for: ``"palette"`` (its colours, a palette, colouring in),
    ``"style"`` (its style), or ``None`` when the prompt names fewer than two given pictures or
    neither."""
    if pictures(prompt, other) < 2:
        return None
    if has_word(prompt, "palette") or has_word(prompt, "colorize"):
        return "palette"
    # "look" is a style in many languages ("un look vintage"), English "look like" a likeness
    if has_word(_LOOK_LIKE.sub(" ", prompt), "style"):
        return "style"
    return None
