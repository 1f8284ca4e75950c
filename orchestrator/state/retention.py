"""Job retention: finished jobs and their output folders pruned by age, count and disk budget.

A :class:`Policy` says what to keep (``[retention]`` in the config): finished jobs younger
than ``max_age_s``, at most ``max_jobs`` jobs in the store, at most ``max_output_bytes`` of
output folders; the ``keep_latest`` newest finished jobs always stay, and queued, planning
and running jobs are never touched. :meth:`Retention.prune` deletes the rows of the jobs to
go (job, events, outputs, idempotency key) in one transaction, then their folders; a crash
in between leaves folders without rows, never rows without files, and the next prune
removes such orphan folders. The daemon prunes periodically and after jobs finish
(:class:`AutoPruner`); ``orchestrator jobs prune`` does it on demand, through
``POST /jobs/prune`` when the daemon runs, else directly on the state directory.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.state.store import JobStore

log = logging.getLogger("orchestrator.state.retention")

JOB_DIR = re.compile(r"^[0-9a-f]{16}$")  # the store's job ids (uuid4 hex, 16 digits)
DAY = 86_400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
               "tib": 1 << 40}
MAX_AGE_S = 100 * 365 * DAY  # the largest age anyone can mean


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` (a bare number is days).

    >>> parse_duration("12h"), parse_duration("7"), parse_duration("1.5d")
    (43200.0, 604800.0, 129600.0)
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*", text.lower(), flags=re.ASCII)
    if m is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 12h, 7d or 2w")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "d"]
    if seconds > MAX_AGE_S:
        raise ValueError(f"{text!r} is longer than 100 years")
    return seconds


def parse_size(text: str) -> int:
    """Bytes in ``"500M"``, ``"20GiB"``, ``"1.5g"``, ``"1024"``.

    >>> parse_size("20G") == 20 << 30, parse_size("1024")
    (True, 1024)
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*", text.lower(), flags=re.ASCII)
    if m is None or m.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size like 500M, 20G or 1048576")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


@dataclass(frozen=True)
class Policy:
    """What to keep. ``None`` turns a bound off; ``keep_latest`` finished jobs always stay."""

    max_age_s: float | None = 30 * DAY
    max_jobs: int | None = 10_000
    max_output_bytes: int | None = 20 << 30
    keep_latest: int = 10

    @classmethod
    def from_settings(cls, retention: Any) -> Policy:
        """From ``settings.retention`` (:class:`~orchestrator.config.RetentionSettings`)."""
        age = retention.max_age_days
        return cls(max_age_s=None if age is None else float(age) * DAY, max_jobs=retention.max_jobs,
                   max_output_bytes=retention.max_output_bytes, keep_latest=retention.keep_latest)

    def narrowed(self, *, older_than_s: float | None = None, max_jobs: int | None = None,
                 max_output_bytes: int | None = None, keep_latest: int | None = None) -> Policy:
        """An on-demand prune: with any criterion given, only the given criteria apply (else this
        policy's); ``keep_latest`` overrides the configured one when given."""
        keep = self.keep_latest if keep_latest is None else keep_latest
        if older_than_s is None and max_jobs is None and max_output_bytes is None:
            return replace(self, keep_latest=keep)
        return Policy(max_age_s=older_than_s, max_jobs=max_jobs, max_output_bytes=max_output_bytes,
                      keep_latest=keep)


@dataclass
class PruneReport:
    """What a prune removed (or would remove, with ``dry_run``) and what is left."""

    dry_run: bool
    jobs: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=lambda: {"age": 0, "count": 0, "bytes": 0})
    freed_bytes: int = 0
    orphans: int = 0  # output folders without a job row (a crash between rows and files)
    orphan_bytes: int = 0
    kept_jobs: int = 0
    kept_output_bytes: int = 0

    def to_dict(self, max_ids: int = 1000) -> dict[str, Any]:
        out = asdict(self)
        out["pruned"] = len(self.jobs)
        out["jobs"] = self.jobs[:max_ids]
        return out


def folder_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links are not followed); 0 when it is gone."""
    if path.is_symlink():
        return 0
    total = 0
    stack = [path]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def remove_folder(path: Path) -> None:
    """Remove a job's output folder (never following a link out of it)."""
    if path.is_symlink():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


class Retention:
    """Prunes ``store`` and the job folders under ``outputs_root`` by ``policy``. Thread-safe."""

    def __init__(self, store: JobStore, outputs_root: str | Path, policy: Policy | None = None) -> None:
        self.store = store
        self.outputs_root = Path(outputs_root)
        self.policy = policy or Policy()
        self._lock = threading.Lock()
        self.runs = 0
        self.pruned_total = 0

    def prune(self, *, dry_run: bool = False, policy: Policy | None = None,
              now: float | None = None) -> PruneReport:
        """Apply ``policy`` (default: the configured one) now; see the module docstring."""
        policy = policy or self.policy
        now = time.time() if now is None else now
        with self._lock:
            report = PruneReport(dry_run=dry_run)
            self._sweep_orphans(report, dry_run)  # first: folders listed before the rows are read
            finished = self._measured(self.store.finished_jobs())
            doomed = select(finished, self.store.count_jobs(), policy, now, report.reasons)
            sizes = {j["id"]: int(j["output_bytes"] or 0) for j in finished}
            if dry_run:
                report.jobs = doomed
            else:
                report.jobs = self.store.delete_jobs(doomed)
                for job_id in report.jobs:  # rows first, then files: no row points at a missing file
                    remove_folder(self.outputs_root / job_id)
                self.runs += 1
                self.pruned_total += len(report.jobs)
            gone = set(report.jobs)
            report.freed_bytes = sum(sizes[j] for j in gone)
            report.kept_jobs = self.store.count_jobs() - (len(gone) if dry_run else 0)
            report.kept_output_bytes = sum(n for j, n in sizes.items() if j not in gone)
        if report.jobs and not dry_run:
            log.info("pruned %d jobs (%d bytes), %d orphan folders", len(report.jobs),
                     report.freed_bytes, report.orphans)
        return report

    def _measured(self, finished: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Measure the output folders of finished jobs not measured yet (each once)."""
        new = {j["id"]: folder_bytes(self.outputs_root / j["id"]) for j in finished
               if j["output_bytes"] is None}
        if new:
            self.store.set_output_bytes(new)
            for j in finished:
                if j["id"] in new:
                    j["output_bytes"] = new[j["id"]]
        return finished

    def _sweep_orphans(self, report: PruneReport, dry_run: bool) -> None:
        try:
            names = [e.name for e in os.scandir(self.outputs_root)
                     if JOB_DIR.match(e.name) and (e.is_dir(follow_symlinks=False) or e.is_symlink())]
        except OSError:
            return
        known = self.store.known_ids(names)
        for name in names:
            if name in known:
                continue
            path = self.outputs_root / name
            report.orphans += 1
            report.orphan_bytes += folder_bytes(path)
            if not dry_run:
                remove_folder(path)

    def stats(self) -> dict[str, Any]:
        return {"runs": self.runs, "pruned": self.pruned_total, **asdict(self.policy)}


def select(finished: list[dict[str, Any]], total_jobs: int, policy: Policy, now: float,
           reasons: dict[str, int] | None = None) -> list[str]:
    """The ids to prune from ``finished`` (oldest first, with ``output_bytes``), by ``policy``.

    >>> jobs = [{"id": str(i), "finished_at": float(i), "output_bytes": 10} for i in range(6)]
    >>> select(jobs, 8, Policy(max_age_s=None, max_jobs=5, max_output_bytes=25, keep_latest=1), 9.0)
    ['0', '1', '2', '3']
    """
    reasons = reasons if reasons is not None else {}
    candidates = finished[:max(0, len(finished) - policy.keep_latest)]
    doomed: list[str] = []
    remaining_jobs = total_jobs
    remaining_bytes = sum(int(j["output_bytes"] or 0) for j in finished)
    for job in candidates:  # oldest first
        why = None
        if policy.max_age_s is not None and job["finished_at"] < now - policy.max_age_s:
            why = "age"
        elif policy.max_jobs is not None and remaining_jobs > policy.max_jobs:
            why = "count"
        elif policy.max_output_bytes is not None and remaining_bytes > policy.max_output_bytes:
            why = "bytes"
        if why is None:
            continue
        doomed.append(job["id"])
        reasons[why] = reasons.get(why, 0) + 1
        remaining_jobs -= 1
        remaining_bytes -= int(job["output_bytes"] or 0)
    return doomed


def prune_state_dir(settings: Any, *, dry_run: bool = False, **criteria: Any) -> PruneReport:
    """Prune the store of ``settings.state_dir`` directly (no daemon running); ``criteria`` as
    :meth:`Policy.narrowed` takes them."""
    db = Path(settings.state_dir) / "jobs.db"
    if not db.is_file():
        return PruneReport(dry_run=dry_run)
    store = JobStore(db)
    try:
        policy = Policy.from_settings(settings.retention).narrowed(**criteria)
        return Retention(store, Path(settings.state_dir) / "outputs", policy).prune(dry_run=dry_run)
    finally:
        store.close()


class AutoPruner:
    """The daemon's pruning thread: every ``interval_s``, and soon after jobs finish.

    ``poke()`` (from the job service, after each job) wakes it; pokes within ``min_gap_s``
    of the last run are folded into one run, so a burst of short jobs costs one prune.
    """

    def __init__(self, retention: Retention, interval_s: float = 600.0, min_gap_s: float = 1.0) -> None:
        self.retention = retention
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def poke(self, _job_id: str | None = None) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.retention.prune()
            except Exception:  # a failed prune is logged and tried again later, never fatal
                self.errors += 1
                log.exception("automatic pruning failed")
            if self._stop.wait(self.min_gap_s):
                return
            self._wake.wait(self.interval_s)
            self._wake.clear()
