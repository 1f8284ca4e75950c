"""``image.upscale_model``: ESRGAN-family files built at test time, loaded by name through spandrel.

The nets are written in ``model_builders.py`` from their published definitions (BasicSR's
RRDBNet, Real-ESRGAN's SRVGGNetCompact), at tiny sizes with random weights, and saved as
``.pth`` state dicts and ``.safetensors``. The block's output must equal running the same
net directly; the tiled run must equal the untiled one within the seam tolerance; bad files
give one clear error that names the file and not its folder.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from graphs import GraphBuilder
from orchestrator.errors import BlockError
from orchestrator.models import ModelManager, ModelRegistry
from orchestrator.models.upscalers import load_upscaler
from orchestrator.runtime.executor import LocalExecutor
from plugins.upscale import block as upscale_block

sys.path.insert(0, str(Path(__file__).parent))
from model_builders import RRDBNet, SRVGGNetCompact, direct, esrgan_old_layout, randomised

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

# -- the nets, as BasicSR / Real-ESRGAN define them ------------------------------------------------


def make_image(h: int = 24, w: int = 32, batch: int = 1, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((batch, h // 4, w // 4, channels))
    return np.clip(np.kron(small, np.ones((1, 4, 4, 1))) * 0.8 + rng.random((batch, h, w, channels)) * 0.2,
                   0, 1).astype(np.float32)


# -- fixtures ------------------------------------------------------------------------------------

def swinir_x2() -> nn.Module:
    """A tiny SwinIR (lightweight x2 layout), from spandrel's own definition of the architecture:
    what is under test is reading its hyper-parameters (depths, heads, window, scale) off the file."""
    import importlib

    from orchestrator.models.upscalers import registry

    registry()  # makes spandrel's architecture modules importable without torchvision
    arch = importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR")
    return randomised(arch.SwinIR(img_size=16, embed_dim=12, depths=[2, 2], num_heads=[2, 2], window_size=4,
                                  mlp_ratio=2, upscale=2, upsampler="pixelshuffledirect",
                                  resi_connection="1conv"), 5)


NETS = {
    "esrgan_x4": lambda: randomised(RRDBNet(scale=4), 1),
    "esrgan_x2": lambda: randomised(RRDBNet(scale=2), 2),
    "compact_x4": lambda: randomised(SRVGGNetCompact(upscale=4), 3),
    "compact_x2": lambda: randomised(SRVGGNetCompact(upscale=2), 4),
    "swinir_x2": swinir_x2,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A ComfyUI-style models folder: each net as ``.pth`` (a torch state dict) and ``.safetensors``."""
    root = tmp_path_factory.mktemp("models")
    d = root / "upscale_models"
    d.mkdir()
    nets = {}
    for name, make in NETS.items():
        net = make()
        nets[name] = net
        sd = {k: v.contiguous() for k, v in net.state_dict().items()}
        torch.save(sd, d / f"{name}.pth")
        save_file(sd, str(d / f"{name}_st.safetensors"))
        if name == "esrgan_x4":  # the original ESRGAN key layout, as a .pth
            torch.save(esrgan_old_layout(sd, nb=2), d / "esrgan_x4_old.pth")
    (d / "truncated.safetensors").write_bytes((d / "esrgan_x4_st.safetensors").read_bytes()[:300])
    with (d / "evil.pth").open("wb") as fh:  # a pickle that would run code if unpickled
        pickle.dump(Evil(), fh)
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, d / "not_an_upscaler.pth")
    (d / "empty.safetensors").write_bytes(b"")
    return root, nets


class Evil:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


@pytest.fixture(scope="module")
def models(folder, tmp_path_factory):
    """A model manager whose registry has the test's models folder configured."""
    from orchestrator.models.folders import ModelFolders

    root, _nets = folder
    registry = ModelRegistry(cache_dir=tmp_path_factory.mktemp("cache"), folders=ModelFolders([root]))
    return ModelManager(registry)


@pytest.fixture(scope="module")
def upscale(models):
    """Run the block on an array, the model named as a request names it (a file name in the folder)."""
    from orchestrator.context import Context

    def go(model: str, image: np.ndarray) -> np.ndarray:
        ctx = Context(node="up", block="image.upscale_model", seed=0, models=models, confine_inputs=True)
        blk = upscale_block.UpscaleModel(upscale_block.UpscaleModel.Params(model=model))
        return blk.run(ctx, image=image)["image"]

    return go


@pytest.fixture(scope="module")
def run_graph(catalog, models, tmp_path_factory):
    """Run ``image.load`` -> ``image.upscale_model`` on a PNG, optionally tiled; (input, output)."""
    from PIL import Image

    inputs = tmp_path_factory.mktemp("inputs")
    ex = LocalExecutor(catalog, models=models, input_root=inputs)

    def go(model: str, image: np.ndarray, tile: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(inputs / "in.png")
        b = GraphBuilder()
        load = b.add("image.load", id="load", path="in.png")
        b.add("image.upscale_model", id="up", image=load.image, model=model, tile=tile)
        out = ex.run(b.build()).outputs
        return out["load"]["image"], out["up"]["image"]

    return go


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("suffix", [".pth", "_st.safetensors"])
def test_output_equals_the_net_itself(upscale, folder, name, suffix):
    _root, nets = folder
    image = make_image(batch=2)
    ours = upscale(name + suffix, image)
    ref = direct(nets[name], image)
    scale = int(name[-1])
    assert ours.shape == (2, 24 * scale, 32 * scale, 3)
    # a size off the net's multiple (SwinIR's window, x2 ESRGAN's unshuffle) is padded, then cropped
    odd = np.ascontiguousarray(image[:1, :21, :29])
    assert upscale(name + suffix, odd).shape == (1, 21 * scale, 29 * scale, 3)
    diff = float(np.abs(ours - ref).max())
    print(f"{name}{suffix}: max abs diff vs the net {diff:.3g}")
    assert diff <= 1e-5


def test_original_esrgan_key_layout(upscale, folder):
    _root, nets = folder
    image = make_image(seed=13)
    np.testing.assert_allclose(upscale("esrgan_x4_old", image), direct(nets["esrgan_x4"], image), atol=1e-5)


def test_scale_and_architecture_come_from_the_file(folder):
    root, _nets = folder
    d = root / "upscale_models"
    found = {n: load_upscaler(d / f"{n}.pth") for n in NETS}
    assert {n: (u.architecture, u.scale) for n, u in found.items()} == {
        "esrgan_x4": ("ESRGAN", 4), "esrgan_x2": ("ESRGAN", 2),
        "compact_x4": ("RealESRGAN Compact", 4), "compact_x2": ("RealESRGAN Compact", 2),
        "swinir_x2": ("SwinIR", 2)}


def test_by_name_in_a_graph_equals_the_net(run_graph, folder):
    _root, nets = folder
    for name in ("esrgan_x4", "compact_x2_st"):  # without the extension, as ComfyUI lists them too
        loaded, ours = run_graph(name, make_image(seed=8))
        np.testing.assert_allclose(ours, direct(nets[name.removesuffix("_st")], loaded), atol=1e-5)


def test_tiled_equals_untiled_within_the_seams(run_graph):
    image = make_image(48, 64, seed=5)
    _, whole = run_graph("compact_x4.pth", image)
    _, tiled = run_graph("compact_x4.pth", image, tile={"size": 32, "overlap": 16})
    assert tiled.shape == whole.shape == (1, 192, 256, 3)
    diff = np.abs(tiled - whole)
    print(f"tiled vs untiled: max {diff.max():.3g}, mean {diff.mean():.3g}")
    assert diff.mean() < 2e-3 and diff.max() < 0.05


def test_gray_and_alpha_images(upscale, folder):
    _root, nets = folder
    gray = make_image(channels=1, seed=6)
    out = upscale("compact_x2.pth", gray)
    np.testing.assert_allclose(out, direct(nets["compact_x2"], np.repeat(gray, 3, axis=-1)), atol=1e-5)
    rgba = make_image(channels=4, seed=7)
    out = upscale("compact_x2.pth", rgba)
    assert out.shape == (1, 48, 64, 4)
    np.testing.assert_allclose(out[..., :3], direct(nets["compact_x2"], rgba[..., :3]), atol=1e-5)
    assert 0.0 <= out[..., 3].min() and out[..., 3].max() <= 1.0


def test_loaded_once_per_worker_by_its_model_manager(models, upscale):
    upscale("esrgan_x2_st.safetensors", make_image())
    upscale("esrgan_x2_st", make_image(seed=9))  # another name of the same file
    report = models.report()
    assert report["load_counts"]["esrgan_x2_st.safetensors"] == 1
    held = [h for h in report["held"]
            if h["component"] == "upscaler" and h["model"].startswith("esrgan_x2_st")]
    assert len(held) == 1 and held[0]["bytes"] > 0  # counted against the manager's budget


@pytest.mark.parametrize(("name", "words"), [
    ("truncated.safetensors", "not a readable"),
    ("evil.pth", "weights-only"),
    ("not_an_upscaler.pth", "no known upscaler architecture"),
    ("empty.safetensors", "not a .safetensors or .pth"),
])
def test_bad_files_give_one_clear_error(upscale, folder, name, words):
    root, _nets = folder
    with pytest.raises(BlockError) as info:
        upscale(name, make_image())
    err = info.value.to_dict()
    assert name in err["message"] and words in err["message"]
    assert err["node"] == "up" and err["field"] == "params.model"
    assert str(root) not in err["message"]  # the file by name, not where it lives


def test_paths_and_unknown_names_are_refused_in_the_daemon(folder, tmp_path):
    """Where requests may not name paths (the daemon), a path is refused even to a real file."""
    from orchestrator.context import Context
    from orchestrator.models.folders import ModelFolders

    root, _nets = folder
    models = ModelManager(ModelRegistry(cache_dir=tmp_path, folders=ModelFolders([root]), allow_paths=False))
    ctx = Context(node="up", block="image.upscale_model", seed=0, models=models, confine_inputs=True)
    for name in (str(root / "upscale_models" / "compact_x2.pth"), "../upscale_models/compact_x2.pth",
                 "no_such_upscaler"):
        blk = upscale_block.UpscaleModel(upscale_block.UpscaleModel.Params(model=name))
        with pytest.raises(BlockError) as info:
            blk.run(ctx, image=make_image())
        assert info.value.to_dict()["field"] == "params.model"
        assert str(root) not in info.value.to_dict()["message"].replace(name, "")


def test_comfy_upscale_nodes_import_to_the_block(catalog):
    from graphs.comfy import import_workflow

    wf = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-UltraSharp.pth"}},
        "3": {"class_type": "ImageUpscaleWithModel",
              "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "up"}},
    }
    graph, problems = import_workflow(wf, catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    assert not [p for p in problems if p.to_dict().get("severity") == "error"], problems
    ups = [n for n in graph.nodes.values() if n.block == "image.upscale_model"]
    assert len(ups) == 1 and ups[0].params["model"] == "4x-UltraSharp.pth"
    assert (ups[0].tile.size, ups[0].tile.overlap) == (512, 32)  # as ComfyUI tiles it


@pytest.mark.slow
def test_tiles_spread_over_two_ray_workers_and_equal_the_in_process_run(ray_session, folder, run_graph,
                                                                        tmp_path):
    """On a Ray scheduler with two workers, each resolving the name in its own model folders."""
    from PIL import Image

    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig

    root, _nets = folder
    tests = Path(__file__).parent
    image = make_image(64, 96, seed=12)
    local_in, local_out = run_graph("esrgan_x2", image, tile={"size": 32, "overlap": 8})
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(inputs / "in.png")
    b = GraphBuilder()
    load = b.add("image.load", id="load", path="in.png")
    b.add("image.upscale_model", id="up", image=load.image, model="esrgan_x2",
          tile={"size": 32, "overlap": 8})
    config = WorkerConfig(entry_points=False, provider="model_builders:folder_model_manager",
                          provider_kwargs={"cache_dir": str(tmp_path / "cache"), "models_root": str(root)},
                          sys_path=(str(tests),), cpu_threads=1)
    events: list[dict] = []
    with Scheduler(config=config, gpus=2, input_root=inputs, cancel_grace=20.0) as sched:
        sched.wait_ready()
        out = sched.run(b.build(), on_event=events.append).outputs
    assert np.array_equal(out["load"]["image"], local_in)
    assert np.array_equal(out["up"]["image"], local_out)  # the same tiles, merged the same way
    workers = {w for e in events if e["event"] == "tile" and e["node"] == "up" for w in e.get("workers", {})}
    assert len(workers) == 2


def test_pth_upscalers_refused_when_legacy_files_are(folder, tmp_path):
    from orchestrator.context import Context
    from orchestrator.models.folders import ModelFolders

    root, _nets = folder
    registry = ModelRegistry(cache_dir=tmp_path, folders=ModelFolders([root]), legacy="refuse")
    ctx = Context(node="up", block="image.upscale_model", seed=0, models=ModelManager(registry))
    blk = upscale_block.UpscaleModel(upscale_block.UpscaleModel.Params(model="compact_x2.pth"))
    with pytest.raises(BlockError) as info:
        blk.run(ctx, image=make_image())
    assert "legacy" in str(info.value) and info.value.to_dict()["field"] == "params.model"
    blk = upscale_block.UpscaleModel(upscale_block.UpscaleModel.Params(model="compact_x2_st"))
    assert blk.run(ctx, image=make_image())["image"].shape == (1, 48, 64, 3)  # safetensors still load


def test_an_output_over_the_pixel_limit_is_refused_before_it_is_made(models):
    """The scale comes from the file, so the submit-time size gate cannot see it: the block checks."""
    from orchestrator.context import Context
    from orchestrator.runtime.limits import SizeLimits

    ctx = Context(node="up", block="image.upscale_model", seed=0, models=models,
                  limits=SizeLimits(pixels=100 * 100))
    blk = upscale_block.UpscaleModel(upscale_block.UpscaleModel.Params(model="esrgan_x4"))
    with pytest.raises(BlockError) as info:
        blk.run(ctx, image=make_image())  # 32x24 -> 128x96 = 12288 pixels
    err = info.value.to_dict()
    assert (err["type"], err["field"], err["value"], err["bound"]) == ("limit", "params.model", 12288,
                                                                       {"le": 10000})
    small = make_image(16, 16)
    assert blk.run(ctx, image=small)["image"].shape == (1, 64, 64, 3)


@pytest.mark.slow
def test_through_the_daemon_by_name_and_hostile_names_refused(folder, tmp_path):
    """A real daemon with the models folder configured: the upscaler runs by file name; a path,
    a way out of the folder or a pickle that runs code fails the job with one structured error
    that names the node and the param and says nothing about the disk."""
    import io

    from daemon_process import Daemon
    from PIL import Image

    root, _nets = folder
    state = tmp_path / "state"
    state.mkdir()
    (state / "config.toml").write_text(f'[model_files]\nroots = ["{root}"]\n')
    d = Daemon(state).start()
    try:
        c = d.client()
        buf = io.BytesIO()
        Image.fromarray((make_image()[0] * 255).round().astype(np.uint8)).save(buf, format="PNG")
        name = c.upload(buf.getvalue(), filename="in.png")

        def graph(model: str) -> dict:
            return {"nodes": {"load": {"block": "image.load", "params": {"path": name}},
                              "up": {"block": "image.upscale_model", "inputs": {"image": "load.image"},
                                     "params": {"model": model}},
                              "save": {"block": "image.save", "inputs": {"image": "up.image"},
                                       "params": {"name": "big"}}}}

        done = c.submit(graph=graph("compact_x2")).result(timeout=240)
        assert done.state == "succeeded", done.info
        assert done.images["big"].size == (64, 48)
        for hostile in (str(root / "upscale_models" / "compact_x2.pth"), "../upscale_models/compact_x2.pth",
                        "/etc/passwd", "evil.pth", "no_such_model"):
            info = c.submit(graph=graph(hostile)).wait(timeout=240)
            assert info["state"] == "failed", (hostile, info)
            [err] = info["errors"]
            assert (err["node"], err["field"]) == ("up", "params.model"), err
            assert str(root) not in err["message"] and str(tmp_path) not in err["message"], err
    finally:
        d.terminate()
