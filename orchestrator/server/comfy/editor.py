"""The ComfyUI editor: the ``comfyui-frontend-package`` files served at ``/comfy/``.

The frontend computes its API base from its own address (``/comfy/`` -> ``/comfy``) and calls
``/comfy/api/...`` and the socket ``/comfy/ws``: both are this daemon's ComfyUI routes. The
package is an optional extra (``pip install 'orchestrator[editor]'``); without it ``/comfy/``
answers 404 saying so. Static files are served by Starlette's ``StaticFiles`` from the
package's ``static`` folder only (no path outside it, no directory listings).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from orchestrator.protocol import EDITOR

EDITOR_PATH = EDITOR.rstrip("/")


def frontend_root() -> Path | None:
    """The installed frontend's ``static`` folder, or None when the package is not installed."""
    try:
        import comfyui_frontend_package
    except ImportError:
        return None
    root = Path(comfyui_frontend_package.__file__).parent / "static"
    return root if (root / "index.html").is_file() else None


def mount_editor(app: FastAPI) -> bool:
    """Serve the editor at ``/comfy/``; False (and a 404 that says why) when it is not installed."""
    root = frontend_root()

    @app.get(EDITOR_PATH, include_in_schema=False)
    async def editor_slash() -> RedirectResponse:
        return RedirectResponse(EDITOR_PATH + "/", status_code=307)

    if root is None:
        @app.get(EDITOR_PATH + "/{rest:path}", include_in_schema=False)
        async def editor_missing(rest: str) -> JSONResponse:
            return JSONResponse({"errors": [{"type": "not_found", "message": "the ComfyUI editor is not "
                                             "installed: pip install 'orchestrator[editor]' (the "
                                             "comfyui-frontend-package)", "node": None, "field": None}]},
                                status_code=404)
        return False
    @app.get(EDITOR_PATH + "/templates/{name}", include_in_schema=False)
    async def templates_index(name: str) -> JSONResponse:
        """The workflow-template index (ComfyUI's comfyui-workflow-templates package): none here."""
        if name.startswith("index") and name.endswith(".json"):
            return JSONResponse([])
        return JSONResponse({"errors": [{"type": "not_found", "message": "no workflow templates are "
                                         "installed", "node": None, "field": "name"}]}, status_code=404)

    # the frontend asks for its progress favicons at an absolute path (/assets/images/...)
    app.mount("/assets/images/favicon_progress_16x16",
              StaticFiles(directory=root / "assets" / "images" / "favicon_progress_16x16", check_dir=False),
              name="comfy-editor-favicons")
    app.mount(EDITOR_PATH, StaticFiles(directory=root, html=True), name="comfy-editor")
    return True
