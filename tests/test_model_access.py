"""The typed model interface (orchestrator/model_access.py): what each method asks the provider
for, the family's text encoders, the default device, errors, and that the built-in plugins use
it rather than ``load(ref, "<component>")``."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator import BlockError, Context, ModelInfo, Models
from orchestrator.runtime.devices import resolve_device

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
ROOT = Path(__file__).resolve().parents[1]


class Recording:
    """A provider that records each call and answers with a ModelInfo for "info"."""

    def __init__(self, family: str = "sd") -> None:
        self.family = family
        self.calls: list[tuple[Any, Any, str]] = []

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        self.calls.append((ref, component, device))
        if component == "info":
            parts = ("unet", "vae", "text_encoder", "tokenizer")
            if self.family == "sdxl":
                parts += ("text_encoder_2", "tokenizer_2")
            return ModelInfo(name=str(ref), family=self.family, folder=Path("."), pipeline_class="X",
                             components=parts)
        return (ref, component, device)


CALLS = [
    (lambda m: m.unet("a", device="cpu"), ("a", "unet", "cpu")),
    (lambda m: m.vae("a", device="meta"), ("a", "vae", "meta")),
    (lambda m: m.controlnet("c", device="cpu"), ("c", "controlnet", "cpu")),
    (lambda m: m.image_encoder("v", device="cpu"), ("v", "image_encoder", "cpu")),
    (lambda m: m.upscaler("4x.pth", device="cpu"), ("4x.pth", "upscaler", "cpu")),
    (lambda m: m.onnx("a", "vae_decoder", device="cpu"), ("a", "onnx:vae_decoder", "cpu")),
    (lambda m: m.onnx("net.onnx", device="cpu"), ("net.onnx", "onnx", "cpu")),
    (lambda m: m.tokenizer("a", 2), ("a", "tokenizer_2", "cpu")),
    (lambda m: m.text_encoder("a", 2, device="cpu"), ("a", "text_encoder_2", "cpu")),
    (lambda m: m.scheduler("a"), ("a", "scheduler", "cpu")),
    (lambda m: m.pipeline("a", device="cpu"), ("a", None, "cpu")),
    (lambda m: m.load("a", "custom:part", device="cpu"), ("a", "custom:part", "cpu")),
]


@pytest.mark.parametrize("call,expected", CALLS)
def test_each_method_asks_the_provider_for_its_component(call, expected):
    rec = Recording()
    assert call(Models(rec, node="n")) == expected
    assert rec.calls == [expected]


def test_info_is_the_providers_model_info():
    info = Models(Recording("sdxl"), node="n").info("m")
    assert isinstance(info, ModelInfo) and info.family == "sdxl" and info.name == "m"


@pytest.mark.parametrize("family,parts", [("sd", ["tokenizer"]), ("sdxl", ["tokenizer", "tokenizer_2"])])
def test_tokenizers_and_text_encoders_are_the_familys(family, parts):
    rec = Recording(family)
    m = Models(rec, node="n")
    assert [c for _, c, _ in m.tokenizers("x")] == parts
    assert [c for _, c, _ in m.text_encoders("x", device="cpu")] == [p.replace("tokenizer", "text_encoder")
                                                                      for p in parts]


@pytest.mark.parametrize("device", ["cpu", "cuda", "gpu"])
def test_the_default_device_is_the_contexts_resolved(device):
    rec = Recording()
    ctx = Context(node="n", block="b", seed=0, device=device, models=rec)
    ctx.models.unet("a")
    ctx.models.vae("a", device="cpu")  # an explicit device is kept as given
    assert [d for _, _, d in rec.calls] == [resolve_device(device), "cpu"]


def test_context_wraps_a_provider_once_and_names_its_node():
    rec = Recording()
    ctx = Context(node="first", block="b", seed=0, models=rec)
    assert isinstance(ctx.models, Models) and ctx.models.provider is rec
    again = Context(node="second", block="b", seed=0, models=ctx.models)  # a tile's context
    assert again.models.provider is rec and again.models.node == "second"
    assert dataclasses.replace(ctx, on_event=None).models.provider is rec


def test_no_models_is_a_structured_error_naming_the_node():
    ctx = Context(node="dec", block="sd.vae_decode", seed=0)
    with pytest.raises(BlockError) as err:
        ctx.models.vae("tiny-sd")
    assert err.value.to_dict() | {"message": ""} == {"type": "model", "node": "dec", "field": "params.model",
                                                     "message": ""}


def test_file_and_check_without_a_manager():
    m = Models(Recording(), node="n")
    m.check("anything")  # a provider that cannot check ahead checks at load
    with pytest.raises(BlockError) as err:
        m.file("net.onnx", "onnx", field="params.model")
    d = err.value.to_dict()
    assert (d["type"], d["node"], d["field"], d["value"]) == ("model", "n", "params.model", "net.onnx")
    assert "no model manager" in d["message"]


def test_over_the_real_manager(models):
    """The facade hands out the manager's resident parts themselves, and its errors."""
    m = Context(node="n", block="b", seed=0, models=models).models
    info = m.info("tiny-sd")
    assert isinstance(info, ModelInfo) and info.family == "sd"
    assert m.unet("tiny-sd", device="cpu") is models.load("tiny-sd", "unet", device="cpu")
    assert m.tokenizers("tiny-sd") == [models.load("tiny-sd", "tokenizer")]
    assert m.text_encoders("tiny-sd", device="cpu")[0] is models.load("tiny-sd", "text_encoder", device="cpu")
    assert type(m.scheduler("tiny-sd")).__name__ == info.scheduler["_class_name"]
    assert m.scheduler("tiny-sd") is not m.scheduler("tiny-sd")  # a fresh one each time
    with pytest.raises(BlockError) as err:
        m.unet("no-such-model", device="cpu")
    assert err.value.to_dict()["field"] == "params.model"
    with pytest.raises(BlockError) as err:
        m.check({"name": "tiny-sd", "loras": [{"path": "missing.safetensors", "weight": 1.0}]})
    assert err.value.to_dict()["field"] == "params.model.loras[0].path"
    with pytest.raises(BlockError) as err:
        m.file("missing.onnx", "onnx", field="params.model")
    assert err.value.to_dict()["field"] == "params.model"


def test_the_built_in_plugins_use_the_typed_methods():
    """``load(ref, "<component>")`` is the low-level path for third-party providers' own parts;
    a built-in block that names a component by string should use (or add) a typed method."""
    found = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = node.func if isinstance(node, ast.Call) else None
            if (isinstance(func, ast.Attribute) and func.attr == "load"
                    and isinstance(func.value, ast.Attribute) and func.value.attr == "models"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
