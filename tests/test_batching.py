"""Cross-job batching (orchestrator.runtime.batching): the batcher, the lanes, the local engine.

The waits here rest on events: batchers get a maximum wait of minutes, so a test passes only
when the batcher goes on the events it should (arrivals, departures), never on a clock;
thread joins have generous timeouts that only a hang reaches.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from batching_provider import MeetAtTheUNet

from graphs import Graph
from orchestrator.config import load_settings
from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.batching import Batching, Lanes, UNetBatcher, plan_call

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread

ROOT = Path(__file__).resolve().parents[1]
LONG = 600_000.0  # ms: a batch never waits this long unless the batcher misses an event
JOIN_S = 120.0
MAX_DIFF: dict[str, float] = {}  # the largest pixel difference seen, by test (printed at the end)


def _run_threads(fns):
    errors: list[BaseException] = []
    results = [None] * len(fns)

    def wrap(i, fn):
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
        assert not t.is_alive(), "a thread hung: the batcher waited for a call that never came"
    return results, errors


# -- the batcher on a plain torch module --------------------------------------------------------------


class Affine:
    """A stand-in UNet: ``sample * 2 + t + mean(encoder_hidden_states)``; raises on a marked sample."""

    def __init__(self):
        self.calls = []

    def forward(self, *a, **k):  # pragma: no cover - the batcher checks it exists
        return self(*a, **k)

    def __call__(self, sample, timestep, encoder_hidden_states=None, return_dict=True, **kwargs):
        import torch

        self.calls.append(sample.shape[0])
        if bool((sample > 1e6).any()):
            raise ValueError("poisoned sample")
        t = torch.as_tensor(timestep, dtype=sample.dtype).reshape(-1)
        t = t.expand(sample.shape[0]) if t.numel() == 1 else t
        text = encoder_hidden_states.mean(dim=(1, 2))[:, None, None, None]
        return (sample * 2 + t[:, None, None, None] + text,)


def _inputs(i, n=2):
    import torch

    g = torch.Generator().manual_seed(i)
    text = torch.randn(n, 77, 32, generator=g)
    return torch.randn(n, 4, 8, 8, generator=g), torch.tensor(900 - 37 * i), text


def test_lanes_rule_and_order():
    lanes = Lanes(max_batch=3)
    assert lanes.admits([], None) and lanes.admits([], "m")
    assert lanes.admits(["m"], "m") and lanes.admits(["m", "m"], None)
    assert not lanes.admits(["m"], "other") and not lanes.admits([None], "m")
    assert not lanes.admits(["m", "m", "m"], "m") and not lanes.admits(["m", None], "m")
    assert not Lanes(1).admits(["m"], "m")  # batching off: one at a time

    order: list[int] = []
    started = [threading.Event() for _ in range(3)]
    release = threading.Event()

    def node(seq):
        def go():
            with lanes.turn("m", seq=seq):
                order.append(seq)
                started[seq].set()
                release.wait(JOIN_S)
        return go

    # sent out of order: each starts only after the lower numbers have started; all three together
    threads = [threading.Thread(target=node(s), daemon=True) for s in (2, 0, 1)]
    for t in threads:
        t.start()
    for e in started:
        assert e.wait(JOIN_S)
    assert order == [0, 1, 2] and lanes.running() == ["m", "m", "m"]
    release.set()
    for t in threads:
        t.join(JOIN_S)
    assert lanes.running() == []


def test_concurrent_calls_run_as_one_batch_and_split_back():
    import torch

    module, batcher = Affine(), UNetBatcher(max_batch=8, max_wait_ms=LONG)
    ins = [_inputs(i, n=1 + i % 2) for i in range(4)]
    ref = [module(x, t, encoder_hidden_states=e, return_dict=False)[0] for x, t, e in ins]
    module.calls.clear()
    scopes = [batcher.scope(None, batch=True, label=str(i)) for i in range(4)]

    def job(i):
        x, t, e = ins[i]
        try:
            return batcher.call(scopes[i].participant, module, (x, t),
                                {"encoder_hidden_states": e, "return_dict": False})[0]
        finally:
            scopes[i].close()

    outs, _ = _run_threads([lambda i=i: job(i) for i in range(4)])
    assert module.calls == [6]  # one call of 1+2+1+2 samples
    for o, r in zip(outs, ref, strict=True):
        assert torch.equal(o, r)
    assert batcher.stats()["largest"] == 4 and batcher.stats()["batched_calls"] == 4


def test_a_lone_call_does_not_wait_and_is_untouched():
    module, batcher = Affine(), UNetBatcher(max_batch=8, max_wait_ms=LONG)
    x, t, e = _inputs(0)
    with batcher.scope(None, batch=True) as scope:
        # nobody else could join: it runs at once with its own arguments (a thread hang = a wait)
        (out,), _ = _run_threads([lambda: batcher.call(scope.participant, module, (x, t),
                                                      {"encoder_hidden_states": e, "return_dict": False})])
    assert module.calls == [2]
    assert (out[0] == module(x, t, encoder_hidden_states=e, return_dict=False)[0]).all()


def test_a_batch_does_not_wait_for_a_participant_that_leaves():
    module, batcher = Affine(), UNetBatcher(max_batch=8, max_wait_ms=LONG)
    x, t, e = _inputs(1)
    a, b = batcher.scope(None, batch=True), batcher.scope(None, batch=True)  # b never calls
    result: list = []
    th = threading.Thread(target=lambda: result.append(batcher.call(
        a.participant, module, (x, t), {"encoder_hidden_states": e, "return_dict": False})), daemon=True)
    th.start()
    # a waits for b (expected: a sampling node that has not called yet) until b leaves
    b.close()
    th.join(JOIN_S)
    assert not th.is_alive() and result and module.calls == [2]
    a.close()


def test_a_failing_call_fails_alone_and_the_others_get_their_results():
    import torch

    module, batcher = Affine(), UNetBatcher(max_batch=8, max_wait_ms=LONG)
    ins = [_inputs(i) for i in range(3)]
    ins[1] = (ins[1][0] + 1e7, ins[1][1], ins[1][2])  # the poisoned one
    scopes = [batcher.scope(None, batch=True) for _ in range(3)]

    def job(i):
        x, t, e = ins[i]
        try:
            return batcher.call(scopes[i].participant, module, (x, t),
                                {"encoder_hidden_states": e, "return_dict": False})[0]
        finally:
            scopes[i].close()

    outs, _ = _run_threads([lambda i=i: job(i) for i in range(3)])
    assert isinstance(outs[1], ValueError)
    for i in (0, 2):
        x, t, e = ins[i]
        assert torch.equal(outs[i], module(x, t, encoder_hidden_states=e, return_dict=False)[0])
    assert module.calls[0] == 6  # tried as one batch first


def test_what_cannot_be_batched_runs_alone():
    import torch

    x, t, e = _inputs(0)
    assert plan_call(Affine(), (x, t), {"encoder_hidden_states": e, "return_dict": False}).key is not None
    residuals = {"down_block_additional_residuals": (torch.zeros(2, 4),), "return_dict": False}
    assert plan_call(Affine(), (x, t), {"encoder_hidden_states": e, **residuals}).key is None
    assert plan_call(Affine(), (x, t), {"encoder_hidden_states": e}).key is None  # return_dict True
    assert plan_call(Affine(), (x, t), {"encoder_hidden_states": e, "return_dict": False,
                                        "cross_attention_kwargs": {"scale": 0.5}}).key is None
    # timesteps of another batch size, text of another length: other keys, never mixed
    k = plan_call(Affine(), (x, t), {"encoder_hidden_states": e, "return_dict": False}).key
    k2 = plan_call(Affine(), (x, t), {"encoder_hidden_states": e[:, :70], "return_dict": False}).key
    k3 = plan_call(Affine(), (x[:, :, :4], t), {"encoder_hidden_states": e, "return_dict": False}).key
    assert len({k, k2, k3}) == 3


def test_settings_section():
    s = load_settings(config_file=None, env={"ORCHESTRATOR_BATCHING__MAX_BATCH": "4"})
    assert s.batching.enabled and s.batching.max_batch == 4 and Batching.from_settings(s).max_batch == 4
    off = load_settings(config_file=None, env={"ORCHESTRATOR_BATCHING__ENABLED": "false"})
    assert Batching.from_settings(off).max_batch == 1 and not Batching.from_settings(off).enabled
    with pytest.raises(Exception, match="max_batch"):
        load_settings(config_file=None, env={}, overrides={"batching": {"max_batch": 0}})


# -- jobs in the local engine ---------------------------------------------------------------------------


def _graph(template: str, **denoise) -> Graph:
    doc = json.loads((ROOT / "graphs" / "library" / f"{template}.json").read_text())
    nodes = doc["nodes"]
    for key in ("prompt", "negative_prompt"):
        if key in denoise:
            nodes["cond"]["params"][key] = denoise.pop(key)
    for key in ("width", "height"):
        if key in denoise:
            nodes["latent"]["params"][key] = denoise.pop(key)
    nodes["denoise"]["params"].update(denoise)
    return Graph.from_dict(doc)


def _engine(tmp_path, max_batch=8, max_wait_ms=LONG):
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.engine import LocalEngine

    settings = load_settings(config_file=None, env={}, overrides={
        "state_dir": tmp_path / "state", "cache_dir": sd_fixtures.tiny_cache_dir(), "device": "cpu",
        "batching": {"max_batch": max_batch, "max_wait_ms": min(max_wait_ms, 1000.0)}})
    engine = LocalEngine(load_plugins(entry_points=False).catalog, settings)
    engine.batching = Batching(max_batch, max_wait_ms)  # the settings bound the wait to 1 s
    engine.capacity = max_batch
    return engine


def _reference(models, graphs):
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.executor import LocalExecutor

    ex = LocalExecutor(load_plugins(entry_points=False).catalog, models=models)
    return [ex.run(g).outputs["decode"]["image"] for g in graphs]


def _run_together(engine, graphs, tmp_path, *, on_step=None):
    """Run ``graphs`` as concurrent jobs on ``engine``; their sampling loops start together."""
    from orchestrator.runtime.compile import compile_graph

    engine.models = MeetAtTheUNet(engine.models, len(graphs), timeout=JOIN_S)
    cancelled = {i: threading.Event() for i in range(len(graphs))}

    def job(i):
        def on_event(e):
            if e.get("event") == "step" and e.get("node") == "denoise" and on_step is not None:
                on_step(i, e["step"], cancelled[i])

        compiled = compile_graph(graphs[i], engine.catalog)
        return engine.run(compiled, job=f"job{i}", priority=0, outputs_dir=tmp_path / f"out{i}",
                          on_event=on_event, is_cancelled=cancelled[i].is_set)

    results, _ = _run_threads([lambda i=i: job(i) for i in range(len(graphs))])
    return results


def _check(name, results, refs, skip=()):
    worst = 0.0
    for i, (r, ref) in enumerate(zip(results, refs, strict=True)):
        if i in skip:
            continue
        assert not isinstance(r, BaseException), r
        diff = float(np.abs(np.asarray(r.outputs["decode"]["image"]) - np.asarray(ref)).max())
        assert diff <= 1 / 255, f"job {i}: max pixel difference {diff}"
        worst = max(worst, diff)
    MAX_DIFF[name] = worst
    print(f"\n{name}: largest pixel difference batched vs alone {worst:.3g}")
    return worst


def test_local_engine_batches_different_prompts_seeds_guidance_steps(models, tmp_path):
    graphs = [
        _graph("txt2img", prompt="a red fox in the snow", seed=1, cfg=7.5, steps=6),
        _graph("txt2img", prompt="a lighthouse at dusk", seed=2, cfg=3.0, steps=8),
        _graph("txt2img", prompt="a bowl of fruit", negative_prompt="blurry", seed=3, cfg=1.0, steps=5),
        _graph("txt2img", prompt="a city at night", seed=4, cfg=7.5, steps=6, sampler="pndm"),
        _graph("txt2img", prompt="a tall tower", seed=5, steps=6, width=64, height=96),  # another shape
    ]
    refs = _reference(models, graphs)
    engine = _engine(tmp_path)
    results = _run_together(engine, graphs, tmp_path)
    _check("txt2img", results, refs)
    stats = engine.stats()["batching"]
    assert stats["batched_calls"] >= 3 * 4 and stats["largest"] >= 3, stats
    assert stats["participants"] == 0 and stats["running"] == 0  # every node left


def test_local_engine_batches_sdxl_added_conditioning(models, tmp_path):
    graphs = [_graph("sdxl_txt2img", prompt=p, seed=s, cfg=c, steps=4)
              for p, s, c in (("a lighthouse", 1, 5.0), ("a forest", 2, 1.0), ("a desert", 3, 9.0))]
    refs = _reference(models, graphs)
    engine = _engine(tmp_path)
    _check("sdxl", _run_together(engine, graphs, tmp_path), refs)
    assert engine.stats()["batching"]["largest"] == 3


def test_cancelling_one_job_of_a_batch_leaves_the_others_to_finish(models, tmp_path):
    graphs = [_graph("txt2img", prompt=f"prompt {i}", seed=10 + i, steps=8) for i in range(3)]
    refs = _reference(models, graphs)
    engine = _engine(tmp_path)

    def on_step(i, step, cancel):
        if i == 1 and step == 3:
            cancel.set()

    results = _run_together(engine, graphs, tmp_path, on_step=on_step)
    assert isinstance(results[1], (JobError, BlockError)) and results[1].type == "cancelled"
    _check("cancel", results, refs, skip={1})
    assert engine.stats()["batching"]["batched_calls"] > 0


def test_a_job_failing_mid_batch_leaves_the_others_to_finish(models, tmp_path):
    graphs = [_graph("txt2img", prompt=f"prompt {i}", seed=20 + i, steps=8) for i in range(3)]
    refs = _reference(models, graphs)
    engine = _engine(tmp_path)

    def on_step(i, step, _cancel):
        if i == 0 and step == 4:
            raise RuntimeError("boom at step 4")

    results = _run_together(engine, graphs, tmp_path, on_step=on_step)
    assert isinstance(results[0], BlockError) and "boom" in results[0].message
    _check("failure", results, refs, skip={0})


def test_without_batching_the_engine_runs_one_node_at_a_time(models, tmp_path):
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.engine import LocalEngine

    settings = load_settings(config_file=None, env={}, overrides={
        "state_dir": tmp_path / "state", "cache_dir": sd_fixtures.tiny_cache_dir(), "device": "cpu",
        "batching": {"enabled": False}})
    engine = LocalEngine(load_plugins(entry_points=False).catalog, settings)
    assert engine.capacity == 1 and not engine.batching.enabled
    assert engine.has_room(0) and not engine.has_room(1)
