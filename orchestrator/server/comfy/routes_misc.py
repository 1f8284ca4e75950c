"""ComfyUI's start-up routes: object_info, system_stats, features, extensions, embeddings,
model folders, and the editor's settings, users and user files (see :mod:`.misc`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from orchestrator.server.comfy.misc import (
    FOLDERS,
    UserStore,
    embeddings,
    feature_flags,
    model_names,
    system_stats,
)
from orchestrator.server.comfy.object_info import ObjectInfo
from orchestrator.server.comfy.routes import error
from orchestrator.server.json_body import BodyError, loads_strict


def _raw_names(request: Request) -> list[str] | None:
    """The ``/``-separated parts after ``/userdata/`` in the raw (still %-encoded) path, decoded."""
    from urllib.parse import unquote

    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes):
        return None
    _, sep, rest = raw.decode("latin-1").partition("/userdata/")
    return [unquote(p) for p in rest.split("?", 1)[0].split("/")] if sep else None


class MiscRoutes:
    def __init__(self, settings: Any, models: Any, object_info: ObjectInfo, users: UserStore) -> None:
        self.settings = settings
        self.models = models
        self.info = object_info
        self.users = users

    async def object_info(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.info.all)

    async def object_info_one(self, node_class: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.info.one, node_class[:200]) or {}

    async def system_stats(self) -> dict[str, Any]:
        return system_stats()

    async def features(self) -> dict[str, Any]:
        return feature_flags(self.settings.limits.upload_bytes)

    async def extensions(self) -> list[str]:
        """Web extensions of custom nodes: none (the frontend's core ones are built in)."""
        return []

    async def empty_object(self) -> dict[str, Any]:
        """``/i18n``, ``/workflow_templates``, ``/global_subgraphs``: no custom nodes, so none."""
        return {}

    async def free(self) -> Response:
        """ComfyUI's "unload models": not offered; each worker keeps models under its memory budget
        (LRU) and unloads them itself. Said plainly rather than answered with a 200 that did nothing."""
        return error("not_supported", "this daemon's workers keep models under their memory budget and "
                     "unload them themselves; there is no manual unload", None, status=501)

    async def empty_list(self) -> list[Any]:
        """``/experiment/models``: no model downloads offered (nothing downloads here)."""
        return []

    async def embeddings(self) -> list[str]:
        return await asyncio.to_thread(embeddings, self.models)

    async def model_folders(self) -> list[str]:
        return list(FOLDERS)

    async def model_folder(self, folder: str) -> Response:
        kind = FOLDERS.get(folder)
        if kind is None:
            return error("not_found", f"no model folder {folder[:100]!r}; known: {', '.join(FOLDERS)}",
                         "folder", status=404)
        return JSONResponse(await asyncio.to_thread(model_names, self.models, kind))

    # -- the editor's own storage ----------------------------------------------------------

    async def users_info(self) -> dict[str, Any]:
        return {"storage": "server", "migrated": True}

    async def get_settings(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.users.settings)

    async def get_setting(self, setting_id: str) -> Any:
        return (await asyncio.to_thread(self.users.settings)).get(setting_id)

    async def _body(self, request: Request) -> Any:
        return loads_strict(await request.body(), max_depth=self.settings.limits.json_depth)

    async def post_settings(self, request: Request) -> Response:
        try:
            values = await self._body(request)
        except BodyError as exc:
            return JSONResponse({"errors": [exc.to_dict()]}, status_code=400)
        except ClientDisconnect:
            return error("request", "the body did not arrive in full", "body")
        if not isinstance(values, dict):
            return error("request", "the body must be a JSON object of settings", "body")
        return await self._save_settings(values)

    async def post_setting(self, setting_id: str, request: Request) -> Response:
        try:
            value = await self._body(request)
        except BodyError as exc:
            return JSONResponse({"errors": [exc.to_dict()]}, status_code=400)
        except ClientDisconnect:
            return error("request", "the body did not arrive in full", "body")
        if len(setting_id) > 200:
            return error("request", "setting ids are at most 200 characters", "setting_id")
        return await self._save_settings({setting_id: value})

    async def _save_settings(self, values: dict[str, Any]) -> Response:
        try:
            await asyncio.to_thread(self.users.set_settings, values)
        except ValueError as exc:
            return error("limit", str(exc), "body", status=413)
        return Response(status_code=200)

    async def list_userdata(self, dir: str = Query("", max_length=300), recurse: bool = False,
                            full_info: bool = False, split: bool = False) -> Response:
        files = await asyncio.to_thread(self.users.listing, dir.strip("/"), recurse, full_info)
        if files is None:
            return error("not_found", f"no user folder {dir[:200]!r}", "dir", status=404)
        if split and not full_info:
            files = [[f, *f.split("/")] for f in files]
        return JSONResponse(files)

    async def get_userdata(self, file: str) -> Response:
        path = self.users.path(file)
        if path is None or not path.is_file() or path.is_symlink():
            return error("not_found", f"no user file {file[:200]!r}", "file", status=404)
        data = await asyncio.to_thread(path.read_bytes)
        media = "application/json" if file.endswith(".json") else "application/octet-stream"
        return Response(data, media_type=media)

    async def post_userdata(self, file: str, request: Request, overwrite: bool = True,
                            full_info: bool = False) -> Response:
        try:
            data = await request.body()
        except ClientDisconnect:
            return error("request", "the body did not arrive in full", "body")
        names = _raw_names(request)
        if names is not None and len(names) == 3 and names[1] == "move":
            # /userdata/{file}/move/{dest}: a name's own slashes come %2F-encoded, these do not
            status, answer = await asyncio.to_thread(self.users.move, names[0], names[2], overwrite)
        elif names is not None and len(names) != 1:
            return error("request", "a user file name's slashes must be sent as %2F", "file")
        else:
            status, answer = await asyncio.to_thread(self.users.write, file, data, overwrite)
        if status != 200:
            assert isinstance(answer, str)
            kinds = {400: "request", 404: "not_found", 409: "conflict"}
            return error(kinds.get(status, "limit"), answer, "file", status=status)
        assert isinstance(answer, dict)
        return JSONResponse(answer if full_info else answer["path"])

    async def delete_userdata(self, file: str) -> Response:
        path = self.users.path(file)
        if path is None or not path.is_file() or path.is_symlink():
            return error("not_found", f"no user file {file[:200]!r}", "file", status=404)
        await asyncio.to_thread(path.unlink)
        return Response(status_code=204)

    def router(self, *, with_models: bool) -> APIRouter:
        r = APIRouter()
        add = r.add_api_route
        add("/object_info", self.object_info, methods=["GET"], include_in_schema=False)
        add("/object_info/{node_class}", self.object_info_one, methods=["GET"], include_in_schema=False)
        add("/system_stats", self.system_stats, methods=["GET"], include_in_schema=False)
        add("/features", self.features, methods=["GET"], include_in_schema=False)
        add("/extensions", self.extensions, methods=["GET"], include_in_schema=False)
        add("/embeddings", self.embeddings, methods=["GET"], include_in_schema=False)
        for path in ("/i18n", "/workflow_templates", "/global_subgraphs"):
            add(path, self.empty_object, methods=["GET"], include_in_schema=False)
        add("/experiment/models", self.empty_list, methods=["GET"], include_in_schema=False)
        add("/free", self.free, methods=["POST"], include_in_schema=False)
        if with_models:  # not at the root: our own GET /models lists the model library
            add("/models", self.model_folders, methods=["GET"], include_in_schema=False)
            add("/models/{folder}", self.model_folder, methods=["GET"], include_in_schema=False)
        add("/users", self.users_info, methods=["GET"], include_in_schema=False)
        add("/settings", self.get_settings, methods=["GET"], include_in_schema=False)
        add("/settings", self.post_settings, methods=["POST"], include_in_schema=False)
        add("/settings/{setting_id}", self.get_setting, methods=["GET"], include_in_schema=False)
        add("/settings/{setting_id}", self.post_setting, methods=["POST"], include_in_schema=False)
        add("/userdata", self.list_userdata, methods=["GET"], include_in_schema=False)
        add("/userdata/{file:path}", self.get_userdata, methods=["GET"], include_in_schema=False)
        add("/userdata/{file:path}", self.post_userdata, methods=["POST"], include_in_schema=False)
        add("/userdata/{file:path}", self.delete_userdata, methods=["DELETE"], include_in_schema=False)
        return r
