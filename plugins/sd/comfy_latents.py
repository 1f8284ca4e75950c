"""ComfyUI's latent nodes: empty latents, VAE encode and decode, inpainting latents, latent scaling and
blending.

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
EmptyLatentImage                        ``sd.empty_latent``
VAE{Encode,Decode}(Tiled)               ``sd.vae_encode`` / ``sd.vae_decode``
VAEEncodeForInpaint                     ``sd.vae_encode_for_inpaint``, whatever reads it
                                        (without it: ``sd.inpaint`` at the sampler)
SetLatentNoiseMask                      a noise mask for ``sd.ksampler`` (``sd.inpaint``)
LatentUpscale(By)                       ``sd.latent_resize`` (every method, exact sizes,
                                        crop); without it ``sd.latent_upscale``
LatentComposite, LatentBlend            ``sd.latent_composite``, ``sd.latent_blend``
======================================  =====================================================
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Data, MaskedLatent, NodeContext, Unresolved
from plugins.sd.comfy_sampling import native_inpaint

LATENT_METHODS = {"nearest-exact": "nearest-exact", "bilinear": "bilinear", "area": "area",
                  "bicubic": "bicubic"}


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


def empty_latent(nc: NodeContext) -> list[Any]:
    w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
    batch = int(nc.widget("batch_size", 1))
    node = nc.add("sd.empty_latent", params={"width": w, "height": h, "batch": batch})
    nc.importer.latents.append(node)
    return [_out(node, "latent", "LATENT", size=(w, h))]


def vae_encode(nc: NodeContext) -> list[Any]:
    pixels, vae = nc.data("pixels"), nc.model("vae")
    assert pixels is not None
    node = nc.add("sd.vae_encode", inputs={"image": pixels}, params={"model": vae.ref(loras=False)})
    return [_out(node, "latent", "LATENT", size=pixels.size, source_image=pixels)]


def vae_decode(nc: NodeContext) -> list[Any]:
    samples, vae = nc.data("samples"), nc.model("vae")
    assert samples is not None
    node = nc.add("sd.vae_decode", inputs={"latent": samples}, params={"model": vae.ref(loras=False)})
    return [_out(node, "image", "IMAGE", size=samples.size)]


def vae_encode_for_inpaint(nc: NodeContext) -> list[Any]:
    """VAEEncodeForInpaint: ``sd.vae_encode_for_inpaint``'s latent and grown mask, for every reader."""
    if not nc.has_block("sd.vae_encode_for_inpaint"):
        return _vae_encode_for_sd_inpaint(nc)  # sd.inpaint (the diffusers inpainting pipeline) instead
    pixels = nc.data("pixels")
    nc.data("mask")
    nc.model("vae")
    assert pixels is not None
    probe = MaskedLatent(nc.id, pixels, pixels, lambda: pixels)
    built = native_inpaint(nc, probe)
    assert built is not None
    latent, mask = built
    return [MaskedLatent(nc.id, pixels, mask, lambda: latent)]


def _vae_encode_for_sd_inpaint(nc: NodeContext) -> list[Any]:
    """The image and grown mask for ``sd.inpaint`` (which encodes them itself); a reader that is not a
    sampler gets the plain latent, with a warning."""
    pixels, vae, mask = nc.data("pixels"), nc.model("vae"), nc.data("mask")
    assert pixels is not None and mask is not None
    grow = int(nc.widget("grow_mask_by", 6))
    if grow > 0:
        node = nc.add("image.mask_grow", inputs={"mask": mask}, params={"grow": grow}, suffix="_grow")
        mask = _out(node, "mask", "MASK", size=mask.size)

    def plain() -> Data:
        nc.warn("its masked latent is read by a node that is not a sampler: the mask is dropped there",
                field="mask")
        node = nc.add("sd.vae_encode", inputs={"image": pixels}, params={"model": vae.ref(loras=False)},
                      suffix="_latent")
        return _out(node, "latent", "LATENT", size=pixels.size, source_image=pixels)

    return [MaskedLatent(nc.id, pixels, mask, _once(plain))]


def _once(make: Any) -> Any:
    done: list[Data] = []

    def call() -> Data:
        if not done:
            done.append(make())
        return done[0]

    return call


def set_latent_noise_mask(nc: NodeContext) -> list[Any]:
    samples, mask = nc.input("samples"), nc.data("mask")
    assert mask is not None
    if isinstance(samples, MaskedLatent):
        return [MaskedLatent(nc.id, samples.image, mask, samples.plain)]
    if isinstance(samples, Data) and samples.source_image is not None:
        return [MaskedLatent(nc.id, samples.source_image, mask, lambda: samples)]
    if isinstance(samples, Data) and samples.type == "LATENT" and nc.has_block("sd.ksampler"):
        # the native sampler takes any latent with a noise mask, as ComfyUI's (it never reads .image)
        return [MaskedLatent(nc.id, samples, mask, lambda: samples)]
    nc.error("unsupported_input", "the latent does not come from a VAEEncode of an image, which ours needs "
             "to inpaint; the mask is left out", field="samples")
    return [samples]


def latent_upscale(nc: NodeContext) -> list[Any]:
    samples = nc.data("samples")
    assert samples is not None
    if nc.has_block("sd.latent_resize"):
        return _latent_resize(nc, samples)
    method = str(nc.widget("upscale_method", "nearest-exact"))
    mode = LATENT_METHODS.get(method, "bicubic")
    if method not in LATENT_METHODS:
        nc.warn(f"upscale_method {method!r} is not available; using {mode!r}", field="upscale_method")
    if nc.node.class_type == "LatentUpscaleBy":
        scale = float(nc.widget("scale_by", 1.5))
        size = (round(samples.size[0] * scale), round(samples.size[1] * scale)) if samples.size else None
    else:
        scale, size = _scale_to(nc, samples)
    node = nc.add("sd.latent_upscale", inputs={"latent": samples}, params={"scale": scale, "mode": mode})
    return [_out(node, "latent", "LATENT", size=size)]


def _latent_resize(nc: NodeContext, samples: Data) -> list[Any]:
    """LatentUpscale (an exact size, crop) and LatentUpscaleBy on ``sd.latent_resize``, every method."""
    method = str(nc.widget("upscale_method", "nearest-exact"))
    if method not in ("nearest-exact", "bilinear", "area", "bicubic", "bislerp"):
        raise Unresolved(f"upscale_method {method!r} is not one of ComfyUI's latent methods",
                         field="upscale_method")
    params: dict[str, Any] = {"method": method}
    size = None
    if nc.node.class_type == "LatentUpscaleBy":
        params["scale"] = float(nc.widget("scale_by", 1.5))
        if samples.size:
            scale = params["scale"]
            size = (round(samples.size[0] / 8 * scale) * 8, round(samples.size[1] / 8 * scale) * 8)
    else:
        w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
        params.update(width=w, height=h, crop=str(nc.widget("crop", "disabled")))
        if w and h:
            size = (max(64, w) // 8 * 8, max(64, h) // 8 * 8)
        elif not w and not h:
            size = samples.size
    node = nc.add("sd.latent_resize", inputs={"latent": samples}, params=params)
    return [_out(node, "latent", "LATENT", size=size)]


def _scale_to(nc: NodeContext, samples: Data) -> tuple[float, tuple[int, int] | None]:
    w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
    if samples.size is None:
        raise Unresolved("the size of its input latent is not known at import, and sd.latent_upscale "
                         "takes a scale", field="width")
    sw, sh = samples.size
    if w == 0 and h == 0:
        return 1.0, samples.size
    sx = w / sw if w else h / sh
    sy = h / sh if h else sx
    if abs(sx - sy) > 1e-6:
        nc.warn(f"{sw}x{sh} -> {w}x{h} changes the aspect ratio; ours scales both sides by {sx:g}",
                field="height")
    if nc.widget("crop", "disabled") != "disabled":
        nc.warn("crop is not supported", field="crop")
    return round(sx, 6), (round(sw * sx), round(sh * sx))


def latent_composite(nc: NodeContext) -> list[Any]:
    block = "sd.latent_composite"
    to, src = nc.data("samples_to"), nc.data("samples_from")
    ports = nc.importer.ports(block, "LATENT", "input") or ["latent", "source"]
    values = {("x",): int(nc.widget("x", 0)), ("y",): int(nc.widget("y", 0)),
              ("feather",): int(nc.widget("feather", 0))}
    node = nc.add(block, inputs=dict(zip(ports, [to, src], strict=False)),
                  params=nc.importer.params_for(block, values))
    assert to is not None
    return [_out(node, nc.importer.port(block, "LATENT", "output"), "LATENT", size=to.size)]


def _c(class_type: str, fn: Any, requires: tuple[str, ...], **kw: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=requires, **kw)


MAPPINGS: tuple[ComfyMapping, ...] = (
    _c("EmptyLatentImage", empty_latent, ("sd.empty_latent",)),
    _c("VAEEncode", vae_encode, ("sd.vae_encode",)),
    _c("VAEDecode", vae_decode, ("sd.vae_decode",)),
    _c("VAEEncodeTiled", vae_encode, ("sd.vae_encode",)),
    _c("VAEDecodeTiled", vae_decode, ("sd.vae_decode",)),
    _c("VAEEncodeForInpaint", vae_encode_for_inpaint, ("sd.vae_encode_for_inpaint|sd.inpaint",
                                                       "sd.vae_encode_for_inpaint|image.mask_grow"),
       widgets=("grow_mask_by",)),
    _c("SetLatentNoiseMask", set_latent_noise_mask, ("sd.inpaint",)),
    _c("LatentUpscale", latent_upscale, ("sd.latent_resize|sd.latent_upscale",)),
    _c("LatentUpscaleBy", latent_upscale, ("sd.latent_resize|sd.latent_upscale",)),
    _c("LatentComposite", latent_composite, ("sd.latent_composite",)),
    ComfyMapping("LatentBlend", block="sd.latent_blend", inputs={"samples1": "latent", "samples2": "source"},
                 params={"factor": "blend_factor"}, outputs=["latent"], output_types=["LATENT"],
                 widgets=("blend_factor",), defaults={"blend_factor": 0.5}),
)
