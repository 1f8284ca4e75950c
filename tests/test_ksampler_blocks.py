"""sd.ksampler and the custom-sampling blocks: wiring, step windows, the base + refiner handoff, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import torch_unet, unet_prompt
from plugins.sd.ksampling import schedules
from plugins.sd.ksampling.denoiser import Denoiser
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import prepare_noise
from plugins.sd.ksampling.run import run_sampler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
PROMPT = "a lighthouse on a cliff at sunset"


@pytest.fixture(scope="module")
def ex(catalog, models):
    return LocalExecutor(catalog, models=models)


def base(b: GraphBuilder, model: str = "tiny-sd", size: int = 64, batch: int = 1):
    c = b.add("sd.encode_prompt", id="cond", model=model, prompt=PROMPT, negative_prompt="blurry")
    lat = b.add("sd.empty_latent", id="empty", model=model, width=size, height=size, batch=batch)
    return c, lat


def test_ksampler_is_the_native_run_seeded_as_comfyui(ex, models):
    b = GraphBuilder()
    c, lat = base(b)
    b.add(
        "sd.ksampler",
        id="k",
        cond=c.cond,
        latent=lat.latent,
        model="tiny-sd",
        seed=42,
        steps=4,
        cfg=6.0,
        sampler="dpmpp_2m",
        scheduler="karras",
    )
    res = ex.run(b.build())
    out, cond = res.outputs["k"]["latent"], res.outputs["cond"]["cond"]
    info, unet = models.load("tiny-sd", "info"), models.load("tiny-sd", "unet")
    ms = ModelSampling.from_config(dict(info.scheduler))
    sigmas = schedules.calculate_sigmas(ms, "karras", 4)
    prompt = unet_prompt(
        cond, batch=1, do_cfg=True, pixel_size=(64, 64), device="cpu", dtype=unet.dtype, node="k"
    )
    den = Denoiser(torch_unet(unet), ms, prompt, 6.0, dtype=unet.dtype, do_uncond=True)
    with torch.no_grad():
        ref = run_sampler(
            "dpmpp_2m",
            den,
            ms,
            sigmas,
            prepare_noise((1, 4, 8, 8), 42),
            torch.zeros(1, 4, 8, 8),
            seed=42,
        )
    assert out.shape == (1, 4, 8, 8)
    assert float((out - ref).abs().max()) <= 1e-5


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sdxl"])
def test_base_then_refiner_handoff_equals_one_run(ex, model):
    """KSamplerAdvanced 0..20 of 25 with leftover noise, then 20..25 without new noise, is the one
    25-step run (a sampler without history: the handoff carries everything)."""
    b = GraphBuilder()
    c, lat = base(b, model)
    common = dict(model=model, seed=3, steps=25, cfg=5.0, sampler="euler", scheduler="normal")
    b.add("sd.ksampler", id="whole", cond=c.cond, latent=lat.latent, **common)
    first = b.add(
        "sd.ksampler",
        id="first",
        cond=c.cond,
        latent=lat.latent,
        end_step=20,
        return_with_leftover_noise=True,
        **common,
    )
    b.add(
        "sd.ksampler",
        id="second",
        cond=c.cond,
        latent=first.latent,
        start_step=20,
        add_noise=False,
        **common,
    )
    b.add("sd.ksampler", id="stopped", cond=c.cond, latent=lat.latent, end_step=20, **common)
    out = ex.run(b.build()).outputs
    whole, handed, first_part = out["whole"]["latent"], out["second"]["latent"], out["first"]["latent"]
    assert float((whole - handed).abs().max()) <= 1e-4
    # without return_with_leftover_noise the window's last step goes to sigma 0 instead
    assert float((first_part - out["stopped"]["latent"]).abs().max()) > 1e-3


def test_denoise_below_one_runs_the_tail_of_a_longer_schedule(ex):
    b = GraphBuilder()
    c, lat = base(b)
    k = b.add("sd.ksampler", id="full", cond=c.cond, latent=lat.latent, seed=5, steps=4)
    b.add("sd.ksampler", id="half", cond=c.cond, latent=k.latent, seed=5, steps=4, denoise=0.5)
    b.add("sd.ksampler", id="none", cond=c.cond, latent=k.latent, seed=5, steps=4, start_step=4)
    out = ex.run(b.build()).outputs
    assert torch.equal(out["none"]["latent"], out["full"]["latent"])  # no step left: the latent as it is
    diff = float((out["half"]["latent"] - out["full"]["latent"]).abs().max())
    assert 0 < diff < float(out["full"]["latent"].abs().max()) * 10


def test_custom_sampling_graph_equals_ksampler(ex):
    """BasicScheduler + KSamplerSelect + RandomNoise + CFGGuider + SamplerCustomAdvanced is KSampler."""
    b = GraphBuilder()
    c, lat = base(b)
    b.add(
        "sd.ksampler",
        id="k",
        cond=c.cond,
        latent=lat.latent,
        seed=11,
        steps=5,
        cfg=4.0,
        sampler="dpmpp_2m_sde",
        scheduler="exponential",
    )
    sig = b.add("sd.sigmas", model="tiny-sd", scheduler="exponential", steps=5)
    smp = b.add("sd.sampler_select", sampler="dpmpp_2m_sde")
    noise = b.add("sd.noise", seed=11)
    guider = b.add("sd.guider", cond=c.cond, model="tiny-sd", cfg=4.0)
    b.add(
        "sd.sample_custom",
        id="custom",
        noise=noise.noise,
        guider=guider.guider,
        sampler=smp.sampler,
        sigmas=sig.sigmas,
        latent=lat.latent,
    )
    high_low = b.add("sd.split_sigmas", id="split", sigmas=sig.sigmas, step=2)
    out = ex.run(b.build()).outputs
    assert torch.equal(out["custom"]["latent"], out["k"]["latent"])
    assert out["custom"]["denoised"].shape == out["k"]["latent"].shape
    high, low = out["split"]["high"], out["split"]["low"]
    assert len(high) == 3 and len(low) == 4 and float(high[-1]) == float(low[0])
    assert high_low is not None


def test_sd_turbo_schedule_and_one_step_sampling(ex, models):
    b = GraphBuilder()
    c, lat = base(b)
    sig = b.add("sd.sigmas_turbo", id="turbo", model="tiny-sd", steps=2)
    guider = b.add("sd.guider", cond=c.cond, model="tiny-sd", cfg=1.0)
    b.add(
        "sd.sample_custom",
        id="s",
        noise=b.add("sd.noise", seed=0).noise,
        guider=guider.guider,
        sampler=b.add("sd.sampler_select", sampler="euler_ancestral").sampler,
        sigmas=sig.sigmas,
        latent=lat.latent,
    )
    out = ex.run(b.build()).outputs
    ms = ModelSampling.from_config(dict(models.load("tiny-sd", "info").scheduler))
    sigmas = out["turbo"]["sigmas"]
    assert [int(t) for t in ms.timestep(sigmas[:-1])] == [999, 899] and float(sigmas[-1]) == 0.0
    assert torch.isfinite(out["s"]["latent"]).all()


def test_sampler_options_are_checked(ex):
    b = GraphBuilder()
    b.add("sd.sampler_select", id="s", sampler="euler", eta=0.5)
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    d = err.value.to_dict()
    assert d["node"] == "s" and d["field"] == "params.eta" and "euler" in d["message"]


def test_wrong_inputs_give_structured_errors(ex):
    b = GraphBuilder()
    c, lat = base(b)
    sig = b.add("sd.sigmas_karras", id="bad", steps=4, sigma_max=1.0, sigma_min=2.0)
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    assert err.value.to_dict()["field"] == "params.sigma_min" and sig is not None
    b = GraphBuilder()
    c, lat = base(b, batch=2)
    b.add("sd.ksampler", id="k", cond=c.cond, latent=lat.latent, steps=2, batch_index=[0])
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    assert err.value.to_dict()["field"] == "params.batch_index"


def test_batch_index_draws_the_noise_of_a_larger_batch(ex):
    b = GraphBuilder()
    c, lat = base(b, batch=3)
    b.add("sd.ksampler", id="all", cond=c.cond, latent=lat.latent, seed=8, steps=2)
    lat1 = b.add("sd.empty_latent", id="one", model="tiny-sd", width=64, height=64, batch=1)
    b.add("sd.ksampler", id="third", cond=c.cond, latent=lat1.latent, seed=8, steps=2, batch_index=[2])
    out = ex.run(b.build()).outputs
    third = out["third"]["latent"]  # batched UNet calls differ in the last float bits only
    assert float((out["all"]["latent"][2:] - third).abs().max()) <= 1e-5 * float(third.abs().max())


def test_controlnet_conditioning_drives_the_native_sampler(ex):
    """A ControlNet in the conditioning changes sd.ksampler's result, and not at scale 0."""
    b = GraphBuilder()
    c, lat = base(b)
    img = b.add("image.solid", width=64, height=64, color=[0.9, 0.1, 0.1])
    for scale in (0.0, 1.0):
        cn = b.add("sd.controlnet", id=f"cn{int(scale)}", cond=c.cond, image=img.image, scale=scale, end=0.5)
        b.add("sd.ksampler", id=f"k{int(scale)}", cond=cn.cond, latent=lat.latent, seed=4, steps=4,
              sampler="heun")
    b.add("sd.ksampler", id="plain", cond=c.cond, latent=lat.latent, seed=4, steps=4, sampler="heun")
    out = ex.run(b.build()).outputs
    assert float((out["k0"]["latent"] - out["plain"]["latent"]).abs().max()) <= 1e-4
    assert float((out["k1"]["latent"] - out["plain"]["latent"]).abs().max()) > 1e-3


def test_hostile_params_are_refused_before_any_work(catalog, ex):
    """Out-of-range sampler params are validation errors naming node, field and value; a denoise that
    would lengthen the schedule past 10000 steps is a limit error, not a long computation."""
    from graphs import check

    bad = [("batch_index", [-1]), ("batch_index", [10**9]), ("seed", 2**64), ("sampler", "../../etc"),
           ("scheduler", "AYS"), ("cfg", float("nan")), ("steps", 100000), ("end_step", -1)]
    for field, value in bad:
        b = GraphBuilder()
        c, lat = base(b)
        b.add("sd.ksampler", id="k", cond=c.cond, latent=lat.latent, **{field: value})
        errors = [e.to_dict() for e in check(b.build(), catalog)]
        assert errors and all(e["node"] == "k" for e in errors), (field, value, errors)
        assert any(field in str(e["field"]) for e in errors), (field, errors)
    b = GraphBuilder()
    c, lat = base(b)
    b.add("sd.ksampler", id="k", cond=c.cond, latent=lat.latent, steps=1000, denoise=0.01)
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    d = err.value.to_dict()
    assert (d["type"], d["node"], d["field"], d["value"]) == ("limit", "k", "params.denoise", 0.01)
    b = GraphBuilder()
    b.add("sd.sigmas_karras", id="s", steps=5, rho=0.0)
    assert [e.to_dict()["field"] for e in check(b.build(), catalog)] == ["params.rho"]


def test_noise_mask_keeps_the_latent_outside_it(catalog, models, tmp_path):
    """ComfyUI's noise mask (SetLatentNoiseMask): where the mask is 0 the result is the input latent
    (an Euler run ends exactly on it), where it is 1 it is sampled; an all-ones mask is no mask."""
    sd_fixtures.write_png(tmp_path / "img.png", sd_fixtures.noise_image(64, seed=2))
    sd_fixtures.write_png(tmp_path / "mask.png", sd_fixtures.rect_mask(64, (0, 0, 32, 64)))  # left half
    sd_fixtures.write_png(tmp_path / "ones.png", sd_fixtures.rect_mask(64, (0, 0, 64, 64)))
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt=PROMPT, negative_prompt="blurry")
    img = b.add("image.load", path="img.png")
    enc = b.add("sd.vae_encode", id="enc", image=img.image, model="tiny-sd", mode="mean")
    half = b.add("image.load_mask", path="mask.png", channel="red")
    ones = b.add("image.load_mask", path="ones.png", channel="red")
    common = dict(cond=c.cond, latent=enc.latent, seed=6, steps=4, sampler="euler", denoise=0.8)
    b.add("sd.ksampler", id="half", mask=half.mask, **common)
    b.add("sd.ksampler", id="ones", mask=ones.mask, **common)
    b.add("sd.ksampler", id="none", **common)
    out = LocalExecutor(catalog, models=models, input_root=tmp_path).run(b.build()).outputs
    latent, masked = out["enc"]["latent"], out["half"]["latent"]
    assert float((masked[..., 4:] - latent[..., 4:]).abs().max()) <= 1e-5  # right half: untouched
    assert float((masked[..., :3] - latent[..., :3]).abs().max()) > 1e-2  # left half: sampled
    assert float((out["ones"]["latent"] - out["none"]["latent"]).abs().max()) <= 1e-5


def test_controlnet_step_range_follows_comfyui_sigmas(ex, models):
    """On the native samplers a ControlNet acts while
    percent_to_sigma(end) <= sigma <= percent_to_sigma(start) (ComfyUI's timestep range, checked at
    every model call), not by step index."""
    from plugins.sd.ksampler import control_active

    ms = ModelSampling.from_config(dict(models.load("tiny-sd", "info").scheduler))
    assert control_active(ms, 0.0, 1.0, 14.6) and control_active(ms, 0.0, 1.0, 0.0)
    assert not control_active(ms, 0.5, 1.0, 14.6) and control_active(ms, 0.5, 1.0, 0.5)
    assert not control_active(ms, 0.0, 0.5, 0.5) and control_active(ms, 0.0, 0.5, 3.0)
    # karras, 4 steps: sigmas 14.6, 1.27, 0.03 (+0): a range that only the middle step's sigma is in
    sigmas = schedules.calculate_sigmas(ms, "karras", 3)
    start, end = 0.3, 0.9  # percent_to_sigma: about 2.2 and 0.09
    assert [control_active(ms, start, end, float(s)) for s in sigmas[:-1]] == [False, True, False]
    b = GraphBuilder()
    c, lat = base(b)
    img = b.add("image.solid", width=64, height=64, color=[0.9, 0.1, 0.1])
    mid = b.add("sd.controlnet", cond=c.cond, image=img.image, start=start, end=end)
    never = b.add("sd.controlnet", cond=c.cond, image=img.image, start=0.0, end=0.0)  # above any sigma
    common = dict(latent=lat.latent, seed=4, steps=3, sampler="euler", scheduler="karras")
    b.add("sd.ksampler", id="mid", cond=mid.cond, **common)
    b.add("sd.ksampler", id="never", cond=never.cond, **common)
    b.add("sd.ksampler", id="plain", cond=c.cond, **common)
    out = ex.run(b.build()).outputs
    assert float((out["never"]["latent"] - out["plain"]["latent"]).abs().max()) <= 1e-5
    assert float((out["mid"]["latent"] - out["plain"]["latent"]).abs().max()) > 1e-3


def test_vae_encode_for_inpaint_greys_and_grows_as_comfyui(catalog, models, tmp_path):
    """The pixels under the rounded mask are grey before encoding; the noise mask is the rounded mask
    grown by a box of grow_mask_by pixels; odd sizes are cropped to the VAE's multiple, centred."""
    from plugins.sd.inpaint_encode import inpaint_pixels

    image = torch.rand(1, 70, 67, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 35, 34)
    mask[:, 10:20, 5:9] = 1.0
    px, grown = inpaint_pixels(image, mask, 8, 6)
    assert px.shape == (1, 64, 64, 3) and grown.shape == (1, 1, 64, 64)
    big = torch.nn.functional.interpolate(mask[None], size=(70, 67), mode="bilinear")[0].round()
    big = big[:, 3:67, 1:65]  # centred crop: (70 % 8) // 2 rows and (67 % 8) // 2 columns off
    assert torch.equal(px[0][big[0] == 1], torch.full_like(px[0][big[0] == 1], 0.5))
    assert torch.equal(px[0][big[0] == 0], image[0, 3:67, 1:65][big[0] == 0])
    rows, cols = torch.nonzero(big[0], as_tuple=True)
    g_rows, g_cols = torch.nonzero(grown[0, 0], as_tuple=True)
    # a 6x6 box (padding 3) grows 2 pixels up/left and 3 down/right
    assert (int(g_rows.min()), int(g_rows.max())) == (int(rows.min()) - 2, int(rows.max()) + 3)
    assert (int(g_cols.min()), int(g_cols.max())) == (int(cols.min()) - 2, int(cols.max()) + 3)


def test_inpainting_model_sees_the_mask_and_masked_latent(catalog, models, tmp_path):
    """tiny-sd-inpaint (9-channel UNet) through sd.vae_encode_for_inpaint + sd.ksampler: the UNet's
    extra channels are the rounded latent-size noise mask and the greyed image's latent, and the
    latent outside the noise mask is kept."""
    from plugins.sd import ksampler as ks

    sd_fixtures.write_png(tmp_path / "img.png", sd_fixtures.noise_image(64, seed=2))
    sd_fixtures.write_png(tmp_path / "mask.png", sd_fixtures.rect_mask(64, (8, 8, 24, 40)))
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="tiny-sd-inpaint", prompt=PROMPT, negative_prompt="blurry")
    enc = b.add("sd.vae_encode_for_inpaint", id="enc", image=b.add("image.load", path="img.png").image,
                mask=b.add("image.load_mask", path="mask.png", channel="red").mask, model="tiny-sd-inpaint")
    b.add("sd.ksampler", id="k", cond=c.cond, latent=enc.latent, mask=enc.mask, model="tiny-sd-inpaint",
          seed=3, steps=3, sampler="dpmpp_2m")
    seen: list = []
    real = ks.inpaint_concat
    try:
        ks.inpaint_concat = lambda m, lat: seen.append((m, lat)) or real(m, lat)
        out = LocalExecutor(catalog, models=models, input_root=tmp_path).run(b.build()).outputs
    finally:
        ks.inpaint_concat = real
    latent, noise_mask = out["enc"]["latent"], out["enc"]["mask"]
    [(m, lat)] = seen
    assert torch.equal(lat, latent) and m.shape == (1, 4, 8, 8)
    concat = real(m, lat)
    assert concat.shape == (1, 5, 8, 8) and set(concat[:, 0].unique().tolist()) <= {0.0, 1.0}
    outside = torch.nn.functional.interpolate(torch.from_numpy(noise_mask)[None], size=(8, 8),
                                              mode="bilinear")[0] == 0
    result = out["k"]["latent"]
    assert float((result - latent)[:, :, outside[0]].abs().max()) <= 1e-5
    assert float((result - latent).abs().max()) > 1e-2


def test_align_your_steps_and_flip(ex):
    b = GraphBuilder()
    b.add("sd.sigmas_ays", id="sd1", model_type="SD1", steps=10)
    b.add("sd.sigmas_ays", id="xl", model_type="SDXL", steps=4, denoise=0.5)
    b.add("sd.flip_sigmas", id="flip", sigmas=b.add("sd.sigmas_ays", id="short", steps=2).sigmas)
    out = ex.run(b.build()).outputs
    sd1 = out["sd1"]["sigmas"]
    assert sd1.tolist()[:2] == pytest.approx([14.6146412293, 6.4745760956]) and float(sd1[-1]) == 0.0
    xl = out["xl"]["sigmas"]  # the last 2 of 4 log-linearly interpolated SDXL steps
    assert len(xl) == 3 and float(xl[-1]) == 0.0 and float(xl[0]) < 1.0
    flipped = out["flip"]["sigmas"]
    assert float(flipped[0]) == pytest.approx(1e-4) and float(flipped[-1]) == pytest.approx(14.6146412293)


def test_progress_every_step_with_previews_and_cancellation(ex):
    from orchestrator.errors import JobError

    def graph(steps: int):
        b = GraphBuilder()
        c, lat = base(b)
        b.add("sd.ksampler", id="k", cond=c.cond, latent=lat.latent, seed=1, steps=steps, sampler="heun")
        return b.build()

    events: list = []
    ex.run(graph(3), on_event=events.append)
    steps = [e for e in events if e["event"] == "step" and e["node"] == "k"]
    assert [(e["step"], e["total"]) for e in steps] == [(1, 3), (2, 3), (3, 3)]
    assert all(e["preview"].shape == (8, 8, 3) for e in steps)
    seen: list = []
    with pytest.raises(JobError) as info:
        ex.run(graph(20), on_event=seen.append, is_cancelled=lambda: any(e["event"] == "step" for e in seen))
    assert info.value.type == "cancelled"
    assert max(e["step"] for e in seen if e["event"] == "step") == 1
