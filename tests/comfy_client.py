"""A ComfyUI API client written from ComfyUI's documented protocol (its
``script_examples/websockets_api_example.py``): queue a prompt with our own ``prompt_id`` and
``client_id``, follow the WebSocket until ``executing`` names no node for that prompt, then
read ``/history/{prompt_id}`` and fetch each image with ``/view``. Standard library plus the
``websockets`` client, nothing of ours."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from websockets.sync.client import connect


class ComfyClient:
    def __init__(self, server_address: str, headers: dict[str, str] | None = None) -> None:
        self.server_address = server_address  # "127.0.0.1:8188"
        self.client_id = str(uuid.uuid4())
        self.headers = dict(headers or {})

    def _open(self, req: urllib.request.Request) -> Any:
        for k, v in self.headers.items():
            req.add_header(k, v)
        return urllib.request.urlopen(req, timeout=120)

    def queue_prompt(self, prompt: dict[str, Any], prompt_id: str) -> dict[str, Any]:
        p = {"prompt": prompt, "client_id": self.client_id, "prompt_id": prompt_id}
        data = json.dumps(p).encode("utf-8")
        req = urllib.request.Request(f"http://{self.server_address}/prompt", data=data)
        with self._open(req) as response:
            return json.loads(response.read())

    def get_image(self, filename: str, subfolder: str, folder_type: str) -> bytes:
        url_values = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder,
                                             "type": folder_type})
        url = f"http://{self.server_address}/view?{url_values}"
        with self._open(urllib.request.Request(url)) as response:
            return response.read()

    def get_history(self, prompt_id: str) -> dict[str, Any]:
        url = f"http://{self.server_address}/history/{prompt_id}"
        with self._open(urllib.request.Request(url)) as response:
            return json.loads(response.read())

    def get_images(self, prompt: dict[str, Any]) -> tuple[dict[str, list[bytes]], list[Any]]:
        """``(node id -> PNG bytes, every message received)``, as the example's ``get_images``."""
        messages: list[Any] = []
        with connect(f"ws://{self.server_address}/ws?clientId={self.client_id}",
                     additional_headers=self.headers, open_timeout=60) as ws:
            prompt_id = str(uuid.uuid4())
            self.queue_prompt(prompt, prompt_id)
            while True:
                out = ws.recv(timeout=300)
                if isinstance(out, str):
                    message = json.loads(out)
                    messages.append(message)
                    if message["type"] == "executing":
                        data = message["data"]
                        if data["node"] is None and data["prompt_id"] == prompt_id:
                            break  # execution is done
                else:
                    messages.append(out)  # binary previews
        output_images: dict[str, list[bytes]] = {}
        history = self.get_history(prompt_id)[prompt_id]
        for node_id, node_output in history["outputs"].items():
            if "images" in node_output:
                output_images[node_id] = [self.get_image(i["filename"], i["subfolder"], i["type"])
                                          for i in node_output["images"]]
        return output_images, messages
