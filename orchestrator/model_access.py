"""The typed model interface a block gets as ``ctx.models``.

Blocks name their models in params (a model reference: a registered name, or a dict with
LoRAs, embeddings, hypernetworks or a merge) and ask :class:`Models` for the parts they
need, one method per kind of part::

    info = ctx.models.info(ref)                      # ModelInfo: family, configs (no weights)
    unet = ctx.models.unet(ref, device=device)       # a diffusers UNet, resident on the worker
    vae = ctx.models.vae(ref, device=device)
    tokenizers = ctx.models.tokenizers(ref)          # one (SD) or two (SDXL), in order
    encoders = ctx.models.text_encoders(ref, device=device)
    session = ctx.models.onnx(ref, "unet", device=device)

The parts come from a :class:`ModelProvider` (the model manager on a worker, or in the
in-process executor), which loads each part once and keeps it resident under a memory
budget; :class:`Models` only names what it asks for. ``device`` defaults to the context's
device (CUDA when asked for and present, else CPU).

:meth:`Models.load` (``load(ref, component, device=...)``, the provider's own call by
component name) stays as the low-level path for a provider's components that have no
method here (a third-party provider's own parts); blocks use the typed methods.

>>> class Fake:
...     def load(self, ref, component=None, *, device="cpu"):
...         return (ref, component, device)
>>> m = Models(Fake(), node="n", device="cpu")
>>> m.unet("tiny-sd"), m.onnx("tiny-sd", "vae_decoder"), m.tokenizer("tiny-sd", 2)
(('tiny-sd', 'unet', 'cpu'), ('tiny-sd', 'onnx:vae_decoder', 'cpu'), ('tiny-sd', 'tokenizer_2', 'cpu'))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from orchestrator.errors import BlockError
from orchestrator.runtime.devices import resolve_device  # imports torch only when called

if TYPE_CHECKING:
    from orchestrator.models.upscalers import Upscaler

# the parts of a model a provider serves (``ModelProvider.load``'s ``component``)
Component = Literal["info", "unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2",
                    "controlnet", "image_encoder", "scheduler", "upscaler", "onnx"]
# the exported ONNX parts of a checkpoint (``orchestrator export-onnx``)
OnnxPart = Literal["text_encoder", "text_encoder_2", "unet", "vae_encoder", "vae_decoder"]


@dataclass(frozen=True)
class ModelInfo:
    """What blocks need to know about a model without loading weights."""

    name: str
    family: str  # "sd" or "sdxl"
    folder: Path
    pipeline_class: str
    components: tuple[str, ...]
    unet: dict[str, Any] = field(default_factory=dict)
    vae: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    text_encoder: dict[str, Any] = field(default_factory=dict)
    force_zeros_for_empty_prompt: bool = False

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.get("block_out_channels", [0, 0, 0, 0])) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.get("latent_channels", 4))

    @property
    def is_inpaint(self) -> bool:
        return int(self.unet.get("in_channels", 4)) == 9


class ModelProvider(Protocol):
    """Loads models by reference and keeps them resident (see the model manager).

    ``component`` is one of :data:`Component`, ``"onnx:<part>"`` (an :data:`OnnxPart`),
    ``"file:<kind>"``, or ``None`` (a diffusers pipeline). A provider may also offer
    ``resolve_file(name, kind, *, field, base)`` and ``check(ref, component)``
    (:meth:`Models.file`, :meth:`Models.check` use them when it does).
    """

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        """The loaded model (or one component of it) named by ``ref``."""
        ...


class NoModels:
    """The provider of a context built without one: every load is a structured error."""

    def __init__(self, node: str) -> None:
        self.node = node

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        raise BlockError(
            f"node {self.node!r} needs model {ref!r} but this executor has no model registry",
            type="model", node=self.node, field="params.model",
        )


class Models:
    """Typed access to the models of one node, over a :class:`ModelProvider`.

    ``node`` names the node in errors; ``device`` is the default device of the loads (the
    context's, resolved when first needed).
    """

    def __init__(self, provider: ModelProvider, *, node: str = "", device: str | None = None) -> None:
        self.provider = provider
        self.node = node
        self._device = device

    @classmethod
    def over(cls, models: Models | ModelProvider | None, *, node: str, device: str | None = None) -> Models:
        """The facade for ``models`` (a provider, another node's facade, or None: no models)."""
        if isinstance(models, Models):
            models = models.provider
        return cls(models if models is not None else NoModels(node), node=node, device=device)

    def _dev(self, device: str | None) -> str:
        return device if device is not None else resolve_device(self._device)

    # -- what a model is ------------------------------------------------------------------------

    def info(self, ref: Any) -> ModelInfo:
        """Family, folder and component configs of ``ref`` (reads configs, loads no weights)."""
        return self.provider.load(ref, "info")

    def check(self, ref: Any, component: str | None = None) -> None:
        """Resolve ``ref`` (and its LoRAs, embeddings...) by name now, loading nothing; a provider
        that cannot check ahead checks when the part is loaded."""
        check = getattr(self.provider, "check", None)
        if check is not None:
            check(ref, component)

    def file(self, name: str, kind: str, *, field: str, base: str | Path | None = None) -> Path:
        """The model file of ``kind`` (``onnx``, ``ip_adapter``, ...) that ``name`` means: by name in
        the model folders (``base`` anchors a relative path where paths are allowed)."""
        resolve = getattr(self.provider, "resolve_file", None)
        if resolve is None:
            raise BlockError(f"node {self.node!r}: {field} {name!r}: this run has no model manager to find "
                             f"model files", type="model", node=self.node, field=field, value=name)
        return Path(resolve(name, kind, field=field, base=base))

    # -- diffusers / transformers parts ---------------------------------------------------------

    def unet(self, ref: Any, *, device: str | None = None) -> Any:
        """The denoising UNet (``diffusers.UNet2DConditionModel``, or the batcher's wrapper of one)."""
        return self.provider.load(ref, "unet", device=self._dev(device))

    def vae(self, ref: Any, *, device: str | None = None) -> Any:
        """The VAE (``diffusers.AutoencoderKL``; the model's VAE override when it names one)."""
        return self.provider.load(ref, "vae", device=self._dev(device))

    def tokenizer(self, ref: Any, index: Literal[1, 2] = 1) -> Any:
        """The first (``index`` 1) or second (SDXL's ``tokenizer_2``) CLIP tokenizer."""
        return self.provider.load(ref, "tokenizer" if index == 1 else "tokenizer_2")

    def text_encoder(self, ref: Any, index: Literal[1, 2] = 1, *, device: str | None = None) -> Any:
        """The first (``index`` 1) or second (SDXL's ``text_encoder_2``) CLIP text model."""
        return self.provider.load(ref, "text_encoder" if index == 1 else "text_encoder_2",
                                  device=self._dev(device))

    def tokenizers(self, ref: Any) -> list[Any]:
        """The tokenizers the model's family prompts with: one for SD, two for SDXL."""
        return [self.tokenizer(ref, i) for i in self._indices(ref)]

    def text_encoders(self, ref: Any, *, device: str | None = None) -> list[Any]:
        """The text encoders the model's family prompts with, in the order of :meth:`tokenizers`."""
        dev = self._dev(device)
        return [self.text_encoder(ref, i, device=dev) for i in self._indices(ref)]

    def _indices(self, ref: Any) -> tuple[Literal[1, 2], ...]:
        info = self.info(ref)
        if info.family != "sdxl":
            return (1,)
        return (1, 2) if "text_encoder" in info.components else (2,)  # the SDXL refiner: CLIP-G alone

    def controlnet(self, ref: Any, *, device: str | None = None) -> Any:
        """A ControlNet (``diffusers.ControlNetModel``) by name."""
        return self.provider.load(ref, "controlnet", device=self._dev(device))

    def image_encoder(self, ref: Any, *, device: str | None = None) -> Any:
        """A CLIP vision encoder (``transformers.CLIPVisionModelWithProjection``) by name."""
        return self.provider.load(ref, "image_encoder", device=self._dev(device))

    def scheduler(self, ref: Any) -> Any:
        """A fresh diffusers scheduler of the model's own class and config (each call a new one)."""
        return self.provider.load(ref, "scheduler")

    def pipeline(self, ref: Any, *, device: str | None = None) -> Any:
        """A diffusers pipeline of the model's class, assembled from its resident parts."""
        return self.provider.load(ref, None, device=self._dev(device))

    # -- other kinds of model ---------------------------------------------------------------------

    def upscaler(self, name: Any, *, device: str | None = None) -> Upscaler:
        """An upscale model (ESRGAN, SwinIR, ...) by name: an
        :class:`~orchestrator.models.upscalers.Upscaler`."""
        return self.provider.load(name, "upscaler", device=self._dev(device))

    def onnx(self, ref: Any, part: OnnxPart | None = None, *, device: str | None = None) -> Any:
        """An onnxruntime session: the exported ``part`` of checkpoint ``ref``, or (``part`` None) the
        ONNX file ``ref`` names (a name from :meth:`file`)."""
        return self.provider.load(ref, "onnx" if part is None else f"onnx:{part}", device=self._dev(device))

    # -- the low-level path -----------------------------------------------------------------------

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        """The provider's own call: ``component`` by name (see :class:`ModelProvider`), on
        ``device`` as given. For a provider's parts that have no typed method; blocks use the
        typed methods."""
        return self.provider.load(ref, component, device=device)

    def __repr__(self) -> str:
        return f"Models({self.provider!r}, node={self.node!r})"
