"""Cross-job batching of the text encoder and the VAE decoder (issue 20 follow-up): several
jobs' prompt encodings and decodes of one shape run as one call, each job gets exactly what a
call of its own gives. Waits rest on events (a batcher wait of minutes), as in test_batching."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.runtime.batching import UNetBatcher, plan_generic, split_output, unwrap

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread
LONG = 600_000.0
JOIN_S = 120.0


def _together(fns):
    results: list = [None] * len(fns)

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
    return results


def _ids(models, text):
    from plugins.sd.prompt import token_windows

    return token_windows(models.load("tiny-sd", "tokenizer"), text)[0].input_ids


@pytest.mark.parametrize("skip", [False, True])
def test_text_encoder_calls_of_several_nodes_run_as_one(models, skip):
    """Four nodes encode at once through their scopes' models: one text-encoder call, each node's
    output (a ModelOutput, hidden states too with clip_skip's output_hidden_states) equal to its
    own call's."""
    import torch

    batcher = UNetBatcher(max_batch=8, max_wait_ms=LONG)
    te = models.load("tiny-sd", "text_encoder")
    ids = [_ids(models, f"a red fox, take {i}") for i in range(4)]
    kw = {"output_hidden_states": True} if skip else {}
    with torch.no_grad():
        refs = [te(x, **kw) for x in ids]
    scopes = [batcher.scope(models, batch=True, label=str(i)) for i in range(4)]
    encoders = [s.models.load("tiny-sd", "text_encoder") for s in scopes]  # each node asks first
    assert unwrap(encoders[0]) is te and encoders[0].config is te.config

    def node(i):
        try:
            with torch.no_grad():
                return encoders[i](ids[i], **kw)
        finally:
            scopes[i].close()

    outs = _together([lambda i=i: node(i) for i in range(4)])
    for out, ref in zip(outs, refs, strict=True):
        assert type(out) is type(ref)
        assert torch.allclose(out[0], ref[0], atol=1e-5) and out[0].shape == ref[0].shape
        if skip:
            assert len(out.hidden_states) == len(ref.hidden_states)
            assert torch.allclose(out.hidden_states[-2], ref.hidden_states[-2], atol=1e-5)
    s = batcher.stats()
    assert s["largest"] == 4 and s["batched_calls"] == 4 and s["batches"] == 1, s


def test_vae_decodes_of_several_nodes_run_as_one_and_encode_is_untouched(models):
    import torch

    batcher = UNetBatcher(max_batch=8, max_wait_ms=LONG)
    vae = models.load("tiny-sd", "vae")
    z = [torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    with torch.no_grad():
        refs = [vae.decode(x, return_dict=False)[0] for x in z]
    scopes = [batcher.scope(models, batch=True) for _ in range(3)]
    vaes = [s.models.load("tiny-sd", "vae") for s in scopes]

    def node(i):
        try:
            with torch.no_grad():
                return vaes[i].decode(z[i], return_dict=False)[0]
        finally:
            scopes[i].close()

    outs = _together([lambda i=i: node(i) for i in range(3)])
    for out, ref in zip(outs, refs, strict=True):
        assert out.shape == ref.shape and float((out - ref).abs().max()) < 1e-4
    assert batcher.stats()["largest"] == 3
    # what is not a decode is the module's own, not batched
    with torch.no_grad():
        enc = vaes[0].encode(refs[0]).latent_dist.mean
        assert torch.equal(enc, vae.encode(refs[0]).latent_dist.mean)
    assert batcher.stats()["calls"] == 3


def test_a_lone_decode_and_a_node_still_loading_do_not_make_a_batch_wait(models):
    """A lone call runs at once; a node that is still asking for its model (here: blocked in the
    provider) is not waited for by another model's batch (a hang is the failure)."""
    import torch

    batcher = UNetBatcher(max_batch=8, max_wait_ms=LONG)
    release, asked = threading.Event(), threading.Event()

    class Slow:
        def load(self, ref, component=None, *, device="cpu"):
            asked.set()
            release.wait(JOIN_S)
            return models.load(ref, component, device=device)

    other = batcher.scope(Slow(), batch=True, label="loading")
    t = threading.Thread(target=lambda: other.models.load("tiny-sd", "unet"), daemon=True)
    t.start()
    assert asked.wait(JOIN_S)
    with batcher.scope(models, batch=True) as scope:
        vae = scope.models.load("tiny-sd", "vae")
        z = torch.randn(1, 4, 8, 8)
        (out,) = _together([lambda: vae.decode(z, return_dict=False)[0]])
    assert out.shape[0] == 1
    release.set()
    t.join(JOIN_S)
    other.close()


def test_what_cannot_be_batched_or_split():
    import torch

    x = torch.zeros(2, 3)
    assert plan_generic(object(), print, "t", (x,), {"flag": True, "n": None}).key is not None
    assert plan_generic(object(), print, "t", (x, torch.zeros(3, 3)), {}).key is None  # two batch sizes
    assert plan_generic(object(), print, "t", (x,), {"extra": [1, 2]}).key is None  # a list: not ours
    assert plan_generic(object(), print, "t", (), {"x": x}).key is None  # no leading tensor
    parts = split_output((torch.arange(6).reshape(3, 2), None), [1, 2])
    assert parts[0][0].tolist() == [[0, 1]] and parts[1][1] is None
    with pytest.raises(TypeError):
        split_output(torch.zeros(4), [1, 2])
    with pytest.raises(TypeError):
        split_output("text", [1])


def test_tokenizing_from_several_threads_keeps_every_window_padded(models):
    """A fast tokenizer's padding settings live on its shared object: unguarded, two encodings at
    once gave one of them unpadded ids (seen: 4 of 1200 calls)."""
    from plugins.sd.prompt import token_windows

    tok = models.load("tiny-sd", "tokenizer")
    bad: list = []

    def go(i):
        for k in range(150):
            w = token_windows(tok, f"prompt {i} {k}")
            if w[0].input_ids.shape[1] != tok.model_max_length:
                bad.append(tuple(w[0].input_ids.shape))

    _together([lambda i=i: go(i) for i in range(4)])
    assert bad == []


def test_nodes_side_by_side_find_torch_imported_whole():
    """Two nodes of a batch lane starting at once in a fresh process (a new worker): each body
    starts with torch fully imported (two threads importing it at once can leave one with a
    half-initialised module: seen as "module 'torch' has no attribute 'nn'" in a worker)."""
    import subprocess

    code = (
        "import sys, threading\n"
        "from orchestrator.runtime.batching import Lanes\n"
        "assert 'torch' not in sys.modules\n"
        "lanes, seen = Lanes(4), []\n"
        "def node():\n"
        "    with lanes.turn('tiny-sd'):\n"
        "        seen.append(hasattr(sys.modules.get('torch'), 'nn'))\n"
        "ts = [threading.Thread(target=node) for _ in range(3)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(seen)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[True, True, True]", out.stdout
