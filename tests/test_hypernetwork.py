"""Hypernetworks as ComfyUI applies them (comfy_extras/nodes_hypernetwork.py): A1111 ``.pt`` files read with
torch's weights-only loader only, our safetensors layout, the k/v patch on every attention checked against an
independent attention processor, refusals as structured errors, and ComfyUI's HypernetworkLoader in API and
UI workflows run on tiny-sd with the file in the models folder."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from graphs import check
from graphs.comfy import import_result
from graphs.comfy.ui_export import api_to_ui
from orchestrator.models import ModelError, ModelFolders, ModelManager, ModelRegistry
from orchestrator.models.hypernetwork import read_hypernetwork
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry

WIDTHS = (32, 64)  # tiny-sd's attention input widths (self-attention 32/64, cross-attention 32)


def mlp_state(dim: int, g: torch.Generator, hidden: int = 2, norm: bool = False) -> dict[str, torch.Tensor]:
    """One A1111 MLP (``linear.N.weight/bias``): dim -> dim*hidden -> dim, a LayerNorm after each linear."""
    sizes = [dim, dim * hidden, dim]
    sd: dict[str, torch.Tensor] = {}
    index = 0
    for a, b in itertools.pairwise(sizes):
        sd[f"linear.{index}.weight"] = torch.randn(b, a, generator=g) * 0.2
        sd[f"linear.{index}.bias"] = torch.randn(b, generator=g) * 0.1
        index += 1
        if norm:
            sd[f"linear.{index}.weight"] = 1 + torch.randn(b, generator=g) * 0.1
            sd[f"linear.{index}.bias"] = torch.randn(b, generator=g) * 0.1
            index += 1
        index += 1  # A1111 numbers the activation / dropout modules between the layers
    return sd


def a1111_file(path: Path, widths=WIDTHS, seed: int = 0, **options) -> Path:
    g = torch.Generator().manual_seed(seed)
    norm = bool(options.get("is_layer_norm", False))
    data: dict = {dim: [mlp_state(dim, g, norm=norm), mlp_state(dim, g, norm=norm)] for dim in widths}
    data.update({"activation_func": "relu", "is_layer_norm": False, "use_dropout": True,
                 "activate_output": False, "last_layer_dropout": False, "layer_structure": [1, 2, 1],
                 "name": path.stem, "step": 1000, "sd_checkpoint": "abc123", **options})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, str(path))
    return path


class ComfyPatchProcessor:
    """diffusers' attention with ComfyUI's hypernetwork patch written out as ComfyUI's attention does it:
    k and v inputs are ``x + mlp(x) * strength`` when the file has their width (the reference)."""

    def __init__(self, layers: dict, strength: float) -> None:
        self.layers, self.strength = layers, strength

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        k_in, v_in = context, context
        if context.shape[-1] in self.layers:
            mk, mv = self.layers[context.shape[-1]]
            k_in = context + mk(context) * self.strength
            v_in = context + mv(context) * self.strength
        q = attn.to_q(hidden_states)
        k, v = attn.to_k(k_in), attn.to_v(v_in)
        b, n = q.shape[0], attn.heads
        q, k, v = (t.view(b, -1, n, t.shape[-1] // n).transpose(1, 2) for t in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, -1, n * out.shape[-1])
        return attn.to_out[1](attn.to_out[0](out))


def _unet_out(unet, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 8, 8, generator=g)
    ctx = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([500]), encoder_hidden_states=ctx).sample


@pytest.fixture()
def manager(tmp_path):
    root = tmp_path / "models"
    reg = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                        allow_paths=False)
    return ModelManager(reg), root


@pytest.mark.parametrize("options", [{}, {"is_layer_norm": True, "activation_func": "tanh",
                                          "activate_output": True}])
def test_a1111_hypernetwork_patches_every_attention_as_comfyui(manager, options):
    import copy

    m, root = manager
    a1111_file(root / "hypernetworks" / "style.pt", **options)
    patched = m.load({"name": "tiny-sd", "hypernetworks": [{"path": "style", "strength": 0.8}]}, "unet")
    base = m.load("tiny-sd", "unet")
    net = read_hypernetwork(root / "hypernetworks" / "style.pt")
    reference = copy.deepcopy(base)
    reference.set_attn_processor(ComfyPatchProcessor(net.layers, 0.8))
    ours, theirs, plain = _unet_out(patched), _unet_out(reference), _unet_out(base)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    assert (ours - plain).abs().max() > 1e-3  # it does something
    assert _unet_out(m.load("tiny-sd", "unet")).equal(plain)  # the base model is untouched


def test_strength_zero_is_the_plain_model(manager):
    m, root = manager
    a1111_file(root / "hypernetworks" / "h.pt")
    plain = _unet_out(m.load("tiny-sd", "unet"))
    ref = {"name": "tiny-sd", "hypernetworks": [{"path": "h.pt", "strength": 0.0}]}
    zero = _unet_out(m.load(ref, "unet"))
    assert torch.allclose(zero, plain, atol=1e-6)


def test_safetensors_layout_equals_the_pt_file(manager):
    m, root = manager
    pt = a1111_file(root / "hypernetworks" / "a.pt", is_layer_norm=True)
    data = torch.load(str(pt), weights_only=True)
    flat = {f"{dim}.{side}.{k}": v for dim in WIDTHS for side in (0, 1) for k, v in data[dim][side].items()}
    save_file(flat, str(root / "hypernetworks" / "b.safetensors"),
              metadata={"activation_func": "relu", "is_layer_norm": "true"})
    a = _unet_out(m.load({"name": "tiny-sd", "hypernetworks": [{"path": "a"}]}, "unet"))
    b = _unet_out(m.load({"name": "tiny-sd", "hypernetworks": [{"path": "b"}]}, "unet"))
    assert torch.equal(a, b)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_code_is_refused_by_the_weights_only_loader(manager, tmp_path):
    m, root = manager
    marker = tmp_path / "pwned"
    path = root / "hypernetworks" / "evil.pt"
    path.parent.mkdir(parents=True)
    torch.save({32: [{}, {}], "activation_func": _Evil(marker)}, str(path))
    with pytest.raises(ModelError) as exc:
        m.load({"name": "tiny-sd", "hypernetworks": [{"path": "evil"}]}, "unet")
    d = exc.value.to_dict()
    assert (d["reason"], d["field"]) == ("pickle", "params.model.hypernetworks[0]")
    assert not marker.exists()


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: a1111_file(p, widths=(320, 768)), "another model family"),
    (lambda p: a1111_file(p, activation_func="gelu-ish"), "activation_func"),
    (lambda p: (torch.save({32: "not a pair"}, str(p)), p)[1], "pair of state dicts"),
    (lambda p: (p.write_bytes(b"\x00" * 64), p)[1], "neither"),
])
def test_bad_hypernetwork_files_are_structured_errors_naming_the_param(manager, make, words):
    m, root = manager
    (root / "hypernetworks").mkdir(parents=True)
    make(root / "hypernetworks" / "bad.pt")
    with pytest.raises(ModelError) as exc:
        m.load({"name": "tiny-sd", "hypernetworks": [{"path": "bad"}]}, "unet")
    d = exc.value.to_dict()
    assert d["field"].startswith("params.model.hypernetworks[0]") and words in d["message"], d


def test_hypernetwork_names_are_names_never_paths(manager, tmp_path):
    m, _ = manager
    outside = a1111_file(tmp_path / "outside.pt")
    for name in (str(outside), "../outside.pt", "missing"):
        with pytest.raises(ModelError) as exc:
            m.check({"name": "tiny-sd", "hypernetworks": [{"path": name}]})
        d = exc.value.to_dict()
        assert d["field"] == "params.model.hypernetworks[0].path" and d["reason"] in ("path", "unknown")


def test_legacy_refuse_refuses_pt_hypernetworks(tmp_path):
    root = tmp_path / "models"
    a1111_file(root / "hypernetworks" / "h.pt")
    reg = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                        allow_paths=False, legacy="refuse")
    with pytest.raises(ModelError) as exc:
        ModelManager(reg).load({"name": "tiny-sd", "hypernetworks": [{"path": "h"}]}, "unet")
    assert exc.value.to_dict()["reason"] == "pickle"


def test_comfyui_hypernetwork_workflow_imports_clean_and_runs(manager, catalog, tmp_path):
    m, root = manager
    a1111_file(root / "hypernetworks" / "anime" / "style.pt")
    wf = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "10": {"class_type": "HypernetworkLoader",
               "inputs": {"model": ["4", 0], "hypernetwork_name": "anime/style.pt", "strength": 1.0}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 3, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "hn", "images": ["8", 0]}},
    }
    ui, why = api_to_ui(wf)
    assert ui is not None, why
    images = []
    for i, workflow in enumerate((wf, ui)):
        names = {"sd15.safetensors": "tiny-sd", "anime/style.pt": "anime/style.pt"}
        result = import_result(workflow, catalog=catalog, model_map=names, extra_mappings=COMFY_MAPPINGS)
        assert result.problems == [], [p.to_dict() for p in result.problems]
        assert check(result.graph, catalog) == []
        run = LocalExecutor(catalog, models=m, outputs_dir=tmp_path / str(i)).run(result.graph)
        images.append(np.asarray(Image.open(run.files[0]["path"])))
    assert np.array_equal(images[0], images[1]) and images[0].std() > 0


def test_a_merge_keeps_the_first_models_hypernetwork_and_drops_the_seconds(manager):
    """ComfyUI merges weights (get_key_patches) into a clone of model1: model1's attention patches stay,
    model2's are not weights and do not come along."""
    m, root = manager
    a1111_file(root / "hypernetworks" / "h.pt")
    hn = {"name": "tiny-sd", "hypernetworks": [{"path": "h", "strength": 0.7}]}
    merged_first = m.load({"name": "tiny-sd", "merge": {"op": "simple", "a": hn, "b": "tiny-sd",
                                                        "ratio": 0.5}}, "unet")
    assert torch.equal(_unet_out(merged_first), _unet_out(m.load(hn, "unet")))  # tiny-sd with itself
    merged_second = m.load({"name": "tiny-sd", "merge": {"op": "simple", "a": "tiny-sd", "b": hn,
                                                         "ratio": 0.5}}, "unet")
    assert torch.allclose(_unet_out(merged_second), _unet_out(m.load("tiny-sd", "unet")), atol=1e-6)


class SequentialPatchProcessor(ComfyPatchProcessor):
    """Several hypernetwork patches, run one after the other as ComfyUI runs its attention patches."""

    def __init__(self, patches: list[tuple[dict, float]]) -> None:
        self.patches = patches

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        k_in, v_in = context, context
        for layers, strength in self.patches:
            if context.shape[-1] in layers:
                mk, mv = layers[context.shape[-1]]
                k_in, v_in = k_in + mk(k_in) * strength, v_in + mv(v_in) * strength
        q, k, v = attn.to_q(hidden_states), attn.to_k(k_in), attn.to_v(v_in)
        b, n = q.shape[0], attn.heads
        q, k, v = (t.view(b, -1, n, t.shape[-1] // n).transpose(1, 2) for t in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, -1, n * out.shape[-1])
        return attn.to_out[1](attn.to_out[0](out))


def test_two_hypernetworks_apply_in_order_as_comfyui_runs_its_patches(manager):
    import copy

    m, root = manager
    a1111_file(root / "hypernetworks" / "one.pt", seed=1, activation_func="tanh")
    a1111_file(root / "hypernetworks" / "two.pt", seed=2, activation_func="tanh")
    ref = {"name": "tiny-sd",
           "hypernetworks": [{"path": "one", "strength": 0.9}, {"path": "two", "strength": 0.6}]}
    ours = _unet_out(m.load(ref, "unet"))
    reference = copy.deepcopy(m.load("tiny-sd", "unet"))
    one, two = (read_hypernetwork(root / "hypernetworks" / f"{n}.pt").layers for n in ("one", "two"))
    reference.set_attn_processor(SequentialPatchProcessor([(one, 0.9), (two, 0.6)]))
    assert torch.allclose(ours, _unet_out(reference), atol=1e-5)
    swapped = copy.deepcopy(m.load("tiny-sd", "unet"))
    swapped.set_attn_processor(SequentialPatchProcessor([(two, 0.6), (one, 0.9)]))
    assert not torch.allclose(ours, _unet_out(swapped), atol=1e-5)  # the order matters, and is kept
