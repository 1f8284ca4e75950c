"""Settings: defaults, then a TOML file, then ``ORCHESTRATOR_*`` environment variables, then flags.

Later sources win. The TOML file is ``--config FILE``, else ``$ORCHESTRATOR_CONFIG``, else
``<state_dir>/config.toml`` when it exists::

    state_dir = "/srv/orchestrator"
    [plugins]
    allow = ["my_blocks"]      # only these third-party plugins (default: all installed)
    strict = false             # true: any plugin problem stops start-up
    [[models]]
    name = "dreamshaper"
    source = "/models/dreamshaper.safetensors"

Environment variables name a top-level key (``ORCHESTRATOR_STATE_DIR``) or a nested one
with a double underscore (``ORCHESTRATOR_PLUGINS__STRICT=true``); lists are comma-separated.

>>> s = load_settings(env={"ORCHESTRATOR_PLUGINS__ALLOW": "a,b"}, config_file=None)
>>> s.plugins.allow
['a', 'b']
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "ORCHESTRATOR_"


class ConfigError(ValueError):
    """A config file, variable or flag that does not fit the settings."""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "config", "message": str(self), "node": None, "field": None}


class PluginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] | None = Field(None, description="third-party plugins to load; None: all")
    strict: bool = Field(False, description="stop at start-up on any plugin problem")
    extra: list[str] = Field(default_factory=list, description="extra plugin modules to import")


class Limits(BaseModel):
    """Bounds on what one request may ask for (each breach is a clear 4xx error)."""

    model_config = ConfigDict(extra="forbid")

    request_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest request body")
    nodes: int = Field(500, ge=1, description="most nodes in a graph")
    pixels: int = Field(8192 * 8192, ge=64 * 64, description="largest width * height")
    steps: int = Field(500, ge=1, description="most sampler steps")
    batch: int = Field(64, ge=1, description="largest batch")
    queued: int = Field(1000, ge=1, description="most jobs waiting; then 429")
    attempts: int = Field(3, ge=1, description="runs a job gets before it fails after crashes")
    node_timeout_s: float | None = Field(None, gt=0, description="Ray engine: a node running longer "
                                                                "fails its job (its worker is replaced)")


class AgentSettings(BaseModel):
    """The agent that plans graphs for prompts (``[agent]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid")

    llm: str | None = Field(None, description="litellm model string ('ollama/llama3.1', "
                                              "'openai/gpt-4o-mini'); None: the offline planner")
    base_url: str | None = Field(None, description="the LLM server's base URL; None: the provider's")
    api_key_env: str = Field("ORCHESTRATOR_LLM_API_KEY",
                             description="environment variable that holds the LLM API key")
    rounds: int = Field(3, ge=0, le=10, description="critic and repair rounds at most")
    timeout_s: float = Field(60.0, gt=0, le=600, description="timeout of one LLM request")
    retries: int = Field(2, ge=0, le=10, description="retries of a failed LLM request")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="LLM sampling temperature")
    embedding_model: str | None = Field(
        None, description="local sentence-embedding model (folder or HF cache name) for prompt "
                          "labels; never downloaded")
    default_model: str | None = Field(None, description="model that replaces unknown model names")
    scores: Path | None = Field(None, description="score table file; default <state_dir>/agent/scores.sqlite")
    scorer: str | None = Field(None, description="an ONNX image-scoring model (file or registered name): "
                                                 "planned graphs score their image, and each score "
                                                 "updates the score table")


class Settings(BaseModel):
    """The effective settings of the CLI and the daemon."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(
        default_factory=lambda: Path(os.path.expanduser("~/.local/state/orchestrator")),
        description="SQLite store, outputs, logs",
    )
    cache_dir: Path | None = Field(None, description="model cache; default <state_dir>/cache")
    input_dir: Path | None = Field(None, description="where graphs read input files; default cwd")
    device: str = Field("auto", description="'auto', 'cpu' or 'cuda[:N]'")
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    models: list[dict[str, Any]] = Field(default_factory=list, description="model entries")
    host: str = Field("127.0.0.1", description="HTTP bind address")
    port: int = Field(8188, ge=0, le=65535, description="HTTP port")
    token: str | None = Field(None, description="bearer token required by the HTTP API")
    ray_address: str | None = Field(None, description="join this Ray cluster; default: local")
    workers: int = Field(0, ge=0, description="CPU workers when there is no GPU; 0: auto")
    engine: str = Field("ray", pattern="^(ray|local)$", description="'ray' or 'local' (in-process)")
    allowed_hosts: list[str] = Field(default_factory=list, description="extra Host header names")
    limits: Limits = Field(default_factory=lambda: Limits())
    agent: AgentSettings = Field(default_factory=AgentSettings)

    @property
    def effective_cache_dir(self) -> Path:
        return self.cache_dir or self.state_dir / "cache"

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover - torch is a dependency
            return "cpu"

    def show(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["cache_dir"] = str(self.effective_cache_dir)
        if out.get("token"):
            out["token"] = "***"
        return out


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    list_fields = {("plugins", "allow"), ("plugins", "extra")}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = tuple(p.lower() for p in key[len(ENV_PREFIX):].split("__"))
        if path[0] not in Settings.model_fields:
            continue
        parsed: Any = [v.strip() for v in value.split(",") if v.strip()] if path in list_fields else value
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = parsed
    return out


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif v is not None:
            out[k] = v
    return out


def load_settings(
    *,
    config_file: str | Path | bool | None = True,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from the config file, the environment and ``overrides`` (flags), in that order.

    ``config_file=True`` looks in the usual places; ``None``/``False`` reads no file.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    path: Path | None = None
    if config_file is True:
        named = env.get(ENV_PREFIX + "CONFIG")
        if named:
            path = Path(named)
        else:
            state = (overrides or {}).get("state_dir") or env.get(ENV_PREFIX + "STATE_DIR")
            default_state = Settings.model_fields["state_dir"].default_factory()  # type: ignore[misc]
            candidate = Path(state or default_state) / "config.toml"
            path = candidate if candidate.is_file() else None
    elif config_file:
        path = Path(config_file)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    data = _merge(data, _env_overrides(env))
    data = _merge(data, dict(overrides or {}))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(f"bad settings: {problems}") from None
