"""Encoding prompts with the model's CLIP text encoder(s), for SD 1.x/2.x and SDXL."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orchestrator import Block, BlockError, Context, Out, Params, Resources, block
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, device_of, model_name, model_ref


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


def _ids(tokenizer: Any, text: str, max_length: int) -> Any:
    return tokenizer(expand_embedding_tokens(text, tokenizer), padding="max_length", max_length=max_length,
                     truncation=True, return_tensors="pt")


def encode_sd(tokenizer: Any, text_encoder: Any, prompt: str, negative: str | None, clip_skip: int | None,
              device: str) -> tuple[Any, Any]:
    """``StableDiffusionPipeline.encode_prompt`` for one prompt: (prompt_embeds, negative_embeds).

    As in diffusers, ``clip_skip`` applies to the prompt, not to the negative prompt.
    """
    use_mask = bool(getattr(text_encoder.config, "use_attention_mask", False))
    inputs = _ids(tokenizer, prompt, tokenizer.model_max_length)
    mask = inputs.attention_mask.to(device) if use_mask else None
    if clip_skip is None:
        embeds = text_encoder(inputs.input_ids.to(device), attention_mask=mask)[0]
    else:
        out = text_encoder(inputs.input_ids.to(device), attention_mask=mask, output_hidden_states=True)
        # transformers 5 dropped the ``text_model`` level that diffusers' pipelines reach through
        final_norm = getattr(text_encoder, "text_model", text_encoder).final_layer_norm
        embeds = final_norm(out.hidden_states[-(clip_skip + 1)])
    embeds = embeds.to(dtype=text_encoder.dtype, device=device)
    uncond = _ids(tokenizer, negative or "", embeds.shape[1])
    mask = uncond.attention_mask.to(device) if use_mask else None
    neg = text_encoder(uncond.input_ids.to(device), attention_mask=mask)[0].to(dtype=text_encoder.dtype)
    return embeds, neg


def encode_sdxl(tokenizers: list[Any], encoders: list[Any], prompt: str, prompt_2: str | None,
                negative: str | None, negative_2: str | None, clip_skip: int | None, zero_negative: bool,
                device: str) -> dict[str, Any]:
    """``StableDiffusionXLPipeline.encode_prompt`` for one prompt."""
    import torch

    pooled = None
    parts = []
    for text, tok, enc in zip([prompt, prompt_2 or prompt], tokenizers, encoders, strict=True):
        ids = _ids(tok, text, tok.model_max_length).input_ids
        out = enc(ids.to(device), output_hidden_states=True)
        if pooled is None and out[0].ndim == 2:
            pooled = out[0]
        parts.append(out.hidden_states[-2] if clip_skip is None else out.hidden_states[-(clip_skip + 2)])
    embeds = torch.concat(parts, dim=-1)
    if zero_negative and negative is None:
        neg, neg_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
    else:
        negative = negative or ""
        negative_2 = negative_2 or negative
        neg_pooled = None
        parts = []
        for text, tok, enc in zip([negative, negative_2], tokenizers, encoders, strict=True):
            ids = _ids(tok, text, embeds.shape[1]).input_ids
            out = enc(ids.to(device), output_hidden_states=True)
            if neg_pooled is None and out[0].ndim == 2:
                neg_pooled = out[0]
            parts.append(out.hidden_states[-2])
        neg = torch.concat(parts, dim=-1)
    dtype = encoders[-1].dtype
    return {"prompt_embeds": embeds.to(dtype=dtype), "negative_prompt_embeds": neg.to(dtype=dtype),
            "pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": neg_pooled}


@block("sd.encode_prompt", version="1.0.0")
class EncodePrompt(Block):
    """Encode a prompt and a negative prompt with the model's text encoder(s) (SD 1.x/2.x or SDXL).

    Textual-inversion embeddings named in the model reference are used by writing their token
    in the prompt. ``clip_skip`` takes the output of an earlier CLIP layer.
    """

    outputs = {"cond": Out("CONDITIONING", "prompt and negative-prompt embeddings")}
    resources = Resources(device="gpu", memory_mb=1024)

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
        info = ctx.models.load(ref, "info")
        clip_skip = p.clip_skip or None
        layers = int(info.text_encoder.get("num_hidden_layers", 12))
        if clip_skip is not None and clip_skip + (2 if info.family == "sdxl" else 1) > layers + 1:
            raise BlockError(f"node {ctx.node!r}: clip_skip {clip_skip} is too large for a text encoder "
                             f"of {layers} layers", type="input", node=ctx.node, field="params.clip_skip",
                             value=clip_skip)
        with torch.no_grad():
            if info.family == "sdxl":
                toks = [ctx.models.load(ref, "tokenizer"), ctx.models.load(ref, "tokenizer_2")]
                encs = [ctx.models.load(ref, "text_encoder", device=device),
                        ctx.models.load(ref, "text_encoder_2", device=device)]
                out = encode_sdxl(toks, encs, p.prompt, p.prompt_2, p.negative_prompt, p.negative_prompt_2,
                                  clip_skip, info.force_zeros_for_empty_prompt, device)
            else:
                tok = ctx.models.load(ref, "tokenizer")
                enc = ctx.models.load(ref, "text_encoder", device=device)
                pos, neg = encode_sd(tok, enc, p.prompt, p.negative_prompt, clip_skip, device)
                out = {"prompt_embeds": pos, "negative_prompt_embeds": neg}
        cond = {k: (v.cpu() if v is not None else None) for k, v in out.items()}
        cond.update(family=info.family, model=model_name(p.model))
        return {"cond": cond}


BLOCKS = [EncodePrompt]
