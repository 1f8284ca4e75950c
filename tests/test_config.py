"""Settings: defaults < TOML file < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_settings


def test_precedence(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = 1000\nhost = "0.0.0.0"\n[plugins]\nstrict = true\nallow = ["x"]\n'
                   '[[models]]\nname = "m"\nsource = "/models/m.safetensors"\n')
    s = load_settings(config_file=cfg, env={"ORCHESTRATOR_PORT": "2000"},
                      overrides={"host": "127.0.0.2"})
    assert s.port == 2000 and s.host == "127.0.0.2" and s.plugins.strict is True
    assert s.plugins.allow == ["x"] and s.models[0]["name"] == "m"


def test_defaults_and_state_dir_file(tmp_path):
    s = load_settings(config_file=None, env={})
    assert s.port == 8188 and s.host == "127.0.0.1" and s.plugins.allow is None
    (tmp_path / "config.toml").write_text("workers = 3\n")
    s = load_settings(env={"ORCHESTRATOR_STATE_DIR": str(tmp_path)})
    assert s.workers == 3 and s.effective_cache_dir == Path(tmp_path) / "cache"


def test_named_config_via_env(tmp_path):
    cfg = tmp_path / "named.toml"
    cfg.write_text('device = "cpu"\n')
    assert load_settings(env={"ORCHESTRATOR_CONFIG": str(cfg)}).device == "cpu"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("port = [", {}, "not valid TOML"),
        ("port = 99999", {}, "port"),
        ("colour = 1", {}, "colour"),
        ("", {"ORCHESTRATOR_WORKERS": "many"}, "workers"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, text, env, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(config_file=cfg, env=env)
    assert info.value.to_dict()["type"] == "config"


def test_unknown_env_vars_are_ignored():
    s = load_settings(config_file=None, env={"ORCHESTRATOR_SOMETHING_ELSE": "1"})
    assert s.workers == 0
