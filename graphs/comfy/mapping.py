"""How a ComfyUI node class becomes blocks of ours: :class:`ComfyMapping`, and what it works with.

A mapping either names one block and how ComfyUI's inputs, widgets and outputs
correspond to its inputs, params and outputs (the declarative form, enough for most
custom nodes a plugin reimplements), or gives a ``convert`` function that builds any
number of nodes through a :class:`NodeContext`.

What flows between ComfyUI nodes during an import is a *value*: :class:`Data` (one of
our outputs, ``"node.port"``), :class:`Model` (a model reference: ComfyUI's ``MODEL``,
``CLIP`` and ``VAE`` become the ``model`` param of the blocks that use them),
:class:`Resource` (a ControlNet or upscaler file name), :class:`Const` (a number or a
string), :class:`Cond` (conditioning not built yet: ComfyUI keeps the positive and the
negative prompt apart until a sampler pairs them, our ``sd.encode_prompt`` takes both)
and :class:`MaskedLatent` (a latent with an inpainting mask).

Mappings live beside their blocks: every block plugin, the built-in ones included
(``plugins/sd/comfy_*.py``, ``plugins/image/comfy_*.py``, ``plugins/upscale/comfy_nodes.py``),
returns the mappings of the ComfyUI classes its blocks reimplement from the
``register_comfy_mappings`` hook, importing what it needs from ``orchestrator`` (which
re-exports :class:`ComfyMapping`, :class:`NodeContext` and the values), as
:class:`ComfyMapping` objects or plain dicts::

    {"class_type": "ImageInvertPlus", "block": "myplugin.invert",
     "inputs": {"image": "image"},          # ComfyUI input -> our input
     "params": {"amount": "strength"},      # our param -> ComfyUI widget
     "outputs": ["image"],                  # our output for each ComfyUI output slot
     "widgets": ["strength"]}               # ComfyUI's widget order (for the UI format)

>>> m = ComfyMapping.coerce({"class_type": "ImageInvertPlus", "block": "myplugin.invert",
...                          "inputs": {"image": "image"}, "outputs": ["image"]})
>>> m.requires, m.outputs
(('myplugin.invert',), ('image',))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from graphs.comfy.api import ComfyNode
from graphs.comfy.samplers import map_sampler

if TYPE_CHECKING:
    from graphs.comfy.importer import Importer


class Unresolved(Exception):
    """A node cannot be converted: an input is missing or its source was left out."""

    def __init__(self, message: str, field: str | None = None, upstream: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.upstream = upstream


# -- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """An output of one of our nodes: ``ref`` is ``"node.port"``."""

    ref: str
    type: str
    size: tuple[int, int] | None = None  # (width, height) in pixels, when known at import
    source_image: Data | None = None  # for a LATENT that VAE-encodes this image


@dataclass(frozen=True)
class Model:
    """A model reference (ComfyUI ``MODEL``, ``CLIP`` or ``VAE``): our name, LoRAs, clip skip."""

    type: str
    name: str
    loras: tuple[tuple[str, float], ...] = ()
    clip_skip: int | None = None
    mapped: bool = True  # False: the ComfyUI name is not in the model map
    comfy_name: str = ""
    sampling: str | None = None  # ModelSamplingDiscrete's prediction override (eps, v_prediction, lcm, x0)
    zsnr: bool | None = None  # ModelSamplingDiscrete's zero terminal SNR
    merge: ModelMerge | None = None  # weights merged from two models (ModelMerge*, CLIPMerge*)
    hypernetworks: tuple[tuple[str, float], ...] = ()  # HypernetworkLoader: (name, strength)
    edm: tuple[str, float, float] | None = None  # ModelSamplingContinuousEDM: sampling, sigma_max, sigma_min
    parts: tuple[tuple[str, str], ...] = ()  # UNETLoader, (Dual)CLIPLoader: (component, file); name @...

    def sampling_params(self) -> dict[str, Any]:
        """The ``model_sampling``/``zsnr`` params of blocks that read the model's sigmas, when overridden."""
        out: dict[str, Any] = {}
        if self.sampling is not None:
            out["model_sampling"] = self.sampling
        if self.zsnr is not None:
            out["zsnr"] = self.zsnr
        return out

    def ref(self, embeddings: Sequence[tuple[str, str]] = (), loras: bool = True) -> str | dict[str, Any]:
        """The ``model`` param: a name, or ``{name, merge, hypernetworks, loras, embeddings}``."""
        if not (loras and self.loras) and not embeddings and self.merge is None and not self.hypernetworks \
                and self.edm is None and not self.parts:
            return self.name
        out: dict[str, Any] = {"name": self.name}
        if self.parts:
            out["parts"] = [[c, n] for c, n in self.parts]
        if self.merge is not None:
            out["merge"] = self.merge.ref()
        if self.edm is not None:
            out["sampling"] = {"type": "continuous_edm", "prediction": self.edm[0], "sigma_max": self.edm[1],
                               "sigma_min": self.edm[2]}
        if self.hypernetworks:
            out["hypernetworks"] = [{"path": p, "strength": s} for p, s in self.hypernetworks]
        if loras and self.loras:
            out["loras"] = [{"path": p, "weight": w} for p, w in self.loras]
        if embeddings:
            out["embeddings"] = [{"path": p, "token": t} for p, t in embeddings]
        return out

    def with_lora(self, path: str, weight: float) -> Model:
        return self if weight == 0 else replace(self, loras=(*self.loras, (path, float(weight))))


@dataclass(frozen=True)
class ModelMerge:
    """How a merged model's weights are made (see ``orchestrator.models.merge``): ``op`` simple, blocks,
    add or subtract of ``a`` and ``b``, on the UNet or the text encoders (``target`` ``clip``)."""

    op: str
    target: str
    a: Model
    b: Model
    ratio: float = 1.0
    blocks: tuple[tuple[str, float], ...] = ()

    def ref(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "target": self.target, "a": self.a.ref(), "b": self.b.ref(),
                               "ratio": self.ratio}
        if self.blocks:
            out["blocks"] = dict(self.blocks)
        return out


@dataclass(frozen=True)
class Resource:
    """A file a block names in a param: a ControlNet (``CONTROL_NET``), an upscaler (``UPSCALE_MODEL``).

    ``diff_base``: a difference ControlNet's model (ComfyUI's DiffControlNetLoader), added to it."""

    type: str
    name: str
    diff_base: Model | None = None

    def ref(self) -> str | dict[str, Any]:
        """The param naming it: the name, or ``{name, diff_base}``."""
        return self.name if self.diff_base is None else {"name": self.name, "diff_base": self.diff_base.ref()}


@dataclass(frozen=True)
class Const:
    """A plain value (``INT``, ``FLOAT``, ``STRING``, ``BOOLEAN``) from a primitive node."""

    type: str
    value: Any


@dataclass(eq=False)
class PairOp:
    """A node that takes and gives both positive and negative (``ControlNetApplyAdvanced``)."""

    node: str
    positive: Any
    negative: Any
    build: Callable[[Importer, Data], Data]


@dataclass(eq=False)
class Cond:
    """Conditioning not built yet; a sampler builds it once it knows its negative.

    ``kind`` is ``text`` (a ``CLIPTextEncode``: ``text`` with ``clip``, and ``params`` for
    ``sd.encode_prompt``'s SDXL ones and the size conditioning of a ``CLIPTextEncodeSDXL``), ``op`` (a node
    that transforms the conditionings in ``args`` with ``build``), ``zero``
    (``ConditioningZeroOut`` of ``args[0]``) or ``pair`` (output ``slot`` of ``pair``).
    """

    node: str
    kind: str
    text: str = ""
    clip: Model | None = None
    args: tuple[Any, ...] = ()
    build: Callable[[Importer, list[Data]], Data] | None = None
    pair: PairOp | None = None
    slot: int = 0
    type: str = "CONDITIONING"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskedLatent:
    """A latent to inpaint: the ``image`` it encodes and the ``mask`` (1 = repaint).

    ``plain`` gives the latent itself for consumers that are not samplers.
    """

    node: str
    image: Data
    mask: Data
    plain: Callable[[], Data]
    type: str = "LATENT"

    @property
    def size(self) -> tuple[int, int] | None:
        return self.image.size


@dataclass(eq=False)
class Lazy:
    """An output built only when something reads it (``LoadImage``'s ``MASK``)."""

    make: Callable[[], Any]


Value = Data | Model | Resource | Const | Cond | MaskedLatent


def value_type(value: Any) -> str | None:
    return getattr(value, "type", None)


# -- mappings ---------------------------------------------------------------------------------

ConvertFn = Callable[["NodeContext"], Sequence[Any]]


@dataclass(frozen=True)
class ComfyMapping:
    """How one ComfyUI class is imported.

    Declarative: ``block`` with ``inputs`` (ComfyUI input -> our input), ``params`` (our
    param -> ComfyUI widget name, or a function of the widget values dict), ``models``
    (our param -> ComfyUI ``MODEL``/``CLIP``/``VAE`` input, given as a model reference),
    ``outputs`` (our output port for each ComfyUI output slot). Or ``convert(ctx)``
    returning one value per output slot.

    ``widgets`` is the class's widget order in the UI format, ``input_types`` the ComfyUI
    type of each link input (used to pass values through unsupported nodes),
    ``requires`` the blocks the catalog must offer (``"block"`` or ``"block:param"``;
    by default ``block``), ``output_node`` marks workflow outputs (``SaveImage``).
    """

    class_type: str
    block: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str | Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    widgets: Sequence[str] = ()
    input_types: Mapping[str, str] = field(default_factory=dict)
    output_types: Sequence[str] = ()
    convert: ConvertFn | None = None
    requires: Sequence[str] | None = None
    output_node: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)  # widget defaults

    def __post_init__(self) -> None:
        if not isinstance(self.class_type, str) or not self.class_type:
            raise ValueError("a ComfyUI mapping needs a class_type")
        if self.block is None and self.convert is None:
            raise ValueError(f"mapping for {self.class_type!r}: give a block or a convert function")
        if self.requires is None:
            object.__setattr__(self, "requires", (self.block,) if self.block else ())
        object.__setattr__(self, "requires", tuple(self.requires or ()))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "widgets", tuple(self.widgets))
        object.__setattr__(self, "output_types", tuple(self.output_types))

    @classmethod
    def coerce(cls, item: ComfyMapping | Mapping[str, Any]) -> ComfyMapping:
        """A mapping from a :class:`ComfyMapping` or a plain dict of its fields."""
        if isinstance(item, ComfyMapping):
            return item
        if not isinstance(item, Mapping):
            raise ValueError(f"a ComfyUI mapping is a ComfyMapping or a dict, got {type(item).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(item) - known)
        if unknown:
            raise ValueError(f"mapping for {item.get('class_type')!r}: unknown fields {unknown}")
        return cls(**dict(item))


# -- the per-node context ------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def file_name(prefix: str) -> str:
    """A ComfyUI ``filename_prefix`` (``"%date%/portraits/fox"``) as one of our output names (``"fox"``).

    >>> file_name("%date:yyyy-MM-dd%/portraits/fox"), file_name("../..")
    ('fox', 'ComfyUI')
    """
    last = re.sub(r"%[^%]*%", "", prefix.replace("\\", "/")).rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_\-]+", "_", last).strip("_-")
    return name[:100] or "ComfyUI"


def snake(class_type: str) -> str:
    """``"CLIPTextEncode"`` -> ``"clip_text_encode"``; ``"KSampler"`` -> ``"ksampler"``.

    >>> snake("VAEEncodeForInpaint"), snake("KSamplerAdvanced"), snake("Load Image (custom)")
    ('vae_encode_for_inpaint', 'ksampler_advanced', 'load_image_custom')
    """
    parts = _CAMEL.sub("_", class_type)
    if re.match(r"^[A-Z]_[A-Z][a-z]", parts):  # a lone leading capital stays on: KSampler
        parts = parts[0] + parts[2:]
    out = re.sub(r"[^A-Za-z0-9]+", "_", parts).strip("_").lower()
    return out or "node"


class NodeContext:
    """What a ``convert`` function gets: the ComfyUI node and ways to read it and build ours."""

    def __init__(self, importer: Importer, node: ComfyNode, mapping: ComfyMapping) -> None:
        self.importer = importer
        self.node = node
        self.mapping = mapping

    @property
    def id(self) -> str:
        return self.node.id

    # reading the ComfyUI node

    def input(self, name: str, optional: bool = False) -> Any:
        """The value linked to input ``name``; :class:`Unresolved` when it has none."""
        link = self.node.link(name)
        if link is None:
            if optional:
                return None
            raise Unresolved(f"input {name!r} is not connected", field=name)
        return self.importer.resolve(link[0], link[1], self.input_type(name), field=name)

    def data(self, name: str, optional: bool = False) -> Data | None:
        """The linked value as one of our outputs (a masked latent gives its latent)."""
        value = self.input(name, optional)
        if value is None:
            return None
        if isinstance(value, MaskedLatent):
            return value.plain()
        if not isinstance(value, Data):
            raise Unresolved(f"input {name!r} is {value_type(value)}, not data", field=name)
        return value

    def conditioning(self, name: str) -> Cond | Data:
        """The linked value as conditioning: built (:class:`Data`) or not yet (:class:`Cond`)."""
        value = self.input(name)
        if not isinstance(value, (Cond, Data)) or value.type != "CONDITIONING":
            raise Unresolved(f"input {name!r} is not conditioning", field=name)
        return value

    def model(self, name: str) -> Model:
        value = self.input(name)
        if not isinstance(value, Model):
            raise Unresolved(f"input {name!r} is {value_type(value)}, not a model", field=name)
        return value

    def widget(self, name: str, default: Any = None) -> Any:
        """A widget's value (a constant linked to it counts); the class default when absent."""
        if name not in self.node.inputs:
            return self.importer.widget_default(self.node.class_type, name, default)
        value = self.node.inputs[name]
        link = self.node.link(name)
        if link is None:
            return value
        try:
            got = self.importer.resolve(link[0], link[1], None, field=name)
        except Unresolved as exc:
            got = exc
        if isinstance(got, Const):
            return got.value
        fallback = self.importer.widget_default(self.node.class_type, name, default)
        self.error("unsupported_input", f"widget {name!r} is linked to a value that is not a constant; "
                   f"using {fallback!r}", field=name)
        return fallback

    def widget_names(self) -> tuple[str, ...]:
        """This node's class's widgets in ComfyUI's order (its mapping's, else ComfyUI's declaration)."""
        return self.importer.widget_names(self.node.class_type)

    def input_type(self, name: str) -> str | None:
        return self.importer.input_type(self.node.class_type, name)

    # building ours

    def add(self, block: str, *, inputs: Mapping[str, Any] | None = None,
            params: Mapping[str, Any] | None = None, suffix: str = "",
            meta: Mapping[str, Any] | None = None, tile: Mapping[str, Any] | None = None) -> str:
        """Add a node running ``block``; ``inputs`` values are :class:`Data` (or lists). Returns its id.

        ``tile``: the node's tiling (``{"size": 512, "overlap": 32}``), as a graph's ``tile`` field.
        """
        return self.importer.add_node(self.node, block, inputs or {}, params or {}, suffix=suffix, meta=meta,
                                      tile=tile)

    def save_name(self, prefix: str) -> str:
        """An output name for a ComfyUI ``filename_prefix``, unique in this import."""
        return self.importer.unique_name(file_name(prefix))

    def sampler(self, sampler: str, scheduler: str) -> tuple[str, str | None]:
        """The ``sampler`` of ours (``sd.denoise``'s) nearest ComfyUI's ``sampler``/``scheduler`` pair, and
        why it is not exact (``None`` when it is); see :func:`graphs.comfy.samplers.map_sampler`."""
        return map_sampler(sampler, scheduler, self.importer.samplers())

    def has(self, requirement: str) -> bool:
        """Whether the catalog offers ``requirement``: ``"block"``, ``"block:param"`` or ``"a|b"``."""
        return self.importer.available(requirement)

    def next_suffix(self) -> str:
        """``""`` for the first node built from this ComfyUI node, then ``"_2"``, ``"_3"``, ..."""
        count = self.importer.built.get(self.id, 0)
        self.importer.built[self.id] = count + 1
        return f"_{count + 1}" if count else ""

    def model_name(self, comfy_name: str, field: str) -> tuple[str, bool]:
        """``(our name, mapped?)`` for a ComfyUI file name, through the model map."""
        return self.importer.map_model(comfy_name, self.node, field)

    def has_block(self, block: str) -> bool:
        return self.importer.has_block(block)

    def warn(self, message: str, field: str | None = None, **details: Any) -> None:
        self.importer.report("approximated", f"ComfyUI node {self.id} ({self.node.class_type}): {message}",
                             node=self.id, field=field, severity="warning", **details)

    def error(self, type: str, message: str, field: str | None = None, **details: Any) -> None:
        self.importer.report(type, f"ComfyUI node {self.id} ({self.node.class_type}): {message}",
                             node=self.id, field=field, **details)
