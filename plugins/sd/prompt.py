"""Encoding prompts with the model's CLIP text encoder(s), for SD 1.x/2.x and SDXL.

A prompt longer than one CLIP window (75 tokens between the start and end tokens) is encoded
as ComfyUI and A1111 do: its tokens are cut into windows of 75, each wrapped in the start
and end tokens and padded to 77, each encoded on its own, and the windows' embeddings are
concatenated along the sequence (at most :data:`MAX_WINDOWS` windows; the rest is cut). A
prompt and its negative prompt of different window counts are each repeated to the least
common multiple of their lengths (cross-attention over a sequence repeated ``k`` times equals
attention over it once, see ``plugins.sd.area.same_length``), so a short prompt is encoded
exactly as diffusers' pipelines encode it.
"""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace
from typing import Any

from pydantic import Field

from orchestrator import Block, BlockError, Context, Out, Params, Resources, block, model_name
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, device_of, model_ref


def expand_embedding_tokens(prompt: str, tokenizer: Any) -> str:
    """A k-vector embedding's token ``tok`` becomes ``tok tok_1 ... tok_{k-1}`` (as diffusers does)."""
    added = getattr(tokenizer, "added_tokens_encoder", {})
    if not added:
        return prompt
    for token in set(tokenizer.tokenize(prompt)):
        if token in added:
            replacement, i = token, 1
            while f"{token}_{i}" in added:
                replacement += f" {token}_{i}"
                i += 1
            prompt = prompt.replace(token, replacement)
    return prompt


MAX_WINDOWS = 8  # 8 x 75 tokens of one prompt are encoded; past that the prompt is cut


def _ids(tokenizer: Any, text: str, max_length: int) -> Any:
    return tokenizer(expand_embedding_tokens(text, tokenizer), padding="max_length", max_length=max_length,
                     truncation=True, return_tensors="pt")


# a fast tokenizer keeps its padding and truncation settings on the shared Rust object, set at
# each call: two jobs' encodings at once (cross-job batching runs them side by side) could mix
# them up (one call's ids unpadded). Tokenizing is short; it takes turns.
_TOKENIZING = threading.Lock()


def token_windows(tokenizer: Any, text: str) -> list[Any]:
    """``text`` as windows of ``model_max_length`` token ids (each with ``input_ids`` and
    ``attention_mask``, ``[1, 77]``): one window, as diffusers tokenizes it, when it fits; else
    its tokens cut into windows of 75, each between the start and end tokens, padded."""
    with _TOKENIZING:
        return _token_windows(tokenizer, text)


def padded_ids(tokenizer: Any, text: str, max_length: int | None = None) -> Any:
    """``[1, max_length]`` token ids of ``text`` (embedding tokens expanded), padded and cut as
    diffusers does; taking turns with every other tokenization (see ``_TOKENIZING``)."""
    with _TOKENIZING:
        return _ids(tokenizer, text, int(max_length or tokenizer.model_max_length)).input_ids


def _token_windows(tokenizer: Any, text: str) -> list[Any]:
    import torch

    length = int(tokenizer.model_max_length)
    per = length - 2
    body = tokenizer(expand_embedding_tokens(text, tokenizer), add_special_tokens=False,
                     verbose=False).input_ids
    if len(body) <= per:
        return [_ids(tokenizer, text, length)]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out = []
    for start in range(0, min(len(body), per * MAX_WINDOWS), per):
        chunk = body[start:start + per]
        rest = per - len(chunk)
        out.append(SimpleNamespace(input_ids=torch.tensor([[bos, *chunk, eos] + [pad] * rest]),
                                   attention_mask=torch.tensor([[1] * (len(chunk) + 2) + [0] * rest])))
    return out


def repeat_to_common_length(*seqs: Any) -> list[Any]:
    """Token sequences ``[B, N, D]`` repeated to the least common multiple of their lengths (as
    ``plugins.sd.area.same_length``, for any number): unchanged when they are equal."""
    lengths = [s.shape[1] for s in seqs]
    lcm = math.lcm(*lengths)
    return [s if n == lcm else s.repeat(1, lcm // n, 1) for s, n in zip(seqs, lengths, strict=True)]


def encode_sd(tokenizer: Any, text_encoder: Any, prompt: str, negative: str | None, clip_skip: int | None,
              device: str) -> tuple[Any, Any]:
    """``StableDiffusionPipeline.encode_prompt`` for one prompt: (prompt_embeds, negative_embeds);
    a prompt over one CLIP window in windows (see the module docstring).

    As in diffusers, ``clip_skip`` applies to the prompt, not to the negative prompt.
    """
    import torch

    use_mask = bool(getattr(text_encoder.config, "use_attention_mask", False))

    def encode(inputs: Any, skip: int | None) -> Any:
        mask = inputs.attention_mask.to(device) if use_mask else None
        if skip is None:
            return text_encoder(inputs.input_ids.to(device), attention_mask=mask)[0]
        out = text_encoder(inputs.input_ids.to(device), attention_mask=mask, output_hidden_states=True)
        # transformers 5 dropped the ``text_model`` level that diffusers' pipelines reach through
        final_norm = getattr(text_encoder, "text_model", text_encoder).final_layer_norm
        return final_norm(out.hidden_states[-(skip + 1)])

    embeds = torch.cat([encode(w, clip_skip) for w in token_windows(tokenizer, prompt)], dim=1)
    neg = torch.cat([encode(w, None) for w in token_windows(tokenizer, negative or "")], dim=1)
    embeds, neg = repeat_to_common_length(embeds, neg)
    return embeds.to(dtype=text_encoder.dtype, device=device), neg.to(dtype=text_encoder.dtype)


def encode_sdxl(tokenizers: list[Any], encoders: list[Any], prompt: str, prompt_2: str | None,
                negative: str | None, negative_2: str | None, clip_skip: int | None, zero_negative: bool,
                device: str) -> dict[str, Any]:
    """``StableDiffusionXLPipeline.encode_prompt`` for one prompt; a prompt over one CLIP window
    in windows (see the module docstring), the pooled embedding from the first window (as ComfyUI)."""
    import torch

    def encode(texts: list[str], skip: int | None) -> tuple[Any, Any]:
        pooled = None
        parts = []
        for text, tok, enc in zip(texts[:len(tokenizers)], tokenizers, encoders, strict=True):
            hidden = []
            for w in token_windows(tok, text):
                out = enc(w.input_ids.to(device), output_hidden_states=True)
                if pooled is None and out[0].ndim == 2:
                    pooled = out[0]
                hidden.append(out.hidden_states[-2] if skip is None else out.hidden_states[-(skip + 2)])
            parts.append(torch.cat(hidden, dim=1))
        return torch.concat(repeat_to_common_length(*parts), dim=-1), pooled

    embeds, pooled = encode([prompt, prompt_2 or prompt], clip_skip)
    if zero_negative and negative is None:
        neg, neg_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
    else:
        negative = negative or ""
        neg, neg_pooled = encode([negative, negative_2 or negative], None)
        embeds, neg = repeat_to_common_length(embeds, neg)
    dtype = encoders[-1].dtype
    return {"prompt_embeds": embeds.to(dtype=dtype), "negative_prompt_embeds": neg.to(dtype=dtype),
            "pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": neg_pooled}


@block("sd.encode_prompt", version="1.1.0")
class EncodePrompt(Block):
    """Encode a prompt and a negative prompt with the model's text encoder(s) (SD 1.x/2.x or SDXL).

    Textual-inversion embeddings named in the model reference are used by writing their token
    in the prompt. ``clip_skip`` takes the output of an earlier CLIP layer.
    """

    outputs = {"cond": Out("CONDITIONING", "prompt and negative-prompt embeddings")}
    resources = Resources(device="gpu", memory_mb=1024, batch=True)  # several jobs' encodings: one call

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        prompt: str = Field("", max_length=10000, description="what to draw")
        negative_prompt: str | None = Field(
            None, max_length=10000,
            description="what to avoid; null: empty (SDXL: zeros, when the model asks for that)")
        prompt_2: str | None = Field(None, max_length=10000,
                                     description="SDXL: prompt for the second text encoder (default: prompt)")
        negative_prompt_2: str | None = Field(None, max_length=10000,
                                              description="SDXL: negative prompt for the second encoder")
        clip_skip: int | None = Field(None, ge=0, le=24,
                                      description="use the output of this many layers before the last")

    def run(self, ctx: Context) -> dict:
        import torch

        p = self.params
        ref = model_ref(p.model)
        device = device_of(ctx)
        info = ctx.models.info(ref)
        clip_skip = p.clip_skip or None
        layers = int(info.text_encoder.get("num_hidden_layers", 12))
        if clip_skip is not None and clip_skip + (2 if info.family == "sdxl" else 1) > layers + 1:
            raise BlockError(f"node {ctx.node!r}: clip_skip {clip_skip} is too large for a text encoder "
                             f"of {layers} layers", type="input", node=ctx.node, field="params.clip_skip",
                             value=clip_skip)
        with torch.no_grad():
            if info.family == "sdxl":
                toks = ctx.models.tokenizers(ref)
                encs = ctx.models.text_encoders(ref, device=device)
                out = encode_sdxl(toks, encs, p.prompt, p.prompt_2, p.negative_prompt, p.negative_prompt_2,
                                  clip_skip, info.force_zeros_for_empty_prompt, device)
            else:
                tok = ctx.models.tokenizer(ref)
                enc = ctx.models.text_encoder(ref, device=device)
                pos, neg = encode_sd(tok, enc, p.prompt, p.negative_prompt, clip_skip, device)
                out = {"prompt_embeds": pos, "negative_prompt_embeds": neg}
        cond = {k: (v.cpu() if v is not None else None) for k, v in out.items()}
        cond.update(family=info.family, model=model_name(p.model))
        if info.family == "sdxl" and "text_encoder" not in info.components:  # the SDXL refiner (CLIP-G alone)
            cond["aesthetic"] = True  # its UNet's size conditioning ends in an aesthetic score
        return {"cond": cond}


BLOCKS = [EncodePrompt]
