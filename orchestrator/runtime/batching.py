"""Cross-job batching: concurrent UNet calls of several jobs run as one batched call.

When several jobs denoise with the same resident UNet on one worker (or in the daemon's
local engine), each job's sampling loop runs in its own thread and calls the UNet as it
always does. :class:`UNetBatcher` sits between those loops and the module: it collects the
calls that arrive together and are *compatible* (the same module, the same latent shape and
dtype, the same text-embedding shape, the same ``added_cond_kwargs`` keys and shapes, the
same grad/autocast modes, nothing it cannot concatenate), concatenates them along the batch
dimension (per-sample timesteps are fine for diffusers' ``UNet2DConditionModel``), runs one
call and hands each caller its slice. Every job keeps its own scheduler state, noise,
generator, progress events and cancellation: the batcher only ever sees single UNet calls.

How long a call waits for company (the policy, in :meth:`UNetBatcher.call`):

- never, when no other sampling loop is *expected*: a lone job is not slowed;
- otherwise until every expected loop has sent its call, ``max_batch`` calls are there, an
  expected loop leaves (its node ends: cancelled, failed or done; it finishes its last
  step), or no call has come for ``max_wait_ms`` (the clock restarts at each arrival, so a
  batch keeps filling while the loops come one after the other through the GIL). Waiting is
  on events (arrivals, departures); the clock is only the upper bound. A loop that made a
  batch wait in vain is not expected again until its next call.

The same batcher merges the jobs' other model calls of one shape (:func:`plan_generic`,
:class:`BatchedModule`): the CLIP text encoder's calls of ``sd.encode_prompt`` and the VAE's
``decode`` of ``sd.vae_decode`` (both batch-lane nodes), each job's output cut back from the
batch's (a tensor, a tuple or a ``ModelOutput``: :func:`split_output`). A batch waits only for
nodes that asked for its module (or have asked for none yet), never for one still loading it.

A call that cannot be batched (ControlNet residuals, ``cross_attention_kwargs``, a
``return_dict`` other than False, positional extras) runs alone, unchanged. A call alone in
its batch runs with its own arguments, untouched: the one-job path is bit for bit the
unbatched one. A batched call that raises is run again call by call, so only the call that
fails gets the error.

Which nodes may run side by side at all is :class:`Lanes`' rule (one rule for the worker
actor, the Ray scheduler's view of it and the local engine): a block declares
``Resources(batch=True)`` when its model calls may be batched with other jobs'.

>>> lanes = Lanes(max_batch=4)
>>> lanes.admits([], None), lanes.admits(["tiny-sd"], "tiny-sd"), lanes.admits(["tiny-sd"], "other")
(True, True, False)
>>> lanes.admits([None], "tiny-sd"), lanes.admits(["tiny-sd"], None)
(False, True)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from graphs.model_refs import model_key

EventFn = Callable[[dict[str, Any]], None]

# keyword arguments of a UNet call that may differ per caller only as batch-leading tensors
# (or None in every call); anything else must be equal in every call of a batch
_ALONE_KWARGS = frozenset({
    "cross_attention_kwargs",  # a dict (LoRA scale, IP-Adapter images): not ours to merge
    "down_block_additional_residuals", "mid_block_additional_residual",  # ControlNet residuals
    "down_intrablock_additional_residuals",  # T2I-Adapter residuals
})


# -- which nodes run side by side -----------------------------------------------------------------


class Lanes:
    """Which nodes may run at once on one worker (or in the local engine), in order.

    A node's *lane* is its model key when its block batches (``Resources(batch=True)``) and
    batching is on, else ``None``. A node may start when nothing runs, or when everything
    running is in one batch lane ``K``, fewer than ``max_batch`` run, and the node is in lane
    ``K`` or in no lane (a short node of another job, e.g. its prompt encoding, may run beside
    a batch; nothing starts beside it until it is done). With ``max_batch`` 1 nodes run one
    at a time, as without batching.

    :meth:`turn` also keeps an order: a node numbered ``seq`` starts only after every lower
    number has started (the Ray scheduler numbers the nodes it sends a worker).
    """

    def __init__(self, max_batch: int = 1) -> None:
        self.max_batch = max(1, int(max_batch))
        self._cond = threading.Condition()
        self._running: list[str | None] = []
        self._started = 0  # every seq below this has started

    def admits(self, running: Sequence[str | None], lane: str | None) -> bool:
        """Whether a node in ``lane`` may start beside nodes in ``running`` lanes."""
        if not running:
            return True
        if len(running) >= self.max_batch or any(r is None for r in running):
            return False
        return lane is None or lane == running[0]

    def running(self) -> list[str | None]:
        with self._cond:
            return list(self._running)

    @contextmanager
    def turn(self, lane: str | None, seq: int | None = None, order_wait: float = 600.0,
             on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Wait until a node in ``lane`` (numbered ``seq``) may start; it runs inside.

        ``order_wait``: never wait longer than this for a lower number that does not come.
        """
        deadline = time.monotonic() + order_wait
        with self._cond:
            while True:
                in_order = seq is None or self._started >= seq or time.monotonic() >= deadline
                if in_order and self.admits(self._running, lane):
                    break
                if on_wait is not None:
                    on_wait()
                # a lower number still to come: wait for it at most until the deadline
                self._cond.wait(None if in_order else max(0.01, deadline - time.monotonic()))
            beside = len(self._running) > 0
            self._running.append(lane)
            if seq is not None:
                self._started = max(self._started, seq + 1)
            self._cond.notify_all()
        try:
            if lane is not None or beside:  # nodes may run side by side: torch comes in first
                import_torch_once()
            yield
        finally:
            with self._cond:
                self._running.remove(lane)
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Wait until nothing runs, and run alone inside (a worker's exit)."""
        with self.turn(None):
            yield


_IMPORTING = threading.Lock()


def import_torch_once() -> None:
    """Import torch, one thread at a time: importing it from two threads at once can leave one
    with a half-initialised module ("module 'torch' has no attribute 'nn'"), and nodes running
    side by side (a batch lane, a short node beside it) may each import it first. A node of a
    batch lane, or one beside running nodes, calls this before its body (nothing without torch)."""
    import sys

    if "torch" in sys.modules and _IMPORTING.acquire(blocking=False):
        _IMPORTING.release()  # imported, and no import under way
        return
    with _IMPORTING:
        try:
            import torch  # noqa: F401
        except ImportError:  # an install without torch: no model nodes, nothing to guard
            pass


def prefix_running(lanes: Lanes, queue: Sequence[Any], lane_of: Callable[[Any], str | None],
                   is_running: Callable[[Any], bool]) -> list[Any]:
    """The entries of ``queue`` (in order) that run now or may start now under ``lanes``' rule:
    those running already, then the next ones while the rule admits them. The Ray scheduler's
    view of a worker's queue (the worker applies the same rule, in the same order)."""
    out: list[Any] = []
    running: list[str | None] = []
    for entry in queue:
        lane = lane_of(entry)
        if is_running(entry) or lanes.admits(running, lane):
            out.append(entry)
            running.append(lane)
        else:
            break
    return out


# -- one UNet call, as the batcher sees it ----------------------------------------------------------


@dataclass
class _Call:
    participant: _Participant | None
    module: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    key: tuple[Any, ...] | None  # None: cannot be batched
    size: int = 0
    sample: Any = None
    timestep: Any = None  # [size] tensor
    batched: dict[str, Any] = field(default_factory=dict)  # name -> tensor or dict of tensors
    fixed: dict[str, Any] = field(default_factory=dict)  # name -> value equal in every call
    model: int = 0  # id of the module it calls (what a participant that asked for it may call)
    fn: Any = None  # what a batch runs (the module, or a method such as a VAE's decode); None: module
    positional: list[Any] = field(default_factory=list)  # generic calls: batch-leading tensors
    arrived: float = 0.0
    turn: threading.Event = field(default_factory=threading.Event)  # done, or leads now
    done: bool = False
    result: Any = None
    error: BaseException | None = None


def _batch_tensor(value: Any, n: int, torch: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == n


def _describe(value: Any, torch: Any) -> tuple[Any, ...]:
    return (tuple(value.shape[1:]), value.dtype, str(value.device))


def plan_call(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
    """``module(*args, **kwargs)`` as a call the batcher can merge (``key`` None: it cannot)."""
    import torch

    call = _Call(None, module, args, kwargs, None)
    if len(args) < 1 or len(args) > 3 or kwargs.get("return_dict", True) is not False:
        return call
    kw = dict(kwargs)
    sample = args[0]
    timestep = args[1] if len(args) > 1 else kw.pop("timestep", None)
    if len(args) > 2:
        if "encoder_hidden_states" in kw:
            return call
        kw["encoder_hidden_states"] = args[2]
    if not isinstance(sample, torch.Tensor) or sample.ndim < 2 or timestep is None:
        return call
    n = int(sample.shape[0])
    t = torch.as_tensor(timestep, device=sample.device) if not isinstance(timestep, torch.Tensor) \
        else timestep.to(sample.device)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, n)):
        return call
    t = t.reshape(-1).expand(n) if t.ndim == 0 or t.shape[0] == 1 else t
    sig: list[Any] = []
    for name in sorted(kw):
        value = kw[name]
        if value is None:
            call.fixed[name] = None
            sig.append((name, None))
        elif name in _ALONE_KWARGS:
            return call
        elif _batch_tensor(value, n, torch):
            call.batched[name] = value
            sig.append((name, "tensor", _describe(value, torch)))
        elif isinstance(value, dict):
            if not all(_batch_tensor(v, n, torch) for v in value.values()):
                return call
            call.batched[name] = value
            sig.append((name, "dict", tuple((k, _describe(value[k], torch)) for k in sorted(value))))
        elif isinstance(value, (bool, int, float, str)):
            call.fixed[name] = value
            sig.append((name, "value", type(value).__name__, value))
        else:
            return call
    modes = (torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
             torch.is_autocast_enabled() if hasattr(torch, "is_autocast_enabled") else False)
    call.key = (id(module), _describe(sample, torch), t.dtype, modes, tuple(sig))
    call.size, call.sample, call.timestep = n, sample, t
    return call


def plan_generic(module: Any, fn: Any, tag: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
    """``fn(*args, **kwargs)`` (a text encoder's or a VAE decoder's call) as a call the batcher can
    merge: every positional argument a tensor of one batch size ``n`` (its first dimension), each
    keyword a tensor of batch ``n``, None, or a plain value; the output a tensor, a tuple of them or
    a ``ModelOutput`` of them, split back along the batch (``key`` None: it cannot be batched)."""
    import torch

    call = _Call(None, module, args, kwargs, None, fn=fn)
    if not args or not isinstance(args[0], torch.Tensor) or args[0].ndim < 1:
        return call
    n = int(args[0].shape[0])
    sig: list[Any] = [tag]
    for value in args:
        if not _batch_tensor(value, n, torch):
            return call
        call.positional.append(value)
        sig.append(("arg", _describe(value, torch)))
    for name in sorted(kwargs):
        value = kwargs[name]
        if value is None or isinstance(value, (bool, int, float, str)):
            call.fixed[name] = value
            sig.append((name, "value", type(value).__name__, value))
        elif _batch_tensor(value, n, torch):
            call.batched[name] = value
            sig.append((name, "tensor", _describe(value, torch)))
        else:
            return call
    modes = (torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
             torch.is_autocast_enabled() if hasattr(torch, "is_autocast_enabled") else False)
    call.key = (id(module), modes, tuple(sig))
    call.size = n
    return call


def split_output(out: Any, sizes: list[int]) -> list[Any]:
    """A batched output cut into one output per call (``sizes`` along the first dimension): a
    tensor, a tuple or list of them (None kept), a ``ModelOutput`` (a dict of them) as its class."""
    import torch

    total = sum(sizes)
    if out is None:
        return [None] * len(sizes)
    if isinstance(out, torch.Tensor):
        if out.ndim < 1 or out.shape[0] != total:
            raise TypeError("an output that is not a batch")
        return list(torch.split(out, sizes))
    if isinstance(out, dict) and hasattr(out, "to_tuple"):  # transformers/diffusers ModelOutput
        fields = {k: split_output(v, sizes) for k, v in out.items()}
        return [type(out)(**{k: v[i] for k, v in fields.items()}) for i in range(len(sizes))]
    if isinstance(out, (tuple, list)):
        parts = [split_output(v, sizes) for v in out]
        return [type(out)(p[i] for p in parts) for i in range(len(sizes))]
    raise TypeError(f"an output of type {type(out).__name__} cannot be split")


def _run_generic(calls: list[_Call]) -> None:
    import torch

    first = calls[0]
    args = [torch.cat([c.positional[i] for c in calls]) for i in range(len(first.positional))]
    kwargs: dict[str, Any] = dict(first.fixed)
    for name in first.batched:
        kwargs[name] = torch.cat([c.batched[name] for c in calls])
    out = first.fn(*args, **kwargs)
    for c, part in zip(calls, split_output(out, [c.size for c in calls]), strict=True):
        c.result = part


def _run_batch(calls: list[_Call]) -> None:
    """Run ``calls`` (one key) as one call and give each its slice; alone when one."""
    import torch

    first = calls[0]
    if len(calls) == 1:
        _run_alone(first)
        return
    if first.fn is not None:
        try:
            _run_generic(calls)
        except Exception:  # noqa: BLE001 - each call again on its own: only a bad one fails
            for c in calls:
                _run_alone(c)
        return
    try:
        kwargs: dict[str, Any] = dict(first.fixed)
        for name, value in first.batched.items():
            if isinstance(value, dict):
                kwargs[name] = {k: torch.cat([c.batched[name][k] for c in calls]) for k in value}
            else:
                kwargs[name] = torch.cat([c.batched[name] for c in calls])
        sample = torch.cat([c.sample for c in calls])
        timestep = torch.cat([c.timestep for c in calls])
        out = first.module(sample, timestep, **kwargs)
        sizes = [c.size for c in calls]
        parts = [torch.split(o, sizes) if isinstance(o, torch.Tensor) else None for o in out]
        if any(p is None for p in parts):
            raise TypeError("a UNet output that is not a batch of tensors")
        for i, c in enumerate(calls):
            c.result = tuple(p[i] for p in parts)
    except Exception:  # noqa: BLE001 - each call again on its own: only a bad one fails
        for c in calls:
            _run_alone(c)


def _run_alone(call: _Call) -> None:
    try:
        call.result = (call.fn or call.module)(*call.args, **call.kwargs)
    except Exception as exc:  # noqa: BLE001 - handed to its caller
        call.error = exc


# -- the batcher --------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Participant:
    """One node that may call the UNet (a job's sampling loop)."""

    label: str
    expected: bool  # counts as coming before its first call (a batch-lane node)
    open: bool = True
    inflight: int = 0
    key: tuple[Any, ...] | None = None  # of its last call
    late: bool = False  # made a batch wait in vain: not expected until its next call
    loop_done: bool = False  # reported its last step
    models: set[int] = field(default_factory=set)  # ids of the batched modules it asked for
    loading: int = 0  # batched modules it is asking for now


class UNetBatcher:
    """Merges concurrent compatible UNet calls of several nodes (see the module doc).

    One per worker process (or local engine), shared by every node it runs. ``max_batch``
    bounds the calls merged (not the samples: a call under guidance holds two).
    """

    def __init__(self, max_batch: int = 8, max_wait_ms: float = 5.0) -> None:
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self._cond = threading.Condition()
        self._pending: list[_Call] = []
        self._participants: set[_Participant] = set()
        self._busy = False
        self.calls = 0
        self.batches = 0
        self.batched_calls = 0  # calls that ran in a batch of two or more
        self.largest = 0
        self.alone = 0  # calls that could not be batched

    # -- participants ---------------------------------------------------------------------------

    def scope(self, provider: Any, on_event: EventFn | None = None, *, label: str = "",
              batch: bool = False) -> NodeScope:
        """What one node runs with: ``models`` (the provider, its UNets batched) and
        ``on_event`` (``on_event`` seen on the way: a last step ends the loop); ``close()`` it
        when the node ends. ``batch``: a batch-lane node, expected from its start."""
        part = _Participant(label=label, expected=batch)
        with self._cond:
            self._participants.add(part)
            self._cond.notify_all()
        return NodeScope(self, part, provider, on_event)

    def _leave(self, part: _Participant) -> None:
        with self._cond:
            part.open = False
            self._participants.discard(part)
            self._cond.notify_all()

    @contextmanager
    def _asking(self, part: _Participant) -> Iterator[list[Any]]:
        """``part`` asks for a batched module (put in the list inside): while it loads, no batch
        waits for it; once it has it, batches of that module's calls may."""
        with self._cond:
            part.loading += 1
            self._cond.notify_all()  # a batch waiting for it waits no more
        got: list[Any] = []
        try:
            yield got
        finally:
            with self._cond:
                part.loading -= 1
                part.models.update(id(m) for m in got)
                self._cond.notify_all()

    def _step(self, part: _Participant, event: dict[str, Any]) -> None:
        if event.get("event") == "step" and event.get("step") == event.get("total"):
            with self._cond:
                part.loop_done = True
                self._cond.notify_all()

    def _expected(self, key: tuple[Any, ...], group: list[_Call]) -> list[_Participant]:
        """Participants whose next call may join a batch of ``key`` and have not sent it: those
        whose last call had ``key``, and batch-lane nodes yet to call that asked for its module
        (a job's sampling loop is not waited for by another job's prompt encoding); one that
        asked for none yet may call any."""
        members = {c.participant for c in group}
        model = group[0].model
        out = []
        for p in self._participants:
            if not p.open or p.inflight or p.late or p.loop_done or p in members:
                continue
            fresh = p.key is None and p.expected
            if (fresh and (model in p.models or not (p.models or p.loading))) or p.key == key:
                out.append(p)
        return out

    # -- calls ----------------------------------------------------------------------------------

    def call(self, part: _Participant | None, module: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        """``module(*args, **kwargs)`` (a UNet), batched with other participants' concurrent calls."""
        return self.run(part, plan_call(module, args, kwargs))

    def call_generic(self, part: _Participant | None, module: Any, fn: Any, tag: str,
                     args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``fn(*args, **kwargs)`` of ``module`` (see :func:`plan_generic`), batched likewise."""
        return self.run(part, plan_generic(module, fn, tag, args, kwargs))

    def run(self, part: _Participant | None, call: _Call) -> Any:
        """A planned call, batched with other participants' concurrent calls of its key."""
        call.participant = part
        call.model = id(call.module)
        if call.key is None or self.max_batch == 1:
            with self._cond:
                self.calls += 1
                self.alone += call.key is None
            return (call.fn or call.module)(*call.args, **call.kwargs)
        with self._cond:
            self.calls += 1
            call.arrived = time.monotonic()
            if part is not None:
                part.inflight += 1
                part.key, part.late, part.loop_done = call.key, False, False
            self._pending.append(call)
            self._cond.notify_all()  # the leader (only it waits on the condition) counts arrivals
        while not self._lead(call):
            # not the leader: wait for the result, or to become the leader (one wake-up each,
            # not one per arrival); the timeout is only a safety net
            call.turn.wait(1.0)
            call.turn.clear()
        if call.error is not None:
            raise call.error
        return call.result

    def _lead(self, call: _Call) -> bool:
        """If ``call`` leads now, wait for its batch to fill and run it; True once it is done."""
        with self._cond:
            while not call.done:
                group = self._leader_group(call)
                if group is None:
                    return False
                expected = self._expected(call.key, group)
                # the clock runs from the latest arrival: a batch keeps filling while calls come
                left = max(c.arrived for c in group) + self.max_wait - time.monotonic()
                if len(group) < self.max_batch and expected and left > 0:
                    self._cond.wait(left)
                    continue
                if expected and len(group) < self.max_batch:
                    for p in expected:  # waited for in vain: not again until it calls
                        p.late = True
                for c in group:
                    self._pending.remove(c)
                self._busy = True
                self._cond.release()
                try:
                    _run_batch(group)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self.batches += 1
                    self.largest = max(self.largest, len(group))
                    if len(group) > 1:
                        self.batched_calls += len(group)
                    for c in group:
                        c.done = True
                        if c.participant is not None:
                            c.participant.inflight -= 1
                        c.turn.set()
                    if self._pending:  # the next leader
                        self._pending[0].turn.set()
                    self._cond.notify_all()
            return True

    def _leader_group(self, call: _Call) -> list[_Call] | None:
        """The calls ``call`` would run now if it leads (the oldest pending call leads while no
        batch runs): those of its key, oldest first, ``max_batch`` at most; else None."""
        if self._busy or not self._pending or self._pending[0] is not call:
            return None
        return [c for c in self._pending if c.key == call.key][: self.max_batch]

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"max_batch": self.max_batch, "max_wait_ms": self.max_wait * 1000.0,
                    "calls": self.calls, "batches": self.batches, "batched_calls": self.batched_calls,
                    "largest": self.largest, "alone": self.alone,
                    "participants": len(self._participants)}


class NodeScope:
    """One node's view of the batcher: its models, its events, its departure."""

    def __init__(self, batcher: UNetBatcher, part: _Participant, provider: Any,
                 on_event: EventFn | None) -> None:
        self.batcher = batcher
        self.participant = part
        # without batching (max_batch 1) the node gets the provider itself: nothing in the way
        batched = provider is not None and batcher.max_batch > 1
        self.models = BatchingModels(provider, batcher, part) if batched else provider
        self._on_event = on_event

    def on_event(self, event: dict[str, Any]) -> None:
        self.batcher._step(self.participant, event)
        if self._on_event is not None:
            self._on_event(event)

    def close(self) -> None:
        self.batcher._leave(self.participant)

    def __enter__(self) -> NodeScope:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class BatchingModels:
    """A model provider whose ``load(ref, "unet")`` is the resident UNet behind the batcher.

    Everything else (other components, ``info``, ``report``...) is the provider's own.
    """

    def __init__(self, provider: Any, batcher: UNetBatcher, part: _Participant) -> None:
        self._provider = provider
        self._batcher = batcher
        self._part = part

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        if component not in ("unet", "text_encoder", "text_encoder_2", "vae"):
            return self._provider.load(ref, component, device=device)
        with self._batcher._asking(self._part) as got:
            value = self._provider.load(ref, component, device=device)
            got.append(value)
        if component == "unet" and callable(value) and hasattr(value, "forward"):
            wrapped: BatchedUNet = BatchedUNet(value, self._batcher, self._part)
        elif component in ("text_encoder", "text_encoder_2") and hasattr(value, "forward"):
            wrapped = BatchedModule(value, self._batcher, self._part, call="__call__")
        elif component == "vae" and callable(getattr(value, "decode", None)) and hasattr(value, "forward"):
            wrapped = BatchedModule(value, self._batcher, self._part, call="decode")
        else:
            return value
        return wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


class BatchedUNet:
    """A UNet module whose calls go through a :class:`UNetBatcher`; otherwise the module.

    Attributes (``config``, ``dtype``, ``device``...) are the module's. A deep copy (an
    IP-Adapter's UNet with its own attention processors) is a copy of the module itself,
    unbatched: it is another model.
    """

    def __init__(self, module: Any, batcher: UNetBatcher, part: _Participant) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_batcher", batcher)
        object.__setattr__(self, "_part", part)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._batcher.call(self._part, self._module, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._module, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        import copy

        return copy.deepcopy(self._module, memo)

    @property
    def module(self) -> Any:
        """The wrapped module."""
        return self._module

    def __repr__(self) -> str:
        return f"BatchedUNet({type(self._module).__name__})"


class BatchedModule(BatchedUNet):
    """A text encoder (its calls) or a VAE (its ``decode``) whose calls go through the batcher
    (:func:`plan_generic`): several jobs' prompt encodings or decodes of one shape become one
    call. Everything else (``encode``, ``config``, ``dtype``...) is the module's own."""

    def __init__(self, module: Any, batcher: UNetBatcher, part: _Participant, call: str) -> None:
        super().__init__(module, batcher, part)
        object.__setattr__(self, "_method", call)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._method != "__call__":
            return self._module(*args, **kwargs)
        return self._batcher.call_generic(self._part, self._module, self._module, "__call__", args, kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        if self._method != "decode":
            return self._module.decode(*args, **kwargs)
        decode = self._module.decode
        return self._batcher.call_generic(self._part, self._module, decode, "decode", args, kwargs)

    def __repr__(self) -> str:
        return f"BatchedModule({type(self._module).__name__}.{self._method})"


def unwrap(module: Any) -> Any:
    """The module behind a :class:`BatchedUNet` or :class:`BatchedModule` (or ``module`` itself)."""
    return module.module if isinstance(module, BatchedUNet) else module


# -- what an engine or a worker holds -----------------------------------------------------------------




def batches(block_class: Any) -> bool:
    """Whether a block class declares ``Resources(batch=True)``."""
    return bool(getattr(getattr(block_class, "resources", None), "batch", False))


class Batching:
    """The :class:`UNetBatcher` and :class:`Lanes` of one engine or worker process.

    ``on_change`` (if set) is called, outside any lock, whenever a node starts or ends.
    """

    def __init__(self, max_batch: int = 8, max_wait_ms: float = 5.0) -> None:
        self.max_batch = max(1, int(max_batch))
        self.batcher = UNetBatcher(self.max_batch, max_wait_ms)
        self.lanes = Lanes(self.max_batch)
        self.on_change: Callable[[], None] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Batching:
        """From ``[batching]`` of :class:`~orchestrator.config.Settings` (max 1 when off)."""
        b = getattr(settings, "batching", None)
        if b is None:
            return cls(1)
        return cls(b.max_batch if b.enabled else 1, b.max_wait_ms)

    @property
    def enabled(self) -> bool:
        return self.max_batch > 1

    def lane(self, block_class: Any, params: Any) -> str | None:
        """The lane of a node of ``block_class`` with ``params`` (None: it runs alone)."""
        if not self.enabled or not batches(block_class):
            return None
        model = params.get("model") if isinstance(params, dict) else getattr(params, "model", None)
        return model_key(model) or block_class.id

    @contextmanager
    def node(self, provider: Any, on_event: EventFn | None, *, lane: str | None, label: str = "",
             seq: int | None = None, order_wait: float = 600.0) -> Iterator[NodeScope]:
        """Run one node: wait for its turn in ``lane`` (see :class:`Lanes`), then inside a
        :class:`NodeScope` whose ``models`` and ``on_event`` the node's context takes."""
        with self.lanes.turn(lane, seq, order_wait):
            self._changed()
            scope = self.batcher.scope(provider, on_event, label=label, batch=lane is not None)
            try:
                yield scope
            finally:
                scope.close()
        self._changed()

    def has_room(self, jobs: int) -> bool:
        """Whether another job may start beside ``jobs`` running ones: none runs, or each is
        inside a batching node and fewer than ``max_batch`` run (the local engine's rule)."""
        if jobs <= 0:
            return True
        running = self.lanes.running()
        return (jobs < self.max_batch and len(running) == jobs
                and all(r is not None for r in running))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def stats(self) -> dict[str, Any]:
        return {**self.batcher.stats(), "enabled": self.enabled, "running": len(self.lanes.running())}
