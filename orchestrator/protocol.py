"""The contract between the daemon and its clients: job states, request shapes, routes.

Kept small and free of heavy imports so the client can use it without Ray or torch.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobState(enum.StrEnum):
    """Where a job is. ``queued -> planning -> running -> succeeded | failed | cancelled``."""

    QUEUED = "queued"  # accepted and on disk, waiting for a worker slot
    PLANNING = "planning"  # the agent is building a graph for the prompt
    RUNNING = "running"  # the graph is executing
    SUCCEEDED = "succeeded"  # finished; outputs are recorded
    FAILED = "failed"  # finished with errors (structured, in ``errors``)
    CANCELLED = "cancelled"  # cancelled by a user before it finished

    @property
    def final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


FINAL_STATES = frozenset(s.value for s in JobState if s.final)


INPUT_ROLES = ("image", "mask", "style", "palette", "reference", "control")  # as graphs.library.ROLES
INPUT_ROLE = Literal["image", "mask", "style", "palette", "reference", "control"]


class AgentOptions(BaseModel):
    """How the agent plans a prompt job."""

    model_config = ConfigDict(extra="forbid")

    llm: str | None = Field(None, max_length=200,
                            description="a name from the daemon's [agent] allowed_llms (or its llm, or "
                                        "'offline'); None: the daemon's default")
    rounds: int = Field(3, ge=0, le=10, description="critic/repair rounds")
    width: int | None = Field(None, ge=64, le=16384, description="wanted width in pixels (width x "
                                                                 "height at most limits.pixels)")
    height: int | None = Field(None, ge=64, le=16384, description="wanted height in pixels")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed for the planned graph")
    template: str | None = Field(None, max_length=200, description="force this template (a name "
                                                                   "from GET /templates)")
    inputs: dict[INPUT_ROLE, str] | None = Field(
        None, max_length=len(INPUT_ROLES),
        description="input files by role (image, mask, style, palette, reference, control): names of "
                    "files in the input folder (as POST /inputs answers), never paths outside it")


class SubmitRequest(BaseModel):
    """``POST /jobs``: exactly one of ``graph`` and ``prompt``."""

    model_config = ConfigDict(extra="forbid")

    graph: dict[str, Any] | None = Field(None, description="a graph in the orchestrator.graph/1 format")
    prompt: str | None = Field(None, min_length=1, max_length=4000, description="a text prompt")
    agent: AgentOptions = Field(default_factory=AgentOptions)
    priority: int = Field(0, ge=-100, le=100, description="higher runs first")
    name: str | None = Field(None, max_length=200, description="a label for the job")


class PruneRequest(BaseModel):
    """``POST /jobs/prune``: with no criterion, the configured retention policy applies; with any,
    only those given. Queued and running jobs and the ``keep_latest`` newest finished ones stay."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    dry_run: bool = Field(False, description="report what would go, remove nothing")
    older_than_s: float | None = Field(None, ge=0, le=3.2e9, description="finished longer ago than this")
    max_jobs: int | None = Field(None, ge=0, le=10**9, description="keep at most this many jobs")
    max_output_bytes: int | None = Field(None, ge=0, le=1 << 60, description="keep at most this many "
                                                                            "bytes of outputs")
    keep_latest: int | None = Field(None, ge=0, le=10**9, description="the newest finished jobs kept "
                                                                      "whatever the criteria")


class JobInfo(BaseModel):
    """What ``GET /jobs/{id}`` answers."""

    id: str
    state: JobState
    priority: int
    kind: str  # "graph" or "prompt"
    name: str | None = None
    prompt: str | None = None
    attempts: int = 0
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    graph: dict[str, Any] | None = None  # the graph actually run
    trace: list[dict[str, Any]] = Field(default_factory=list)  # the agent's rounds
    outputs: list[dict[str, Any]] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    score: float | None = None  # mean of the graph's scorer nodes (meta.role = "score"), if any


# Routes (the client builds URLs from these)
JOBS = "/jobs"
JOB = "/jobs/{id}"
JOB_CANCEL = "/jobs/{id}/cancel"
JOB_EVENTS = "/jobs/{id}/events"
JOB_OUTPUT = "/jobs/{id}/outputs/{name}"
BLOCKS = "/blocks"
MODELS = "/models"
TEMPLATES = "/templates"
HEALTH = "/health"
METRICS = "/metrics"
JOBS_PRUNE = "/jobs/prune"  # POST: prune finished jobs and their outputs (PruneRequest)
INPUTS = "/inputs"  # POST: upload an image or mask to the input folder; GET: list them
JOB_RATING = "/jobs/{id}/rating"  # POST: rate a job (RatingRequest); GET: its rating
JOB_PREVIEW = "/jobs/{id}/preview.png"  # GET: the latest preview of a running job
JOB_GRAPH = "/jobs/{id}/graph.svg"  # GET: the job's graph drawn as SVG (the dashboard's)
IMPORT_COMFY = "/import/comfy"  # POST: a ComfyUI workflow (API format) translated to our graph
DASHBOARD = "/"  # GET: the dashboard page (not in the OpenAPI document)
DASHBOARD_OVERVIEW = "/ui/api/overview"  # GET: what the dashboard polls (not in the document)
DASHBOARD_JOB = "/ui/jobs/{id}"  # GET: the dashboard's page of one job (not in the document)

# Which routes the clients cover: method name -> (route, HTTP method). "Job.x" is a method of the
# job handle (orchestrator.client.Job, and AsyncJob likewise); the others are methods of Client
# and AsyncClient. tests/test_contract.py checks this table against the app and both clients.
CLIENT_ROUTES: dict[str, tuple[str, str]] = {
    "submit": (JOBS, "POST"),
    "jobs": (JOBS, "GET"),
    "job": (JOB, "GET"),
    "blocks": (BLOCKS, "GET"),
    "templates": (TEMPLATES, "GET"),
    "models": (MODELS, "GET"),
    "health": (HEALTH, "GET"),
    "metrics": (METRICS, "GET"),
    "prune": (JOBS_PRUNE, "POST"),
    "upload": (INPUTS, "POST"),
    "upload_info": (INPUTS, "POST"),
    "inputs": (INPUTS, "GET"),
    "Job.status": (JOB, "GET"),
    "Job.wait": (JOB, "GET"),
    "Job.cancel": (JOB_CANCEL, "POST"),
    "Job.events": (JOB_EVENTS, "GET"),
    "Job.result": (JOB_OUTPUT, "GET"),
    "Job.save": (JOB_OUTPUT, "GET"),
    "Job.rate": (JOB_RATING, "POST"),
    "Job.rating": (JOB_RATING, "GET"),
}

# Routes of ours the clients leave out, and why (browsers, editors and the CLI's import use them)
SERVER_ONLY_ROUTES: dict[tuple[str, str], str] = {
    (JOB_PREVIEW, "GET"): "a PNG the dashboard and the ComfyUI editor show while a job runs",
    (JOB_GRAPH, "GET"): "an SVG the dashboard shows",
    (IMPORT_COMFY, "POST"): "translating a ComfyUI workflow over HTTP (the CLI translates locally)",
    (DASHBOARD, "GET"): "the dashboard page",
    (DASHBOARD_OVERVIEW, "GET"): "the dashboard's poll",
    (DASHBOARD_JOB, "GET"): "the dashboard's job page",
}

# ComfyUI's HTTP API (orchestrator.server.comfy): its routes at these prefixes (ComfyUI's own
# paths, the current frontend's /api, the editor's), its WebSocket, and the editor itself
COMFY_PREFIXES = ("", "/api", "/comfy/api")
COMFY_WEBSOCKETS = ("/ws", "/api/ws", "/comfy/ws")
EDITOR = "/comfy/"

IDEMPOTENCY_HEADER = "Idempotency-Key"
TOKEN_ENV = "ORCHESTRATOR_TOKEN"
URL_ENV = "ORCHESTRATOR_URL"
