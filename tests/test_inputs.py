"""``POST /inputs`` and ``GET /inputs`` (orchestrator.server.inputs): content checks, content-derived
names, atomic stores, subfolders, listings; the routes on the daemon's real app through
FastAPI's test client, the body limit of the Guard, the client helper and ``orchestrator upload``."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from orchestrator.server.inputs import (
    UploadError,
    check_image,
    list_inputs,
    parse_upload,
    store_input,
    subfolder_parts,
)


def image_bytes(fmt: str = "PNG", size=(6, 4), mode: str = "RGB", color=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color if mode != "L" else 128).save(buf, fmt)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def real_bomb() -> bytes:
    """9000 x 9000 1-bit zeros: 81 Mpixels in a few KiB of PNG."""
    buf = io.BytesIO()
    Image.new("1", (9000, 9000), 0).save(buf, "PNG", optimize=True)
    return buf.getvalue()


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>'
NOT_IMAGES = {
    "empty": b"",
    "text": b"hello, world",
    "svg": SVG,
    "html": b"<html><script>alert(1)</script></html>",
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n",
    "pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "png_magic_then_html": b"\x89PNG\r\n\x1a\n<html>hi</html>",
    "gif_magic_then_js": b"GIF89a/*\x00\x00*/=alert(1);",
    "truncated_png": image_bytes()[:40],
    "elf": b"\x7fELF\x02\x01\x01" + b"\0" * 60,
}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_images_pillow_decodes_are_accepted_with_a_normalised_extension(tmp_path, fmt):
    data = image_bytes(fmt)
    info, created = store_input(tmp_path, data)
    ext = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tiff",
           "GIF": ".gif"}[fmt]
    assert created and info.name.endswith(ext) and (info.width, info.height) == (6, 4)
    assert info.format == fmt and info.size == len(data)
    assert (tmp_path / info.name).read_bytes() == data
    assert (tmp_path / info.name).stat().st_mode & 0o777 == 0o600


def test_masks_are_images_too(tmp_path):
    info, _ = store_input(tmp_path, image_bytes(mode="L"))
    assert info.format == "PNG"


@pytest.mark.parametrize("kind", sorted(NOT_IMAGES))
def test_what_is_not_an_image_is_refused_and_nothing_is_written(tmp_path, kind):
    with pytest.raises(UploadError) as err:
        store_input(tmp_path, NOT_IMAGES[kind])
    assert err.value.status == 422 and err.value.error["type"] == "input"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data", [png_claiming(100_000, 100_000), png_claiming(2**31 - 1, 2)],
                         ids=["10G-pixel-header", "2G-wide-header"])
def test_decompression_bomb_headers_are_refused_before_decoding(tmp_path, data):
    with pytest.raises(UploadError) as err:
        store_input(tmp_path, data, max_pixels=10**15)
    assert err.value.error["type"] == "limit"
    assert list(tmp_path.iterdir()) == []


def test_a_real_decompression_bomb_is_refused_by_the_pixel_limit(tmp_path):
    data = real_bomb()
    assert len(data) < 200_000
    with pytest.raises(UploadError) as err:
        check_image(data, max_pixels=8192 * 8192)
    assert err.value.error["type"] == "limit" and err.value.error["bound"] == {"le": 8192 * 8192}


def test_a_polyglot_is_stored_as_the_image_it_decodes_to_whatever_its_filename(tmp_path):
    data = image_bytes() + b"<html><script>alert(1)</script></html>PK\x05\x06" + b"\0" * 18
    body, ctype = _multipart({"file": ("evil.php", data)})
    raw, sub = parse_upload(body, ctype, None)
    info, _ = store_input(tmp_path, raw, subfolder=sub)
    assert info.name.endswith(".png") and "evil" not in info.name and "php" not in info.name


def test_the_same_content_gets_the_same_name_and_is_not_rewritten(tmp_path):
    data = image_bytes()
    first, created = store_input(tmp_path, data)
    path = tmp_path / first.name
    before = path.stat()
    second, again = store_input(tmp_path, data)
    assert created and not again and second == first
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns
    other, _ = store_input(tmp_path, image_bytes(color=(0, 0, 1)))
    assert other.name != first.name


def test_concurrent_uploads_of_the_same_content_store_it_once(tmp_path):
    data = image_bytes(size=(64, 64))
    results: list = []
    barrier = threading.Barrier(8)

    def upload():
        barrier.wait()
        results.append(store_input(tmp_path, data))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({info.name for info, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert [p.name for p in tmp_path.iterdir()] == [results[0][0].name]  # no temporary files left
    assert (tmp_path / results[0][0].name).read_bytes() == data


def test_a_file_replaced_by_hand_under_a_stored_name_is_restored(tmp_path):
    data = image_bytes()
    info, _ = store_input(tmp_path, data)
    (tmp_path / info.name).write_bytes(b"tampered")
    _, created = store_input(tmp_path, data)
    assert created and (tmp_path / info.name).read_bytes() == data


def test_a_symlink_planted_under_a_stored_name_is_replaced_not_written_through(tmp_path):
    data = image_bytes()
    name = store_input(tmp_path / "probe", data)[0].name
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    os.symlink(target, inputs / name)
    store_input(inputs, data)
    assert target.read_text() == "keep me"
    assert not (inputs / name).is_symlink() and (inputs / name).read_bytes() == data


def test_subfolders_are_created_private_and_confined(tmp_path):
    info, _ = store_input(tmp_path, image_bytes(), subfolder="cats/2024")
    assert info.name.startswith("cats/2024/") and (tmp_path / info.name).is_file()
    assert (tmp_path / "cats").stat().st_mode & 0o777 == 0o700
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "evil")
    with pytest.raises(UploadError) as err:
        store_input(tmp_path, image_bytes(), subfolder="evil")
    assert err.value.error["field"] == "subfolder" and list(outside.iterdir()) == []


@pytest.mark.parametrize("sub", ["..", "../x", "a/../../b", "/abs", "a\\b", "~", "a/./b", ".hidden",
                                 "a:b", "%2e%2e", "a\x00b", "x" * 65, "a/b/c/d/e", "a//b"])
def test_bad_subfolders_are_refused(sub):
    with pytest.raises(UploadError) as err:
        subfolder_parts(sub)
    assert err.value.error["field"] == "subfolder"


def test_listing_shows_regular_files_inside_only(tmp_path):
    inputs = tmp_path / "inputs"
    a, _ = store_input(inputs, image_bytes())
    b, _ = store_input(inputs, image_bytes(fmt="JPEG"), subfolder="sub")
    (inputs / "notes.txt").write_text("not an image")
    (inputs / ".tmp-upload").write_bytes(b"half")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd.png").write_bytes(image_bytes())
    os.symlink(secret, inputs / "link-dir")
    os.symlink(secret / "passwd.png", inputs / "link-file.png")
    os.mkfifo(inputs / "fifo")
    page, total = list_inputs(inputs)
    names = [p.name for p in page]
    assert names == sorted([a.name, "notes.txt", b.name]) and total == 3
    by_name = {p.name: p for p in page}
    assert (by_name[b.name].width, by_name[b.name].format) == (6, "JPEG")
    assert by_name["notes.txt"].width is None
    page, total = list_inputs(inputs, limit=1, offset=1)
    assert [p.name for p in page] == [names[1]] and total == 3


def _multipart(fields: dict, boundary: str = "XyZ123") -> tuple[bytes, str]:
    parts = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data = value
            head = (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode(), value.encode()
        parts.append(b"--" + boundary.encode() + b"\r\n" + head + data + b"\r\n")
    body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"


def test_multipart_and_raw_bodies_parse():
    data = image_bytes()
    body, ctype = _multipart({"subfolder": "cats", "file": ("x.png", data)})
    assert parse_upload(body, ctype, None) == (data, "cats")
    body, ctype = _multipart({"other": ("y.png", data)})  # the first file part, whatever its name
    assert parse_upload(body, ctype, "dogs") == (data, "dogs")
    assert parse_upload(data, "image/png", "q") == (data, "q")


@pytest.mark.parametrize(("body", "ctype", "status"), [
    (b"abc", "multipart/form-data", 400),  # no boundary
    (b"abc", "multipart/form-data; boundary=zz", 400),  # no parts
    (b"--zz\r\nno header end--zz--", "multipart/form-data; boundary=zz", 400),
    (b'--zz\r\nContent-Disposition: form-data; name="subfolder"\r\n\r\nx\r\n--zz--',
     "multipart/form-data; boundary=zz", 422),  # no file
    (b"{}", "application/json", 415),
    (b"x", "", 415),
])
def test_bad_bodies_are_refused(body, ctype, status):
    with pytest.raises(UploadError) as err:
        parse_upload(body, ctype, None)
    assert err.value.status == status


# -- the routes on the daemon's app ------------------------------------------------------------


@pytest.fixture()
def app_client(tmp_path):
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"),
        "limits": {"upload_bytes": 200_000, "request_bytes": 100_000}})
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(plugin_host(settings).catalog, settings),
                         outputs_root=tmp_path / "outputs")
    with TestClient(create_app(service, settings), base_url="http://127.0.0.1") as c:
        c.inputs_dir = settings.effective_input_dir
        yield c
    store.close()


def test_the_routes_store_list_and_answer_structured_errors(app_client):
    data = image_bytes()
    r = app_client.post("/inputs", files={"file": ("a.png", data, "image/png")},
                        data={"subfolder": "masks"})
    assert r.status_code == 201
    info = r.json()
    assert set(info) == {"name", "size", "width", "height", "format"} and info["name"].startswith("masks/")
    assert (app_client.inputs_dir / info["name"]).read_bytes() == data
    r2 = app_client.post("/inputs", content=data, headers={"Content-Type": "image/png"},
                         params={"subfolder": "masks"})
    assert r2.status_code == 200 and r2.json() == info
    listing = app_client.get("/inputs").json()
    assert [i["name"] for i in listing["inputs"]] == [info["name"]] and listing["total"] == 1
    for body, ctype, status in [(SVG, "image/svg+xml", 422), (b"x", "text/plain", 415),
                                (real_bomb(), "image/png", 422)]:
        r = app_client.post("/inputs", content=body, headers={"Content-Type": ctype})
        assert r.status_code == status
        assert set(r.json()) == {"errors"}
        assert {"type", "message", "node", "field"} <= set(r.json()["errors"][0])
    assert app_client.get("/inputs").json()["total"] == 1


def test_the_upload_route_has_its_own_body_limit_and_other_routes_keep_theirs(app_client):
    noisy = io.BytesIO()  # random pixels: a PNG over request_bytes and under upload_bytes
    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(noisy, "PNG")
    big = noisy.getvalue()
    assert 100_000 < len(big) < 200_000
    assert app_client.post("/inputs", content=big, headers={"Content-Type": "image/png"}).status_code == 201
    r = app_client.post("/jobs", content=b" " * 150_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = app_client.post("/inputs", content=b"\0" * 300_000, headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and r.json()["errors"][0]["type"] in ("request_too_large", "limit")


def test_post_jobs_refuses_paths_that_can_never_be_inside(app_client):
    before = app_client.get("/jobs").json()["jobs"]
    for path in ("/etc/passwd", "../../etc/passwd", "file:///etc/passwd", "~/.ssh/id_rsa", "C:\\x.png"):
        r = app_client.post("/jobs", json={"graph": {"nodes": {
            "load": {"block": "image.load", "params": {"path": path}}}}})
        assert r.status_code == 422
        err = r.json()["errors"][0]
        assert (err["type"], err["node"], err["field"]) == ("input", "load", "params.path")
        assert err["value"] == path
    assert app_client.get("/jobs").json()["jobs"] == before


# -- the client and the CLI against a real daemon ----------------------------------------------------


@pytest.fixture(scope="module")
def real_daemon(tmp_path_factory):
    from daemon_process import Daemon

    d = Daemon(tmp_path_factory.mktemp("state")).start()
    yield d
    d.kill()


def test_client_upload_and_a_graph_that_reads_the_upload(real_daemon, tmp_path):
    from orchestrator.client import AsyncClient

    src = tmp_path / "photo.png"
    src.write_bytes(image_bytes(color=(255, 255, 255)))
    with real_daemon.client() as c:
        name = c.upload(src)
        assert name == c.upload(src.read_bytes()) and name.endswith(".png")
        assert name in {i["name"] for i in c.inputs()}
        graph = {"nodes": {"l": {"block": "image.load", "params": {"path": name}},
                           "s": {"block": "image.save", "inputs": {"image": "l.image"},
                                 "params": {"name": "copy"}}}}
        info = c.submit(graph=graph).wait(timeout=60)
        assert info["state"] == "succeeded", info["errors"]

    async def async_upload():
        async with AsyncClient(real_daemon.url) as ac:
            return await ac.upload(src, subfolder="async"), await ac.inputs()

    import asyncio

    aname, listing = asyncio.run(async_upload())
    assert aname == f"async/{name}" and aname in {i["name"] for i in listing}


def _cli(daemon, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORCHESTRATOR_URL": daemon.url}
    env.pop("ORCHESTRATOR_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "orchestrator", "--state-dir", str(cwd / "cli-state"),
                           *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_cli_upload_prints_names_and_submit_uploads_what_the_graph_names(real_daemon, tmp_path):
    (tmp_path / "in.png").write_bytes(image_bytes(color=(0, 0, 0)))
    (tmp_path / "mask.png").write_bytes(image_bytes(mode="L"))
    out = _cli(real_daemon, "upload", "in.png", "mask.png", "--url", real_daemon.url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    assert len(names) == 2 and all(n.endswith(".png") for n in names)
    bad = _cli(real_daemon, "upload", "missing.png", "--url", real_daemon.url, cwd=tmp_path)
    assert bad.returncode == 1
    (tmp_path / "notes.txt").write_text("hello")
    bad = _cli(real_daemon, "upload", "notes.txt", "--url", real_daemon.url, cwd=tmp_path)
    assert bad.returncode == 1 and "not an image" in bad.stderr
    graph = tmp_path / "g.json"
    graph.write_text('{"nodes": {"l": {"block": "image.load", "params": {"path": "in.png"}},'
                     ' "m": {"block": "image.load_mask", "params": {"path": "mask.png"}},'
                     ' "s": {"block": "image.save", "inputs": {"image": "l.image"},'
                     ' "params": {"name": "o"}}}}')
    out = _cli(real_daemon, "submit", "--graph", str(graph), "--wait", "-q", "--url", real_daemon.url,
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"uploaded in.png for l.params.path: {names[0]}" in out.stderr
    job_id = out.stdout.split()[0]
    with real_daemon.client() as c:
        info = c.job(job_id).status()
    assert info["state"] == "succeeded"
    assert info["graph"]["nodes"]["l"]["params"]["path"] == names[0]
    assert info["graph"]["nodes"]["m"]["params"]["path"] == names[1]


def test_the_inputs_route_is_in_the_protocol_the_app_and_both_clients(app_client):
    from orchestrator.client import AsyncClient, Client
    from orchestrator.protocol import INPUTS

    doc = app_client.get("/openapi.json").json()
    assert {"get", "post"} <= set(doc["paths"][INPUTS])
    for cls in (Client, AsyncClient):
        assert all(callable(getattr(cls, m, None)) for m in ("upload", "upload_info", "inputs"))


def test_a_multipart_body_of_many_parts_is_refused_before_parsing_them():
    body, ctype = _multipart({f"f{i}": "x" for i in range(5000)})
    with pytest.raises(UploadError, match="more than 16 parts") as err:
        parse_upload(body, ctype, None)
    assert err.value.status == 400


def test_the_input_folder_is_bounded_in_bytes(tmp_path):
    first = image_bytes(color=(1, 1, 1))
    assert store_input(tmp_path, first, max_total=2 * len(first) + 10)[1]
    assert store_input(tmp_path, first, max_total=len(first))[1] is False  # already there: no new bytes
    store_input(tmp_path, image_bytes(color=(2, 2, 2)), max_total=2 * len(first) + 10)
    with pytest.raises(UploadError) as err:
        store_input(tmp_path, image_bytes(color=(3, 3, 3)), max_total=2 * len(first) + 10)
    assert err.value.status == 413 and err.value.error["type"] == "limit"
    assert err.value.error["bound"] == {"le": 2 * len(first) + 10}
    assert len(list(tmp_path.iterdir())) == 2


def test_the_daemon_applies_the_input_folder_budget(tmp_path):
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={"ORCHESTRATOR_LIMITS__INPUTS_BYTES": "2000"},
                             overrides={"state_dir": str(tmp_path / "state")})
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(plugin_host(settings).catalog, settings),
                         outputs_root=tmp_path / "outputs")
    with TestClient(create_app(service, settings), base_url="http://127.0.0.1") as c:
        codes = [c.post("/inputs", content=image_bytes(color=(i, 0, 0)),
                        headers={"Content-Type": "image/png"}).status_code for i in range(40)]
    store.close()
    assert codes[0] == 201 and codes[-1] == 413 and set(codes) == {201, 413}
    held = sum(p.stat().st_size for p in settings.effective_input_dir.iterdir())
    assert held <= 2000
