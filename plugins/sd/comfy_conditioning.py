"""Pairing ComfyUI's positive and negative conditioning into ours (the ComfyUI import's samplers).

ComfyUI encodes the positive and the negative prompt in two ``CLIPTextEncode`` nodes and
hands both to the sampler; our ``sd.encode_prompt`` encodes a prompt *and* its negative
in one node whose conditioning ``sd.denoise`` takes. So conditioning is kept symbolic
(:class:`~orchestrator.Cond`) until a sampler reads it, then built here:

- a text positive and a text negative become one ``sd.encode_prompt`` (shared by every
  sampler that uses the same pair: a hires-fix's two passes get one encode node);
- a positive that goes through conditioning nodes (combine, area, ControlNet) is built
  leaf by leaf, each text leaf paired with the negative, then the nodes on top;
- a ``ControlNetApplyAdvanced`` that takes both the positive and the negative is applied
  once, to the pair;
- ``ConditioningZeroOut`` on the negative becomes ``cond.zero_out`` of the negative side
  (zeros, as ComfyUI's; an empty negative prompt, reported as an approximation, when the
  catalog lacks it); other nodes on the negative side are reported and left out; on the
  positive it becomes ``cond.zero_out`` of the positive.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator import Cond, Data, NodeContext, Unresolved

Importer = Any  # graphs.comfy's importer (NodeContext.importer): per-import state and the catalog

EMBEDDING = re.compile(r"embedding:([^\s,()\[\]:]+)")


def embeddings(text: str, importer: Importer, node_id: str) -> tuple[str, list[tuple[str, str]]]:
    """``"a cat, embedding:EasyNegative"`` -> ``("a cat, EasyNegative", [(path, "EasyNegative")])``."""
    found: list[tuple[str, str]] = []

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        token = re.sub(r"\.(safetensors|pt|bin|ckpt)$", "", name.replace("\\", "/").rsplit("/", 1)[-1])
        path, _mapped = importer.map_model(name, importer.nodes[node_id], "text", kind="embedding")
        if (path, token) not in found:
            found.append((path, token))
        return token

    return EMBEDDING.sub(swap, text), found


def build(importer: Importer, sampler: NodeContext, positive: Any, negative: Any) -> Data:
    """The conditioning ``sampler`` reads, built from its ``positive`` and ``negative`` values."""
    if isinstance(positive, Data) and positive.type == "CONDITIONING":
        if not (isinstance(negative, Data) and negative.ref == positive.ref):
            sampler.warn("the positive conditioning comes from a block that encodes its own negative; "
                         "the negative input is not used", field="negative")
        return positive
    if not isinstance(positive, Cond):
        raise Unresolved(f"input 'positive' is {getattr(positive, 'type', None)}, not conditioning",
                         field="positive")
    return _translate(importer, sampler, positive, negative)


def _translate(importer: Importer, sampler: NodeContext, pos: Cond, neg: Any) -> Data:
    key = (id(pos), id(neg))
    memo = importer.cond_memo
    if key in memo:
        return memo[key]
    if isinstance(neg, Cond) and neg.kind == "pair" and not (pos.kind == "pair" and pos.pair is neg.pair):
        if not _contains(pos, neg.pair):
            sampler.warn(f"ControlNet node {neg.pair.node} is applied to the negative only; ours applies "
                         "ControlNets to positive and negative together, so it is left out",
                         field="negative")
        neg = neg.pair.negative if neg.slot == 1 else neg.pair.positive
    if pos.kind == "pair":
        pair = pos.pair
        assert pair is not None
        inner_pos = pair.positive if pos.slot == 0 else pair.negative
        same = isinstance(neg, Cond) and neg.kind == "pair" and neg.pair is pair
        inner_neg = pair.negative if same else neg
        out = pair.build(importer, _translate(importer, sampler, inner_pos, inner_neg))
    elif pos.kind == "text":
        out = _encode(importer, sampler, pos, neg)
    elif pos.kind == "zero":
        inner = _translate(importer, sampler, pos.args[0], neg)
        out = zero_out(importer, pos, inner)
    else:
        assert pos.build is not None
        refs = [_translate(importer, sampler, a, neg) if isinstance(a, Cond) else a for a in pos.args]
        out = pos.build(importer, refs)
    memo[key] = out
    return out


def _contains(cond: Any, pair: Any) -> bool:
    if not isinstance(cond, Cond):
        return False
    if cond.kind == "pair" and cond.pair is pair:
        return True
    inner = list(cond.args) + ([cond.pair.positive, cond.pair.negative] if cond.pair else [])
    return any(_contains(c, pair) for c in inner)


def _negative(sampler: NodeContext, neg: Any) -> tuple[Cond | None, str | None]:
    """``(text leaf or None, why not exact)`` for the negative side."""
    if isinstance(neg, Cond) and neg.kind == "text":
        return neg, None
    if isinstance(neg, Cond) and neg.kind == "zero":
        if _zero_negative(sampler.importer, neg):
            return None, None
        sampler.warn(f"the negative is zeroed (ConditioningZeroOut, node {neg.node}); ours uses an empty "
                     "negative prompt (zeros for SDXL models that ask for them)", field="negative")
        return None, None
    leaf = _first_text(neg)
    what = (f"node {neg.node} ({sampler.importer.nodes[neg.node].class_type})" if isinstance(neg, Cond)
            else "a block's conditioning")
    kept = f"only the text of node {leaf.node} is used" if leaf else "it is left out"
    sampler.error("unsupported_input", f"the negative conditioning goes through {what}; ours takes a text "
                  f"negative, so {kept}", field="negative")
    return leaf, None


def _first_text(cond: Any) -> Cond | None:
    if not isinstance(cond, Cond):
        return None
    if cond.kind == "text":
        return cond
    inner = list(cond.args) + ([cond.pair.negative] if cond.pair else [])
    return next((t for t in (_first_text(c) for c in inner) if t is not None), None)


def _encode(importer: Importer, sampler: NodeContext, pos: Cond, neg: Any) -> Data:
    """One ``sd.encode_prompt`` for a text positive and the negative, shared when identical."""
    leaf, _ = _negative(sampler, neg)
    assert pos.clip is not None
    prompt, embs = embeddings(pos.text, importer, pos.node)
    negative = None
    if leaf is not None:
        negative, neg_embs = embeddings(leaf.text, importer, leaf.node)
        embs += [e for e in neg_embs if e not in embs]
    params: dict[str, Any] = {"model": pos.clip.ref(embs), "prompt": prompt, "negative_prompt": negative}
    if pos.params.get("prompt_2") is not None:  # CLIPTextEncodeSDXL: text_g for the second encoder
        params["prompt_2"] = embeddings(str(pos.params["prompt_2"]), importer, pos.node)[0]
    if leaf is not None and leaf.params.get("prompt_2") is not None:
        params["negative_prompt_2"] = embeddings(str(leaf.params["prompt_2"]), importer, leaf.node)[0]
    if pos.clip.clip_skip:
        params["clip_skip"] = pos.clip.clip_skip
    zero = _zero_negative(importer, neg)
    sizes = [(pos, "prompt"), *([(leaf, "negative")] if leaf is not None else [])]
    sizes = [(c, side) for c, side in sizes if c.params.get("size")]
    key = json.dumps([pos.node, params, zero, [(c.node, side, c.params["size"]) for c, side in sizes]],
                     sort_keys=True)
    if key in importer.encode_memo:
        return importer.encode_memo[key]
    meta = {"negative_id": leaf.node} if leaf is not None else {}
    again = pos.node in importer.encoded  # the same positive with another negative or model
    importer.encoded.add(pos.node)
    suffix = (f"_{leaf.node}" if leaf is not None else "_zero") if again else ""
    node_id = importer.add_node(importer.nodes[pos.node], "sd.encode_prompt", {}, params, suffix=suffix,
                                meta=meta)
    out = Data(f"{node_id}.cond", "CONDITIONING")
    for cond, side in sizes:  # CLIPTextEncodeSDXL's width, height, crop and target
        port = importer.port("cond.sdxl_size", "CONDITIONING", "input")
        size_id = importer.add_node(importer.nodes[cond.node], "cond.sdxl_size", {port: out},
                                    {**cond.params["size"], "side": side}, suffix=f"_size{suffix}")
        out = Data(f"{size_id}.{importer.port('cond.sdxl_size', 'CONDITIONING', 'output')}", "CONDITIONING")
    if zero:  # ComfyUI's zeroed negative: zeros, not the encoding of an empty prompt
        port = importer.port("cond.zero_out", "CONDITIONING", "input")
        again = neg.node in importer.encoded
        zero_id = importer.add_node(importer.nodes[neg.node], "cond.zero_out", {port: out},
                                    {"side": "negative"}, suffix=f"_{pos.node}" if again else "")
        importer.encoded.add(neg.node)
        out = Data(f"{zero_id}.{importer.port('cond.zero_out', 'CONDITIONING', 'output')}", "CONDITIONING")
    importer.encode_memo[key] = out
    return out


def _zero_negative(importer: Importer, neg: Any) -> bool:
    """Whether the negative is a ``ConditioningZeroOut`` that ``cond.zero_out`` (with ``side``) can make."""
    return isinstance(neg, Cond) and neg.kind == "zero" and importer.available("cond.zero_out:side")


def zero_out(importer: Importer, cond: Cond, inner: Data) -> Data:
    """``ConditioningZeroOut`` on a positive: ``cond.zero_out`` when the catalog has it."""
    node = importer.nodes[cond.node]
    if not importer.has_block("cond.zero_out"):
        importer.report("unsupported_node", f"ComfyUI node {cond.node} (ConditioningZeroOut) zeroes a "
                        "positive conditioning, which needs block 'cond.zero_out'; it is left out",
                        node=cond.node, field="class_type", value=node.class_type)
        return inner
    port = importer.port("cond.zero_out", "CONDITIONING", "input")
    node_id = importer.add_node(node, "cond.zero_out", {port: inner}, {})
    return Data(f"{node_id}.{importer.port('cond.zero_out', 'CONDITIONING', 'output')}", "CONDITIONING")
