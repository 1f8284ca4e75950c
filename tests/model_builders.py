"""Model files in the layouts people have, built at test time: kohya LoRAs, A1111 embeddings,
ESRGAN-family upscalers (nets written here from BasicSR's and Real-ESRGAN's definitions), and a
tiny SDXL refiner folder.

Import from a test module (the tests folder is not a package)::

    sys.path.insert(0, str(Path(__file__).parent))
    from model_builders import kohya_sd1, a1111_pt, RRDBNet
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

# -- LoRAs ---------------------------------------------------------------------------------------


def pair(name: str, down: tuple[int, ...], up: tuple[int, ...], alpha: float | None,
         g: torch.Generator) -> dict:
    """One kohya layer: ``name.lora_down.weight``, ``name.lora_up.weight`` and ``name.alpha``."""
    out = {f"{name}.lora_down.weight": torch.randn(*down, generator=g) * 0.2,
           f"{name}.lora_up.weight": torch.randn(*up, generator=g) * 0.2}
    if alpha is not None:
        out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


def kohya_sd1(path: Path, seed: int = 0) -> Path:
    """A kohya SD 1.x LoRA for tiny-sd: attention, 1x1-conv proj_in, 3x3 LoCon, time embedding, CLIP."""
    g = torch.Generator().manual_seed(seed)
    a = "lora_unet_down_blocks_1_attentions_0"
    sd = {}
    for name, down, up in [
        (f"{a}_transformer_blocks_0_attn1_to_q", (4, 64), (64, 4)),
        (f"{a}_transformer_blocks_0_attn2_to_k", (4, 32), (64, 4)),
        (f"{a}_transformer_blocks_0_attn2_to_out_0", (4, 64), (64, 4)),
        (f"{a}_transformer_blocks_0_ff_net_0_proj", (4, 64), (512, 4)),
        (f"{a}_proj_in", (4, 64, 1, 1), (64, 4, 1, 1)),             # SD 1.x proj_in is a 1x1 conv
        ("lora_unet_down_blocks_0_resnets_0_conv1", (4, 32, 3, 3), (32, 4, 1, 1)),
        ("lora_unet_up_blocks_1_resnets_1_conv_shortcut", (4, 64, 1, 1), (32, 4, 1, 1)),
        ("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_v", (4, 64), (64, 4)),
        ("lora_unet_down_blocks_1_resnets_0_time_emb_proj", (4, 128), (64, 4)),
        ("lora_te_text_model_encoder_layers_1_mlp_fc1", (4, 32), (64, 4)),
        ("lora_te_text_model_encoder_layers_2_mlp_fc2", (4, 64), (32, 4)),
    ]:
        sd |= pair(name, down, up, 2.0, g)
    save_file(sd, str(path))
    return path


def kohya_sdxl(path: Path, seed: int = 1) -> Path:
    """A kohya SDXL LoRA for tiny-sdxl in the SGM names kohya trains SDXL with.

    tiny-sdxl has one layer per block: ``input_blocks.1`` is down_blocks.0's resnet, ``2.0.op``
    its downsampler, ``3.0``/``3.1`` down_blocks.1's resnet and attention; ``output_blocks.0-1``
    are up_blocks.0 (``1.2.conv`` its upsampler), ``2-3`` up_blocks.1.
    """
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, down, up in [
        ("lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k", (4, 64), (64, 4)),
        ("lora_unet_input_blocks_3_1_transformer_blocks_0_attn1_to_out_0", (4, 64), (64, 4)),
        ("lora_unet_input_blocks_3_1_proj_in", (4, 64), (64, 4)),   # SDXL proj_in is linear
        ("lora_unet_middle_block_1_transformer_blocks_0_attn1_to_q", (4, 64), (64, 4)),
        ("lora_unet_output_blocks_1_1_transformer_blocks_0_ff_net_2", (4, 256), (64, 4)),
        ("lora_unet_input_blocks_1_0_in_layers_2", (4, 32, 3, 3), (32, 4, 1, 1)),
        ("lora_unet_output_blocks_3_0_skip_connection", (4, 64, 1, 1), (32, 4, 1, 1)),
        ("lora_unet_input_blocks_3_0_emb_layers_1", (4, 128), (64, 4)),
        ("lora_unet_output_blocks_1_2_conv", (4, 64, 3, 3), (64, 4, 1, 1)),
        ("lora_unet_input_blocks_2_0_op", (4, 32, 3, 3), (32, 4, 1, 1)),
        ("lora_unet_time_embed_0", (4, 32), (128, 4)),
        ("lora_unet_label_emb_0_0", (4, 80), (128, 4)),
        ("lora_te1_text_model_encoder_layers_1_mlp_fc1", (4, 32), (64, 4)),
        ("lora_te2_text_model_encoder_layers_2_self_attn_out_proj", (4, 32), (32, 4)),
        ("lora_te2_text_model_encoder_layers_0_mlp_fc2", (4, 64), (32, 4)),
    ]:
        sd |= pair(name, down, up, 8.0, g)
    save_file(sd, str(path))
    return path


# -- embeddings ----------------------------------------------------------------------------------


def a1111_pt(path: Path, vecs: torch.Tensor) -> Path:
    """What A1111's textual-inversion training saves (``torch.save`` of plain containers)."""
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.nn.Parameter(vecs.clone())},
                "name": "something-else", "step": 3000, "sd_checkpoint": "a1b2c3d4",
                "sd_checkpoint_name": "v1-5-pruned-emaonly"}, path)
    return path


# -- upscalers: the nets, as BasicSR / Real-ESRGAN define them -------------------------------------


class ResidualDenseBlock(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(nf, gc) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """BasicSR's ``RRDBNet`` (ESRGAN, Real-ESRGAN x4plus / x2plus); real files have gc 32."""

    def __init__(self, scale: int = 4, nf: int = 8, nb: int = 2, gc: int = 32) -> None:
        super().__init__()
        self.scale = scale
        in_ch = 3 * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, {4: 1, 2: 2, 1: 4}[self.scale]) if self.scale < 4 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact net (realesr-general-x4v3, realesr-animevideov3)."""

    def __init__(self, nf: int = 8, num_conv: int = 3, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale
        body: list[nn.Module] = [nn.Conv2d(3, nf, 3, 1, 1), nn.PReLU(num_parameters=nf)]
        for _ in range(num_conv):
            body += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(num_parameters=nf)]
        body.append(nn.Conv2d(nf, 3 * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(body)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def esrgan_old_layout(state: dict[str, torch.Tensor], nb: int) -> dict[str, torch.Tensor]:
    """A x4 RRDBNet's weights in the original ESRGAN key layout (``model.0``, ``model.1.sub.N.RDBk``...),
    the layout of most community ESRGAN files (4x-UltraSharp and the like)."""
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{nb}", "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module.startswith("body."):
            _, i, rdb, conv = module.split(".")
            out[f"model.1.sub.{i}.RDB{rdb[3:]}.{conv}.0.{param}"] = value
        else:
            out[f"{names[module]}.{param}"] = value
    return out


def randomised(net: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


def direct(net: nn.Module, image: np.ndarray) -> np.ndarray:
    """The net itself on a [B, H, W, 3] image, clamped to 0..1 (what an upscaler's output is)."""
    with torch.no_grad():
        x = torch.from_numpy(image.transpose(0, 3, 1, 2).copy())
        return net(x).clamp(0, 1).numpy().transpose(0, 2, 3, 1)




def folder_model_manager(cache_dir: str, models_root: str, budget_bytes: int | None = None) -> object:
    """A worker's provider: the real ``ModelManager`` over a models folder, names only (no paths)."""
    from orchestrator.models import ModelManager, ModelRegistry
    from orchestrator.models.folders import ModelFolders

    registry = ModelRegistry(cache_dir=cache_dir, folders=ModelFolders([models_root]), allow_paths=False)
    return ModelManager(registry, budget_bytes=budget_bytes)


# -- GLIGEN ----------------------------------------------------------------------------------------

# tiny-sd's transformer blocks by ComfyUI's (LDM) names -> (diffusers attention module path, query width)
TINY_SD_GLIGEN_BLOCKS = {"input_blocks.3.1": ("down_blocks.1.attentions.0", 64),
                         "middle_block.1": ("mid_block.attentions.0", 64),
                         "output_blocks.0.1": ("up_blocks.0.attentions.0", 64),
                         "output_blocks.1.1": ("up_blocks.0.attentions.1", 64)}


def tiny_gligen(path: Path, context: int = 32, text: int = 32, seed: int = 0) -> dict:
    """A GLIGEN textbox file for tiny-sd in ComfyUI's layout: a gated self-attention ``fuser`` per
    transformer block (one 64-channel head, as ComfyUI's loader takes a non-768 context) with non-zero
    gates, and the box projection ``position_net``. Returns its modules by LDM block name."""
    from diffusers.models.attention import GatedSelfAttentionDense
    from diffusers.models.embeddings import GLIGENTextBoundingboxProjection

    torch.manual_seed(seed)
    sd, modules = {}, {}
    for ldm, (_path, width) in TINY_SD_GLIGEN_BLOCKS.items():
        fuser = GatedSelfAttentionDense(width, context, 1, width)
        with torch.no_grad():
            fuser.alpha_attn.fill_(0.6)
            fuser.alpha_dense.fill_(0.4)
        modules[ldm] = fuser
        prefix = f"{ldm}.transformer_blocks.0.fuser."
        sd |= {prefix + k: v.detach().clone() for k, v in fuser.state_dict().items()}
    net = GLIGENTextBoundingboxProjection(positive_len=text, out_dim=context, feature_type="text-only")
    with torch.no_grad():
        net.null_positive_feature.normal_()
        net.null_position_feature.normal_()
    modules["position_net"] = net
    sd |= {f"position_net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return modules


# -- an SDXL refiner -------------------------------------------------------------------------------


def tiny_sdxl_refiner(dest: Path, tiny_sdxl: Path) -> Path:
    """tiny-sdxl (the folder ``tiny_sdxl``) as an SDXL refiner at ``dest``: no CLIP-L, a UNet conditioned
    on CLIP-G's 32-wide hidden states and on 5 size/aesthetic ids (``projection_class_embeddings_input_dim``
    5 * 8 + 32), as the real refiner's config has it (1280 + 5 * 256)."""
    import json
    import shutil

    from diffusers import UNet2DConditionModel

    from orchestrator.models.tiny import init_weights

    skip = shutil.ignore_patterns("text_encoder", "tokenizer", "orchestrator_*")
    shutil.copytree(tiny_sdxl, dest, ignore=skip)
    config = json.loads((tiny_sdxl / "unet" / "config.json").read_text())
    config.update(cross_attention_dim=32, projection_class_embeddings_input_dim=5 * 8 + 32)
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    init_weights(unet, "tiny-sdxl-refiner.unet")
    shutil.rmtree(dest / "unet")
    unet.save_pretrained(str(dest / "unet"), safe_serialization=True)
    index = json.loads((dest / "model_index.json").read_text())
    index.update(_class_name="StableDiffusionXLImg2ImgPipeline", text_encoder=[None, None],
                 tokenizer=[None, None], requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    (dest / "model_index.json").write_text(json.dumps(index))
    return dest
