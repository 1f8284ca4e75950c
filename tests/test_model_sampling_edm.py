"""ComfyUI's ModelSamplingContinuousEDM: continuous EDM sigmas in the model reference, read by the native
samplers; checked against ComfyUI's formulas and against diffusers' EDMEulerScheduler (an independent
implementation of the same preconditioning), and the ComfyUI node imported from API and UI workflows."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from graphs.comfy import import_result
from graphs.comfy.ui_export import api_to_ui
from orchestrator.models import ModelError, ModelRef
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import unet_prompt
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import prepare_noise

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread
COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings


def edm_ref(prediction: str = "v_prediction", sigma_max: float = 120.0, sigma_min: float = 0.002) -> dict:
    return {"name": "tiny-sd", "sampling": {"type": "continuous_edm", "prediction": prediction,
                                            "sigma_max": sigma_max, "sigma_min": sigma_min}}


@pytest.mark.parametrize(("prediction", "sigma_data"), [("v_prediction", 1.0), ("edm", 0.5), ("eps", 1.0)])
def test_the_sigmas_and_outputs_are_comfyuis_formulas(models, prediction, sigma_data):
    info = models.load(edm_ref(prediction, 80.0, 0.01), "info")
    ms = ModelSampling.from_config(dict(info.scheduler))
    expected = torch.linspace(math.log(0.01), math.log(80.0), 1000).exp()
    assert torch.equal(ms.sigmas, expected) and ms.continuous and ms.sigma_data == sigma_data
    sigma = torch.tensor([3.0])
    assert torch.allclose(ms.timestep(sigma), 0.25 * sigma.log())
    assert torch.allclose(ms.sigma(ms.timestep(sigma)), sigma)
    assert math.isclose(ms.percent_to_sigma(0.25), math.exp((math.log(80.0) - math.log(0.01)) * 0.75
                                                            + math.log(0.01)), rel_tol=1e-6)
    assert ms.percent_to_sigma(0.0) > 1e8 and ms.percent_to_sigma(1.0) == 0.0
    x, out = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    s, sd = 3.0, sigma_data
    want = {"v_prediction": x * sd ** 2 / (s ** 2 + sd ** 2) - out * s * sd / (s ** 2 + sd ** 2) ** 0.5,
            "edm": x * sd ** 2 / (s ** 2 + sd ** 2) + out * s * sd / (s ** 2 + sd ** 2) ** 0.5,
            "eps": x - out * s}[prediction]
    assert torch.allclose(ms.calculate_denoised(sigma, out, x), want, atol=1e-6)
    assert torch.allclose(ms.calculate_input(sigma, x), x / (s ** 2 + sd ** 2) ** 0.5)
    assert models.load("tiny-sd", "info").scheduler["_class_name"] != "EDMEulerScheduler"  # not cached over


@pytest.mark.parametrize(("prediction", "diffusers_prediction", "sigma_data"),
                         [("v_prediction", "v_prediction", 1.0), ("edm", "epsilon", 0.5)])
def test_ksampler_on_continuous_edm_equals_diffusers_edm_euler(catalog, models, prediction,
                                                               diffusers_prediction, sigma_data):
    from diffusers import EDMEulerScheduler

    ref = edm_ref(prediction, 80.0, 0.002)
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt="a lighthouse", negative_prompt="")
    lat = b.add("sd.empty_latent", id="empty", model="tiny-sd", width=64, height=64)
    b.add("sd.ksampler", id="k", cond=c.cond, latent=lat.latent, model=ref, seed=5, steps=4, cfg=1.0,
          sampler="euler", scheduler="karras")
    res = LocalExecutor(catalog, models=models).run(b.build())
    ours = res.outputs["k"]["latent"]
    unet = models.load("tiny-sd", "unet")
    prompt = unet_prompt(res.outputs["cond"]["cond"], batch=1, do_cfg=False, pixel_size=(64, 64),
                         device="cpu", dtype=unet.dtype, node="k")
    sched = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=sigma_data,
                              prediction_type=diffusers_prediction, sigma_schedule="karras")
    sched.set_timesteps(4)
    latent = prepare_noise((1, 4, 8, 8), 5) * sched.init_noise_sigma
    with torch.no_grad():
        for t in sched.timesteps:
            x_in = sched.scale_model_input(latent, t)
            out = unet(x_in, t, encoder_hidden_states=prompt.embeds).sample
            latent = sched.step(out, t, latent).prev_sample
    assert float((ours - latent).abs().max()) <= 1e-4, float((ours - latent).abs().max())
    plain_run = LocalExecutor(catalog, models=models).run(_with_model(b.build(), "tiny-sd"))
    plain = plain_run.outputs["k"]["latent"]
    assert float((plain - ours).abs().max()) > 1e-2  # the override changes the run


def _with_model(graph, model):
    graph.nodes["k"].params["model"] = model
    return graph


def test_bad_edm_references_are_refused(models):
    for bad in (edm_ref(sigma_max=0.001, sigma_min=0.002), edm_ref(prediction="cosmos_rflow"),
                {**edm_ref(), "sampling": {"type": "flow"}}):
        with pytest.raises(ModelError) as exc:
            models.load(bad, "info")
        assert exc.value.to_dict()["reason"] == "reference"
    assert ModelRef.parse(edm_ref()).key() == "tiny-sd+edm(v_prediction:0.002-120)"
    assert models.load(edm_ref(), "unet") is models.load("tiny-sd", "unet")  # no weights change


def _workflow(sampling: str) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "cosxl.safetensors"}},
        "10": {"class_type": "ModelSamplingContinuousEDM",
               "inputs": {"model": ["4", 0], "sampling": sampling, "sigma_max": 120.0, "sigma_min": 0.002}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler_ancestral", "scheduler": "karras",
            "denoise": 1.0, "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "edm", "images": ["8", 0]}},
    }


def test_comfyui_continuous_edm_node_imports_clean_and_runs(catalog, models, tmp_path):
    wf = _workflow("v_prediction")
    ui, why = api_to_ui(wf)
    assert ui is not None, why
    for i, workflow in enumerate((wf, ui)):
        result = import_result(workflow, catalog=catalog, model_map={"cosxl.safetensors": "tiny-sd"},
                               extra_mappings=COMFY_MAPPINGS)
        assert result.problems == [], [p.to_dict() for p in result.problems]
        sampler = next(n for n in result.graph.nodes.values() if n.block == "sd.ksampler")
        assert ModelRef.parse(sampler.params["model"]).sampling.prediction == "v_prediction"
        run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path / str(i)).run(result.graph)
        assert len(run.files) == 1


def test_playground_sampling_is_reported_not_approximated(catalog):
    result = import_result(_workflow("edm_playground_v2.5"), catalog=catalog,
                           model_map={"cosxl.safetensors": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    errors = [e.to_dict() for e in result.errors]
    assert any(e["node"] == "10" and e["field"] == "sampling" and "latent format" in e["message"]
               for e in errors), errors


def test_model_sampling_discrete_after_the_edm_node_brings_back_the_models_own_schedule(models):
    """ComfyUI: each ModelSampling* node replaces the model's sampling object, so a ModelSamplingDiscrete
    after the EDM node samples the model's own discrete schedule with its prediction override."""
    edm_info = models.load(edm_ref(), "info")
    after = ModelSampling.from_config(dict(edm_info.scheduler), "v_prediction")
    own = ModelSampling.from_config(dict(models.load("tiny-sd", "info").scheduler), "v_prediction")
    assert not after.continuous and after.prediction == "v_prediction"
    assert torch.equal(after.sigmas, own.sigmas)
