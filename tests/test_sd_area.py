"""Area, mask, strength and timestep conditioning (plugins/sd/area.py), held to ComfyUI.

The composition is checked against a line-by-line port of ComfyUI's
``resolve_areas_and_cond_masks``, ``get_area_and_mult`` and ``calc_cond_batch``
(comfy/samplers.py) over a model whose output depends on its whole input window (as a
UNet's does); the blocks then run in real denoises on tiny-sd and tiny-sdxl.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphs import GraphBuilder
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.area import (
    Areas,
    Average,
    Concat,
    SetArea,
    SetMask,
    ZeroOut,
    active,
    percent_to_sigma,
    sigma_at,
    training_sigmas,
)
from plugins.sd.common import Sampling, UNetPrompt, make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry

LATENT = (12, 16)  # h, w in cells: not square, not a power of two


# -- a port of ComfyUI's composition, the reference ------------------------------------------------


def ref_resolve(conds: list[dict], h: int, w: int) -> list[dict]:
    out = []
    for c in conds:
        c = dict(c)
        if "area" in c and c["area"][0] == "percentage":
            a = c["area"][1:]
            c["area"] = (max(1, round(a[0] * h)), max(1, round(a[1] * w)), round(a[2] * h), round(a[3] * w))
        if "mask" in c:
            mask = c["mask"]
            if mask.shape[1] != h or mask.shape[2] != w:
                mask = F.interpolate(mask.unsqueeze(1), size=(h, w), mode="bilinear",
                                     align_corners=False)[:, 0]
            c["mask"] = mask
            if c.get("set_area_to_bounds"):
                bounds = torch.max(torch.abs(mask), dim=0).values.unsqueeze(0)
                nz = torch.nonzero(bounds[0] > 0)
                if nz.shape[0] == 0:
                    c["area"] = (8, 8, 0, 0)
                else:
                    y0, x0 = nz.min(0).values.tolist()
                    y1, x1 = nz.max(0).values.tolist()
                    c["area"] = (max(8, y1 - y0 + 1), max(8, x1 - x0 + 1), y0, x0)
        out.append(c)
    return out


def ref_area_and_mult(c: dict, x_in, sigma: float):
    if "timestep_start" in c and sigma > c["timestep_start"]:
        return None
    if "timestep_end" in c and sigma < c["timestep_end"]:
        return None
    area = list(c["area"]) if "area" in c else None
    strength = c.get("strength", 1.0)
    input_x = x_in
    if area is not None:
        for i in range(2):
            area[i] = min(input_x.shape[i + 2] - area[2 + i], area[i])
            input_x = input_x.narrow(i + 2, area[2 + i], area[i])
    if "mask" in c:
        mask = c["mask"][:input_x.shape[0]]
        if area is not None:
            for i in range(2):
                mask = mask.narrow(i + 1, area[2 + i], area[i])
        mask = mask * c.get("mask_strength", 1.0)
        mask = mask.unsqueeze(1).repeat(input_x.shape[0] // mask.shape[0], input_x.shape[1], 1, 1)
    else:
        mask = torch.ones_like(input_x)
    mult = mask * strength
    if "mask" not in c and area is not None:
        for i in range(2):
            rr = min(8, mult.shape[2 + i] // 4)
            if area[2 + i] != 0:
                for t in range(rr):
                    m = mult.narrow(i + 2, t, 1)
                    m *= (1.0 / rr) * (t + 1)
            if area[i] + area[2 + i] < x_in.shape[i + 2]:
                for t in range(rr):
                    m = mult.narrow(i + 2, area[i] - 1 - t, 1)
                    m *= (1.0 / rr) * (t + 1)
    return input_x, mult, area


def ref_calc_cond(conds: list[dict], x, sigma: float, model) -> torch.Tensor:
    out = torch.zeros_like(x)
    counts = torch.ones_like(x) * 1e-37
    for c in conds:
        got = ref_area_and_mult(c, x, sigma)
        if got is None:
            continue
        input_x, mult, area = got
        output = model(input_x, c["embeds"])
        if area is None:
            out += output * mult
            counts += mult
        else:
            out[:, :, area[2]:area[0] + area[2], area[3]:area[1] + area[3]] += output * mult
            counts[:, :, area[2]:area[0] + area[2], area[3]:area[1] + area[3]] += mult
    return out / counts


def fake_model(x, embeds):
    """Depends on the prompt and on the whole window it sees (its mean), as a UNet does."""
    s = embeds.mean()
    return torch.tanh(x * s + x.mean(dim=(2, 3), keepdim=True) * 0.3 + s)


def embeds(seed: int) -> torch.Tensor:
    return torch.randn(1, 4, 8, generator=torch.Generator().manual_seed(seed))


def sampling(scheduler) -> Sampling:
    ctx = Context(node="denoise", block="sd.denoise", seed=0)
    return Sampling(ctx=ctx, device="cpu", dtype=torch.float32, do_cfg=True, batch=1, timesteps=None,
                    pixel_size=(LATENT[0] * 8, LATENT[1] * 8), latent_size=LATENT, unet_config={},
                    scheduler=scheduler, step_kwargs={}, base=UNetPrompt(None), make_prompt=lambda c: None)


def test_composition_equals_comfyui_calc_cond_batch():
    scheduler = make_scheduler({"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                "beta_schedule": "scaled_linear"}, "euler")
    sigmas = training_sigmas(scheduler)
    mask = torch.zeros(1, 40, 50)
    mask[:, 10:30, 5:20] = torch.linspace(0.2, 1.0, 15)
    base, area, pct, masked, bounded, late = (embeds(k) for k in range(6))
    ours = [  # entries as the cond.* blocks make them
        {"prompt_embeds": base},
        {"prompt_embeds": area, "area": (6, 8, 2, 6), "strength": 0.8},  # inner edges on all sides
        {"prompt_embeds": pct, "area": ("percentage", 0.5, 1.0, 0.5, 0.0), "strength": 1.2},  # bottom half
        {"prompt_embeds": masked, "mask": mask.numpy(), "mask_strength": 0.7, "strength": 1.0},
        {"prompt_embeds": bounded, "mask": mask.numpy(), "mask_strength": 1.0, "set_area_to_bounds": True},
        {"prompt_embeds": late, "start_percent": 0.5, "end_percent": 1.0},
    ]
    negative = embeds(9)
    cond = {"prompt_embeds": base, "negative_prompt_embeds": negative, "family": "sd", "entries": ours}
    areas = Areas(cond, sampling(scheduler))
    calls = []

    def unet(x, t, *, encoder_hidden_states, added_cond_kwargs=None):  # what the loops call
        calls.append(tuple(x.shape))
        return fake_model(x, encoder_hidden_states)

    wrapped = areas.wrap(unet)
    theirs = [{"embeds": base}, {"embeds": area, "area": (6, 8, 2, 6), "strength": 0.8},
              {"embeds": pct, "area": ("percentage", 0.5, 1.0, 0.5, 0.0), "strength": 1.2},
              {"embeds": masked, "mask": mask, "mask_strength": 0.7},
              {"embeds": bounded, "mask": mask, "set_area_to_bounds": True},
              {"embeds": late, "timestep_start": percent_to_sigma(sigmas, 0.5),
               "timestep_end": percent_to_sigma(sigmas, 1.0)}]
    theirs = ref_resolve(theirs, *LATENT)
    x = torch.randn(1, 4, *LATENT, generator=torch.Generator().manual_seed(3))
    for t in (999.0, 700.0, 499.6, 400.0, 12.5):
        sigma = float(torch.exp(torch.lerp(sigmas.log()[int(t)], sigmas.log()[min(999, int(t) + 1)],
                                           torch.tensor(t - int(t)))))
        calls.clear()
        both = torch.cat([x, x])  # the loop's batch under guidance: negative half first
        got = wrapped(both, torch.tensor([t, t]), encoder_hidden_states=torch.cat([negative, base]))
        u, c = got.chunk(2)
        assert (u - fake_model(x, negative)).abs().max() < 1e-6
        assert (c - ref_calc_cond(theirs, x, sigma, fake_model)).abs().max() < 1e-5, t
        assert len(calls) == 1 + 5 + (t < 499.5)  # the negative, the entries active at this sigma
    assert (6, 8) in {s[2:] for s in calls}  # the area entry was predicted on its window alone


def test_timestep_ranges_follow_comfyui_sigmas():
    scheduler = make_scheduler({"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                "beta_schedule": "scaled_linear"}, "euler")
    sigmas = training_sigmas(scheduler)
    for start, end in ((0.0, 1.0), (0.2, 0.7), (0.5, 0.5), (1.0, 1.0), (0.0, 0.0), (0.9, 0.1)):
        lo, hi = percent_to_sigma(sigmas, end), percent_to_sigma(sigmas, start)
        for t in np.linspace(0, 999, 97):
            sigma = float(sigma_at(sigmas, float(t)))  # what percent_to_sigma computes for a timestep
            assert active(float(t), start, end) == (not (sigma > hi or sigma < lo)), (start, end, t)


def test_set_area_blocks_make_comfyui_entries(models):
    from plugins.sd.conditioning import CondCombine
    from plugins.sd.prompt import EncodePrompt

    ctx = Context(node="c", block="cond.set_area", seed=0, models=models)
    a = EncodePrompt({"prompt": "a fox", "negative_prompt": "blurry"}).run(ctx)["cond"]
    b = EncodePrompt({"prompt": "a tree", "negative_prompt": "blurry"}).run(ctx)["cond"]
    right = SetArea({"x": 260, "y": 0, "width": 252, "height": 512, "strength": 0.9}).run(ctx, cond=b)["cond"]
    assert right["entries"][0]["area"] == (64, 31, 0, 32)  # ComfyUI: (h // 8, w // 8, y // 8, x // 8)
    pct = SetArea({"unit": "fraction", "x": 0.5, "width": 0.5, "height": 1.0}).run(ctx, cond=b)["cond"]
    assert pct["entries"][0]["area"] == ("percentage", 1.0, 0.5, 0.0, 0.5)
    both = CondCombine({"prompts": "list"}).run(ctx, conds=[a, right])["cond"]
    assert len(both["entries"]) == 2 and "entries" not in a and "entries" not in b  # inputs untouched
    mask = SetMask({"strength": 0.5, "bounds": "mask"}).run(ctx, cond=both, mask=np.ones((8, 8)))["cond"]
    assert [e["mask_strength"] for e in mask["entries"]] == [0.5, 0.5]  # every entry, as ComfyUI
    with pytest.raises(BlockError, match="at most 1"):
        SetArea({"unit": "fraction", "x": 2.0}).run(ctx, cond=b)
    with pytest.raises(BlockError, match="mask must be"):
        SetMask({}).run(ctx, cond=b, mask=np.ones((2, 2, 2, 2)))
    zeroed = ZeroOut({}).run(ctx, cond=a)["cond"]
    assert float(zeroed["prompt_embeds"].abs().sum()) == 0 and float(a["prompt_embeds"].abs().sum()) > 0
    neg = ZeroOut({"side": "negative"}).run(ctx, cond=a)["cond"]
    assert float(neg["negative_prompt_embeds"].abs().sum()) == 0
    avg = Average({"weight": 0.25}).run(ctx, to=a, source=b)["cond"]
    assert torch.allclose(avg["prompt_embeds"], a["prompt_embeds"] * 0.25 + b["prompt_embeds"] * 0.75)
    cat = Concat({}).run(ctx, to=a, source=b)["cond"]
    n = a["prompt_embeds"].shape[1]  # 2n tokens; the negative repeated to match changes no prediction
    assert cat["prompt_embeds"].shape[1] == 2 * n == cat["negative_prompt_embeds"].shape[1]
    xl = EncodePrompt({"model": "tiny-sdxl", "prompt": "a"}).run(ctx)["cond"]
    with pytest.raises(BlockError, match="cannot be mixed"):
        Average({}).run(ctx, to=a, source=xl)


def _txt2img(cond_steps, model="tiny-sd", sampler="euler", size=64, block="sd.denoise"):
    """txt2img whose conditioning goes through ``cond_steps(builder, base, other) -> cond output``;
    ``block`` samples: sd.denoise (diffusers' loop) or sd.ksampler (ComfyUI's samplers)."""
    b = GraphBuilder()
    base = b.add("sd.encode_prompt", id="base", model=model, prompt="a red fox", negative_prompt="blurry")
    other = b.add("sd.encode_prompt", id="other", model=model, prompt="a green tree",
                  negative_prompt="blurry")
    cond = cond_steps(b, base.cond, other.cond)
    lat = b.add("sd.empty_latent", id="latent", model=model, width=size, height=size)
    b.add(block, id="denoise", cond=cond, latent=lat.latent, model=model, steps=3, cfg=6.0,
          sampler=sampler, seed=11)
    return b.build()


@pytest.mark.parametrize(("model", "block"), [("tiny-sd", "sd.denoise"), ("tiny-sdxl", "sd.denoise"),
                                             ("tiny-sd", "sd.ksampler"), ("tiny-sdxl", "sd.ksampler")])
def test_entries_sample_like_plain_conditioning_when_they_add_nothing(model, block, catalog, models):
    if block not in catalog:
        pytest.skip(f"{block} is not in the catalog")
    run = LocalExecutor(catalog, models=models).run

    def txt2img(steps):
        return _txt2img(steps, model, block=block)

    plain = run(txt2img(lambda b, base, other: base))
    one = run(txt2img(lambda b, base, other: b.add("cond.set_strength", cond=base, strength=1.0).cond))
    never = run(txt2img(lambda b, base, other: b.add(  # the second entry is never active
        "sd.cond_combine", prompts="list",
        conds=[base, b.add("cond.timestep_range", cond=other, start=1.0, end=1.0).cond]).cond))
    ref = plain.outputs["denoise"]["latent"]
    tol = 1e-4 + 1e-5 * float(ref.abs().max())  # float32 rounding of batched vs separate calls
    assert (one.outputs["denoise"]["latent"] - ref).abs().max() < tol
    assert (never.outputs["denoise"]["latent"] - ref).abs().max() < tol
    area = run(txt2img(lambda b, base, other: b.add(
        "sd.cond_combine", prompts="list",
        conds=[base, b.add("cond.set_area", cond=other, x=32, y=0, width=32, height=64).cond]).cond))
    got = area.outputs["denoise"]["latent"]
    diff = (got - ref).abs().mean(dim=(0, 1))
    assert diff[:, 4:].mean() > 10 * diff[:, :2].mean()  # the area's prompt acts on its right half


def test_area_composition_workflow_imports_and_runs(catalog, models, tmp_path):
    """ComfyUI's area composition example, in its API shape: a base prompt and prompts for areas,
    combined, sampled, decoded and saved."""
    from graphs.comfy import import_result

    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a mountain landscape, sunrise", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "bad hands, text", "clip": ["4", 1]}},
        "10": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red barn", "clip": ["4", 1]}},
        "11": {"class_type": "ConditioningSetArea", "inputs": {
            "width": 320, "height": 512, "x": 0, "y": 0, "strength": 1.0, "conditioning": ["10", 0]}},
        "12": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lake", "clip": ["4", 1]}},
        "13": {"class_type": "ConditioningSetAreaPercentage", "inputs": {
            "width": 0.5, "height": 1.0, "x": 0.5, "y": 0.0, "strength": 1.2, "conditioning": ["12", 0]}},
        "14": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0],
                                                              "conditioning_2": ["11", 0]}},
        "15": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["14", 0],
                                                              "conditioning_2": ["13", 0]}},
        "16": {"class_type": "ConditioningSetTimestepRange", "inputs": {"start": 0.0, "end": 0.8,
                                                                       "conditioning": ["15", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 640, "height": 512, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 5, "steps": 20, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0], "positive": ["16", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "area", "images": ["8", 0]}},
    }
    result = import_result(prompt, catalog=catalog, model_map={"v1-5-pruned-emaonly": "tiny-sd"},
                           extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in result.problems] == []
    nodes = result.graph.nodes
    assert nodes["conditioning_set_area_percentage_13"].params["unit"] == "fraction"
    assert nodes["conditioning_combine_15"].params == {"prompts": "list"}
    graph = result.graph
    graph.nodes["empty_latent_image_5"].params.update(width=80, height=64)  # small, same aspect
    graph.nodes["ksampler_3"].params["steps"] = 3
    graph.nodes["conditioning_set_area_11"].params.update(width=40, height=64)
    out = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(graph)
    assert [Path(f["path"]).name for f in out.files] == ["area.png"]
