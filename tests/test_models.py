"""The model registry, pickle refusal, the tiny models and the model manager."""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from orchestrator.models import ModelError, ModelManager, ModelRef, ModelRegistry
from orchestrator.models import lora as lora_mod
from orchestrator.models.safety import require_safetensors, sniff
from orchestrator.models.tiny import TINY_MODELS, build, ensure_tiny, tokenizer_files, weights_checksum

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

model_registry = sd_fixtures.model_registry
models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread

# The weights of the built-in tiny models: the same on every machine.
CHECKSUMS = {
    "tiny-sd": "2967af952ad3bbfb47485c2453d53ab6e5c1e8e3101a811f0f5157396875ad32",
    "tiny-sd-inpaint": "3e27b13a19fb1093fb03fdab47d798b1473cc90d930da0d47212598e353f246b",
    "tiny-sdxl": "f398d7eacd41a78a3e51b4650a6dad5ab29b175dfe69d647199c98ad8f6cfe75",
    "tiny-controlnet": "03e80422f90365861d1554e4cea6d201ff905e7a47268d76c2e738684cf33454",
    "tiny-clip-vision": "5fbb37797b617cc198c79785a0d6fc9bf4d2ba4afc99c7f1f0b0a59ac40c0093",
    "tiny-ip-adapter": "bacde1e6b99edf91dff7f2c4af86276f00f8746bc7a42c9b905d400e4014378b",
}


# -- references -----------------------------------------------------------------------------


def test_model_ref_from_name_and_dict():
    assert ModelRef.parse("tiny-sd") == ModelRef(name="tiny-sd")
    ref = ModelRef.parse({"name": "tiny-sd", "loras": [{"path": "a.safetensors", "weight": 0.5},
                                                       {"path": "b.safetensors"}],
                          "embeddings": [{"path": "e.safetensors", "token": "<e>"}]})
    assert ref.key() == "tiny-sd+lora(a.safetensors@0.5)+lora(b.safetensors@1)+emb(e.safetensors=<e>)"
    assert ref.personalised and not ref.base().personalised
    assert hash(ref) == hash(ModelRef.parse(ref.model_dump()))


def test_bad_reference_is_a_model_error(models):
    with pytest.raises(ModelError) as info:
        models.load({"name": "tiny-sd", "loras": [{"weight": 2}]}, "unet")
    assert info.value.to_dict()["reason"] == "reference"


# -- registry -------------------------------------------------------------------------------


def test_builtins_are_listed_and_configured_entries_win(tmp_path):
    reg = ModelRegistry([{"name": "tiny-sd", "source": str(tmp_path / "mine")}], cache_dir=tmp_path)
    assert set(TINY_MODELS) <= set(reg.names())
    assert reg.entry("tiny-sd").source == str(tmp_path / "mine")


def test_unknown_model_names_the_configured_ones(tmp_path):
    reg = ModelRegistry(cache_dir=tmp_path)
    with pytest.raises(ModelError) as info:
        reg.resolve("dreamshaper")
    msg = str(info.value)
    assert "'dreamshaper' is not configured" in msg and "tiny-sd" in msg
    assert info.value.to_dict()["reason"] == "unknown"


def test_missing_model_names_the_model_and_where_it_was_looked_for(tmp_path):
    reg = ModelRegistry([{"name": "sd15", "source": "models/sd15"}], cache_dir=tmp_path, base_dir=tmp_path)
    with pytest.raises(ModelError) as info:
        reg.resolve("sd15")
    d = info.value.to_dict()
    assert d["type"] == "model" and d["reason"] == "missing" and d["model"] == "sd15"
    assert str(tmp_path / "models" / "sd15") in d["message"]


def test_folder_without_model_index_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    reg = ModelRegistry([{"name": "x", "source": str(tmp_path / "x")}], cache_dir=tmp_path)
    with pytest.raises(ModelError, match=r"no model_index\.json"):
        reg.resolve("x")


def test_bad_entries_are_reported_together(tmp_path):
    with pytest.raises(ModelError) as info:
        ModelRegistry([{"name": "a"}, {"name": "b c", "source": "x"}], cache_dir=tmp_path)
    assert "'a'" in str(info.value) and "'b c'" in str(info.value)


def test_describe_lists_every_model_with_where_it_lives(tmp_path, model_registry):
    reg = ModelRegistry([{"name": "gone", "source": str(tmp_path / "nope.safetensors")}],
                        cache_dir=model_registry.cache_dir)
    rows = {r["name"]: r for r in reg.describe()}
    assert rows["gone"]["status"] == "error" and "nope.safetensors" in rows["gone"]["error"]
    assert rows["tiny-sd"]["path"].endswith("tiny-sd-v1")


def _fake_hf_cache(root: Path, repo: str, folder: Path) -> Path:
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / commit
    shutil.copytree(folder, snap)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    return snap


def test_hf_cache_source_resolves_offline(tmp_path, models):
    src = models.resolve("tiny-sd").folder
    snap = _fake_hf_cache(tmp_path / "hub", "acme/tiny", src)
    reg = ModelRegistry([{"name": "cached", "source": "hf:acme/tiny"},
                         {"name": "cached-file", "source": "hf:acme/tiny/unet/config.json"},
                         {"name": "absent", "source": "hf:acme/absent"}],
                        cache_dir=tmp_path / "cache", hf_cache_dir=tmp_path / "hub")
    assert reg.resolve("cached").path == snap
    assert reg.resolve("cached", build=False).format == "diffusers"
    unet = ModelManager(reg).load("cached", "unet")
    assert unet.config.in_channels == 4
    with pytest.raises(ModelError) as info:
        reg.resolve("absent")
    assert "not in the local Hugging Face cache" in str(info.value)
    assert "huggingface-cli download acme/absent" in str(info.value)


# -- pickles --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["zip", "legacy", "protocol0"])
def test_pickles_are_recognised_by_content_whatever_their_name(tmp_path, how):
    path = tmp_path / "innocent.safetensors"
    if how == "zip":
        torch.save({"w": torch.zeros(2)}, path)
    elif how == "legacy":
        torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps({"w": [0.0, 1.0]}, protocol=0))
    assert sniff(path) == "pickle"
    with pytest.raises(ModelError) as info:
        require_safetensors(path)
    assert info.value.to_dict()["reason"] == "pickle"
    assert "arbitrary code" in str(info.value) and ".safetensors" in str(info.value)


def test_safetensors_named_ckpt_is_accepted(tmp_path):
    path = tmp_path / "weights.ckpt"
    save_file({"w": torch.zeros(2)}, str(path))
    assert sniff(path) == "safetensors"
    assert require_safetensors(path) == path


def test_registry_refuses_a_pickle_checkpoint_when_legacy_is_refuse(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    reg = ModelRegistry([{"name": "old", "source": str(path)}], cache_dir=tmp_path, legacy="refuse")
    with pytest.raises(ModelError) as info:
        reg.resolve("old")
    assert info.value.to_dict()["reason"] == "pickle" and "model.ckpt" in str(info.value)
    # by default a .ckpt is a legacy checkpoint, read later with torch's weights-only loader
    resolved = ModelRegistry([{"name": "old", "source": str(path)}], cache_dir=tmp_path).resolve("old")
    assert resolved.format == "single_file" and resolved.legacy
    # a pickle under any other name is refused either way
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(path.read_bytes())
    with pytest.raises(ModelError, match="pickle"):
        ModelRegistry([{"name": "d", "source": str(disguised)}], cache_dir=tmp_path).resolve("d")


def test_folder_with_only_pickled_weights_is_refused(tmp_path, models):
    src = models.resolve("tiny-sd").folder
    dst = tmp_path / "pickled"
    shutil.copytree(src, dst)
    weights = dst / "unet" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    torch.save({"w": torch.zeros(1)}, dst / "unet" / "diffusion_pytorch_model.bin")
    mm = ModelManager(ModelRegistry([{"name": "p", "source": str(dst)}], cache_dir=tmp_path))
    with pytest.raises(ModelError) as info:
        mm.load("p", "unet")
    assert info.value.to_dict()["reason"] == "pickle"
    assert mm.load("p", "vae") is not None  # the other components are fine


# -- single-file checkpoints ----------------------------------------------------------------


def test_single_file_checkpoint_is_converted_once_and_loads(tmp_path, models):
    folder = models.resolve("tiny-sd").folder
    ckpt = tmp_path / "tiny-original.safetensors"
    save_file({k: v.contiguous() for k, v in sd_fixtures.to_ldm_checkpoint(folder).items()}, str(ckpt))
    entry = {"name": "sf", "source": str(ckpt), "config": str(folder)}
    reg = ModelRegistry([entry], cache_dir=tmp_path / "c")
    resolved = reg.resolve("sf")
    assert resolved.format == "single_file" and not resolved.converted.exists()
    mm = ModelManager(reg)
    for component in ("unet", "vae", "text_encoder"):
        ours, ref = mm.load("sf", component).state_dict(), models.load("tiny-sd", component).state_dict()
        assert ours.keys() == ref.keys()
        assert all(torch.equal(ours[k], ref[k]) for k in ref)
    assert (resolved.converted / "model_index.json").is_file()
    assert mm.load("sf", "info").family == "sd"
    rows = {r["name"]: r for r in reg.describe()}
    assert rows["sf"]["status"] == "ready" and rows["sf"]["converted"] == str(resolved.converted)


def test_single_file_without_configs_says_what_to_set(tmp_path, models):
    folder = models.resolve("tiny-sd").folder
    ckpt = tmp_path / "tiny-original.safetensors"
    save_file({k: v.contiguous() for k, v in sd_fixtures.to_ldm_checkpoint(folder).items()}, str(ckpt))
    mm = ModelManager(ModelRegistry([{"name": "sf", "source": str(ckpt)}], cache_dir=tmp_path / "c"))
    with pytest.raises(ModelError) as info:
        mm.load("sf", "unet")
    assert "set `config` on the model entry" in str(info.value)  # the shipped sd1 configs do not fit
    assert info.value.to_dict()["model"] == "sf"
    converted = tmp_path / "c" / "converted"
    assert not converted.exists() or list(converted.iterdir()) == []  # nothing half-made is kept


# -- tiny models ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_tiny_models_have_the_same_weights_everywhere(model_registry, name):
    folder = ensure_tiny(name, model_registry.cache_dir)
    assert weights_checksum(folder) == CHECKSUMS[name]


def test_a_fresh_build_is_identical(tmp_path):
    folder = build("tiny-sd", tmp_path / "fresh")
    assert weights_checksum(folder) == CHECKSUMS["tiny-sd"]
    assert (folder / "tokenizer" / "vocab.json").is_file() and (folder / "tokenizer" / "merges.txt").is_file()


def test_tiny_tokenizer_is_built_locally(models):
    tok = models.load("tiny-sd", "tokenizer")
    vocab, merges = tokenizer_files()
    assert len(tok) == len(vocab) and len(merges) > 100
    ids = tok("a red fox").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True).strip() == "a red fox"
    assert tok.model_max_length == 77


def test_tiny_models_are_small(models):
    info = models.load("tiny-sd", "info")
    assert info.vae_scale_factor == 8 and info.unet["sample_size"] == 8
    total = sum(f.stat().st_size for f in info.folder.rglob("*.safetensors"))
    assert total < 8 * 1024 * 1024
    assert models.load("tiny-sdxl", "info").family == "sdxl"
    assert models.load("tiny-sd-inpaint", "info").is_inpaint


# -- the manager ----------------------------------------------------------------------------


def test_manager_loads_on_demand_and_keeps_components_resident(model_registry):
    mm = ModelManager(model_registry)
    unet = mm.load("tiny-sd", "unet")
    assert mm.load("tiny-sd", "unet") is unet
    assert mm.load(ModelRef(name="tiny-sd"), "unet", device="cpu") is unet
    rep = mm.report()
    assert rep["load_counts"] == {"tiny-sd": 1} and rep["hits"] == 2
    assert rep["held"] == [{"model": "tiny-sd", "component": "unet", "device": "cpu", "dtype": "float32",
                            "bytes": rep["bytes_used"]}]
    assert rep["bytes_used"] == sum(p.numel() * 4 for p in unet.parameters()) + sum(
        b.numel() * b.element_size() for b in unet.buffers())
    assert mm.holds("tiny-sd") and not mm.holds("tiny-sdxl")


def test_manager_evicts_least_recently_used_under_its_budget(model_registry):
    probe = ModelManager(model_registry)
    for c in ("vae", "text_encoder"):
        probe.load("tiny-sd", c)
    sizes = {h["component"]: h["bytes"] for h in probe.held()}
    mm = ModelManager(model_registry, budget_bytes=sizes["vae"] + sizes["text_encoder"] + 10)
    mm.load("tiny-sd", "vae")
    mm.load("tiny-sd", "text_encoder")
    mm.load("tiny-sd", "vae")  # vae is now the most recently used
    mm.load("tiny-sdxl", "text_encoder")  # over budget: the least recently used goes first
    held = [(h["model"], h["component"]) for h in mm.held()]
    assert ("tiny-sd", "text_encoder") not in held
    assert held[-1] == ("tiny-sdxl", "text_encoder")
    assert mm.report()["evictions"] >= 1 and mm.bytes_used <= mm.budget_bytes
    mm.load("tiny-sd", "text_encoder")
    assert mm.report()["load_counts"]["tiny-sd"] == 3  # loaded again after eviction
    assert mm.evict("tiny-sd") >= 1 and not mm.holds("tiny-sd")


def test_manager_pickles_without_weights(model_registry):
    mm = ModelManager(model_registry, budget_bytes=123)
    mm.load("tiny-sd", "vae")
    blob = pickle.dumps(mm)
    assert len(blob) < 20_000
    copy = pickle.loads(blob)
    assert copy.report()["held"] == [] and copy.budget_bytes == 123
    assert copy.load("tiny-sd", "vae") is not None


def test_manager_scheduler_info_pipeline_and_errors(models):
    s1, s2 = models.load("tiny-sd", "scheduler"), models.load("tiny-sd", "scheduler")
    assert s1 is not s2 and type(s1).__name__ == "DDIMScheduler"
    assert type(models.load("tiny-sdxl", "scheduler")).__name__ == "EulerDiscreteScheduler"
    pipe = models.load("tiny-sd")
    assert type(pipe).__name__ == "StableDiffusionPipeline" and pipe.unet is models.load("tiny-sd", "unet")
    assert type(models.load("tiny-sdxl")).__name__ == "StableDiffusionXLPipeline"
    assert models.dtype_for("tiny-sd", "unet", "cpu") == "float32"
    with pytest.raises(ModelError, match="no component 'refiner'"):
        models.load("tiny-sd", "refiner")
    with pytest.raises(ModelError, match="not configured"):
        models.load("nope", "unet")
    with pytest.raises(ModelError, match="export-onnx tiny-sd"):
        ModelManager(ModelRegistry(cache_dir=models.registry.cache_dir / "elsewhere")).load(
            "tiny-sd", "onnx:vae_decoder")


def test_cuda_dtypes(model_registry):
    mm = ModelManager(model_registry, cuda_dtype="bfloat16")
    assert mm.dtype_for("tiny-sd", "unet", "cuda:0") == "bfloat16"
    assert ModelManager(model_registry).dtype_for("tiny-sdxl", "vae", "cuda") == "float32"  # force_upcast
    assert ModelManager(model_registry).dtype_for("tiny-sd", "vae", "cuda") == "float16"
    with pytest.raises(ValueError):
        ModelManager(model_registry, cuda_dtype="int8")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA device"):
            mm.load("tiny-sd", "unet", device="cuda")


# -- LoRAs and embeddings -------------------------------------------------------------------

ATTN = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
CONV = "down_blocks.0.resnets.0.conv1"
TE = "text_model.encoder.layers.0.self_attn.q_proj"


def _kohya_lora(path: Path, seed: int, alpha: float = 2.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {
        f"lora_unet_{ATTN.replace('.', '_')}.lora_down.weight": torch.randn(4, 64, generator=g),
        f"lora_unet_{ATTN.replace('.', '_')}.lora_up.weight": torch.randn(64, 4, generator=g),
        f"lora_unet_{ATTN.replace('.', '_')}.alpha": torch.tensor(alpha),
        f"lora_unet_{CONV.replace('.', '_')}.lora_down.weight": torch.randn(2, 32, 3, 3, generator=g),
        f"lora_unet_{CONV.replace('.', '_')}.lora_up.weight": torch.randn(32, 2, 1, 1, generator=g),
        f"lora_te_{TE.replace('.', '_')}.lora_down.weight": torch.randn(2, 32, generator=g),
        f"lora_te_{TE.replace('.', '_')}.lora_up.weight": torch.randn(32, 2, generator=g),
    }
    save_file(sd, str(path))
    return sd


def test_lora_merges_kohya_and_peft_layouts(tmp_path, models):
    sd = _kohya_lora(tmp_path / "k.safetensors", 0)
    g = torch.Generator().manual_seed(1)
    peft = {f"unet.{ATTN}.lora_A.weight": torch.randn(4, 64, generator=g),
            f"unet.{ATTN}.lora_B.weight": torch.randn(64, 4, generator=g)}
    save_file(peft, str(tmp_path / "p.safetensors"))
    base = models.load("tiny-sd", "unet")
    w0 = base.get_submodule(ATTN).weight.clone()
    c0 = base.get_submodule(CONV).weight.clone()
    ref = {"name": "tiny-sd", "loras": [{"path": str(tmp_path / "k.safetensors"), "weight": 0.5},
                                        {"path": str(tmp_path / "p.safetensors"), "weight": 0.25}]}
    unet = models.load(ref, "unet")
    k = f"lora_unet_{ATTN.replace('.', '_')}"
    expected = (w0 + 0.5 * (2.0 / 4) * sd[f"{k}.lora_up.weight"] @ sd[f"{k}.lora_down.weight"]
                + 0.25 * peft[f"unet.{ATTN}.lora_B.weight"] @ peft[f"unet.{ATTN}.lora_A.weight"])
    torch.testing.assert_close(unet.get_submodule(ATTN).weight, expected)
    kc = f"lora_unet_{CONV.replace('.', '_')}"
    delta = (sd[f"{kc}.lora_up.weight"].reshape(32, 2) @ sd[f"{kc}.lora_down.weight"].reshape(2, -1))
    torch.testing.assert_close(unet.get_submodule(CONV).weight, c0 + 0.5 * delta.reshape(c0.shape))
    assert torch.equal(base.get_submodule(ATTN).weight, w0)  # the base stays as it was
    te_base = models.load("tiny-sd", "text_encoder")
    te = models.load(ref, "text_encoder")
    te_q = TE if hasattr(te, "text_model") else TE.removeprefix("text_model.")  # transformers 4 vs 5
    assert not torch.equal(te.get_submodule(te_q).weight, te_base.get_submodule(te_q).weight)
    assert models.load(ref, "vae") is models.load("tiny-sd", "vae")  # LoRAs leave the VAE shared


def test_lora_weight_zero_changes_nothing(tmp_path, models):
    _kohya_lora(tmp_path / "k.safetensors", 0)
    unet = models.load({"name": "tiny-sd", "loras": [{"path": str(tmp_path / "k.safetensors"), "weight": 0}]},
                       "unet")
    base = models.load("tiny-sd", "unet")
    assert torch.equal(unet.get_submodule(ATTN).weight, base.get_submodule(ATTN).weight)


def test_lora_that_does_not_fit_or_is_a_pickle_is_refused(tmp_path, models):
    save_file({"lora_unet_no_such_module.lora_down.weight": torch.zeros(2, 4),
               "lora_unet_no_such_module.lora_up.weight": torch.zeros(4, 2)},
              str(tmp_path / "bad.safetensors"))
    with pytest.raises(ModelError, match="does not fit"):
        models.load({"name": "tiny-sd", "loras": [{"path": str(tmp_path / "bad.safetensors")}]}, "unet")
    torch.save({"w": torch.zeros(1)}, tmp_path / "lora.safetensors")
    with pytest.raises(ModelError, match="pickle"):
        models.load({"name": "tiny-sd", "loras": [{"path": str(tmp_path / "lora.safetensors")}]}, "unet")
    with pytest.raises(ModelError, match="no LoRA layers"):
        save_file({"something": torch.zeros(1)}, str(tmp_path / "empty.safetensors"))
        lora_mod.read_lora(tmp_path / "empty.safetensors")


def test_embeddings_add_tokens_and_vectors(tmp_path, models):
    vecs = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    save_file({"emb_params": vecs}, str(tmp_path / "style.safetensors"))
    emb = {"path": str(tmp_path / "style.safetensors"), "token": "<style>"}
    ref = {"name": "tiny-sd", "embeddings": [emb]}
    tok = models.load(ref, "tokenizer")
    te = models.load(ref, "text_encoder")
    ids = tok.convert_tokens_to_ids(["<style>", "<style>_1", "<style>_2"])
    assert ids == [len(tok) - 3, len(tok) - 2, len(tok) - 1]
    torch.testing.assert_close(te.get_input_embeddings().weight[ids], vecs)
    assert "<style>" not in models.load("tiny-sd", "tokenizer").get_vocab()
    with pytest.raises(ModelError, match="vectors of size 16"):
        save_file({"emb_params": torch.zeros(1, 16)}, str(tmp_path / "small.safetensors"))
        models.load({"name": "tiny-sd", "embeddings": [{"path": str(tmp_path / "small.safetensors")}]},
                    "text_encoder")




def test_sdxl_embeddings_go_to_both_encoders(tmp_path, models):
    g = torch.Generator().manual_seed(2)
    clip_l, clip_g = torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g)
    save_file({"clip_l": clip_l, "clip_g": clip_g}, str(tmp_path / "xl.safetensors"))
    ref = {"name": "tiny-sdxl", "embeddings": [{"path": str(tmp_path / "xl.safetensors"), "token": "<xl>"}]}
    pairs = (("tokenizer", "text_encoder", clip_l), ("tokenizer_2", "text_encoder_2", clip_g))
    for tok_name, enc_name, vecs in pairs:
        tok, enc = models.load(ref, tok_name), models.load(ref, enc_name)
        ids = tok.convert_tokens_to_ids(["<xl>", "<xl>_1"])
        torch.testing.assert_close(enc.get_input_embeddings().weight[ids], vecs)
