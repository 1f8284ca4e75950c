"""The model commands: ``orchestrator models``, ``models path``, ``export-onnx``."""

from __future__ import annotations

import json

from orchestrator.cli.main import main


def test_models_lists_configured_and_builtin_models(tmp_path, capsys):
    (tmp_path / "config.toml").write_text(
        '[[models]]\nname = "mine"\nsource = "/nowhere/mine.safetensors"\n')
    assert main(["--state-dir", str(tmp_path), "models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-sd" in out and "built on first use" in out and str(tmp_path / "cache") in out
    assert "mine" in out and "error" in out and "/nowhere/mine.safetensors" in out
    assert main(["--state-dir", str(tmp_path), "models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny-sdxl"]["format"] == "diffusers"


def test_models_path_builds_the_tiny_model_and_export_onnx(tmp_path, capsys):
    assert main(["--state-dir", str(tmp_path), "models", "path", "tiny-sd", "--no-build"]) == 0
    folder = capsys.readouterr().out.strip()
    assert folder.endswith("tiny-sd-v1")
    assert main(["--state-dir", str(tmp_path), "models", "path", "tiny-sd"]) == 0
    assert capsys.readouterr().out.strip() == folder
    assert (tmp_path / "cache" / "builtin" / "tiny-sd-v1" / "model_index.json").is_file()
    assert main(["--state-dir", str(tmp_path), "export-onnx", "tiny-sd", "--parts", "vae_decoder"]) == 0
    out = capsys.readouterr().out
    assert "vae_decoder" in out
    assert (tmp_path / "cache" / "onnx" / "tiny-sd" / "vae_decoder" / "model.onnx").is_file()


def test_unknown_model_is_an_error_naming_it(tmp_path, capsys):
    assert main(["--state-dir", str(tmp_path), "models", "path", "dreamshaper"]) == 1
    assert "'dreamshaper' is not configured" in capsys.readouterr().err


def test_plugins_can_register_models_and_the_config_wins(tmp_path, monkeypatch, capsys):
    plugin = tmp_path / "my_models_plugin.py"
    plugin.write_text(
        "from orchestrator import hookimpl\n\n"
        "@hookimpl\n"
        "def register_models():\n"
        "    return [{'name': 'from-plugin', 'source': '/plugin/models/a'},\n"
        "            {'name': 'both', 'source': '/plugin/models/b'}]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "config.toml").write_text(
        '[plugins]\nextra = ["my_models_plugin"]\n[[models]]\nname = "both"\nsource = "/config/models/b"\n')
    assert main(["--state-dir", str(tmp_path), "models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["from-plugin"]["source"] == "/plugin/models/a"
    assert rows["both"]["source"] == "/config/models/b"
