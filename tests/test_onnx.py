"""ONNX: exporting tiny-sd, the ONNX SD blocks against torch, and the generic onnx.run block.

Stated tolerance: in fp32 on the CPU provider the ONNX VAE decode matches the torch decode
within 1e-4 on the 0..1 pixel scale (``VAE_TOL``); a whole ONNX txt2img graph matches the
torch graph within 1/255.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from graphs import GraphBuilder
from orchestrator.errors import BlockError
from orchestrator.models import ModelError, ModelManager, ModelRegistry
from orchestrator.models.onnx import export_onnx, providers_for
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
VAE_TOL = 1e-4
PROMPT = "a red fox in the snow"


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory, models):
    """A manager whose tiny-sd is the shared one, exported to ONNX in a fresh cache."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    entries = [{"name": n, "source": str(models.resolve(n).folder)} for n in ("tiny-sd", "tiny-sdxl")]
    mm = ModelManager(ModelRegistry(entries, cache_dir=cache))
    export_onnx(mm, "tiny-sd")
    return mm


@pytest.fixture(scope="module")
def run(catalog, onnx_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-inputs")
    sd_fixtures.write_png(root / "input.png", sd_fixtures.noise_image(64, seed=3))
    ex = LocalExecutor(catalog, models=onnx_models, input_root=root)
    return lambda graph: ex.run(graph).outputs


def _graph(prefix: str, latent_from: str = "sd", sampler="euler_a"):
    b = GraphBuilder()
    c = b.add(f"{prefix}.encode_prompt", id="cond", model="tiny-sd", prompt=PROMPT, negative_prompt="blurry")
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=64, height=64, batch=2)
    d = b.add(f"{prefix}.denoise", id="denoise", cond=c.cond, latent=lat.latent, model="tiny-sd", steps=4,
              cfg=7.5, sampler=sampler, seed=5)
    b.add(f"{prefix}.vae_decode", id="decode", latent=d.latent, model="tiny-sd")
    return b.build()


def test_export_writes_every_part(onnx_models):
    root = onnx_models.registry.onnx_dir("tiny-sd")
    for part in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
        onnx.checker.check_model(str(root / part / "model.onnx"))
    assert (root / "export.json").is_file()
    rows = {r["name"]: r for r in onnx_models.registry.describe()}
    assert rows["tiny-sd"]["onnx"] == str(root)
    assert providers_for("cpu") == ["CPUExecutionProvider"]


def test_onnx_vae_decode_matches_torch(run):
    b = GraphBuilder()
    lat = b.add("sd.empty_latent", model="tiny-sd", width=64, height=96, batch=2)
    c = b.add("sd.encode_prompt", model="tiny-sd", prompt=PROMPT)
    d = b.add("sd.denoise", cond=c.cond, latent=lat.latent, model="tiny-sd", steps=3, seed=1)
    b.add("sd.vae_decode", id="torch", latent=d.latent, model="tiny-sd")
    b.add("onnx.vae_decode", id="onnx", latent=d.latent, model="tiny-sd")
    out = run(b.build())
    a, o = out["torch"]["image"], out["onnx"]["image"]
    diff = float(np.abs(a - o).max())
    print(f"ONNX VAE decode vs torch: max abs diff {diff:.2e} (tolerance {VAE_TOL})")
    assert a.shape == o.shape == (2, 96, 64, 3)
    assert diff <= VAE_TOL


def test_onnx_vae_encode_matches_torch(run):
    b = GraphBuilder()
    src = b.add("image.load", path="input.png")
    for kind in ("sd", "onnx"):
        b.add(f"{kind}.vae_encode", id=f"{kind}_sample", image=src.image, model="tiny-sd", seed=4)
        b.add(f"{kind}.vae_encode", id=f"{kind}_mean", image=src.image, model="tiny-sd", mode="mean")
    out = run(b.build())
    for mode in ("sample", "mean"):
        torch.testing.assert_close(out[f"onnx_{mode}"]["latent"], out[f"sd_{mode}"]["latent"],
                                   atol=1e-4, rtol=1e-4)
    assert torch.equal(out["onnx_sample"]["rng"], out["sd_sample"]["rng"])


def test_onnx_txt2img_graph_matches_torch_graph(run):
    ours = run(_graph("onnx"))["decode"]["image"]
    ref = run(_graph("sd"))["decode"]["image"]
    diff = float(np.abs(ours - ref).max())
    print(f"ONNX txt2img (text encoder + UNet + VAE) vs torch: max abs diff {diff:.2e}")
    assert diff <= 1 / 255


def test_onnx_clip_skip_matches_torch(run):
    b = GraphBuilder()
    b.add("sd.encode_prompt", id="t", model="tiny-sd", prompt=PROMPT, clip_skip=1)
    b.add("onnx.encode_prompt", id="o", model="tiny-sd", prompt=PROMPT, clip_skip=1)
    out = run(b.build())
    torch.testing.assert_close(out["o"]["cond"]["prompt_embeds"], out["t"]["cond"]["prompt_embeds"],
                               atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_onnx_sdxl_txt2img_matches_torch(catalog, onnx_models):
    export_onnx(onnx_models, "tiny-sdxl")
    ex = LocalExecutor(catalog, models=onnx_models)
    outs = {}
    for prefix in ("sd", "onnx"):
        b = GraphBuilder()
        c = b.add(f"{prefix}.encode_prompt", model="tiny-sdxl", prompt=PROMPT, negative_prompt="blurry")
        lat = b.add("sd.empty_latent", model="tiny-sdxl", width=64, height=64)
        d = b.add(f"{prefix}.denoise", cond=c.cond, latent=lat.latent, model="tiny-sdxl", steps=4, seed=5)
        b.add(f"{prefix}.vae_decode", id="decode", latent=d.latent, model="tiny-sdxl")
        outs[prefix] = ex.run(b.build()).outputs["decode"]["image"]
    assert np.abs(outs["sd"] - outs["onnx"]).max() <= 1 / 255


def test_missing_export_says_how_to_make_it(catalog, models):
    mm = ModelManager(ModelRegistry([{"name": "tiny-sd", "source": str(models.resolve("tiny-sd").folder)}],
                                    cache_dir=models.registry.cache_dir / "no-onnx-here"))
    b = GraphBuilder()
    lat = b.add("sd.empty_latent", width=64, height=64)
    b.add("onnx.vae_decode", id="d", latent=lat.latent)
    with pytest.raises(BlockError) as info:
        LocalExecutor(catalog, models=mm).run(b.build())
    assert "orchestrator export-onnx tiny-sd" in str(info.value)


# -- the generic block ----------------------------------------------------------------------


def _save(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def upscaler(path: Path) -> Path:
    """x2 nearest upscale, NCHW, any size."""
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")
    return _save(path, [node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "H", "W"])], [scales])


def depth(path: Path) -> Path:
    """'Depth' = 1 - mean over channels, fixed 32x32 input, output [N, 1, 32, 32]."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Neg", ["m"], ["y"])]
    return _save(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, 32, 32])])


def scorer_nhwc(path: Path) -> Path:
    """Mean of each image, NHWC, batch fixed at 1: output [1, 1]."""
    node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2, 3], keepdims=0)
    reshape = helper.make_node("Unsqueeze", ["y", "one"], ["z"])
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16, 3])
    return _save(path, [node, reshape], [x],
                 [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1])], [one])


@pytest.fixture(scope="module")
def generic(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("onnx-files")
    upscaler(root / "up.onnx")
    depth(root / "depth.onnx")
    scorer_nhwc(root / "score.onnx")
    torch.save({"w": torch.zeros(1)}, root / "evil.onnx")
    reg = ModelRegistry([{"name": "upscaler-x2", "source": str(root / "up.onnx")}],
                        cache_dir=models.registry.cache_dir, base_dir=root)
    mm = ModelManager(reg)

    def run_on(image: np.ndarray, **params):
        """The block run directly on an array (the graph path is covered by the SD tests)."""
        from orchestrator.context import Context
        from plugins.onnx.generic import OnnxRun

        ctx = Context(node="r", block="onnx.run", seed=0, models=mm, input_root=root)
        return OnnxRun(params).run(ctx, image=image)

    return run_on


def test_generic_upscaler_doubles_the_image(generic):
    img = np.random.default_rng(0).random((2, 8, 12, 3), dtype=np.float32)
    out = generic(img, model="up.onnx")
    assert out["image"].shape == (2, 16, 24, 3)
    np.testing.assert_allclose(out["image"][:, ::2, ::2], img, atol=1e-6)
    assert out["values"].shape == (2, 3, 16, 24)


def test_generic_registered_model_and_output_resize(generic):
    img = np.random.default_rng(1).random((1, 8, 8, 4), dtype=np.float32)  # alpha is dropped
    out = generic(img, model="upscaler-x2", resize_output=True)
    assert out["image"].shape == (1, 8, 8, 3)


def test_generic_depth_fixed_size_minmax(generic):
    img = np.zeros((1, 64, 48, 3), np.float32)
    img[:, :, 24:] = 1.0
    out = generic(img, model="depth.onnx", output_range="minmax", resize_output=True)
    depth_map = out["image"]
    assert depth_map.shape == (1, 64, 48, 1)
    assert depth_map.min() == 0.0 and depth_map.max() == 1.0
    assert depth_map[0, :, :16].mean() > 0.9 and depth_map[0, :, 32:].mean() < 0.1  # bright is near
    assert out["values"].shape == (1, 1, 32, 32)


def test_generic_scorer_nhwc_per_image(generic):
    img = np.stack([np.full((16, 16, 3), v, np.float32) for v in (0.25, 0.5, 1.0)])
    out = generic(img, model="score.onnx", input_range="0..255")
    assert out["image"] is None
    np.testing.assert_allclose(out["values"].ravel(), [63.75, 127.5, 255.0], rtol=1e-6)
    assert out["score"] == pytest.approx(np.mean([63.75, 127.5, 255.0]))


def test_generic_refuses_pickles_and_missing_files(generic):
    img = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ModelError, match="pickle"):
        generic(img, model="evil.onnx")
    with pytest.raises(BlockError, match="no such file"):
        generic(img, model="nope.onnx")
