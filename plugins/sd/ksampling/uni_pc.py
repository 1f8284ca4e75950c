"""UniPC (Zhao et al. 2023, arXiv:2302.04867), multistep, data prediction, as ComfyUI runs it.

The schedule's sigmas are the solver's time points directly (a last sigma of 0 becomes
0.001, as there); the latent goes to variance-preserving form (``x / sqrt(1 + sigma**2)``)
and back at the end. Each step predicts with the B(h) update (``bh1``: ``B(h) = h``,
``bh2``: ``B(h) = e^h - 1``) and corrects with the model's value at the new point, which
the next step reuses; the order grows to ``min(3, steps - 1)`` and falls again at the end,
and the last step has no corrector.
"""

from __future__ import annotations

from typing import Any

from plugins.sd.ksampling.samplers import Callback


def _log_alpha(sigma: Any) -> Any:
    return 0.5 * (1 / (sigma * sigma + 1)).log()


def _alpha(sigma: Any) -> Any:
    return _log_alpha(sigma).exp()


def _std(sigma: Any) -> Any:
    return (1.0 - (2.0 * _log_alpha(sigma)).exp()).sqrt()


def _lambda(sigma: Any) -> Any:
    log_alpha = _log_alpha(sigma)
    return log_alpha - 0.5 * (1.0 - (2.0 * log_alpha).exp()).log()


class _UniPC:
    def __init__(self, model: Any, variant: str) -> None:
        if variant not in ("bh1", "bh2"):
            raise ValueError(f"UniPC variant must be bh1 or bh2, got {variant!r}")
        self.model = model
        self.variant = variant

    def data(self, x: Any, t: Any) -> Any:
        """The denoised latent at VP time ``t`` (a sigma): the denoiser on the VE latent."""
        sigma = t.reshape(t.shape[:1] + (1,) * (x.ndim - 1))
        x_ve = x * ((sigma ** 2 + 1.0) ** 0.5)
        eps = (x_ve - self.model(x_ve, t)) / sigma
        return (x - _std(sigma) * eps) / _alpha(sigma)

    def update(self, x: Any, models: list[Any], ts: list[Any], t: Any, order: int,
               use_corrector: bool) -> tuple[Any, Any]:
        import torch

        dims = x.ndim
        t_prev_0 = ts[-1]
        lambda_prev_0, lambda_t = _lambda(t_prev_0), _lambda(t)
        model_prev_0 = models[-1]
        sigma_prev_0, sigma_t = _std(t_prev_0), _std(t)
        alpha_t = _alpha(t)
        h = lambda_t - lambda_prev_0

        rks, d1s = [], []
        for i in range(1, order):
            rk = ((_lambda(ts[-(i + 1)]) - lambda_prev_0) / h)[0]
            rks.append(rk)
            d1s.append((models[-(i + 1)] - model_prev_0) / rk)
        rks.append(1.0)
        rks_t = torch.tensor(rks, device=x.device)

        hh = -h[0]
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        b_h = hh if self.variant == "bh1" else torch.expm1(hh)
        rows, b = [], []
        factorial = 1
        for i in range(1, order + 1):
            rows.append(torch.pow(rks_t, i - 1))
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        big_r = torch.stack(rows)
        b_t = torch.tensor(b, device=x.device)

        d1 = torch.stack(d1s, dim=1) if d1s else None
        if d1 is not None:
            rhos_p = torch.tensor([0.5], device=x.device) if order == 2 else torch.linalg.solve(
                big_r[:-1, :-1], b_t[:-1])
        if use_corrector:
            rhos_c = torch.tensor([0.5], device=x.device) if order == 1 else torch.linalg.solve(big_r, b_t)

        def expand(v: Any) -> Any:
            return v[(...,) + (None,) * (dims - 1)]

        x_t_ = expand(sigma_t / sigma_prev_0) * x - expand(alpha_t * h_phi_1) * model_prev_0
        pred = torch.einsum("k,bkchw->bchw", rhos_p, d1) if d1 is not None else 0
        x_t = x_t_ - expand(alpha_t * b_h) * pred
        model_t = None
        if use_corrector:
            model_t = self.data(x_t, t)
            corr = torch.einsum("k,bkchw->bchw", rhos_c[:-1], d1) if d1 is not None else 0
            x_t = x_t_ - expand(alpha_t * b_h) * (corr + rhos_c[-1] * (model_t - model_prev_0))
        return x_t, model_t

    def sample(self, x: Any, timesteps: Any, order: int, callback: Callback) -> Any:
        steps = len(timesteps) - 1
        if steps < order:
            raise ValueError(f"UniPC of order {order} needs at least {order} steps")
        models: list[Any] = []
        ts: list[Any] = []
        for step_index in range(steps):
            if hasattr(self.model, "step"):
                self.model.step = step_index
            if step_index == 0:
                vec_t = timesteps[0].expand(x.shape[0])
                models, ts = [self.data(x, vec_t)], [vec_t]
            elif step_index < order:
                vec_t = timesteps[step_index].expand(x.shape[0])
                x, model_x = self.update(x, models, ts, vec_t, step_index, use_corrector=True)
                models.append(self.data(x, vec_t) if model_x is None else model_x)
                ts.append(vec_t)
            else:
                last = step_index == steps - 1
                for step in range(step_index, step_index + 1 + int(last)):
                    vec_t = timesteps[step].expand(x.shape[0])
                    step_order = min(order, steps + 1 - step)
                    x, model_x = self.update(x, models, ts, vec_t, step_order, use_corrector=step != steps)
                    for i in range(order - 1):
                        ts[i], models[i] = ts[i + 1], models[i + 1]
                    ts[-1] = vec_t
                    if step < steps:
                        models[-1] = self.data(x, vec_t) if model_x is None else model_x
            if callback is not None:
                callback(step_index, x, models[-1])
        return x


def sample_unipc(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, variant: str = "bh1",
                 **_: Any) -> Any:
    """UniPC from the noised latent ``x`` at ``sigmas[0]`` down the schedule."""
    timesteps = sigmas.clone()
    if timesteps[-1] == 0:
        timesteps[-1] = 0.001
    x = x / (1.0 + timesteps[0] ** 2.0) ** 0.5
    order = min(3, len(timesteps) - 2)
    x = _UniPC(model, variant).sample(x, timesteps, order, callback)
    return x / _alpha(timesteps[-1])


def sample_unipc_bh2(model: Any, x: Any, sigmas: Any, *, callback: Callback = None, **_: Any) -> Any:
    return sample_unipc(model, x, sigmas, callback=callback, variant="bh2")
