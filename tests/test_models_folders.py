"""Model folders and names: layouts, extra_model_paths.yaml, the index, names never paths."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from orchestrator.models import ModelError, ModelFolders, ModelRegistry, allows_paths, registry_from_settings
from orchestrator.models.names import raw_path_form


def st_file(path: Path, tensors: dict[str, list[int]] | None = None) -> Path:
    """A real safetensors file with zero-filled F32 tensors of the given shapes."""
    tensors = tensors or {"w": [2]}
    head, off = {}, 0
    for k, shape in tensors.items():
        n = 4
        for s in shape:
            n *= s
        head[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(head).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(off))
    return path


@pytest.mark.parametrize(("name", "form"), [
    ("/etc/passwd", "absolute"), ("~/x", "home"), ("~root/x", "home"), ("../x", "parent"),
    ("a/../../x", "parent"), ("file:///etc/passwd", "url"), ("http://h/x", "url"), ("hf:org/repo", "url"),
    ("C:\\x.ckpt", "url"), ("a\\..\\x", "url"), ("./x", "empty_part"), ("a//b", "empty_part"),
    ("a/", "empty_part"), ("x\x00y", "control_character"), ("x" * 600, "too_long"), ("", "empty"),
])
def test_raw_path_forms(name, form):
    assert raw_path_form(name) == form


@pytest.mark.parametrize("name", ["tiny-sd", "sub/dream shaper.safetensors", "a.b-c_d", "ü/ñ.pt"])
def test_names(name):
    assert raw_path_form(name) is None


def test_comfyui_and_a1111_layouts_and_names_with_and_without_extension(tmp_path):
    comfy, a1111 = tmp_path / "comfy", tmp_path / "webui"
    st_file(comfy / "models" / "checkpoints" / "sd15" / "dream.safetensors")
    st_file(comfy / "models" / "loras" / "ink.safetensors")
    st_file(a1111 / "models" / "Stable-diffusion" / "real.safetensors")
    st_file(a1111 / "models" / "Lora" / "ink.safetensors")  # the first root wins
    st_file(a1111 / "models" / "ESRGAN" / "4x.pth")
    st_file(a1111 / "embeddings" / "bad-hands.pt")
    (comfy / "models" / "checkpoints" / "notes.txt").write_text("not a model")
    mf = ModelFolders([comfy, a1111])
    assert sorted(mf.names("checkpoint")) == ["real", "real.safetensors", "sd15/dream",
                                              "sd15/dream.safetensors"]
    assert mf.find("ink", "lora").path == comfy / "models" / "loras" / "ink.safetensors"
    assert mf.find("4x", "upscaler").name == "4x.pth"
    assert mf.find("bad-hands.pt", "embedding") is not None
    assert mf.find("ink", "checkpoint") is None  # kinds do not mix


def test_extra_model_paths_yaml_is_read_as_comfyui_writes_it(tmp_path):
    base = tmp_path / "webui"
    st_file(base / "models" / "Lora" / "a.safetensors")
    st_file(base / "models" / "LyCORIS" / "b.safetensors")
    st_file(base / "models" / "ESRGAN" / "x4.pth")
    st_file(tmp_path / "abs" / "c.safetensors")
    yaml_file = tmp_path / "cfg" / "extra_model_paths.yaml"
    yaml_file.parent.mkdir()
    yaml_file.write_text(f"""
a111:
    base_path: ../webui/

    checkpoints: models/Stable-diffusion
    configs: models/Stable-diffusion
    vae: models/VAE
    loras: |
         models/Lora
         models/LyCORIS
    upscale_models: |
                  models/ESRGAN
                  models/RealESRGAN
    embeddings: embeddings
    hypernetworks: models/hypernetworks
    controlnet: models/ControlNet
other:
    base_path: {tmp_path}
    checkpoints: abs
""")
    mf = ModelFolders(extra_model_paths=[yaml_file])
    assert {"a.safetensors", "b.safetensors"} <= set(mf.names("lora"))
    assert mf.find("x4", "upscaler") is not None and mf.find("c", "checkpoint") is not None


def test_the_index_is_cached_and_refreshed_when_a_folder_changes(tmp_path):
    loras = tmp_path / "loras"
    st_file(loras / "a.safetensors")

    def age() -> None:  # an old mtime, so the next change differs whatever the clock's tick
        os.utime(loras, ns=(10**9, 10**9))

    age()
    mf = ModelFolders([tmp_path])
    assert mf.find("a", "lora") and mf.scans == 1
    assert mf.find("a", "lora") and mf.scans == 1  # cached
    st_file(loras / "deep" / "b.safetensors")
    assert mf.find("deep/b", "lora") and mf.scans == 2
    age()
    assert mf.find("a", "lora") and mf.scans == 3  # the folder's mtime changed (back): rescanned
    (loras / "a.safetensors").unlink()
    assert mf.find("a", "lora") is None


def test_symlinks_are_followed_only_inside_the_model_folders(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    st_file(outside / "secret.safetensors")
    st_file(root / "loras" / "real.safetensors")
    st_file(root / "checkpoints" / "shared.safetensors")
    os.symlink(outside / "secret.safetensors", root / "loras" / "leak.safetensors")
    os.symlink(outside, root / "loras" / "leakdir")
    os.symlink(root / "checkpoints" / "shared.safetensors", root / "loras" / "inside.safetensors")
    os.symlink(root / "loras", root / "loras" / "loop")
    mf = ModelFolders([root])
    names = mf.names("lora")
    assert "leak.safetensors" not in names and not any(n.startswith("leakdir") for n in names)
    assert "inside.safetensors" in names and "real.safetensors" in names


def test_a_file_swapped_for_a_link_out_after_the_scan_is_not_served(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    st_file(outside / "secret.safetensors")
    victim = st_file(root / "loras" / "ok.safetensors")
    mf = ModelFolders([root])
    assert mf.find("ok", "lora") is not None
    stamp = os.stat(victim.parent).st_mtime_ns
    victim.unlink()
    os.symlink(outside / "secret.safetensors", victim)
    os.utime(victim.parent, ns=(stamp, stamp))  # the folder looks unchanged: the index is not rebuilt
    assert mf.find("ok", "lora") is None


@pytest.fixture()
def folder_world(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    st_file(root / "loras" / "sub" / "ink.safetensors")
    st_file(root / "onnx" / "net.onnx")
    st_file(outside / "secret.safetensors", {"secret_tensor_xyz": [4]})
    return root, outside


def test_daemon_registry_resolves_names_and_refuses_every_path(folder_world, tmp_path):
    root, outside = folder_world
    reg = ModelRegistry(cache_dir=tmp_path / "c", folders=ModelFolders([root]), allow_paths=False,
                        base_dir=outside)
    assert reg.resolve_file("sub/ink", "lora") == root / "loras" / "sub" / "ink.safetensors"
    assert reg.resolve_file("sub/ink.safetensors", "lora").name == "ink.safetensors"
    msgs = {}
    for name in (str(outside / "secret.safetensors"), str(outside / "nope.safetensors"), "secret.safetensors",
                 "../outside/secret.safetensors", "~/secret.safetensors", "file:///x", "sub/../sub/ink"):
        with pytest.raises(ModelError) as info:
            reg.resolve_file(name, "lora", field="params.model.loras[0].path")
        d = info.value.to_dict()
        assert d["field"] == "params.model.loras[0].path" and d["type"] == "model"
        assert "secret_tensor_xyz" not in d["message"]
        msgs[name] = (d["reason"], d["message"].replace(name, "N"))
    # an existing file outside reads exactly like a missing one; a bare name is just unknown
    assert msgs[str(outside / "secret.safetensors")] == msgs[str(outside / "nope.safetensors")]
    assert msgs["secret.safetensors"][0] == "unknown"  # relative to base_dir: never looked at
    assert msgs["sub/../sub/ink"][0] == "path"
    with pytest.raises(ModelError, match="requests name models, never paths"):
        reg.resolve(str(outside / "secret.safetensors"))


def test_cli_registry_still_takes_paths(folder_world, tmp_path):
    root, outside = folder_world
    reg = ModelRegistry(cache_dir=tmp_path / "c", folders=ModelFolders([root]), allow_paths=True,
                        base_dir=tmp_path)
    assert reg.resolve_file(str(outside / "secret.safetensors"), "lora") == outside / "secret.safetensors"
    assert reg.resolve_file("outside/secret.safetensors", "lora") == outside / "secret.safetensors"
    assert reg.resolve_file("secret.safetensors", "lora", base=outside) == outside / "secret.safetensors"
    with pytest.raises(ModelError, match="no such file"):
        reg.resolve_file("nope.safetensors", "lora")


def test_settings_decide_paths_daemon_never_cli_yes_and_the_scorer_is_trusted(folder_world, tmp_path):
    from orchestrator.config import load_settings

    root, outside = folder_world
    scorer = str(outside / "secret.safetensors")
    env = {"ORCHESTRATOR_MODEL_FILES__ROOTS": str(root), "ORCHESTRATOR_AGENT__SCORER": scorer}
    s = load_settings(config_file=None, env=env, overrides={"state_dir": tmp_path / "s"})
    assert not allows_paths(s) and allows_paths(s, trusted=True)
    reg = registry_from_settings(s, plugins=False)
    assert reg.resolve_file("sub/ink", "lora").name == "ink.safetensors"
    assert reg.resolve_file(scorer, "onnx") == Path(scorer)  # the operator's own scorer setting
    for name, kind in ((scorer, "lora"), (scorer, "checkpoint"), (str(outside / "other.onnx"), "onnx")):
        with pytest.raises(ModelError):  # trusted for that one kind only, and nothing else is
            reg.resolve_file(name, kind)
    off = load_settings(config_file=None, env={**env, "ORCHESTRATOR_MODEL_FILES__ALLOW_PATHS": "false"},
                        overrides={"state_dir": tmp_path / "s"})
    assert not allows_paths(off, trusted=True)


def test_manager_check_and_file_components_name_the_field(folder_world, tmp_path):
    from orchestrator.models import ModelManager

    root, outside = folder_world
    reg = ModelRegistry(cache_dir=tmp_path / "c", folders=ModelFolders([root]), allow_paths=False)
    mm = ModelManager(reg)
    assert mm.load("sub/ink", "file:lora").name == "ink.safetensors"
    with pytest.raises(ModelError) as info:
        mm.check({"name": "tiny-sd", "loras": [{"path": "sub/ink"}, {"path": "/etc/passwd"}]})
    assert info.value.field == "params.model.loras[1].path"
    with pytest.raises(ModelError) as info:
        mm.load("/etc/passwd", "unet")
    assert info.value.field == "params.model" and info.value.details["reason"] == "path"
    with pytest.raises(ModelError) as info:
        mm.load(str(outside / "secret.safetensors"), "onnx")
    assert info.value.details["reason"] == "path"


# -- detection from headers -------------------------------------------------------------------------

U = "model.diffusion_model."
CONV_IN = U + "input_blocks.0.0.weight"
TO_K = U + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
SD1 = {CONV_IN: [8, 4, 3, 3], TO_K: [8, 768], "first_stage_model.decoder.conv_out.weight": [3, 4, 3, 3]}
LORA_TO_K = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"


def _ckpt(path: Path, changes: dict[str, list[int] | None] | None = None) -> Path:
    """An SD-1-shaped checkpoint header (tiny shapes), with keys changed (None: removed)."""
    tensors = dict(SD1)
    for k, v in (changes or {}).items():
        if v is None:
            tensors.pop(k, None)
        else:
            tensors[k] = v
    return st_file(path, tensors)


def _with_values(path: Path, key: str, values: list[float], extra: dict[str, list[int]]) -> Path:
    import numpy as np

    data = np.asarray(values, np.float32).tobytes()
    head, off, blobs = {}, 0, []
    for k, shape in extra.items():
        n = 4 * int(np.prod(shape))
        head[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
        blobs.append(bytes(n))
        off += n
    head[key] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [off, off + len(data)]}
    raw = json.dumps(head).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs) + data)
    return path


def test_checkpoint_families_from_headers(tmp_path):
    from orchestrator.models.detect import XL_BASE, XL_REFINER, detect_file

    fam = {
        "sd1": _ckpt(tmp_path / "a.safetensors"),
        "sd1-inpaint": _ckpt(tmp_path / "b.safetensors", {CONV_IN: [8, 9, 3, 3]}),
        "sd2": _ckpt(tmp_path / "c.safetensors", {TO_K: [8, 1024]}),
        "sdxl": _ckpt(tmp_path / "d.safetensors", {TO_K: None, XL_BASE: [4]}),
        "sdxl-refiner": _ckpt(tmp_path / "e.safetensors", {TO_K: None, XL_REFINER: [4]}),
        "sdxl-inpaint": _ckpt(tmp_path / "f.safetensors", {TO_K: None, XL_BASE: [4], CONV_IN: [8, 9, 3, 3]}),
        "sd2-inpaint": _ckpt(tmp_path / "g.safetensors", {TO_K: [8, 1024], CONV_IN: [8, 9, 3, 3]}),
    }
    for want, path in fam.items():
        d = detect_file(path)
        assert (d.kind, d.family) == ("checkpoint", want), path
    # SD 2 v-prediction: a sidecar yaml says so; without one, the bias-spread heuristic decides
    v = _ckpt(tmp_path / "v.safetensors", {TO_K: [8, 1024]})
    (tmp_path / "v.yaml").write_text("model:\n  params:\n    parameterization: \"v\"\n")
    assert detect_file(v).family == "sd2-v"
    probe = U + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
    import numpy as np

    spread = np.random.default_rng(0).normal(0, 0.5, 64).tolist()
    wide = _with_values(tmp_path / "w.safetensors", probe, spread, {TO_K: [8, 1024]})
    assert detect_file(wide).family == "sd2-v"
    flat = _with_values(tmp_path / "x.safetensors", probe, [0.01] * 64, {TO_K: [8, 1024]})
    assert detect_file(flat).family == "sd2"


def test_other_kinds_from_headers(tmp_path):
    from orchestrator.models.detect import detect_file

    cases = {
        ("lora", "sd1"): {LORA_TO_K: [4, 768]},
        ("lora", "sdxl"): {"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [4, 1280]},
        ("embedding", "sd1"): {"emb_params": [2, 768]},
        ("embedding", "sd2"): {"emb_params": [2, 1024]},
        ("embedding", "sdxl"): {"clip_l": [2, 768], "clip_g": [2, 1280]},
        ("controlnet", "sd1"): {"control_model.input_hint_block.0.weight": [16, 3, 3, 3],
                                "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight":
                                    [8, 768]},
        ("vae", None): {"encoder.conv_in.weight": [8, 3, 3, 3], "decoder.conv_out.weight": [3, 8, 3, 3]},
        ("upscaler", None): {"conv_first.weight": [8, 3, 3, 3], "body.0.rdb1.conv1.weight": [8, 8, 3, 3]},
        ("ip_adapter", None): {"image_proj.proj.weight": [8, 8], "ip_adapter.1.to_k_ip.weight": [8, 8]},
        ("clip_vision", None): {"vision_model.embeddings.patch_embedding.weight": [8, 3, 2, 2]},
    }
    for i, ((kind, family), tensors) in enumerate(cases.items()):
        d = detect_file(st_file(tmp_path / f"{i}.safetensors", tensors))
        assert (d.kind, d.family) == (kind, family), tensors


def test_truncated_and_disguised_files_are_named_by_name(tmp_path):
    import pickle

    from orchestrator.models.detect import detect_file

    good = _ckpt(tmp_path / "whole.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ModelError) as info:
        detect_file(cut, display="checkpoints/cut.safetensors")
    assert "truncated" in info.value.message and "checkpoints/cut.safetensors" in info.value.message
    assert str(tmp_path) not in info.value.message
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(pickle.dumps({"w": [1.0] * 100}))
    with pytest.raises(ModelError, match="not a safetensors file"):
        detect_file(fake, display="fake.safetensors")


def test_listing_has_kind_family_size_and_errors(tmp_path, capsys):
    from orchestrator.cli.main import main

    root = tmp_path / "models"
    _ckpt(root / "checkpoints" / "sd15.safetensors")
    st_file(root / "loras" / "style.safetensors", {LORA_TO_K: [4, 768]})
    st_file(root / "embeddings" / "bad.safetensors", {"emb_params": [2, 768]})
    (root / "upscale_models").mkdir()
    (root / "upscale_models" / "4x.pth").write_bytes(b"PK\x03\x04not really")
    cut = root / "checkpoints" / "broken.safetensors"
    cut.write_bytes((root / "checkpoints" / "sd15.safetensors").read_bytes()[:50])
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "config.toml").write_text(f'[model_files]\nroots = ["{root}"]\n')
    assert main(["--state-dir", str(tmp_path / "state"), "models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["sd15.safetensors"]["kind"], rows["sd15.safetensors"]["family"]) == ("checkpoint", "sd1")
    assert rows["sd15.safetensors"]["size"] == (root / "checkpoints" / "sd15.safetensors").stat().st_size
    assert (rows["style.safetensors"]["kind"], rows["style.safetensors"]["family"]) == ("lora", "sd1")
    assert rows["bad.safetensors"]["kind"] == "embedding"
    assert rows["4x.pth"]["kind"] == "upscaler" and rows["4x.pth"]["format"] == "legacy"
    broken = rows["broken.safetensors"]
    assert broken["status"] == "error" and "broken.safetensors" in broken["error"]
    assert rows["tiny-sd"]["family"] == "sd1" and rows["tiny-sd"]["loaded"] is None
    assert main(["--state-dir", str(tmp_path / "state"), "models"]) == 0
    out = capsys.readouterr().out
    assert "sd15.safetensors" in out and "checkpoint" in out and "sd1" in out


def test_the_in_process_cli_takes_model_paths_next_to_the_graph_unless_told_not_to(tmp_path, monkeypatch,
                                                                                   capsys):
    import sys as _sys

    from orchestrator.cli.main import main

    _sys.path.insert(0, str(Path(__file__).parent / "reliability"))
    from test_model_names import onnx_double

    work = tmp_path / "work"
    onnx_double(work / "nets" / "double.onnx")
    solid = {"width": 8, "height": 8, "color": [0.25, 0.25, 0.25]}
    graph = {"nodes": {"img": {"block": "image.solid", "params": solid},
                       "net": {"block": "onnx.run", "inputs": {"image": "img.image"},
                               "params": {"model": "nets/double.onnx"}},
                       "save": {"block": "image.save", "inputs": {"image": "net.image"},
                                "params": {"name": "x"}}}}
    (work / "g.json").write_text(json.dumps(graph))
    monkeypatch.chdir(tmp_path)  # the path is relative to the graph, not to the working folder
    args = ["--state-dir", str(tmp_path / "s"), "run", "--graph", str(work / "g.json"),
            "-o", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    monkeypatch.setenv("ORCHESTRATOR_MODEL_FILES__ALLOW_PATHS", "false")
    assert main(args) == 1
    assert "'nets/double.onnx' is not configured" in capsys.readouterr().err


def test_loaded_names_read_both_engines_stats():
    from orchestrator.models.registry import loaded_names

    local = {"engine": "local", "models": {"held": [{"model": "tiny-sd", "component": "unet"},
                                                    {"model": "sd15/x.safetensors+lora(ink@0.5)"}]}}
    ray = {"engine": "ray", "workers": [{"models": ["a.safetensors", "tiny-sdxl+emb(e)"]}, {"models": []},
                                        "junk"]}
    assert loaded_names(local) == {"tiny-sd", "sd15/x.safetensors"}
    assert loaded_names(ray) == {"a.safetensors", "tiny-sdxl"}
    assert loaded_names(None) == set() and loaded_names({"models": "x", "workers": None}) == set()
