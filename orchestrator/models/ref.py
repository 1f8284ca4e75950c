"""Model references: how a block names the model it needs.

A block param ``model`` is either a plain name (``"tiny-sd"``) or an object that adds
personalisation on top of the base model: LoRAs (several, each with its weight) and
textual-inversion embeddings, all loaded from ``.safetensors`` files::

    {"name": "tiny-sd",
     "loras": [{"path": "my_dog.safetensors", "weight": 0.8}],
     "embeddings": [{"path": "style", "token": "<my-style>"}]}

A LoRA or embedding ``path`` is a name: a file in the model folders' ``loras/`` or
``embeddings/`` (``sub/name.safetensors``, with or without the extension) or a configured
entry; only the in-process CLI also takes a file path (see ``ModelRegistry.resolve_file``).
Two references with the same contents have the same :meth:`ModelRef.key`, which is what a
worker caches by.

A reference may also be *derived*: ``merge`` says its UNet (``target: "unet"``) or its text
encoders (``target: "clip"``) are a merge of two other references, as ComfyUI's model
merging nodes make them (see :mod:`orchestrator.models.merge`); ``name`` is then the first
model's name (its configs, VAE, tokenizers and scheduler are the merged model's).
``hypernetworks`` are A1111/ComfyUI hypernetwork files applied to the UNet's attention.
A *difference* ControlNet (ComfyUI's ``DiffControlNetLoader``) names in ``diff_base`` the
model whose UNet weights it is added to. A model *of parts* (``@auto``, ``@sdxl``, ...) takes
its UNet and text encoders from separate files (``parts``; see :mod:`orchestrator.models.parts`).
LoRAs and embeddings apply on top of the merge, as a LoRA loaded after a merge does::

    {"name": "a", "merge": {"op": "simple", "target": "unet", "a": "a", "b": "b", "ratio": 0.6},
     "loras": [{"path": "detail", "weight": 0.5}]}

>>> ModelRef.parse("tiny-sd").key()
'tiny-sd'
>>> ref = ModelRef.parse({"name": "tiny-sd", "loras": [{"path": "a.safetensors", "weight": 0.5}]})
>>> ref.key()
'tiny-sd+lora(a.safetensors@0.5)'
>>> ref.base().key()
'tiny-sd'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MERGE_OPS = ("simple", "blocks", "add", "subtract")
MAX_MERGE_DEPTH = 16  # merges of merges: deeper recipes are refused (a recipe is a request's data)


class LoraRef(BaseModel):
    """One LoRA applied to the model's UNet and text encoders, scaled by ``weight``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(..., min_length=1, max_length=512,
                      description="a LoRA by name (model folders' loras/, or a configured entry)")
    weight: float = Field(1.0, ge=-10.0, le=10.0, description="strength of the LoRA (0 disables it)")


class EmbeddingRef(BaseModel):
    """One textual-inversion embedding, used in prompts as ``token``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(..., min_length=1, max_length=512,
                      description="an embedding by name (model folders' embeddings/, or a configured entry)")
    token: str | None = Field(None, min_length=1, description="the prompt word; default: the file's stem")


class HypernetworkRef(BaseModel):
    """One hypernetwork (A1111/ComfyUI ``.pt`` or ``.safetensors``) on the UNet's attention."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(..., min_length=1, max_length=512,
                      description="a hypernetwork by name (model folders' hypernetworks/, or a configured "
                                  "entry)")
    strength: float = Field(1.0, ge=-10.0, le=10.0, description="how strongly it applies (0 disables it)")


class SamplingRef(BaseModel):
    """The model's noise levels replaced, as ComfyUI's ModelSamplingContinuousEDM node replaces them:
    1000 sigmas log-spaced in ``[sigma_min, sigma_max]``, timestep ``0.25 * log(sigma)``, and the
    output read as ``v_prediction`` (sigma_data 1), ``edm`` (sigma_data 0.5) or ``eps``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["continuous_edm"] = Field("continuous_edm", description="what replaces the sampling")
    prediction: Literal["v_prediction", "edm", "eps"] = Field("v_prediction", description="the output's form")
    sigma_max: float = Field(120.0, gt=0.0, le=1000.0, description="the largest sigma")
    sigma_min: float = Field(0.002, gt=0.0, le=1000.0, description="the smallest sigma")

    @model_validator(mode="after")
    def _range(self) -> SamplingRef:
        if self.sigma_min >= self.sigma_max:
            raise ValueError(f"sigma_min {self.sigma_min} must be below sigma_max {self.sigma_max}")
        return self

    def key(self) -> str:
        return f"edm({self.prediction}:{self.sigma_min:g}-{self.sigma_max:g})"

    def scheduler_config(self) -> dict[str, Any]:
        """A diffusers ``EDMEulerScheduler`` config with these sigmas (what the samplers read)."""
        prediction, sigma_data = {"v_prediction": ("v_prediction", 1.0), "edm": ("epsilon", 0.5),
                                  "eps": ("epsilon", 1.0)}[self.prediction]
        return {"_class_name": "EDMEulerScheduler", "sigma_min": self.sigma_min, "sigma_max": self.sigma_max,
                "sigma_data": sigma_data, "prediction_type": prediction, "sigma_schedule": "karras",
                "num_train_timesteps": 1000, "comfyui_sampling": self.prediction}


class MergeRef(BaseModel):
    """Weights that are a merge of two models, as ComfyUI's merging nodes compute them.

    ``op`` ``simple``: ``ratio * a + (1 - ratio) * b``; ``blocks``: the same with a ratio per
    UNet block, the longest matching prefix of the original (LDM) key names in ``blocks``
    winning, ``ratio`` for keys no prefix matches; ``add``: ``a + b``; ``subtract``:
    ``multiplier * (a - b)`` (``ratio`` is the multiplier). ``target`` is the UNet or the text
    encoders (``clip``); the other components are ``a``'s.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["simple", "blocks", "add", "subtract"] = Field(..., description="how the weights combine")
    target: Literal["unet", "clip"] = Field("unet", description="which weights are merged")
    a: ModelRef = Field(..., description="the first model (ComfyUI's model1 / clip1)")
    b: ModelRef = Field(..., description="the second model (ComfyUI's model2 / clip2)")
    ratio: float = Field(1.0, ge=-10.0, le=10.0,
                         description="simple/blocks: the first model's share; subtract: the multiplier")
    blocks: tuple[tuple[str, float], ...] = Field(
        (), max_length=256, description="blocks: (LDM key prefix, the first model's share) pairs")

    @model_validator(mode="before")
    @classmethod
    def _blocks_from_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("blocks"), dict):
            value = {**value, "blocks": tuple((str(k), v) for k, v in value["blocks"].items())}
        return value

    @model_validator(mode="after")
    def _check(self) -> MergeRef:
        for prefix, share in self.blocks:
            if not prefix or len(prefix) > 64 or not -10.0 <= float(share) <= 10.0:
                raise ValueError(f"blocks: {prefix!r}: a prefix of 1-64 characters with a share in [-10, 10]")
        if self.op != "blocks" and self.blocks:
            raise ValueError(f"blocks are only for op 'blocks', not {self.op!r}")
        if max(self.a.depth(), self.b.depth()) >= MAX_MERGE_DEPTH:
            raise ValueError(f"merges nest at most {MAX_MERGE_DEPTH} deep")
        return self

    def key(self) -> str:
        shares = ",".join(f"{p}={s:g}" for p, s in self.blocks)
        extra = {"simple": f"@{self.ratio:g}", "subtract": f"@{self.ratio:g}", "add": "",
                 "blocks": f"@{self.ratio:g}[{shares}]"}[self.op]
        return f"merge({self.target}:{self.op}{extra}:{self.a.key()}|{self.b.key()})"


class ModelRef(BaseModel):
    """A model by name, plus the LoRAs and embeddings to apply to it (and how it is derived)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., min_length=1, description="a model configured in the registry, e.g. 'tiny-sd'")
    merge: MergeRef | None = Field(None, description="weights merged from two models (name: the first's)")
    sampling: SamplingRef | None = Field(None, description="noise levels replaced (continuous EDM)")
    hypernetworks: tuple[HypernetworkRef, ...] = Field((), max_length=16,
                                                       description="hypernetworks on the UNet's attention")
    parts: tuple[tuple[Literal["unet", "text_encoder", "text_encoder_2"], str], ...] = Field(
        (), max_length=3, description="a model of parts (name @auto, @sd1, @sd2, @sdxl): (component, file "
                                      "name) pairs, files in the model folders' unet/ and clip/")
    diff_base: ModelRef | None = Field(None, description="a difference ControlNet: the model whose UNet "
                                                         "weights it adds to its own (DiffControlNetLoader)")
    loras: tuple[LoraRef, ...] = Field((), description="LoRAs to merge, each with its weight")
    embeddings: tuple[EmbeddingRef, ...] = Field((), description="textual-inversion embeddings")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "name" not in value and isinstance(value.get("merge"), dict):
            first = value["merge"].get("a")  # a merge is named after its first model
            name = first if isinstance(first, str) else first.get("name") if isinstance(first, dict) else None
            if isinstance(name, str):
                value = {**value, "name": name}
        return value

    @model_validator(mode="after")
    def _check_name(self) -> ModelRef:
        comps = [c for c, _ in self.parts]
        if len(set(comps)) != len(comps) or any(not n or len(n) > 512 for _, n in self.parts):
            raise ValueError("parts: each component once, each with a file name of 1-512 characters")
        if self.name.startswith("@") != bool(self.parts):
            raise ValueError("a model of parts is named @auto, @sd1, @sd2 or @sdxl and names its parts; "
                             "names starting with @ are for such models only")
        if self.depth() > MAX_MERGE_DEPTH:
            raise ValueError(f"model references nest at most {MAX_MERGE_DEPTH} deep")
        if self.merge is not None and self.merge.a.name != self.name:
            raise ValueError(f"a merged model is named after its first model {self.merge.a.name!r}, "
                             f"not {self.name!r}")
        return self

    def depth(self) -> int:
        """How deeply references nest in this one (merges, a difference ControlNet's base; 0: none)."""
        inner = [r.depth() for r in (self.merge.a, self.merge.b)] if self.merge is not None else []
        if self.diff_base is not None:
            inner.append(self.diff_base.depth())
        return 1 + max(inner) if inner else 0

    @classmethod
    def parse(cls, value: str | dict[str, Any] | ModelRef) -> ModelRef:
        """A reference from a name, a dict or another reference."""
        if isinstance(value, ModelRef):
            return value
        return cls.model_validate(value)

    def key(self) -> str:
        """A canonical string naming this exact combination (what caches are keyed by)."""
        parts = [self.name]
        if self.merge is not None:
            parts.append(self.merge.key())
        if self.parts:
            parts.append("parts(" + ",".join(f"{c}={n}" for c, n in self.parts) + ")")
        if self.sampling is not None:
            parts.append(self.sampling.key())
        if self.diff_base is not None:
            parts.append(f"diff({self.diff_base.key()})")
        parts += [f"hn({h.path}@{h.strength:g})" for h in self.hypernetworks]
        parts += [f"lora({lr.path}@{lr.weight:g})" for lr in self.loras]
        parts += [f"emb({e.path}{'=' + e.token if e.token else ''})" for e in self.embeddings]
        return "+".join(parts)

    def base(self) -> ModelRef:
        """The same model without LoRAs, embeddings and hypernetworks (a merge stays; the sampling
        override changes no weights and goes)."""
        return ModelRef(name=self.name, merge=self.merge, parts=self.parts)

    @property
    def personalised(self) -> bool:
        return bool(self.loras or self.embeddings or self.hypernetworks)

    def refs(self) -> list[tuple[str, ModelRef]]:
        """This reference and every one a merge in it names, each with its param path
        (``params.model``, ``params.model.merge.b``, ...): what a check walks."""
        out = [("params.model", self)]
        if self.merge is not None:
            for side in ("a", "b"):
                out += [(f"params.model.merge.{side}{p[len('params.model'):]}", r)
                        for p, r in getattr(self.merge, side).refs()]
        if self.diff_base is not None:
            out += [(f"params.model.diff_base{p[len('params.model'):]}", r) for p, r in self.diff_base.refs()]
        return out

    def __str__(self) -> str:
        return self.key()


MergeRef.model_rebuild()
ModelRef.model_rebuild()
