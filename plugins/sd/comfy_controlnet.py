"""ComfyUI's ControlNet nodes: ``(Diff)ControlNetLoader`` + ``ControlNetApply(Advanced)`` ->
``sd.controlnet``.

``DiffControlNetLoader`` names the model its difference file is added to (``{name, diff_base}``,
computed by the model manager as ComfyUI's ``load_controlnet(path, model)`` does).

The loader gives the file (a :class:`~orchestrator.Resource`); an apply node transforms the
conditioning it reads (``ControlNetApplyAdvanced``: the positive and negative together, as a
pair). Ports and params are found in the catalog by type and by the usual names, so the
block may name them as it likes.
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Cond, Data, NodeContext, PairOp, Resource, Unresolved


def controlnet_loader(nc: NodeContext) -> list[Any]:
    name, _ = nc.model_name(str(nc.widget("control_net_name") or ""), "control_net_name")
    return [Resource("CONTROL_NET", name)]


def diff_controlnet_loader(nc: NodeContext) -> list[Any]:
    name, _ = nc.model_name(str(nc.widget("control_net_name") or ""), "control_net_name")
    return [Resource("CONTROL_NET", name, diff_base=nc.model("model"))]


def _controlnet_values(nc: NodeContext) -> dict[tuple[str, ...], Any]:
    net = nc.input("control_net")
    if not isinstance(net, Resource):
        raise Unresolved("input 'control_net' is not a ControlNet", field="control_net")
    values: dict[tuple[str, ...], Any] = {
        ("controlnet", "model", "control_model", "name"): net.ref(),
        ("strength", "scale", "conditioning_scale", "weight"): nc.widget("strength", 1.0)}
    if nc.node.class_type == "ControlNetApplyAdvanced":
        values[("start", "start_percent", "guidance_start")] = nc.widget("start_percent", 0.0)
        values[("end", "end_percent", "guidance_end")] = nc.widget("end_percent", 1.0)
    return values


def _controlnet_build(nc: NodeContext, image: Data, values: dict[tuple[str, ...], Any]) -> Any:
    block = "sd.controlnet"

    def build(imp: Any, cond: Data) -> Data:
        inputs = {imp.port(block, "CONDITIONING", "input"): cond, imp.port(block, "IMAGE", "input"): image}
        node = nc.add(block, inputs=inputs, params=imp.params_for(block, values), suffix=nc.next_suffix())
        return Data(f"{node}.{imp.port(block, 'CONDITIONING', 'output')}", "CONDITIONING")

    return build


def controlnet_apply(nc: NodeContext) -> list[Any]:
    image, values = nc.data("image"), _controlnet_values(nc)
    assert image is not None
    one = _controlnet_build(nc, image, values)
    return [Cond(nc.id, "op", args=(nc.conditioning("conditioning"),),
                 build=lambda imp, refs: one(imp, refs[0]))]


def controlnet_apply_advanced(nc: NodeContext) -> list[Any]:
    image, values = nc.data("image"), _controlnet_values(nc)
    assert image is not None
    pair = PairOp(nc.id, nc.conditioning("positive"), nc.conditioning("negative"),
                  _controlnet_build(nc, image, values))
    return [Cond(nc.id, "pair", pair=pair, slot=0), Cond(nc.id, "pair", pair=pair, slot=1)]


MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("ControlNetLoader", convert=controlnet_loader, requires=("sd.controlnet",)),
    ComfyMapping("DiffControlNetLoader", convert=diff_controlnet_loader, requires=("sd.controlnet",),
                 widgets=("control_net_name",), input_types={"model": "MODEL"},
                 output_types=("CONTROL_NET",)),
    ComfyMapping("ControlNetApply", convert=controlnet_apply, requires=("sd.controlnet",)),
    ComfyMapping("ControlNetApplyAdvanced", convert=controlnet_apply_advanced, requires=("sd.controlnet",)),
)
