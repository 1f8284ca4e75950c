"""Token counts of LLM messages: a tokenizer-free estimate, and litellm's count where it works.

The estimate (``ceil(chars / 3)`` per message, plus 4 for the role and separators) is what
the planner sizes its messages by: it needs no tokenizer file and over-counts for the
tokenizers of common local models (JSON-heavy English runs 3.2-3.6 characters a token in
cl100k and Llama 3, about 3 in 32k-vocabulary tokenizers), so a message it passes fits.

>>> estimate_tokens([{"role": "user", "content": "x" * 300}])
104
>>> estimate_tokens("abcdef")
2
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from agents.litellm_import import prepare_litellm

CHARS_PER_TOKEN = 3.0
MESSAGE_OVERHEAD = 4  # role and separators, per message
CONTEXT_TOKENS = 4096  # a typical local model's window: a select call and its answer fit in it


def estimate_tokens(messages: str | Iterable[Mapping[str, Any]]) -> int:
    """Tokens of ``messages`` (or of one text), estimated without a tokenizer."""
    if isinstance(messages, str):
        return math.ceil(len(messages) / CHARS_PER_TOKEN)
    return sum(math.ceil(len(str(m.get("content", ""))) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD
               for m in messages)


def count_tokens(messages: Iterable[Mapping[str, Any]], model: str = "gpt-3.5-turbo") -> int | None:
    """Tokens of ``messages`` by litellm's tokenizer for ``model`` (tiktoken's cl100k for most
    models), or ``None`` when litellm cannot count offline."""
    try:
        litellm = prepare_litellm()
        return int(litellm.token_counter(model=model, messages=[dict(m) for m in messages]))
    except Exception:  # noqa: BLE001 - no tokenizer available offline: the estimate stands
        return None
