"""Small API-format ComfyUI workflows for the import tests, built per test."""

from __future__ import annotations

from typing import Any


def text_workflow(text: Any, *, ckpt: str = "sd15.safetensors", size: int = 64, steps: int = 2) -> dict:
    """txt2img in ComfyUI's API format; ``text`` (a string, or a link ``[id, slot]`` to add) is the positive
    prompt. Node ids as in ComfyUI's default workflow."""
    if isinstance(text, dict):  # a node whose first output is the prompt
        node = text
        text = ["20", 0]
        extra = {"20": node}
    else:
        extra = {}
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": steps, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
        **extra,
    }
