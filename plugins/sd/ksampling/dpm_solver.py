"""DPM-Solver's fixed-step (``dpm_fast``) and adaptive (``dpm_adaptive``) forms (arXiv:2206.00927).

They work in ``t = -log(sigma)`` between the schedule's first sigma and its smallest
non-zero one, whatever steps lie between: ``dpm_fast`` spends ``n`` model evaluations
in third-order steps (the last one or two lower), ``dpm_adaptive`` picks its own steps
with an embedded lower-order solution and a PID step-size controller. As ComfyUI, they
end at the smallest sigma, not at 0.
"""

from __future__ import annotations

import math
from typing import Any

from plugins.sd.ksampling.noise import NoiseSampler, default_noise_sampler
from plugins.sd.ksampling.samplers import Callback, ancestral_step


class PIDStepSizeController:
    """A PID controller on the inverse error, for adaptive step sizes."""

    def __init__(self, h: float, pcoeff: float, icoeff: float, dcoeff: float, order: float = 1,
                 accept_safety: float = 0.81, eps: float = 1e-8) -> None:
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.eps = eps
        self.errs: list[float] = []

    def propose_step(self, error: Any) -> bool:
        inv_error = 1 / (float(error) + self.eps)
        if not self.errs:
            self.errs = [inv_error, inv_error, inv_error]
        self.errs[0] = inv_error
        factor = self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3
        factor = 1 + math.atan(factor - 1)
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2], self.errs[1] = self.errs[1], self.errs[0]
        self.h *= factor
        return accept


class DPMSolver:
    """First- to third-order DPM-Solver steps on a denoiser, with the noise prediction cached per step."""

    def __init__(self, model: Any, callback: Callback = None) -> None:
        self.model = model
        self.callback = callback
        self.steps = 0

    @staticmethod
    def t(sigma: Any) -> Any:
        return -sigma.log()

    @staticmethod
    def sigma(t: Any) -> Any:
        return t.neg().exp()

    def eps(self, cache: dict[str, Any], key: str, x: Any, t: Any) -> tuple[Any, dict[str, Any]]:
        if key in cache:
            return cache[key], cache
        if hasattr(self.model, "step"):
            self.model.step = self.steps
        sigma = self.sigma(t) * x.new_ones([x.shape[0]])
        eps = (x - self.model(x, sigma)) / self.sigma(t)
        return eps, {key: eps, **cache}

    def step_1(self, x: Any, t: Any, t_next: Any, cache: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        h = t_next - t
        eps, cache = self.eps(cache, "eps", x, t)
        return x - self.sigma(t_next) * h.expm1() * eps, cache

    def step_2(self, x: Any, t: Any, t_next: Any, cache: dict[str, Any],
               r1: float = 1 / 2) -> tuple[Any, dict]:
        h = t_next - t
        eps, cache = self.eps(cache, "eps", x, t)
        s1 = t + r1 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1, cache = self.eps(cache, "eps_r1", u1, s1)
        x_2 = x - self.sigma(t_next) * h.expm1() * eps \
            - self.sigma(t_next) / (2 * r1) * h.expm1() * (eps_r1 - eps)
        return x_2, cache

    def step_3(self, x: Any, t: Any, t_next: Any, cache: dict[str, Any], r1: float = 1 / 3,
               r2: float = 2 / 3) -> tuple[Any, dict]:
        h = t_next - t
        eps, cache = self.eps(cache, "eps", x, t)
        s1, s2 = t + r1 * h, t + r2 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1, cache = self.eps(cache, "eps_r1", u1, s1)
        u2 = x - self.sigma(s2) * (r2 * h).expm1() * eps - self.sigma(s2) * (r2 / r1) * \
            ((r2 * h).expm1() / (r2 * h) - 1) * (eps_r1 - eps)
        eps_r2, cache = self.eps(cache, "eps_r2", u2, s2)
        x_3 = x - self.sigma(t_next) * h.expm1() * eps \
            - self.sigma(t_next) / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)
        return x_3, cache

    def fast(self, x: Any, t_start: Any, t_end: Any, nfe: int, eta: float = 0.0, s_noise: float = 1.0,
             noise_sampler: NoiseSampler | None = None) -> Any:
        import torch

        if not t_end > t_start and eta:
            raise ValueError("eta must be 0 for reverse sampling")
        m = math.floor(nfe / 3) + 1
        ts = torch.linspace(t_start, t_end, m + 1, device=x.device)
        orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
        for i, order in enumerate(orders):
            cache: dict[str, Any] = {}
            t, t_next = ts[i], ts[i + 1]
            su: Any = 0.0
            t_next_ = t_next
            if eta:
                sd, su = ancestral_step(self.sigma(t), self.sigma(t_next), eta)
                t_next_ = torch.minimum(t_end, self.t(sd))
                su = (self.sigma(t_next) ** 2 - self.sigma(t_next_) ** 2) ** 0.5
            eps, cache = self.eps(cache, "eps", x, t)
            if self.callback is not None:
                self.callback(i, x, x - self.sigma(t) * eps)
            step = (self.step_1, self.step_2, self.step_3)[order - 1]
            x, cache = step(x, t, t_next_, cache)
            if noise_sampler is not None and eta:
                x = x + su * s_noise * noise_sampler(self.sigma(t), self.sigma(t_next))
            self.steps += 1
        return x

    def adaptive(self, x: Any, t_start: Any, t_end: Any, order: int = 3, rtol: float = 0.05,
                 atol: float = 0.0078, h_init: float = 0.05, pcoeff: float = 0.0, icoeff: float = 1.0,
                 dcoeff: float = 0.0, accept_safety: float = 0.81, eta: float = 0.0, s_noise: float = 1.0,
                 noise_sampler: NoiseSampler | None = None) -> Any:
        import torch

        if order not in (2, 3):
            raise ValueError("order should be 2 or 3")
        forward = t_end > t_start
        if not forward and eta:
            raise ValueError("eta must be 0 for reverse sampling")
        h_init = abs(h_init) * (1 if forward else -1)
        atol_t, rtol_t = torch.tensor(atol), torch.tensor(rtol)
        s, x_prev = t_start, x
        pid = PIDStepSizeController(h_init, pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety)
        while s < t_end - 1e-5 if forward else s > t_end + 1e-5:
            cache: dict[str, Any] = {}
            t = torch.minimum(t_end, s + pid.h) if forward else torch.maximum(t_end, s + pid.h)
            su: Any = 0.0
            t_ = t
            if eta:
                sd, su = ancestral_step(self.sigma(s), self.sigma(t), eta)
                t_ = torch.minimum(t_end, self.t(sd))
                su = (self.sigma(t) ** 2 - self.sigma(t_) ** 2) ** 0.5
            eps, cache = self.eps(cache, "eps", x, s)
            denoised = x - self.sigma(s) * eps
            if order == 2:
                x_low, cache = self.step_1(x, s, t_, cache)
                x_high, cache = self.step_2(x, s, t_, cache)
            else:
                x_low, cache = self.step_2(x, s, t_, cache, r1=1 / 3)
                x_high, cache = self.step_3(x, s, t_, cache)
            delta = torch.maximum(atol_t, rtol_t * torch.maximum(x_low.abs(), x_prev.abs()))
            error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
            if pid.propose_step(error):
                x_prev = x_low
                x = x_high
                if noise_sampler is not None and eta:
                    x = x + su * s_noise * noise_sampler(self.sigma(s), self.sigma(t))
                s = t
            if self.callback is not None:
                self.callback(self.steps, x, denoised)
            self.steps += 1
        return x


def _sigma_min(sigmas: Any) -> Any:
    return sigmas[-2] if sigmas[-1] == 0 else sigmas[-1]


def sample_dpm_fast(model: Any, x: Any, sigmas: Any, *, seed: int | None = None, callback: Callback = None,
                    eta: float = 0.0, s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None,
                    **_: Any) -> Any:
    """``len(sigmas) - 1`` evaluations from ``sigmas[0]`` to the smallest non-zero sigma."""
    import torch

    if len(sigmas) <= 1:
        return x
    sigma_min, sigma_max = _sigma_min(sigmas), sigmas[0]
    if sigma_min <= 0 or sigma_max <= 0:
        raise ValueError("dpm_fast needs sigma_min and sigma_max above 0")
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    solver = DPMSolver(model, callback)
    t_start, t_end = solver.t(torch.as_tensor(sigma_max)), solver.t(torch.as_tensor(sigma_min))
    return solver.fast(x, t_start, t_end, len(sigmas) - 1, eta, s_noise, noise_sampler)


def sample_dpm_adaptive(model: Any, x: Any, sigmas: Any, *, seed: int | None = None,
                        callback: Callback = None, noise_sampler: NoiseSampler | None = None,
                        **options: Any) -> Any:
    """Adaptive steps from ``sigmas[0]`` to the smallest non-zero sigma (the step count is its own)."""
    import torch

    if len(sigmas) <= 1:
        return x
    sigma_min, sigma_max = _sigma_min(sigmas), sigmas[0]
    if sigma_min <= 0 or sigma_max <= 0:
        raise ValueError("dpm_adaptive needs sigma_min and sigma_max above 0")
    noise_sampler = default_noise_sampler(x, seed) if noise_sampler is None else noise_sampler
    solver = DPMSolver(model, callback)
    known = {"order", "rtol", "atol", "h_init", "pcoeff", "icoeff", "dcoeff", "accept_safety", "eta",
             "s_noise"}
    return solver.adaptive(x, solver.t(torch.as_tensor(sigma_max)), solver.t(torch.as_tensor(sigma_min)),
                           noise_sampler=noise_sampler, **{k: v for k, v in options.items() if k in known})
