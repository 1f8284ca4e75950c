"""The web dashboard: server-rendered pages plus a little inline script, no build step.

``/`` shows the queue and running jobs with live progress, a gallery of finished outputs
and the workers; ``/ui/jobs/{id}`` shows one job: its graph picture, params, the agent's
trace round by round, errors and outputs. ``/jobs/{id}/graph.svg`` is the picture alone.
Everything the pages show comes from the same JSON API, under the same auth rules; with a
token, open ``/?token=...`` once: the daemon sets a session cookie and drops the token from the address.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from graphs import Graph, GraphValidationError
from graphs.render import to_svg
from orchestrator.protocol import DASHBOARD, DASHBOARD_JOB, DASHBOARD_OVERVIEW, JOB_GRAPH, JOB_OUTPUT
from orchestrator.server.request_checks import job_id_error, shown
from orchestrator.server.service import JobService

log = logging.getLogger("orchestrator.server.dashboard")

STATIC = Path(__file__).with_name("static")
STYLE = (STATIC / "dashboard.css").read_text(encoding="utf-8")
SCRIPT_COMMON = (STATIC / "common.js").read_text(encoding="utf-8")
SCRIPT_INDEX = (STATIC / "index.js").read_text(encoding="utf-8")





def _page(title: str, body: str, script: str = "") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><header><strong>orchestrator</strong>"
            f"<a href='/'>dashboard</a><a href='/comfy/'>ComfyUI editor</a><a href='/docs'>API</a>"
            f"</header><main>{body}</main>"
            f"<script>{SCRIPT_COMMON}{script}</script></body></html>")


def _index() -> str:
    body = """
<section><h2>Queue and running jobs</h2><div id="counts"></div>
<table><thead><tr><th>job</th><th>state</th><th>priority</th><th>what</th><th>progress</th></tr></thead>
<tbody id="queue"></tbody></table></section>
<section><h2>Gallery</h2><div class="gallery" id="gallery"></div></section>
<section><h2>Recent jobs</h2><table><tbody id="recent"></tbody></table></section>
<section><h2>Workers</h2><pre id="workers"></pre></section>"""
    return _page("orchestrator dashboard", body, SCRIPT_INDEX)


def _trace_html(trace: list[dict[str, Any]]) -> str:
    if not trace:
        return "<p>no agent rounds (the graph was submitted as is)</p>"
    parts = []
    for i, rnd in enumerate(trace):
        fields = "".join(
            f"<div><strong>{html.escape(str(k))}</strong><pre>"
            f"{html.escape(v if isinstance(v, str) else json.dumps(v, indent=2, default=str))}</pre></div>"
            for k, v in rnd.items())
        parts.append(f"<div class='round' data-round='{i}'><h3>round {i + 1}</h3>{fields}</div>")
    return "".join(parts)


def _job_page(job: dict[str, Any], outputs: list[dict[str, Any]], svg: str) -> str:
    jid = html.escape(job["id"])
    errors = "".join(f"<li class='error'>[{html.escape(str(e.get('type')))}] "
                     f"{html.escape(str(e.get('message')))}</li>" for e in job["errors"])
    params = ""
    if job["graph"]:
        rows = "".join(
            f"<tr><td>{html.escape(nid)}</td><td>{html.escape(n['block'])}</td>"
            f"<td><code>{html.escape(json.dumps(n.get('params', {})))}</code></td></tr>"
            for nid, n in job["graph"]["nodes"].items())
        params = f"<table><thead><tr><th>node</th><th>block</th><th>params</th></tr></thead>{rows}</table>"
    figs = "".join(
        f"<figure class='output'><img alt='{html.escape(o['name'])}' "
        f"src='/jobs/{jid}/outputs/{html.escape(o['name'])}'><figcaption>{html.escape(o['name'])}"
        "</figcaption></figure>" for o in outputs)
    rating = ""
    if job["state"] == "succeeded":  # only finished outputs can be rated (POST /jobs/{id}/rating)
        shown_rating = json.dumps(job.get("rating"))
        rating = "<div id='rating'>rate these outputs: <span id='stars'></span></div>"
        rating_script = f"document.getElementById('stars').outerHTML = stars('{jid}', {shown_rating});"
    else:
        rating_script = ""
    body = f"""
<section><h2>Job {jid} <span class="state state-{job['state']}" id="job-state">{job['state']}</span></h2>
<div>priority {job['priority']} · attempts {job['attempts']}
{('· prompt: ' + html.escape(job['prompt'])) if job['prompt'] else ''}</div>
{f"<ul id='errors'>{errors}</ul>" if errors else ''}</section>
<section><h2>Graph</h2><div class="graph" id="graph">{svg or '<p>no graph yet</p>'}</div></section>
<section><h2>Outputs</h2>{rating}<div class="gallery">{figs or 'none'}</div></section>
<section><h2>Parameters</h2>{params or 'none'}</section>
<section><h2>Agent trace</h2><div id="trace">{_trace_html(job['trace'])}</div></section>"""
    script = (rating_script
              + "document.querySelectorAll('img').forEach(i => i.src = authed(i.getAttribute('src')));"
              f"const st='{job['state']}'; if (!['succeeded','failed','cancelled'].includes(st))"
              " setTimeout(() => location.reload(), 1500);")
    return _page(f"job {job['id']}", body, script)


def mount_dashboard(app: FastAPI, service: JobService) -> None:
    """Add the dashboard routes to the API app."""
    store = service.store
    catalog = service.engine.catalog

    def graph_svg(job: dict[str, Any]) -> str:
        if not job.get("graph"):
            return ""
        try:
            graph = Graph.from_dict(job["graph"])
            return to_svg(graph, catalog, title=job.get("name") or job["id"])
        except GraphValidationError:
            return ""
        except (ValueError, TypeError, RecursionError, OverflowError):  # a graph the picture cannot draw
            log.warning("job %s: its graph cannot be drawn", job["id"], exc_info=True)
            return ""

    @app.get(DASHBOARD, response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return _index()

    @app.get(DASHBOARD_OVERVIEW, include_in_schema=False)
    async def overview() -> dict[str, Any]:
        jobs = store.list(limit=60)
        for j in jobs:
            j["outputs"] = [{"name": o["name"], "url": JOB_OUTPUT.format(id=j["id"], name=o["name"])}
                            for o in store.outputs(j["id"])] if j["state"] == "succeeded" else []
            j.pop("request", None)
            j.pop("trace", None)
        return {"jobs": jobs, "counts": store.counts(), "engine": service.engine.stats()}

    @app.get(DASHBOARD_JOB, response_class=HTMLResponse, include_in_schema=False)
    async def job_page(id: str) -> Response:
        job = store.get(id) if job_id_error(id) is None else None
        if job is None:
            return JSONResponse({"errors": [{"type": "not_found", "message": f"no job {shown(id)}",
                                             "node": None, "field": "id"}]}, status_code=404)
        return HTMLResponse(_job_page(job, store.outputs(id), graph_svg(job)))

    @app.get(JOB_GRAPH)
    async def job_graph(id: str) -> Response:
        """The picture of the graph a job ran (or is about to run)."""
        job = store.get(id) if job_id_error(id) is None else None
        svg = graph_svg(job) if job else ""
        if not svg:
            return JSONResponse({"errors": [{"type": "not_found", "message": f"job {shown(id)} has no graph",
                                             "node": None, "field": "id"}]}, status_code=404)
        return Response(svg, media_type="image/svg+xml")
