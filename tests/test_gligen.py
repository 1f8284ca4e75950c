"""GLIGEN text boxes as ComfyUI applies them, on tiny-sd with a GLIGEN file built here (ComfyUI's layout).

- ``sd.gligen_textbox`` keeps the phrase's unprojected pooled CLIP output and the box in latent cells;
- sampling equals a reference run on diffusers' own GLIGEN UNet (``attention_type='gated'``, the file's
  layers put by their ComfyUI block names, the boxes normalised by hand), the negative half through the
  plain UNet, as ComfyUI patches only the prompt that carries boxes;
- ComfyUI's GLIGEN workflow (API and UI format) imports with no problem and runs;
- bad input is a structured error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from graphs.comfy import import_result
from orchestrator.errors import BlockError
from orchestrator.models import ModelManager, ModelRegistry
from orchestrator.models.folders import ModelFolders
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import torch_unet, unet_prompt
from plugins.sd.ksampling import schedules
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import prepare_noise
from plugins.sd.ksampling.run import run_sampler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from model_builders import TINY_SD_GLIGEN_BLOCKS, tiny_gligen

one_torch_thread = sd_fixtures.one_torch_thread
SEED, CFG = 21, 5.0
BOXES = [("a purple bottle", 32, 24, 8, 16), ("the sun", 16, 16, 40, 0)]  # text, width, height, x, y


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("gligen_models")
    (d / "gligen").mkdir()
    tiny_gligen(d / "gligen" / "tiny_gligen.safetensors")
    return d


@pytest.fixture(scope="module")
def models(root):
    return ModelManager(ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                                      allow_paths=False))


@pytest.fixture(scope="module")
def ex(catalog, models, root):
    return LocalExecutor(catalog, models=models, input_root=root)


def graph(boxes=BOXES, gligen="tiny_gligen.safetensors"):
    b = GraphBuilder()
    cond = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt="a bottle under the sun",
                 negative_prompt="blurry").cond
    for i, (text, w, h, x, y) in enumerate(boxes):
        cond = b.add("sd.gligen_textbox", id=f"box{i}", cond=cond, gligen=gligen, model="tiny-sd", text=text,
                     width=w, height=h, x=x, y=y).cond
    lat = b.add("sd.empty_latent", model="tiny-sd", width=64, height=64)
    b.add("sd.ksampler", id="k", cond=cond, latent=lat.latent, model="tiny-sd", seed=SEED, steps=3, cfg=CFG,
          sampler="euler")
    return b.build()


def gated_reference(models, root):
    """diffusers' GLIGEN UNet: tiny-sd's weights, the file's fusers by block name, its position_net."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    base = models.load("tiny-sd", "unet")
    config = {k: v for k, v in dict(base.config).items() if not k.startswith("_")}
    ref = UNet2DConditionModel(**{**config, "attention_type": "gated"})
    missing, _ = ref.load_state_dict(base.state_dict(), strict=False)
    assert all(".fuser." in k or k.startswith("position_net.") for k in missing)
    flat = load_file(str(root / "gligen" / "tiny_gligen.safetensors"))
    fresh = tiny_gligen(root / "again.safetensors")  # the same seeded modules
    for ldm, (path, _w) in TINY_SD_GLIGEN_BLOCKS.items():
        ref.get_submodule(path).transformer_blocks[0].fuser = fresh[ldm]
    ref.position_net = fresh["position_net"]
    assert torch.equal(flat["position_net.linears.0.weight"], fresh["position_net"].linears[0].weight)
    return base, ref.eval()


def test_gligen_boxes_sample_as_diffusers_gated_unet_with_comfyuis_boxes(ex, models, root):
    out = ex.run(graph()).outputs
    cond = out["box1"]["cond"]
    boxes = cond["gligen"]["boxes"]
    assert [(b["width"], b["height"], b["x"], b["y"]) for b in boxes] == [(4, 3, 1, 2), (2, 2, 5, 0)]
    tok, te = models.load("tiny-sd", "tokenizer"), models.load("tiny-sd", "text_encoder")
    for box, (text, *_rest) in zip(boxes, BOXES, strict=True):
        ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        torch.testing.assert_close(box["embeds"], te(ids).pooler_output)
    base, ref = gated_reference(models, root)
    info = models.load("tiny-sd", "info")
    ms = ModelSampling.from_config(dict(info.scheduler))
    prompt = unet_prompt(cond, batch=1, do_cfg=True, pixel_size=(64, 64), device="cpu", dtype=base.dtype,
                         node="k")
    xyxy = torch.zeros(1, 30, 4)
    xyxy[0, 0] = torch.tensor([1 / 8, 2 / 8, 5 / 8, 5 / 8])
    xyxy[0, 1] = torch.tensor([5 / 8, 0.0, 7 / 8, 2 / 8])
    masks = torch.zeros(1, 30)
    masks[0, :2] = 1
    embeds = torch.zeros(1, 30, 32)
    embeds[0, 0], embeds[0, 1] = boxes[0]["embeds"][0], boxes[1]["embeds"][0]
    gligen = {"gligen": {"boxes": xyxy, "masks": masks, "positive_embeddings": embeds}}
    plain = torch_unet(base)

    def reference(x, sigma):
        sigma = sigma.reshape(-1).expand(x.shape[0])
        xc, t = ms.calculate_input(sigma, x), ms.timestep(sigma).float()
        neg = plain(xc, t, encoder_hidden_states=prompt.embeds[:1]).float()
        pos = ref(xc, t, encoder_hidden_states=prompt.embeds[1:], cross_attention_kwargs=gligen,
                  return_dict=False)[0].float()
        uncond, cond_ = ms.calculate_denoised(sigma, neg, x), ms.calculate_denoised(sigma, pos, x)
        return uncond + (cond_ - uncond) * CFG

    with torch.no_grad():
        expected = run_sampler("euler", reference, ms, schedules.calculate_sigmas(ms, "normal", 3),
                               prepare_noise((1, 4, 8, 8), SEED), torch.zeros(1, 4, 8, 8), seed=SEED)
    assert float((out["k"]["latent"] - expected).abs().max()) <= 1e-4
    no_boxes = ex.run(graph(boxes=[])).outputs["k"]["latent"]
    assert float((no_boxes - out["k"]["latent"]).abs().max()) > 1e-3


def test_gligen_errors_are_structured(ex, root):
    for gligen, field in (("nope.safetensors", "params.gligen"), ("../../etc/passwd", "params.gligen")):
        with pytest.raises(BlockError) as err:
            ex.run(graph(gligen=gligen))
        d = err.value.to_dict()
        assert (d["node"], d["field"]) == ("box0", field), d
        assert "/etc" not in d["message"] or "never paths" in d["message"]
    from safetensors.torch import save_file

    save_file({"something.else": torch.zeros(2)}, str(root / "gligen" / "not_gligen.safetensors"))
    with pytest.raises(BlockError) as err:
        ex.run(graph(gligen="not_gligen.safetensors"))
    assert (err.value.to_dict()["node"], err.value.to_dict()["field"]) == ("k", "params.gligen")
    b = GraphBuilder()  # 31 boxes: ComfyUI's limit is 30
    cond = b.add("sd.encode_prompt", model="tiny-sd", prompt="x").cond
    for i in range(31):
        cond = b.add("sd.gligen_textbox", id=f"b{i}", cond=cond, gligen="tiny_gligen", text="x").cond
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    d = err.value.to_dict()
    assert (d["node"], d["type"], d["bound"]) == ("b30", "limit", 30), d


def gligen_api() -> dict:
    """ComfyUI's gligen_textbox_example, API format (two boxes chained on one prompt)."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1023216319780679, "steps": 2, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["27", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.ckpt"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "gligen/testing", "images": ["8", 0]}},
        "10": {"class_type": "GLIGENLoader",
               "inputs": {"gligen_name": "gligen_sd14_textbox_pruned.safetensors"}},
        "21": {"class_type": "GLIGENTextBoxApply", "inputs": {
            "text": "purple galaxy bottle", "width": 24, "height": 40, "x": 24, "y": 32,
            "conditioning_to": ["24", 0], "clip": ["4", 1], "gligen_textbox_model": ["10", 0]}},
        "24": {"class_type": "CLIPTextEncode", "inputs": {"text": "snow mountain, glass bottle; sun",
                                                          "clip": ["4", 1]}},
        "27": {"class_type": "GLIGENTextBoxApply", "inputs": {
            "text": "sun", "width": 16, "height": 16, "x": 48, "y": 0, "conditioning_to": ["21", 0],
            "clip": ["4", 1], "gligen_textbox_model": ["10", 0]}},
    }


def gligen_ui() -> dict:
    """The same workflow in the UI format (GLIGENTextBoxApply's widgets: text, width, height, x, y)."""
    def node(id, type, inputs, outputs, widgets):
        return {"id": id, "type": type, "pos": [0, 0], "size": [300, 100], "flags": {}, "order": id,
                "mode": 0, "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
                "outputs": [{"name": t, "type": t, "links": links, "slot_index": i}
                            for i, (t, links) in enumerate(outputs)],
                "properties": {"Node name for S&R": type}, "widgets_values": widgets}

    nodes = [
        node(4, "CheckpointLoaderSimple", [], [("MODEL", [1]), ("CLIP", [2, 3, 4, 5]), ("VAE", [6])],
             ["v1-5-pruned-emaonly.ckpt"]),
        node(10, "GLIGENLoader", [], [("GLIGEN", [7, 8])], ["gligen_sd14_textbox_pruned.safetensors"]),
        node(24, "CLIPTextEncode", [("clip", "CLIP", 2)], [("CONDITIONING", [9])], ["snow mountain, bottle"]),
        node(7, "CLIPTextEncode", [("clip", "CLIP", 3)], [("CONDITIONING", [10])], ["text, watermark"]),
        node(21, "GLIGENTextBoxApply", [("conditioning_to", "CONDITIONING", 9), ("clip", "CLIP", 4),
                                        ("gligen_textbox_model", "GLIGEN", 7)], [("CONDITIONING", [11])],
             ["purple galaxy bottle", 24, 40, 24, 32]),
        node(27, "GLIGENTextBoxApply", [("conditioning_to", "CONDITIONING", 11), ("clip", "CLIP", 5),
                                        ("gligen_textbox_model", "GLIGEN", 8)], [("CONDITIONING", [12])],
             ["sun", 16, 16, 48, 0]),
        node(5, "EmptyLatentImage", [], [("LATENT", [13])], [64, 64, 1]),
        node(3, "KSampler", [("model", "MODEL", 1), ("positive", "CONDITIONING", 12),
                             ("negative", "CONDITIONING", 10), ("latent_image", "LATENT", 13)],
             [("LATENT", [14])], [1023216319780679, "fixed", 2, 8.0, "euler", "normal", 1.0]),
        node(8, "VAEDecode", [("samples", "LATENT", 14), ("vae", "VAE", 6)], [("IMAGE", [15])], []),
        node(9, "SaveImage", [("images", "IMAGE", 15)], [], ["gligen/testing"]),
    ]
    links = [[1, 4, 0, 3, 0, "MODEL"], [2, 4, 1, 24, 0, "CLIP"], [3, 4, 1, 7, 0, "CLIP"],
             [4, 4, 1, 21, 1, "CLIP"], [5, 4, 1, 27, 1, "CLIP"], [6, 4, 2, 8, 1, "VAE"],
             [7, 10, 0, 21, 2, "GLIGEN"], [8, 10, 0, 27, 2, "GLIGEN"], [9, 24, 0, 21, 0, "CONDITIONING"],
             [10, 7, 0, 3, 2, "CONDITIONING"], [11, 21, 0, 27, 0, "CONDITIONING"],
             [12, 27, 0, 3, 1, "CONDITIONING"], [13, 5, 0, 3, 3, "LATENT"], [14, 3, 0, 8, 0, "LATENT"],
             [15, 8, 0, 9, 0, "IMAGE"]]
    return {"last_node_id": 27, "last_link_id": 15, "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


@pytest.mark.parametrize("source", [gligen_api, gligen_ui])
def test_comfyui_gligen_workflow_imports_clean_and_runs(source, catalog, models, root, tmp_path):
    model_map = {"v1-5-pruned-emaonly.ckpt": "tiny-sd", "gligen_sd14_textbox_pruned": "tiny_gligen"}
    result = import_result(json.dumps(source()), catalog=catalog, model_map=model_map,
                           extra_mappings=builtin_comfy_mappings())
    assert [p.to_dict() for p in result.problems] == []
    boxes = [n for n in result.graph.nodes.values() if n.block == "sd.gligen_textbox"]
    assert sorted((n.params["text"], n.params["width"], n.params["x"]) for n in boxes) == \
        [("purple galaxy bottle", 24, 24), ("sun", 16, 48)]
    assert all(n.params["gligen"] == "tiny_gligen" and n.params["model"] == "tiny-sd" for n in boxes)
    run = LocalExecutor(catalog, models=models, input_root=root, outputs_dir=tmp_path).run(result.graph)
    [saved] = run.files
    assert Path(saved["path"]).is_file()


def test_gligen_on_the_diffusers_loop_and_a_batch_of_two(ex):
    """sd.denoise (diffusers' loop, one timestep a call) with a batch of two: the boxes change the rows
    of the prompt with boxes only, for each latent of the batch."""
    def run(boxes):
        b = GraphBuilder()
        cond = b.add("sd.encode_prompt", model="tiny-sd", prompt="a bottle", negative_prompt="blurry").cond
        for i, (text, w, h, x, y) in enumerate(boxes):
            cond = b.add("sd.gligen_textbox", id=f"box{i}", cond=cond, gligen="tiny_gligen", text=text,
                         width=w, height=h, x=x, y=y).cond
        lat = b.add("sd.empty_latent", model="tiny-sd", width=64, height=64, batch=2)
        b.add("sd.denoise", id="d", cond=cond, latent=lat.latent, model="tiny-sd", steps=2, cfg=5.0)
        return ex.run(b.build()).outputs["d"]["latent"]

    boxed, plain = run(BOXES), run([])
    assert boxed.shape == plain.shape == (2, 4, 8, 8)
    assert all(float((boxed[i] - plain[i]).abs().max()) > 1e-3 for i in range(2))
