"""N variations of a graph or a prompt (seeds s, s+1, ...) run together so that they batch:
``seed_variations``, ``orchestrator run --variations``, ``Client.submit_variations`` and
``orchestrator submit --variations`` against a real daemon (local engine, batching on)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from daemon_process import Daemon

from orchestrator.cli.main import main
from orchestrator.client import seed_variations, submit_variations

ROOT = Path(__file__).resolve().parents[1]


def _txt2img(steps: int = 3) -> dict:
    doc = json.loads((ROOT / "graphs" / "library" / "txt2img.json").read_text())
    doc["nodes"]["denoise"]["params"]["steps"] = steps
    return doc


def test_seed_variations_changes_only_the_seeds():
    doc = _txt2img()
    before = json.dumps(doc, sort_keys=True)
    out = seed_variations(doc, 3, {"sd.denoise"}, base=None)
    assert json.dumps(doc, sort_keys=True) == before  # the input is left alone
    assert [v["nodes"]["denoise"]["params"]["seed"] for v in out] == [7, 8, 9]  # the template's 7
    assert [v["nodes"]["denoise"]["params"]["seed"] for v in seed_variations(doc, 2, {"sd.denoise"}, 40)] \
        == [40, 41]
    for v in out:
        v["nodes"]["denoise"]["params"].pop("seed")
        assert json.dumps(v, sort_keys=True) == json.dumps(
            {**doc, "nodes": {**doc["nodes"], "denoise": {**doc["nodes"]["denoise"], "params": {
                k: x for k, x in doc["nodes"]["denoise"]["params"].items() if k != "seed"}}}}, sort_keys=True)
    unseeded = {"format": "orchestrator.graph/1", "nodes": {"d": {"block": "sd.denoise", "params": {}}}}
    assert [v["nodes"]["d"]["params"]["seed"] for v in seed_variations(unseeded, 2, {"sd.denoise"})] == [0, 1]
    with pytest.raises(ValueError, match="at least 1"):
        seed_variations(doc, 0, {"sd.denoise"})


@pytest.fixture()
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(sd_fixtures.tiny_cache_dir()))
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_DEVICE", "cpu")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_run_variations_batch_and_equal_single_runs(cli_env, tmp_path, capsys):
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(_txt2img()))
    args = ["run", "--graph", str(graph), "--variations", "3", "--seed", "5", "-o", str(tmp_path / "v")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "3/3 variations" in err
    images = [_pixels(next((tmp_path / "v" / f"variation-{k}").glob("*.png"))) for k in (1, 2, 3)]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])
    for k in range(3):  # each equals the same graph run alone with that seed (8-bit PNGs: within 1)
        out = tmp_path / f"alone{k}"
        args = ["run", "--graph", str(graph), "--set", f"denoise.seed={5 + k}", "-o", str(out), "-q"]
        assert main(args) == 0
        alone = _pixels(next(out.glob("*.png")))
        assert int(np.abs(alone - images[k]).max()) <= 1
    assert main(["run", "--graph", str(graph), "--variations", "0"]) == 2


@pytest.fixture()
def tiny_daemon(state):
    d = Daemon(state, env={"ORCHESTRATOR_CACHE_DIR": str(sd_fixtures.tiny_cache_dir()),
                           "ORCHESTRATOR_DEVICE": "cpu"}).start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.kill()


@pytest.mark.slow
def test_submit_variations_to_a_daemon(tiny_daemon, tmp_path):
    with tiny_daemon.client() as c:
        jobs = submit_variations(c, 3, graph=_txt2img(), seed=11, name="fox")
        infos = [j.wait(timeout=300) for j in jobs]
        assert [i["state"] for i in infos] == ["succeeded"] * 3
        assert [i["graph"]["nodes"]["denoise"]["params"]["seed"] for i in infos] == [11, 12, 13]
        assert [i["name"] for i in infos] == ["fox #1", "fox #2", "fox #3"]
        prompts = submit_variations(c, 2, prompt="a red fox in the snow", seed=3)
        planned = [j.wait(timeout=300) for j in prompts]
        assert [i["state"] for i in planned] == ["succeeded"] * 2
        seeds = [{n["params"].get("seed") for n in i["graph"]["nodes"].values() if "seed" in n["params"]}
                 for i in planned]
        assert seeds[0] != seeds[1]
        with pytest.raises(ValueError):
            submit_variations(c, 0, graph=_txt2img())


@pytest.mark.slow
def test_submit_variations_from_the_cli(tiny_daemon, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tiny_daemon.state))
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(_txt2img()))
    out = tmp_path / "out"
    code = main(["submit", "--graph", str(graph), "--variations", "2", "-o", str(out),
                 "--url", tiny_daemon.url])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len([line for line in captured.out.splitlines() if "/" not in line]) == 2  # the job ids
    assert sorted(p.parent.name for p in out.glob("*/*.png")) == ["variation-1", "variation-2"]
    assert main(["submit", "--graph", str(graph), "--variations", "2", "--idempotency-key", "k",
                 "--url", tiny_daemon.url]) == 2
