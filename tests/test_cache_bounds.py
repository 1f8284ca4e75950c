"""The result caches of both engines are bounded in entries and in measured bytes (LRU)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from graphs import GraphBuilder
from orchestrator.config import load_settings
from orchestrator.runtime.cache import BoundedLRU, ResultCache, default_max_bytes, measure_bytes
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.runtime.jobs import ObjectCache

MB = 1 << 20


@dataclass
class Cond:
    embeds: torch.Tensor
    pooled: torch.Tensor
    note: str = "x"


def test_measure_bytes_counts_the_buffers_that_outputs_hold():
    arr = np.zeros((512, 512, 3), dtype=np.float32)
    assert arr.nbytes <= measure_bytes(arr) < arr.nbytes + 1024
    view = arr[:8]  # a view keeps the whole base alive: the whole base counts
    assert measure_bytes(view) >= arr.nbytes
    t = torch.zeros(4, 77, 768)
    assert t.nbytes <= measure_bytes(t) < t.nbytes + 1024
    assert measure_bytes(t[0]) >= t.nbytes  # a slice holds the whole storage
    img = Image.new("RGB", (300, 200))
    assert 300 * 200 * 3 <= measure_bytes(img) < 300 * 200 * 3 + 1024
    assert measure_bytes(Image.new("F", (100, 100))) >= 100 * 100 * 4
    assert measure_bytes(b"x" * MB) >= MB
    nested = {"image": arr, "list": [t, {"deep": (img, b"y" * 1000)}], "n": 3}
    assert measure_bytes(nested) >= arr.nbytes + t.nbytes + 300 * 200 * 3 + 1000
    cond = Cond(embeds=torch.ones(2, 77, 64), pooled=torch.ones(2, 64))
    assert measure_bytes({"cond": cond}) >= cond.embeds.nbytes + cond.pooled.nbytes


def test_a_model_an_output_refers_to_is_not_counted_as_the_outputs_memory():
    model = torch.nn.Linear(512, 512)  # 1 MiB of weights, held by the model manager
    latent = torch.zeros(1, 4, 8, 8)
    size = measure_bytes({"latent": latent, "guider": {"model": model, "cfg": 7.0}})
    assert latent.nbytes <= size < 64 * 1024


def test_measure_bytes_counts_a_shared_buffer_once_and_survives_cycles():
    arr = np.ones((256, 256), dtype=np.float64)
    once = measure_bytes(arr)
    assert measure_bytes({"a": arr, "b": [arr, arr[1:], arr.T]}) < 2 * once
    t = torch.ones(128, 128)
    assert measure_bytes([t, t[1:], t.view(-1)]) < 2 * t.nbytes
    loop: list = [arr]
    loop.append(loop)
    assert once <= measure_bytes(loop) < 2 * once
    deep: list = []
    cur = deep
    for _ in range(10_000):  # deeper than any recursion limit: counted, not crashed
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    assert measure_bytes(deep) > 0


@pytest.mark.parametrize("cache_cls", [ResultCache, ObjectCache])
def test_filling_past_the_budget_keeps_the_bound_and_the_newest(cache_cls):
    budget = 5 * MB
    cache = cache_cls(max_entries=1000, max_bytes=budget)
    values = {}
    for i in range(40):
        value = np.full((MB // 8,), float(i))  # 1 MiB each
        values[f"k{i}"] = value
        if cache_cls is ResultCache:
            assert cache.put(f"k{i}", {"out": value})
        else:
            cache.put(f"k{i}", value, measure_bytes(value))
        assert cache.bytes <= budget and len(cache) <= 5
    assert len(cache) == 4  # 4 x (1 MiB + overhead) fit in 5 MiB, a fifth does not
    for i in range(36, 40):  # the newest four, unchanged
        got = cache.get(f"k{i}")
        got = got["out"] if isinstance(got, dict) else got
        assert got is values[f"k{i}"] and float(got[0]) == i
    assert cache.get("k0") is None and cache.stats()["evictions"] == 36


def test_lru_order_entry_bound_and_an_entry_larger_than_the_budget():
    cache = ResultCache(max_entries=3, max_bytes=10 * MB)
    for k in "abc":
        cache.put(k, {"v": k})
    assert cache.get("a") == {"v": "a"}  # a is now the most recent
    cache.put("d", {"v": "d"})
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    small = cache.bytes
    assert cache.put("huge", {"v": np.zeros(11 * MB, dtype=np.uint8)}) is False
    assert "huge" not in cache and cache.bytes == small and len(cache) == 3  # nothing evicted for it
    cache.put("a", {"v": "a"})
    assert cache.put("a", {"v": np.zeros(11 * MB, dtype=np.uint8)}) is False
    assert "a" not in cache  # the stale smaller entry under that key is gone too
    assert cache.stats()["refused"] == 2 and cache.bytes <= cache.max_bytes


def test_zero_entries_disables_the_cache():
    cache = BoundedLRU(max_entries=0, max_bytes=MB)
    assert cache.put("a", 1, 1) is False and len(cache) == 0 and cache.get("a") is None


def test_default_budget_is_a_capped_fraction_of_memory():
    assert default_max_bytes(16 << 30) == 2 << 30
    assert default_max_bytes(256 << 30) == 4 << 30
    assert default_max_bytes(128 << 20) == 64 << 20
    assert 64 << 20 <= ResultCache().max_bytes <= 4 << 30


def test_settings_size_both_engines_caches(tmp_path):
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.engine import LocalEngine

    s = load_settings(config_file=None, env={}, overrides={
        "state_dir": tmp_path, "cache": {"max_entries": 7, "max_bytes": 3 * MB}})
    engine = LocalEngine(load_plugins(entry_points=False).catalog, s)
    stats = engine.stats()["cache"]
    assert stats["max_entries"] == 7 and stats["max_bytes"] == 3 * MB
    with pytest.raises(Exception, match="max_bytes"):
        load_settings(config_file=None, env={}, overrides={"cache": {"max_bytes": -1}})


def test_a_bounded_cache_keeps_results_correct(catalog, tmp_path):
    """Images of ~0.75 MiB each through a 2 MiB cache: at most two stay, every run is right."""

    def graph(i: int):
        b = GraphBuilder()
        img = b.add("image.solid", id=f"solid{i}", width=256, height=256,
                    color=[i / 10, 0.5, 1 - i / 10])
        b.add("image.grayscale", id=f"gray{i}", image=img.image)
        return b.build()

    reference = {i: LocalExecutor(catalog).run(graph(i)).outputs for i in range(6)}
    cache = ResultCache(max_entries=100, max_bytes=2 * MB)
    ex = LocalExecutor(catalog, cache=cache)
    for _round in range(3):
        for i in range(6):
            result = ex.run(graph(i))
            assert cache.bytes <= 2 * MB
            for node, outs in reference[i].items():
                np.testing.assert_array_equal(np.asarray(result.outputs[node]["image"]),
                                              np.asarray(outs["image"]))
    assert 0 < len(cache) <= 3 and cache.stats()["evictions"] > 0
    last = ex.run(graph(5))  # the newest graph's nodes are still cached
    assert last.cached
