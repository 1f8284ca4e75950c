"""Prompts over one CLIP window are encoded in 75-token windows, as ComfyUI and A1111 do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.prompt import MAX_WINDOWS, token_windows

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry

SHORT = "a red fox in the snow"
# two windows (76 to 150 tokens) for the tiny models' tokenizer
LONG = ", ".join(f"a {c} lantern number {i} hanging from an old oak tree" for i, c in
                 enumerate(["red", "green", "blue", "golden"]))


@pytest.fixture(scope="module")
def run(catalog, models):
    ex = LocalExecutor(catalog, models=models)
    return lambda graph: ex.run(graph)


def encode(run, model: str, prompt: str, negative: str | None = "blurry", **params) -> dict:
    b = GraphBuilder()
    b.add("sd.encode_prompt", id="c", model=model, prompt=prompt, negative_prompt=negative, **params)
    return run(b.build()).outputs["c"]["cond"]


def window_embeds(models, model: str, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return models.load(model, "text_encoder")(ids)[0]


def test_windows_of_75_tokens_between_start_and_end(models) -> None:
    tok = models.load("tiny-sd", "tokenizer")
    short = token_windows(tok, SHORT)
    expected = tok(SHORT, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    assert len(short) == 1 and torch.equal(short[0].input_ids, expected.input_ids)
    body = tok(LONG, add_special_tokens=False).input_ids
    windows = token_windows(tok, LONG)
    assert 75 < len(body) <= 150 and len(windows) == 2
    first, second = (w.input_ids[0].tolist() for w in windows)
    assert first == [tok.bos_token_id, *body[:75], tok.eos_token_id]
    n = len(body) - 75
    assert second[:n + 2] == [tok.bos_token_id, *body[75:], tok.eos_token_id] and len(second) == 77
    assert windows[1].attention_mask[0].tolist() == [1] * (n + 2) + [0] * (75 - n)
    assert len(token_windows(tok, "fox " * 2000)) == MAX_WINDOWS


def test_a_short_prompt_is_encoded_as_before(run, models) -> None:
    tok = models.load("tiny-sd", "tokenizer")
    cond = encode(run, "tiny-sd", SHORT)
    ids = tok(SHORT, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    assert cond["prompt_embeds"].shape[1] == 77
    torch.testing.assert_close(cond["prompt_embeds"], window_embeds(models, "tiny-sd", ids))


def test_a_long_prompt_is_encoded_in_windows_and_its_negative_repeated(run, models) -> None:
    tok = models.load("tiny-sd", "tokenizer")
    cond = encode(run, "tiny-sd", LONG)
    windows = token_windows(tok, LONG)
    expected = torch.cat([window_embeds(models, "tiny-sd", w.input_ids) for w in windows], dim=1)
    torch.testing.assert_close(cond["prompt_embeds"], expected)
    neg = cond["negative_prompt_embeds"]
    assert neg.shape == expected.shape  # the one-window negative, repeated: the same attention
    torch.testing.assert_close(neg[:, :77], neg[:, 77:])
    # the words past the first window now change the conditioning (they were cut before)
    cut = encode(run, "tiny-sd", tok.decode(tok(LONG, add_special_tokens=False).input_ids[:75]))
    assert not torch.allclose(cond["prompt_embeds"][:, 77:], cut["prompt_embeds"])


def test_a_long_prompt_runs_through_denoise_and_a_long_negative_too(run, models) -> None:
    negative = LONG + ", " + LONG
    tok = models.load("tiny-sd", "tokenizer")
    p, n = len(token_windows(tok, LONG)), len(token_windows(tok, negative))
    assert (p, n) == (2, 3)
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt=LONG, negative_prompt=negative)
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=64, height=64)
    d = b.add("sd.denoise", id="denoise", cond=c.cond, latent=lat.latent, model="tiny-sd", steps=2, seed=1)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sd")
    result = run(b.build())
    cond = result.outputs["cond"]["cond"]
    assert cond["prompt_embeds"].shape[1] == cond["negative_prompt_embeds"].shape[1] == 6 * 77  # lcm(2, 3)
    assert torch.isfinite(torch.as_tensor(result.outputs["decode"]["image"])).all()


def test_sdxl_windows_both_encoders_and_pools_the_first_window(run, models) -> None:
    cond = encode(run, "tiny-sdxl", LONG)
    short = encode(run, "tiny-sdxl", SHORT)
    assert cond["prompt_embeds"].shape[1] == 2 * 77
    assert cond["prompt_embeds"].shape[2] == short["prompt_embeds"].shape[2]
    assert cond["negative_prompt_embeds"].shape == cond["prompt_embeds"].shape
    tok2 = models.load("tiny-sdxl", "tokenizer_2")
    first = token_windows(tok2, LONG)[0]
    with torch.no_grad():
        pooled = models.load("tiny-sdxl", "text_encoder_2")(first.input_ids, output_hidden_states=True)[0]
    torch.testing.assert_close(cond["pooled_prompt_embeds"], pooled)
