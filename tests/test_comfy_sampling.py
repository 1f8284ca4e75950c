"""ComfyUI's sampler workflows import onto the native sampler blocks and run (tiny-sdxl, tiny-sd).

The workflows are written here in ComfyUI's API format, as ComfyUI's own examples build
them: SDXL-Turbo (SDTurboScheduler + KSamplerSelect + SamplerCustom, cfg 1), the SDXL
base + refiner pair of KSamplerAdvanced nodes, and SamplerCustomAdvanced with its noise,
guider and split sigmas.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from graphs.comfy import export_api, import_workflow
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry


def loader(ckpt: str) -> dict:
    return {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}}


def text(t: str) -> dict:
    return {"class_type": "CLIPTextEncode", "inputs": {"text": t, "clip": ["4", 1]}}


SDXL_TURBO = {
    "4": loader("sd_xl_turbo_1.0_fp16.safetensors"),
    "6": text("a cinematic photo of a fox in the snow"),
    "7": text("blurry"),
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "22": {"class_type": "SDTurboScheduler", "inputs": {"steps": 1, "denoise": 1.0, "model": ["4", 0]}},
    "14": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}},
    "13": {"class_type": "SamplerCustom", "inputs": {
        "add_noise": True, "noise_seed": 0, "cfg": 1.0, "model": ["4", 0], "positive": ["6", 0],
        "negative": ["7", 0], "sampler": ["14", 0], "sigmas": ["22", 0], "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["4", 2]}},
    "27": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}


def sdxl_refiner(handoff: int = 20, steps: int = 25) -> dict:
    advanced = {"cfg": 8.0, "sampler_name": "euler", "scheduler": "normal", "steps": steps,
                "noise_seed": 721897303}
    positive = "evening sunset scenery blue sky nature, glass bottle with a galaxy in it"
    return {
        "4": loader("sd_xl_base_1.0.safetensors"),
        "12": loader("sd_xl_refiner_1.0.safetensors"),
        "6": text(positive),
        "7": text("text, watermark"),
        "15": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["12", 1]}},
        "16": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["12", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "10": {"class_type": "KSamplerAdvanced", "inputs": {
            **advanced, "add_noise": "enable", "start_at_step": 0, "end_at_step": handoff,
            "return_with_leftover_noise": "enable", "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "11": {"class_type": "KSamplerAdvanced", "inputs": {
            **advanced, "add_noise": "disable", "start_at_step": handoff, "end_at_step": 10000,
            "return_with_leftover_noise": "disable", "model": ["12", 0], "positive": ["15", 0],
            "negative": ["16", 0], "latent_image": ["10", 0]}},
        "17": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["12", 2]}},
        "19": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["17", 0]}},
    }


SDXL = {"sd_xl_turbo_1.0_fp16.safetensors": "tiny-sdxl", "sd_xl_base_1.0.safetensors": "tiny-sdxl",
        "sd_xl_refiner_1.0.safetensors": "tiny-sdxl"}


@pytest.fixture(scope="module")
def ex(catalog, models):
    return LocalExecutor(catalog, models=models)


def test_sdxl_turbo_custom_sampling_workflow_imports_exactly_and_runs(catalog, ex, tmp_path):
    graph, problems = import_workflow(SDXL_TURBO, catalog, model_map=SDXL, extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    blocks = sorted(n.block for n in graph.nodes.values())
    assert blocks == ["image.save", "sd.empty_latent", "sd.encode_prompt", "sd.guider", "sd.noise",
                      "sd.sample_custom", "sd.sampler_select", "sd.sigmas_turbo", "sd.vae_decode"]
    sample = next(n for n in graph.nodes.values() if n.block == "sd.sample_custom")
    guider = graph.nodes[sample.inputs["guider"].split(".")[0]]
    assert guider.params == {"model": "tiny-sdxl", "cfg": 1.0}
    result = ex.run(graph)
    image = next(v["image"] for k, v in result.outputs.items() if graph.nodes[k].block == "sd.vae_decode")
    assert image.shape == (1, 64, 64, 3)


def test_sdxl_base_and_refiner_handoff_imports_as_a_step_window_and_is_exact(catalog, ex):
    graph, problems = import_workflow(sdxl_refiner(), catalog, model_map=SDXL, extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    base, refiner = graph.nodes["ksampler_advanced_10"], graph.nodes["ksampler_advanced_11"]
    assert (base.block, refiner.block) == ("sd.ksampler", "sd.ksampler")
    assert (base.params["end_step"], base.params["return_with_leftover_noise"]) == (20, True)
    assert (refiner.params["start_step"], refiner.params["add_noise"]) == (20, False)
    out = ex.run(graph).outputs
    # the same model as base and refiner with the same prompts: the pair is one 25-step run
    whole, _ = import_workflow(sdxl_refiner(handoff=25), catalog, model_map=SDXL,
                               extra_mappings=COMFY_MAPPINGS)
    ref = ex.run(whole).outputs["ksampler_advanced_10"]["latent"]
    handed = out["ksampler_advanced_11"]["latent"]
    assert handed.shape == ref.shape == (1, 4, 8, 8)
    assert float((handed - ref).abs().max()) <= 1e-4 * max(1.0, float(ref.abs().max()))


def test_sampler_custom_advanced_with_split_sigmas(catalog, ex):
    prompt = {
        "4": loader("v1-5-pruned-emaonly.safetensors"),
        "6": text("a castle"), "7": text("lowres"),
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "20": {"class_type": "BasicScheduler", "inputs": {"scheduler": "karras", "steps": 6, "denoise": 1.0,
                                                         "model": ["4", 0]}},
        "21": {"class_type": "SplitSigmas", "inputs": {"step": 3, "sigmas": ["20", 0]}},
        "22": {"class_type": "SamplerDPMPP_2M_SDE", "inputs": {"solver_type": "heun", "eta": 1.0,
                                                              "s_noise": 1.0, "noise_device": "cpu"}},
        "23": {"class_type": "RandomNoise", "inputs": {"noise_seed": 99}},
        "24": {"class_type": "CFGGuider", "inputs": {"cfg": 5.0, "model": ["4", 0], "positive": ["6", 0],
                                                    "negative": ["7", 0]}},
        "25": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["23", 0], "guider": ["24", 0], "sampler": ["22", 0], "sigmas": ["21", 0],
            "latent_image": ["5", 0]}},
        "26": {"class_type": "DisableNoise", "inputs": {}},
        "27": {"class_type": "BasicGuider", "inputs": {"model": ["4", 0], "conditioning": ["6", 0]}},
        "28": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "lcm"}},
        "29": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["26", 0], "guider": ["27", 0], "sampler": ["28", 0], "sigmas": ["21", 1],
            "latent_image": ["25", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["29", 1], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}},
    }
    graph, problems = import_workflow(prompt, catalog, model_map={"v1-5-pruned-emaonly": "tiny-sd"},
                                      extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    select = next(n for n in graph.nodes.values() if n.params.get("solver_type"))
    assert select.params == {"sampler": "dpmpp_2m_sde", "eta": 1.0, "s_noise": 1.0, "solver_type": "heun"}
    out = ex.run(graph).outputs
    assert out["vae_decode_8"]["image"].shape == (2, 64, 64, 3)


def test_unknown_sampler_and_scheduler_names_are_reported_approximations(catalog):
    prompt = sdxl_refiner()
    prompt["10"]["inputs"].update(sampler_name="res_multistep", scheduler="AYS SDXL")
    graph, problems = import_workflow(prompt, catalog, model_map=SDXL, extra_mappings=COMFY_MAPPINGS)
    assert sorted((p.type, p.field, p.details["value"]) for p in problems) == [
        ("approximated", "sampler_name", "res_multistep"), ("approximated", "scheduler", "AYS SDXL")]
    assert graph.nodes["ksampler_advanced_10"].params["sampler"] == "euler"


@pytest.mark.parametrize("workflow", ["turbo", "refiner"])
def test_custom_sampling_exports_back_and_reimports_to_the_same_blocks(catalog, workflow):
    from graphs.comfy import export_api

    prompt = SDXL_TURBO if workflow == "turbo" else sdxl_refiner()
    graph, problems = import_workflow(prompt, catalog, model_map=SDXL, extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    api, problems = export_api(graph, model_map=SDXL)
    assert problems == []
    classes = sorted(n["class_type"] for n in api.values())
    if workflow == "turbo":  # SamplerCustom comes back as its three parts
        assert {"SDTurboScheduler", "KSamplerSelect", "RandomNoise", "BasicGuider",
                "SamplerCustomAdvanced"} <= set(classes)
    else:
        assert classes.count("KSamplerAdvanced") == 2
    again, problems = import_workflow(api, catalog, model_map=SDXL, extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    assert sorted(n.block for n in again.nodes.values()) == sorted(n.block for n in graph.nodes.values())
    params = sorted(str(sorted(n.params.items())) for n in again.nodes.values() if n.block.startswith("sd.s"))
    assert params == sorted(str(sorted(n.params.items())) for n in graph.nodes.values()
                            if n.block.startswith("sd.s"))


def api_to_ui(prompt: dict) -> dict:
    """The same workflow in ComfyUI's UI format: widget values listed in each class's order (a seed widget
    followed by its control_after_generate value), links as [id, from, slot, to, input slot, type]."""
    from graphs.comfy.nodes import CORE_NODES, SEED_WIDGETS

    nodes, links = [], []
    for node_id, node in prompt.items():
        info = CORE_NODES[node["class_type"]]
        inputs, values = [], []
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                links.append([len(links) + 1, int(value[0]), value[1], int(node_id), len(inputs), "*"])
                inputs.append({"name": name, "type": "*", "link": len(links)})
        for name, default in info.widgets:
            values.append(node["inputs"].get(name, default))
            if name in SEED_WIDGETS:
                values.append("fixed")
        nodes.append({"id": int(node_id), "type": node["class_type"], "inputs": inputs, "outputs": [],
                      "widgets_values": values, "mode": 0})
    return {"last_node_id": max(n["id"] for n in nodes), "last_link_id": len(links), "nodes": nodes,
            "links": links, "version": 0.4}


def test_custom_sampling_in_ui_format_imports_as_in_api_format(catalog):
    prompt = {
        **{k: v for k, v in SDXL_TURBO.items() if k not in ("13", "14", "22")},
        "22": {"class_type": "AlignYourStepsScheduler", "inputs": {"model_type": "SDXL", "steps": 4,
                                                                  "denoise": 1.0}},
        "23": {"class_type": "FlipSigmas", "inputs": {"sigmas": ["22", 0]}},
        "24": {"class_type": "FlipSigmas", "inputs": {"sigmas": ["23", 0]}},
        "14": {"class_type": "SamplerDPMPP_2M_SDE", "inputs": {"solver_type": "heun", "eta": 0.5,
                                                              "s_noise": 1.0, "noise_device": "gpu"}},
        "15": {"class_type": "SamplerLMS", "inputs": {"order": 3}},
        "16": {"class_type": "RandomNoise", "inputs": {"noise_seed": 77}},
        "17": {"class_type": "CFGGuider", "inputs": {"cfg": 3.5, "model": ["4", 0], "positive": ["6", 0],
                                                    "negative": ["7", 0]}},
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["16", 0], "guider": ["17", 0], "sampler": ["14", 0], "sigmas": ["24", 0],
            "latent_image": ["5", 0]}},
        "18": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["16", 0], "guider": ["17", 0], "sampler": ["15", 0], "sigmas": ["22", 0],
            "latent_image": ["13", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["18", 0], "vae": ["4", 2]}},
    }
    from_api, problems = import_workflow(prompt, catalog, model_map=SDXL, extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    from_ui, problems = import_workflow(api_to_ui(prompt), catalog, model_map=SDXL,
                                        extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    assert {k: (n.block, n.params, n.inputs) for k, n in from_ui.nodes.items()} == \
        {k: (n.block, n.params, n.inputs) for k, n in from_api.nodes.items()}
    select = {n.params["sampler"]: n.params for n in from_api.nodes.values()
              if n.block == "sd.sampler_select"}
    assert select == {"dpmpp_2m_sde_gpu": {"sampler": "dpmpp_2m_sde_gpu", "eta": 0.5, "s_noise": 1.0,
                                           "solver_type": "heun"},
                      "lms": {"sampler": "lms", "order": 3}}


def test_lcm_workflow_model_sampling_discrete_carries_to_the_sampler(catalog, ex):
    """ComfyUI's LCM example: ModelSamplingDiscrete(lcm) after the LoRA, KSampler lcm / sgm_uniform."""
    prompt = {
        "4": loader("v1-5-pruned-emaonly.safetensors"),
        "10": {"class_type": "ModelSamplingDiscrete", "inputs": {"sampling": "lcm", "zsnr": False,
                                                                "model": ["4", 0]}},
        "6": text("a cat"), "7": text(""),
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 4, "cfg": 1.0, "sampler_name": "lcm", "scheduler": "sgm_uniform",
            "denoise": 1.0, "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "lcm", "images": ["8", 0]}},
    }
    models_map = {"v1-5-pruned-emaonly": "tiny-sd"}
    graph, problems = import_workflow(prompt, catalog, model_map=models_map, extra_mappings=COMFY_MAPPINGS)
    assert problems == []
    params = graph.nodes["ksampler_3"].params
    assert (params["model_sampling"], params["zsnr"], params["sampler"]) == ("lcm", False, "lcm")
    out = ex.run(graph).outputs
    plain = dict(prompt)
    plain["3"] = {**prompt["3"], "inputs": {**prompt["3"]["inputs"], "model": ["4", 0]}}
    graph2, _ = import_workflow(plain, catalog, model_map=models_map, extra_mappings=COMFY_MAPPINGS)
    other = ex.run(graph2).outputs
    assert float((out["ksampler_3"]["latent"] - other["ksampler_3"]["latent"]).abs().max()) > 1e-3
    from graphs.comfy import export_api

    api, problems = export_api(graph, model_map=models_map)
    patched = [n for n in api.values() if n["class_type"] == "ModelSamplingDiscrete"]
    assert problems == [] and [n["inputs"]["sampling"] for n in patched] == ["lcm"]
    again, problems = import_workflow(api, catalog, model_map=models_map, extra_mappings=COMFY_MAPPINGS)
    assert problems == [] and again.nodes["ksampler_3"].params == params


def test_latent_from_batch_keeps_each_latents_noise_as_comfyui(catalog, ex):
    """LatentFromBatch(2, 1) of a 3-latent batch then KSampler: the sampler draws the third latent's
    noise of the whole batch (ComfyUI's batch_index); RepeatLatentBatch extends the record."""
    def prompt(extra: dict, latent: list) -> dict:
        return {
            "4": loader("v1-5-pruned-emaonly.safetensors"), "6": text("a castle"), "7": text("fog"),
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 3}},
            **extra,
            "3": {"class_type": "KSampler", "inputs": {
                "seed": 12, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": latent}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "b", "images": ["8", 0]}},
        }
    mm = {"v1-5-pruned-emaonly": "tiny-sd"}
    whole, problems = import_workflow(prompt({}, ["5", 0]), catalog, model_map=mm,
                                      extra_mappings=COMFY_MAPPINGS)
    assert problems == [] and "batch_index" not in whole.nodes["ksampler_3"].params
    take = {"10": {"class_type": "LatentFromBatch", "inputs": {"batch_index": 2, "length": 5,
                                                              "samples": ["5", 0]}}}
    one, problems = import_workflow(prompt(take, ["10", 0]), catalog, model_map=mm,
                                    extra_mappings=COMFY_MAPPINGS)
    assert problems == [] and one.nodes["ksampler_3"].params["batch_index"] == [2]  # length clamped to 1
    repeat = {**take,
              "11": {"class_type": "RepeatLatentBatch", "inputs": {"amount": 3, "samples": ["10", 0]}}}
    three, problems = import_workflow(prompt(repeat, ["11", 0]), catalog, model_map=mm,
                                      extra_mappings=COMFY_MAPPINGS)
    assert problems == [] and three.nodes["ksampler_3"].params["batch_index"] == [2, 3, 4]
    all_three = ex.run(whole).outputs["ksampler_3"]["latent"]
    third = ex.run(one).outputs["ksampler_3"]["latent"]
    assert float((all_three[2:] - third).abs().max()) <= 1e-4 * max(1.0, float(third.abs().max()))
    api, problems = export_api(three, model_map=mm)
    assert problems == [] and sorted(n["class_type"] for n in api.values() if "Batch" in n["class_type"]) == [
        "LatentFromBatch", "RepeatLatentBatch"]
