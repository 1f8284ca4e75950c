"""The block declaration API: what @block accepts, what it refuses at import time."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from orchestrator import Block, BlockError, In, Out, Params, Resources, block
from orchestrator.blocks import BLOCK_ID
from orchestrator.errors import BlockDeclarationError


def declare(id="t.ok", version="1.0.0", **attrs):
    def run(self, ctx, image):
        return {"image": image}

    ns = {"inputs": {"image": "IMAGE"}, "outputs": {"image": "IMAGE"}, "run": run}
    ns.update(attrs)
    return block(id, version=version)(type("T", (Block,), ns))


def test_a_good_block_gets_a_spec():
    class P(Params):
        k: int = Field(3, ge=1, le=9, description="kernel")

    cls = declare(Params=P, resources=Resources("gpu", 512), tiling="split",
                  inputs={"image": In("IMAGE", "in"), "mask": In("MASK", optional=True)},
                  run=lambda self, ctx, image, mask=None: {"image": image})
    spec = cls.spec()
    assert (spec.id, spec.version, spec.device, spec.memory_mb, spec.tiling) == \
        ("t.ok", "1.0.0", "gpu", 512, "split")
    assert [(p.name, p.type, p.optional) for p in spec.inputs] == \
        [("image", "IMAGE", False), ("mask", "MASK", True)]
    assert spec.params_schema()["properties"]["k"]["maximum"] == 9
    assert cls({"k": 4}).params.k == 4


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"id": "NoDots"}, "family.verb"),
        ({"version": "1.0"}, "semver"),
        ({"inputs": {"image": "PIXELS"}}, "unknown port type 'PIXELS'"),
        ({"outputs": {}}, "at least one output"),
        ({"inputs": {"image": 5}}, "not a port type"),
        ({"Params": dict}, "pydantic model"),
        ({"resources": Resources("tpu")}, "device must be"),
        ({"tiling": "zigzag"}, "tiling 'zigzag'"),
        ({"run": lambda self, ctx: {}}, "no argument for input 'image'"),
        ({"run": lambda self, ctx, image, other: {}}, "'other' is not a declared input"),
        ({"inputs": {"image": In("IMAGE", optional=True)}}, "give it a default"),
    ],
)
def test_bad_declarations_fail_at_import_naming_the_problem(attrs, message):
    kw = {k: attrs.pop(k) for k in ("id", "version") if k in attrs}
    with pytest.raises(BlockDeclarationError, match=message) as info:
        declare(**kw, **attrs)
    assert info.value.to_dict()["type"] == "declaration"


def test_params_must_forbid_unknown_fields():
    class Loose(BaseModel):
        x: int = 1

    with pytest.raises(BlockDeclarationError, match="refuse unknown params"):
        declare(Params=Loose)


def test_missing_run_and_not_a_block():
    with pytest.raises(BlockDeclarationError, match="run"):
        block("t.x", version="1.0.0")(type("T", (Block,), {"outputs": {"o": "INT"}}))
    with pytest.raises(BlockDeclarationError, match="not a subclass"):
        block("t.x", version="1.0.0")(object)


def test_undecorated_block_has_no_spec():
    class Plain(Block):
        pass

    with pytest.raises(BlockDeclarationError, match="not decorated"):
        Plain.spec()


def test_var_keyword_run_accepts_any_inputs():
    cls = declare(run=lambda self, ctx, **inputs: {"image": inputs["image"]})
    assert cls.spec().id == "t.ok"


def test_block_id_pattern():
    assert BLOCK_ID.match("sd.encode_prompt") and BLOCK_ID.match("a.b.c")
    assert not BLOCK_ID.match("sd") and not BLOCK_ID.match("SD.x") and not BLOCK_ID.match("a..b")


def test_errors_are_dicts():
    e = BlockError("m", type="block_failed", node="n", field="params.x", value=3)
    assert e.to_dict() == {"type": "block_failed", "message": "m", "node": "n",
                           "field": "params.x", "value": 3}
    assert isinstance(Out("IMAGE"), Out)
