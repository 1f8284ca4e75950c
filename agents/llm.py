"""LLM access through litellm: JSON answers, timeouts, bounded retries, token and cost accounting.

Where a request goes (model string, base URL) and what credentials it carries (API key)
are fixed when the :class:`LLMClient` is made, from settings and the environment. Each
call sends only the messages; nothing in a model's answer is ever turned into a request
option, so an answer cannot redirect the next request or change its credentials.

litellm is imported lazily, inside :meth:`LLMClient.complete_json`, after
``LITELLM_LOCAL_MODEL_COST_MAP`` is set, so it never fetches its price map from the
internet and importing :mod:`agents` stays cheap when no LLM is configured.

>>> cfg = LLMConfig(model="ollama/llama3.1", api_key="secret")
>>> "secret" in repr(cfg)
False
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.errors import AgentError
from agents.litellm_import import prepare_litellm
from agents.tokens import CONTEXT_TOKENS, estimate_tokens

DEFAULT_KEY_ENV = "ORCHESTRATOR_LLM_API_KEY"

# litellm exception classes worth another attempt (transient); any other failure is final.
# litellm.APIError is its generic server error: bad keys and bad requests do not inherit it.
_RETRYABLE = ("Timeout", "APIConnectionError", "RateLimitError", "InternalServerError",
              "ServiceUnavailableError", "BadGatewayError", "APIError")


def _retryable(litellm: Any) -> tuple[type[BaseException], ...]:
    return tuple(c for n in _RETRYABLE if isinstance(c := getattr(litellm, n, None), type))


@dataclass(frozen=True)
class LLMConfig:
    """Where requests go and how: fixed for the life of a client."""

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    retries: int = 2
    backoff_s: float = 0.5
    temperature: float = 0.0
    max_tokens: int | None = 4096
    json_mode: bool = True
    context_tokens: int | None = CONTEXT_TOKENS  # messages + answer at most (estimated); None: no bound
    env_keys: bool = True  # False: litellm may not fall back to provider keys in the environment

    @classmethod
    def from_settings(
        cls, settings: Any, *, model: str | None = None, env: Mapping[str, str] | None = None
    ) -> LLMConfig | None:
        """A config from agent settings (``llm``, ``base_url``, ``api_key_env``, ``timeout_s``,
        ``retries``); ``None`` when no model is configured (the offline planner is used)."""
        env = os.environ if env is None else env
        name = model or getattr(settings, "llm", None)
        if not name:
            return None
        key_env = getattr(settings, "api_key_env", None) or DEFAULT_KEY_ENV
        return cls(
            model=name,
            base_url=getattr(settings, "base_url", None) or None,
            api_key=env.get(key_env) or None,
            timeout_s=float(getattr(settings, "timeout_s", 60.0)),
            retries=int(getattr(settings, "retries", 2)),
            temperature=float(getattr(settings, "temperature", 0.0)),
            context_tokens=_context(settings),
        )

    @classmethod
    def for_request(
        cls, settings: Any, name: str | None, *, env: Mapping[str, str] | None = None
    ) -> LLMConfig | None:
        """The config of the LLM a daemon request picks by ``name`` (``agent.llm``): only
        what ``settings.pick_llm`` allows (``AgentError`` naming ``agent.llm`` otherwise),
        sent where the operator configured that model, with that model's own key and no
        other: an entry with a ``base_url`` but no ``api_key_env`` gets no key, not even
        one litellm would take from the environment. ``None``: the offline planner.
        """
        env = os.environ if env is None else env
        try:
            entry = settings.pick_llm(name)
        except LookupError:
            raise AgentError("agent.llm is not one of the LLMs this daemon allows; allowed: "
                             + ", ".join(settings.llm_names()), type="config", field="agent.llm") from None
        if entry is None:
            return None
        key_env = entry.api_key_env
        return cls(
            model=entry.model or entry.name,
            base_url=entry.base_url or None,
            api_key=(env.get(key_env) or None) if key_env else None,
            timeout_s=float(getattr(settings, "timeout_s", 60.0)),
            retries=int(getattr(settings, "retries", 2)),
            temperature=float(getattr(settings, "temperature", 0.0)),
            context_tokens=_context(settings),
            env_keys=bool(key_env) or not entry.base_url,
        )


def _context(settings: Any) -> int | None:
    """``settings.context_tokens`` where the settings have it (0: no bound), else 4096."""
    value = getattr(settings, "context_tokens", CONTEXT_TOKENS)
    return int(value) if value else None


@dataclass
class Usage:
    """Tokens and cost of the LLM calls of one job."""

    calls: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.attempts += other.attempts
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(int(data.get("calls", 0)), int(data.get("attempts", 0)),
                   int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0)),
                   float(data.get("cost_usd", 0.0)))

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "attempts": self.attempts,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "cost_usd": round(self.cost_usd, 8)}


@dataclass
class Answer:
    """One answer: the raw text, the decoded JSON object (or ``None``), what it cost."""

    text: str
    data: dict[str, Any] | None
    usage: Usage
    error: AgentError | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "usage": self.usage.to_dict(),
                "error": self.error.to_dict() if self.error else None}


def parse_json_object(text: str) -> tuple[dict[str, Any] | None, AgentError | None]:
    """The JSON object in a model's answer (code fences tolerated); else an error saying why.

    >>> parse_json_object('```json\\n{"a": 1}\\n```')
    ({'a': 1}, None)
    >>> parse_json_object("no json here")[1].type
    'bad_answer'
    """
    stripped = text.strip()
    fenced = re.match(r"^```[A-Za-z]*\s*(.*?)\s*```$", stripped, re.DOTALL)
    if fenced:
        stripped = fenced.group(1)
    candidates = [stripped]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 < start < end:
        candidates.append(stripped[start:end + 1])
    last: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError as exc:
            last = exc
            continue
        except RecursionError:
            return None, AgentError("the answer's JSON is nested too deep", type="bad_answer")
        if isinstance(data, dict):
            return data, None
        return None, AgentError(
            f"the answer is JSON but not an object (got {type(data).__name__})", type="bad_answer")
    where = f": {last.msg} at line {last.lineno} column {last.colno}" if last else ""
    return None, AgentError(f"the answer is not valid JSON{where}", type="bad_answer",
                            answer=text[:200])


MIN_ANSWER_TOKENS = 256  # an answer smaller than this is no use: the messages do not fit


def answer_tokens(cfg: LLMConfig, messages: list[dict[str, str]]) -> int | None:
    """The ``max_tokens`` of a request: ``cfg.max_tokens``, lowered so that the messages (by
    :func:`agents.tokens.estimate_tokens`) and the answer fit in ``cfg.context_tokens``.
    An :class:`AgentError` (``type="llm"``, ``field="context_tokens"``) when the messages
    leave less than :data:`MIN_ANSWER_TOKENS`."""
    if not cfg.context_tokens:
        return cfg.max_tokens
    prompt = estimate_tokens(messages)
    room = cfg.context_tokens - prompt
    if room < MIN_ANSWER_TOKENS:
        raise AgentError(f"the messages (~{prompt} tokens) leave no room for an answer in the "
                         f"model's context of {cfg.context_tokens} tokens", type="llm",
                         field="context_tokens", value=prompt, bound=cfg.context_tokens)
    return min(cfg.max_tokens, room) if cfg.max_tokens else room


class LLMClient:
    """Chat completions through litellm with JSON answers and bounded retries.

    ``complete_json(messages)`` returns an :class:`Answer`; it raises
    :class:`~agents.errors.AgentError` (``type="llm"``) when the model cannot be reached
    after ``1 + retries`` attempts, or at once on a non-transient failure (bad key, bad
    request). Use ``mock_response`` (litellm's) to script answers without a server.
    """

    def __init__(self, config: LLMConfig, *, mock_responses: Sequence[str] | None = None) -> None:
        self._config = config
        self._mock = list(mock_responses) if mock_responses is not None else None
        self._lock = threading.Lock()
        self.usage = Usage()  # everything this client used, over all jobs

    @property
    def model(self) -> str:
        return self._config.model

    def _request(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The request options: built from the fixed config and the messages, nothing else."""
        cfg = self._config
        options: dict[str, Any] = {
            "model": cfg.model,
            "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in messages],
            "timeout": cfg.timeout_s,
            "temperature": cfg.temperature,
            "drop_params": True,
            "max_retries": 0,  # the OpenAI SDK's own retries: ours are below, bounded and counted
        }
        max_tokens = answer_tokens(cfg, messages)
        if max_tokens:
            options["max_tokens"] = max_tokens
        if cfg.json_mode:
            options["response_format"] = {"type": "json_object"}
        if cfg.base_url:
            options["api_base"] = cfg.base_url
        if cfg.api_key:
            options["api_key"] = cfg.api_key
        elif cfg.base_url and not cfg.env_keys:
            # a server the operator named without a key: litellm must not send it a provider
            # key it finds in the environment (OPENAI_API_KEY, ...), so give it a dummy one
            options["api_key"] = "no-key"
        elif cfg.base_url and cfg.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
            # an OpenAI-compatible server of one's own (llama.cpp, vLLM, LM Studio) often wants
            # no key, but the OpenAI SDK refuses to send a request without one
            options["api_key"] = "no-key"
        if self._mock is not None:
            with self._lock:
                options["mock_response"] = self._mock.pop(0) if self._mock else "{}"
        return options

    def _count(self, usage: Usage) -> None:
        with self._lock:
            self.usage.add(usage)

    def complete_json(self, messages: list[dict[str, str]]) -> Answer:
        """Send ``messages``; the answer's JSON object (or the reason there is none)."""
        litellm = prepare_litellm()
        cfg = self._config
        answer_tokens(cfg, messages)  # AgentError now when the messages cannot fit the context
        usage = Usage(calls=1)
        attempt = 0
        while True:
            attempt += 1
            usage.attempts = attempt
            try:
                response = litellm.completion(**self._request(messages))
                break
            except Exception as exc:  # noqa: BLE001 - every provider failure becomes an AgentError
                name = type(exc).__name__
                retryable = isinstance(exc, _retryable(litellm))
                if not retryable or attempt > cfg.retries:
                    self._count(usage)
                    why = f"after {attempt} attempts" if retryable else "(not retried)"
                    raise AgentError(
                        f"LLM {cfg.model!r} failed {why}: {name}: {_first_line(exc)}",
                        type="llm", model=cfg.model, attempts=attempt, error=name,
                        usage=usage.to_dict(),
                    ) from None
                time.sleep(min(cfg.backoff_s * 2 ** (attempt - 1), 10.0))
        text = _content(response)
        tokens = getattr(response, "usage", None)
        usage.prompt_tokens = int(getattr(tokens, "prompt_tokens", 0) or 0)
        usage.completion_tokens = int(getattr(tokens, "completion_tokens", 0) or 0)
        usage.cost_usd = _cost(litellm, response)
        self._count(usage)
        data, error = parse_json_object(text)
        return Answer(text=text, data=data, usage=usage, error=error)


def _content(response: Any) -> str:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def _cost(litellm: Any, response: Any) -> float:
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:  # noqa: BLE001 - a model without a price costs 0 here
            cost = 0.0
    try:
        return float(cost or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
