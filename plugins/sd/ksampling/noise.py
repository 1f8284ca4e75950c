"""ComfyUI's noise: the starting noise from the seed, and the noise samplers add along the way.

- :func:`prepare_noise`: the initial latent noise, ``torch.randn`` of the latent's shape from
  a CPU generator seeded with the seed (``comfy/sample.py``). With ``batch_index`` (latents
  taken out of a larger batch) each latent gets the noise it had in that batch.
- :func:`default_noise_sampler`: the ancestral samplers' fresh Gaussian noise at each step,
  from a generator on the latent's device seeded with ``seed`` (``seed + 1`` on the CPU,
  as ComfyUI does, so it differs from the starting noise).
- :class:`BrownianTreeNoiseSampler`: the SDE samplers' noise, increments of one Brownian
  motion over sigma (``torchsde``'s Brownian tree with the seed as entropy), so noise over
  an interval does not depend on how the interval is cut into steps. ``cpu=True`` builds
  the tree on the CPU (``dpmpp_sde``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``), ``cpu=False`` on
  the latent's device (their ``_gpu`` variants).

>>> import torch
>>> same = torch.randn((1, 4, 2, 2), generator=torch.manual_seed(5))
>>> bool(torch.equal(prepare_noise((1, 4, 2, 2), 5), same))
True
>>> prepare_noise((3, 4, 2, 2), 5, batch_index=[2, 0, 2]).shape
torch.Size([3, 4, 2, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

NoiseSampler = Callable[[Any, Any], Any]
MAX_SEED = 2 ** 64 - 1  # ComfyUI's seeds are unsigned 64-bit


def prepare_noise(shape: Sequence[int], seed: int, batch_index: Sequence[int] | None = None,
                  dtype: Any = None) -> Any:
    """The starting noise for a latent of ``shape`` (on the CPU, float32 unless ``dtype``)."""
    import numpy as np
    import torch

    dtype = torch.float32 if dtype is None else dtype
    gen = torch.Generator("cpu")
    gen.manual_seed(int(seed))
    if batch_index is None:
        return torch.randn(tuple(shape), dtype=dtype, generator=gen, device="cpu")
    unique, inverse = np.unique(np.asarray(list(batch_index), dtype=np.int64), return_inverse=True)
    drawn = []
    for i in range(int(unique[-1]) + 1):
        noise = torch.randn([1, *list(shape)[1:]], dtype=dtype, generator=gen, device="cpu")
        if i in unique:
            drawn.append(noise)
    return torch.cat([drawn[i] for i in inverse.reshape(-1)], dim=0)


def default_noise_sampler(x: Any, seed: int | None = None) -> NoiseSampler:
    """Fresh standard normal noise shaped like ``x`` at each call (the ancestral samplers')."""
    import torch

    generator = None
    if seed is not None:
        if x.device == torch.device("cpu"):
            seed = (seed + 1) & MAX_SEED  # ComfyUI's seed + 1; the largest seed wraps to 0
        generator = torch.Generator(device=x.device)
        generator.manual_seed(int(seed))

    def sample(sigma: Any, sigma_next: Any) -> Any:
        return torch.randn(x.size(), dtype=x.dtype, layout=x.layout, device=x.device, generator=generator)

    return sample


class BatchedBrownianTree:
    """One ``torchsde.BrownianTree`` per seed (a list of seeds: one per latent of the batch)."""

    def __init__(self, x: Any, t0: Any, t1: Any, seed: int | Sequence[int] | None = None,
                 cpu: bool = True) -> None:
        import torch
        import torchsde

        self.cpu_tree = cpu
        t0, t1, self.sign = self.sort(t0, t1)
        w0 = torch.zeros_like(x)
        self.batched = False
        if seed is None:
            seeds: Sequence[int] = (int(torch.randint(0, 2 ** 63 - 1, ()).item()),)
        elif isinstance(seed, (tuple, list)):
            if len(seed) != x.shape[0]:
                raise ValueError("a list of Brownian tree seeds needs one seed per latent of the batch")
            seeds, self.batched, w0 = seed, True, w0[0]
        else:
            seeds = (int(seed),)
        if cpu:
            t0, w0, t1 = t0.detach().cpu(), w0.detach().cpu(), t1.detach().cpu()
        self.trees = tuple(torchsde.BrownianTree(t0, w0, t1, entropy=s) for s in seeds)

    @staticmethod
    def sort(a: Any, b: Any) -> tuple[Any, Any, int]:
        return (a, b, 1) if a < b else (b, a, -1)

    def __call__(self, t0: Any, t1: Any) -> Any:
        import torch

        t0, t1, sign = self.sort(t0, t1)
        device, dtype = t0.device, t0.dtype
        if self.cpu_tree:
            t0, t1 = t0.detach().cpu().float(), t1.detach().cpu().float()
        w = torch.stack([tree(t0, t1) for tree in self.trees]).to(device=device, dtype=dtype)
        w = w * (self.sign * sign)
        return w if self.batched else w[0]


class BrownianTreeNoiseSampler:
    """Unit-variance noise for the interval ``sigma -> sigma_next`` from one Brownian motion."""

    def __init__(self, x: Any, sigma_min: Any, sigma_max: Any, seed: int | Sequence[int] | None = None,
                 cpu: bool = True) -> None:
        import torch

        t0, t1 = torch.as_tensor(sigma_min), torch.as_tensor(sigma_max)
        self.tree = BatchedBrownianTree(x, t0, t1, seed, cpu=cpu)

    def __call__(self, sigma: Any, sigma_next: Any) -> Any:
        import torch

        t0, t1 = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        return self.tree(t0, t1) / (t1 - t0).abs().sqrt()


def brownian_noise_sampler(x: Any, sigmas: Any, seed: int | None,
                           cpu: bool = True) -> BrownianTreeNoiseSampler:
    """The SDE samplers' noise over the schedule's range of (non-zero) sigmas."""
    sigma_min, sigma_max = sigmas[sigmas > 0].min(), sigmas.max()
    return BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=seed, cpu=cpu)
