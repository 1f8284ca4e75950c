"""ComfyUI's samplers and schedules (plugins/sd/ksampling) against independent references.

The reference is the ``k-diffusion`` package (crowsonkb), which ComfyUI's samplers derive
from: each of our samplers and the k-diffusion one get the *same* model wrapper (our
guided denoiser on the tiny models' real UNets), the same sigmas and the same noise
sampler, and must agree within 1e-4 on the latent. k-diffusion's ``sampling`` module is
loaded on its own (the package's ``__init__`` imports training code and torchvision).
Where k-diffusion has no such sampler the reference is another independent one:
diffusers' ``DDPMScheduler`` for ``ddpm``; the CFG++ samplers at cfg 1 equal their plain
forms; ``lcm`` and ``heunpp2`` against their published update rules written out here.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
import types
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import torch_unet, unet_prompt
from plugins.sd.ksampling import schedules
from plugins.sd.ksampling.catalog import SAMPLERS
from plugins.sd.ksampling.denoiser import Denoiser, needs_uncond
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import BrownianTreeNoiseSampler, default_noise_sampler, prepare_noise
from plugins.sd.ksampling.run import run_sampler

sys.path.insert(0, str(Path(__file__).parent))

import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1e-4
SEED = 1234


def load_k_diffusion() -> types.ModuleType:
    """k-diffusion's ``sampling`` module (and its ``utils``), without the package ``__init__``."""
    spec = importlib.util.find_spec("k_diffusion")
    assert spec is not None and spec.submodule_search_locations, (
        "k-diffusion is not installed (scripts/install.sh installs it with --no-deps)"
    )
    root = Path(next(iter(spec.submodule_search_locations)))
    name = "_kdiffusion_reference"
    if f"{name}.sampling" in sys.modules:
        return sys.modules[f"{name}.sampling"]
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(root)]
    sys.modules[name] = pkg
    stand_ins = {}
    try:
        import torchvision.transforms.functional  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or does not import beside this torch
        for mod in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            stand_ins[mod] = sys.modules.get(mod)
            sys.modules[mod] = types.ModuleType(mod)
        sys.modules["torchvision.transforms"].functional = sys.modules[
            "torchvision.transforms.functional"
        ]
    try:
        for sub in ("utils", "sampling", "external"):
            s = importlib.util.spec_from_file_location(f"{name}.{sub}", root / f"{sub}.py")
            module = importlib.util.module_from_spec(s)
            sys.modules[f"{name}.{sub}"] = module
            s.loader.exec_module(module)
            setattr(pkg, sub, module)
    finally:
        for mod, before in stand_ins.items():
            if before is None:
                sys.modules.pop(mod, None)
            else:
                sys.modules[mod] = before
    return sys.modules[f"{name}.sampling"]


@pytest.fixture(scope="module")
def kd():
    return load_k_diffusion()


class Setup:
    """A tiny model's UNet, sampling and prompt, ready to build denoisers."""

    def __init__(self, models, catalog, name: str, size: int = 32) -> None:
        b = GraphBuilder()
        b.add(
            "sd.encode_prompt",
            id="c",
            model=name,
            prompt="a red fox in the snow",
            negative_prompt="blurry",
        )
        self.cond = LocalExecutor(catalog, models=models).run(b.build()).outputs["c"]["cond"]
        info = models.load(name, "info")
        self.unet = models.load(name, "unet")
        self.ms = ModelSampling.from_config(dict(info.scheduler))
        f = info.vae_scale_factor
        self.shape = (2, info.latent_channels, size // f, size // f)
        self.pixel_size = (size, size)

    def denoiser(
        self, cfg: float = 4.0, cfg_pp: bool = False, negative_is_positive: bool = False
    ) -> Denoiser:
        do_uncond = needs_uncond(cfg, cfg_pp)
        cond = self.cond
        if negative_is_positive:
            cond = {
                **cond,
                "negative_prompt_embeds": cond["prompt_embeds"],
                "negative_pooled_prompt_embeds": cond.get("pooled_prompt_embeds"),
            }
        prompt = unet_prompt(
            cond,
            batch=self.shape[0],
            do_cfg=do_uncond,
            pixel_size=self.pixel_size,
            device="cpu",
            dtype=self.unet.dtype,
            node="test",
        )
        return Denoiser(
            torch_unet(self.unet), self.ms, prompt, cfg, dtype=self.unet.dtype, do_uncond=do_uncond
        )

    def start(self, sigmas):
        noise = prepare_noise(self.shape, SEED)
        return noise, self.ms.noise_scaling(
            sigmas[0], noise, torch.zeros(self.shape), self.ms.is_max_denoise(sigmas)
        )


@pytest.fixture(scope="module", params=["tiny-sd", "tiny-sdxl"])
def setup(request, models, catalog):
    return Setup(models, catalog, request.param)


def ours(
    setup: Setup, name: str, sigmas, cfg: float = 4.0, noise_sampler=None, negative_is_positive=False
):
    noise, _ = setup.start(sigmas)
    den = setup.denoiser(cfg, SAMPLERS[name].cfg_pp, negative_is_positive)
    options = {} if noise_sampler is None else {"noise_sampler": noise_sampler}
    with torch.no_grad():
        return run_sampler(
            name, den, setup.ms, sigmas, noise, torch.zeros(setup.shape), seed=SEED, options=options
        )


def brownian(setup: Setup, sigmas, kd=None):
    x = torch.zeros(setup.shape)
    lo, hi = sigmas[sigmas > 0].min(), sigmas.max()
    if kd is None:
        return BrownianTreeNoiseSampler(x, lo, hi, seed=SEED, cpu=True)
    return kd.BrownianTreeNoiseSampler(x, lo, hi, seed=SEED)


def assert_close(a, b, what: str) -> None:
    """Equal to float32 rounding: TOL, plus 1e-5 of the largest value (latents reach ~20, where
    summation order differs between CPUs by ~1e-4; a wrong sampler differs by ~1e-1)."""
    diff = float((a - b).abs().max())
    bound = TOL + 1e-5 * float(b.abs().max())
    print(f"{what}: max abs diff {diff:.3g} (bound {bound:.3g})")
    assert a.shape == b.shape and math.isfinite(diff) and diff <= bound, f"{what}: {diff} > {bound}"


# the k-diffusion function for each of ours, and how its noise is given
K_REFERENCE = {
    "euler": ("sample_euler", None),
    "ddim": ("sample_euler", None),
    "heun": ("sample_heun", None),
    "dpm_2": ("sample_dpm_2", None),
    "dpmpp_2m": ("sample_dpmpp_2m", None),
    "euler_ancestral": ("sample_euler_ancestral", "default"),
    "dpm_2_ancestral": ("sample_dpm_2_ancestral", "default"),
    "dpmpp_2s_ancestral": ("sample_dpmpp_2s_ancestral", "default"),
    "dpmpp_sde": ("sample_dpmpp_sde", "brownian"),
    "dpmpp_sde_gpu": ("sample_dpmpp_sde", "brownian"),
    "dpmpp_2m_sde": ("sample_dpmpp_2m_sde", "brownian"),
    "dpmpp_2m_sde_gpu": ("sample_dpmpp_2m_sde", "brownian"),
    "dpmpp_2m_sde_heun": ("sample_dpmpp_2m_sde", "brownian"),
    "dpmpp_2m_sde_heun_gpu": ("sample_dpmpp_2m_sde", "brownian"),
    "dpmpp_3m_sde": ("sample_dpmpp_3m_sde", "brownian"),
    "dpmpp_3m_sde_gpu": ("sample_dpmpp_3m_sde", "brownian"),
}


@pytest.mark.parametrize("name", sorted(K_REFERENCE))
def test_sampler_equals_k_diffusion(setup, kd, name):
    fn_name, noise_kind = K_REFERENCE[name]
    sigmas = schedules.sampler_sigmas(setup.ms, "karras", name, 5)
    _, x = setup.start(sigmas)
    kwargs = {}
    if noise_kind == "default":  # ComfyUI's ancestral noise, handed to both
        kwargs["noise_sampler"] = default_noise_sampler(x, SEED)
    elif noise_kind == "brownian":  # k-diffusion's own Brownian tree, with ComfyUI's seed
        kwargs["noise_sampler"] = brownian(setup, sigmas, kd)
    if "heun" in name and "sde" in name:
        kwargs["solver_type"] = "heun"
    with torch.no_grad():
        ref = getattr(kd, fn_name)(setup.denoiser(), x, sigmas, disable=True, **kwargs)
    mine_noise = default_noise_sampler(x, SEED) if noise_kind == "default" else None
    assert_close(ours(setup, name, sigmas, noise_sampler=mine_noise), ref, f"{name} vs k-diffusion")


def test_brownian_noise_equals_k_diffusion(setup, kd):
    sigmas = schedules.calculate_sigmas(setup.ms, "normal", 6)
    mine, ref = brownian(setup, sigmas), brownian(setup, sigmas, kd)
    for a, b in itertools.pairwise(sigmas[:-1]):  # the tree spans the non-zero sigmas
        assert torch.equal(mine(a, b), ref(a, b))
    # the SDE samplers draw from a tree seeded with the seed, not from the ancestral stream
    with torch.no_grad():
        plain = ours(setup, "dpmpp_2m_sde", sigmas)
        explicit = ours(setup, "dpmpp_2m_sde", sigmas, noise_sampler=brownian(setup, sigmas))
    assert torch.equal(plain, explicit)


def test_lms_equals_k_diffusion_then_comfyui_final_step(setup, kd):
    """k-diffusion's LMS integrates its last step to sigma 0; ComfyUI (and ours) take the denoised
    latent there. Up to that step they agree; the last step is one denoiser call."""
    sigmas = schedules.sampler_sigmas(setup.ms, "normal", "lms", 6)
    _, x = setup.start(sigmas)
    den = setup.denoiser()
    with torch.no_grad():
        ref = kd.sample_lms(den, x, sigmas[:-1], disable=True)
        ref = den(ref, sigmas[-2] * ref.new_ones([ref.shape[0]]))
    assert_close(ours(setup, "lms", sigmas), ref, "lms vs k-diffusion")


@pytest.mark.parametrize("name", ["dpm_fast", "dpm_adaptive"])
def test_dpm_solver_equals_k_diffusion(setup, kd, name):
    sigmas = schedules.sampler_sigmas(setup.ms, "exponential", name, 4)
    _, x = setup.start(sigmas)
    sigma_min, sigma_max = sigmas[-2], sigmas[0]
    with torch.no_grad():
        if name == "dpm_fast":
            ref = kd.sample_dpm_fast(
                setup.denoiser(), x, sigma_min, sigma_max, len(sigmas) - 1, disable=True
            )
        else:
            ref = kd.sample_dpm_adaptive(setup.denoiser(), x, sigma_min, sigma_max, disable=True)
    assert_close(ours(setup, name, sigmas), ref, f"{name} vs k-diffusion")


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("euler_cfg_pp", "sample_euler"),
        ("euler_ancestral_cfg_pp", "sample_euler_ancestral"),
        ("dpmpp_2s_ancestral_cfg_pp", "sample_dpmpp_2s_ancestral"),
        ("dpmpp_2m_cfg_pp", "sample_dpmpp_2m"),
    ],
)
def test_cfg_pp_without_guidance_equals_the_plain_sampler(setup, kd, name, plain):
    """CFG++ steps along the unguided prediction and adds the guidance back: where the negative prompt
    is the positive one the two predictions are one, and the sampler is its plain k-diffusion form.
    With a real negative prompt it is not."""
    sigmas = schedules.sampler_sigmas(setup.ms, "normal", name, 5)
    _, x = setup.start(sigmas)
    ancestral = "ancestral" in name
    kwargs = {"noise_sampler": default_noise_sampler(x, SEED)} if ancestral else {}
    with torch.no_grad():
        ref = getattr(kd, plain)(setup.denoiser(1.0), x, sigmas, disable=True, **kwargs)
        mine = ours(
            setup,
            name,
            sigmas,
            cfg=4.0,
            negative_is_positive=True,
            noise_sampler=default_noise_sampler(x, SEED) if ancestral else None,
        )
        guided = ours(setup, name, sigmas, cfg=4.0)
        plain_guided = getattr(kd, plain)(
            setup.denoiser(4.0),
            x,
            sigmas,
            disable=True,
            **({"noise_sampler": default_noise_sampler(x, SEED)} if ancestral else {}),
        )
    assert_close(mine, ref, f"{name} without guidance vs k-diffusion {plain}")
    assert float((guided - plain_guided).abs().max()) > 1e-3


def test_ddpm_equals_diffusers_ddpm_scheduler(setup):
    """ComfyUI's DDPM on the ``simple`` schedule (exact training sigmas) is diffusers' DDPM posterior
    step (``fixed_small`` variance) at those timesteps, with the same noise."""
    import diffusers

    steps = 5
    sigmas = schedules.calculate_sigmas(setup.ms, "simple", steps)
    timesteps = [int(setup.ms.timestep(s)) for s in sigmas[:-1]]
    den = setup.denoiser()
    noise, x = setup.start(sigmas)
    with torch.no_grad():
        mine = run_sampler(
            "ddpm",
            den,
            setup.ms,
            sigmas,
            noise,
            torch.zeros(setup.shape),
            seed=SEED,
            options={
                "noise_sampler": lambda s, s_next, g=torch.Generator().manual_seed(9): torch.randn(
                    setup.shape, generator=g
                )
            },
        )
        sched = diffusers.DDPMScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            clip_sample=False,
            variance_type="fixed_small",
        )
        sched.set_timesteps(timesteps=timesteps)
        gen = torch.Generator().manual_seed(9)
        sample = x / (1 + sigmas[0] ** 2) ** 0.5
        for t, s in zip(sched.timesteps, sigmas[:-1], strict=True):
            eps = (
                sample * (1 + s**2) ** 0.5 - den(sample * (1 + s**2) ** 0.5, s.reshape(1).expand(2))
            ) / s
            sample = sched.step(eps, t, sample, generator=gen).prev_sample
    assert_close(mine, sample, "ddpm vs diffusers DDPMScheduler")


def test_lcm_and_heunpp2_follow_their_update_rules(setup):
    sigmas = schedules.calculate_sigmas(setup.ms, "sgm_uniform", 4)
    _noise, x = setup.start(sigmas)
    den = setup.denoiser()
    s_in = torch.ones(setup.shape[0])
    with torch.no_grad():
        # LCM: x <- D(x, sigma_i); then x <- x + sigma_{i+1} * fresh noise (ComfyUI's seed + 1 stream on CPU)
        gen = torch.Generator().manual_seed(SEED + 1)
        ref = x
        for i in range(len(sigmas) - 1):
            ref = den(ref, sigmas[i] * s_in)
            if sigmas[i + 1] > 0:
                ref = ref + sigmas[i + 1] * torch.randn(setup.shape, generator=gen)
        assert_close(ours(setup, "lcm", sigmas), ref, "lcm vs its update rule")
        # Heun++ (Carzit's sd-webui-samplers-scheduler): the derivatives at up to three points weighted
        # by sigma / (k * sigma_0); Euler on the last step, two points on the one before
        ref = x
        n = len(sigmas) - 1
        for i in range(n):
            d = (ref - den(ref, sigmas[i] * s_in)) / sigmas[i]
            dt = sigmas[i + 1] - sigmas[i]
            if i == n - 1:
                ref = ref + d * dt
                continue
            x2 = ref + d * dt
            d2 = (x2 - den(x2, sigmas[i + 1] * s_in)) / sigmas[i + 1]
            if i == n - 2:
                w2 = sigmas[i + 1] / (2 * sigmas[0])
                ref = ref + ((1 - w2) * d + w2 * d2) * dt
                continue
            x3 = x2 + d2 * (sigmas[i + 2] - sigmas[i + 1])
            d3 = (x3 - den(x3, sigmas[i + 2] * s_in)) / sigmas[i + 2]
            w2, w3 = sigmas[i + 1] / (3 * sigmas[0]), sigmas[i + 2] / (3 * sigmas[0])
            ref = ref + ((1 - w2 - w3) * d + w2 * d2 + w3 * d3) * dt
        assert_close(ours(setup, "heunpp2", sigmas), ref, "heunpp2 vs its update rule")


@pytest.mark.parametrize(("name", "variant"), [("uni_pc", "bh1"), ("uni_pc_bh2", "bh2")])
def test_uni_pc_equals_diffusers_unipc_on_the_same_sigmas(setup, name, variant):
    """diffusers' UniPCMultistepScheduler (the same authors' predictor-corrector, data prediction, order 3
    with lower orders at the ends) run on ComfyUI's sigmas (the last one 0.001, as ComfyUI ends) with the
    same model: its VP-space result, divided by alpha at 0.001, is ours."""
    import diffusers

    sigmas = schedules.sampler_sigmas(setup.ms, "karras", name, 6)
    _, x = setup.start(sigmas)
    den = setup.denoiser()
    sched = diffusers.UniPCMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                              beta_end=0.012, solver_order=3, solver_type=variant,
                                              lower_order_final=True, predict_x0=True)
    steps = len(sigmas) - 1
    sched.set_timesteps(steps)
    ends = sigmas.clone()
    ends[-1] = 0.001
    sched.sigmas = ends.clone()
    sched.timesteps = torch.arange(steps, 0, -1) * 10
    sample = x / (1 + ends[0] ** 2) ** 0.5
    with torch.no_grad():
        for t, s in zip(sched.timesteps, ends[:-1], strict=True):
            x_ve = sample * (1 + s**2) ** 0.5
            eps = (x_ve - den(x_ve, s.reshape(1).expand(x_ve.shape[0]))) / s
            sample = sched.step(eps, t, sample).prev_sample
        ref = sample * (1 + 0.001**2) ** 0.5
    # the two order their float32 operations differently (diffusers solves in VP form throughout):
    # the bound is 1e-4 relative to the latent's scale here (|x| reaches ~20 on these random models)
    mine = ours(setup, name, sigmas)
    scale = max(1.0, float(ref.abs().max()))
    print(f"{name}: |ref| max {scale:.3g}")
    assert_close(mine / scale, ref / scale, f"{name} vs diffusers UniPC {variant} (relative)")


# -- schedules and the model wrapper -----------------------------------------------------------------


@pytest.fixture(scope="module")
def kd_external(kd):
    return sys.modules["_kdiffusion_reference.external"]


@pytest.mark.parametrize("steps", [1, 4, 7, 20])
def test_schedules_equal_k_diffusion(setup, kd, kd_external, steps):
    ms = setup.ms
    lo, hi = float(ms.sigma_min), float(ms.sigma_max)
    assert torch.equal(schedules.calculate_sigmas(ms, "karras", steps), kd.get_sigmas_karras(steps, lo, hi))
    assert torch.equal(schedules.calculate_sigmas(ms, "exponential", steps),
                       kd.get_sigmas_exponential(steps, lo, hi))
    assert torch.allclose(schedules.polyexponential(steps, lo, hi, 2.0),
                          kd.get_sigmas_polyexponential(steps, lo, hi, 2.0))
    # "normal": k-diffusion's DiscreteSchedule.get_sigmas (timesteps evenly spaced, log-sigma interpolated)
    ref = kd_external.DiscreteSchedule(ms.sigmas, quantize=True).get_sigmas(steps)
    assert torch.allclose(schedules.calculate_sigmas(ms, "normal", steps), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("steps", [4, 5, 10])
def test_simple_and_ddim_uniform_equal_diffusers_spacings(setup, steps):
    """``simple`` is diffusers' "trailing" timestep spacing, ``ddim_uniform`` DDIM's "leading" one with
    steps_offset 1, each at the training sigmas (for step counts that divide 1000)."""
    import diffusers

    ms = setup.ms
    kw = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    trailing = diffusers.EulerDiscreteScheduler(**kw, timestep_spacing="trailing")
    trailing.set_timesteps(steps)
    simple = schedules.calculate_sigmas(ms, "simple", steps)
    assert torch.allclose(simple[:-1], ms.sigmas[trailing.timesteps.long()]) and float(simple[-1]) == 0.0
    leading = diffusers.DDIMScheduler(**kw, timestep_spacing="leading", steps_offset=1)
    leading.set_timesteps(steps)
    got = schedules.calculate_sigmas(ms, "ddim_uniform", steps)
    assert torch.equal(got[:-1], ms.sigmas[leading.timesteps.long()]) and float(got[-1]) == 0.0


@pytest.mark.parametrize("steps", [2, 6, 13])
def test_other_schedules_keep_their_defining_properties(setup, steps):
    ms = setup.ms
    hi = float(ms.sigma_max)
    kl = schedules.calculate_sigmas(ms, "kl_optimal", steps)  # evenly spaced in atan(sigma)
    gaps = torch.diff(torch.atan(kl[:-1].double()))
    assert len(kl) == steps + 1 and float(kl[-1]) == 0.0 and math.isclose(float(kl[0]), hi, rel_tol=1e-5)
    assert steps == 1 or float((gaps - gaps.mean()).abs().max()) < 1e-5
    beta = schedules.calculate_sigmas(ms, "beta", steps)  # training sigmas at Beta(0.6, 0.6) quantiles
    assert float(beta[0]) == hi and float(beta[-1]) == 0.0 and bool((torch.diff(beta) < 0).all())
    assert all(bool((ms.sigmas == s).any()) for s in beta[:-1])
    lq = schedules.calculate_sigmas(ms, "linear_quadratic", steps) / hi  # linear to 0.025 by half-way
    half = steps // 2
    assert math.isclose(float(lq[0]), 1.0) and float(lq[-1]) == 0.0
    assert math.isclose(1 - float(lq[half]), 0.025, rel_tol=1e-4, abs_tol=1e-6)
    sgm = schedules.calculate_sigmas(ms, "sgm_uniform", steps)  # the end timestep left out
    ts = torch.linspace(999, 0, steps + 1)[:-1]
    assert torch.allclose(sgm[:-1], ms.sigma(ts))


def test_model_wrapper_equals_k_diffusion_discrete_eps_denoiser(setup, kd_external):
    """Our denoiser without guidance is k-diffusion's DiscreteEpsDDPMDenoiser (quantized timesteps) on the
    same UNet and prompt; v-prediction is its DiscreteVDDPMDenoiser."""
    den = setup.denoiser(cfg=1.0)
    prompt = den.prompt

    class Inner(torch.nn.Module):
        def forward(self, x, t):
            return den.unet(x, t.float(), encoder_hidden_states=prompt.embeds, timestep_cond=None,
                            added_cond_kwargs=prompt.added)

        def apply_model(self, x, t):
            return self.forward(x, t)

    acp = 1 / (setup.ms.sigmas.double() ** 2 + 1)
    ref_eps = kd_external.DiscreteEpsDDPMDenoiser(Inner(), acp, quantize=True)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(setup.shape, generator=gen) * 5
    for sigma in (14.6, 3.0, 0.5, 0.03):
        s = torch.full((setup.shape[0],), sigma)
        with torch.no_grad():
            assert torch.equal(setup.ms.timestep(s), ref_eps.sigma_to_t(s).long())
            assert_close(den(x, s), ref_eps(x, s), f"eps denoiser at sigma {sigma}")
    v_ms = ModelSampling.from_config({"prediction_type": "v_prediction"})
    v_den = Denoiser(den.unet, v_ms, prompt, 1.0, dtype=den.dtype, do_uncond=False)
    ref_v = kd_external.DiscreteVDDPMDenoiser(Inner(), acp, quantize=True)
    with torch.no_grad():
        s = torch.full((setup.shape[0],), 2.0)
        assert_close(v_den(x, s), ref_v(x, s), "v-prediction denoiser")


def test_lcm_model_sampling_is_comfyui_distilled_schedule(setup):
    """ModelSamplingDiscrete(lcm): 50 sigmas, the base ones at timesteps 19, 39, ..., 999; a sigma goes to
    the UNet as that timestep; the denoised latent follows LCM's boundary condition (sigma_data 0.5,
    timestep scaling 10)."""
    base = setup.ms
    lcm = ModelSampling.from_config({}, "lcm")
    assert len(lcm.sigmas) == 50 and lcm.skip_steps == 20
    assert torch.equal(lcm.sigmas, base.sigmas[19::20])
    assert lcm.timestep(lcm.sigmas).tolist() == list(range(19, 1000, 20))
    assert torch.allclose(lcm.sigma(torch.tensor([19.0, 999.0])), lcm.sigmas[[0, -1]])
    x, eps = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    sigma = lcm.sigmas[[10, 40]]
    t = torch.tensor([219.0, 819.0]).view(2, 1, 1, 1) * 10
    c_skip, c_out = 0.25 / (t**2 + 0.25), t / (t**2 + 0.25) ** 0.5
    expected = c_out * (x - eps * sigma.view(2, 1, 1, 1)) + c_skip * x
    assert torch.allclose(lcm.calculate_denoised(sigma, eps, x), expected)
    v = ModelSampling.from_config({}, "v_prediction")
    assert v.prediction == "v_prediction" and torch.equal(v.sigmas, base.sigmas)
    zsnr = ModelSampling.from_config({}, "eps", zsnr=True)
    assert float(zsnr.sigma_max) > 1000 and torch.allclose(zsnr.sigmas[:10], base.sigmas[:10], rtol=0.1)
