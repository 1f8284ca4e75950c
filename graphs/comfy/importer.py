"""Converting an API-format ComfyUI prompt into one of our graphs.

The import is demand-driven, as ComfyUI's execution is: it starts from the workflow's
outputs (``SaveImage``, ``PreviewImage``, output nodes of plugin mappings) and from every
node it cannot map, and converts what they read. A node whose class has no mapping (a
custom node; or a core class whose block the catalog lacks) is reported once, as an
``unsupported_node`` error, and treated like ComfyUI's *bypass*: each of its outputs
takes the value of its input of the same type when it has one. A node that cannot be
built (an input not connected, or fed only by something left out) is reported as
``dropped_node``. Approximations are reported as warnings (``"severity": "warning"``);
every other problem has ``"severity": "error"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from graphs.catalog import Catalog
from graphs.comfy.api import ComfyNode
from graphs.comfy.known import KNOWN
from graphs.comfy.mapping import (
    ComfyMapping,
    Cond,
    Data,
    Lazy,
    MaskedLatent,
    NodeContext,
    Unresolved,
    file_name,
    snake,
    value_type,
)
from graphs.comfy.noise_mask import carry_noise_mask
from graphs.comfy.primitives import PRIMITIVE_MAPPINGS
from graphs.comfy.refused import refusal
from graphs.comfy.samplers import OUR_SAMPLERS
from graphs.errors import GraphError
from graphs.model import Graph, Node, TileSpec


class _Dropped:
    def __init__(self, reason: Unresolved) -> None:
        self.reason = reason


_BYPASS = object()
_ID_CHARS = re.compile(r"[^A-Za-z0-9_\-]+")


# what the import maps itself: the primitive, string, math and switch nodes it computes (primitives.py)
OWN_MAPPINGS: tuple[ComfyMapping, ...] = PRIMITIVE_MAPPINGS


def mapping_table(extra: Iterable[Any] = ()) -> tuple[dict[str, ComfyMapping], list[GraphError]]:
    """The import's own mappings, then ``extra`` ones (the plugins', built-in plugins' included: see
    ``orchestrator.plugins.comfy_mappings``): an extra one replaces an own one of its class, and the first
    extra one for a class wins."""
    table = {m.class_type: m for m in OWN_MAPPINGS}
    problems = []
    added: set[str] = set()
    for item in extra:
        try:
            m = ComfyMapping.coerce(item)
        except (TypeError, ValueError) as exc:
            problems.append(GraphError(f"bad ComfyUI mapping: {exc}", type="bad_mapping", severity="error"))
            continue
        if m.class_type in added:
            problems.append(GraphError(f"ComfyUI class {m.class_type!r} is mapped twice; the first mapping "
                                       "is used", type="bad_mapping", field="class_type", value=m.class_type,
                                       severity="warning"))
            continue
        added.add(m.class_type)
        table[m.class_type] = m
    return table, problems


class Importer:
    """One import: the ComfyUI nodes, the mappings, the catalog; builds our nodes and problems."""

    def __init__(self, nodes: Mapping[str, ComfyNode], mappings: Mapping[str, ComfyMapping],
                 catalog: Catalog | None = None, model_map: Mapping[str, str] | None = None) -> None:
        self.nodes = dict(nodes)
        self.mappings = mappings
        self.catalog = catalog
        self.model_map = _model_keys(model_map or {})
        self.graph_nodes: dict[str, Node] = {}
        self.problems: list[GraphError] = []
        self.models_used: dict[str, str] = {}
        self.latents: list[str] = []
        self.cond_memo: dict[tuple[int, int], Data] = {}
        self.encode_memo: dict[str, Data] = {}
        self.encoded: set[str] = set()
        self.built: dict[str, int] = {}
        self.regex_seconds = 0.0  # time the string nodes' regular expressions took (graphs.comfy.primitives)
        self._values: dict[str, Any] = {}
        self._active: list[str] = []
        self._reported: set[tuple[str, str | None, str | None]] = set()
        self._names: set[str] = set()
        self.primary_model = self._primary_model()

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> Graph:
        unsupported = set()
        for node in self.nodes.values():
            if self.mapping_for(node.class_type) is None:
                unsupported.add(node.id)
                self._report_unsupported(node)
        read = {src for n in self.nodes.values() for _name, src, _slot in n.links()}
        outputs: set[str] = set()
        for node_id in sorted(self.nodes, key=_id_order):
            if node_id in unsupported and node_id not in read:
                outputs |= self._implicit_save(self.nodes[node_id])
            elif getattr(self.mapping_for(self.nodes[node_id].class_type), "output_node", False):
                self._convert(node_id)
                outputs |= {k for k, n in self.graph_nodes.items() if n.meta["comfy"]["id"] == node_id}
        self._prune(outputs)
        self._fix_latent_models()
        meta: dict[str, Any] = {"imported_from": "comfyui"}
        if self.models_used:
            meta["comfy_models"] = dict(sorted(self.models_used.items()))
        return Graph(nodes=self.graph_nodes, meta=meta)

    def _implicit_save(self, node: ComfyNode) -> set[str]:
        """An unmapped output node (nothing reads it) that takes an image: save that image instead."""
        for name, src, slot in node.links():
            try:
                value = self.resolve(src, slot, "IMAGE", field=name)
            except Unresolved:
                continue
            if isinstance(value, Data) and value.type == "IMAGE":
                prefix = node.inputs.get("filename_prefix")
                stem = prefix if isinstance(prefix, str) and prefix else snake(node.class_type)
                save = self.add_node(node, "image.save", {"image": value},
                                     {"name": self.unique_name(file_name(stem))})
                self.report("approximated", f"ComfyUI node {node.id} ({node.class_type}) is an output no "
                            f"plugin maps; the image at its input {name!r} is saved with image.save instead",
                            node=node.id, field=name, severity="warning")
                return {save}
        return set()

    def _prune(self, outputs: set[str]) -> None:
        """Keep only the outputs and what they read (ComfyUI runs nothing else either)."""
        keep, stack = set(), list(outputs)
        while stack:
            current = stack.pop()
            if current in keep or current not in self.graph_nodes:
                continue
            keep.add(current)
            stack.extend(ref.split(".")[0] for _n, _i, ref in self.graph_nodes[current].references())
        self.graph_nodes = {k: v for k, v in self.graph_nodes.items() if k in keep}
        self.latents = [n for n in self.latents if n in keep]

    def _report_unsupported(self, node: ComfyNode) -> None:
        known = self.mappings.get(node.class_type)
        reason = refusal(node.class_type) if known is None else None
        if reason is not None:
            self.report("unsupported_node", f"ComfyUI node {node.id} ({node.class_type}) is refused: "
                        f"{reason}; it is left out (its outputs take its inputs of the same type, where it "
                        "has one)",
                        node=node.id, field="class_type", value=node.class_type, reason=reason)
            return
        if known is not None:
            missing = [r for r in known.requires or () if not self.available(r)]
            why = f"needs {_requirement(missing[0])}, which the catalog does not have" if missing else \
                "is not available"
        else:
            why = ("has no mapping (a custom node, or a core one without a block of ours; a plugin can "
                   "map it with the register_comfy_mappings hook)")
        self.report("unsupported_node", f"ComfyUI node {node.id} ({node.class_type}) {why}; it is left out "
                    "(its outputs take its inputs of the same type, where it has one)",
                    node=node.id, field="class_type", value=node.class_type)

    # -- conversion ---------------------------------------------------------------------------

    def _convert(self, node_id: str) -> Any:
        if node_id in self._values:
            return self._values[node_id]
        node = self.nodes.get(node_id)
        if node is None:
            raise Unresolved(f"there is no ComfyUI node {node_id!r}", upstream=node_id)
        if node_id in self._active:
            raise Unresolved(f"nodes form a cycle through ComfyUI node {node_id}", upstream=node_id)
        mapping = self.mapping_for(node.class_type)
        if mapping is None:
            self._values[node_id] = _BYPASS
            return _BYPASS
        self._active.append(node_id)
        try:
            ctx = NodeContext(self, node, mapping)
            values: Any = list(mapping.convert(ctx) if mapping.convert else declarative(ctx))
            values = carry_noise_mask(self, node, values)  # a latent's noise mask rides along, as in ComfyUI
        except Unresolved as exc:
            upstream = f" (ComfyUI node {exc.upstream} is left out)" if exc.upstream else ""
            self.report("dropped_node", f"ComfyUI node {node_id} ({node.class_type}) is left out: "
                        f"{exc.message}{upstream}", node=node_id, field=exc.field, upstream=exc.upstream)
            values = _Dropped(exc)
        except (TypeError, ValueError, OverflowError) as exc:  # a widget of the wrong type: int(None), "abc"
            bad = Unresolved(f"a widget value is of the wrong type or out of range ({exc})")
            self.report("invalid_input", f"ComfyUI node {node_id} ({node.class_type}) is left out: "
                        f"{bad.message}", node=node_id, field=None)
            values = _Dropped(bad)
        finally:
            self._active.pop()
        self._values[node_id] = values
        return values

    def resolve(self, src: str, slot: int, want: str | None, field: str | None) -> Any:
        """The value of output ``slot`` of ComfyUI node ``src`` (bypassing unsupported nodes)."""
        values = self._convert(src)
        if isinstance(values, _Dropped):
            raise Unresolved(f"input {field!r} reads ComfyUI node {src}, which is left out", field=field,
                             upstream=src)
        if values is _BYPASS:
            return self._bypass(src, slot, want, field)
        if slot >= len(values) or values[slot] is None:
            raise Unresolved(f"input {field!r} reads output {slot} of ComfyUI node {src} "
                             f"({self.nodes[src].class_type}), which ours does not make", field=field,
                             upstream=src)
        if isinstance(values[slot], Lazy):
            values[slot] = values[slot].make()
        return values[slot]

    def _bypass(self, src: str, slot: int, want: str | None, field: str | None) -> Any:
        links = self.nodes[src].links()
        order = ([links[slot]] if slot < len(links) else []) + links
        for _name, origin, origin_slot in order:
            try:
                value = self.resolve(origin, origin_slot, want, field)
            except Unresolved:
                continue
            if want is None or value_type(value) == want:
                return value
        raise Unresolved(f"input {field!r} reads ComfyUI node {src} ({self.nodes[src].class_type}), which is "
                         f"left out and has no {want or 'matching'} input to pass on", field=field,
                         upstream=src)

    # -- what mappings use -------------------------------------------------------------------------

    def mapping_for(self, class_type: str) -> ComfyMapping | None:
        m = self.mappings.get(class_type)
        if m is None or not all(self.available(r) for r in m.requires or ()):
            return None
        return m

    def has_block(self, block: str) -> bool:
        """Whether the catalog has ``block``; without a catalog every block is taken to be there."""
        return self.catalog is None or block in self.catalog

    def spec(self, block: str) -> Any:
        return None if self.catalog is None else self.catalog.get(block)

    def available(self, requirement: str) -> bool:
        """Whether the catalog offers ``requirement``: ``"block"``, ``"block:param"``, or alternatives
        ``"a|b"`` (any one)."""
        return any(self._has(r) for r in requirement.split("|"))

    def _has(self, requirement: str) -> bool:
        block, _, param = requirement.partition(":")
        if not self.has_block(block):
            return False
        if not param:
            return True
        spec = self.spec(block)
        return spec is not None and param in spec.params_schema().get("properties", {})

    def ports(self, block: str, type: str, direction: str) -> list[str]:
        """Names of ``block``'s ports of ``type`` (``"input"`` or ``"output"``), in order."""
        spec = self.spec(block)
        if spec is None:
            return []
        return [p.name for p in (spec.inputs if direction == "input" else spec.outputs) if p.type == type]

    def port(self, block: str, type: str, direction: str) -> str:
        found = self.ports(block, type, direction)
        return found[0] if found else {"CONDITIONING": "cond", "IMAGE": "image", "LATENT": "latent"}.get(
            type, type.lower())

    def params_for(self, block: str, values: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
        """Params by the first candidate name ``block`` declares (the first name without a catalog)."""
        spec = self.spec(block)
        props = spec.params_schema().get("properties", {}) if spec is not None else None
        out = {}
        for names, value in values.items():
            name = names[0] if props is None else next((n for n in names if n in props), None)
            if name is not None:
                out[name] = value
        return out

    def samplers(self) -> tuple[str, ...]:
        spec = self.spec("sd.denoise")
        if spec is None:
            return OUR_SAMPLERS
        prop = spec.params_schema().get("properties", {}).get("sampler", {})
        return tuple(prop.get("enum") or OUR_SAMPLERS)

    def widget_names(self, class_type: str) -> tuple[str, ...]:
        """``class_type``'s widgets in ComfyUI's order: its mapping's, else ComfyUI's declaration."""
        m = self.mappings.get(class_type)
        if m is not None and m.widgets:
            return tuple(m.widgets)
        info = KNOWN.get(class_type)
        return info.widget_names() if info is not None else ()

    def input_type(self, class_type: str, name: str) -> str | None:
        m = self.mappings.get(class_type)
        if m is not None and name in m.input_types:
            return m.input_types[name]
        info = KNOWN.get(class_type)
        return info.inputs.get(name) if info else None

    def widget_default(self, class_type: str, name: str, default: Any) -> Any:
        m = self.mappings.get(class_type)
        if m is not None and name in m.defaults:
            return m.defaults[name]
        info = KNOWN.get(class_type)
        found = info.default(name) if info else None
        return default if found is None else found

    # -- building ----------------------------------------------------------------------------

    def add_node(self, comfy: ComfyNode, block: str, inputs: Mapping[str, Any], params: Mapping[str, Any], *,
                 suffix: str = "", meta: Mapping[str, Any] | None = None,
                 tile: Mapping[str, Any] | None = None) -> str:
        base = f"{snake(comfy.class_type)}_{_ID_CHARS.sub('_', comfy.id)}{_ID_CHARS.sub('_', suffix)}"
        if not base[0].isalpha():
            base = f"n_{base}"
        node_id, n = base, 2
        while node_id in self.graph_nodes:
            node_id, n = f"{base}_{n}", n + 1
        wired: dict[str, str | list[str]] = {}
        for name, value in inputs.items():
            if isinstance(value, list):
                wired[name] = [v.ref for v in value]
            elif value is not None:
                wired[name] = value.ref
        info = {"id": comfy.id, "class_type": comfy.class_type, **(meta or {})}
        self.graph_nodes[node_id] = Node(block=block, inputs=wired, params=dict(params), meta={"comfy": info},
                                         tile=TileSpec(**tile) if tile is not None else None)
        return node_id

    def unique_name(self, name: str) -> str:
        out, n = name, 2
        while out in self._names:
            out, n = f"{name}_{n}", n + 1
        self._names.add(out)
        return out

    def lookup_model(self, comfy_name: str) -> tuple[str | None, bool]:
        for key in _name_keys(comfy_name):
            if key in self.model_map:
                return self.model_map[key], True
        return None, False

    def map_model(self, comfy_name: str, node: ComfyNode, field: str,
                  kind: str = "model") -> tuple[str, bool]:
        """``(our name, mapped?)``; an unmapped name is kept as it is, with a warning."""
        ours, mapped = self.lookup_model(comfy_name)
        if ours is None:
            ours = comfy_name
            self.report("unmapped_model", f"ComfyUI {kind} {comfy_name!r} (node {node.id}) is not in the "
                        f"model map; it is kept as {comfy_name!r} (map it with --model-map "
                        f"'{comfy_name}=OURS')", node=node.id, field=field, value=comfy_name,
                        severity="warning", dedupe=comfy_name)
        self.models_used[comfy_name] = ours
        return ours, mapped

    def report(self, type: str, message: str, node: str | None = None, field: str | None = None,
               severity: str = "error", dedupe: str | None = None, **details: Any) -> None:
        key = (type, dedupe or node, None if dedupe else field)
        if key in self._reported:
            return
        self._reported.add(key)
        if node is not None and node in self.nodes:
            details.setdefault("comfy_class", self.nodes[node].class_type)
        self.problems.append(GraphError(message, type=type, node=node, field=field, severity=severity,
                                        **details))

    # -- finishing -------------------------------------------------------------------------------

    def _primary_model(self) -> str | None:
        """The first checkpoint in the model map: what separate, unmapped VAEs fall back to."""
        for node in sorted(self.nodes.values(), key=lambda n: _id_order(n.id)):
            if node.class_type in ("CheckpointLoaderSimple", "CheckpointLoader"):
                name, _ = self.lookup_model(str(node.inputs.get("ckpt_name") or ""))
                if name is not None:
                    return name
        return None

    def _fix_latent_models(self) -> None:
        """An empty latent takes the model of the first sampler that reads it (its latent size)."""
        readers: dict[str, list[str]] = {}
        for node_id, node in self.graph_nodes.items():
            for _name, _i, ref in node.references():
                readers.setdefault(ref.split(".")[0], []).append(node_id)
        for latent in self.latents:
            queue, seen, model = list(readers.get(latent, [])), set(), None
            while queue and model is None:
                current = queue.pop(0)
                if current in seen:
                    continue
                seen.add(current)
                model = self.graph_nodes[current].params.get("model")
                queue.extend(readers.get(current, []))
            if model is None:
                model = self.primary_model
            if model is not None:
                name = model["name"] if isinstance(model, dict) else model
                if isinstance(model, dict) and model.get("parts"):  # a model of parts: its files say its size
                    name = {"name": model["name"], "parts": model["parts"]}
                self.graph_nodes[latent].params = {"model": name, **self.graph_nodes[latent].params}


def declarative(ctx: NodeContext) -> list[Any]:
    """Convert a node with a declarative mapping: one block, inputs/params/models/outputs by name."""
    m = ctx.mapping
    assert m.block is not None
    block = m.block
    inputs: dict[str, Any] = {}
    conds: dict[str, Cond] = {}
    for comfy_name, ours in m.inputs.items():
        value = ctx.input(comfy_name, optional=True)
        if isinstance(value, Cond):
            conds[ours] = value
        elif isinstance(value, MaskedLatent):
            inputs[ours] = value.plain()
        elif isinstance(value, Data):
            inputs[ours] = value
        elif value is not None:
            raise Unresolved(f"input {comfy_name!r} is {value_type(value)}, which {block} cannot take",
                             field=comfy_name)
    widgets = {k: ctx.widget(k) for k in ctx.node.inputs if ctx.node.link(k) is None}
    params: dict[str, Any] = {}
    for ours, source in m.params.items():
        value = source(widgets) if callable(source) else ctx.widget(source)
        if value is not None:  # a widget the workflow does not set: the block's default applies
            params[ours] = value
    for ours, comfy_name in m.models.items():
        params[ours] = ctx.model(comfy_name).ref()
    spec = ctx.importer.spec(block)
    types = [m.output_types[i] if i < len(m.output_types) else
             (getattr(spec.output(port), "type", "ANY") if spec is not None and spec.output(port) else "ANY")
             for i, port in enumerate(m.outputs)]

    def build(refs: Mapping[str, Any]) -> str:
        return ctx.add(block, inputs={**inputs, **refs}, params=params, suffix=ctx.next_suffix())

    if not conds:
        node_id = build({})
        return [Data(f"{node_id}.{port}", t) for port, t in zip(m.outputs, types, strict=True)]
    names = list(conds)

    def cond_out(port: str) -> Any:
        def make(imp: Any, refs: list[Data]) -> Data:
            node_id = build(dict(zip(names, refs, strict=True)))
            return Data(f"{node_id}.{port}", "CONDITIONING")

        return Cond(ctx.id, "op", args=tuple(conds[n] for n in names), build=make)

    return [cond_out(port) if t == "CONDITIONING" else None for port, t in zip(m.outputs, types, strict=True)]


def _requirement(text: str) -> str:
    """``"a|b"`` -> ``"block 'a' or 'b'"``; ``"image.resize:megapixels"`` -> with a ``megapixels`` param."""
    options = []
    for option in text.split("|"):
        block, _, param = option.partition(":")
        options.append(f"{block!r} with a {param!r} param" if param else repr(block))
    return "block " + " or ".join(options)


def _id_order(node_id: str) -> tuple[int, int, str]:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _name_keys(name: str) -> list[str]:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return list(dict.fromkeys([name, base, stem]))


def _model_keys(model_map: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in model_map.items():  # exact keys first, then their file names and stems
        out[key] = value
    for key, value in model_map.items():
        for k in _name_keys(key)[1:]:
            out.setdefault(k, value)
    return out
