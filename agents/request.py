"""What a prompt asks for beyond its content: size, aspect, steps, seed, what to avoid.

>>> r = parse_request("a wide panorama of a mountain lake at dawn")
>>> r.aspect, r.labels.formats
(4.0, ['wide'])
>>> r = parse_request("a red fox, 1024x512, seed 42, 30 steps, without text")
>>> (r.width, r.height, r.seed, r.steps, r.avoid)
(1024, 512, 42, 30, ['text'])
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from agents.labels import Labels, classify
from agents.language import language
from agents.lexicon_data import LEXICON
from agents.orientation import explicit_ratio, find_shape, normalize, says_landscape
from agents.paths import has_paths, strip_paths, without_paths
from agents.typos import fix_typos
from agents.upscale_size import TO_SIZE

# the given picture described ("so it fits 16:9 ..., its a vertical shot"): its orientation, not the one asked
_GIVEN_IS = re.compile(r"\b(?:it'?s|it is|its|this is|(?:the|my) (?:photo|pic|image|picture|shot) is|"
                       r"(?:the|my) (?:photo|pic|image|picture|shot) was)\s+(?:a |an |in )?$", re.IGNORECASE)


def _describes_given(prompt: str, phrase: str) -> bool:
    """Whether the orientation ``phrase`` describes the given picture ("its a vertical shot")."""
    at = prompt.lower().find(phrase.lower())
    return at >= 0 and bool(_GIVEN_IS.search(prompt[:at]))


# 1024x512, "1920 на 1080", "1920 por 1080"; never a print size in centimetres or inches ("70x100 cm")
_SIZE = re.compile(r"\b(\d{2,5})\s*(?:[x\u00d7]|by|"
                   r"(?<=\s)(?:на|por|per|sur|op|auf|na|par|mal|på|bij|kali)(?=\s))"
                   r"\s*(\d{2,5})"
                   r"(?!\s*(?:cm|mm|in\b|inch|inches|\"|ft\b|feet)|\d)(?:\s*(?:px|pixels))?\b", re.IGNORECASE)
# "width 1216 height 832", "w=768, h=1024"
_SIZE_WORDS = re.compile(r"\b(?:width|w)\s*[:=]?\s*(\d{2,5})(?:\s*px)?[\s,;]+(?:and\s+)?(?:height|h)"
                         r"\s*[:=]?\s*(\d{2,5})\b|\b(?:height|h)\s*[:=]?\s*(\d{2,5})(?:\s*px)?[\s,;]+(?:and\s+)?"
                         r"(?:width|w)\s*[:=]?\s*(\d{2,5})\b|"
                         # "1200 wide x 800 tall", "1080px wide by 1920px high"
                         r"\b(\d{2,5})\s*(?:px|pixels)?\s*(?:wide|long)\s*(?:x|\u00d7|by|and|,)?\s*(\d{2,5})\s*(?:px|pixels)?"
                         r"\s*(?:tall|high)\b", re.IGNORECASE)
_SEED = re.compile(r"\bseed\s*(?:[:=#]|of|number)?\s*(\d{1,10})\b", re.IGNORECASE)
# steps only as an instruction: its own clause ("..., 30 steps", "steps: 30", "use 30 steps")
_STEPS = re.compile(
    r"(?:(?:^|[,;(])\s*|\b(?:use|using|at|in|run|sample[ds]?)\s+)(\d{1,3})\s*(?:sampling\s+|"
    r"denoising\s+|inference\s+|diffusion\s+)?steps\s*(?=$|[,;.)])|\bsteps\s*[:=]\s*(\d{1,3})\b",
    re.IGNORECASE)
_WITHOUT = r"(?:without|avoid(?:ing)?|no visible|exclude|excluding)"
_NO = r"(?:(?<=^)|(?<=[,;.(])|(?<=\bwith)|(?<=\band)|(?<=\bbut))\s*(?:no|not any)"
_AVOID = re.compile(r"(?:\b" + _WITHOUT + r"|" + _NO + r")\s+([a-z][a-z' \-]{0,58}?)"
                    r"(?=\s*(?:[,.;!)]|$)|\s+(?:and|but|or|in|on|at|with)\s)", re.IGNORECASE)
_NEGATIVE = re.compile(r"\bnegative(?:\s+prompt)?\s*:\s*([^;|\n]{1,300})$", re.IGNORECASE)
_LORA = re.compile(r"<(?:lora|lyco):([^:<>]{1,200})(?::(-?\d+(?:\.\d+)?))?(?::[^<>]*)?>", re.IGNORECASE)
_FAST = re.compile(r"\b(?:quick|draft|fast|preview|rough)\b", re.IGNORECASE)
_QUALITY = re.compile(r"\b(?:highly detailed|best quality|masterpiece|ultra[- ]detailed|intricate|"
                      r"high quality)\b", re.IGNORECASE)
_PANORAMA = re.compile(r"\b(?:panor[aáâ]m\w*|360[- ]degree|ultra-?wide|banner)\b|パノラマ|全景|파노라마|"
                       r"بانورام|پانورام|פנורמ|पैनोरमा|พาโนรามา|πανοραμ|панорам|toàn cảnh",
                       re.IGNORECASE)
# estimate of CLIP tokens: words and punctuation, long words count twice
_TOKEN = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")
CLIP_TOKENS = 75  # per window, without the start and end tokens
CLIP_WINDOWS = 8  # windows sd.encode_prompt encodes (plugins.sd.prompt.MAX_WINDOWS)
MAX_SIDE = 16384  # the largest side a latent block takes
LARGE_PIXELS = 1536 * 1536  # an explicit size this large asks for a large image
# a model family the prompt asks for; "with the sdxl model" is an instruction and leaves the text
# the name may carry a particle or suffix of another script ("SDXL로", "SDXL-ով", "SDXLで"): no Latin
# letter or digit after it
_FAMILY = re.compile(r"(?<![a-z0-9])(sd ?xl|sdxl|sd ?1\.?5|sd ?2(?:\.[01])?|stable diffusion (?:xl|"
                     r"1\.5|2(?:\.1)?))"
                     r"(?![a-z0-9]|\.\d)",
                     re.IGNORECASE)
_FAMILY_INSTRUCTION = re.compile(r",?\s*\b(?:with|using|on|in) (?:the |an? )?(?:sd ?xl|sdxl|sd ?1\.?5|"
                                 r"sd ?2(?:\.[01])?)(?: (?:model|checkpoint|base))?\b", re.IGNORECASE)

# a paper size: ISO A0-A6 (1:sqrt 2), US letter (8.5:11), legal, tabloid/ledger (11:17); portrait
# unless the prompt says landscape/horizontal
_PAPER = re.compile(r"\b(?:(?<![Aa]udi )(A[0-6])|(?i:(?:us[- ])?(letter)[- ](?:sized?|paper|format|"
                    r"sheet|page|print|poster)|us letter|(legal)[- ](?:sized?|paper|format|sheet)|"
                    r"(tabloid|ledger)(?:[- ](?:sized?|paper|format|sheet|poster|print))?))\b")
_PAPER_LOWER = re.compile(r"\b([ab][0-6])[- ]?(?:size[d]?|paper|format|sheet|page|print|poster|flyer|"
                          r"plakat|affiche)\b",
                          re.IGNORECASE)
_PAPER_ASPECT = {"a": 1 / 2 ** 0.5, "letter": 8.5 / 11, "legal": 8.5 / 14, "tabloid": 11 / 17,
                 "ledger": 11 / 17}
_ORIENTATION = re.compile(r"\b(?:portrait|landscape|vertical|horizontal)\b|[- ]orient(?:ed|ation)\b",
                          re.IGNORECASE)
_TALL_WORD = re.compile(r"\btall\b", re.IGNORECASE)
_WIDE_WORD = re.compile(r"\bwide(?:screen)?\b", re.IGNORECASE)
_PHONE = re.compile(r"\b(?:phone|mobile|story|stories|reel|tiktok)\b", re.IGNORECASE)
# explicit panorama words: these ask for the panorama template whatever the ratio
_PANORAMA_WORDS = re.compile(r"\b(?:panor[aáâ]m\w*|360[- ]degree|360|ultra-?wide)\b|パノラマ|全景|파노라마",
                             re.IGNORECASE)
# aspects from 1:PANORAMA_FROM to PANORAMA_FROM:1 are a plain picture at the model's native area
PANORAMA_FROM = 2.0

# default aspect (width / height) for the shape labels
WIDE_ASPECT = 16 / 9  # "a wide image": a widescreen picture (a panorama is asked by name or by its ratio)
PANORAMA_ASPECT = 4.0
TALL_ASPECT = 0.5
ORIENTED_ASPECT = 1.5  # "landscape orientation" (3:2); "portrait orientation" is 2:3
PHONE_ASPECT = 9 / 16  # a phone wallpaper, a story


@dataclass
class Request:
    """A prompt and what it asks of the graph; ``None`` fields are left to the template."""

    prompt: str
    labels: Labels = field(default_factory=Labels)
    text: str = ""  # the prompt without its instructions (size, seed, steps, "without ...")
    width: int | None = None  # explicit size in pixels
    height: int | None = None
    aspect: float | None = None  # width / height
    large: bool = False  # larger than the model's native size
    steps: int | None = None
    quality: str | None = None  # "fast" or "quality"
    seed: int | None = None
    avoid: list[str] = field(default_factory=list)  # things the negative prompt should name
    images: dict[str, str] = field(default_factory=dict)  # input files by role: "image", "mask", "style"
    loras: list[tuple[str, float]] = field(default_factory=list)  # <lora:name:weight> tags
    regions: dict[str, str] = field(default_factory=dict)  # region -> its own prompt ("left", "right")
    model: str | None = None  # a checkpoint the prompt names (removed from ``text``)
    family: str | None = None  # a model family the prompt asks for: sd1, sd2, sdxl

    @property
    def people(self) -> bool:
        return "people" in self.labels.subjects

    def default_seed(self) -> int:
        """The explicit seed, else one derived from the prompt (same prompt, same graph)."""
        if self.seed is not None:
            return self.seed
        return int(hashlib.sha256(self.prompt.encode()).hexdigest()[:8], 16) % 2**31

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "labels": self.labels.to_dict(), "width": self.width,
                "text": self.text, "height": self.height, "aspect": self.aspect, "large": self.large,
                "steps": self.steps, "quality": self.quality, "seed": self.seed,
                "avoid": list(self.avoid), "images": dict(self.images),
                "loras": [list(x) for x in self.loras], "regions": dict(self.regions), "model": self.model}


def _size(prompt: str) -> tuple[int, int, tuple[int, int]] | None:
    found = [(int(m.group(1)), int(m.group(2)), m.span()) for m in _SIZE.finditer(prompt)
             if 64 <= int(m.group(1)) <= 65536 and 64 <= int(m.group(2)) <= 65536]  # "3x4 grid" is no size
    # of two sizes, the one said as the size to reach ("the image I uploaded is 800x800, make it 750x1000")
    aimed = [f for f in found if TO_SIZE.search(prompt[:f[2][0]])]
    if aimed or found:
        return (aimed or found)[-1 if aimed else 0]
    for m in _SIZE_WORDS.finditer(prompt):
        g = m.groups()
        w, h = (int(g[0]), int(g[1])) if g[0] else (int(g[3]), int(g[2])) if g[2] else (int(g[4]), int(g[5]))
        if 64 <= w <= 65536 and 64 <= h <= 65536:
            return w, h, m.span()
    return None


def without_negations(prompt: str) -> str:
    """``prompt`` without its "no X" / "without X" / "negative: ..." parts (what labels are read from).

    >>> without_negations("a quiet street, no people, without cars")
    'a quiet street'
    """
    text = _NEGATIVE.sub(" ", prompt)
    return _tidy(_AVOID.sub(" ", text)) or prompt.strip()


def labels_text(prompt: str) -> str:
    """What labels are read from: the prompt without LoRA tags and negations."""
    return without_negations(without_paths(_LORA.sub(" ", prompt)))


def text_notes(request: Request, notes: list[str]) -> None:
    """Trace notes on the text: no label recognised; a prompt longer than one CLIP window."""
    labels = request.labels
    if not (labels.subjects or labels.styles or labels.formats or labels.intents):
        notes.append(f"no label recognised in the prompt: planned with the plain template of the task "
                     f"({labels.task})")
    tokens = estimate_tokens(request.text)
    if tokens > CLIP_TOKENS * CLIP_WINDOWS:
        notes.append(f"the prompt is about {tokens} CLIP tokens: sd.encode_prompt reads at most "
                     f"{CLIP_WINDOWS} windows of {CLIP_TOKENS}, the rest is cut; shorten it")
    elif tokens > CLIP_TOKENS:
        notes.append(f"the prompt is about {tokens} CLIP tokens, over one window of {CLIP_TOKENS}: "
                     f"sd.encode_prompt encodes it in windows of {CLIP_TOKENS} (as ComfyUI and A1111 do)")


def reading_notes(prompt: str, request: Request, notes: list[str], *, embedder: bool = False) -> None:
    """Trace notes on how the prompt was read: typos of key words taken as the word; a prompt
    not in English (the keyword rules read English and the format, picture, mask and edit
    words of a few other languages; what they miss falls back to the plain template)."""
    fixed = fix_typos(normalize(prompt))[1]
    if has_paths(prompt):
        notes.append("the file system paths in the prompt were not read (a path to a picture is read as the "
                     "given picture, nothing is saved to a path): the planner never reads a path from the "
                     "prompt; inputs come only from the files given by role")
    lang = language(prompt)
    if fixed and lang is None:  # in another language these are its own words ("formato"), read alike
        notes.append("read " + ", ".join(f"{a!r} as {b!r}" for a, b in fixed[:8])
                     + " (a typo of a word the planner's rules read)")
    if lang is None:
        return
    found = request.labels
    how = "classified by meaning with the embedding model" if embedder else \
        "no embedding model is configured (agent.embedding_model) to classify it by meaning"
    shaped = {"wide", "tall", "large"} & set(found.formats)
    fallback = "" if found.intents else \
        f"; with no composition recognised, a template of the task ({found.task}) for the shape asked " \
        f"({', '.join(sorted(shaped))}) is planned" if shaped else \
        f"; with no composition recognised, the plain template of the task ({found.task}) is planned"
    notes.append(f"the prompt looks {lang}: {how}; the keyword rules read English, the format, mask and "
                 f"edit words of a few languages and the given-picture, style and palette words of "
                 f"{len(LEXICON)} "
                 f"(agents.lexicon_data) (found: {', '.join(found.all())})" + fallback)


def estimate_tokens(text: str) -> int:
    """A rough count of CLIP tokens in ``text`` (words, digits and punctuation; long words twice)."""
    return sum(2 if len(t) > 9 else 1 for t in _TOKEN.findall(text))


def parse_request(prompt: str, labels: Labels | None = None) -> Request:
    """Read size, aspect, steps, seed, LoRA tags and things to avoid out of ``prompt``; only
    unambiguous phrases count ("1024x768", "16:9", "portrait orientation", "seed 42", "30 steps"),
    so a time of day, a count of objects or "a wide river" stay in the prompt."""
    labels = labels if labels is not None else classify(labels_text(prompt))
    req = Request(prompt=prompt.strip(), labels=labels)
    req.loras = [(m.group(1).strip(), float(m.group(2)) if m.group(2) else 1.0)
                 for m in _LORA.finditer(prompt)]
    original, prompt = prompt, fix_typos(normalize(prompt))[0]  # "widescren", full-width digits
    size = _size(prompt)
    if size:
        req.width, req.height = size[0], size[1]
        req.aspect = size[0] / size[1]
        if max(size[0], size[1]) > MAX_SIDE:  # "20000x10000": the asked shape, at the largest side a
            scale = MAX_SIDE / max(size[0], size[1])  # latent takes (the limits check clamps it further)
            req.width, req.height = max(64, int(size[0] * scale)), max(64, int(size[1] * scale))
        if max(req.aspect, 1 / req.aspect) >= PANORAMA_FROM - 1e-6:
            # "1800 wide 450 tall", "800x4000": a banner's or a scroll's shape, which the panorama
            # template tiles along its long side (however many pixels)
            _add_format(labels, "wide" if req.aspect > 1 else "tall")
        elif size[0] * size[1] >= LARGE_PIXELS and "large" not in labels.formats:
            labels.formats.append("large")  # larger than any model's native size: a large image
    if req.aspect is None:
        ratio = explicit_ratio(prompt)
        req.aspect = ratio[0] if ratio else None
        turned = find_shape(prompt)
        if req.aspect is not None and turned is not None and turned.kind == "oriented" \
                and abs(req.aspect - 1) > 0.01 and (req.aspect > 1) != (turned.format == "wide") \
                and not _describes_given(prompt, turned.phrase):
            req.aspect = 1 / req.aspect  # "세로 16:9", "a 16:9 vertical poster": the orientation decides
    if req.aspect is None:
        req.aspect = paper_aspect(prompt)
    if req.aspect is not None and not size and abs(req.aspect - 1) > 0.2:
        _add_format(labels, "wide" if req.aspect > 1 else "tall")
    shape = find_shape(prompt)
    if req.aspect is None and shape is not None:  # "vertical poster", "Hochformat", "phone wallpaper"
        req.aspect = shape.aspect
        _add_format(labels, shape.format)
    explicit = req.aspect is not None
    if req.aspect is None:
        if "wide" in labels.formats:
            req.aspect = PANORAMA_ASPECT if _PANORAMA.search(prompt) else \
                ORIENTED_ASPECT if _ORIENTATION.search(prompt) and not _WIDE_WORD.search(prompt) \
                else WIDE_ASPECT
            # "a wide image", "wide landscape shot": a widescreen picture, planned plain
            explicit = req.aspect == WIDE_ASPECT
        elif "tall" in labels.formats:  # "tall image" is 1:2; "portrait orientation" 2:3
            req.aspect = TALL_ASPECT if _TALL_WORD.search(prompt) else \
                PHONE_ASPECT if _PHONE.search(prompt) else \
                1 / ORIENTED_ASPECT if _ORIENTATION.search(prompt) else TALL_ASPECT
            explicit = True  # a portrait picture: plain at the model's area, not a vertical panorama
        explicit = explicit or req.aspect == ORIENTED_ASPECT
    # the plain template unless the shape is a panorama's (see agents.choose)
    labels.aspect = req.aspect if explicit and req.aspect is not None \
        and not _PANORAMA_WORDS.search(prompt) else None
    # a second pass asked for in words makes the picture at twice the native size, as ComfyUI's hires fix
    req.large = "large" in labels.formats or "hires" in labels.intents
    seed = _SEED.search(prompt)
    if seed:
        req.seed = int(seed.group(1)) % 2**32
    steps = _STEPS.search(prompt)
    if steps:
        value = int(steps.group(1) or steps.group(2))
        if 1 <= value <= 500:
            req.steps = value
    if _FAST.search(prompt):
        req.quality = "fast"
    elif _QUALITY.search(prompt):
        req.quality = "quality"
    req.avoid = [m.group(1).strip() for m in _AVOID.finditer(prompt)]
    negative = _NEGATIVE.search(prompt)
    if negative:
        req.avoid += [t.strip() for t in negative.group(1).split(",") if t.strip()]
    family = _FAMILY.search(prompt)
    if family:
        word = re.sub(r"[\s.]", "", family.group(1).lower()).replace("stablediffusion", "sd")
        req.family = "sdxl" if "xl" in word else "sd2" if word.startswith("sd2") else "sd1"
    labels.family = req.family
    req.text = clean_prompt(normalize(original))
    return req


def paper_aspect(prompt: str) -> float | None:
    """The aspect (width / height) of a paper size the prompt names ("A3", "letter-size",
    "tabloid"): portrait, or landscape when the prompt says so; ``None`` without one."""
    m = _PAPER.search(prompt)
    if m:
        kind = "a" if m.group(1) else (m.group(2) or m.group(3) or m.group(4) or "letter").lower()
    else:
        m = _PAPER_LOWER.search(prompt)
        if not m:
            return None
        kind = "a"
    aspect = _PAPER_ASPECT[kind]
    return 1 / aspect if says_landscape(prompt) else aspect


def beyond_native(request: Request, native: int) -> bool:
    """A new picture asked at a pixel size too large for one pass of any model (``LARGE_PIXELS``,
    e.g. 2048x2048, 3000x2000) is made in tiled passes: the ``hires`` intent and the ``large``
    format. A size up to that (1920x1080, 1080x1350, 832x1216) is generated as asked by the plain
    template of the task, as a ComfyUI user sets EmptyLatentImage (the rules tile what goes
    beyond the model's native size); a second pass is planned when the words ask for one ("high
    res", "two passes", "generate small then upscale"). Words alone ("4k", "poster") never are.
    Returns whether it set the intent."""
    labels = request.labels
    if not (request.width and request.height) or labels.task != "text-to-image" or labels.intents:
        return False
    ratio = request.width / request.height
    if max(ratio, 1 / ratio) >= PANORAMA_FROM - 1e-6:
        return False  # a banner's or a panorama's shape: the panorama template tiles it
    if request.width * request.height < LARGE_PIXELS:
        return False
    labels.intents.append("hires")
    if "large" not in labels.formats:
        labels.formats.append("large")
    request.large = True
    return True


def _add_format(labels: Labels, label: str) -> None:
    other = "tall" if label == "wide" else "wide"
    if other in labels.formats:
        labels.formats.remove(other)
    if label not in labels.formats:
        labels.formats.append(label)


def _tidy(text: str) -> str:
    text = re.sub(r"\(\s*\)", " ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", re.sub(r"\s+", " ", text))
    text = re.sub(r"\s+([,.;])", r"\1", text)
    text = re.sub(r"([,;])\s*[.;,]+", r"\1", text)
    return text.strip(" ,;.")


def clean_prompt(prompt: str) -> str:
    """The prompt for the text encoder: without size, ratio, seed, steps, LoRA tags and the
    negations ("without X", "no X", which go to the negative prompt).

    >>> clean_prompt("a red fox, 1024x512, seed 42, 30 steps, without text")
    'a red fox'
    >>> clean_prompt("a clock tower at 10:30, three ships in the harbour, a wide river")
    'a clock tower at 10:30, three ships in the harbour, a wide river'
    """
    text = strip_paths(_LORA.sub(" ", prompt))
    size = _size(text)
    if size:
        text = text[:size[2][0]] + " " + text[size[2][1]:]
    ratio = explicit_ratio(text)
    if ratio is not None and normalize(text) == text:
        text = text[:ratio[1][0]] + " " + text[ratio[1][1]:]
    text = _NEGATIVE.sub(" ", text)
    text = _FAMILY_INSTRUCTION.sub(" ", text)
    for rx in (_SEED, _STEPS, _AVOID):
        text = rx.sub(lambda m: "," if m.group(0).lstrip()[:1] in ",;(" else " ", text)
    text = re.sub(r"\b(?:in\s+)?(?:portrait|landscape)\s+(?:orientation|format|mode)\b", " ", text,
                  flags=re.IGNORECASE)
    return _tidy(text) or prompt.strip()
