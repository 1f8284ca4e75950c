"""Hostile requests an untrusted local client can send, by kind, and whether the daemon refused each.

Used by the soak (``python -m bench soak``) against a running daemon. A request is *refused*
when it gets a 4xx with the usual error dicts (never a 500, never a dropped connection, except
for bodies over the size limit, which may be cut off), or, for the few things only a running
block can see (a symlink planted in the input folder), when its job fails with a structured
error and writes nothing. Nothing may leak: no answer carries the content of a file outside the
input folder (``/etc/passwd``, the store) or a host path.

Each case is ``(kind, name, request)``; :func:`run_hostile` returns one row per case:
``{"kind", "input", "status", "refused", "seconds"}``, plus the ids of jobs that a hostile
request created and that must end ``failed`` (the caller checks them with the others).
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MiB = 1 << 20
JSON = {"Content-Type": "application/json"}
SECRETS = (b"root:x:", b"SQLite format", b"PRIVATE KEY")


def _png_header_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


def _load(block: str, **params: Any) -> dict[str, Any]:
    return {"graph": {"nodes": {"a": {"block": block, "params": params}}}}


def _one(block: str, **params: Any) -> dict[str, Any]:
    return {"json": _load(block, **params)}


@dataclass
class Case:
    kind: str
    name: str
    method: str = "POST"
    path: str = "/jobs"
    kw: dict[str, Any] = field(default_factory=dict)
    runtime: bool = False  # may be accepted, then its job must fail with nothing written


def cases(job_id: str, output_job: str) -> list[Case]:
    """Every hostile case; ``job_id``/``output_job`` name an existing job (one with an output)."""
    raw = lambda body: {"content": body, "headers": JSON}  # noqa: E731
    out = [
        # -- bodies
        Case("body", "malformed JSON", kw=raw(b"{bad json")),
        Case("body", "wrong content type", kw={"content": b'{"graph": {}}',
                                               "headers": {"Content-Type": "text/plain"}}),
        Case("body", "huge body (5 MiB)", kw=raw(b"x" * (5 * MiB))),
        Case("body", "JSON nested 50,000 deep", kw=raw(b"[" * 50000 + b"]" * 50000)),
        Case("body", "JSON nested 200 deep in params", kw=raw(
            b'{"graph": {"nodes": {"a": {"block": "test.slow", "params": {"x": ' + b"[" * 200
            + b"]" * 200 + b"}}}}}")),
        Case("body", "NaN in params", kw=raw(b'{"graph": {"nodes": {"a": {"block": "image.solid", '
                                             b'"params": {"width": NaN}}}}}')),
        Case("body", "Infinity in params", kw=raw(b'{"graph": {"nodes": {"a": {"block": "image.solid", '
                                                  b'"params": {"width": Infinity}}}}}')),
        Case("body", "-Infinity as priority", kw=raw(b'{"graph": {"nodes": {}}, "priority": -Infinity}')),
        Case("body", "5,000-digit integer", kw=raw(b'{"graph": {"nodes": {"a": {"block": "image.solid", '
                                                   b'"params": {"width": ' + b"9" * 5000 + b"}}}}}")),
        # -- graphs
        Case("graph", "graph with a cycle", kw={"json": {"graph": {"nodes": {
            "a": {"block": "image.grayscale", "inputs": {"image": "b.image"}},
            "b": {"block": "image.grayscale", "inputs": {"image": "a.image"}}}}}}),
        Case("graph", "unknown block", kw=_one("nope.nothing")),
        Case("graph", "type mismatch", kw={"json": {"graph": {"nodes": {
            "m": {"block": "image.load_mask", "params": {"path": "x.png"}},
            "g": {"block": "image.grayscale", "inputs": {"image": "m.mask"}}}}}}),
        Case("graph", "10,000 nodes", kw={"json": {"graph": {"nodes": {
            f"n{i}": {"block": "image.solid"} for i in range(10_000)}}}}),
        # -- limits
        Case("limits", "width=10**6", kw=_one("image.solid", width=10**6, height=10**6)),
        Case("limits", "width=1e9 (a float)", kw=_one("image.solid", width=1e9, height=64)),
        Case("limits", "width=9000.0 x height=9000.0", kw=_one("image.solid", width=9000.0, height=9000.0)),
        Case("limits", "steps=10**9", kw=_one("test.slow", steps=10**9)),
        Case("limits", "steps=1e9 (a float)", kw=_one("test.slow", steps=1e9)),
        Case("limits", "batch x pixels", kw=_one("image.solid", width=4096, height=4096, batch=64)),
        Case("limits", "pad 10**6 pixels", kw={"json": {"graph": {"nodes": {
            "a": {"block": "image.solid", "params": {"width": 64, "height": 64}},
            "p": {"block": "image.pad", "inputs": {"image": "a.image"}, "params": {"right": 10**6}}}}}}),
        Case("limits", "resize scale 1000", kw={"json": {"graph": {"nodes": {
            "a": {"block": "image.solid", "params": {"width": 64, "height": 64}},
            "r": {"block": "image.resize", "inputs": {"image": "a.image"}, "params": {"scale": 1000}}}}}}),
        Case("limits", "prompt job asking for 16384 x 16384", kw={"json": {
            "prompt": "a fox", "agent": {"width": 16384, "height": 16384}}}),
        # -- paths a graph names
        *[Case("paths", f"image.load {p!r}", kw=_one("image.load", path=p), runtime=True) for p in (
            "/etc/passwd", "../../../../etc/passwd", "~/.ssh/id_rsa", "file:///etc/passwd",
            "%2e%2e/%2e%2e/etc/passwd", "..\\..\\jobs.db", "C:\\Windows\\win.ini", "inputs/../../jobs.db",
            "ok.png\0/etc/passwd", "/dev/zero", "planted-link.png")],
        Case("paths", "image.load_mask '/proc/self/environ'",
             kw=_one("image.load_mask", path="/proc/self/environ"), runtime=True),
        # -- model names
        *[Case("models", f"{block} {field_}={value!r}", kw=_one(block, **{field_: value}), runtime=True)
          for block, field_, value in (
              ("sd.encode_prompt", "model", "/etc/passwd"),
              ("sd.encode_prompt", "model", "../../jobs.db"),
              ("sd.encode_prompt", "model", "~/models/x.safetensors"),
              ("onnx.run", "model", "/etc/hosts"),
              ("onnx.run", "model", "file:///etc/hosts"))],
        Case("models", "LoRA path /etc/passwd", kw=_one(
            "sd.encode_prompt", prompt="x", model={"name": "tiny-sd",
                                                   "loras": [{"path": "/etc/passwd", "weight": 1.0}]}),
             runtime=True),
        # -- the LLM is the operator's
        Case("llm", "agent options setting an API base", kw={"json": {"prompt": "a fox", "agent": {
            "api_base": "http://attacker.example", "headers": {"X": "1"}}}}),
        Case("llm", "agent.llm not on the allow-list", kw={"json": {"prompt": "a fox", "agent": {
            "llm": "openai/gpt-4o"}}}),
        Case("llm", "agent.llm with an api_base in it", kw={"json": {"prompt": "a fox", "agent": {
            "llm": "openai/x?api_base=http://attacker.example"}}}),
        Case("llm", "agent.template unknown", kw={"json": {"prompt": "a fox", "agent": {
            "template": "../../etc/passwd"}}}),
        # -- numbers and ids in the URL
        Case("numbers", "offset=10**30", "GET", "/jobs", {"params": {"offset": str(10**30)}}),
        Case("numbers", "limit in Arabic-Indic digits", "GET", "/jobs",
             {"params": {"limit": "\u0661\u0660"}}),
        Case("numbers", "Last-Event-ID 10**25", "GET", f"/jobs/{job_id}/events",
             {"headers": {"Last-Event-ID": str(10**25)}, "params": {"format": "json"}}),
        Case("numbers", "Last-Event-ID in fullwidth digits", "GET", f"/jobs/{job_id}/events",
             {"headers": {"Last-Event-ID": "\uff11\uff12".encode()}, "params": {"format": "json"}}),
        Case("numbers", "after=-1", "GET", f"/jobs/{job_id}/events", {"params": {"after": "-1"}}),
        Case("numbers", "job id of 60,000 characters", "GET", "/jobs/" + "a" * 60_000),  # httpx: < 64 KiB
        Case("numbers", "job id with a NUL", "GET", "/jobs/ab%00cd"),
        # -- HTTP
        Case("http", "forged Host", kw={"json": {"prompt": "a fox"},
                                         "headers": {"Host": "attacker.example"}}),
        Case("http", "Origin: null", kw={"json": {"prompt": "a fox"}, "headers": {"Origin": "null"}}),
        Case("http", "cross-site Origin", kw={"json": {"prompt": "a fox"},
                                               "headers": {"Origin": "https://attacker.example"}}),
        Case("http", "Origin of another port on this host", kw={"json": {"prompt": "a fox"},
                                                                 "headers": {"Origin": "http://127.0.0.1:1"}}),
        # -- uploads
        Case("uploads", "upload: text, not an image", path="/inputs",
             kw={"files": {"file": ("a.png", b"hello, not an image", "image/png")}}),
        Case("uploads", "upload: SVG with a script", path="/inputs",
             kw={"files": {"file": ("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script>"
                                             b"</svg>", "image/svg+xml")}}),
        Case("uploads", "upload: PNG decompression bomb", path="/inputs",
             kw={"files": {"file": ("bomb.png", _png_header_bomb(), "image/png")}}),
        Case("uploads", "upload: 60 MiB", path="/inputs",
             kw={"files": {"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (60 * MiB), "image/png")}}),
        Case("uploads", "upload: filename ../../x.png", path="/inputs",
             kw={"files": {"file": ("../../x.png", b"not even a png", "image/png")}}),
        Case("uploads", "upload: subfolder ../..", path="/inputs",
             kw={"files": {"file": ("a.png", _png_header_bomb(8, 8), "image/png")},
                 "data": {"subfolder": "../.."}}),
    ]
    ws = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    out += [
        # -- retention: a client that cannot prove to be the operator runs only the configured policy
        Case("prune", "prune everything (max_jobs 0, keep 0)", path="/jobs/prune",
             kw={"json": {"max_jobs": 0, "keep_latest": 0}}),
        Case("prune", "prune older than 0 s", path="/jobs/prune", kw={"json": {"older_than_s": 0}}),
        Case("prune", "prune with NaN", path="/jobs/prune", kw=raw(b'{"older_than_s": NaN}')),
        # -- ComfyUI's protocol on the same port: same rules
        Case("comfy", "POST /prompt with NaN", path="/prompt",
             kw=raw(b'{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": NaN}}}}')),
        Case("comfy", "POST /prompt LoadImage ../../etc/passwd", path="/prompt", kw={"json": {"prompt": {
            "1": {"class_type": "LoadImage", "inputs": {"image": "../../etc/passwd"}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}}}),
        Case("comfy", "GET /view output ../../jobs.db", "GET", "/view",
             {"params": {"filename": "../../jobs.db", "type": "output"}}),
        Case("comfy", "GET /view input /etc/passwd", "GET", "/view",
             {"params": {"filename": "/etc/passwd", "type": "input"}}),
        Case("comfy", "GET /view subfolder ../../..", "GET", "/view",
             {"params": {"filename": "passwd", "subfolder": "../../../etc", "type": "input"}}),
        Case("comfy", "POST /upload/image subfolder ../..", path="/upload/image",
             kw={"files": {"image": ("a.png", b"not an image", "image/png")},
                 "data": {"subfolder": "../.."}}),
        Case("comfy", "websocket from a cross-site Origin", "GET", "/ws",
             {"headers": {**ws, "Origin": "https://attacker.example"}}),
        Case("comfy", "websocket with a forged Host", "GET", "/ws",
             {"headers": {**ws, "Host": "attacker.example"}}),
    ]
    for name in ["../jobs.db", "..%2Fjobs.db", "%2e%2e%2fjobs.db", "/etc/passwd", "..\\jobs.db", "out%00.png",
                 "%2E%2E"]:
        out.append(Case("outputs", f"output name {name!r}", "GET", f"/jobs/{output_job}/outputs/{name}"))
    return out


Rows = list[dict[str, Any]]


def run_hostile(url: str, state: Path, job_id: str, output_job: str,
                wait_failed: Callable[[list[str]], dict[str, dict]]) -> tuple[Rows, list[str]]:
    """Send every case; ``(rows, ids of jobs that hostile requests created)``.

    ``state`` is the daemon's state directory: a symlink to ``/etc/passwd`` is planted in its
    input folder first (only a running block can see where a link leads).
    """
    inputs = state / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    link = inputs / "planted-link.png"
    if not link.is_symlink():
        link.symlink_to("/etc/passwd")
    rows: list[dict[str, Any]] = []
    created: dict[str, dict[str, Any]] = {}
    for case in cases(job_id, output_job):
        t0 = time.monotonic()
        try:
            r = httpx.request(case.method, f"{url}{case.path}", timeout=120, **case.kw)
            status: int | str = r.status_code
            body = r.content
        except httpx.HTTPError as exc:  # a connection cut short is a refusal only for huge bodies
            status, body = f"closed ({type(exc).__name__})", b""
        leaked = any(secret in body for secret in SECRETS) or str(state).encode() in body
        if isinstance(status, str):
            refused = "huge" in case.name or "MiB" in case.name
        elif case.runtime and status in (200, 201) and case.method == "POST":
            refused = False  # decided below, when its job is final
            created[r.json()["id"]] = {"case": case, "status": status}
        else:
            refused = 400 <= status < 500 and _structured(body)
        rows.append({"kind": case.kind, "input": case.name, "status": status,
                     "refused": refused and not leaked, "seconds": round(time.monotonic() - t0, 3)})
    if created:
        final = wait_failed(list(created))
        for job_id_, info in final.items():
            row = next(x for x in rows if x["input"] == created[job_id_]["case"].name)
            errors = info.get("errors") or []
            text = str(errors)
            row["status"] = f"job {info['state']}: {errors[0].get('type') if errors else '-'}"
            row["refused"] = (info["state"] == "failed" and bool(errors) and not info.get("outputs")
                              and "root:x:" not in text)
    return rows, list(created)


def _structured(body: bytes) -> bool:
    import json

    try:
        errors = json.loads(body)["errors"]
        return bool(errors) and all({"type", "message"} <= set(e) for e in errors)
    except (ValueError, KeyError, TypeError):
        return False


def by_kind(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """``{kind: (tried, refused)}``."""
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        tried, refused = out.get(r["kind"], (0, 0))
        out[r["kind"]] = (tried + 1, refused + bool(r["refused"]))
    return out
