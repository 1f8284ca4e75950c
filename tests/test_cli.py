"""The command line, driven in-process through ``main(argv)``."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from graphs import GraphBuilder
from orchestrator.cli.main import main


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)


def _graph_file(tmp_path, name="g.json", width=6):
    b = GraphBuilder()
    img = b.add("image.solid", width=width, height=4, color=[0.0, 1.0, 0.0])
    gray = b.add("image.grayscale", image=img.image)
    b.add("image.save", id="save", image=gray.image, name="gray")
    path = tmp_path / name
    b.build().dump(path)
    return path


def test_blocks_text_and_json(capsys):
    assert main(["blocks"]) == 0
    assert "image.grayscale" in capsys.readouterr().out
    assert main(["blocks", "--json"]) == 0
    blocks = json.loads(capsys.readouterr().out)
    gray = next(b for b in blocks if b["id"] == "image.grayscale")
    assert gray["inputs"] == [{"name": "image", "type": "IMAGE"}]
    assert gray["params"]["properties"]["channels"]["maximum"] == 3


def test_validate_valid(tmp_path, capsys):
    assert main(["validate", str(_graph_file(tmp_path))]) == 0
    assert "valid (3 nodes)" in capsys.readouterr().out


def test_validate_reports_every_problem_as_json(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": {
        "a": {"block": "image.solid", "params": {"width": -1}},
        "b": {"block": "image.grayscale", "inputs": {"image": "nowhere.image"}},
        "c": {"block": "image.blur_everything"},
        "d": {"block": "image.save"},
    }}))
    assert main(["validate", str(bad), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False
    assert [(e["type"], e["node"], e["field"]) for e in out["errors"]] == [
        ("invalid_param", "a", "params.width"),
        ("dangling_reference", "b", "inputs.image"),
        ("unknown_block", "c", "block"),
        ("missing_input", "d", "inputs.image"),
    ]


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]", "\udcff"])
def test_validate_bad_files_fail_without_traceback(tmp_path, capsys, content):
    path = tmp_path / "f.json"
    if content == "\udcff":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif content is not None:
        path.write_text(content)
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err + captured.out
    assert (captured.err + captured.out).strip()


def test_run_writes_outputs_and_applies_overrides(tmp_path, capsys):
    graph = _graph_file(tmp_path)
    out_dir = tmp_path / "out"
    assert main(["run", "--graph", str(graph), "-o", str(out_dir), "--set", "solid.width=9",
                 "--set", "save.name=\"renamed\""]) == 0
    captured = capsys.readouterr()
    assert str(out_dir / "renamed.png") in captured.out
    assert "solid (image.solid)" in captured.err  # progress on stderr
    img = Image.open(out_dir / "renamed.png")
    assert img.size == (9, 4) and img.getpixel((0, 0)) == (150, 150, 150)


def test_run_json_and_failures(tmp_path, capsys):
    graph = _graph_file(tmp_path)
    assert main(["run", "--graph", str(graph), "-o", str(tmp_path / "o"), "--json", "-q"]) == 0
    assert set(json.loads(capsys.readouterr().out)["timings"]) == {"solid", "grayscale", "save"}
    assert main(["run", "--graph", str(graph), "--set", "solid.width=-5", "--json"]) == 1
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert errors[0]["field"] == "params.width" and errors[0]["value"] == -5
    assert main(["run", "--graph", str(graph), "--set", "nonsense"]) == 2
    assert main(["run", "--graph", str(graph), "--set", "ghost.width=1"]) == 1
    assert "no node 'ghost'" in capsys.readouterr().err


def test_run_block_failure_is_one_clear_line(tmp_path, capsys):
    b = GraphBuilder()
    b.add("image.load", id="load", path="missing.png")
    path = tmp_path / "g.json"
    b.build().dump(path)
    assert main(["run", "--graph", str(path), "-o", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "node 'load'" in err and "missing.png" in err and "Traceback" not in err


def test_plugins_templates_config(capsys, monkeypatch):
    assert main(["plugins"]) == 0
    assert "builtin.image" in capsys.readouterr().out
    assert main(["templates", "--json"]) == 0
    names = {t["name"] for t in json.loads(capsys.readouterr().out)}
    assert {"txt2img", "img2img", "inpaint", "hires_fix"} <= names
    monkeypatch.setenv("ORCHESTRATOR_TOKEN", "s3cret")
    assert main(["config", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["token"] == "***" and shown["cache_dir"].endswith("cache")


def test_usage_errors(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert main(["--config", "/nonexistent.toml", "blocks"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_run_from_png_reruns_the_embedded_graph(tmp_path, capsys):
    graph = _graph_file(tmp_path, width=7)
    assert main(["run", "--graph", str(graph), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert main(["run", "--from-png", str(tmp_path / "a" / "gray.png"), "-o", str(tmp_path / "b"),
                 "-q"]) == 0
    a, b = Image.open(tmp_path / "a" / "gray.png"), Image.open(tmp_path / "b" / "gray.png")
    assert a.size == b.size == (7, 4) and a.tobytes() == b.tobytes()
    plain = tmp_path / "plain.png"
    Image.new("RGB", (2, 2)).save(plain)
    capsys.readouterr()
    assert main(["run", "--from-png", str(plain)]) == 1
    assert "carries no orchestrator graph" in capsys.readouterr().err
    assert main(["run"]) == 2


def test_run_a_prompt_plans_with_the_offline_agent_and_writes_an_image(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "a red fox in the snow", "-o", str(out), "--seed", "3"]) == 0
    captured = capsys.readouterr()
    assert "planned: template" in captured.err
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 1 and (out / "graph.json").exists()
    img = Image.open(pngs[0])
    assert img.width >= 64 and "orchestrator.graph" in img.text
    assert main(["run", "a prompt", "--graph", "x.json"]) == 2
