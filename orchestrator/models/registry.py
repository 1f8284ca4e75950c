"""The model registry: which models exist, by name, and where each one lives.

Entries come from the config file (``[[models]]`` tables), from plugins
(``register_models``) and the built-ins. Each has a ``name`` and a ``source``:

=======================================  =================================================
``source``                               what it is
=======================================  =================================================
``builtin:tiny-sd``                      a built-in tiny model, built on first use
``/models/sd15`` (a folder)              a diffusers folder (``model_index.json``)
``/models/dreamshaper.safetensors``      a single-file checkpoint (converted once to a
                                         diffusers folder in the cache)
``hf:org/repo``                          a repo in the local Hugging Face cache (offline)
``hf:org/repo/path/file.safetensors``    one file of a repo in the local Hugging Face cache
``/models/upscaler.onnx``, ``x.safetensors``  an ONNX model, or a LoRA / embedding file
=======================================  =================================================

Nothing is downloaded: a repo that is not in the local cache is an error that says so.
Legacy ``.ckpt``/``.pt``/``.pth`` checkpoints are read only with torch's weights-only loader
(or refused, ``legacy="refuse"``); a pickle under any other name is refused by its content.

Besides the entries, every file in the model folders (:mod:`orchestrator.models.folders`)
is a model by its name (``sub/name.safetensors``, with or without the extension). Requests
name models; they never give paths: :meth:`ModelRegistry.resolve_file` and
:meth:`ModelRegistry.entry` look names up and refuse raw paths (absolute, ``..``, ``~``,
URLs) unless ``allow_paths`` (the in-process CLI on the user's own graph).

>>> reg = ModelRegistry([{"name": "mine", "source": "/nowhere/model"}], cache_dir="/tmp/c")
>>> reg.names()[-1], len(reg.names())
('mine', 7)
>>> try:
...     reg.resolve("mine")
... except ModelError as exc:
...     print(exc.to_dict()["reason"], "/nowhere/model" in str(exc))
missing True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.models.errors import ModelError
from orchestrator.models.folders import CONFIG_SIDECAR, ModelFile, ModelFolders
from orchestrator.models.names import FORM_TEXT, KINDS, raw_path_form, shown
from orchestrator.models.safety import PICKLE_SUFFIXES, pickle_refusal, sniff
from orchestrator.models.tiny import TINY_MODELS, tiny_path

Family = Literal["auto", "sd1", "sd1-inpaint", "sd2", "sd2-v", "sd2-inpaint", "sdxl", "sdxl-refiner",
                 "sdxl-inpaint"]


class ModelEntry(BaseModel):
    """One configured model."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                      description="the name blocks use in their model param")
    source: str = Field(..., min_length=1,
                        description="builtin:NAME, a folder, a .safetensors/.onnx file, hf:org/repo[/file]")
    family: Family = Field("auto", description="sd1, sd2, sd2-v, sdxl, sdxl-refiner or an -inpaint variant; "
                                               "auto: read from the model")
    config: str | None = Field(None, description="single-file checkpoints: a diffusers folder or "
                                                 "hf:org/repo with the matching component configs")
    revision: str | None = Field(None, description="hf: sources: branch, tag or commit (default main)")
    vae: str | None = Field(None, description="a VAE to use instead of the model's own: a file in the "
                                              "model folders' vae/ (by name) or a configured entry")
    description: str = Field("", description="what the model is, for people and the agent")

    @property
    def kind(self) -> str:
        """``builtin``, ``hf``, or ``path``."""
        if self.source.startswith("builtin:"):
            return "builtin"
        if self.source.startswith("hf:"):
            return "hf"
        return "path"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model is on disk and what format it is in.

    ``format`` is ``diffusers`` (a folder), ``single_file`` (a checkpoint to convert, see
    ``converted``), ``onnx`` or ``file`` (a LoRA or embedding).
    """

    name: str
    format: str
    path: Path
    entry: ModelEntry
    converted: Path | None = None
    legacy: bool = False  # a .ckpt/.pt pickle, read with torch's weights-only loader

    @property
    def folder(self) -> Path:
        """The diffusers folder to load components from."""
        return self.converted if self.converted is not None else self.path


def builtin_entries() -> list[ModelEntry]:
    return [ModelEntry(name=n, source=f"builtin:{n}", description=d) for n, d in TINY_MODELS.items()]


KIND_TEXT = {"checkpoint": "model", "vae": "VAE", "lora": "LoRA", "embedding": "embedding",
             "controlnet": "ControlNet", "upscaler": "upscale model", "clip_vision": "CLIP vision model",
             "ip_adapter": "IP-Adapter", "onnx": "ONNX model", "hypernetwork": "hypernetwork",
             "diffusion_model": "diffusion model (UNet)", "text_encoder": "text encoder",
             "gligen": "GLIGEN model"}
BUILTIN_KIND = {"tiny-controlnet": "controlnet", "tiny-clip-vision": "clip_vision",
                "tiny-ip-adapter": "ip_adapter"}
# which kind of file each manager component is looked up as
COMPONENT_KIND = {"controlnet": "controlnet", "image_encoder": "clip_vision"}


class ModelRegistry:
    """Named model entries plus the cache directory built-ins and conversions live in.

    ``entries`` are dicts or :class:`ModelEntry`; a later entry replaces an earlier one of
    the same name, and configured entries replace built-ins. ``base_dir`` anchors relative
    paths; ``hf_cache_dir`` is the Hugging Face hub cache (default: its usual place).

    ``folders`` are the user's model folders (:class:`~orchestrator.models.folders.ModelFolders`):
    their files are addressable by name. ``allow_paths`` says whether a name may also be a
    raw file path (the in-process CLI on the user's own graph: yes; the daemon: never).
    ``trusted`` lists strings from the operator's own config (e.g. ``agent.scorer``) that
    may be paths even then.
    """

    def __init__(
        self,
        entries: Iterable[Mapping[str, Any] | ModelEntry] = (),
        *,
        cache_dir: str | Path,
        base_dir: str | Path | None = None,
        hf_cache_dir: str | Path | None = None,
        builtins: bool = True,
        folders: ModelFolders | None = None,
        allow_paths: bool = True,
        trusted: Mapping[str, str] | Iterable[str] = (),
        legacy: str = "weights_only",
    ) -> None:
        if legacy not in ("weights_only", "refuse"):
            raise ValueError(f"legacy must be 'weights_only' or 'refuse', got {legacy!r}")
        self.legacy = legacy
        self.folders = folders if folders is not None else ModelFolders()
        self.allow_paths = allow_paths
        # strings from the operator's config that may be paths, each for one kind of file only
        self.trusted: dict[str, str] = dict(trusted) if isinstance(trusted, Mapping) else \
            {t: "onnx" for t in trusted if t}
        self.cache_dir = Path(cache_dir).expanduser()
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.hf_cache_dir = Path(hf_cache_dir) if hf_cache_dir is not None else None
        self._entries: dict[str, ModelEntry] = {}
        problems = []
        for e in builtin_entries() if builtins else []:
            self._entries[e.name] = e
        for i, raw in enumerate(entries):
            try:
                e = raw if isinstance(raw, ModelEntry) else ModelEntry.model_validate(dict(raw))
            except ValidationError as exc:
                name = raw.get("name", f"#{i}") if isinstance(raw, Mapping) else f"#{i}"
                problems.append(f"model entry {name!r}: " + "; ".join(
                    f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()))
                continue
            self._entries[e.name] = e
        if problems:
            raise ModelError("bad model entries: " + " | ".join(problems), reason="config")

    # -- lookup ----------------------------------------------------------------------------

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str, kind: str = "checkpoint") -> ModelEntry:
        """The entry named ``name``: configured, built-in, or a file of ``kind`` in the model folders."""
        e = self._entries.get(name)
        if e is not None:
            return e
        found = self.folders.find(name, kind) if raw_path_form(name) is None else None
        if found is None and kind == "clip_vision" and raw_path_form(name) is None:
            found = self.folders.find(name, "checkpoint")  # an unCLIP checkpoint's own CLIP vision tower
        if found is not None:
            return folder_entry(found)
        if self._may_be_path(name, kind):
            p = self._path(name)
            if raw_path_form(name) is not None or p.exists():
                return ModelEntry.model_construct(name=name, source=str(p), family="auto", config=None,
                                                  revision=None, description="", vae=None)
        raise self._unknown(name, kind)

    def _may_be_path(self, name: str, kind: str) -> bool:
        """Whether ``name`` may be taken as a file path: paths allowed, or the operator's own string."""
        return self.allow_paths or self.trusted.get(name) == kind

    def _unknown(self, name: str, kind: str, field: str | None = None) -> ModelError:
        what = KIND_TEXT.get(kind, kind)
        form = raw_path_form(name)
        if form is not None and not self._may_be_path(name, kind):
            return ModelError(
                f"{what} {shown(name)}: requests name models, never paths ({FORM_TEXT[form]}); use the "
                f"name of a configured model or of a file in the model folders (`orchestrator models` "
                f"lists them)",
                reason="path", model=shown(name, 200)[1:-1], kind=kind, field=field, form=form)
        known = [n for n, e in self._entries.items()
                 if (BUILTIN_KIND.get(e.source.split(":", 1)[-1], "checkpoint") == kind if e.kind == "builtin"
                     else kind == "checkpoint")]
        known += [n for n in self.folders.names(kind) if "." in n.rsplit("/", 1)[-1]]
        listed = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
        return ModelError(
            f"{what} {shown(name)} is not configured and not a file in the model folders; "
            f"known: {listed or 'none'} (add a [[models]] entry to the config, or put the file in a "
            f"configured model folder)", reason="unknown", model=shown(name, 200)[1:-1], kind=kind,
            field=field)

    def file_names(self, kind: str) -> list[str]:
        """Names of the model-folder files of ``kind`` (each with and without its extension)."""
        return self.folders.names(kind)

    def resolve_file(self, name: str, kind: str, *, field: str | None = None,
                     base: str | Path | None = None) -> Path:
        """The file a request means by ``name``, for a model file of ``kind``.

        ``kind`` is one of ``checkpoint``, ``vae``, ``lora``, ``embedding``, ``controlnet``,
        ``upscaler``, ``clip_vision``, ``ip_adapter``, ``onnx``. ``name`` is a configured
        entry (its file; for an IP-Adapter folder, the ``ip_adapter.safetensors`` in it), a
        file of that kind in the model folders (``sub/name.safetensors``, or without the
        extension), or, only where paths are allowed (the in-process CLI), a file path
        (relative ones under ``base``, else ``base_dir``). Anything else is a
        :class:`ModelError` (``reason`` ``path`` for a raw path, ``unknown`` for a name
        nobody knows) that names ``name`` and ``field`` and says nothing about what is on
        disk outside the model folders.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not isinstance(name, str) or not name:
            raise ModelError(f"{KIND_TEXT[kind]} name must be a non-empty string", reason="unknown",
                             kind=kind, field=field)
        e = self._entries.get(name)
        if e is not None:
            return self._entry_file(e, kind, field)
        if raw_path_form(name) is None:
            found = self.folders.find(name, kind)
            if found is not None:
                if kind == "ip_adapter" and found.is_dir:
                    return found.path / "ip_adapter.safetensors"
                return found.path
        if self._may_be_path(name, kind):
            p = self._path(name)
            if base is not None and not Path(os.path.expanduser(name)).is_absolute():
                in_base = Path(base) / name
                p = in_base if in_base.exists() else p
            if kind == "ip_adapter" and p.is_dir():
                p = p / "ip_adapter.safetensors"
            if p.is_file():
                return p
            raise ModelError(f"{KIND_TEXT[kind]} {shown(name)}: no such file ({p})", reason="missing",
                             model=name, kind=kind, field=field, path=str(p))
        raise self._unknown(name, kind, field)

    def _entry_file(self, e: ModelEntry, kind: str, field: str | None) -> Path:
        r = self.resolve(e.name, build=True)
        if r.format == "diffusers":
            if kind == "ip_adapter":
                return r.path / "ip_adapter.safetensors"
            raise ModelError(f"{KIND_TEXT[kind]} {e.name!r} is a diffusers model folder, not a "
                             f"{KIND_TEXT[kind]} file", reason="format", model=e.name, kind=kind, field=field)
        if kind == "onnx" and r.format != "onnx":
            raise ModelError(f"model {e.name!r} is not an ONNX file ({r.format})", reason="format",
                             model=e.name, kind=kind, field=field)
        return r.path

    def _path(self, raw: str) -> Path:
        p = Path(os.path.expanduser(raw))
        return p if p.is_absolute() else self.base_dir / p

    # -- resolving -------------------------------------------------------------------------

    def resolve(self, name: str, *, build: bool = False, kind: str = "checkpoint") -> ResolvedModel:
        """Where ``name`` lives. ``build=True`` builds a missing built-in first.

        Raises :class:`ModelError` naming the model and where it was looked for when it is
        not there, and refusing pickles.
        """
        e = self.entry(name, kind)
        if e.kind == "builtin":
            return self._resolve_builtin(e, build)
        if e.kind == "hf":
            path = self._resolve_hf(e)
        else:
            path = self._path(e.source)
        return self._classify(e, path)

    def _resolve_builtin(self, e: ModelEntry, build: bool) -> ResolvedModel:
        from orchestrator.models.tiny import ensure_tiny

        which = e.source.split(":", 1)[1]
        if which not in TINY_MODELS:
            raise ModelError(f"model {e.name!r}: no built-in {which!r}; built-ins: {', '.join(TINY_MODELS)}",
                             reason="unknown", model=e.name)
        path = ensure_tiny(which, self.cache_dir) if build else tiny_path(which, self.cache_dir)
        return ResolvedModel(e.name, "diffusers", path, e)

    def _resolve_hf(self, e: ModelEntry) -> Path:
        from huggingface_hub import hf_hub_download, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        spec = e.source[3:].strip("/")
        parts = spec.split("/")
        if len(parts) < 2:
            raise ModelError(f"model {e.name!r}: source {e.source!r} should be hf:org/repo[/file]",
                             reason="config", model=e.name)
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or None
        cache = str(self.hf_cache_dir) if self.hf_cache_dir else None
        try:
            if filename:
                return Path(hf_hub_download(repo, filename, revision=e.revision, cache_dir=cache,
                                            local_files_only=True))
            return Path(snapshot_download(repo, revision=e.revision, cache_dir=cache, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
            from huggingface_hub import constants

            where = cache or constants.HF_HUB_CACHE
            raise ModelError(
                f"model {e.name!r}: {repo}{'/' + filename if filename else ''} "
                f"(revision {e.revision or 'main'}) is not in the local Hugging Face cache {where}; "
                f"nothing is downloaded at run time: fetch it beforehand with "
                f"`huggingface-cli download {repo}{' ' + filename if filename else ''}` "
                f"({type(exc).__name__})",
                reason="missing", model=e.name, path=where,
            ) from None

    def _display(self, e: ModelEntry, path: Path) -> str:
        """How errors name a file: its path for an operator's entry, else the name requested."""
        return str(path) if self._entries.get(e.name) is e else e.name

    def _classify(self, e: ModelEntry, path: Path) -> ResolvedModel:
        shown_path = self._display(e, path)
        if path.is_dir():
            if (path / "config.json").is_file() and not (path / "model_index.json").is_file():
                return ResolvedModel(e.name, "component", path, e)  # one model (a ControlNet, a VAE, ...)
            if not (path / "model_index.json").is_file():
                raise ModelError(
                    f"model {e.name!r}: folder {shown_path!r} is not a diffusers model (no model_index.json)",
                    reason="format", model=e.name, path=shown_path)
            return ResolvedModel(e.name, "diffusers", path, e)
        if not path.is_file():
            source = f" (source {e.source!r})" if shown_path != e.name else ""
            raise ModelError(f"model {e.name!r}: nothing at {shown_path!r}{source}",
                             reason="missing", model=e.name, path=shown_path)
        kind = sniff(path)
        if kind == "pickle":
            if self.legacy == "refuse" or path.suffix.lower() not in (".ckpt", ".pt", ".pth"):
                raise pickle_refusal(shown_path, f"model {e.name!r}:")
            return ResolvedModel(e.name, "single_file", path, e, converted=self.converted_path(e, path, True),
                                 legacy=True)
        if kind == "safetensors":
            fmt = "single_file" if _is_checkpoint(path, shown_path) else "file"
            conv = self.converted_path(e, path) if fmt == "single_file" else None
            return ResolvedModel(e.name, fmt, path, e, converted=conv)
        if kind == "onnx" or path.suffix == ".onnx":
            return ResolvedModel(e.name, "onnx", path, e)
        hint = " (a pickle by its name?)" if path.suffix in PICKLE_SUFFIXES else ""
        raise ModelError(
            f"model {e.name!r}: {shown_path!r} is neither a diffusers folder, a .safetensors file nor an "
            f"ONNX model (content: {kind}){hint}", reason="format", model=e.name, path=shown_path)

    def resolve_config(self, e: ModelEntry) -> Path:
        """The folder named by an entry's ``config`` (for single-file checkpoints)."""
        assert e.config is not None
        if e.config.startswith("hf:"):
            return self._resolve_hf(ModelEntry(name=e.name, source=e.config, revision=e.revision))
        p = self._path(e.config)
        if not p.is_dir():
            raise ModelError(f"model {e.name!r}: config folder {str(p)!r} does not exist",
                             reason="missing", model=e.name, path=str(p))
        return p

    def converted_path(self, e: ModelEntry, checkpoint: Path, legacy: bool = False) -> Path:
        """Where the diffusers conversion of a single-file checkpoint is kept: keyed on the file's
        identity, the config and the dtype, so every name of one file shares one copy."""
        from orchestrator.models.single_file import conversion_key, dtype_of

        config = self.resolve_config(e) if e.config else None
        dtype = "legacy" if legacy else dtype_of(checkpoint)
        return self.cache_dir / "converted" / conversion_key(checkpoint, config, e.family, dtype)

    def onnx_dir(self, name: str) -> Path:
        """Where ``orchestrator export-onnx NAME`` writes the model's ONNX files."""
        return self.cache_dir / "onnx" / name

    # -- reporting -------------------------------------------------------------------------

    def describe(self, loaded: Iterable[str] = ()) -> list[dict[str, Any]]:
        """One dict per entry and per model-folder file: name, kind, family, size, whether it is
        ``loaded`` (names a worker holds; see :func:`loaded_names`), format, where it lives and
        whether it is there. Kinds and families are read from file headers only.
        """
        held = set(loaded)
        out = []
        for e in self._entries.values():
            row: dict[str, Any] = {"name": e.name, "source": e.source, "origin": e.kind, "kind": "checkpoint",
                                   "family": None if e.family == "auto" else e.family,
                                   "description": e.description, "size": None, "loaded": e.name in held}
            try:
                r = self.resolve(e.name)
            except ModelError as exc:
                row.update(format=None, path=exc.details.get("path"), status="error", error=exc.message)
            else:
                row.update(format=r.format, path=str(r.path))
                if r.converted is not None:
                    row["converted"] = str(r.converted)
                if e.kind == "builtin" and not (r.path / "model_index.json").is_file():
                    row["status"] = "built on first use"
                elif r.converted is not None and not (r.converted / "model_index.json").is_file():
                    row["status"] = "converted on first use"
                else:
                    row["status"] = "ready"
                self._describe_file(row, r.path, e.family)
            if e.kind == "builtin":
                which = e.source.split(":", 1)[1]
                row["kind"] = {"tiny-controlnet": "controlnet", "tiny-clip-vision": "clip_vision",
                               "tiny-ip-adapter": "ip_adapter"}.get(which, "checkpoint")
                row["family"] = row["family"] or {"tiny-sd": "sd1", "tiny-sd-inpaint": "sd1-inpaint",
                                                  "tiny-sdxl": "sdxl"}.get(which)
            onnx = self.onnx_dir(e.name)
            if onnx.is_dir():
                row["onnx"] = str(onnx)
            out.append(row)
        for mf in self.folders.files():
            d = self.folders.detect(mf)
            row = {"name": mf.name, "source": "folder", "origin": "folder", "kind": d.kind or mf.kind,
                   "folder_kind": mf.kind, "family": d.family, "size": mf.size if not mf.is_dir else
                   _tree_size(mf.path), "dtype": d.dtype,
                   "loaded": bool({mf.name, mf.stem_name, str(mf.path)} & held),
                   "format": d.details.get("format"), "path": str(mf.path), "description": "",
                   "status": "error" if "error" in d.details else "ready"}
            if "error" in d.details:
                row["error"] = d.details["error"]
            if d.kind not in (None, mf.kind) and mf.kind not in ("onnx", "upscaler"):
                row["warning"] = f"in the {mf.kind} folder but looks like a {d.kind}"
            out.append(row)
        return out

    def _describe_file(self, row: dict[str, Any], path: Path, family: str) -> None:
        from orchestrator.models.detect import detect_file, folder_family

        try:
            if path.is_dir():
                row["size"] = _tree_size(path)
                row["family"] = row["family"] or folder_family(path)
                if (path / "controlnet").is_dir():
                    row["kind"] = "controlnet"
                elif (path / "image_encoder").is_dir() and not (path / "unet").is_dir():
                    row["kind"] = "clip_vision"
            else:
                row["size"] = path.stat().st_size
                d = detect_file(path, None, row["name"])
                row.update(kind=d.kind or "file", dtype=d.dtype)
                row["family"] = row["family"] or d.family
        except (ModelError, OSError):
            pass


def _tree_size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_size
            except OSError:
                continue
    return total


def loaded_names(stats: Mapping[str, Any] | None) -> set[str]:
    """Model names an engine's ``stats()`` says are resident (local engine or Ray workers)."""
    out: set[str] = set()
    if not isinstance(stats, Mapping):
        return out
    held = (stats.get("models") or {}).get("held") if isinstance(stats.get("models"), Mapping) else None
    for h in held or []:
        if isinstance(h, Mapping) and isinstance(h.get("model"), str):
            out.add(h["model"].split("+")[0])
    for w in stats.get("workers") or []:
        if isinstance(w, Mapping):
            out.update(str(m).split("+")[0] for m in w.get("models") or [])
    return out


def _is_checkpoint(path: Path, display: str) -> bool:
    """Whether a safetensors file is a whole SD checkpoint (not a LoRA or an embedding); a
    truncated or malformed file is a :class:`ModelError` naming it as ``display``."""
    from orchestrator.models.detect import read_header

    return any(k.startswith(("model.diffusion_model.", "first_stage_model.", "conditioner.embedders"))
               for k in read_header(path, display).keys)


def folder_entry(mf: ModelFile) -> ModelEntry:
    """The entry of a model-folder file, named as the request named it (``sub/x.safetensors``).

    A checkpoint of an architecture other than the published ones may carry its diffusers
    configs in a sidecar folder ``<stem>.config/`` next to it (``model_index.json`` and the
    component configs, as ``config`` on a model entry; a ControlNet's: its ``config.json``).
    """
    sidecar = mf.path.with_name(mf.path.name.rsplit(".", 1)[0] + CONFIG_SIDECAR) if not mf.is_dir else None
    config = str(sidecar) if sidecar is not None and ((sidecar / "model_index.json").is_file() or (
        sidecar / "config.json").is_file()) else None
    return ModelEntry.model_construct(name=mf.name, source=str(mf.path), family="auto", config=config,
                                      revision=None, description=f"{mf.kind} in the model folders", vae=None)


def family_of(folder: Path) -> str:
    """``sdxl`` or ``sd`` from a diffusers folder's ``model_index.json``."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return "sd"
    return "sdxl" if "text_encoder_2" in index or "XL" in index.get("_class_name", "") else "sd"
