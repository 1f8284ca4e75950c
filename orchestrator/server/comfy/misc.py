"""The small ComfyUI routes a client or the editor reads at start: system stats, features,
extensions, embeddings, model folders, and the editor's settings and user files.

Settings and user files (``/settings``, ``/users``, ``/userdata``) are the editor's own:
one user, kept under ``<state_dir>/comfy/`` (``settings.json``, ``userdata/``). A user-file
name is a relative ``/``-separated path of letters, digits, ``._- `` and ``()[]`` (no
``..``, nothing absolute, no links followed out), at most :data:`MAX_USER_FILES` files and
:data:`MAX_USER_BYTES` bytes in all.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrator import __version__

# ComfyUI's model folder names -> our model kinds (orchestrator.models.folders)
FOLDERS = {"checkpoints": "checkpoint", "loras": "lora", "vae": "vae", "embeddings": "embedding",
           "upscale_models": "upscaler", "controlnet": "controlnet", "clip_vision": "clip_vision",
           "ipadapter": "ip_adapter", "onnx": "onnx"}
NOT_CHECKPOINTS = {"tiny-controlnet", "tiny-clip-vision", "tiny-ip-adapter"}
USER_NAME = re.compile(r"^[A-Za-z0-9_\-. ()\[\]]{1,128}(/[A-Za-z0-9_\-. ()\[\]]{1,128}){0,7}$")
# a new user's editor opens the default workflow, not the template browser: no workflow
# templates are installed here (ComfyUI's comfyui-workflow-templates package), so it would be empty
DEFAULT_SETTINGS: dict[str, Any] = {"Comfy.TutorialCompleted": True}
MAX_USER_FILES = 1000
MAX_USER_BYTES = 64 << 20


def feature_flags(max_upload: int | None = None) -> dict[str, Any]:
    """What this server supports, as ComfyUI's ``/features`` and ``feature_flags`` message say it."""
    out: dict[str, Any] = {"supports_preview_metadata": False,
                           "extension": {"manager": {"supports_v4": False}}}
    if max_upload is not None:
        out["max_upload_size"] = max_upload
    return out


def _ram() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0, 0


def system_stats() -> dict[str, Any]:
    """ComfyUI's ``/system_stats``: the machine and its devices (torch is read only if loaded)."""
    total, free = _ram()
    torch = sys.modules.get("torch")
    devices: list[dict[str, Any]] = []
    torch_version = getattr(torch, "__version__", "") if torch is not None else ""
    try:
        if torch is not None and torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                free_b, total_b = torch.cuda.mem_get_info(i)
                devices.append({"name": torch.cuda.get_device_name(i), "type": "cuda", "index": i,
                                "vram_total": total_b, "vram_free": free_b, "torch_vram_total": total_b,
                                "torch_vram_free": free_b})
    except Exception:  # noqa: BLE001 - stats never fail on a device's account
        devices = []
    if not devices:
        devices.append({"name": "cpu", "type": "cpu", "index": None, "vram_total": total, "vram_free": free,
                        "torch_vram_total": total, "torch_vram_free": free})
    return {"system": {"os": sys.platform, "ram_total": total, "ram_free": free,
                       "comfyui_version": __version__, "required_frontend_version": "",
                       "installed_templates_version": "", "required_templates_version": "",
                       "python_version": sys.version, "pytorch_version": str(torch_version),
                       "embedded_python": False, "argv": ["orchestrator"], "machine": platform.machine()},
            "devices": devices}


def model_names(models: Any, kind: str) -> list[str]:
    """The names a ComfyUI model widget offers for ``kind``: files of that kind in the model
    folders (as ComfyUI shows them, with their extension) and, for checkpoints, the
    configured and built-in models."""
    if models is None:
        return []
    names: list[str] = []
    if kind == "checkpoint":
        names += [n for n in models.names() if n not in NOT_CHECKPOINTS]
    try:
        files = models.file_names(kind) if kind in FOLDERS.values() else []
    except Exception:  # noqa: BLE001 - a folder that cannot be read lists nothing
        files = []
    names += [n for n in files if "." in n.rsplit("/", 1)[-1]]
    return sorted(dict.fromkeys(names), key=str.lower)


def embeddings(models: Any) -> list[str]:
    """ComfyUI's ``/embeddings``: embedding names without their extension."""
    return sorted({n.rsplit(".", 1)[0] for n in model_names(models, "embedding")}, key=str.lower)


class UserStore:
    """The editor's settings and user files, confined to one folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files = self.root / "userdata"
        self._lock = threading.Lock()

    # -- settings --------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The stored settings over :data:`DEFAULT_SETTINGS`."""
        try:
            data = json.loads((self.root / "settings.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        return {**DEFAULT_SETTINGS, **(data if isinstance(data, dict) else {})}

    def set_settings(self, values: dict[str, Any]) -> None:
        with self._lock:
            current = self.settings()
            current.update(values)
            text = json.dumps(current)
            if len(text) > MAX_USER_BYTES // 16:
                raise ValueError("the settings would be over 4 MiB")
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.root / ".settings.json.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.root / "settings.json")

    # -- user files ------------------------------------------------------------------------

    def path(self, name: str) -> Path | None:
        """The confined path of a user file, or None for a name that is refused."""
        if not USER_NAME.match(name) or any(p in (".", "..") for p in name.split("/")):
            return None
        path = self.files / name
        real_root = os.path.realpath(self.files)
        real = os.path.realpath(path)
        if not real.startswith(real_root + os.sep):
            return None
        return path

    def listing(self, directory: str, recurse: bool, full: bool) -> list[Any] | None:
        base = self.path(directory) if directory else self.files
        if base is None:
            return None
        if not base.is_dir():
            return []
        out: list[Any] = []
        walker = base.rglob("*") if recurse else base.glob("*")
        for p in sorted(walker):
            if len(out) >= MAX_USER_FILES or p.is_symlink():
                continue
            rel = p.relative_to(base).as_posix()
            if p.is_file():
                st = p.stat()
                out.append({"path": rel, "size": st.st_size, "modified": st.st_mtime} if full else rel)
        return out

    def usage(self) -> tuple[int, int]:
        n = size = 0
        if self.files.is_dir():
            for p in self.files.rglob("*"):
                if p.is_file() and not p.is_symlink():
                    n += 1
                    size += p.stat().st_size
        return n, size

    def write(self, name: str, data: bytes, overwrite: bool) -> tuple[int, dict[str, Any] | str]:
        """``(status, answer)``: 200 with the file's info, or an error status and message."""
        path = self.path(name)
        if path is None:
            return 400, f"bad user file name {name[:200]!r}"
        with self._lock:
            if path.exists() and not overwrite:
                return 409, f"{name!r} exists; send overwrite=true"
            n, size = self.usage()
            if n >= MAX_USER_FILES or size + len(data) > MAX_USER_BYTES:
                return 413, f"user files are limited to {MAX_USER_FILES} files and {MAX_USER_BYTES} bytes"
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if path.is_symlink() or (path.exists() and not path.is_file()) or self.path(name) is None:
                    return 400, f"{name!r} is not a regular file"
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
                st = path.stat()
            except OSError:  # a folder where a file is, or the reverse: never a 500, never a host path
                return 409, f"{name[:200]!r} cannot be written (a file and a folder of that name clash)"
        return 200, {"path": name, "size": st.st_size, "modified": st.st_mtime}

    def move(self, name: str, dest: str, overwrite: bool) -> tuple[int, dict[str, Any] | str]:
        """Rename a user file (ComfyUI's ``/userdata/{file}/move/{dest}``)."""
        src, to = self.path(name), self.path(dest)
        if src is None or to is None:
            return 400, f"bad user file name {(name if src is None else dest)[:200]!r}"
        with self._lock:
            if not src.is_file() or src.is_symlink():
                return 404, f"no user file {name[:200]!r}"
            if to.exists() and not overwrite:
                return 409, f"{dest[:200]!r} exists; send overwrite=true"
            try:
                to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if self.path(dest) is None or (to.exists() and not to.is_file()):
                    return 400, f"{dest[:200]!r} is not a regular file"
                os.replace(src, to)
                st = to.stat()
            except OSError:
                return 409, f"{dest[:200]!r} cannot be written (a file and a folder of that name clash)"
        return 200, {"path": dest, "size": st.st_size, "modified": st.st_mtime}
