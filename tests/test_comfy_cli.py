"""``orchestrator import-comfy`` / ``export-comfy`` on each input kind, in-process through ``main``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from graphs import Graph
from orchestrator.cli.main import main

DATA = Path(__file__).parent / "data" / "comfy"
MAP = ["--model-map", "v1-5-pruned-emaonly-fp16=tiny-sd"]


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_PLUGINS__EXTRA", raising=False)


def _png(tmp_path: Path, **chunks: str) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    path = tmp_path / "ComfyUI_00001_.png"
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG", pnginfo=info)
    path.write_bytes(out.getvalue())
    return path


def test_api_ui_and_png_inputs_give_the_same_graph(tmp_path, capsys):
    ui_text = (DATA / "txt2img_ui.json").read_text()
    sources = {"api": DATA / "txt2img_api.json", "ui": DATA / "txt2img_ui.json",
               "png": _png(tmp_path, workflow=ui_text)}
    graphs = {}
    for kind, source in sources.items():
        out = tmp_path / f"{kind}.json"
        assert main(["import-comfy", str(source), "-o", str(out), *MAP]) == 0
        graphs[kind] = Graph.load(out)
        err = capsys.readouterr().err
        assert "7 ComfyUI nodes -> 5 nodes" in err and "0 error(s), 0 warning(s)" in err
    assert graphs["api"] == graphs["ui"] == graphs["png"]
    assert main(["validate", str(tmp_path / "png.json")]) == 0


def test_problems_are_printed_the_graph_written_and_the_status_is_1(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["import-comfy", str(DATA / "custom_nodes_api.json"), "-o", str(out), "--json",
                 "--model-map", "dreamshaper_8=tiny-sd"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["format"] == "api" and report["nodes"] == 8
    assert [(e["type"], e["node"]) for e in report["errors"]] == [
        ("unsupported_node", n) for n in ("21", "23", "25", "26")]
    # the ControlNet's model is not in the model map: a warning, the name is kept (dpmpp_2m_sde with
    # karras is ComfyUI's own sampler now, no longer approximated)
    assert [w["type"] for w in report["warnings"]] == ["unmapped_model"]
    assert set(Graph.load(out).nodes) == {"clip_text_encode_6", "empty_latent_image_5", "ksampler_3",
                                          "vae_decode_8", "save_image_24", "load_image_11", "canny_12",
                                          "control_net_apply_advanced_20"}


def test_graph_to_stdout_and_text_problems(tmp_path, capsys):
    assert main(["import-comfy", str(DATA / "inpaint_ui.json"), "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert Graph.from_json(captured.out).nodes["ksampler_3"].block == "sd.ksampler"
    assert "[unmapped_model] ComfyUI model 'anything-v3-fp16-pruned.safetensors'" in captured.err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["import-comfy", "nowhere.json", "-o", "g.json"], 1, "no such file"),
    (["import-comfy", str(DATA / "txt2img_api.json"), "-o", "g.json", "--model-map", "x"], 2,
     "COMFY_NAME=OUR_NAME"),
])
def test_bad_command_lines(argv, code, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    assert message in capsys.readouterr().err


def test_not_a_workflow_is_an_error_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": {}}')
    assert main(["import-comfy", str(bad), "-o", str(tmp_path / "g.json")]) == 1
    err = capsys.readouterr().err
    assert "not a ComfyUI workflow" in err and "Traceback" not in err


def test_export_comfy_writes_an_api_prompt(tmp_path, capsys):
    graph = tmp_path / "g.json"
    assert main(["import-comfy", str(DATA / "txt2img_ui.json"), "-o", str(graph), *MAP]) == 0
    prompt = tmp_path / "prompt.json"
    assert main(["export-comfy", str(graph), "-o", str(prompt)]) == 0
    data = json.loads(prompt.read_text())
    assert sorted(n["class_type"] for n in data.values()) == [
        "CLIPTextEncode", "CLIPTextEncode", "CheckpointLoaderSimple", "EmptyLatentImage", "KSampler",
        "SaveImage", "VAEDecode"]
    assert data["3"]["inputs"]["seed"] == 156680208700286
    ckpt = data[data["3"]["inputs"]["model"][0]]
    assert ckpt["inputs"] == {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"}


def test_plugin_mappings_reach_the_cli(tmp_path, capsys, monkeypatch):
    from test_comfy_plugin import workflow_ui

    source = tmp_path / "invert.json"
    source.write_text(json.dumps(workflow_ui()))
    out = tmp_path / "g.json"
    assert main(["import-comfy", str(source), "-o", str(out)]) == 1  # no plugin: unsupported
    monkeypatch.setenv("ORCHESTRATOR_PLUGINS__EXTRA", "test_comfy_plugin")
    assert main(["import-comfy", str(source), "-o", str(out)]) == 0
    assert Graph.load(out).nodes["image_invert_3"].block == "comfytest.invert"
