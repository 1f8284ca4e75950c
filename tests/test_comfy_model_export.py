"""Graphs with derived model references export back to ComfyUI's model nodes (merges, hypernetworks,
continuous EDM, models of parts), and importing the export gives the same references back."""

from __future__ import annotations

import pytest

from graphs.comfy import import_result
from graphs.comfy.export import export_api
from orchestrator.models import ModelRef
from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()
SDXL_BLOCKS = {"time_embed.": 0.1, "label_emb.": 0.2, **{f"input_blocks.{i}": 0.3 for i in range(9)},
               **{f"middle_block.{i}": 0.4 for i in range(3)},
               **{f"output_blocks.{i}": 0.5 for i in range(9)}, "out.": 0.6}


def _n(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def _txt2img(extra: dict, model: list, clip: list, vae: list) -> dict:
    return {
        **extra,
        "5": _n("EmptyLatentImage", width=64, height=64, batch_size=1),
        "6": _n("CLIPTextEncode", text="a red fox", clip=clip),
        "7": _n("CLIPTextEncode", text="blurry", clip=clip),
        "3": _n("KSampler", seed=7, steps=2, cfg=6.0, sampler_name="euler", scheduler="normal", denoise=1.0,
                model=model, positive=["6", 0], negative=["7", 0], latent_image=["5", 0]),
        "8": _n("VAEDecode", samples=["3", 0], vae=vae),
        "9": _n("SaveImage", filename_prefix="x", images=["8", 0]),
    }


CKPTS = {"4": _n("CheckpointLoaderSimple", ckpt_name="a.safetensors"),
         "10": _n("CheckpointLoaderSimple", ckpt_name="b.safetensors")}
WORKFLOWS = {
    "merges_hypernetwork_lora": _txt2img({
        **CKPTS,
        "11": _n("ModelMergeBlocks", model1=["4", 0], model2=["10", 0], input=0.2, middle=0.8, out=0.5),
        "12": _n("CLIPMergeSubtract", clip1=["4", 1], clip2=["10", 1], multiplier=0.5),
        "13": _n("HypernetworkLoader", model=["11", 0], hypernetwork_name="h.pt", strength=0.7),
        "14": _n("LoraLoaderModelOnly", model=["13", 0], lora_name="l.safetensors", strength_model=0.6),
    }, ["14", 0], ["12", 0], ["4", 2]),
    "sdxl_blocks_and_add": _txt2img({
        **CKPTS,
        "11": _n("ModelMergeSDXL", model1=["4", 0], model2=["10", 0], **SDXL_BLOCKS),
        "15": _n("ModelMergeAdd", model1=["11", 0], model2=["4", 0]),
        "12": _n("CLIPMergeSimple", clip1=["4", 1], clip2=["10", 1], ratio=0.3),
    }, ["15", 0], ["12", 0], ["4", 2]),
    "cosxl_edm": _txt2img({
        **CKPTS,
        "11": _n("ModelMergeSubtract", model1=["4", 0], model2=["10", 0], multiplier=1.0),
        "16": _n("ModelSamplingContinuousEDM", model=["11", 0], sampling="v_prediction", sigma_max=120.0,
                 sigma_min=0.002),
    }, ["16", 0], ["4", 1], ["4", 2]),
    "unet_and_dual_clip": _txt2img({
        "4": _n("CheckpointLoaderSimple", ckpt_name="a.safetensors"),
        "20": _n("UNETLoader", unet_name="u.safetensors", weight_dtype="default"),
        "21": _n("DualCLIPLoader", clip_name1="l.safetensors", clip_name2="g.safetensors", type="sdxl",
                 device="default"),
    }, ["20", 0], ["21", 0], ["4", 2]),
}


def _refs(graph) -> dict[str, str]:
    return {n.block + ":" + str(i): ModelRef.parse(n.params["model"]).key()
            for i, n in enumerate(sorted(graph.nodes.values(), key=lambda n: n.block))
            if n.block in ("sd.ksampler", "sd.encode_prompt", "sd.vae_decode")}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_derived_models_export_to_comfyui_nodes_and_import_back_the_same(catalog, name):
    first = import_result(WORKFLOWS[name], catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    assert first.errors == [], [e.to_dict() for e in first.errors]
    prompt, problems = export_api(first.graph)
    assert problems == [], [p.to_dict() for p in problems]
    again = import_result(prompt, catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    assert again.errors == [], [e.to_dict() for e in again.errors]
    assert _refs(again.graph) == _refs(first.graph)
    classes = {n["class_type"] for n in prompt.values()}
    wanted = {c for n in WORKFLOWS[name].values() if (c := n["class_type"]).startswith(
        ("ModelMerge", "CLIPMerge", "Hypernetwork", "ModelSampling", "UNET", "DualCLIP"))}
    assert wanted <= classes


def test_a_block_merge_of_no_comfyui_layout_is_reported_not_exported(catalog):
    first = import_result(WORKFLOWS["merges_hypernetwork_lora"], catalog=catalog,
                          extra_mappings=COMFY_MAPPINGS)
    sampler = next(n for n in first.graph.nodes.values() if n.block == "sd.ksampler")
    sampler.params["model"]["merge"]["blocks"] = {"input_blocks.3.": 0.5}
    _, problems = export_api(first.graph)
    assert any(p.to_dict()["field"] == "params.model.merge.blocks" for p in problems), problems
