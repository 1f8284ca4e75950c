"""Model folders: the user's model files, by name, in ComfyUI's or A1111's layout.

A *root* is a folder in either layout (or a ComfyUI install whose ``models/`` holds them):

============  =======================================  ==========================================
kind          ComfyUI                                  A1111
============  =======================================  ==========================================
checkpoint    ``checkpoints/``                         ``models/Stable-diffusion/``
lora          ``loras/``                               ``models/Lora/``, ``models/LyCORIS/``
embedding     ``embeddings/``                          ``embeddings/``
controlnet    ``controlnet/``, ``t2i_adapter/``        ``models/ControlNet/``
upscaler      ``upscale_models/``                      ``models/ESRGAN/``, ``RealESRGAN/``, ``SwinIR/``
vae           ``vae/``                                 ``models/VAE/``
clip_vision   ``clip_vision/``                         -
ip_adapter    ``ipadapter/``                           -
onnx          ``onnx/``                                -
hypernetwork  ``hypernetworks/``                       ``models/hypernetworks/``
gligen        ``gligen/``                              -
============  =======================================  ==========================================

Besides, ComfyUI's ``unet/`` and ``diffusion_models/`` hold the ``diffusion_model`` kind (a UNet
saved alone) and ``clip/`` and ``text_encoders/`` the ``text_encoder`` kind.

ComfyUI's ``extra_model_paths.yaml`` is read as is: named sections, each with a
``base_path`` (relative to the YAML file) and per-kind folders relative to it, several per
kind on separate lines.

Every file found is addressable by its path below its kind's folder, as ComfyUI shows it
(``sub/name.safetensors``), and by the same without its extension. The first folder that
has a name wins. Symlinks are followed only while they stay inside the configured folders;
a name is looked up in the index, never joined onto a folder. The index is cached and
rebuilt when any scanned folder's modification time changes.

>>> import tempfile, os
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "loras", "styles"))
>>> open(os.path.join(root, "loras", "styles", "ink.safetensors"), "wb").close()
>>> mf = ModelFolders([root])
>>> sorted(mf.names("lora"))
['styles/ink', 'styles/ink.safetensors']
>>> mf.find("styles/ink", "lora").name, mf.find("../ink", "lora")
('styles/ink.safetensors', None)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError

LAYOUT: dict[str, tuple[str, ...]] = {
    "checkpoint": ("checkpoints", "models/checkpoints", "models/Stable-diffusion"),
    "lora": ("loras", "models/loras", "models/Lora", "models/LyCORIS"),
    "embedding": ("embeddings", "models/embeddings"),
    "controlnet": ("controlnet", "t2i_adapter", "models/controlnet", "models/t2i_adapter",
                   "models/ControlNet"),
    "upscaler": ("upscale_models", "models/upscale_models", "models/ESRGAN", "models/RealESRGAN",
                 "models/SwinIR"),
    "vae": ("vae", "models/vae", "models/VAE"),
    "clip_vision": ("clip_vision", "models/clip_vision"),
    "ip_adapter": ("ipadapter", "models/ipadapter"),
    "onnx": ("onnx", "models/onnx"),
    "hypernetwork": ("hypernetworks", "models/hypernetworks"),
    "diffusion_model": ("unet", "diffusion_models", "models/unet", "models/diffusion_models"),
    "text_encoder": ("clip", "text_encoders", "models/clip", "models/text_encoders"),
    "gligen": ("gligen", "models/gligen"),
}
# extra_model_paths.yaml keys (ComfyUI's folder names) -> our kinds; other keys are ignored
COMFY_KEYS = {"checkpoints": "checkpoint", "loras": "lora", "embeddings": "embedding",
              "controlnet": "controlnet", "t2i_adapter": "controlnet", "upscale_models": "upscaler",
              "vae": "vae", "clip_vision": "clip_vision", "ipadapter": "ip_adapter", "onnx": "onnx",
              "hypernetworks": "hypernetwork", "unet": "diffusion_model",
              "diffusion_models": "diffusion_model", "clip": "text_encoder", "text_encoders": "text_encoder",
              "gligen": "gligen"}
SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".onnx")
LEGACY_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
MAX_FILES = 100_000
CONFIG_SIDECAR = ".config"  # <stem>.config/: the diffusers configs of the checkpoint <stem>.safetensors


@dataclass(frozen=True)
class ModelFile:
    """One file (or diffusers folder) found in a model folder."""

    name: str  # as ComfyUI shows it: sub/name.safetensors
    kind: str
    path: Path
    size: int
    mtime_ns: int
    is_dir: bool = False

    @property
    def stem_name(self) -> str:
        return self.name if self.is_dir else self.name.rsplit(".", 1)[0]


def read_extra_model_paths(path: str | Path) -> list[tuple[str, Path]]:
    """(kind, folder) pairs from a ComfyUI ``extra_model_paths.yaml``."""
    import yaml

    p = Path(path).expanduser()
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"extra_model_paths file {str(p)!r} cannot be read: {exc.strerror}",
                         reason="config") from None
    except yaml.YAMLError as exc:
        raise ModelError(f"extra_model_paths file {str(p)!r} is not valid YAML: {exc}",
                         reason="config") from None
    out: list[tuple[str, Path]] = []
    if not isinstance(doc, dict):
        return out
    for section in doc.values():
        if not isinstance(section, dict):
            continue
        base = section.get("base_path")
        base_path = Path(os.path.expanduser(str(base))) if base else p.parent
        if not base_path.is_absolute():
            base_path = p.parent / base_path
        for key, value in section.items():
            kind = COMFY_KEYS.get(str(key))
            if kind is None or not isinstance(value, str):
                continue
            for line in value.splitlines():
                line = line.strip()
                if line:
                    folder = Path(os.path.expanduser(line))
                    out.append((kind, folder if folder.is_absolute() else base_path / folder))
    return out


def layout_folders(roots: Iterable[str | Path]) -> list[tuple[str, Path]]:
    """(kind, folder) pairs for roots in ComfyUI's or A1111's layout (existing folders only)."""
    out = []
    for root in roots:
        r = Path(root).expanduser()
        for kind, subs in LAYOUT.items():
            for sub in subs:
                if (r / sub).is_dir():
                    out.append((kind, r / sub))
    return out


class ModelFolders:
    """The files in the configured model folders, indexed by kind and name."""

    def __init__(self, roots: Iterable[str | Path] = (), extra_model_paths: Iterable[str | Path] = (),
                 folders: Iterable[tuple[str, str | Path]] = ()) -> None:
        self.roots = [Path(r).expanduser() for r in roots]
        self.extra_model_paths = [Path(p).expanduser() for p in extra_model_paths]
        self.extra = [(k, Path(f).expanduser()) for k, f in folders]
        self._lock = threading.Lock()
        self._index: dict[str, dict[str, ModelFile]] | None = None
        self._stamp: dict[str, int | None] = {}
        self._detected: dict[tuple[str, int, int], Any] = {}
        self._allowed: list[Path] = []
        self.scans = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"roots": self.roots, "extra_model_paths": self.extra_model_paths, "extra": self.extra}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["roots"], state["extra_model_paths"], state["extra"])  # type: ignore[misc]

    def __bool__(self) -> bool:
        return bool(self.roots or self.extra_model_paths or self.extra)

    # -- the folders ---------------------------------------------------------------------------

    def folders(self) -> list[tuple[str, Path]]:
        """Every (kind, folder) configured, in the order names are looked up."""
        out = layout_folders(self.roots)
        for y in self.extra_model_paths:
            out += read_extra_model_paths(y)
        out += self.extra
        return out

    # -- the index -----------------------------------------------------------------------------

    def _stale(self) -> bool:
        if self._index is None:
            return True
        for d, mtime in self._stamp.items():
            try:
                now: int | None = os.stat(d).st_mtime_ns
            except OSError:
                now = None
            if now != mtime:
                return True
        return False

    def index(self) -> dict[str, dict[str, ModelFile]]:
        """``{kind: {name: ModelFile}}``, rescanned when a folder changed."""
        with self._lock:
            if self._stale():
                self._index, self._stamp, self._allowed = self._scan()
                self.scans += 1
            return self._index  # type: ignore[return-value]

    def _scan(self) -> tuple[dict[str, dict[str, ModelFile]], dict[str, int | None], list[Path]]:
        folders = self.folders()
        allowed = []
        stamp: dict[str, int | None] = {}
        for y in self.extra_model_paths:
            stamp[str(y)] = _mtime(y)
        for r in self.roots:
            stamp[str(r)] = _mtime(r)
            stamp[str(r / "models")] = _mtime(r / "models")
        for _kind, f in folders:
            try:
                allowed.append(f.resolve(strict=True))
            except OSError:
                stamp[str(f)] = None
        index: dict[str, dict[str, ModelFile]] = {k: {} for k in LAYOUT}
        count = 0
        for kind, folder in folders:
            if not folder.is_dir():
                continue
            seen: set[str] = set()
            for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
                real = os.path.realpath(dirpath)
                stamp[dirpath] = _mtime(Path(dirpath))
                if real in seen or not _inside(real, allowed):
                    dirnames[:] = []
                    continue
                seen.add(real)
                rel_dir = os.path.relpath(dirpath, folder)
                rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
                keep = []
                for d in sorted(dirnames):
                    if d.startswith(".") or d.endswith(CONFIG_SIDECAR):
                        continue
                    full = Path(dirpath) / d
                    if _is_model_dir(full, kind):
                        self._add(index[kind], kind, rel_dir + d, full, allowed, is_dir=True)
                    else:
                        keep.append(d)
                dirnames[:] = keep
                for fn in sorted(filenames):
                    if fn.startswith(".") or not fn.lower().endswith(SUFFIXES):
                        continue
                    if kind != "onnx" and fn.lower().endswith(".onnx") and kind != "upscaler":
                        continue
                    count += 1
                    if count > MAX_FILES:
                        raise ModelError(f"the model folders hold more than {MAX_FILES} files; "
                                         f"configure narrower folders", reason="config")
                    self._add(index[kind], kind, rel_dir + fn, Path(dirpath) / fn, allowed)
        return index, stamp, allowed

    @staticmethod
    def _add(bucket: dict[str, ModelFile], kind: str, name: str, path: Path, allowed: list[Path],
             is_dir: bool = False) -> None:
        try:
            real = path.resolve(strict=True)
            st = real.stat()
        except OSError:
            return  # a dangling link
        if not _inside(str(real), allowed):
            return  # a symlink that leaves the model folders
        mf = ModelFile(name, kind, path, st.st_size, st.st_mtime_ns, is_dir)
        if name not in bucket:
            bucket[name] = mf
        if mf.stem_name not in bucket:
            bucket[mf.stem_name] = mf

    # -- lookups -------------------------------------------------------------------------------

    def find(self, name: str, kind: str) -> ModelFile | None:
        """The file of ``kind`` named ``name`` (with or without its extension), or None."""
        if not self:
            return None
        mf = self.index().get(kind, {}).get(name)
        if mf is not None and not _inside(os.path.realpath(mf.path), self._allowed):
            return None  # replaced by a link out of the folders since the scan
        return mf

    def detect(self, mf: ModelFile) -> Any:
        """What ``mf`` is (:class:`~orchestrator.models.detect.Detected`), cached on its size and
        mtime; a broken file gives ``Detected(kind, None, details={"error": ...})``."""
        from orchestrator.models.detect import Detected, detect_file

        key = (str(mf.path), mf.size, mf.mtime_ns)
        hit = self._detected.get(key)
        if hit is None:
            try:
                hit = detect_file(mf.path, mf.kind, mf.name)
            except ModelError as exc:
                hit = Detected(mf.kind, None, None, {"error": exc.message})
            except OSError as exc:
                hit = Detected(mf.kind, None, None, {"error": f"cannot read {mf.name!r}: {exc.strerror}"})
            if len(self._detected) > 4 * MAX_FILES:
                self._detected.clear()
            self._detected[key] = hit
        return hit

    def names(self, kind: str) -> list[str]:
        return list(self.index().get(kind, {})) if self else []

    def files(self) -> list[ModelFile]:
        """Each file once (under its full name), by kind then name."""
        if not self:
            return []
        out = []
        for bucket in self.index().values():
            seen = set()
            for mf in bucket.values():
                if mf.path not in seen:
                    seen.add(mf.path)
                    out.append(mf)
        return out


def _mtime(p: Path) -> int | None:
    try:
        return os.stat(p).st_mtime_ns
    except OSError:
        return None


def _inside(real: str, allowed: list[Path]) -> bool:
    for a in allowed:
        s = str(a)
        if real == s or real.startswith(s.rstrip(os.sep) + os.sep):
            return True
    return False


def _is_model_dir(d: Path, kind: str) -> bool:
    """A diffusers folder (a pipeline with ``model_index.json``, or one component's ``config.json``)."""
    if kind == "checkpoint":
        return (d / "model_index.json").is_file()
    if kind in ("controlnet", "clip_vision", "vae", "ip_adapter"):
        return (d / "config.json").is_file() or (d / "ip_adapter.safetensors").is_file()
    return False
