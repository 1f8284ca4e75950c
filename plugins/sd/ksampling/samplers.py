"""ComfyUI's k-diffusion samplers (``comfy/k_diffusion/sampling.py``), for eps/v models.

Each sampler takes the guided denoiser ``model(x, sigma) -> denoised``, the starting
latent ``x`` (already noised to ``sigmas[0]``) and the schedule, and returns the latent at
``sigmas[-1]``. ``seed`` seeds the noise of the stochastic ones the way ComfyUI does
(:mod:`plugins.sd.ksampling.noise`); ``noise_sampler`` replaces it (tests hand the
reference the same one). ``callback(i, x, denoised)`` follows each step.

Written from the papers and ComfyUI's formulas: Karras et al. 2022 (Euler, Heun, the
ancestral step), DPM-Solver (arXiv:2206.00927) and DPM-Solver++ (arXiv:2211.01095) in
their single-step, multistep and SDE forms, DDPM's posterior step, LCM's denoise-then-
renoise, Heun++ and CFG++ (arXiv:2406.08070: the step follows the unguided prediction,
the guidance is added back). Where a sampler reaches sigma 0 it returns the denoised
latent, as ComfyUI does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugins.sd.ksampling.noise import NoiseSampler, brownian_noise_sampler, default_noise_sampler

Callback = Callable[[int, Any, Any], None] | None


def to_d(x: Any, sigma: Any, denoised: Any) -> Any:
    """The Karras ODE derivative ``(x - denoised) / sigma``."""
    return (x - denoised) / sigma.reshape(-1, *([1] * (x.ndim - 1))) if sigma.ndim else (x - denoised) / sigma


def ancestral_step(sigma_from: Any, sigma_to: Any, eta: float = 1.0) -> tuple[Any, Any]:
    """``(sigma_down, sigma_up)``: step deterministically to ``sigma_down``, add ``sigma_up`` of noise."""
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to,
                   eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5
    return sigma_down, sigma_up


def _enter(model: Any, i: int) -> None:
    if hasattr(model, "step"):
        model.step = i


def _notify(callback: Callback, i: int, x: Any, denoised: Any) -> None:
    if callback is not None:
        callback(i, x, denoised)


def sample_euler(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x


def sample_euler_ancestral(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                           callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                           noise_sampler: NoiseSampler | None = None,
                           **_: Any) -> Any:
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _notify(callback, i, x, denoised)
        if sigma_down == 0:
            x = denoised
        else:
            d = to_d(x, sigmas[i], denoised)
            noise = noise_sampler(sigmas[i], sigmas[i + 1])
            x = x + d * (sigma_down - sigmas[i]) + noise * s_noise * sigma_up
    return x


def sample_heun(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _notify(callback, i, x, denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in))
            x = x + (d + d_2) / 2 * dt
    return x


def sample_heunpp2(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    """Heun++: up to three evaluations per step, weighted by how far along the schedule they are."""
    s_in = x.new_ones([x.shape[0]])
    s_end = sigmas[-1]
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _notify(callback, i, x, denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == s_end:
            x = x + d * dt
        elif sigmas[i + 2] == s_end:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in))
            w2 = sigmas[i + 1] / (2 * sigmas[0])
            x = x + (d * (1 - w2) + d_2 * w2) * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in))
            x_3 = x_2 + d_2 * (sigmas[i + 2] - sigmas[i + 1])
            d_3 = to_d(x_3, sigmas[i + 2], model(x_3, sigmas[i + 2] * s_in))
            w = 3 * sigmas[0]
            w2, w3 = sigmas[i + 1] / w, sigmas[i + 2] / w
            x = x + ((1 - w2 - w3) * d + w2 * d_2 + w3 * d_3) * dt
    return x


def sample_dpm_2(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _notify(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in))
            x = x + d_2 * (sigmas[i + 1] - sigmas[i])
    return x


def sample_dpm_2_ancestral(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                           callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                           noise_sampler: NoiseSampler | None = None,
                           **_: Any) -> Any:
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _notify(callback, i, x, denoised)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigma_down.log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in))
            x = x + d_2 * (sigma_down - sigmas[i])
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def _lms_coeff(order: int, t: Any, i: int, j: int) -> float:
    """The weight of the ``j``-th previous derivative: its Lagrange basis integrated over the step."""
    from scipy import integrate

    if order - 1 > i:
        raise ValueError(f"order {order} too high for step {i}")

    def basis(tau: float) -> float:
        prod = 1.0
        for k in range(order):
            if j != k:
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return prod

    return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]


def sample_lms(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, order: int = 4,
               **_: Any) -> Any:
    s_in = x.new_ones([x.shape[0]])
    sigmas_cpu = sigmas.detach().cpu().numpy()
    ds: list[Any] = []
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        ds.append(to_d(x, sigmas[i], denoised))
        if len(ds) > order:
            ds.pop(0)
        _notify(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            cur = min(i + 1, order)
            coeffs = [_lms_coeff(cur, sigmas_cpu, i, j) for j in range(cur)]
            x = x + sum(c * d for c, d in zip(coeffs, reversed(ds), strict=False))
    return x


def sample_dpmpp_2s_ancestral(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                              callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                              noise_sampler: NoiseSampler | None = None, **_: Any) -> Any:
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _notify(callback, i, x, denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_next = -sigmas[i].log(), -sigma_down.log()
            h = t_next - t
            s = t + h / 2
            x_2 = ((-s).exp() / (-t).exp()) * x - (-h / 2).expm1() * denoised
            denoised_2 = model(x_2, (-s).exp() * s_in)
            x = ((-t_next).exp() / (-t).exp()) * x - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def sample_dpmpp_sde(model: Any, x: Any, sigmas: Any, *, seed: int | None = None, callback: Callback = None,
                     eta: float = 1.0, s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None,
                     r: float = 1 / 2, gpu: bool = False, **_: Any) -> Any:
    """DPM-Solver++ (stochastic), a midpoint at ``r`` of each step in log-SNR."""
    if len(sigmas) <= 1:
        return x
    if noise_sampler is None:
        noise_sampler = brownian_noise_sampler(x, sigmas, seed, cpu=not gpu)
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = -sigmas[i].log(), -sigmas[i + 1].log()
        h = lambda_t - lambda_s
        lambda_s_1 = lambda_s + r * h
        fac = 1 / (2 * r)
        sigma_s_1 = (-lambda_s_1).exp()
        sd, su = ancestral_step(sigmas[i], sigma_s_1, eta)
        h_ = -sd.log() - lambda_s
        x_2 = (-h_).exp() * x - (-h_).expm1() * denoised
        if eta > 0 and s_noise > 0:
            x_2 = x_2 + noise_sampler(sigmas[i], sigma_s_1) * s_noise * su
        denoised_2 = model(x_2, sigma_s_1 * s_in)
        sd, su = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        h_ = -sd.log() - lambda_s
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (-h_).exp() * x - (-h_).expm1() * denoised_d
        if eta > 0 and s_noise > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


def sample_dpmpp_2m(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    s_in = x.new_ones([x.shape[0]])
    old_denoised = None
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        t, t_next = -sigmas[i].log(), -sigmas[i + 1].log()
        h = t_next - t
        if old_denoised is None or sigmas[i + 1] == 0:
            x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * denoised
        else:
            r = (t + sigmas[i - 1].log()) / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x


def sample_dpmpp_2m_sde(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                        callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                        noise_sampler: NoiseSampler | None = None,
                        solver_type: str = "midpoint", gpu: bool = False, **_: Any) -> Any:
    if len(sigmas) <= 1:
        return x
    if solver_type not in ("heun", "midpoint"):
        raise ValueError("solver_type must be 'heun' or 'midpoint'")
    if noise_sampler is None:
        noise_sampler = brownian_noise_sampler(x, sigmas, seed, cpu=not gpu)
    s_in = x.new_ones([x.shape[0]])
    old_denoised, h, h_last = None, None, None
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = sigmas[i].log() - sigmas[i + 1].log()
            h_eta = h * (eta + 1)
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + (-h_eta).expm1().neg() * denoised
            if old_denoised is not None:
                r = h_last / h
                if solver_type == "heun":
                    x = x + ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - old_denoised)
                else:
                    x = x + 0.5 * (-h_eta).expm1().neg() * (1 / r) * (denoised - old_denoised)
            if eta > 0 and s_noise > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * \
                    (-2 * h * eta).expm1().neg().sqrt() * s_noise
        old_denoised = denoised
        h_last = h
    return x


def sample_dpmpp_3m_sde(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                        callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                        noise_sampler: NoiseSampler | None = None,
                        gpu: bool = False, **_: Any) -> Any:
    if len(sigmas) <= 1:
        return x
    if noise_sampler is None:
        noise_sampler = brownian_noise_sampler(x, sigmas, seed, cpu=not gpu)
    s_in = x.new_ones([x.shape[0]])
    denoised_1 = denoised_2 = None
    h = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = sigmas[i].log() - sigmas[i + 1].log()
            h_eta = h * (eta + 1)
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + (-h_eta).expm1().neg() * denoised
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None:
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta > 0 and s_noise > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * \
                    (-2 * h * eta).expm1().neg().sqrt() * s_noise
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


def sample_ddpm(model: Any, x: Any, sigmas: Any, *, seed: int | None = None, callback: Callback = None,
                noise_sampler: NoiseSampler | None = None, **_: Any) -> Any:
    """DDPM's ancestral posterior step between the alphas of consecutive sigmas."""
    import torch

    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        sigma, sigma_prev = sigmas[i], sigmas[i + 1]
        eps = (x - denoised) / sigma
        x_vp = x / torch.sqrt(1.0 + sigma ** 2.0)
        acp, acp_prev = 1 / (sigma * sigma + 1), 1 / (sigma_prev * sigma_prev + 1)
        alpha = acp / acp_prev
        mu = (1.0 / alpha).sqrt() * (x_vp - (1 - alpha) * eps / (1 - acp).sqrt())
        if sigma_prev > 0:
            mu = mu + ((1 - alpha) * (1.0 - acp_prev) / (1.0 - acp)).sqrt() * noise_sampler(sigma, sigma_prev)
            mu = mu * torch.sqrt(1.0 + sigma_prev ** 2.0)
        x = mu
    return x


def sample_lcm(model: Any, x: Any, sigmas: Any, *, seed: int | None = None, callback: Callback = None,
               noise_sampler: NoiseSampler | None = None, s_noise: float = 1.0, **_: Any) -> Any:
    """LCM: jump to the denoised latent, then renoise it to the next sigma with fresh noise."""
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(max(1, len(sigmas) - 1)):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        _notify(callback, i, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            noise = noise_sampler(sigmas[i], sigmas[i + 1])
            if s_noise != 1.0:
                noise = noise * s_noise
            x = x + noise * sigmas[i + 1]
    return x


# -- CFG++: the step follows the unguided prediction, the guidance is added back -------------------


def _uncond(model: Any) -> Any:
    uncond = getattr(model, "uncond_denoised", None)
    if uncond is None:
        raise ValueError("CFG++ samplers need a denoiser that keeps its unguided prediction "
                         "(uncond_denoised)")
    return uncond


def sample_euler_ancestral_cfg_pp(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                                  callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                                  noise_sampler: NoiseSampler | None = None, **_: Any) -> Any:
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        uncond = _uncond(model)
        _notify(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            d = to_d(x, sigmas[i], uncond)
            sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
            x = denoised + sigma_down * d
            if eta > 0 and s_noise > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def sample_euler_cfg_pp(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                        callback: Callback = None, **_: Any) -> Any:
    return sample_euler_ancestral_cfg_pp(model, x, sigmas, seed=seed, callback=callback, eta=0.0, s_noise=0.0)


def sample_dpmpp_2s_ancestral_cfg_pp(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                                     callback: Callback = None, eta: float = 1.0, s_noise: float = 1.0,
                                     noise_sampler: NoiseSampler | None = None, **_: Any) -> Any:
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        uncond = _uncond(model)
        guidance = denoised - uncond
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _notify(callback, i, x, denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], uncond) * (sigma_down - sigmas[i])
        else:
            t, t_next = -sigmas[i].log(), -sigma_down.log()
            h = t_next - t
            s = t + h / 2
            x_2 = ((-s).exp() / (-t).exp()) * x - (-h / 2).expm1() * uncond
            model(x_2, (-s).exp() * s_in)
            x = ((-t_next).exp() / (-t).exp()) * x - (-h).expm1() * _uncond(model)
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
        x = x + guidance
    return x


def sample_dpmpp_2m_cfg_pp(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    import torch

    s_in = x.new_ones([x.shape[0]])
    old_uncond = None
    for i in range(len(sigmas) - 1):
        _enter(model, i)
        denoised = model(x, sigmas[i] * s_in)
        uncond = _uncond(model)
        _notify(callback, i, x, denoised)
        t, t_next = -sigmas[i].log(), -sigmas[i + 1].log()
        h = t_next - t
        if old_uncond is None or sigmas[i + 1] == 0:
            mix = -torch.exp(-h) * uncond
        else:
            r = (t + sigmas[i - 1].log()) / h
            mix = -torch.exp(-h) * uncond - torch.expm1(-h) * (1 / (2 * r)) * (denoised - old_uncond)
        x = denoised + mix + torch.exp(-h) * x
        old_uncond = uncond
    return x
