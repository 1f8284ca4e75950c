"""The input folder over HTTP: ``POST /inputs`` stores an image or mask, ``GET /inputs`` lists.

Graphs sent to the daemon read files only from its input folder (``Settings.input_dir``,
default ``<state_dir>/inputs``; see :mod:`orchestrator.state.input_paths`). A client puts files
there with ``POST /inputs``:

- ``multipart/form-data`` with the file in a part named ``file`` or ``image`` (or the first
  part with a filename) and an optional ``subfolder`` field, or the raw bytes with an
  image content type (``image/png``, ``image/jpeg``, ...) and ``?subfolder=``;
- the content must be an image Pillow decodes (PNG, JPEG, WebP, BMP, TIFF, GIF), at most
  ``limits.upload_bytes`` long and ``limits.pixels`` pixels, and no decompression bomb;
  SVG, PDF, EPS and anything else are refused;
- the folder holds at most ``limits.inputs_bytes`` (an upload past it is a 413);
- it is stored atomically under a name derived from its content (sha256 prefix plus the
  extension of the decoded format; the client's filename is ignored), so the same content
  uploaded twice gets the same name and is not written again (200 instead of 201).

The answer is ``{"name", "size", "width", "height", "format"}``: ``name`` (with its
subfolder) is what a graph's ``image.load`` ``path`` takes. ``GET /inputs`` lists the folder
(``name``, ``size``, ``width``, ``height``, ``format``) and nothing outside it.

Added to the app by :func:`add_input_routes` (one line in ``create_app``); the ``Guard``
reads this route's larger body limit from ``app.state.body_limits``.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import re
import secrets
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from orchestrator.config import Settings
from orchestrator.protocol import INPUTS
from orchestrator.state.input_paths import ensure_input_dir, shown

# what POST /inputs accepts; the same list as plugins/image/io.py IMAGE_FORMATS (the blocks
# that read these files), checked equal by tests/test_input_paths.py
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp",
              "TIFF": ".tiff", "GIF": ".gif"}
MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries around the file of an upload
SUBFOLDER_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]{0,63}$")
MAX_SUBFOLDER_DEPTH = 4
NAME_HEX = 32  # hex digits of the sha256 in a stored name (128 bits)
MAX_LISTED = 100_000  # entries a listing walks at most
MAX_PARTS = 16  # parts of a multipart upload (a file and a subfolder are all it needs)


class UploadError(Exception):
    """A refused upload: the HTTP status and one structured error."""

    def __init__(self, status: int, type_: str, message: str, field: str | None = "body",
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"type": type_, "message": message, "node": None, "field": field, **extra}


@dataclass(frozen=True)
class StoredInput:
    """A file of the input folder, as the API answers it."""

    name: str  # relative to the input folder, "/"-separated: what a graph's path param takes
    size: int
    width: int | None
    height: int | None
    format: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- checking the content --------------------------------------------------------------------------


def check_image(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """``(format, width, height)`` of an image Pillow decodes in full; else :class:`UploadError`."""
    from PIL import Image

    if not data:
        raise UploadError(422, "input", "the upload is empty")
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            fmt = str(img.format)
            width, height = img.size
            bomb = Image.MAX_IMAGE_PIXELS
            if width * height > max_pixels or (bomb is not None and width * height > bomb):
                raise UploadError(
                    422, "limit", f"the image is {width}x{height}, over the {max_pixels}-pixel "
                    "limit (or a decompression bomb)", value=width * height,
                    bound={"le": max_pixels})
            img.load()
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(422, "limit", "the image is a decompression bomb") from None
    except Exception:  # noqa: BLE001 - whatever a hostile file makes Pillow raise is a 422
        raise UploadError(422, "input", "the upload is not an image or mask this daemon decodes ("
                          + ", ".join(f.lower() for f in IMAGE_FORMATS) + ")") from None
    if width < 1 or height < 1:
        raise UploadError(422, "input", "the image has no pixels")
    return fmt, width, height


def subfolder_parts(subfolder: str | None) -> list[str]:
    """The components of an upload's ``subfolder`` (``""``/None: the folder itself)."""
    if not subfolder:
        return []
    if not isinstance(subfolder, str) or len(subfolder) > 300:
        raise UploadError(422, "input", "subfolder must be a short relative folder name",
                          field="subfolder")
    parts = subfolder.strip("/").split("/") if subfolder.strip("/") else []
    if subfolder.startswith("/") or len(parts) > MAX_SUBFOLDER_DEPTH or not all(
            SUBFOLDER_PART.match(p) and p.strip(".") for p in parts):
        raise UploadError(
            422, "input", f"subfolder {shown(subfolder, 80)!r} must be up to {MAX_SUBFOLDER_DEPTH} "
            "relative folder names of letters, digits, '.', '_' and '-' (no '..', no leading '/')",
            field="subfolder", value=shown(subfolder, 80))
    return parts


# -- storing ---------------------------------------------------------------------------------------


def _open_dir(parent_fd: int, part: str, create: bool) -> int:
    if create:
        try:
            os.mkdir(part, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            pass
    try:
        return os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT and not create:
            raise FileNotFoundError(part) from None
        raise UploadError(422, "input", f"subfolder component {part!r} is not a folder of the "
                          "input folder", field="subfolder", value=part) from None


def _same_content(dir_fd: int, name: str, digest: str, size: int) -> bool:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == digest


def _write(dir_fd: int, filename: str, data: bytes, digest: str) -> bool:
    """Write ``data`` as ``filename`` in ``dir_fd`` atomically; False when it was already there."""
    tmp = f".{filename}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            return True
        except FileExistsError:
            if _same_content(dir_fd, filename, digest, len(data)):
                return False
            os.replace(tmp, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return True
    finally:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


_QUOTA_LOCK = threading.Lock()


def store_input(root: str | Path, data: bytes, *, subfolder: str | None = None,
                max_pixels: int = 8192 * 8192, max_total: int | None = None) -> tuple[StoredInput, bool]:
    """Check ``data`` and store it in the input folder ``root``; ``(what, created)``.

    The name is ``<sha256 prefix><extension>`` (under ``subfolder``); with ``max_total``, an
    upload that would take the folder past that many bytes is refused. Writing is atomic (a
    0600 temporary file, fsync, then a hard link that cannot replace anything), so two
    uploads of the same content at once store it once and both answer the same name; a
    file under that name with other content (replaced by hand) is replaced atomically.
    """
    fmt, width, height = check_image(data, max_pixels)
    parts = subfolder_parts(subfolder)
    digest = hashlib.sha256(data).hexdigest()
    filename = digest[:NAME_HEX] + EXTENSIONS.get(fmt, "." + fmt.lower())
    name = "/".join([*parts, filename])
    ensure_input_dir(root)
    dir_fd = os.open(os.path.realpath(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            nfd = _open_dir(dir_fd, part, create=True)
            os.close(dir_fd)
            dir_fd = nfd
        info = StoredInput(name=name, size=len(data), width=width, height=height, format=fmt)
        if _same_content(dir_fd, filename, digest, len(data)):
            return info, False
        with _QUOTA_LOCK if max_total is not None else nullcontext():  # check and write as one
            if max_total is not None:
                held = folder_bytes(root)
                if held + len(data) > max_total:
                    raise UploadError(413, "limit", f"the input folder holds {held} bytes; this "
                                      f"upload would pass its {max_total}-byte limit", field="file",
                                      value=held + len(data), bound={"le": max_total})
            created = _write(dir_fd, filename, data, digest)
        os.fsync(dir_fd)
        return info, created
    finally:
        os.close(dir_fd)


# -- listing ---------------------------------------------------------------------------------------


class _Dimensions:
    """Image headers read once per file version (bounded)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[Any, ...], tuple[int | None, int | None, str | None]] = \
            OrderedDict()

    def get(self, dir_fd: int, filename: str, st: os.stat_result
            ) -> tuple[int | None, int | None, str | None]:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._data.get(key)
        if hit is None:
            hit = _header(dir_fd, filename)
            self._data[key] = hit
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return hit


def _header(dir_fd: int, filename: str) -> tuple[int | None, int | None, str | None]:
    from PIL import Image

    try:
        fd = os.open(filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return None, None, None
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None, None, None
            with Image.open(f, formats=IMAGE_FORMATS) as img:
                return int(img.size[0]), int(img.size[1]), str(img.format)
    except Exception:  # noqa: BLE001 - a file that is no image is listed without dimensions
        return None, None, None


_DIMENSIONS = _Dimensions()


def _walk(dir_fd: int, rel: str = "", depth: int = 0
          ) -> Iterator[tuple[str, int, str, os.stat_result]]:
    """``(name, dir fd, file name, stat)`` of the regular files under the folder ``dir_fd``;
    symlinks are never followed (folders are opened with ``O_NOFOLLOW``), dot files skipped."""
    try:
        with os.scandir(dir_fd) as it:
            entries = sorted(e.name for e in it if not e.name.startswith("."))
    except OSError:
        return
    for filename in entries:  # (dot files: temporary files of uploads in progress)
        name = f"{rel}/{filename}" if rel else filename
        try:
            st = os.lstat(filename, dir_fd=dir_fd)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and depth < MAX_SUBFOLDER_DEPTH:
            try:
                sub = os.open(filename, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=dir_fd)
            except OSError:
                continue
            try:
                yield from _walk(sub, name, depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            yield name, dir_fd, filename, st


def folder_bytes(root: str | Path) -> int:
    """Bytes of the regular files in the input folder (what ``limits.inputs_bytes`` bounds)."""
    try:
        root_fd = os.open(os.path.realpath(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return sum(st.st_size for _n, _fd, _f, st in _walk(root_fd))
    finally:
        os.close(root_fd)


def list_inputs(root: str | Path, *, limit: int = 100, offset: int = 0) -> tuple[list[StoredInput], int]:
    """A page of the input folder's files (sorted by name) and how many there are."""
    page: list[StoredInput] = []
    total = 0
    try:
        root_fd = os.open(os.path.realpath(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return page, total
    try:
        for name, dir_fd, filename, st in _walk(root_fd):
            if total >= MAX_LISTED:
                break
            if offset <= total < offset + limit:
                w, h, fmt = _DIMENSIONS.get(dir_fd, filename, st)
                page.append(StoredInput(name=name, size=st.st_size, width=w, height=h, format=fmt))
            total += 1
    finally:
        os.close(root_fd)
    return page, total


# -- the request body ------------------------------------------------------------------------------


def _boundary(content_type: str) -> bytes:
    msg = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n")
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise UploadError(400, "request", "a multipart body needs a boundary (1-200 characters)")
    return boundary.encode("latin-1", "replace")


def parse_multipart(body: bytes, content_type: str) -> tuple[bytes, str | None]:
    """``(file bytes, subfolder)`` from a ``multipart/form-data`` body (RFC 7578)."""
    delimiter = b"--" + _boundary(content_type)
    chunks = body.split(delimiter, MAX_PARTS + 2)
    if len(chunks) < 3:
        raise UploadError(400, "request", "the multipart body has no parts")
    if len(chunks) > MAX_PARTS + 2:
        raise UploadError(400, "request", f"the multipart body has more than {MAX_PARTS} parts")
    data: bytes | None = None
    fallback: bytes | None = None
    subfolder: str | None = None
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise UploadError(400, "request", "a multipart part has no header block")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = BytesParser(policy=email_policy).parsebytes(head.lstrip(b"\r\n") + b"\r\n\r\n")
        try:
            field = headers.get_param("name", header="content-disposition")
            filename = headers.get_filename()
        except Exception:  # noqa: BLE001 - a header the email package cannot read
            raise UploadError(400, "request", "a multipart part has a bad Content-Disposition") \
                from None
        if field in ("file", "image"):
            data = content if data is None else data
        elif field == "subfolder":
            try:
                subfolder = content.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError(422, "input", "subfolder must be UTF-8 text",
                                  field="subfolder") from None
        elif filename is not None and fallback is None:
            fallback = content
    data = data if data is not None else fallback
    if data is None:
        raise UploadError(422, "input", "the multipart body holds no file (send it as 'file')",
                          field="file")
    return data, subfolder


def parse_upload(body: bytes, content_type: str, subfolder: str | None) -> tuple[bytes, str | None]:
    """``(file bytes, subfolder)`` of a ``POST /inputs`` body of either kind."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        data, form_subfolder = parse_multipart(body, content_type)
        if form_subfolder is not None and subfolder is not None and form_subfolder != subfolder:
            raise UploadError(422, "input", "two different subfolders (form and query)",
                              field="subfolder")
        return data, form_subfolder if form_subfolder is not None else subfolder
    if kind.startswith("image/") or kind == "application/octet-stream":
        return body, subfolder
    raise UploadError(415, "request", "send multipart/form-data (a 'file' part) or the image bytes "
                      "with an image/* content type", field="content-type")


def receive_upload(root: str | Path, body: bytes, content_type: str, subfolder: str | None, *,
                   limit_bytes: int, max_pixels: int, max_total: int | None = None
                   ) -> tuple[StoredInput, bool]:
    """Parse, check and store one ``POST /inputs`` body; ``(what, created)``."""
    data, folder = parse_upload(body, content_type, subfolder)
    if len(data) > limit_bytes:
        raise UploadError(413, "limit", f"the file is {len(data)} bytes, over the {limit_bytes}-byte "
                          "upload limit", field="file", value=len(data), bound={"le": limit_bytes})
    return store_input(root, data, subfolder=folder, max_pixels=max_pixels, max_total=max_total)


# -- routes ----------------------------------------------------------------------------------------


def _errors(exc: UploadError) -> JSONResponse:
    return JSONResponse({"errors": [exc.error]}, status_code=exc.status)


def add_input_routes(app: FastAPI, settings: Settings) -> None:
    """Add ``POST /inputs`` and ``GET /inputs``; create the input folder (0700) if missing."""
    root = ensure_input_dir(settings.effective_input_dir)
    limit_bytes = settings.limits.upload_bytes
    limits = dict(getattr(app.state, "body_limits", None) or {})
    limits[INPUTS] = max(settings.limits.request_bytes, limit_bytes + MULTIPART_OVERHEAD)
    app.state.body_limits = limits

    @app.post(INPUTS)
    async def upload_input(request: Request, subfolder: str | None = Query(None, max_length=300)
                           ) -> JSONResponse:
        try:
            body = await request.body()
        except ClientDisconnect:  # the Guard cut the body off (its 413 went out) or the client left
            return _errors(UploadError(400, "request", "the body did not arrive in full"))
        try:
            info, created = await asyncio.to_thread(
                receive_upload, root, body, request.headers.get("content-type", ""), subfolder,
                limit_bytes=limit_bytes, max_pixels=settings.limits.pixels,
                max_total=settings.limits.inputs_bytes)
        except UploadError as exc:
            return _errors(exc)
        return JSONResponse(info.to_dict(), status_code=201 if created else 200)

    @app.get(INPUTS)
    async def list_input_files(limit: int = Query(100, ge=1, le=1000),
                               offset: int = Query(0, ge=0, le=MAX_LISTED)) -> dict[str, Any]:
        page, total = await asyncio.to_thread(list_inputs, root, limit=limit, offset=offset)
        return {"inputs": [p.to_dict() for p in page], "total": total, "limit": limit,
                "offset": offset}
