"""Hostile paths and uploads against a real daemon on loopback, on both engines.

A graph reads files only from the daemon's input folder; every other path is refused,
at submit time when the name alone shows it (422 naming node and field) and at run time
otherwise (the job fails with a structured ``input`` error), without saying whether
anything outside exists or what it holds. Uploads are checked, bounded and stored under
content-derived names. After every refusal the jobs accepted before are still there.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import make_daemon, wait_final
from PIL import Image

ERROR_KEYS = {"type", "message", "node", "field"}
UPLOAD_LIMIT = 300_000
SECRET = b"TOP-SECRET-CONTENT"

SUBMIT_TIME = {  # names POST /jobs refuses by their form alone
    "absolute": "/etc/passwd",
    "absolute_secret": "{secret}",
    "parent": "../../etc/passwd",
    "parent_inside": "a/../../../etc/passwd",
    "home": "~/.bashrc",
    "file_url": "file:///etc/passwd",
    "http_url": "http://127.0.0.1:1/x.png",
    "percent_dots": "%2e%2e/%2e%2e/etc/passwd",
    "percent_slash": "..%2f..%2fetc%2fpasswd",
    "backslash": "..\\..\\etc\\passwd",
    "drive": "C:/Windows/win.ini",
    "nul": "in.png\x00.txt",
    "proc": "/proc/self/environ",
    "dev_zero": "/dev/zero",
}
RUN_TIME = {  # names that pass the form check and are refused when the block opens them
    "symlink_out": "link-out.png",
    "symlink_out_missing": "dangling-out.png",
    "symlink_dir_out": "dir-out/secret.png",
    "symlink_dev_zero": "zero",
    "fifo": "fifo",
    "directory": "sub",
    "missing_inside": "missing.png",
}


def image_bytes(color=(200, 10, 10), size=(8, 6), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (9000, 9000), 0).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 256)) + chunk(b"IEND", b""))


def multipart(fields: list[tuple[str, str | None, bytes]],
              boundary: bytes = b"b0undary") -> tuple[bytes, str]:
    """A multipart/form-data body from ``(field, filename or None, bytes)``, byte for byte."""
    out = b""
    for name, filename, data in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += (b"--" + boundary + b"\r\nContent-Disposition: " + disp.encode("utf-8", "surrogatepass")
                + b"\r\n\r\n" + data + b"\r\n")
    return out + b"--" + boundary + b"--\r\n", "multipart/form-data; boundary=" + boundary.decode()


def load_graph(path: str, block: str = "image.load", save: str = "out") -> dict:
    port = "image" if block == "image.load" else "mask"
    nodes = {"load": {"block": block, "params": {"path": path}}}
    if block == "image.load":
        nodes["save"] = {"block": "image.save", "inputs": {"image": f"load.{port}"}, "params": {"name": save}}
    return {"nodes": nodes}


def errors_of(resp: httpx.Response) -> list[dict]:
    body = resp.json()
    assert set(body) == {"errors"}, body
    for e in body["errors"]:
        assert ERROR_KEYS <= set(e), e
    return body["errors"]


@pytest.fixture(scope="module", params=["local", pytest.param("ray", marks=pytest.mark.slow)])
def world(request, tmp_path_factory):
    """A daemon on one engine, its input folder with traps planted in it, a secret outside it,
    and one job accepted (and run) before any hostile request."""
    tmp = tmp_path_factory.mktemp(f"paths-{request.param}")
    state = tmp / "state"
    extra = ["--engine", request.param] + (["--workers", "1"] if request.param == "ray" else [])
    d = make_daemon(state, *extra, env={"ORCHESTRATOR_LIMITS__UPLOAD_BYTES": str(UPLOAD_LIMIT)})
    d.start(300)
    inputs = state / "inputs"
    outside = tmp / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes(image_bytes((1, 2, 3)) + SECRET)
    assert inputs.is_dir() and inputs.stat().st_mode & 0o777 == 0o700  # made by the daemon
    os.symlink(secret, inputs / "link-out.png")
    os.symlink(outside / "nothing.png", inputs / "dangling-out.png")
    os.symlink(outside, inputs / "dir-out")
    os.symlink("/dev/zero", inputs / "zero")
    os.mkfifo(inputs / "fifo")
    (inputs / "sub").mkdir()
    with d.client() as c:
        name = c.upload(image_bytes((255, 255, 255)))
        first = c.submit(graph=load_graph(name, save="first")).wait(timeout=300)
    assert first["state"] == "succeeded", first["errors"]
    yield {"daemon": d, "url": d.url, "state": state, "inputs": inputs, "outside": outside,
           "secret": secret, "tmp": tmp, "first": first, "name": name}
    d.kill()


def _all_jobs(url: str) -> dict[str, dict]:
    return {j["id"]: j for j in httpx.get(f"{url}/jobs", params={"limit": 500}, timeout=60).json()["jobs"]}


def _nothing_lost(world) -> None:
    jobs = _all_jobs(world["url"])
    first = jobs[world["first"]["id"]]
    assert first["state"] == "succeeded"
    assert httpx.get(f"{world['url']}/jobs/{first['id']}/outputs/first", timeout=60).status_code == 200
    assert httpx.get(f"{world['url']}/health", timeout=60).json()["ok"]


def _no_leak(world, text: str) -> None:
    for needle in (str(world["tmp"]), str(world["outside"]), SECRET.decode(), "root:x:"):
        assert needle not in text, needle


@pytest.mark.parametrize("block", ["image.load", "image.load_mask"])
@pytest.mark.parametrize("kind", sorted(SUBMIT_TIME))
def test_names_that_can_never_be_inside_are_refused_at_submit(world, kind, block):
    path = SUBMIT_TIME[kind].format(secret=world["secret"])
    before = _all_jobs(world["url"])
    r = httpx.post(f"{world['url']}/jobs", json={"graph": load_graph(path, block)}, timeout=60)
    assert r.status_code == 422
    (err,) = [e for e in errors_of(r) if e["field"] == "params.path"]
    assert (err["type"], err["node"], err["value"]) == ("input", "load", path)
    _no_leak(world, r.text.replace(json.dumps(path)[1:-1], ""))
    assert _all_jobs(world["url"]).keys() == before.keys()
    _nothing_lost(world)


def test_names_refused_when_opened_fail_the_job_with_one_message_for_all_ways_out(world):
    url = world["url"]
    ids = {kind: httpx.post(f"{url}/jobs", json={"graph": load_graph(name)}, timeout=60).json()["id"]
           for kind, name in RUN_TIME.items()}
    final = wait_final(url, list(ids.values()), timeout=600)
    messages = {}
    for kind, job_id in ids.items():
        job = final[job_id]
        assert job["state"] == "failed", (kind, job)
        (err,) = job["errors"]
        assert (err["type"], err["node"], err["field"]) == ("input", "load", "params.path"), err
        assert err["value"] == RUN_TIME[kind]
        events = httpx.get(f"{url}/jobs/{job_id}/events", params={"format": "json"}, timeout=60).text
        _no_leak(world, json.dumps(job) + events)
        messages[kind] = err["message"].replace(repr(RUN_TIME[kind]), "NAME")
    # outside, missing outside and missing inside read the same: nothing about what is there
    outside_kinds = ("symlink_out", "symlink_out_missing", "symlink_dir_out", "symlink_dev_zero",
                     "missing_inside")
    assert len({messages[k] for k in outside_kinds}) == 1, messages
    assert "not a file in the input folder" in messages["symlink_out"]
    assert "not a regular file" in messages["fifo"] and "not a regular file" in messages["directory"]
    _nothing_lost(world)


def test_a_comfy_workflow_reads_from_the_input_folder_and_its_hostile_paths_are_refused(world):
    url = world["url"]
    upload = httpx.post(f"{url}/inputs", content=image_bytes((0, 255, 0)),
                        headers={"Content-Type": "image/png"}, timeout=60).json()["name"]
    for image, expect in (("../../etc/passwd", 422), ("/etc/passwd", 422), ("example.png", 201)):
        workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
                    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "c"}}}
        imported = httpx.post(f"{url}/import/comfy", json=workflow, timeout=60)
        assert imported.status_code == 200, imported.text
        graph = imported.json()["graph"]
        (load,) = [n for n, node in graph["nodes"].items() if node["block"] == "image.load"]
        if expect == 422:  # the import already says the daemon could never read it
            assert imported.json()["valid"] is False
            assert any((e["node"], e["field"]) == (load, "params.path") for e in imported.json()["errors"])
        if expect == 201:  # a ComfyUI input file: uploaded, the graph pointed at its name
            graph["nodes"][load]["params"]["path"] = upload
        r = httpx.post(f"{url}/jobs", json={"graph": graph}, timeout=60)
        assert r.status_code == expect, r.text
        if expect == 422:
            (err,) = errors_of(r)
            assert (err["node"], err["field"]) == (load, "params.path")
        else:
            job = wait_final(url, [r.json()["id"]], timeout=300)[r.json()["id"]]
            assert job["state"] == "succeeded", job["errors"]
    _nothing_lost(world)


def _post_body(url: str, body: bytes, ctype: str, **params) -> httpx.Response:
    return httpx.post(f"{url}/inputs", content=body, headers={"Content-Type": ctype}, params=params,
                      timeout=120)


def test_hostile_uploads_are_refused_and_write_nothing(world):
    url, inputs = world["url"], world["inputs"]
    before = sorted(p.relative_to(inputs) for p in inputs.rglob("*"))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" width="9" height="9"/>'
    cases = {
        "huge_content_length": (b"\0" * (UPLOAD_LIMIT + 70_000), "image/png", 413),
        "huge_multipart": (*multipart([("file", "x.png", b"\0" * (UPLOAD_LIMIT + 70_000))]), 413),
        "over_limit_image": (b"\x89PNG\r\n\x1a\n" + os.urandom(UPLOAD_LIMIT + 10), "image/png", 413),
        "not_an_image": (b"just some text, not a picture", "image/png", 422),
        "bomb": (bomb(), "image/png", 422),
        "bomb_header": (png_header_claiming(200_000, 200_000), "image/png", 422),
        "svg": (svg, "image/svg+xml", 422),
        "svg_as_png": (svg, "image/png", 422),
        "html_with_png_magic": (b"\x89PNG\r\n\x1a\n<script>alert(1)</script>", "image/png", 422),
        "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n", "image/png", 422),
        "text_content_type": (image_bytes(), "text/html", 415),
        "empty": (b"", "image/png", 422),
        "multipart_without_file": (*multipart([("subfolder", None, b"x")]), 422),
        "multipart_without_boundary": (b"--x\r\n\r\n", "multipart/form-data", 400),
    }
    for kind, (body, ctype, status) in cases.items():
        r = _post_body(url, body, ctype)
        assert r.status_code == status, (kind, r.status_code, r.text)
        errors_of(r)
    # a chunked body over the limit is cut off as it arrives
    def chunks():
        for _ in range(40):
            yield b"\0" * 20_000
    r = httpx.post(f"{url}/inputs", content=chunks(), headers={"Content-Type": "image/png"}, timeout=120)
    assert r.status_code == 413
    for sub in ("../escape", "/abs", "a/../../b", "~", "dir-out", "link-out.png", "..", "a\\b", "%2e%2e"):
        body, ctype = multipart([("subfolder", None, sub.encode()), ("file", "x.png", image_bytes())])
        r = _post_body(url, body, ctype)
        assert r.status_code == 422, (sub, r.text)
        assert errors_of(r)[0]["field"] == "subfolder"
        r = _post_body(url, image_bytes(), "image/png", subfolder=sub)
        assert r.status_code == 422, (sub, r.text)
    assert sorted(p.relative_to(inputs) for p in inputs.rglob("*")) == before
    assert [p.name for p in world["outside"].iterdir()] == ["secret.png"]
    _nothing_lost(world)


def test_uploads_are_named_by_content_whatever_the_client_calls_them(world):
    url, inputs = world["url"], world["inputs"]
    polyglot = image_bytes((9, 9, 9)) + b"<html><script>alert(1)</script></html>PK\x05\x06" + b"\0" * 18
    for filename in ("../../evil.png", "/etc/cron.d/x", "evil.php", "a\\..\\b.png", "x.svg"):
        body, ctype = multipart([("file", filename, polyglot)])
        r = _post_body(url, body, ctype)
        assert r.status_code in (200, 201), r.text
        info = r.json()
        assert set(info) == {"name", "size", "width", "height", "format"}
        assert len(info["name"]) == 36 and info["name"].endswith(".png") and "/" not in info["name"]
        assert (inputs / info["name"]).read_bytes() == polyglot
    body, ctype = multipart([("subfolder", None, b"cats/2024"), ("file", "x.png", image_bytes((3, 3, 3)))])
    r = _post_body(url, body, ctype)
    assert r.status_code == 201 and r.json()["name"].startswith("cats/2024/")
    graph = load_graph(r.json()["name"], save="cat")
    job = httpx.post(f"{url}/jobs", json={"graph": graph}, timeout=60).json()
    assert wait_final(url, [job["id"]], timeout=300)[job["id"]]["state"] == "succeeded"
    listing = httpx.get(f"{url}/inputs", params={"limit": 1000}, timeout=60).json()
    names = {i["name"] for i in listing["inputs"]}
    assert r.json()["name"] in names
    assert not any(n.startswith(("link-out", "dangling", "dir-out", "zero", "fifo")) for n in names)
    _no_leak(world, json.dumps(listing))
    _nothing_lost(world)


def test_the_same_upload_at_once_is_stored_once(world):
    url, inputs = world["url"], world["inputs"]
    data = image_bytes((77, 1, 2), size=(128, 128))

    async def race():
        async with httpx.AsyncClient(base_url=url, timeout=120,
                                     limits=httpx.Limits(max_connections=20)) as c:
            return await asyncio.gather(*(c.post("/inputs", content=data,
                                                 headers={"Content-Type": "image/png"})
                                          for _ in range(12)))

    responses = asyncio.run(race())
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    (name,) = {r.json()["name"] for r in responses}
    assert (inputs / name).read_bytes() == data
    assert not [p for p in inputs.iterdir() if p.name.startswith(".")]  # no temporary files left
    _nothing_lost(world)


def _first_pixel(url: str, job_id: str, name: str) -> tuple[int, ...]:
    png = httpx.get(f"{url}/jobs/{job_id}/outputs/{name}", timeout=60).content
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((0, 0))


def test_a_replaced_input_file_is_not_served_from_the_cache(world):
    """The operator replaces a file of the input folder: the next job reads the new content."""
    url, inputs = world["url"], world["inputs"]
    target = inputs / "swap.png"
    results = []
    for i, color in enumerate([(255, 0, 0), (255, 0, 0), (0, 0, 255)]):
        if i != 1:  # job 1 reads the same file again (a cache hit)
            tmp = inputs / ".swap.tmp"
            tmp.write_bytes(image_bytes(color))
            os.replace(tmp, target)
        graph = load_graph("swap.png", save=f"swap{i}")
        job_id = httpx.post(f"{url}/jobs", json={"graph": graph}, timeout=60).json()["id"]
        job = wait_final(url, [job_id], timeout=300)[job_id]
        assert job["state"] == "succeeded", job["errors"]
        events = httpx.get(f"{url}/jobs/{job_id}/events", params={"format": "json"}, timeout=60).json()
        cached = {e["node"] for e in events["events"] if e["event"] == "node_finished" and e.get("cached")}
        results.append((_first_pixel(url, job_id, f"swap{i}"), cached))
    assert results[0][0] == (255, 0, 0) and results[1][0] == (255, 0, 0)
    assert "load" in results[1][1]  # the same content: served from the cache
    assert results[2][0] == (0, 0, 255), results
    assert "load" not in results[2][1]
    _nothing_lost(world)


# -- the fuzzer ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    d = make_daemon(tmp / "state", env={"ORCHESTRATOR_LIMITS__UPLOAD_BYTES": "100000"}).start()
    with d.client() as c:
        job = c.submit(graph=load_graph(c.upload(image_bytes()), save="kept")).wait(timeout=120)
    assert job["state"] == "succeeded"
    yield d, tmp, job
    d.kill()


def _files_outside(tmp: Path, inputs: Path) -> set[Path]:
    return {p for p in tmp.rglob("*") if inputs not in p.parents and p != inputs
            and "outputs" not in p.parts and p.suffix not in (".db", ".db-wal", ".db-shm", ".log")
            and not p.name.startswith(("jobs.db", "test-daemon"))}


BODIES = st.one_of(
    st.binary(max_size=2048),
    st.just(b"").map(lambda _: image_bytes()),
    st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=16)).map(
        lambda t: image_bytes()[: t[0]] + t[1] + image_bytes()[t[0] + len(t[1]):]),
    st.integers(1, 70_000).map(lambda n: png_header_claiming(n, 70_001 - n)),
)
NAMES = st.one_of(st.text(max_size=40), st.sampled_from(
    ["../../x.png", "/etc/passwd", "..\\x", "%2e%2e/x", "x\x00y", "~", "C:x", "a/b/c/d/e/f", "cats"]))
CTYPES = st.one_of(st.sampled_from(["image/png", "image/jpeg", "image/svg+xml", "application/octet-stream",
                                    "text/plain", "", "multipart/form-data", "image/"]),
                   st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, filename=NAMES, subfolder=st.one_of(st.none(), NAMES), ctype=CTYPES,
       as_form=st.booleans(), in_query=st.booleans())
def test_fuzz_post_inputs_never_500_never_outside(fuzz_daemon, body, filename, subfolder, ctype,
                                                  as_form, in_query):
    d, tmp, kept = fuzz_daemon
    inputs = d.state / "inputs"
    before = _files_outside(tmp, inputs)
    params = {"subfolder": subfolder} if (subfolder is not None and in_query) else {}
    if as_form:
        fields = [("file", filename, body)]
        if subfolder is not None and not in_query:
            fields.insert(0, ("subfolder", None, subfolder.encode("utf-8", "surrogatepass")))
        content, ctype = multipart(fields)
    else:
        content = body
    try:
        r = httpx.post(f"{d.url}/inputs", content=content, params=params, timeout=60,
                       headers={"Content-Type": ctype.encode("latin-1", "replace")})
    except httpx.LocalProtocolError:
        return  # a header httpx itself will not send
    assert r.status_code < 500, r.text
    if r.status_code in (200, 201):
        name = r.json()["name"]
        stored = inputs / name
        assert inputs in stored.resolve().parents and stored.is_file() and not stored.is_symlink()
        Image.open(stored).load()
    else:
        errors_of(r)
    assert _files_outside(tmp, inputs) == before
    assert httpx.get(f"{d.url}/jobs/{kept['id']}", timeout=60).json()["state"] == "succeeded"
