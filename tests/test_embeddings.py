"""Textual-inversion embeddings as people have them, against diffusers' ``load_textual_inversion``.

A1111 ``.pt`` files (``string_to_param: {'*': tensor}``, read with torch's weights-only
loader, never unpickled), A1111 ``.safetensors`` (``emb_params``) and SDXL files with a vector
set per text encoder (``clip_l``, ``clip_g``). The prompt encodings must equal those of a
diffusers pipeline that loaded the same file with the same token.
"""

from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from graphs import GraphBuilder
from orchestrator.models import ModelError
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from model_builders import a1111_pt

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry


@pytest.fixture(scope="module")
def encode(catalog, models):
    ex = LocalExecutor(catalog, models=models)

    def go(model: dict, prompt: str, negative: str = "blurry") -> dict:
        b = GraphBuilder()
        b.add("sd.encode_prompt", id="c", model=model, prompt=prompt, negative_prompt=negative)
        return ex.run(b.build()).outputs["c"]["cond"]

    return go


def fresh_pipeline(models, name: str):
    """The model's pipeline with its own copies of the tokenizers and text encoders."""
    import diffusers

    base = models.load(name)
    parts = {k: copy.deepcopy(v) if k.startswith(("tokenizer", "text_encoder")) else v
             for k, v in base.components.items()}
    return getattr(diffusers, type(base).__name__)(**parts)


def test_a1111_pt_embedding_equals_diffusers(encode, models, tmp_path):
    vecs = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    path = a1111_pt(tmp_path / "fox-style.pt", vecs)
    # A1111 calls an embedding by its file name, whatever the file's "name" says
    ours = encode({"name": "tiny-sd", "embeddings": [{"path": str(path)}]}, "a fox-style fox in snow")
    pipe = fresh_pipeline(models, "tiny-sd")
    pipe.load_textual_inversion(str(path), token="fox-style")
    pos, neg = pipe.encode_prompt("a fox-style fox in snow", "cpu", 1, True, "blurry")
    torch.testing.assert_close(ours["prompt_embeds"], pos)
    torch.testing.assert_close(ours["negative_prompt_embeds"], neg)
    plain = encode({"name": "tiny-sd"}, "a fox-style fox in snow")
    assert not torch.allclose(plain["prompt_embeds"], ours["prompt_embeds"])


def test_a1111_safetensors_embedding_equals_diffusers(encode, models, tmp_path):
    vecs = torch.randn(2, 32, generator=torch.Generator().manual_seed(2))
    path = tmp_path / "ugly.safetensors"
    save_file({"emb_params": vecs}, str(path))
    ours = encode({"name": "tiny-sd", "embeddings": [{"path": str(path), "token": "<ugly>"}]}, "a cat",
                  negative="<ugly>, blurry")
    pipe = fresh_pipeline(models, "tiny-sd")
    pipe.load_textual_inversion(str(path), token="<ugly>")
    pos, neg = pipe.encode_prompt("a cat", "cpu", 1, True, "<ugly>, blurry")
    torch.testing.assert_close(ours["prompt_embeds"], pos)
    torch.testing.assert_close(ours["negative_prompt_embeds"], neg)


def test_sdxl_embedding_for_both_encoders_equals_diffusers(encode, models, tmp_path):
    g = torch.Generator().manual_seed(3)
    clip_l, clip_g = torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g)
    path = tmp_path / "xl-style.safetensors"
    save_file({"clip_l": clip_l, "clip_g": clip_g}, str(path))
    ours = encode({"name": "tiny-sdxl", "embeddings": [{"path": str(path), "token": "<xl>"}]},
                  "a lighthouse, <xl>")
    pipe = fresh_pipeline(models, "tiny-sdxl")
    pipe.load_textual_inversion(clip_l, token="<xl>", text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(clip_g, token="<xl>", text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    pos, neg, pooled, neg_pooled = pipe.encode_prompt(
        "a lighthouse, <xl>", device="cpu", do_classifier_free_guidance=True, negative_prompt="blurry")
    torch.testing.assert_close(ours["prompt_embeds"], pos)
    torch.testing.assert_close(ours["pooled_prompt_embeds"], pooled)
    torch.testing.assert_close(ours["negative_prompt_embeds"], neg)
    torch.testing.assert_close(ours["negative_pooled_prompt_embeds"], neg_pooled)


class Evil:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def parameter_dict() -> torch.nn.ParameterDict:
    """Old A1111 files keep ``string_to_param`` as a module: weights-only cannot (and must not) load it."""
    return torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.zeros(1, 32))})


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: torch.save({"string_to_param": {"*": torch.zeros(1, 32)}, "hook": Evil()}, p),
     "weights-only"),
    (lambda p: p.write_bytes(pickle.dumps(Evil())), "weights-only"),
    (lambda p: torch.save({"string_to_param": parameter_dict()}, p), "weights-only"),
    (lambda p: torch.save({"a": torch.zeros(1, 32), "b": torch.zeros(1, 32)}, p), "unknown layout"),
    (lambda p: torch.save({"string_to_param": {"*": torch.zeros(2, 3, 4)}}, p), "not a float vector"),
    (lambda p: torch.save([torch.zeros(1, 32)], p), "not a dict"),
])
def test_bad_pt_embeddings_are_refused_by_name(encode, tmp_path, make, words):
    path = tmp_path / "bad-embedding.pt"
    make(path)
    with pytest.raises(ModelError) as info:
        encode({"name": "tiny-sd", "embeddings": [{"path": str(path)}]}, "a bad-embedding fox")
    message = str(info.value)
    assert "bad-embedding.pt" in message and words in message
    assert str(tmp_path) not in message


def test_pt_embeddings_refused_when_legacy_files_are(tmp_path):
    """``model_files.legacy = "refuse"``: no torch file is read at all, not even weights-only."""
    from orchestrator.models import ModelManager, ModelRegistry

    path = a1111_pt(tmp_path / "style.pt", torch.zeros(1, 32))
    models = ModelManager(ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), legacy="refuse"))
    with pytest.raises(ModelError) as info:
        models.load({"name": "tiny-sd", "embeddings": [{"path": str(path)}]}, "tokenizer")
    assert info.value.to_dict()["reason"] == "pickle" and "'style.pt'" in str(info.value)
    assert "refuse" in str(info.value)
