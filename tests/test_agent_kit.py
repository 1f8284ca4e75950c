"""Test kit for the agent tests: a small catalog of block specs, a tiled template, and a
scripted OpenAI-compatible LLM server on 127.0.0.1 (stdlib ``http.server`` in a thread).

Other ``test_agent_*`` modules import it (``from test_agent_kit import ...``); its own
tests check the kit itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graphs import BlockSpec, Graph, PortSpec, Template, register_port_type, validate

register_port_type("RNG", description="random-number generator state")  # as plugins.sd declares it


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


ModelRef = str | dict[str, Any]


class EncodeParams(_P):
    model: ModelRef = "tiny-sd"
    prompt: str = Field("", max_length=10000)
    negative_prompt: str | None = None


class LatentParams(_P):
    model: ModelRef = "tiny-sd"
    width: int = Field(512, ge=8, le=16384)
    height: int = Field(512, ge=8, le=16384)
    batch: int = Field(1, ge=1, le=64)


class DenoiseParams(_P):
    model: ModelRef = "tiny-sd"
    steps: int = Field(20, ge=1, le=1000)
    cfg: float = Field(7.5, ge=0.0, le=50.0)
    sampler: Literal["default", "ddim", "euler", "euler_a", "dpmpp_2m", "lcm"] = "default"
    strength: float = Field(1.0, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=0)


class UpscaleParams(_P):
    scale: float = Field(2.0, gt=0.0, le=8.0)
    mode: Literal["nearest", "bilinear", "bicubic"] = "bilinear"


class VaeParams(_P):
    model: ModelRef = "tiny-sd"


class VaeEncodeParams(_P):
    model: ModelRef = "tiny-sd"
    seed: int | None = Field(None, ge=0)


class LoadParams(_P):
    path: str = Field(..., min_length=1)


class ResizeParams(_P):
    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)


class SaveParams(_P):
    name: str = Field("image", pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")


def _spec(id: str, inputs: dict[str, str], outputs: dict[str, str], params: type[BaseModel] | None,
          tiling: str | None = None, device: str = "cpu", description: str = "") -> BlockSpec:
    ins = tuple(PortSpec(n.rstrip("?"), t, optional=n.endswith("?")) for n, t in inputs.items())
    return BlockSpec(id=id, version="1.0.0", description=description or id, inputs=ins,
                     outputs=tuple(PortSpec(n, t) for n, t in outputs.items()),
                     params_model=params, tiling=tiling, device=device, plugin="test")


def make_catalog() -> dict[str, BlockSpec]:
    """The blocks of the SD and image plugins the templates use, as specs (no runtime), with
    the tiling the tiling issue gives ``sd.denoise`` and ``sd.vae_decode``."""
    specs = [
        _spec("sd.encode_prompt", {}, {"cond": "CONDITIONING"}, EncodeParams, device="gpu",
              description="Encode a prompt and a negative prompt."),
        _spec("sd.empty_latent", {}, {"latent": "LATENT"}, LatentParams,
              description="An empty latent of a size."),
        _spec("sd.denoise", {"cond": "CONDITIONING", "latent": "LATENT", "rng?": "RNG"},
              {"latent": "LATENT"}, DenoiseParams, tiling="multidiffusion", device="gpu",
              description="Denoise a latent."),
        _spec("sd.inpaint", {"cond": "CONDITIONING", "image": "IMAGE", "mask": "MASK"},
              {"latent": "LATENT"}, DenoiseParams, device="gpu", description="Inpaint a region."),
        _spec("sd.latent_upscale", {"latent": "LATENT"}, {"latent": "LATENT"}, UpscaleParams),
        _spec("sd.vae_decode", {"latent": "LATENT"}, {"image": "IMAGE"}, VaeParams, tiling="vae",
              device="gpu", description="Decode a latent to an image."),
        _spec("sd.vae_encode", {"image": "IMAGE"}, {"latent": "LATENT", "rng": "RNG"}, VaeEncodeParams,
              device="gpu"),
        _spec("image.load", {}, {"image": "IMAGE"}, LoadParams),
        _spec("image.load_mask", {}, {"mask": "MASK"}, LoadParams),
        _spec("image.resize", {"image": "IMAGE"}, {"image": "IMAGE"}, ResizeParams),
        _spec("image.save", {"image": "IMAGE"}, {}, SaveParams),
    ]
    return {s.id: s for s in specs}


def _template(name: str, description: str, labels: dict[str, list[str]], nodes: dict[str, Any]
              ) -> Template:
    graph = Graph.from_dict({"meta": {"name": name, "description": description, "labels": labels},
                             "nodes": nodes})
    return Template(name, description, labels, graph)


M = {"model": "tiny-sd"}
SAVE = {"block": "image.save", "inputs": {"image": "decode.image"}, "params": {"name": "out"}}
DECODE = {"block": "sd.vae_decode", "inputs": {"latent": "denoise.latent"}, "params": M}
SAMPLER = {**M, "steps": 4, "cfg": 7.5, "sampler": "ddim", "seed": 7}


def _encode(prompt: str, negative: str | None = "") -> dict[str, Any]:
    params = {**M, "prompt": prompt} | ({} if negative is None else {"negative_prompt": negative})
    return {"block": "sd.encode_prompt", "params": params}


def make_templates(*, panorama: bool = True) -> dict[str, Template]:
    """Copies of the library's templates as they stand (frozen here, so that changes to the
    library do not move these tests), plus a tiled panorama template."""
    found = [
        _template("txt2img", "Text to image: the general-purpose default.",
                  {"subjects": ["people", "animals", "wildlife", "nature", "urban", "objects", "food"],
                   "styles": ["photo-realistic", "illustration", "anime", "painting"]}, {
            "cond": _encode("a red fox", ""),
            "latent": {"block": "sd.empty_latent", "params": {**M, "width": 64, "height": 64, "batch": 1}},
            "denoise": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "latent.latent"},
                        "params": SAMPLER},
            "decode": DECODE, "save": SAVE}),
        _template("hires_fix", "Two-pass high resolution. For large, detailed images of a single scene.",
                  {"subjects": ["people", "wildlife", "nature", "urban", "landscapes"],
                   "styles": ["photo-realistic", "painting", "detailed"]}, {
            "cond": _encode("a lake", "blurry"),
            "latent": {"block": "sd.empty_latent", "params": {**M, "width": 64, "height": 64, "batch": 1}},
            "base": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "latent.latent"},
                     "params": SAMPLER},
            "upscale": {"block": "sd.latent_upscale", "inputs": {"latent": "base.latent"},
                        "params": {"scale": 2.0, "mode": "bicubic"}},
            "denoise": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "upscale.latent"},
                        "params": {**SAMPLER, "strength": 0.5, "seed": 8}},
            "decode": DECODE, "save": SAVE}),
        _template("img2img", "Image to image: restyle or refine an existing picture.",
                  {"subjects": ["people", "animals", "nature", "urban", "objects"],
                   "styles": ["painting", "illustration", "anime", "photo-realistic"]}, {
            "load": {"block": "image.load", "params": {"path": "input.png"}},
            "resize": {"block": "image.resize", "inputs": {"image": "load.image"},
                       "params": {"width": 64, "height": 64}},
            "encode": {"block": "sd.vae_encode", "inputs": {"image": "resize.image"},
                       "params": {**M, "seed": 7}},
            "cond": _encode("a harbour", ""),
            "denoise": {"block": "sd.denoise", "params": {**M, "steps": 4, "strength": 0.6},
                        "inputs": {"cond": "cond.cond", "latent": "encode.latent", "rng": "encode.rng"}},
            "decode": DECODE, "save": SAVE}),
        _template("inpaint", "Inpainting: repaint the white area of a mask.",
                  {"subjects": ["people", "objects", "urban", "nature"],
                   "styles": ["photo-realistic", "edit"]}, {
            "load": {"block": "image.load", "params": {"path": "input.png"}},
            "mask": {"block": "image.load_mask", "params": {"path": "mask.png"}},
            "cond": _encode("a bench", ""),
            "denoise": {"block": "sd.inpaint", "inputs": {"cond": "cond.cond", "image": "load.image",
                                                           "mask": "mask.mask"}, "params": SAMPLER},
            "decode": DECODE, "save": SAVE}),
    ]
    if panorama:
        found.append(_template(
            "panorama", "Wide panoramas with MultiDiffusion tiles.",
            {"subjects": ["landscapes", "nature", "urban"], "styles": ["photo-realistic"],
             "formats": ["wide"]}, {
                "cond": _encode("a lake", None),
                "latent": {"block": "sd.empty_latent", "params": {**M, "width": 256, "height": 64}},
                "denoise": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "latent.latent"},
                            "params": {**M, "steps": 4, "seed": 1}, "tile": {"size": 64, "overlap": 16}},
                "decode": {**DECODE, "tile": {"size": 64, "overlap": 16}}, "save": SAVE}))
    return {t.name: t for t in found}


def txt2img_doc(**changes: Any) -> dict[str, Any]:
    """The txt2img test template as a dict, with node params changed: ``node={...}``."""
    doc = json.loads(json.dumps(make_templates()["txt2img"].graph.to_dict()))
    doc.pop("meta", None)
    for node, params in changes.items():
        doc["nodes"][node]["params"].update(params)
    return doc


# -- a scripted OpenAI-compatible server ------------------------------------------------

Answer = str | dict[str, Any] | tuple[int, str] | Callable[[dict[str, Any]], Any]


class ScriptedLLM:
    """An OpenAI-compatible chat server answering from a script, one entry per request.

    An entry is the answer's content (a string, or a dict sent as JSON), ``(status, body)``
    for an HTTP error, or a callable ``body -> entry``. ``requests`` records every request
    (path, headers, body). When the script runs out, ``default`` answers.
    """

    def __init__(self, script: list[Answer] | None = None, *, default: Answer | None = None,
                 delay: float = 0.0, usage: tuple[int, int] = (100, 20)) -> None:
        self.script = list(script or [])
        self.default = default
        self.delay = delay
        self.usage = usage
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        kit = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with kit._lock:
                    kit.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    entry = kit.script.pop(0) if kit.script else kit.default
                if callable(entry):
                    entry = entry(body)
                if kit.delay:
                    time.sleep(kit.delay)
                if isinstance(entry, tuple):
                    status, text = entry
                    self._send(status, json.dumps({"error": {"message": text, "type": "server_error"}}))
                    return
                content = entry if isinstance(entry, str) else json.dumps(entry)
                prompt_tokens, completion_tokens = kit.usage
                self._send(200, json.dumps({
                    "id": f"chatcmpl-{len(kit.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", "scripted"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens}}))

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self, script: list[Answer] | None = None, *, default: Answer | None = None,
              delay: float = 0.0, usage: tuple[int, int] = (100, 20)) -> ScriptedLLM:
        """A new script on the same server (clients cache connections per base URL)."""
        with self._lock:
            self.script, self.default, self.delay, self.usage = list(script or []), default, delay, usage
            self.requests = []
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> ScriptedLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def user_messages(self) -> list[str]:
        return [m["content"] for r in self.requests for m in r["body"]["messages"] if m["role"] == "user"]


# -- the kit's own tests ----------------------------------------------------------------


def test_test_templates_are_valid_against_the_test_catalog() -> None:
    catalog = make_catalog()
    for template in make_templates().values():
        validate(template.graph, catalog)


def test_scripted_server_answers_in_order_and_records_requests() -> None:
    import urllib.request

    with ScriptedLLM(["one", {"two": 2}, (500, "boom")]) as llm:
        out = []
        for _ in range(3):
            req = urllib.request.Request(llm.base_url + "/chat/completions", method="POST",
                                         data=json.dumps({"model": "m", "messages": []}).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    out.append(json.loads(resp.read())["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as exc:
                out.append(exc.code)
    assert out == ["one", '{"two": 2}', 500]
    assert len(llm.requests) == 3 and llm.requests[0]["path"] == "/v1/chat/completions"


# -- a planner on the real plugins with one SD-1 checkpoint configured (the tests of users' words) --------

SD1 = {"name": "dreamy-sd15", "kind": "checkpoint", "family": "sd1", "origin": "folder"}


def sd1_planner() -> Any:
    """A :class:`~agents.planner.Planner` over the installed plugins, with ``SD1`` as the default model."""
    from agents.context import PlanningContext, models_from_entries
    from agents.planner import Planner
    from orchestrator.plugins import load_plugins

    host = load_plugins()
    ctx = PlanningContext.build(host.catalog, host.templates, models=models_from_entries([SD1]),
                                default_model="dreamy-sd15")
    return Planner(ctx)


def refused_roles(planner: Any, prompt: str) -> set[str]:
    """The input roles the refusal of ``prompt`` (planned without files) names; fails if it is planned."""
    import pytest

    from agents.errors import AgentError

    with pytest.raises(AgentError) as info:
        planner.plan(prompt)
    roles: set[str] = set()
    for e in info.value.details.get("errors") or [info.value.to_dict()]:
        roles.update(e.get("roles") or [])
    return roles
