"""The soak: a real daemon under several hundred jobs, faults and hostile input; one table of figures.

::

    python -m bench soak                    # both engines, 300 jobs each (about 5 minutes)
    python -m bench soak --engine local --jobs 120 --quick
    python bench/soak.py ...                # the same

For each engine (the in-process one, then Ray with one CPU worker) it starts a daemon
subprocess and

1. **load**: submits ``--jobs`` small jobs from async clients, the first ``--burst`` of them
   at once (a mix: no-op, image + saved PNG, a ``tiny-sd`` prompt encoding, a block that
   raises, one that allocates far too much), sampling the RSS of the daemon and of its
   workers after every 100 finished jobs;
2. **faults**: a worker SIGKILLed mid-node (Ray), a node that kills every worker it meets
   (Ray), a block that hangs past its time and is cancelled (Ray: it ignores cancellation,
   so its worker is killed; in-process: a long job that is cancelled), the daemon
   SIGKILLed with jobs queued and running and restarted (``--kills`` times), SIGTERM with
   work in flight;
3. **hostile input** (:mod:`bench.hostile`, counted by kind): malformed, huge and deeply
   nested bodies, NaN/Infinity, bad graphs, out-of-range params (floats too), paths and
   model names leaving their folders, a symlink planted in the input folder, agent options
   that pick the LLM, huge or non-ASCII numbers in URLs, forged ``Host``/``Origin``, hostile
   uploads, path tricks on output names;

then checks every accepted job against the store: reached the expected final state,
exactly once (one ``done`` event, one output file), nothing lost or duplicated, and the
database passes ``PRAGMA integrity_check``. Writes ``soak.md`` and ``soak.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # python bench/soak.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.core import RESULTS, machine
from bench.daemons import daemon, submit_all, wait_final
from bench.txt2img import cache_dir

MiB = 1 << 20


@dataclass
class Expect:
    """What an accepted job must end as."""

    state: str
    kind: str
    error: str | None = None  # a substring of its first error's type or message
    output: str | None = None  # the one output it must have


@dataclass
class Soak:
    """One engine's soak: the daemon, every accepted job and what it must become, the figures."""

    engine: str
    d: Any
    jobs: dict[str, Expect] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    hostile: list[dict[str, Any]] = field(default_factory=list)
    rss: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected_429: int = 0
    seq: int = 0

    @property
    def url(self) -> str:
        return str(self.d.url)

    def next(self) -> int:
        self.seq += 1
        return self.seq


# -- jobs ------------------------------------------------------------------------------------------


def job_body(s: Soak, kind: str) -> tuple[dict[str, Any], Expect]:
    i = s.next()
    if kind == "noop":
        g = {"n": {"block": "bench.noop", "params": {"value": i}}}
        return {"graph": {"nodes": g}}, Expect("succeeded", kind)
    if kind == "image":
        name = f"img{i}"
        g = {"s": {"block": "test.slow", "params": {"steps": 1, "step_s": 0.0, "value": (i % 97) / 97}},
             "save": {"block": "image.save", "inputs": {"image": "s.image"}, "params": {"name": name}}}
        return {"graph": {"nodes": g}}, Expect("succeeded", kind, output=name)
    if kind == "model":
        g = {"c": {"block": "sd.encode_prompt", "params": {"model": "tiny-sd", "prompt": f"a red fox {i}"}}}
        return {"graph": {"nodes": g}}, Expect("succeeded", kind)
    if kind == "fail":
        g = {"f": {"block": "faults.fail", "params": {"message": f"boom {i}"}}}
        return {"graph": {"nodes": g}}, Expect("failed", kind, error="block_failed")
    if kind == "alloc":
        g = {"a": {"block": "bench.alloc", "params": {"nbytes": 1 << 50}}}
        return {"graph": {"nodes": g}}, Expect("failed", kind, error="MemoryError")
    if kind == "slow":
        name = f"slow{i}"
        g = {"s": {"block": "test.slow", "params": {"steps": 5, "step_s": 0.1, "value": (i % 89) / 89}},
             "save": {"block": "image.save", "inputs": {"image": "s.image"}, "params": {"name": name}}}
        return {"graph": {"nodes": g}}, Expect("succeeded", kind, output=name)
    raise ValueError(kind)


MIX = ["noop", "image", "model", "noop", "image", "model", "noop", "image", "model", "noop",
       "image", "model", "noop", "image", "model", "noop", "image", "model", "noop", "image",
       "model", "noop", "image", "model", "fail", "noop", "image", "model", "noop", "image",
       "model", "noop", "image", "model", "noop", "image", "model", "noop", "image", "alloc"]


def submit(s: Soak, kinds: list[str]) -> list[str]:
    """Submit jobs of ``kinds`` all at once; remembers what each must become."""
    pairs = [job_body(s, k) for k in kinds]
    answers = asyncio.run(submit_all(s.url, [b for b, _ in pairs]))
    ids = []
    for ans, (_b, exp) in zip(answers, pairs, strict=True):
        s.jobs[ans["id"]] = exp
        ids.append(ans["id"])
    return ids


def post(s: Soak, body: dict[str, Any], exp: Expect) -> str:
    r = httpx.post(f"{s.url}/jobs", json=body, timeout=60)
    r.raise_for_status()
    s.jobs[r.json()["id"]] = exp
    return str(r.json()["id"])


def state_of(s: Soak, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{s.url}/jobs/{job_id}", timeout=60).json())


def wait_until(pred: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return False


def node_started(s: Soak, job_id: str) -> bool:
    events = httpx.get(f"{s.url}/jobs/{job_id}/events", params={"format": "json"}, timeout=60).json()
    return any(e["event"] == "node_started" for e in events["events"])


# -- memory ------------------------------------------------------------------------------------------


def rss(s: Soak) -> dict[str, float]:
    """RSS (MiB) of the daemon process and of its Ray worker processes (actors and task workers)."""
    import psutil

    root = psutil.Process(s.d.proc.pid)
    workers = 0.0
    for p in root.children(recursive=True):
        try:
            if p.name().startswith("ray::") or "default_worker.py" in " ".join(p.cmdline()):
                workers += p.memory_info().rss
        except psutil.Error:
            continue
    return {"daemon": root.memory_info().rss / MiB, "workers": workers / MiB}


def metrics(s: Soak) -> dict[str, Any]:
    return dict(httpx.get(f"{s.url}/metrics", timeout=60).json())


def model_loads(s: Soak) -> Any:
    engine = metrics(s)["engine"]
    if s.engine == "local":
        return dict((engine.get("models") or {}).get("load_counts") or {})
    return {w["name"]: [m for m in w.get("models", []) if "tiny-sd" in m] for w in engine.get("workers", [])}


# -- phases ------------------------------------------------------------------------------------------


def load_phase(s: Soak, n: int, burst: int) -> dict[str, Any]:
    """``n`` jobs: ``burst`` of them at once, the rest in waves of 50. RSS is sampled once the
    burst is done (the warm baseline), then after every 100 more finished jobs, and at the end."""
    kinds = [MIX[i % len(MIX)] for i in range(n)]
    t0 = time.time()
    ids = submit(s, kinds[:burst])
    loads_after_first: Any = None
    rest = kinds[burst:]
    while True:
        done = len(wait_final(s.url, ids, timeout=900))
        if loads_after_first is None:
            loads_after_first = model_loads(s)
        if not s.rss or done - s.rss[-1]["jobs"] >= 100 or not rest:
            s.rss.append({"jobs": done, **rss(s)})
        if not rest:
            break
        ids += submit(s, rest[:50])
        rest = rest[50:]
    return {"seconds": time.time() - t0, "jobs": len(ids), "loads_first": loads_after_first,
            "loads_end": model_loads(s)}


def fault(s: Soak, name: str, fn: Callable[[], tuple[bool, str]], count: int = 1) -> None:
    """Inject a fault (``count`` times over, e.g. kill rounds) and record whether it was survived."""
    t0 = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a fault the daemon did not survive is a figure
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    s.faults.append({"fault": name, "survived": ok, "detail": detail, "count": count,
                     "seconds": round(time.monotonic() - t0, 1)})
    print(f"  [{s.engine}] fault {name}: {'survived' if ok else 'NOT SURVIVED'} ({detail})",
          file=sys.stderr, flush=True)


def next_job_ok(s: Soak) -> bool:
    body, exp = job_body(s, "image")
    job = post(s, body, exp)
    return wait_final(s.url, [job], timeout=240)[job]["state"] == "succeeded"


def f_raise(s: Soak) -> tuple[bool, str]:
    body, exp = job_body(s, "fail")
    job = post(s, body, exp)
    info = wait_final(s.url, [job], timeout=120)[job]
    return info["state"] == "failed" and info["errors"][0]["type"] == "block_failed" and next_job_ok(s), \
        f"{info['state']}: {info['errors'][0]['type'] if info['errors'] else '-'}; next job ran"


def f_oom(s: Soak) -> tuple[bool, str]:
    body, exp = job_body(s, "alloc")
    job = post(s, body, exp)
    info = wait_final(s.url, [job], timeout=120)[job]
    msg = info["errors"][0]["message"] if info["errors"] else ""
    return info["state"] == "failed" and "MemoryError" in msg and next_job_ok(s), \
        f"{info['state']}: {msg[:60]}; next job ran"


def f_hang(s: Soak) -> tuple[bool, str]:
    """A block past its time, cancelled. On Ray the block ignores cancellation: its worker is
    killed after the grace period and replaced. In-process, a long block is cancelled at a step."""
    if s.engine == "ray":
        body = {"graph": {"nodes": {"h": {"block": "faults.hang"}}}}
    else:
        body = {"graph": {"nodes": {"h": {"block": "test.slow", "params": {"steps": 500, "step_s": 0.1}}}}}
    job = post(s, body, Expect("cancelled", "hang"))
    wait_until(lambda: node_started(s, job), 60)
    time.sleep(2.0)
    t0 = time.monotonic()
    httpx.post(f"{s.url}/jobs/{job}/cancel", timeout=60)
    info = wait_final(s.url, [job], timeout=120)[job]
    took = time.monotonic() - t0
    how = "its worker killed after the grace period" if s.engine == "ray" else "at its next step"
    ok = info["state"] == "cancelled" and next_job_ok(s)
    return ok, f"{info['state']} {took:.1f} s after cancel ({how})"


def f_worker_kill(s: Soak) -> tuple[bool, str]:
    body = {"graph": {"nodes": {"st": {"block": "faults.steps", "params": {"steps": 60, "delay": 0.05}}}}}
    job = post(s, body, Expect("succeeded", "worker_kill"))
    wait_until(lambda: node_started(s, job), 60)
    time.sleep(0.5)
    busy = [w for w in metrics(s)["engine"]["workers"] if w.get("queued") and w.get("pid")]
    if not busy:
        return False, "no busy worker found"
    os.kill(int(busy[0]["pid"]), signal.SIGKILL)
    info = wait_final(s.url, [job], timeout=240)[job]
    ok = info["state"] == "succeeded" and next_job_ok(s)
    return ok, f"{info['state']} after worker {busy[0]['name']} died"


def f_poison(s: Soak) -> tuple[bool, str]:
    job = post(s, {"graph": {"nodes": {"x": {"block": "faults.exit"}}}}, Expect("failed", "poison",
                                                                               error="worker_died"))
    info = wait_final(s.url, [job], timeout=300)[job]
    kind = info["errors"][0]["type"] if info["errors"] else "-"
    return info["state"] == "failed" and kind == "worker_died" and next_job_ok(s), \
        f"{info['state']}: {kind}; pool healed"


def f_daemon_kill(s: Soak, rounds: int) -> tuple[bool, str]:
    """SIGKILL with jobs queued and running, restart; ``rounds`` times."""
    hit = 0
    ids: list[str] = []
    for _ in range(rounds):
        batch = submit(s, ["slow"] * 6)
        ids += batch
        wait_until(lambda b=batch: any(state_of(s, j)["state"] == "running" for j in b), 60)
        time.sleep(0.3)
        states = [state_of(s, j)["state"] for j in batch]
        hit += states.count("running")
        s.d.kill()
        s.d.start(timeout=240)
    infos = wait_final(s.url, ids, timeout=600)
    ok = all(i["state"] == "succeeded" for i in infos.values())
    return ok and hit > 0, f"{rounds} kills, {hit} running jobs hit; {len(ids)} jobs all succeeded" if ok \
        else f"states {[i['state'] for i in infos.values()]}"


def f_sigterm(s: Soak) -> tuple[bool, str]:
    ids = submit(s, ["slow"] * 4)
    wait_until(lambda: any(state_of(s, j)["state"] == "running" for j in ids), 60)
    t0 = time.monotonic()
    code = s.d.terminate()
    took = time.monotonic() - t0
    s.d.start(timeout=240)
    infos = wait_final(s.url, ids, timeout=300)
    ok = code == 0 and took < 60 and all(i["state"] == "succeeded" for i in infos.values())
    return ok, f"exit {code} in {took:.1f} s; work re-queued and finished after restart"


# -- hostile input ------------------------------------------------------------------------------------


def hostile_phase(s: Soak) -> None:
    """Every case of :mod:`bench.hostile`; jobs that only a running block can refuse must fail."""
    from bench.hostile import run_hostile

    url = s.url
    before = len(_all(url))
    image_job = next(j for j, e in s.jobs.items() if e.output)
    any_job = next(iter(s.jobs))
    rows, created = run_hostile(url, s.d.state, any_job, image_job,
                                lambda ids: wait_final(url, ids, timeout=300))
    s.hostile.extend(rows)
    for job_id in created:
        s.jobs[job_id] = Expect("failed", "hostile")
    after = len(_all(url))
    if after - before != len(created):
        s.notes.append(f"hostile input created {after - before - len(created)} unexpected jobs")
        for h in s.hostile:
            h["refused"] = False


def _all(url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = httpx.get(f"{url}/jobs", params={"limit": 500, "offset": len(out)}, timeout=60).json()["jobs"]
        out += page
        if len(page) < 500:
            return out


# -- the check ---------------------------------------------------------------------------------------


def check(s: Soak) -> dict[str, Any]:
    """Every accepted job against the store: final as expected, exactly once."""
    from orchestrator.state.store import JobStore

    final = wait_final(s.url, list(s.jobs), timeout=900)
    in_store = {j["id"]: j for j in _all(s.url)}
    s.d.terminate()
    store = JobStore(s.d.state / "jobs.db")
    wrong, duplicated, stray = [], [], []
    try:
        integrity = store.integrity_check()
        for job_id, exp in s.jobs.items():
            info = final.get(job_id)
            if info is None:
                continue
            events = [e["event"] for e in store.events_after(job_id, 0, limit=100_000)]
            outs = store.outputs(job_id)
            folder = s.d.state / "outputs" / job_id
            files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            stray += [f"{job_id}/{f}" for f in files if f.endswith(".tmp")]
            files = [f for f in files if not f.endswith(".tmp")]
            if events.count("done") != 1 or len(files) > (1 if exp.output else 0):
                duplicated.append(job_id)
            first = (info["errors"] or [{}])[0]
            err_ok = exp.error is None or exp.error in f"{first.get('type')} {first.get('message')}"
            out_ok = exp.output is None or ([o["name"] for o in outs] == [exp.output]
                                            and files == [f"{exp.output}.png"])
            if info["state"] != exp.state or not err_ok or not out_ok:
                wrong.append({"id": job_id, "kind": exp.kind, "want": exp.state, "got": info["state"],
                              "errors": info["errors"][:1]})
    finally:
        store.close()
    extra = sorted(set(in_store) - set(s.jobs))
    return {"submitted": len(s.jobs), "completed": len(final), "expected_outcome": len(final) - len(wrong),
            "lost": len(s.jobs) - len(final), "duplicated": len(duplicated) + len(extra),
            "wrong": wrong[:10], "integrity": integrity, "extra_jobs": extra[:10],
            "duplicated_ids": duplicated[:10], "half_written": len(stray), "half_written_files": stray[:10]}


# -- main ----------------------------------------------------------------------------------------------


def soak_engine(engine: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    env = {"ORCHESTRATOR_LIMITS__ATTEMPTS": "20", "ORCHESTRATOR_CACHE_DIR": cache_dir(),
           "ORCHESTRATOR_LIMITS__QUEUED": str(max(1000, args.burst + 100))}
    d = daemon(root / engine, engine, workers=1 if engine == "ray" else None, env=env)
    t0 = time.monotonic()
    d.start(timeout=240)
    s = Soak(engine, d)
    print(f"  [{engine}] daemon up in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    load = load_phase(s, args.jobs, min(args.burst, args.jobs))
    print(f"  [{engine}] {load['jobs']} jobs in {load['seconds']:.0f} s", file=sys.stderr, flush=True)
    fault(s, "block raises", lambda: f_raise(s))
    fault(s, "block allocates 1 PiB", lambda: f_oom(s))
    fault(s, "block hangs ignoring cancellation, cancelled" if engine == "ray" else "long block cancelled",
          lambda: f_hang(s))
    if engine == "ray":
        fault(s, "worker SIGKILL mid-node", lambda: f_worker_kill(s))
        fault(s, "node that kills every worker", lambda: f_poison(s))
    fault(s, f"daemon SIGKILL + restart x{args.kills}", lambda: f_daemon_kill(s, args.kills), args.kills)
    fault(s, "daemon SIGTERM with work in flight", lambda: f_sigterm(s))
    hostile_phase(s)
    result = check(s)
    first, last = (s.rss[0], s.rss[-1]) if s.rss else ({}, {})
    hundreds = max(1e-9, (last.get("jobs", 0) - first.get("jobs", 0)) / 100)
    growth = {k: (last[k] - first[k]) / hundreds if len(s.rss) > 1 else None for k in ("daemon", "workers")}
    if engine == "local":
        growth["workers"] = None  # no worker processes: jobs run in the daemon
    return {"engine": engine, "load": load, **result, "faults": s.faults, "hostile": s.hostile,
            "rss": s.rss, "rss_growth_per_100_jobs_mib": growth, "notes": s.notes}


def _models_line(r: dict[str, Any]) -> str:
    first, end = r["load"]["loads_first"], r["load"]["loads_end"]
    if r["engine"] == "local":
        once = first == end and bool(end)
        return f"{'once' if once else 'RELOADED'} ({end.get('tiny-sd', 0)} tiny-sd parts loaded)"
    held = [w for w, models in end.items() if models]
    same = set(first) == set(end)  # the same worker actors (names carry a generation) from start to end
    return (f"{'once' if same and len(held) == len(end) else 'RELOADED'} per worker: tiny-sd resident on "
            f"{len(held)}/{len(end)} worker(s), {'none' if same else 'some'} replaced during the load")


def table(results: list[dict[str, Any]]) -> str:
    def mib(v: float | None) -> str:
        return "-" if v is None else f"{v:+.1f} MiB"

    cols = [r["engine"] for r in results]
    rows = [
        ("jobs submitted", [str(r["submitted"]) for r in results]),
        ("completed (final state)", [str(r["completed"]) for r in results]),
        ("  of which as expected", [str(r["expected_outcome"]) for r in results]),
        ("lost", [str(r["lost"]) for r in results]),
        ("duplicated", [str(r["duplicated"]) for r in results]),
        ("half-written output files left", [str(r["half_written"]) for r in results]),
        ("faults injected / survived", [f"{sum(f['count'] for f in r['faults'])} / "
                                        f"{sum(f['count'] for f in r['faults'] if f['survived'])}"
                                        for r in results]),
        ("hostile inputs tried / refused", [f"{len(r['hostile'])} / {sum(h['refused'] for h in r['hostile'])}"
                                            for r in results]),
        ("daemon RSS growth per 100 jobs", [mib(r["rss_growth_per_100_jobs_mib"]["daemon"])
                                            for r in results]),
        ("workers RSS growth per 100 jobs", [mib(r["rss_growth_per_100_jobs_mib"]["workers"])
                                             for r in results]),
        ("each model loaded once", [_models_line(r) for r in results]),
        ("PRAGMA integrity_check", [r["integrity"] for r in results]),
    ]
    lines = ["| | " + " | ".join(f"{c} engine" for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(vals) + " |" for name, vals in rows]
    lines += ["", "| engine | fault | survived | detail |", "|---|---|---|---|"]
    lines += [f"| {r['engine']} | {f['fault']} | {'yes' if f['survived'] else 'NO'} | {f['detail']} |"
              for r in results for f in r["faults"]]
    kinds = sorted({h.get("kind", "other") for r in results for h in r["hostile"]})
    if kinds:
        lines += ["", "| hostile kind | " + " | ".join(f"{c}: tried / refused" for c in cols) + " |",
                  "|---" * (len(cols) + 1) + "|"]
        for kind in kinds:
            cells = []
            for r in results:
                mine = [h for h in r["hostile"] if h.get("kind", "other") == kind]
                cells.append(f"{len(mine)} / {sum(bool(h['refused']) for h in mine)}")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    failed = [(r["engine"], h) for r in results for h in r["hostile"] if not h["refused"]]
    if failed:
        lines += ["", "Hostile inputs NOT refused: " + "; ".join(f"{e}: {h['input']} ({h['status']})"
                                                                for e, h in failed)]
    wrong = [(r["engine"], w) for r in results for w in r["wrong"]]
    if wrong:
        lines += ["", "Jobs with an unexpected outcome: " + "; ".join(f"{e}: {w}" for e, w in wrong)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["local", "ray", "both"], default="both")
    ap.add_argument("--jobs", type=int, default=300, help="jobs of the load phase per engine")
    ap.add_argument("--burst", type=int, default=200, help="of those, submitted at once")
    ap.add_argument("--kills", type=int, default=3, help="daemon SIGKILL + restart rounds")
    ap.add_argument("--quick", action="store_true", help="120 jobs, a burst of 60, 2 kills")
    ap.add_argument("-o", "--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.jobs, args.burst, args.kills = min(args.jobs, 120), min(args.burst, 60), min(args.kills, 2)
    engines = ["local", "ray"] if args.engine == "both" else [args.engine]
    t0 = time.time()
    results = []
    with tempfile.TemporaryDirectory(prefix="orchestrator-soak-") as tmp:
        for engine in engines:
            results.append(soak_engine(engine, args, Path(tmp)))
    head = f"# Soak ({time.strftime('%Y-%m-%d %H:%M')}, {time.time() - t0:.0f} s; {machine()['cpus']} CPUs)"
    md = head + "\n\n" + table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(md, encoding="utf-8")
    (args.out / "soak.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2,
                                                   default=str), encoding="utf-8")
    print(md)
    print(f"wrote {args.out / 'soak.md'} and {args.out / 'soak.json'}")
    problems = verdict(results)
    print("verdict: " + ("nothing lost, duplicated or wrong; every fault survived, every hostile input "
                         "refused" if not problems else "; ".join(problems)))
    return 0 if not problems else 1


def verdict(results: list[dict[str, Any]]) -> list[str]:
    """What went wrong, one line each (empty: nothing)."""
    out = []
    for r in results:
        e = r["engine"]
        out += [f"{e}: {r[k]} {k}" for k in ("lost", "duplicated", "half_written") if r[k]]
        out += [f"{e}: job {w['id']} ({w['kind']}) ended {w['got']}, wanted {w['want']}: {w['errors']}"
                for w in r["wrong"]]
        out += [f"{e}: integrity_check {r['integrity']}"] if r["integrity"] != "ok" else []
        out += [f"{e}: fault {f['fault']} not survived: {f['detail']}" for f in r["faults"]
                if not f["survived"]]
        out += [f"{e}: hostile input {h['input']} not refused ({h['status']})" for h in r["hostile"]
                if not h["refused"]]
        out += [f"{e}: {n}" for n in r["notes"]]
    return out


if __name__ == "__main__":
    sys.exit(main())
