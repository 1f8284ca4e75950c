"""An imported ComfyUI workflow names its LoRA, embedding and upscaler by file name, as ComfyUI
lists them in its model folders, and runs with no paths allowed (as in the daemon).

The files are built here in a ComfyUI ``models/`` layout: a kohya LoRA in a subfolder, an
A1111 ``.pt`` embedding called from the negative prompt (``embedding:EasyNegative``) and a
Real-ESRGAN compact upscaler saved as a ``.pth`` state dict.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from graphs.comfy import import_workflow
from orchestrator.models import ModelManager, ModelRegistry
from orchestrator.models.folders import ModelFolders
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from model_builders import SRVGGNetCompact, a1111_pt, direct, kohya_sd1, randomised

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

one_torch_thread = sd_fixtures.one_torch_thread

WORKFLOW = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "styles/fox_style.safetensors",
                                                  "strength_model": 0.8, "strength_clip": 0.8,
                                                  "model": ["4", 0], "clip": ["4", 1]}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "embedding:EasyNegative, blurry",
                                                     "clip": ["10", 1]}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 2, "cfg": 7.0, "sampler_name": "euler",
                                               "scheduler": "normal", "denoise": 1.0, "model": ["10", 0],
                                               "positive": ["6", 0], "negative": ["7", 0],
                                               "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "12": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "2x-compact.pth"}},
    "13": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["12", 0], "image": ["8", 0]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "fox", "images": ["13", 0]}},
}


def test_comfy_workflow_runs_with_lora_embedding_and_upscaler_by_file_name(catalog, tmp_path):
    root = tmp_path / "ComfyUI" / "models"
    (root / "loras" / "styles").mkdir(parents=True)
    (root / "embeddings").mkdir()
    (root / "upscale_models").mkdir()
    kohya_sd1(root / "loras" / "styles" / "fox_style.safetensors")
    vecs = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    a1111_pt(root / "embeddings" / "EasyNegative.pt", vecs)
    net = randomised(SRVGGNetCompact(upscale=2), 11)
    torch.save(net.state_dict(), root / "upscale_models" / "2x-compact.pth")

    graph, problems = import_workflow(WORKFLOW, catalog=catalog, model_map={"v1-5-pruned-emaonly": "tiny-sd"},
                                      extra_mappings=COMFY_MAPPINGS)
    assert not [p.to_dict() for p in problems if p.to_dict().get("severity") == "error"]
    registry = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                             allow_paths=False)
    models = ModelManager(registry)
    result = LocalExecutor(catalog, models=models, outputs_dir=tmp_path / "out").run(graph)
    [saved] = result.files
    held = {r["model"] for r in models.report()["held"]}
    assert any("lora(styles/fox_style.safetensors@0.8)" in k for k in held), held
    assert any("emb(EasyNegative" in k for k in held), held
    decoded = next(v["image"] for k, v in result.outputs.items() if k.startswith("vae_decode"))
    upscaled = next(v["image"] for k, v in result.outputs.items() if k.startswith("image_upscale"))
    assert upscaled.shape == (1, 128, 128, 3)
    np.testing.assert_allclose(upscaled, direct(net, decoded), atol=1e-5)
    assert Path(saved["path"]).is_file()


def test_checkpoint_lora_and_embedding_all_by_file_name_with_no_model_map(catalog, tmp_path):
    """The whole workflow resolves in a ComfyUI models folder: its checkpoint too, a single file in
    the original (LDM) layout; no model map, no paths."""
    import shutil

    from safetensors.torch import save_file

    tiny = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir()).resolve("tiny-sd").path
    root = tmp_path / "ComfyUI" / "models"
    for sub in ("checkpoints", "loras/styles", "embeddings", "upscale_models"):
        (root / sub).mkdir(parents=True)
    ckpt = root / "checkpoints" / "v1-5-pruned-emaonly.safetensors"
    save_file({k: v.contiguous() for k, v in sd_fixtures.to_ldm_checkpoint(tiny).items()}, str(ckpt))
    # tiny shapes are no published family: the configs go beside the file, as the loader expects
    shutil.copytree(tiny, ckpt.with_name("v1-5-pruned-emaonly.config"),
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    kohya_sd1(root / "loras" / "styles" / "fox_style.safetensors")
    a1111_pt(root / "embeddings" / "EasyNegative.pt",
             torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    torch.save(randomised(SRVGGNetCompact(upscale=2), 11).state_dict(),
               root / "upscale_models" / "2x-compact.pth")

    graph, problems = import_workflow(WORKFLOW, catalog=catalog, extra_mappings=COMFY_MAPPINGS)
    assert not [p.to_dict() for p in problems if p.to_dict().get("severity") == "error"]
    registry = ModelRegistry(cache_dir=tmp_path / "cache", folders=ModelFolders([root]), allow_paths=False)
    models = ModelManager(registry)
    result = LocalExecutor(catalog, models=models, outputs_dir=tmp_path / "out").run(graph)
    [saved] = result.files
    held = {r["model"] for r in models.report()["held"]}
    assert any("v1-5-pruned-emaonly" in k for k in held), held
    assert any("lora(styles/fox_style.safetensors@0.8)" in k for k in held), held
    assert any("emb(EasyNegative" in k for k in held), held
    assert Path(saved["path"]).is_file()
