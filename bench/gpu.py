"""GPU: full-size SD 1.5 and SDXL with random weights, built here from their published configs.

Nothing is downloaded: the UNet, VAE and text encoders are built from the configs below
(those of ``runwayml/stable-diffusion-v1-5`` and ``stabilityai/stable-diffusion-xl-base-1.0``)
with random weights and saved once as diffusers folders (``$BENCH_GPU_CACHE``, default a
temporary folder); the tokenizer is the built-in tiny one (only token ids matter here).

Figures, each side by side in the same run:

- **seconds per image**: our in-process executor (``sd.*`` blocks, ``ModelManager`` in fp16)
  against the plain diffusers pipeline in fp16 on the same folder, same seed and sampler;
- **UNet step time** (one classifier-free-guidance step, batch 2) in fp16 and bf16, PyTorch
  SDPA attention, eager and ``torch.compile``; and its **model FLOPs utilisation**: FLOPs of
  one step (``torch.utils.flop_counter``) / step time / the GPU's dense fp16/bf16 peak
  (from a table of data-sheet figures; a measured bf16 matmul rate where the GPU is not in
  it, said so in the notes);
- **ONNX Runtime, CUDA execution provider**: the exported SD 1.5 UNet (fp32, I/O binding)
  against the torch UNet in fp32, per step and per image (``onnx.denoise`` in the graph).

Skipped without CUDA. ``BENCH_GPU_DRY_RUN=1`` runs the same code on the CPU with the
configs shrunk (fp32, no compile), to check it where there is no GPU; ``BENCH_GPU_COMPILE=0``
leaves ``torch.compile`` out (it takes minutes per model and dtype); ``BENCH_GPU_FAMILIES=sd15,sdxl``
picks the models.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import Context, Row, cuda_available, median

NAME = "gpu"
TITLE = "full-size SD 1.5 / SDXL (random weights): s/image, UNet step, MFU, torch.compile, ONNX CUDA"

# -- the published configs ------------------------------------------------------------------------

SD15_UNET: dict[str, Any] = dict(
    sample_size=64, in_channels=4, out_channels=4, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=768,
    attention_head_dim=8,
)
SDXL_UNET: dict[str, Any] = dict(
    sample_size=128, in_channels=4, out_channels=4, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True,
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
)
VAE: dict[str, Any] = dict(
    in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    act_fn="silu", norm_num_groups=32,
)
SD15_VAE = {**VAE, "sample_size": 512, "scaling_factor": 0.18215}
SDXL_VAE = {**VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
CLIP_L: dict[str, Any] = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                              num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu")
CLIP_BIGG: dict[str, Any] = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                 num_attention_heads=20, projection_dim=1280, hidden_act="gelu")
SCHEDULER: dict[str, Any] = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                 num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")

# dense fp16/bf16 tensor-core peak (FLOP/s) from the data sheets, by a part of the device name
PEAKS: list[tuple[str, float]] = [
    ("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("GH200", 989e12), ("B200", 2250e12),
    ("A100", 312e12), ("A800", 312e12), ("L40S", 362e12), ("L40", 181e12), ("L4", 121e12),
    ("A10G", 70e12), ("A10", 125e12), ("RTX 6000 Ada", 365e12), ("RTX 4090", 165e12),
    ("RTX 3090", 71e12), ("V100", 125e12), ("T4", 65e12),
]


def skip_reason() -> str | None:
    if os.environ.get("BENCH_GPU_DRY_RUN") == "1" or cuda_available():
        return None
    return "no CUDA device on this machine (set BENCH_GPU_DRY_RUN=1 to check the code on the CPU)"


def shrink(cfg: dict[str, Any]) -> dict[str, Any]:
    """A tiny version of a published config, for the dry run on the CPU."""
    out = dict(cfg)
    n = len(cfg["block_out_channels"])
    out["block_out_channels"] = tuple(32 * (i + 1) for i in range(n))
    out["layers_per_block"] = 1
    out["norm_num_groups"] = 8
    if "attention_head_dim" in cfg:
        out["attention_head_dim"] = 8
    if "transformer_layers_per_block" in cfg:
        out["transformer_layers_per_block"] = 1
    if "sample_size" in cfg and "down_block_types" in cfg and "latent_channels" not in cfg:
        out["sample_size"] = 8
    return out


def _clip(cfg: dict[str, Any], tok: Any, small: bool) -> Any:
    from transformers import CLIPTextConfig

    bos, eos = tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    c = dict(cfg)
    if small:
        c.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 projection_dim=32)
    return CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-5,
                          bos_token_id=bos, eos_token_id=eos, pad_token_id=eos, **c)


def build_folder(family: str, dest: Path, *, small: bool, device: str) -> Path:
    """Build ``family`` (``sd15``/``sdxl``) with random weights and save it, fp16 on a GPU."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from orchestrator.models.tiny import make_tokenizer

    if (dest / "model_index.json").is_file():
        return dest
    torch.manual_seed(0)
    tok = make_tokenizer()
    sdxl = family == "sdxl"
    unet_cfg = SDXL_UNET if sdxl else SD15_UNET
    vae_cfg = SDXL_VAE if sdxl else SD15_VAE
    if small:
        unet_cfg, vae_cfg = shrink(unet_cfg), shrink(vae_cfg)
        if sdxl:
            unet_cfg.update(cross_attention_dim=64, addition_time_embed_dim=8,
                            projection_class_embeddings_input_dim=6 * 8 + 32)
        else:
            unet_cfg["cross_attention_dim"] = 32
    with torch.device(device):  # random init where it is fastest
        parts: dict[str, Any] = {"unet": UNet2DConditionModel(**unet_cfg), "vae": AutoencoderKL(**vae_cfg),
                                 "text_encoder": CLIPTextModel(_clip(CLIP_L, tok, small))}
        if sdxl:
            parts["text_encoder_2"] = CLIPTextModelWithProjection(_clip(CLIP_BIGG, tok, small))
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    for m in parts.values():
        m.to(dtype=dtype).eval()
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    if sdxl:
        pipe = StableDiffusionXLPipeline(**parts, tokenizer=tok, tokenizer_2=make_tokenizer(pad_token="!"),
                                         scheduler=EulerDiscreteScheduler(**SCHEDULER),
                                         force_zeros_for_empty_prompt=True, add_watermarker=False)
    else:
        pipe = StableDiffusionPipeline(**parts, tokenizer=tok, safety_checker=None, feature_extractor=None,
                                       scheduler=DDIMScheduler(**SCHEDULER, clip_sample=False,
                                                               set_alpha_to_one=False),
                                       requires_safety_checker=False)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    del pipe, parts
    os.replace(tmp, dest)
    return dest


def peak_flops(device: str) -> tuple[float, str]:
    """The GPU's dense fp16/bf16 peak: the data sheet's, else a measured bf16 matmul rate."""
    import torch

    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    for key, value in PEAKS:
        if key in name:
            return value, f"{name}, data-sheet dense peak {value / 1e12:.0f} TFLOP/s"
    n = 8192 if device.startswith("cuda") else 512
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = _timed(lambda: a @ b, device, reps=10, warmup=3)
    rate = 2 * n**3 / t
    return rate, f"{name}: not in the table, measured {n}x{n} matmul {rate / 1e12:.1f} TFLOP/s"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _timed(fn: Any, device: str, reps: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` (synchronised on a GPU)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return median(times)


def unet_inputs(unet: Any, size: int, device: str, dtype: Any) -> tuple[tuple, dict]:
    """Inputs of one classifier-free-guidance UNet step (batch 2) for a ``size`` image."""
    import torch

    cfg = unet.config
    lat = size // 8
    args = (torch.randn(2, cfg.in_channels, lat, lat, device=device, dtype=dtype),
            torch.tensor(500.0, device=device),
            torch.randn(2, 77, cfg.cross_attention_dim, device=device, dtype=dtype))
    kwargs: dict[str, Any] = {}
    if cfg.addition_embed_type == "text_time":
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(2, pooled, device=device, dtype=dtype),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, device=device, dtype=dtype)}
    return args, kwargs


def step_flops(unet: Any, args: tuple, kwargs: dict) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(*args, **kwargs)
    return float(counter.get_total_flops())


def run(ctx: Context) -> list[Row]:
    import torch

    dry = not cuda_available()
    device = "cpu" if dry else "cuda"
    cache = Path(os.environ.get("BENCH_GPU_CACHE") or Path(tempfile.gettempdir()) / "orchestrator-bench-gpu")
    families = ["sd15"] if (ctx.quick or dry) else ["sd15", "sdxl"]
    if os.environ.get("BENCH_GPU_FAMILIES"):
        families = os.environ["BENCH_GPU_FAMILIES"].split(",")
    peak, peak_note = peak_flops(device)
    rows: list[Row] = []
    for fam in families:
        folder = build_folder(fam, cache / f"{fam}{'-small' if dry else ''}-random", small=dry, device=device)
        ctx.log(f"{fam}: built {folder}")
        rows += image_rows(ctx, fam, folder, device, dry)
        rows += unet_rows(ctx, fam, folder, device, dry, peak, peak_note)
        if not dry:
            torch.cuda.empty_cache()
    rows += onnx_rows(ctx, cache / f"sd15{'-small' if dry else ''}-random", device, dry)
    return rows


def _registry(fam: str, folder: Path, cache: Path) -> Any:
    from orchestrator.models import ModelRegistry

    return ModelRegistry([{"name": f"bench-{fam}", "source": str(folder)}], cache_dir=cache)


def image_rows(ctx: Context, fam: str, folder: Path, device: str, dry: bool) -> list[Row]:
    """Seconds per image: our executor vs the diffusers pipeline, fp16, same seed."""
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from bench import bench_txt2img as bt
    from bench.core import alternate
    from orchestrator.models import ModelManager
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.executor import LocalExecutor
    from plugins.sd.common import make_scheduler

    size = 64 if dry else (1024 if fam == "sdxl" else 512)
    steps = 4 if (ctx.quick or dry) else 20
    dtype = torch.float32 if dry else torch.float16
    name = f"bench-{fam}"
    manager = ModelManager(_registry(fam, folder, folder.parent), cuda_dtype="float16")
    executor = LocalExecutor(load_plugins(entry_points=False).catalog, models=manager, device=device)
    sampler = "ddim" if fam == "sd15" else "euler"
    graph = bt.graph(name, steps, size, sampler, 7.5, seed=7)
    cls = StableDiffusionXLPipeline if fam == "sdxl" else StableDiffusionPipeline
    extra = {} if fam == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True, **extra).to(device)
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), sampler)
    pipe.set_progress_bar_config(disable=True)
    out: dict[str, Any] = {}

    def ours() -> None:
        out["ours"] = executor.run(graph).outputs["decode"]["image"]
        _sync(device)

    def theirs() -> None:
        gen = torch.Generator(device).manual_seed(7)
        out["theirs"] = pipe(bt.PROMPT, negative_prompt=bt.NEGATIVE, height=size, width=size,
                             num_inference_steps=steps, guidance_scale=7.5, generator=gen,
                             output_type="np").images
        _sync(device)

    t = alternate({"ours": ours, "diffusers": theirs}, ctx.n(2, 5), warmup=1)
    a, b = np.asarray(out["ours"], dtype=np.float32), np.asarray(out["theirs"], dtype=np.float32)
    diff = float(np.abs(a - b).max()) if a.shape == b.shape else float("nan")
    precision = "fp32" if dry else "fp16"
    return [Row(NAME, f"{fam} {size}x{size}, {steps} {sampler} steps, {precision}: seconds per image",
                median(t["ours"]), median(t["diffusers"]), ours_label="LocalExecutor",
                base_label="diffusers pipeline",
                note=f"max pixel diff {diff:.3g}; {median(t['ours']) / steps * 1e3:.1f} ms per step all in",
                extra={"samples": t, "max_abs_diff": diff})]


def unet_rows(ctx: Context, fam: str, folder: Path, device: str, dry: bool, peak: float,
              peak_note: str) -> list[Row]:
    """UNet step time, fp16 and bf16, eager and compiled (SDPA attention), with MFU."""
    import torch
    from diffusers import UNet2DConditionModel

    size = 64 if dry else (1024 if fam == "sdxl" else 512)
    reps = ctx.n(5, 20)
    rows = []
    dtypes = [("fp32", torch.float32)] if dry else [("fp16", torch.float16), ("bf16", torch.bfloat16)]
    for label, dtype in dtypes:
        unet = UNet2DConditionModel.from_pretrained(str(folder / "unet"), torch_dtype=dtype).to(device).eval()
        from diffusers.models.attention_processor import AttnProcessor2_0

        unet.set_attn_processor(AttnProcessor2_0())  # PyTorch SDPA
        args, kwargs = unet_inputs(unet, size, device, dtype)
        flops = step_flops(unet, args, kwargs)
        with torch.no_grad():
            eager = _timed(lambda u=unet, a=args, k=kwargs: u(*a, **k), device, reps)
            compiled_t = None
            if not dry and os.environ.get("BENCH_GPU_COMPILE", "1") != "0":
                compiled = torch.compile(unet)
                t0 = time.perf_counter()
                compiled(*args, **kwargs)  # compiles
                _sync(device)
                compile_s = time.perf_counter() - t0
                compiled_t = _timed(lambda c=compiled, a=args, k=kwargs: c(*a, **k), device, reps)
        mfu = flops / eager / peak
        case = f"{fam} UNet step (CFG batch 2, {size}x{size}), {label}, SDPA"
        rows.append(Row(NAME, f"{case}: eager", eager, unit="s",
                        note=f"MFU {mfu:.1%} ({flops / 1e12:.2f} TFLOP/step; {peak_note})",
                        extra={"flops": flops, "mfu": mfu}))
        if compiled_t is not None:
            rows.append(Row(NAME, f"{case}: torch.compile vs eager", compiled_t, eager,
                            ours_label="compiled", base_label="eager",
                            note=f"MFU {flops / compiled_t / peak:.1%}; compile took {compile_s:.0f} s",
                            extra={"flops": flops, "mfu": flops / compiled_t / peak}))
        del unet
        if not dry:
            torch._dynamo.reset()
            torch.cuda.empty_cache()
    return rows


def onnx_rows(ctx: Context, folder: Path, device: str, dry: bool) -> list[Row]:
    """SD 1.5 on ONNX Runtime (CUDA EP, fp32) against torch fp32: per UNet step and per image."""
    import torch

    from bench import bench_txt2img as bt
    from bench.core import alternate
    from orchestrator.models import ModelManager
    from orchestrator.models.onnx import export_onnx
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.executor import LocalExecutor

    name = "bench-sd15"
    manager = ModelManager(_registry("sd15", folder, folder.parent), cuda_dtype="float32")
    t0 = time.perf_counter()
    export_onnx(manager, name, parts=("unet",))
    export_s = time.perf_counter() - t0
    session = manager.load(name, "onnx:unet", device=device)
    provider = session.providers[0]
    unet = manager.load(name, "unet", device=device)
    size = 64 if dry else 512
    args, _ = unet_inputs(unet, size, device, torch.float32)
    feeds = {"sample": args[0], "timestep": args[1].reshape(1).float(), "encoder_hidden_states": args[2]}
    reps = ctx.n(5, 20)
    with torch.no_grad():
        t = {"onnx": _timed(lambda: session.run(feeds), device, reps),
             "torch": _timed(lambda: unet(*args), device, reps)}
    rows = [Row(NAME, f"sd15 UNet step (CFG batch 2, {size}x{size}), fp32: ONNX Runtime vs torch",
                t["onnx"], t["torch"], ours_label=provider, base_label="torch eager",
                note=f"export took {export_s:.0f} s", extra=t)]
    steps = 4 if (ctx.quick or dry) else 20
    executor = LocalExecutor(load_plugins(entry_points=False).catalog, models=manager, device=device)
    g_torch = bt.graph(name, steps, size, "ddim", 7.5, seed=7)
    g_onnx = bt.graph(name, steps, size, "ddim", 7.5, seed=7)
    g_onnx.nodes["denoise"].block = "onnx.denoise"
    times = alternate({"onnx": lambda: executor.run(g_onnx), "torch": lambda: executor.run(g_torch)},
                      ctx.n(2, 5), warmup=1)
    rows.append(Row(NAME, f"sd15 {size}x{size}, {steps} ddim steps, fp32: seconds per image, onnx.denoise vs "
                          "sd.denoise", median(times["onnx"]), median(times["torch"]), ours_label=provider,
                    base_label="torch", extra={"samples": times}))
    return rows
