"""Code copied on purpose, checked against what it copies (issue 19).

Where a function of ours re-implements one of diffusers', the copy says so in a comment and
this module checks the relation on values built here. The larger copies are checked where
they are tested end to end:
``plugins.sd.multidiffusion.denoise`` (equal to diffusers' panorama pipeline, and to
``plugins.sd.sampling.sample`` on one view: tests/test_tiling_sd.py), ``plugins.sd.tiled_vae``
(equal to ``AutoencoderKL`` with tiling: tests/test_tiling_sd.py), ``plugins.sd.denoise.window``
(diffusers' SDXL base + refiner split: tests/test_sdxl_refiner.py) and the sampling loop of
``plugins.sd.sampling`` (equal to the diffusers pipelines: tests/test_sd_blocks.py, test_sd_xl.py).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from plugins.sd.common import guidance_embedding, rescale_noise_cfg
from plugins.sd.multidiffusion import get_views


@pytest.mark.parametrize("rescale", [0.0, 0.3, 0.7, 1.0])
def test_rescale_noise_cfg_is_diffusers(rescale):
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg as theirs

    gen = torch.Generator().manual_seed(3)
    cfg, text = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 4, 8, 8, generator=gen)
    assert torch.equal(rescale_noise_cfg(cfg, text, rescale), theirs(cfg, text, guidance_rescale=rescale))


@pytest.mark.parametrize("dim,dtype", [(256, torch.float32), (255, torch.float32), (64, torch.float16)])
def test_guidance_embedding_is_the_pipelines(dim, dtype):
    from diffusers import LatentConsistencyModelPipeline, StableDiffusionPipeline

    w = torch.tensor([7.5, 1.0, 0.0, 3.25]) - 1
    ours = guidance_embedding(w, dim, dtype)
    assert ours.shape == (4, dim) and ours.dtype == dtype
    for pipeline in (StableDiffusionPipeline, LatentConsistencyModelPipeline):
        # a method that reads nothing of its pipeline: called without one
        theirs = pipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim, dtype=dtype)
        assert torch.equal(ours, theirs)


def test_multidiffusion_views_are_the_panorama_pipelines_plus_the_edges():
    """Where the stride reaches the edges the views are the pipeline's, in its order; elsewhere
    the pipeline's come first and a last row or column flush with the edge follows."""
    from diffusers import StableDiffusionPanoramaPipeline

    for h, w, window, stride in itertools.product((8, 16, 20, 64), (8, 24, 30, 64, 96), (8, 16), (4, 6, 8)):
        if window > min(h, w) or stride > window:
            continue
        ours = get_views(h, w, window, stride)
        theirs = StableDiffusionPanoramaPipeline.get_views(None, h * 8, w * 8, window_size=window,
                                                           stride=stride)
        assert all(v in ours for v in theirs), (h, w, window, stride)
        if (h - window) % stride == 0 and (w - window) % stride == 0:
            assert ours == theirs, (h, w, window, stride)
        covered = torch.zeros(h, w)
        for h0, h1, w0, w1 in ours:
            covered[h0:h1, w0:w1] += 1
        assert bool((covered > 0).all())  # nothing left out at the edges
