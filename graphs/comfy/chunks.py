"""What a PNG this project writes carries for ComfyUI: its ``prompt`` and ``workflow`` chunks.

ComfyUI's ``SaveImage`` stores the API-format prompt that ran (``prompt``) and the editor's
UI-format workflow (``workflow``) as PNG text chunks; ComfyUI opens such a PNG dropped on
its editor, and PNG-info tools show them. :func:`comfy_chunks` gives both for one of our
graphs when every node maps back (:func:`graphs.comfy.export.export_api`; the workflow
when every class's declaration is known, :func:`graphs.comfy.ui_export.api_to_ui`), and
nothing when the graph does not: a PNG never carries a partial or approximate workflow.
The text is ASCII JSON, so it fits ``tEXt`` chunks, which every reader takes.

>>> from graphs import GraphBuilder
>>> b = GraphBuilder()
>>> latent = b.add("sd.empty_latent", model="tiny-sd", width=64, height=64)
>>> image = b.add("sd.vae_decode", latent=latent.latent, model="tiny-sd")
>>> _ = b.add("image.save", image=image.image, name="fox")
>>> sorted(comfy_chunks(b.build()))
['prompt', 'workflow']
>>> comfy_chunks(GraphBuilder().build())
{}
"""

from __future__ import annotations

import json

from graphs.comfy.export import export_api
from graphs.comfy.ui_export import api_to_ui
from graphs.model import Graph

PROMPT_CHUNK, WORKFLOW_CHUNK = "prompt", "workflow"


def comfy_chunks(graph: Graph) -> dict[str, str]:
    """``{"prompt": API JSON, "workflow": UI JSON}`` for ``graph``, or ``{}`` when it does not map back."""
    try:
        prompt, problems = export_api(graph)
    except (KeyError, TypeError, ValueError, AttributeError):  # params no ComfyUI node can hold
        return {}
    if problems or not prompt:
        return {}
    out = {PROMPT_CHUNK: json.dumps(prompt, separators=(",", ":"))}
    workflow, _why = api_to_ui(prompt)
    if workflow is not None:
        out[WORKFLOW_CHUNK] = json.dumps(workflow, separators=(",", ":"))
    return out
