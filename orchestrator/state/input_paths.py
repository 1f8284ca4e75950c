"""Files a request names: checked by name, opened only inside the input folder.

The daemon's graphs read files (``image.load``'s ``path``, ...) only from its input folder
(``Settings.input_dir``, default ``<state_dir>/inputs``). Two gates:

- :func:`name_problem` checks a name as written, with no disk access (``POST /jobs``
  refuses an absolute path, ``..``, ``~``, a URL scheme, a drive letter, a backslash, a NUL
  or a percent-encoded dot or slash with a 422 naming node and field);
- :func:`open_confined` is the real gate, at run time: it walks the name one component at a
  time from a descriptor of the folder with ``O_NOFOLLOW`` (a symlink is followed only when
  its target, resolved, is inside the folder, and then the target is opened the same way),
  and opens only a regular file. Resolving and opening are one step, so a file swapped for
  a symlink between a check and a read cannot lead out of the folder.

Errors never say whether something outside the folder exists: every way out of the folder
gets the same message, and a file missing inside it is named by its relative name only.

Params that name input files say so in their schema (``json_schema_extra={"input_file":
True}``); :func:`input_file_params` finds them, and :func:`input_digest` gives the content
digest that goes into a node's cache key, so a changed file is never served from the cache.

>>> name_problem("cats/tabby.png") is None
True
>>> name_problem("../etc/passwd")
"must not contain '..'"
>>> name_problem("file:///etc/passwd")
'must not have a URL scheme or a drive letter'
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

MAX_NAME = 1024  # characters in a name a request gives
MAX_LINKS = 8  # symlinks followed inside the folder for one name
RACY_NS = 2_000_000_000  # stat of a file changed more recently than this is not trusted
INPUT_FILE_KEY = "input_file"  # the schema marker of a param that names an input file
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InputPathError(Exception):
    """A name that cannot be read from the input folder. ``message`` is safe to show."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "name", "missing", "not_regular"


def name_problem(name: Any) -> str | None:
    """Why ``name`` can never name a file inside the input folder, or None when it may."""
    if not isinstance(name, str):
        return "must be a string"
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters"
    if _CONTROL.search(name):
        return "must not contain NUL or control characters"
    if "\\" in name:
        return "must not contain a backslash"
    if name.startswith("/"):
        return "must be relative to the input folder, not absolute"
    if name.startswith("~"):
        return "must not start with '~'"
    if _SCHEME.match(name):
        return "must not have a URL scheme or a drive letter"
    if _ENCODED.search(name):
        return "must not contain percent-encoded dots, slashes or NULs"
    if any(part == ".." for part in name.split("/")):
        return "must not contain '..'"
    if not any(part not in ("", ".") for part in name.split("/")):
        return "must name a file"
    return None


def shown(name: Any, limit: int = 200) -> str:
    """``name`` as an error may quote it (cut to ``limit`` characters)."""
    text = str(name)
    return text if len(text) <= limit else text[:limit] + "..."


def _outside(name: str) -> InputPathError:
    return InputPathError(f"{shown(name)!r} is not a file in the input folder", "missing")


def _components(name: str) -> list[str]:
    return [p for p in name.split("/") if p not in ("", ".")]


def _open_beneath(root_fd: int, parts: list[str], name: str) -> int:
    """Open ``parts`` under ``root_fd`` without following any symlink; raise ``_Link`` at one."""
    fd = os.dup(root_fd)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= os.O_NONBLOCK if last else os.O_DIRECTORY  # a FIFO must not block the open
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, part):
                    raise _Link(i) from None
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
                    raise _outside(name) from None
                if exc.errno in (errno.EACCES, errno.EPERM):
                    raise InputPathError(f"{shown(name)!r} in the input folder cannot be read",
                                         "missing") from None
                raise InputPathError(f"{shown(name)!r} is not a regular file in the input folder",
                                     "not_regular") from None
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


class _Link(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


def _is_link(dir_fd: int, part: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(part, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _follow(root: Path, parts: list[str], index: int, name: str) -> list[str]:
    """The components of the path that the symlink at ``parts[index]`` leads to, relative to
    ``root``, when it stays inside; else the refusal for a name outside the folder."""
    link = root.joinpath(*parts[: index + 1])
    try:
        target = os.readlink(link)
    except OSError:
        raise _outside(name) from None
    resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
    rest = parts[index + 1:]
    real_root = str(root)
    if resolved != real_root and not resolved.startswith(real_root.rstrip("/") + "/"):
        raise _outside(name)
    inside = os.path.relpath(resolved, real_root)
    return [*_components("" if inside == "." else inside), *rest]


def open_confined(root: str | Path, name: str) -> BinaryIO:
    """The regular file ``name`` inside ``root``, opened for reading (binary).

    Raises :class:`InputPathError` for a name that is refused, a file that is not there or
    anything that is not a regular file; the message never names a path of the host.
    """
    problem = name_problem(name)
    if problem is not None:
        raise InputPathError(f"{shown(name)!r} {problem}", "name")
    real_root = Path(os.path.realpath(root))
    try:
        root_fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise InputPathError("the input folder does not exist", "missing") from None
    try:
        parts = _components(name)
        for _ in range(MAX_LINKS + 1):
            try:
                fd = _open_beneath(root_fd, parts, name)
                break
            except _Link as link:
                parts = _follow(real_root, parts, link.index, name)
                if not parts:
                    raise InputPathError(f"{shown(name)!r} is not a regular file in the input "
                                         "folder", "not_regular") from None
        else:
            raise _outside(name)
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputPathError(f"{shown(name)!r} is not a regular file in the input folder",
                                 "not_regular")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def confined_path(root: str | Path, name: str) -> Path:
    """The real path of the regular file ``name`` inside ``root``, checked as
    :func:`open_confined` checks it; for readers that need a path, not an open file."""
    with open_confined(root, name) as f:
        try:  # the path the descriptor really opened, whatever was swapped meanwhile
            return Path(os.readlink(f"/proc/self/fd/{f.fileno()}"))
        except OSError:  # pragma: no cover - no /proc (not Linux)
            real = Path(os.path.realpath(Path(root) / name))
            if Path(os.path.realpath(root)) not in real.parents:
                raise _outside(name) from None
            return real


# -- params that name input files ----------------------------------------------------------------


def input_file_params(params_model: Any) -> tuple[str, ...]:
    """The params of a block's params model marked ``json_schema_extra={"input_file": True}``."""
    fields = getattr(params_model, "model_fields", None) or {}
    out = []
    for name, info in fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, Mapping) and extra.get(INPUT_FILE_KEY):
            out.append(info.alias or name)
    return tuple(out)


def graph_input_names(graph: Any, catalog: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """``(node id, field, value)`` of every param of ``graph`` that names an input file."""
    for node_id, node in graph.nodes.items():
        spec = catalog.get(node.block)
        if spec is None:
            continue
        for param in input_file_params(spec.params_model):
            if param in node.params:
                yield node_id, f"params.{param}", node.params[param]


def input_name_errors(graph: Any, catalog: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Structured errors for the input-file params of ``graph`` that can never be valid
    (absolute, ``..``, a scheme, ...), each naming node and field; for ``POST /jobs``."""
    out = []
    for node_id, field, value in graph_input_names(graph, catalog):
        if not isinstance(value, str):
            continue  # the params schema reports it
        problem = name_problem(value)
        if problem is not None:
            out.append({"type": "input", "node": node_id, "field": field, "value": shown(value),
                        "message": f"node {node_id!r}: {field} {shown(value)!r} {problem}; name a "
                                   "file in the input folder (upload it with POST /inputs)"})
    return out


# -- content digests for cache keys ----------------------------------------------------------------


class _Digests:
    """sha256 of files by (device, inode, size, mtime_ns, ctime_ns): read each version once.

    A file changed in the last two seconds is hashed again every time (git's "racy" rule):
    file times tick coarsely, so a same-size rewrite in the same tick keeps every stat field.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def digest(self, f: BinaryIO) -> str:
        st = os.fstat(f.fileno())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        value = h.hexdigest()
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
            return value  # changed just now: another write in the same clock tick keeps its stat
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return value


DIGESTS = _Digests()


def input_digest(root: str | Path, name: str, *, confine: bool = True) -> str:
    """The content digest of input file ``name`` (``"missing"``/``"refused"`` when it cannot be
    read: such a node fails when it runs, and failures are not cached)."""
    try:
        with _open_for_digest(root, name, confine) as f:
            return DIGESTS.digest(f)
    except InputPathError as exc:
        return "refused" if exc.reason == "name" else "missing"
    except OSError:
        return "missing"


@contextmanager
def _open_for_digest(root: str | Path, name: str, confine: bool) -> Iterator[BinaryIO]:
    if confine:
        f = open_confined(root, name)
    else:
        p = Path(name).expanduser()
        full = p if p.is_absolute() else Path(root) / p
        if not full.is_file():
            raise InputPathError("missing", "missing")
        f = open(full, "rb")
    try:
        yield f
    finally:
        f.close()


def ensure_input_dir(path: str | Path) -> Path:
    """Create the input folder (mode 0700) if it is missing; returns it."""
    folder = Path(path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder
