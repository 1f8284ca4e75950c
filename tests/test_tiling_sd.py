"""Tiled Stable Diffusion in-process: MultiDiffusion against diffusers' panorama pipeline,
tiled VAE against ``AutoencoderKL`` with tiling, tiled upscale, progress and cancellation.

The bar (as in ``test_sd_blocks.py``): the graph's image equals the diffusers image for the
same prompt, seed, scheduler, steps and tile sizes, max abs pixel difference <= 1/255, both
computed here. The same graphs on Ray workers are in ``test_tiling_ray.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphs import GraphBuilder, TileSpec, load_template
from orchestrator.context import Context
from orchestrator.errors import BlockError, JobCancelled
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.runtime.tiling import Tiling
from plugins.sd.common import make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1 / 255
PROMPT = "a mountain lake at dawn"
NEGATIVE = "blurry"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiling-inputs")
    halves = [sd_fixtures.noise_image(128, seed=1), sd_fixtures.noise_image(128, seed=2)]
    wide = np.concatenate(halves, axis=1)
    sd_fixtures.write_png(d / "wide.png", wide)  # 256 x 128
    sd_fixtures.write_png(d / "small.png", sd_fixtures.noise_image(32, seed=4))
    return d


@pytest.fixture(scope="module")
def run(catalog, models, inputs):
    ex = LocalExecutor(catalog, models=models, input_root=inputs)
    return ex.run


def panorama_graph(width, height, *, size=64, stride=32, circular=False, sampler="ddim", steps=3,
                   view_batch=1, tiled_decode=False, seed=5):
    """encode -> empty latent -> sd.denoise in MultiDiffusion tiles -> decode (untiled, and tiled)."""
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt=PROMPT, negative_prompt=NEGATIVE)
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=width, height=height)
    d = b.add("sd.denoise", id="denoise", cond=c.cond, latent=lat.latent, model="tiny-sd", steps=steps,
              cfg=7.5, sampler=sampler, seed=seed, view_batch=view_batch)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sd", wrap=8 if circular else 0)
    if tiled_decode:
        b.add("sd.vae_decode", id="decode_tiled", latent=d.latent, model="tiny-sd")
    g = b.build()
    g.nodes["denoise"].tile = TileSpec(size=size, stride=stride, circular=circular)
    if tiled_decode:
        g.nodes["decode_tiled"].tile = TileSpec(size=64, overlap=16)
    return g


def panorama_pipeline(models, width, height, *, size=64, stride=32, circular=False, sampler="ddim", steps=3,
                      view_batch=1, seed=5, output_type="np"):
    """diffusers' StableDiffusionPanoramaPipeline on tiny-sd, its views of ``size`` every ``stride`` px."""
    import diffusers

    base = models.load("tiny-sd")
    pipe = diffusers.StableDiffusionPanoramaPipeline(**base.components)
    pipe.scheduler = make_scheduler(dict(base.scheduler.config), sampler)
    pipe.set_progress_bar_config(disable=True)
    views = type(pipe).get_views  # the pipeline hard-codes window 64 and stride 8 latent cells

    def get_views(h, w, window_size=64, stride=8, circular_padding=False):
        return views(pipe, h, w, window_size=size // 8, stride=step // 8, circular_padding=circular_padding)

    step = stride
    pipe.get_views = get_views
    return pipe(PROMPT, negative_prompt=NEGATIVE, height=height, width=width, num_inference_steps=steps,
                guidance_scale=7.5, view_batch_size=view_batch, circular_padding=circular,
                generator=torch.Generator().manual_seed(seed), output_type=output_type).images


def tiled_vae(models, tile=64, factor=0.25):
    """The tiny-sd VAE with diffusers' tiling on, for tiles of ``tile`` pixels."""
    vae = models.load("tiny-sd", "vae")
    vae.enable_tiling()
    vae.tile_sample_min_size, vae.tile_latent_min_size, vae.tile_overlap_factor = tile, tile // 8, factor
    return vae


# -- MultiDiffusion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height", "sampler", "view_batch", "circular"), [
    (256, 64, "ddim", 1, False),      # wide
    (64, 192, "euler_a", 2, False),   # tall, an ancestral sampler (noise drawn per view batch)
    (256, 64, "dpmpp_2m", 1, True),   # a 360-degree panorama, a multistep sampler
])
def test_panorama_equals_the_panorama_pipeline(run, models, width, height, sampler, view_batch, circular):
    ours = run(panorama_graph(width, height, sampler=sampler, view_batch=view_batch, circular=circular))
    ref = panorama_pipeline(models, width, height, sampler=sampler, view_batch=view_batch, circular=circular)
    image = ours.outputs["decode"]["image"]
    assert image.shape == ref.shape == (1, height, width, 3)
    diff = float(np.abs(image - ref).max())
    print(f"panorama {width}x{height} {sampler} circular={circular}: max abs pixel diff {diff:.3g}")
    assert diff <= TOL
    assert image.std() > 0.02


@pytest.mark.parametrize("sampler", ["ddim", "euler_a"])
def test_one_view_over_the_whole_latent_is_the_plain_sampling_loop(run, sampler):
    """multidiffusion.denoise copies parts of sampling.sample on purpose: one view, the same latent."""
    tiled = run(panorama_graph(64, 64, size=64, stride=64, sampler=sampler, steps=2))
    plain = panorama_graph(64, 64, size=64, stride=64, sampler=sampler, steps=2)
    plain.nodes["denoise"].tile = None
    untiled = run(plain)
    a, b = tiled.outputs["denoise"]["latent"], untiled.outputs["denoise"]["latent"]
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= 1e-4


def test_views_cover_what_the_pipeline_leaves_out(run, models):
    """176 px is not reached by 64 px windows every 48 px (they end at 160): the pipeline leaves
    the last 16 px (2 latent cells) at zero, a last view flush with the edge covers them here."""
    ours = run(panorama_graph(176, 64, stride=48, steps=2)).outputs["denoise"]["latent"]
    ref = panorama_pipeline(models, 176, 64, stride=48, steps=2, output_type="latent")
    assert float(ref[..., -2:].abs().max()) == 0.0  # the pipeline's uncovered strip
    assert float(ours[..., -2:].abs().min()) > 0.0
    assert torch.equal(ours[..., :8], ref[..., :8])  # the first view sees only the same views


def test_multidiffusion_reports_tiles_and_steps_and_stops_when_cancelled(run):
    events: list[dict] = []
    run(panorama_graph(256, 64, steps=2), on_event=events.append)
    tiles = [e for e in events if e["event"] == "tile" and e["node"] == "denoise"]
    finals = [e for e in tiles if e["step"] == e["total"]]
    assert [(e["sampler_step"], e["sampler_total"], e["total"]) for e in finals] == [(1, 2, 7), (2, 2, 7)]
    assert [e["step"] for e in events if e["event"] == "step" and e["node"] == "denoise"] == [1, 2]

    seen: list[dict] = []
    with pytest.raises(JobCancelled):
        run(panorama_graph(256, 64, steps=20), on_event=seen.append,
            is_cancelled=lambda: any(e["event"] == "tile" for e in seen))
    assert max(e.get("sampler_step", 0) for e in seen if e["event"] == "tile") == 1


def test_conditioning_extras_are_refused_in_tiles(models):
    from plugins.sd.denoise import Denoise

    ctx = Context(node="d", block="sd.denoise", seed=0, models=models)
    cond = {"prompt_embeds": torch.zeros(1, 77, 32), "family": "sd", "controlnets": [{"scale": 1.0}]}
    with pytest.raises(BlockError, match="cannot be denoised in MultiDiffusion tiles"):
        Denoise({"steps": 1}).run_tiled(ctx, Tiling("multidiffusion", 64, 16, 48), cond,
                                        torch.zeros(1, 4, 8, 24))


# -- tiled VAE ---------------------------------------------------------------------------------------


def vae_graph(tile: int = 64, overlap: int = 16):
    b = GraphBuilder()
    img = b.add("image.load", id="load", path="wide.png")
    enc = b.add("sd.vae_encode", id="encode", image=img.image, model="tiny-sd", seed=3)
    b.add("sd.vae_decode", id="decode", latent=enc.latent, model="tiny-sd")
    g = b.build()
    g.nodes["encode"].tile = TileSpec(size=tile, overlap=overlap)
    g.nodes["decode"].tile = TileSpec(size=tile, overlap=overlap)
    return g


@pytest.mark.parametrize("tile", [64, 128])
def test_tiled_vae_equals_autoencoder_kl_with_tiling(run, models, inputs, tile):
    from diffusers.image_processor import VaeImageProcessor
    from PIL import Image

    ours = run(vae_graph(tile, tile // 4)).outputs
    vae = tiled_vae(models, tile)
    proc = VaeImageProcessor(vae_scale_factor=8)
    try:
        with torch.no_grad():
            pixels = proc.preprocess(Image.open(inputs / "wide.png"))
            latent = vae.encode(pixels).latent_dist.sample(torch.Generator().manual_seed(3))
            latent = latent * vae.config.scaling_factor
            pixels_out = vae.decode(ours["encode"]["latent"] / vae.config.scaling_factor).sample
            decoded = proc.postprocess(pixels_out, output_type="np")
    finally:
        vae.disable_tiling()
    enc_diff = float((ours["encode"]["latent"] - latent).abs().max())
    dec_diff = float(np.abs(ours["decode"]["image"] - decoded).max())
    print(f"tiled VAE {tile}px: encode max abs diff {enc_diff:.3g}, decode max abs pixel diff {dec_diff:.3g}")
    assert ours["decode"]["image"].shape == decoded.shape == (1, 128, 256, 3)
    assert enc_diff <= 1e-5
    assert dec_diff <= TOL


def test_tiled_vae_never_gives_the_vae_more_than_a_tile(run, models):
    """Peak memory follows the tile: the decoder and encoder only ever see one tile."""
    vae = models.load("tiny-sd", "vae")
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = [vae.decoder.register_forward_pre_hook(lambda m, a: seen.append(("decoder", tuple(a[0].shape)))),
             vae.encoder.register_forward_pre_hook(lambda m, a: seen.append(("encoder", tuple(a[0].shape))))]
    try:
        run(vae_graph(64, 16))
    finally:
        for h in hooks:
            h.remove()
    decoder = [s for k, s in seen if k == "decoder"]
    encoder = [s for k, s in seen if k == "encoder"]
    assert len(decoder) == len(encoder) == 3 * 6  # the tiles of a 256 x 128 image, as diffusers cuts it
    assert max(max(s[-2:]) for s in decoder) == 8 and max(max(s[-2:]) for s in encoder) == 64


# -- tiled upscale --------------------------------------------------------------------------------


def upscale_graph(strength: float):
    g = load_template("tiled_upscale")
    g.nodes["load"].params["path"] = "small.png"
    g.nodes["redraw"].params.update(strength=strength, steps=4)
    return g


def test_tiled_upscale_at_strength_zero_is_the_upscaled_input_exactly(run):
    out = run(upscale_graph(0.0)).outputs
    assert out["redraw"]["image"].shape == (1, 128, 128, 3)
    assert np.array_equal(out["redraw"]["image"], out["upscale"]["image"])


def test_tiled_upscale_redraws_every_tile_and_feathers_the_seams(run):
    events: list[dict] = []
    out = run(upscale_graph(0.5), on_event=events.append).outputs
    image, up = out["redraw"]["image"], out["upscale"]["image"]
    assert image.shape == up.shape and not np.array_equal(image, up)
    assert [e["total"] for e in events if e["event"] == "tile"][-1] == 9  # 3 x 3 tiles of 64, overlap 16
    again = run(upscale_graph(0.5)).outputs["redraw"]["image"]
    assert np.array_equal(image, again)


# -- the templates from the command line --------------------------------------------------------


@pytest.fixture()
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(sd_fixtures.tiny_cache_dir()))
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_INPUT_DIR", raising=False)


@pytest.mark.parametrize(("name", "sets", "size"), [
    ("panorama", [], (256, 64)),
    ("tiled_hires_fix", [], (128, 128)),
    ("tiled_upscale", ["load.path={inputs}/small.png"], (128, 128)),  # 4x
    pytest.param("panorama", ["latent.width=2048", "latent.height=512", "denoise.steps=2"], (2048, 512),
                 marks=pytest.mark.slow),
    pytest.param("tiled_upscale", ["load.path={inputs}/big.png"], (1024, 1024), marks=pytest.mark.slow),
])
def test_tiled_templates_run_from_the_cli(name, sets, size, inputs, cli_env, tmp_path, capsys):
    import shutil

    from PIL import Image

    from graphs.library import LIBRARY_DIR
    from orchestrator.cli.main import main

    sd_fixtures.write_png(inputs / "big.png", sd_fixtures.noise_image(256, seed=5))
    graph = tmp_path / f"{name}.json"
    shutil.copy(LIBRARY_DIR / f"{name}.json", graph)
    sets = [s.format(inputs=inputs) for s in sets] + [f"save.name=\"{name}-cli\""]
    args = [a for s in sets for a in ("--set", s)]
    code = main(["run", "--graph", str(graph), "-o", str(tmp_path / "out"), "--quiet", *args])
    assert code == 0, capsys.readouterr().err
    img = Image.open(tmp_path / "out" / f"{name}-cli.png")
    assert img.size == size and "orchestrator.graph" in img.text


def test_the_agent_picks_the_panorama_for_a_wide_prompt_and_runs_it(cli_env, tmp_path, capsys):
    import json

    from orchestrator.cli.main import main

    out = tmp_path / "out"
    assert main(["run", "a wide panorama of a mountain lake at dawn", "-o", str(out)]) == 0
    assert "planned: template 'panorama'" in capsys.readouterr().err
    graph = json.loads((out / "graph.json").read_text())
    assert graph["nodes"]["denoise"]["tile"]["size"] == 64
    assert len(list(out.glob("*.png"))) == 1
