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
    vae = "vae-ft-mse-840000-ema-pruned"  # optional: a VAE from the model folders' vae/
    [model_files]
    roots = ["/srv/ComfyUI/models"]   # ComfyUI or A1111 layout: every file there by its name
    extra_model_paths = ["/srv/ComfyUI/extra_model_paths.yaml"]
    allow_paths = false        # default: paths only in the in-process CLI, never from the daemon
    legacy = "weights_only"    # .ckpt/.pt via torch's weights-only loader; "refuse": not at all
    [cache]
    max_bytes = 2147483648     # node results kept in memory (default: 1/8 of RAM, at most 4 GiB)
    [server]
    header_timeout_s = 10      # a request head must arrive this soon; max_connections, max_streams
    [batching]
    max_batch = 8              # concurrent jobs' UNet calls merged into one (enabled = false: off)
    [retention]
    max_age_days = 30          # finished jobs pruned by age, count (max_jobs) and disk (max_output_bytes)

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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="largest file POST /inputs "
                                                                     "accepts (that route's body limit)")
    inputs_bytes: int = Field(10 * 1024**3, ge=1024, description="most bytes the input folder may "
                                                                "hold; an upload past it is refused")
    nodes: int = Field(500, ge=1, description="most nodes in a graph")
    pixels: int = Field(8192 * 8192, ge=64 * 64, description="largest width * height")
    steps: int = Field(500, ge=1, description="most sampler steps")
    batch: int = Field(64, ge=1, description="largest batch")
    batch_pixels: int = Field(2 * 8192 * 8192, ge=64 * 64,
                              description="largest batch x width x height of one node's output")
    scale: float = Field(16.0, ge=1.0, le=1024.0, description="largest resize/upscale factor (checked "
                                                              "before the input's size is known)")
    tiles: int = Field(16384, ge=1, description="most tiles (or MultiDiffusion views) of one node")
    json_depth: int = Field(64, ge=8, le=1000, description="deepest nesting of a JSON request body")
    queued: int = Field(1000, ge=1, description="most jobs waiting; then 429")
    attempts: int = Field(3, ge=1, description="runs a job gets before it fails after crashes")
    node_timeout_s: float | None = Field(None, gt=0, description="Ray engine: a node running longer "
                                                                "fails its job (its worker is replaced)")


class ModelFileSettings(BaseModel):
    """Where model files live and how requests may name them (``[model_files]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid")

    roots: list[Path] = Field(default_factory=list,
                              description="model folders in ComfyUI's layout (checkpoints/, loras/, ...) "
                                          "or A1111's (models/Stable-diffusion, models/Lora, ...)")
    extra_model_paths: list[Path] = Field(default_factory=list,
                                          description="ComfyUI extra_model_paths.yaml files, read as is")
    allow_paths: bool | None = Field(None, description="accept raw file paths as model names; None: yes "
                                                       "for the in-process CLI, never in the daemon")
    legacy: str = Field("weights_only", pattern="^(weights_only|refuse)$",
                        description="legacy .pt/.pth/.ckpt files: 'weights_only' (torch's restricted "
                                    "loader, never a full unpickle) or 'refuse'")


class AllowedLLM(BaseModel):
    """One LLM a request may pick by ``name`` (``[[agent.allowed_llms]]``, or just its name).

    It goes to ``base_url`` (None: the provider's own) with the key in ``api_key_env``
    (None: no key of ours): the operator's main key (``agent.api_key_env``) is sent only to
    ``agent.llm`` at ``agent.base_url``, never to an entry that does not name it itself.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, description="what a request sends as agent.llm")
    model: str | None = Field(None, description="litellm model string; None: the name")
    base_url: str | None = Field(None, description="the LLM server of this model; None: the provider's")
    api_key_env: str | None = Field(None, description="environment variable with this model's key; "
                                                      "None: send no key of ours")


class AgentSettings(BaseModel):
    """The agent that plans graphs for prompts (``[agent]`` in the TOML file)::

        [agent]
        llm = "ollama/llama3.1"              # prompt jobs' default (with base_url, api_key_env)
        base_url = "http://127.0.0.1:11434"
        allowed_llms = ["ollama/qwen2.5",    # what a request's agent.llm may name, nothing else
                        {name = "gpt", model = "openai/gpt-4o-mini", api_key_env = "OPENAI_API_KEY"}]
    """

    model_config = ConfigDict(extra="forbid")

    llm: str | None = Field(None, description="litellm model string ('ollama/llama3.1', "
                                              "'openai/gpt-4o-mini'); None: the offline planner")
    base_url: str | None = Field(None, description="the LLM server's base URL; None: the provider's")
    api_key_env: str = Field("ORCHESTRATOR_LLM_API_KEY",
                             description="environment variable that holds the LLM API key")
    allowed_llms: list[str | AllowedLLM] = Field(
        default_factory=list, description="LLMs a request may pick (agent.llm) besides 'llm' and "
        "'offline': names, or tables with name, model, base_url, api_key_env")
    rounds: int = Field(3, ge=0, le=10, description="critic and repair rounds at most")
    timeout_s: float = Field(60.0, gt=0, le=600, description="timeout of one LLM request")
    retries: int = Field(2, ge=0, le=10, description="retries of a failed LLM request")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="LLM sampling temperature")
    context_tokens: int = Field(4096, ge=0, le=2_000_000, description="the LLM's context window: each "
                                "call's messages (estimated) and answer fit in it; 0: no bound")
    embedding_model: str | None = Field(
        None, description="local sentence-embedding model (folder or HF cache name) for prompt "
                          "labels; never downloaded")
    default_model: str | None = Field(None, description="model that replaces unknown model names")
    scores: Path | None = Field(None, description="score table file; default <state_dir>/agent/scores.sqlite")
    scorer: str | None = Field(None, description="an ONNX image-scoring model (file or registered name): "
                                                 "planned graphs score their image, and each score "
                                                 "updates the score table")

    def llm_names(self) -> list[str]:
        """What a request may send as ``agent.llm`` (besides leaving it out)."""
        names = ["offline"] + ([self.llm] if self.llm else [])
        names += [e if isinstance(e, str) else e.name for e in self.allowed_llms]
        return list(dict.fromkeys(names))

    def pick_llm(self, name: str | None) -> AllowedLLM | None:
        """The LLM a request's ``agent.llm`` picks: ``None`` for the offline planner; the
        configured ``llm`` (with ``base_url`` and ``api_key_env``) when ``name`` is None or
        it; else the allow-list entry of that exact name. ``LookupError`` for anything else.

        >>> a = AgentSettings(llm="ollama/llama3.1", allowed_llms=["ollama/qwen2.5"])
        >>> a.pick_llm(None).api_key_env, a.pick_llm("ollama/qwen2.5").api_key_env
        ('ORCHESTRATOR_LLM_API_KEY', None)
        >>> a.pick_llm("openai/gpt-4o")
        Traceback (most recent call last):
        LookupError: not an allowed LLM
        """
        if name == "offline" or (name is None and not self.llm):
            return None
        if name is None or name == self.llm:
            return AllowedLLM(name=self.llm, model=self.llm, base_url=self.base_url,  # type: ignore[arg-type]
                              api_key_env=self.api_key_env)
        for entry in self.allowed_llms:
            entry = AllowedLLM(name=entry) if isinstance(entry, str) else entry
            if entry.name == name:
                return entry
        raise LookupError("not an allowed LLM")


class CacheSettings(BaseModel):
    """The result cache of both engines (``[cache]`` in the TOML file): LRU, bounded twice."""

    model_config = ConfigDict(extra="forbid")

    max_entries: int = Field(256, ge=0, le=1_000_000, description="node results kept at most; 0: no cache")
    max_bytes: int | None = Field(None, ge=0, description="bytes of node results kept at most (arrays, "
                                                          "tensors, images measured); None: 1/8 of the "
                                                          "machine's memory, at most 4 GiB")


class BatchingSettings(BaseModel):
    """Cross-job batching of UNet calls (``[batching]`` in the TOML file): concurrent compatible
    denoise steps of several jobs on one worker run as one batched call
    (:mod:`orchestrator.runtime.batching`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="batch compatible UNet calls of concurrent jobs")
    max_batch: int = Field(8, ge=1, le=64, description="UNet calls (jobs) merged into one at most; also "
                                                       "how many batching nodes a worker runs at once")
    max_wait_ms: float = Field(5.0, ge=0.0, le=1000.0, description="the longest a batch waits for the "
                                                                   "next call (only while other "
                                                                   "jobs are mid-step; a lone job "
                                                                   "never waits)")

    @property
    def effective_max_batch(self) -> int:
        """``max_batch``, or 1 when batching is off."""
        return self.max_batch if self.enabled else 1


class ServerSettings(BaseModel):
    """Connection limits of the HTTP server (``[server]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid")

    header_timeout_s: float = Field(10.0, gt=0, le=3600, description="a request's headers must arrive "
                                                                      "this soon after it starts")
    body_timeout_s: float = Field(60.0, gt=0, le=3600, description="a request's body must arrive this "
                                                                    "soon after its headers")
    send_timeout_s: float = Field(60.0, gt=0, le=3600, description="a client that reads nothing of an "
                                                                    "answer for this long is cut off")
    max_connections: int = Field(256, ge=4, le=65536, description="open connections at most; beyond, "
                                                                   "the longest-idle one is closed, or "
                                                                   "the new one gets 503")
    max_streams: int | None = Field(None, ge=1, le=65536, description="event streams open at once; "
                                                                       "beyond: 429; None: a quarter "
                                                                       "of max_connections")

    @property
    def effective_max_streams(self) -> int:
        return self.max_streams if self.max_streams is not None else max(1, self.max_connections // 4)

    @model_validator(mode="after")
    def _streams_leave_room(self) -> ServerSettings:
        if self.max_streams is not None and self.max_streams >= self.max_connections:
            raise ValueError(f"max_streams ({self.max_streams}) must be below max_connections "
                             f"({self.max_connections}): streams must leave room for the API")
        return self


class RetentionSettings(BaseModel):
    """What finished jobs the daemon keeps (``[retention]`` in the TOML file).

    Queued and running jobs are never pruned, nor the ``keep_latest`` newest finished ones.
    """

    model_config = ConfigDict(extra="forbid")

    max_age_days: float | None = Field(30.0, gt=0, le=100_000, description="finished jobs older than "
                                                                           "this are pruned; None: any age")
    max_jobs: int | None = Field(10_000, ge=1, description="finished jobs kept at most; None: no count limit")
    max_output_bytes: int | None = Field(20 << 30, ge=0, description="bytes of job output folders kept "
                                                                     "at most; None: no disk budget")
    keep_latest: int = Field(10, ge=0, description="the newest finished jobs, never pruned automatically")
    interval_s: float = Field(600.0, gt=0, le=86_400, description="automatic pruning runs this often, "
                                                                  "and after jobs finish")
    auto: bool = Field(True, description="prune automatically in the daemon")
    max_progress_events: int = Field(1000, ge=10, description="step/tile events kept per job (the "
                                                              "newest); other events are all kept")


class Settings(BaseModel):
    """The effective settings of the CLI and the daemon."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(
        default_factory=lambda: Path(os.path.expanduser("~/.local/state/orchestrator")),
        description="SQLite store, outputs, logs",
    )
    cache_dir: Path | None = Field(None, description="model cache; default <state_dir>/cache")
    input_dir: Path | None = Field(None, description="the only folder the daemon's graphs read input "
                                                     "files from (uploads go there); default "
                                                     "<state_dir>/inputs. `orchestrator run` reads "
                                                     "relative to the graph file unless it is set")
    device: str = Field("auto", description="'auto', 'cpu' or 'cuda[:N]'")
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    models: list[dict[str, Any]] = Field(default_factory=list, description="model entries")
    model_files: ModelFileSettings = Field(default_factory=lambda: ModelFileSettings())
    host: str = Field("127.0.0.1", description="HTTP bind address")
    port: int = Field(8188, ge=0, le=65535, description="HTTP port")
    token: str | None = Field(None, description="bearer token required by the HTTP API (from the "
                                                "config file or ORCHESTRATOR_TOKEN, never a flag)")
    token_file: Path | None = Field(None, description="file holding the token (mode 0600, yours)")
    ray_address: str | None = Field(None, description="join this Ray cluster; default: local")
    workers: int = Field(0, ge=0, description="CPU workers when there is no GPU; 0: auto")
    engine: str = Field("ray", pattern="^(ray|local)$", description="'ray' or 'local' (in-process)")
    allowed_hosts: list[str] = Field(default_factory=list, description="extra Host header names")
    allowed_origins: list[str] = Field(default_factory=list,
                                       description="extra browser origins (scheme://host:port) allowed "
                                                   "to call the API, e.g. a reverse proxy's")
    limits: Limits = Field(default_factory=lambda: Limits())
    agent: AgentSettings = Field(default_factory=AgentSettings)
    cache: CacheSettings = Field(default_factory=lambda: CacheSettings())
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())
    retention: RetentionSettings = Field(default_factory=lambda: RetentionSettings())
    batching: BatchingSettings = Field(default_factory=lambda: BatchingSettings())

    @property
    def effective_cache_dir(self) -> Path:
        return self.cache_dir or self.state_dir / "cache"

    @property
    def effective_input_dir(self) -> Path:
        """The daemon's input folder: ``input_dir``, else ``<state_dir>/inputs``."""
        return self.input_dir or self.state_dir / "inputs"

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover - torch is a dependency
            return "cpu"

    def effective_token(self) -> str | None:
        """The token: ``token`` or the first line of ``token_file`` (which only its owner may read).

        Raises :class:`ConfigError` for a token file that others can read or that is missing.
        """
        if self.token or self.token_file is None:
            return self.token
        return read_token_file(self.token_file)

    def show(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["cache_dir"] = str(self.effective_cache_dir)
        if out.get("token"):
            out["token"] = "***"
        return out


def read_token_file(path: Path) -> str:
    """The token in ``path``: refused when the file is readable by the group or others."""
    import stat

    try:
        st = os.stat(path)
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"token_file {str(path)!r} cannot be read: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"token_file {str(path)!r} is readable by other users "
                          f"(mode {stat.S_IMODE(st.st_mode):o}): chmod 600 it")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise ConfigError(f"token_file {str(path)!r} belongs to another user")
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ConfigError(f"token_file {str(path)!r} is empty")
    return token


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    list_fields = {("plugins", "allow"), ("plugins", "extra"), ("allowed_hosts",), ("allowed_origins",),
                   ("model_files", "roots"), ("model_files", "extra_model_paths")}
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
