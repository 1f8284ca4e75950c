"""GLIGEN: text in boxes, through gated self-attention layers added to the UNet (ComfyUI's GLIGEN nodes).

``sd.gligen_textbox`` (ComfyUI's GLIGENLoader + GLIGENTextBoxApply) adds a phrase and its box to a
conditioning: the phrase's *unprojected* pooled CLIP embedding and the box in latent cells (pixels
// 8, as ComfyUI keeps them). Chain several for several boxes (at most 30).

The sampling loop (:class:`Gligen`) reads the GLIGEN file (a ``gligen/`` file in the model folders,
in ComfyUI's layout: ``position_net.*`` and ``<ldm block>.transformer_blocks.N.fuser.*``) and runs a
copy of the UNet that shares its weights and carries the file's gated self-attention layers
(diffusers' ``GatedSelfAttentionDense``, where ComfyUI patches its own) and its box projection
(diffusers' ``GLIGENTextBoundingboxProjection``, ComfyUI's ``PositionNet``): after each transformer
block's self-attention, ``x + tanh(alpha_attn) * attn(norm1([x, objs]))[:, :n] `` and
``+ tanh(alpha_dense) * ff(norm2(x))``. The boxes are normalised by the latent's size at each call
(ComfyUI's ``Gligen.set_position``), the empty slots masked to the learned null features. As in
ComfyUI, only the prompt that carries boxes is run through the layers: under CFG the negative half
goes through the plain UNet. Heads follow ComfyUI's loader: 8 for a 768-wide context (SD 1.x), else
64 channels a head.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, device_of, model_ref
from plugins.sd.cond_types import check_conditioning
from plugins.sd.ip_adapter import shared_weights_copy
from plugins.sd.model_files import model_file
from plugins.sd.prompt import padded_ids

if TYPE_CHECKING:
    from plugins.sd.common import Sampling, UNetFn

MAX_OBJECTS = 30  # ComfyUI's Gligen.max_objs
_FUSER = re.compile(r"(input_blocks\.(\d+)|middle_block|output_blocks\.(\d+))\.1\.transformer_blocks\.(\d+)"
                    r"\.fuser\.(.+)$")


def pooled_text(ctx: Context, model: ModelParam, text: str) -> Any:
    """``[1, D]``: the prompt's pooled CLIP output before any projection (ComfyUI's ``unprojected``)."""
    import torch

    ref = model_ref(model)
    tokenizer = ctx.models.tokenizer(ref)
    encoder = ctx.models.text_encoder(ref, device=device_of(ctx))
    ids = padded_ids(tokenizer, text)
    text_model = getattr(encoder, "text_model", encoder)  # CLIPTextModelWithProjection: before its projection
    with torch.no_grad():
        out = text_model(ids.to(encoder.device))
    return out.pooler_output.float().cpu()


@block("sd.gligen_textbox", version="1.0.0")
class GligenTextBox(Block):
    """Put a phrase in a box of the image (ComfyUI's GLIGENTextBoxApply with a GLIGEN model)."""

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt (or another sd.gligen_textbox)")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with this box added")}

    class Params(Params):
        gligen: str = Field(..., min_length=1, max_length=512,
                            description="a GLIGEN model by name: a file in the model folders' gligen/ "
                                        "(never a path)")
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION + " (its text encoder)")
        text: str = Field(..., max_length=10000, description="what goes in the box")
        width: int = Field(64, ge=8, le=16384, description="box width in pixels")
        height: int = Field(64, ge=8, le=16384, description="box height in pixels")
        x: int = Field(0, ge=0, le=16384, description="box left edge in pixels")
        y: int = Field(0, ge=0, le=16384, description="box top edge in pixels")

    def run(self, ctx: Context, cond: Any) -> dict:
        cond = check_conditioning(cond, ctx.node)
        p = self.params
        model_file(ctx, p.gligen, "gligen", "params.gligen")  # refused here, before any sampling
        boxes = list((cond.get("gligen") or {}).get("boxes", []))
        if len(boxes) >= MAX_OBJECTS:
            raise BlockError(f"node {ctx.node!r}: a conditioning takes at most {MAX_OBJECTS} GLIGEN boxes",
                             type="limit", node=ctx.node, field="inputs.cond", value=len(boxes) + 1,
                             bound=MAX_OBJECTS)
        boxes.append({"embeds": pooled_text(ctx, p.model, p.text), "height": p.height // 8,
                      "width": p.width // 8, "y": p.y // 8, "x": p.x // 8})
        return {"cond": {**cond, "gligen": {"model": p.gligen, "boxes": boxes}}}


# -- sampling ---------------------------------------------------------------------------------------


def read_gligen(ctx: Context, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``(fusers by (ldm block, transformer index), position_net weights)`` of a GLIGEN file."""
    from safetensors.torch import load_file

    path = model_file(ctx, name, "gligen", "params.gligen")
    try:
        flat = load_file(str(path))  # safetensors only: never an unpickle
    except Exception as exc:  # noqa: BLE001 - a truncated file, a pickle by another name, ...
        raise BlockError(f"node {ctx.node!r}: GLIGEN model {name!r} is not a readable safetensors file "
                         f"({type(exc).__name__})", type="model", reason="format", node=ctx.node,
                         field="params.gligen", value=name) from None
    fusers: dict[str, dict[str, Any]] = {}
    position: dict[str, Any] = {}
    for key, value in flat.items():
        m = _FUSER.search(key)
        if m is not None:
            fusers.setdefault(f"{m.group(1)}/{m.group(4)}", {})[m.group(5)] = value
        elif "position_net." in key:
            position[key.split("position_net.", 1)[1]] = value
    if not fusers or "null_positive_feature" not in position:
        raise BlockError(f"node {ctx.node!r}: {name!r} is not a GLIGEN model (no fuser / position_net "
                         f"weights)", type="input", node=ctx.node, field="params.gligen", value=name)
    return fusers, position


def _attention(module: Any, where: str) -> Any:
    """The diffusers Transformer2DModel of an LDM block name (``input_blocks.4``, ``middle_block``, ...)."""
    per = module.config.layers_per_block
    per = per[0] if isinstance(per, (list, tuple)) else per
    if where == "middle_block":
        return module.mid_block.attentions[0]
    kind, index = where.split(".")
    i = int(index)
    if kind == "input_blocks":
        return module.down_blocks[(i - 1) // (per + 1)].attentions[(i - 1) % (per + 1)]
    return module.up_blocks[i // (per + 1)].attentions[i % (per + 1)]


class Gligen:
    """The GLIGEN boxes of one sampling run: a UNet copy with the file's layers, the boxes' inputs."""

    def __init__(self, item: dict[str, Any], run: Sampling, cond: dict[str, Any]) -> None:
        node = run.ctx.node
        if any(cond.get(k) for k in ("image_prompts", "entries", "regions")):
            raise BlockError(f"node {node!r}: GLIGEN boxes do not combine with image prompts, areas or "
                             f"regional prompts here", type="input", node=node, field="inputs.cond")
        self.run, self.name, self.boxes = run, str(item["model"]), list(item["boxes"])
        self.fusers, self.position = read_gligen(run.ctx, self.name)
        self._adapted: Any = None

    def adapted(self, module: Any) -> Any:
        """A weight-sharing copy of ``module`` carrying the fusers and the box projection."""
        import torch
        from diffusers.models.attention import GatedSelfAttentionDense
        from diffusers.models.embeddings import GLIGENTextBoundingboxProjection

        if self._adapted is not None:
            return self._adapted
        node, field = self.run.ctx.node, "params.gligen"
        copy = shared_weights_copy(module)
        try:
            for where, weights in self.fusers.items():
                block_name, index = where.split("/")
                query_dim, context_dim = weights["linear.weight"].shape
                heads = 8 if context_dim == 768 else max(1, query_dim // 64)
                fuser = GatedSelfAttentionDense(query_dim, context_dim, heads, query_dim // heads)
                fuser.load_state_dict(weights, strict=True)
                target = _attention(copy, block_name).transformer_blocks[int(index)]
                target.fuser = fuser.to(device=module.device, dtype=module.dtype)
            in_dim = self.position["null_positive_feature"].shape[0]
            out_dim = self.position["linears.4.weight"].shape[0]
            net = GLIGENTextBoundingboxProjection(positive_len=in_dim, out_dim=out_dim,
                                                  feature_type="text-only")
            net.load_state_dict(self.position, strict=True)
        except (KeyError, IndexError, RuntimeError, ValueError, AttributeError) as exc:
            raise BlockError(f"node {node!r}: GLIGEN model {self.name!r} does not fit this UNet "
                             f"({type(exc).__name__}: {str(exc)[:200]})", type="input", node=node,
                             field=field, value=self.name) from None
        for box in self.boxes:
            if box["embeds"].shape[-1] != in_dim:
                got = int(box["embeds"].shape[-1])
                raise BlockError(f"node {node!r}: the box text embedding has {got} values; GLIGEN model "
                                 f"{self.name!r} takes {in_dim} (a text encoder of another model)",
                                 type="input", node=node, field="inputs.cond", value=got, bound=in_dim)
        copy.position_net = net.to(device=module.device, dtype=module.dtype)
        self.in_dim = in_dim
        with torch.no_grad():
            copy.requires_grad_(False)
        self._adapted = copy
        return copy

    def inputs(self, x: Any) -> dict[str, Any]:
        """``boxes``, ``masks``, ``positive_embeddings`` for ``x`` ``[B, C, h, w]`` (ComfyUI's
        ``set_position``: boxes as fractions of the latent)."""
        import torch

        batch, _c, h, w = x.shape
        boxes = torch.zeros(MAX_OBJECTS, 4)
        masks = torch.zeros(MAX_OBJECTS)
        embeds = torch.zeros(MAX_OBJECTS, self.in_dim)
        for k, b in enumerate(self.boxes):
            x1, y1 = b["x"] / w, b["y"] / h
            boxes[k] = torch.tensor([x1, y1, (b["x"] + b["width"]) / w, (b["y"] + b["height"]) / h])
            masks[k] = 1.0
            embeds[k] = b["embeds"].reshape(-1)
        kw = {"device": x.device, "dtype": x.dtype}
        return {"boxes": boxes[None].repeat(batch, 1, 1).to(**kw),
                "masks": masks[None].repeat(batch, 1).to(**kw),
                "positive_embeddings": embeds[None].repeat(batch, 1, 1).to(**kw)}

    def wrap(self, unet: UNetFn) -> UNetFn:
        """The UNet call: rows of the prompt with boxes through the adapted copy, the negative's plain."""
        import torch

        module = getattr(unet, "module", None)
        if module is None:
            raise BlockError(f"node {self.run.ctx.node!r}: GLIGEN needs the torch UNet, not this one",
                             type="input", node=self.run.ctx.node, field="inputs.cond")
        adapted = self.adapted(module)
        run = self.run

        def boxed(x: Any, t: Any, kwargs: dict[str, Any]) -> Any:
            kwargs = dict(kwargs)
            added = kwargs.get("added_cond_kwargs")
            if added and "class_labels" in added:
                added = dict(added)
                kwargs["class_labels"] = added.pop("class_labels")
                kwargs["added_cond_kwargs"] = added or None
            gligen = {"gligen": self.inputs(x)}
            return adapted(x, t, cross_attention_kwargs=gligen, return_dict=False, **kwargs)[0]

        def call(sample_in: Any, t: Any, **kwargs: Any) -> Any:
            n = sample_in.shape[0]
            if not (run.do_cfg and n == 2 * run.batch):
                return boxed(sample_in, t, kwargs)
            half = n // 2
            neg = unet(sample_in[:half], _rows(t, 0, half, n), **_rows(kwargs, 0, half, n))
            pos = boxed(sample_in[half:], _rows(t, half, n, n), _rows(kwargs, half, n, n))
            return torch.cat([neg.to(pos.dtype), pos])

        call.module = adapted  # type: ignore[attr-defined]
        return call


def _rows(value: Any, start: int, stop: int, n: int) -> Any:
    """``value`` with every tensor of batch ``n`` in it cut to rows ``start:stop`` (dicts, lists too)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value[start:stop] if value.ndim > 0 and value.shape[0] == n else value
    if isinstance(value, dict):
        return {k: _rows(v, start, stop, n) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rows(v, start, stop, n) for v in value)
    return value


BLOCKS = [GligenTextBox]
