"""Model names, never paths: every model-ish field of a request, against a real daemon on loopback.

A ComfyUI-layout model folder is built here (an ONNX net and an IP-Adapter in it, a symlink
that leaves it), plus files outside it. Each raw-path form (absolute, ``..``, ``~``, URL
schemes, a drive path, a symlink out of the root, ...) is sent in each field that names a
model: the checkpoint, a LoRA's and an embedding's ``path``, a ControlNet, a CLIP vision
encoder, an IP-Adapter, an ONNX file. Each job fails with one structured error naming the
node, the field and the requested name, the same whether the target exists or not, and
naming nothing of the file's content; the good job accepted before is still there and the
model-folder files work by name (with and without extension).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import httpx
import pytest
from kit import make_daemon, wait_final

SECRET_TENSOR = "secret_tensor_name_9f3"
ERROR_KEYS = {"type", "message", "node", "field"}


def onnx_double(path: Path) -> Path:
    """A one-op ONNX net: y = 2 x on [N, 3, H, W]."""
    import onnx
    from onnx import TensorProto, helper

    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    node = helper.make_node("Mul", ["x", "two"], ["y"])
    graph = helper.make_graph([node], "double",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def secret_safetensors(path: Path) -> Path:
    """A small safetensors file whose tensor name must never show up in an error."""
    head = json.dumps({SECRET_TENSOR: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + bytes(16))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The model root, the files outside it, and a daemon (local engine) configured with the root."""
    from sd_fixtures import tiny_cache_dir

    from orchestrator.models import ModelRegistry

    base = tmp_path_factory.mktemp("models")
    root, outside = base / "ComfyUI" / "models", base / "outside"
    outside.mkdir()
    onnx_double(outside / "secret.onnx")
    for ext in ("safetensors", "pt", "ckpt"):
        secret_safetensors(outside / f"secret.{ext}")
    onnx_double(root / "onnx" / "nets" / "double.onnx")
    cache = tiny_cache_dir()
    adapter = ModelRegistry(cache_dir=cache).resolve("tiny-ip-adapter", build=True).path
    (root / "ipadapter" / "sub").mkdir(parents=True)
    weights = (adapter / "ip_adapter.safetensors").read_bytes()
    (root / "ipadapter" / "sub" / "mine.safetensors").write_bytes(weights)
    for kind, ext in (("onnx", "onnx"), ("ipadapter", "safetensors"), ("loras", "safetensors"),
                      ("embeddings", "safetensors"), ("checkpoints", "safetensors"),
                      ("controlnet", "safetensors"), ("clip_vision", "safetensors")):
        (root / kind).mkdir(parents=True, exist_ok=True)
        os.symlink(outside / f"secret.{ext}", root / kind / f"link.{ext}")
    state = base / "state"
    d = make_daemon(state, env={"ORCHESTRATOR_MODEL_FILES__ROOTS": str(base / "ComfyUI"),
                                "ORCHESTRATOR_CACHE_DIR": str(cache), "HOME": str(outside.parent)}).start()
    yield {"url": d.url, "root": root, "outside": outside, "state": state}
    d.kill()


def forms(outside: Path, ext: str) -> dict[str, str]:
    """Every raw-path form of a model name, by what it is."""
    return {
        "absolute_existing": str(outside / f"secret.{ext}"),
        "absolute_missing": str(outside / f"missing.{ext}"),
        "parent": f"../outside/secret.{ext}",
        "parent_inside": f"nets/../../../outside/secret.{ext}",
        "home": f"~/outside/secret.{ext}",
        "file_url": f"file://{outside}/secret.{ext}",
        "http_url": f"http://127.0.0.1:9/secret.{ext}",
        "drive": f"C:\\models\\secret.{ext}",
        "dot": f"./secret.{ext}",
        "symlink_out_of_root": f"link.{ext}",
    }


IMAGE = {"block": "test.slow", "params": {"steps": 1, "step_s": 0.0}}
COND = {"block": "sd.encode_prompt", "params": {"model": "tiny-sd", "prompt": "a fox"}}


def _node(block: str, params: dict, **inputs: str) -> dict:
    return {"block": block, "inputs": inputs, "params": params}


def graph_for(field: str, name: str) -> tuple[dict, str, str]:
    """A graph that names ``name`` in ``field``; the node and field its error must name."""
    if field == "onnx":
        return {"nodes": {"img": IMAGE, "net": _node("onnx.run", {"model": name}, image="img.image")}}, \
            "net", "params.model"
    if field == "ip_adapter":
        emb = _node("compose.image_embed", {"model": "tiny-clip-vision"}, image="img.image")
        ipa = _node("sd.ip_adapter", {"adapter": name}, cond="cond.cond", embedding="emb.embedding")
        return {"nodes": {"img": IMAGE, "cond": COND, "emb": emb, "ipa": ipa}}, "ipa", "params.adapter"
    if field == "checkpoint":
        return {"nodes": {"cond": _node("sd.encode_prompt", {"model": name, "prompt": "a fox"})}}, \
            "cond", "params.model"
    if field == "lora":
        model = {"name": "tiny-sd", "loras": [{"path": name, "weight": 0.5}]}
        return {"nodes": {"cond": _node("sd.encode_prompt", {"model": model, "prompt": "a fox"})}}, \
            "cond", "params.model.loras[0].path"
    if field == "embedding":
        model = {"name": "tiny-sd", "embeddings": [{"path": name, "token": "<x>"}]}
        return {"nodes": {"cond": _node("sd.encode_prompt", {"model": model, "prompt": "a <x>"})}}, \
            "cond", "params.model.embeddings[0].path"
    if field == "controlnet":
        cn = _node("sd.controlnet", {"model": name}, cond="cond.cond", image="img.image")
        return {"nodes": {"img": IMAGE, "cond": COND, "cn": cn}}, "cn", "params.model"
    if field == "clip_vision":
        emb = _node("compose.image_embed", {"model": name}, image="img.image")
        return {"nodes": {"img": IMAGE, "emb": emb}}, "emb", "params.model"
    raise AssertionError(field)


EXT = {"onnx": "onnx", "ip_adapter": "safetensors", "checkpoint": "safetensors", "lora": "safetensors",
       "embedding": "safetensors", "controlnet": "safetensors", "clip_vision": "safetensors"}


def _submit(url: str, graph: dict) -> str:
    r = httpx.post(f"{url}/jobs", json={"graph": graph}, timeout=60)
    assert r.status_code in (200, 201, 202), r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def accepted(world):
    """A good job, accepted and finished before any hostile one: it must survive them all."""
    graph, _n, _f = graph_for("onnx", "nets/double.onnx")
    graph["nodes"]["save"] = _node("image.save", {"name": "kept"}, image="net.image")
    job_id = _submit(world["url"], graph)
    job = wait_final(world["url"], [job_id], timeout=300)[job_id]
    assert job["state"] == "succeeded", job
    return job


@pytest.mark.parametrize("field", list(EXT))
def test_every_raw_path_form_is_refused_in_every_model_field(world, accepted, field):
    url, outside = world["url"], world["outside"]
    cases = forms(outside, EXT[field])
    ids = {}
    for form, name in cases.items():
        graph, node, err_field = graph_for(field, name)
        ids[form] = _submit(url, graph)
    final = wait_final(url, list(ids.values()), timeout=600)
    messages = {}
    for form, job_id in ids.items():
        job = final[job_id]
        assert job["state"] == "failed", (form, job)
        errors = job["errors"]
        assert len(errors) == 1, (form, errors)
        err = errors[0]
        assert ERROR_KEYS <= set(err), err
        _graph, node, err_field = graph_for(field, cases[form])
        assert (err["type"], err["node"], err["field"]) == ("model", node, err_field), (form, err)
        name = cases[form]
        shown = repr(name)[1:-1]
        # the requested name, as sent (absolute paths are shown as <path>/last-part by the daemon)
        assert shown in err["message"] or (f"<path>/{Path(name).name}" in err["message"]
                                           and form in ("absolute_existing", "absolute_missing", "file_url",
                                                        "home")), (form, err)
        text = json.dumps(err)
        assert SECRET_TENSOR not in text
        assert str(world["root"]) not in text and str(world["state"]) not in text, (form, err)
        if form not in ("absolute_existing", "absolute_missing", "file_url"):
            assert str(outside) not in text, (form, err)  # the requested name is the only path shown
        messages[form] = err["message"].replace(shown, "NAME").replace(Path(name).name, "NAME")
    # no existence oracle: a file that is there reads exactly like one that is not
    assert messages["absolute_existing"] == messages["absolute_missing"]
    # a symlink out of the root is simply not in the index
    assert "not configured" in messages["symlink_out_of_root"]


def test_model_folder_files_work_by_name_and_nothing_accepted_was_lost(world, accepted):
    url = world["url"]
    ids = []
    for name in ("nets/double.onnx", "nets/double"):
        graph, _n, _f = graph_for("onnx", name)
        ids.append(_submit(url, graph))
    graph, _n, _f = graph_for("ip_adapter", "sub/mine.safetensors")
    ids.append(_submit(url, graph))
    final = wait_final(url, ids, timeout=300)
    assert [final[i]["state"] for i in ids] == ["succeeded"] * 3, [final[i].get("errors") for i in ids]
    rows = {r["name"]: r for r in httpx.get(f"{url}/models", timeout=60).json()}
    assert (rows["nets/double.onnx"]["kind"], rows["nets/double.onnx"]["loaded"]) == ("onnx", True)
    assert rows["sub/mine.safetensors"]["kind"] == "ip_adapter" and rows["tiny-sd"]["loaded"] is True
    assert "link.safetensors" not in rows and not any("secret" in n for n in rows)
    job = httpx.get(f"{url}/jobs/{accepted['id']}", timeout=30).json()
    assert job["state"] == "succeeded" and job["id"] == accepted["id"]
    assert httpx.get(f"{url}/health", timeout=30).status_code == 200


@pytest.mark.slow
def test_the_ray_engine_refuses_paths_on_its_workers_too(world, tmp_path):
    """The same rules on Ray worker actors: names resolve there, raw paths are refused there."""
    from sd_fixtures import tiny_cache_dir

    d = make_daemon(tmp_path / "state", "--engine", "ray",
                    env={"ORCHESTRATOR_MODEL_FILES__ROOTS": str(world["root"].parent),
                         "ORCHESTRATOR_CACHE_DIR": str(tiny_cache_dir()),
                         "ORCHESTRATOR_WORKERS": "1"}).start(300)
    try:
        assert json.loads((tmp_path / "state" / "daemon.json").read_text())["engine"] != "LocalEngine"
        url, outside = d.url, world["outside"]
        good = [_submit(url, graph_for("onnx", "nets/double")[0])]
        bad = {}
        for field in ("onnx", "lora", "ip_adapter", "checkpoint"):
            for form in ("absolute_existing", "parent", "symlink_out_of_root", "file_url"):
                name = forms(outside, EXT[field])[form]
                graph, node, err_field = graph_for(field, name)
                bad[_submit(url, graph)] = (node, err_field)
        final = wait_final(url, good + list(bad), timeout=900)
        assert final[good[0]]["state"] == "succeeded", final[good[0]]
        for job_id, (node, err_field) in bad.items():
            job = final[job_id]
            assert job["state"] == "failed", job
            (err,) = job["errors"]
            assert (err["type"], err["node"], err["field"]) == ("model", node, err_field), err
            assert SECRET_TENSOR not in json.dumps(err)
    finally:
        d.kill()
