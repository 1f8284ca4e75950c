"""The scheduler's rules without Ray: :class:`orchestrator.runtime.dagrun.DagRun` driven by a fake port,
a pool of worker slots without actors and a clock the test moves.

Readiness, priority and round robin, pinning behind an upstream, CPU task slots, the retry
policy when a worker dies, node timeouts and cancellation grace, cache hits.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

import orchestrator.runtime.dagrun
from graphs import GraphBuilder
from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.compile import compile_graph
from orchestrator.runtime.dagrun import DagRun
from orchestrator.runtime.jobs import JobHandle, JobState, ObjectCache, Running
from orchestrator.runtime.pool import DEAD, READY, WorkerPool, WorkerSlot
from orchestrator.runtime.worker import WorkerConfig, plugin_host
from orchestrator.state.outputs import DirectorySink

TESTS = str(Path(__file__).parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
CONFIG = WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(TESTS,), entry_points=False)


class FakeWorker:
    def __init__(self, name: str) -> None:
        self.name = name


class LocalPool(WorkerPool):
    """The real placement rules (``free``, ``pick``, ``record``) over slots without actors."""

    def __init__(self, size: int) -> None:  # no Ray: none of the parent's set-up
        self.slots = [self._slot(i, 1) for i in range(size)]
        self.error = None
        self.gpu = True
        self.replaced: list[WorkerSlot] = []

    def _slot(self, index: int, generation: int) -> WorkerSlot:
        return WorkerSlot(index=index, generation=generation, worker=FakeWorker(f"w{index}.{generation}"),
                          state=READY)

    def replace(self, slot: WorkerSlot) -> WorkerSlot:
        slot.state = DEAD
        self.replaced.append(slot)
        new = self._slot(slot.index, slot.generation + 1)
        self.slots[slot.index] = new
        return new


class FakePort:
    """Records what the DagRun sends and stops; refs are plain strings."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None, list[Any]]] = []  # job, node, worker, upstream
        self.stopped: list[tuple[str, str]] = []
        self.forced: list[str] = []
        self.refuse: set[str] = set()

    def send(self, slot: WorkerSlot | None, request: dict[str, Any], upstream: list[Any]) -> tuple[Any, Any]:
        if request["node"] in self.refuse:
            raise TypeError("cannot pickle this")
        n = len(self.sent)
        self.sent.append((request["job"], request["node"], slot.name if slot else None, list(upstream)))
        return f"out:{request['node']}:{n}", f"meta:{request['node']}:{n}"

    def stop(self, run: Running, job_id: str) -> None:
        self.stopped.append((job_id, run.node))

    def force_stop(self, run: Running) -> None:
        self.forced.append(run.node)

    def nodes(self) -> list[str]:
        return [s[1] for s in self.sent]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def catalog():
    return plugin_host(CONFIG).catalog


def make(workers: int = 1, *, depth: int = 1, cpu_slots: int = 2, retries: int = 1,
         cache: ObjectCache | None = None) -> tuple[DagRun, LocalPool, FakePort, Clock]:
    pool, port, clock = LocalPool(workers), FakePort(), Clock()
    run = DagRun(pool=pool, cache=cache if cache is not None else ObjectCache(), port=port,
                 cpu_slots=cpu_slots, queue_depth=depth, max_retries=retries, cancel_grace=5.0, clock=clock)
    return run, pool, port, clock


def job(catalog, b: GraphBuilder, job_id: str, *, priority: int = 0, seq: int = 0,
        timeout: float | None = None) -> tuple[JobState, list[dict[str, Any]]]:
    compiled = compile_graph(b.build(), catalog)
    events: list[dict[str, Any]] = []
    state = JobState.create(compiled, id=job_id, priority=priority, seq=seq, handle=JobHandle(job_id, None),
                            on_event=events.append, sink=DirectorySink(None), options={},
                            node_timeout=timeout)
    return state, events


def chain(n: int, block: str = "faults.noop", tag: int = 0) -> GraphBuilder:
    b = GraphBuilder()
    prev = None
    for i in range(n):
        kw = {"after": prev.value} if prev is not None else {}
        prev = b.add(block, id=f"n{i}", value=i + 100 * tag, **kw)
    return b


def ok(run: DagRun, node_ref: str, worker: str = "w0.1", seconds: float = 0.01) -> None:
    """The node sent with meta ref ``node_ref`` came back done."""
    r = run.running[node_ref]
    run.on_result(r, {"error": None, "events": [{"event": "progress", "node": r.node}], "saved": [],
                      "seconds": seconds, "worker": worker, "models": {}, "nbytes": 8})


def meta_of(port: FakePort, node: str) -> str:
    i = max(i for i, s in enumerate(port.sent) if s[1] == node)
    return f"meta:{node}:{i}"


def test_dagrun_imports_no_ray_and_no_scheduler():
    tree = ast.parse(Path(orchestrator.runtime.dagrun.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in names if m == "ray" or m.startswith("ray.")}, names
    assert "orchestrator.runtime.dispatch" not in names and "orchestrator.runtime.scheduler" not in names


def test_a_chain_runs_in_order_each_node_once_its_input_is_there(catalog):
    run, _pool, port, _clock = make()
    state, events = job(catalog, chain(3), "j")
    run.add_job(state)
    run.dispatch()
    assert port.nodes() == ["n0"]
    run.dispatch()  # nothing new is ready: nothing is sent twice
    assert port.nodes() == ["n0"]
    ok(run, meta_of(port, "n0"))
    run.dispatch()
    assert port.nodes() == ["n0", "n1"]
    assert port.sent[1][3] == ["out:n0:0"]  # the upstream's output ref is passed on
    ok(run, meta_of(port, "n1"))
    run.dispatch()
    ok(run, meta_of(port, "n2"))
    assert state.handle.done() and state.handle.exception(0) is None
    assert not run.jobs and not run.running
    kinds = [(e["event"], e["node"]) for e in events]
    assert kinds == [("node_started", "n0"), ("progress", "n0"), ("node_finished", "n0"),
                     ("node_started", "n1"), ("progress", "n1"), ("node_finished", "n1"),
                     ("node_started", "n2"), ("progress", "n2"), ("node_finished", "n2")]
    assert set(state.timings) == {"n0", "n1", "n2"}


def test_higher_priority_first_then_round_robin(catalog):
    run, _pool, port, _clock = make(workers=1)
    low, _ = job(catalog, chain(2, tag=1), "low", priority=0, seq=0)
    a, _ = job(catalog, chain(2, tag=2), "a", priority=5, seq=1)
    b, _ = job(catalog, chain(2, tag=3), "b", priority=5, seq=2)
    for s in (low, a, b):
        run.add_job(s)
    order = []
    while run.jobs:
        run.dispatch()
        jid, node, _w, _u = port.sent[-1]
        order.append(jid)
        ok(run, meta_of(port, node))
    # the two priority-5 jobs take turns (round robin); the low one goes after both are done
    assert order == ["a", "b", "a", "b", "low", "low"]


def test_a_node_queues_behind_its_upstream_on_the_same_worker(catalog):
    run, pool, port, _clock = make(workers=2, depth=2)
    state, events = job(catalog, chain(3), "j")
    run.add_job(state)
    run.dispatch()
    # n1 is pinned behind n0 on its worker with n0's pending ref; n2 waits (n1 not running yet)
    assert [(n, w) for _j, n, w, _u in port.sent] == [("n0", "w0.1"), ("n1", "w0.1")]
    assert port.sent[1][3] == ["out:n0:0"]
    assert [r.node for r in pool.slots[0].queue] == ["n0", "n1"]
    assert not run.running[meta_of(port, "n1")].head  # queued, no clock, no node_started yet
    assert [e["node"] for e in events if e["event"] == "node_started"] == ["n0"]
    ok(run, meta_of(port, "n0"))
    assert run.running[meta_of(port, "n1")].head
    run.dispatch()
    assert port.nodes() == ["n0", "n1", "n2"] and port.sent[2][2] == "w0.1"


def test_cpu_blocks_run_as_tasks_within_the_cpu_slots(catalog):
    run, pool, port, _clock = make(workers=1, cpu_slots=1)
    b = GraphBuilder()
    for i in range(3):
        b.add("faults.cpu_noop", id=f"c{i}", value=i)
    state, _ = job(catalog, b, "j")
    run.add_job(state)
    run.dispatch()
    assert port.sent == [("j", "c0", None, [])] and run.cpu_running == 1
    ok(run, meta_of(port, "c0"), worker="task")
    run.dispatch()
    assert port.nodes() == ["c0", "c1"] and run.cpu_running == 1
    assert not pool.slots[0].queue


def test_cache_hits_are_served_without_sending_cascading(catalog):
    cache = ObjectCache()
    run, _pool, port, _clock = make(cache=cache)
    first, _ = job(catalog, chain(2), "first")
    run.add_job(first)
    for node in ("n0", "n1"):
        run.dispatch()
        ok(run, meta_of(port, node))
    assert len(cache) == 2
    sent = len(port.sent)
    # the same graph again: every node from the cache, nothing sent, resolved at once
    again, events = job(catalog, chain(2), "again")
    run.add_job(again)
    run.dispatch()
    assert len(port.sent) == sent and again.handle.done()
    assert again.cached == {"n0", "n1"} and again.refs == first.refs
    assert [(e["event"], e["node"], e["cached"]) for e in events] == [
        ("node_finished", "n0", True), ("node_finished", "n1", True)]
    # a longer chain: the cached prefix is served, the first new node is sent with its ref
    longer, _ = job(catalog, chain(3), "longer")
    run.add_job(longer)
    run.dispatch()
    assert port.sent[-1] == ("longer", "n2", "w0.1", [first.refs["n1"]])


def test_a_worker_death_running_alone_is_retried_then_charged(catalog):
    run, pool, port, _clock = make(retries=1)
    state, events = job(catalog, chain(1), "j")
    run.add_job(state)
    died = JobError("worker died", type="worker_died")
    for attempt in (1, 2):
        run.dispatch()
        slot = pool.slots[0]
        run.on_lost(run.running[meta_of(port, "n0")], died)
        assert slot.state == DEAD and pool.slots[0] is not slot  # replaced
        if attempt == 1:
            assert not state.handle.done()
            assert next(e for e in events if e["event"] == "node_retry")["attempt"] == 1
    assert port.nodes() == ["n0", "n0"]
    err = state.handle.exception(0)
    assert isinstance(err, JobError) and err.type == "worker_died" and err.node == "n0"
    assert "2 times running alone" in err.message


def test_a_death_with_others_queued_makes_suspects_not_strikes(catalog):
    run, pool, port, _clock = make(retries=0, depth=2)
    b = GraphBuilder()
    b.add("faults.noop", id="x", value=1)
    b.add("faults.noop", id="y", value=2)
    state, _ = job(catalog, b, "j")
    run.add_job(state)
    run.dispatch()
    assert [r.node for r in pool.slots[0].queue] == ["x", "y"]
    died = JobError("worker died", type="worker_died")
    run.on_lost(run.running[meta_of(port, "x")], died)
    run.on_lost(run.running[meta_of(port, "y")], died)
    # neither ran alone: no strike (retries=0 would have failed the job), both run alone now
    assert not state.handle.done()
    assert state.suspects == {"x", "y"} and state.strikes == {"x": 0, "y": 0}
    run.dispatch()
    assert [r.node for r in pool.slots[0].queue] == ["x"]  # nothing queues behind a suspect
    ok(run, meta_of(port, "x"), worker="w0.2")
    run.dispatch()
    ok(run, meta_of(port, "y"), worker="w0.2")
    assert state.handle.done() and state.handle.exception(0) is None


def test_a_block_error_fails_the_job_and_stops_its_other_nodes(catalog):
    run, _pool, port, _clock = make(workers=2)
    b = GraphBuilder()
    b.add("faults.noop", id="x", value=1)
    b.add("faults.noop", id="y", value=2)
    state, _ = job(catalog, b, "j")
    run.add_job(state)
    run.dispatch()
    err = BlockError("boom", type="block", node="x")
    run.on_result(run.running[meta_of(port, "x")], {"error": err, "events": [], "saved": [],
                                                    "seconds": 0.0, "worker": "w0.1"})
    assert port.stopped == [("j", "y")] and not state.handle.done()  # waits for y to stop
    ok(run, meta_of(port, "y"), worker="w1.1")
    assert state.handle.exception(0) is err


def test_a_node_that_cannot_be_sent_fails_its_job_naming_it(catalog):
    run, _pool, port, _clock = make()
    state, _ = job(catalog, chain(1), "j")
    port.refuse.add("n0")
    run.add_job(state)
    run.dispatch()
    err = state.handle.exception(0)
    assert err.type == "job" and err.node == "n0" and "could not be sent" in err.message
    assert not run.running and not run.jobs


def test_a_node_past_its_timeout_is_abandoned_and_its_worker_replaced(catalog):
    run, pool, port, clock = make()
    state, _ = job(catalog, chain(2), "j", timeout=2.0)
    run.add_job(state)
    run.dispatch()
    assert run.next_timeout(0.05) == pytest.approx(0.05)
    clock.now += 1.0
    head = run.running[meta_of(port, "n0")]
    assert run.deadlines() == [head]  # due a progress poll only
    run.polling(head, "poll-1")
    assert run.deadlines() == [] and run.next_timeout(0.05) == pytest.approx(0.05)
    run.on_events(head, [{"event": "progress", "node": "n0", "step": 1}])
    assert head.drain_ref is None and run.next_timeout(5.0) == pytest.approx(0.1)  # next poll due
    assert not state.handle.done()
    clock.now += 1.5
    run.deadlines()
    err = state.handle.exception(0)
    assert err.type == "timeout" and err.node == "n0"
    assert len(pool.replaced) == 1 and not run.running


def test_cancel_gives_a_grace_period_then_kills(catalog):
    run, pool, port, clock = make()
    b = chain(1)
    b.add("faults.cpu_noop", id="c", value=3)
    state, _ = job(catalog, b, "j")
    run.add_job(state)
    run.dispatch()
    assert run.cancel("j") and not run.cancel("j") and not run.cancel("nope")
    assert sorted(port.stopped) == [("j", "c"), ("j", "n0")]
    clock.now += 4.0
    run.deadlines()
    assert not state.handle.done() and not pool.replaced
    clock.now += 2.0
    run.deadlines()  # ignored cancellation for the grace period: killed
    assert len(pool.replaced) == 1 and port.forced == ["c"]
    assert state.handle.exception(0).type == "cancelled"
    assert not run.jobs and run.cpu_running == 0


def test_a_duplicate_job_id_is_refused_without_touching_the_first(catalog):
    run, _pool, port, _clock = make()
    first, _ = job(catalog, chain(1), "same")
    second, _ = job(catalog, chain(1, tag=1), "same")
    run.add_job(first)
    run.add_job(second)
    assert second.handle.exception(0).type == "job" and not first.handle.done()
    run.dispatch()
    ok(run, meta_of(port, "n0"))
    assert first.handle.exception(0) is None
