"""The runtime: compiling a graph and running it, in process or over Ray worker actors.

- :mod:`~orchestrator.runtime.compile`: validate a graph, expand transforms, give every node
  its content key; :mod:`~orchestrator.runtime.limits`: the size limits of one graph.
- :mod:`~orchestrator.runtime.executor`: the reference in-process executor;
  :mod:`~orchestrator.runtime.engine`: the engines the daemon's job service runs graphs on.
- The Ray scheduler: :mod:`~orchestrator.runtime.dagrun` (its rules, without Ray),
  :mod:`~orchestrator.runtime.dispatch` (the Ray I/O around them),
  :mod:`~orchestrator.runtime.scheduler`, :mod:`~orchestrator.runtime.pool` (the worker actors),
  :mod:`~orchestrator.runtime.worker` (one actor per GPU), :mod:`~orchestrator.runtime.jobs`,
  :mod:`~orchestrator.runtime.ray_engine`.
- Tiles: :mod:`~orchestrator.runtime.tiling`, :mod:`~orchestrator.runtime.tiling_ray`,
  :mod:`~orchestrator.runtime.tile_serving`; node results: :mod:`~orchestrator.runtime.cache`;
  devices: :mod:`~orchestrator.runtime.devices`.
"""
