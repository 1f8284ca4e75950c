"""The HTTP API's own routes, one module per concern; :func:`orchestrator.server.api.create_app` wires them.

Each module has one ``add_*_routes(app, ...)``: :mod:`.errors` (the error body and the handlers),
:mod:`.jobs` (submit, list, get, cancel, outputs, preview), :mod:`.events` (a job's event stream),
:mod:`.meta` (blocks, templates, models, health, metrics). The routes themselves are constants
in :mod:`orchestrator.protocol`.
"""
