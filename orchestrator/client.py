"""Python clients for the daemon: :class:`Client` (sync) and :class:`AsyncClient`.

Light: httpx and pydantic only, no Ray or torch. The daemon's address comes from the
argument, ``$ORCHESTRATOR_URL``, or the ``daemon.json`` of the state directory; the token
from the argument or ``$ORCHESTRATOR_TOKEN``.

    from orchestrator import Client

    with Client() as client:
        job = client.submit(graph=my_graph, priority=5)
        for event in job.events():
            print(event["event"], event.get("node"), event.get("step"))
        job.save("outputs")

HTTP errors become :class:`ClientError` subclasses carrying the daemon's structured error
dicts (``.errors``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from orchestrator.protocol import (
    BLOCKS,
    FINAL_STATES,
    HEALTH,
    IDEMPOTENCY_HEADER,
    INPUTS,
    JOB,
    JOB_CANCEL,
    JOB_EVENTS,
    JOB_OUTPUT,
    JOB_RATING,
    JOBS,
    JOBS_PRUNE,
    METRICS,
    MODELS,
    TEMPLATES,
    TOKEN_ENV,
    URL_ENV,
)


class ClientError(Exception):
    """The daemon answered with an error: ``status`` and the structured ``errors``."""

    def __init__(self, status: int, errors: list[dict[str, Any]], retry_after: float | None = None):
        self.status = status
        self.errors = errors
        self.retry_after = retry_after
        first = errors[0]["message"] if errors else f"HTTP {status}"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{status}: {first}{more}")


class BadRequest(ClientError):
    """400/413/422: the request or its graph is invalid (``errors`` says where)."""


class Unauthorized(ClientError):
    """401: missing or wrong token."""


class Forbidden(ClientError):
    """403/421: refused by the Host/Origin checks."""


class NotFound(ClientError):
    """404: no such job or output."""


class Conflict(ClientError):
    """409: the Idempotency-Key was used with a different body."""


class Unavailable(ClientError):
    """429/503: the queue is full or the daemon is stopping; see ``retry_after``."""


class ConnectionFailed(ClientError):
    """The daemon could not be reached."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
              413: BadRequest, 421: Forbidden, 422: BadRequest, 429: Unavailable, 503: Unavailable}


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = [{"type": "http", "message": resp.text[:500] or resp.reason_phrase,
                   "node": None, "field": None}]
    retry = resp.headers.get("retry-after")
    cls = _BY_STATUS.get(resp.status_code, ClientError)
    raise cls(resp.status_code, errors, float(retry) if retry and retry.isdigit() else None)


def resolve_url(url: str | None, state_dir: str | Path | None = None) -> str:
    """The daemon URL: argument, ``$ORCHESTRATOR_URL``, or the state directory's daemon.json."""
    if url:
        return url.rstrip("/")
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV].rstrip("/")
    state = Path(state_dir or os.environ.get("ORCHESTRATOR_STATE_DIR")
                 or os.path.expanduser("~/.local/state/orchestrator"))
    try:
        return str(json.loads((state / "daemon.json").read_text())["url"]).rstrip("/")
    except (OSError, ValueError, KeyError):
        raise ConnectionFailed(0, [{"type": "connection", "node": None, "field": None,
                                    "message": f"no daemon running for state directory {state} "
                                               "(start one: orchestrator daemon start)"}]) from None


def submit_body(prompt: str | None, graph: Any, priority: int, agent: dict[str, Any] | None,
                name: str | None) -> dict[str, Any]:
    if (prompt is None) == (graph is None):
        raise ValueError("submit needs exactly one of prompt= and graph=")
    if graph is not None and hasattr(graph, "to_dict"):
        graph = graph.to_dict()
    body: dict[str, Any] = {"priority": priority}
    if prompt is not None:
        body["prompt"] = prompt
    else:
        body["graph"] = graph
    if agent:
        body["agent"] = agent
    if name:
        body["name"] = name
    return body


def seed_variations(graph: Any, n: int, seeded_blocks: Any, base: int | None = None) -> list[dict[str, Any]]:
    """``n`` copies of ``graph`` (a dict or a ``graphs.Graph``) that differ only in their seeds.

    In every node whose block takes a ``seed`` param (``seeded_blocks``: those block ids), copy
    ``k`` gets seed ``s + k``, where ``s`` is ``base``, else the node's own seed, else 0. Run
    together, the copies' denoise steps batch (cross-job batching).

    >>> g = {"format": "orchestrator.graph/1", "nodes": {"d": {"block": "sd.denoise", "params": {"seed": 7}}}}
    >>> [v["nodes"]["d"]["params"]["seed"] for v in seed_variations(g, 3, {"sd.denoise"})]
    [7, 8, 9]
    """
    if n < 1:
        raise ValueError(f"variations must be at least 1, got {n}")
    doc = graph.to_dict() if hasattr(graph, "to_dict") else graph
    seeded = set(seeded_blocks)
    out = []
    for k in range(n):
        copy = json.loads(json.dumps(doc))
        for node in copy.get("nodes", {}).values():
            if node.get("block") in seeded:
                params = node.setdefault("params", {})
                start = base if base is not None else params.get("seed")
                params["seed"] = int(start or 0) + k
        out.append(copy)
    return out


class SSEParser:
    """Feeds server-sent-event lines; yields each complete event's decoded data."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.last_id: int = 0

    def feed(self, line: str) -> dict[str, Any] | None:
        if line == "":
            if not self.data:
                return None
            event = json.loads("\n".join(self.data))
            self.data = []
            self.last_id = int(event.get("id", self.last_id))
            return event  # type: ignore[no-any-return]
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self.data.append(value[1:] if value.startswith(" ") else value)
        return None


def upload_files(source: str | Path | bytes, filename: str | None = None) -> dict[str, Any]:
    """The ``files`` of a ``POST /inputs`` request for a file path or the bytes themselves."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), filename or "upload"
    else:
        path = Path(source).expanduser()
        data, name = path.read_bytes(), filename or path.name
    return {"file": (name, data, "application/octet-stream")}


def _headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


class JobResult:
    """A finished job's info and its output images (PIL) by name."""

    def __init__(self, info: dict[str, Any], images: dict[str, Any]) -> None:
        self.info = info
        self.images = images

    @property
    def state(self) -> str:
        return str(self.info["state"])


class Job:
    """A handle on one job of a :class:`Client`."""

    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self.client = client
        self.id: str = info["id"]
        self.info = info

    def __repr__(self) -> str:
        return f"Job({self.id!r}, state={self.info.get('state')!r})"

    def status(self) -> dict[str, Any]:
        self.info = self.client._get(JOB.format(id=self.id))
        return self.info

    def cancel(self) -> dict[str, Any]:
        self.info = self.client._post(JOB_CANCEL.format(id=self.id))
        return self.info

    def rate(self, score: float) -> dict[str, Any]:
        """Rate the job's outputs 1..5 stars (rating again replaces it): ``{"id", "rating",
        "previous", "score", "learned"}``; ``learned`` when the agent's score table took it."""
        return self.client._post(JOB_RATING.format(id=self.id), {"score": score})  # type: ignore[no-any-return]

    def rating(self) -> float | None:
        """The job's rating (1..5 stars), ``None`` when it has none."""
        return self.client._get(JOB_RATING.format(id=self.id)).get("rating")  # type: ignore[no-any-return]

    def events(self, after: int = 0, reconnects: int = 5) -> Iterator[dict[str, Any]]:
        """Stream events until ``done``; reconnects resume from the last event id."""
        parser = SSEParser()
        parser.last_id = after
        failures = 0
        while True:
            try:
                with self.client._http.stream(
                    "GET", JOB_EVENTS.format(id=self.id), timeout=httpx.Timeout(30, read=None),
                    headers={"Last-Event-ID": str(parser.last_id)},
                ) as resp:
                    if resp.status_code == 429:  # the daemon's streams are all taken: poll instead
                        resp.read()
                        yield from self._poll_events(parser.last_id)
                        return
                    if resp.status_code >= 400:
                        resp.read()
                        _raise_for(resp)
                    for line in resp.iter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            failures = 0
                            yield event
                            if event["event"] == "done":
                                return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                failures += 1
                if failures > reconnects:
                    raise
                time.sleep(min(2.0, 0.2 * failures))

    def _poll_events(self, after: int, every: float = 0.5) -> Iterator[dict[str, Any]]:
        """Events from the JSON form of the events route, until ``done`` (no stream needed)."""
        while True:
            events = self.client._get(JOB_EVENTS.format(id=self.id), format="json", after=after)["events"]
            for event in events:
                after = event["id"]
                yield event
                if event["event"] == "done":
                    return
            if not events:
                time.sleep(every)

    def wait(self, timeout: float | None = None, poll: float = 0.25) -> dict[str, Any]:
        """Block until the job is final (or ``TimeoutError``); returns its info."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.status()
            if info["state"] in FINAL_STATES:
                return info
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {info['state']} after {timeout}s")
            time.sleep(poll)

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait, then fetch every output image as a PIL image."""
        from PIL import Image

        info = self.wait(timeout)
        images = {}
        for out in info.get("outputs", []):
            data = self.client._raw(JOB_OUTPUT.format(id=self.id, name=out["name"]))
            images[out["name"]] = Image.open(io.BytesIO(data))
        return JobResult(info, images)

    def save(self, directory: str | Path, timeout: float | None = None) -> list[Path]:
        """Wait, then write every output into ``directory``; returns the paths."""
        info = self.wait(timeout)
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for out in info.get("outputs", []):
            path = d / f"{out['name']}.png"
            path.write_bytes(self.client._raw(JOB_OUTPUT.format(id=self.id, name=out["name"])))
            paths.append(path)
        return paths


class Client:
    """Synchronous client. Use as a context manager or call :meth:`close`."""

    def __init__(self, url: str | None = None, *, token: str | None = None, timeout: float = 30.0,
                 state_dir: str | Path | None = None) -> None:
        self.url = resolve_url(url, state_dir)
        self._http = httpx.Client(base_url=self.url, headers=_headers(token), timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            try:
                resp = self._http.request(method, path, **kw)
            except httpx.RemoteProtocolError:
                if method != "GET" and not path.endswith("/cancel"):  # only idempotent requests
                    raise
                resp = self._http.request(method, path, **kw)  # a stale pooled connection
        except httpx.TransportError as exc:
            raise ConnectionFailed(0, [{"type": "connection", "message": f"{self.url}: {exc}",
                                        "node": None, "field": None}]) from exc
        _raise_for(resp)
        return resp

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def _post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self._request("POST", path, json=body, headers=headers).json()

    def _raw(self, path: str) -> bytes:
        return self._request("GET", path).content

    def submit(self, prompt: str | None = None, graph: Any = None, *, priority: int = 0,
               idempotency_key: str | None = None, agent: dict[str, Any] | None = None,
               name: str | None = None) -> Job:
        """Submit a prompt or a graph (a ``graphs.Graph`` or its dict); returns its :class:`Job`."""
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        info = self._post(JOBS, submit_body(prompt, graph, priority, agent, name), headers)
        return Job(self, info)

    def job(self, job_id: str) -> Job:
        return Job(self, self._get(JOB.format(id=job_id)))

    def jobs(self, state: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return list(self._get(JOBS, state=state, limit=limit, offset=offset)["jobs"])

    def blocks(self) -> list[dict[str, Any]]:
        return list(self._get(BLOCKS))

    def templates(self) -> list[dict[str, Any]]:
        return list(self._get(TEMPLATES))

    def models(self) -> list[dict[str, Any]]:
        return list(self._get(MODELS))

    def prune(self, *, dry_run: bool = False, older_than_s: float | None = None,
              max_jobs: int | None = None, max_output_bytes: int | None = None,
              keep_latest: int | None = None, timeout: float = 300.0) -> dict[str, Any]:
        """Prune finished jobs and their outputs (``POST /jobs/prune``); returns the report.

        With no criterion the daemon's retention policy applies; with any, only those given.
        """
        body = {"dry_run": dry_run, "older_than_s": older_than_s, "max_jobs": max_jobs,
                "max_output_bytes": max_output_bytes, "keep_latest": keep_latest}
        body = {k: v for k, v in body.items() if v is not None}
        return dict(self._request("POST", JOBS_PRUNE, json=body, timeout=timeout).json())

    def health(self) -> dict[str, Any]:
        return dict(self._get(HEALTH))

    def metrics(self) -> dict[str, Any]:
        return dict(self._get(METRICS))

    def upload(self, source: str | Path | bytes, *, subfolder: str | None = None,
               filename: str | None = None) -> str:
        """Put an image or mask (a file path or its bytes) in the daemon's input folder; returns
        the name a graph's ``path`` param takes (content-derived: the same file, the same name).
        See :meth:`upload_info` for its size, dimensions and format."""
        return str(self.upload_info(source, subfolder=subfolder, filename=filename)["name"])

    def upload_info(self, source: str | Path | bytes, *, subfolder: str | None = None,
                    filename: str | None = None) -> dict[str, Any]:
        """``{"name", "size", "width", "height", "format"}`` of the uploaded file."""
        data = {"subfolder": subfolder} if subfolder else None
        return dict(self._request("POST", INPUTS, files=upload_files(source, filename), data=data).json())

    def inputs(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """The files of the daemon's input folder: name, size, width, height, format."""
        return list(self._get(INPUTS, limit=limit, offset=offset)["inputs"])


class AsyncJob:
    """A handle on one job of an :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient, info: dict[str, Any]) -> None:
        self.client = client
        self.id: str = info["id"]
        self.info = info

    async def status(self) -> dict[str, Any]:
        self.info = await self.client._get(JOB.format(id=self.id))
        return self.info

    async def cancel(self) -> dict[str, Any]:
        self.info = await self.client._post(JOB_CANCEL.format(id=self.id))
        return self.info

    async def rate(self, score: float) -> dict[str, Any]:
        """Rate the job's outputs 1..5 stars (see :meth:`Job.rate`)."""
        return await self.client._post(JOB_RATING.format(id=self.id), {"score": score})  # type: ignore[no-any-return]

    async def rating(self) -> float | None:
        """The job's rating (1..5 stars), ``None`` when it has none."""
        return (await self.client._get(JOB_RATING.format(id=self.id))).get("rating")  # type: ignore[no-any-return]

    async def events(self, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        parser = SSEParser()
        parser.last_id = after
        async with self.client._http.stream(
            "GET", JOB_EVENTS.format(id=self.id), timeout=httpx.Timeout(30, read=None),
            headers={"Last-Event-ID": str(after)},
        ) as resp:
            if resp.status_code == 429:  # the daemon's streams are all taken: poll instead
                await resp.aread()
                cursor = after
                while True:
                    events = (await self.client._get(JOB_EVENTS.format(id=self.id), format="json",
                                                     after=cursor))["events"]
                    for event in events:
                        cursor = event["id"]
                        yield event
                        if event["event"] == "done":
                            return
                    if not events:
                        await asyncio.sleep(0.5)
            if resp.status_code >= 400:
                await resp.aread()
                _raise_for(resp)
            async for line in resp.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event
                    if event["event"] == "done":
                        return

    async def wait(self, timeout: float | None = None, poll: float = 0.25) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = await self.status()
            if info["state"] in FINAL_STATES:
                return info
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {info['state']} after {timeout}s")
            await asyncio.sleep(poll)

    async def result(self, timeout: float | None = None) -> JobResult:
        """Like :meth:`Job.result`: wait, then fetch every output image as a PIL image."""
        from PIL import Image

        info = await self.wait(timeout)
        images = {}
        for out in info.get("outputs", []):
            data = await self.client._raw(JOB_OUTPUT.format(id=self.id, name=out["name"]))
            images[out["name"]] = Image.open(io.BytesIO(data))
        return JobResult(info, images)

    async def save(self, directory: str | Path, timeout: float | None = None) -> list[Path]:
        """Like :meth:`Job.save`: wait, then write every output into ``directory``."""
        info = await self.wait(timeout)
        d = Path(directory)
        await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
        paths = []
        for out in info.get("outputs", []):
            path = d / f"{out['name']}.png"
            data = await self.client._raw(JOB_OUTPUT.format(id=self.id, name=out["name"]))
            await asyncio.to_thread(path.write_bytes, data)
            paths.append(path)
        return paths


class AsyncClient:
    """Asynchronous client (``async with AsyncClient() as c: job = await c.submit(...)``)."""

    def __init__(self, url: str | None = None, *, token: str | None = None, timeout: float = 30.0,
                 state_dir: str | Path | None = None) -> None:
        self.url = resolve_url(url, state_dir)
        self._http = httpx.AsyncClient(base_url=self.url, headers=_headers(token), timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ConnectionFailed(0, [{"type": "connection", "message": f"{self.url}: {exc}",
                                        "node": None, "field": None}]) from exc
        _raise_for(resp)
        return resp

    async def _get(self, path: str, **params: Any) -> Any:
        resp = await self._request("GET", path, params={k: v for k, v in params.items() if v is not None})
        return resp.json()

    async def _post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return (await self._request("POST", path, json=body, headers=headers)).json()

    async def _raw(self, path: str) -> bytes:
        return (await self._request("GET", path)).content

    async def submit(self, prompt: str | None = None, graph: Any = None, *, priority: int = 0,
                     idempotency_key: str | None = None, agent: dict[str, Any] | None = None,
                     name: str | None = None) -> AsyncJob:
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        info = await self._post(JOBS, submit_body(prompt, graph, priority, agent, name), headers)
        return AsyncJob(self, info)

    async def job(self, job_id: str) -> AsyncJob:
        """A handle on an existing job (its current info fetched)."""
        return AsyncJob(self, await self._get(JOB.format(id=job_id)))

    async def jobs(self, state: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return list((await self._get(JOBS, state=state, limit=limit, offset=offset))["jobs"])

    async def blocks(self) -> list[dict[str, Any]]:
        return list(await self._get(BLOCKS))

    async def templates(self) -> list[dict[str, Any]]:
        return list(await self._get(TEMPLATES))

    async def models(self) -> list[dict[str, Any]]:
        return list(await self._get(MODELS))

    async def health(self) -> dict[str, Any]:
        return dict(await self._get(HEALTH))

    async def metrics(self) -> dict[str, Any]:
        return dict(await self._get(METRICS))

    async def prune(self, *, dry_run: bool = False, older_than_s: float | None = None,
                    max_jobs: int | None = None, max_output_bytes: int | None = None,
                    keep_latest: int | None = None, timeout: float = 300.0) -> dict[str, Any]:
        """Like :meth:`Client.prune`: prune finished jobs and their outputs; the report."""
        body = {"dry_run": dry_run, "older_than_s": older_than_s, "max_jobs": max_jobs,
                "max_output_bytes": max_output_bytes, "keep_latest": keep_latest}
        body = {k: v for k, v in body.items() if v is not None}
        return dict((await self._request("POST", JOBS_PRUNE, json=body, timeout=timeout)).json())

    async def upload(self, source: str | Path | bytes, *, subfolder: str | None = None,
                     filename: str | None = None) -> str:
        """Like :meth:`Client.upload`: the name of the stored file in the input folder."""
        return str((await self.upload_info(source, subfolder=subfolder, filename=filename))["name"])

    async def upload_info(self, source: str | Path | bytes, *, subfolder: str | None = None,
                          filename: str | None = None) -> dict[str, Any]:
        data = {"subfolder": subfolder} if subfolder else None
        files = await asyncio.to_thread(upload_files, source, filename)
        return dict((await self._request("POST", INPUTS, files=files, data=data)).json())

    async def inputs(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return list((await self._get(INPUTS, limit=limit, offset=offset))["inputs"])


def submit_variations(client: Client, n: int, prompt: str | None = None, graph: Any = None, *,
                      seed: int | None = None, priority: int = 0, agent: dict[str, Any] | None = None,
                      name: str | None = None) -> list[Job]:
    """Submit ``n`` variations of a prompt or a graph through ``client``, one job each, back to
    back (``POST /jobs`` each): seeds ``seed``, ``seed + 1``, ... (a graph's own seeds when
    ``seed`` is None, see :func:`seed_variations`; a prompt's from 0). The daemon batches their
    denoise steps when it can (cross-job batching)."""
    if n < 1:
        raise ValueError(f"variations must be at least 1, got {n}")
    names = [None if name is None else (name if n == 1 else f"{name} #{k + 1}") for k in range(n)]
    if prompt is not None and graph is None:
        start = 0 if seed is None else seed
        return [client.submit(prompt=prompt, priority=priority, name=names[k],
                              agent={**(agent or {}), "seed": start + k}) for k in range(n)]
    seeded = {b["id"] for b in client.blocks() if "seed" in (b.get("params") or {}).get("properties", {})}
    return [client.submit(graph=g, priority=priority, agent=agent, name=names[k])
            for k, g in enumerate(seed_variations(graph, n, seeded, seed))]
