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

_SIZE = re.compile(r"\b(\d{2,5})\s*[x\u00d7]\s*(\d{2,5})\b")  # 1024x512 (or a multiplication sign)
_RATIO = re.compile(r"\b(\d{1,2})\s*:\s*(\d{1,2})\b")
_SEED = re.compile(r"\bseed\s*[:=#]?\s*(\d{1,10})\b", re.IGNORECASE)
_STEPS = re.compile(r"\b(\d{1,3})\s*(?:sampling\s+)?steps\b", re.IGNORECASE)
_AVOID = re.compile(r"\b(?:without|avoid(?:ing)?|no visible)\s+([a-z][a-z \-]{1,40}?)(?=[,.;!]|$| and )",
                    re.IGNORECASE)
_FAST = re.compile(r"\b(?:quick|draft|fast|preview|rough)\b", re.IGNORECASE)
_QUALITY = re.compile(r"\b(?:highly detailed|best quality|masterpiece|ultra[- ]detailed|intricate|"
                      r"high quality)\b", re.IGNORECASE)
_PANORAMA = re.compile(r"\b(?:panoramas?|panoramic|360[- ]degree|ultra-?wide|banner)\b", re.IGNORECASE)

# default aspect (width / height) for the shape labels
WIDE_ASPECT = 2.0
PANORAMA_ASPECT = 4.0
TALL_ASPECT = 0.5


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
    images: dict[str, str] = field(default_factory=dict)  # input files: "image", "mask"

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
                "avoid": list(self.avoid), "images": dict(self.images)}


def parse_request(prompt: str, labels: Labels | None = None) -> Request:
    """Read size, aspect, steps, seed and things to avoid out of ``prompt``."""
    labels = labels if labels is not None else classify(prompt)
    req = Request(prompt=prompt.strip(), labels=labels)
    size = _SIZE.search(prompt)
    if size:
        w, h = int(size.group(1)), int(size.group(2))
        if 8 <= w <= 16384 and 8 <= h <= 16384:
            req.width, req.height = w, h
            req.aspect = w / h
    ratio = _RATIO.search(prompt)
    if req.aspect is None and ratio:
        a, b = int(ratio.group(1)), int(ratio.group(2))
        if a and b and 0.1 <= a / b <= 10:
            req.aspect = a / b
    if req.aspect is None:
        if "wide" in labels.formats:
            req.aspect = PANORAMA_ASPECT if _PANORAMA.search(prompt) else WIDE_ASPECT
        elif "tall" in labels.formats:
            req.aspect = TALL_ASPECT
    req.large = "large" in labels.formats
    seed = _SEED.search(prompt)
    if seed:
        req.seed = int(seed.group(1)) % 2**32
    steps = _STEPS.search(prompt)
    if steps and 1 <= int(steps.group(1)) <= 500:
        req.steps = int(steps.group(1))
    if _FAST.search(prompt):
        req.quality = "fast"
    elif _QUALITY.search(prompt):
        req.quality = "quality"
    req.avoid = [m.group(1).strip() for m in _AVOID.finditer(prompt)]
    req.text = clean_prompt(prompt)
    return req


def clean_prompt(prompt: str) -> str:
    """The prompt for the text encoder: without size, ratio, seed, steps and "without ..." parts.

    >>> clean_prompt("a red fox, 1024x512, seed 42, 30 steps, without text")
    'a red fox'
    """
    text = prompt
    for rx in (_SIZE, _RATIO, _SEED, _STEPS, _AVOID):
        text = rx.sub(" ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", re.sub(r"\s+", " ", text))
    text = re.sub(r"\s+,", ",", text).strip(" ,;.")
    return text or prompt.strip()
