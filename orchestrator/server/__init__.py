"""The daemon: the HTTP API (FastAPI on uvicorn), its guards, the job service, the dashboard and
ComfyUI's own routes.

- :mod:`~orchestrator.server.daemon` wires plugins, engine, store, planner and the API, and serves;
  :mod:`~orchestrator.server.service` takes queued jobs from the store, plans prompts, runs graphs.
- :mod:`~orchestrator.server.api` builds the app from :mod:`~orchestrator.server.routes` (ours),
  :mod:`~orchestrator.server.comfy` (ComfyUI's routes and editor), :mod:`~orchestrator.server.inputs`,
  :mod:`~orchestrator.server.ratings_api`, :mod:`~orchestrator.server.retention_api`,
  :mod:`~orchestrator.server.comfy_import` and :mod:`~orchestrator.server.dashboard`.
- Guards: :mod:`~orchestrator.server.security` (token, origin), :mod:`~orchestrator.server.json_body`,
  :mod:`~orchestrator.server.request_checks`, :mod:`~orchestrator.server.redact`,
  :mod:`~orchestrator.server.connections` (the HTTP server's connection limits).
"""
