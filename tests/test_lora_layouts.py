"""LoRA layouts as people have them, built at test time, against diffusers' own loader.

The bar: a LoRA merged by the model manager gives the weights (and so the image) that
diffusers' ``load_lora_weights`` + ``fuse_lora`` give on the same pipeline: kohya files for
SD 1.x (diffusers block names) and SDXL (the original SGM ``input_blocks`` names, both text
encoders), and peft files with their alphas in the file's metadata. LyCORIS layers (LoCon,
LoHa, LoKr, DoRA, full diffs) are held to their published formulas (those ComfyUI merges by).
Bad LoRAs are refused with one error that names the file (not where it lives) and the layer,
and change nothing.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from graphs import GraphBuilder
from orchestrator.models import ModelError
from orchestrator.models import lora as lora_mod
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from model_builders import kohya_sd1, kohya_sdxl, pair

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1 / 255
PROMPT = "a red fox in the snow"


def diffusers_fused(models, model: str, path: Path, weight: float):
    """The pipeline of ``model`` (copies of its parts) with diffusers' loader and fuse_lora."""
    import diffusers

    base = models.load(model)
    parts = {k: copy.deepcopy(v) if isinstance(v, torch.nn.Module) else v for k, v in base.components.items()}
    pipe = getattr(diffusers, type(base).__name__)(**parts)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(path))
    pipe.fuse_lora(lora_scale=weight)
    pipe.unload_lora_weights()
    return pipe


def assert_same_weights(models, ref: dict, pipe, components: tuple[str, ...]) -> int:
    changed = 0
    for comp in components:
        ours = models.load(ref, comp).state_dict()
        theirs = getattr(pipe, comp).state_dict()
        base = models.load(ref["name"], comp).state_dict()
        assert ours.keys() == theirs.keys()
        for k in ours:
            torch.testing.assert_close(ours[k], theirs[k], atol=1e-6, rtol=1e-5, msg=f"{comp}.{k}")
            changed += not torch.equal(ours[k], base[k])
    return changed


@pytest.fixture(scope="module")
def run(catalog, models):
    ex = LocalExecutor(catalog, models=models)
    return lambda graph: ex.run(graph).outputs["decode"]["image"]


def txt2img(model: dict, sampler: str, steps: int = 3, cfg: float = 5.0, seed: int = 11):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model=model, prompt=PROMPT, negative_prompt="blurry")
    lat = b.add("sd.empty_latent", model=model["name"], width=64, height=64)
    d = b.add("sd.denoise", cond=c.cond, latent=lat.latent, model=model, steps=steps, cfg=cfg,
              sampler=sampler, seed=seed)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model=model)
    return b.build()


def pipeline_image(pipe, sampler: str, steps: int = 3, cfg: float = 5.0, seed: int = 11) -> np.ndarray:
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), sampler)
    return pipe(PROMPT, negative_prompt="blurry", height=64, width=64, num_inference_steps=steps,
                guidance_scale=cfg, generator=torch.Generator().manual_seed(seed), output_type="np").images


# -- equal to diffusers ---------------------------------------------------------------------------


def test_kohya_sd1_lora_equals_diffusers_fuse_lora(run, models, tmp_path):
    path = kohya_sd1(tmp_path / "fox_style.safetensors")
    ref = {"name": "tiny-sd", "loras": [{"path": str(path), "weight": 0.7}]}
    pipe = diffusers_fused(models, "tiny-sd", path, 0.7)
    assert assert_same_weights(models, ref, pipe, ("unet", "text_encoder")) == 11
    ours = run(txt2img(ref, "ddim"))
    theirs = pipeline_image(pipe, "ddim")
    plain = run(txt2img({"name": "tiny-sd"}, "ddim"))
    diff = float(np.abs(ours - theirs).max())
    print(f"kohya SD-1 LoRA vs diffusers: max abs pixel diff {diff:.3g}")
    assert diff <= TOL
    assert float(np.abs(ours - plain).max()) > 0.01  # the LoRA changes the image


def test_kohya_sdxl_sgm_lora_equals_diffusers_fuse_lora(run, models, tmp_path):
    """The layout that crashed with an AttributeError: ``lora_unet_input_blocks_*`` and te1/te2."""
    path = kohya_sdxl(tmp_path / "xl_style.safetensors")
    ref = {"name": "tiny-sdxl", "loras": [{"path": str(path), "weight": 0.8}]}
    pipe = diffusers_fused(models, "tiny-sdxl", path, 0.8)
    assert assert_same_weights(models, ref, pipe, ("unet", "text_encoder", "text_encoder_2")) == 15
    ours = run(txt2img(ref, "euler"))
    theirs = pipeline_image(pipe, "euler")
    diff = float(np.abs(ours - theirs).max())
    print(f"kohya SDXL (SGM names) LoRA vs diffusers: max abs pixel diff {diff:.3g}")
    assert diff <= TOL


def test_peft_lora_with_metadata_alphas_equals_diffusers(models, tmp_path):
    g = torch.Generator().manual_seed(3)
    attn = "down_blocks.1.attentions.0.transformer_blocks.0"
    sd = {}
    for module, d_in, d_out in [(f"{attn}.attn1.to_q", 64, 64), (f"{attn}.attn2.to_v", 32, 64),
                                (f"{attn}.ff.net.2", 256, 64)]:
        sd[f"unet.{module}.lora_A.weight"] = torch.randn(4, d_in, generator=g) * 0.2
        sd[f"unet.{module}.lora_B.weight"] = torch.randn(d_out, 4, generator=g) * 0.2
    meta = {"lora_adapter_metadata": json.dumps({
        "unet.r": 4, "unet.lora_alpha": 8, "unet.alpha_pattern": {"ff.net.2": 2},
        "unet.target_modules": ["to_q", "to_v", "ff.net.2"]})}
    path = tmp_path / "peft.safetensors"
    save_file(sd, str(path), metadata=meta)
    ref = {"name": "tiny-sd", "loras": [{"path": str(path), "weight": 0.5}]}
    pipe = diffusers_fused(models, "tiny-sd", path, 0.5)
    assert assert_same_weights(models, ref, pipe, ("unet",)) == 3
    base = models.load("tiny-sd", "unet").state_dict()
    merged = models.load(ref, "unet").state_dict()
    k = f"{attn}.ff.net.2"
    lora_ba = sd[f"unet.{k}.lora_B.weight"] @ sd[f"unet.{k}.lora_A.weight"]
    expected = base[f"{k}.weight"] + 0.5 * (2 / 4) * lora_ba
    torch.testing.assert_close(merged[f"{k}.weight"], expected)  # the alpha_pattern entry, not 8


def test_kohya_alphas_are_per_layer_and_te1_attention_merges(models, tmp_path):
    """kohya's scale is each layer's ``alpha / rank``. (diffusers 0.42 applies one alpha to
    attention layers and skips CLIP self-attention under transformers 5, so this is the formula.)"""
    g = torch.Generator().manual_seed(4)
    a = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1"
    sd = pair(f"{a}_to_k", (4, 64), (64, 4), 1.0, g)
    sd |= pair(f"{a}_to_v", (2, 64), (64, 2), 8.0, g)
    sd |= pair("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", (2, 32), (32, 2), None, g)
    path = tmp_path / "alphas.safetensors"
    save_file(sd, str(path))
    ref = {"name": "tiny-sdxl", "loras": [{"path": str(path), "weight": 1.5}]}
    unet, base = models.load(ref, "unet").state_dict(), models.load("tiny-sdxl", "unet").state_dict()
    for name, scale in (("to_k", 1.0 / 4), ("to_v", 8.0 / 2)):
        k = f"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_{name}"
        w = f"down_blocks.1.attentions.0.transformer_blocks.0.attn1.{name}.weight"
        expected = base[w] + 1.5 * scale * sd[f"{k}.lora_up.weight"] @ sd[f"{k}.lora_down.weight"]
        torch.testing.assert_close(unet[w], expected)
    te, te_base = models.load(ref, "text_encoder"), models.load("tiny-sdxl", "text_encoder")
    q = dict(te.named_parameters())
    q = next(v for k, v in q.items() if k.endswith("layers.0.self_attn.q_proj.weight"))
    q0 = next(v for k, v in te_base.named_parameters() if k.endswith("layers.0.self_attn.q_proj.weight"))
    k = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"
    torch.testing.assert_close(q, q0 + 1.5 * sd[f"{k}.lora_up.weight"] @ sd[f"{k}.lora_down.weight"])


# -- LyCORIS ---------------------------------------------------------------------------------------

ATTN = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"    # [64, 64]
CONV = "down_blocks.0.resnets.0.conv1"                                  # [32, 32, 3, 3]
K_ATTN = "lora_unet_" + ATTN.replace(".", "_")
K_CONV = "lora_unet_" + CONV.replace(".", "_")


def merged_delta(models, path: Path, sd: dict, weight: float, module: str) -> torch.Tensor:
    """What merging ``sd`` (saved at ``path``, a new name each time) adds to ``module``'s weight."""
    save_file(sd, str(path))
    ref = {"name": "tiny-sd", "loras": [{"path": str(path), "weight": weight}]}
    new = models.load(ref, "unet").get_submodule(module).weight
    return new - models.load("tiny-sd", "unet").get_submodule(module).weight


def test_loha_and_loha_tucker(models, tmp_path):
    g = torch.Generator().manual_seed(5)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    w1a, w1b, w2a, w2b = r(64, 4), r(4, 64), r(64, 4), r(4, 64)
    sd = {f"{K_ATTN}.hada_w1_a": w1a, f"{K_ATTN}.hada_w1_b": w1b, f"{K_ATTN}.hada_w2_a": w2a,
          f"{K_ATTN}.hada_w2_b": w2b, f"{K_ATTN}.alpha": torch.tensor(2.0)}
    delta = merged_delta(models, tmp_path / "loha.safetensors", sd, 0.5, ATTN)
    torch.testing.assert_close(delta, 0.5 * (2 / 4) * (w1a @ w1b) * (w2a @ w2b), atol=1e-6, rtol=1e-4)
    # a 3x3 conv with Tucker cores (LyCORIS: hada_w1_a [rank, out], hada_w1_b [rank, in])
    t1, t2, a1, b1, a2, b2 = r(4, 4, 3, 3), r(4, 4, 3, 3), r(4, 32), r(4, 32), r(4, 32), r(4, 32)
    sd = {f"{K_CONV}.hada_t1": t1, f"{K_CONV}.hada_t2": t2, f"{K_CONV}.hada_w1_a": a1,
          f"{K_CONV}.hada_w1_b": b1, f"{K_CONV}.hada_w2_a": a2, f"{K_CONV}.hada_w2_b": b2}
    delta = merged_delta(models, tmp_path / "loha_tucker.safetensors", sd, 1.0, CONV)
    m1 = torch.einsum("ijkl,ir,jc->rckl", t1, a1, b1)
    m2 = torch.einsum("ijkl,ir,jc->rckl", t2, a2, b2)
    torch.testing.assert_close(delta, m1 * m2, atol=1e-5, rtol=1e-4)


def test_lokr_full_and_low_rank_factors(models, tmp_path):
    g = torch.Generator().manual_seed(6)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    w1, w2a, w2b = r(8, 4), r(8, 2), r(2, 16)
    sd = {f"{K_ATTN}.lokr_w1": w1, f"{K_ATTN}.lokr_w2_a": w2a, f"{K_ATTN}.lokr_w2_b": w2b,
          f"{K_ATTN}.alpha": torch.tensor(1.0)}
    delta = merged_delta(models, tmp_path / "lokr.safetensors", sd, 0.8, ATTN)
    torch.testing.assert_close(delta, 0.8 * (1 / 2) * torch.kron(w1, w2a @ w2b), atol=1e-6, rtol=1e-4)


def test_locon_mid_dora_and_full_diff(models, tmp_path):
    g = torch.Generator().manual_seed(7)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    # LoCon with a Tucker core: delta = up x mid x down
    up, mid, down = r(32, 4, 1, 1), r(4, 4, 3, 3), r(4, 32, 1, 1)
    sd = {f"{K_CONV}.lora_up.weight": up, f"{K_CONV}.lora_mid.weight": mid,
          f"{K_CONV}.lora_down.weight": down}
    delta = merged_delta(models, tmp_path / "locon.safetensors", sd, 1.0, CONV)
    expected = torch.einsum("oa,abkl,bi->oikl", up[:, :, 0, 0], mid, down[:, :, 0, 0])
    torch.testing.assert_close(delta, expected, atol=1e-5, rtol=1e-4)
    # DoRA (kohya/LyCORIS: one magnitude per input column)
    w0 = models.load("tiny-sd", "unet").get_submodule(ATTN).weight.detach().clone()
    lu, ld, mag = r(64, 4), r(4, 64), r(1, 64).abs() + 0.5
    sd = {f"{K_ATTN}.lora_up.weight": lu, f"{K_ATTN}.lora_down.weight": ld, f"{K_ATTN}.dora_scale": mag,
          f"{K_ATTN}.alpha": torch.tensor(4.0)}
    delta = merged_delta(models, tmp_path / "dora.safetensors", sd, 1.0, ATTN)
    calc = w0 + lu @ ld
    expected = mag * calc / calc.norm(dim=0, keepdim=True)
    torch.testing.assert_close(w0 + delta, expected, atol=1e-5, rtol=1e-4)
    # a full difference, weight and bias
    diff = r(64, 64)
    sd = {f"{K_ATTN}.diff": diff}
    delta = merged_delta(models, tmp_path / "diff.safetensors", sd, 0.25, ATTN)
    torch.testing.assert_close(delta, 0.25 * diff)
    conv_b = models.load("tiny-sd", "unet").get_submodule(CONV).bias
    sd = {f"{K_CONV}.diff": r(32, 32, 3, 3), f"{K_CONV}.diff_b": r(32)}
    save_file(sd, str(tmp_path / "diff_b.safetensors"))
    ref = {"name": "tiny-sd", "loras": [{"path": str(tmp_path / "diff_b.safetensors"), "weight": 1.0}]}
    merged = models.load(ref, "unet").get_submodule(CONV)
    torch.testing.assert_close(merged.bias, conv_b + sd[f"{K_CONV}.diff_b"])


# -- refused, with the file and the layer named, and nothing changed ------------------------------


def refused(models, tmp_path, sd: dict, model: str = "tiny-sd", component: str = "unet",
            name: str = "bad_lora.safetensors") -> dict:
    path = tmp_path / name
    save_file(sd, str(path))
    before = {k: v.clone() for k, v in models.load(model, component).state_dict().items()}
    with pytest.raises(ModelError) as info:
        models.load({"name": model, "loras": [{"path": str(path), "weight": 1.0}]}, component)
    after = models.load(model, component).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the base model is untouched
    err = info.value.to_dict()
    assert err["type"] == "model" and name in err["message"]
    assert err["field"] == "params.model.loras[0]"  # the param the LoRA came from
    assert str(tmp_path) not in err["message"]  # the file by name, never where it lives
    return err


def test_transposed_or_wrong_shape_lora_is_refused(models, tmp_path):
    g = torch.Generator().manual_seed(8)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"  # weight [64, 32]
    # the same number of elements as the weight, transposed: merged silently before
    err = refused(models, tmp_path, pair(key, (4, 64), (32, 4), None, g))
    assert "transposed" in err["message"] and "attn2_to_k" in err["message"]
    assert "(32, 64)" in err["message"] and "(64, 32)" in err["message"]
    err = refused(models, tmp_path, pair(key, (4, 32), (64, 2), None, g), name="rank.safetensors")
    assert "attn2_to_k" in err["message"] and "rank 4" in err["message"]
    # a 3x3 LoCon on a 1x1 conv is not a reshape
    err = refused(models, tmp_path, pair("lora_unet_down_blocks_1_attentions_0_proj_in", (4, 64, 3, 3),
                                         (64, 4, 1, 1), None, g), name="conv.safetensors")
    assert "proj_in" in err["message"]


def test_other_family_and_unsupported_variants_are_refused(models, tmp_path):
    g = torch.Generator().manual_seed(9)
    xl = load_file(str(kohya_sdxl(tmp_path / "x.safetensors")))
    err = refused(models, tmp_path, xl, name="xl.safetensors")
    assert "SDXL" in err["message"]
    err = refused(models, tmp_path, {f"{K_ATTN}.oft_blocks": torch.zeros(4, 16, 16)}, name="oft.safetensors")
    assert "OFT" in err["message"] and K_ATTN[len("lora_unet_"):] in err["message"]
    err = refused(models, tmp_path, {f"{K_ATTN}.hada_w1_a": torch.zeros(64, 2)}, name="half.safetensors")
    assert "incomplete LoHa" in err["message"]
    err = refused(models, tmp_path, pair("lora_unet_no_such_block_attn", (2, 8), (8, 2), None, g),
                  name="nowhere.safetensors")
    assert "no_such_block_attn" in err["message"]


def test_broken_files_name_the_file(models, tmp_path):
    path = kohya_sd1(tmp_path / "cut.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ModelError) as info:
        models.load({"name": "tiny-sd", "loras": [{"path": str(path)}]}, "unet")
    assert "cut.safetensors" in str(info.value) and str(tmp_path) not in str(info.value)
    torch.save({"w": torch.zeros(1)}, tmp_path / "pickle.safetensors")  # a pickle renamed
    with pytest.raises(ModelError) as info:
        lora_mod.read_lora(tmp_path / "pickle.safetensors")
    assert info.value.to_dict()["reason"] == "pickle"


def test_ldm_names_follow_the_unet_config():
    cfg = {"layers_per_block": 2, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
           "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3}  # SD 1.5
    assert lora_mod.ldm_unet_name("down_blocks.3.resnets.1.conv2", cfg) == "input_blocks.11.0.out_layers.3"
    assert lora_mod.ldm_unet_name("up_blocks.0.upsamplers.0.conv", cfg) == "output_blocks.2.1.conv"
    assert lora_mod.ldm_unet_name("up_blocks.3.attentions.2.proj_out", cfg) == "output_blocks.11.1.proj_out"
    assert lora_mod.ldm_unet_name("mid_block.resnets.1.time_emb_proj", cfg) == "middle_block.2.emb_layers.1"
    xl = {"layers_per_block": 2, "up_block_types": ["CrossAttnUpBlock2D"] * 2 + ["UpBlock2D"]}  # SDXL
    assert lora_mod.ldm_unet_name("up_blocks.1.upsamplers.0.conv", xl) == "output_blocks.5.2.conv"
    assert lora_mod.ldm_unet_name("down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k", xl) \
        == "input_blocks.8.1.transformer_blocks.9.attn2.to_k"


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_peft_dora_equals_diffusers_fuse_lora(models, tmp_path, weight):
    """peft's DoRA (``lora_magnitude_vector``, one magnitude per output row), weight scaling the LoRA."""
    g = torch.Generator().manual_seed(10)
    w0 = models.load("tiny-sd", "unet").get_submodule(ATTN).weight.detach().clone()
    a, b = torch.randn(4, 64, generator=g) * 0.2, torch.randn(64, 4, generator=g) * 0.2
    magnitude = (w0 + b @ a).norm(dim=1) * (1 + 0.3 * torch.rand(64, generator=g))
    path = tmp_path / f"peft_dora_{weight}.safetensors"
    save_file({f"unet.{ATTN}.lora_A.weight": a, f"unet.{ATTN}.lora_B.weight": b,
               f"unet.{ATTN}.lora_magnitude_vector": magnitude}, str(path))
    ref = {"name": "tiny-sd", "loras": [{"path": str(path), "weight": weight}]}
    pipe = diffusers_fused(models, "tiny-sd", path, weight)
    assert assert_same_weights(models, ref, pipe, ("unet",)) == 1


def test_two_kohya_loras_at_once_equal_diffusers_adapters(models, tmp_path):
    import diffusers

    a, b = kohya_sd1(tmp_path / "a.safetensors", seed=20), kohya_sd1(tmp_path / "b.safetensors", seed=21)
    ref = {"name": "tiny-sd", "loras": [{"path": str(a), "weight": 0.7}, {"path": str(b), "weight": -0.4}]}
    base = models.load("tiny-sd")
    parts = {k: copy.deepcopy(v) if isinstance(v, torch.nn.Module) else v for k, v in base.components.items()}
    pipe = diffusers.StableDiffusionPipeline(**parts)
    pipe.load_lora_weights(str(a), adapter_name="a")
    pipe.load_lora_weights(str(b), adapter_name="b")
    pipe.set_adapters(["a", "b"], [0.7, -0.4])
    pipe.fuse_lora(adapter_names=["a", "b"])
    pipe.unload_lora_weights()
    assert assert_same_weights(models, ref, pipe, ("unet", "text_encoder")) == 11


def test_sgm_and_diffusers_block_names_reach_the_same_module(models, tmp_path):
    """Older SD 1.x LoRAs name blocks the SGM way too (``input_blocks_3_1`` is tiny-sd's
    ``down_blocks_1_attentions_0``): both merge into the same weight."""
    g = torch.Generator().manual_seed(22)
    to_k = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    layer = pair("x", (4, 32), (64, 4), 2.0, g)
    merged = []
    for i, name in enumerate(("lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k",
                              "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k")):
        path = tmp_path / f"names{i}.safetensors"
        save_file({k.replace("x", name, 1): v for k, v in layer.items()}, str(path))
        unet = models.load({"name": "tiny-sd", "loras": [{"path": str(path)}]}, "unet")
        merged.append(unet.get_submodule(to_k).weight)
    torch.testing.assert_close(merged[0], merged[1], rtol=0, atol=0)
    assert not torch.equal(merged[0], models.load("tiny-sd", "unet").get_submodule(to_k).weight)


def test_embeddings_bundled_in_a_lora_file_do_not_stop_it(tmp_path):
    g = torch.Generator().manual_seed(23)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    sd = pair(key, (4, 32), (64, 4), 2.0, g)
    sd["bundle_emb.my_style.string_to_param.*"] = torch.randn(2, 32, generator=g)
    path = tmp_path / "bundle.safetensors"
    save_file(sd, str(path))
    lf = lora_mod.read_lora(path, "sd")
    assert list(lf) == ["unet"] and len(lf["unet"]) == 1


def test_older_diffusers_layouts_equal_diffusers(models, tmp_path):
    """Attention-processor keys (``...attn1.processor.to_q_lora.down.weight``) and
    ``lora_linear_layer`` keys, as diffusers saved LoRAs before peft."""
    g = torch.Generator().manual_seed(24)
    a = "down_blocks.1.attentions.0.transformer_blocks.0"
    fc1 = "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer"
    sd = {f"unet.{a}.attn1.processor.to_q_lora.down.weight": torch.randn(4, 64, generator=g) * 0.2,
          f"unet.{a}.attn1.processor.to_q_lora.up.weight": torch.randn(64, 4, generator=g) * 0.2,
          f"unet.{a}.attn2.processor.to_out_lora.down.weight": torch.randn(4, 64, generator=g) * 0.2,
          f"unet.{a}.attn2.processor.to_out_lora.up.weight": torch.randn(64, 4, generator=g) * 0.2,
          f"{fc1}.down.weight": torch.randn(4, 32, generator=g) * 0.2,
          f"{fc1}.up.weight": torch.randn(64, 4, generator=g) * 0.2}
    path = tmp_path / "old_diffusers.safetensors"
    save_file(sd, str(path))
    ref = {"name": "tiny-sd", "loras": [{"path": str(path), "weight": 0.6}]}
    pipe = diffusers_fused(models, "tiny-sd", path, 0.6)
    assert assert_same_weights(models, ref, pipe, ("unet", "text_encoder")) == 3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_merging_into_half_precision_weights(tmp_path, dtype):
    """As on a CUDA worker (float16 / bfloat16 weights): the delta is computed in float32, then cast."""
    g = torch.Generator().manual_seed(25)
    net = torch.nn.Sequential()
    net.add_module("proj", torch.nn.Linear(16, 8))
    net = net.to(dtype)
    w0 = net.proj.weight.detach().float().clone()
    sd = pair("lora_unet_proj", (2, 16), (8, 2), 1.0, g)
    sd["lora_unet_proj.dora_scale"] = torch.rand(1, 16, generator=g) + 0.5
    path = tmp_path / "half.safetensors"
    save_file(sd, str(path))
    layers = lora_mod.read_lora(path)
    assert lora_mod.merge_lora(net, layers, "unet", 1.0) == 1
    calc = w0 + 0.5 * sd["lora_unet_proj.lora_up.weight"] @ sd["lora_unet_proj.lora_down.weight"]
    expected = sd["lora_unet_proj.dora_scale"] * calc / calc.norm(dim=0, keepdim=True)
    assert net.proj.weight.dtype == dtype
    torch.testing.assert_close(net.proj.weight.float(), expected, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize(("width", "model_family", "words"), [
    (2048, "sd", "SDXL LoRA"), (768, "sdxl", "SD 1.x LoRA"), (1024, "sdxl", "SD 2.x LoRA")])
def test_family_from_the_cross_attention_width(tmp_path, width, model_family, words):
    """Full-size LoRAs without a second text encoder are told apart by their cross-attention width."""
    g = torch.Generator().manual_seed(26)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    path = tmp_path / f"w{width}.safetensors"
    save_file(pair(key, (4, width), (640, 4), 4.0, g), str(path))
    with pytest.raises(ModelError) as info:
        lora_mod.read_lora(path, model_family)
    assert words in str(info.value) and info.value.to_dict()["reason"] == "family"
    assert path.name in str(info.value) and str(tmp_path) not in str(info.value)
    lora_mod.read_lora(path, "sdxl" if model_family == "sd" else "sd")  # the right family reads it


def test_one_component_is_read_at_a_time_and_the_family_from_the_whole_file(tmp_path):
    path = kohya_sdxl(tmp_path / "xl.safetensors")
    te2 = lora_mod.read_lora(path, "sdxl", component="text_encoder_2")
    assert list(te2) == ["text_encoder_2"] and len(te2["text_encoder_2"]) == 2
    with pytest.raises(ModelError, match="SDXL LoRA"):  # the unet's tensors alone would not tell
        lora_mod.read_lora(path, "sd", component="unet")
